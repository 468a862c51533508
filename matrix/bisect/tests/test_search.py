"""The search on fake measure functions: which releases it measures, what it finds, what it misses."""
from __future__ import annotations

import pytest

from matrix.bisect.search import (UNKNOWN, Answer, Bisection, confirmed_answer, major_anchors, run_bisection)

VERSIONS = [f"1.{i}.0" for i in range(100)]


class Fake:
    """measure(version, repeat) from a function of the release's index; counts what was measured."""

    def __init__(self, answer_at, flaky_at=()):
        self.answer_at, self.flaky_at = answer_at, set(flaky_at)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, version: str, repeat: int) -> Answer:
        self.calls.append((version, repeat))
        i = VERSIONS.index(version)
        scope, tracing = self.answer_at(i)
        if repeat > 1 and i in self.flaky_at:  # the repeats disagree among themselves: combined unknown
            return Answer(UNKNOWN, tracing, "flaky", "repeats disagree")
        verdict = "leak" if scope == "leak" else ("error" if scope == UNKNOWN else "isolated")
        return Answer(scope, tracing, verdict)


def scope_of(b: Bisection) -> list[tuple[str, str, str]]:
    return [(b.versions[x.before], b.versions[x.after], x.dimension) for x in b.boundaries()]


def test_no_change_costs_the_samples_only():
    fake = Fake(lambda i: ("isolated", "parallel"))
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    assert b.boundaries() == []
    assert len(fake.calls) == len(range(0, 100, 8)) + 1  # every 8th release and the newest
    assert [r.kind for r in b.ranges()] == ["answer"]
    assert (b.ranges()[0].first, b.ranges()[0].last) == (0, 99)


def test_one_boundary_is_narrowed_to_neighbours_and_confirmed_on_both_sides():
    fake = Fake(lambda i: ("leak" if i < 37 else "isolated", "nested" if i < 37 else "parallel"))
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    assert scope_of(b) == [("1.36.0", "1.37.0", "scope"), ("1.36.0", "1.37.0", "tracing")]
    assert all(x.confirmed and x.adjacent for x in b.boundaries())
    confirms = [(v, r) for v, r in fake.calls if r > 1]
    assert sorted(confirms) == [("1.36.0", 3), ("1.37.0", 3)]  # scope and tracing share them
    singles = [v for v, r in fake.calls if r == 1]
    assert len(singles) == 14 + 3  # 14 samples, then 32..40 halved three times (36, 38, 37): log2(stride)
    assert b.runs == len(singles) + 2 * 3


def test_scope_and_tracing_changing_at_different_releases_are_both_found():
    fake = Fake(lambda i: ("leak" if i < 20 else "isolated", "untested" if i < 61 else "parallel"))
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    assert scope_of(b) == [("1.19.0", "1.20.0", "scope"), ("1.60.0", "1.61.0", "tracing")]


def test_flip_back_shorter_than_the_stride_is_missed_and_longer_is_found():
    short = Fake(lambda i: ("leak" if 41 <= i <= 46 else "isolated", "parallel"))  # 6 releases, inside 40..48
    assert run_bisection(Bisection(VERSIONS, stride=8), short).boundaries() == []
    long = Fake(lambda i: ("leak" if 41 <= i <= 49 else "isolated", "parallel"))  # 9 releases: spans sample 48
    b = run_bisection(Bisection(VERSIONS, stride=8), long)
    assert scope_of(b) == [("1.40.0", "1.41.0", "scope"), ("1.49.0", "1.50.0", "scope")]
    # stride 1 measures everything and misses nothing
    assert len(run_bisection(Bisection(VERSIONS, stride=1), short).boundaries()) == 2


def test_anchors_are_sampled():
    b = Bisection(VERSIONS, stride=50, anchors=["1.36.0", "9.9.9"])
    assert [p.version for p in b.wanted()] == ["1.0.0", "1.36.0", "1.50.0", "1.99.0"]


def test_unknown_releases_are_not_a_boundary_between_equal_answers():
    # a range that cannot answer (e.g. the stack crashes on import) inside a leaking history
    fake = Fake(lambda i: (UNKNOWN if 30 <= i < 45 else "leak", UNKNOWN if 30 <= i < 45 else "nested"))
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    assert b.boundaries() == []
    kinds = [(b.versions[r.first], b.versions[r.last], r.kind) for r in b.ranges()]
    assert kinds == [("1.0.0", "1.29.0", "answer"), ("1.30.0", "1.44.0", "unknown"), ("1.45.0", "1.99.0", "answer")]
    assert not [c for c in fake.calls if c[1] > 1]  # nothing to confirm


def test_a_change_across_releases_that_cannot_answer_is_one_boundary_with_the_gap_named():
    def answer(i):
        if i < 30:
            return "leak", "nested"
        if i < 45:
            return UNKNOWN, UNKNOWN
        return "isolated", "parallel"

    b = run_bisection(Bisection(VERSIONS, stride=8), Fake(answer))
    scope = [x for x in b.boundaries() if x.dimension == "scope"]
    assert len(scope) == 1
    x = scope[0]
    assert (b.versions[x.before], b.versions[x.after], x.old, x.new) == ("1.29.0", "1.45.0", "leak", "isolated")
    assert x.between and all(b.answer(i).scope == UNKNOWN for i in x.between)
    assert len(x.between) + x.unmeasured == 15
    assert x.confirmed


def test_an_unknown_only_edge_is_narrowed_but_is_no_boundary():
    fake = Fake(lambda i: (UNKNOWN, UNKNOWN) if i < 23 else ("isolated", "parallel"))
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    assert b.boundaries() == []
    assert [(b.versions[r.first], r.kind) for r in b.ranges()] == [("1.0.0", "unknown"), ("1.23.0", "answer")]


def test_a_flaky_neighbour_moves_the_boundary_and_the_new_neighbour_is_confirmed():
    fake = Fake(lambda i: ("leak" if i < 37 else "isolated", "parallel"), flaky_at={37})
    b = run_bisection(Bisection(VERSIONS, stride=8), fake)
    (x,) = b.boundaries()
    assert (b.versions[x.before], b.versions[x.after]) == ("1.36.0", "1.38.0")
    assert x.between == (37,) and x.confirmed
    assert b.answer(37).scope == UNKNOWN and b.answer(37).verdict == "flaky"
    assert ("1.38.0", 3) in fake.calls


def test_confirmed_answer_keeps_agreement_and_marks_disagreement():
    first = Answer("leak", "nested", "leak")
    assert confirmed_answer(first, Answer("leak", "nested", "leak")).key == ("leak", "nested")
    mixed = confirmed_answer(first, Answer("isolated", "nested", "nested"))
    assert mixed.key == (UNKNOWN, "nested") and mixed.verdict == "flaky" and "scope leak" in mixed.reason


def test_wanted_probes_are_independent_and_empty_when_done():
    b = Bisection(["0.1", "0.2", "0.3"], stride=8)
    assert [p.version for p in b.wanted()] == ["0.1", "0.3"]
    for p in b.wanted():
        b.record(p, Answer("isolated", "parallel"))
    assert b.done and b.runs == 2
    assert Bisection([], stride=8).wanted() == []
    with pytest.raises(ValueError):
        Bisection(VERSIONS, stride=0)


def test_major_anchors():
    assert major_anchors(["0.19.5", "0.20.3", "1.0.0", "1.45.1", "2.0.0"]) == ["0.20.3", "1.0.0", "1.45.1", "2.0.0"]


def test_partial_search_leaves_unresolved_ranges():
    b = Bisection(VERSIONS, stride=50)
    b.record(b.wanted()[0], Answer("leak", "nested"))
    kinds = [r.kind for r in b.ranges()]
    assert kinds == ["answer", "unresolved"]

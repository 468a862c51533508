"""Which releases to measure next, given the answers so far. Pure: no I/O, no engine.

A `Bisection` walks one ordered list of releases (the *domain*: every release of one package that can
be measured in one line, oldest first). It never runs anything: `wanted()` says which releases to
measure next (and how many times), `record()` takes the answers, until `wanted()` is empty.

The search, in three phases that repeat until nothing is wanted:

1. **Samples.** Both ends, every `stride`-th release, and the releases on both sides of every change of
   major version (where APIs change). Measured once each, all at once (they are independent).
2. **Bisection.** Between two consecutive measured releases whose answers differ (the pair `(scope,
   tracing)`, `unknown` included), measure the middle release; repeat until every such pair is adjacent.
   Every change between two samples is narrowed to two neighbouring releases, whichever answer changed.
3. **Confirmation.** For every boundary of a real answer (below), both neighbouring releases are
   measured `repeats` more times. A release whose repeats disagree with its first answer (in that
   answer) becomes `unknown` there ("flaky"), which moves the boundary outwards: phase 2 narrows the new
   interval and phase 3 confirms the new neighbours.

**What the stride can miss.** Samples `stride` releases apart whose answers agree are not searched in
between: an excursion that starts and ends strictly between two samples (a change that is undone fewer
than `stride` releases later) is missed. Any change that lasts `stride` releases or more is found.

**Releases that cannot answer.** `unknown` (the cell was unsupported, errored, timed out, or its
repeats disagreed) is never a value of an answer. The bisection does narrow the edges of unknown ranges
(they are where a stack starts or stops running, e.g. a crash on import), but a *boundary* of an answer
exists only between two releases that both answered and answered differently. When unknown releases lie
between them, the boundary says so: the change happened somewhere in that range and cannot be located
more precisely by this app.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

DIMENSIONS = ("scope", "tracing")
UNKNOWN = "unknown"
DEFAULT_STRIDE = 8
DEFAULT_REPEATS = 3


@dataclass(frozen=True)
class Answer:
    """What one measurement (one run, or `repeat` runs combined) of one release answered."""

    scope: str
    tracing: str
    verdict: str = ""
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.scope, self.tracing

    def value(self, dimension: str) -> str | None:
        """The answer in one dimension, or None where the release cannot answer it."""
        value = getattr(self, dimension)
        return None if value == UNKNOWN else value


@dataclass(frozen=True)
class Probe:
    """Measure release `index` (`version`) `repeat` times: 1 while searching, `repeats` to confirm."""

    index: int
    version: str
    repeat: int


@dataclass(frozen=True)
class Boundary:
    """A change of one answer: `before` is the last release with the old value, `after` the first with
    the new one (indices into the domain). `between` holds the measured releases in between, which could
    not answer; `unmeasured` counts the releases in between that were never measured (inferred unknown
    because the measured ones on both sides of them are)."""

    dimension: str
    before: int
    after: int
    old: str
    new: str
    between: tuple[int, ...] = ()
    unmeasured: int = 0
    confirmed: bool = False

    @property
    def adjacent(self) -> bool:
        return self.after == self.before + 1


@dataclass(frozen=True)
class Range:
    """Consecutive releases of the domain (indices `first`..`last`) with the same answers. `measured`
    lists the ones measured; the others are inferred from their measured neighbours on both sides.
    kind: `answer` (both ends answered the same), `unknown` (cannot answer) or `unresolved` (never
    measured and between two different answers: only while a search is unfinished)."""

    first: int
    last: int
    key: tuple[str, str] | None
    measured: tuple[int, ...]
    kind: str


def confirmed_answer(first: Answer, repeated: Answer) -> Answer:
    """One release's answer after its confirmation: each dimension stays what the first run said if the
    repeats (already combined: `unknown` where they disagreed among themselves) said the same, else it
    becomes unknown ("flaky")."""
    values = {}
    flaky = []
    for dim in DIMENSIONS:
        a, b = getattr(first, dim), getattr(repeated, dim)
        if a == b:
            values[dim] = a
        else:
            values[dim] = UNKNOWN
            if a != UNKNOWN:
                flaky.append(f"{dim} {a} in the first run, {b} over the repeats")
    if not flaky:
        return Answer(first.scope, first.tracing, repeated.verdict if repeated.verdict == first.verdict else "flaky",
                      first.reason if repeated.verdict == first.verdict else
                      f"verdicts disagree: {first.verdict} then {repeated.verdict}")
    return Answer(values["scope"], values["tracing"], "flaky", "repeats disagree: " + "; ".join(flaky))


@dataclass
class Bisection:
    versions: Sequence[str]
    stride: int = DEFAULT_STRIDE
    anchors: Iterable[str] = ()
    repeats: int = DEFAULT_REPEATS
    first: dict[int, Answer] = field(default_factory=dict)  # one run per release, while searching
    confirmation: dict[int, Answer] = field(default_factory=dict)  # `repeats` runs, combined

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride {self.stride}: must be 1 or more")
        if self.repeats < 1:
            raise ValueError(f"repeats {self.repeats}: must be 1 or more")
        self.versions = tuple(self.versions)
        position = {v: i for i, v in enumerate(self.versions)}
        self._anchors = sorted({position[v] for v in self.anchors if v in position})

    # ---- what is known -------------------------------------------------------------------------

    def answer(self, index: int) -> Answer | None:
        """The release's answer as it stands: the first run's, amended by its confirmation if any."""
        first = self.first.get(index)
        if first is None:
            return None
        repeated = self.confirmation.get(index)
        return first if repeated is None else confirmed_answer(first, repeated)

    def answers(self) -> dict[int, Answer]:
        return {i: a for i in sorted(self.first) if (a := self.answer(i)) is not None}

    def samples(self) -> list[int]:
        n = len(self.versions)
        if n == 0:
            return []
        picked = set(range(0, n, self.stride)) | {n - 1} | set(self._anchors)
        return sorted(picked)

    def open_pairs(self) -> list[tuple[int, int]]:
        """Consecutive measured releases, not neighbours, whose answers differ: still to narrow."""
        answers = self.answers()
        order = sorted(answers)
        return [(a, b) for a, b in zip(order, order[1:]) if b - a > 1 and answers[a].key != answers[b].key]

    def boundaries(self) -> list[Boundary]:
        """Every change of a real answer, per dimension, between the nearest releases that answered."""
        answers = self.answers()
        order = sorted(answers)
        found = []
        for dim in DIMENSIONS:
            known = [i for i in order if answers[i].value(dim) is not None]
            for a, b in zip(known, known[1:]):
                old, new = answers[a].value(dim), answers[b].value(dim)
                if old == new:
                    continue
                between = tuple(i for i in order if a < i < b)
                confirmed = a in self.confirmation and b in self.confirmation
                found.append(Boundary(dim, a, b, str(old), str(new), between, b - a - 1 - len(between), confirmed))
        return found

    def ranges(self) -> list[Range]:
        """The domain cut into runs of releases with the same answers (see Range)."""
        answers = self.answers()
        order = sorted(answers)
        out: list[Range] = []
        group: list[int] = []

        def close() -> None:
            key = answers[group[0]].key
            kind = "unknown" if UNKNOWN in key else "answer"
            out.append(Range(group[0], group[-1], key, tuple(group), kind))

        for i in order:
            if group and answers[group[-1]].key != answers[i].key:
                close()
                if i - group[-1] > 1:
                    out.append(Range(group[-1] + 1, i - 1, None, (), "unresolved"))
                group = []
            group.append(i)
        if group:
            close()
        if out:  # releases before the first / after the last measurement (only while unfinished)
            if out[0].first > 0:
                out.insert(0, Range(0, out[0].first - 1, None, (), "unresolved"))
            if out[-1].last < len(self.versions) - 1:
                out.append(Range(out[-1].last + 1, len(self.versions) - 1, None, (), "unresolved"))
        elif self.versions:
            out.append(Range(0, len(self.versions) - 1, None, (), "unresolved"))
        return out

    # ---- what to measure next ------------------------------------------------------------------

    def wanted(self) -> list[Probe]:
        """The releases to measure next; empty when the search is complete. All probes returned at once
        are independent of each other (they may run in parallel)."""
        missing = [i for i in self.samples() if i not in self.first]
        if missing:
            return [Probe(i, self.versions[i], 1) for i in missing]
        mids = sorted({(a + b) // 2 for a, b in self.open_pairs()})
        if mids:
            return [Probe(i, self.versions[i], 1) for i in mids]
        unconfirmed = sorted({i for b in self.boundaries() for i in (b.before, b.after) if i not in self.confirmation})
        return [Probe(i, self.versions[i], self.repeats) for i in unconfirmed]

    @property
    def done(self) -> bool:
        return not self.wanted()

    def record(self, probe: Probe, answer: Answer) -> None:
        if probe.repeat == 1:
            self.first[probe.index] = answer
        else:
            self.confirmation[probe.index] = answer

    @property
    def runs(self) -> int:
        """App runs spent: one per search measurement, `repeats` per confirmation."""
        return len(self.first) + self.repeats * len(self.confirmation)


def run_bisection(bisection: Bisection, measure: Callable[[str, int], Answer]) -> Bisection:
    """Drive a bisection to the end with a synchronous measure(version, repeat) -> Answer (tests, small
    lines). The runner (runner.py) drives many bisections at once through the engine instead."""
    while True:
        probes = bisection.wanted()
        if not probes:
            return bisection
        for probe in probes:
            bisection.record(probe, measure(probe.version, probe.repeat))


def major_anchors(versions: Sequence[str]) -> list[str]:
    """Both sides of every change of major version (0.x -> 1.0, 1.45 -> 2.0): APIs change there."""
    from packaging.version import Version

    out = []
    for before, after in zip(versions, versions[1:]):
        if Version(before).major != Version(after).major:
            out += [before, after]
    return out

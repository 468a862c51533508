"""Answers from results: the exact cell, the nearest ones and how they differ, fixes checked by their own
cells, the first fixed release, schema-1 results, history.json, stacks that cannot run."""
from __future__ import annotations

from matrix.axes.lock import load_lock
from matrix.axes.spec import load_axes
from matrix.check import inputs
from matrix.check.lookup import answer_model
from matrix.check.models import imply, load_rules, parse_uses
from matrix.check.results import load_results
from matrix.check.stack import build_stack

from .helpers import cell, write_results

AXES = load_axes()
RULES = load_rules(AXES)
LOCK = load_lock()


def answer(results, app, *pins, python="3.12", uses=()):
    stack = build_stack([inputs.read_pins(list(pins))], python, AXES.pythons)
    mapping = imply(stack, RULES, AXES, parse_uses(list(uses), RULES, AXES))
    (model,) = [m for m in mapping.implied if m.app == app]
    return answer_model(model, stack, results, AXES, LOCK)


def results_of(tmp_path, cells, **kwargs):
    return load_results([write_results(str(tmp_path / "r"), cells, **kwargs)], explicit=True)


def test_exact_cell(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated"),
                                    cell("threads/plain/py3.12/sentry-sdk-2.70.0", "leak")])
    got = answer(results, "threads", "sentry-sdk==2.75.0")
    (route,) = got.routes
    assert (got.scope, got.tracing) == ("isolated", "parallel")
    assert route.match.exact and route.match.cell["id"] == "threads/plain/py3.12/sentry-sdk-2.75.0"


def test_nearest_measured_on_both_sides(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated"),
                                    cell("threads/plain/py3.12/sentry-sdk-2.40.0", "isolated"),
                                    cell("threads/plain/py3.9/sentry-sdk-2.74.0", "leak")])
    (route,) = answer(results, "threads", "sentry-sdk==2.74.0").routes
    assert route.scope == "isolated" and not route.match.exact
    assert route.match.cell["id"] == "threads/plain/py3.12/sentry-sdk-2.75.0"
    assert route.match.differs == ["sentry-sdk 2.75.0 instead of your 2.74.0"]
    assert route.match.support.startswith("measured on both sides of yours: sentry-sdk 2.75.0 and sentry-sdk 2.40.0")


def test_sides_disagree_the_closer_one_answers(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.11/sentry-sdk-2.75.0", "isolated"),
                                    cell("threads/plain/py3.11/sentry-sdk-2.0.1", "leak")])
    (route,) = answer(results, "threads", "sentry-sdk==2.74.0", python="3.11").routes
    assert route.scope == "isolated" and route.match.uncertain
    assert "changes between sentry-sdk 2.0.1 (leak) and sentry-sdk 2.75.0 (isolated)" in route.match.support
    (route,) = answer(results, "threads", "sentry-sdk==2.1.0", python="3.11").routes
    assert route.scope == "leak" and route.match.cell["id"].endswith("2.0.1")


def test_sides_disagree_at_equal_distance_is_unknown(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.10/sentry-sdk-2.75.0", "leak"),
                                    cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated")])
    (route,) = answer(results, "threads", "sentry-sdk==2.75.0", python="3.11").routes
    assert route.scope == "unknown" and route.match is None
    assert "changes between Python 3.10 (leak) and Python 3.12 (isolated)" in route.reason and "--run" in route.reason


def test_another_sdk_major_is_no_answer(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated")])
    (route,) = answer(results, "threads", "sentry-sdk==1.45.1").routes
    assert route.scope == "unknown" and "measured sentry-sdk 1.x" in route.reason and "2.75.0" in route.reason


def test_an_exact_cell_that_could_not_answer(tmp_path):
    results = results_of(tmp_path, [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "unknown", "unknown",
                                         verdict="timeout", reason="the barrier ran out of time")])
    (route,) = answer(results, "threads", "sentry-sdk==2.75.0").routes
    assert route.scope == "unknown" and "could not answer (timeout: the barrier ran out of time)" in route.reason


def test_first_fixed_release_and_no_fix_variant(tmp_path):
    pins = "gevent-1.4.0/django-3.0.14/gunicorn-20.0.4"
    results = results_of(tmp_path, [
        cell(f"django-gevent/plain/py3.7/sentry-sdk-0.10.2/{pins}", "leak"),
        cell(f"django-gevent/plain/py3.7/sentry-sdk-0.19.5/{pins}", "isolated"),
        cell(f"django-gevent/plain/py3.7/sentry-sdk-1.45.1/{pins}", "isolated"),
    ])
    got = answer(results, "django-gevent", "django==3.0.14", "gunicorn==20.0.4", "gevent==1.4.0",
                 "sentry-sdk==0.10.2", python="3.7")
    (route,) = got.routes
    assert route.scope == "leak" and route.match.exact and route.fixes == []
    assert route.fixed_in[0].startswith("sentry-sdk 0.19.5: the first measured release that keeps scope data apart")
    assert "sentry-sdk 0.10.2 leaks" in route.fixed_in[0]
    assert got.advice.startswith("Upgrade the SDK")


def test_fixes_checked_by_their_own_cells(tmp_path):
    summary = [{"app": "asyncio", "variant": "asyncio-integration", "scope": "isolated", "advice": "",
                "fix_code": "sentry_sdk.init(integrations=[AsyncioIntegration()])  # from the summary"}]
    results = results_of(tmp_path, [
        cell("asyncio/plain/py3.12/sentry-sdk-2.75.0", "leak", "nested"),
        cell("asyncio/isolation-scope/py3.12/sentry-sdk-2.75.0", "isolated", "nested"),
        cell("asyncio/asyncio-integration/py3.12/sentry-sdk-2.75.0", "isolated"),
        cell("asyncio/hub-clone/py3.12/sentry-sdk-1.45.1", "isolated", "nested"),
    ], summary=summary)
    (route,) = answer(results, "asyncio", "sentry-sdk==2.75.0", uses=["asyncio"]).routes
    assert route.scope == "leak"
    assert [f.variant for f in route.fixes] == ["asyncio-integration", "isolation-scope"]  # hub-clone is for <2
    best = route.fixes[0]
    assert (best.scope, best.tracing, best.match.exact) == ("isolated", "parallel", True)
    assert best.code.endswith("# from the summary")
    assert "isolation_scope()" in route.fixes[1].code  # no summary entry: the app's advice in the axes
    assert route.fixes[0].helps and route.fixes[1].helps  # both stop the leak


def test_a_fix_that_keeps_the_spans_detached_does_not_help(tmp_path):
    results = results_of(tmp_path, [cell("gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0", "isolated", "detached"),
                                    cell("gevent/isolation-scope/py3.12/sentry-sdk-2.75.0/gevent-26.9.0", "isolated",
                                         "detached")])
    (route,) = answer(results, "gevent", "gevent==26.9.0", "sentry-sdk==2.75.0").routes
    assert (route.scope, route.tracing) == ("isolated", "detached")
    assert [(f.variant, f.helps) for f in route.fixes] == [("isolation-scope", False)]


def test_schema_1_results_derive_scope_from_the_verdict(tmp_path):
    results = results_of(tmp_path, [cell("asyncio-gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0", "isolated",
                                         "nested", verdict="nested"),
                                    cell("gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0", "isolated",
                                         "detached", verdict="lost")], schema=1)
    assert results.derived
    by_id = {c["id"]: c for c in results.cells}
    nested = by_id["asyncio-gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0"]
    lost = by_id["gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0"]
    assert (nested["scope"], nested["tracing"], nested["_derived"]) == ("isolated", "nested", True)
    assert (lost["scope"], lost["tracing"]) == ("isolated", "unknown")


def test_history_answers_between_measured_cells(tmp_path):
    history = {"timelines": [{"app": "threads", "variant": "plain", "python": "3.11", "package": "sentry-sdk",
                              "ranges": [{"first": "2.0.0", "last": "2.9.0", "scope": "leak", "tracing": "parallel"},
                                         {"first": "2.10.0", "last": "2.75.0", "scope": "isolated",
                                          "tracing": "parallel"}]}]}
    results = results_of(tmp_path, [cell("threads/plain/py3.11/sentry-sdk-2.75.0", "isolated"),
                                    cell("threads/plain/py3.11/sentry-sdk-2.0.1", "leak")], history=history)
    (route,) = answer(results, "threads", "sentry-sdk==2.74.0", python="3.11").routes
    assert route.scope == "isolated" and "the history says nothing changed between sentry-sdk 2.74.0 and 2.75.0" \
        in route.match.support
    (route,) = answer(results, "threads", "sentry-sdk==2.12.0", python="3.11").routes  # nearest: 2.0.1, a leak
    assert route.scope == "isolated" and "the history measured sentry-sdk 2.10.0..2.75.0" in route.match.support
    (route,) = answer(results, "threads", "sentry-sdk==2.5.0", python="3.11").routes
    assert route.scope == "leak" and "nothing changed between sentry-sdk 2.5.0 and 2.0.1" in route.match.support
    assert route.fixed_in[0].startswith("sentry-sdk 2.10.0 (the history")


def test_a_stack_that_cannot_run(tmp_path):
    results = results_of(tmp_path, [cell("gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0", "isolated")],
                         not_planned=[{"id": "gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-21.1.2", "app": "gevent",
                                       "variant": "plain", "reason": "gevent 21.1.2 ships no wheel for CPython 3.12"}])
    (route,) = answer(results, "gevent", "gevent==21.1.2", "sentry-sdk==2.75.0").routes
    assert route.scope == "unknown"
    assert route.reason == "this stack cannot run: gevent 21.1.2 ships no wheel for CPython 3.12"
    (route,) = answer(results, "gevent", "gevent==1.4.0", "sentry-sdk==2.75.0").routes  # the lock knows this one
    assert route.scope == "unknown" and route.reason.startswith("this stack cannot run: gevent 1.4.0 ships no wheel")


def test_newest_results_file_wins(tmp_path):
    older = write_results(str(tmp_path / "full"), [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "leak")],
                          generated_at="2026-11-01T00:00:00+00:00")
    newer = write_results(str(tmp_path / "default"), [cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated")],
                          generated_at="2026-12-01T00:00:00+00:00")
    results = load_results([older, newer], explicit=True)
    assert [c["scope"] for c in results.cells] == ["isolated"] and len(results.files) == 2

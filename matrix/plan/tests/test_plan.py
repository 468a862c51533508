"""The plan stage: cell ids, planning from the axes and the lock, filters. Pure."""
import copy

import pytest

from matrix.axes.lock import load_lock
from matrix.axes.spec import AxesError, load_axes, parse_axes
from matrix.plan.cells import Cell, CellIdError, parse_cell_id
from matrix.plan.filters import FilterError, parse_filter, select
from matrix.plan.planner import plan_cells

BASE = {
    "python": {"versions": ["3.7", "3.11"]},
    "packages": {"sentry-sdk": {"newest_per_major": True}},
    "apps": {
        "threads": {"python": ">=2.7", "variants": ["plain"], "axes": ["sentry-sdk"],
                    "default": {"python": "all", "sentry-sdk": "all"}},
        "asyncio": {"python": ">=3.6", "variants": ["plain", "@fix"], "axes": ["sentry-sdk"],
                    "default": {"python": ["3.11"], "sentry-sdk": ["newest"]}},
    },
    "variant_aliases": {"fix": {"<2": "hub-clone", ">=2": "isolation-scope"}},
    "cases": [{"claim": "py2", "app": "threads", "python": ["3.7"], "pins": {"sentry-sdk": "1.45.1", "six": "1.16.0"}}],
}
LOCK = {
    "axes": {"sentry-sdk": [{"version": "1.45.1", "why": ["newest 1.x"]}, {"version": "2.75.0", "why": ["newest 2.x"]}]},
    "releases": {"sentry-sdk==2.75.0": {"uploaded": "2026-10-20T00:00:00Z", "unsupported": {"3.7": "needs >=3.8"}},
                 "sentry-sdk==1.45.1": {"uploaded": "2024-07-26T00:00:00Z", "unsupported": {}}},
}
INTERPS = {"3.11"}  # the Python minors the backend can run


def test_cell_id_round_trip():
    cell = Cell("asyncio", "plain", "3.11", (("sentry-sdk", "2.75.0"), ("gevent", "20.4.0")))
    assert cell.id == "asyncio/plain/py3.11/sentry-sdk-2.75.0/gevent-20.4.0"
    assert parse_cell_id(cell.id) == ("asyncio", "plain", "3.11", cell.pins, None)
    routed = Cell("channels", "plain", "3.7", (("sentry-sdk", "1.45.1"),), route="websocket")
    assert routed.id == "channels/plain/py3.7/sentry-sdk-1.45.1/on-websocket"
    assert parse_cell_id(routed.id)[4] == "websocket"


@pytest.mark.parametrize("bad", ["asyncio/plain", "asyncio/plain/3.11/sentry-sdk-2.0.0", "Asyncio/plain/py3.11/sentry-sdk-2",
                                 "asyncio/plain/py3.11/sentry-sdk"])
def test_malformed_cell_id_is_one_line_naming_the_value(bad):
    with pytest.raises(CellIdError) as exc:
        parse_cell_id(bad)
    assert repr(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_committed_axes_and_lock_plan_every_app_and_case():
    axes = load_axes()
    lock = load_lock()
    interps = set(axes.pythons)
    cells = plan_cells(axes, lock, interps)
    assert {c.app for c in cells} == set(axes.apps)
    ids = {c.id for c in cells}
    for case in axes.cases:  # every named case is in the default run
        assert any(c.app == case.app and dict(c.pins) == dict(case.pins) for c in cells), case
    assert len(plan_cells(axes, lock, interps, size="full")) > len(ids)


def test_plan_resolves_aliases_slices_cases_and_unsupported():
    skipped = []
    cells = plan_cells(parse_axes(BASE), LOCK, INTERPS, not_planned=skipped)
    ids = {c.id: c for c in cells}
    assert set(ids) == {
        "threads/plain/py3.7/sentry-sdk-1.45.1",
        "threads/plain/py3.11/sentry-sdk-1.45.1", "threads/plain/py3.11/sentry-sdk-2.75.0",
        "asyncio/plain/py3.11/sentry-sdk-2.75.0", "asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0",
        "threads/plain/py3.7/sentry-sdk-1.45.1/six-1.16.0",
    }
    # a Python this machine lacks stays planned (n/a); a release that cannot install there is not planned
    assert ids["threads/plain/py3.7/sentry-sdk-1.45.1"].unsupported == "Python 3.7 is not installed on this machine"
    assert ids["threads/plain/py3.11/sentry-sdk-1.45.1"].unsupported is None
    assert [(c.id, c.unsupported) for c in skipped] == [("threads/plain/py3.7/sentry-sdk-2.75.0", "needs >=3.8")]


def test_not_applicable_rules_are_not_planned_but_listed():
    data = copy.deepcopy(BASE)
    data["apps"]["asyncio"]["not_applicable"] = [{"variants": ["isolation-scope"], "reason": "known to fail alone"}]
    skipped = []
    ids = {c.id for c in plan_cells(parse_axes(data), LOCK, INTERPS, not_planned=skipped)}
    assert "asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0" not in ids
    assert ("asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0", "known to fail alone") in [(c.id, c.unsupported) for c in skipped]


def test_a_slice_version_missing_from_the_lock_is_named():
    data = copy.deepcopy(BASE)
    data["apps"]["asyncio"]["default"]["sentry-sdk"] = ["1.2.3"]
    with pytest.raises(AxesError, match=r"'1\.2\.3' is not among the locked sentry-sdk versions \(1\.45\.1, 2\.75\.0\)"):
        plan_cells(parse_axes(data), LOCK, INTERPS)


def test_filters_select_and_reject_unknown_values():
    cells = plan_cells(parse_axes(BASE), LOCK, INTERPS)
    only = [parse_filter("app=asyncio", cells), parse_filter("sentry-sdk=2.75.0", cells)]
    chosen = select(cells, only, [parse_filter("variant=plain", cells)])
    assert [c.id for c in chosen] == ["asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0"]
    verdicts = {"asyncio/plain/py3.11/sentry-sdk-2.75.0": "leak"}
    assert [c.id for c in select(cells, [parse_filter("verdict=leak", cells)], [], verdicts)] == list(verdicts)
    with pytest.raises(FilterError, match="unknown filter key 'colour'"):
        parse_filter("colour=red", cells)
    with pytest.raises(FilterError, match=r"app='django' matches no planned cell; allowed: asyncio, threads"):
        parse_filter("app=django", cells)
    with pytest.raises(FilterError, match="is not key=value"):
        parse_filter("asyncio", cells)

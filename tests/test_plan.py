"""The pure front of the pipeline: cell ids, the axes file, planning and filters."""
import pytest

from matrix.axes import AxesError, load_axes, parse_axes
from matrix.cells import Cell, CellIdError, parse_cell_id
from matrix.interpreters import Interpreter
from matrix.plan import FilterError, parse_filter, plan_cells, select

BASE = {
    "python": {"versions": ["3.7", "3.11"]},
    "packages": {"sentry-sdk": {"versions": ["1.45.1", "2.75.0"]}},
    "apps": {
        "threads": {"python": ">=2.7", "variants": ["plain"], "axes": ["sentry-sdk"]},
        "asyncio": {"python": ">=3.6", "variants": ["plain", "@fix"], "axes": ["sentry-sdk"]},
    },
    "variant_aliases": {"fix": {"<2": "hub-clone", ">=2": "isolation-scope"}},
}
INTERPS = {"3.11": Interpreter("3.11", "3.11.7", "/x/python3.11")}


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


def test_committed_axes_file_loads():
    axes = load_axes()
    assert "threads" in axes.apps and "asyncio" in axes.apps


def test_plan_resolves_aliases_and_marks_missing_pythons_unsupported():
    cells = plan_cells(parse_axes(BASE), INTERPS)
    ids = {c.id: c for c in cells}
    assert "asyncio/hub-clone/py3.11/sentry-sdk-1.45.1" in ids
    assert "asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0" in ids
    assert "asyncio/hub-clone/py3.11/sentry-sdk-2.75.0" not in ids
    assert ids["threads/plain/py3.7/sentry-sdk-1.45.1"].unsupported == "Python 3.7 is not installed on this machine"
    assert ids["threads/plain/py3.11/sentry-sdk-1.45.1"].unsupported is None
    assert len(cells) == 2 * 2 * (1 + 2)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["apps"].update({"nope": {"variants": ["plain"]}}), "apps.nope: unknown app id"),
    (lambda d: d["packages"]["sentry-sdk"].update({"versions": ["two"]}), "'two' is not a version"),
    (lambda d: d["python"].update({"versions": ["3"]}), "'3' is not a minor version"),
    (lambda d: d["apps"]["asyncio"].update({"python": "~~3"}), "not a PEP 440 specifier"),
    (lambda d: d["apps"]["asyncio"].update({"variants": ["@missing"]}), "names no [variant_aliases.missing]"),
    (lambda d: d.update({"extra": 1}), "unknown top-level key"),
])
def test_bad_axes_entries_get_one_line_errors(mutate, needle):
    import copy

    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(AxesError) as exc:
        parse_axes(data)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_filters_select_and_reject_unknown_values():
    cells = plan_cells(parse_axes(BASE), INTERPS)
    only = [parse_filter("app=asyncio", cells), parse_filter("sentry-sdk=2.75.0", cells)]
    chosen = select(cells, only, [parse_filter("python=3.7", cells)])
    assert {c.id for c in chosen} == {"asyncio/plain/py3.11/sentry-sdk-2.75.0",
                                      "asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0"}
    verdicts = {"asyncio/plain/py3.11/sentry-sdk-2.75.0": "leak"}
    assert [c.id for c in select(cells, [parse_filter("verdict=leak", cells)], [], verdicts)] == list(verdicts)
    with pytest.raises(FilterError, match="unknown filter key 'colour'"):
        parse_filter("colour=red", cells)
    with pytest.raises(FilterError, match=r"app='django' matches no planned cell; allowed: asyncio, threads"):
        parse_filter("app=django", cells)
    with pytest.raises(FilterError, match="is not key=value"):
        parse_filter("asyncio", cells)

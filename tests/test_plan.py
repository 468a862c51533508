"""The pure front of the pipeline: cell ids, the axes file, policies, planning and filters."""
import copy
from datetime import datetime, timezone

import pytest

from matrix.axes import AxesError, load_axes, parse_axes
from matrix.cells import Cell, CellIdError, parse_cell_id
from matrix.interpreters import Interpreter
from matrix.lock import load_lock
from matrix.plan import FilterError, parse_filter, plan_cells, select
from matrix.policies import PolicyError, candidates, select as select_versions
from matrix.releases import Release, python_support

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


def test_committed_axes_and_lock_plan_every_app_and_case():
    axes = load_axes()
    lock = load_lock()
    interps = {m: Interpreter(m, m + ".0", "/x") for m in axes.pythons}
    cells = plan_cells(axes, lock, interps)
    assert {c.app for c in cells} == set(axes.apps)
    ids = {c.id for c in cells}
    for case in axes.cases:  # every named case is in the default run
        assert any(c.app == case.app and dict(c.pins) == dict(case.pins) for c in cells), case
    assert len(plan_cells(axes, lock, interps, size="full")) > len(ids)


def test_plan_resolves_aliases_slices_cases_and_unsupported():
    cells = plan_cells(parse_axes(BASE), LOCK, INTERPS)
    ids = {c.id: c for c in cells}
    assert set(ids) == {
        "threads/plain/py3.7/sentry-sdk-1.45.1", "threads/plain/py3.7/sentry-sdk-2.75.0",
        "threads/plain/py3.11/sentry-sdk-1.45.1", "threads/plain/py3.11/sentry-sdk-2.75.0",
        "asyncio/plain/py3.11/sentry-sdk-2.75.0", "asyncio/isolation-scope/py3.11/sentry-sdk-2.75.0",
        "threads/plain/py3.7/sentry-sdk-1.45.1/six-1.16.0",
    }
    assert ids["threads/plain/py3.7/sentry-sdk-1.45.1"].unsupported == "Python 3.7 is not installed on this machine"
    assert ids["threads/plain/py3.11/sentry-sdk-1.45.1"].unsupported is None
    interps = dict(INTERPS, **{"3.7": Interpreter("3.7", "3.7.16", "/x/python3.7")})
    again = {c.id: c for c in plan_cells(parse_axes(BASE), LOCK, interps)}
    assert again["threads/plain/py3.7/sentry-sdk-2.75.0"].unsupported == "needs >=3.8"


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["apps"].update({"nope": {"variants": ["plain"]}}), "apps.nope: unknown app id"),
    (lambda d: d["packages"]["sentry-sdk"].update({"include": ["two"]}), "'two': not a version"),
    (lambda d: d["packages"]["sentry-sdk"].update({"newest": "yes"}), "expected true or false"),
    (lambda d: d["packages"]["sentry-sdk"].update({"latest": True}), "unknown key(s) ['latest']"),
    (lambda d: d["python"].update({"versions": ["3"]}), "'3' is not a minor version"),
    (lambda d: d["apps"]["asyncio"].update({"python": "~~3"}), "not a PEP 440 specifier"),
    (lambda d: d["apps"]["asyncio"].update({"variants": ["@missing"]}), "names no [variant_aliases.missing]"),
    (lambda d: d["apps"]["asyncio"]["default"].update({"sentry-sdk": ["latest"]}), "'latest' is not a version, 'newest' or 'oldest'"),
    (lambda d: d["cases"][0].update({"app": "django"}), "cases[0].app = 'django'"),
    (lambda d: d.update({"extra": 1}), "unknown top-level key"),
])
def test_bad_axes_entries_get_one_line_errors(mutate, needle):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(AxesError) as exc:
        parse_axes(data)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


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


def _rel(version, files=("x-py3-none-any.whl",), yanked=False, requires=None):
    return Release("x", version, datetime(2020, 1, 1, tzinfo=timezone.utc), requires, yanked, tuple(files))


def test_policies_pick_from_real_looking_release_data():
    rels = [_rel(v) for v in ("0.9.0", "0.9.5", "0.10.0", "0.10.2", "1.0.0", "1.0.1", "1.3.0", "2.0.0rc1", "2.0.0", "2.1.0")]
    rels.append(_rel("2.2.0", yanked=True))
    assert [r.version for r in candidates(rels)] == ["0.9.5", "0.10.2", "1.0.1", "1.3.0", "2.0.0", "2.1.0"]
    picks = {p.version: p.why for p in select_versions(
        "x", {"newest_per_major": True, "around": ["0.10.0"], "include": ["1.0.0"], "min": "0.9.0"}, rels)}
    assert picks == {"0.9.5": ("last before 0.10.0",), "0.10.2": ("newest 0.x", "first at/after 0.10.0"),
                     "1.0.0": ("named in the axes",), "1.3.0": ("newest 1.x",), "2.1.0": ("newest 2.x",)}
    with pytest.raises(PolicyError, match=r"include: '9.9.9' is not a release on PyPI"):
        select_versions("x", {"include": ["9.9.9"]}, rels)


def test_python_support_from_requires_python_and_wheel_tags():
    files = ("g-20.4.0-cp37-cp37m-manylinux2010_x86_64.whl", "g-20.4.0-cp38-cp38-win32.whl", "g-20.4.0.tar.gz")
    wheels_only = Release("gevent", "20.4.0", datetime(2020, 4, 22, tzinfo=timezone.utc), None, False, files)
    assert python_support(wheels_only, "3.7") is None
    assert "ships no wheel for CPython 3.8" in python_support(wheels_only, "3.8")
    assert python_support(_rel("20.4.0", files=files), "3.8") is None  # may still build from its sdist
    assert python_support(_rel("1.0", requires=">=3.8"), "3.7") == "x 1.0 requires Python >=3.8"
    assert python_support(_rel("1.0", files=("x-1.0.tar.gz",)), "3.13") is None


def test_install_steps_are_era_consistent():
    from matrix.envs import InstallStep, install_steps

    cutoffs = {"sentry-sdk==2.75.0": "2026-10-22T00:00:00Z", "gevent==20.4.0": "2020-04-24T00:00:00Z",
               "eventlet==0.33.3": "2023-01-20T00:00:00Z"}
    steps = install_steps(["sentry-sdk==2.75.0", "gevent==20.4.0"], ["gunicorn"], cutoffs)
    # oldest pin first; the framework pin carries the unpinned requirements, in its own era
    assert steps == [InstallStep(("gevent==20.4.0", "gunicorn"), "2020-04-24T00:00:00Z"),
                     InstallStep(("sentry-sdk==2.75.0",), "2026-10-22T00:00:00Z")]
    only_sdk = install_steps(["sentry-sdk==2.75.0"], ["django"], cutoffs)
    assert only_sdk == [InstallStep(("sentry-sdk==2.75.0", "django"), "2026-10-22T00:00:00Z")]
    newest_framework = install_steps(["sentry-sdk==2.75.0", "gevent==20.4.0", "eventlet==0.33.3"], ["gunicorn<26"], cutoffs)
    assert newest_framework[1] == InstallStep(("eventlet==0.33.3", "gunicorn<26"), "2023-01-20T00:00:00Z")


def test_no_step_resolves_before_its_interpreter_existed():
    from matrix.envs import InstallStep, install_steps

    steps = install_steps(["sentry-sdk==0.19.5"], [], {"sentry-sdk==0.19.5": "2020-12-09T00:00:00Z"},
                          floor="2023-10-02T00:00:00Z")
    assert steps == [InstallStep(("sentry-sdk==0.19.5",), "2023-10-02T00:00:00Z")]

"""The axes stage: the axes file's validation, version policies and what a release supports. Pure."""
import copy
from datetime import datetime, timezone

import pytest

from matrix.axes.policies import PolicyError, candidates, select as select_versions
from matrix.axes.releases import Release, python_support
from matrix.axes.spec import AxesError, parse_axes
from matrix.plan.tests.test_plan import BASE


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["apps"].update({"nope": {"variants": ["plain"]}}), "apps.nope: no apps/nope/app.py"),
    (lambda d: d["packages"]["sentry-sdk"].update({"include": ["two"]}), "'two': not a version"),
    (lambda d: d["packages"]["sentry-sdk"].update({"newest": "yes"}), "expected true or false"),
    (lambda d: d["packages"]["sentry-sdk"].update({"latest": True}), "unknown key(s) ['latest']"),
    (lambda d: d["python"].update({"versions": ["3"]}), "'3' is not a minor version"),
    (lambda d: d["apps"]["asyncio"].update({"python": "~~3"}), "not a PEP 440 specifier"),
    (lambda d: d["apps"]["asyncio"].update({"variants": ["@missing"]}), "names no [variant_aliases.missing]"),
    (lambda d: d["apps"]["asyncio"]["default"].update({"sentry-sdk": ["latest"]}), "'latest' is not a version, 'newest' or 'oldest'"),
    (lambda d: d["cases"][0].update({"app": "django"}), "cases[0].app = 'django'"),
    (lambda d: d.update({"extra": 1}), "unknown top-level key"),
    (lambda d: d["apps"]["asyncio"].update({"arrival": "staggered"}),
     "apps.asyncio.arrival = 'staggered': allowed: together, in-turn"),
])
def test_bad_axes_entries_get_one_line_errors(mutate, needle):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(AxesError) as exc:
        parse_axes(data)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


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

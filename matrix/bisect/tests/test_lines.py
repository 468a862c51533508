"""Lines: patterns, the releases a line measures and why the others are not, the history's lines. No network:
release data is a fixed fake."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from matrix.axes.releases import Release
from matrix.axes.spec import load_axes
from matrix.bisect import lines as L

AXES = load_axes()


def _rel(name, version, files=None, requires=None, yanked=False):
    files = files or (f"{name.replace('-', '_')}-{version}-py2.py3-none-any.whl",)
    return Release(name, version, datetime(2020, 1, 1, tzinfo=timezone.utc), requires, yanked, tuple(files))


FAKE = {
    "sentry-sdk": [_rel("sentry-sdk", v) for v in ("0.19.5", "1.9.0", "1.10.0", "1.45.1", "2.0.0rc1", "2.0.0", "2.26.0",
                                                   "2.26.1")]
    + [_rel("sentry-sdk", "2.27.0", yanked=True), _rel("sentry-sdk", "2.28.0", requires=">=3.8")],
    "gevent": [_rel("gevent", "1.0.0", files=("gevent-1.0.0.tar.gz",)),
               _rel("gevent", "20.9.0", files=("gevent-20.9.0-cp37-cp37m-manylinux2010_x86_64.whl", "gevent-20.9.0.tar.gz")),
               _rel("gevent", "26.9.0", files=("gevent-26.9.0-cp313-cp313-manylinux_2_28_x86_64.whl",))],
    "twisted": [_rel("twisted", "23.8.0", requires=">=3.7.1"), _rel("twisted", "24.3.0", requires=">=3.8")],
    "channels": [_rel("channels", v) for v in ("2.4.0", "4.0.0")],
    "eventlet": [_rel("eventlet", v) for v in ("0.25.2", "0.38.2")],
    "aiohttp": [_rel("aiohttp", v) for v in ("3.8.6", "3.14.5")],
    "tornado": [_rel("tornado", v) for v in ("6.2", "6.6.1")],
}


def _from_lock(name):
    """Any other package of the axes (celery, fastapi, ...): the releases the committed lock records for it,
    with no Python bound, so the history's lines cover every app without the network."""
    from matrix.axes.lock import load_lock

    pinned = [key.split("==", 1)[1] for key in load_lock()["releases"] if key.split("==", 1)[0] == name]
    return [_rel(name, v) for v in sorted(pinned, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))]


def releases_of(name):
    return FAKE.get(name) or _from_lock(name)


@pytest.fixture(autouse=True)
def interpreters(monkeypatch):
    monkeypatch.setattr(L, "INTERPRETERS", {"3.7": "3.7.16", "3.13": "3.13.0"})


def test_pattern_with_an_open_sdk_fills_the_apps_other_packages_with_their_newest_for_that_python():
    line = L.parse_line("gevent/@scope-fix/py3.7/sentry-sdk-*", AXES, releases_of=releases_of)
    assert line.id == "gevent/@scope-fix/py3.7/sentry-sdk-*/gevent-20.9.0"  # 26.9.0 has no cp37 wheel
    assert line.package == "sentry-sdk" and line.fixed == {"gevent": "20.9.0"}
    assert line.cell(AXES, "1.45.1").variant == "hub-clone"
    assert line.cell(AXES, "2.0.0").variant == "isolation-scope"
    assert line.cell(AXES, "2.0.0").id == "gevent/isolation-scope/py3.7/sentry-sdk-2.0.0/gevent-20.9.0"


def test_package_option_opens_a_pinned_package_and_requires_python_uses_the_installed_patch_release():
    line = L.parse_line("twisted/plain/py3.7/sentry-sdk-2.0.0", AXES, package="twisted", releases_of=releases_of)
    assert line.id == "twisted/plain/py3.7/sentry-sdk-2.0.0/twisted-*"
    versions = dict(L.domain(line, AXES, releases_of))
    assert versions["23.8.0"] is None  # >=3.7.1: 3.7.16 is installed
    assert "requires Python >=3.8" in versions["24.3.0"]


def test_domain_drops_yanked_and_pre_releases_and_says_why_it_measures_no_other():
    line = L.parse_line("asyncio/asyncio-integration/py3.7/sentry-sdk-*", AXES, releases_of=releases_of)
    got = dict(L.domain(line, AXES, releases_of))
    assert list(got) == ["0.19.5", "1.9.0", "1.10.0", "1.45.1", "2.0.0", "2.26.0", "2.26.1", "2.28.0"]
    assert "AsyncioIntegration first shipped in sentry-sdk 1.10.0" in got["1.9.0"]
    assert got["1.10.0"] is None and got["2.26.1"] is None
    assert "requires Python >=3.8" in got["2.28.0"]
    gevent = L.parse_line("gevent/plain/py3.7/sentry-sdk-2.0.0/gevent-*", AXES, releases_of=releases_of)
    reasons = dict(L.domain(gevent, AXES, releases_of))
    assert "ships no wheel" in reasons["1.0.0"] and reasons["20.9.0"] is None and "no wheel" in reasons["26.9.0"]
    assert [v for v, _ in L.domain(line, AXES, releases_of, low="1.10.0", high="2.0.0")] == ["1.10.0", "1.45.1", "2.0.0"]


@pytest.mark.parametrize("pattern, needle", [
    ("threads/plain/py3.12/sentry-sdk-2.0.0", "leave one package open"),
    ("gevent/plain/py3.12/sentry-sdk-*/gevent-*", "exactly one package open"),
    ("nope/plain/py3.12/sentry-sdk-*", "unknown app 'nope'"),
    ("channels/plain/py3.12/sentry-sdk-*", "needs a route"),
    ("threads/@nothing/py3.12/sentry-sdk-*", "no [variant_aliases.nothing]"),
    ("threads/plain/sentry-sdk-*", "malformed cell id"),
])
def test_bad_patterns_get_one_line(pattern, needle):
    with pytest.raises(L.LineError) as exc:
        L.parse_line(pattern, AXES, releases_of=releases_of)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_fix_variants_are_the_ones_with_code_in_the_advice():
    assert L.fix_variants(AXES.apps["asyncio"], AXES) == ["asyncio-integration", "@scope-fix"]
    assert L.fix_variants(AXES.apps["gevent"], AXES) == ["@scope-fix"]  # sdk-first is not a fix
    assert L.fix_variants(AXES.apps["threads"], AXES) == []


def test_history_lines_newest_python_and_37_sdk_lines_first_then_packages_with_two_sdks():
    lines = L.history_lines(AXES, ["3.7", "3.13"], releases_of=releases_of)
    ids = [line.id for line in lines]
    assert "threads/plain/py3.13/sentry-sdk-*" in ids and "threads/plain/py3.7/sentry-sdk-*" in ids
    assert "channels/asgi-middleware/py3.13/sentry-sdk-*/channels-4.0.0/on-websocket" in ids
    assert "gevent/@scope-fix/py3.7/sentry-sdk-2.26.1/gevent-*" in ids  # the newest SDK for 3.7 (2.28 needs 3.8)
    assert "gevent/plain/py3.13/sentry-sdk-1.45.1/gevent-*" in ids
    assert not [i for i in ids if "sdk-first" in i]
    first_package = next(n for n, line in enumerate(lines) if line.package != "sentry-sdk")
    assert all(line.package == "sentry-sdk" for line in lines[:first_package])
    assert len(ids) == len(set(ids))
    assert L.select_lines(lines, ["app=threads"], []) == [line for line in lines if line.app == "threads"]
    assert [x.id for x in L.select_lines(lines, ["line=twisted/plain/py3.7/*"], [])] == [
        "twisted/plain/py3.7/sentry-sdk-*/twisted-23.8.0", "twisted/plain/py3.7/sentry-sdk-2.26.1/twisted-*",
        "twisted/plain/py3.7/sentry-sdk-1.45.1/twisted-*"]
    with pytest.raises(L.LineError, match="select no line"):
        L.select_lines(lines, ["app=nope"], [])

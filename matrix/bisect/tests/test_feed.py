"""Boundaries feed the axes: boundaries_from_history in a policy -> the lock's picks and `boundaries` -> planned
cells in every run size. No network: release data is faked."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from matrix.axes import lock as lock_mod
from matrix.axes import releases as releases_mod
from matrix.axes.policies import PolicyError, history_boundaries, select
from matrix.axes.releases import Release
from matrix.axes.spec import parse_axes
from matrix.plan.planner import plan_cells
from matrix.plan.tests.test_plan import BASE, LOCK


def _side(version, variant):
    return {"version": version, "variant": variant, "cell": f"x/{variant}/py3.11/sentry-sdk-{version}"}


HISTORY = {"lines": [
    {"line": "threads/plain/py3.11/sentry-sdk-*", "app": "threads", "variant": "plain", "python": "3.11",
     "package": "sentry-sdk", "fixed": {}, "pins": [["sentry-sdk", "*"]], "boundaries": [
         {"dimension": "scope", "from": "leak", "to": "isolated", "confirmed": True,
          "before": _side("2.26.0", "plain"), "after": _side("2.26.1", "plain")},
         {"dimension": "tracing", "from": "nested", "to": "parallel", "confirmed": True,
          "before": _side("2.26.0", "plain"), "after": _side("2.26.1", "plain")},
         {"dimension": "scope", "from": "isolated", "to": "leak", "confirmed": False,
          "before": _side("0.5.0", "plain"), "after": _side("0.6.0", "plain")}]},
    {"line": "asyncio/@fix/py3.11/sentry-sdk-*", "app": "asyncio", "variant": "@fix", "python": "3.11",
     "package": "sentry-sdk", "fixed": {}, "boundaries": [
         {"dimension": "scope", "from": "leak", "to": "isolated", "confirmed": True,
          "before": _side("1.45.1", "hub-clone"), "after": _side("2.0.0", "isolation-scope")}]},
    {"line": "gevent/plain/py3.11/sentry-sdk-2.75.0/gevent-*", "app": "gevent", "variant": "plain", "python": "3.11",
     "package": "gevent", "fixed": {"sentry-sdk": "2.75.0"}, "boundaries": [
         {"dimension": "scope", "from": "leak", "to": "isolated", "confirmed": True,
          "before": _side("20.6.0", "plain"), "after": _side("20.9.0", "plain")}]},
]}


def _rel(version):
    return Release("sentry-sdk", version, datetime(2024, 1, 1, tzinfo=timezone.utc), None, False,
                   (f"sentry_sdk-{version}-py3-none-any.whl",))


RELEASES = [_rel(v) for v in ("0.5.0", "0.6.0", "1.45.0", "1.45.1", "2.0.0", "2.26.0", "2.26.1", "2.75.0")]


def test_history_boundaries_take_both_sides_of_confirmed_boundaries_once_with_the_lines_pins():
    cells = history_boundaries(HISTORY, "sentry-sdk")
    got = {(c.app, c.variant, c.python, c.pins) for c in cells}
    assert got == {("threads", "plain", "3.11", (("sentry-sdk", "2.26.0"),)),
                   ("threads", "plain", "3.11", (("sentry-sdk", "2.26.1"),)),
                   ("asyncio", "hub-clone", "3.11", (("sentry-sdk", "1.45.1"),)),
                   ("asyncio", "isolation-scope", "3.11", (("sentry-sdk", "2.0.0"),))}  # 0.5/0.6: not confirmed
    (gevent_before, _) = sorted(history_boundaries(HISTORY, "gevent"), key=lambda c: c.version)
    assert gevent_before.pins == (("sentry-sdk", "2.75.0"), ("gevent", "20.6.0"))
    assert "last before scope leak->isolated in threads/plain/py3.11/sentry-sdk-*" in cells[0].why


def test_the_policy_takes_exact_releases_not_the_newest_patch_of_their_minor():
    policy = {"newest": True, "boundaries_from_history": True}
    sides = [(c.version, c.why) for c in history_boundaries(HISTORY, "sentry-sdk")]
    picks = [p.version for p in select("sentry-sdk", policy, RELEASES, sides)]
    assert picks == ["1.45.1", "2.0.0", "2.26.0", "2.26.1", "2.75.0"]
    assert [p.version for p in select("sentry-sdk", {"newest": True}, RELEASES, sides)] == ["2.75.0"]
    with pytest.raises(PolicyError, match="expected true or false"):
        select("sentry-sdk", {"boundaries_from_history": "yes"}, RELEASES)


def test_build_lock_lists_the_sides_as_cells_and_the_planner_plans_them_in_the_default_size(monkeypatch):
    monkeypatch.setattr(releases_mod, "releases", lambda name, refresh=False: RELEASES)
    monkeypatch.setattr(releases_mod, "release", lambda name, version: _rel(version))
    raw = copy.deepcopy(BASE)
    raw["packages"]["sentry-sdk"]["boundaries_from_history"] = True
    lock = lock_mod.build_lock(raw, refresh=False, history=HISTORY)
    assert "2.26.0" in [p["version"] for p in lock["axes"]["sentry-sdk"]]
    assert {tuple(map(tuple, c["pins"])) for c in lock["boundaries"] if c["app"] == "threads"} == {
        (("sentry-sdk", "2.26.0"),), (("sentry-sdk", "2.26.1"),)}
    assert "sentry-sdk==2.26.1" in lock["releases"]
    cells = {c.id for c in plan_cells(parse_axes(raw), lock, {"3.7", "3.11"})}
    assert {"threads/plain/py3.11/sentry-sdk-2.26.0", "threads/plain/py3.11/sentry-sdk-2.26.1",
            "asyncio/hub-clone/py3.11/sentry-sdk-1.45.1", "asyncio/isolation-scope/py3.11/sentry-sdk-2.0.0"} <= cells
    raw["packages"]["sentry-sdk"]["min"] = "2.0.0"  # the axis' floor holds for the boundaries too
    floored = lock_mod.build_lock(raw, refresh=False, history=HISTORY)
    assert {c["pins"][0][1] for c in floored["boundaries"]} == {"2.0.0", "2.26.0", "2.26.1"}
    # --only another package keeps the boundaries the previous lock had
    again = lock_mod.build_lock(raw, refresh=False, only={"gevent"}, previous=lock, history={})
    assert again["boundaries"] == lock["boundaries"]
    # without the policy, the committed lock's plan is unchanged
    assert plan_cells(parse_axes(BASE), LOCK, {"3.11"}) == plan_cells(parse_axes(BASE), dict(LOCK, boundaries=[]), {"3.11"})

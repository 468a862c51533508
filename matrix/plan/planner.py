"""Plan the cells: axes x lock x the Pythons a backend can run -> [Cell]. Pure functions, no I/O."""
from __future__ import annotations

import itertools
from typing import Any, Collection, Mapping

from packaging.version import Version

from ..axes.lock import LockError, release_info
from ..axes.spec import AppAxes, Axes, AxesError, Slice
from .cells import Cell, unpinned

def _locked_versions(lock: Mapping[str, Any], axis: str) -> list[str]:
    versions = [entry["version"] for entry in lock.get("axes", {}).get(axis, [])]
    if not versions:
        raise LockError(f"the lock has no versions for {axis!r}: run `nox -s update-axes`")
    return versions


def _chosen(app: str, size: str, axis: str, wanted: tuple[str, ...] | None, locked: list[str]) -> list[str]:
    if wanted is None:
        return locked
    out = []
    for value in wanted:
        version = locked[-1] if value == "newest" else locked[0] if value == "oldest" else value
        if version not in locked:
            raise AxesError(f"apps.{app}.{size}.{axis}: {value!r} is not among the locked {axis} versions "
                            f"({', '.join(locked)}); add it to packages.{axis}.include and run `nox -s update-axes`")
        out.append(version)
    return out


def _cannot_install(python: str, pins: tuple[tuple[str, str], ...], lock: Mapping[str, Any]) -> str | None:
    """Why the lock says a pin cannot install on this Python (requires_python, wheel tags), if it does."""
    for name, version in pins:
        info = release_info(lock, name, version) or {}
        reason = info.get("unsupported", {}).get(python)
        if reason:
            return reason
    return None


def _not_applicable(app: AppAxes, variant: str, python: str, route: str | None,
                    pins: tuple[tuple[str, str], ...]) -> str | None:
    """The reason an apps.X.not_applicable rule gives for this cell, if one matches."""
    versions = dict(pins)
    for rule in app.not_applicable:
        if rule.route is not None and rule.route != route:
            continue
        if rule.variants is not None and variant not in rule.variants:
            continue
        if rule.python is not None and Version(python) not in rule.python:
            continue
        if all(name in versions and Version(versions[name]) in spec for name, spec in rule.packages):
            return rule.reason
    return None


def _concrete(axes: Axes, app: AppAxes) -> set[str]:
    """Every concrete variant name the app runs (its @aliases resolved for any SDK)."""
    return {name for v in app.variants
            for name in ([n for _, n in axes.variant_aliases[v[1:]]] if v.startswith("@") else [v])}


def plan_cells(axes: Axes, lock: Mapping[str, Any], available: Collection[str],
               size: str = "default", backend: str = "venv", not_planned: list[Cell] | None = None) -> list[Cell]:
    """Every cell of this run size, in a stable order, without duplicates. `available` holds the
    Python minors the backend can run.

    A combination that cannot run is not planned: the lock says a pin has no release for that Python
    (requires_python, wheel tags), or an apps.<id>.not_applicable rule records a known failure of
    the stack on its own. Such cells go to `not_planned` (with the reason in `unsupported`), so the
    report can list them. A Python this machine lacks stays planned, as `unsupported`."""
    cells: dict[str, Cell] = {}
    skipped: dict[str, Cell] = {}

    def add(app: AppAxes, python: str, pins: tuple[tuple[str, str], ...], variants: tuple[str, ...]) -> None:
        sdk = dict(pins)["sentry-sdk"]
        cannot = _cannot_install(python, pins, lock)
        missing = None if python in available else f"Python {python} is not installed on this machine"
        for variant in variants:
            concrete = axes.resolve_variant(variant, sdk)
            if concrete is None:
                continue
            for route in app.routes or (None,):
                probe = app.memory if app.memory and (app.memory.routes is None or route in app.memory.routes) else None
                rule = cannot or _not_applicable(app, concrete, python, route, pins)
                cell = Cell(app.app, concrete, python, pins, backend, unsupported=rule or missing,
                            requires=unpinned(app.requires, pins), route=route, memory=probe,
                            system=app.system, arrival=app.arrival)
                (skipped if rule else cells).setdefault(cell.id, cell)

    for app in axes.apps.values():
        chosen = app.slices.get(size) or (
            None if size == "full" else Slice(None, {axis: ("newest",) for axis in app.axes}))
        pythons = [p for p in axes.pythons if Version(p) in app.python
                   and (chosen is None or chosen.python is None or p in chosen.python)]
        per_axis = [_chosen(app.app, size, axis, chosen.versions.get(axis) if chosen else None,
                            _locked_versions(lock, axis)) for axis in app.axes]
        variants = (chosen.variants if chosen and chosen.variants else None) or app.variants
        for python in pythons:
            for versions in itertools.product(*per_axis):
                add(app, python, tuple(zip(app.axes, versions)), variants)
    for case in axes.cases:
        app = axes.apps[case.app]
        pins = tuple(sorted(case.pins, key=lambda pin: pin[0] != "sentry-sdk"))
        for python in case.pythons:
            add(app, python, pins, case.variants or app.variants)
    for side in lock.get("boundaries", []):  # both sides of every boundary `nox -s history` found (policies.py)
        app = axes.apps.get(side["app"])
        if app is not None and side["variant"] in _concrete(axes, app):
            add(app, side["python"], tuple((n, v) for n, v in side["pins"]), (side["variant"],))
    if not_planned is not None:
        not_planned.extend(c for c in skipped.values() if c.id not in cells)
    return list(cells.values())

"""Plan the cells: axes x interpreters -> [Cell]. Pure functions, no I/O.

Also the --only/--exclude filters (key=value[,value...]) that select cells by app, variant,
python, a package version, or the verdict a previous run gave them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from packaging.version import Version

from .axes import AppAxes, Axes, AxesError, Slice
from .cells import Cell, unpinned
from .interpreters import Interpreter
from .lock import LockError, release_info

FILTER_KEYS = ("app", "variant", "python", "route", "verdict")


class FilterError(ValueError):
    """A one-line complaint about an --only/--exclude expression."""


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


def _unsupported(python: str, pins: tuple[tuple[str, str], ...], lock: Mapping[str, Any],
                 interpreters: Mapping[str, Interpreter]) -> str | None:
    if python not in interpreters:
        return f"Python {python} is not installed on this machine"
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


def plan_cells(axes: Axes, lock: Mapping[str, Any], interpreters: Mapping[str, Interpreter],
               size: str = "default", backend: str = "venv") -> list[Cell]:
    """Every cell of this run size, in a stable order, without duplicates. Cells that cannot run
    here carry `unsupported` with the reason (interpreter missing, no release for that Python)."""
    cells: dict[str, Cell] = {}

    def add(app: AppAxes, python: str, pins: tuple[tuple[str, str], ...], variants: tuple[str, ...]) -> None:
        sdk = dict(pins)["sentry-sdk"]
        reason = _unsupported(python, pins, lock, interpreters)
        for variant in variants:
            concrete = axes.resolve_variant(variant, sdk)
            if concrete is None:
                continue
            for route in app.routes or (None,):
                probe = app.memory if app.memory and (app.memory.routes is None or route in app.memory.routes) else None
                cell = Cell(app.app, concrete, python, pins, backend, unsupported=reason or _not_applicable(app, concrete, python, route, pins),
                            requires=unpinned(app.requires, pins), route=route, memory=probe)
                cells.setdefault(cell.id, cell)

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
    return list(cells.values())


@dataclass(frozen=True)
class CellFilter:
    key: str
    values: tuple[str, ...]

    def matches(self, cell: Cell, verdicts: Mapping[str, str]) -> bool:
        if self.key == "app":
            value = cell.app
        elif self.key == "variant":
            value = cell.variant
        elif self.key == "python":
            value = cell.python
        elif self.key == "route":
            value = cell.route or ""
        elif self.key == "verdict":
            value = verdicts.get(cell.id, "")
        else:
            value = dict(cell.pins).get(self.key, "")
        return value in self.values


def parse_filter(expr: str, cells: Iterable[Cell]) -> CellFilter:
    """'app=asyncio,threads' -> CellFilter; a bad key or value is a one-line FilterError."""
    cells = list(cells)
    key, sep, raw = expr.partition("=")
    key = key.strip()
    packages = sorted({name for cell in cells for name, _ in cell.pins})
    allowed_keys = list(FILTER_KEYS) + packages
    if not sep or not raw.strip():
        raise FilterError(f"filter {expr!r} is not key=value; keys: {', '.join(allowed_keys)}")
    if key not in allowed_keys:
        raise FilterError(f"unknown filter key {key!r} in {expr!r}; allowed: {', '.join(allowed_keys)}")
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    known = _known_values(key, cells)
    if known is not None:
        for value in values:
            if value not in known:
                raise FilterError(f"{key}={value!r} matches no planned cell; allowed: {', '.join(sorted(known))}")
    return CellFilter(key, values)


def _known_values(key: str, cells: list[Cell]) -> set[str] | None:
    if key == "verdict":
        return {"isolated", "leak", "nested", "lost", "error", "timeout", "unsupported", "flaky"}
    if key == "app":
        return {c.app for c in cells}
    if key == "variant":
        return {c.variant for c in cells}
    if key == "python":
        return {c.python for c in cells}
    if key == "route":
        return {c.route for c in cells if c.route}
    return {version for c in cells for name, version in c.pins if name == key}


def select(cells: Iterable[Cell], only: Iterable[CellFilter], exclude: Iterable[CellFilter],
           verdicts: Mapping[str, str] | None = None) -> list[Cell]:
    """Cells matching every --only filter and no --exclude filter."""
    verdicts = verdicts or {}
    only, exclude = list(only), list(exclude)
    return [
        c for c in cells
        if all(f.matches(c, verdicts) for f in only) and not any(f.matches(c, verdicts) for f in exclude)
    ]


"""Plan the cells: axes x interpreters -> [Cell]. Pure functions, no I/O.

Also the --only/--exclude filters (key=value[,value...]) that select cells by app, variant,
python, a package version, or the verdict a previous run gave them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from packaging.version import Version

from .axes import Axes
from .cells import Cell, unpinned
from .interpreters import Interpreter

FILTER_KEYS = ("app", "variant", "python", "route", "verdict")


class FilterError(ValueError):
    """A one-line complaint about an --only/--exclude expression."""


def plan_cells(axes: Axes, interpreters: Mapping[str, Interpreter], backend: str = "venv") -> list[Cell]:
    """Every cell the axes describe, in a stable order. Cells that cannot run here carry `unsupported`."""
    cells: list[Cell] = []
    for app in axes.apps.values():
        pythons = [p for p in axes.pythons if Version(p) in app.python]
        for python in pythons:
            for versions in itertools.product(*(axes.packages[axis] for axis in app.axes)):
                pins = tuple(zip(app.axes, versions))
                sdk = dict(pins)["sentry-sdk"]
                for variant in app.variants:
                    concrete = axes.resolve_variant(variant, sdk)
                    if concrete is None:
                        continue
                    reason = None
                    if python not in interpreters:
                        reason = f"Python {python} is not installed on this machine"
                    for route in app.routes or (None,):
                        cells.append(Cell(app.app, concrete, python, pins, backend, unsupported=reason,
                                          requires=unpinned(app.requires, pins), route=route, memory=app.memory))
    return cells


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


def with_backend(cells: Iterable[Cell], backend: str) -> list[Cell]:
    return [replace(c, backend=backend) for c in cells]

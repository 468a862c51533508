"""Select planned cells: the --only/--exclude filters (key=value[,value...]) by app, variant, python,
route, a package version, or the verdict a previous run gave them; and stable shards. Pure."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping

from .cells import Cell

FILTER_KEYS = ("app", "variant", "python", "route", "verdict")


class FilterError(ValueError):
    """A one-line complaint about an --only/--exclude expression."""


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
            value = verdicts.get(cell.id) or "new"  # a cell no earlier run answered (e.g. the lock added it)
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
        return {"isolated", "leak", "nested", "lost", "error", "timeout", "unsupported", "flaky", "new"}
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


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); shards are numbered from 1. Raises ValueError with a one-line message."""
    k, sep, n = text.partition("/")
    try:
        index, total = int(k), int(n)
    except ValueError:
        index = total = 0
    if not sep or total < 1 or not 1 <= index <= total:
        raise ValueError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return index, total


def shard_of(cells: list[Cell], index: int, total: int) -> list[Cell]:
    """Stable assignment: a cell's shard depends only on its id, never on what else is planned."""
    return [c for c in cells if int(hashlib.sha256(c.id.encode()).hexdigest(), 16) % total == index - 1]

"""What the engine hands to the report for one cell: the judgement and what it was judged on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plan.cells import Cell
from .verdict import Judgement


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    judgement: Judgement
    python_version: str  # the full interpreter version that ran the app (or the planned minor)
    installed: dict[str, str]  # what the environment really holds
    repeats: int
    units: int
    duration_s: float
    log: str | None  # path of the cell's log, relative to the results directory
    facts: dict[str, Any] | None = None  # the app's /facts answer

"""`check --run`: measure the stack itself, now. Cells are built from the stack's own pins (any release,
not only the lock's), run through the engine like every other cell, and answered by the same lookup.

Plain cells of every counted model first; then, where plain leaks or its spans go wrong, the fix variants
for this SDK release, so that each fix shown is checked by its own cell on this very stack.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Callable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..axes.spec import AppAxes, Axes
from ..engine import EngineOptions, run_cells
from ..paths import CACHE_DIR
from ..plan.cells import Cell, unpinned
from ..report.entries import cell_entry
from .lookup import cannot_run, fix_variants, wanted_pins
from .models import Implied
from .results import Results, normalize
from .stack import Stack


def run_dir() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return os.path.join(CACHE_DIR, "check-runs", f"{stamp}-{os.getpid()}")


def stack_pins(app: AppAxes, stack: Stack) -> tuple[tuple[str, str], ...]:
    """sentry-sdk first, then the app's other axes, then the packages the app requires that the stack pins
    (django, gunicorn, daphne ...): the order of the cells' ids."""
    wanted = wanted_pins(app, stack)
    names = ["sentry-sdk"] + [a for a in app.axes if a != "sentry-sdk"] + \
        [canonicalize_name(Requirement(r).name) for r in app.requires]
    out: list[tuple[str, str]] = []
    for name in names:
        if name in wanted and name not in dict(out):
            out.append((name, wanted[name]))
    return tuple(out)


def plan(models: list[Implied], stack: Stack, axes: Axes, lock: dict, backend: str, available: set[str],
         variants_for: Callable[[AppAxes, str | None], list[str]] | None = None) -> list[Cell]:
    """One cell per counted model, route and variant (plain unless `variants_for` says which)."""
    cells = []
    for implied in models:
        app = implied.axes
        if app is None or not implied.counted:
            continue
        pins = stack_pins(app, stack)
        if "sentry-sdk" not in dict(pins) or any(a not in dict(pins) for a in app.axes):
            continue
        missing = None if stack.python in available else (
            f"Python {stack.python} is not installed here (installed: "
            f"{', '.join(sorted(available, key=lambda v: tuple(map(int, v.split('.'))))) or 'none'}); "
            "install it (e.g. actions/setup-python) or choose another with --python")
        for route in implied.routes:
            variants = variants_for(app, route) if variants_for else ["plain"]
            for variant in variants:
                reason = cannot_run(app, variant, stack.python, route, dict(pins), lock, [])
                if reason and variant != "plain":
                    continue
                cells.append(Cell(app.app, variant, stack.python, pins, backend, unsupported=reason or missing,
                                  requires=unpinned(app.requires, pins), route=route, arrival=app.arrival))
    return cells


def measure(cells: list[Cell], opts: EngineOptions, progress: Callable[[dict, int, int, str], None],
            phase: str = "") -> list[dict]:
    """Run the cells (in parallel, opts.jobs); the results cells in matrix.json's shape, normalized."""
    if not cells:
        return []
    done = [0]

    def on_done(outcome) -> None:
        done[0] += 1
        entry = cell_entry(outcome)
        progress(entry, done[0], len(cells), phase)

    outcomes = run_cells(cells, opts, on_done)
    entries = []
    for outcome in outcomes:
        entry = normalize(cell_entry(outcome), 2, opts.results_dir)
        if entry is not None:
            entries.append(entry)
    return entries


def run_stack(models: list[Implied], stack: Stack, axes: Axes, lock: dict, backend: str, available: set[str],
              opts: EngineOptions, committed: Results | None,
              progress: Callable[[dict, int, int, str], None]) -> Results:
    """Measure the plain cells, then the fixes where plain leaks or its spans go wrong."""
    start = time.monotonic()
    first = plan(models, stack, axes, lock, backend, available)
    measured = measure(first, opts, progress, "plain")
    wrong = {(c["app"], c.get("route")) for c in measured
             if c["scope"] == "leak" or c.get("tracing") in ("nested", "detached")}

    def fixes(app: AppAxes, route: str | None) -> list[str]:
        return fix_variants(app, axes, stack.version("sentry-sdk")) if (app.app, route) in wrong else []

    second = plan(models, stack, axes, lock, backend, available, fixes)
    measured += measure(second, opts, progress, "fixes")
    results = Results(measured, summary=committed.summary if committed else [], not_planned=[],
                      files=[], history=committed.history if committed else None)
    results.notes.append(f"{len(measured)} cell(s) measured in {time.monotonic() - start:.0f}s")
    return results

"""What every command shares: the one-line usage error, planning with filters, run options."""
from __future__ import annotations

import argparse
import json
import os

from ..axes.lock import load_lock
from ..axes.spec import load_axes
from ..backends import BackendUnavailable, resolve
from ..engine import EngineOptions
from ..paths import REPO
from ..plan.cells import Cell
from ..plan.filters import FilterError, parse_filter, select, shard_of
from ..plan.planner import plan_cells
from ..plan.sources import SdkSource, apply_sdk_source, newest_sdk, resolve_sdk_source
from ..report.files import load_results
from ..run.cell import RunOptions


class UsageError(Exception):
    """One line for the user; exit 2."""


class Interrupted(UsageError):
    """A run stopped by Ctrl-C (exit 2) or SIGTERM/SIGHUP (exit 143/129): one line saying how to resume."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class ResultsError(Exception):
    """The results directory cannot be written (read-only, full): one line for the user; exit 1."""


def results_path(args: argparse.Namespace) -> str:
    return os.path.join(args.results, "matrix.json")


def previous_verdicts(path: str) -> dict[str, str]:
    try:
        return {c["id"]: c["verdict"] for c in load_results(path)["cells"]}
    except (OSError, ValueError, KeyError):
        return {}


def resolve_backend(requested: str) -> tuple[str, str | None]:
    try:
        return resolve(requested)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None


def planned(args: argparse.Namespace, backend: str, not_planned: list[Cell] | None = None,
            every: set[str] | None = None) -> list[Cell]:
    """The cells of this size on this backend, filtered (--only/--exclude) and sharded. The combinations
    that cannot run (the lock, the axes' not_applicable rules) go to `not_planned`, unfiltered; the ids of
    every cell of the size, before the filters, to `every`."""
    from .. import backends

    available = backends.get(backend).interpreters()
    lock = load_lock()
    skipped: list[Cell] = []
    cells = plan_cells(load_axes(), lock, set(available), size="full" if args.full else "default",
                       backend=backend, not_planned=skipped)
    source = lane_source(args, lock)
    if getattr(args, "sdk_source", None) and source is None:
        return []  # `pre` and PyPI has no pre-release newer than the newest release
    if source is not None:  # the pre-release lane: the newest SDK's cells, the SDK from the source
        cells = apply_sdk_source(cells, source, newest_sdk(lock))
        skipped = apply_sdk_source(skipped, source, newest_sdk(lock))
    if not_planned is not None:
        not_planned.extend(skipped)
    if every is not None:
        every.update(c.id for c in cells)
    try:
        only = [parse_filter(expr, cells) for expr in args.only]
        exclude = [parse_filter(expr, cells) for expr in args.exclude]
    except FilterError as exc:
        raise UsageError(str(exc)) from None
    chosen = select(cells, only, exclude, previous_verdicts(results_path(args)))
    if getattr(args, "shard", None):
        chosen = shard_of(chosen, *args.shard)
    return chosen


def lane_source(args: argparse.Namespace, lock: dict | None = None) -> SdkSource | None:
    """The pre-release lane's SDK (--sdk-source), resolved once per command; None without the option,
    or when `pre` finds no pre-release newer than the newest release."""
    spec = getattr(args, "sdk_source", None)
    if not spec:
        return None
    if not hasattr(args, "resolved_sdk_source"):
        args.resolved_sdk_source = resolve_sdk_source(spec, newest_sdk(lock if lock is not None else load_lock()))
    return args.resolved_sdk_source


def engine_options(args: argparse.Namespace, **overrides) -> EngineOptions:
    if args.repeat < 1:
        raise UsageError(f"--repeat {args.repeat}: must be 1 or more")
    if args.units < 2:
        raise UsageError(f"--units {args.units}: must be 2 or more (one unit cannot leak into another)")
    if args.jobs < 1:
        raise UsageError(f"-j {args.jobs}: must be 1 or more")
    if args.cell_timeout <= 0:
        raise UsageError(f"--cell-timeout {args.cell_timeout}: must be a positive number of seconds")
    values = dict(run=RunOptions(units=args.units, cell_timeout=args.cell_timeout), repeat=args.repeat,
                  jobs=args.jobs, results_dir=getattr(args, "results", os.path.join(REPO, "results")))
    values.update(overrides)
    return EngineOptions(**values)


def committed_results(path: str) -> dict | None:
    """A results file as committed (git HEAD), to diff a fresh run against."""
    import subprocess

    rel = os.path.relpath(path, REPO)
    proc = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def not_planned_entries(cells: list[Cell]) -> list[dict]:
    """matrix.json's `not_planned`: what the plan left out and why (shown collapsed per app)."""
    return [{"id": c.id, "app": c.app, "variant": c.variant, "reason": c.unsupported or ""} for c in cells]

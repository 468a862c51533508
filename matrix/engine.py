"""Run a list of cells end to end: prepare env -> run (K repeats) -> judge -> result entry.

One mock server serves every cell (a project id each), cells run in parallel on a thread pool,
and whatever goes wrong inside one cell becomes that cell's `error` entry: it never costs
another cell its result.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable

from .cells import Cell, log_relpath
from .envs import EnvError, EnvUnsupported, prepare_env
from .paths import CACHE_DIR, REPO, RESULTS_DIR
from .interpreters import Interpreter
from .judge import Check, Judgement, combine, judge
from .mock_server import MockSentryServer
from .report import RERUN, cell_entry
from .run import RunOptions, run_cell_once



@dataclass(frozen=True)
class EngineOptions:
    run: RunOptions = RunOptions()
    repeat: int = 1
    jobs: int = os.cpu_count() or 2
    results_dir: str = RESULTS_DIR
    records_dir: str = os.path.join(CACHE_DIR, "records")


def not_run(cell: Cell, verdict: str, reason: str, python_version: str, units: int,
            log: str | None = None) -> dict[str, Any]:
    """The entry of a cell that never reached its app (unsupported, env failure, harness error)."""
    checks = {"scope_leak": Check(False, [f"not judged: {reason}"]), "delivery": Check(False, [f"not judged: {reason}"])}
    judgement = Judgement(verdict, reason, checks, "unknown")
    return cell_entry(cell, judgement, python_version=python_version, installed={}, repeats=1,
                      units=units, duration_s=0.0, log=log)


def _header(log_path: str, cell: Cell, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as fh:
        fh.write(f"# cell {cell.id}\n# rerun: {RERUN.format(id=cell.id)}\n")
        for line in lines:
            fh.write(f"# {line}\n")


def run_one(cell: Cell, interpreters: dict[str, Interpreter], server: MockSentryServer,
            opts: EngineOptions) -> dict[str, Any]:
    """Everything for one cell; always returns an entry."""
    units = opts.run.units
    if cell.unsupported:
        return not_run(cell, "unsupported", cell.unsupported, cell.python, units)
    interp = interpreters[cell.python]
    log_rel = log_relpath(cell.id)
    log_path = os.path.join(opts.results_dir, log_rel)
    start = time.monotonic()
    env_log: list[str] = []
    try:
        env = prepare_env(interp, cell.pin_specs(), env_log, requires=list(cell.requires))
    except EnvUnsupported as exc:
        return not_run(cell, "unsupported", f"does not install on Python {interp.version}: {exc}", interp.version, units)
    except (EnvError, OSError) as exc:
        _header(log_path, cell, ["environment build failed"] + env_log)
        return not_run(cell, "error", f"environment build failed: {exc}", interp.version, units, log_rel)
    _header(log_path, cell, [
        f"interpreter: {interp.path} ({interp.version})",
        f"environment: {env.path} ({'created' if env.created else 'reused'} in {env.seconds:.2f}s)",
        "installed: " + " ".join(f"{k}=={v}" for k, v in sorted(env.installed.items())),
    ])
    judgements, facts = [], None
    records_dir = os.path.join(opts.records_dir, cell.id)
    os.makedirs(records_dir, exist_ok=True)
    for attempt in range(1, opts.repeat + 1):
        record = run_cell_once(cell, env.python, server, log_path, opts.run, attempt, log_rel)
        with open(os.path.join(records_dir, f"attempt-{attempt}.json"), "w") as fh:
            fh.write(record.to_json())
        judgements.append(judge(record))
        facts = facts or record.facts
    judgement, repeats = combine(judgements)
    python_version = (facts or {}).get("python") or interp.version
    return cell_entry(cell, judgement, python_version=python_version, installed=env.installed, repeats=repeats,
                      units=units, duration_s=time.monotonic() - start, log=log_rel, facts=facts)


def run_cells(cells: list[Cell], interpreters: dict[str, Interpreter], opts: EngineOptions,
              on_done: Callable[[dict[str, Any]], None] = lambda entry: None) -> list[dict[str, Any]]:
    """Run every cell (in parallel), calling on_done as each finishes; entries in input order."""
    entries: dict[str, dict[str, Any]] = {}
    with MockSentryServer() as server, ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = {pool.submit(run_one, cell, interpreters, server, opts): cell for cell in cells}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                entry = future.result()
            except Exception as exc:  # a harness bug in one cell must not sink the others
                traceback.print_exc(file=sys.stderr)
                entry = not_run(cell, "error", f"harness error: {type(exc).__name__}: {exc}",
                                cell.python, opts.run.units)
            entries[cell.id] = entry
            on_done(entry)
    return [entries[c.id] for c in cells]


def dump_entries(entries: list[dict[str, Any]]) -> str:
    return json.dumps(entries, indent=1)

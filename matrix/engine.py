"""The orchestrator: for each planned cell, prepare its environment, run it (K repeats), judge it.

Data flows one way: plan -> backends.prepare -> run -> judge -> CellOutcome. The engine imports
the stages; no stage imports the engine, and the engine knows nothing of the report (the command
line turns outcomes into results). One mock server serves every cell (a project id each), cells
run in parallel on a thread pool, and whatever goes wrong inside one cell becomes that cell's
`error` outcome: it never costs another cell its result.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Collection

from . import backends
from .backends.base import Backend, CannotInstall, EnvError, EnvUnsupported
from .backends.process import kill_all_apps
from .judge.checks import memory_leak_certain
from .judge.events import expected_items
from .judge.outcome import CellOutcome
from .judge.verdict import combine, judge, not_judged
from .paths import CACHE_DIR, RESULTS_DIR
from .plan.cells import Cell
from .run.cell import RunOptions, run_cell_once
from .run.logs import cap_log_file
from .sentry.server import MockSentryServer


#: Write errors that every later cell would hit too (a full disk, a quota, a read-only file system): they
#: stop the run instead of becoming one `error` cell after another.
FATAL_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def fatal_write_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FATAL_WRITE_ERRORS


@dataclass(frozen=True)
class EngineOptions:
    run: RunOptions = field(default_factory=RunOptions)
    repeat: int = 1
    jobs: int = os.cpu_count() or 2
    results_dir: str = RESULTS_DIR
    records_dir: str = os.path.join(CACHE_DIR, "records")


def not_run(cell: Cell, verdict: str, reason: str, python_version: str, units: int,
            log: str | None = None) -> CellOutcome:
    """The outcome of a cell that never reached its app."""
    return CellOutcome(cell, not_judged(verdict, reason), python_version, {}, 1, units, 0.0, log)


def _header(log_path: str, cell: Cell, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as fh:
        fh.write(f"# cell {cell.id}\n# rerun: {cell.rerun}\n")
        for line in lines:
            fh.write(f"# {line}\n")


def session_lifetime(opts: EngineOptions) -> float:
    """How long one cell's session (its container) may live at most: every attempt's timeout, plus room
    to start and stop. It bounds what a killed harness leaves behind on the Docker backend."""
    return opts.repeat * (opts.run.cell_timeout + 30.0) + 60.0


def run_one(cell: Cell, backend: Backend, server: MockSentryServer, opts: EngineOptions) -> CellOutcome:
    """Everything for one cell; always returns an outcome."""
    units = opts.run.units
    if cell.unsupported:
        return not_run(cell, "unsupported", cell.unsupported, cell.python, units)
    interp = backend.interpreters()[cell.python]
    log_rel = cell.log_relpath
    log_path = os.path.join(opts.results_dir, log_rel)
    start = time.monotonic()
    env_log: list[str] = []
    try:
        env = backend.prepare(cell, env_log)
    except EnvUnsupported as exc:
        return not_run(cell, "unsupported", f"does not install on Python {interp.version}: {exc}", interp.version, units)
    except CannotInstall as exc:  # the index unreachable, or the installer timed out: the reason says so as is
        _header(log_path, cell, ["cannot install"] + env_log)
        return not_run(cell, "error", str(exc), interp.version, units, log_rel)
    except (EnvError, OSError) as exc:
        if fatal_write_error(exc):
            raise
        _header(log_path, cell, ["environment build failed"] + env_log)
        return not_run(cell, "error", f"environment build failed: {exc}", interp.version, units, log_rel)
    _header(log_path, cell, [
        f"interpreter: {interp.path} ({interp.version})",
        f"backend: {backend.name}; environment: {env.image or env.path} "
        f"({'created' if env.created else 'reused'} in {env.seconds:.2f}s)",
        "installed: " + " ".join(f"{k}=={v}" for k, v in sorted(env.installed.items())),
    ])
    judgements, facts = [], None
    records_dir = os.path.join(opts.records_dir, cell.id)
    os.makedirs(records_dir, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            session = stack.enter_context(backend.session(env, session_lifetime(opts)))
        except (EnvError, OSError) as exc:  # e.g. the Docker engine went away: this cell is `error`, the run goes on
            return not_run(cell, "error", f"could not start the cell: {exc}", interp.version, units, log_rel)
        for attempt in range(1, opts.repeat + 1):
            record = run_cell_once(cell, env.python, server, log_path, opts.run, session, expected_items,
                                   attempt, log_rel, memory_leak_certain)
            with open(os.path.join(records_dir, f"attempt-{attempt}.json"), "w") as fh:
                fh.write(record.to_json())
            judgements.append(judge(record))
            facts = facts or record.facts
            cap_log_file(log_path)
    judgement, repeats = combine(judgements)
    python_version = (facts or {}).get("python") or interp.version
    return CellOutcome(cell, judgement, python_version, env.installed, repeats, units,
                       time.monotonic() - start, log_rel, facts)


def run_cells(cells: list[Cell], opts: EngineOptions,
              on_done: Callable[[CellOutcome], None] = lambda outcome: None,
              skip: Collection[str] = ()) -> list[CellOutcome]:
    """Run every cell not in `skip` (in parallel), calling on_done (in this thread) as each finishes;
    outcomes in input order. Ctrl-C kills every running app before it propagates."""
    by_name: dict[str, Backend] = {}
    todo = [c for c in cells if c.id not in skip]
    for cell in todo:
        if cell.backend not in by_name:
            by_name[cell.backend] = backends.get(cell.backend)
    outcomes: dict[str, CellOutcome] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, opts.jobs))
    server = MockSentryServer().start()
    try:
        futures = {pool.submit(run_one, cell, by_name[cell.backend], server, opts): cell for cell in todo}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # a harness bug in one cell must not sink the others
                if fatal_write_error(exc):
                    raise  # nor can any other cell write its log: stop the run (the caller says why)
                traceback.print_exc(file=sys.stderr)
                outcome = not_run(cell, "error", f"harness error: {type(exc).__name__}: {exc}",
                                  cell.python, opts.run.units)
            outcomes[cell.id] = outcome
            on_done(outcome)
    except BaseException:
        abort_cells(pool, server)
        raise
    finally:
        pool.shutdown(wait=True)
        server.stop()
    return [outcomes[c.id] for c in cells if c.id in outcomes]


def abort_cells(pool: ThreadPoolExecutor, server: MockSentryServer) -> None:
    """Ctrl-C, SIGTERM, SIGHUP or a fatal error while cells run: cancel what has not started, kill every app
    first, then stop the mock server so that no running cell waits out its delivery timeout; the cells'
    threads then unwind (their sessions remove their containers)."""
    pool.shutdown(wait=False, cancel_futures=True)
    kill_all_apps()
    server.stop()

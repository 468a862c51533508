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
from .paths import CACHE_DIR, RESULTS_DIR
from .interpreters import Interpreter
from .judge import Check, Judgement, combine, judge
from .logs import cap_log_file
from .mock_server import MockSentryServer
from .report import RERUN, cell_entry
from .run import DockerLauncher, RunOptions, VenvLauncher, kill_all_apps, run_cell_once



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
        if cell.backend == "docker":
            from .images import prepare_image

            env = prepare_image(interp, cell.pin_specs(), env_log, requires=list(cell.requires))
        else:
            env = prepare_env(interp, cell.pin_specs(), env_log, requires=list(cell.requires))
    except EnvUnsupported as exc:
        return not_run(cell, "unsupported", f"does not install on Python {interp.version}: {exc}", interp.version, units)
    except (EnvError, OSError) as exc:
        _header(log_path, cell, ["environment build failed"] + env_log)
        return not_run(cell, "error", f"environment build failed: {exc}", interp.version, units, log_rel)
    _header(log_path, cell, [
        f"interpreter: {interp.path} ({interp.version})",
        f"backend: {cell.backend}; environment: {env.path} "
        f"({'created' if env.created else 'reused'} in {env.seconds:.2f}s)",
        "installed: " + " ".join(f"{k}=={v}" for k, v in sorted(env.installed.items())),
    ])
    judgements, facts = [], None
    records_dir = os.path.join(opts.records_dir, cell.id)
    os.makedirs(records_dir, exist_ok=True)
    launcher = DockerLauncher(env) if cell.backend == "docker" else VenvLauncher()
    with launcher:
        for attempt in range(1, opts.repeat + 1):
            record = run_cell_once(cell, env.python, server, log_path, opts.run, attempt, log_rel, launcher)
            with open(os.path.join(records_dir, f"attempt-{attempt}.json"), "w") as fh:
                fh.write(record.to_json())
            judgements.append(judge(record))
            facts = facts or record.facts
            cap_log_file(log_path)
    judgement, repeats = combine(judgements)
    python_version = (facts or {}).get("python") or interp.version
    return cell_entry(cell, judgement, python_version=python_version, installed=env.installed, repeats=repeats,
                      units=units, duration_s=time.monotonic() - start, log=log_rel, facts=facts)


def read_stream(path: str) -> dict[str, dict[str, Any]]:
    """Entries already streamed by an earlier (interrupted) run: id -> entry. Torn last lines are ignored."""
    done: dict[str, dict[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                done[entry["id"]] = entry
    except OSError:
        pass
    return done


def run_cells(cells: list[Cell], interpreters: dict[str, Interpreter], opts: EngineOptions,
              on_done: Callable[[dict[str, Any]], None] = lambda entry: None,
              stream_path: str | None = None, resume: bool = False) -> list[dict[str, Any]]:
    """Run every cell (in parallel), calling on_done as each finishes; entries in input order.

    Each finished entry is appended to `stream_path` (JSON lines) at once, so an interrupted run
    loses nothing; with `resume`, cells already in the stream (same repeats and units) are not run
    again. Ctrl-C kills every running app before it propagates.
    """
    entries: dict[str, dict[str, Any]] = {}
    if stream_path and resume:
        for cell_id, entry in read_stream(stream_path).items():
            if entry.get("repeats", 1) >= opts.repeat and entry.get("units") == opts.run.units:
                entries[cell_id] = entry
    elif stream_path and os.path.exists(stream_path):
        os.remove(stream_path)
    todo = [c for c in cells if c.id not in entries]
    stream = open(stream_path, "a", encoding="utf-8") if stream_path else None
    pool = ThreadPoolExecutor(max_workers=max(1, opts.jobs))
    try:
        with MockSentryServer() as server:
            futures = {pool.submit(run_one, cell, interpreters, server, opts): cell for cell in todo}
            for future in as_completed(futures):
                cell = futures[future]
                try:
                    entry = future.result()
                except Exception as exc:  # a harness bug in one cell must not sink the others
                    traceback.print_exc(file=sys.stderr)
                    entry = not_run(cell, "error", f"harness error: {type(exc).__name__}: {exc}",
                                    cell.python, opts.run.units)
                entries[cell.id] = entry
                if stream is not None:
                    stream.write(json.dumps(entry) + "\n")
                    stream.flush()
                on_done(entry)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all_apps()
        raise
    finally:
        pool.shutdown(wait=True)
        if stream is not None:
            stream.close()
    return [entries[c.id] for c in cells if c.id in entries]


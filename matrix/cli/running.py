"""`run`, `cell` and `plan`: the commands that plan and run cells, with progress on the terminal."""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from ..axes.lock import load_lock
from ..axes.spec import load_axes
from ..backends import get as get_backend
from ..engine import run_cells
from ..judge.claims import evaluate, load_claims
from ..judge.outcome import CellOutcome
from ..paths import REPO, known_apps
from ..plan.cells import Cell, CellIdError, parse_cell_id, unpinned
from ..plan.sources import newest_sdk
from ..report.advice import SYMBOLS, scope_mark
from ..report.diff import diff_results, render_diff
from ..report.entries import cell_entry, results_document
from ..report.files import load_results, write_results
from ..report.runinfo import run_record
from ..report.view import counts
from .common import (UsageError, committed_results, engine_options, lane_source, not_planned_entries, planned,
                     previous_verdicts, resolve_backend, results_path)


class Progress:
    """Per-cell outcomes as they finish: a rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.lock = threading.Lock()
        self.rich = None
        if sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeElapsedColumn, TimeRemainingColumn

            self.rich = RichProgress(TextColumn("[bold]matrix"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
            self.task = self.rich.add_task("cells", total=total)
            self.rich.start()

    def __call__(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.done += 1
            line = (f"[{self.done}/{self.total}] {scope_mark(entry):<4} {entry.get('scope', '?'):<8} {entry['id']}"
                    + (f"  ({short_reason(entry['reason'])})" if entry.get("reason") else ""))
            if self.rich is not None:
                self.rich.console.print(line, markup=False, highlight=False)
                self.rich.advance(self.task)
            else:
                print(line, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
        print(f"{self.done} cells in {time.monotonic() - self.start:.1f}s", flush=True)


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


def cmd_plan(args: argparse.Namespace) -> int:
    skipped: list[Cell] = []
    for cell in planned(args, resolve_backend(args.backend)[0], skipped):
        print(cell.id + (f"  (unsupported: {cell.unsupported})" if cell.unsupported else ""))
    if skipped:
        print(f"not planned (cannot run): {len(skipped)} combination(s); with --verbose they are listed", file=sys.stderr)
        if args.verbose:
            for cell in skipped:
                print(f"  not planned: {cell.id}  ({cell.unsupported})", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    opts = engine_options(args)
    backend, engine = resolve_backend(args.backend)
    print(f"backend: {backend}" + (f" (Docker engine {engine})" if engine else ""), flush=True)
    skipped: list[Cell] = []
    source = lane_source(args)
    if args.sdk_source and source is None:
        print(f"--sdk-source {args.sdk_source}: PyPI has no sentry-sdk pre-release newer than "
              f"{newest_sdk(load_lock())}: nothing to run")
        return 0
    if source is not None:
        print(f"pre-release lane: sentry-sdk {source.label} from {source.requirement} ({source.detail})", flush=True)
    cells = planned(args, backend, skipped)
    if not cells:
        raise UsageError("the filters select no cell; `python -m matrix plan` lists them")
    stream_path = os.path.join(args.results, "matrix.partial.jsonl")
    os.makedirs(args.results, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    if args.resume:
        for cell_id, entry in read_stream(stream_path).items():
            if entry.get("repeats", 1) >= opts.repeat and entry.get("units") == opts.run.units:
                entries[cell_id] = entry
    elif os.path.exists(stream_path):
        os.remove(stream_path)
    progress = Progress(len(cells) - len([c for c in cells if c.id in entries]))

    with open(stream_path, "a", encoding="utf-8") as stream:
        def done(outcome: CellOutcome) -> None:
            entry = cell_entry(outcome)
            entries[entry["id"]] = entry
            stream.write(json.dumps(entry) + "\n")
            stream.flush()
            progress(entry)

        try:
            run_cells(cells, opts, done, skip=set(entries))
        except KeyboardInterrupt:
            again = " ".join(["nox -s matrix --", *(["--full"] if args.full else []), "--resume"])
            raise UsageError(f"interrupted: finished cells are in {os.path.relpath(stream_path, REPO)}; "
                             f"continue with `{again}` (and the same filters)") from None
        finally:
            progress.close()
    ordered = [entries[c.id] for c in cells if c.id in entries]
    if (args.only or args.exclude) and previous_verdicts(results_path(args)):
        # a filtered run updates its cells in the existing results instead of dropping the rest
        previous = {c["id"]: c for c in load_results(results_path(args))["cells"]}
        previous.update({e["id"]: e for e in ordered})
        ordered = list(previous.values())
    doc = results_document(ordered, command=args.command_label or "nox -s matrix", backend=backend,
                           claims=evaluate(load_claims(), ordered), apps=load_axes().apps,
                           not_planned=not_planned_entries(skipped))
    if engine:
        doc["host"]["docker_engine"] = engine
    # what this run (or shard) was: `merge` refuses shards of different runs (report/runinfo.py)
    doc["run"] = run_record("full" if args.full else "default", backend, args.shard,
                            [f"--only {e}" for e in args.only] + [f"--exclude {e}" for e in args.exclude],
                            opts.repeat, opts.run.units, source.to_json() if source else None)
    committed = committed_results(results_path(args)) if not args.shard else None
    written = write_results(doc, args.results)
    if committed is not None:
        if committed.get("host", {}).get("backend") not in (None, backend):
            print(f"note: the committed results ran on {committed['host']['backend']}, this run on {backend}")
        print("compared with the committed results:")
        print(render_diff(diff_results(committed, doc), vanished=source is None))
    os.remove(stream_path)
    print(run_end(doc, [os.path.relpath(p, REPO) for p in written]))
    return 0


def run_end(doc: dict[str, Any], written: list[str], width: int = 100) -> str:
    """The last lines of a run, the way pytest ends: what leaked, then the counts per scope answer."""
    cells = [c for c in doc["cells"] if c["verdict"] != "unsupported"]
    tally = counts(doc["cells"])
    lines = []
    leaking = [c["id"] for c in cells if c.get("scope") == "leak"]
    if leaking:
        lines.append(" scope data leaked ".center(width, "="))
        lines += [f"LEAK {cell_id}" for cell_id in leaking]
    unknown = [c for c in cells if c.get("scope") == "unknown"]
    if unknown:
        lines.append(" could not answer ".center(width, "-"))
        lines += [f"UNKNOWN {c['id']}: {short_reason(c.get('reason', ''))}" for c in unknown]
    lines.append(f"tables: {', '.join(written)}")
    parts = [f"{tally['scope'].get(k, 0)} {k}" for k in ("leak", "isolated", "unknown") if tally["scope"].get(k)]
    n_a = tally["verdict"].get("unsupported", 0)
    parts += [f"{n_a} not run"] if n_a else []
    parts += [f"{len(doc.get('not_planned', []))} not planned"] if doc.get("not_planned") else []
    lines.append(f" scope: {', '.join(parts)} ".center(width, "="))
    return "\n".join(lines)


def short_reason(reason: str, limit: int = 160) -> str:
    """A reason cut to `limit` characters keeping its informative end (the error is last, not first)."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit // 3] + " ... " + reason[-(limit - limit // 3 - 5):]


def cell_from_id(cell_id: str, available: dict) -> Cell:
    try:
        app, variant, python, pins, route = parse_cell_id(cell_id)
    except CellIdError as exc:
        raise UsageError(str(exc)) from None
    apps = known_apps()
    if app not in apps:
        raise UsageError(f"unknown app {app!r} in cell id {cell_id!r}; allowed: {', '.join(apps)}")
    if "sentry-sdk" not in dict(pins):
        raise UsageError(f"cell id {cell_id!r} pins no sentry-sdk version (e.g. .../sentry-sdk-2.75.0)")
    if python not in available:
        raise UsageError(f"Python {python} (from {cell_id!r}) is not installed; installed: "
                         + ", ".join(sorted(available, key=lambda v: tuple(map(int, v.split("."))))))
    known = load_axes().apps.get(app)
    if known and known.routes and route not in known.routes:
        raise UsageError(f"cell id {cell_id!r} needs a route: end it with one of "
                         + ", ".join(f"/on-{r}" for r in known.routes))
    if route and not (known and route in known.routes):
        allowed = ", ".join(known.routes) if known and known.routes else "none for this app"
        raise UsageError(f"unknown route {route!r} in {cell_id!r}; allowed: {allowed}")
    return Cell(app, variant, python, pins, requires=unpinned(known.requires if known else (), pins), route=route,
                memory=known.memory if known else None)


def _stream(path: str, stop: threading.Event) -> None:
    """Print a log file's new lines as they appear until stop is set (like tail -f)."""
    pos = 0
    while True:
        finished = stop.is_set()
        try:
            with open(path, "rb") as fh:
                fh.seek(pos)
                chunk = fh.read()
                pos += len(chunk)
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
        except OSError:
            pass
        if finished:
            return
        time.sleep(0.1)


def cmd_cell(args: argparse.Namespace) -> int:
    backend, _ = resolve_backend(args.backend)
    available = get_backend(backend).interpreters()
    cells = [replace(cell_from_id(cell_id, available), backend=backend) for cell_id in args.cell_ids]
    print(f"backend: {backend}", flush=True)
    # Reruns log beside the cache, so the committed results/ stay exactly what `nox -s matrix` wrote.
    outdir = os.path.join(REPO, ".matrix", "cell-runs")
    opts = engine_options(args, jobs=1, results_dir=outdir)
    entries = []
    for cell in cells:
        stop = threading.Event()
        log = os.path.join(outdir, cell.log_relpath)
        if os.path.exists(log):
            os.remove(log)
        streamer = threading.Thread(target=_stream, args=(log, stop), daemon=True)
        streamer.start()
        try:
            entry = cell_entry(run_cells([cell], opts)[0])
        finally:
            stop.set()
            streamer.join(5)
        entries.append(entry)
        print(f"\n{SYMBOLS[entry['verdict']]} {entry['verdict']}: {entry['id']}"
              + (f"\n  reason: {entry['reason']}" if entry.get("reason") else ""))
        for name, check in entry["checks"].items():
            print(f"  {name}: {'ok' if check['ok'] else 'FAILED'}")
            for line in check.get("evidence", [])[:8]:
                print(f"    {line}")
        print(f"  context backend: {entry['context_backend']}; packages: "
              + ", ".join(f"{k} {v}" for k, v in entry["packages"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(entries, fh, indent=1)
    return 0

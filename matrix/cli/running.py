"""`run`, `cell` and `plan`: the commands that plan and run cells, with progress on the terminal."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from ..axes.lock import LockError, load_lock, release_info
from ..axes.releases import ReleaseError, nearest_versions, releases
from ..axes.spec import load_axes
from ..backends import get as get_backend
from ..engine import fatal_write_error, run_cells
from ..judge.claims import evaluate, load_claims
from ..judge.outcome import CellOutcome
from ..paths import CACHE_DIR, INSTALLED, REPO, known_apps
from ..plan.cells import Cell, CellIdError, parse_cell_id, unpinned
from ..plan.sources import newest_sdk
from ..report.advice import SYMBOLS
from ..report.diff import diff_results, render_diff
from ..report.entries import cell_entry, results_document
from ..report.files import load_results, write_results
from ..report.runinfo import git_commit, run_record
from .bisecting import load_history
from .progress import Progress, run_end
from .common import (Interrupted, ResultsError, UsageError, committed_results, engine_options, lane_source,
                     not_planned_entries, planned, previous_verdicts, resolve_backend, results_path)


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


class ResultStream:
    """matrix.partial.jsonl: one JSON line per finished cell, appended with os.write (no buffer that a
    full disk could leave half-flushed). A line that cannot be written whole is cut off again, and a torn
    last line left by a crash is dropped when the stream is opened, so the stream is always whole lines."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with open(path, "rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            os.ftruncate(self.fd, data.rfind(b"\n") + 1)

    def append(self, entry: dict[str, Any]) -> None:
        data = memoryview((json.dumps(entry) + "\n").encode())
        end = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            try:
                os.ftruncate(self.fd, end)
            except OSError:
                pass
            raise

    def close(self) -> None:
        os.close(self.fd)


class _StreamFailed(Exception):
    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _write_results_whole(doc: dict[str, Any], outdir: str) -> list[str]:
    """write_results into a scratch directory beside the results, then move each file into place: a full
    disk never leaves a truncated matrix.json behind."""
    import shutil
    import tempfile

    scratch = tempfile.mkdtemp(prefix=".writing-", dir=outdir)
    try:
        written = write_results(doc, scratch, history=load_history(outdir))
        final = []
        for path in written:
            target = os.path.join(outdir, os.path.basename(path))
            os.replace(path, target)
            final.append(target)
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _failed_place(exc: OSError, results: str) -> str:
    """Where a write failed: the file it names, else the results directory if that one is full or
    read-only, else the disk (the cache's environments and records live elsewhere)."""
    if exc.filename:
        inside = os.path.abspath(str(exc.filename)).startswith(os.path.abspath(results) + os.sep)
        return f"the results directory {results}" if inside else str(exc.filename)
    try:
        st = os.statvfs(results)
        if st.f_bavail * st.f_frsize < 1024 * 1024 or st.f_flag & os.ST_RDONLY:
            return f"the results directory {results}"
    except OSError:
        pass
    return "the disk"


def cmd_run(args: argparse.Namespace) -> int:
    opts = engine_options(args)
    checkout = git_commit()  # the code this run loads: a commit made while it runs is not what it measured
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
    every: set[str] = set()
    cells = planned(args, backend, skipped, every)
    if not cells:
        raise UsageError("the filters select no cell; `python -m matrix plan` lists them")
    stream_path = os.path.join(args.results, "matrix.partial.jsonl")
    shown = os.path.relpath(stream_path, REPO)
    shown = stream_path if shown.startswith("..") else shown
    again = " ".join(["nox -s matrix --", *(["--full"] if args.full else []), "--resume"])
    entries: dict[str, dict[str, Any]] = {}
    try:
        os.makedirs(args.results, exist_ok=True)
        if args.resume:
            for cell_id, entry in read_stream(stream_path).items():
                # `error` cells could not be answered (an engine gone, the index unreachable): a resume retries them
                if entry.get("verdict") == "error":
                    continue
                if entry.get("repeats", 1) >= opts.repeat and entry.get("units") == opts.run.units:
                    entries[cell_id] = entry
        elif os.path.exists(stream_path):
            os.remove(stream_path)
        stream = ResultStream(stream_path)
    except OSError as exc:
        raise ResultsError(f"cannot write to the results directory {args.results}: {exc}") from None
    progress = Progress(len(cells) - len([c for c in cells if c.id in entries]))

    def done(outcome: CellOutcome) -> None:
        entry = cell_entry(outcome)
        entries[entry["id"]] = entry
        try:
            stream.append(entry)
        except OSError as exc:
            raise _StreamFailed(exc) from None
        progress(entry)

    try:
        run_cells(cells, opts, done, skip=set(entries))
    except KeyboardInterrupt as exc:
        how = f"stopped by {exc}" if getattr(exc, "exit_code", None) else "interrupted"
        raise Interrupted(f"{how}: finished cells are in {shown}; continue with `{again}` (and the same filters)",
                          getattr(exc, "exit_code", 2)) from None
    except _StreamFailed as exc:
        finished = len(read_stream(stream_path))
        raise ResultsError(f"cannot write to the results directory {args.results} ({exc.error.strerror or exc}): "
                           f"the run stopped; the {finished} cells that finished are in {shown}; make room and "
                           f"continue with `{again}` (and the same filters)") from None
    except OSError as exc:
        if not fatal_write_error(exc):
            raise
        finished = len(read_stream(stream_path))
        where = _failed_place(exc, args.results)
        raise ResultsError(f"cannot write to {where} ({exc.strerror}): the run stopped; the {finished} cells "
                           f"that finished are in {shown}; make room and continue with `{again}` "
                           "(and the same filters)") from None
    finally:
        progress.close()
        stream.close()
    ordered = [entries[c.id] for c in cells if c.id in entries]
    unplanned_logs: list[str] = []
    if (args.only or args.exclude) and previous_verdicts(results_path(args)):
        # a filtered run updates its cells in the existing results instead of dropping the rest; a cell the
        # plan no longer has (the lock changed: e.g. a history boundary moved) is dropped, not kept stale
        earlier = load_results(results_path(args))["cells"]
        previous = {c["id"]: c for c in earlier if c["id"] in every}
        if len(previous) < len(earlier):
            print(f"{len(earlier) - len(previous)} cell(s) of the earlier results are no longer planned "
                  "(the lock or the axes changed): dropped", flush=True)
        previous.update({e["id"]: e for e in ordered})
        ordered = list(previous.values())
        kept_logs = {e.get("log") for e in ordered}
        unplanned_logs = [c["log"] for c in earlier if c["id"] not in every and c.get("log") not in kept_logs]
    doc = results_document(ordered, command=args.command_label or "nox -s matrix", backend=backend,
                           claims=evaluate(load_claims(), ordered), apps=load_axes().apps,
                           not_planned=not_planned_entries(skipped))
    if engine:
        doc["host"]["docker_engine"] = engine
    # what this run (or shard) was: `merge` refuses shards of different runs (report/runinfo.py)
    doc["run"] = run_record("full" if args.full else "default", backend, args.shard,
                            [f"--only {e}" for e in args.only] + [f"--exclude {e}" for e in args.exclude],
                            opts.repeat, opts.run.units, source.to_json() if source else None, checkout)
    if git_commit()[0] != checkout[0]:
        print(f"note: the checkout moved to another commit while this run ran; it records {checkout[0][:12]}, "
              "the commit it started from")
    committed = committed_results(results_path(args)) if not args.shard else None
    try:
        written = _write_results_whole(doc, args.results)
    except OSError as exc:
        raise ResultsError(f"cannot write the results into {args.results} ({exc.strerror or exc}): every cell "
                           f"finished and is in {shown}; make room and write them with `{again}`") from None
    for rel in unplanned_logs:  # the dropped cells' evidence goes with them
        with contextlib.suppress(OSError):
            os.remove(os.path.join(args.results, rel))
    if committed is not None:
        if committed.get("host", {}).get("backend") not in (None, backend):
            print(f"note: the committed results ran on {committed['host']['backend']}, this run on {backend}")
        print("compared with the committed results:")
        print(render_diff(diff_results(committed, doc), vanished=source is None))
    errors = [e["id"] for e in ordered if e["verdict"] == "error" and e["id"] in {c.id for c in cells}]
    if errors:
        print(f"{len(errors)} cell(s) are `error` (reasons above); {shown} is kept: once the cause is fixed, "
              f"rerun just them with `{again}` (and the same filters)", flush=True)
    else:
        os.remove(stream_path)
    print(run_end(doc, [os.path.relpath(p, REPO) for p in written]))
    return 0


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
    check_releases(pins)
    return Cell(app, variant, python, pins, requires=unpinned(known.requires if known else (), pins), route=route,
                memory=known.memory if known else None,
                system=known.system if known else (), arrival=known.arrival if known else "together")


def check_releases(pins: tuple[tuple[str, str], ...]) -> None:
    """Every pinned version must be a release of its package: one line and exit 2 otherwise, naming the
    nearest releases. The lock answers for the versions it lists; others are looked up in PyPI's release
    data (cached under .matrix/pypi, refreshed once when the version is not in the cache). When PyPI cannot
    be reached the version is not refused: a warning line says it is unchecked, and the installer (which may
    use a mirror that knows it) decides; a version it cannot find makes the cell `error`, "cannot install"."""
    try:
        lock = load_lock()
    except LockError:
        lock = {}
    for name, version in pins:
        if release_info(lock, name, version):
            continue
        try:
            known = releases(name)
            if version not in {r.version for r in known}:
                known = releases(name, refresh=True)  # released after the cache was written?
        except ReleaseError as exc:
            raise UsageError(f"{name} {version}: {exc}") from None
        except (OSError, ValueError) as exc:
            print(f"warning: cannot check that {name} {version} is a release of {name}: PyPI's release data is "
                  f"unreachable ({exc}) and the lock does not list it; trying to install it anyway",
                  file=sys.stderr, flush=True)
            continue
        if version not in {r.version for r in known}:
            raise UsageError(f"{name} {version} is not a release of {name}; nearest: "
                             + ", ".join(nearest_versions(version, [r.version for r in known if not r.yanked])))


def _stream(path: str, stop: threading.Event) -> None:
    """Print a log file's new lines as they appear until stop is set (like tail -f)."""
    pos = 0
    while True:
        finished = stop.is_set()
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < pos:  # the log was capped in place (an app flooding its output): go on from its end
                    sys.stdout.write("\n[matrix] ... the log was capped here; its head and tail are in the file ...\n")
                    pos = size
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
    outdir = os.path.join(CACHE_DIR if INSTALLED else os.path.join(REPO, ".matrix"), "cell-runs")
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

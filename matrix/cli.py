"""Command line of the harness (the nox sessions call this): plan, run, cell, report.

    python -m matrix run [--only k=v] [--exclude k=v] [-j N] [--repeat K] [--units N]
    python -m matrix cell <cell-id> [<cell-id> ...] [--repeat K]
    python -m matrix report [--results DIR]
    python -m matrix plan [--only k=v] [--exclude k=v]

Bad input (unknown app, malformed cell id, a filter value no cell has, a Python that is not
installed) gets one line naming the value and what is allowed, and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from .axes import AxesError, load_axes, load_raw
from .claims import ClaimsError, evaluate, load_claims
from .diff import diff_results, render_diff
from .lock import LockError, build_lock, load_lock, write_lock
from .policies import PolicyError
from .releases import ReleaseError
from .cells import Cell, CellIdError, parse_cell_id, unpinned
from .engine import EngineOptions, run_cells
from .paths import APPS_DIR, REPO
from .interpreters import Interpreter, discover
from .plan import FilterError, parse_filter, plan_cells, select
from .report import SYMBOLS, load_results, results_document, write_results
from .run import RunOptions


class UsageError(Exception):
    """One line for the user; exit 2."""


def _results_path(args: argparse.Namespace) -> str:
    return os.path.join(args.results, "matrix.json")


def _previous_verdicts(path: str) -> dict[str, str]:
    try:
        return {c["id"]: c["verdict"] for c in load_results(path)["cells"]}
    except (OSError, ValueError, KeyError):
        return {}


def resolve_backend(requested: str) -> tuple[str, str | None]:
    """'auto' -> docker when an engine answers, else venv. Returns (backend, docker engine version)."""
    from .docker import engine_available

    version = engine_available() if requested in ("auto", "docker") else None
    if requested == "docker" and version is None:
        raise UsageError("--backend docker: no Docker engine answers (start dockerd, or use --backend venv)")
    return ("docker" if version else "venv"), version


def _planned(args: argparse.Namespace) -> tuple[list[Cell], dict]:
    axes = load_axes()
    interpreters = discover()
    backend = getattr(args, "backend_resolved", "venv")
    if backend == "docker":
        from .images import registry_available

        if registry_available():  # official python:X.Y-slim images stand in for missing interpreters
            for minor in axes.pythons:
                interpreters.setdefault(minor, Interpreter(minor, minor, f"python:{minor}-slim"))
    cells = plan_cells(axes, load_lock(), interpreters, size="full" if args.full else "default", backend=backend)
    try:
        only = [parse_filter(expr, cells) for expr in args.only]
        exclude = [parse_filter(expr, cells) for expr in args.exclude]
    except FilterError as exc:
        raise UsageError(str(exc)) from None
    chosen = select(cells, only, exclude, _previous_verdicts(_results_path(args)))
    if getattr(args, "shard", None):
        chosen = shard_of(chosen, *args.shard)
    return chosen, interpreters


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); shards are numbered from 1."""
    k, sep, n = text.partition("/")
    try:
        index, total = int(k), int(n)
    except ValueError:
        index = total = 0
    if not sep or total < 1 or not 1 <= index <= total:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return index, total


def shard_of(cells: list[Cell], index: int, total: int) -> list[Cell]:
    """Stable assignment: a cell's shard depends only on its id, never on what else is planned."""
    import hashlib

    return [c for c in cells if int(hashlib.sha256(c.id.encode()).hexdigest(), 16) % total == index - 1]


def _committed_results(path: str) -> dict | None:
    """results/matrix.json as committed (git HEAD), to diff a fresh run against."""
    import subprocess

    rel = os.path.relpath(path, REPO)
    proc = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def _engine_options(args: argparse.Namespace) -> EngineOptions:
    if args.repeat < 1:
        raise UsageError(f"--repeat {args.repeat}: must be 1 or more")
    if args.units < 2:
        raise UsageError(f"--units {args.units}: must be 2 or more (one unit cannot leak into another)")
    if args.jobs < 1:
        raise UsageError(f"-j {args.jobs}: must be 1 or more")
    if args.cell_timeout <= 0:
        raise UsageError(f"--cell-timeout {args.cell_timeout}: must be a positive number of seconds")
    return EngineOptions(run=RunOptions(units=args.units, cell_timeout=args.cell_timeout), repeat=args.repeat,
                         jobs=args.jobs,
                         results_dir=getattr(args, "results", os.path.join(REPO, "results")))


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
            line = (f"[{self.done}/{self.total}] {SYMBOLS[entry['verdict']]} {entry['verdict']:<11} {entry['id']}"
                    + (f"  ({entry['reason'][:120]})" if entry.get("reason") else ""))
            if self.rich is not None:
                self.rich.console.print(line, markup=False, highlight=False)
                self.rich.advance(self.task)
            else:
                print(line, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
        print(f"{self.done} cells in {time.monotonic() - self.start:.1f}s", flush=True)


def cmd_plan(args: argparse.Namespace) -> int:
    cells, _ = _planned(args)
    for cell in cells:
        print(cell.id + (f"  (unsupported: {cell.unsupported})" if cell.unsupported else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    opts = _engine_options(args)
    args.backend_resolved, engine = resolve_backend(args.backend)
    print(f"backend: {args.backend_resolved}" + (f" (Docker engine {engine})" if engine else ""), flush=True)
    cells, interpreters = _planned(args)
    if not cells:
        raise UsageError("the filters select no cell; `python -m matrix plan` lists them")
    stream = os.path.join(args.results, "matrix.partial.jsonl")
    os.makedirs(args.results, exist_ok=True)
    progress = Progress(len(cells))
    try:
        entries = run_cells(cells, interpreters, opts, progress, stream_path=stream, resume=args.resume)
    except KeyboardInterrupt:
        again = " ".join(["nox -s matrix --", *(["--full"] if args.full else []), "--resume"])
        raise UsageError(f"interrupted: finished cells are in {os.path.relpath(stream, REPO)}; "
                         f"continue with `{again}` (and the same filters)") from None
    finally:
        progress.close()
    old = _previous_verdicts(_results_path(args)) if (args.only or args.exclude) else {}
    if old:  # a filtered run updates its cells in the existing results instead of dropping the rest
        previous = {c["id"]: c for c in load_results(_results_path(args))["cells"]}
        previous.update({e["id"]: e for e in entries})
        entries = list(previous.values())
    doc = results_document(entries, command=args.command_label or "nox -s matrix", backend=args.backend_resolved,
                           claims=evaluate(load_claims(), entries))
    if engine:
        doc["host"]["docker_engine"] = engine
    committed = _committed_results(_results_path(args)) if not args.shard else None
    for path in write_results(doc, args.results):
        print("wrote", os.path.relpath(path, REPO))
    if committed is not None:
        print("compared with the committed results/matrix.json:")
        print(render_diff(diff_results(committed, doc)))
    os.remove(stream)
    return 0


def _cell_from_id(cell_id: str, interpreters: dict) -> Cell:
    try:
        app, variant, python, pins, route = parse_cell_id(cell_id)
    except CellIdError as exc:
        raise UsageError(str(exc)) from None
    apps = sorted(d for d in os.listdir(APPS_DIR) if os.path.exists(os.path.join(APPS_DIR, d, "app.py")))
    if app not in apps:
        raise UsageError(f"unknown app {app!r} in cell id {cell_id!r}; allowed: {', '.join(apps)}")
    if "sentry-sdk" not in dict(pins):
        raise UsageError(f"cell id {cell_id!r} pins no sentry-sdk version (e.g. .../sentry-sdk-2.75.0)")
    if python not in interpreters:
        raise UsageError(f"Python {python} (from {cell_id!r}) is not installed; installed: "
                         + ", ".join(sorted(interpreters, key=lambda v: tuple(map(int, v.split("."))))))
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
    interpreters = discover()
    backend, _ = resolve_backend(args.backend)
    cells = [replace(_cell_from_id(cell_id, interpreters), backend=backend) for cell_id in args.cell_ids]
    print(f"backend: {backend}", flush=True)
    opts = _engine_options(args)
    # Reruns log beside the cache, so the committed results/ stay exactly what `nox -s matrix` wrote.
    outdir = os.path.join(REPO, ".matrix", "cell-runs")
    opts = EngineOptions(run=opts.run, repeat=opts.repeat, jobs=1, results_dir=outdir)
    entries = []
    for cell in cells:
        stop = threading.Event()
        log = os.path.join(outdir, "logs", cell.id + ".log")
        if os.path.exists(log):
            os.remove(log)
        streamer = threading.Thread(target=_stream, args=(log, stop), daemon=True)
        streamer.start()
        try:
            entry = run_cells([cell], interpreters, opts)[0]
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


def cmd_update_axes(args: argparse.Namespace) -> int:
    """Resolve the axes' policies against PyPI and write matrix/axes.lock.json."""
    raw = load_raw()
    load_axes()  # validate before asking PyPI anything
    lock = build_lock(raw, refresh=not args.offline)
    write_lock(lock)
    for name, picks in lock["axes"].items():
        print(f"{name}: " + ", ".join(p["version"] for p in picks))
    print(f"wrote matrix/axes.lock.json ({len(lock['releases'])} releases)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shards' matrix.json files into one results set (claims recomputed over all cells)."""
    cells: dict[str, dict] = {}
    commands, host = [], None
    for path in args.shards:
        try:
            doc = load_results(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read shard {path}: {exc}") from None
        commands.append(doc.get("command", ""))
        host = host or doc.get("host")
        for cell in doc["cells"]:
            if cell["id"] in cells and cells[cell["id"]] != cell:
                raise UsageError(f"cell {cell['id']} appears in two shards with different results")
            cells[cell["id"]] = cell
    entries = list(cells.values())
    doc = results_document(entries, command=args.command_label or commands[0].split(" --shard")[0],
                           backend=(host or {}).get("backend", "venv"), claims=evaluate(load_claims(), entries))
    for written in write_results(doc, args.results):
        print("wrote", os.path.relpath(written, REPO))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = _results_path(args)
    try:
        doc = load_results(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; run `nox -s matrix` first") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    doc["claims"] = evaluate(load_claims(), doc["cells"])
    if args.diff:
        try:
            old = load_results(args.diff)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read --diff {args.diff}: {exc}") from None
        changes = diff_results(old, doc)
        print(render_diff(changes))
        if changes.verdicts_changed and args.fail_on_change:
            return 1
        return 0
    for written in write_results(doc, args.results):
        print("wrote", os.path.relpath(written, REPO))
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what was wrong and what is allowed), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m matrix", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def common(p: argparse.ArgumentParser, filters: bool = True) -> None:
        p.add_argument("--results", default=None,
                       help="results directory (default: results/, or results/full/ with --full)")
        if filters:
            p.add_argument("--full", action="store_true",
                           help="the whole lock (nightly size) instead of the default slice")
            p.add_argument("--only", action="append", default=[], metavar="KEY=V[,V]",
                           help="keep cells matching (app, variant, python, verdict, or a package name)")
            p.add_argument("--exclude", action="append", default=[], metavar="KEY=V[,V]", help="drop matching cells")
            p.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                           help="only shard K of N (stable assignment by cell id), e.g. for CI jobs")

    def running(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=("auto", "docker", "venv"), default="auto",
                       help="where cells run: docker when an engine answers (auto), or local virtualenvs")
        p.add_argument("--repeat", type=int, default=1, help="run each cell K times; disagreement gives `flaky`")
        p.add_argument("--units", type=int, default=4, help="concurrency units forced to overlap (default 4)")
        p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="cells in parallel")
        p.add_argument("--cell-timeout", type=float, default=RunOptions.cell_timeout,
                       help="seconds one run of a cell may take before its app is killed (verdict timeout)")

    p = sub.add_parser("plan", help="list the planned cells")
    common(p)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("run", help="run the matrix and write results/")
    common(p)
    running(p)
    p.add_argument("--command-label", default=None, help="command recorded in matrix.json")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: cells already in results/matrix.partial.jsonl are kept")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("cell", help="rerun cells by id, streaming their logs")
    p.add_argument("cell_ids", nargs="+", metavar="CELL_ID")
    running(p)
    p.add_argument("--json", default=None, help="also write the cells' entries to this file")
    p.set_defaults(func=cmd_cell)
    p = sub.add_parser("update-axes", help="resolve the axes policies against PyPI into matrix/axes.lock.json")
    p.add_argument("--offline", action="store_true", help="use the cached PyPI data under .matrix/pypi")
    p.set_defaults(func=cmd_update_axes)
    p = sub.add_parser("merge", help="merge shards' matrix.json into one results set")
    p.add_argument("shards", nargs="+", metavar="MATRIX_JSON")
    p.add_argument("--results", default=os.path.join(REPO, "results"), help="where to write the merged results")
    p.add_argument("--command-label", default=None)
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("report", help="re-render results/ from results/matrix.json")
    common(p, filters=False)
    p.add_argument("--diff", metavar="OLD_MATRIX_JSON", default=None,
                   help="list verdict changes, new and vanished cells against an older matrix.json (writes nothing)")
    p.add_argument("--fail-on-change", action="store_true", help="with --diff: exit 1 when a verdict changed")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "results", "") is None:
        args.results = os.path.join(REPO, "results", "full" if getattr(args, "full", False) else "")
    try:
        return args.func(args)
    except (UsageError, AxesError, LockError, PolicyError, ReleaseError, ClaimsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

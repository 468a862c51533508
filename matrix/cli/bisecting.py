"""`bisect` and `history`: where the answers change over every release of a package (matrix/bisect/)."""
from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from typing import Any

from ..axes.spec import load_axes
from ..backends import get as get_backend
from ..bisect import lines as lines_mod
from ..bisect.history import carried_lines, history_doc, line_doc, regrouped, render_line, render_markdown
from ..bisect.lines import LineError, domain, history_lines, parse_line, select_lines
from ..bisect.runner import LineSearch, Runner, load_memo, read_stream
from ..paths import CACHE_DIR, REPO
from ..report.files import load_results
from ..report.runinfo import git_commit
from ..report.html import render_html
from ..bisect.search import DEFAULT_REPEATS, DEFAULT_STRIDE
from ..run.cell import RunOptions
from .common import Interrupted, UsageError, engine_options, resolve_backend

HISTORY_JSON = "history.json"
HISTORY_MD = "history.md"
HISTORY_LOGS = os.path.join("history", "logs")
STREAM = "measurements.jsonl"


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _measured_by(command: str, commit: str, backend: str) -> dict[str, str]:
    """A finished line's provenance in history.json: the run (command, the commit it started from, backend)
    and when the line finished."""
    return {"command": command, "commit": commit, "backend": backend, "at": _now()}


def _interpreters(backend: str) -> dict[str, str]:
    found = {minor: interp.version for minor, interp in get_backend(backend).interpreters().items()}
    lines_mod.INTERPRETERS.clear()
    lines_mod.INTERPRETERS.update(found)
    return found


def _keep_logs(runner: Runner, search: LineSearch, outdir: str, folder: str) -> dict[str, str]:
    """Copy both sides' logs of every boundary below outdir/folder: cell id (first run) and
    'cell#xK' (the K confirmation runs) -> path relative to outdir."""
    logs: dict[str, str] = {}
    b = search.bisection
    for boundary in b.boundaries():
        for index in (boundary.before, boundary.after):
            version = b.versions[index]
            for repeat, key in ((1, "{}"), (b.repeats, "{}#x%d" % b.repeats)):
                m = search.measurements.get((version, repeat))
                if m:
                    rel = runner.keep_log(m, outdir, folder)
                    if rel:
                        logs[key.format(m["cell"])] = rel
    return logs


def _shown(path: str) -> str:
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith("..") else rel


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _summary(d: dict[str, Any]) -> str:
    parts = [f"{d['line']}: {d['cells']} cells, {d['app_runs']} runs over {d['measurable']} releases"]
    for b in d["boundaries"]:
        parts.append(f"    {b['dimension']} {b['from']} -> {b['to']} between {b['before']['version']} and "
                     f"{b['after']['version']}{'' if b['confirmed'] else ' (NOT confirmed)'}: {b['explanation']}")
    if not d["boundaries"]:
        parts.append("    no boundary")
    return "\n".join(parts)


def _runner(args: argparse.Namespace, backend: str, workdir: str, stream: str) -> Runner:
    opts = engine_options(args)
    os.makedirs(workdir, exist_ok=True)
    os.makedirs(os.path.dirname(stream), exist_ok=True)
    if args.rejudge:
        args.resume = True
    memo = load_memo(stream, backend, opts.run.units) if args.resume else {}
    if not args.resume and os.path.exists(stream):
        # Measured afresh, but the stream is not emptied: it keeps what earlier (filtered) runs measured for other
        # lines, which a later --resume or --rejudge re-renders from. This run's measurements are appended and
        # win over earlier ones of the same cell and repeat (load_memo keeps the last).
        print(f"measuring afresh; {len(read_stream(stream))} earlier measurements stay in {_shown(stream)} "
              "(a later --resume replays them for lines this run does not measure)", flush=True)
    if memo:
        print(f"resuming: {len(memo)} measurements from {_shown(stream)}"
              + ("; judging them again from their records" if args.rejudge else ""), flush=True)
    runner = Runner(backend, opts.run, opts.jobs, workdir, stream, memo)
    runner.rejudge = args.rejudge
    return runner


def cmd_bisect(args: argparse.Namespace) -> int:
    """One line: every release of the open package, searched and confirmed; prints the timeline."""
    backend, _ = resolve_backend(args.backend)
    available = _interpreters(backend)
    axes = load_axes()
    try:
        line = parse_line(args.pattern, axes, args.package)
    except LineError as exc:
        raise UsageError(str(exc)) from None
    if line.python not in available:
        raise UsageError(f"Python {line.python} is not installed; installed: {', '.join(sorted(available))}")
    releases = domain(line, axes, low=args.min, high=args.max)
    search = LineSearch.create(line, releases, axes, backend, args.stride, args.repeat)
    if not search.bisection.versions:
        raise UsageError(f"{line.id}: no release of {line.package} can be measured here "
                         f"({len(releases)} releases, none installs or applies)")
    outdir = os.path.abspath(args.out)
    os.makedirs(outdir, exist_ok=True)
    print(f"backend: {backend}; line {line.id}: {len(search.bisection.versions)} of {len(releases)} releases "
          f"measurable, stride {args.stride}, {args.repeat} confirmation runs per boundary side", flush=True)
    runner = _runner(args, backend, os.path.join(CACHE_DIR, "bisect"), os.path.join(outdir, "measurements.jsonl"))
    docs: list[dict[str, Any]] = []
    commit = git_commit()[0]
    start = time.monotonic()

    def done(s: LineSearch) -> None:
        logs = _keep_logs(runner, s, outdir, "logs")
        docs.append(line_doc(s.line, s.releases, s.bisection, s.measurements, logs, s.seconds))
        docs[-1]["measured_by"] = _measured_by("python -m matrix bisect " + args.pattern, commit, backend)

    try:
        runner.run([search], done)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: measurements so far are in "
                          f"{os.path.join(outdir, 'measurements.jsonl')}; continue with the same command and --resume")
    wall = time.monotonic() - start
    doc = history_doc(docs, "python -m matrix bisect " + args.pattern, backend, _now(), wall,
                      stride=args.stride, repeats=args.repeat)
    _write(os.path.join(outdir, "bisect.json"), json.dumps(doc, indent=1) + "\n")
    _write(os.path.join(outdir, "bisect.md"), render_markdown(doc))
    print()
    print("\n".join(render_line(docs[0])))
    print(_summary(docs[0]))
    print(f"{runner.measured} measurements ({runner.app_runs} app runs) in {wall:.1f}s; "
          f"written: {os.path.join(outdir, 'bisect.md')}, bisect.json, logs/")
    if args.json:
        _write(args.json, json.dumps(doc, indent=1) + "\n")
    return 0


def load_history(results: str) -> dict[str, Any] | None:
    """results/history.json if there is one (the index.html section), else None."""
    try:
        with open(os.path.join(results, HISTORY_JSON), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _prune_logs(results: str, docs: list[dict[str, Any]]) -> None:
    """Remove history logs no boundary of the document links to (left by an earlier run)."""
    keep = set()
    for d in docs:
        for b in d["boundaries"]:
            for side in (b["before"], b["after"]):
                keep.update(os.path.normpath(os.path.join(results, side[k])) for k in ("log", "confirm_log") if side.get(k))
    root = os.path.join(results, HISTORY_LOGS)
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.normpath(os.path.join(folder, name))
            if path not in keep:
                os.remove(path)
        if folder != root and not os.listdir(folder):
            os.rmdir(folder)


def render_index(results: str, history: dict[str, Any]) -> str | None:
    """Re-render results/index.html from results/matrix.json with the history section."""
    path = os.path.join(results, "matrix.json")
    if not os.path.exists(path):
        return None
    doc = load_results(path)
    _write(os.path.join(results, "index.html"), render_html(dict(doc, history=history)))
    return os.path.join(results, "index.html")


def render_history(results: str) -> int:
    """`history --render`: the committed history written again by the current rendering, nothing measured
    (the lines, answers, boundaries, times and runs stay as they are)."""
    doc = load_history(results)
    if doc is None:
        raise UsageError(f"{os.path.join(results, HISTORY_JSON)} is missing or not JSON: nothing to render "
                         "(`nox -s history` measures one)")
    doc = regrouped(doc)
    _write(os.path.join(results, HISTORY_JSON), json.dumps(doc, indent=1) + "\n")
    _write(os.path.join(results, HISTORY_MD), render_markdown(doc))
    index = render_index(results, doc)
    print("rendered again, nothing measured: " + ", ".join(
        _shown(p) for p in [os.path.join(results, HISTORY_JSON), os.path.join(results, HISTORY_MD)]
        + ([index] if index else [])))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Every line of the history (lines.history_lines), streaming history.json / history.md as lines finish."""
    if args.render:
        return render_history(os.path.abspath(args.results))
    backend, _ = resolve_backend(args.backend)
    available = _interpreters(backend)
    axes = load_axes()
    try:
        every_line = history_lines(axes, sorted(available))
        lines = select_lines(every_line, args.only, args.exclude)
    except LineError as exc:
        raise UsageError(str(exc)) from None
    if args.lines:
        for line in lines:
            print(line.id)
        print(f"{len(lines)} lines", flush=True)
        return 0
    results = os.path.abspath(args.results)
    os.makedirs(results, exist_ok=True)
    workdir = os.path.join(CACHE_DIR, "history")
    stream = os.path.join(workdir, STREAM)  # every measurement, kept: `--resume` replays (and re-renders) from it
    searches = []
    for line in lines:
        releases = domain(line, axes)
        searches.append(LineSearch.create(line, releases, axes, backend, args.stride, args.repeat))
    runner = _runner(args, backend, workdir, stream)
    previous = load_history(results) if (args.only or args.exclude or args.resume) else None
    # a filtered run updates its lines in the existing history; a resumed one keeps the earlier run's times
    kept, dropped = carried_lines((previous or {}).get("lines", []), {line.id for line in lines},
                                  {line.id for line in every_line})
    kept = kept if (args.only or args.exclude) else []
    if dropped:
        print(f"dropped {len(dropped)} line(s) the history no longer has: {', '.join(dropped[:5])}"
              + (" ..." if len(dropped) > 5 else ""), flush=True)
    earlier = {d["line"]: d.get("seconds", 0.0) for d in (previous or {}).get("lines", [])} if args.resume else {}
    earlier_wall = ((previous or {}).get("wall_s") or 0.0) if args.resume else 0.0
    previous_by = {d["line"]: d.get("measured_by") for d in (previous or {}).get("lines", [])} if args.resume else {}
    finished: dict[str, dict[str, Any]] = {}
    label = args.command_label or "nox -s history"
    commit = git_commit()[0]
    start = time.monotonic()
    total = sum(len(s.bisection.versions) for s in searches)
    print(f"backend: {backend}; {len(searches)} lines over {total} measurable releases; stride {args.stride}, "
          f"{args.repeat} confirmation runs per boundary side; streaming to {_shown(stream)}", flush=True)

    def publish(final: bool) -> dict[str, Any]:
        ordered = [finished[s.line.id] for s in searches if s.line.id in finished]
        have = {d["line"] for d in kept + ordered}
        pending = [line.id for line in every_line if line.id not in have]  # filtered out or unfinished
        elapsed = earlier_wall + time.monotonic() - start
        doc = history_doc(kept + ordered, label, backend, _now(), elapsed, pending, args.stride, args.repeat)
        doc["measured_this_run"] = {"measurements": runner.measured, "app_runs": runner.app_runs,
                                    "replayed": len(runner.memo) - runner.measured}
        _write(os.path.join(results, HISTORY_JSON), json.dumps(doc, indent=1) + "\n")
        _write(os.path.join(results, HISTORY_MD), render_markdown(doc))
        if final:
            _prune_logs(results, doc["lines"])
        return doc

    def done(s: LineSearch) -> None:
        logs = _keep_logs(runner, s, results, HISTORY_LOGS)
        seconds = s.seconds + earlier.get(s.line.id, 0.0)  # a resumed line: the time it took before, too
        finished[s.line.id] = line_doc(s.line, s.releases, s.bisection, s.measurements, logs, seconds)
        earlier_by = previous_by.get(s.line.id)
        # a resumed line that measured nothing here (replayed from the stream, re-rendered) keeps the run that
        # measured it; one this run measured (any part of) is this run's
        finished[s.line.id]["measured_by"] = earlier_by if (s.started is None and earlier_by) else \
            _measured_by(label, commit, backend)
        print(f"[{len(finished)}/{len(searches)}] " + _summary(finished[s.line.id]), flush=True)
        publish(final=False)

    try:
        runner.run(searches, done)
    except KeyboardInterrupt as exc:
        publish(final=False)
        raise Interrupted(f"interrupted: {len(finished)} of {len(searches)} lines are in results/{HISTORY_JSON} "
                          f"(partial); measurements so far in {_shown(stream)}; continue with "
                          "`nox -s history -- --resume` (and the same filters)", getattr(exc, "exit_code", 2)) from None
    doc = publish(final=True)
    index = render_index(results, doc)
    t = doc["totals"]
    if runner.rejudge:
        print(f"judged again: {len(runner.rejudged)} measurements, {runner.changed_by_rejudge} changed their answer")
    print(f"history: {t['lines']} lines, {t['cells']} cells ({t['app_runs']} app runs) over {t['measurable']} "
          f"measurable releases, {t['boundaries']} boundaries; this run measured {runner.measured} "
          f"({runner.app_runs} app runs) in {doc['wall_s']:.0f}s")
    print("written: " + ", ".join(os.path.relpath(p, REPO) for p in
                                  [os.path.join(results, HISTORY_JSON), os.path.join(results, HISTORY_MD)]
                                  + ([index] if index else [])))
    return 0


def add_parsers(sub) -> None:
    """The `bisect` and `history` subcommands (called by cli/__init__.build_parser)."""
    def search_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=("auto", "docker", "venv"), default="auto",
                       help="where cells run: docker when an engine answers (auto), or local virtualenvs")
        p.add_argument("--units", type=int, default=4, help="concurrency units forced to overlap (default 4)")
        p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="cells in parallel")
        p.add_argument("--cell-timeout", type=float, default=RunOptions.cell_timeout,
                       help="seconds one run of a cell may take before its app is killed (verdict timeout)")
        p.add_argument("--stride", type=int, default=DEFAULT_STRIDE,
                       help=f"sample every Nth release before bisecting (default {DEFAULT_STRIDE}): a change undone "
                            "within fewer releases between two samples is missed")
        p.add_argument("--repeat", type=int, default=DEFAULT_REPEATS, metavar="K",
                       help=f"runs of both releases of every boundary to confirm it (default {DEFAULT_REPEATS}); "
                            "the search itself runs each release once")
        p.add_argument("--resume", action="store_true",
                       help="reuse the measurements streamed by an earlier (interrupted) run")
        p.add_argument("--rejudge", action="store_true",
                       help="with the earlier run's measurements (implies --resume), judge each again from the run "
                            "records it kept, for a judge that changed since; what changes is streamed, then the "
                            "searches go on from the new answers")

    p = sub.add_parser("bisect", help="where the scope/tracing answers change over every release of one package")
    p.add_argument("pattern", metavar="LINE",
                   help="a cell id with one version left open, e.g. threads/plain/py3.12/sentry-sdk-* "
                        "(a variant may be an @alias: gevent/@scope-fix/py3.12/sentry-sdk-*)")
    p.add_argument("--package", default=None, help="the package to open (instead of writing its version as *)")
    p.add_argument("--min", default=None, metavar="VERSION", help="only releases at or above")
    p.add_argument("--max", default=None, metavar="VERSION", help="only releases at or below")
    p.add_argument("--out", default=os.path.join(REPO, ".matrix", "bisect"),
                   help="where bisect.json, bisect.md, the measurements and the boundary logs go")
    p.add_argument("--json", default=None, help="also write the document to this file")
    search_opts(p)
    p.set_defaults(func=cmd_bisect)

    p = sub.add_parser("history", help="bisect every app x variant over the SDK's (and gevent/eventlet/twisted/"
                                       "channels') releases; writes results/history.json, history.md")
    p.add_argument("--results", default=os.path.join(REPO, "results"), help="results directory (default results/)")
    p.add_argument("--only", action="append", default=[], metavar="KEY=V[,V]",
                   help="keep lines matching (app, variant, python, package, route, line=<glob>)")
    p.add_argument("--exclude", action="append", default=[], metavar="KEY=V[,V]", help="drop matching lines")
    p.add_argument("--lines", action="store_true", help="list the lines and exit")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: write history.json, history.md and index.html again from the committed "
                        "history.json, with reasons and causes as the current code words and groups them")
    p.add_argument("--command-label", default=None)
    search_opts(p)
    p.set_defaults(func=cmd_history)

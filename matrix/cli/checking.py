"""`check`: is my stack affected? Reads the user's requirements or lock file, maps the stack to the models
it implies, and answers each from the committed results (default) or by measuring it now (--run).

Exit codes: 0 every counted model keeps scope data apart, 1 a leak, 2 bad input, 3 could not answer.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..axes.lock import LockError, load_lock
from ..axes.spec import load_axes
from ..check.answer import EXIT_BAD_INPUT, EXIT_UNKNOWN, Report, render_json, render_text
from ..check.inputs import InputError, Parsed, looks_like_path, read_freeze, read_path, read_pins
from ..check.lookup import answer_model, wanted_pins
from ..check.models import ModelsError, imply, load_rules, parse_uses
from ..check.results import Results, ResultsMissing, load_results
from ..check.stack import build_stack
from ..check.versions import Releases, settle
from ..paths import INSTALLED


def read_inputs(args: argparse.Namespace) -> list[Parsed]:
    parsed: list[Parsed] = []
    pins: list[str] = []
    for path in args.requirement:
        parsed.append(read_path(path, requirements=True))
    for item in args.stack:
        if item == "-":
            parsed.append(read_freeze(sys.stdin.read()))
        elif looks_like_path(item) and "==" not in item:
            parsed.append(read_path(item))
        else:
            pins.append(item)
    if pins:
        parsed.append(read_pins(pins))
    if not parsed:
        raise InputError("nothing to check: give -r requirements.txt, a lock file (uv.lock, poetry.lock, "
                         "Pipfile.lock), pyproject.toml, - for pip freeze on stdin, or pins like sentry-sdk==2.75.0")
    return parsed


def _progress(entry: dict[str, Any], done: int, total: int, phase: str) -> None:
    reason = f"  ({entry['reason'][:120]})" if entry.get("reason") and entry.get("scope") != "leak" else ""
    print(f"{phase} [{done}/{total}] scope {entry.get('scope', '?'):<8} tracing {entry.get('tracing', '?'):<8} "
          f"{entry['id']}  {entry.get('duration_s', 0):.1f}s{reason}", file=sys.stderr, flush=True)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        return _check(args)
    except (InputError, ModelsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _check(args: argparse.Namespace) -> int:
    axes = load_axes()
    try:
        lock = load_lock()
    except LockError:
        lock = {}
    rules = load_rules(axes)
    uses = parse_uses(args.uses, rules, axes)
    stack = build_stack(read_inputs(args), args.python, axes.pythons)
    if not stack.has("sentry-sdk"):
        raise InputError(f"no sentry-sdk in {', '.join(stack.sources)} (on Python {stack.python}): check answers for "
                         "stacks that use the SDK; add it, or pass sentry-sdk==X.Y.Z")
    mapping = imply(stack, rules, axes, uses)
    relevant = ["sentry-sdk"]
    for implied in mapping.implied:
        if implied.axes is not None:
            relevant += list(wanted_pins(implied.axes, stack))
    relevant = [n for i, n in enumerate(relevant) if n not in relevant[:i] and stack.has(n)]
    committed: Results | None
    try:
        committed = load_results(args.results or None, explicit=bool(args.results))
    except ResultsMissing as exc:
        if not args.run:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_UNKNOWN
        committed = None
    measured_versions: dict[str, set[str]] = {}
    for cell in committed.cells if committed else []:
        for name, version in cell.get("packages", {}).items():
            measured_versions.setdefault(name, set()).add(version)
    registry = Releases(lock, measured_versions, online=not args.offline)
    notes = settle(stack, relevant, registry)
    if args.run:
        answers, run_dir = _run(args, mapping, stack, axes, lock, committed)
    else:
        answers = [answer_model(m, stack, committed, axes, lock) for m in mapping.implied]  # type: ignore[arg-type]
        run_dir = None
    report = Report("run" if args.run else "lookup", stack, mapping, answers, committed, notes, INSTALLED,
                    run_dir, tuple(relevant))
    print(render_json(report) if args.format == "json" else render_text(report), end="" if args.format != "json"
          else "\n")
    return report.exit_code


def _run(args: argparse.Namespace, mapping, stack, axes, lock, committed: Results | None):
    from .. import backends
    from ..check.measure import run_dir, run_stack
    from .common import engine_options, resolve_backend

    backend, _ = resolve_backend(args.backend)
    available = set(backends.get(backend).interpreters())
    outdir = run_dir()
    opts = engine_options(args, results_dir=outdir)
    counted = [m for m in mapping.implied if m.counted and m.axes is not None]
    print(f"measuring {', '.join(m.app for m in counted) or 'nothing'} on Python {stack.python} ({backend}); "
          f"logs in {outdir}", file=sys.stderr, flush=True)
    measured = run_stack(counted, stack, axes, lock, backend, available, opts, committed, _progress)
    answers = []
    for implied in mapping.implied:
        if implied in counted:
            answer = answer_model(implied, stack, measured, axes, lock, committed or measured)
            answer.measured_now = True
        elif committed is not None:
            answer = answer_model(implied, stack, committed, axes, lock)
        else:
            answer = answer_model(implied, stack, Results([]), axes, lock)
        answers.append(answer)
    return answers, outdir


def add_parser(sub: argparse._SubParsersAction, running) -> None:
    p = sub.add_parser("check", help="is my stack affected? answers for your requirements or lock file",
                       description="Map your stack (requirements, lock file, pyproject.toml, pip freeze, or pins) "
                                   "to the concurrency models it implies and answer each: does scope data stay "
                                   "apart, are spans parallel, and the fix. Exit 0 isolated, 1 leak, 2 bad input, "
                                   "3 could not answer.")
    p.add_argument("stack", nargs="*", metavar="FILE|-|PIN",
                   help="uv.lock, poetry.lock, Pipfile.lock, pyproject.toml, a requirements file, - (pip freeze on "
                        "stdin), or pins like sentry-sdk==2.75.0 gevent==24.2.1")
    p.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE",
                   help="a requirements file (-r and -c includes and markers are followed); repeatable")
    p.add_argument("--python", default=None, metavar="X.Y",
                   help="the Python your stack runs on (default: what the files say, else this interpreter)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lookup", dest="run", action="store_false",
                      help="answer from the committed results (the default; no cell runs)")
    mode.add_argument("--run", dest="run", action="store_true",
                      help="measure your exact stack now (cells built from your pins, any release)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--uses", action="append", default=[], metavar="MODEL[:ROUTE]",
                   help="a model your code uses that requirements cannot show (asyncio, thread-pool, ...) or the "
                        "route you run (celery:prefork): counted toward the exit code")
    p.add_argument("--results", action="append", default=[], metavar="DIR",
                   help="results directory or matrix.json to look up (repeatable; default: the committed "
                        "results/ and results/full/)")
    p.add_argument("--offline", action="store_true",
                   help="do not ask PyPI whether an unknown version is a release (it is taken as written)")
    running(p)
    p.set_defaults(func=cmd_check, run=False, backend="venv")

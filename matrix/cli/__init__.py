"""Command line of the harness (the nox sessions call this); the only place that prints.

    python -m matrix run [--only k=v] [--exclude k=v] [-j N] [--repeat K] [--units N]
    python -m matrix cell <cell-id> [<cell-id> ...] [--repeat K]
    python -m matrix plan [--only k=v] [--exclude k=v]
    python -m matrix report [--results DIR] [--diff OLD.json [--changes DIR] [--fail-on-change]]
    python -m matrix merge shard-1/matrix.json ... shard-N/matrix.json [--root results]
    python -m matrix update-axes | seed
    python -m matrix check [-r requirements.txt | uv.lock | poetry.lock | Pipfile.lock | pyproject.toml | - | PINS]
                           [--python X.Y] [--lookup | --run] [--format text|json] [--uses MODEL[:ROUTE]]
    python -m matrix bisect <cell-id with one version *> [--package NAME] [--stride N] [--repeat K]
    python -m matrix history [--only k=v] [--exclude k=v] [--lines] [--resume]

Installed (`pip install .`), the same verbs are the `sentry-context-matrix` command.

Bad input (unknown app, malformed cell id, a filter value no cell has, a Python that is not
installed) gets one line naming the value and what is allowed, and exit code 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ..axes.lock import LockError
from ..axes.policies import PolicyError
from ..axes.releases import ReleaseError
from ..axes.spec import AxesError
from ..judge.claims import ClaimsError
from ..paths import RESULTS_OUT
from ..plan.filters import parse_shard
from ..plan.sources import SourceError, lane_kind
from ..report.runinfo import folder_for
from ..run.cell import RunOptions
from .checking import add_parser as add_check_parser
from .bisecting import add_parsers as add_bisect_parsers
from .common import Interrupted, ResultsError, UsageError
from .results import cmd_merge, cmd_report, cmd_seed, cmd_update_axes
from .running import cmd_cell, cmd_plan, cmd_run


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what was wrong and what is allowed), exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def _shard(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=_prog(), description=__doc__.split("\n\n")[0])
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
            p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                           help="only shard K of N (stable assignment by cell id), e.g. for CI jobs")
            p.add_argument("--sdk-source", default=None, metavar="pre|git+URL[@REF]",
                           help="pre-release lane: the newest SDK's cells with the SDK from PyPI's newest "
                                "pre-release (pre) or a git repository; results go to results/prerelease/")

    def backend(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=("auto", "docker", "venv"), default="auto",
                       help="where cells run: docker when an engine answers (auto), or local virtualenvs")

    def running(p: argparse.ArgumentParser) -> None:
        backend(p)
        p.add_argument("--repeat", type=int, default=1, help="run each cell K times; disagreement gives `flaky`")
        p.add_argument("--units", type=int, default=4, help="concurrency units forced to overlap (default 4)")
        p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="cells in parallel")
        p.add_argument("--cell-timeout", type=float, default=RunOptions.cell_timeout,
                       help="seconds one run of a cell may take before its app is killed (verdict timeout)")

    p = sub.add_parser("plan", help="list the planned cells")
    common(p)
    backend(p)
    p.add_argument("--verbose", action="store_true", help="also list the combinations not planned, and why")
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
    p = sub.add_parser("update-axes", help="resolve the axes policies against PyPI into matrix/axes/axes.lock.json")
    p.add_argument("--offline", action="store_true", help="use the cached PyPI data under .matrix/pypi")
    p.add_argument("--only", action="append", default=[], metavar="PACKAGE",
                   help="refresh only these packages' picks (the others keep what the lock has)")
    p.set_defaults(func=cmd_update_axes)
    p = sub.add_parser("merge", help="merge every shard of one run (--shard K/N) into its size's folder, logs included")
    p.add_argument("shards", nargs="+", metavar="MATRIX_JSON",
                   help="each shard's matrix.json (its logs/ beside it); all N shards of one run, each once")
    p.add_argument("--root", default=RESULTS_OUT,
                   help="the results root: the merge writes into its folder for the shards' size "
                        "(ROOT/full/ for --full, ROOT/ for the default size, ROOT/prerelease/... for a lane)")
    p.add_argument("--results", default=None, help="write exactly here instead of the size's folder under --root")
    p.add_argument("--command-label", default=None)
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser("report", help="re-render results/ from results/matrix.json")
    common(p, filters=False)
    p.add_argument("--diff", metavar="OLD_MATRIX_JSON", default=None,
                   help="list verdict changes, new and vanished cells against an older matrix.json (writes nothing)")
    p.add_argument("--fail-on-change", action="store_true",
                   help="with --diff: exit 1 when an answer changed (same cell, or a new release by role)")
    p.add_argument("--changes", metavar="DIR", default=None,
                   help="with --diff: write DIR/badges/<app>.json and, on a change, prepend the entry to "
                        "DIR/CHANGES.md and DIR/changes.json")
    p.add_argument("--old-base", metavar="URL_OR_DIR", default=None,
                   help="with --changes: where the previous cells' logs are (e.g. the blob URL of the "
                        "commit the run started from); default: the --diff file's folder, relative")
    p.add_argument("--diff-json", metavar="FILE", default=None, help="with --diff: also write the diff as JSON")
    p.add_argument("--screenshots", action="store_true",
                   help="also save index.png (1400x900) and index-phone.png (390x844) with headless Chromium")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("seed", help="build the Docker base images offline (Debian rootfs + local interpreters)")
    p.add_argument("pythons", nargs="*", help="minor versions (default: every interpreter found)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every docker command")
    p.set_defaults(func=cmd_seed)
    add_check_parser(sub, running)
    add_bisect_parsers(sub)
    return parser


def _prog() -> str:
    """How the user called us: the installed `sentry-context-matrix` script, or `python -m matrix`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith(("__main__.py", ".py")) and name != "-c" else "python -m matrix"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C (every app and container of the run killed first, the
    partial stream kept); the process then exits 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


def handle_termination() -> None:
    """SIGTERM (`timeout`, `kill`, a cancelled CI job) and SIGHUP (a closed terminal) stop the run the
    way Ctrl-C does instead of killing the harness and leaving its apps behind; SIGINT is Ctrl-C even
    where the parent shell started the harness with it ignored."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _terminate)
        # A job started in the background of a non-interactive shell (CI scripts, `cmd &`) inherits SIGINT
        # ignored, and Python keeps it so: Ctrl-C and a CI runner's first cancel signal would do nothing.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handle_termination()
    if getattr(args, "results", "") is None and args.command != "merge":
        lane = lane_kind(getattr(args, "sdk_source", None))
        args.results = os.path.join(RESULTS_OUT,
                                    folder_for("full" if getattr(args, "full", False) else "default", lane))
    try:
        return args.func(args)
    except Interrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (UsageError, AxesError, LockError, PolicyError, ReleaseError, ClaimsError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)

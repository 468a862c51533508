"""Drive many bisections at once through the engine: the search decides (search.py), this module measures.

One mock server and one pool of `jobs` workers serve every line. Whenever a worker is free it takes the
next release some line wants, earlier lines first, so lines finish one after another and their results
stream out while later lines still run. A release two lines both want (the same cell) runs once.

Every measurement is appended to a stream (JSON lines) as it finishes, and the stream is the memo: a
`--resume` replays the searches from it (they are deterministic given the answers) and only measures
what is missing. Environments are the backends' cached ones (keyed by interpreter and pins), so a rerun
builds nothing it built before.

A search measurement that ends `error` or `timeout` is measured once more at once (a loaded machine can
time a cell out): the second answer counts, and the measurement says it was retried and why.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import backends
from ..axes.spec import Axes
from ..engine import EngineOptions, abort_cells, fatal_write_error, not_run, run_one
from ..judge.outcome import CellOutcome
from ..judge.verdict import combine, judge
from ..plan.cells import Cell, log_relpath
from ..report.entries import cell_entry
from ..run.cell import RunOptions
from ..run.record import RunRecord
from ..sentry.server import MockSentryServer
from .lines import Line
from .search import Answer, Bisection, Probe, major_anchors

#: /facts keys that say nothing about what changed between two releases (or are shown elsewhere).
_FACT_NOISE = ("app", "variant", "units", "pid", "python", "implementation", "sdk_version", "packages")
_EVIDENCE_CHECKS = ("scope_leak", "span_nesting", "children_bleed", "delivery", "control")


def measurement(outcome: CellOutcome, repeat: int, backend: str, retried: str | None = None) -> dict[str, Any]:
    """What the history keeps of one measurement (one cell run `repeat` times)."""
    entry = cell_entry(outcome)
    facts = {k: v for k, v in (outcome.facts or {}).items() if k not in _FACT_NOISE}
    evidence = {name: check["evidence"][:3] for name, check in entry["checks"].items()
                if name in _EVIDENCE_CHECKS and not check["ok"] and check.get("evidence")}
    m = {"cell": entry["id"], "variant": outcome.cell.variant, "repeat": repeat, "backend": backend,
         "units": outcome.units, "verdict": entry["verdict"], "scope": entry["scope"], "tracing": entry["tracing"],
         "reason": entry.get("reason", ""), "context_backend": entry["context_backend"],
         "context_detail": entry.get("context_detail"), "facts": facts, "evidence": evidence,
         "packages": entry["packages"], "python": entry["python"], "log": entry.get("log"),
         "duration_s": entry["duration_s"]}
    if retried:
        m["retried"] = retried
    return m


def answer_of(m: dict[str, Any]) -> Answer:
    return Answer(m["scope"], m["tracing"], m["verdict"], m.get("reason", ""))


def read_stream(path: str) -> list[dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line
    except OSError:
        pass
    return out


@dataclass
class LineSearch:
    """One line's search and everything measured for it."""

    line: Line
    releases: list[tuple[str, str | None]]  # every final release, and why it is not measured (or None)
    bisection: Bisection
    cells: dict[str, Cell]  # version -> cell (measured releases only)
    measurements: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (version, repeat)
    started: float | None = None
    seconds: float = 0.0  # wall time from its first measurement to its end
    reported: bool = False

    @classmethod
    def create(cls, line: Line, releases: list[tuple[str, str | None]], axes: Axes, backend: str,
               stride: int, repeats: int) -> "LineSearch":
        versions = [v for v, reason in releases if reason is None]
        cells = {v: line.cell(axes, v, backend) for v in versions}
        return cls(line, releases, Bisection(versions, stride, major_anchors(versions), repeats), cells)

    def key(self, probe: Probe) -> tuple[str, int]:
        return self.cells[probe.version].id, probe.repeat


class Runner:
    def __init__(self, backend: str, run_opts: RunOptions, jobs: int, workdir: str, stream_path: str,
                 memo: dict[tuple[str, int], dict[str, Any]] | None = None,
                 progress: Callable[[str], None] = lambda text: print(text, flush=True)):
        self.backend_name = backend
        self.run_opts = run_opts
        self.jobs = max(1, jobs)
        self.workdir = workdir
        self.stream_path = stream_path
        self.memo = dict(memo or {})
        self.progress = progress
        self.measured = 0  # measurements made by this run (not replayed from the memo)
        self.app_runs = 0
        self.rejudge = False  # judge replayed measurements again from their kept records (a changed judge)
        self.rejudged: set[tuple[str, int]] = set()
        self.changed_by_rejudge = 0
        self._stream = None

    # ---- one measurement -----------------------------------------------------------------------

    def options(self, repeat: int) -> EngineOptions:
        return EngineOptions(run=self.run_opts, repeat=repeat, jobs=1,
                             results_dir=os.path.join(self.workdir, f"r{repeat}"),
                             records_dir=os.path.join(self.workdir, "records", f"r{repeat}"))

    def _measure(self, cell: Cell, repeat: int, backend: backends.Backend, server: MockSentryServer) -> dict:
        opts = self.options(repeat)

        def once() -> CellOutcome:
            try:
                return run_one(cell, backend, server, opts)
            except Exception as exc:  # a harness bug in one cell is that cell's `error`
                if fatal_write_error(exc):
                    raise
                traceback.print_exc(file=sys.stderr)
                return not_run(cell, "error", f"harness error: {type(exc).__name__}: {exc}", cell.python,
                               opts.run.units)

        outcome, retried = once(), None
        if repeat == 1 and outcome.judgement.verdict in ("error", "timeout"):
            retried = f"{outcome.judgement.verdict}: {outcome.judgement.reason}"
            outcome = once()
        m = measurement(outcome, repeat, self.backend_name, retried)
        if m.get("log"):
            m["log"] = os.path.join(f"r{repeat}", m["log"])
        m["runs"] = repeat * (2 if retried else 1)
        return m

    def rejudged_measurement(self, cell: Cell, m: dict[str, Any]) -> dict[str, Any]:
        """`m` judged again by today's judge from the run records it kept (records/r<K>/<cell>/attempt-*.json):
        what the apps and the mock server observed does not change, only how it is read. `m` as it was when a
        record is missing (a cell that never started has none)."""
        repeat = m["repeat"]
        folder = os.path.join(self.workdir, "records", f"r{repeat}", cell.id)
        records = []
        for attempt in range(1, repeat + 1):
            try:
                with open(os.path.join(folder, f"attempt-{attempt}.json"), encoding="utf-8") as fh:
                    records.append(RunRecord.from_json(fh.read()))
            except (OSError, ValueError, KeyError, TypeError):
                return m
        judgement, repeats = combine([judge(record) for record in records])
        log, prefix = m.get("log"), f"r{repeat}/"
        outcome = CellOutcome(cell, judgement, m["python"], dict(m.get("packages") or {}), repeats, m["units"],
                              m.get("duration_s", 0.0), log[len(prefix):] if log and log.startswith(prefix) else log,
                              records[0].facts)
        new = measurement(outcome, repeat, self.backend_name, m.get("retried"))
        new["log"], new["runs"] = log, m.get("runs", repeat)
        return new

    def log_path(self, m: dict[str, Any]) -> str | None:
        return os.path.join(self.workdir, m["log"]) if m.get("log") else None

    # ---- the loop ------------------------------------------------------------------------------

    def _feed(self, search: LineSearch) -> None:
        """Record every wanted release the memo already answers (replays a resumed search)."""
        while True:
            fed = False
            for probe in search.bisection.wanted():
                key = search.key(probe)
                m = self.memo.get(key)
                if m is not None and self.rejudge and key not in self.rejudged:
                    self.rejudged.add(key)
                    new = self.rejudged_measurement(search.cells[probe.version], m)
                    if answer_of(new) != answer_of(m):
                        self.changed_by_rejudge += 1
                        self.memo[key] = m = new
                        if self._stream is not None:  # the newer line wins in load_memo: a later --resume keeps it
                            self._stream.write(json.dumps(m) + "\n")
                            self._stream.flush()
                if m is not None:
                    search.bisection.record(probe, answer_of(m))
                    search.measurements[(probe.version, probe.repeat)] = m
                    fed = True
            if not fed:
                return

    def run(self, searches: list[LineSearch], on_line_done: Callable[[LineSearch], None]) -> None:
        backend = backends.get(self.backend_name)
        server = MockSentryServer().start()
        pool = ThreadPoolExecutor(max_workers=self.jobs)
        inflight: dict[tuple[str, int], Future] = {}
        stream = self._stream = open(self.stream_path, "a", encoding="utf-8")
        try:
            while True:
                active = []
                for search in searches:
                    if search.reported:
                        continue
                    self._feed(search)
                    if search.bisection.done:
                        search.reported = True
                        if search.started is not None:
                            search.seconds += time.monotonic() - search.started
                        on_line_done(search)
                    else:
                        active.append(search)
                if not active:
                    return
                for search in active:  # earlier lines first
                    for probe in search.bisection.wanted():
                        key = search.key(probe)
                        if key in inflight or len(inflight) >= self.jobs:
                            continue
                        if search.started is None:
                            search.started = time.monotonic()
                        inflight[key] = pool.submit(self._measure, search.cells[probe.version], probe.repeat,
                                                    backend, server)
                if not inflight:  # cannot happen: an active search wants something not in the memo
                    raise RuntimeError("bisect: nothing to run but searches are unfinished")
                finished, _ = wait(list(inflight.values()), return_when=FIRST_COMPLETED)
                for key in [k for k, f in inflight.items() if f in finished]:
                    m = inflight.pop(key).result()
                    self.memo[key] = m
                    self.measured += 1
                    self.app_runs += m["runs"]
                    stream.write(json.dumps(m) + "\n")
                    stream.flush()
                    self.progress(f"  {m['scope']:<8} {m['tracing']:<9} x{key[1]} {key[0]}"
                                  + (f"  ({m['verdict']}: {m['reason'][:120]})" if m["scope"] == "unknown" else ""))
        except BaseException:
            abort_cells(pool, server)
            raise
        finally:
            pool.shutdown(wait=True)
            server.stop()
            stream.close()
            self._stream = None

    # ---- evidence ------------------------------------------------------------------------------

    def keep_log(self, m: dict[str, Any], outdir: str, folder: str) -> str | None:
        """Copy a measurement's log below outdir/folder; return its path relative to outdir."""
        src = self.log_path(m)
        if not src or not os.path.isfile(src):
            return None
        rel = os.path.join(folder, log_relpath(m["cell"])[len("logs/"):])
        if m["repeat"] > 1:
            rel = rel[: -len(".log")] + f".x{m['repeat']}.log"
        dst = os.path.join(outdir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        return rel


def load_memo(path: str, backend: str, units: int) -> dict[tuple[str, int], dict[str, Any]]:
    """The stream of an earlier run as a memo: measurements on the same backend with the same units."""
    memo = {}
    for m in read_stream(path):
        if m.get("backend") == backend and m.get("units") == units:
            memo[(m["cell"], m["repeat"])] = m
    return memo

"""Run one cell once: start its app in a backend session, drive the rounds, flush, collect.

Side effects live here (the app's process, HTTP, the log file); nothing is decided here. The
result is a RunRecord for the judge. Every wait is bounded, and the app's whole process group is
killed on the way out whatever happened.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..backends.base import Session
from ..backends.process import AppProcess
from ..plan.cells import Cell
from ..sentry.server import MockSentryServer
from .client import free_port, http
from .logs import LogGuard
from .record import RunRecord
from .rounds import ROUNDS, drive_round, probe_memory

# What the engine hands in to know when everything a run should deliver has arrived (the judge's
# own sorting of items, so that the run stage never imports the judge).
DeliveryPredicate = Callable[[int, list[dict]], Callable[[list[dict]], bool]]


@dataclass(frozen=True)
class RunOptions:
    units: int = 4
    children: int = 3
    barrier_timeout: float = 10.0
    start_timeout: float = 60.0
    delivery_timeout: float = 15.0
    cell_timeout: float = 180.0


# An app may outlive its cell's timeout by this much at most (its own --max-seconds), whatever
# happens to the harness.
APP_LIFETIME_SLACK = 30.0


def app_argv(python: str, cell: Cell, dsn: str, port: int, opts: RunOptions, apps_dir: str,
             parent_pid: int = 0) -> list[str]:
    argv = [
        python, "-u", os.path.join(apps_dir, cell.app, "app.py"),
        "--dsn", dsn, "--port", str(port), "--units", str(opts.units), "--variant", cell.variant,
        "--children", str(opts.children), "--barrier-timeout", str(opts.barrier_timeout),
        "--max-seconds", f"{opts.cell_timeout + APP_LIFETIME_SLACK:g}",
    ]
    if parent_pid:
        argv += ["--parent-pid", str(parent_pid)]
    return argv + (["--route", cell.route] if cell.route else [])


# /facts answered with a server error this many times in a row, over at least BROKEN_SECONDS: the app is up,
# and every request it serves fails (e.g. an SDK whose Django integration breaks the request_started signal
# of a newer Django). Waiting out the start timeout would learn nothing more; a server error while an app
# warms up (none is known) would have to outlast both bounds to be taken for this.
BROKEN_ANSWERS = 5
BROKEN_SECONDS = 1.0
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?[A-Z]\w*(?:Error|Exception|Exit)(?::.*)?$")


def wait_ready(app: AppProcess, url: str, timeout: float) -> tuple[dict | None, int | None]:
    """Poll /facts until it answers 200 (-> facts, None), the process dies or time runs out (-> None, None),
    or it keeps answering with a server error (BROKEN_ANSWERS in a row over BROKEN_SECONDS: -> None, status)."""
    deadline = time.monotonic() + timeout
    broken, since = 0, 0.0
    while time.monotonic() < deadline and app.alive():
        try:
            status, body = http("GET", url + "/facts", timeout=2)
            if status == 200 and isinstance(body, dict):
                return body, None
            if status >= 500:
                broken, since = broken + 1, since if broken else time.monotonic()
                if broken >= BROKEN_ANSWERS and time.monotonic() - since >= BROKEN_SECONDS:
                    return None, status
            else:
                broken = 0
        except OSError:
            broken = 0
        time.sleep(0.05)
    return None, None


_APP_ERROR_LINE = re.compile(r"^[\w-]+: error: ")


def _app_lines(path: str, count: int) -> list[str]:
    """The app's own last lines of its log, stripped (the harness's `[matrix ...]` notes left out)."""
    return [line.strip() for line in _tail(path, count) if line.strip() and not line.startswith("[matrix")]


def _last(lines: list[str], pick: Callable[[str], object]) -> str | None:
    return next((line for line in reversed(lines) if pick(line)), None)


def exit_cause(path: str) -> str:
    """Why an app exited before answering, from its log: its own `<app>: error: ...` line, else the last
    exception line (`ModuleNotFoundError: No module named 'cgi'`), else its last line that is not the SDK's
    debug output (an exiting SDK logs "background worker got kill request" after the cause)."""
    lines = _app_lines(path, 60)
    return (_last(lines, _APP_ERROR_LINE.match) or _last(lines, _EXCEPTION_LINE.match)
            or _last(lines, lambda line: not line.startswith("[sentry]")) or (lines[-1] if lines else "no output"))


def last_exception(path: str) -> str | None:
    """The last exception line in the app's log (`TypeError: ...`): what made its requests fail."""
    return _last(_app_lines(path, 400), _EXCEPTION_LINE.match)


def stop_app(app: AppProcess, url: str, grace: float = 5.0) -> None:
    """Ask politely (/shutdown), then SIGTERM, then SIGKILL the whole group; always reaped."""
    if app.alive():
        try:
            http("POST", url + "/shutdown", timeout=2)
        except OSError:
            pass
        app.reap(grace)
    else:
        app.reap(0)


DELIVERY_SETTLE = 2.0

# apps/_common/realwatch.py: a green app whose hub stayed blocked logs its stacks under this mark and
# exits with this code (within a few seconds of the stall, instead of hanging until every timeout).
DEADLOCK_EXIT = 5
DEADLOCK_MARK = "deadlock:"


def deadlock_report(path: str, limit: int = 8192) -> str | None:
    """The app's deadlock report from its log: the marked line and the stacks after it."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 262144))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    start = text.rfind("] " + DEADLOCK_MARK)
    if start < 0:
        return None
    report = text[start + 2:]
    end = report.find("\n[matrix ")
    return (report[:end] if end >= 0 else report)[:limit].rstrip()


def _tail(path: str, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            return fh.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []


def _note(log_path: str, text: str) -> None:
    with open(log_path, "a") as fh:
        fh.write(f"[matrix {time.strftime('%H:%M:%S')}] {text}\n")


def run_cell_once(cell: Cell, python: str, server: MockSentryServer, log_path: str, opts: RunOptions,
                  session: Session, delivered: DeliveryPredicate, attempt: int = 1, log_rel: str = "",
                  memory_decided: Callable[[dict], bool] | None = None) -> RunRecord:
    """Start the app for this cell in `session`, run both rounds, flush, and record everything observed.
    `delivered(units, normal answers)` says when every expected item has arrived; `memory_decided(probe so
    far)` may end the memory probe early (both the judge's rules, handed in)."""
    record = RunRecord(cell_id=cell.id, units=opts.units, attempt=attempt, log=log_rel or log_path)
    project = server.new_project()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = app_argv(python, cell, server.dsn(project), port, opts, session.apps_dir, session.parent_pid)
    _note(log_path, f"attempt {attempt}: {' '.join(argv)}")
    t0 = time.monotonic()
    guard = LogGuard(log_path)  # an app that floods its output cannot fill the disk
    app = session.launch(argv, log_path)
    guard.__enter__()
    watchdog = threading.Timer(opts.cell_timeout, lambda: (setattr(record, "timed_out", "cell"), app.kill()))
    watchdog.daemon = True
    try:
        watchdog.start()
        record.facts, broken = wait_ready(app, base, opts.start_timeout)
        record.timings["start_s"] = round(time.monotonic() - t0, 3)
        if record.facts is None:
            if broken is not None:
                cause = last_exception(log_path)
                record.start_error = (f"the app answers every request with HTTP {broken} (/facts, "
                                      f"{BROKEN_ANSWERS}+ times in a row)" + (f": {cause}" if cause else ""))
            elif app.alive():
                record.timed_out = record.timed_out or "start"
                record.start_error = f"the app did not answer /facts within {opts.start_timeout:g}s"
            else:
                record.start_error = f"the app exited before answering (exit {app.returncode}): {exit_cause(log_path)}"
            return record
        record.started = True
        # A unit may wait at two bounded barriers (units, then its children): beyond that it hangs.
        request_timeout = opts.barrier_timeout * 2 + 10
        for name in ROUNDS:
            t = time.monotonic()
            # Units sent in turn (the app's `arrival`): only the normal round; the control shares one scope.
            in_turn = opts.barrier_timeout if cell.arrival == "in-turn" and name == "normal" else None
            notes: list[str] = []
            record.responses[name] = drive_round(base, name, opts.units, request_timeout, cell.route,
                                                 in_turn=in_turn, notes=notes)
            if in_turn is not None:
                notes.insert(0, f"{name} round: units sent in turn (each once the one before is at the barrier)")
            for line in notes:
                _note(log_path, line)
            record.timings[f"{name}_s"] = round(time.monotonic() - t, 3)
            if all(str(a.get("error", "")).startswith("no answer") for a in record.responses[name]):
                _note(log_path, f"no unit of the {name} round answered: the app hangs; skipping the rest")
                return record
        if cell.memory is not None:
            t = time.monotonic()
            record.memory = probe_memory(cell, base, opts.units, request_timeout, memory_decided)
            record.timings["memory_s"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        settle = None
        try:
            status, body = http("POST", base + "/flush", timeout=15)
            # The SDK drained its queue: what has not arrived once nothing came for DELIVERY_SETTLE
            # seconds was dropped (e.g. 0.x/1.x's recursion guard on a shared scope), not delayed.
            settle = DELIVERY_SETTLE if status == 200 and isinstance(body, dict) and body.get("flushed") else None
        except OSError as exc:
            _note(log_path, f"flush failed: {exc}")
        record.items = server.wait_for_items(project, delivered(opts.units, record.responses.get("normal", [])),
                                             opts.delivery_timeout, settle)
        record.timings["delivery_s"] = round(time.monotonic() - t, 3)
        return record
    finally:
        watchdog.cancel()
        t = time.monotonic()
        stop_app(app, base)
        session.after_stop()
        guard.finish()
        record.timings["stop_s"] = round(time.monotonic() - t, 3)
        record.timings["total_s"] = round(time.monotonic() - t0, 3)
        if app.returncode is not None:
            code = app.returncode
            record.exit_code, record.exit_signal = (None, -code) if code < 0 else (code, None)
        record.killed = app.killed
        if not record.items:
            record.items = server.items(project)
        server.reset(project)
        record.log_tail = _tail(log_path)
        if record.exit_code == DEADLOCK_EXIT:
            record.deadlock = deadlock_report(log_path)
        _note(log_path, f"attempt {attempt} done: exit={record.exit_code} signal={record.exit_signal} "
                        f"killed={record.killed} items={len(record.items)} timings={record.timings}")

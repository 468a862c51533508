"""Run one cell: start its app, drive the rounds, flush, collect what the mock server got.

Side effects live here (processes, HTTP, the log file); nothing is decided here. The result is
a RunRecord for the judge. Every wait is bounded, and the app's whole process group is killed
on the way out whatever happened.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from .cells import Cell
from .mock_server import MockSentryServer
from .paths import APPS_DIR, REPO
from .records import RunRecord

ROUNDS = ("normal", "control")
# No proxy may ever see loopback traffic, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class RunOptions:
    units: int = 4
    children: int = 3
    barrier_timeout: float = 10.0
    start_timeout: float = 60.0
    delivery_timeout: float = 15.0
    cell_timeout: float = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, timeout: float) -> tuple[int, Any]:
    """One request to the app; returns (status, parsed JSON or text). Raises OSError on no answer."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return status, body.decode("utf-8", "replace")


_live: set["AppProcess"] = set()
_live_lock = threading.Lock()


def kill_all_apps() -> int:
    """Kill every app process group still running (Ctrl-C, a crashing engine). Returns how many."""
    with _live_lock:
        apps = list(_live)
    for app in apps:
        app.kill(signal.SIGKILL)
    return len(apps)


class AppProcess:
    """Owns one app server process: start, wait until it answers, stop. Always reaped.

    The app runs in its own session (process group) so that stopping it also stops anything it
    spawned (gunicorn workers, daphne children). Live processes are registered so that an
    interrupted run can kill them all (`kill_all_apps`).
    """

    def __init__(self, argv: list[str], log_path: str, env: dict[str, str]):
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.killed = False

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, env=self.env, start_new_session=True,
            )
        with _live_lock:
            _live.add(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, url: str, timeout: float) -> dict | None:
        """Poll /facts until it answers 200 (-> facts), the process dies, or time runs out (-> None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            try:
                status, body = http("GET", url + "/facts", timeout=2)
                if status == 200 and isinstance(body, dict):
                    return body
            except OSError:
                pass
            time.sleep(0.05)
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.killed = True
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self, url: str, grace: float = 5.0) -> None:
        """Ask politely (/shutdown), then SIGTERM, then SIGKILL the whole group; always reap."""
        if self.proc is None:
            return
        if self.alive():
            try:
                http("POST", url + "/shutdown", timeout=2)
            except OSError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGTERM)
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.kill(signal.SIGKILL)
        self.proc.wait()
        self.kill(signal.SIGKILL)  # stragglers left in the group (the leader is gone already)
        with _live_lock:
            _live.discard(self)


class VenvLauncher:
    """Runs the app directly with the env's interpreter (the venv backend)."""

    apps_dir = APPS_DIR

    def __enter__(self) -> "VenvLauncher":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def after_stop(self) -> None:
        pass


class DockerLauncher:
    """Runs the app inside the cell's container (apps/ mounted read-only at /apps, host network).

    One container per cell, started on enter and always removed on exit; the app is a
    `docker exec` child, and whatever it leaves behind is killed inside the container after
    every attempt.
    """

    def __init__(self, env: Any):
        from .images import APPS_MOUNT, cell_container

        self.apps_dir = APPS_MOUNT
        self.box = cell_container(env)

    def __enter__(self) -> "DockerLauncher":
        self.box.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.box.stop()

    def wrap(self, argv: list[str]) -> list[str]:
        return self.box.exec_argv(argv)

    def after_stop(self) -> None:
        self.box.kill_processes()


def app_argv(python: str, cell: Cell, dsn: str, port: int, opts: RunOptions, apps_dir: str = APPS_DIR) -> list[str]:
    argv = [
        python, "-u", os.path.join(apps_dir, cell.app, "app.py"),
        "--dsn", dsn, "--port", str(port), "--units", str(opts.units), "--variant", cell.variant,
        "--children", str(opts.children), "--barrier-timeout", str(opts.barrier_timeout),
    ]
    return argv + (["--route", cell.route] if cell.route else [])


def app_environ() -> dict[str, str]:
    """A clean environment for the app: no inherited PYTHONPATH/virtualenv, no proxies."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "TZ", "DOCKER_HOST")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def websocket_unit(url: str, timeout: float) -> tuple[int, Any]:
    """One unit over a websocket: connect, read the single text frame the app answers with.

    The asyncio client of `websockets` (its own loop per call, in the driving thread): the sync
    client was seen to report the close without the frame before it (about 2 in 2000 connections).
    """
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    async def one() -> str:
        async with connect(url, open_timeout=timeout, close_timeout=2, proxy=None) as ws:
            return await asyncio.wait_for(ws.recv(), timeout)

    try:
        text = asyncio.run(one())
    except (WebSocketException, asyncio.TimeoutError, TimeoutError) as exc:
        raise OSError(f"websocket {type(exc).__name__}: {exc}") from None
    try:
        return 200, json.loads(text)
    except ValueError:
        return 200, text


def drive_round(base_url: str, name: str, units: int, timeout: float, route: str | None = None,
                unit_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Send all units' requests of one round at once; one answer (or error) per unit."""

    def one(unit: int) -> dict[str, Any]:
        try:
            if route == "websocket":
                ws_base = "ws://" + base_url.split("://", 1)[1]
                status, body = websocket_unit(f"{ws_base}/ws/unit/{unit}?round={name}", timeout)
            else:
                status, body = http("GET", f"{base_url}/unit/{unit}?round={name}", timeout=timeout)
        except OSError as exc:
            return {"unit": unit, "round": name, "error": f"no answer: {exc}"}
        if not isinstance(body, dict):
            return {"unit": unit, "round": name, "error": f"HTTP {status}: {str(body)[:200]}"}
        if status != 200 and not body.get("error"):
            body["error"] = f"HTTP {status}"
        return body

    with ThreadPoolExecutor(max_workers=units) as pool:
        return list(pool.map(one, unit_ids or range(1, units + 1)))


def rss_kib(base_url: str) -> int:
    status, body = http("GET", base_url + "/rss", timeout=10)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("rss_kib"), int):
        raise OSError(f"/rss answered HTTP {status}: {str(body)[:120]}")
    return body["rss_kib"]


def probe_memory(cell: Cell, base_url: str, opts: RunOptions, timeout: float) -> dict[str, Any]:
    """Warm up, then two equal windows of load requests (N at a time), reading the app's RSS
    before and after each window."""
    probe = cell.memory
    assert probe is not None
    half = max(1, probe.requests // 2)
    result: dict[str, Any] = {"requests": 2 * half, "warmup": probe.warmup,
                              "threshold_kib_per_request": probe.kib_per_request, "failed_requests": 0}

    def load(count: int) -> None:
        for start in range(0, count, opts.units):
            batch = list(range(1, min(opts.units, count - start) + 1))
            for answer in drive_round(base_url, "load", opts.units, timeout, cell.route, batch):
                if answer.get("error"):
                    result["failed_requests"] += 1
                    result.setdefault("first_failure", f"unit {answer.get('unit')}: {answer['error']}"[:200])

    try:
        t = time.monotonic()
        load(probe.warmup)
        result["rss_kib"] = [rss_kib(base_url)]
        for _ in range(2):
            load(half)
            result["rss_kib"].append(rss_kib(base_url))
        result["seconds"] = round(time.monotonic() - t, 3)
    except OSError as exc:
        result["error"] = str(exc)
    return result


def expected_items(units: int, responses: list[dict[str, Any]]) -> Callable[[list[dict]], bool]:
    """True once every unit's message (both rounds) and transaction have arrived (the judge's own
    sorting decides what belongs to which unit, renamed transactions included)."""
    from .judge import sort_items, traced_units

    wanted = set(range(1, units + 1))
    traced = traced_units(responses, units)

    def done(items: list[dict]) -> bool:
        obs = sort_items(items, responses)
        return wanted <= set(obs.messages) and wanted <= set(obs.controls) and traced <= set(obs.transactions)

    return done


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


def run_cell_once(cell: Cell, python: str, server: MockSentryServer, log_path: str,
                  opts: RunOptions, attempt: int = 1, log_rel: str = "",
                  launcher: VenvLauncher | DockerLauncher | None = None) -> RunRecord:
    """Start the app for this cell, run both rounds, flush, and record everything observed."""
    launcher = launcher or VenvLauncher()
    record = RunRecord(cell_id=cell.id, units=opts.units, attempt=attempt, log=log_rel or log_path)
    project = server.new_project()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = launcher.wrap(app_argv(python, cell, server.dsn(project), port, opts, launcher.apps_dir))
    _note(log_path, f"attempt {attempt}: {' '.join(argv)}")
    app = AppProcess(argv, log_path, app_environ())
    t0 = time.monotonic()
    watchdog = threading.Timer(opts.cell_timeout, lambda: (setattr(record, "timed_out", "cell"), app.kill()))
    watchdog.daemon = True
    try:
        app.start()
        watchdog.start()
        record.facts = app.wait_ready(base, opts.start_timeout)
        record.timings["start_s"] = round(time.monotonic() - t0, 3)
        if record.facts is None:
            if app.alive():
                record.timed_out = record.timed_out or "start"
                record.start_error = f"the app did not answer /facts within {opts.start_timeout:g}s"
            else:
                tail = [line for line in _tail(log_path) if line.strip() and not line.startswith("[matrix")]
                record.start_error = f"the app exited before answering (exit {app.proc.returncode}): " + (
                    tail[-1].strip() if tail else "no output")
            return record
        record.started = True
        # A unit may wait at two bounded barriers (units, then its children): beyond that it hangs.
        request_timeout = opts.barrier_timeout * 2 + 10
        for name in ROUNDS:
            t = time.monotonic()
            record.responses[name] = drive_round(base, name, opts.units, request_timeout, cell.route)
            record.timings[f"{name}_s"] = round(time.monotonic() - t, 3)
            if all(str(a.get("error", "")).startswith("no answer") for a in record.responses[name]):
                _note(log_path, f"no unit of the {name} round answered: the app hangs; skipping the rest")
                return record
        if cell.memory is not None:
            t = time.monotonic()
            record.memory = probe_memory(cell, base, opts, request_timeout)
            record.timings["memory_s"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        try:
            http("POST", base + "/flush", timeout=15)
        except OSError as exc:
            _note(log_path, f"flush failed: {exc}")
        record.items = server.wait_for_items(project, expected_items(opts.units, record.responses.get("normal", [])),
                                             opts.delivery_timeout)
        record.timings["delivery_s"] = round(time.monotonic() - t, 3)
        return record
    finally:
        watchdog.cancel()
        t = time.monotonic()
        app.stop(base)
        launcher.after_stop()
        record.timings["stop_s"] = round(time.monotonic() - t, 3)
        record.timings["total_s"] = round(time.monotonic() - t0, 3)
        if app.proc is not None and app.proc.returncode is not None:
            code = app.proc.returncode
            record.exit_code, record.exit_signal = (None, -code) if code < 0 else (code, None)
        record.killed = app.killed
        if not record.items:
            record.items = server.items(project)
        server.reset(project)
        record.log_tail = _tail(log_path)
        _note(log_path, f"attempt {attempt} done: exit={record.exit_code} signal={record.exit_signal} "
                        f"killed={record.killed} items={len(record.items)} timings={record.timings}")

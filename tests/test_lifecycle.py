"""No app outlives the run: SIGTERM/SIGHUP handled like Ctrl-C, a SIGKILLed harness takes its apps with it,
an app whose harness died before it started exits by itself, and on Docker no container of a dead run
survives the next run. Real harness processes, real apps, real containers; every wait is bounded and each
test prints how long it took until nothing of the run was left."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from matrix.backends.docker.engine import engine_available
from matrix.backends.interpreters import discover
from matrix.paths import REPO
from tests.helpers import app_processes

MINOR = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in discover()), None)
pytestmark = pytest.mark.skipif(MINOR is None, reason="no Python 3.10+ interpreter installed")
GONE_WITHIN = 15.0  # seconds: generous for a loaded 2-core machine; the measured times are printed


def processes_of(harness_pid: int) -> list[int]:
    """Live (non-zombie) app processes started for the harness `harness_pid` (their --parent-pid)."""
    return app_processes(f"--parent-pid {harness_pid} ")


def wait_until_gone(harness_pid: int, bound: float = GONE_WITHIN) -> float:
    """Seconds until no app of that harness is alive (fails after `bound`)."""
    start = time.monotonic()
    while processes_of(harness_pid):
        if time.monotonic() - start > bound:
            pytest.fail(f"apps of harness {harness_pid} still alive after {bound}s: {processes_of(harness_pid)}")
        time.sleep(0.05)
    return time.monotonic() - start


def start_run(results, *extra, backend="venv"):
    args = [sys.executable, "-m", "matrix", "run", "--backend", backend, "--only", "app=asyncio", "--only",
            f"python={MINOR}", "-j", "2", "--repeat", "2", "--results", str(results), *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_apps(proc, results, timeout=300):
    """Until the run has finished one cell and has apps running."""
    stream = results / "matrix.partial.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stream.exists() and stream.read_text().count("\n") >= 1 and processes_of(proc.pid):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no cell finished in time")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c_and_resume_finishes(tmp_path, sig, code):
    results = tmp_path / "results"
    proc = start_run(results)
    wait_for_apps(proc, results)
    proc.send_signal(sig)
    start = time.monotonic()
    out, err = proc.communicate(timeout=120)
    exited = time.monotonic() - start
    assert proc.returncode == code, out[-2000:] + err[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in err and "--resume" in err, err[-2000:]
    gone = wait_until_gone(proc.pid)
    print(f"{signal.Signals(sig).name}: harness exited in {exited:.2f}s, no app left {gone:.2f}s later")
    assert (results / "matrix.partial.jsonl").read_text().strip()  # the partial stream is kept
    resumed = subprocess.run([sys.executable, "-m", "matrix", "run", "--backend", "venv", "--only", "app=asyncio",
                              "--only", f"python={MINOR}", "-j", "2", "--repeat", "2", "--results", str(results),
                              "--resume"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((results / "matrix.json").read_text())["cells"]


def test_a_sigkilled_harness_takes_its_apps_with_it(tmp_path):
    results = tmp_path / "results"
    proc = start_run(results)
    wait_for_apps(proc, results)
    apps = processes_of(proc.pid)
    proc.kill()
    proc.wait(30)
    gone = wait_until_gone(proc.pid)
    print(f"SIGKILL: {len(apps)} app(s) gone {gone:.2f}s after the harness died")


SPAWNER = r"""
import os, sys, time, urllib.request
sys.path.insert(0, {repo!r})
from matrix.backends.process import AppProcess
from matrix.run.client import free_port
port = free_port()
argv = [{python!r}, "-u", os.path.join({repo!r}, "apps", "threads", "app.py"), "--dsn",
        "http://k@127.0.0.1:9/1", "--port", str(port), "--units", "2", "--variant", "plain",
        "--max-seconds", "120", "--parent-pid", str(os.getpid())]
app = AppProcess(argv, {log!r}).start()
print(app.proc.pid, flush=True)
if {wait_ready!r}:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/facts" % port, timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    print("ready", flush=True)
os._exit(0)  # dies the moment it has spawned (or once the app answers): nobody stops the app
"""


@pytest.mark.parametrize("moment", ["right after the spawn", "once the app answers"])
def test_an_app_whose_harness_died_exits_by_itself(tmp_path, moment):
    """The race of the issue: a harness dying between starting an app and the app's watchdog. The app is
    told its parent (--parent-pid): it finds it gone and exits (code 3); once running, the parent-death
    signal ends it at once."""
    from matrix.backends.venv import prepare_env

    env = prepare_env(discover()[MINOR], ["sentry-sdk==2.75.0"])
    code = SPAWNER.format(repo=REPO, python=env.python, log=str(tmp_path / "app.log"),
                          wait_ready=moment == "once the app answers")
    spawner = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert spawner.returncode == 0, spawner.stderr
    app_pid = int(spawner.stdout.split()[0])
    start = time.monotonic()
    while os.path.exists(f"/proc/{app_pid}"):
        with open(f"/proc/{app_pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        assert time.monotonic() - start < GONE_WITHIN, (tmp_path / "app.log").read_text()[-2000:]
        time.sleep(0.05)
    print(f"harness died {moment}: the app was gone {time.monotonic() - start:.2f}s later")
    if moment == "right after the spawn":
        assert "parent process" in (tmp_path / "app.log").read_text()


@pytest.mark.skipif(engine_available() is None, reason="no Docker engine answers (start dockerd)")
def test_on_docker_no_container_of_a_dead_run_survives_the_next_run(tmp_path):
    def containers(owner: int) -> list[str]:
        out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter",
                              f"label=org.sentry-context-matrix.pid={owner}"], capture_output=True, text=True,
                             timeout=60).stdout
        return out.split()

    results = tmp_path / "results"
    proc = start_run(results, backend="docker")
    deadline = time.monotonic() + 600
    while not containers(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "no container was started"
        time.sleep(0.2)
    proc.kill()  # SIGKILL: the harness can remove nothing
    proc.wait(30)
    left = containers(proc.pid)
    assert left  # what a SIGKILLed run leaves ...
    start = time.monotonic()
    nxt = subprocess.run([sys.executable, "-m", "matrix", "run", "--backend", "docker", "--only", "app=threads",
                          "--only", f"python={MINOR}", "--only", "sentry-sdk=2.75.0", "--results",
                          str(tmp_path / "next")], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert nxt.returncode == 0, nxt.stderr[-2000:]
    assert containers(proc.pid) == []  # ... the next run removes
    print(f"Docker: {len(left)} container(s) of the SIGKILLed run removed by the next run "
          f"(which took {time.monotonic() - start:.1f}s in all)")

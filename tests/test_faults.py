"""No cell can sink the run: timeouts kill the app's whole process group, Ctrl-C leaves nothing
behind, an interrupted run resumes, and parallel runs judge exactly like serial ones."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from matrix.backends.interpreters import discover
from matrix.backends.process import AppProcess
from matrix.backends.venv import VenvSession, prepare_env
from matrix.judge.events import expected_items
from matrix.judge.verdict import judge
from matrix.paths import REPO
from matrix.plan.cells import Cell
from matrix.run.cell import RunOptions, run_cell_once
from matrix.sentry.server import MockSentryServer
from tests.helpers import (FLOOD_WRAPPER, PrivateEngine, SilentIndex, app_processes, closed_port, fill_disk,
                           interrupt_run, listening_ports, matrix, mount_tmpfs, orphaned, unmount)

MINOR = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in discover()), None)
pytestmark = pytest.mark.skipif(MINOR is None, reason="no Python 3.10+ interpreter installed")


def test_ctrl_c_stops_cleanly_and_resume_finishes_the_run(tmp_path):
    results = tmp_path / "results"
    args = ["run", "--backend", "venv", "--only", "app=asyncio", "--only", f"python={MINOR}", "-j", "2",
            "--repeat", "2", "--results", str(results)]
    stream = results / "matrix.partial.jsonl"
    ours = (str(results), os.path.join(REPO, "apps", "asyncio"))  # the run's processes, not other sessions'
    ports_before = listening_ports(*ours)
    proc, out, err = interrupt_run(args, stream)
    assert proc.returncode == 2, out + err
    assert "interrupted" in err and "--resume" in err
    time.sleep(1)
    # the apps were started with a DSN and port of this run; none survives the interrupt
    assert not [p for p in app_processes("apps/asyncio/app.py") if orphaned(p)]
    assert listening_ports(*ours) <= ports_before  # neither the mock server nor any app still listens
    done = stream.read_text().count("\n")
    assert done >= 1
    resumed = matrix(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    total = json.loads((results / "matrix.json").read_text())["cells"]
    assert len(total) == 6 and not stream.exists()


def test_a_cell_that_runs_out_of_time_is_timeout_and_its_app_is_killed(tmp_path):
    # gevent's sdk-first variant deadlocks its hub on the first request (the SDK initialised before
    # monkeypatching): the app's own watchdog would end it after 3 s of stall, so a 1.5 s cell timeout
    # always comes first, however fast or loaded the machine is.
    cell = "gevent/sdk-first/py3.12/sentry-sdk-2.75.0/gevent-26.9.0"
    if "3.12" not in discover():
        pytest.skip("Python 3.12 is not installed")
    out = tmp_path / "cell.json"
    proc = matrix("cell", cell, "--backend", "venv", "--cell-timeout", "1.5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(out.read_text())
    assert entry["verdict"] == "timeout", entry
    assert entry["reason"], entry
    time.sleep(1)
    assert not [p for p in app_processes("apps/gevent/app.py") if orphaned(p)]


def test_parallel_and_serial_runs_give_identical_verdicts(tmp_path):
    base = ["run", "--backend", "venv", "--only", "app=asyncio,threads", "--only", f"python={MINOR}",
            "--only", "sentry-sdk=1.45.1,2.75.0"]
    verdicts = []
    for jobs in ("1", "2"):
        results = tmp_path / f"j{jobs}"
        proc = matrix(*base, "-j", jobs, "--results", str(results))
        assert proc.returncode == 0, proc.stderr
        cells = json.loads((results / "matrix.json").read_text())["cells"]
        verdicts.append([(c["id"], c["verdict"]) for c in cells])
    assert verdicts[0] == verdicts[1]
    assert len(verdicts[0]) >= 8


# ---------------------------------------------------------------------------------------------
# No silent gaps: a release that does not exist


def test_a_release_that_does_not_exist_is_one_line_and_exit_2():
    proc = matrix("cell", f"threads/plain/py{MINOR}/sentry-sdk-9.9.9", timeout=120)
    if "cannot check that" in proc.stderr:
        pytest.skip("PyPI's release data is unreachable from here: " + proc.stderr.strip()[:200])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: sentry-sdk 9.9.9 is not a release of sentry-sdk; nearest: "), line
    nearest = line.split("nearest: ")[1].split(", ")
    assert len(nearest) == 3 and all(v[0].isdigit() for v in nearest), line
    assert "n/a" not in proc.stdout


def test_an_unchecked_release_says_so_and_the_installer_decides(tmp_path):
    """PyPI unreachable (an empty release cache and a proxy that refuses), the version not in the lock: one
    warning line, then the installer (same network) cannot install it: the cell is `error`, never `n/a`."""
    refused = f"http://127.0.0.1:{closed_port()}"
    env = {**os.environ, "MATRIX_CACHE": str(tmp_path / "cache"), "https_proxy": refused, "HTTPS_PROXY": refused,
           "UV_INDEX_URL": f"{refused}/simple", "MATRIX_INSTALL_TIMEOUT": "60"}
    out = tmp_path / "cell.json"
    proc = matrix("cell", f"threads/plain/py{MINOR}/sentry-sdk-9.9.9", "--backend", "venv", "--json", str(out),
                  env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "cannot check that sentry-sdk 9.9.9 is a release" in warning[0], proc.stderr
    (entry,) = json.loads(out.read_text())
    assert entry["verdict"] == "error", entry
    assert entry["reason"].startswith("cannot install: the package index is unreachable ("), entry


# ---------------------------------------------------------------------------------------------
# Faults: the package index unreachable while environments are prepared


def _index_run(tmp_path, index_url: str, extra_env: dict, name: str):
    results = tmp_path / name
    env = {**os.environ, "MATRIX_CACHE": str(tmp_path / f"{name}-cache"), "UV_INDEX_URL": index_url,
           "PIP_INDEX_URL": index_url, **extra_env}
    args = ["run", "--backend", "venv", "--only", "app=threads,asyncio", "--only", "variant=plain",
            "--only", f"python={MINOR}", "--only", "sentry-sdk=2.75.0", "-j", "2", "--results", str(results)]
    start = time.monotonic()
    proc = matrix(*args, env=env, timeout=600)
    return proc, time.monotonic() - start, results, args


def test_index_refusing_connections_is_cannot_install_and_resume_finishes(tmp_path):
    port = closed_port()
    proc, seconds, results, args = _index_run(tmp_path, f"http://127.0.0.1:{port}/simple", {}, "refused")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads((results / "matrix.json").read_text())["cells"]
    assert len(cells) == 2
    for cell in cells:
        assert cell["verdict"] == "error", cell  # not `unsupported`: nothing was learnt about the pins
        assert cell["reason"].startswith("cannot install: the package index is unreachable ("), cell
        assert f"127.0.0.1:{port}" in cell["reason"] and "Connection refused" in cell["reason"], cell
    assert seconds < 120, seconds
    assert "2 cell(s) are `error`" in proc.stdout and (results / "matrix.partial.jsonl").exists()
    # the index is back: --resume reruns just the `error` cells
    resumed = matrix(*args, "--resume", env={**os.environ, "MATRIX_CACHE": str(tmp_path / "refused-cache")},
                     timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    verdicts = {c["id"]: c["verdict"] for c in json.loads((results / "matrix.json").read_text())["cells"]}
    assert verdicts == {f"threads/plain/py{MINOR}/sentry-sdk-2.75.0": "isolated",
                        f"asyncio/plain/py{MINOR}/sentry-sdk-2.75.0": "leak"}, verdicts
    assert not (results / "matrix.partial.jsonl").exists()


def test_an_index_that_never_answers_is_cut_off_at_the_install_timeout(tmp_path):
    silent = SilentIndex()
    try:
        proc, seconds, results, _ = _index_run(
            tmp_path, f"http://127.0.0.1:{silent.port}/simple",
            {"MATRIX_INSTALL_TIMEOUT": "8", "UV_HTTP_TIMEOUT": "300"}, "silent")
    finally:
        silent.close()
    assert proc.returncode == 0, proc.stderr
    cells = json.loads((results / "matrix.json").read_text())["cells"]
    for cell in cells:
        assert cell["verdict"] == "error", cell
        assert cell["reason"].startswith("cannot install: `uv pip install ...` did not finish within the "
                                         "install timeout of 8s"), cell
    # two cells share one environment (built once, tried twice): bounded by the timeout, no hang
    assert seconds < 2 * 8 + 40, seconds


# ---------------------------------------------------------------------------------------------
# Faults: the results folder read-only, the disk full


def _tmpfs(path, size, read_only=False):
    path.mkdir()
    why = mount_tmpfs(path, size, read_only)
    if why:
        pytest.skip(why)


def test_a_read_only_results_folder_is_one_line_before_anything_runs(tmp_path):
    results = tmp_path / "ro"
    _tmpfs(results, "1m", read_only=True)
    try:
        start = time.monotonic()
        proc = matrix("run", "--backend", "venv", "--only", "app=threads", "--only", f"python={MINOR}",
                      "--only", "sentry-sdk=2.75.0", "--results", str(results), timeout=120)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot write to the results directory {results}: "), line
        assert "Read-only file system" in line, line
        assert "[1/" not in proc.stdout and time.monotonic() - start < 60  # no cell was run
        assert os.listdir(results) == []
    finally:
        unmount(results)


def test_a_full_disk_mid_run_stops_with_one_line_and_keeps_the_stream(tmp_path):
    results = tmp_path / "small"
    _tmpfs(results, "32m")
    filler = tmp_path / "small" / "filler"
    args = ["run", "--backend", "venv", "--only", "app=threads,asyncio", "--only", f"python={MINOR}",
            "--only", "sentry-sdk=2.75.0", "-j", "1", "--repeat", "3", "--results", str(results)]
    stream = results / "matrix.partial.jsonl"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "matrix", *args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not (
                stream.exists() and stream.read_text().count("\n") >= 1):
            time.sleep(0.05)
        fill_disk(filler)  # the disk is full from here on
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, out + err
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: cannot write to the results directory {results} (No space left on device): "
                               "the run stopped; the "), last
        assert "--resume" in last
        lines = stream.read_text().splitlines()
        assert lines and all(json.loads(line)["id"] for line in lines)  # whole lines only
        assert f"the {len(lines)} cells that finished" in last
        time.sleep(1)
        assert not [p for p in app_processes(str(results)) if orphaned(p)]
        filler.unlink()  # room again: the run continues where it stopped
        resumed = matrix(*args, "--resume", timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        cells = json.loads((results / "matrix.json").read_text())["cells"]
        assert len(cells) == 4 and all(c["verdict"] != "error" for c in cells), cells
        assert not stream.exists()
    finally:
        unmount(results)


# ---------------------------------------------------------------------------------------------
# Faults: an app that floods its log


class FloodSession(VenvSession):
    """The venv session, with the app started through a wrapper that floods its output (apps/ untouched)."""

    def __init__(self, wrapper: str):
        super().__init__()
        self.wrapper = wrapper

    def launch(self, argv, log_path):
        python, unbuffered, app, *rest = argv
        return AppProcess([python, unbuffered, self.wrapper, app, *rest], log_path).start()


def test_an_app_that_floods_its_log_is_capped_and_still_judged(tmp_path):
    from matrix.run.logs import FLOOD_BYTES, HEAD_BYTES, TAIL_BYTES, cap_log_file

    cell = Cell("threads", "plain", MINOR, (("sentry-sdk", "2.75.0"),))
    env = prepare_env(discover()[MINOR], cell.pin_specs())
    wrapper = tmp_path / "flood.py"
    wrapper.write_text(FLOOD_WRAPPER)
    log = tmp_path / "cell.log"
    log.write_text(f"# cell {cell.id}\n")
    peak = [0]
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            try:
                peak[0] = max(peak[0], log.stat().st_size)
            except OSError:
                pass
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with MockSentryServer() as server:
        record = run_cell_once(cell, env.python, server, str(log), RunOptions(), FloodSession(str(wrapper)),
                               expected_items, log_rel=str(log))
    watching.set()
    watcher.join(5)
    verdict = judge(record)
    assert record.started, record.start_error
    assert verdict.verdict == "isolated", verdict  # judged as without the flood
    text = log.read_text()
    marker = re.search(r"\[matrix\] \.\.\. (\d+) lines \((\d+) KiB\) of this attempt left out", text)
    assert marker, text[:2000]
    flooded_kib = int(marker.group(2))
    # what reached the disk at once stayed near the flood cap, while the app wrote far more
    assert peak[0] <= FLOOD_BYTES + 32 * 1024 * 1024, peak[0]
    assert flooded_kib * 1024 > 2 * FLOOD_BYTES, flooded_kib
    assert os.path.getsize(log) <= HEAD_BYTES + TAIL_BYTES + 16 * 1024
    assert "flood flood" in text and "attempt 1 done" in text
    assert not cap_log_file(str(log))  # the cap after the attempt finds nothing more to do
    time.sleep(0.5)
    assert not [p for p in app_processes(str(wrapper)) if orphaned(p)]


# ---------------------------------------------------------------------------------------------
# Faults: the Docker engine killed in the middle of a run


@pytest.fixture
def private_engine():
    """A Docker engine of the test's own (never the machine's), destroyed with all it left afterwards."""
    if not shutil.which("dockerd") or not shutil.which("docker"):
        pytest.skip("dockerd is not installed")
    if os.geteuid() != 0:
        pytest.skip("starting a Docker engine needs root")
    engine = PrivateEngine()
    try:
        engine.start()
    except Exception as exc:
        engine.destroy()
        pytest.skip(f"cannot start a private Docker engine here: {exc}")
    try:
        yield engine
    finally:
        engine.destroy()


def _stream_entries(path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def test_the_docker_engine_killed_mid_run(private_engine, tmp_path):
    """Killed (SIGKILL) after the first cell: the cells that needed it are `error` saying so, the run goes on
    to its end (the engine is back for the later cells), and --resume reruns the `error` cells."""
    env = private_engine.environ()
    # the images are built in this engine (the shared package and rootfs caches make it quick)
    warm = matrix("cell", f"threads/plain/py{MINOR}/sentry-sdk-2.75.0", "--backend", "docker", env=env, timeout=900)
    assert warm.returncode == 0, warm.stdout[-2000:] + warm.stderr[-2000:]
    results = tmp_path / "results"
    stream = results / "matrix.partial.jsonl"
    args = ["run", "--backend", "docker", "--only", "app=threads,asyncio", "--only", f"python={MINOR}",
            "--only", "sentry-sdk=2.75.0", "-j", "1", "--repeat", "2", "--results", str(results)]
    proc = subprocess.Popen([sys.executable, "-m", "matrix", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not _stream_entries(stream):
            time.sleep(0.1)
        private_engine.kill()
        # keep it down until a cell has needed it, then bring it back for the rest of the run
        while time.monotonic() < deadline and proc.poll() is None and \
                not any(e["verdict"] == "error" for e in _stream_entries(stream)):
            time.sleep(0.1)
        private_engine.start()
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    cells = json.loads((results / "matrix.json").read_text())["cells"]
    assert len(cells) == 4
    errors = [c for c in cells if c["verdict"] == "error"]
    assert errors, cells
    for cell in errors:
        assert "Docker engine stopped answering" in cell["reason"] or "Cannot connect to the Docker daemon" \
            in cell["reason"], cell["reason"]
    assert f"{len(errors)} cell(s) are `error`" in out and stream.exists()
    # --resume runs the `error` cells again, now that the engine answers
    resumed = matrix(*args, "--resume", env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"[{len(errors)}/{len(errors)}]" in resumed.stdout
    final = {c["id"]: c["verdict"] for c in json.loads((results / "matrix.json").read_text())["cells"]}
    assert len(final) == 4 and "error" not in final.values(), final
    assert not stream.exists()
    # nothing is left behind: no container of this run, no engine, no shim, no container process
    containers = subprocess.run(["docker", "-H", private_engine.host, "ps", "-aq"], capture_output=True, text=True,
                                timeout=60).stdout.split()
    assert containers == []
    private_engine.destroy()
    assert private_engine.leftovers() == []
    assert not os.path.exists(private_engine.root)


# ---------------------------------------------------------------------------------------------
# .ci/run: its trap is set before it starts anything; tools go into a virtualenv. Real bash, real signals;
# the commands it runs (apt-get, python3 -m venv, pip, dockerd, docker, nox) are stubs that log what they got.

CI_STUBS = {
    "apt-get": 'echo "apt-get $*" >> "$STUB_LOG"',
    "python3": '''echo "python3 $*" >> "$STUB_LOG"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  for tool in pip nox; do cp "$STUB_DIR/venv-$tool" "$3/bin/$tool"; chmod +x "$3/bin/$tool"; done
fi''',
    "docker": '''echo "docker $*" >> "$STUB_LOG"
case "$1" in
  info) [ -f "$STUB_DIR/up" ] ;;
  version) echo 99.0 ;;
esac''',
    "dockerd": '''echo "dockerd $$" >> "$STUB_LOG"
echo $$ > "$STUB_DIR/dockerd.pid"
[ "$STUB_DOCKERD_UP" = 1 ] && touch "$STUB_DIR/up"
exec sleep 1000''',
    "venv-pip": 'echo "pip $0 $*" >> "$STUB_LOG"',
    "venv-nox": '''echo "nox $0 $* PATH=$PATH" >> "$STUB_LOG"
echo $$ > "$STUB_DIR/nox.pid"
sleep "${STUB_NOX_SLEEP:-0}" &
echo $! > "$STUB_DIR/nox-child.pid"
wait $!
exit "${STUB_NOX_RC:-0}"''',
}


@pytest.fixture
def ci(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in CI_STUBS.items():
        path = stubs / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    log = tmp_path / "ci.log"
    log.touch()
    started = []

    def start(**env):
        environ = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_DIR": str(stubs),
                   "STUB_LOG": str(log), "CI_VENV": str(tmp_path / "venv"), **env}
        proc = subprocess.Popen(["bash", os.path.join(REPO, ".ci", "run")], env=environ, cwd=str(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        started.append(proc)
        return proc

    def pid(name):
        path = stubs / f"{name}.pid"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (path.exists() and path.read_text().strip()):
            time.sleep(0.05)
        return int(path.read_text())

    yield start, pid, log, tmp_path / "venv"
    for proc in started:  # nothing survives the test, whatever happened
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for name in ("dockerd", "nox", "nox-child"):
        path = stubs / f"{name}.pid"
        if path.exists():
            try:
                os.kill(int(path.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_ci_installs_into_a_virtualenv_and_stops_the_engine_it_started(ci):
    start, pid, log, venv = ci
    proc = start(STUB_DOCKERD_UP="1")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    lines = log.read_text().splitlines()
    assert lines[0] == "apt-get update -qq" and "python3-venv" in lines[1], lines
    assert lines[2] == f"python3 -m venv {venv}"
    assert f"pip {venv}/bin/pip install --quiet --disable-pip-version-check nox uv" in lines
    assert not [line for line in lines if "-m pip" in line]  # never pip into the system interpreter
    (nox,) = [line for line in lines if line.startswith("nox ")]
    assert nox.startswith(f"nox {venv}/bin/nox -s tests -- -q -p no:cacheprovider PATH={venv}/bin:"), nox
    assert _gone(pid("dockerd"))
    assert "stopping the Docker engine this script started" in out


def test_ci_stops_its_engine_when_it_never_answers(ci):
    start, pid, log, _ = ci
    proc = start(STUB_DOCKERD_UP="0", CI_DOCKERD_WAIT="2")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "dockerd did not come up within 2 s" in out
    assert _gone(pid("dockerd"))
    assert not [line for line in log.read_text().splitlines() if line.startswith("nox ")]


@pytest.mark.parametrize("when", ["while the engine starts", "while the tests run"])
def test_ci_sigterm_stops_everything_it_started(ci, when):
    start, pid, log, _ = ci
    if when == "while the engine starts":
        proc = start(STUB_DOCKERD_UP="0", CI_DOCKERD_WAIT="1000")
        pid("dockerd")
        watched = [pid("dockerd")]
    else:
        proc = start(STUB_DOCKERD_UP="1", STUB_NOX_SLEEP="1000")
        watched = [pid("nox"), pid("nox-child"), pid("dockerd")]
    time.sleep(0.5)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert time.monotonic() - t < 15
    for p in watched:
        assert _gone(p), (p, out)

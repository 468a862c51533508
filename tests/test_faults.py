"""No cell can sink the run: timeouts kill the app's whole process group, Ctrl-C leaves nothing
behind, an interrupted run resumes, and parallel runs judge exactly like serial ones."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from matrix.interpreters import discover

MINOR = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in discover()), None)
pytestmark = pytest.mark.skipif(MINOR is None, reason="no Python 3.10+ interpreter installed")


def app_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions `marker` (a results dir unique to the test)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and "apps/" in cmd and state != "Z":
            found.append(int(pid))
    return found


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this machine (IPv4 and IPv6), from /proc/net."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def interrupt_run(args: list[str], stream, timeout: float = 300):
    """Start `python -m matrix run ...`, SIGINT it once a cell has finished; return (proc, out, err)."""
    proc = subprocess.Popen([sys.executable, "-m", "matrix", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stream.exists() and stream.read_text().count("\n") >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc, out, err


def matrix(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "matrix", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_ctrl_c_stops_cleanly_and_resume_finishes_the_run(tmp_path):
    results = tmp_path / "results"
    args = ["run", "--backend", "venv", "--only", "app=asyncio", "--only", f"python={MINOR}", "-j", "2",
            "--repeat", "2", "--results", str(results)]
    stream = results / "matrix.partial.jsonl"
    ports_before = listening_ports()
    proc, out, err = interrupt_run(args, stream)
    assert proc.returncode == 2, out + err
    assert "interrupted" in err and "--resume" in err
    time.sleep(1)
    # the apps were started with a DSN and port of this run; none survives the interrupt
    assert not [p for p in app_processes("apps/asyncio/app.py") if _child_of_gone(p)]
    assert listening_ports() <= ports_before  # neither the mock server nor any app still listens
    done = stream.read_text().count("\n")
    assert done >= 1
    resumed = matrix(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    total = json.loads((results / "matrix.json").read_text())["cells"]
    assert len(total) == 6 and not stream.exists()


def _child_of_gone(pid: int) -> bool:
    """An app process whose parent is init (orphaned by a dead engine) is a leftover."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[1] == "1"
    except OSError:
        return False


def test_a_cell_that_runs_out_of_time_is_timeout_and_its_app_is_killed(tmp_path):
    # A Channels cell sends 2,000 load requests for its memory probe: it cannot finish in 3 seconds.
    cell = f"channels/plain/py{MINOR}/sentry-sdk-2.75.0/channels-4.3.2/on-http-consumer"
    out = tmp_path / "cell.json"
    proc = matrix("cell", cell, "--backend", "venv", "--cell-timeout", "3", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(out.read_text())
    assert entry["verdict"] == "timeout", entry
    assert entry["reason"], entry
    time.sleep(1)
    assert not [p for p in app_processes("apps/channels/app.py") if _child_of_gone(p)]


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

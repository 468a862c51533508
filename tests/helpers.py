"""Helpers shared by the tests that drive whole runs: the matrix command, its processes and ports."""
import json
import os
import signal
import subprocess
import sys
import time

from matrix.paths import REPO

# The project's own copy of the results contract; test_schema.py keeps it equal to ../shared's.
SCHEMA = os.path.join(REPO, "matrix", "report", "results.schema.json")
SHARED_SCHEMA = os.path.join(os.path.dirname(REPO), "shared", "results.schema.json")


def load_schema() -> dict:
    with open(SCHEMA) as fh:
        return json.load(fh)


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


def orphaned(pid: int) -> bool:
    """An app process whose parent is init (orphaned by a dead engine) is a leftover."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[1] == "1"
    except OSError:
        return False

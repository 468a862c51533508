"""Helpers shared by the tests that drive whole runs: the matrix command, its processes and ports, and the
faults the fault tests inject."""
from __future__ import annotations

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
    """PIDs of live app processes whose command line (arguments joined by spaces, one after the last)
    mentions `marker`."""
    found = []
    for pid, cmd in _processes():
        cmd = cmd if cmd.endswith(" ") else cmd + " "
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and "apps/" in cmd and state != "Z":
            found.append(int(pid))
    return found


def _processes():
    """(pid, command line with arguments joined by spaces) of every live process this user can read."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                yield pid, fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue


def listening_ports(*owners: str) -> set[int]:
    """TCP ports in LISTEN state on this machine (IPv4 and IPv6), from /proc/net. With `owners`, only the
    ports of processes whose command line mentions one of them: other sessions on a shared machine open
    and close ports of their own all the time."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A":
                        inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
        except OSError:
            pass
    if not owners:
        return set(inodes.values())
    ports = set()
    for pid, cmd in _processes():
        if not any(owner in cmd for owner in owners):
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    ports.add(inodes[target[8:-1]])
        except OSError:
            continue
    return ports


def _inherit_ignored_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupt_run(args: list[str], stream, timeout: float = 300):
    """Start `python -m matrix run ...`, SIGINT it once a cell has finished; return (proc, out, err).
    The harness starts with SIGINT ignored, as a background job of a script (CI) inherits it: Ctrl-C
    must work there too."""
    proc = subprocess.Popen([sys.executable, "-m", "matrix", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_inherit_ignored_sigint)
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


# ---------------------------------------------------------------------------------------------
# Fault injection: small file systems, a package index that never answers, a private Docker engine


def mount_tmpfs(path, size: str, read_only: bool = False) -> str | None:
    """Mount a tmpfs of `size` at `path`; None if it worked, else why not (the caller skips)."""
    opts = f"size={size},mode=0755" + (",ro" if read_only else "")
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True,
                              text=True, timeout=30)
    except OSError as exc:
        return f"cannot run mount: {exc}"
    return None if proc.returncode == 0 else f"cannot mount a tmpfs here: {proc.stderr.strip()[:200]}"


def unmount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill_disk(path) -> int:
    """Write a filler file in `path` until the file system is full; returns its size."""
    written = 0
    with open(path, "wb", buffering=0) as fh:
        for block in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * block
            while True:
                try:
                    written += fh.write(chunk)
                except OSError:
                    break
    return written


class SilentIndex:
    """A TCP port that accepts connections and never answers: a package index that hangs."""

    def __init__(self):
        import socket as _socket
        import threading as _threading

        self.sock = _socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = _threading.Event()
        self._thread = _threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    import socket as _socket

    with _socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateEngine:
    """A second Docker engine of its own (data root, exec root, pid file, socket, cgroup parent), so a test
    can kill it without touching the machine's engine. `destroy()` leaves nothing behind: the engine, its
    containerd, container shims and processes, mounts and directories."""

    def __init__(self):
        import tempfile

        self.root = tempfile.mkdtemp(prefix="scm-dk-", dir="/tmp")  # short: unix socket paths are limited
        self.sock = os.path.join(self.root, "docker.sock")
        self.cgroup = "scm-fault-" + os.path.basename(self.root)[len("scm-dk-"):]
        with open(os.path.join(self.root, "daemon.json"), "w") as fh:
            fh.write("{}\n")
        self.proc = None

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def environ(self, **extra) -> dict:
        return {**os.environ, "DOCKER_HOST": self.host, **extra}

    def _drop_stale_containerd_pidfile(self) -> None:
        """After a kill, the old containerd may linger as a zombie until init reaps it; dockerd would take
        it for a live one and wait for its socket. An operator restarting the engine removes the pid file."""
        pidfile = os.path.join(self.root, "exec", "containerd", "containerd.pid")
        try:
            with open(pidfile) as fh:
                pid = fh.read().strip()
            with open(f"/proc/{pid}/stat") as fh:
                alive = fh.read().rsplit(")", 1)[1].split()[0] != "Z"
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                alive = alive and self.root.encode() in fh.read()
        except (OSError, IndexError):
            alive = False
        if not alive and os.path.exists(pidfile):
            os.remove(pidfile)

    def start(self, timeout: float = 60) -> None:
        import shutil as _shutil

        self._drop_stale_containerd_pidfile()

        argv = [_shutil.which("dockerd") or "dockerd", "--data-root", f"{self.root}/data",
                "--exec-root", f"{self.root}/exec", "--pidfile", f"{self.root}/docker.pid", "-H", self.host,
                "--config-file", f"{self.root}/daemon.json", "--cgroup-parent", f"/{self.cgroup}",
                "--bridge=none", "--iptables=false", "--ip-masq=false"]
        log = open(os.path.join(self.root, "dockerd.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"the private dockerd did not come up: {self.log_tail()}")

    def answers(self) -> bool:
        proc = subprocess.run(["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, text=True, timeout=20)
        return proc.returncode == 0 and bool(proc.stdout.strip())

    def kill(self) -> None:
        """SIGKILL the engine, as an OOM killer or a crash would. Its containerd follows it (dockerd starts it
        with a parent-death signal); wait for that, or a restart would attach to the dying one."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any("containerd --config" in line for line in self.leftovers()):
            time.sleep(0.1)

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.root, "dockerd.log"), errors="replace") as fh:
                return " | ".join(fh.read().splitlines()[-5:])
        except OSError:
            return ""

    def leftovers(self) -> list[str]:
        """Processes that belong to this engine: by their command line, or by their cgroup."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
                with open(f"/proc/{pid}/cgroup") as fh:
                    groups = fh.read()
            except OSError:
                continue
            if self.root in cmd or f"/{self.cgroup}/" in groups or groups.rstrip().endswith(f"/{self.cgroup}"):
                found.append(f"{pid} {cmd[:120]}")
        return found

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop also stops its containers and containerd
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for _ in range(3):  # what a killed engine left: containerd, shims, container processes
            for line in self.leftovers():
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.5)
        for _ in range(5):
            with open("/proc/mounts") as fh:
                mounts = [line.split()[1] for line in fh if line.split()[1].startswith(self.root)]
            if not mounts:
                break
            for mount in sorted(mounts, reverse=True):
                subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30)
        for controller in os.listdir("/sys/fs/cgroup") if os.path.isdir("/sys/fs/cgroup") else []:
            top = os.path.join("/sys/fs/cgroup", controller, self.cgroup)
            if os.path.isdir(top):
                for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
        import shutil as _shutil

        _shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# An app that floods its output: the real app, run by a wrapper that also prints without end

FLOOD_WRAPPER = r'''
import os, runpy, sys, threading, time

line = "flood " * 16 + "\n"
block = line * (1024 * 1024 // len(line))  # about 1 MiB

def flood():
    while True:  # about 50 MiB/s, until the app exits
        sys.stdout.write(block)
        time.sleep(0.02)

# 12 MiB before the app starts, so the flood is over three times the cap however loaded the machine is,
# then more for as long as the app runs
for _ in range(12):
    sys.stdout.write(block)
threading.Thread(target=flood, daemon=True).start()
app = sys.argv[1]
sys.argv = [app] + sys.argv[2:]
sys.path[0] = os.path.dirname(app)
runpy.run_path(app, run_name="__main__")
'''

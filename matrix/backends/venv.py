"""The venv backend: one cached virtualenv per (interpreter, install plan), apps run as local processes.

uv creates and fills a virtualenv in well under a second from a warm cache. Interpreters uv
cannot drive (Python 2.7) get `virtualenv<20.22` and the pip it seeds. What actually got
installed is read back from the environment (`pip freeze`), never assumed from the pins.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterator

from ..paths import APPS_DIR, CACHE_DIR
from ..plan.cells import Cell
from .base import CannotInstall, Env, EnvError
from .install import CAP, InstallStep, _uv, install_failure, install_plan, installer_args, parse_freeze, uses_uv
from .interpreters import Interpreter, discover
from .process import AppProcess

ENV_FORMAT = 4  # bump to invalidate every cached env (4: never a pre-release, args shared with Docker)
MARKER = ".matrix-env.json"


def env_key(interp: Interpreter, steps: list[InstallStep]) -> str:
    blob = json.dumps([ENV_FORMAT, interp.path, interp.version,
                       [[list(s.requirements), s.cutoff] for s in steps]]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def install_timeout() -> float:
    """Seconds one installer call may take ($MATRIX_INSTALL_TIMEOUT, default 600)."""
    try:
        value = float(os.environ.get("MATRIX_INSTALL_TIMEOUT") or 600)
    except ValueError:
        return 600.0
    return value if value > 0 else 600.0


def _run(cmd: list[str], log: list[str], timeout: float | None = None) -> None:
    timeout = timeout or install_timeout()
    log.append("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "UV_NO_PROGRESS": "1", "PIP_NO_INPUT": "1"})
    except subprocess.TimeoutExpired as exc:  # the child is killed by subprocess.run
        partial = "".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else x
                          for x in (exc.stdout, exc.stderr) if x)
        log.append(partial.strip())
        last = next((line.strip() for line in reversed(partial.splitlines()) if line.strip()), "no output")
        raise CannotInstall(f"cannot install: `{' '.join(os.path.basename(c) for c in cmd[:3])} ...` did not "
                            f"finish within the install timeout of {timeout:g}s (last output: {last})") from None
    text = proc.stdout + proc.stderr
    log.append(text.strip())
    if proc.returncode != 0:
        raise install_failure(os.path.basename(cmd[0]), proc.returncode, text)


def _freeze(python: str, with_uv: bool) -> dict[str, str]:
    cmd = _uv() + ["pip", "freeze", "--python", python] if with_uv else [python, "-m", "pip", "freeze", "--all"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise EnvError(f"could not list what is installed in {python}: {proc.stderr.strip()[:200]}")
    return parse_freeze(proc.stdout)


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _fill(tmp: str, interp: Interpreter, steps: list[InstallStep], pins: list[str], log: list[str]) -> str:
    """Create the virtualenv in tmp and run the install steps (`installer_args`, as the Docker image
    does); returns its interpreter."""
    python = os.path.join(tmp, "bin", "python")
    lines = installer_args(interp.minor, steps, pins)
    if uses_uv(interp.minor):
        _run(_uv() + ["venv", "--quiet", "--relocatable", "--python", interp.path, tmp], log)
        for args in lines:
            _run(_uv() + ["pip", "install", "--python", python, *args], log)
    else:  # pip for Python 2.7 has no date limit: the pins are exact, companions capped by constraints
        _run([sys.executable, "-m", "virtualenv", "--quiet", "-p", interp.path, tmp], log)
        constraints = os.path.join(tmp, ".era-constraints.txt")
        for args in lines:
            with open(constraints, "w") as fh:  # constraints cap a companion, never install it
                fh.write("".join(a[len(CAP):] + "\n" for a in args if a.startswith(CAP)))
            _run([python, "-m", "pip", "install", "--quiet", "-c", constraints,
                  *[a for a in args if not a.startswith(CAP)]], log)
    return python


def _cached(path: str, key: str, interp: Interpreter, start: float) -> Env | None:
    marker = os.path.join(path, MARKER)
    if not os.path.exists(marker):
        return None
    with open(marker) as fh:
        info = json.load(fh)
    if not os.path.exists(info["python"]):
        # Its interpreter is gone: the env was made elsewhere (a cache under a worktree since removed,
        # a moved directory) or its base interpreter was uninstalled. Not trusted: rebuilt in place.
        return None
    return Env(key, path, info["python"], info["installed"], False, time.monotonic() - start, interp)


def prepare_env(interp: Interpreter, pins: list[str], log: list[str] | None = None,
                requires: list[str] | None = None) -> Env:
    """Return a ready env for these pins on this interpreter, building it only if not cached.

    Built in a temporary directory and renamed into place, so an interrupted build never
    leaves a half-filled env that a later run would trust.
    """
    log = log if log is not None else []
    steps = install_plan(interp.minor, pins, list(requires or []), log)
    key = env_key(interp, steps)
    root = os.path.join(CACHE_DIR, "envs")
    path = os.path.join(root, key)
    start = time.monotonic()
    with _lock_for(key):
        found = _cached(path, key, interp, start)
        if found is not None:
            return found
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{key}-", dir=root)
        try:
            python = _fill(tmp, interp, steps, pins, log)
            installed = _freeze(python, uses_uv(interp.minor))
            found = _cached(path, key, interp, start)  # another run finished the same env first
            if found is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return found
            if os.path.exists(path):  # a leftover without a marker was never finished
                shutil.rmtree(path)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final_python = os.path.join(path, "bin", "python")
        with open(os.path.join(path, MARKER), "w") as fh:
            json.dump({"python": final_python, "installed": installed, "pins": pins,
                       "steps": [[list(st.requirements), st.cutoff] for st in steps],
                       "interpreter": interp.path, "version": interp.version}, fh, indent=1)
        return Env(key, path, final_python, installed, True, time.monotonic() - start, interp)


class VenvSession:
    """Apps run directly with the env's interpreter; nothing to set up or tear down."""

    apps_dir = APPS_DIR

    def __init__(self) -> None:
        # The app exits when this process is gone (and, on Linux, gets SIGKILL when the thread that
        # started it ends: the engine's workers outlive every app they start).
        self.parent_pid = os.getpid()

    def launch(self, argv: list[str], log_path: str) -> AppProcess:
        return AppProcess(argv, log_path).start()

    def after_stop(self) -> None:
        pass


class VenvBackend:
    name = "venv"

    def __init__(self) -> None:
        self._interpreters: dict[str, Interpreter] | None = None

    def interpreters(self) -> dict[str, Interpreter]:
        if self._interpreters is None:
            self._interpreters = discover()
        return self._interpreters

    def prepare(self, cell: Cell, log: list[str]) -> Env:
        return prepare_env(self.interpreters()[cell.python], cell.pin_specs(), log, list(cell.requires))

    @contextlib.contextmanager
    def session(self, env: Env, max_seconds: float) -> Iterator[VenvSession]:
        yield VenvSession()  # each app carries its own --max-seconds

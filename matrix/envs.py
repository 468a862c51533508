"""Prepare one environment per (interpreter, pins): created once, keyed by a content hash, reused.

uv creates and fills a virtualenv in well under a second from a warm cache. Interpreters uv
cannot drive (Python 2.7) get `virtualenv<20.22` and the pip it seeds. What actually got
installed is read back from the environment (`pip freeze`), never assumed from the pins.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from .interpreters import Interpreter
from .paths import CACHE_DIR

ENV_FORMAT = 3  # bump to invalidate every cached env
MARKER = ".matrix-env.json"
_UNSUPPORTED_HINTS = (
    "No solution found",
    "requires-python",
    "Requires-Python",
    "No matching distribution",
    "does not satisfy Python",
    "Could not find a version",
    "only has wheels",
    "building from source is disabled",
    "no source distribution",
    "has no usable wheels",
    "Failed to build",
    "Failed building wheel",
)
# Compiled packages whose old releases do not build on newer toolchains/Pythons: wheels only, so a
# combination without a wheel is `unsupported` instead of a 10-minute failed compile.
NO_BUILD = ("gevent", "greenlet")
# Python 2.7 installs use pip, which has no date limit: these companions are capped at the newest
# release that existed when the pin beside them came out (an old gevent needs the greenlet of its day).
ERA_COMPANIONS = ("greenlet",)


class EnvUnsupported(RuntimeError):
    """The pins cannot be installed on this interpreter (no release for it): the cell is `unsupported`."""


class EnvError(RuntimeError):
    """Creating or filling the environment failed for another reason."""


@dataclass(frozen=True)
class Env:
    key: str
    path: str
    python: str  # the env's interpreter
    installed: dict[str, str]  # distribution name (lower-case) -> version, read back with pip freeze
    created: bool  # False when reused from the cache
    seconds: float


@dataclass(frozen=True)
class InstallStep:
    """One installer call: these requirements, resolved as of `cutoff` (None: no date limit)."""

    requirements: tuple[str, ...]
    cutoff: str | None


def install_steps(pins: list[str], requires: list[str], cutoffs: dict[str, str | None],
                  floor: str | None = None) -> list[InstallStep]:
    """Era-consistent install plan (pure): one step per pin, oldest release first, each resolved with
    the packages that existed when that release came out, so an old gevent gets the greenlet of its
    day even when the SDK pinned beside it is new. Unpinned requirements (gunicorn, django...) go
    with the newest framework pin (any pin but the SDK, else the SDK): they are chosen to fit the
    framework, as its users of that day would have. No step is resolved as of a date before `floor`
    (the interpreter's release): dependencies must exist for the interpreter they install on."""
    if floor:
        cutoffs = {pin: (max(cut, floor) if cut else None) for pin, cut in cutoffs.items()}
    order = sorted(pins, key=lambda pin: (cutoffs.get(pin) is None, cutoffs.get(pin) or ""))
    frameworks = [pin for pin in order if not pin.lower().startswith("sentry-sdk==")]
    host = (frameworks or order or [None])[-1]
    steps = [InstallStep((pin,) + (tuple(requires) if pin == host else ()), cutoffs.get(pin)) for pin in order]
    return steps or [InstallStep(tuple(requires), None)]


def companion_caps(step: InstallStep, pins: list[str]) -> list[str]:
    """For pip (no date limit): 'greenlet<=0.4.15'-style caps as of this step's era, for companions
    that are not pinned themselves. Empty when release data is unavailable."""
    from .releases import ReleaseError, releases

    if not step.cutoff:
        return []
    pinned = {pin.partition("==")[0].lower() for pin in pins}
    caps = []
    for name in ERA_COMPANIONS:
        if name in pinned:
            continue
        try:
            old = [r for r in releases(name) if not r.parsed.is_prerelease and not r.yanked
                   and r.uploaded.strftime("%Y-%m-%dT%H:%M:%SZ") <= step.cutoff]
        except (ReleaseError, OSError):
            continue
        if old:
            caps.append(f"{name}<={max(old, key=lambda r: r.parsed).version}")
    return caps


def env_key(interp: Interpreter, steps: list[InstallStep]) -> str:
    blob = json.dumps([ENV_FORMAT, interp.path, interp.version,
                       [[list(s.requirements), s.cutoff] for s in steps]]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _uses_uv(interp: Interpreter) -> bool:
    return tuple(int(x) for x in interp.minor.split(".")) >= (3, 6)


def _run(cmd: list[str], log: list[str], timeout: float = 600) -> None:
    log.append("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "UV_NO_PROGRESS": "1", "PIP_NO_INPUT": "1"})
    log.append((proc.stdout + proc.stderr).strip())
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
        if any(hint in text for hint in _UNSUPPORTED_HINTS):
            because = [line.strip(" ╰─▶").removeprefix("cause: ") for line in text.splitlines() if "Because" in line or "because" in line]
            raise EnvUnsupported(because[0] if because else first)
        raise EnvError(f"{os.path.basename(cmd[0])} exited {proc.returncode}: {first}")


def parse_freeze(text: str) -> dict[str, str]:
    """'name==1.0' lines -> {name: version}; editable/URL lines are skipped."""
    installed: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("-"):
            installed[name.lower().replace("_", "-")] = version
    return installed


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


def era_cutoffs(pins: list[str], log: list[str]) -> dict[str, str | None]:
    """pin -> --exclude-newer date of that release (None when PyPI's release data is unreachable)."""
    from datetime import datetime

    from .lock import LockError, load_lock, release_info
    from .releases import ReleaseError, cutoff_after, era_cutoff

    try:
        lock = load_lock()
    except LockError:
        lock = {}
    cutoffs: dict[str, str | None] = {}
    for pin in pins:
        name, _, version = pin.partition("==")
        info = release_info(lock, name, version)
        if info:  # the lock makes the era reproducible offline
            cutoffs[pin] = cutoff_after(datetime.strptime(info["uploaded"], "%Y-%m-%dT%H:%M:%SZ"))
            continue
        try:
            cutoffs[pin] = era_cutoff(name, version)
        except ReleaseError as exc:
            raise EnvUnsupported(str(exc)) from None
        except OSError as exc:
            log.append(f"no release date for {pin} ({exc}); resolving without a date limit")
            cutoffs[pin] = None
    return cutoffs


def prepare_env(interp: Interpreter, pins: list[str], log: list[str] | None = None,
                requires: list[str] | None = None) -> Env:
    """Return a ready env for these pins on this interpreter, building it only if not cached.

    Built in a temporary directory and renamed into place, so an interrupted build never
    leaves a half-filled env that a later run would trust.
    """
    import time

    log = log if log is not None else []
    from .interpreters import RELEASED

    floor = RELEASED.get(interp.minor)
    steps = install_steps(pins, list(requires or []), era_cutoffs(pins, log), floor and floor + "T00:00:00Z")
    key = env_key(interp, steps)
    root = os.path.join(CACHE_DIR, "envs")
    path = os.path.join(root, key)
    start = time.monotonic()
    with _lock_for(key):
        marker = os.path.join(path, MARKER)
        if os.path.exists(marker):
            with open(marker) as fh:
                info = json.load(fh)
            return Env(key, path, info["python"], info["installed"], False, time.monotonic() - start)
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{key}-", dir=root)
        try:
            python = os.path.join(tmp, "bin", "python")
            if _uses_uv(interp):
                _run(_uv() + ["venv", "--quiet", "--relocatable", "--python", interp.path, tmp], log)
                no_build = [arg for name in NO_BUILD for arg in ("--only-binary", name)]
                for step in steps:
                    limit = ["--exclude-newer", step.cutoff] if step.cutoff else []
                    _run(_uv() + ["pip", "install", "--python", python, *limit, *no_build, *step.requirements], log)
            else:  # pip for Python 2.7 has no date limit: the pins are exact, the rest is what pip picks
                _run([sys.executable, "-m", "virtualenv", "--quiet", "-p", interp.path, tmp], log)
                for step in steps:
                    caps = companion_caps(step, pins)
                    constraints = os.path.join(tmp, ".era-constraints.txt")
                    with open(constraints, "w") as fh:  # constraints cap a companion, never install it
                        fh.write("\n".join(caps) + "\n")
                    _run([python, "-m", "pip", "install", "--quiet", "-c", constraints, *step.requirements], log)
            # The venv is final only once renamed; fix the recorded interpreter path accordingly.
            installed = _freeze(python, _uses_uv(interp))
            final_python = os.path.join(path, "bin", "python")
            if os.path.exists(os.path.join(path, MARKER)):  # another run finished the same env first
                shutil.rmtree(tmp, ignore_errors=True)
                with open(os.path.join(path, MARKER)) as fh:
                    info = json.load(fh)
                return Env(key, path, info["python"], info["installed"], False, time.monotonic() - start)
            if os.path.exists(path):  # a leftover without a marker was never finished
                shutil.rmtree(path)
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with open(marker, "w") as fh:
            json.dump({"python": final_python, "installed": installed, "pins": pins,
                       "steps": [[list(st.requirements), st.cutoff] for st in steps],
                       "interpreter": interp.path, "version": interp.version}, fh, indent=1)
        return Env(key, path, final_python, installed, True, time.monotonic() - start)

"""Find the Python interpreters installed on this machine, by real path.

pyenv's `pythonX.Y` shims fail unless that version is selected, so the pyenv root is scanned
directly (versions/*/bin/python), then PATH and /usr/bin are consulted for anything else.
Each candidate is asked for its own version; the first working interpreter per minor wins,
preferring the newest patch release.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from packaging.version import Version

_PROBE = (
    "import sys, platform, json; "
    "print(json.dumps({'version': platform.python_version(), "
    "'implementation': platform.python_implementation(), 'executable': sys.executable}))"
)


# First release date of each CPython minor: an environment for an interpreter is never resolved as
# of a date before the interpreter existed (nobody installed sentry-sdk 0.19 on 3.12 with 2020's urllib3).
RELEASED = {
    "2.7": "2010-07-03", "3.6": "2016-12-23", "3.7": "2018-06-27", "3.8": "2019-10-14", "3.9": "2020-10-05",
    "3.10": "2021-10-04", "3.11": "2022-10-24", "3.12": "2023-10-02", "3.13": "2024-10-07", "3.14": "2025-10-07",
}


@dataclass(frozen=True)
class Interpreter:
    minor: str  # "3.11"
    version: str  # "3.11.7"
    path: str  # real path of the executable
    implementation: str = "CPython"


def pyenv_root() -> str:
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _candidates() -> list[str]:
    found = sorted(glob.glob(os.path.join(pyenv_root(), "versions", "*", "bin", "python")))
    for minor in range(6, 20):
        for name in (f"python3.{minor}",):
            path = shutil.which(name)
            if path:
                found.append(path)
    found += ["/usr/bin/python2.7", "/usr/bin/python3"]
    seen: list[str] = []
    for path in found:
        if os.path.exists(path) and "/shims/" not in path:
            real = os.path.realpath(path)
            if real not in seen:
                seen.append(real)
    return seen


def probe(path: str, timeout: float = 20.0) -> Interpreter | None:
    """Ask one executable what it is; None if it does not answer like a Python."""
    try:
        out = subprocess.run(
            [path, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
        info = json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    version = info["version"]
    minor = ".".join(version.split(".")[:2])
    return Interpreter(minor=minor, version=version, path=path, implementation=info["implementation"])


def discover() -> dict[str, Interpreter]:
    """Map of minor version -> the newest working CPython interpreter for it."""
    best: dict[str, Interpreter] = {}
    for path in _candidates():
        interp = probe(path)
        if interp is None or interp.implementation != "CPython":
            continue
        current = best.get(interp.minor)
        if current is None or Version(interp.version) > Version(current.version):
            best[interp.minor] = interp
    return best

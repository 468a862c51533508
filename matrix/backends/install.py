"""How a cell's pins are installed, the same on every backend (pure apart from release lookups).

Era-consistent: one installer step per pin, oldest release first, each resolved as of that
release's upload date (`uv pip install --exclude-newer`), so an old gevent gets the greenlet of
its day next to a new SDK. What an installer's failure means (no release for that Python:
`unsupported`; anything else: `error`) is decided here too, once for both backends.
"""
from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime

from packaging.version import InvalidVersion, Version

from ..axes.lock import LockError, load_lock, release_info
from ..axes.releases import ReleaseError, cutoff_after, era_cutoff, releases
from .base import CannotInstall, EnvError, EnvUnsupported

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



# An installer that cannot reach the package index says so in one of these ways (uv: "Failed to fetch: URL"
# and "cause:" lines down to "Connection refused (os error 111)"; pip: "NewConnectionError(... Failed to
# establish a new connection: [Errno 111] Connection refused)" before its misleading "Could not find a
# version that satisfies the requirement", which would otherwise read as `unsupported`).
_UNREACHABLE = re.compile(
    r"Connection refused|Connection reset|Network is unreachable|No route to host|Temporary failure in name "
    r"resolution|Name or service not known|failed to lookup address|dns error|tcp connect error|"
    r"operation timed out|NewConnectionError|ConnectTimeoutError|ReadTimeoutError|Max retries exceeded|"
    r"ProxyError|Failed to fetch|error sending request")


def unreachable_cause(text: str) -> str | None:
    """If an installer's output says the package index could not be reached, the one-line cause."""
    if not _UNREACHABLE.search(text):
        return None
    lines = [line.strip(" ╰─▶").strip() for line in text.splitlines() if line.strip()]
    url = next((m.group(1) for line in lines if (m := re.search(r"Failed to fetch:? `?([^`\s]+)`?", line))), None)
    pip = re.search(r"Failed to establish a new connection: (\[Errno -?\d+\] [^'\")]+)", text)
    causes = [line[len("cause:"):].strip() for line in lines if line.startswith("cause:")]
    root = (pip.group(1).strip() if pip else causes[-1] if causes
            else next(line for line in lines if _UNREACHABLE.search(line)))
    return root + (f", fetching {url}" if url and url not in root else "")


def install_failure(tool: str, returncode: int, text: str) -> Exception:
    """What an installer's failure means: the index unreachable (CannotInstall, `error`), no release for
    this Python (EnvUnsupported, `unsupported`), or anything else (EnvError, `error`)."""
    cause = unreachable_cause(text)
    if cause is not None:
        return CannotInstall(f"cannot install: the package index is unreachable ({cause})")
    cause = unsupported_cause(text)
    if cause is not None:
        return EnvUnsupported(cause)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
    return EnvError(f"{tool} exited {returncode}: {first}")


def unsupported_cause(text: str) -> str | None:
    """If an installer's output says the pins have no release for this Python, the one-line cause."""
    if not any(hint in text for hint in _UNSUPPORTED_HINTS):
        return None
    lines = text.splitlines()
    because = [line.strip(" ╰─▶").removeprefix("cause: ").strip() for line in lines
               if "Because" in line or "because" in line]
    first = next((line.strip() for line in lines if any(h in line for h in _UNSUPPORTED_HINTS)), "")
    return because[0] if because else first


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


def uses_uv(minor: str) -> bool:
    """uv drives every Python 3; Python 2.7 gets virtualenv<20.22 and its pip."""
    return tuple(int(x) for x in minor.split(".")) >= (3, 6)


CAP = "cap:"  # an install word that caps a companion (a pip constraint), never installs it


def installer_args(minor: str, steps: list[InstallStep], pins: list[str]) -> list[list[str]]:
    """The installer arguments of every step, the same on both backends (the Docker image runs exactly
    these words): for uv, `--exclude-newer <cutoff>`, never a pre-release (unless the pre-release lane pins
    one, or a git URL, explicitly), gevent/greenlet from wheels only; for pip (Python 2.7, no date limit), companions capped at the step's era (`cap:` words)."""
    lines = []
    for step in steps:
        if uses_uv(minor):
            args = ["--exclude-newer", step.cutoff] if step.cutoff else []
            lane = any(map(_explicit_prerelease, step.requirements))
            args += ["--prerelease", "if-necessary" if lane else "disallow"]
            args += [arg for name in NO_BUILD for arg in ("--only-binary", name)]
        else:
            args = [CAP + cap for cap in companion_caps(step, pins)]
        lines.append(args + list(step.requirements))
    return lines


def _explicit_prerelease(requirement: str) -> bool:
    """A requirement the pre-release lane asked for: an exact pre-release pin or a direct URL."""
    name, exact, version = requirement.partition("==")
    if not exact:
        return "@" in requirement
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def parse_freeze(text: str) -> dict[str, str]:
    """'name==1.0' lines -> {name: version}; editable/URL lines are skipped."""
    installed: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name and not name.startswith("-"):
            installed[name.lower().replace("_", "-")] = version
    return installed


def era_cutoffs(pins: list[str], log: list[str]) -> dict[str, str | None]:
    """pin -> --exclude-newer date of that release (None when PyPI's release data is unreachable)."""
    try:
        lock = load_lock()
    except LockError:
        lock = {}
    cutoffs: dict[str, str | None] = {}
    for pin in pins:
        name, exact, version = pin.partition("==")
        if not exact:  # a direct reference (the pre-release lane's git URL): no release date to go by
            cutoffs[pin] = None
            continue
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


def install_plan(minor: str, pins: list[str], requires: list[str], log: list[str]) -> list[InstallStep]:
    """The installer steps of a cell on Python `minor`: era-consistent, never resolved as of a date
    before that interpreter was released (dependencies must exist for the interpreter they install on)."""
    from .interpreters import RELEASED

    floor = RELEASED.get(minor)
    return install_steps(pins, requires, era_cutoffs(pins, log), floor and floor + "T00:00:00Z")

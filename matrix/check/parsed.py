"""What every reader of a user's stack returns (`Parsed`, its `Entry`s and `PythonHint`s), the one-line
`InputError`, and the small helpers the readers share: requirement and marker parsing, pins, Python hints,
reading text and TOML. Parsed by `packaging` and `tomllib`/`tomli`."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (canonicalize_name)
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("requirements", "pip freeze", "uv.lock", "poetry.lock", "Pipfile.lock", "pyproject.toml")
ALLOWED = ("requirements files (*.txt, *.in, or any file with -r), uv.lock, poetry.lock, Pipfile.lock, "
           "pyproject.toml, - (pip freeze on stdin), or pins like sentry-sdk==2.75.0")


class InputError(ValueError):
    """A file or argument check cannot read: one line naming the value and what is allowed (exit 2)."""


@dataclass(frozen=True)
class Entry:
    """One requirement of the stack and where it was written."""

    requirement: Requirement
    origin: str  # "requirements.txt:12", "uv.lock", "the command line"
    constraint: bool = False  # from -c: applies only to packages required elsewhere

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def pinned(self) -> str | None:
        """The exact version when the specifier allows exactly one (==X or ===X, no wildcard)."""
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and not specs[0].version.endswith(".*"):
            return specs[0].version
        return None


@dataclass(frozen=True)
class PythonHint:
    """What a file says about the Python it runs on: an exact minor or a range."""

    text: str  # as written: "3.12", ">=3.12", "^3.11"
    origin: str  # "requires-python in uv.lock"
    allows: Callable[[str], bool] = field(compare=False)  # minor ("3.11") -> allowed
    exact: str | None = None  # a minor when the file names one Python


@dataclass
class Parsed:
    source: str  # what was read, as the user named it
    kind: str  # one of FORMATS, or "pins"
    select: Callable[[dict[str, str]], list[Entry]]  # marker environment -> the entries that apply
    python: PythonHint | None = None
    direct: set[str] | None = None  # canonical names of the project's own dependencies, when known
    notes: list[str] = field(default_factory=list)


# ---- helpers -------------------------------------------------------------------------------------

def _requirement(text: str, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        message = str(exc).splitlines()[0]
        raise InputError(f"{origin}: {text!r} is not a requirement ({message}); allowed: name[extras]"
                         " [specifier] [; marker], e.g. sentry-sdk==2.75.0") from None


def _applies(marker: Marker | None, env: dict[str, str]) -> bool:
    return marker is None or marker.evaluate(env)


def _marker(text: str | None, origin: str) -> Marker | None:
    if not text:
        return None
    try:
        return Marker(text)
    except InvalidMarker as exc:
        raise InputError(f"{origin}: {text!r} is not an environment marker ({str(exc).splitlines()[0]})") from None


def _pin(name: str, version: str, origin: str, marker: str | None = None) -> Entry:
    text = f"{name}=={version}" + (f"; {marker}" if marker else "")
    return Entry(_requirement(text, origin), origin)


def _specifier_hint(text: str, origin: str) -> PythonHint:
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        raise InputError(f"{origin}: {text!r} is not a Python version specifier (e.g. '>=3.11')") from None
    exact = None
    specs = list(spec)
    if len(specs) == 1 and specs[0].operator == "==":
        exact = minor_of(specs[0].version.rstrip(".*"))
    return PythonHint(text, origin, lambda minor: spec.contains(minor + ".0") or spec.contains(minor + ".99"),
                      exact)


def _minor_hint(text: str, origin: str) -> PythonHint:
    minor = minor_of(text)
    if minor is None:
        raise InputError(f"{origin}: {text!r} is not a Python version like 3.12")
    return PythonHint(text, origin, lambda m: m == minor, minor)


def minor_of(text: str) -> str | None:
    """'3.12.1' -> '3.12'; None when it is not a version."""
    try:
        release = Version(text.strip()).release
    except InvalidVersion:
        return None
    return f"{release[0]}.{release[1] if len(release) > 1 else 0}"


def _read_text(path: str, shown: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a directory; allowed: {ALLOWED}") from None
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not a text file; allowed: {ALLOWED}") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot read it ({exc.strerror})") from None


def _toml(path: str, shown: str) -> dict:
    try:
        return tomllib.loads(_read_text(path, shown))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{shown}: not valid TOML ({exc})") from None

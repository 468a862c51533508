"""The user's stack, normalized: one Python and, per package, the version (or the range) it runs.

`build_stack` chooses the Python (--python, else what the files name, else the interpreter running
check), evaluates every file's markers on it and merges the files: a package pinned to two versions, or
a pin outside another file's range, is an InputError naming both places.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .inputs import Entry, InputError, Parsed, minor_of


@dataclass
class Package:
    name: str  # canonical (PEP 503)
    version: str | None  # the exact version the stack runs, once known
    specifier: SpecifierSet  # what the files allow ('' when pinned or unconstrained)
    origin: str  # where it was written
    how: str = ""  # how `version` was chosen when no file pins it ("the newest release allowed by >=2")
    url: str | None = None  # a URL or path instead of a release

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else f"{self.name}{self.specifier or ' (any version)'}"


@dataclass
class Stack:
    python: str  # minor, e.g. "3.12"
    python_from: str  # why this Python: "--python", "requires-python >=3.12 in uv.lock", ...
    packages: dict[str, Package]
    sources: list[str]
    kinds: list[str]
    direct: set[str] | None = None  # the project's own dependencies, when a file says
    notes: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        return canonicalize_name(name) in self.packages

    def version(self, name: str) -> str | None:
        package = self.packages.get(canonicalize_name(name))
        return package.version if package else None


def marker_env(minor: str) -> dict[str, str]:
    """The marker environment of CPython `minor` on Linux (where the harness runs the stack)."""
    full = f"{minor}.99" if Version(minor) >= Version("3.0") else f"{minor}.18"
    return {"implementation_name": "cpython", "implementation_version": full, "os_name": "posix",
            "platform_machine": "x86_64", "platform_release": "", "platform_system": "Linux",
            "platform_version": "", "python_full_version": full, "platform_python_implementation": "CPython",
            "python_version": minor, "sys_platform": "linux", "extra": ""}


def choose_python(parsed: list[Parsed], requested: str | None, harness_pythons: tuple[str, ...],
                  running: str | None = None) -> tuple[str, str]:
    """(minor, why): --python wins; then a file that names one Python; then a range's: the interpreter
    running check when the range allows it, else the lowest Python of the harness it allows."""
    running = running or ".".join(platform.python_version_tuple()[:2])
    if requested:
        minor = minor_of(requested)
        if minor is None or requested.count(".") > 2:
            raise InputError(f"--python {requested}: not a Python version; allowed: X.Y, e.g. 3.12")
        return minor, "--python"
    hints = [p.python for p in parsed if p.python is not None]
    exact = [h for h in hints if h.exact]
    if exact:
        return exact[0].exact, exact[0].origin  # type: ignore[return-value]
    if hints:
        if all(h.allows(running) for h in hints):
            return running, f"the interpreter running check ({running}), allowed by " + \
                "; ".join(f"{h.text} ({h.origin})" for h in hints)
        allowed = [p for p in harness_pythons if all(h.allows(p) for h in hints)]
        if allowed:
            return allowed[0], f"the lowest Python {' and '.join(h.text for h in hints)} allows " \
                f"({'; '.join(h.origin for h in hints)}); choose another with --python"
        raise InputError("no Python the harness runs satisfies " + "; ".join(f"{h.text} ({h.origin})" for h in hints)
                         + f"; allowed: {', '.join(harness_pythons)}, or --python X.Y")
    return running, f"the interpreter running check ({running}); choose another with --python"


def build_stack(parsed: list[Parsed], requested_python: str | None, harness_pythons: tuple[str, ...],
                running: str | None = None) -> Stack:
    python, why = choose_python(parsed, requested_python, harness_pythons, running)
    env = marker_env(python)
    packages: dict[str, Package] = {}
    constraints: list[Entry] = []
    notes: list[str] = []
    direct: set[str] | None = None
    for source in parsed:
        notes += source.notes
        if source.direct is not None:
            direct = (direct or set()) | source.direct
        for entry in source.select(env):
            if entry.constraint:
                constraints.append(entry)
                continue
            _add(packages, entry)
    for entry in constraints:  # -c files narrow what is required elsewhere, they add nothing
        if entry.name in packages:
            _add(packages, entry)
    if direct is not None and any(p.kind == "pins" for p in parsed):
        direct |= {name for p in parsed if p.kind == "pins" for name in (e.name for e in p.select(env))}
    return Stack(python, why, packages, [p.source for p in parsed], [p.kind for p in parsed], direct, notes)


def _add(packages: dict[str, Package], entry: Entry) -> None:
    name, pinned, requirement = entry.name, entry.pinned, entry.requirement
    current = packages.get(name)
    if current is None:
        packages[name] = Package(name, pinned, SpecifierSet() if pinned else requirement.specifier, entry.origin,
                                 url=requirement.url)
        return
    if pinned and current.version and pinned != current.version and Version(pinned) != Version(current.version):
        raise InputError(f"{name} is pinned to {current.version} ({current.origin}) and to {pinned} "
                         f"({entry.origin}); a stack runs one version: keep one pin")
    if pinned and current.specifier and not current.specifier.contains(pinned, prereleases=True):
        raise InputError(f"{name} {pinned} ({entry.origin}) is outside {current.specifier} ({current.origin})")
    if current.version and requirement.specifier and not requirement.specifier.contains(current.version,
                                                                                          prereleases=True):
        raise InputError(f"{name} {current.version} ({current.origin}) is outside {requirement.specifier} "
                         f"({entry.origin})")
    if pinned and not current.version:
        packages[name] = Package(name, pinned, SpecifierSet(), entry.origin, url=requirement.url)
    elif not current.version:
        current.specifier &= requirement.specifier

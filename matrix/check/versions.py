"""Settle the versions that matter to the answer: every pin must be a release ("sentry-sdk 9.9.9 is not a
release; nearest: ..."), and a range or a bare name becomes the newest release it allows (what pip
installs today).

What is known here answers first and costs nothing: the lock (matrix/axes/axes.lock.json), the measured
cells, PyPI's release data cached under the cache directory. Only a version none of them knows asks PyPI,
once, for the project's release list (which also names the nearest releases when it is not one). When PyPI cannot be reached a pin is not refused: a note says it is unchecked.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..axes.releases import ReleaseError, _cache_path, nearest_versions, releases
from .inputs import InputError
from .stack import Stack



def _parsed(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class Releases:
    """Which releases of a package exist, from what is known here, asking PyPI only when needed."""

    def __init__(self, lock: dict, measured: dict[str, set[str]], online: bool = True,
                 fetch_one: Callable[[str, str], bool | None] | None = None):
        self.lock = lock
        self.measured = measured
        self.online = online
        self.fetch_one = fetch_one or _pypi_has_release
        self.notes: list[str] = []

    def known(self, name: str) -> set[str]:
        name = canonicalize_name(name)
        out = {key.split("==", 1)[1] for key in self.lock.get("releases", {})
               if canonicalize_name(key.split("==", 1)[0]) == name}
        out |= self.measured.get(name, set())
        out |= {pick["version"] for axis, picks in self.lock.get("axes", {}).items() if canonicalize_name(axis) == name
                for pick in picks}
        return out

    def cached_list(self, name: str) -> list[str] | None:
        if not os.path.exists(_cache_path(name)):
            return None
        try:
            return [r.version for r in releases(name) if not r.yanked]
        except (ReleaseError, OSError, ValueError):
            return None

    def full_list(self, name: str) -> list[str] | None:
        """Every release, from the cache (fetch_one refreshed it when it asked PyPI)."""
        try:
            return [r.version for r in releases(name) if not r.yanked]
        except ReleaseError:
            return []
        except (OSError, ValueError):
            return self.cached_list(name)

    def check(self, name: str, version: str) -> None:
        """Raise InputError when `version` is not a release of `name`."""
        if version in self.known(name) or _same(version, self.known(name)):
            return
        cached = self.cached_list(name)
        if cached is not None and (version in cached or _same(version, cached)):
            return
        answer = self.fetch_one(name, version) if self.online else None
        if answer is True:
            return
        if answer is None:
            self.notes.append(f"could not check that {name} {version} is a release (PyPI unreachable"
                              f"{'' if self.online else ': --offline'}); taken as written")
            return
        everything = self.full_list(name)
        if not everything:
            raise InputError(f"{name}: PyPI has no such project; check the name")
        raise InputError(f"{name} {version} is not a release of {name}; nearest: "
                         + ", ".join(nearest_versions(version, everything)))

    def newest(self, name: str, specifier: SpecifierSet, python: str) -> tuple[str | None, str]:
        """(version, how) for a range: the newest final release it allows on this Python."""
        candidates = None
        source = "release"
        if self.online:
            try:
                candidates = [r for r in releases(name, refresh=not os.path.exists(_cache_path(name)))
                              if not r.yanked and not r.parsed.is_prerelease
                              and _python_ok(r.requires_python, python)]
            except (ReleaseError, OSError, ValueError):
                candidates = None
        if candidates is not None:
            fitting = [r.version for r in candidates if specifier.contains(r.version)]
        else:
            source = "measured release (PyPI unreachable)"
            fitting = [v for v in self.known(name) if specifier.contains(v)]
        if not fitting:
            return None, f"no {source} of {name} matches {specifier or 'any version'}"
        best = max(fitting, key=Version)
        return best, f"the newest {source} {specifier or 'any version'} allows"


def _same(version: str, versions: Iterable[str]) -> bool:
    parsed = _parsed(version)
    return parsed is not None and any(_parsed(v) == parsed for v in versions)


def _python_ok(requires: str | None, python: str) -> bool:
    if not requires:
        return True
    try:
        return SpecifierSet(requires).contains(python + ".0") or SpecifierSet(requires).contains(python + ".99")
    except InvalidSpecifier:
        return True


def _pypi_has_release(name: str, version: str) -> bool | None:
    """True/False: PyPI has/has not this release; None: PyPI could not be asked. Reads the project's release
    list (refreshing the cache: the list that names the nearest releases if it is not one)."""
    try:
        found = releases(name, refresh=True)
    except ReleaseError:
        return False
    except (OSError, ValueError):
        return None
    return _same(version, [r.version for r in found if not r.yanked])


def settle(stack: Stack, names: Iterable[str], registry: Releases) -> list[str]:
    """Check or choose the version of each named package of the stack (in place); return notes."""
    notes = []
    for name in names:
        package = stack.packages.get(canonicalize_name(name))
        if package is None:
            continue
        if package.version:
            registry.check(name, package.version)
            continue
        if package.url:
            package.how = f"from {package.url} (not a release)"
            continue
        version, how = registry.newest(name, package.specifier, stack.python)
        package.version, package.how = version, how
        if version:
            notes.append(f"{name}{package.specifier or ''} ({package.origin}): {version}, {how} "
                         "(a lock file or pins give the exact answer)")
        else:
            notes.append(f"{name}{package.specifier or ''} ({package.origin}): {how}")
    return notes + registry.notes


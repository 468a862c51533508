"""Release data from PyPI's JSON API: upload dates, requires_python, yanked flags, wheel tags.

Cached on disk per project (.matrix/pypi/<name>.json), so planning and environment building
ask PyPI once per project; `nox -s update-axes` refreshes the cache and writes the lock.
Which Python a release supports is read from the release itself (requires_python and, for
packages that ship compiled wheels, whether a CPython wheel for this interpreter exists) in
the spirit of sentry-python's scripts/populate_tox.
"""
from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterable
from datetime import datetime, timedelta

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..paths import CACHE_DIR

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
CACHE_FORMAT = 2
_lock = threading.Lock()


class ReleaseError(LookupError):
    """A package or release PyPI does not know."""


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    uploaded: datetime  # earliest file upload of the release
    requires_python: str | None
    yanked: bool
    files: tuple[str, ...]  # file names (wheels carry their tags)

    @property
    def parsed(self) -> Version:
        return Version(self.version)


def _cache_path(name: str) -> str:
    return os.path.join(CACHE_DIR, "pypi", f"{canonicalize_name(name)}.json")


def project_json(name: str, refresh: bool = False) -> dict:
    """The slimmed PyPI JSON of a project, from the cache unless refresh or absent."""
    path = _cache_path(name)
    with _lock:
        if not refresh and os.path.exists(path):
            with open(path) as fh:
                data = json.load(fh)
            if data.get("format") == CACHE_FORMAT:
                return data
        try:
            with urllib.request.urlopen(PYPI_JSON.format(name=canonicalize_name(name)), timeout=60) as resp:
                raw = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ReleaseError(f"PyPI has no project {name!r} (HTTP {exc.code})") from None
        slim = {"format": CACHE_FORMAT, "releases": {
            v: [{"filename": f["filename"], "upload_time_iso_8601": f.get("upload_time_iso_8601"),
                 "requires_python": f.get("requires_python"), "yanked": f.get("yanked", False)} for f in files]
            for v, files in raw["releases"].items()}}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(slim, fh)
        os.replace(path + ".tmp", path)
        return slim


def _release_from(name: str, version: str, files: list[dict]) -> Release:
    uploaded = min(datetime.fromisoformat(f["upload_time_iso_8601"].replace("Z", "+00:00")) for f in files)
    requires = next((f["requires_python"] for f in files if f.get("requires_python")), None)
    return Release(name, version, uploaded, requires, all(f.get("yanked") for f in files),
                   tuple(f["filename"] for f in files))


def releases(name: str, refresh: bool = False) -> list[Release]:
    """Every release with files, oldest version first (pre-releases and yanked included: filter later)."""
    out = []
    for version, files in project_json(name, refresh)["releases"].items():
        if not files:
            continue
        try:
            Version(version)
        except InvalidVersion:
            continue
        out.append(_release_from(name, version, files))
    return sorted(out, key=lambda r: r.parsed)


def release(name: str, version: str) -> Release:
    files = project_json(name)["releases"].get(version)
    if not files:
        files = project_json(name, refresh=True)["releases"].get(version)
    if not files:
        known = [r.version for r in releases(name) if not r.parsed.is_prerelease][-5:]
        raise ReleaseError(f"{name} has no release {version!r} on PyPI (newest: {', '.join(known)})")
    return _release_from(name, version, files)


def cutoff_after(uploaded: datetime, slack_days: int = 2) -> str:
    """The --exclude-newer date for a release uploaded then: its era, plus a little slack."""
    return (uploaded + timedelta(days=slack_days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def era_cutoff(name: str, version: str) -> str:
    """An --exclude-newer date for installing name==version with dependencies of its own era."""
    return cutoff_after(release(name, version).uploaded)


def _wheel_fits(tags, minor: str) -> bool | None:
    """True: a wheel for this CPython on linux x86_64; False: a binary wheel for something else; None: pure."""
    major, sub = minor.split(".")
    cp = f"cp{major}{sub}"
    pure = True
    for tag in tags:
        if tag.abi == "none" and tag.platform == "any":
            if tag.interpreter in (f"py{major}", f"py{major}{sub}", cp) or tag.interpreter.startswith(f"py{major}"):
                return None
            continue
        pure = False
        if not (tag.platform.startswith("manylinux") or tag.platform.startswith("linux")) or "x86_64" not in tag.platform:
            continue
        if tag.interpreter == cp:
            return True
        if tag.abi == "abi3" and tag.interpreter.startswith(f"cp{major}"):
            if int(tag.interpreter[3:] or 0) <= int(sub):
                return True
    return None if pure else False


# Packages installed from wheels only (matrix/envs.py NO_BUILD): a release without a wheel for the
# interpreter cannot install. Other packages may still build from their sdist (optional C speedups).
WHEELS_ONLY = ("gevent", "greenlet")


def python_support(rel: Release, minor: str) -> str | None:
    """None if `rel` installs on CPython `minor` here; otherwise a one-line reason."""
    if rel.requires_python:
        try:
            if Version(minor + ".0") not in SpecifierSet(rel.requires_python):
                return f"{rel.name} {rel.version} requires Python {rel.requires_python}"
        except InvalidSpecifier:
            pass
    fits: list[bool | None] = []
    has_sdist = False
    for filename in rel.files:
        if filename.endswith(".whl"):
            try:
                _, _, _, tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            fits.append(_wheel_fits(tags, minor))
        else:
            has_sdist = True
    if None in fits or True in fits:
        return None  # a pure wheel, or a binary wheel for this interpreter
    if fits and False in fits and (canonicalize_name(rel.name) in WHEELS_ONLY or not has_sdist):
        return f"{rel.name} {rel.version} ships no wheel for CPython {minor} on linux x86_64 (its C extension would have to be compiled)"
    return None if has_sdist else f"{rel.name} {rel.version} has no installable file"


def nearest_versions(version: str, versions: Iterable[str], count: int = 3) -> list[str]:
    """The `count` final releases closest to `version` in version order (the closest first)."""
    final = sorted({v for v in versions if _parsed(v) is not None and not _parsed(v).is_prerelease}, key=Version)
    wanted = _parsed(version)
    if wanted is None:
        return final[::-1][:count]
    below = [v for v in final if Version(v) < wanted][::-1]
    above = [v for v in final if Version(v) > wanted]
    out: list[str] = []
    while len(out) < count and (below or above):
        if below:
            out.append(below.pop(0))
        if above and len(out) < count:
            out.append(above.pop(0))
    return out


def _parsed(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None

"""Release data from PyPI's JSON API: upload dates, requires_python, yanked flags.

Cached on disk per project (.matrix/pypi/<name>.json), so planning and environment building
ask PyPI once per project. `nox -s update-axes` (see issue 5) refreshes the cache and writes
the lock; this module only reads.
"""
from __future__ import annotations

import json
import os
import threading
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from packaging.utils import canonicalize_name

from .paths import CACHE_DIR

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
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


def _cache_path(name: str) -> str:
    return os.path.join(CACHE_DIR, "pypi", f"{canonicalize_name(name)}.json")


def project_json(name: str, refresh: bool = False) -> dict:
    path = _cache_path(name)
    with _lock:
        if not refresh and os.path.exists(path):
            with open(path) as fh:
                return json.load(fh)
        try:
            with urllib.request.urlopen(PYPI_JSON.format(name=canonicalize_name(name)), timeout=60) as resp:
                data = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise ReleaseError(f"PyPI has no project {name!r} (HTTP {exc.code})") from None
        slim = {"releases": {v: [{"upload_time_iso_8601": f.get("upload_time_iso_8601"),
                                  "requires_python": f.get("requires_python"), "yanked": f.get("yanked", False)}
                                 for f in files] for v, files in data["releases"].items()}}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as fh:
            json.dump(slim, fh)
        os.replace(path + ".tmp", path)
        return slim


def release(name: str, version: str) -> Release:
    files = project_json(name)["releases"].get(version)
    if not files:
        files = project_json(name, refresh=True)["releases"].get(version)
    if not files:
        known = sorted(project_json(name)["releases"])[-5:]
        raise ReleaseError(f"{name} has no release {version!r} on PyPI (newest known: {', '.join(known)})")
    uploaded = min(datetime.fromisoformat(f["upload_time_iso_8601"].replace("Z", "+00:00")) for f in files)
    return Release(name, version, uploaded, files[0].get("requires_python"), all(f.get("yanked") for f in files))


def era_cutoff(name: str, version: str, slack_days: int = 2) -> str:
    """An --exclude-newer date for installing name==version with dependencies of its own era."""
    return (release(name, version).uploaded + timedelta(days=slack_days)).strftime("%Y-%m-%dT%H:%M:%SZ")

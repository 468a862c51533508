"""The lock: the axes' policies resolved against PyPI into concrete releases (matrix/axes.lock.json).

`nox -s update-axes` writes it (network); `nox -s matrix` only reads it, so a run is reproducible
offline. For every release the matrix may install (policy picks and every pin of a named case)
the lock keeps its upload date (the era its dependencies are resolved in) and, per Python of the
axes, the reason it cannot install there, if any.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from packaging.version import Version

from ..paths import REPO

LOCK_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "axes.lock.json")


class LockError(RuntimeError):
    """The lock is missing, stale or does not cover what the axes ask for."""


HISTORY_FILE = os.path.join(REPO, "results", "history.json")


def load_history(path: str = HISTORY_FILE) -> dict[str, Any]:
    """results/history.json (`nox -s history`), or an empty history when there is none yet."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def build_lock(raw_axes: dict[str, Any], refresh: bool = True, only: set[str] | None = None,
               previous: dict[str, Any] | None = None, history: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every package policy and case pin against PyPI (network). With `only` (package names),
    the other packages keep their picks from `previous` (a new app's axes can be added without moving
    every other app to newer releases); release data is looked up for whatever is new. Policies with
    boundaries_from_history take both sides of every boundary in `history` (default: results/history.json)
    and list them under the lock's `boundaries` as cells to plan."""
    from .policies import history_boundaries, select
    from .releases import python_support, release, releases

    pythons = raw_axes["python"]["versions"]
    axes: dict[str, list[dict[str, Any]]] = {}
    wanted: dict[tuple[str, str], list[str]] = {}
    kept = (previous or {}).get("axes", {})
    boundary_cells: list[dict[str, Any]] = []
    if history is None and any(p.get("boundaries_from_history") for p in raw_axes.get("packages", {}).values()):
        history = load_history()
    for name, policy in raw_axes.get("packages", {}).items():
        if only is not None and name not in only and name in kept:
            axes[name] = kept[name]
            for pick in kept[name]:
                wanted.setdefault((name, pick["version"]), []).extend(pick.get("why", []))
            boundary_cells += [c for c in (previous or {}).get("boundaries", []) if c["package"] == name]
            continue
        cells = history_boundaries(history or {}, name) if policy.get("boundaries_from_history") else []
        if "min" in policy:  # the axis' floor holds for the history's boundaries too
            cells = [c for c in cells if Version(c.version) >= Version(str(policy["min"]))]
        boundary_cells += [c.to_json() for c in cells]
        sides: dict[str, list[str]] = {}
        for c in cells:
            sides.setdefault(c.version, []).append(c.why)
        picks = select(name, policy, releases(name, refresh=refresh),
                       [(v, f"{whys[0]}" + (f" (and {len(whys) - 1} more)" if len(whys) > 1 else ""))
                        for v, whys in sides.items()])
        axes[name] = [{"version": p.version, "why": list(p.why)} for p in picks]
        for p in picks:
            wanted.setdefault((name, p.version), []).extend(p.why)
    for case in raw_axes.get("cases", []):
        for name, version in case.get("pins", {}).items():
            wanted.setdefault((name, str(version)), []).append(f"case {case.get('claim', case['app'])}")
    for cell in boundary_cells:
        for name, version in cell["pins"]:
            wanted.setdefault((name, version), []).append(cell["why"])
    table: dict[str, Any] = {}
    known = (previous or {}).get("releases", {})
    for (name, version), why in sorted(wanted.items()):
        if only is not None and name not in only and f"{name}=={version}" in known:
            table[f"{name}=={version}"] = known[f"{name}=={version}"]
            continue
        rel = release(name, version)
        unsupported = {py: reason for py in pythons if (reason := python_support(rel, py))}
        table[f"{name}=={version}"] = {
            "uploaded": rel.uploaded.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "requires_python": rel.requires_python,
            "unsupported": unsupported,
        }
    return {
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "generated_by": "nox -s update-axes",
        "pythons": pythons,
        "axes": axes,
        "releases": table,
        "boundaries": boundary_cells,
    }


def write_lock(lock: dict[str, Any], path: str = LOCK_FILE) -> None:
    with open(path + ".tmp", "w") as fh:
        json.dump(lock, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(path + ".tmp", path)


def load_lock(path: str = LOCK_FILE) -> dict[str, Any]:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise LockError(f"{os.path.relpath(path, REPO)} is missing: run `nox -s update-axes` first") from None
    except ValueError as exc:
        raise LockError(f"{os.path.relpath(path, REPO)} is not valid JSON ({exc}): rerun `nox -s update-axes`") from None


def release_info(lock: dict[str, Any], name: str, version: str) -> dict[str, Any] | None:
    return lock.get("releases", {}).get(f"{name}=={version}")

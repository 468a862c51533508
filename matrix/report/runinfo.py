"""matrix.json's top-level `run`: what a run (or one shard of it) was, so shards can be merged strictly
and a changelog entry can say what produced it.

    "run": {"size": "full", "shard": {"index": 2, "total": 4}, "lock": "<sha256 of axes.lock.json>",
            "commit": "<git HEAD>", "dirty": false, "backend": "docker", "repeat": 3, "units": 4,
            "filters": ["--only app=threads"], "sdk_source": null}

`sdk_source` is set on the pre-release lane's runs: {"spec", "kind" (pypi|git), "label" (the version in
the cell ids), "requirement" (what was installed), "detail"} (plan/sources.py).

`run` is an addition the results schema allows (its top level is open). `folder_for` says which
folder of results/ a run belongs in: results/ (default size), results/full/ (the nightly size),
results/prerelease/{pypi,git}/ (the lane with the SDK from a PyPI pre-release or a git URL, never mixed in).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from typing import Any

from ..axes.lock import LOCK_FILE
from ..paths import REPO


def lock_hash(path: str = LOCK_FILE) -> str:
    """sha256 of the lock file's bytes ('missing' when there is none)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return "missing"


def git_commit(repo: str = REPO) -> tuple[str, bool]:
    """(HEAD commit, whether tracked files other than results/ differ from it: the run itself rewrites
    results/, so a clean checkout stays clean); ('unknown', False) outside a git checkout. GITHUB_SHA
    stands in where git is missing."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=30)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                    ":(exclude)results"], cwd=repo,
                                   capture_output=True, text=True, timeout=60)
            return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA", "unknown"), False


def run_record(size: str, backend: str, shard: tuple[int, int] | None = None, filters: list[str] | None = None,
               repeat: int = 1, units: int = 4, sdk_source: dict[str, str] | None = None,
               checkout: tuple[str, bool] | None = None) -> dict[str, Any]:
    """`checkout`: (commit, dirty) taken when the run started (git_commit()); read now when not given."""
    commit, dirty = checkout if checkout is not None else git_commit()
    return {
        "size": size,
        "shard": {"index": shard[0], "total": shard[1]} if shard else None,
        "lock": lock_hash(),
        "commit": commit,
        "dirty": dirty,
        "backend": backend,
        "repeat": repeat,
        "units": units,
        "filters": list(filters or []),
        "sdk_source": sdk_source,
    }


def folder_for(size: str, lane: str | None = None) -> str:
    """The folder below results/ where a run of this size belongs: '' (default size), 'full', or for the
    pre-release lane 'prerelease/pypi' / 'prerelease/git' (lane: plan.sources.lane_kind), then '/full'."""
    base = f"prerelease/{lane}" if lane else ""
    return "/".join(p for p in (base, "full" if size == "full" else "") if p)

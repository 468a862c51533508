"""Strict merging of shards (pure): the shards given must be exactly the N shards of one run.

Each shard's matrix.json records its `run` (runinfo.py): size, shard K/N, lock hash, commit, backend,
repeats, filters, lane. `check_shards` returns the one line that refuses a merge, or None:
- a file that is not a shard (no run.shard: not written by `run --shard K/N`);
- shards of different runs: another lock, commit, size, backend, repeat count, units, filters or lane,
  or another N;
- a shard given twice, or one missing (a job that died or whose artifact never arrived);
- a cell in two shards.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

# run fields every shard of one run shares, and how a refusal names them
SAME = (("lock", "lock"), ("commit", "commit"), ("size", "size"), ("backend", "backend"), ("repeat", "repeat count"),
        ("units", "unit count"), ("filters", "filters"), ("sdk_source", "SDK source"))


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) in (40, 64):  # a commit or a sha256
        return value[:12]
    if isinstance(value, dict):
        return str(value.get("requirement") or value)
    return str(value)


def shard_label(run: dict[str, Any]) -> str:
    shard = run.get("shard") or {}
    return f"{shard.get('index', '?')}/{shard.get('total', '?')}"


def check_shards(shards: list[tuple[str, dict[str, Any]]], lock: str | None = None) -> str | None:
    """shards: (path, matrix.json document) of each shard given. `lock`: the lock hash of the checkout
    the merged results will be committed with (the shards must have run on it). None = mergeable."""
    if not shards:
        return "no shard given"
    for path, doc in shards:
        run = doc.get("run") or {}
        if not run.get("shard"):
            return f"{path} is not a shard (no run.shard in it: write shards with `run --shard K/N`)"
    first_path, first = shards[0][0], shards[0][1]["run"]
    for path, doc in shards[1:]:
        run = doc["run"]
        if run["shard"]["total"] != first["shard"]["total"]:
            return (f"{path} is shard {shard_label(run)} but {first_path} is shard {shard_label(first)}: "
                    "shards of different runs")
        for key, what in SAME:
            if run.get(key) != first.get(key):
                return (f"shard {shard_label(run)} ({path}) comes from a different {what} "
                        f"({_short(run.get(key))}) than shard {shard_label(first)} ({_short(first.get(key))})")
    total = first["shard"]["total"]
    seen = Counter(doc["run"]["shard"]["index"] for _, doc in shards)
    twice = sorted(k for k, n in seen.items() if n > 1)
    if twice:
        paths = [p for p, d in shards if d["run"]["shard"]["index"] == twice[0]]
        return f"shard {twice[0]}/{total} given {seen[twice[0]]} times: {', '.join(paths)}"
    missing = sorted(set(range(1, total + 1)) - set(seen))
    if missing:
        return (f"shard{'s' if len(missing) > 1 else ''} {', '.join(f'{k}/{total}' for k in missing)} missing "
                f"(given: {', '.join(f'{k}/{total}' for k in sorted(seen)) or 'none'})")
    if lock is not None and first.get("lock") != lock:
        return (f"the shards ran on lock {_short(first.get('lock'))}, this checkout has lock {_short(lock)}: "
                "merge with the lock the shards ran on")
    owner: dict[str, str] = {}
    for path, doc in shards:
        for cell in doc.get("cells", []):
            if cell["id"] in owner:
                return f"cell {cell['id']} is in two shards ({owner[cell['id']]} and {path})"
            owner[cell["id"]] = path
    return None


def merged_run(shards: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The merged document's `run`: the shards' shared fields, `shard` null and `shards` N."""
    first = shards[0][1]["run"]
    run = {key: first.get(key) for key, _ in SAME}
    run["dirty"] = any(doc["run"].get("dirty") for _, doc in shards)
    run["shard"] = None
    run["shards"] = first["shard"]["total"]
    return run

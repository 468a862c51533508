"""`report`, `merge`, `update-axes` and `seed`: the commands around the results and the matrix data."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import time

from ..axes.lock import build_lock, load_lock, write_lock
from ..axes.spec import load_axes, load_raw
from ..judge.claims import evaluate, load_claims
from ..paths import REPO
from ..report.changes import publish
from ..report.diff import diff_results, render_diff
from ..report.entries import results_document
from ..report.files import load_results, write_results
from ..report.runinfo import folder_for, lock_hash
from ..report.shards import check_shards, merged_run, shard_label
from ..report.summary import summarize
from .bisecting import load_history
from .common import UsageError, results_path


def cmd_update_axes(args: argparse.Namespace) -> int:
    """Resolve the axes' policies against PyPI and write matrix/axes/axes.lock.json."""
    raw = load_raw()
    load_axes()  # validate before asking PyPI anything
    only = set(args.only) if args.only else None
    unknown = sorted((only or set()) - set(raw.get("packages", {})))
    if unknown:
        raise UsageError(f"--only {unknown[0]!r} has no [packages.{unknown[0]}] table in the axes file")
    lock = build_lock(raw, refresh=not args.offline, only=only, previous=load_lock() if only else None)
    write_lock(lock)
    for name, picks in lock["axes"].items():
        print(f"{name}: " + ", ".join(p["version"] for p in picks))
    print(f"wrote matrix/axes/axes.lock.json ({len(lock['releases'])} releases)")
    return 0


def _shown(path: str) -> str:
    """A path as printed: relative to the repository when inside it."""
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith("..") else rel


def _shard_logs(shards: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(source file, path below the results folder) of every cell log; refuses a shard that lacks one."""
    logs = []
    for path, doc in shards:
        base = os.path.dirname(os.path.abspath(path))
        for cell in doc["cells"]:
            if cell.get("log"):
                src = os.path.join(base, cell["log"])
                if not os.path.isfile(src):
                    raise UsageError(f"merge refused: shard {shard_label(doc['run'])} ({path}) lacks the log of "
                                     f"{cell['id']} ({cell['log']}): upload each shard's folder, logs/ included")
                logs.append((src, cell["log"]))
    return logs


def _install_logs(logs: list[tuple[str, str]], target: str, replace_all: bool) -> None:
    """Copy the shards' logs into target/logs; with replace_all the old logs/ goes (a whole run's logs
    replace the previous run's, so no log of a cell that is gone stays behind)."""
    if not replace_all:
        for src, rel in logs:
            os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
            shutil.copyfile(src, os.path.join(target, rel))
        return
    staging = os.path.join(target, ".logs.merging")
    shutil.rmtree(staging, ignore_errors=True)
    for src, rel in logs:
        dest = os.path.join(staging, os.path.relpath(rel, "logs"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
    os.makedirs(staging, exist_ok=True)
    shutil.rmtree(os.path.join(target, "logs"), ignore_errors=True)
    os.rename(staging, os.path.join(target, "logs"))


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge the N shards of one run into the folder of its size, logs included (claims recomputed).

    Strict (report/shards.py): every shard of the run exactly once, all from the same lock, commit,
    size, backend, options and filters, and the lock the checkout has; else one line and exit 2."""
    shards = []
    for path in args.shards:
        try:
            shards.append((path, load_results(path)))
        except (OSError, ValueError) as exc:
            raise UsageError(f"merge refused: cannot read shard {path}: {exc}") from None
    problem = check_shards(shards, lock_hash())
    if problem:
        raise UsageError(f"merge refused: {problem}")
    run = merged_run(shards)
    lane = (run.get("sdk_source") or {}).get("kind")
    target = args.results or os.path.join(args.root, folder_for(run["size"], lane))
    logs = _shard_logs(shards)
    cells: dict[str, dict] = {}
    not_planned: dict[str, dict] = {}
    for _, doc in shards:
        not_planned.update({c["id"]: c for c in doc.get("not_planned", [])})
        cells.update({c["id"]: c for c in doc["cells"]})
    previous = os.path.join(target, "matrix.json")
    if run["filters"] and os.path.exists(previous):
        # a filtered run updates its cells in the existing results (as `run` does) instead of dropping the rest
        kept = {c["id"]: c for c in load_results(previous)["cells"]}
        kept.update(cells)
        cells = kept
    entries = list(cells.values())
    command = args.command_label or re.sub(r"\s--(shard|results)[ =]\S+", "", shards[0][1].get("command", ""))
    doc = results_document(entries, command=command, backend=run.get("backend") or "venv",
                           claims=evaluate(load_claims(), entries), apps=load_axes().apps,
                           not_planned=list(not_planned.values()))
    doc["host"] = dict(shards[0][1].get("host") or doc["host"])
    doc["run"] = run
    os.makedirs(target, exist_ok=True)
    _install_logs(logs, target, replace_all=not run["filters"])
    print(f"merged {len(shards)} shard(s) of one run ({run['size']} size, lock {run['lock'][:12]}, "
          f"commit {run['commit'][:12]}): {len(entries)} cells, {len(logs)} logs")
    for written in write_results(doc, target):
        print("wrote", _shown(written))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = results_path(args)
    try:
        doc = load_results(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; run `nox -s matrix` first") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    doc["claims"] = evaluate(load_claims(), doc["cells"])
    if all("scope" in c for c in doc["cells"]):
        doc["summary"] = summarize(doc["cells"], load_axes().apps)
    if args.diff:
        return _report_diff(args, doc)
    if args.changes or args.fail_on_change or args.diff_json:
        raise UsageError("--changes, --fail-on-change and --diff-json need --diff OLD_MATRIX_JSON")
    for written in write_results(doc, args.results, history=load_history(args.results)):
        print("wrote", _shown(written))
    if args.screenshots:
        from ..report.browser import BrowserMissing, screenshots

        try:
            for written in screenshots(args.results):
                print("wrote", _shown(written))
        except BrowserMissing as exc:
            raise UsageError(f"--screenshots: {exc}") from None
    return 0


LANE_BADGE = {"pypi": " (sdk pre-release)", "git": " (sdk git)"}


def _report_diff(args: argparse.Namespace, doc: dict) -> int:
    """--diff OLD: print what changed (same cell and by role); with --changes publish the changelog entry
    and the badges; exit 1 on a change with --fail-on-change."""
    try:
        old = load_results(args.diff)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --diff {args.diff}: {exc}") from None
    d = diff_results(old, doc)
    lane = ((doc.get("run") or {}).get("sdk_source") or {}).get("kind")
    print(render_diff(d, vanished=lane is None))
    if args.diff_json:
        with open(args.diff_json, "w", encoding="utf-8") as fh:
            json.dump(d.to_json() | {"changed": d.changed, "reshaped": d.reshaped}, fh, indent=1)
            fh.write("\n")
    if args.changes:
        folder = os.path.relpath(os.path.abspath(args.results), os.path.abspath(args.changes))
        old_base = args.old_base or os.path.relpath(os.path.dirname(os.path.abspath(args.diff)),
                                                    os.path.abspath(args.changes))
        try:
            written = publish(d, old, doc, args.changes, "" if folder == "." else folder, folder, old_base,
                              LANE_BADGE.get(lane or "", ""))
        except ValueError as exc:
            raise UsageError(f"--changes {args.changes}: {exc}") from None
        for path in written:
            print("wrote", _shown(path))
    return 1 if d.changed and args.fail_on_change else 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Build the Docker base images offline (Debian rootfs + this machine's interpreters)."""
    from ..backends.base import EnvError
    from ..backends.docker import engine as docker
    from ..backends.docker.base_images import seed_base_images
    from ..backends.interpreters import discover

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    if docker.engine_available() is None:
        raise UsageError("no Docker engine answers `docker version` (start dockerd)")
    found = discover()
    missing = [m for m in args.pythons if m not in found]
    if missing:
        raise UsageError(f"no interpreter for {', '.join(missing)} (found {', '.join(sorted(found))})")
    t0 = time.monotonic()
    lines: list[str] = []
    try:
        tags = seed_base_images([found[m] for m in (args.pythons or sorted(found))], lines)
    except (EnvError, docker.DockerError) as exc:
        print("\n".join(lines[-20:]), file=sys.stderr)
        print(f"seeding failed: {exc}", file=sys.stderr)
        return 1
    for minor, tag in tags.items():
        print(f"{minor}\t{tag}")
    print(f"seeded in {time.monotonic() - t0:.1f}s")
    return 0

"""`report`, `merge`, `update-axes` and `seed`: the commands around the results and the matrix data."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from ..axes.lock import build_lock, write_lock
from ..axes.spec import load_axes, load_raw
from ..judge.claims import evaluate, load_claims
from ..paths import REPO
from ..report.diff import diff_results, render_diff
from ..report.entries import results_document
from ..report.summary import summarize
from ..report.files import load_results, write_results
from .common import UsageError, results_path


def cmd_update_axes(args: argparse.Namespace) -> int:
    """Resolve the axes' policies against PyPI and write matrix/axes/axes.lock.json."""
    raw = load_raw()
    load_axes()  # validate before asking PyPI anything
    lock = build_lock(raw, refresh=not args.offline)
    write_lock(lock)
    for name, picks in lock["axes"].items():
        print(f"{name}: " + ", ".join(p["version"] for p in picks))
    print(f"wrote matrix/axes/axes.lock.json ({len(lock['releases'])} releases)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shards' matrix.json files into one results set (claims recomputed over all cells)."""
    cells: dict[str, dict] = {}
    not_planned: dict[str, dict] = {}
    commands, host = [], None
    for path in args.shards:
        try:
            doc = load_results(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read shard {path}: {exc}") from None
        commands.append(doc.get("command", ""))
        host = host or doc.get("host")
        not_planned.update({c["id"]: c for c in doc.get("not_planned", [])})
        for cell in doc["cells"]:
            if cell["id"] in cells and cells[cell["id"]] != cell:
                raise UsageError(f"cell {cell['id']} appears in two shards with different results")
            cells[cell["id"]] = cell
    entries = list(cells.values())
    doc = results_document(entries, command=args.command_label or commands[0].split(" --shard")[0],
                           backend=(host or {}).get("backend", "venv"), claims=evaluate(load_claims(), entries),
                           apps=load_axes().apps, not_planned=list(not_planned.values()))
    for written in write_results(doc, args.results):
        print("wrote", os.path.relpath(written, REPO))
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
        try:
            old = load_results(args.diff)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read --diff {args.diff}: {exc}") from None
        changes = diff_results(old, doc)
        print(render_diff(changes))
        if changes.verdicts_changed and args.fail_on_change:
            return 1
        return 0
    for written in write_results(doc, args.results):
        print("wrote", os.path.relpath(written, REPO))
    if args.screenshots:
        from ..report.browser import BrowserMissing, screenshots

        try:
            for written in screenshots(args.results):
                print("wrote", os.path.relpath(written, REPO))
        except BrowserMissing as exc:
            raise UsageError(f"--screenshots: {exc}") from None
    return 0


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

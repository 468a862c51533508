"""A rehearsal of one night of .github/workflows/nightly.yml, here, on a small slice (venv backend).

    nox -s rehearse            (or: python -m tests.rehearsal [--keep DIR])

The same `python -m matrix` commands as the workflow's jobs, in a scratch folder:
 1. two shards of the full size (`run --full --shard K/2`), each in its own folder, like the jobs;
 2. merges that must be refused, one line and exit 2: a missing shard, a shard given twice, a
    shard from another commit, a shard from another lock;
 3. the real merge: into the full size's own folder (ROOT/full/), logs included;
 4. a planted previous results set (what the last night committed): one cell with another verdict,
    and the newest SDK's cell under the release before it (2.74.0) with the other scope answer,
    as if `update-axes` had just picked up the new release; and a CHANGES.md with an older entry;
 5. the role diff (`report --diff --changes --fail-on-change`): exit 1, both changes found (one on the
    same cell, one by role), CHANGES.md and changes.json with the new entry on top and the old one
    kept, links to both cells' logs that resolve, a badge per app;
 6. the same report again: the entry is replaced, not repeated; and a diff against itself: exit 0.
Exit 0 when every expectation held, 1 otherwise (each failed expectation is printed).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SHARDS = 2
PLANTED_SDK = "2.74.0"  # the release before the newest in the planted previous results


class Rehearsal:
    def __init__(self, root: str, python: str | None = None):
        self.root = root
        self.python = python
        self.failures: list[str] = []
        self.transcript: list[str] = []

    # -- helpers -------------------------------------------------------------------------------
    def matrix(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        shown = " ".join(a if " " not in a else repr(a) for a in args).replace(self.root, "$W")
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "matrix", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        self.transcript.append(f"$ python -m matrix {shown}\n  -> exit {proc.returncode} "
                               f"({time.monotonic() - t0:.1f}s)")
        for line in (proc.stdout + proc.stderr).strip().splitlines()[-14:]:
            self.transcript.append("  | " + line.replace(self.root, "$W"))
        return proc

    def expect(self, ok: bool, what: str) -> bool:
        self.transcript.append(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            self.failures.append(what)
        return ok

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # -- the slice -----------------------------------------------------------------------------
    def choose_slice(self) -> tuple[str, list[str]]:
        """threads on one installed Python: the newest SDK plus one older SDK hashed into the other shard,
        so both shards have a cell. Returns (python minor, [sdk versions])."""
        from matrix.axes.lock import load_lock
        from matrix.axes.spec import load_axes
        from matrix.backends.interpreters import discover
        from matrix.plan.filters import shard_of
        from matrix.plan.planner import plan_cells

        found = discover()
        pythons = [self.python] if self.python else ["3.12", "3.11", "3.13", "3.10", "3.9"]
        python = next((p for p in pythons if p in found), None)
        if python is None:
            raise SystemExit(f"rehearsal: none of Python {', '.join(pythons)} is installed")
        cells = [c for c in plan_cells(load_axes(), load_lock(), {python}, size="full")
                 if c.app == "threads" and c.python == python and not c.unsupported]
        shard = {c.id: k for k in range(1, SHARDS + 1) for c in shard_of(cells, k, SHARDS)}
        newest = max(cells, key=lambda c: _v(c.sdk_version))
        other = [c for c in cells if shard[c.id] != shard[newest.id] and _v(c.sdk_version).major >= 1]
        older = max(other, key=lambda c: _v(c.sdk_version))
        return python, [older.sdk_version, newest.sdk_version]

    # -- the night -----------------------------------------------------------------------------
    def run(self) -> int:
        python, sdks = self.choose_slice()
        slice_args = ["--only", "app=threads", "--only", f"python={python}", "--only", f"sentry-sdk={','.join(sdks)}"]
        self.transcript.append(f"slice: threads/plain/py{python}, sentry-sdk {' and '.join(sdks)}; "
                               f"{SHARDS} shards; W = {self.root}")

        # 1. the shard jobs
        for k in range(1, SHARDS + 1):
            proc = self.matrix("run", "--full", "--backend", "venv", "--repeat", "1", "--shard", f"{k}/{SHARDS}",
                               "--results", self.path("shards", f"shard-{k}"), "--command-label",
                               "nox -s matrix -- --full --backend venv (rehearsal)", *slice_args)
            self.expect(proc.returncode == 0, f"shard {k}/{SHARDS} ran (exit {proc.returncode})")
            doc = _load(self.path("shards", f"shard-{k}", "matrix.json"))
            run = (doc or {}).get("run") or {}
            self.expect(run.get("shard") == {"index": k, "total": SHARDS} and run.get("size") == "full"
                        and len(run.get("lock", "")) == 64 and len(run.get("commit", "")) == 40,
                        f"shard {k} recorded its shard K/N, size, lock hash and commit: {_brief(run)}")
            self.expect(_schema_valid(doc), f"shard {k}'s matrix.json is valid against results.schema.json")
        shard_files = [self.path("shards", f"shard-{k}", "matrix.json") for k in range(1, SHARDS + 1)]

        # 2. merges that must be refused
        other_commit = self.plant_shard(2, "commit", "0" * 40)
        other_lock = self.plant_shard(2, "lock", "f" * 64)
        for name, files, needle in (
                ("a missing shard", shard_files[:1], "shard 2/2 missing"),
                ("a shard given twice", [shard_files[0], shard_files[0]], "given 2 times"),
                ("a shard from another commit", [shard_files[0], other_commit], "different commit"),
                ("a shard from another lock", [shard_files[0], other_lock], "different lock")):
            proc = self.matrix("merge", *files, "--root", self.path("refused"))
            lines = proc.stderr.strip().splitlines()
            self.expect(proc.returncode == 2 and len(lines) == 1 and needle in lines[0],
                        f"merge refused {name}: exit {proc.returncode}, {lines!r}")
        self.expect(not os.path.exists(self.path("refused")), "a refused merge wrote nothing")

        # 3. the merge job
        results = self.path("results")
        self.plant_changelog(results)
        proc = self.matrix("merge", *shard_files, "--root", results, "--command-label",
                           f"nox -s matrix -- --full --backend venv ({SHARDS} shards, rehearsal)")
        self.expect(proc.returncode == 0, f"merge of both shards (exit {proc.returncode})")
        merged = _load(os.path.join(results, "full", "matrix.json"))
        self.expect(merged is not None and not os.path.exists(os.path.join(results, "matrix.json")),
                    "the full size was merged into ROOT/full/, the default size's ROOT/matrix.json untouched")
        if merged is None:
            return self.finish()
        logs_ok = all(os.path.isfile(os.path.join(results, "full", c["log"])) for c in merged["cells"] if c.get("log"))
        self.expect(len(merged["cells"]) == 2 and logs_ok, "the merged results hold both cells and their logs")
        self.expect(_schema_valid(merged) and merged["run"].get("shards") == SHARDS,
                    "the merged matrix.json is schema-valid and records run.shards = 2")

        # 4. the previous night, planted
        previous = self.plant_previous(merged, sdks)

        # 5. the role diff, as the workflow runs it
        diff_args = ["report", "--results", os.path.join(results, "full"), "--diff", previous,
                     "--changes", results, "--diff-json", self.path("diff.json"), "--fail-on-change"]
        proc = self.matrix(*diff_args)
        self.expect(proc.returncode == 1, f"the planted changes give exit 1 (got {proc.returncode})")
        older_id = f"threads/plain/py{python}/sentry-sdk-{sdks[0]}"
        role = f"threads/plain/py{python}/newest sentry-sdk"
        self.expect(f"changed  {older_id}: verdict" in proc.stdout, "the changed verdict is found on the same cell")
        self.expect(f"by role  {role}: sentry-sdk {PLANTED_SDK} -> {sdks[1]}: scope" in proc.stdout,
                    f"the new release is compared with the previous holder of '{role}'")
        self.check_changelog(results, role, older_id)
        badge = _load(os.path.join(results, "badges", "threads.json")) or {}
        self.expect(badge.get("schemaVersion") == 1 and badge.get("label") == "threads"
                    and badge.get("message") in ("isolated", "leak", "unknown") and badge.get("color"),
                    f"badges/threads.json is a shields.io endpoint: {badge}")

        # 6. idempotent, and no change means exit 0
        proc = self.matrix(*diff_args)
        text = _read(os.path.join(results, "CHANGES.md"))
        self.expect(proc.returncode == 1 and text.count("<!-- entry ") == 2,
                    "reporting the same night again replaces its entry (2 entries, not 3)")
        proc = self.matrix("report", "--results", os.path.join(results, "full"), "--diff",
                           os.path.join(results, "full", "matrix.json"), "--fail-on-change")
        self.expect(proc.returncode == 0 and "no difference" in proc.stdout, "no change: exit 0")
        return self.finish()

    # -- planting ------------------------------------------------------------------------------
    def plant_shard(self, k: int, key: str, value: str) -> str:
        """A copy of shard k whose run records another commit or lock (its logs beside it)."""
        src = self.path("shards", f"shard-{k}")
        dest = self.path("planted", f"shard-{k}-other-{key}")
        shutil.copytree(src, dest)
        doc = _load(os.path.join(dest, "matrix.json"))
        doc["run"][key] = value
        _dump(doc, os.path.join(dest, "matrix.json"))
        return os.path.join(dest, "matrix.json")

    def plant_previous(self, merged: dict, sdks: list[str]) -> str:
        """The previous night's full results: the older cell with the opposite verdict; the newest cell
        renamed to the release before it with the opposite scope answer. Logs planted beside it."""
        doc = copy.deepcopy(merged)
        doc["generated_at"] = "2000-01-01T02:17:00+00:00"
        folder = self.path("previous", "full")
        flip = {"leak": "isolated", "isolated": "leak", "unknown": "leak"}
        for cell in doc["cells"]:
            sdk = cell["packages"].get("sentry-sdk")
            if sdk == sdks[0]:
                cell["verdict"] = "leak" if cell["verdict"] != "leak" else "isolated"
                cell["scope"] = cell["verdict"] if cell["verdict"] in ("leak", "isolated") else "unknown"
            elif sdk == sdks[1]:
                cell["id"] = cell["id"].replace(f"sentry-sdk-{sdks[1]}", f"sentry-sdk-{PLANTED_SDK}")
                cell["packages"]["sentry-sdk"] = PLANTED_SDK
                cell["scope"] = flip[cell.get("scope", "unknown")]
                cell["verdict"] = cell["scope"]
                cell["log"] = f"logs/{cell['id']}.log"
            if cell.get("log"):
                os.makedirs(os.path.dirname(os.path.join(folder, cell["log"])), exist_ok=True)
                with open(os.path.join(folder, cell["log"]), "w") as fh:
                    fh.write(f"# cell {cell['id']}\n# planted by the rehearsal: the previous night's log\n")
        _dump(doc, os.path.join(folder, "matrix.json"))
        self.expect(True, f"planted previous results: {sdks[0]} verdict flipped, {PLANTED_SDK} in place of {sdks[1]}")
        return os.path.join(folder, "matrix.json")

    def plant_changelog(self, results: str) -> None:
        """An older entry, as a committed CHANGES.md / changes.json would have it."""
        from matrix.report.changes import prepend_feed, prepend_markdown

        entry = {"key": "full@1999-12-31T02:17:00+00:00", "date": "1999-12-31", "generated_at": "1999-12-31T02:17:00+00:00",
                 "previous_generated_at": "1999-12-30T02:17:00+00:00", "folder": "full", "size": "full", "lane": None,
                 "command": "nox -s matrix -- --full", "commit": None, "lock": None, "changes": [],
                 "new_cells": 0, "vanished_cells": 0}
        os.makedirs(results, exist_ok=True)
        with open(os.path.join(results, "CHANGES.md"), "w") as fh:
            fh.write(prepend_markdown(None, entry))
        _dump(prepend_feed(None, entry), os.path.join(results, "changes.json"))

    def check_changelog(self, results: str, role: str, older_id: str) -> None:
        text = _read(os.path.join(results, "CHANGES.md"))
        feed = _load(os.path.join(results, "changes.json")) or {}
        entries = feed.get("entries", [])
        self.expect(len(entries) == 2 and entries[0]["date"] != "1999-12-31" and entries[1]["date"] == "1999-12-31",
                    "changes.json: the new entry on top, the older one kept")
        marks = re.findall(r"<!-- entry (\S+) -->", text)
        self.expect(len(marks) == 2 and marks[1].endswith("1999-12-31T02:17:00+00:00"),
                    "CHANGES.md: the new entry on top, the older one kept")
        top = text.split("<!-- entry ")[1]
        self.expect(role in top and older_id in top, "CHANGES.md's entry names the role and the changed cell")
        links = re.findall(r"\]\(([^)]+\.log)\)", top)
        resolved = [link for link in links if os.path.isfile(os.path.normpath(os.path.join(results, link)))]
        self.expect(len(links) == 4 and resolved == links,
                    f"CHANGES.md links both cells' logs for each change, and they resolve ({len(resolved)}/{len(links)})")
        self.transcript.append("  CHANGES.md, top entry:")
        self.transcript += ["  > " + line for line in ("<!-- entry " + top).strip().splitlines()]

    def finish(self) -> int:
        verdict = "REHEARSAL PASSED" if not self.failures else f"REHEARSAL FAILED ({len(self.failures)})"
        self.transcript.append(verdict + "".join(f"\n  - {f}" for f in self.failures))
        print("\n".join(self.transcript), flush=True)
        return 0 if not self.failures else 1


def _v(text: str):
    from packaging.version import Version

    return Version(text)


def _brief(run: dict) -> str:
    return ", ".join(f"{k}={str(run.get(k))[:12]}" for k in ("size", "shard", "lock", "commit"))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def _load(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _dump(doc: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)


def _schema_valid(doc: dict | None) -> bool:
    if doc is None:
        return False
    try:
        import jsonschema
    except ImportError:  # the nox session installs the test extra; without it, only the shape is checked
        return "cells" in doc
    with open(os.path.join(REPO, "matrix", "report", "results.schema.json")) as fh:
        schema = json.load(fh)
    return not list(jsonschema.Draft202012Validator(schema).iter_errors(doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", default=None, help="rehearse in DIR and keep it (default: a temp dir)")
    parser.add_argument("--python", default=None, help="the Python minor of the slice (default: 3.12, 3.11, ...)")
    args = parser.parse_args(argv)
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        os.makedirs(args.keep)
        return Rehearsal(os.path.abspath(args.keep), args.python).run()
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as root:
        return Rehearsal(root, args.python).run()


if __name__ == "__main__":
    sys.exit(main())

"""Real cells, end to end: real app processes, real SDK, real HTTP to the real mock server.

The verdicts asserted here are what the SDK really does (each is backed by the control round:
the same process must show a leak when isolation is deliberately defeated).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from matrix.paths import REPO
from tests.helpers import load_schema

SDK = "2.75.0"


# python_minor: the fixture in the repository's conftest.py


def _nox() -> list[str]:
    return [shutil.which("nox")] if shutil.which("nox") else [sys.executable, "-m", "nox"]


def test_two_cells_through_nox_cell(tmp_path, python_minor):
    """`nox -s cell -- <id> <id>` runs real cells and reports the verdicts the SDK really gives."""
    isolated = f"threads/plain/py{python_minor}/sentry-sdk-{SDK}"
    leaking = f"asyncio/plain/py{python_minor}/sentry-sdk-{SDK}"
    out = tmp_path / "cells.json"
    proc = subprocess.run(_nox() + ["-s", "cell", "--", isolated, leaking, "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the logs were streamed: the app's own output appears in nox's output
    assert "GET /unit/1?round=normal" in proc.stdout
    entries = {e["id"]: e for e in json.loads(out.read_text())}
    assert entries[isolated]["verdict"] == "isolated", entries[isolated]
    assert entries[isolated]["checks"]["control"]["ok"] is True
    leak = entries[leaking]
    assert leak["verdict"] == "leak", leak
    assert any("carried tag unit." in line for line in leak["checks"]["scope_leak"]["evidence"])
    assert leak["packages"]["sentry-sdk"] == SDK
    assert leak["context_backend"] == "contextvars"


def test_run_writes_schema_valid_results(tmp_path, python_minor):
    """`python -m matrix run` with filters writes matrix.json (valid against the shared schema), README, HTML."""
    jsonschema = pytest.importorskip("jsonschema")
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "matrix", "run", "--results", str(results), "--only", "app=asyncio",
         "--only", f"python={python_minor}", "--only", f"sentry-sdk={SDK}", "--only", "variant=asyncio-integration"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((results / "matrix.json").read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    (cell,) = doc["cells"]
    assert cell["verdict"] == "isolated", cell
    assert (results / cell["log"]).exists()
    assert "asyncio-integration" in (results / "README.md").read_text()
    assert cell["id"] in (results / "index.html").read_text()


@pytest.mark.parametrize("argv, needle", [
    (["cell", "nosuchapp/plain/py3.11/sentry-sdk-2.75.0"], "unknown app 'nosuchapp'"),
    (["cell", "asyncio/plain"], "malformed cell id 'asyncio/plain'"),
    (["cell", "asyncio/plain/py3.99/sentry-sdk-2.75.0"], "Python 3.99"),
    (["run", "--only", "app=nope"], "app='nope' matches no planned cell"),
    (["run", "--repeat", "0"], "--repeat 0"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "matrix", *argv, *(["--results", str(tmp_path)] if argv[0] == "run" else [])],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not list(tmp_path.iterdir())  # nothing was written


def test_merging_shards_gives_the_unsharded_results(tmp_path, python_minor):
    """Real cells: 2 shards run separately and merged == one unsharded run (ids and verdicts)."""
    base = [sys.executable, "-m", "matrix", "run", "--only", "app=threads", "--only", f"python={python_minor}", "-j", "2"]
    whole = tmp_path / "whole"
    assert subprocess.run(base + ["--results", str(whole)], cwd=REPO, capture_output=True, timeout=600).returncode == 0
    shards = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        proc = subprocess.run(base + ["--results", str(out), "--shard", f"{k}/2"], cwd=REPO, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode == 2 and "select no cell" in proc.stderr:
            continue  # every cell hashed into the other shard
        assert proc.returncode == 0, proc.stderr
        shards.append(str(out / "matrix.json"))
    merged = tmp_path / "merged"
    proc = subprocess.run([sys.executable, "-m", "matrix", "merge", *shards, "--results", str(merged)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    one = json.loads((whole / "matrix.json").read_text())
    two = json.loads((merged / "matrix.json").read_text())
    assert [(c["id"], c["verdict"]) for c in one["cells"]] == [(c["id"], c["verdict"]) for c in two["cells"]]
    assert [(c["id"], c["observed"]) for c in one["claims"]] == [(c["id"], c["observed"]) for c in two["claims"]]


def test_report_diff_lists_changed_new_and_vanished(tmp_path):
    old = {"cells": [{"id": "a", "verdict": "isolated"}, {"id": "b", "verdict": "leak"}]}
    from matrix.report.diff import diff_results, render_diff

    d = diff_results(old, {"cells": [{"id": "a", "verdict": "leak"}, {"id": "c", "verdict": "isolated"}]})
    assert [(c.new["id"], c.fields) for c in d.changes] == [("a", ("verdict", "scope"))]
    assert d.new == [("c", "isolated")] and d.vanished == [("b", "leak")]
    assert "a: verdict isolated -> leak" in render_diff(d)
    proc = subprocess.run([sys.executable, "-m", "matrix", "report", "--diff", os.path.join(REPO, "results", "matrix.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    if os.path.exists(os.path.join(REPO, "results", "matrix.json")):
        assert proc.returncode == 0 and "no difference" in proc.stdout


def test_after_the_lock_changes_only_new_cells_run_and_unplanned_ones_leave(tmp_path, python_minor):
    """After `update-axes` moves a boundary, `--only verdict=new` runs just the cells no earlier run answered,
    and a cell the plan no longer has leaves the results instead of staying beside them, stale."""
    results = tmp_path / "results"
    narrow = ["--only", "app=threads", "--only", f"python={python_minor}", "--only", f"sentry-sdk=1.45.1,{SDK}"]
    run = [sys.executable, "-m", "matrix", "run", "--backend", "venv", "-j", "2", "--results", str(results)]
    first = subprocess.run(run + narrow, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    doc = json.loads((results / "matrix.json").read_text())
    assert len(doc["cells"]) >= 2
    removed = doc["cells"].pop(0)  # as if the lock had just added this cell
    stale = dict(doc["cells"][0], id=doc["cells"][0]["id"].replace("/sentry-sdk-", "/sentry-sdk-0.0.1-was-"),
                 log="logs/stale-cell.log")
    (results / "logs" / "stale-cell.log").write_text("the evidence of a cell the plan no longer has\n")
    doc["cells"].append(stale)  # as if the lock had dropped this one
    (results / "matrix.json").write_text(json.dumps(doc))
    again = subprocess.run(run + narrow + ["--only", "verdict=new"], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 cell(s) of the earlier results are no longer planned" in again.stdout
    after = json.loads((results / "matrix.json").read_text())
    ids = [c["id"] for c in after["cells"]]
    assert removed["id"] in ids and stale["id"] not in ids
    assert len(ids) == len(doc["cells"])  # the one new cell in, the stale one out
    assert not (results / "logs" / "stale-cell.log").exists()  # its evidence with it
    assert all((results / c["log"]).exists() for c in after["cells"])

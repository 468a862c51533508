"""The workflows are valid GitHub Actions (actionlint, from PyPI), call sessions that exist, and the
nightly runs the steps the rehearsal (tests/rehearsal.py) rehearses."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from matrix.paths import REPO

WORKFLOWS = sorted(glob.glob(os.path.join(REPO, ".github", "workflows", "*.yml")))
NIGHTLY = os.path.join(REPO, ".github", "workflows", "nightly.yml")


def _actionlint() -> str:
    found = shutil.which("actionlint") or os.path.join(os.path.dirname(sys.executable), "actionlint")
    if not os.path.exists(found):
        pytest.skip("actionlint is not installed (pip install '.[test]')")
    return found


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def test_the_workflows_are_there():
    names = {os.path.basename(p) for p in WORKFLOWS}
    assert {"nightly.yml", "update-axes.yml", "tests.yml", "prerelease.yml"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=os.path.basename)
def test_every_workflow_passes_actionlint(workflow):
    proc = subprocess.run([_actionlint(), "-no-color", workflow], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(_read(NIGHTLY).replace("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest", 1))
    proc = subprocess.run([_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0


def test_workflows_call_only_sessions_that_exist():
    listed = subprocess.run([sys.executable, "-m", "nox", "-l"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    if listed.returncode != 0:
        pytest.skip("nox is not importable here")
    sessions = {line[2:].split(" -> ")[0] for line in listed.stdout.splitlines() if line[:2] in ("* ", "- ")}
    used = set(re.findall(r"nox -s ([\w-]+)", "".join(_read(p) for p in WORKFLOWS)))
    assert used and used <= sessions, used - sessions
    assert {"rehearse", "prerelease"} <= sessions


def test_the_nightly_runs_what_the_rehearsal_rehearses():
    """The steps of tests/rehearsal.py, with the nightly's own folders and backend."""
    text = " ".join(_read(NIGHTLY).replace("\\\n", " ").split())
    assert 'nox -s matrix -- --full --backend docker --repeat "$REPEAT" --shard "${{ matrix.shard }}/$SHARDS"' in text
    assert "python -m matrix merge shards/shard-*/matrix.json --root results" in text
    assert re.search(r"python -m matrix report --results results/full --diff \S+ --changes results "
                     r"--old-base \S+ --diff-json \S+ --fail-on-change", text)
    assert "results/matrix.json" not in text  # the full size never touches the default size's results
    assert "if: always()" not in text.split("merge:")[1].split("steps:")[0]  # a dead shard stops the merge
    for needle in ("concurrency:", "actions/cache@v4", "hashFiles('matrix/axes/axes.lock.json'",
                   "actions/upload-artifact@v4", "peter-evans/create-pull-request"):
        assert needle in text, needle
    rehearsal = _read(os.path.join(REPO, "tests", "rehearsal.py"))
    for step in ('"run", "--full", "--backend", "venv", "--repeat", "1", "--shard"', '"merge", *shard_files, "--root"',
                 '"report", "--results", os.path.join(results, "full"), "--diff", previous,\n                     "--changes", results'):
        assert step in rehearsal, step


def test_update_axes_has_its_own_pull_request():
    text = _read(os.path.join(REPO, ".github", "workflows", "update-axes.yml"))
    assert "nox -s update-axes" in text and "branch: axes/update" in text
    assert "add-paths: matrix/axes/axes.lock.json" in text and "results" not in text.split("add-paths:")[1]

"""The nightly workflow is valid GitHub Actions (actionlint, from PyPI) and calls sessions that exist."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from matrix.paths import REPO

WORKFLOW = os.path.join(REPO, ".github", "workflows", "nightly.yml")


def _actionlint() -> str:
    found = shutil.which("actionlint") or os.path.join(os.path.dirname(sys.executable), "actionlint")
    if not os.path.exists(found):
        pytest.skip("actionlint is not installed (pip install '.[test]')")
    return found


def test_nightly_workflow_passes_actionlint():
    proc = subprocess.run([_actionlint(), "-no-color", WORKFLOW], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(open(WORKFLOW).read().replace("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest", 1))
    proc = subprocess.run([_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0


def test_workflow_calls_only_sessions_that_exist():
    listed = subprocess.run([sys.executable, "-m", "nox", "-l"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    if listed.returncode != 0:
        pytest.skip("nox is not importable here")
    sessions = {line[2:].split(" -> ")[0] for line in listed.stdout.splitlines() if line[:2] in ("* ", "- ")}
    used = set(re.findall(r"nox -s ([\w-]+)", open(WORKFLOW).read()))
    assert used and used <= sessions, used - sessions

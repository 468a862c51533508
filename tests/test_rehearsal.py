"""The rehearsal of one night of the nightly workflow passes here (tests/rehearsal.py, `nox -s rehearse`):
real cells in 2 shards on the venv backend, refused merges, the merge into the full size's folder, the
role diff against planted previous results (exit 1), CHANGES.md, changes.json and the badges."""
import subprocess
import sys

import pytest

from matrix.backends.interpreters import discover
from matrix.paths import REPO


def test_one_night_rehearsed(tmp_path):
    if not {"3.12", "3.11", "3.13", "3.10", "3.9"} & set(discover()):
        pytest.skip("no Python 3.9+ interpreter for the rehearsal's cells")
    proc = subprocess.run([sys.executable, "-m", "tests.rehearsal", "--keep", str(tmp_path / "night")], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "REHEARSAL PASSED" in out
    assert "merge refused: shard 2/2 missing" in out
    assert "by role  threads/plain/py" in out and "newest sentry-sdk: sentry-sdk 2.74.0 -> " in out
    changes = (tmp_path / "night" / "results" / "CHANGES.md").read_text()
    assert "new release" in changes and "same cell" in changes
    assert (tmp_path / "night" / "results" / "badges" / "threads.json").exists()
    assert (tmp_path / "night" / "results" / "full" / "matrix.json").exists()

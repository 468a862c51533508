"""A real bisect through the engine (real apps, venv backend): the known threads boundary of SDK 2.26.1
(Thread.start hands the new thread forks of the scopes instead of the starting thread's own), confirmed on
both sides, logs kept, and a --resume that replays everything from the stream and measures nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from matrix.backends import get
from matrix.paths import REPO

LINE = "threads/plain/py3.12/sentry-sdk-*"


@pytest.fixture(scope="module")
def interpreters():
    found = get("venv").interpreters()
    if "3.12" not in found:
        pytest.skip("Python 3.12 is not installed")
    return found


def _bisect(out, *extra):
    proc = subprocess.run([sys.executable, "-m", "matrix", "bisect", LINE, "--min", "2.25.0", "--max", "2.27.0",
                           "--stride", "2", "--backend", "venv", "-j", "2", "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "bisect.json")) as fh:
        return json.load(fh), proc.stdout


def test_a_real_bisect_finds_and_confirms_the_threads_boundary_and_resumes_from_its_stream(tmp_path, interpreters):
    doc, out = _bisect(tmp_path)
    (line,) = doc["lines"]
    scope = [b for b in line["boundaries"] if b["dimension"] == "scope"]
    assert [(b["before"]["version"], b["after"]["version"], b["from"], b["to"]) for b in scope] == [
        ("2.26.0", "2.26.1", "leak", "isolated")]
    b = scope[0]
    assert b["confirmed"] and b["before"]["runs"] == 4 and b["after"]["repeats"]["scope"] == "isolated"
    for side in (b["before"], b["after"]):
        assert os.path.isfile(tmp_path / side["log"]) and os.path.isfile(tmp_path / side["confirm_log"])
        assert open(tmp_path / side["confirm_log"]).read().count("attempt 3 done") == 1
    assert [r["kind"] for r in line["timeline"]] == ["answer", "answer"]
    assert line["measurable"] == line["releases"] and line["cells"] < line["releases"] + 1
    again, text = _bisect(tmp_path, "--resume")
    assert again["lines"][0]["boundaries"] == line["boundaries"]
    assert "resuming:" in text and "0 measurements (0 app runs)" in text

    # A fresh run over part of the range (as a filtered history run measures some lines again) measures its
    # cells again and appends: the stream keeps the others, so resuming the whole range replays everything.
    before = [json.loads(x) for x in open(tmp_path / "measurements.jsonl")]
    outside = {m["cell"] for m in before if not m["cell"].startswith(("threads/plain/py3.12/sentry-sdk-2.26.1",
                                                                       "threads/plain/py3.12/sentry-sdk-2.27"))}
    part = subprocess.run([sys.executable, "-m", "matrix", "bisect", LINE, "--min", "2.26.1", "--max", "2.27.0",
                           "--stride", "2", "--backend", "venv", "-j", "2", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert part.returncode == 0, part.stderr[-2000:]
    assert outside and "earlier measurements stay in" in part.stdout and "0 measurements" not in part.stdout
    after = {m["cell"] for m in (json.loads(x) for x in open(tmp_path / "measurements.jsonl"))}
    assert outside <= after
    whole, text = _bisect(tmp_path, "--resume")
    assert whole["lines"][0]["boundaries"] == line["boundaries"]
    assert "0 measurements (0 app runs)" in text


def test_rejudge_reads_the_kept_records_again_with_todays_judge(tmp_path):
    """A measurement judged by an older judge (SDK 0.7.0's repr-quoted extras read as another unit's data)
    is judged again from the real run's record it kept: the answer follows the record, not the stale line."""
    import shutil

    from matrix.bisect.runner import Runner, answer_of
    from matrix.plan.cells import Cell
    from matrix.run.cell import RunOptions

    cell = Cell("gevent", "plain", "3.13", (("sentry-sdk", "0.7.0"), ("gevent", "26.9.0")))
    folder = tmp_path / "records" / "r1" / cell.id
    folder.mkdir(parents=True)
    shutil.copyfile(os.path.join(REPO, "matrix", "judge", "tests", "records", "gevent-isolated-0.7.0-repr-extras.json"),
                    folder / "attempt-1.json")
    stale = {"cell": cell.id, "variant": "plain", "repeat": 1, "backend": "venv", "units": 4, "verdict": "leak",
             "scope": "leak", "tracing": "untested", "reason": "event unit-1 carried extra unit_name='unit-4'",
             "context_backend": "contextvars", "facts": {}, "evidence": {}, "python": "3.13.0",
             "packages": {"sentry-sdk": "0.7.0", "gevent": "26.9.0"}, "log": "r1/logs/x.log", "duration_s": 1.0,
             "runs": 1}
    runner = Runner("venv", RunOptions(), 1, str(tmp_path), str(tmp_path / "stream.jsonl"))
    new = runner.rejudged_measurement(cell, stale)
    assert (new["scope"], new["verdict"]) == ("isolated", "isolated") and new["log"] == "r1/logs/x.log"
    assert answer_of(new) != answer_of(stale)
    gone = Cell("gevent", "plain", "3.13", (("sentry-sdk", "0.7.1"), ("gevent", "26.9.0")))
    assert runner.rejudged_measurement(gone, dict(stale, cell=gone.id)) == dict(stale, cell=gone.id)  # no record

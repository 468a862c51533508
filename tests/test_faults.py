"""No cell can sink the run: timeouts kill the app's whole process group, Ctrl-C leaves nothing
behind, an interrupted run resumes, and parallel runs judge exactly like serial ones."""
import json
import time

import pytest

from matrix.backends.interpreters import discover
from tests.helpers import orphaned, app_processes, interrupt_run, listening_ports, matrix

MINOR = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in discover()), None)
pytestmark = pytest.mark.skipif(MINOR is None, reason="no Python 3.10+ interpreter installed")


def test_ctrl_c_stops_cleanly_and_resume_finishes_the_run(tmp_path):
    results = tmp_path / "results"
    args = ["run", "--backend", "venv", "--only", "app=asyncio", "--only", f"python={MINOR}", "-j", "2",
            "--repeat", "2", "--results", str(results)]
    stream = results / "matrix.partial.jsonl"
    ports_before = listening_ports()
    proc, out, err = interrupt_run(args, stream)
    assert proc.returncode == 2, out + err
    assert "interrupted" in err and "--resume" in err
    time.sleep(1)
    # the apps were started with a DSN and port of this run; none survives the interrupt
    assert not [p for p in app_processes("apps/asyncio/app.py") if orphaned(p)]
    assert listening_ports() <= ports_before  # neither the mock server nor any app still listens
    done = stream.read_text().count("\n")
    assert done >= 1
    resumed = matrix(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    total = json.loads((results / "matrix.json").read_text())["cells"]
    assert len(total) == 6 and not stream.exists()


def test_a_cell_that_runs_out_of_time_is_timeout_and_its_app_is_killed(tmp_path):
    # A Channels cell sends 2,000 load requests for its memory probe: it cannot finish in 3 seconds.
    cell = f"channels/plain/py{MINOR}/sentry-sdk-2.75.0/channels-4.3.2/on-http-consumer"
    out = tmp_path / "cell.json"
    proc = matrix("cell", cell, "--backend", "venv", "--cell-timeout", "3", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(out.read_text())
    assert entry["verdict"] == "timeout", entry
    assert entry["reason"], entry
    time.sleep(1)
    assert not [p for p in app_processes("apps/channels/app.py") if orphaned(p)]


def test_parallel_and_serial_runs_give_identical_verdicts(tmp_path):
    base = ["run", "--backend", "venv", "--only", "app=asyncio,threads", "--only", f"python={MINOR}",
            "--only", "sentry-sdk=1.45.1,2.75.0"]
    verdicts = []
    for jobs in ("1", "2"):
        results = tmp_path / f"j{jobs}"
        proc = matrix(*base, "-j", jobs, "--results", str(results))
        assert proc.returncode == 0, proc.stderr
        cells = json.loads((results / "matrix.json").read_text())["cells"]
        verdicts.append([(c["id"], c["verdict"]) for c in cells])
    assert verdicts[0] == verdicts[1]
    assert len(verdicts[0]) >= 8

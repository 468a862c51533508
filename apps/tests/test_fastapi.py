"""apps/fastapi against its real server: the background routes answer after Starlette's response, the
newest stack enables the FastAPI/Starlette integrations, and the start-up failures are one line.

The cells are the default plan's plain cells of the newest SDK (no versions are written here).
"""
import os
import socket
import subprocess

import pytest
from packaging.version import Version

from matrix.axes.lock import load_lock
from matrix.axes.spec import load_axes
from matrix.backends.base import EnvUnsupported
from matrix.backends.interpreters import discover
from matrix.backends.venv import VenvSession, prepare_env
from matrix.judge.events import expected_items
from matrix.judge.verdict import judge
from matrix.plan.planner import plan_cells
from matrix.run.cell import RunOptions, run_cell_once

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fastapi", "app.py")
INTERPRETERS = discover()


def _newest(route):
    cells = [c for c in plan_cells(load_axes(), load_lock(), set(INTERPRETERS))
             if c.app == "fastapi" and c.variant == "plain" and c.route == route and not c.unsupported]
    # the newest SDK, then the newest Python (the named cases come last in the plan)
    return max(cells, key=lambda c: (Version(c.sdk_version), Version(c.python))) if cells else None


def _env(cell):
    if cell is None:
        pytest.skip("no runnable default cell here")
    try:
        return prepare_env(INTERPRETERS[cell.python], cell.pin_specs(), requires=list(cell.requires))
    except EnvUnsupported as exc:
        pytest.skip(f"does not install here: {exc}")


@pytest.mark.parametrize("route", ["background", "background-sync"])
def test_background_unit_runs_after_the_response(route, server, tmp_path):
    cell = _newest(route)
    env = _env(cell)
    log = tmp_path / "cell.log"
    record = run_cell_once(cell, env.python, server, str(log), RunOptions(), VenvSession(), expected_items,
                           log_rel=str(log))
    assert record.started, record.start_error
    normal = record.responses["normal"]
    assert all(a.get("after_response") is True for a in normal), normal
    assert all(a.get("event_id") and a.get("trace_id") for a in normal), normal
    assert record.facts["route"] == route
    assert {"fastapi", "starlette"} <= set(record.facts["integrations"]), record.facts["integrations"]
    assert record.facts["sdk_wrapped"]["starlette.applications.Starlette.__call__"] is True
    judgement = judge(record)
    assert judgement.scope == "isolated", judgement.reason
    assert judgement.checks["delivery"].ok, judgement.checks["delivery"].evidence


def test_unknown_route_and_busy_port_are_one_line(tmp_path):
    cell = _newest("async")
    env = _env(cell)
    base = [env.python, APP, "--dsn", "http://k@127.0.0.1:9/1", "--units", "2", "--variant", "plain"]
    proc = subprocess.run(base + ["--port", "0", "--route", "nope"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("fastapi: error: unknown route")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run(base + ["--port", str(port), "--max-seconds", "30"], capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 1, proc.stderr[-500:]
    assert proc.stderr.strip().splitlines()[-1].startswith("fastapi: error: cannot bind 127.0.0.1:%d" % port)

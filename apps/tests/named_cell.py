"""Run one cell (or one named by its id) on the venv backend, as `nox -s cell -- <id>` would: skipped where its
Python is not installed or its pins do not install here. Returns the run record, the log path and the env."""
import pytest

from matrix.backends.base import EnvUnsupported
from matrix.backends.interpreters import discover
from matrix.backends.venv import VenvSession, prepare_env
from matrix.judge.events import expected_items
from matrix.run.cell import RunOptions, run_cell_once

INTERPRETERS = discover()


def run_named_cell(cell_id, server, tmp_path):
    from matrix.cli.running import cell_from_id
    from matrix.plan.cells import parse_cell_id

    python = parse_cell_id(cell_id)[2]
    if python not in INTERPRETERS:
        pytest.skip(f"Python {python} is not installed")
    return run_cell(cell_from_id(cell_id, INTERPRETERS), server, tmp_path)


def run_cell(cell, server, tmp_path):
    """One attempt of `cell` in its cached venv against `server`, logged to tmp_path/cell.log."""
    try:
        env = prepare_env(INTERPRETERS[cell.python], cell.pin_specs(), requires=list(cell.requires))
    except EnvUnsupported as exc:
        pytest.skip(f"does not install here: {exc}")
    log = tmp_path / "cell.log"
    record = run_cell_once(cell, env.python, server, str(log), RunOptions(), VenvSession(), expected_items,
                           log_rel=str(log))
    return record, log, env

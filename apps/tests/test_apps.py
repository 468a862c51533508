"""Each reference app against its real server process: start-up, /facts, the unit contract, the control.

One representative cell per app (and per route) from the default plan: the real framework under
its real server, the real SDK, events over HTTP to the real mock server.
"""
import os

import pytest

from matrix.axes.lock import load_lock
from matrix.axes.spec import load_axes
from matrix.backends.interpreters import discover
from matrix.judge.verdict import judge
from matrix.plan.planner import plan_cells
from named_cell import run_cell, run_named_cell

CONTEXT_BACKENDS = {"contextvars", "thread-local", "aiocontextvars"}
INTERPRETERS = discover()


def _representatives():
    cells = plan_cells(load_axes(), load_lock(), set(INTERPRETERS))
    chosen = {}
    for cell in reversed(cells):  # newest Python and SDK last in the plan: take them first
        key = (cell.app, cell.route)
        if cell.unsupported or key in chosen or cell.variant != "plain":
            continue
        chosen[key] = cell
    return [chosen[k] for k in sorted(chosen, key=lambda k: (k[0], k[1] or ""))]


CELLS = _representatives()


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_app_starts_answers_facts_and_runs_units(cell, server, tmp_path):
    record, log, _ = run_cell(cell, server, tmp_path)
    tail = "\n".join(record.log_tail)
    assert record.started, f"{record.start_error}\n{tail}"
    facts = record.facts
    assert facts["app"] == cell.app
    assert facts["python"].startswith(cell.python + ".")
    assert facts["sdk_version"] == cell.sdk_version
    assert facts["packages"]["sentry-sdk"] == cell.sdk_version
    assert facts["context_backend"] in CONTEXT_BACKENDS, facts
    assert set(facts["patched"]) >= {"threading", "contextvars"}
    for round_name in ("normal", "control"):
        answers = record.responses[round_name]
        assert [a["unit"] for a in answers] == [1, 2, 3, 4], answers
        assert all(not a.get("error") for a in answers), answers
        # A model whose units run one after another by design (Celery's prefork child and solo pool,
        # gunicorn's sync worker) says so in /facts (`units_overlap: false`) and skips the barrier.
        barrier = "ok" if facts.get("units_overlap", True) else "skipped"
        assert all(a.get("barrier") == barrier for a in answers), answers
    assert all(a["spans"] for a in record.responses["normal"])  # every unit opened spans
    judgement = judge(record)
    assert judgement.checks["control"].ok, judgement.checks["control"].evidence
    assert judgement.verdict in {"isolated", "leak", "nested", "lost"}, judgement.reason
    assert record.exit_signal is None or not record.killed, "the app did not stop when asked"
    assert os.path.getsize(log) > 0


def test_an_app_that_cannot_import_its_framework_names_the_exception_not_the_sdks_last_log_line(server, tmp_path):
    """Twisted 23.10 imports the `cgi` module, which Python 3.13 removed: the app exits before answering, and
    the SDK's own debug lines ("background worker got kill request") come after the traceback. The cell's
    reason is the exception."""
    record, log, _ = run_named_cell("twisted/plain/py3.13/sentry-sdk-2.75.0/twisted-23.10.0", server, tmp_path)
    assert not record.started
    assert record.start_error == ("the app exited before answering (exit 1): "
                                  "ModuleNotFoundError: No module named 'cgi'")
    assert "background worker got kill request" in log.read_text()  # what the reason used to be


def test_app_folders_do_not_import_as_packages_where_the_real_one_is_missing(server, tmp_path):
    """apps/ is on the apps' sys.path (for _common and _django). Without the guard, `import channels` in the
    django-gevent app found apps/channels/ as a namespace package, and sentry-sdk 2.26.1-2.49.0's
    DjangoIntegration, taking Channels for installed, failed in init on channels.__version__: those 121 SDK
    releases read "cannot answer" in the history. With it, the cell answers like its neighbours."""
    import subprocess
    import sys

    apps = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); import _common\n"
                            "try:\n    import channels\nexcept ImportError as exc:\n    print(type(exc).__name__)\n"
                            "import json; print(json.__name__)" % apps], capture_output=True, text=True, timeout=60)
    assert probe.stdout.split() == ["ModuleNotFoundError", "json"], probe.stderr
    record, _, env = run_named_cell("django-gevent/plain/py3.13/sentry-sdk-2.45.0/gevent-26.9.0", server, tmp_path)
    assert "channels" not in env.installed
    assert record.started, record.start_error
    assert judge(record).scope == "isolated"


def test_concurrent_captures_through_one_shared_scope_are_never_dropped(server, tmp_path):
    """sentry-sdk 1.x's Scope.apply_to_event guard is a plain attribute of the scope: children capturing through
    one shared scope at once used to lose events by timing (2 of this cell's 12 child events in each of 5 runs
    before captures were serialised). Every event arrives in every run now, so the answer never rests on luck."""
    for _attempt in range(3):
        record, log, _ = run_named_cell("thread-pool/copy-context/py3.12/sentry-sdk-1.45.1", server, tmp_path)
        assert "the SDK dropped the event" not in log.read_text()
        judgement = judge(record)
        assert judgement.checks["delivery"].ok, judgement.checks["delivery"].evidence
        assert judgement.verdict == "nested", judgement.reason

"""apps/django-asgi against uvicorn: sync views overlap in one worker thread per request (Django >= 4.0's
ThreadSensitiveContext), the SDK is initialised by the shared settings.py, and the gunicorn apps keep
their own URLs. The cell is the default plan's plain sync-view cell of the newest SDK.
"""
import os
import re

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
from matrix.sentry.server import MockSentryServer

APPS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERPRETERS = discover()


def test_gunicorn_apps_keep_their_urlconf():
    with open(os.path.join(APPS, "_django", "ctxproject", "settings.py")) as fh:
        text = fh.read()
    assert 'ROOT_URLCONF = _env.get("CTXM_ROOT_URLCONF", "_django.ctxproject.urls")' in text
    assert "CTXM_ROOT_URLCONF" not in open(os.path.join(APPS, "_django", "launcher.py")).read()


def test_sync_views_overlap_in_one_thread_each(tmp_path):
    cells = [c for c in plan_cells(load_axes(), load_lock(), set(INTERPRETERS))
             if c.app == "django-asgi" and c.variant == "plain" and c.route == "sync-view" and not c.unsupported]
    if not cells:
        pytest.skip("no runnable default cell here")
    cell = max(cells, key=lambda c: (Version(c.sdk_version), Version(c.python)))  # not a named case
    try:
        env = prepare_env(INTERPRETERS[cell.python], cell.pin_specs(), requires=list(cell.requires))
    except EnvUnsupported as exc:
        pytest.skip(f"does not install here: {exc}")
    log = tmp_path / "cell.log"
    with MockSentryServer() as server:
        record = run_cell_once(cell, env.python, server, str(log), RunOptions(), VenvSession(), expected_items,
                               log_rel=str(log))
    assert record.started, record.start_error
    assert all(a.get("barrier") == "ok" for a in record.responses["normal"]), record.responses["normal"]
    text = log.read_text()
    assert "initialised (DjangoIntegration)" in text  # settings.py ran sentry_sdk.init
    threads = re.findall(r"sync-view /unit/(\d+) in thread (\S+)", text)
    normal = dict(threads[:4])
    assert len(normal) == 4 and len(set(normal.values())) == 4, threads
    judgement = judge(record)
    assert judgement.scope == "isolated", judgement.reason

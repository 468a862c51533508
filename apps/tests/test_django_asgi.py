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


def test_an_sdk_that_breaks_every_request_is_an_error_naming_the_exception_not_a_start_timeout(tmp_path):
    """sentry-sdk 1.19.0's DjangoIntegration assigns into the tuple Django 6.1's Signal._live_receivers returns:
    the app starts, and every request (the harness's /facts too) fails with HTTP 500. The cell ends as `error`
    naming that TypeError as soon as /facts has failed a few times, instead of polling a broken app until the
    start timeout and calling it `timeout: the app did not answer /facts`."""
    from matrix.run.cell import BROKEN_ANSWERS
    from named_cell import run_named_cell

    with MockSentryServer() as server:
        record, log, _ = run_named_cell("django-asgi/plain/py3.13/sentry-sdk-1.19.0/django-6.1.3/on-async-view",
                                        server, tmp_path)
    assert not record.started and record.timed_out is None
    assert record.start_error == (f"the app answers every request with HTTP 500 (/facts, {BROKEN_ANSWERS}+ times "
                                  "in a row): TypeError: 'tuple' object does not support item assignment")
    judgement = judge(record)
    assert judgement.verdict == "error" and "TypeError" in judgement.reason
    assert log.read_text().count("Traceback (most recent call last)") >= BROKEN_ANSWERS

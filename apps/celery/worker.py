"""The Celery side of apps/celery: the Celery app, the SDK initialised on worker start, the tasks.

Loaded twice, as users have it:
  * by the Celery worker (`python -m celery -A worker worker -P <pool>`, started by app.py). For
    the gevent and eventlet pools Celery's own command line monkeypatches the stdlib BEFORE it
    imports this module. `sentry_sdk.init` runs on the `celeryd_init` signal, where the SDK's
    Celery page puts it: in the main worker process, before a prefork pool forks its children.
  * by the HTTP front (app.py), the producer: it only needs the task objects, to call
    `unit_task.apply_async(...)` as user code does (the CeleryIntegration wraps apply_async).

Units are tasks. `ctxm.unit` runs the contract's round (apps/_common/unit.py, blocking flavour)
in the task, inside the CeleryIntegration's own transaction, and pushes its JSON answer to a
Redis list the front waits on (no result backend). The overlap:
  * threads, gevent, eventlet pools: the N tasks run at once in this process; an in-process
    N-party barrier (threading.Condition, green after Celery's monkeypatching).
  * prefork (-c 1) and solo: one task at a time in one process; the round's "barrier" is
    skipped and the N tasks run one after another in the same process: what can leak there is
    a task's scope data reaching the NEXT task's event (concurrent prefork tasks live in
    different processes, which share no scope -- nor could the control round's).
Configuration comes from CTXM_* environment variables set by app.py. Python 3 only.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import celery  # noqa: E402
import redis  # noqa: E402
from celery import Celery, signals  # noqa: E402

from _common import facts, sdk, unit  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

APP_ID = "celery"
ENV = os.environ
POOL = ENV.get("CTXM_POOL", "threads")
SEQUENTIAL = POOL in ("prefork", "solo")
REPLY_TTL = 120

app = Celery("ctxm", broker=ENV.get("CTXM_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=ENV.get("CTXM_QUEUE", "ctxm"),
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_redirect_stdouts=False,  # our one-line logs go to stderr as they are
)


def integrations():
    """CeleryIntegration, explicit, with propagate_traces=True (older SDKs lack the keyword)."""
    from sentry_sdk.integrations.celery import CeleryIntegration

    try:
        return [CeleryIntegration(propagate_traces=True)]
    except TypeError:
        return [CeleryIntegration()]


@signals.celeryd_init.connect
def init_sentry(**_kwargs):
    set_prefix("celery worker")
    try:
        sdk.init_sdk(ENV["CTXM_DSN"], integrations=integrations())
    except Exception:
        log_exception("sentry_sdk.init failed in the worker")
        raise
    backend, detail = facts.context_backend()
    log("sentry-sdk %s initialised on celeryd_init (pool %s, pid %d): context_backend=%s (%s)"
        % (sdk.sdk_version(), POOL, os.getpid(), backend, detail))


@signals.worker_process_init.connect
def child_started(**_kwargs):
    set_prefix("celery pool child")


class SkipBarrier(object):
    """One task at a time (prefork -c 1, solo): nothing to wait for."""

    def __init__(self, parties, name=None):
        self.parties = parties

    def wait(self, timeout):
        return "skipped", 0.0


class CeleryModel(object):
    """The unit runner's model inside a task. Children run inline, one after another, in the
    task's own thread or greenlet (a task fans nothing out)."""

    children_overlap = False

    def __init__(self, sequential):
        self.sequential = sequential

    def barrier(self, parties, name):
        return SkipBarrier(parties, name) if self.sequential else unit.ConditionBarrier(parties, name)

    def run_children(self, runners):
        for run in runners:
            run()

    def unit_transaction(self, name):
        """The unit's transaction is the one the CeleryIntegration started for this task
        (continued from the producer's trace), under the integration's name."""
        return sdk.integration_transaction(name)


UNITS = unit.Units(CeleryModel(SEQUENTIAL), int(ENV.get("CTXM_UNITS", "4")), int(ENV.get("CTXM_CHILDREN", "3")),
                   float(ENV.get("CTXM_BARRIER_TIMEOUT", "10")), ENV.get("CTXM_VARIANT", "plain"))
_redis = {}


def reply(key, obj):
    """RPUSH the answer where the front BLPOPs it (one client per process: prefork children)."""
    client = _redis.get(os.getpid())
    if client is None:
        client = _redis[os.getpid()] = redis.Redis.from_url(app.conf.broker_url)
    client.rpush(key, json.dumps(obj))
    client.expire(key, REPLY_TTL)


@app.task(name="ctxm.unit")
def unit_task(i, round_name, reply_key):
    try:
        status, result = unit.answer_blocking(UNITS, i, round_name)
    except Exception as exc:  # e.g. entering the variant's wrapper
        log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
        status, result = 500, dict(sdk.new_result(i, round_name, UNITS.variant), error=str(exc))
    result["worker"] = {"pool": POOL, "pid": os.getpid()}
    reply(reply_key, {"status": status, "result": result})


@app.task(name="ctxm.facts")
def facts_task(reply_key):
    doc = facts.facts(APP_ID, UNITS.variant, UNITS.units)
    doc["worker"] = {"pool": POOL, "pid": os.getpid(), "celery": celery.__version__}
    doc["units_overlap"] = not SEQUENTIAL  # prefork -c 1, solo: the tasks run one after another
    reply(reply_key, doc)


@app.task(name="ctxm.flush")
def flush_task(reply_key):
    """Drain the worker's client and say whether it did. The reply goes out either way: sentry-sdk
    0.9.5-0.13.1's flush() raises under the gevent and eventlet pools (their monkey-patched Queue has
    no all_tasks_done), and a task that never replied left the front waiting out its whole bound."""
    try:
        sdk.flush(timeout=5)
        answer = {"flushed": True}
    except Exception as exc:
        log_exception("sentry_sdk.flush failed in the worker")
        answer = {"flushed": False, "error": one_line(exc)}
    answer["pid"] = os.getpid()
    reply(reply_key, answer)

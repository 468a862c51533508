"""apps/celery: what the judge makes of a task's transaction and the producer transaction that
enqueued it (the `propagation` check), on fixed payloads; and the app's one-line argument errors.
The real worker on its real broker runs in test_apps.py (one default cell per pool); here, the worker
whose SDK cannot flush under its green pool, and the stop that leaves no worker process behind."""
import os
import re
import subprocess
import sys

from matrix.judge.checks import check_propagation
from matrix.judge.events import expected_items, sort_items
from matrix.judge.verdict import judge
from named_cell import run_named_cell

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "celery", "app.py")
PRODUCER_SPAN, SUBMIT_SPAN, TASK_SPAN = "a" * 16, "b" * 16, "c" * 16


def _items(task_trace, task_parent):
    producer = {"type": "transaction", "transaction": "enqueue-unit-1",
                "contexts": {"trace": {"trace_id": "1" * 32, "span_id": PRODUCER_SPAN}},
                "spans": [{"span_id": SUBMIT_SPAN, "parent_span_id": PRODUCER_SPAN, "op": "queue.submit.celery"}]}
    task = {"type": "transaction", "transaction": "ctxm.unit",
            "contexts": {"trace": {"trace_id": task_trace, "span_id": TASK_SPAN, "parent_span_id": task_parent}},
            "spans": []}
    return [{"type": "transaction", "payload": producer}, {"type": "transaction", "payload": task}]


RESPONSES = [{"unit": 1, "transaction": "ctxm.unit", "trace_id": "1" * 32, "span_id": TASK_SPAN,
              "producer": {"transaction": "enqueue-unit-1", "trace_id": "1" * 32, "span_id": PRODUCER_SPAN}}]


def test_the_producer_transaction_is_not_the_units_own():
    obs = sort_items(_items("1" * 32, SUBMIT_SPAN), RESPONSES)
    assert obs.transactions[1]["transaction"] == "ctxm.unit"
    assert obs.producers[1]["transaction"] == "enqueue-unit-1"
    assert not obs.duplicates


def test_a_task_continuing_the_producers_trace_is_linked():
    check = check_propagation(sort_items(_items("1" * 32, SUBMIT_SPAN), RESPONSES), RESPONSES)
    assert check.ok and check.measured["unlinked"] == 0


def test_a_task_in_a_trace_of_its_own_is_unlinked():
    responses = [dict(RESPONSES[0], trace_id="2" * 32)]
    check = check_propagation(sort_items(_items("2" * 32, None), responses), responses)
    assert not check.ok and check.measured["unlinked"] == 1
    assert "started its own trace" in check.evidence[0]


def test_a_parent_outside_the_producer_is_unlinked():
    check = check_propagation(sort_items(_items("1" * 32, "d" * 16), RESPONSES), RESPONSES)
    assert not check.ok and "none of enqueue-unit-1's spans" in check.evidence[0]


def test_no_producer_no_check_and_delivery_waits_for_producers():
    assert check_propagation(sort_items([], []), [{"unit": 1}]) is None
    done = expected_items(1, RESPONSES)
    assert not done(_items("1" * 32, SUBMIT_SPAN)[1:])  # the producer has not arrived yet


def test_unknown_pool_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, APP, "--dsn", "http://k@127.0.0.1:9/1", "--port", "0", "--variant",
                           "plain", "--route", "processes"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "celery: error: unknown route 'processes' (this app supports: prefork, threads, gevent, eventlet, solo)"]


def _alive(pids):
    """The pids that are still running: neither gone nor a zombie."""
    return [p for p in pids if _state(p) != "Z"]


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:  # gone
        return "Z"


def test_a_worker_whose_sdk_cannot_flush_says_so_and_the_events_are_still_judged(server, tmp_path):
    """sentry-sdk 0.10.1's flush() raises under the gevent pool (the patched Queue has no
    all_tasks_done). The flush task replies with that error instead of never replying, /flush says
    the worker did not flush (so the harness waits for the events rather than settling), and every
    unit's events arrive and are judged."""
    record, log, _ = run_named_cell("celery/plain/py3.13/sentry-sdk-0.10.1/celery-5.7.0/on-gevent", server, tmp_path)
    text = log.read_text()
    assert "worker flush failed: AttributeError: " in text and "all_tasks_done" in text
    assert "no answer from the worker" not in text
    judgement = judge(record)
    assert judgement.checks["delivery"].ok, judgement.checks["delivery"].evidence
    assert judgement.verdict == "isolated", judgement.reason


def test_shutdown_leaves_no_worker_pool_child_or_redis_behind(server, tmp_path):
    """The prefork worker has a pool child of its own; /shutdown kills the worker, its child and
    redis-server, and the app exits 0."""
    record, log, _ = run_named_cell("celery/plain/py3.13/sentry-sdk-2.75.0/celery-5.7.0/on-prefork", server, tmp_path)
    text = log.read_text()
    assert record.exit_code == 0 and record.exit_signal is None, text[-2000:]
    # The pool child ran the tasks; the worker's main process, the front and redis-server logged their pids.
    child = record.responses["normal"][0]["worker"]["pid"]
    pids = {int(p) for p in re.findall(r"(?<!parent-)pid[= ](\d+)", text)} | {int(p) for p in re.findall(r"^(\d+):[CM] ", text, re.M)}
    assert child in pids and len(pids) >= 4, pids
    assert _alive(pids) == []

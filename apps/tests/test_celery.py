"""apps/celery: what the judge makes of a task's transaction and the producer transaction that
enqueued it (the `propagation` check), on fixed payloads; and the app's one-line argument errors.
The real worker on its real broker runs in test_apps.py (one default cell per pool)."""
import os
import subprocess
import sys

from matrix.judge.checks import check_propagation
from matrix.judge.events import expected_items, sort_items

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

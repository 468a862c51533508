"""The unit's work inside the Django view (see apps/README.md, "Normal round").

Imported only in the gunicorn worker, after the worker class monkeypatched
the stdlib. The barrier is built on `threading.Condition`: under gunicorn's
gevent and eventlet workers `threading` is patched, so its Condition and
locks are the model's own cooperative primitives (a waiting unit yields to
the hub and the other greenlets run); the log says which lock class backs it.

Children: the C child spans are opened one after another in the request's
own greenlet (like apps/threads), after the barrier.
"""
from __future__ import absolute_import, print_function

import threading
import time

import sentry_sdk

from _common import sdk
from _common.log import log, log_exception, one_line

_monotonic = getattr(time, "monotonic", time.time)


class ConditionBarrier(object):
    """Cyclic N-party barrier on threading.Condition. wait(timeout) ->
    ("ok"|"timeout", seconds waited). A party that times out withdraws from
    the current generation."""

    def __init__(self, parties):
        self.parties = parties
        self._cond = threading.Condition()
        self._count = 0
        self._generation = 0

    def wait(self, timeout):
        start = _monotonic()
        with self._cond:
            generation = self._generation
            self._count += 1
            if self._count >= self.parties:
                self._count = 0
                self._generation += 1
                self._cond.notify_all()
                return "ok", _monotonic() - start
            deadline = start + timeout
            while self._generation == generation:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    self._count -= 1
                    return "timeout", _monotonic() - start
                self._cond.wait(remaining)
            return "ok", _monotonic() - start


def describe_primitives():
    """One line: which classes back threading's Lock/Condition here."""
    lock = threading.Lock()
    return "threading.Lock() -> %s.%s; threading.Condition -> %s.%s; threading.local -> %s.%s" % (
        type(lock).__module__, type(lock).__name__,
        threading.Condition.__module__, getattr(threading.Condition, "__name__", "?"),
        threading.local.__module__, threading.local.__name__,
    )


class Units(object):
    def __init__(self, units, children, barrier_timeout, variant):
        self.units = units
        self.children = children
        self.barrier_timeout = barrier_timeout
        self.variant = variant
        self.normal_barrier = ConditionBarrier(units)
        self.control_barrier = ConditionBarrier(units)

    def run(self, i, round_name):
        body = self.run_control if round_name == "control" else self.run_normal
        if self.variant == "hub-clone":
            with sentry_sdk.Hub(sentry_sdk.Hub.current):
                return body(i)
        if self.variant == "isolation-scope":
            with sentry_sdk.isolation_scope():
                return body(i)
        return body(i)

    def run_normal(self, i):
        result = sdk.new_result(i, "normal", self.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_normal(i)
            with sdk.unit_transaction(name) as tx_name:
                result["transaction"] = tx_name
                with sdk.child_span(name + ".before") as opened:
                    if opened:
                        result["spans"].append(name + ".before")
                state, waited = self.normal_barrier.wait(self.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                for k in range(1, self.children + 1):
                    child = "%s.child-%d" % (name, k)
                    with sdk.child_span(child) as opened:
                        if opened:
                            result["spans"].append(child)
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)
        return result

    def run_control(self, i):
        result = sdk.new_result(i, "control", self.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = self.control_barrier.wait(self.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)
        return result

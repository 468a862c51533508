"""The unit protocol, written once, as generators of operations.

A round (apps/README.md: normal, control; Channels' load) and a child are
generator functions. Where the concurrency model must act they yield an
operation and get its outcome back:

    state, waited = yield Wait(barrier, timeout)   # -> ("ok"|"timeout", seconds)
    states = yield Children(gens, names, states)   # -> the children's sibling-barrier
                                                   #    states, or the failure is raised

A driver runs such a generator inside the caller's own thread, greenlet or
task (so the SDK sees the model's own context) and performs each operation
through the app's MODEL (duck-typed):

    model.barrier(parties, name) -> object whose wait(timeout) gives (state, seconds),
                                   or an awaitable / a Deferred of it; `name` is a
                                   stable key ("normal", "control", "unit-3.children")
                                   for a barrier that lives outside the process
    model.run_children(runners) -> runs every runner() (each drives one child to
                                   its end) the model's way; raises (or returns an
                                   awaitable / Deferred that fails) if one failed
    model.children_overlap      -> False: no sibling barrier (children run inline)
    model.child_binding()       -> (optional, Deferred flavour) what a child re-enters
    model.unit_transaction(name) -> (optional) entered instead of sdk.unit_transaction(name)
                                   (Celery, Flask: the integration's own transaction)

Drivers: run_blocking (here: threads, greenlets, Django views), aio.drive
(coroutines, Python 3 only), deferred.drive (Twisted). Python 2.7
generators cannot return a value: a round fills the `result` dict it is
given (sdk.new_result), a child fills its slot of `states`.

Valid Python 2.7 and 3.6-3.13, stdlib only.
"""
from __future__ import absolute_import, print_function

import functools
import sys
import threading
import time

from _common import sdk, variants
from _common.log import log, log_exception, one_line

_monotonic = getattr(time, "monotonic", time.time)
# A test-only variant (apps accept it where a memory probe runs): every round keeps copies of its
# scopes for good, the per-request leak the memory probe exists to catch.
PLANTED_LEAK = "planted-leak"
_planted = []

# Units that reached the normal round's barrier, in order (GET /arrived): what the harness waits on
# when an app's units must arrive in turn (`arrival = "in-turn"` in matrix/axes/axes.toml).
# list.append is atomic under the GIL, green and async models run one unit at a time.
_arrived = []


def arrived():
    """GET /arrived: how many units have reached the normal barrier so far, and which."""
    return {"normal": len(_arrived), "units": list(_arrived)}


class Wait(object):
    """Wait at an N-party barrier, bounded by timeout."""

    __slots__ = ("barrier", "timeout")

    def __init__(self, barrier, timeout):
        self.barrier = barrier
        self.timeout = timeout


class Children(object):
    """Run the child generators; the outcome is `states` once all are done."""

    __slots__ = ("gens", "names", "states")

    def __init__(self, gens, names, states):
        self.gens = gens
        self.names = names
        self.states = states


class Runner(object):
    """runner() drives one child generator to its end (through `drive`)."""

    __slots__ = ("name", "_drive", "_model", "_gen")

    def __init__(self, name, drive, model, gen):
        self.name, self._drive, self._model, self._gen = name, drive, model, gen

    def __call__(self):
        return self._drive(self._model, self._gen)


def runners(model, op, drive):
    """The Runner of each child of a Children op; `drive(model, gen)` is the
    flavour's way to run a generator to its end."""
    return [Runner(name, drive, model, gen) for name, gen in zip(op.names, op.gens)]


def resume(gen, value, error):
    """gen.send(value), or throw `error` (an exc_info triple) into it."""
    if error is None:
        return gen.send(value)
    if sys.version_info[0] < 3:
        return gen.throw(error[0], error[1], error[2])
    return gen.throw(error[1])  # the traceback travels on the exception


# --------------------------------------------------------------------------
# the bodies


def normal_round(units, i, result, name, barrier):
    """The contract's normal round; barrier None is Channels' load round
    (no cross-unit barrier)."""
    try:
        sdk.write_scope_normal(i)
        # A model may bring its own (Celery: the integration's transaction of the task).
        with getattr(units.model, "unit_transaction", sdk.unit_transaction)(name) as tx_name:
            result["transaction"] = tx_name
            if tx_name is not None:
                result["trace_id"], result["span_id"] = sdk.current_span_ids()
            with sdk.child_span(name + ".before") as opened:
                if opened:
                    result["spans"].append(name + ".before")
            if barrier is None:
                result["barrier"], result["barrier_waited_s"] = "skipped", 0.0
            else:
                _arrived.append(i)  # every scope write of this unit is done: the next one may come
                state, waited = yield Wait(barrier, units.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state == "timeout":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
            states = yield units.children(name, result)
            if "timeout" in states:
                # The siblings did not overlap: report it as a barrier timeout.
                log("%s: children did not overlap (sibling barrier: %s)" % (name, states))
                result["barrier"] = "timeout"
            result["event_id"] = sdk.capture_unit_message(name)
            if units.variant == PLANTED_LEAK:
                _planted.append(sdk.scope_copies())  # the leak the memory probe must catch
    except Exception as exc:
        result["error"] = one_line(exc)
        log_exception("%s: %s round failed" % (name, result["round"]))


def control_round(units, i, result):
    """The positive control: one shared scope, a separate N-party barrier."""
    name = "unit-%d" % i
    try:
        sdk.write_scope_control(i)
        state, waited = yield Wait(units.control_barrier, units.barrier_timeout)
        result["barrier"] = state
        result["barrier_waited_s"] = round(waited, 4)
        if state == "timeout":
            log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
        result["event_id"] = sdk.capture_control_message("control-" + name)
    except Exception as exc:
        result["error"] = one_line(exc)
        log_exception("%s: control round failed" % name)


def child(units, name, i, k, siblings, result, states):
    """Child k of unit i: span `name.child-k`; with siblings (children that really
    run concurrently), it first writes its own tag child.<i>.<k>, waits for its
    siblings with the span open (so every sibling has written its tag), then
    captures its own event `name.child-k`: the judge's children_bleed check
    reads whether a child's write reached its parent's or a sibling's event."""
    child_name = "%s.child-%d" % (name, k)
    try:
        if siblings is not None:
            sdk.write_child_tag(i, k)
        with sdk.child_span(child_name) as opened:
            if opened:
                result["spans"].append(child_name)
            if siblings is None:
                states[k - 1] = "ok"
            else:
                state, waited = yield Wait(siblings, units.barrier_timeout)
                states[k - 1] = state
                if state != "ok":
                    log("%s: sibling barrier timed out after %.2fs, continuing" % (child_name, waited))
        if siblings is not None:
            result["child_events"][k - 1] = sdk.capture_unit_message(child_name)
    except Exception:
        log_exception("%s failed" % child_name)
        raise


class Units(object):
    """One app's N units: the model, its two N-party barriers, the bodies."""

    def __init__(self, model, units, children, barrier_timeout, variant):
        self.model = model
        self.units = units
        self.n_children = children
        self.barrier_timeout = barrier_timeout
        self.variant = variant
        self.normal_barrier = model.barrier(units, "normal")
        self.control_barrier = model.barrier(units, "control")

    @classmethod
    def from_args(cls, model, args):
        return cls(model, args.units, args.children, args.barrier_timeout, args.variant)

    def body(self, i, round_name):
        """-> (result dict, the round's operation generator)."""
        result = sdk.new_result(i, round_name, self.variant)
        if round_name == "control":
            return result, control_round(self, i, result)
        if round_name == "load":
            return result, normal_round(self, i, result, "load-unit-%d" % i, None)
        return result, normal_round(self, i, result, "unit-%d" % i, self.normal_barrier)

    def children(self, name, result):
        """The Children operation of unit `name` (made in the unit's context)."""
        count = self.n_children
        overlap = getattr(self.model, "children_overlap", True)
        siblings = self.model.barrier(count, name + ".children") if overlap else None
        states = [None] * count
        result["children"] = "spawned" if overlap else "inline"
        if overlap:
            result["child_events"] = [None] * count
        i = result["unit"]
        gens = [child(self, name, i, k, siblings, result, states) for k in range(1, count + 1)]
        names = ["%s.child-%d" % (name, k) for k in range(1, count + 1)]
        return Children(gens, names, states)

    def scope_fix(self):
        return variants.scope_fix(self.variant)


# --------------------------------------------------------------------------
# the blocking flavour


def run_blocking(model, gen):
    """Run an operation generator to its end in the calling thread/greenlet."""
    value, error = None, None
    while True:
        try:
            op = resume(gen, value, error)
        except StopIteration:
            return
        value, error = None, None
        try:
            if isinstance(op, Wait):
                value = op.barrier.wait(op.timeout)
            elif isinstance(op, Children):
                model.run_children(runners(model, op, run_blocking))
                value = op.states
            else:
                raise TypeError("unknown operation %r" % (op,))
        except BaseException:
            error = sys.exc_info()


def answer_blocking(units, i, round_name):
    """Unit i's round, inside the variant's scope fix -> (HTTP status, result)."""
    with units.scope_fix():
        result, gen = units.body(i, round_name)
        run_blocking(units.model, gen)
    return (500 if result["error"] else 200), result


class ConditionBarrier(object):
    """Cyclic N-party barrier on threading.Condition (2.7 has no
    threading.Barrier; under gevent/eventlet patching its locks are green).
    wait(timeout) -> ("ok"|"timeout", seconds waited). A party that times
    out withdraws from the current generation."""

    def __init__(self, parties, name=None):
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


class GreenBarrier(object):
    """Cyclic N-party barrier for green threads (gevent, eventlet): an event
    per generation + a counter, no lock (green threads only switch at the
    wait). wait(timeout) -> ("ok"|"timeout", seconds waited). A party that
    times out withdraws from its generation. `events`: how the library's
    event is made, set and read, (new_event(), release(event), released(event));
    a model's `barrier` is green_barrier(...)."""

    def __init__(self, parties, name=None, events=None):
        self.parties = parties
        self._new_event, self._release, self._released = events
        self._count = 0
        self._event = self._new_event()

    def wait(self, timeout):
        start = _monotonic()
        event = self._event
        self._count += 1
        if self._count >= self.parties:
            self._count = 0
            self._event = self._new_event()
            self._release(event)
            return "ok", _monotonic() - start
        event.wait(timeout)  # returns once released, or at the timeout
        if self._released(event):
            return "ok", _monotonic() - start
        if self._event is event:
            self._count -= 1
        return "timeout", _monotonic() - start


def green_barrier(new_event, release, released):
    """A model's `barrier` (parties, name) -> GreenBarrier on a green library's events."""
    return functools.partial(GreenBarrier, events=(new_event, release, released))


class InlineModel(object):
    """Threads and Django views: a Condition barrier; the C children run one
    after another in the unit's own thread/greenlet, no sibling barrier."""

    children_overlap = False
    barrier = ConditionBarrier

    def run_children(self, runners):
        for run in runners:
            run()

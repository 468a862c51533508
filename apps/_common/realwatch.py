"""A watchdog on a REAL OS thread, for the green models (gevent, eventlet).

After monkeypatching, every threading.Thread is a greenlet, so
lifecycle.start_watchdogs (a patched Thread + patched sleep) stops running as
soon as something blocks the one OS thread in a real, unpatched call -- which
is what happens when the SDK is set up before the patch (its transport's lock
and queue are then real OS-thread primitives). This one runs on an unpatched
thread with an unpatched sleep, so it still:
  * exits (code 3) when the parent process is gone,
  * exits (code 0) after --max-seconds,
  * when the hub stops running (no heartbeat for STALL_SECONDS once the
    heartbeat has begun), logs the Python stacks of the OS threads (the
    hub's first) under a line starting with DEADLOCK_MARK and exits with
    DEADLOCK_EXIT: nothing green can run any more, so waiting out the
    requests' timeouts would only cost time (the engine reports the cell
    as `error: deadlock` with these stacks as evidence).

The caller passes the ORIGINAL functions: `start_new_thread` and `get_ident`
of the unpatched (_)thread module, the unpatched `sleep`, a clock; before
the patch (sdk-first) the plain ones, after it gevent.monkey.get_original /
eventlet.patcher.original. The heartbeat is a green loop the app spawns with
its own spawn function (start_heartbeat), possibly later than start().

Writes straight to fd 2: no (patched) lock, no green switch. Imports only
os, sys, time, traceback (and _common.parent). Valid Python 2.7 and 3.x.
"""
from __future__ import absolute_import, print_function

import os
import sys
import time
import traceback

from _common.parent import watched as watched_parent

STALL_SECONDS = 3.0
DEADLOCK_EXIT = 5  # apps/README.md: the hub stayed blocked, see the log's deadlock report
DEADLOCK_MARK = "deadlock:"

_state = {"beat": None, "clock": None}


def _line(app_id, text):
    line = "[%s pid=%d %s] %s\n" % (app_id, os.getpid(), time.strftime("%H:%M:%S"), text)
    try:
        os.write(2, line.encode("utf-8"))
    except (OSError, UnicodeError):
        pass


def _stacks(hub, own):
    frames = sys._current_frames()
    order = [hub] + sorted(ident for ident in frames if ident not in (hub, own))
    lines = []
    for ident in order:
        frame = frames.get(ident)
        if frame is None:
            continue
        lines.append("  OS thread %s%s:" % (ident, " (the hub's)" if ident == hub else ""))
        for part in traceback.format_stack(frame):
            lines.append("    " + part.rstrip().replace("\n", "\n    "))
    return "\n".join(lines) or "  (no frames)"


def heartbeat():
    """One beat: the hub is running (the watch starts judging stalls from the first beat on)."""
    clock = _state["clock"]
    if clock is not None:
        _state["beat"] = clock()
        _state["beating"] = True


def start_heartbeat(spawn, green_sleep, poll=0.5):
    """Spawn (the model's own spawn) a green loop that beats every poll s."""

    def loop():
        while True:
            heartbeat()
            green_sleep(poll)

    return spawn(loop)


def start(app_id, hub_name, max_seconds, start_new_thread, get_ident, sleep, clock, poll=0.5):
    """Start the watchdog (call it on the hub's OS thread, the main one)."""
    parent = watched_parent()
    started = clock()
    hub = get_ident()
    _state["clock"] = clock
    _state["beat"] = started

    def watch():
        own = get_ident()
        while True:
            sleep(poll)
            if os.getppid() != parent:
                _line(app_id, "exiting with code 3: parent process %d is gone" % parent)
                os._exit(3)
            if max_seconds and clock() - started > max_seconds:
                _line(app_id, "exiting with code 0: --max-seconds %s reached" % max_seconds)
                os._exit(0)
            stalled = clock() - _state["beat"]
            if _state.get("beating") and stalled > STALL_SECONDS:
                _line(app_id, "%s the %s hub has been blocked for %.1fs: no green thread can run (a real, "
                      "unpatched lock or blocking call holds the OS thread); exiting with code %d. Stacks:\n%s"
                      % (DEADLOCK_MARK, hub_name, stalled, DEADLOCK_EXIT, _stacks(hub, own)))
                os._exit(DEADLOCK_EXIT)

    start_new_thread(watch, ())

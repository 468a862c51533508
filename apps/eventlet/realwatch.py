"""A watchdog on a REAL OS thread, for the eventlet app.

After `eventlet.monkey_patch()` every `threading.Thread` is a greenthread, so
`_common.lifecycle`'s watchdog (a patched Thread + patched time.sleep) stops
running as soon as something blocks the one OS thread in a real, unpatched
call -- which is what happens when the SDK is initialised before the patch
(its transport's lock and queue are then real OS-thread primitives). This
watchdog runs on an unpatched thread with an unpatched sleep, so it still:
  * exits (code 3) when the parent process is gone,
  * exits (code 0) after --max-seconds,
  * logs ONCE, with the Python stacks of every OS thread, when the eventlet
    hub stops running (no greenthread heartbeat for STALL_SECONDS), and logs
    again if it recovers.

stdlib only; valid Python 2.7 and 3.x. The caller passes the real threading
module and the real sleep/clock functions: before the patch (sdk-first) the
plain modules, after it `eventlet.patcher.original(...)`.
"""
from __future__ import absolute_import, print_function

import os
import sys
import time
import traceback

STALL_SECONDS = 5.0

_state = {"beat": None, "clock": None}


def _line(app_id, text):
    """Straight to stderr, without _common.log's lock (which is green after
    the patch and must not be touched from this OS thread)."""
    try:
        sys.stderr.write("[%s pid=%d %s] %s\n" % (app_id, os.getpid(), time.strftime("%H:%M:%S"), text))
        sys.stderr.flush()
    except Exception:
        pass


def _stacks():
    lines = []
    for ident, frame in sys._current_frames().items():
        if ident == _state.get("self"):
            continue
        lines.append("  OS thread %s:" % ident)
        for part in traceback.format_stack(frame):
            lines.append("    " + part.rstrip().replace("\n", "\n    "))
    return "\n".join(lines)


def _get_ident(threading_module):
    get = getattr(threading_module, "get_ident", None)  # 3.x
    if get is not None:
        return get()
    return threading_module.current_thread().ident  # 2.7


def heartbeat():
    """Called by a greenthread every poll seconds while the hub runs."""
    clock = _state["clock"]
    if clock is not None:
        _state["beat"] = clock()


def start(app_id, max_seconds, threading_module, sleep, clock, poll=0.5):
    parent = os.getppid()
    started = clock()
    _state["clock"] = clock
    _state["beat"] = started

    def watch():
        _state["self"] = _get_ident(threading_module)
        reported = False
        while True:
            sleep(poll)
            if os.getppid() != parent:
                _line(app_id, "exiting with code 3: parent process %d is gone" % parent)
                os._exit(3)
            if max_seconds and clock() - started > max_seconds:
                _line(app_id, "exiting with code 0: --max-seconds %s reached" % max_seconds)
                os._exit(0)
            stalled = clock() - _state["beat"]
            if stalled > STALL_SECONDS and not reported:
                reported = True
                _line(
                    app_id,
                    "HUB BLOCKED: no greenthread has run for %.1fs; the OS thread is stuck in a "
                    "blocking (unpatched) call. Stacks:\n%s" % (stalled, _stacks()),
                )
            elif stalled <= STALL_SECONDS and reported:
                reported = False
                _line(app_id, "hub running again")

    thread = threading_module.Thread(target=watch, name="app-real-watchdog")
    thread.daemon = True
    thread.start()
    return thread

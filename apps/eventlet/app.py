"""Reference app: one eventlet greenthread per request (eventlet.wsgi server).

`eventlet.monkey_patch()` runs FIRST, before anything else is imported, so
`threading.local` is eventlet's greenthread-local and the socket/thread/time
modules are green. All units then run on ONE OS thread, switching at green
I/O and at the barrier; the SDK's context storage (whatever it picked at
import time: a thread-local shim, which eventlet makes greenthread-local, or
real contextvars) is what has to keep them apart.

Server: `eventlet.wsgi.server` on an `eventlet.listen(('127.0.0.1', port))`
socket, one greenthread per connection (the server's GreenPool).
Barrier: `eventlet.event.Event` (one per generation) + a counter, bounded by
`Event.wait(timeout)`.
Children: `eventlet.spawn` C greenthreads, each opening `unit-i.child-k`;
while its span is open each child waits at a per-unit C-party barrier, so
the siblings overlap; the unit waits for all (GreenThread.wait).

Variants:
  plain, hub-clone, isolation-scope   see _common.variants
  sdk-first        `import sentry_sdk` + `sentry_sdk.init()` BEFORE
                   `eventlet.monkey_patch()` (the SDK picks its context
                   storage before threading is green, and its transport
                   worker's lock/queue are real OS-thread primitives)
  sdk-import-first `import sentry_sdk` BEFORE `eventlet.monkey_patch()`,
                   `sentry_sdk.init()` after it: only the import-time choice
                   of context storage differs from plain

_common.realwatch runs a watchdog on a REAL OS thread (parent gone,
--max-seconds, and a log of the stacks when the eventlet hub stops running):
after the patch every threading.Thread is a greenthread.

Valid Python 2.7 and 3.6+ syntax. See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import early  # noqa: E402  (imports sys only)

APP_ID = "eventlet"
VARIANTS = ("plain", "sdk-first", "sdk-import-first", "hub-clone", "isolation-scope")
ORDER = {
    "sdk-first": "sdk-import+init, then monkey_patch",
    "sdk-import-first": "sdk-import, then monkey_patch, then init",
}
_VARIANT = early.variant_from_argv()
SDK_FIRST = _VARIANT == "sdk-first"
PATCH_ORDER = ORDER.get(_VARIANT, "monkey_patch first")
_THREAD = "_thread" if sys.version_info[0] >= 3 else "thread"


def _monkey_patch():
    try:
        import eventlet
    except ImportError as exc:
        early.die(APP_ID, "the stack cannot run here without the SDK: cannot import eventlet: %s: %s"
                  % (type(exc).__name__, exc), code=early.STACK_FAILS)
    eventlet.monkey_patch()


if _VARIANT == "sdk-import-first":
    try:
        import sentry_sdk  # noqa: F401  (sentry_sdk.utils picks its ContextVar now)
    except ImportError as _exc:
        early.die(APP_ID, "cannot import sentry_sdk: %s" % (_exc,))

if not SDK_FIRST:
    _monkey_patch()  # before anything else is imported (but the SDK in sdk-import-first)

from _common import cli  # noqa: E402  (argparse + sys only)
from _common import realwatch  # noqa: E402  (os, sys, time, traceback only)

_early = {}

if SDK_FIRST:
    # Parse the arguments, start the real-thread watchdog with the still
    # unpatched thread/sleep (so that a hang inside monkey_patch() is reported
    # and the process still stops), import the SDK and init it, THEN patch.
    import time as _real_time  # noqa: E402

    _real_thread = __import__(_THREAD)
    _early["args"] = cli.parse_args(APP_ID, VARIANTS)
    realwatch.start(APP_ID, "eventlet", _early["args"].max_seconds, _real_thread.start_new_thread,
                    _real_thread.get_ident, _real_time.sleep, getattr(_real_time, "monotonic", _real_time.time), 0.5)
    from _common import sdk as _sdk_early  # noqa: E402  (imports sentry_sdk)

    _sdk_early.init_or_die(APP_ID, _early["args"].dsn)
    _monkey_patch()

import importlib  # noqa: E402

import eventlet  # noqa: E402
import eventlet.event  # noqa: E402
import eventlet.patcher  # noqa: E402
import eventlet.wsgi  # noqa: E402

from _common import facts, lifecycle, sdk, service, unit, variants, wsgi  # noqa: E402
from _common.log import log, one_line, set_prefix  # noqa: E402

BARRIER_PRIMITIVE = "eventlet.event.Event per generation + counter, Event.wait(timeout)"


class EventletModel(object):
    # an eventlet.event.Event per generation + a counter (Event.wait(timeout): None on timeout)
    barrier = unit.green_barrier(eventlet.event.Event, lambda event: event.send(True), lambda event: event.ready())

    def run_children(self, runners):
        """eventlet.spawn each child, wait for all; raise if any failed."""
        threads = [eventlet.spawn(run) for run in runners]
        errors = []
        for run, gt in zip(runners, threads):
            try:
                gt.wait()
            except Exception as exc:
                errors.append("%s: %s" % (run.name, one_line(exc)))
        if errors:
            raise RuntimeError("; ".join(errors))


def _dist_version(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, "__version__", None)


def eventlet_facts():
    """App-specific facts: versions, patch order, barrier primitive, hub,
    and the thread-local class the stdlib now hands out."""
    import threading

    try:
        from eventlet import hubs

        hub_obj = hubs.get_hub()
        hub = "%s.%s" % (type(hub_obj).__module__, type(hub_obj).__name__)
    except Exception as exc:
        hub = "error: %s" % one_line(exc)
    return {"eventlet": {
        "eventlet": _dist_version("eventlet"),
        "greenlet": _dist_version("greenlet"),
        "order": PATCH_ORDER,
        "barrier": BARRIER_PRIMITIVE,
        "hub": hub,
        "threading.local": "%s.%s" % (threading.local.__module__, threading.local.__name__),
    }}


def main(argv=None):
    set_prefix(APP_ID)
    args = _early.get("args") or cli.parse_args(APP_ID, VARIANTS, argv)
    early.check_same(APP_ID, args.variant, _VARIANT, tuple(ORDER))
    variants.check_supported(APP_ID, args.variant)
    if not SDK_FIRST:
        real_thread, real_time = eventlet.patcher.original(_THREAD), eventlet.patcher.original("time")
        realwatch.start(APP_ID, "eventlet", args.max_seconds, real_thread.start_new_thread, real_thread.get_ident,
                        real_time.sleep, getattr(real_time, "monotonic", real_time.time), 0.5)
    realwatch.start_heartbeat(eventlet.spawn, eventlet.sleep)
    libraries = (("eventlet", _dist_version("eventlet")), ("greenlet", _dist_version("greenlet")))
    lifecycle.log_start(args, libraries, (("order", PATCH_ORDER),))
    if not SDK_FIRST:
        sdk.init_or_die(APP_ID, args.dsn)
    log("context storage: %s (%s)" % facts.context_backend())
    units = unit.Units.from_args(EventletModel(), args)
    svc = service.Service(APP_ID, args.variant, args.units, extra_facts=eventlet_facts)
    # eventlet.wsgi adds "Connection: close" itself (keepalive=False)
    app = wsgi.application(svc, lambda i, r: unit.answer_blocking(units, i, r), connection_close=False,
                           log_requests=True)
    try:
        sock = eventlet.listen(("127.0.0.1", args.port), backlog=128)
    except Exception as exc:
        cli.die_bind(APP_ID, args.port, exc)
    log("listening on http://127.0.0.1:%d/" % sock.getsockname()[1])
    try:
        eventlet.wsgi.server(sock, app, max_size=1000, max_http_version="HTTP/1.0", keepalive=False,
                             log_output=False, debug=False, socket_timeout=30)
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")
    lifecycle.exit_now(1, "eventlet.wsgi.server returned")


if __name__ == "__main__":
    main()

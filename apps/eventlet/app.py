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
Children: `eventlet.spawn` C greenthreads, each opening `unit-i.child-k`
through the current-scope API; while its span is open each child waits at a
per-unit C-party barrier, so the siblings overlap; the unit waits for all.

Variants:
  plain            no workaround
  sdk-first        `import sentry_sdk` + `sentry_sdk.init()` BEFORE
                   `eventlet.monkey_patch()` (the SDK picks its context
                   storage before threading is green, and its transport
                   worker's lock/queue are real OS-thread primitives)
  sdk-import-first `import sentry_sdk` BEFORE `eventlet.monkey_patch()`,
                   `sentry_sdk.init()` after it: only the import-time choice
                   of context storage differs from plain (extra variant, to
                   tell that choice apart from the init-time transport state)
  hub-clone        unit body inside `with sentry_sdk.Hub(sentry_sdk.Hub.current):`
                   (0.x/1.x; exit 2 when the SDK has no Hub)
  isolation-scope  unit body inside `with sentry_sdk.isolation_scope():`
                   (2.x; exit 2 when the SDK has no isolation_scope)

Besides _common.lifecycle's exit after /shutdown, realwatch.py runs a
watchdog on a REAL OS thread (parent gone, --max-seconds, and a log of the
stacks when the eventlet hub stops running): after the patch every
threading.Thread is a greenthread and would stop with a blocked hub.

Valid Python 2.7 and 3.6+ syntax. See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

import sys

APP_ID = "eventlet"
VARIANTS = ("plain", "sdk-first", "sdk-import-first", "hub-clone", "isolation-scope")


def _variant_from_argv(argv):
    """The --variant value, read from argv WITHOUT importing anything (the
    real parse comes later, through _common.cli)."""
    for idx, arg in enumerate(argv):
        if arg == "--variant" and idx + 1 < len(argv):
            return argv[idx + 1]
        if arg.startswith("--variant="):
            return arg.split("=", 1)[1]
    return None


def _die_early(message, code=2):
    sys.stderr.write("%s: error: %s\n" % (APP_ID, " ".join(str(message).split())))
    sys.stderr.flush()
    sys.exit(code)


def _monkey_patch():
    try:
        import eventlet
    except ImportError as exc:
        _die_early("cannot import eventlet: %s: %s" % (type(exc).__name__, exc))
    eventlet.monkey_patch()


_ARGV_VARIANT = _variant_from_argv(sys.argv[1:])
SDK_FIRST = _ARGV_VARIANT == "sdk-first"
SDK_IMPORT_FIRST = _ARGV_VARIANT == "sdk-import-first"
if SDK_FIRST:
    PATCH_ORDER = "sdk-import+init, then monkey_patch"
elif SDK_IMPORT_FIRST:
    PATCH_ORDER = "sdk-import, then monkey_patch, then init"
else:
    PATCH_ORDER = "monkey_patch first"

if SDK_IMPORT_FIRST:
    try:
        import sentry_sdk  # noqa: F401  (sentry_sdk.utils picks its ContextVar now)
    except ImportError as _exc:
        _die_early("cannot import sentry_sdk: %s" % (_exc,))

if not SDK_FIRST:
    _monkey_patch()  # before anything else is imported (but the SDK in sdk-import-first)

import os  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import cli  # noqa: E402  (argparse + sys only)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import realwatch  # noqa: E402  (os, sys, time, traceback only)

_early = {}

if SDK_FIRST:
    # sdk-first: parse the arguments, import the SDK and init it while the
    # stdlib is still unpatched, THEN monkeypatch. The real-thread watchdog
    # starts first, with the still-unpatched threading/sleep, so that a hang
    # inside monkey_patch() is reported and the process still stops.
    _early["args"] = cli.parse_args(APP_ID, VARIANTS)
    import threading as _real_threading  # noqa: E402
    import time as _real_time  # noqa: E402

    realwatch.start(
        APP_ID,
        _early["args"].max_seconds,
        _real_threading,
        _real_time.sleep,
        getattr(_real_time, "monotonic", _real_time.time),
    )
    from _common import sdk as _sdk_early  # noqa: E402  (imports sentry_sdk)

    try:
        _early["guard"] = _sdk_early.init_sdk(_early["args"].dsn)
    except Exception as _exc:  # e.g. BadDsn
        _die_early("sentry_sdk.init failed: %s: %s" % (type(_exc).__name__, _exc))
    _monkey_patch()

import importlib  # noqa: E402
import time  # noqa: E402

import eventlet  # noqa: E402
import eventlet.event  # noqa: E402
import eventlet.patcher  # noqa: E402
import eventlet.wsgi  # noqa: E402
import sentry_sdk  # noqa: E402,F811

from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

_monotonic = getattr(time, "monotonic", time.time)
BARRIER_PRIMITIVE = "eventlet.event.Event per generation + counter, Event.wait(timeout)"
MAX_BODY = 1 << 20


class GreenBarrier(object):
    """Cyclic N-party barrier for greenthreads: an eventlet Event per
    generation plus a counter (no locking needed: greenthreads only switch at
    the wait). wait(timeout) -> ("ok"|"timeout", seconds waited). A party that
    times out withdraws from its generation."""

    def __init__(self, parties):
        self.parties = parties
        self._count = 0
        self._event = eventlet.event.Event()

    def wait(self, timeout):
        start = _monotonic()
        event = self._event
        self._count += 1
        if self._count >= self.parties:
            self._count = 0
            self._event = eventlet.event.Event()
            event.send(True)
            return "ok", _monotonic() - start
        event.wait(timeout)  # returns None on timeout, True when released
        if event.ready():
            return "ok", _monotonic() - start
        if self._event is event:
            self._count -= 1
        return "timeout", _monotonic() - start


class App(object):
    def __init__(self, args):
        self.args = args
        self.normal_barrier = GreenBarrier(args.units)
        self.control_barrier = GreenBarrier(args.units)

    # -- the unit body, wrapped according to the variant -------------------

    def run_unit(self, i, round_name):
        variant = self.args.variant
        body = self.run_control if round_name == "control" else self.run_normal
        if variant == "hub-clone":
            with sentry_sdk.Hub(sentry_sdk.Hub.current):
                return body(i)
        if variant == "isolation-scope":
            with sentry_sdk.isolation_scope():
                return body(i)
        return body(i)

    def _child(self, name, k, siblings, result):
        """Runs in its own greenthread (eventlet.spawn). -> (state, error)."""
        child = "%s.child-%d" % (name, k)
        state, error = None, None
        try:
            with sdk.child_span(child) as opened:
                if opened:
                    result["spans"].append(child)
                # While this span is open, wait for all C siblings to have
                # opened theirs, so the C spans overlap.
                state, waited = siblings.wait(self.args.barrier_timeout)
                if state != "ok":
                    log("%s: sibling barrier timed out after %.2fs, continuing" % (child, waited))
        except Exception as exc:
            error = "%s: %s" % (child, one_line(exc))
            log_exception("%s failed" % child)
        return state, error

    def run_normal(self, i):
        args = self.args
        result = sdk.new_result(i, "normal", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_normal(i)
            with sdk.unit_transaction(name) as tx_name:
                result["transaction"] = tx_name
                with sdk.child_span(name + ".before") as opened:
                    if opened:
                        result["spans"].append(name + ".before")
                state, waited = self.normal_barrier.wait(args.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                siblings = GreenBarrier(args.children)
                threads = [
                    eventlet.spawn(self._child, name, k, siblings, result)
                    for k in range(1, args.children + 1)
                ]
                errors = []
                for gt in threads:
                    _state, error = gt.wait()
                    if error:
                        errors.append(error)
                if errors:
                    result["error"] = "; ".join(errors)
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)
        return result

    def run_control(self, i):
        args = self.args
        result = sdk.new_result(i, "control", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = self.control_barrier.wait(args.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)
        return result

    # -- HTTP (WSGI) ---------------------------------------------------------

    def facts(self):
        doc = facts_mod.facts(APP_ID, self.args.variant, self.args.units)
        doc["eventlet"] = eventlet_facts()
        return doc

    def dispatch(self, method, target):
        """-> (status, json object, after) where after() runs once answered."""
        r = httpjson.route(method, target, self.args.units)
        kind = r[0]
        if kind == "error":
            return r[1], {"error": r[2]}, None
        if kind == "facts":
            try:
                return 200, self.facts(), None
            except Exception as exc:
                log_exception("facts failed")
                return 500, {"error": one_line(exc)}, None
        if kind == "flush":
            try:
                sdk.flush(timeout=5)
                return 200, {"flushed": True}, None
            except Exception as exc:
                log_exception("flush failed")
                return 500, {"flushed": False, "error": one_line(exc)}, None
        if kind == "shutdown":
            return 200, {"shutting_down": True}, lifecycle.exit_after_shutdown
        i, round_name = r[1], r[2]
        try:
            result = self.run_unit(i, round_name)
        except Exception as exc:  # e.g. entering the variant's wrapper failed
            log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
            result = sdk.new_result(i, round_name, self.args.variant)
            result["error"] = one_line(exc)
        return (500 if result["error"] else 200), result, None

    def wsgi(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        target = environ.get("PATH_INFO", "/") or "/"
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        status, obj, after = 500, {"error": "not handled"}, None
        try:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > 0:  # body ignored
                environ["wsgi.input"].read(min(length, MAX_BODY))
            status, obj, after = self.dispatch(method, target)
        except Exception as exc:
            log_exception("request %s %s failed" % (method, target))
            status, obj = 500, {"error": one_line(exc)}
        body = httpjson.json_body(obj)
        log("http %s %s -> %s" % (method, target, status))
        start_response(
            "%d %s" % (status, httpjson.REASONS.get(status, "Unknown")),
            # eventlet.wsgi adds "Connection: close" itself (keepalive=False)
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        if after is not None:
            after()  # a delayed greenthread: the answer is written first
        return [body]


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

    hub = None
    try:
        from eventlet import hubs

        hub_obj = hubs.get_hub()
        hub = "%s.%s" % (type(hub_obj).__module__, type(hub_obj).__name__)
    except Exception as exc:
        hub = "error: %s" % one_line(exc)
    return {
        "eventlet": _dist_version("eventlet"),
        "greenlet": _dist_version("greenlet"),
        "order": PATCH_ORDER,
        "barrier": BARRIER_PRIMITIVE,
        "hub": hub,
        "threading.local": "%s.%s" % (threading.local.__module__, threading.local.__name__),
    }


def _heartbeat_loop(poll=0.5):
    while True:
        realwatch.heartbeat()
        eventlet.sleep(poll)


def check_variant_supported(variant):
    """Fail fast (one line, exit 2) when the SDK lacks what a variant needs."""
    if variant == "hub-clone" and not sdk.has_hub():
        cli.die(APP_ID, "variant hub-clone needs sentry_sdk.Hub, which sentry-sdk %s does not have" % sdk.sdk_version())
    if variant == "isolation-scope" and not sdk.has_isolation_scope():
        cli.die(
            APP_ID,
            "variant isolation-scope needs sentry_sdk.isolation_scope, which sentry-sdk %s does not have"
            % sdk.sdk_version(),
        )


def main(argv=None):
    set_prefix(APP_ID)
    if SDK_FIRST:
        args = _early["args"]
    else:
        args = cli.parse_args(APP_ID, VARIANTS, argv)
        if args.variant == "sdk-first":
            # argparse accepted an abbreviated option that _variant_from_argv
            # did not recognise, so the patch already ran first.
            cli.die(APP_ID, "spell the option out as `--variant sdk-first` (the order is decided before parsing)")
    check_variant_supported(args.variant)
    if not SDK_FIRST:
        real_time = eventlet.patcher.original("time")
        realwatch.start(
            APP_ID,
            args.max_seconds,
            eventlet.patcher.original("threading"),
            real_time.sleep,
            getattr(real_time, "monotonic", real_time.time),
        )
    eventlet.spawn(_heartbeat_loop)
    log(
        "starting: python %s, sentry-sdk %s, eventlet %s, greenlet %s, variant=%s order=%s units=%d children=%d "
        "barrier_timeout=%s"
        % (
            sys.version.split()[0],
            sdk.sdk_version(),
            _dist_version("eventlet"),
            _dist_version("greenlet"),
            args.variant,
            PATCH_ORDER,
            args.units,
            args.children,
            args.barrier_timeout,
        )
    )
    if not SDK_FIRST:
        try:
            sdk.init_sdk(args.dsn)
        except Exception as exc:  # e.g. BadDsn
            cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    backend, detail = facts_mod.context_backend()
    log("context storage: %s (%s)" % (backend, detail))
    app = App(args)
    try:
        sock = eventlet.listen(("127.0.0.1", args.port), backlog=128)
    except Exception as exc:
        cli.die(APP_ID, "cannot bind 127.0.0.1:%d: %s" % (args.port, one_line(exc)), code=1)
    log("listening on http://127.0.0.1:%d/" % sock.getsockname()[1])
    try:
        eventlet.wsgi.server(
            sock,
            app.wsgi,
            max_size=1000,
            max_http_version="HTTP/1.0",
            keepalive=False,
            log_output=False,
            debug=False,
            socket_timeout=30,
        )
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")
    lifecycle.exit_now(1, "eventlet.wsgi.server returned")


if __name__ == "__main__":
    main()

"""Reference app: asyncio AND gevent in one process -- the mix the SDK's
troubleshooting page calls "flat-out broken".

The mix modelled: a gevent-monkeypatched WSGI server (gevent.pywsgi, one
greenlet per request) whose request handlers call async code by handing the
coroutine to ONE asyncio event loop that runs "in a background thread"
(`threading.Thread(target=loop.run_forever)`), through the stdlib bridge
`asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)`. Under
`patch_all()` that background thread is really a greenlet and the loop's
selector is gevent's, so every unit's coroutine runs as an asyncio Task on
the same greenlet. Why this mix and not another: see apps/asyncio-gevent/README.md.

`gevent.monkey.patch_all()` runs FIRST, before anything else is imported.

A unit (the contract's steps 1-7) is the coroutine: scope writes, transaction,
`unit-i.before`, an N-party asyncio barrier (asyncio.Event + counter, bounded
by --barrier-timeout) on the shared loop, C children as asyncio tasks
(`asyncio.gather`) each opening `unit-i.child-k` and waiting, span open, at a
C-party asyncio barrier, then capture.

Variants:
  plain            no workaround
  hub-clone        coroutine body inside `with sentry_sdk.Hub(sentry_sdk.Hub.current):`
  isolation-scope  coroutine body inside `with sentry_sdk.isolation_scope():`

Python 3.6-3.13 syntax (no asyncio.run, no walrus, asyncio primitives created
inside coroutines). See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

from gevent import monkey as _monkey

_monkey.patch_all()

import asyncio  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
from gevent import monkey  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import sentry_sdk  # noqa: E402

from _common import cli  # noqa: E402
from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

APP_ID = "asyncio-gevent"
VARIANTS = ("plain", "hub-clone", "isolation-scope")

MAX_BODY = 1 << 20
HUB_STALL_SECONDS = 5.0

_monotonic = getattr(time, "monotonic", time.time)


class AsyncBarrier(object):
    """Cyclic N-party barrier on the asyncio loop: an asyncio.Event per
    generation + a counter. wait(timeout) -> ("ok"|"timeout", seconds
    waited). A party that times out withdraws from its generation. Events are
    created lazily inside a coroutine, so they bind to the running loop on
    3.6-3.9."""

    def __init__(self, parties):
        self.parties = parties
        self._count = 0
        self._event = None

    async def wait(self, timeout):
        start = _monotonic()
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self._count += 1
        if self._count >= self.parties:
            self._count = 0
            self._event = None
            event.set()
            return "ok", _monotonic() - start
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            if not event.is_set():
                if self._event is event:
                    self._count -= 1
                return "timeout", _monotonic() - start
        return "ok", _monotonic() - start


class LoopThread(object):
    """One asyncio loop for the whole process, run_forever on a
    threading.Thread -- a greenlet, since threading is monkeypatched."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="asyncio-loop")
        self.thread.daemon = True

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        log(
            "asyncio loop %s (selector %s) running on thread %r, which is a greenlet: %r"
            % (
                type(self.loop).__name__,
                type(getattr(self.loop, "_selector", None)).__name__,
                self.thread.name,
                monkey.is_module_patched("threading"),
            )
        )

    def run(self, coro, timeout):
        """Submit coro from a request greenlet and wait for its result
        (cooperatively: the concurrent.futures wait uses patched locks)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise


class App(object):
    def __init__(self, args, loop_thread):
        self.args = args
        self.loop_thread = loop_thread
        self.normal_barrier = AsyncBarrier(args.units)
        self.control_barrier = AsyncBarrier(args.units)

    # -- the unit body (a coroutine on the shared loop) ----------------------

    async def run_unit(self, i, round_name):
        variant = self.args.variant
        body = self.run_control if round_name == "control" else self.run_normal
        if variant == "hub-clone":
            with sentry_sdk.Hub(sentry_sdk.Hub.current):
                return await body(i)
        if variant == "isolation-scope":
            with sentry_sdk.isolation_scope():
                return await body(i)
        return await body(i)

    async def _child(self, name, k, siblings, result):
        child = "%s.child-%d" % (name, k)
        with sdk.child_span(child) as opened:
            if opened:
                result["spans"].append(child)
            # Span open: wait for the C siblings to have opened theirs.
            state, waited = await siblings.wait(self.args.barrier_timeout)
            if state != "ok":
                log("%s: sibling barrier timed out after %.2fs" % (child, waited))
        return state

    async def run_normal(self, i):
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
                state, waited = await self.normal_barrier.wait(args.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                siblings = AsyncBarrier(args.children)
                states = await asyncio.gather(
                    *[self._child(name, k, siblings, result) for k in range(1, args.children + 1)]
                )
                if any(s != "ok" for s in states):
                    # The siblings did not overlap: report it as a barrier timeout.
                    log("%s: children did not overlap (sibling barrier: %s)" % (name, list(states)))
                    result["barrier"] = "timeout"
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)
        return result

    async def run_control(self, i):
        args = self.args
        result = sdk.new_result(i, "control", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = await self.control_barrier.wait(args.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)
        return result

    # -- WSGI (the gevent side: this runs in the request greenlet) -----------

    def dispatch(self, method, target):
        """-> (status, json object, after) where after() runs once answered."""
        r = httpjson.route(method, target, self.args.units)
        kind = r[0]
        if kind == "error":
            return r[1], {"error": r[2]}, None
        if kind == "facts":
            try:
                return 200, facts_mod.facts(APP_ID, self.args.variant, self.args.units), None
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
        # A unit's own barriers are bounded by barrier_timeout (twice: the unit
        # barrier, then the children's); this outer bound only catches a stuck loop.
        timeout = self.args.barrier_timeout * 2 + 15
        try:
            result = self.loop_thread.run(self.run_unit(i, round_name), timeout)
        except Exception as exc:  # the variant's wrapper failed, or the loop is stuck
            log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
            result = sdk.new_result(i, round_name, self.args.variant)
            result["error"] = one_line(exc) or type(exc).__name__
        return (500 if result["error"] else 200), result, None

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        target = environ.get("PATH_INFO", "/") or "/"
        query = environ.get("QUERY_STRING", "")
        if query:
            target = target + "?" + query
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:  # body ignored
            environ["wsgi.input"].read(min(length, MAX_BODY))
        status, obj, after = self.dispatch(method, target)
        body = httpjson.json_body(obj)
        start_response(
            "%d %s" % (status, httpjson.REASONS.get(status, "Unknown")),
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        if after is not None:
            after()  # runs on its own (patched) thread after a short delay
        return [body]


class _LogFile(object):
    """File-like sink for pywsgi's access/error log -> our one-line log."""

    def __init__(self, prefix):
        self.prefix = prefix

    def write(self, data):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        for line in text.rstrip().splitlines():
            log("%s %s" % (self.prefix, line))

    def flush(self):
        pass


def _raw_log(msg):
    """A log line written straight to fd 2: no (patched) lock, no greenlet
    switch, so it works from the real OS thread even when the hub is stuck."""
    line = "[%s pid=%d %s] %s\n" % (APP_ID, os.getpid(), time.strftime("%H:%M:%S"), msg)
    try:
        os.write(2, line.encode("utf-8"))
    except OSError:
        pass


def start_os_thread_watchdog(max_seconds):
    """lifecycle.start_watchdogs' job (exit when the parent is gone, or after
    --max-seconds) on a REAL OS thread, so it still works if something blocks
    the gevent hub; also reports such a stall once, with the stack of the
    greenlet holding the OS thread."""
    start_new_thread = monkey.get_original("_thread", "start_new_thread")
    get_ident = monkey.get_original("_thread", "get_ident")
    real_sleep = monkey.get_original("time", "sleep")
    hub_thread = get_ident()
    parent = os.getppid()
    started = _monotonic()
    beat = [_monotonic()]

    def heartbeat():
        while True:
            beat[0] = _monotonic()
            gevent.sleep(0.5)

    gevent.spawn(heartbeat)

    def exit_now(code, reason):
        _raw_log("exiting with code %d: %s" % (code, reason))
        os._exit(code)

    def run():
        reported = False
        while True:
            real_sleep(1.0)
            if os.getppid() != parent:
                exit_now(3, "parent process %d is gone" % parent)
            if max_seconds and _monotonic() - started > max_seconds:
                exit_now(0, "--max-seconds %s reached" % max_seconds)
            stalled = _monotonic() - beat[0]
            if stalled > HUB_STALL_SECONDS and not reported:
                reported = True
                frame = sys._current_frames().get(hub_thread)
                stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)\n"
                _raw_log(
                    "gevent hub BLOCKED for %.1fs; stack of the running greenlet:\n%s" % (stalled, stack.rstrip())
                )
            elif stalled <= HUB_STALL_SECONDS and reported:
                reported = False
                _raw_log("gevent hub running again")

    start_new_thread(run, ())


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
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    check_variant_supported(args.variant)
    start_os_thread_watchdog(args.max_seconds)
    log(
        "starting: python %s, sentry-sdk %s, gevent %s, greenlet %s, variant=%s units=%d children=%d "
        "barrier_timeout=%s"
        % (
            sys.version.split()[0],
            sdk.sdk_version(),
            getattr(gevent, "__version__", "?"),
            getattr(sys.modules.get("greenlet"), "__version__", "?"),
            args.variant,
            args.units,
            args.children,
            args.barrier_timeout,
        )
    )
    log(
        "monkeypatched modules: %s"
        % dict((n, bool(monkey.is_module_patched(n))) for n in ("threading", "contextvars", "socket", "select", "selectors"))
    )
    try:
        sdk.init_sdk(args.dsn)
    except Exception as exc:  # e.g. BadDsn
        cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    loop_thread = LoopThread()
    loop_thread.start()
    app = App(args, loop_thread)
    server = WSGIServer(("127.0.0.1", args.port), app, log=_LogFile("http"), error_log=_LogFile("pywsgi-error"))
    try:
        server.start()
    except Exception as exc:
        cli.die(APP_ID, "cannot bind 127.0.0.1:%d: %s" % (args.port, one_line(exc)), code=1)
    log("listening on http://127.0.0.1:%d/ (gevent.pywsgi.WSGIServer)" % server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

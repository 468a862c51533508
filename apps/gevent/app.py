"""Reference app: gevent -- monkeypatched stdlib, gevent.pywsgi WSGIServer,
one greenlet per request.

`gevent.monkey.patch_all()` runs FIRST, before anything else is imported
(only `sys`/`os`, which the interpreter has already loaded, come before it),
except in the `sdk-first` variant, which reproduces the common mistake of
importing sentry_sdk and calling `sentry_sdk.init` BEFORE `patch_all()`. The
SDK decides at import time (sentry_sdk.utils: `_is_contextvars_broken()`,
`HAS_REAL_CONTEXTVARS`, `ContextVar`) where it stores its per-context state,
so that ordering changes what it picks.

Variants:
  plain            no workaround
  hub-clone        unit body inside `with sentry_sdk.Hub(sentry_sdk.Hub.current):`
                   (0.x/1.x; needs sentry_sdk.Hub)
  isolation-scope  unit body inside `with sentry_sdk.isolation_scope():`
                   (2.x; needs sentry_sdk.isolation_scope)
  sdk-first        `import sentry_sdk; sentry_sdk.init(...)`, then `patch_all()`

Barriers are gevent's own primitive: a `gevent.event.Event` per generation +
a counter (greenlets are cooperative, so the counter needs no lock), bounded
by --barrier-timeout. Children: C greenlets from `gevent.spawn`, each opening
`unit-i.child-k` through the current-scope API and waiting, span open, at a
per-unit C-party barrier so the siblings overlap; then `gevent.joinall`.

Valid Python 2.7 and 3.6-3.13 syntax. See apps/README.md for the contract and
apps/gevent/README.md for how to run it by hand.
"""
from __future__ import absolute_import, print_function

import os
import sys

APP_ID = "gevent"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "sdk-first")
SDK_FIRST = "sdk-first"


def _early_variant(argv):
    """The --variant value, read before anything is imported (argparse comes
    later, after patch_all, and validates everything again)."""
    found = None  # the last one wins, as in argparse
    for index, arg in enumerate(argv):
        if arg == "--variant" and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--variant="):
            found = arg.split("=", 1)[1]
    return found


_VARIANT = _early_variant(sys.argv[1:])

if _VARIANT != SDK_FIRST:
    from gevent import monkey as _monkey

    _monkey.patch_all()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_EARLY = {}  # sdk-first: what happened before patch_all


def _sdk_first_prelude():
    """The mistake under test: the SDK is imported and initialised while the
    stdlib is still unpatched; patch_all() follows."""
    from _common import cli
    from _common.log import one_line, set_prefix

    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS)
    from _common import sdk as sdk_mod

    try:
        sdk_mod.init_sdk(args.dsn)
    except Exception as exc:  # e.g. BadDsn
        cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    _EARLY["args"] = args
    from gevent import monkey

    monkey.patch_all()


if _VARIANT == SDK_FIRST:
    _sdk_first_prelude()

import time  # noqa: E402  (patched by now in every variant)
import traceback  # noqa: E402

import gevent  # noqa: E402
from gevent import monkey  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

import sentry_sdk  # noqa: E402

from _common import cli  # noqa: E402
from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

_monotonic = getattr(time, "monotonic", time.time)
MAX_BODY = 1 << 20


class GeventBarrier(object):
    """Cyclic N-party barrier: a gevent.event.Event per generation + a
    counter. wait(timeout) -> ("ok"|"timeout", seconds waited). A party that
    times out withdraws from its generation."""

    def __init__(self, parties):
        self.parties = parties
        self._count = 0
        self._event = Event()

    def wait(self, timeout):
        start = _monotonic()
        event = self._event
        self._count += 1
        if self._count >= self.parties:
            self._count = 0
            self._event = Event()
            event.set()
            return "ok", _monotonic() - start
        event.wait(timeout)
        if not event.is_set():
            if self._event is event:
                self._count -= 1
            return "timeout", _monotonic() - start
        return "ok", _monotonic() - start


class App(object):
    def __init__(self, args):
        self.args = args
        self.normal_barrier = GeventBarrier(args.units)
        self.control_barrier = GeventBarrier(args.units)

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
        child = "%s.child-%d" % (name, k)
        with sdk.child_span(child) as opened:
            if opened:
                result["spans"].append(child)
            # Span open: wait for the C siblings to have opened theirs.
            state, waited = siblings.wait(self.args.barrier_timeout)
            if state != "ok":
                log("%s: sibling barrier timed out after %.2fs" % (child, waited))
        return state

    def _fan_out(self, name, result):
        """C children as gevent.spawn greenlets, then gevent.joinall. Returns
        the list of sibling-barrier states; raises if a child failed."""
        args = self.args
        siblings = GeventBarrier(args.children)
        children = [
            gevent.spawn(self._child, name, k, siblings, result) for k in range(1, args.children + 1)
        ]
        gevent.joinall(children, timeout=args.barrier_timeout + 10)
        states = []
        for k, child in enumerate(children, 1):
            if not child.ready():
                child.kill(block=False)
                raise RuntimeError("%s.child-%d greenlet did not finish" % (name, k))
            if child.exception is not None:
                raise RuntimeError("%s.child-%d failed: %s" % (name, k, one_line(child.exception)))
            states.append(child.value)
        return states

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
                states = self._fan_out(name, result)
                if any(s != "ok" for s in states):
                    # The siblings did not overlap: report it as a barrier timeout.
                    log("%s: children did not overlap (sibling barrier: %s)" % (name, states))
                    result["barrier"] = "timeout"
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

    # -- WSGI ----------------------------------------------------------------

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
        try:
            result = self.run_unit(i, round_name)
        except Exception as exc:  # e.g. entering the variant's wrapper failed
            log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
            result = sdk.new_result(i, round_name, self.args.variant)
            result["error"] = one_line(exc)
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


HUB_STALL_SECONDS = 5.0


def _raw_log(msg):
    """A log line written straight to fd 2: no (patched) lock, no greenlet
    switch, so it works from the real OS thread even when the hub is stuck."""
    line = "[%s pid=%d %s] %s\n" % (APP_ID, os.getpid(), time.strftime("%H:%M:%S"), msg)
    try:
        os.write(2, line.encode("utf-8"))
    except OSError:
        pass


def start_os_thread_watchdog(max_seconds):
    """Same job as lifecycle.start_watchdogs (exit when the parent is gone, or
    after --max-seconds), but on a REAL OS thread: if something blocks the
    gevent hub (e.g. a greenlet waiting on a real, unpatched lock, as happens
    when the SDK was set up before patch_all), a greenlet watchdog would never
    run. It also reports such a stall once, with the stack of the greenlet
    that holds the OS thread, so a hung cell says why in its log."""
    thread_module = "_thread" if sys.version_info[0] >= 3 else "thread"
    start_new_thread = monkey.get_original(thread_module, "start_new_thread")
    get_ident = monkey.get_original(thread_module, "get_ident")
    real_sleep = monkey.get_original("time", "sleep")
    hub_thread = get_ident()  # the hub runs on the main OS thread
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
                    "gevent hub BLOCKED for %.1fs: no greenlet can run (a real, unpatched lock or "
                    "blocking call holds the OS thread). Stack of the running greenlet:\n%s"
                    % (stalled, stack.rstrip())
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
    args = _EARLY.get("args") or cli.parse_args(APP_ID, VARIANTS, argv)
    if (args.variant == SDK_FIRST) != (_VARIANT == SDK_FIRST):
        # e.g. an abbreviated option (--var sdk-first) that argparse accepts
        # but the pre-import scan did not see: the import order would be wrong.
        cli.die(APP_ID, "write the variant as --variant NAME or --variant=NAME (got %r)" % args.variant)
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
    patched = dict(
        (name, bool(monkey.is_module_patched(name))) for name in ("threading", "contextvars", "socket", "time")
    )
    log("monkeypatched modules: %s" % patched)
    if args.variant == SDK_FIRST:
        log("sdk-first: sentry_sdk was imported and initialised BEFORE gevent.monkey.patch_all()")
    else:
        try:
            sdk.init_sdk(args.dsn)
        except Exception as exc:  # e.g. BadDsn
            cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    app = App(args)
    server = WSGIServer(
        ("127.0.0.1", args.port), app, log=_LogFile("http"), error_log=_LogFile("pywsgi-error")
    )
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

"""Reference app: a twisted.web resource served by the Twisted reactor.

Every request is handled on the ONE reactor thread. A unit is an
`inlineCallbacks` generator that really gives the reactor back while it waits
(the barrier is a Deferred fired by the reactor when the Nth unit arrives), so
the units interleave on one thread, one resumption at a time. Children are
`inlineCallbacks` functions run together through a `DeferredList`.

Variants:
  plain                  no workaround
  hub-clone              the per-request fix, made to work under Twisted
                         (0.x/1.x): a `Hub(Hub.current)` cloned when the
                         request arrives, and re-entered (`with hub:`) around
                         EVERY resumption of the unit's generator and of its
                         children's generators (children re-enter the hub that
                         was current when they were called)
  isolation-scope        the same for 2.x: `isolation_scope()` forked when the
                         request arrives; its isolation and current scopes are
                         re-entered (`use_isolation_scope` + `use_scope`)
                         around every resumption
  hub-clone-naive        the documented pattern taken literally: a
                         `with Hub(Hub.current):` block inside the unit's
                         inlineCallbacks generator, around `yield body()`
  isolation-scope-naive  the same with `with sentry_sdk.isolation_scope():`

Valid Python 2.7 and 3.6+ (Twisted 20.3.0 is the last release for 2.7).
See apps/README.md for the contract and apps/twisted/README.md for details.
"""
from __future__ import absolute_import, print_function

import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402

from _common import cli  # noqa: E402
from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

APP_ID = "twisted"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "hub-clone-naive", "isolation-scope-naive")

_monotonic = getattr(time, "monotonic", time.time)

# Twisted is imported in main(), after the command line was checked, so that
# a bad argument still gives the one-line exit 2 even where Twisted is broken.
reactor = None
defer = None


# --------------------------------------------------------------------------
# the model's primitive: a Deferred barrier


class DeferredBarrier(object):
    """Cyclic N-party barrier made of Deferreds. wait(timeout) returns a
    Deferred that fires with ("ok"|"timeout", seconds waited).

    The Nth party releases the others: their Deferreds are fired by the
    reactor (callLater(0, ...)), so every waiting unit is resumed from the
    reactor loop, as after real I/O, not from inside the Nth unit's stack. A
    party that times out (reactor.callLater(timeout)) withdraws from its
    generation."""

    def __init__(self, parties):
        self.parties = parties
        self._waiters = []  # [deferred, start, delayed call]

    def wait(self, timeout):
        start = _monotonic()
        if len(self._waiters) + 1 >= self.parties:
            waiters, self._waiters = self._waiters, []
            for entry in waiters:
                d, wstart, timer = entry
                if timer.active():
                    timer.cancel()
                reactor.callLater(0, d.callback, ("ok", _monotonic() - wstart))
            return defer.succeed(("ok", _monotonic() - start))
        d = defer.Deferred()
        entry = [d, start, None]

        def on_timeout():
            if entry in self._waiters:
                self._waiters.remove(entry)
                d.callback(("timeout", _monotonic() - start))

        entry[2] = reactor.callLater(timeout, on_timeout)
        self._waiters.append(entry)
        return d


# --------------------------------------------------------------------------
# running generators under Twisted, with or without a re-entered binding


def _rebound(gen, binding):
    """A generator that delegates to `gen` and runs every resumption of it
    inside `binding()` (a fresh context manager each time). What `gen`
    yields goes to inlineCallbacks; what inlineCallbacks sends or throws
    back goes to `gen`. (No `yield from`: this must be Python 2.7 too.)"""
    to_send = None
    to_throw = None
    while True:
        with binding():
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    yielded = gen.throw(exc)
                else:
                    yielded = gen.send(to_send)
            except StopIteration:
                return
        to_send = None
        try:
            to_send = yield yielded
        except GeneratorExit:
            gen.close()
            raise
        except BaseException as exc:  # a failed Deferred, thrown in by inlineCallbacks
            to_throw = exc


def start_generator(genfunc, args, binding=None):
    """genfunc(*args) driven by defer.inlineCallbacks -> Deferred. With a
    binding, each resumption runs inside it (see _rebound)."""
    if binding is None:
        return defer.inlineCallbacks(genfunc)(*args)

    def bound():
        return _rebound(genfunc(*args), binding)

    return defer.inlineCallbacks(bound)()


def _constant_cm(cm):
    """A binding that re-enters the same reusable context manager (a Hub)."""
    return lambda: cm


@contextlib.contextmanager
def _use_scopes(isolation, current):
    from sentry_sdk.scope import use_isolation_scope, use_scope

    with use_isolation_scope(isolation):
        with use_scope(current):
            yield


def _scopes_binding(isolation, current):
    return lambda: _use_scopes(isolation, current)


def _now_binding(variant):
    """The binding that is current right now (inside a resumption), for a
    child to re-enter: the unit's hub / the unit's scopes."""
    if variant == "hub-clone":
        return _constant_cm(sentry_sdk.Hub.current)
    if variant == "isolation-scope":
        return _scopes_binding(sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope())
    return None


def _fresh_binding(variant):
    """The per-request binding, made when the request arrives (on the
    reactor, outside any unit)."""
    if variant == "hub-clone":
        return _constant_cm(sentry_sdk.Hub(sentry_sdk.Hub.current))
    if variant == "isolation-scope":
        with sentry_sdk.isolation_scope() as isolation:
            current = sentry_sdk.get_current_scope()
        return _scopes_binding(isolation, current)
    return None


# --------------------------------------------------------------------------
# the units


class App(object):
    def __init__(self, args):
        self.args = args
        self.normal_barrier = DeferredBarrier(args.units)
        self.control_barrier = DeferredBarrier(args.units)

    def run_unit(self, i, round_name):
        """Start unit i's work; -> Deferred firing with the result dict."""
        variant = self.args.variant
        result = sdk.new_result(i, round_name, variant)
        body = self._control_body if round_name == "control" else self._normal_body
        if variant in ("hub-clone", "isolation-scope"):
            d = start_generator(body, (i, result), _fresh_binding(variant))
        elif variant in ("hub-clone-naive", "isolation-scope-naive"):
            d = start_generator(self._naive_wrapper, (body, i, result))
        else:
            d = start_generator(body, (i, result))
        d.addCallback(lambda _: result)
        return d

    def _naive_wrapper(self, body, i, result):
        # What a Twisted user writes after reading the troubleshooting page.
        if self.args.variant == "hub-clone-naive":
            with sentry_sdk.Hub(sentry_sdk.Hub.current):
                yield start_generator(body, (i, result))
        else:
            with sentry_sdk.isolation_scope():
                yield start_generator(body, (i, result))

    def _child(self, name, k, siblings, result, states):
        child = "%s.child-%d" % (name, k)
        with sdk.child_span(child) as opened:
            if opened:
                result["spans"].append(child)
            # While this span is open, wait until all C siblings have opened
            # theirs, so the C spans overlap.
            state, waited = yield siblings.wait(self.args.barrier_timeout)
            states[k] = state
            if state != "ok":
                log("%s: sibling barrier timed out after %.2fs, continuing" % (child, waited))

    def _normal_body(self, i, result):
        args = self.args
        name = "unit-%d" % i
        try:
            sdk.write_scope_normal(i)
            with sdk.unit_transaction(name) as tx_name:
                result["transaction"] = tx_name
                with sdk.child_span(name + ".before") as opened:
                    if opened:
                        result["spans"].append(name + ".before")
                state, waited = yield self.normal_barrier.wait(args.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                siblings = DeferredBarrier(args.children)
                states = {}
                children = []
                for k in range(1, args.children + 1):
                    # each child is called now, inside this resumption, and
                    # re-enters what is current now (in the fixed variants)
                    binding = _now_binding(args.variant)
                    children.append(
                        start_generator(self._child, (name, k, siblings, result, states), binding)
                    )
                outcomes = yield defer.DeferredList(children, consumeErrors=True)
                for ok, value in outcomes:
                    if not ok:
                        value.raiseException()
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)

    def _control_body(self, i, result):
        args = self.args
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = yield self.control_barrier.wait(args.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)


# --------------------------------------------------------------------------
# facts about Twisted itself


def twisted_facts():
    """What this Twisted does with contextvars: from 21.2.0 on (Python 3.7+),
    inlineCallbacks runs each generator in its own copy of the caller's
    contextvars Context. Read from twisted.internet.defer, not guessed."""
    import twisted

    info = {"version": getattr(twisted, "__version__", None), "reactor": type(reactor).__name__}
    support = getattr(defer, "_contextvarsSupport", None)  # Twisted 21.2 .. 24.x
    copy = getattr(defer, "_copy_context", None)  # 21.2 on: what inlineCallbacks calls
    if support is None and copy is not None:
        stdlib = sys.modules.get("contextvars")
        support = stdlib is not None and copy is getattr(stdlib, "copy_context", None)
    if support is None:
        info["inline_callbacks_context"] = "none: generators resume in whatever context the reactor is in"
    elif support:
        info["inline_callbacks_context"] = (
            "a copied contextvars Context per inlineCallbacks generator (defer._copy_context)"
        )
    else:
        info["inline_callbacks_context"] = (
            "none: this Twisted would copy contexts but contextvars is not importable "
            "(defer._contextvarsSupport=False)"
        )
    return info


# --------------------------------------------------------------------------
# HTTP (twisted.web)


def make_site(app, shutdown):
    from twisted.web import resource, server

    class UnitResource(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            return self._render(request, "GET")

        def render_POST(self, request):
            return self._render(request, "POST")

        def _send(self, request, status, obj, gone):
            if gone:
                log("http %s: client went away before the answer" % (request.uri,))
                return
            body = httpjson.json_body(obj)
            request.setResponseCode(status)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"content-length", str(len(body)).encode("ascii"))
            request.setHeader(b"connection", b"close")
            request.write(body)
            request.finish()
            log("http %s %s -> %d" % (request.method.decode("ascii"), request.uri.decode("latin-1"), status))

        def _render(self, request, method):
            gone = []
            request.notifyFinish().addErrback(lambda _: gone.append(True))
            target = request.uri.decode("latin-1")
            r = httpjson.route(method, target, app.args.units)
            kind = r[0]
            if kind == "error":
                self._send(request, r[1], {"error": r[2]}, gone)
            elif kind == "facts":
                try:
                    doc = facts_mod.facts(APP_ID, app.args.variant, app.args.units)
                    doc["twisted"] = twisted_facts()
                    self._send(request, 200, doc, gone)
                except Exception as exc:
                    log_exception("facts failed")
                    self._send(request, 500, {"error": one_line(exc)}, gone)
            elif kind == "flush":
                try:
                    sdk.flush(timeout=5)  # blocks the reactor (<= 5 s); nothing else runs now
                    self._send(request, 200, {"flushed": True}, gone)
                except Exception as exc:
                    log_exception("flush failed")
                    self._send(request, 500, {"flushed": False, "error": one_line(exc)}, gone)
            elif kind == "shutdown":
                self._send(request, 200, {"shutting_down": True}, gone)
                shutdown()
            else:
                i, round_name = r[1], r[2]
                try:
                    d = app.run_unit(i, round_name)
                except Exception as exc:  # e.g. making the variant's binding failed
                    log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
                    result = sdk.new_result(i, round_name, app.args.variant)
                    result["error"] = one_line(exc)
                    d = defer.succeed(result)

                def answer(result):
                    self._send(request, 500 if result["error"] else 200, result, gone)

                def failed(failure):
                    log("unit-%d: %s round failed: %s" % (i, round_name, failure.getTraceback()))
                    result = sdk.new_result(i, round_name, app.args.variant)
                    result["error"] = " ".join(failure.getErrorMessage().split()) or repr(failure.value)
                    self._send(request, 500, result, gone)

                d.addCallbacks(answer, failed)
                d.addErrback(lambda f: log("unit-%d: answering failed: %s" % (i, f.getTraceback())))
            return server.NOT_DONE_YET

    site = server.Site(UnitResource())
    site.noisy = False
    return site


def check_variant_supported(variant):
    """Fail fast (one line, exit 2) when the SDK lacks what a variant needs."""
    if variant in ("hub-clone", "hub-clone-naive") and not sdk.has_hub():
        cli.die(APP_ID, "variant %s needs sentry_sdk.Hub, which sentry-sdk %s does not have" % (variant, sdk.sdk_version()))
    if variant in ("isolation-scope", "isolation-scope-naive"):
        if not sdk.has_isolation_scope():
            cli.die(
                APP_ID,
                "variant %s needs sentry_sdk.isolation_scope, which sentry-sdk %s does not have"
                % (variant, sdk.sdk_version()),
            )
        if variant == "isolation-scope":
            try:
                from sentry_sdk.scope import use_isolation_scope, use_scope  # noqa: F401
            except ImportError as exc:
                cli.die(APP_ID, "variant isolation-scope needs sentry_sdk.scope.use_isolation_scope/use_scope: %s" % one_line(exc))
            for name in ("get_isolation_scope", "get_current_scope"):
                if not callable(getattr(sentry_sdk, name, None)):
                    cli.die(APP_ID, "variant isolation-scope needs sentry_sdk.%s, which sentry-sdk %s does not have" % (name, sdk.sdk_version()))


def main(argv=None):
    global reactor, defer
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    check_variant_supported(args.variant)
    lifecycle.start_watchdogs(args.max_seconds)
    try:
        from twisted.internet import defer as _defer
        from twisted.internet import reactor as _reactor
        from twisted.python import log as twisted_log
    except ImportError as exc:
        cli.die(APP_ID, "cannot import Twisted: %s" % one_line(exc))
    reactor, defer = _reactor, _defer
    # Twisted's own log (unhandled errors in Deferreds, ...) goes to stderr too.
    twisted_log.startLogging(sys.stderr, setStdout=False)
    log(
        "starting: python %s, sentry-sdk %s, twisted %s, variant=%s units=%d children=%d barrier_timeout=%s"
        % (
            sys.version.split()[0],
            sdk.sdk_version(),
            twisted_facts()["version"],
            args.variant,
            args.units,
            args.children,
            args.barrier_timeout,
        )
    )
    try:
        sdk.init_sdk(args.dsn)
    except Exception as exc:  # e.g. BadDsn
        cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    log("twisted: %s" % (twisted_facts(),))
    app = App(args)
    stopping = []

    def shutdown():
        if stopping:
            return
        stopping.append(True)
        # Let the reactor write the answer first, then stop it; main() then
        # closes the client and exits 0. Backstop: exit anyway after 10 s.
        reactor.callLater(0.1, reactor.stop)
        lifecycle.exit_after_shutdown(delay=10)

    from twisted.internet.error import CannotListenError

    try:
        port = reactor.listenTCP(args.port, make_site(app, shutdown), backlog=128, interface="127.0.0.1")
    except CannotListenError as exc:
        cli.die(APP_ID, "cannot bind 127.0.0.1:%d: %s" % (args.port, one_line(exc)), code=1)
    log("listening on http://127.0.0.1:%d/" % port.getHost().port)
    reactor.run()  # SIGINT/SIGTERM stop the reactor too (then exit 0 below)
    lifecycle.close_and_exit("POST /shutdown" if stopping else "reactor stopped")


if __name__ == "__main__":
    main()

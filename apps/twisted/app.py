"""Reference app: a twisted.web resource served by the Twisted reactor.

Every request is handled on the ONE reactor thread. A unit runs under
`inlineCallbacks` (_common.deferred) and really gives the reactor back while
it waits (the barrier is a Deferred fired by the reactor when the Nth unit
arrives), so the units interleave on one thread, one resumption at a time.
Children are inlineCallbacks generators run together through a `DeferredList`.

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

from _common import cli, deferred, lifecycle, sdk, service, unit, variants  # noqa: E402
from _common.log import log  # noqa: E402

APP_ID = "twisted"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "hub-clone-naive", "isolation-scope-naive")
NEEDS = {
    "hub-clone-naive": ("Hub",),
    "isolation-scope": ("isolation_scope", "scope.use_isolation_scope", "scope.use_scope",
                        "scope:Scope.get_isolation_scope", "scope:Scope.get_current_scope"),
    "isolation-scope-naive": ("isolation_scope",),
}

_monotonic = getattr(time, "monotonic", time.time)

# Twisted is imported in main(), after the command line was checked, so that
# a bad argument still gives the one-line exit 2 even where Twisted is broken.
reactor = None
defer = None


class DeferredBarrier(object):
    """Cyclic N-party barrier made of Deferreds. wait(timeout) returns a
    Deferred that fires with ("ok"|"timeout", seconds waited).

    The Nth party releases the others: their Deferreds are fired by the
    reactor (callLater(0, ...)), so every waiting unit is resumed from the
    reactor loop, as after real I/O, not from inside the Nth unit's stack. A
    party that times out (reactor.callLater(timeout)) withdraws from its
    generation."""

    def __init__(self, parties, name=None):
        self.parties = parties
        self._waiters = []  # [deferred, start, delayed call]

    def wait(self, timeout):
        start = _monotonic()
        if len(self._waiters) + 1 >= self.parties:
            waiters, self._waiters = self._waiters, []
            for d, wstart, timer in waiters:
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
# the variants' bindings: a zero-argument callable -> a context manager


@contextlib.contextmanager
def _use_scopes(isolation, current):
    from sentry_sdk.scope import use_isolation_scope, use_scope

    with use_isolation_scope(isolation):
        with use_scope(current):
            yield


def _binding(variant, fresh):
    """fresh: the per-request binding, made when the request arrives (on the
    reactor, outside any unit). Not fresh: the binding current right now
    (inside a resumption), for a child to re-enter."""
    if variant == "hub-clone":
        hub = sentry_sdk.Hub(sentry_sdk.Hub.current) if fresh else sentry_sdk.Hub.current
        return lambda: hub  # a Hub is a reusable context manager
    if variant == "isolation-scope":
        get_isolation, get_current = sdk.scope_getter("get_isolation_scope"), sdk.scope_getter("get_current_scope")
        if fresh:
            with sentry_sdk.isolation_scope() as isolation:
                current = get_current()
        else:
            isolation, current = get_isolation(), get_current()
        return lambda: _use_scopes(isolation, current)
    return None


class TwistedModel(object):
    barrier = DeferredBarrier

    def __init__(self, variant):
        self.variant = variant

    def run_children(self, runners):
        """Start every child now (each runs to its first wait), then a
        DeferredList; fails with the first child's failure."""
        children = [run() for run in runners]

        def check(outcomes):
            for ok, value in outcomes:
                if not ok:
                    value.raiseException()

        return defer.DeferredList(children, consumeErrors=True).addCallback(check)

    def child_binding(self):
        return _binding(self.variant, fresh=False)


def make_run_unit(units):
    variant = units.variant

    def naive(gen):
        # What a Twisted user writes after reading the troubleshooting page.
        with variants.scope_fix(variant.replace("-naive", "")):
            yield deferred.drive(units.model, gen)

    def run_unit(i, round_name):
        """Start unit i's work; -> Deferred firing with the result dict."""
        result, gen = units.body(i, round_name)
        if variant in ("hub-clone-naive", "isolation-scope-naive"):
            d = defer.inlineCallbacks(naive)(gen)
        else:
            d = deferred.drive(units.model, gen, _binding(variant, fresh=True))
        return d.addCallback(lambda _: result)

    return run_unit


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
        info["inline_callbacks_context"] = "a copied contextvars Context per inlineCallbacks generator (defer._copy_context)"
    else:
        info["inline_callbacks_context"] = ("none: this Twisted would copy contexts but contextvars is not importable "
                                            "(defer._contextvarsSupport=False)")
    return info


def main(argv=None):
    global reactor, defer
    args = lifecycle.start_app(APP_ID, VARIANTS, argv, NEEDS)
    try:
        from twisted.internet import defer as _defer
        from twisted.internet import reactor as _reactor
        from twisted.python import log as twisted_log
    except ImportError as exc:
        cli.die_stack(APP_ID, "cannot import Twisted", exc)
    reactor, defer = _reactor, _defer
    # Twisted's own log (unhandled errors in Deferreds, ...) goes to stderr too.
    twisted_log.startLogging(sys.stderr, setStdout=False)
    lifecycle.log_start(args, (("twisted", twisted_facts()["version"]),))
    sdk.init_or_die(APP_ID, args.dsn)
    log("twisted: %s" % (twisted_facts(),))
    units = unit.Units.from_args(TwistedModel(args.variant), args)
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
    from twisted.web import server

    svc = service.Service(APP_ID, args.variant, args.units, extra_facts=lambda: {"twisted": twisted_facts()},
                          shutdown=shutdown)
    site = server.Site(deferred.resource(svc, make_run_unit(units)))
    site.noisy = False
    try:
        port = reactor.listenTCP(args.port, site, backlog=128, interface="127.0.0.1")
    except CannotListenError as exc:
        cli.die_bind(APP_ID, args.port, exc)
    log("listening on http://127.0.0.1:%d/" % port.getHost().port)
    reactor.run()  # SIGINT/SIGTERM stop the reactor too (then exit 0 below)
    lifecycle.close_and_exit("POST /shutdown" if stopping else "reactor stopped")


if __name__ == "__main__":
    main()

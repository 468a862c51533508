"""Reference app: gevent -- monkeypatched stdlib, gevent.pywsgi WSGIServer,
one greenlet per request.

`gevent.monkey.patch_all()` runs FIRST, before anything else is imported
(only `sys`/`os`, which the interpreter has already loaded, and the
import-free `_common.early` come before it), except in the `sdk-first`
variant, which reproduces the common mistake of importing sentry_sdk and
calling `sentry_sdk.init` BEFORE `patch_all()`. The SDK decides at import
time (sentry_sdk.utils: `_is_contextvars_broken()`, `HAS_REAL_CONTEXTVARS`,
`ContextVar`) where it stores its per-context state, so that ordering
changes what it picks.

Variants: plain, hub-clone, isolation-scope (_common.variants), sdk-first.

Barrier: a `gevent.event.Event` per generation + a counter (greenlets are
cooperative, so the counter needs no lock), bounded by --barrier-timeout.
Children: C greenlets from `gevent.spawn`, each opening `unit-i.child-k` and
waiting, span open, at a per-unit C-party barrier; then `gevent.joinall`.
The unit itself: _common.unit, blocking flavour, in the request greenlet.

Valid Python 2.7 and 3.6-3.13 syntax. See apps/README.md for the contract and
apps/gevent/README.md for how to run it by hand.
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import early  # noqa: E402  (imports sys only)

APP_ID = "gevent"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "sdk-first")
SDK_FIRST = "sdk-first"
_VARIANT = early.variant_from_argv()

if _VARIANT != SDK_FIRST:
    early.patch_gevent(APP_ID)

_EARLY = {}  # sdk-first: what happened before patch_all

if _VARIANT == SDK_FIRST:
    # The mistake under test: the SDK is imported and initialised while the
    # stdlib is still unpatched; patch_all() follows.
    from _common import cli as _cli
    from _common import sdk as _sdk
    from _common.log import set_prefix as _set_prefix

    _set_prefix(APP_ID)
    _EARLY["args"] = _cli.parse_args(APP_ID, VARIANTS)
    _sdk.init_or_die(APP_ID, _EARLY["args"].dsn)
    early.patch_gevent(APP_ID)

import gevent  # noqa: E402
from gevent import monkey  # noqa: E402
from gevent.event import Event  # noqa: E402

from _common import cli, gevent_app, sdk, service, unit, variants, wsgi  # noqa: E402
from _common.log import log, one_line, set_prefix  # noqa: E402


class GeventModel(object):
    # a gevent.event.Event per generation + a counter
    barrier = unit.green_barrier(Event, lambda event: event.set(), lambda event: event.is_set())

    def __init__(self, join_timeout):
        self.join_timeout = join_timeout

    def run_children(self, runners):
        """gevent.spawn each child, then gevent.joinall; raise if one failed."""
        children = [gevent.spawn(run) for run in runners]
        gevent.joinall(children, timeout=self.join_timeout)
        for run, child in zip(runners, children):
            if not child.ready():
                child.kill(block=False)
                raise RuntimeError("%s greenlet did not finish" % run.name)
            if child.exception is not None:
                raise RuntimeError("%s failed: %s" % (run.name, one_line(child.exception)))


def main(argv=None):
    set_prefix(APP_ID)
    args = _EARLY.get("args") or cli.parse_args(APP_ID, VARIANTS, argv)
    early.check_same(APP_ID, args.variant, _VARIANT, (SDK_FIRST,))
    variants.check_supported(APP_ID, args.variant)
    gevent_app.start(APP_ID, args)
    patched = dict((name, bool(monkey.is_module_patched(name))) for name in ("threading", "contextvars", "socket", "time"))
    log("monkeypatched modules: %s" % patched)
    if args.variant == SDK_FIRST:
        log("sdk-first: sentry_sdk was imported and initialised BEFORE gevent.monkey.patch_all()")
    else:
        sdk.init_or_die(APP_ID, args.dsn)
    units = unit.Units.from_args(GeventModel(args.barrier_timeout + 10), args)
    svc = service.Service(APP_ID, args.variant, args.units)
    app = wsgi.application(svc, lambda i, r: unit.answer_blocking(units, i, r))
    gevent_app.serve_pywsgi(APP_ID, args.port, app)


if __name__ == "__main__":
    main()

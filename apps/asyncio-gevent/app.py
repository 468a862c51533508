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

A unit (the contract's steps 1-7) is the coroutine (_common.aio): the
barrier is asyncio.Event + counter on the shared loop, the children are
asyncio tasks (`asyncio.gather`) meeting at a C-party asyncio barrier.

Variants: plain, hub-clone, isolation-scope (_common.variants; the wrapper is
entered inside the coroutine).

Python 3.6-3.13 syntax (no asyncio.run, no walrus, asyncio primitives created
inside coroutines). See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import early  # noqa: E402  (imports sys only)

early.patch_gevent("asyncio-gevent")

import asyncio  # noqa: E402
import threading  # noqa: E402

from gevent import monkey  # noqa: E402

from _common import aio, cli, gevent_app, sdk, service, unit, variants, wsgi  # noqa: E402
from _common.log import log, set_prefix  # noqa: E402

APP_ID = "asyncio-gevent"
VARIANTS = ("plain", "hub-clone", "isolation-scope")


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


def main(argv=None):
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    variants.check_supported(APP_ID, args.variant)
    gevent_app.start(APP_ID, args)
    modules = ("threading", "contextvars", "socket", "select", "selectors")
    log("monkeypatched modules: %s" % dict((n, bool(monkey.is_module_patched(n))) for n in modules))
    sdk.init_or_die(APP_ID, args.dsn)
    loop_thread = LoopThread()
    loop_thread.start()
    units = unit.Units.from_args(aio.AsyncioModel(), args)
    svc = service.Service(APP_ID, args.variant, args.units)
    # A unit's own barriers are bounded by barrier_timeout (twice: the unit
    # barrier, then the children's); this outer bound only catches a stuck loop.
    timeout = args.barrier_timeout * 2 + 15

    def run_unit(i, round_name):  # in the request greenlet
        return loop_thread.run(aio.answer(units, i, round_name), timeout)

    app = wsgi.application(svc, run_unit)
    gevent_app.serve_pywsgi(APP_ID, args.port, app)


if __name__ == "__main__":
    main()

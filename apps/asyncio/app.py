"""Reference app: one asyncio task per connection (stdlib asyncio server).

All units run concurrently on ONE thread, interleaved at await points, so
only contextvars (as used by the SDK) can keep their scope data apart.

Server: `asyncio.start_server` with _common.aio's minimal HTTP/1.0 handler.
Barrier: asyncio.Event + counter; children: `asyncio.gather` (aio.AsyncioModel).

Variants:
  plain                no workaround
  asyncio-integration  AsyncioIntegration() (sentry_sdk.init runs inside the
                       running loop, before start_server, because the
                       integration patches the running loop's task factory)
  hub-clone, isolation-scope   see _common.variants

Runs unchanged on Python 3.6-3.13: no asyncio.run, no walrus, every asyncio
primitive is created inside a coroutine (3.6-3.9 bind them to a loop).
See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402,F401  (imported first, as before)

from _common import aio, cli, lifecycle, sdk, service, unit  # noqa: E402
from _common.log import log  # noqa: E402

APP_ID = "asyncio"
VARIANTS = ("plain", "asyncio-integration", "hub-clone", "isolation-scope")


async def serve(args):
    # Inside the running loop, before start_server: AsyncioIntegration
    # patches the *running* loop's task factory. Every variant initialises at
    # the same point so that the only difference between them is the fix.
    integrations, _ = sdk.framework_integrations(args.variant)  # + AsyncioIntegration() for asyncio-integration
    # e.g. DidNotEnable for an explicitly requested integration
    sdk.init_or_die(APP_ID, args.dsn, integrations, " for variant %s" % args.variant)
    if integrations:
        log("task factory after init: %r" % (asyncio.get_event_loop().get_task_factory(),))
    units = unit.Units.from_args(aio.AsyncioModel(), args)
    svc = service.Service(APP_ID, args.variant, args.units)
    try:
        server = await asyncio.start_server(aio.http_handler(svc, units), "127.0.0.1", args.port, backlog=128)
    except Exception as exc:
        cli.die_bind(APP_ID, args.port, exc)
    log("listening on http://127.0.0.1:%d/" % server.sockets[0].getsockname()[1])
    while True:  # until POST /shutdown (os._exit) or a watchdog
        await asyncio.sleep(3600)


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv)
    lifecycle.log_start(args)
    aio.run_main(serve, args)


if __name__ == "__main__":
    main()

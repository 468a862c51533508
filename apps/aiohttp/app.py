"""Reference app: an aiohttp.web server with the SDK's AioHttpIntegration
(see apps/README.md for the contract).

Server: aiohttp's own runner (`web.AppRunner` + `web.TCPSite`) on
127.0.0.1:PORT, in an asyncio loop this process creates. Every request is
a task of aiohttp's server; `GET /unit/<i>` is an `async def` handler that
runs the unit (_common.aio: asyncio.Event barrier, children through
`asyncio.gather`, each child its own Task). A catch-all handler answers
/facts /flush /shutdown /rss (_common.service).

The integration is on as users have it: auto-enabled (the SDK's default
integrations import it when aiohttp is installed, the way its docs show);
an SDK that does not auto-enable it gets `AioHttpIntegration()` explicitly.
`/facts` says which, and whether it really is enabled.

Variants:
  plain                the default integrations (AioHttpIntegration auto-enabled)
  hub-clone, isolation-scope   the per-request fix around the unit (_common.variants)
  asyncio-integration  + AsyncioIntegration() (sentry_sdk.init inside the running
                       loop, before the runner starts, as it patches that loop's
                       task factory)

Python 3.7+ (the SDK's integration needs contextvars); no walrus, no
asyncio.run.
"""
from __future__ import absolute_import, print_function

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402,F401

from _common import aio, cli, facts, httpjson, lifecycle, sdk, service, unit  # noqa: E402
from _common.log import forward_stdlib_logging, log  # noqa: E402

APP_ID = "aiohttp"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "asyncio-integration")
INTEGRATION = "sentry_sdk.integrations.aiohttp.AioHttpIntegration"
WRAPPED = ("aiohttp.web.Application._handle", "aiohttp.web_urldispatcher.UrlDispatcher.resolve")
JSON = "application/json"


def handlers(web, svc, units):
    async def unit_handler(request):
        r = httpjson.parse_unit(request.match_info["i"], request.query_string, svc.units, svc.rounds)
        status, obj = await aio.answer_route(svc, units, r)
        log("http GET %s -> %d" % (request.path_qs, status))
        return web.Response(body=httpjson.json_body(obj), status=status, content_type=JSON)

    async def admin_handler(request):
        status, obj, after = svc.admin(svc.route(request.method, request.path_qs))
        if request.method == "POST" and request.can_read_body:
            await request.read()  # body ignored
        response = web.Response(body=httpjson.json_body(obj), status=status, content_type=JSON)
        log("http %s %s -> %d" % (request.method, request.path_qs, status))
        if after is not None:  # POST /shutdown: the answer out first, then exit
            await response.prepare(request)
            await response.write_eof()
            after()
        return response

    return unit_handler, admin_handler


async def serve(args, web, aiohttp_version):
    # Inside the running loop, before the runner: AsyncioIntegration patches the
    # running loop's task factory. Every variant initialises at the same point.
    how, enabled = sdk.init_framework(APP_ID, args, INTEGRATION)
    units = unit.Units.from_args(aio.AsyncioModel(), args)
    extra = {"aiohttp": aiohttp_version, "server": "aiohttp.web.AppRunner + TCPSite", "aiohttp_integration": how,
             "integrations_enabled": enabled}
    svc = service.Service(APP_ID, args.variant, args.units,
                          extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    unit_handler, admin_handler = handlers(web, svc, units)
    app = web.Application()
    app.router.add_route("GET", "/unit/{i}", unit_handler)
    app.router.add_route("*", "/{tail:.*}", admin_handler)  # JSON 404/405 too
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=128)
    try:
        await site.start()
    except Exception as exc:
        lifecycle.fail_bind(APP_ID, args.port, exc)
    sockets = [s.getsockname() for s in getattr(getattr(site, "_server", None), "sockets", None) or []]
    log("aiohttp %s listening on http://127.0.0.1:%d/ %s" % (aiohttp_version, args.port, sockets))
    while True:  # until POST /shutdown (os._exit) or a watchdog
        await asyncio.sleep(3600)


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv)
    try:
        import aiohttp
        from aiohttp import web
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import aiohttp.web", exc)
    lifecycle.log_start(args, (("aiohttp", aiohttp.__version__),))
    forward_stdlib_logging()  # aiohttp's own warnings and errors on stderr
    aio.run_main(serve, args, web, aiohttp.__version__)


if __name__ == "__main__":
    main()

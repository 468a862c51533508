"""Reference app: a tornado.web.Application on Tornado's own HTTPServer, with
the SDK's TornadoIntegration (see apps/README.md for the contract).

Server: `tornado.httpserver.HTTPServer(app)` on a socket bound to
127.0.0.1:PORT with TCP_DEFER_ACCEPT (see DEFERRED_ACCEPT), on the asyncio
loop this process creates (Tornado 5+ runs on asyncio). `GET
/unit/<i>` is a handler whose `get` is `async def`: it runs the unit
(_common.aio: asyncio.Event barrier; children through `asyncio.gather`, each
child its own Task). `tornado.gen.multi` would do the same for native
coroutines (it hands each to `convert_yielded`, i.e. asyncio.ensure_future);
`asyncio.gather` is what an `async def` handler writes. Another handler
answers /facts /flush /shutdown /rss (_common.service).

The integration is on as users have it: auto-enabled (the default
integrations import it when tornado is installed); an SDK that does not
auto-enable it gets `TornadoIntegration()` explicitly. `/facts` says which,
and whether it really is enabled (2.x skips it on Tornado < 6).

Variants:
  plain                the default integrations (TornadoIntegration auto-enabled)
  hub-clone, isolation-scope   the per-request fix around the unit (_common.variants)
  asyncio-integration  + AsyncioIntegration() (sentry_sdk.init inside the running loop)

Python 3.7+; no walrus, no asyncio.run.
"""
from __future__ import absolute_import, print_function

import asyncio
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402,F401

from _common import aio, cli, facts, httpjson, lifecycle, sdk, service, unit  # noqa: E402
from _common.log import forward_stdlib_logging, log  # noqa: E402

APP_ID = "tornado"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "asyncio-integration")
INTEGRATION = "sentry_sdk.integrations.tornado.TornadoIntegration"
WRAPPED = ("tornado.web.RequestHandler._execute", "tornado.web.RequestHandler.log_exception")
JSON = "application/json"


def make_application(tornado_web, svc, units, unwrapped_execute):
    class JsonHandler(tornado_web.RequestHandler):
        async def answer(self, status, obj):
            self.set_status(status)
            self.set_header("Content-Type", JSON)
            done = self.finish(httpjson.json_body(obj))  # a Future from Tornado 5.1 on
            if done is not None:
                await done

    class UnitHandler(JsonHandler):
        async def get(self, raw):
            r = httpjson.parse_unit(raw, self.request.query, svc.units, svc.rounds)
            status, obj = await aio.answer_route(svc, units, r)
            await self.answer(status, obj)

    class AdminHandler(JsonHandler):
        # The harness's own requests (/facts, /arrived, /flush...) keep Tornado's own _execute, not the
        # SDK's: polling /arrived between two units must not change which hub the next unit clones.
        _execute = unwrapped_execute

        async def get(self, *ignored):
            await self.admin()

        async def post(self, *ignored):
            await self.admin()

        async def admin(self):
            status, obj, after = svc.admin(svc.route(self.request.method, self.request.uri))
            await self.answer(status, obj)
            if after is not None:  # POST /shutdown: answered, then exit
                after()

    def log_request(handler):
        log("http %s %s -> %d" % (handler.request.method, handler.request.uri, handler.get_status()))

    return tornado_web.Application([(r"/unit/([^/]+)/?", UnitHandler), (r"/(.*)", AdminHandler)],
                                   log_function=log_request)


# DEFERRED_ACCEPT. Tornado's accept handler runs in ONE contextvars.Context, reused for every connection
# (asyncio's add_reader keeps the Context it was given), and on Tornado 5 a request whose bytes are
# already readable is parsed and dispatched inline, inside that handler: `_execute`'s first step (the
# SDK's `with Hub(Hub.current)` on 0.x/1.x) then runs in the shared Context, and the next request
# dispatched clones that request's hub. Whether the bytes are there at accept depends on load, so the
# listening socket defers accept until they are (TCP_DEFER_ACCEPT), and the harness sends the units in
# turn (`arrival = "in-turn"`): the order a loaded server sees, every time.
async def serve(args, tornado_mod, tornado_web, httpserver, netutil):
    # Inside the running loop, before the server: AsyncioIntegration patches the
    # running loop's task factory. Every variant initialises at the same point.
    unwrapped_execute = tornado_web.RequestHandler._execute  # before the integration replaces it
    how, enabled = sdk.init_framework(APP_ID, args, INTEGRATION)
    units = unit.Units.from_args(aio.AsyncioModel(), args)
    extra = {"tornado": tornado_mod.version,
             "server": "tornado.httpserver.HTTPServer on asyncio, TCP_DEFER_ACCEPT listening socket",
             "tornado_integration": how, "integrations_enabled": enabled}
    svc = service.Service(APP_ID, args.variant, args.units,
                          extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    server = httpserver.HTTPServer(make_application(tornado_web, svc, units, unwrapped_execute))
    try:
        sockets = netutil.bind_sockets(args.port, address="127.0.0.1")
    except Exception as exc:
        lifecycle.fail_bind(APP_ID, args.port, exc)
    for sock in sockets:
        # Accept a connection only once its request's bytes are there, as a loaded server does
        # (nginx's `listen ... deferred`): see DEFERRED_ACCEPT.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 10)
    server.add_sockets(sockets)
    log("tornado %s listening on http://127.0.0.1:%d/" % (tornado_mod.version, args.port))
    while True:  # until POST /shutdown (os._exit) or a watchdog
        await asyncio.sleep(3600)


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv)
    try:
        import tornado
        import tornado.httpserver
        import tornado.netutil
        import tornado.web
    except Exception as exc:  # e.g. Tornado 5 on Python 3.10+ (collections.MutableMapping)
        cli.die_stack(APP_ID, "cannot import tornado.web", exc)
    lifecycle.log_start(args, (("tornado", tornado.version),))
    forward_stdlib_logging()  # Tornado's own warnings and errors on stderr
    aio.run_main(serve, args, tornado, tornado.web, tornado.httpserver, tornado.netutil)


if __name__ == "__main__":
    main()

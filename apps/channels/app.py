"""Reference app: Django Channels on daphne (see apps/README.md for the contract).

One ProtocolTypeRouter, served by daphne's own `daphne.server.Server` in this
process on 127.0.0.1:PORT; --route picks what serves the units:
  http-consumer  GET /unit/<i>?round=...    an AsyncHttpConsumer
  async-view     GET /unit/<i>?round=...    an `async def` Django view behind Django's ASGI
                 handler (Channels >= 3: get_asgi_application(); 2: channels.http.AsgiHandler)
  websocket      ws /ws/unit/<i>?round=...  an AsyncWebsocketConsumer: accept, do the unit's
                 work, send ONE text frame with the unit's JSON result; the client closes
/facts /flush /shutdown /rss /memory are an AsyncHttpConsumer (_common.service).
The unit is _common.aio's (asyncio.Event barrier, gather). Rounds: normal,
control and load (the normal work without the cross-unit barrier, named
load-unit-i, for the memory probe). Variants: plain (DjangoIntegration() only,
explicitly), asgi-middleware (SentryAsgiMiddleware wrapping the WHOLE
ProtocolTypeRouter), hub-clone and isolation-scope (_common.variants), and the
test-only planted-leak (keeps every round's scopes: the probe must see it).

Python 3.6+ (no walrus, no asyncio.run/get_running_loop/create_task; asyncio
primitives are created inside coroutines). No gevent anywhere.
"""
from __future__ import absolute_import, print_function

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The SDK first: on Python 3.6 importing it imports aiocontextvars (when
# installed), which must patch asyncio before daphne creates its loop.
import sentry_sdk  # noqa: E402,F401

from _common import aio, cli, facts, httpjson, lifecycle, sdk, service, unit, variants  # noqa: E402
from _common.log import forward_stdlib_logging, log, one_line, set_prefix  # noqa: E402

APP_ID = "channels"
VARIANTS = ("plain", "asgi-middleware", "hub-clone", "isolation-scope", unit.PLANTED_LEAK)
ROUTES = ("http-consumer", "websocket", "async-view")
ROUNDS = ("normal", "control", "load")
NEEDS = {"asgi-middleware": "integrations.asgi.SentryAsgiMiddleware"}

_APP = {}  # "svc", "units": reachable from the consumers and the view
fail = lifecycle.fail_after_init  # (app_id, message, code=2): after sentry_sdk.init
WRAPPED = ("django.core.handlers.asgi.ASGIHandler.__call__", "channels.http.AsgiHandler.__call__",
           "channels.consumer.AsyncConsumer.__call__")  # /facts: which of these the SDK patched


def configure_django():
    try:
        import django
        from django.conf import settings
    except ImportError as exc:
        cli.die_stack(APP_ID, "cannot import django", exc)
    settings.configure(
        DEBUG=False, SECRET_KEY="channels-reference-app-not-a-secret", ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,  # urlpatterns below (the async view)
        INSTALLED_APPS=[], MIDDLEWARE=[], DATABASES={}, USE_TZ=True, LOGGING_CONFIG=None,
    )
    return django


async def answer_unit(raw, query_string):
    """-> (status, obj) for /unit/<raw>?<query_string>. Never raises."""
    svc, units = _APP["svc"], _APP["units"]
    r = httpjson.parse_unit(raw, query_string, svc.units, svc.rounds)
    return await aio.answer_route(svc, units, r)


async def unit_view(request, i):
    """The async Django view of --route async-view."""
    from django.http import HttpResponse

    status, obj = await answer_unit(i, request.META.get("QUERY_STRING", ""))
    log("view /unit/%s?%s -> %d" % (i, request.META.get("QUERY_STRING", ""), status))
    return HttpResponse(httpjson.json_body(obj), status=status, content_type="application/json")


urlpatterns = []  # filled by build_application() for --route async-view


def build_application(route, variant):
    """The ProtocolTypeRouter (wrapped by SentryAsgiMiddleware in the
    asgi-middleware variant). Returns (application, notes)."""
    from django.urls import re_path
    from channels.generic.http import AsyncHttpConsumer
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter

    asgi3 = hasattr(AsyncHttpConsumer, "as_asgi")  # Channels >= 3
    json_header = [(b"Content-Type", b"application/json")]

    def endpoint(consumer_cls):
        return consumer_cls.as_asgi() if asgi3 else consumer_cls

    class AdminConsumer(AsyncHttpConsumer):
        async def handle(self, body):
            method = self.scope.get("method", "GET").upper()
            path = self.scope.get("path", "").rstrip("/") or "/"
            status, obj, after = _APP["svc"].admin(_APP["svc"].route(method, path))
            await self.send_response(status, httpjson.json_body(obj), headers=json_header)
            log("http %s %s -> %d" % (method, path, status))
            if after is not None:
                after()

    class UnitHttpConsumer(AsyncHttpConsumer):
        async def handle(self, body):
            method = self.scope.get("method", "GET").upper()
            raw = self.scope["url_route"]["kwargs"]["i"]
            if method != "GET":
                status, obj = 405, {"error": "use GET /unit/<i>"}
            else:
                status, obj = await answer_unit(raw, self.scope.get("query_string", b""))
            await self.send_response(status, httpjson.json_body(obj), headers=json_header)
            log("http-consumer %s /unit/%s -> %d" % (method, raw, status))

    class UnitWebsocketConsumer(AsyncWebsocketConsumer):
        async def connect(self):
            await self.accept()
            raw = self.scope["url_route"]["kwargs"]["i"]
            status, obj = await answer_unit(raw, self.scope.get("query_string", b""))
            if status != 200 and "unit" not in obj:
                obj["status"] = status
            await self.send(text_data=json.dumps(obj, sort_keys=True))
            # The client closes once it has read the frame. With a server-side close right after the send, a
            # client once got neither the frame nor the close frame ("no close frame received or sent": a
            # connection reset discards what the client had not read yet). An error answer carries its status
            # in the JSON ("status").
            log("websocket /ws/unit/%s -> %d" % (raw, status))

    http_routes = [re_path(r"^(?P<name>facts|flush|shutdown|rss|memory)/?$", endpoint(AdminConsumer))]
    notes = {"route": route, "channels_asgi3": asgi3}
    if route == "async-view":
        urlpatterns[:] = [re_path(r"^unit/(?P<i>[^/]+)/?$", unit_view)]
        if asgi3:
            from django.core.asgi import get_asgi_application

            django_app = get_asgi_application()
            notes["django_asgi_app"] = "django.core.asgi.get_asgi_application()"
        else:
            from channels.http import AsgiHandler

            django_app = AsgiHandler
            notes["django_asgi_app"] = "channels.http.AsgiHandler"
        http_routes.append(re_path(r"^", django_app))
    else:
        http_routes.append(re_path(r"^unit/(?P<i>[^/]+)/?$", endpoint(UnitHttpConsumer)))
        http_routes.append(re_path(r"^", endpoint(AdminConsumer)))  # JSON 404s
    router = ProtocolTypeRouter({
        "http": URLRouter(http_routes),
        "websocket": URLRouter([re_path(r"^ws/unit/(?P<i>[^/]+)/?$", endpoint(UnitWebsocketConsumer))]),
    })
    if variant != "asgi-middleware":
        return router, notes
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    try:
        wrapped = SentryAsgiMiddleware(router)
    except Exception as exc:  # RuntimeError without real contextvars (3.6, no aiocontextvars)
        fail(APP_ID, "variant asgi-middleware: SentryAsgiMiddleware(ProtocolTypeRouter) raised %s" % one_line(exc))
    asgi = "3" if getattr(wrapped, "__call__", None) == getattr(wrapped, "_run_asgi3", 0) else "2"
    notes["asgi_middleware"] = "SentryAsgiMiddleware(ProtocolTypeRouter), asgi" + asgi
    return wrapped, notes


def _accepted_kwargs(func, wanted):
    try:
        import inspect

        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    return dict((k, v) for k, v in wanted.items() if k in params)


def serve(args, application, extra_facts):
    import daphne
    from daphne.server import Server  # installs twisted's asyncio reactor

    if args.port != 0:  # daphne reports a failed listen only in its log: check first
        cli.check_port(APP_ID, args.port, die_with=fail)
    import daphne.cli

    # Start the application the way this daphne's own CLI does: daphne >= 3
    # (ASGI 3) passes it through asgiref's guarantee_single_callable, daphne 2
    # (ASGI 2) takes it as it is.
    single = getattr(daphne.cli, "guarantee_single_callable", None)
    if single is not None:
        application = single(application)
    endpoint = "tcp:port=%d:interface=127.0.0.1" % args.port
    holder = []

    def ready():
        addresses = getattr(holder[0], "listening_addresses", [])
        log("daphne %s listening on %s" % (getattr(daphne, "__version__", "?"), addresses or endpoint))

    wanted = {
        "application": application, "endpoints": [endpoint], "signal_handlers": True, "action_logger": None,
        "http_timeout": None, "websocket_connect_timeout": args.barrier_timeout * 2 + 20,
        "application_close_timeout": 10, "ready_callable": ready, "verbosity": 1,
    }
    server = Server(**_accepted_kwargs(Server.__init__, wanted))
    holder.append(server)
    extra_facts["server"] = "daphne %s" % getattr(daphne, "__version__", "?")
    server.run()
    if getattr(server, "abort_start", False):
        fail(APP_ID, "daphne could not listen on 127.0.0.1:%d (see its 'Listen failure' line above)" % args.port, 1)
    lifecycle.close_and_exit("daphne's reactor stopped")


def main(argv=None):
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv, routes=ROUTES)
    variants.check_supported(APP_ID, args.variant, NEEDS)
    lifecycle.start_watchdogs(args.max_seconds)
    lifecycle.log_start(args, (), (("route", args.route),))
    forward_stdlib_logging()  # daphne/Django warnings and errors on stderr

    django = configure_django()
    from django.core.handlers.base import BaseHandler

    # Django runs `async def` views from 3.1 on (BaseHandler.adapt_method_mode)
    if args.route == "async-view" and not hasattr(BaseHandler, "adapt_method_mode"):
        cli.die(APP_ID, "route async-view needs Django async views (BaseHandler.adapt_method_mode); "
                        "Django %s has none" % django.get_version())
    try:
        import channels
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import channels", exc)
    try:
        from sentry_sdk.integrations.django import DjangoIntegration
    except Exception as exc:
        cli.die(APP_ID, "cannot import DjangoIntegration: %s" % one_line(exc))
    # The Django integration explicitly (it is also auto-enabled): what a
    # Django project's settings.py does before django.setup().
    sdk.init_or_die(APP_ID, args.dsn, [DjangoIntegration()], " for variant %s" % args.variant, die=fail)
    django.setup()

    extra = {}
    _APP["units"] = unit.Units.from_args(aio.AsyncioModel(), args)
    _APP["svc"] = service.Service(APP_ID, args.variant, args.units, rounds=ROUNDS,
                                  extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    application, notes = build_application(args.route, args.variant)
    extra.update(notes, channels=getattr(channels, "__version__", "?"), django=django.get_version())
    log("application: %s" % json.dumps(notes, sort_keys=True))
    try:
        serve(args, application, extra)
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

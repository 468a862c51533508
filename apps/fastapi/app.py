"""Reference app: FastAPI on uvicorn (see apps/README.md for the contract). PYTHON 3.6+ ONLY.

uvicorn's `Server.serve()` runs in this process on 127.0.0.1:PORT (a socket bound here, so a
busy port is the contract's one line and exit 1). sentry_sdk.init runs inside the running loop
BEFORE the FastAPI app and its routes exist, with the default integrations (FastAPI and
Starlette auto-enable from sentry-sdk 1.9.6 on). --route picks what serves GET /unit/<i>:
  async            an `async def` endpoint; children through asyncio.gather (_common.aio)
  sync             a plain `def` endpoint, run by Starlette in its thread pool; a
                   threading.Condition barrier across the pool's threads, inline children
  background       the endpoint answers at once and adds an `async def` BackgroundTask that
                   does the WHOLE unit after the response: scope writes, transaction,
                   barrier (all N background tasks overlap), gather children, capture
  background-sync  the same with a plain `def` task (the FastAPI tutorial's form), which
                   Starlette runs in its thread pool: Condition barrier, inline children
For the background routes a relay OUTSIDE the app (and outside every Sentry wrapper, like a
reverse proxy) keeps Starlette's early response and answers the engine with the unit's JSON
once the app call returned, i.e. after Starlette ran the background tasks.

Variants: plain; asgi-middleware (SentryAsgiMiddleware wrapping the FastAPI app, the ASGI docs'
way before the Starlette/FastAPI integrations); asyncio-integration (+ AsyncioIntegration());
hub-clone and isolation-scope (_common.variants, around the unit's work).
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402,F401

from _common import aio, cli, facts, httpjson, lifecycle, sdk, service, unit  # noqa: E402
from _common.log import forward_stdlib_logging, log, one_line  # noqa: E402

APP_ID = "fastapi"
VARIANTS = ("plain", "asgi-middleware", "asyncio-integration", "hub-clone", "isolation-scope")
ROUTES = ("async", "sync", "background", "background-sync")
NEEDS = {"asgi-middleware": "integrations.asgi.SentryAsgiMiddleware"}
BLOCKING = ("sync", "background-sync")  # routes whose unit runs in Starlette's thread pool
SLOT = "ctxm.unit"  # ASGI scope key: where a background task leaves its answer for the relay
WRAPPED = ("starlette.applications.Starlette.__call__", "starlette.routing.request_response",
           "fastapi.routing.get_request_handler")  # /facts: which of these the SDK replaced
fail = lifecycle.fail_after_init


def json_response(status, obj):
    from starlette.responses import Response

    return Response(httpjson.json_body(obj), status_code=status, media_type="application/json")


def build_app(route, svc, units):
    """The FastAPI app: the admin endpoints and the route's GET /unit/{i}."""
    from fastapi import FastAPI
    from starlette.requests import Request

    try:
        from fastapi import BackgroundTasks
    except ImportError:  # not re-exported by the oldest FastAPI releases
        from starlette.background import BackgroundTasks

    app = FastAPI()

    def target(request):
        query = request.scope.get("query_string", b"").decode("latin-1")
        return request.scope.get("path", "/") + ("?" + query if query else "")

    @app.get("/facts")
    @app.get("/rss")
    @app.post("/flush")
    @app.post("/shutdown")
    async def admin(request: Request):
        status, obj, after = svc.admin(svc.route(request.method, target(request)))
        if after is not None:
            after()  # the shutdown thread waits a little: the answer goes out first
        return json_response(status, obj)

    if route == "async":
        @app.get("/unit/{i}")
        async def unit_async(i: str, request: Request):
            status, obj, _ = await aio.dispatch(svc, units, "GET", target(request))
            return json_response(status, obj)

    elif route == "sync":
        @app.get("/unit/{i}")
        def unit_sync(i: str, request: Request):  # Starlette runs it in its thread pool
            status, obj, _ = svc.answer("GET", target(request), lambda n, r: unit.answer_blocking(units, n, r))
            return json_response(status, obj)

    else:
        async def work_async(n, round_name, slot):
            slot["after_response"] = slot.get("sent", False)
            try:
                slot["answer"] = await aio.answer(units, n, round_name)
            except Exception as exc:
                slot["answer"] = svc.unit_failed(n, round_name, exc)

        def work_blocking(n, round_name, slot):
            slot["after_response"] = slot.get("sent", False)
            try:
                slot["answer"] = unit.answer_blocking(units, n, round_name)
            except Exception as exc:
                slot["answer"] = svc.unit_failed(n, round_name, exc)

        work = work_blocking if route == "background-sync" else work_async

        @app.get("/unit/{i}")
        async def unit_background(i: str, request: Request, background_tasks: BackgroundTasks):
            r = svc.route("GET", target(request))
            slot = request.scope.get(SLOT)
            if r[0] != "unit":
                return json_response(r[1], {"error": r[2]})
            if slot is None:
                return json_response(500, {"error": "no relay slot in the ASGI scope"})
            background_tasks.add_task(work, r[1], r[2], slot)
            return json_response(200, {"unit": r[1], "round": r[2], "accepted": True})

    return app


def relay(inner):
    """Outside the app: a background route's GET /unit/<i> gets the unit's answer, which its
    background task leaves in the scope's slot; Starlette's own (early) response is held."""

    async def application(scope, receive, send):
        if scope.get("type") != "http" or not scope.get("path", "").startswith("/unit/"):
            return await inner(scope, receive, send)
        slot = {}
        scope[SLOT] = slot
        held = []

        async def hold(message):
            held.append(message)
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                slot["sent"] = True  # Starlette's response is complete: the background comes next

        await inner(scope, receive, hold)  # returns once Starlette ran the background tasks
        if "answer" in slot:
            status, obj = slot["answer"]
            obj["after_response"] = slot.get("after_response")
            held = [{"type": "http.response.start", "status": status,
                     "headers": [(b"content-type", b"application/json")]},
                    {"type": "http.response.body", "body": httpjson.json_body(obj)}]
            log("relay: unit %s (%s) answered after the response: %s" % (obj.get("unit"), obj.get("round"),
                                                                         slot.get("after_response")))
        for message in held:
            await send(message)

    return application


async def serve(args, versions):
    # Inside the running loop (AsyncioIntegration patches the running loop's task factory) and
    # before the app exists (the FastAPI integration wraps routes as they are registered).
    _, enabled = sdk.init_framework(APP_ID, args)

    model = unit.InlineModel() if args.route in BLOCKING else aio.AsyncioModel()
    units = unit.Units.from_args(model, args)
    extra = dict(versions, route=args.route, integrations=enabled)
    svc = service.Service(APP_ID, args.variant, args.units,
                          extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    application = build_app(args.route, svc, units)
    if args.variant == "asgi-middleware":
        from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

        try:
            application = SentryAsgiMiddleware(application)
        except Exception as exc:
            fail(APP_ID, "variant asgi-middleware: SentryAsgiMiddleware(app) raised %s" % one_line(exc))
        extra["asgi_middleware"] = "SentryAsgiMiddleware(FastAPI app)"
    if args.route.startswith("background"):
        application = relay(application)
    await aio.serve_uvicorn(APP_ID, application, args.port, args.route)


def import_stack():
    """The framework and its server, or the contract's exit 4: {name: version}."""
    try:
        import fastapi
        import starlette
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import fastapi", exc)
    try:
        import uvicorn
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import uvicorn", exc)
    return {"fastapi": getattr(fastapi, "__version__", "?"), "starlette": getattr(starlette, "__version__", "?"),
            "server": getattr(uvicorn, "__version__", "?")}


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv, NEEDS, routes=ROUTES)
    versions = import_stack()
    lifecycle.log_start(args, sorted(versions.items()), (("route", args.route),))
    forward_stdlib_logging()  # uvicorn's and Starlette's warnings and errors on stderr
    aio.run_main(serve, args, versions)


if __name__ == "__main__":
    main()

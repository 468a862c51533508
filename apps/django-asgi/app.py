"""Reference app: Django async and sync views on uvicorn (see apps/README.md). PYTHON 3.6+ ONLY.

Django's own ASGI application, `django.core.asgi.get_asgi_application()`, served by uvicorn's
`Server.serve()` in this process on 127.0.0.1:PORT (a socket bound here). The project is the
shared one in apps/_django/: django.setup() imports its settings.py, which calls
sentry_sdk.init(DjangoIntegration()) as Django projects do; that import happens inside the
running loop, where `uvicorn project.asgi:application` imports an app too. The URLs are this
module's (settings.ROOT_URLCONF = "__main__" through CTXM_ROOT_URLCONF). --route picks the view
that serves GET /unit/<i>:
  async-view  an `async def` view; barrier asyncio.Event, children asyncio.gather (_common.aio)
  sync-view   a plain `def` view, which Django's ASGI handler runs through asgiref's
              sync_to_async(thread_sensitive=True); barrier threading.Condition, inline children
/facts /rss /flush /shutdown are a plain `def` view. Variants: plain; asyncio-integration (settings.py
adds AsyncioIntegration() through CTXM_ASYNCIO_INTEGRATION); hub-clone and isolation-scope.
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import aio, cli, facts, httpjson, lifecycle, service, unit  # noqa: E402
from _common.log import forward_stdlib_logging, log, one_line, set_prefix  # noqa: E402

APP_ID = "django-asgi"
VARIANTS = ("plain", "asyncio-integration", "hub-clone", "isolation-scope")
ROUTES = ("async-view", "sync-view")
SETTINGS = "_django.ctxproject.settings"
WRAPPED = ("django.core.handlers.asgi.ASGIHandler.__call__", "django.core.handlers.base.BaseHandler.get_response_async")
fail = lifecycle.fail_after_init
_APP = {}  # "svc", "units": reachable from the views
urlpatterns = []  # ROOT_URLCONF: filled by serve()


def _response(status, obj):
    from django.http import HttpResponse

    return HttpResponse(httpjson.json_body(obj), status=status, content_type="application/json")


def admin_view(request):  # sync: it answers even where an SDK breaks async views (0.17 - 0.19.1)
    svc = _APP["svc"]
    status, obj, after = svc.admin(svc.route(request.method, request.get_full_path()))
    if after is not None:
        after()  # the shutdown thread waits a little: the answer goes out first
    return _response(status, obj)


async def unit_async_view(request, i):
    status, obj, _ = await aio.dispatch(_APP["svc"], _APP["units"], "GET", request.get_full_path())
    return _response(status, obj)


def unit_sync_view(request, i):
    # asgiref runs it in a worker thread: one per request under Django's ThreadSensitiveContext
    log("sync-view /unit/%s in thread %s" % (i, threading.current_thread().name))
    status, obj, _ = _APP["svc"].answer("GET", request.get_full_path(),
                                        lambda n, r: unit.answer_blocking(_APP["units"], n, r))
    return _response(status, obj)


async def serve(args, versions):
    from django.core.asgi import get_asgi_application
    from django.urls import re_path

    try:
        application = get_asgi_application()  # django.setup(): settings.py runs sentry_sdk.init
    except Exception as exc:  # settings.py raises RuntimeError when sentry_sdk.init failed
        fail(APP_ID, one_line(exc) if "sentry_sdk.init" in str(exc) else "django.setup() failed: " + one_line(exc))
    set_prefix(APP_ID)  # settings.py named the log after a gunicorn worker
    model = unit.InlineModel() if args.route == "sync-view" else aio.AsyncioModel()
    _APP["units"] = unit.Units.from_args(model, args)
    extra = dict(versions, route=args.route, django_asgi_app="django.core.asgi.get_asgi_application()")
    _APP["svc"] = service.Service(APP_ID, args.variant, args.units,
                                  extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    view = unit_sync_view if args.route == "sync-view" else unit_async_view
    urlpatterns[:] = [re_path(r"^(?:facts|rss|flush|shutdown)/?$", admin_view),
                      re_path(r"^unit/(?P<i>[^/]*)/?$", view)]
    await aio.serve_uvicorn(APP_ID, application, args.port, "Django %s (%s)" % (versions["django"], args.route))


def import_stack(route):
    """Django (with async views for async-view) and uvicorn, or the contract's exit 4."""
    try:
        import django
        from django.core.handlers.base import BaseHandler
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import django", exc)
    # Django runs `async def` views from 3.1 on (BaseHandler.adapt_method_mode)
    if route == "async-view" and not hasattr(BaseHandler, "adapt_method_mode"):
        cli.die_stack(APP_ID, "async views", RuntimeError("Django %s has none" % django.get_version()))
    try:
        import uvicorn
    except Exception as exc:
        cli.die_stack(APP_ID, "cannot import uvicorn", exc)
    try:
        import asgiref

        asgiref_version = getattr(asgiref, "__version__", "?")
    except ImportError:
        asgiref_version = None
    return {"django": django.get_version(), "asgiref": asgiref_version, "server": getattr(uvicorn, "__version__", "?")}


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv, routes=ROUTES)
    versions = import_stack(args.route)
    lifecycle.log_start(args, sorted(versions.items()), (("route", args.route),))
    forward_stdlib_logging()  # uvicorn's and Django's warnings and errors on stderr
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS, "CTXM_ROOT_URLCONF": __name__, "CTXM_APP_ID": APP_ID,
        "CTXM_DSN": args.dsn, "CTXM_UNITS": str(args.units), "CTXM_CHILDREN": str(args.children),
        "CTXM_BARRIER_TIMEOUT": repr(args.barrier_timeout), "CTXM_VARIANT": args.variant,
        "CTXM_ASYNCIO_INTEGRATION": "1" if args.variant == "asyncio-integration" else "0",
    })
    aio.run_main(serve, args, versions)


if __name__ == "__main__":
    main()

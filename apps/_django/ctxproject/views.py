"""Views of the contract endpoints (apps/README.md), answered from inside the
gunicorn worker through _common.service, like every other app.

Each URL pattern has its own view; all of them go through the same
`service.Service.answer`, so that answers and errors read the same as in the
other apps. The unit runs in the request's own greenlet (_common.unit's
blocking flavour, unit.InlineModel: a threading.Condition barrier -- green
here, since the worker class patched `threading` -- and the C children one
after another). POST /shutdown answers, then (on a green thread, since
`threading` is patched) closes the SDK client and sends SIGTERM to the
gunicorn arbiter (os.getppid()), which stops the worker gracefully and exits 0
(_common.gunicorn_launch.shutdown).
"""
from django.conf import settings
from django.http import HttpResponse

from _common import gunicorn_launch, httpjson, service, unit


# Created when Django first imports this module (in the worker, after the
# monkeypatching), so its barriers use the patched threading.Condition.
UNITS = unit.Units(unit.InlineModel(), settings.CTXM_UNITS, settings.CTXM_CHILDREN, settings.CTXM_BARRIER_TIMEOUT,
                   settings.CTXM_VARIANT)
SERVICE = service.Service(settings.CTXM_APP_ID, settings.CTXM_VARIANT, settings.CTXM_UNITS,
                          shutdown=gunicorn_launch.shutdown)


def _dispatch(request):
    status, obj, after = SERVICE.answer(request.method, request.get_full_path(),
                                        lambda i, r: unit.answer_blocking(UNITS, i, r))
    if after is not None:
        after()  # starts the stop thread; it waits for the answer to go out
    return HttpResponse(httpjson.json_body(obj), status=status, content_type="application/json")


def facts(request):
    return _dispatch(request)


def unit_view(request, raw):
    return _dispatch(request)


def flush(request):
    return _dispatch(request)


def shutdown(request):
    return _dispatch(request)


def fallback(request):
    return _dispatch(request)

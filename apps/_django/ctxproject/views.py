"""Views of the contract endpoints (apps/README.md), answered from inside the
gunicorn worker.

Each URL pattern has its own view; all of them validate the request with
`_common.httpjson.route` so that errors read the same as in the other apps.
POST /shutdown answers first, then (on a green thread, since `threading` is
patched) closes the SDK client and sends SIGTERM to the gunicorn arbiter
(os.getppid()), which stops the worker gracefully and exits 0.
"""
import os
import signal
import threading
import time

from django.conf import settings
from django.http import HttpResponse

from _common import facts as facts_mod
from _common import httpjson, sdk
from _common.log import log, log_exception, one_line
from _django.units import Units

# Created when Django first imports this module (in the worker, after the
# monkeypatching), so its barriers use the patched threading.Condition.
UNITS = Units(settings.CTXM_UNITS, settings.CTXM_CHILDREN, settings.CTXM_BARRIER_TIMEOUT, settings.CTXM_VARIANT)


def _json(status, obj):
    return HttpResponse(httpjson.json_body(obj), status=status, content_type="application/json")


def _stop_gunicorn():
    time.sleep(0.05)  # let the /shutdown answer go out first
    try:
        sdk.close_client(timeout=2)
    except Exception:
        log_exception("client.close failed")
    arbiter = os.getppid()
    log("POST /shutdown: SIGTERM to the gunicorn arbiter (pid %d)" % arbiter)
    try:
        os.kill(arbiter, signal.SIGTERM)
    except OSError as exc:
        log("cannot signal the arbiter (%s): exiting the worker" % one_line(exc))
        os._exit(0)


def _dispatch(request):
    r = httpjson.route(request.method, request.get_full_path(), settings.CTXM_UNITS)
    kind = r[0]
    if kind == "error":
        return _json(r[1], {"error": r[2]})
    if kind == "facts":
        try:
            return _json(200, facts_mod.facts(settings.CTXM_APP_ID, settings.CTXM_VARIANT, settings.CTXM_UNITS))
        except Exception as exc:
            log_exception("facts failed")
            return _json(500, {"error": one_line(exc)})
    if kind == "flush":
        try:
            sdk.flush(timeout=5)
            return _json(200, {"flushed": True})
        except Exception as exc:
            log_exception("flush failed")
            return _json(500, {"flushed": False, "error": one_line(exc)})
    if kind == "shutdown":
        t = threading.Thread(target=_stop_gunicorn, name="ctxm-shutdown")
        t.daemon = True
        t.start()
        return _json(200, {"shutting_down": True})
    i, round_name = r[1], r[2]
    result = UNITS.run(i, round_name)
    return _json(500 if result["error"] else 200, result)


def facts(request):
    return _dispatch(request)


def unit(request, raw):
    return _dispatch(request)


def flush(request):
    return _dispatch(request)


def shutdown(request):
    return _dispatch(request)


def fallback(request):
    return _dispatch(request)

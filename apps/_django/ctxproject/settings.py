"""Settings of the minimal Django project, and sentry_sdk.init where Django
users put it.

This module is imported in the gunicorn worker by django.setup() (from
_django.ctxproject.wsgi), after gunicorn's gevent/eventlet worker class has
monkeypatched the stdlib in init_process(). The contract values come from the
CTXM_* environment variables set by apps/_django/launcher.py.
apps/django-asgi/app.py imports it the same way (django.setup() from
get_asgi_application(), in uvicorn's process) with CTXM_ROOT_URLCONF set.
"""
import os

from _common import facts as _facts
from _common import sdk as _sdk
from _common.log import log as _log
from _common.log import one_line as _one_line
from _common.log import set_prefix as _set_prefix

_env = os.environ
CTXM_APP_ID = _env.get("CTXM_APP_ID", "django")
CTXM_UNITS = int(_env.get("CTXM_UNITS", "4"))
CTXM_CHILDREN = int(_env.get("CTXM_CHILDREN", "3"))
CTXM_BARRIER_TIMEOUT = float(_env.get("CTXM_BARRIER_TIMEOUT", "10"))
CTXM_VARIANT = _env.get("CTXM_VARIANT", "plain")

_set_prefix("%s worker" % CTXM_APP_ID)

SECRET_KEY = "sentry-context-matrix-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# django-asgi serves its own URLs (its app module); gunicorn's apps leave this unset.
ROOT_URLCONF = _env.get("CTXM_ROOT_URLCONF", "_django.ctxproject.urls")
WSGI_APPLICATION = "_django.ctxproject.wsgi.application"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}  # no database
USE_TZ = True
TIME_ZONE = "UTC"  # Django sets the process TZ from this; keep the logs in UTC
USE_I18N = False

# --------------------------------------------------------------------------
# Sentry

from sentry_sdk.integrations.django import DjangoIntegration  # noqa: E402



def _describe_primitives():
    """One line: which classes back threading's Lock/Condition here."""
    import threading

    lock = threading.Lock()
    return "threading.Lock() -> %s.%s; threading.Condition -> %s.%s; threading.local -> %s.%s" % (
        type(lock).__module__, type(lock).__name__,
        threading.Condition.__module__, getattr(threading.Condition, "__name__", "?"),
        threading.local.__module__, threading.local.__name__,
    )


_log("worker booting: patched=%s; %s" % (_facts.patched(), _describe_primitives()))
try:
    _integrations = [DjangoIntegration()]
    if _env.get("CTXM_ASYNCIO_INTEGRATION") == "1":  # django-asgi's asyncio-integration variant only
        from sentry_sdk.integrations.asyncio import AsyncioIntegration

        _integrations.append(AsyncioIntegration())
    _sdk.init_sdk(_env["CTXM_DSN"], integrations=_integrations)
except Exception as _exc:
    _line = "sentry_sdk.init failed in settings.py: %s" % _one_line(_exc)
    _log(_line)
    _status = _env.get("CTXM_STATUS_FILE")
    if _status:
        with open(_status, "w") as _fh:
            _fh.write("2 " + _line + "\n")
    # A plain exception (not SystemExit): gunicorn then halts the arbiter
    # ("Worker failed to boot") and gunicorn_conf.on_exit turns it into exit 2.
    raise RuntimeError(_line)
_backend, _detail = _facts.context_backend()
_log("sentry-sdk %s initialised (%s): context_backend=%s (%s)"
     % (_sdk.sdk_version(), ", ".join(type(i).__name__ for i in _integrations), _backend, _detail))

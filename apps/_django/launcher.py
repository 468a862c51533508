"""What apps/django-gevent/app.py and apps/django-eventlet/app.py run
(the gunicorn launcher pattern of _common.gunicorn_launch).

1. Parse the contract arguments (`_common.cli.parse_args`).
2. Pre-flight, so that the contract's one-line errors and exit codes hold:
   - exit 4: the worker's library (gevent / eventlet), gunicorn or its
     worker class does not import.
   - exit 2: a bad DSN; DjangoIntegration raising DidNotEnable; a variant
     whose API the SDK lacks.
   - exit 1: 127.0.0.1:PORT cannot be bound.
   Everything imported here (sentry_sdk, django, gevent...) is thrown away by
   the exec below, so the gunicorn arbiter starts from a pristine interpreter.
3. os.execve the same interpreter into gunicorn: ONE worker of the requested
   class, bound to 127.0.0.1:PORT, serving _django.ctxproject.wsgi:application.
   The settings travel in CTXM_* environment variables. sentry_sdk.init runs
   in _django/ctxproject/settings.py, i.e. in the worker, after gunicorn's
   worker class has monkeypatched the stdlib in init_process() -- where
   Django users put it.
"""
from __future__ import absolute_import, print_function

import os
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.dirname(HERE)

from _common import cli  # noqa: E402
from _common import gunicorn_launch as launch  # noqa: E402
from _common.log import set_prefix  # noqa: E402

VARIANTS = ("plain", "hub-clone", "isolation-scope")


def _check_worker_class(app_id, worker_class):
    # Only checking that things import: the warnings (e.g. recent eventlet's
    # EventletDeprecationWarning) show up again in the worker, where they count.
    warnings.simplefilter("ignore")
    mod = launch.import_worker_library(app_id, worker_class)
    gunicorn = launch.import_gunicorn(app_id)
    library_version = getattr(mod, "__version__", "?")
    detail = " (%s %s)" % (launch.WORKER_LIBRARY[worker_class], library_version)
    launch.load_worker(app_id, worker_class, gunicorn, detail)
    return getattr(gunicorn, "__version__", "?"), library_version


def main(app_id, worker_class, argv=None):
    set_prefix(app_id + " launcher")
    args = cli.parse_args(app_id, VARIANTS, argv)
    gunicorn_version, library_version = _check_worker_class(app_id, worker_class)
    sdk_version = launch.check_sdk(app_id, args, "django.DjangoIntegration")
    port = cli.check_port(app_id, args.port)
    libraries = (("gunicorn", gunicorn_version), (launch.WORKER_LIBRARY[worker_class], library_version),
                 ("sentry-sdk", sdk_version))
    launch.exec_gunicorn(app_id, args, port, worker_class, libraries,
                         " --worker-connections %d" % launch.worker_connections(args.units),
                         ["-c", os.path.join(HERE, "gunicorn_conf.py"), "_django.ctxproject.wsgi:application"],
                         [APPS_DIR], {"DJANGO_SETTINGS_MODULE": "_django.ctxproject.settings"})

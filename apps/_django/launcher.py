"""What apps/django-gevent/app.py and apps/django-eventlet/app.py run.

1. Parse the contract arguments (`_common.cli.parse_args`).
2. Pre-flight, so that the contract's one-line errors and exit codes hold:
   - exit 2: the worker's library (gevent / eventlet) or gunicorn's worker
     class does not import; a bad DSN; DjangoIntegration raising
     DidNotEnable; a variant whose API the SDK lacks.
   - exit 1: 127.0.0.1:PORT cannot be bound.
   Everything imported here (sentry_sdk, django, gevent...) is thrown away by
   the exec below, so the gunicorn arbiter starts from a pristine interpreter.
3. os.execv the same interpreter into gunicorn: ONE worker of the requested
   class, bound to 127.0.0.1:PORT, serving _django.ctxproject.wsgi:application. The
   settings travel in CTXM_* environment variables. sentry_sdk.init runs in
   _django/ctxproject/settings.py, i.e. in the worker, after gunicorn's worker class
   has monkeypatched the stdlib in init_process() -- where Django users put it.
"""
from __future__ import absolute_import, print_function

import os
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.dirname(HERE)

from _common import cli, parent  # noqa: E402
from _common.log import log, one_line, set_prefix  # noqa: E402

VARIANTS = ("plain", "hub-clone", "isolation-scope")

# gunicorn worker class -> the library it needs
WORKER_LIBRARY = {"gevent": "gevent", "eventlet": "eventlet"}


def worker_connections(units):
    """At least N*2+4 (the brief), never fewer than 16."""
    return max(units * 2 + 4, 16)


def _check_worker_class(app_id, worker_class):
    library = WORKER_LIBRARY[worker_class]
    # Only checking that things import: the warnings (e.g. recent eventlet's
    # EventletDeprecationWarning) show up again in the worker, where they count.
    warnings.simplefilter("ignore")
    try:
        mod = __import__(library)
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn's %s worker needs %s, which does not import" % (worker_class, library), exc)
    try:
        import gunicorn
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn does not import", exc)
    # gunicorn checks the library's version when its worker module is
    # imported (e.g. "eventlet worker requires eventlet 0.24.1 or higher").
    # Importing the worker module here does not monkeypatch anything: gunicorn
    # patches in the worker's init_process(), and this process is exec'd away.
    module = {"gevent": "gunicorn.workers.ggevent", "eventlet": "gunicorn.workers.geventlet"}[worker_class]
    try:
        __import__(module)
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn %s cannot load its %s worker (%s %s)"
                      % (getattr(gunicorn, "__version__", "?"), worker_class, library,
                         getattr(mod, "__version__", "?")), exc)
    return getattr(gunicorn, "__version__", "?"), getattr(mod, "__version__", "?")


def _check_sdk(app_id, args):
    try:
        import sentry_sdk
        from sentry_sdk.utils import Dsn
    except Exception as exc:
        cli.die(app_id, "sentry_sdk does not import: %s" % one_line(exc))
    try:
        Dsn(args.dsn)
    except Exception as exc:
        cli.die(app_id, "sentry_sdk.init would fail: bad DSN: %s" % one_line(exc))
    try:
        from sentry_sdk.integrations.django import DjangoIntegration

        DjangoIntegration()
    except Exception as exc:  # DidNotEnable (no django / too old), ImportError
        cli.die(app_id, "sentry_sdk.init would fail: DjangoIntegration: %s" % one_line(exc))
    from _common import variants  # imports sentry_sdk: only now that it is known to import

    variants.check_supported(app_id, args.variant)
    return getattr(sentry_sdk, "VERSION", "?")


def main(app_id, worker_class, argv=None):
    set_prefix(app_id + " launcher")
    args = cli.parse_args(app_id, VARIANTS, argv)
    gunicorn_version, library_version = _check_worker_class(app_id, worker_class)
    sdk_version = _check_sdk(app_id, args)
    port = cli.check_port(app_id, args.port)

    # Only written by a worker that fails to boot (then read and removed by
    # the arbiter's on_exit hook), so a normal or killed run leaves no file.
    # The pid is the arbiter's too (execve keeps it), unique while it runs.
    status_file = os.path.join(tempfile.gettempdir(), "ctxm-%s-%d.status" % (app_id, os.getpid()))
    if os.path.exists(status_file):
        os.remove(status_file)
    env = dict(os.environ)
    env.update({
        "CTXM_APP_ID": app_id,
        "CTXM_DSN": args.dsn,
        "CTXM_PORT": str(port),
        "CTXM_UNITS": str(args.units),
        "CTXM_CHILDREN": str(args.children),
        "CTXM_BARRIER_TIMEOUT": repr(args.barrier_timeout),
        "CTXM_VARIANT": args.variant,
        "CTXM_MAX_SECONDS": repr(args.max_seconds),
        "CTXM_WORKER_CLASS": worker_class,
        "CTXM_WORKER_CONNECTIONS": str(worker_connections(args.units)),
        # The arbiter exits (code 3) when the harness is gone (--parent-pid, or this
        # process's parent); the parent-death signal set in parse_args survives the exec.
        "CTXM_WATCH_PARENT": str(parent.watched()),
        # The worker writes "<code> <one line>" here if it fails to boot.
        "CTXM_STATUS_FILE": status_file,
        "DJANGO_SETTINGS_MODULE": "_django.ctxproject.settings",
    })
    paths = [APPS_DIR]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)

    conf = os.path.join(HERE, "gunicorn_conf.py")
    # `python -c` rather than `python -m gunicorn` (no __main__ in old
    # gunicorn releases); sys.argv[0] = "gunicorn" as with the console script.
    bootstrap = "import sys; sys.argv[0] = 'gunicorn'; from gunicorn.app.wsgiapp import run; sys.exit(run())"
    argv_exec = [sys.executable, "-u", "-c", bootstrap, "-c", conf, "_django.ctxproject.wsgi:application"]
    log("python %s, gunicorn %s, %s %s, sentry-sdk %s: exec gunicorn --worker-class %s --workers 1 "
        "--worker-connections %s --bind 127.0.0.1:%d (variant=%s units=%d children=%d barrier_timeout=%s)"
        % (sys.version.split()[0], gunicorn_version, WORKER_LIBRARY[worker_class], library_version, sdk_version,
           worker_class, env["CTXM_WORKER_CONNECTIONS"], port, args.variant, args.units, args.children,
           args.barrier_timeout))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv_exec, env)

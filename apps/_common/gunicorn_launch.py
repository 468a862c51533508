"""The gunicorn launcher pattern (apps/_django/launcher.py for django-gevent and
django-eventlet, apps/flask-gunicorn/app.py) and its worker's POST /shutdown.

The launcher parses the contract arguments, checks what the run needs, so that
the contract's one-line errors and exit codes hold, then os.execve's the same
interpreter into gunicorn: the arbiter starts from a pristine interpreter, a
green worker class monkeypatches before anything imports the SDK, and the
worker initialises the SDK. The settings travel in CTXM_* environment
variables (apps/_django/gunicorn_conf.py reads them).

    import_worker_library(app_id, worker_class)  gevent / eventlet, or exit 4
    import_gunicorn(app_id)                      gunicorn, or exit 4
    load_worker(app_id, worker_class, gunicorn, detail)   its worker module, or exit 4
    check_sdk(app_id, args, integration)         the SDK imports, the DSN parses, the
                                                 framework's integration enables, the
                                                 variant's API exists; else exit 2
    exec_gunicorn(...)                           the exec, with the status file and env
    shutdown()                                   in the worker: POST /shutdown's after()

Nothing here imports sentry_sdk at import time (check_sdk checks that it
imports). Valid Python 2.7 and 3.6-3.13, stdlib only.
"""
from __future__ import absolute_import, print_function

import importlib
import os
import signal
import sys
import tempfile
import threading
import time

from _common import cli, parent
from _common.log import log, log_exception, one_line

WORKER_MODULES = {"sync": "gunicorn.workers.sync", "gthread": "gunicorn.workers.gthread",
                  "gevent": "gunicorn.workers.ggevent", "eventlet": "gunicorn.workers.geventlet"}
WORKER_LIBRARY = {"gevent": "gevent", "eventlet": "eventlet"}  # worker class -> the library it needs
# `python -c` rather than `python -m gunicorn` (no __main__ in old gunicorn
# releases); sys.argv[0] = "gunicorn" as with the console script.
BOOTSTRAP = "import sys; sys.argv[0] = 'gunicorn'; from gunicorn.app.wsgiapp import run; sys.exit(run())"


def worker_connections(units):
    """At least N*2+4 (the brief), never fewer than 16."""
    return max(units * 2 + 4, 16)


def import_worker_library(app_id, worker_class):
    """The library the worker class needs (gevent, eventlet), None for one that needs none, or exit 4."""
    library = WORKER_LIBRARY.get(worker_class)
    if library is None:
        return None
    try:
        return __import__(library)
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn's %s worker needs %s, which does not import" % (worker_class, library), exc)


def import_gunicorn(app_id):
    try:
        import gunicorn
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn does not import", exc)
    return gunicorn


def load_worker(app_id, worker_class, gunicorn, detail=""):
    """Import the worker class's module, or exit 4 ("... cannot load its <class> worker<detail>").
    gunicorn checks the library's version when its worker module is imported (e.g. "eventlet
    worker requires eventlet 0.24.1 or higher"). Importing it does not monkeypatch anything:
    gunicorn patches in the worker's init_process(), and the launcher is exec'd away."""
    try:
        __import__(WORKER_MODULES[worker_class])
    except Exception as exc:
        cli.die_stack(app_id, "gunicorn %s cannot load its %s worker%s"
                      % (getattr(gunicorn, "__version__", "?"), worker_class, detail), exc)


def check_sdk(app_id, args, integration):
    """What sentry_sdk.init in the worker needs, or one line and exit 2. `integration`: the
    framework's, under sentry_sdk.integrations ("django.DjangoIntegration"). -> the SDK's version."""
    try:
        import sentry_sdk
        from sentry_sdk.utils import Dsn
    except Exception as exc:
        cli.die(app_id, "sentry_sdk does not import: %s" % one_line(exc))
    try:
        Dsn(args.dsn)
    except Exception as exc:
        cli.die(app_id, "sentry_sdk.init would fail: bad DSN: %s" % one_line(exc))
    module_name, _, class_name = integration.rpartition(".")
    try:
        getattr(importlib.import_module("sentry_sdk.integrations." + module_name), class_name)()
    except Exception as exc:  # DidNotEnable (the framework missing or too old, no blinker), ImportError
        cli.die(app_id, "sentry_sdk.init would fail: %s: %s" % (class_name, one_line(exc)))
    from _common import variants  # imports sentry_sdk: only now that it is known to import

    variants.check_supported(app_id, args.variant)
    return getattr(sentry_sdk, "VERSION", "?")


def exec_gunicorn(app_id, args, port, worker_class, libraries, options, argv_tail, python_path, env_extra=None):
    """os.execve this interpreter into gunicorn: `argv_tail` after the bootstrap ("-c", the
    config, options, the WSGI app), `python_path` before PYTHONPATH. The log line names
    `libraries` ((name, version) pairs) and the `options` the command line or config adds."""
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
    })
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join(list(python_path) + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    argv_exec = [sys.executable, "-u", "-c", BOOTSTRAP] + list(argv_tail)
    log("python %s, %s: exec gunicorn --worker-class %s --workers 1%s --bind 127.0.0.1:%d "
        "(variant=%s units=%d children=%d barrier_timeout=%s)"
        % (sys.version.split()[0], ", ".join("%s %s" % pair for pair in libraries), worker_class, options, port,
           args.variant, args.units, args.children, args.barrier_timeout))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv_exec, env)


def _stop_gunicorn():
    from _common import sdk

    time.sleep(0.05)  # let the /shutdown answer go out first
    try:
        sdk.close_client(timeout=2)
    except Exception:
        log_exception("client.close failed")
    arbiter = os.getppid()
    log("POST /shutdown: SIGQUIT to the gunicorn arbiter (pid %d)" % arbiter)
    try:
        os.kill(arbiter, signal.SIGQUIT)
    except OSError as exc:
        log("cannot signal the arbiter (%s): exiting the worker" % one_line(exc))
        os._exit(0)


def shutdown():
    """The worker's POST /shutdown (service.Service(shutdown=...)): on a thread (green where the
    worker class patched `threading`), once the answer is out, close the SDK client and SIGQUIT
    the gunicorn arbiter (os.getppid()): its quick shutdown, which exits 0 without the graceful
    stop's wait for the worker's 1 s loop (1.1-1.2 s -> 0.3-0.4 s). Nothing is left to wait for:
    the units have answered and the client is closed."""
    t = threading.Thread(target=_stop_gunicorn, name="ctxm-shutdown")
    t.daemon = True
    t.start()

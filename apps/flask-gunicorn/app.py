"""Reference app: Flask under gunicorn, the worker class under test given as --route
(sync, gthread, gevent), the SDK with the FlaskIntegration initialised in the worker.

The launcher pattern of apps/_django/launcher.py: parse the contract arguments, check what the run
needs (exit 4 when Flask, gunicorn or the worker class cannot load here, exit 2 for a bad DSN or a
FlaskIntegration that does not enable, exit 1 when the port is taken), then os.execve the same
interpreter into gunicorn, so that the arbiter starts from a pristine interpreter, gevent's worker
monkeypatches before anything imports the SDK, and wsgiapp.py initialises the SDK in the worker:
  sync     1 worker process, one request at a time (the units run one after another)
  gthread  1 worker process with N threads
  gevent   1 worker process, greenlets (worker_connections >= N*2+4)
gunicorn reads apps/_django/gunicorn_conf.py (bind, hooks: parent watchdog, --max-seconds, the
worker's boot failure as exit 2), the worker count and threads come on the command line.
See apps/flask-gunicorn/README.md. Python 3 only.
"""
import os
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.dirname(HERE)
sys.path.insert(0, APPS_DIR)

from _common import cli  # noqa: E402
from _common.log import log, one_line, set_prefix  # noqa: E402

APP_ID = "flask-gunicorn"
VARIANTS = ("plain",)
WORKER_CLASSES = ("sync", "gthread", "gevent")
GUNICORN_CONF = os.path.join(APPS_DIR, "_django", "gunicorn_conf.py")


def check_stack(worker_class):
    """Flask, gunicorn and its worker class import here (no SDK involved), or exit 4."""
    warnings.simplefilter("ignore")
    try:
        import flask
    except Exception as exc:
        cli.die_stack(APP_ID, "flask does not import", exc)
    try:
        import gunicorn
    except Exception as exc:
        cli.die_stack(APP_ID, "gunicorn does not import", exc)
    module = {"sync": "gunicorn.workers.sync", "gthread": "gunicorn.workers.gthread",
              "gevent": "gunicorn.workers.ggevent"}[worker_class]
    if worker_class == "gevent":
        try:
            import gevent  # noqa: F401
        except Exception as exc:
            cli.die_stack(APP_ID, "gunicorn's gevent worker needs gevent, which does not import", exc)
    try:
        __import__(module)  # imports only: gunicorn patches in the worker's init_process()
    except Exception as exc:
        cli.die_stack(APP_ID, "gunicorn %s cannot load its %s worker" % (gunicorn.__version__, worker_class), exc)
    return getattr(flask, "__version__", None) or _dist_version("flask"), gunicorn.__version__


def _dist_version(name):
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:
        return "?"


def check_sdk(args):
    try:
        import sentry_sdk
        from sentry_sdk.utils import Dsn
    except Exception as exc:
        cli.die(APP_ID, "sentry_sdk does not import: %s" % one_line(exc))
    try:
        Dsn(args.dsn)
    except Exception as exc:
        cli.die(APP_ID, "sentry_sdk.init would fail: bad DSN: %s" % one_line(exc))
    try:
        from sentry_sdk.integrations.flask import FlaskIntegration

        FlaskIntegration()
    except Exception as exc:  # DidNotEnable (no blinker, Flask too old), ImportError
        cli.die(APP_ID, "sentry_sdk.init would fail: FlaskIntegration: %s" % one_line(exc))
    from _common import variants

    variants.check_supported(APP_ID, args.variant)
    return getattr(sentry_sdk, "VERSION", "?")


def main(argv=None):
    set_prefix(APP_ID + " launcher")
    args = cli.parse_args(APP_ID, VARIANTS, argv, routes=WORKER_CLASSES)
    worker_class = args.route
    flask_version, gunicorn_version = check_stack(worker_class)
    sdk_version = check_sdk(args)
    port = cli.check_port(APP_ID, args.port)
    status_file = os.path.join(tempfile.gettempdir(), "ctxm-%s-%d.status" % (APP_ID, os.getpid()))
    if os.path.exists(status_file):
        os.remove(status_file)
    env = dict(os.environ)
    env.update({
        "CTXM_APP_ID": APP_ID, "CTXM_DSN": args.dsn, "CTXM_PORT": str(port), "CTXM_UNITS": str(args.units),
        "CTXM_CHILDREN": str(args.children), "CTXM_BARRIER_TIMEOUT": repr(args.barrier_timeout),
        "CTXM_VARIANT": args.variant, "CTXM_MAX_SECONDS": repr(args.max_seconds),
        "CTXM_WORKER_CLASS": worker_class, "CTXM_WORKER_CONNECTIONS": str(max(args.units * 2 + 4, 16)),
        "CTXM_WATCH_PARENT": str(os.getppid()), "CTXM_STATUS_FILE": status_file,
    })
    env["PYTHONPATH"] = os.pathsep.join([HERE, APPS_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    extra = ["--threads", str(args.units)] if worker_class == "gthread" else []
    bootstrap = "import sys; sys.argv[0] = 'gunicorn'; from gunicorn.app.wsgiapp import run; sys.exit(run())"
    argv_exec = [sys.executable, "-u", "-c", bootstrap, "-c", GUNICORN_CONF, "--workers", "1"] + extra + ["wsgiapp:app"]
    log("python %s, flask %s, gunicorn %s, sentry-sdk %s: exec gunicorn --worker-class %s --workers 1%s --bind "
        "127.0.0.1:%d (variant=%s units=%d children=%d barrier_timeout=%s)"
        % (sys.version.split()[0], flask_version, gunicorn_version, sdk_version, worker_class,
           " " + " ".join(extra) if extra else "", port, args.variant, args.units, args.children, args.barrier_timeout))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv_exec, env)


if __name__ == "__main__":
    main()

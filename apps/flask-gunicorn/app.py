"""Reference app: Flask under gunicorn, the worker class under test given as --route
(sync, gthread, gevent), the SDK with the FlaskIntegration initialised in the worker.

The launcher pattern of apps/_django/launcher.py (_common.gunicorn_launch): parse the contract
arguments, check what the run needs (exit 4 when Flask, gunicorn or the worker class cannot load
here, exit 2 for a bad DSN or a FlaskIntegration that does not enable, exit 1 when the port is
taken), then os.execve the same interpreter into gunicorn, so that the arbiter starts from a
pristine interpreter, gevent's worker monkeypatches before anything imports the SDK, and
wsgiapp.py initialises the SDK in the worker:
  sync     1 worker process, one request at a time (the units run one after another)
  gthread  1 worker process with N threads
  gevent   1 worker process, greenlets (worker_connections >= N*2+4)
gunicorn reads apps/_django/gunicorn_conf.py (bind, hooks: parent watchdog, --max-seconds, the
worker's boot failure as exit 2), the worker count and threads come on the command line.
See apps/flask-gunicorn/README.md. Python 3 only.
"""
import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_DIR = os.path.dirname(HERE)
sys.path.insert(0, APPS_DIR)

from _common import cli  # noqa: E402
from _common import gunicorn_launch as launch  # noqa: E402
from _common.log import set_prefix  # noqa: E402

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
    gunicorn = launch.import_gunicorn(APP_ID)
    launch.import_worker_library(APP_ID, worker_class)
    launch.load_worker(APP_ID, worker_class, gunicorn)  # imports only: gunicorn patches in the worker's init_process()
    return getattr(flask, "__version__", None) or _dist_version("flask"), gunicorn.__version__


def _dist_version(name):
    try:
        from importlib import metadata

        return metadata.version(name)
    except Exception:
        return "?"


def main(argv=None):
    set_prefix(APP_ID + " launcher")
    args = cli.parse_args(APP_ID, VARIANTS, argv, routes=WORKER_CLASSES)
    worker_class = args.route
    flask_version, gunicorn_version = check_stack(worker_class)
    sdk_version = launch.check_sdk(APP_ID, args, "flask.FlaskIntegration")
    port = cli.check_port(APP_ID, args.port)
    extra = ["--threads", str(args.units)] if worker_class == "gthread" else []
    launch.exec_gunicorn(APP_ID, args, port, worker_class,
                         (("flask", flask_version), ("gunicorn", gunicorn_version), ("sentry-sdk", sdk_version)),
                         " " + " ".join(extra) if extra else "",
                         ["-c", GUNICORN_CONF, "--workers", "1"] + extra + ["wsgiapp:app"], [HERE, APPS_DIR])


if __name__ == "__main__":
    main()

"""gunicorn configuration of the django-gevent / django-eventlet apps.

Read by the gunicorn arbiter (the process the engine started: launcher.py
exec'd into it). Everything comes from the CTXM_* environment variables set
by launcher.py. This file must not import sentry_sdk (nor anything that
does): the arbiter forks the worker, and the SDK must first be imported in
the worker, after gunicorn's worker class has monkeypatched the stdlib.

Hooks:
  when_ready  starts a daemon thread in the arbiter that
              - exits 3 (after SIGKILLing the worker) when the process that
                started the app is gone (the contract's orphan watchdog);
              - stops gunicorn after --max-seconds, if given.
  on_exit     if the worker failed to boot and left "<code> <line>" in
              CTXM_STATUS_FILE (sentry_sdk.init failed in settings.py),
              print that line and exit with that code (2) instead of
              gunicorn's "Worker failed to boot" exit 3.
"""
import os
import signal
import sys
import threading
import time

_env = os.environ

bind = "127.0.0.1:%s" % _env["CTXM_PORT"]
workers = 1
worker_class = _env["CTXM_WORKER_CLASS"]
worker_connections = int(_env["CTXM_WORKER_CONNECTIONS"])
# A unit waits at most --barrier-timeout at each barrier; the worker's
# heartbeat keeps running meanwhile (cooperative waits), so the default
# timeout would do; give it room anyway.
timeout = 60
# SIGTERM (sent by the worker after POST /shutdown) -> worker gets this long to
# finish in-flight requests (the engine waits 5 s before signalling itself).
graceful_timeout = 3
keepalive = 2
preload_app = False  # load Django (and init the SDK) in the worker
accesslog = "-"
errorlog = "-"
loglevel = "info"
proc_name = _env.get("CTXM_APP_ID", "ctxm-django")
# gunicorn >= 25 opens a control socket at ~/.gunicorn/gunicorn.ctl by
# default: one fixed path shared by every cell running at once, outside the
# run's own files. Turn it off (older releases ignore the unknown name).
control_socket_disable = True

_APP_ID = _env.get("CTXM_APP_ID", "ctxm-django")
_monotonic = getattr(time, "monotonic", time.time)


def _say(msg):
    sys.stderr.write("[%s arbiter pid=%d %s] %s\n" % (_APP_ID, os.getpid(), time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def _remove_status_file():
    path = _env.get("CTXM_STATUS_FILE")
    if path:
        try:
            os.remove(path)
        except OSError:
            pass


def _kill_workers(server, sig):
    for pid in list(getattr(server, "WORKERS", {}) or {}):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def when_ready(server):
    watch = int(_env.get("CTXM_WATCH_PARENT") or 0)
    max_seconds = float(_env.get("CTXM_MAX_SECONDS") or 0)
    started = _monotonic()

    def run():
        stopping_since = None
        while True:
            time.sleep(0.5)
            if watch and os.getppid() != watch:
                _say("parent process %d is gone: killing the worker, exiting with code 3" % watch)
                _kill_workers(server, signal.SIGKILL)
                _remove_status_file()
                os._exit(3)
            if max_seconds and stopping_since is None and _monotonic() - started > max_seconds:
                _say("--max-seconds %s reached: SIGTERM to the arbiter" % max_seconds)
                stopping_since = _monotonic()
                os.kill(os.getpid(), signal.SIGTERM)
            if stopping_since is not None and _monotonic() - stopping_since > graceful_timeout + 5:
                _say("graceful stop took too long: killing the worker, exiting with code 0")
                _kill_workers(server, signal.SIGKILL)
                _remove_status_file()
                os._exit(0)

    t = threading.Thread(target=run, name="ctxm-arbiter-watchdog")
    t.daemon = True
    t.start()
    _say("ready; watching parent %d%s" % (watch, ", max %ss" % max_seconds if max_seconds else ""))


def on_exit(server):
    path = _env.get("CTXM_STATUS_FILE")
    status = ""
    if path:
        try:
            with open(path) as fh:
                status = fh.read().strip()
        except (IOError, OSError):
            status = ""
        _remove_status_file()
    if status:
        code, _, line = status.partition(" ")
        sys.stderr.write("%s: error: %s\n" % (_APP_ID, line))
        sys.stderr.flush()
        os._exit(int(code) if code.isdigit() else 2)

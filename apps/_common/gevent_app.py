"""What the gevent-patched apps (gevent, asyncio-gevent) share once `patch_all()` ran.

    start(app_id, args)            the real-thread watchdog (_common.realwatch) with
                                   gevent's originals, its heartbeat greenlet, and the
                                   "starting:" line with the gevent and greenlet versions
    serve_pywsgi(app_id, port, app)   gevent.pywsgi.WSGIServer on 127.0.0.1:PORT
                                   (exit 1 when it can't bind), until the process exits

Import it after the patch only (it imports gevent). Valid Python 2.7 and 3.6-3.13.
"""
from __future__ import absolute_import, print_function

import sys
import time

import gevent
from gevent import monkey
from gevent.pywsgi import WSGIServer

from _common import cli, lifecycle, realwatch, wsgi
from _common.log import log

_monotonic = getattr(time, "monotonic", time.time)


def start(app_id, args):
    thread_module = "_thread" if sys.version_info[0] >= 3 else "thread"
    realwatch.start(
        app_id, "gevent", args.max_seconds,
        monkey.get_original(thread_module, "start_new_thread"),
        monkey.get_original(thread_module, "get_ident"),
        monkey.get_original("time", "sleep"),
        _monotonic,
    )
    realwatch.start_heartbeat(gevent.spawn, gevent.sleep)
    libraries = (("gevent", getattr(gevent, "__version__", "?")),
                 ("greenlet", getattr(sys.modules.get("greenlet"), "__version__", "?")))
    lifecycle.log_start(args, libraries)


def serve_pywsgi(app_id, port, app):
    server = WSGIServer(("127.0.0.1", port), app, log=wsgi.LogFile("http"), error_log=wsgi.LogFile("pywsgi-error"))
    try:
        server.start()
    except Exception as exc:
        cli.die_bind(app_id, port, exc)
    log("listening on http://127.0.0.1:%d/ (gevent.pywsgi.WSGIServer)" % server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")

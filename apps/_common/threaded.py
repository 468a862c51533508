"""The threaded WSGI server of the threads and thread-pool apps: stdlib wsgiref
+ socketserver.ThreadingMixIn, one OS thread per request.

    serve(app_id, port, svc, run_unit, note="")   serve on 127.0.0.1:PORT until the
                                                  process exits (exit 1: can't bind)

Each request's thread logs its access line ("http <client> [<thread>] ...").
Valid Python 2.7 and 3.6-3.13; stdlib only.
"""
from __future__ import absolute_import, print_function

import threading

try:  # Python 3
    from socketserver import ThreadingMixIn
except ImportError:  # Python 2.7
    from SocketServer import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from _common import cli, lifecycle, wsgi
from _common.log import log


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class Handler(WSGIRequestHandler):
    def log_message(self, fmt, *fargs):
        log("http %s [%s] %s" % (self.client_address[0], threading.current_thread().name, fmt % fargs))


def serve(app_id, port, svc, run_unit, note=""):
    """run_unit(i, round_name) -> (status, result), in the request's thread. `note`: said in
    parentheses after the address in the "listening on" line."""
    try:
        server = Server(("127.0.0.1", port), Handler)
    except Exception as exc:
        cli.die_bind(app_id, port, exc)
    # wsgiref forbids hop-by-hop headers; its HTTP/1.0 answers close anyway.
    server.set_app(wsgi.application(svc, run_unit, connection_close=False))
    log("listening on http://127.0.0.1:%d/%s" % (server.server_address[1], " (%s)" % note if note else ""))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")

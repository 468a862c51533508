"""Reference app: one OS thread per request (threading HTTP server).

Models a classic WSGI-style threaded server: each HTTP request is handled on
its own thread, so the SDK's per-thread (or per-thread context) state is what
should keep units apart. Variant: plain (no workaround).

Server: stdlib wsgiref + socketserver.ThreadingMixIn (a thread per request).
Barrier: threading.Condition (unit.ConditionBarrier). Children: the C child
spans one after another in the unit's own thread (unit.InlineModel).

Valid Python 2.7 and 3.6-3.13; stdlib only. See apps/README.md for the
contract and apps/threads/README.md for how to run it by hand.
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading

try:  # Python 3
    from socketserver import ThreadingMixIn
except ImportError:  # Python 2.7
    from SocketServer import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import cli, lifecycle, sdk, service, unit, wsgi  # noqa: E402
from _common.log import log, set_prefix  # noqa: E402

APP_ID = "threads"
VARIANTS = ("plain",)


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class Handler(WSGIRequestHandler):
    def log_message(self, fmt, *fargs):
        log("http %s [%s] %s" % (self.client_address[0], threading.current_thread().name, fmt % fargs))


def main(argv=None):
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    lifecycle.start_watchdogs(args.max_seconds)
    lifecycle.log_start(args)
    sdk.init_or_die(APP_ID, args.dsn)
    units = unit.Units.from_args(unit.InlineModel(), args)
    svc = service.Service(APP_ID, args.variant, args.units)
    try:
        server = Server(("127.0.0.1", args.port), Handler)
    except Exception as exc:
        cli.die_bind(APP_ID, args.port, exc)
    # wsgiref forbids hop-by-hop headers; its HTTP/1.0 answers close anyway.
    server.set_app(wsgi.application(svc, lambda i, r: unit.answer_blocking(units, i, r), connection_close=False))
    log("listening on http://127.0.0.1:%d/" % server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

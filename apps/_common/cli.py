"""Command-line parsing shared by all apps.

    app.py --dsn DSN --port PORT --units N --variant VARIANT
           [--children C] [--barrier-timeout SECONDS] [--max-seconds S] [--parent-pid PID]
           [--route ROUTE]      (only for an app that passes its routes)

Any problem (missing/unknown argument, unknown variant, bad number) prints
ONE line on stderr and exits with code 2, as the engine expects.
"""
from __future__ import absolute_import, print_function

import argparse
import sys

from _common import parent

DEFAULT_UNITS = 4
DEFAULT_CHILDREN = 3
DEFAULT_BARRIER_TIMEOUT = 10.0


def die(app_id, message, code=2):
    """One-line error on stderr, then exit (code 2 = usage/unsupported)."""
    text = " ".join(str(message).split())
    sys.stderr.write("%s: error: %s\n" % (app_id, text))
    sys.stderr.flush()
    sys.exit(code)


def die_stack(app_id, what, exc):
    """Exit 4: the framework itself does not import or start here (no SDK involved), so the
    cell is `unsupported` with this line as its reason, not an `error` worth reading."""
    text = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
    die(app_id, "the stack cannot run here without the SDK: %s: %s" % (what, text), code=4)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage block too
        die(self.prog, message)


def die_bind(app_id, port, exc):
    """The contract's exit 1: the port can't be bound."""
    text = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
    die(app_id, "cannot bind 127.0.0.1:%d: %s" % (port, text), code=1)


def check_port(app_id, port, die_with=None):
    """For servers that report a failed listen only in their log: bind
    127.0.0.1:PORT as they will (SO_REUSEADDR), release it, and return the
    port (port 0 picks a free one now). Cannot bind: one line, exit 1."""
    import socket  # here: gevent/eventlet apps import this module before patching

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock.getsockname()[1]
    except Exception as exc:
        text = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
        (die_with or die)(app_id, "cannot bind 127.0.0.1:%d: %s" % (port, text), code=1)
    finally:
        sock.close()


def parse_args(app_id, variants, argv=None, routes=None):
    """The contract's arguments. With `routes` (the first is the default),
    --route ROUTE is accepted too and checked against them."""
    parser = _OneLineParser(prog=app_id, add_help=False)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--units", type=int, default=DEFAULT_UNITS)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--children", type=int, default=DEFAULT_CHILDREN)
    parser.add_argument(
        "--barrier-timeout",
        dest="barrier_timeout",
        type=float,
        default=DEFAULT_BARRIER_TIMEOUT,
    )
    # A hard cap on the process lifetime (0 = none): the engine passes one
    # derived from its cell timeout, so no app outlives its cell for long.
    parser.add_argument("--max-seconds", dest="max_seconds", type=float, default=0.0)
    # The harness's pid: the app exits when that process is gone (0: the
    # parent seen at start, e.g. by hand or inside a container).
    parser.add_argument("--parent-pid", dest="parent_pid", type=int, default=0)
    if routes:
        parser.add_argument("--route", default=routes[0])
    args = parser.parse_args(argv)
    if routes and args.route not in routes:
        die(app_id, "unknown route %r (this app supports: %s)" % (args.route, ", ".join(routes)))

    if args.variant not in variants:
        die(
            app_id,
            "unknown variant %r (this app supports: %s)"
            % (args.variant, ", ".join(variants)),
        )
    if not (0 <= args.port <= 65535):
        die(app_id, "--port must be 0..65535, got %d" % args.port)
    if args.units < 1:
        die(app_id, "--units must be >= 1, got %d" % args.units)
    if args.children < 1:
        die(app_id, "--children must be >= 1, got %d" % args.children)
    if not args.barrier_timeout > 0:
        die(app_id, "--barrier-timeout must be > 0, got %r" % args.barrier_timeout)
    if args.parent_pid < 0:
        die(app_id, "--parent-pid must be >= 0, got %d" % args.parent_pid)
    parent.guard(app_id, args.parent_pid)
    if args.max_seconds < 0:
        die(app_id, "--max-seconds must be >= 0, got %r" % args.max_seconds)
    if not args.dsn.strip():
        die(app_id, "--dsn must not be empty")
    return args

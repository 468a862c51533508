"""Process lifetime helpers: every app must stop by itself.

* exit_after_shutdown(): POST /shutdown -> close the client (2 s max), flush
  the std streams, os._exit(0). os._exit skips the SDK's atexit hook, which
  would otherwise wait up to shutdown_timeout again for nothing.
* start_watchdogs(): a daemon thread that exits the process when its parent
  (the engine) is gone, and after --max-seconds if that was given. (gevent
  and eventlet apps use _common.realwatch instead: a REAL OS thread.)
* fail_after_init(): the one-line start-up failure once the SDK is live;
  fail_bind() its exit 1, and bind_loopback() (a socket on 127.0.0.1:PORT
  for a server that takes one) that fails with it.
* start_app(): the start of an app's main(): the log prefix, the contract's
  arguments, the variant's needs (exit 2), start_watchdogs().
* log_start(): the "starting: ..." line every app logs.
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading
import time

from _common import cli, sdk, variants
from _common.parent import watched as watched_parent
from _common.log import flush_std_streams, log, log_exception, one_line, set_prefix

_monotonic = getattr(time, "monotonic", time.time)


def exit_now(code, reason):
    log("exiting with code %d: %s" % (code, reason))
    flush_std_streams()
    os._exit(code)


def fail_after_init(app_id, message, code=2):
    """A start-up failure after sentry_sdk.init: close the client first (its
    debug lines come out now), then ONE line on stderr as the last line,
    then exit without the SDK's atexit hook (it would log after our line)."""
    try:
        sdk.close_client(timeout=2)
    except Exception:
        log_exception("client.close failed")
    log("start-up failure, exiting with code %d" % code)
    flush_std_streams()
    sys.stderr.write("%s: error: %s\n" % (app_id, " ".join(str(message).split())))
    flush_std_streams()
    os._exit(code)


def fail_bind(app_id, port, exc):
    """fail_after_init with the contract's exit 1: the port can't be bound."""
    fail_after_init(app_id, "cannot bind 127.0.0.1:%d: %s" % (port, one_line(exc)), 1)


def bind_loopback(app_id, port):
    """A socket bound to 127.0.0.1:PORT (SO_REUSEADDR; port 0 picks a free one), for a server
    that serves on a socket it is given; cannot bind: fail_bind (exit 1)."""
    import socket  # here: gevent/eventlet apps import this module after patching only

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except (OSError, socket.error) as exc:
        sock.close()
        fail_bind(app_id, port, exc)
    return sock


def start_app(app_id, names, argv=None, needs=None, routes=None):
    """The start of an app's main(): log as app_id, parse the contract's arguments (`names`:
    the app's variants; `routes`: its --route values, the first the default), exit 2 when the
    SDK lacks what the variant needs (`needs`: see variants.check_supported), then the watchdog
    thread (start_watchdogs, --max-seconds). -> args"""
    set_prefix(app_id)
    args = cli.parse_args(app_id, names, argv, routes=routes)
    variants.check_supported(app_id, args.variant, needs)
    start_watchdogs(args.max_seconds)
    return args


def log_start(args, libraries=(), settings=()):
    """starting: python X, sentry-sdk Y[, lib V...], variant=... [k=v...] units=..."""
    parts = ["python %s" % sys.version.split()[0], "sentry-sdk %s" % sdk.sdk_version()]
    parts += ["%s %s" % pair for pair in libraries]
    pairs = [("variant", args.variant)] + list(settings)
    pairs += [("units", args.units), ("children", args.children), ("barrier_timeout", args.barrier_timeout)]
    log("starting: %s, %s" % (", ".join(parts), " ".join("%s=%s" % pair for pair in pairs)))


def close_and_exit(reason="POST /shutdown"):
    try:
        sdk.close_client(timeout=2)
    except Exception:
        log_exception("client.close failed")
    exit_now(0, reason)


def exit_after_shutdown(delay=0.05):
    """Run close_and_exit on a separate thread after `delay` seconds, so the
    HTTP answer to /shutdown is written first."""

    def run():
        time.sleep(delay)
        close_and_exit()

    t = threading.Thread(target=run, name="app-shutdown")
    t.daemon = True
    t.start()


def start_watchdogs(max_seconds=0.0, poll=1.0):
    parent = watched_parent()
    started = _monotonic()

    def run():
        while True:
            time.sleep(poll)
            if os.getppid() != parent:
                exit_now(3, "parent process %d is gone" % parent)
            if max_seconds and _monotonic() - started > max_seconds:
                exit_now(0, "--max-seconds %s reached" % max_seconds)

    t = threading.Thread(target=run, name="app-watchdog")
    t.daemon = True
    t.start()

"""Reference app: one OS thread per request (threading HTTP server).

Models a classic WSGI-style threaded server: each HTTP request is handled on
its own thread, so the SDK's per-thread (or per-thread context) state is what
should keep units apart. Variant: plain (no workaround).

Valid Python 2.7 and 3.6-3.13; stdlib only. See apps/README.md for the
contract and apps/threads/README.md for how to run it by hand.
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading
import time

try:  # Python 3
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from socketserver import ThreadingMixIn
except ImportError:  # Python 2.7
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
    from SocketServer import ThreadingMixIn

try:
    from http.server import ThreadingHTTPServer as _StdThreadingHTTPServer  # 3.7+
except ImportError:
    _StdThreadingHTTPServer = None

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import cli  # noqa: E402
from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

APP_ID = "threads"
VARIANTS = ("plain",)

_monotonic = getattr(time, "monotonic", time.time)


class ConditionBarrier(object):
    """Cyclic N-party barrier built on threading.Condition (Python 2.7 has no
    threading.Barrier). wait(timeout) -> ("ok"|"timeout", seconds waited).
    A party that times out withdraws from the current generation."""

    def __init__(self, parties):
        self.parties = parties
        self._cond = threading.Condition()
        self._count = 0
        self._generation = 0

    def wait(self, timeout):
        start = _monotonic()
        with self._cond:
            generation = self._generation
            self._count += 1
            if self._count >= self.parties:
                self._count = 0
                self._generation += 1
                self._cond.notify_all()
                return "ok", _monotonic() - start
            deadline = start + timeout
            while self._generation == generation:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    self._count -= 1
                    return "timeout", _monotonic() - start
                self._cond.wait(remaining)
            return "ok", _monotonic() - start


class App(object):
    def __init__(self, args):
        self.args = args
        self.normal_barrier = ConditionBarrier(args.units)
        self.control_barrier = ConditionBarrier(args.units)

    def run_normal(self, i):
        args = self.args
        result = sdk.new_result(i, "normal", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_normal(i)
            with sdk.unit_transaction(name) as tx_name:
                result["transaction"] = tx_name
                with sdk.child_span(name + ".before") as opened:
                    if opened:
                        result["spans"].append(name + ".before")
                state, waited = self.normal_barrier.wait(args.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                for k in range(1, args.children + 1):
                    child = "%s.child-%d" % (name, k)
                    with sdk.child_span(child) as opened:
                        if opened:
                            result["spans"].append(child)
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)
        return result

    def run_control(self, i):
        args = self.args
        result = sdk.new_result(i, "control", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = self.control_barrier.wait(args.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)
        return result


def make_handler(app):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        server_version = "sentry-context-matrix-threads"

        def log_message(self, fmt, *fargs):
            log("http %s [%s] %s" % (self.address_string(), threading.current_thread().name, fmt % fargs))

        def _send(self, status, obj):
            body = httpjson.json_body(obj)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            try:
                self.wfile.flush()
            except Exception:
                pass

        def _discard_body(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length > 0:
                self.rfile.read(min(length, 1 << 20))

        def _handle(self, method):
            self._discard_body()
            r = httpjson.route(method, self.path, app.args.units)
            kind = r[0]
            if kind == "error":
                self._send(r[1], {"error": r[2]})
            elif kind == "facts":
                try:
                    self._send(200, facts_mod.facts(APP_ID, app.args.variant, app.args.units))
                except Exception as exc:
                    log_exception("facts failed")
                    self._send(500, {"error": one_line(exc)})
            elif kind == "flush":
                try:
                    sdk.flush(timeout=5)
                    self._send(200, {"flushed": True})
                except Exception as exc:
                    log_exception("flush failed")
                    self._send(500, {"flushed": False, "error": one_line(exc)})
            elif kind == "shutdown":
                self._send(200, {"shutting_down": True})
                lifecycle.exit_after_shutdown()
            elif kind == "unit":
                i, round_name = r[1], r[2]
                if round_name == "control":
                    result = app.run_control(i)
                else:
                    result = app.run_normal(i)
                self._send(500 if result["error"] else 200, result)

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return Handler


if _StdThreadingHTTPServer is not None:

    class Server(_StdThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

else:

    class Server(ThreadingMixIn, HTTPServer):
        daemon_threads = True
        request_queue_size = 128


def main(argv=None):
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    lifecycle.start_watchdogs(args.max_seconds)
    log(
        "starting: python %s, sentry-sdk %s, variant=%s units=%d children=%d barrier_timeout=%s"
        % (sys.version.split()[0], sdk.sdk_version(), args.variant, args.units, args.children, args.barrier_timeout)
    )
    try:
        sdk.init_sdk(args.dsn)
    except Exception as exc:  # e.g. BadDsn
        cli.die(APP_ID, "sentry_sdk.init failed: %s" % one_line(exc))
    app = App(args)
    try:
        server = Server(("127.0.0.1", args.port), make_handler(app))
    except Exception as exc:
        cli.die(APP_ID, "cannot bind 127.0.0.1:%d: %s" % (args.port, one_line(exc)), code=1)
    log("listening on http://127.0.0.1:%d/" % server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

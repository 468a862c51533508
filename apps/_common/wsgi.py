"""One WSGI callable for every WSGI-served app (gevent.pywsgi, eventlet.wsgi,
stdlib wsgiref), on top of service.Service.

    application(svc, run_unit, connection_close=True, log_requests=False)

run_unit(i, round_name) -> (status, result) runs in the server's request
thread/greenlet. `connection_close`: send "Connection: close" (wsgiref
forbids hop-by-hop headers; eventlet.wsgi adds it itself). POST /shutdown's
after() runs once start_response was called. Valid Python 2.7 and 3.6-3.13.
"""
from __future__ import absolute_import, print_function

from _common import httpjson
from _common.log import log, log_exception, one_line

MAX_BODY = 1 << 20


def application(svc, run_unit, connection_close=True, log_requests=False):
    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        target = environ.get("PATH_INFO", "/") or "/"
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        status, obj, after = 500, {"error": "not handled"}, None
        try:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > 0:  # body ignored
                environ["wsgi.input"].read(min(length, MAX_BODY))
            status, obj, after = svc.answer(method, target, run_unit)
        except Exception as exc:
            log_exception("request %s %s failed" % (method, target))
            status, obj = 500, {"error": one_line(exc)}
        body = httpjson.json_body(obj)
        if log_requests:
            log("http %s %s -> %s" % (method, target, status))
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if connection_close:
            headers.append(("Connection", "close"))
        start_response("%d %s" % (status, httpjson.REASONS.get(status, "Unknown")), headers)
        if after is not None:
            after()  # e.g. exit after /shutdown: on its own thread, after a short delay
        return [body]

    return app


class LogFile(object):
    """File-like sink for a server's access/error log -> our one-line log."""

    def __init__(self, prefix):
        self.prefix = prefix

    def write(self, data):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        for line in text.rstrip().splitlines():
            log("%s %s" % (self.prefix, line))

    def flush(self):
        pass

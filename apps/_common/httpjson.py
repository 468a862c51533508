"""Request routing and JSON HTTP responses shared by the apps.

Routes (see apps/README.md):
  GET  /facts
  GET  /unit/<i>?round=normal|control     (round defaults to normal)
  POST /flush
  POST /shutdown
"""
from __future__ import absolute_import, print_function

import json

try:
    from urllib.parse import parse_qs, urlsplit  # Python 3
except ImportError:  # Python 2.7
    from urlparse import parse_qs, urlsplit

ROUNDS = ("normal", "control")

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


def dumps(obj):
    return json.dumps(obj, sort_keys=True)


def json_body(obj):
    return (dumps(obj) + "\n").encode("utf-8")


def response_bytes(status, obj):
    """A complete HTTP/1.0 response with a JSON body and Connection: close."""
    body = json_body(obj)
    head = (
        "HTTP/1.0 %d %s\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: %d\r\n"
        "Connection: close\r\n"
        "\r\n" % (status, REASONS.get(status, "Unknown"), len(body))
    )
    return head.encode("ascii") + body


def route(method, target, units):
    """Map a request to one of:
      ("facts",) ("flush",) ("shutdown",) ("unit", i, round_name)
      ("error", http_status, message)
    """
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    query = parse_qs(parts.query)
    if path == "/facts":
        if method != "GET":
            return ("error", 405, "use GET /facts")
        return ("facts",)
    if path == "/flush":
        if method != "POST":
            return ("error", 405, "use POST /flush")
        return ("flush",)
    if path == "/shutdown":
        if method != "POST":
            return ("error", 405, "use POST /shutdown")
        return ("shutdown",)
    if path.startswith("/unit/"):
        if method != "GET":
            return ("error", 405, "use GET /unit/<i>")
        raw = path[len("/unit/"):]
        try:
            i = int(raw)
        except ValueError:
            return ("error", 404, "unit must be an integer, got %r" % raw)
        if not 1 <= i <= units:
            return ("error", 404, "unit %d out of range 1..%d" % (i, units))
        round_name = (query.get("round") or ["normal"])[0]
        if round_name not in ROUNDS:
            return ("error", 400, "round must be normal or control, got %r" % round_name)
        return ("unit", i, round_name)
    return ("error", 404, "no route for %s %s" % (method, path))

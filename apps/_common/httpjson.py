"""Request routing and JSON HTTP responses shared by the apps.

Routes (see apps/README.md):
  GET  /facts
  GET  /rss                               {"rss_kib": VmRSS}
  GET  /memory                            the memory probe (_common/memory.py)
  GET  /arrived                           {"normal": units at the normal barrier so far, "units": [i...]}
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


def parse_unit(raw, query, units, rounds=ROUNDS):
    """Unit `raw` with query string `query` (`round=`, default normal) ->
    ("unit", i, round_name) or ("error", http_status, message). Rounds other
    than normal/control (Channels' load) accept any i >= 1."""
    if isinstance(query, bytes) and not isinstance(query, str):  # Python 3 bytes
        query = query.decode("latin-1")
    round_name = (parse_qs(query or "").get("round") or ["normal"])[0]
    try:
        i = int(raw)
    except (TypeError, ValueError):
        return ("error", 404, "unit must be an integer, got %r" % (raw,))
    bounded = round_name in ROUNDS or round_name not in rounds
    if i < 1 or (bounded and i > units):
        return ("error", 404, "unit %d out of range 1..%d" % (i, units))
    if round_name not in rounds:
        allowed = "normal or control" if tuple(rounds) == ROUNDS else "one of " + "|".join(rounds)
        return ("error", 400, "round must be %s, got %r" % (allowed, round_name))
    return ("unit", i, round_name)


ADMIN = {"/facts": ("GET", "facts"), "/rss": ("GET", "rss"), "/flush": ("POST", "flush"),
         "/shutdown": ("POST", "shutdown"), "/memory": ("GET", "memory"),
         "/arrived": ("GET", "arrived")}


def route(method, target, units, rounds=ROUNDS):
    """Map a request to one of:
      ("facts",) ("rss",) ("memory",) ("arrived",) ("flush",) ("shutdown",) ("unit", i, round_name)
      ("error", http_status, message)
    """
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    if path in ADMIN:
        wanted, kind = ADMIN[path]
        if method != wanted:
            return ("error", 405, "use %s %s" % (wanted, path))
        return (kind,)
    if path.startswith("/unit/"):
        if method != "GET":
            return ("error", 405, "use GET /unit/<i>")
        return parse_unit(path[len("/unit/"):], parts.query, units, rounds)
    return ("error", 404, "no route for %s %s" % (method, path))

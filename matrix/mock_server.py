"""A real, loopback-only mock Sentry ingestion server.

SDKs under test get a DSN pointing here (``http://<key>@127.0.0.1:<port>/<project>``)
and post envelopes to ``/api/<project>/envelope/`` (or plain JSON events to
``/api/<project>/store/``).  Every accepted item is kept in memory, per project,
in arrival order, and can be read back through HTTP or the Python API.

HTTP API (all responses of errors are one line of ``text/plain``):

* ``POST /api/<pid>/envelope/`` - envelope body, optional ``Content-Encoding``
  (gzip, deflate, br); answers 200 ``{"id": <event_id or null>}``.
* ``POST /api/<pid>/store/`` - one JSON event (type "event" or "transaction").
* ``GET /api/<pid>/events/`` - ``{"project": pid, "items": [...]}``;
  ``DELETE`` the same path empties the project.
* ``GET /healthz`` - ``ok``; ``GET /stats`` - the counters of :meth:`MockSentryServer.stats`.

Rejections: 401 bad/missing key, 404 unknown path or project, 405 wrong
method, 411 no Content-Length, 413 too large (raw or decompressed), 415
unknown encoding, 400 anything malformed.

Run ``python -m matrix.mock_server --projects 2`` for manual use.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence
from urllib.parse import parse_qs, urlsplit

from matrix.envelope import (
    EnvelopeError,
    TooLarge,
    UnsupportedEncoding,
    decode_body,
    parse_envelope,
)

__all__ = ["MockSentryServer", "DEFAULT_MAX_BODY", "LOOPBACK", "main"]

log = logging.getLogger("matrix.mock_server")

#: The only address this server ever binds.
LOOPBACK = "127.0.0.1"
#: Default limit for request bodies, both as sent and after decompression.
DEFAULT_MAX_BODY = 20 * 1024 * 1024
#: Seconds an idle keep-alive connection (or a stalled body read) may block a handler thread.
CONNECTION_TIMEOUT = 30.0
#: Bounds on discarding an unwanted body after answering (so the client can read the answer).
DRAIN_TIMEOUT = 5.0
_IO_CHUNK = 64 * 1024

_INGEST_RE = re.compile(r"^/api/(\d{1,18})/(envelope|store)/?$")
_EVENTS_RE = re.compile(r"^/api/(\d{1,18})/events/?$")


# ---------------------------------------------------------------------------
# storage


@dataclass
class _Stats:
    """Cumulative counters; never reset by :meth:`MockSentryServer.reset`."""

    envelopes: int = 0
    items: int = 0
    envelopes_by_project: dict[int, int] = field(default_factory=dict)
    rejected_by_status: dict[int, int] = field(default_factory=dict)


class _Store:
    """Thread-safe per-project item lists guarded by one lock + condition."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._projects: dict[int, list[dict]] = {}
        self._next_project = 1
        self._version = 0  # bumped on every change, so waiters never miss one
        self._envelope_seq = 0
        self._stats = _Stats()

    def new_project(self) -> int:
        with self._cond:
            pid = self._next_project
            self._next_project += 1
            self._projects[pid] = []
            self._stats.envelopes_by_project[pid] = 0
            return pid

    def has_project(self, pid: int) -> bool:
        with self._cond:
            return pid in self._projects

    def add(self, pid: int, records: list[dict]) -> None:
        """Append all records of one accepted envelope atomically and wake waiters."""
        now = time.time()
        with self._cond:
            items = self._require(pid)
            self._envelope_seq += 1
            for record in records:
                record["received_at"] = now
                record["envelope_seq"] = self._envelope_seq
                items.append(record)
            self._stats.envelopes += 1
            self._stats.items += len(records)
            self._stats.envelopes_by_project[pid] += 1
            self._version += 1
            self._cond.notify_all()

    def reject(self, status: int) -> None:
        with self._cond:
            counts = self._stats.rejected_by_status
            counts[status] = counts.get(status, 0) + 1

    def items(self, pid: int) -> list[dict]:
        with self._cond:
            return [dict(r) for r in self._require(pid)]

    def reset(self, pid: int) -> None:
        with self._cond:
            self._require(pid).clear()
            self._version += 1
            self._cond.notify_all()

    def stats(self) -> dict:
        with self._cond:
            s = self._stats
            return {
                "envelopes_accepted": s.envelopes,
                "items_accepted": s.items,
                "envelopes_by_project": dict(s.envelopes_by_project),
                "rejected_by_status": dict(sorted(s.rejected_by_status.items())),
                "rejected_total": sum(s.rejected_by_status.values()),
            }

    def wait_for(self, pid: int, predicate: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
        """Block until ``predicate(items)`` holds or ``timeout`` passes; the predicate runs unlocked."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._cond:
                items = [dict(r) for r in self._require(pid)]
                seen = self._version
            if predicate(items):
                return items
            with self._cond:
                while self._version == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return items
                    self._cond.wait(remaining)

    def _require(self, pid: int) -> list[dict]:
        try:
            return self._projects[pid]
        except KeyError:
            raise ValueError(f"unknown project {pid}") from None


# ---------------------------------------------------------------------------
# HTTP


class _Reject(Exception):
    """Abort a request with a 4xx status and a one-line reason."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = " ".join(reason.split())
        self.headers = headers or {}


@dataclass
class _Response:
    """What a route produced: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> "_Response":
        return cls(status, json.dumps(value).encode(), "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> "_Response":
        return cls(status, (text + "\n").encode())


class _HTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server with daemon threads, a deep backlog and tracked connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, port: int, owner: "MockSentryServer") -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection so handler threads exit promptly."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %r", client_address, exc)
        else:
            log.error("unhandled error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the owning :class:`MockSentryServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "MockSentry/1"
    timeout = CONNECTION_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _HTTPServer

    # --- dispatch ---------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        self._body_read = False
        owner = self.server.owner
        try:
            response = owner._route(self)
        except _Reject as rej:
            response = _Response.text(rej.reason, rej.status)
            response.headers.update(rej.headers)
        except Exception:
            log.exception("internal error handling %s %s", self.command, self.path)
            response = _Response.text("internal error in mock server", 500)
            self.close_connection = True
        self._finish(response)

    # --- body handling ----------------------------------------------------

    def content_length(self) -> int | None:
        """The declared body length; None if absent.  Rejects malformed values with 400."""
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        if len(set(v.strip() for v in values)) != 1:
            self.close_connection = True
            raise _Reject(400, f"conflicting Content-Length headers {values!r}")
        raw = values[0].strip()
        if not raw.isdigit() or len(raw) > 18:
            self.close_connection = True
            raise _Reject(400, f"invalid Content-Length {raw[:40]!r}")
        return int(raw)

    def read_body(self, max_body: int) -> bytes:
        """Read exactly Content-Length bytes, enforcing 411/413 before reading anything."""
        te = self.headers.get("Transfer-Encoding")
        if te:
            self.close_connection = True
            if self.headers.get("Content-Length") is not None:
                raise _Reject(400, "Transfer-Encoding together with Content-Length is not allowed")
            raise _Reject(411, f"missing Content-Length (Transfer-Encoding {te[:40]!r} is not supported)")
        length = self.content_length()
        if length is None:
            raise _Reject(411, "missing Content-Length")
        if length > max_body:
            raise _Reject(413, f"body of {length} bytes is larger than the limit of {max_body} bytes")
        self._body_read = True
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError) as exc:
            self.close_connection = True
            raise _Reject(400, f"could not read body: {exc!r}") from None
        if len(body) != length:
            self.close_connection = True
            raise _Reject(400, f"truncated body: got {len(body)} of {length} bytes")
        return body

    def _has_unread_body(self) -> bool:
        if self._body_read:
            return False
        if self.headers.get("Transfer-Encoding"):
            return True
        values = self.headers.get_all("Content-Length") or []
        return any(v.strip() not in ("", "0") for v in values)

    def _discard_small_body(self) -> bool:
        """Read and drop a body we do not want, if it is small; True if the connection stays usable."""
        if self.headers.get("Transfer-Encoding"):
            return False
        try:
            length = self.content_length()
        except _Reject:
            return False
        if length is None or length > self.server.owner.max_body:
            return False
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_IO_CHUNK, remaining))
            if not chunk:
                return False
            remaining -= len(chunk)
        return True

    def _drain_after_response(self) -> None:
        """After answering, swallow (bounded) what the client still sends so it can read our answer."""
        try:
            length = self.content_length()
        except _Reject:
            length = None
        limit = self.server.owner.drain_limit if length is None else min(length, self.server.owner.drain_limit)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        try:
            self.connection.settimeout(0.5 if length is None else DRAIN_TIMEOUT)
            while limit > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(_IO_CHUNK, limit))
                if not chunk:
                    break
                limit -= len(chunk)
        except OSError:
            pass

    # --- responses --------------------------------------------------------

    def _finish(self, response: _Response) -> None:
        """Dispose of any unread body, then send ``response`` (closing the connection if needed)."""
        drain = False
        if self._has_unread_body():
            try:
                kept = self._discard_small_body()
            except OSError:
                kept = False
            if not kept:
                self.close_connection = True
                drain = True
        if response.status >= 400:
            self.server.owner._store.reject(response.status)
        self._send(response)
        if drain:
            self._drain_after_response()

    def _send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()
        except OSError as exc:
            self.close_connection = True
            log.debug("could not send response to %s: %r", self.client_address, exc)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised by the http.server machinery itself, as one-line plain text."""
        reason = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        try:
            self.server.owner._store.reject(code)
        except AttributeError:
            pass
        body = (" ".join(str(reason).split()) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    # --- logging ----------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), " ".join((format % args).split()))

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("error from %s: %s", self.address_string(), " ".join((format % args).split()))


# ---------------------------------------------------------------------------
# public server


class MockSentryServer:
    """A mock Sentry server on ``127.0.0.1`` that records every accepted item.

    Use as ``with MockSentryServer() as server:`` or call :meth:`start` /
    :meth:`stop`.  ``port`` 0 picks a free port; ``max_body`` bounds request
    bodies both as sent and after decompression.
    """

    def __init__(self, port: int = 0, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if max_body < 1:
            raise ValueError(f"max_body must be positive, got {max_body}")
        self.max_body = max_body
        #: how many bytes of an unwanted body are swallowed after a rejection
        self.drain_limit = max(256 * 1024 * 1024, 4 * max_body)
        self.public_key: str = secrets.token_hex(16)
        self._requested_port = port
        self._store = _Store()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._stopped = False

    # --- lifecycle --------------------------------------------------------

    def start(self) -> "MockSentryServer":
        """Bind 127.0.0.1 and serve in a background daemon thread."""
        with self._state_lock:
            if self._httpd is not None or self._thread is not None:
                raise RuntimeError("MockSentryServer can only be started once")
            self._httpd = _HTTPServer(self._requested_port, self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"mock-sentry-{self.port}",
                daemon=True,
            )
            self._thread.start()
        log.debug("mock sentry server listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, drop open connections and close the socket (idempotent, bounded)."""
        with self._state_lock:
            httpd, thread = self._httpd, self._thread
            if httpd is None or thread is None or self._stopped:
                return
            self._stopped = True
            httpd.shutdown()
            thread.join(timeout)
            httpd.close_connections()
            httpd.server_close()

    def __enter__(self) -> "MockSentryServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # --- addresses --------------------------------------------------------

    @property
    def server(self) -> _HTTPServer:
        """The underlying ``ThreadingHTTPServer`` (``server.server_address`` is the bound address)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd

    @property
    def server_address(self) -> tuple[str, int]:
        """The ``(host, port)`` the listening socket is bound to."""
        return self.server.server_address[:2]

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- projects and data ------------------------------------------------

    def new_project(self) -> int:
        """Allocate a fresh project id (1, 2, 3, ...); only issued ids accept data."""
        return self._store.new_project()

    def dsn(self, project_id: int) -> str:
        """The DSN an SDK should use to send to ``project_id``."""
        if not self._store.has_project(project_id):
            raise ValueError(f"unknown project {project_id}")
        return f"http://{self.public_key}@{LOOPBACK}:{self.port}/{project_id}"

    def items(self, project_id: int) -> list[dict]:
        """Stored items of a project in arrival order (fresh dicts; payloads are shared, treat read-only)."""
        return self._store.items(project_id)

    def reset(self, project_id: int) -> None:
        """Forget every item stored for ``project_id`` (counters in :meth:`stats` stay)."""
        self._store.reset(project_id)

    def stats(self) -> dict:
        """Cumulative counters: ``envelopes_accepted``, ``items_accepted``,
        ``envelopes_by_project`` {pid: n}, ``rejected_by_status`` {status: n}, ``rejected_total``."""
        return self._store.stats()

    def wait_for_items(
        self, project_id: int, predicate: Callable[[list[dict]], bool], timeout: float
    ) -> list[dict]:
        """Block until ``predicate(items)`` is true or ``timeout`` seconds pass; returns the items either way."""
        return self._store.wait_for(project_id, predicate, timeout)

    # --- routing (called from handler threads) ------------------------------

    def _route(self, req: _Handler) -> _Response:
        path = urlsplit(req.path).path
        if path == "/healthz":
            _allow(req, ("GET", "HEAD"))
            return _Response.text("ok")
        if path == "/stats":
            _allow(req, ("GET", "HEAD"))
            return _Response.json(self.stats())
        match = _INGEST_RE.match(path)
        if match:
            _allow(req, ("POST",))
            pid = self._known_project(match.group(1))
            self._check_auth(req)
            return self._ingest(req, pid, match.group(2))
        match = _EVENTS_RE.match(path)
        if match:
            _allow(req, ("GET", "HEAD", "DELETE"))
            pid = self._known_project(match.group(1))
            if req.command == "DELETE":
                self.reset(pid)
                return _Response.json({"project": pid, "reset": True})
            return _Response.json({"project": pid, "items": self.items(pid)})
        raise _Reject(404, f"unknown path {path[:80]!r}")

    def _known_project(self, raw: str) -> int:
        pid = int(raw)
        if not self._store.has_project(pid):
            raise _Reject(404, f"unknown project {pid}")
        return pid

    def _check_auth(self, req: _Handler) -> None:
        key = _auth_key(req.headers.get("X-Sentry-Auth"), req.path)
        if key is None:
            raise _Reject(401, "missing sentry_key")
        if not secrets.compare_digest(key.encode(), self.public_key.encode()):
            raise _Reject(401, f"wrong sentry_key {key[:64]!r}")

    def _ingest(self, req: _Handler, pid: int, endpoint: str) -> _Response:
        body = req.read_body(self.max_body)
        try:
            data = decode_body(body, req.headers.get("Content-Encoding"), self.max_body)
        except UnsupportedEncoding as exc:
            raise _Reject(415, exc.reason) from None
        except TooLarge as exc:
            raise _Reject(413, exc.reason) from None
        except EnvelopeError as exc:
            raise _Reject(400, exc.reason) from None
        if endpoint == "envelope":
            records, event_id = _records_from_envelope(data)
        else:
            records, event_id = _records_from_store(data)
        self._store.add(pid, records)
        return _Response.json({"id": event_id})


def _allow(req: _Handler, methods: Sequence[str]) -> None:
    if req.command not in methods:
        raise _Reject(405, f"method {req.command} not allowed here (allowed: {', '.join(methods)})",
                      {"Allow": ", ".join(methods)})


def _auth_key(header: str | None, raw_path: str) -> str | None:
    """The sentry_key from ``X-Sentry-Auth`` (preferred) or the ``sentry_key`` query parameter."""
    if header:
        key = _parse_auth_header(header).get("sentry_key")
        if key is not None:
            return key
    values = parse_qs(urlsplit(raw_path).query).get("sentry_key")
    return values[0] if values else None


def _parse_auth_header(header: str) -> dict[str, str]:
    """Parse ``Sentry sentry_key=abc, sentry_version=7, ...`` into a dict."""
    text = header.strip()
    if text[:6].lower() == "sentry" and (len(text) == 6 or text[6] in " \t"):
        text = text[6:]
    out: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if eq:
            out[name.strip().lower()] = value.strip().strip('"')
    return out


def _loads_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError:
        return None


def _records_from_envelope(data: bytes) -> tuple[list[dict], str | None]:
    """Parse an envelope body into storage records and the event id to answer with."""
    try:
        envelope = parse_envelope(data)
    except EnvelopeError as exc:
        raise _Reject(400, exc.reason) from None
    records = []
    event_id = envelope.headers.get("event_id")
    for item in envelope.items:
        payload = _loads_or_none(item.payload)
        if event_id is None and item.type in ("event", "transaction") and isinstance(payload, dict):
            event_id = payload.get("event_id")
        records.append(_record(item.type, item.headers, envelope.headers, payload, len(item.payload), "envelope"))
    return records, event_id if isinstance(event_id, str) else None


def _records_from_store(data: bytes) -> tuple[list[dict], str | None]:
    """Turn a legacy /store/ JSON event into one storage record."""
    try:
        event = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise _Reject(400, f"store body is not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise _Reject(400, f"store body must be a JSON object, got {type(event).__name__}")
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    envelope_headers = {"event_id": event_id} if event_id else {}
    record = _record(item_type, {"type": item_type, "length": len(data)}, envelope_headers, event, len(data), "store")
    return [record], event_id


def _record(item_type: str, headers: dict, envelope_headers: dict, payload: Any, size: int, endpoint: str) -> dict:
    """One stored item; ``received_at`` and ``envelope_seq`` are filled in by the store."""
    return {
        "type": item_type,
        "headers": headers,
        "envelope_headers": envelope_headers,
        "payload": payload,
        "size": size,
        "endpoint": endpoint,
        "received_at": None,
        "envelope_seq": None,
    }


# ---------------------------------------------------------------------------
# CLI


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"must be in 0..10000, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m matrix.mock_server",
        description="Run the loopback mock Sentry server in the foreground.",
    )
    p.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--projects", type=_count, default=1, help="how many project DSNs to create (default 1)")
    p.add_argument("--serve-seconds", type=_seconds, default=None, help="stop by itself after this many seconds")
    p.add_argument("--max-body", type=_count_bytes, default=DEFAULT_MAX_BODY, help="body size limit in bytes")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def _count_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: print the URL and DSNs, serve until Ctrl-C or --serve-seconds."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    try:
        server = MockSentryServer(args.port, max_body=args.max_body)
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {LOOPBACK}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(f"mock sentry server at {server.url}", flush=True)
        for _ in range(args.projects):
            pid = server.new_project()
            print(f"project {pid}: {server.dsn(pid)}", flush=True)
        _serve_until(args.serve_seconds)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        server.stop()
    stats = server.stats()
    print(f"stopped: {stats['envelopes_accepted']} envelopes accepted, {stats['rejected_total']} rejected", flush=True)
    return 0


def _serve_until(seconds: float | None) -> None:
    """Sleep in short steps for ``seconds`` (forever if None); Ctrl-C raises KeyboardInterrupt."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        remaining = 1.0 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 1.0))


if __name__ == "__main__":
    sys.exit(main())

"""The mock server's HTTP layer: a threaded loopback server and a strict handler.

Bodies come with an exact Content-Length (411/413 before anything is read) or chunked (the size limit is
checked at every chunk header while reading); unwanted bodies are drained within bounds so clients can
read the answer, and every error is one line of text/plain.
What a request means is decided by the owner (`MockSentryServer._route`); this layer only moves bytes.
"""
from __future__ import annotations

import json
import logging
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("matrix.mock_server")

#: The only address this server ever binds.
LOOPBACK = "127.0.0.1"
#: Seconds an idle keep-alive connection (or a stalled body read) may block a handler thread.
CONNECTION_TIMEOUT = 30.0
#: Bounds on discarding an unwanted body after answering (so the client can read the answer).
DRAIN_TIMEOUT = 5.0
_IO_CHUNK = 64 * 1024
#: Bounds on the lines of a chunked body (chunk sizes, trailers).
_MAX_CHUNK_LINE = 8 * 1024
_MAX_TRAILERS = 64
_HEX = frozenset(b"0123456789abcdefABCDEF")


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

    def __init__(self, port: int, owner: Any) -> None:  # the MockSentryServer that routes
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

    def read_body(self, max_body: int) -> bytearray:
        """Read the request body: exactly Content-Length bytes (411/413 before anything is read), or a
        chunked body (RFC 9112 section 7.1) whose size is checked after every chunk header, so a body over
        the limit gets its 413 as soon as it says so. The buffer grows as bytes arrive: a client that
        announces 20 MB and sends nothing costs nothing."""
        te_values = self.headers.get_all("Transfer-Encoding") or []
        if te_values:
            self.close_connection = True  # a rejected chunked body cannot be skipped: never reuse it
            if self.headers.get("Content-Length") is not None:
                raise _Reject(400, "Transfer-Encoding together with Content-Length is not allowed")
            codings = [c.strip().lower() for v in te_values for c in v.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise _Reject(400, f"unsupported Transfer-Encoding {', '.join(te_values)[:60]!r} (only chunked)")
            self._body_read = True
            try:
                body = self._read_chunked(max_body)
            except _Reject:
                self._body_read = False  # the rest is drained after the answer, so the client reads it
                raise
            self.close_connection = False  # the whole body was read: the connection stays usable
            return body
        length = self.content_length()
        if length is None:
            raise _Reject(411, "missing Content-Length (send one, or Transfer-Encoding: chunked)")
        if length > max_body:
            raise _Reject(413, f"body of {length} bytes is larger than the limit of {max_body} bytes")
        self._body_read = True
        body = bytearray()
        self._read_into(body, length, "body")
        return body

    def _read_into(self, body: bytearray, count: int, what: str) -> None:
        """Append exactly ``count`` bytes of the request to ``body``, at most _IO_CHUNK at a time."""
        remaining = count
        try:
            while remaining > 0:
                piece = self.rfile.read(min(_IO_CHUNK, remaining))
                if not piece:
                    break
                body += piece
                remaining -= len(piece)
        except (TimeoutError, OSError) as exc:
            self.close_connection = True
            raise _Reject(400, f"could not read {what}: {exc!r}") from None
        if remaining:
            self.close_connection = True
            raise _Reject(400, f"truncated {what}: got {count - remaining} of {count} bytes")

    def _read_line(self, what: str) -> bytes:
        try:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
        except (TimeoutError, OSError) as exc:
            raise _Reject(400, f"could not read {what}: {exc!r}") from None
        if len(line) > _MAX_CHUNK_LINE:
            raise _Reject(400, f"{what} longer than {_MAX_CHUNK_LINE} bytes")
        if not line.endswith(b"\n"):
            raise _Reject(400, f"truncated chunked body: the connection ended in a {what}")
        return line

    def _read_chunked(self, max_body: int) -> bytearray:
        body = bytearray()
        while True:
            line = self._read_line("chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or any(c not in _HEX for c in size_text):
                raise _Reject(400, f"invalid chunk size {line.strip()[:40].decode('latin-1')!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > max_body:
                raise _Reject(413, f"chunked body is larger than the limit of {max_body} bytes "
                                   f"({len(body)} bytes received, the next chunk announces {size})")
            self._read_into(body, size, "chunk")
            if self._read_line("chunk end") not in (b"\r\n", b"\n"):
                raise _Reject(400, "a chunk is longer than its size line says")
        for _ in range(_MAX_TRAILERS):  # trailer fields are read and ignored
            if self._read_line("trailer line") in (b"\r\n", b"\n"):
                return body
        raise _Reject(400, f"more than {_MAX_TRAILERS} trailer lines after a chunked body")

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

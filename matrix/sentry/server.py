"""A real, loopback-only mock Sentry ingestion server.

SDKs under test get a DSN pointing here (``http://<key>@127.0.0.1:<port>/<project>``)
and post envelopes to ``/api/<project>/envelope/`` (or plain JSON events to
``/api/<project>/store/``).  Every accepted item is kept in memory, per project,
in arrival order, and can be read back through HTTP or the Python API.

HTTP API (all responses of errors are one line of ``text/plain``):

* ``POST /api/<pid>/envelope/`` - envelope body, optional ``Content-Encoding``
  (gzip, deflate, br), Content-Length or chunked; answers 200 ``{"id": <event_id or null>}``.
* ``POST /api/<pid>/store/`` - one JSON event (type "event" or "transaction"; plain, or base64 / base64
  zlib as old clients send it), or a whole envelope when ``Content-Type: application/x-sentry-envelope``.
* ``GET /api/<pid>/events/`` - ``{"project": pid, "items": [...]}``; a payload that is not JSON (and every
  attachment) also comes as ``payload_base64``; ``DELETE`` the same path empties the project.
* ``GET /healthz`` - ``ok``; ``GET /stats`` - the counters of :meth:`MockSentryServer.stats`.

The key is read wherever Relay reads it (``auth.py``: X-Sentry-Auth, ``Authorization: Sentry``/``Basic``,
the query string, else the ``dsn`` of the envelope header); an envelope whose ``dsn`` names another
project than the URL is a 400, as in Relay.

Rejections: 401 bad/missing key, 404 unknown path or project, 405 wrong
method, 411 no Content-Length, 413 too large (raw or decompressed), 415
unknown encoding, 503 too many decompressions at once (after a brief wait), 400 anything malformed.

Memory stays bounded: a body is buffered as it arrives (never more than ``max_body``), decompression
streams into one buffer whose size is checked after every 64 KiB, and a request whose decompressed body
grows past 256 KiB needs one of ``max_decompressions`` slots (kept until it is parsed and stored); the
others wait up to ``decompress_wait`` seconds, then get a 503. Small envelopes, the SDKs' own, never wait.

Run ``python -m matrix.sentry --projects 2`` for manual use.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from .auth import AuthError, Credentials, parse_dsn, request_credentials
from .envelope import (EnvelopeError, TooLarge, UnsupportedEncoding, content_codings, decode_codings,
                       decode_store_body, needs_inflating_store_body, parse_envelope, parse_first_header)
from .httpd import LOOPBACK, _Handler, _HTTPServer, _Reject, _Response
from .memory import keep_large_buffers_unmappable
from .store import _Store

__all__ = ["MockSentryServer", "DEFAULT_MAX_BODY", "LOOPBACK"]

log = logging.getLogger("matrix.mock_server")

#: Default limit for request bodies, both as sent and after decompression.
DEFAULT_MAX_BODY = 20 * 1024 * 1024
#: Decompressions that may run at once (each may hold up to max_body of output), and how long a request
#: waits for one before it gets a 503.
DEFAULT_MAX_DECOMPRESSIONS = 4
DEFAULT_DECOMPRESS_WAIT = 10.0
#: The envelope media type (relay-server/src/envelope/content_type.rs); /store/ takes an envelope with it.
ENVELOPE_CONTENT_TYPE = "application/x-sentry-envelope"

_INGEST_RE = re.compile(r"^/api/(\d{1,18})/(envelope|store)/?$")
_EVENTS_RE = re.compile(r"^/api/(\d{1,18})/events/?$")


class MockSentryServer:
    """A mock Sentry server on ``127.0.0.1`` that records every accepted item.

    Use as ``with MockSentryServer() as server:`` or call :meth:`start` /
    :meth:`stop`.  ``port`` 0 picks a free port; ``max_body`` bounds request
    bodies both as sent and after decompression.
    """

    def __init__(self, port: int = 0, *, max_body: int = DEFAULT_MAX_BODY,
                 max_decompressions: int = DEFAULT_MAX_DECOMPRESSIONS,
                 decompress_wait: float = DEFAULT_DECOMPRESS_WAIT) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if max_body < 1:
            raise ValueError(f"max_body must be positive, got {max_body}")
        if max_decompressions < 1:
            raise ValueError(f"max_decompressions must be positive, got {max_decompressions}")
        if not decompress_wait >= 0:
            raise ValueError(f"decompress_wait must be >= 0, got {decompress_wait}")
        self.max_body = max_body
        self.max_decompressions = max_decompressions
        self.decompress_wait = decompress_wait
        self._decompressions = threading.BoundedSemaphore(max_decompressions)
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
        keep_large_buffers_unmappable()
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
        """Stop serving, drop open connections and close the socket (idempotent, bounded); whoever waits
        for items gets what arrived."""
        self._store.close()
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
        self, project_id: int, predicate: Callable[[list[dict]], bool], timeout: float,
        settle: float | None = None,
    ) -> list[dict]:
        """Block until ``predicate(items)`` is true or ``timeout`` seconds pass (or, with ``settle``, the
        project received nothing for that long); returns the items either way."""
        return self._store.wait_for(project_id, predicate, timeout, settle)

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
            return self._ingest(req, pid, match.group(2))
        match = _EVENTS_RE.match(path)
        if match:
            _allow(req, ("GET", "HEAD", "DELETE"))
            pid = self._known_project(match.group(1))
            return _Response.json(self._store.read_api(pid, reset=req.command == "DELETE"))
        raise _Reject(404, f"unknown path {path[:80]!r}")

    def _known_project(self, raw: str) -> int:
        pid = int(raw)
        if not self._store.has_project(pid):
            raise _Reject(404, f"unknown project {pid}")
        return pid

    def _check_key(self, key: str, where: str) -> None:
        if not secrets.compare_digest(key.encode(), self.public_key.encode()):
            raise _Reject(401, f"wrong sentry_key {key[:64]!r} (from the {where})")

    def _ingest(self, req: _Handler, pid: int, endpoint: str) -> _Response:
        # Who sends: from the request if it says (checked before the body is read), else -- envelopes
        # only -- from the dsn of the envelope header (relay-server/src/endpoints/envelope.rs).
        try:
            creds: Credentials | None = request_credentials(req.headers, req.path)
        except AuthError as exc:
            raise _Reject(exc.status, exc.reason) from None
        if creds is not None:
            self._check_key(creds.key, creds.source)
        elif endpoint != "envelope":
            raise _Reject(401, "missing authorization information: no X-Sentry-Auth or Authorization header "
                               "and no sentry_key in the query string")
        try:
            codings = content_codings(req.headers.get("Content-Encoding"))
        except UnsupportedEncoding as exc:
            raise _Reject(415, exc.reason) from None
        body = req.read_body(self.max_body)
        # a slot is taken only if the output grows large, and kept while that output is parsed and stored
        slot = _DecompressionSlot(self)
        try:
            try:
                data = decode_codings(body, codings, self.max_body, slot.take) if codings else body
                del body
                if not data:
                    raise _Reject(400, "empty request body")
                content_type = (req.headers.get("Content-Type") or "").strip()
                envelope_body = endpoint == "envelope" or content_type == ENVELOPE_CONTENT_TYPE
                if not envelope_body and needs_inflating_store_body(data):
                    data = decode_store_body(data, self.max_body, slot.take)
            except TooLarge as exc:
                raise _Reject(413, exc.reason) from None
            except EnvelopeError as exc:
                raise _Reject(400, exc.reason) from None
            if envelope_body:
                if creds is None:
                    self._authenticate_by_dsn(data, pid)
                records, event_id = _records_from_envelope(data, pid, self.public_key, endpoint)
            else:
                records, event_id = _records_from_store(data)
        finally:
            slot.release()
        self._store.add(pid, records)
        return _Response.json({"id": event_id})

    def _authenticate_by_dsn(self, data: Any, pid: int) -> None:
        """No key in the request: the first line of the envelope must carry a ``dsn`` with ours."""
        try:
            header = parse_first_header(data)
            if "dsn" not in header:
                raise EnvelopeError("it has no dsn")
            dsn = parse_dsn(header["dsn"])
        except ValueError as exc:  # EnvelopeError is a ValueError too
            reason = exc.reason if isinstance(exc, EnvelopeError) else str(exc)
            raise _Reject(401, "missing authorization information: no X-Sentry-Auth or Authorization header, "
                               f"no sentry_key in the query string, and the envelope header gives no dsn ({reason})"
                          ) from None
        self._check_key(dsn.public_key, "envelope header dsn")
        _check_dsn_project(dsn.project_id, pid)


class _DecompressionSlot:
    """One of the server's ``max_decompressions`` slots, taken when a decompression's output grows past
    ``body.LARGE_OUTPUT`` (small envelopes never wait): waits up to ``decompress_wait`` seconds, then
    answers 503. Released once the request is done with the output (decoded, parsed, turned into records)."""

    def __init__(self, server: "MockSentryServer") -> None:
        self.server = server
        self.held = False

    def take(self) -> None:
        srv = self.server
        if not srv._decompressions.acquire(timeout=srv.decompress_wait):
            raise _Reject(503, f"busy: {srv.max_decompressions} large decompressions are running and none "
                               f"finished within {srv.decompress_wait:g}s; retry later", {"Retry-After": "1"})
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.server._decompressions.release()


def _check_dsn_project(dsn_project: int, pid: int) -> None:
    if dsn_project != pid:
        raise _Reject(400, f"project id header mismatch between envelope and request: the envelope's dsn "
                           f"names project {dsn_project}, the URL project {pid}")


def _allow(req: _Handler, methods: Sequence[str]) -> None:
    if req.command not in methods:
        raise _Reject(405, f"method {req.command} not allowed here (allowed: {', '.join(methods)})",
                      {"Allow": ", ".join(methods)})


def _loads_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError:
        return None


def _records_from_envelope(data: Any, pid: int, key: str, endpoint: str) -> tuple[list[dict], str | None]:
    """Parse an envelope body into storage records and the event id to answer with."""
    try:
        envelope = parse_envelope(data)
    except EnvelopeError as exc:
        raise _Reject(400, exc.reason) from None
    if "dsn" in envelope.headers:  # relay-server/src/envelope/mod.rs EnvelopeHeaders::complete
        try:
            dsn = parse_dsn(envelope.headers["dsn"])
        except ValueError as exc:
            raise _Reject(400, f"invalid envelope header: {exc}") from None
        _check_dsn_project(dsn.project_id, pid)
        if dsn.public_key != key:
            raise _Reject(400, f"public key header mismatch between envelope and request: the envelope's dsn "
                               f"has key {dsn.public_key[:64]!r}, the request another")
    records = []
    event_id = envelope.headers.get("event_id")
    for item in envelope.items:
        payload = _loads_or_none(item.payload)
        if event_id is None and item.type in ("event", "transaction") and isinstance(payload, dict):
            event_id = payload.get("event_id")
        raw = item.payload if (payload is None or item.type == "attachment") else None
        records.append(_record(item.type, item.headers, envelope.headers, payload, len(item.payload), endpoint,
                               raw))
    return records, event_id if isinstance(event_id, str) else None


def _records_from_store(data: Any) -> tuple[list[dict], str | None]:
    """Turn a legacy /store/ JSON event into one storage record."""
    try:
        event = json.loads(bytes(data).decode("utf-8"))
    except ValueError as exc:
        raise _Reject(400, f"store body is not valid JSON ({exc})") from None
    if not isinstance(event, dict):
        raise _Reject(400, f"store body must be a JSON object, got {type(event).__name__}")
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    envelope_headers = {"event_id": event_id} if event_id else {}
    record = _record(item_type, {"type": item_type, "length": len(data)}, envelope_headers, event, len(data), "store")
    return [record], event_id


def _record(item_type: str, headers: dict, envelope_headers: dict, payload: Any, size: int, endpoint: str,
            raw: bytes | None = None) -> dict:
    """One stored item; ``received_at`` and ``envelope_seq`` are filled in by the store. ``payload_base64``
    carries the bytes of a payload that is not JSON, and of every attachment."""
    record = {
        "type": item_type,
        "headers": headers,
        "envelope_headers": envelope_headers,
        "payload": payload,
        "size": size,
        "endpoint": endpoint,
        "received_at": None,
        "envelope_seq": None,
    }
    if raw is not None:
        record["payload_base64"] = base64.b64encode(raw).decode("ascii")
    return record

"""HTTP helpers for the mock server's tests: plain http.client and raw sockets against the real server."""
from __future__ import annotations

import http.client
import json
import socket
import uuid
from typing import Any

from matrix.sentry.server import MockSentryServer

try:
    import sentry_sdk.envelope as sdk_envelope
except ImportError:  # the harness host may not have the SDK; hand-built envelopes still run
    sdk_envelope = None

TIMEOUT = 10.0


def request(
    server: MockSentryServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, resp
    finally:
        if own:
            conn.close()


def auth(server: MockSentryServer, key: str | None = None) -> dict[str, str]:
    key = server.public_key if key is None else key
    return {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=test/1.0"}


def post_envelope(server: MockSentryServer, pid: int, body: bytes, encoding: str | None = None,
                  headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, bytes, Any]:
    hdrs = {"Content-Type": "application/x-sentry-envelope", **auth(server), **(headers or {})}
    if encoding:
        hdrs["Content-Encoding"] = encoding
    return request(server, "POST", f"/api/{pid}/envelope/", body, hdrs, **kw)


def events(server: MockSentryServer, pid: int) -> dict:
    status, data, _ = request(server, "GET", f"/api/{pid}/events/")
    assert status == 200, data
    return json.loads(data)


def make_envelope(message: str = "hello") -> tuple[bytes, str, list[tuple[str, Any]]]:
    """An envelope with an event, a text attachment with newlines and an empty attachment.

    Built by the real SDK when importable.  Returns (bytes, event_id, [(type, parsed payload)]).
    """
    event_id = uuid.uuid4().hex
    event = {"event_id": event_id, "message": message, "level": "info", "tags": {"unit": message}}
    if sdk_envelope is not None:
        env = sdk_envelope.Envelope(headers={"event_id": event_id, "sent_at": "2024-01-01T00:00:00Z"})
        env.add_event(event)
        env.add_item(sdk_envelope.Item(payload=sdk_envelope.PayloadRef(bytes=b"line1\nline2"),
                                       type="attachment", filename="a.txt"))
        env.add_item(sdk_envelope.Item(payload=sdk_envelope.PayloadRef(bytes=b""), type="attachment"))
        raw = env.serialize()
    else:
        ev = json.dumps(event).encode()
        raw = b"".join([
            json.dumps({"event_id": event_id}).encode(), b"\n",
            json.dumps({"type": "event", "length": len(ev)}).encode(), b"\n", ev, b"\n",
            b'{"type":"attachment","filename":"a.txt","length":11}\nline1\nline2\n',
            b'{"type":"attachment","length":0}\n\n',
        ])
    return raw, event_id, [("event", event), ("attachment", None), ("attachment", None)]


def minimal_envelope() -> bytes:
    return b'{}\n{"type":"event"}\n{"message":"ok"}\n'


def assert_still_serving(server: MockSentryServer) -> None:
    p = server.new_project()
    status, data, _ = post_envelope(server, p, minimal_envelope())
    assert status == 200, data
    assert len(server.items(p)) == 1


def raw_exchange(server: MockSentryServer, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes on a fresh socket and read the answer until the server closes or 2s pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        sock.settimeout(2.0)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    header, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                    for line in header.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            if len(rest) >= int(line.split(b":")[1]):
                                return b"".join(chunks)
        except socket.timeout:
            pass
        return b"".join(chunks)

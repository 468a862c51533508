"""What Relay accepts, the mock server accepts; where Relay is strict, so is the mock. Over real HTTP.

Each rule names the Relay source it comes from (getsentry/relay):
auth: relay-server/src/extractors/request_meta.rs (auth_from_parts), relay-common auth.rs (Auth::from_str);
dsn in the envelope header: relay-server/src/endpoints/envelope.rs, relay-server/src/envelope/mod.rs
(EnvelopeHeaders::complete); parsing: relay-server/src/envelope/mod.rs + item.rs; /store/ with an envelope
and legacy bodies: relay-server/src/endpoints/store.rs; ignored Content-Encoding values:
relay-server/src/middlewares/decompression.rs.
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import re
import socket
import time
import uuid
import zlib
from typing import Any

import pytest

from matrix.sentry.server import MockSentryServer
from matrix.sentry.tests.helpers import TIMEOUT, assert_still_serving, auth, events, minimal_envelope, request


def envelope_with(headers: dict, *items: tuple[dict, bytes]) -> bytes:
    out = [json.dumps(headers).encode(), b"\n"]
    for item_headers, payload in items:
        out += [json.dumps(item_headers).encode(), b"\n", payload, b"\n"]
    return b"".join(out)


def event_item(message: str = "ok") -> tuple[dict, bytes]:
    payload = json.dumps({"event_id": uuid.uuid4().hex, "message": message}).encode()
    return {"type": "event", "length": len(payload)}, payload


def post(server: MockSentryServer, pid: int, body: bytes, headers: dict[str, str] | None = None,
         endpoint: str = "envelope", query: str = "") -> tuple[int, str]:
    status, data, _ = request(server, "POST", f"/api/{pid}/{endpoint}/{query}", body, headers or {})
    text = data.decode()
    assert status == 200 or (text.endswith("\n") and text.count("\n") == 1), text
    return status, text.strip()


# ---------------------------------------------------------------------------
# auth: every place Relay reads the key from


def test_authorization_sentry_header(server: MockSentryServer, pid: int) -> None:
    status, text = post(server, pid, minimal_envelope(),
                        {"Authorization": f"Sentry sentry_key={server.public_key}, sentry_version=7"})
    assert status == 200, text
    assert len(server.items(pid)) == 1


def test_authorization_basic(server: MockSentryServer, pid: int) -> None:
    token = base64.b64encode(f"{server.public_key}:".encode()).decode()
    status, text = post(server, pid, minimal_envelope(), {"Authorization": f"Basic {token}"})
    assert status == 200, text
    token = base64.b64encode(b"0123456789abcdef0123456789abcdef:").decode()
    status, text = post(server, pid, minimal_envelope(), {"Authorization": f"Basic {token}"})
    assert (status, text) == (401, "wrong sentry_key '0123456789abcdef0123456789abcdef' "
                                   "(from the Authorization: Basic header)")


def test_key_only_in_the_envelope_dsn(server: MockSentryServer, pid: int) -> None:
    """SDK tunnels forward the envelope without auth headers; the key is the dsn's user name."""
    body = envelope_with({"event_id": uuid.uuid4().hex, "dsn": server.dsn(pid)}, event_item("tunnelled"))
    status, text = post(server, pid, body, {"Content-Type": "application/x-sentry-envelope"})
    assert status == 200, text
    (item,) = server.items(pid)
    assert item["payload"]["message"] == "tunnelled"
    assert item["envelope_headers"]["dsn"] == server.dsn(pid)
    # gzip-compressed and chunked, as a tunnel may forward it
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("POST", f"/api/{pid}/envelope/", body=iter([gzip.compress(body)]),
                     headers={"Content-Encoding": "gzip"}, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
    finally:
        conn.close()
    assert len(server.items(pid)) == 2


@pytest.mark.parametrize("dsn, status, needle", [
    ("http://0123456789abcdef0123456789abcdef@127.0.0.1:1/{pid}", 401,
     "wrong sentry_key '0123456789abcdef0123456789abcdef' (from the envelope header dsn)"),
    ("http://{key}@127.0.0.1:1/{other}", 400,
     "project id header mismatch between envelope and request: the envelope's dsn names project {other}, "
     "the URL project {pid}"),
    ("not a dsn", 401, "missing authorization information"),
    ("http://127.0.0.1:1/{pid}", 401, "has no public key"),
    (None, 401, "the envelope header gives no dsn (it has no dsn)"),
])
def test_dsn_only_rejections(server: MockSentryServer, pid: int, dsn: str | None, status: int, needle: str) -> None:
    other = pid + 1000
    headers: dict[str, Any] = {"event_id": uuid.uuid4().hex}
    if dsn is not None:
        headers["dsn"] = dsn.format(key=server.public_key, pid=pid, other=other)
    got, text = post(server, pid, envelope_with(headers, event_item()))
    assert got == status, text
    assert needle.format(other=other, pid=pid) in text
    assert server.items(pid) == []


def test_dsn_of_another_project_is_400_even_with_a_valid_header(server: MockSentryServer, pid: int) -> None:
    """The issue's case: an envelope whose dsn names project 2, posted to project 1's URL with a good key."""
    other = server.new_project()
    body = envelope_with({"event_id": uuid.uuid4().hex, "dsn": server.dsn(other)}, event_item())
    status, text = post(server, pid, body, auth(server))
    assert status == 400, text
    assert text == (f"project id header mismatch between envelope and request: the envelope's dsn names "
                    f"project {other}, the URL project {pid}")
    assert server.items(pid) == [] and server.items(other) == []
    # the same on /store/ with the envelope content type
    status, text = post(server, pid, body, {"Content-Type": "application/x-sentry-envelope", **auth(server)},
                        endpoint="store")
    assert status == 400 and "project id header mismatch" in text
    # a dsn with another key, same project: Relay's "public key header mismatch"
    dsn = server.dsn(pid).replace(server.public_key, "f" * 32)
    status, text = post(server, pid, envelope_with({"dsn": dsn}, event_item()), auth(server))
    assert status == 400 and text.startswith("public key header mismatch between envelope and request"), text
    status, text = post(server, pid, envelope_with({"dsn": 42}, event_item()), auth(server))
    assert (status, text) == (400, "invalid envelope header: dsn must be a string, got int")
    # the matching dsn next to a header is fine
    status, text = post(server, pid, envelope_with({"dsn": server.dsn(pid)}, event_item()), auth(server))
    assert status == 200, text
    assert len(server.items(pid)) == 1


def test_auth_from_two_places_is_401(server: MockSentryServer, pid: int) -> None:
    status, text = post(server, pid, minimal_envelope(), auth(server), query=f"?sentry_key={server.public_key}")
    assert status == 401 and text.startswith("multiple authorization payloads detected (X-Sentry-Auth header "
                                             "and query string)"), text
    status, text = post(server, pid, minimal_envelope(),
                        {**auth(server), "Authorization": f"Sentry sentry_key={server.public_key}"})
    assert status == 401 and "multiple authorization payloads" in text
    # Relay counts any sentry_ parameter in the query string as auth
    status, text = post(server, pid, minimal_envelope(), auth(server), query="?sentry_version=7")
    assert status == 401 and "multiple authorization payloads" in text


@pytest.mark.parametrize("header, status, needle", [
    ("Sentry sentry_version=7", 401, "bad X-Sentry-Auth header: missing public key (sentry_key)"),
    ("Sentry sentry_key={key}, sentry_version=seven", 401, "invalid value for sentry_version 'seven'"),
    ("Sentry sentry_key={key}, sentry_version=8", 400, "unsupported protocol version (8)"),
    ('Sentry sentry_key="{key}"', 401, "wrong sentry_key"),  # Relay does not unquote
])
def test_bad_auth_values(server: MockSentryServer, pid: int, header: str, status: int, needle: str) -> None:
    got, text = post(server, pid, minimal_envelope(), {"X-Sentry-Auth": header.format(key=server.public_key)})
    assert got == status, text
    assert needle in text


def test_store_reads_no_dsn(server: MockSentryServer, pid: int) -> None:
    """Relay's /store/ needs request auth; only the envelope endpoint falls back to the envelope's dsn."""
    body = envelope_with({"dsn": server.dsn(pid)}, event_item())
    status, text = post(server, pid, body, {"Content-Type": "application/x-sentry-envelope"}, endpoint="store")
    assert status == 401 and text.startswith("missing authorization information"), text


# ---------------------------------------------------------------------------
# envelopes


def test_blank_lines_between_items(server: MockSentryServer, pid: int) -> None:
    head, payload = event_item("blank lines")
    body = (b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n\n'
            + json.dumps(head).encode() + b"\n" + payload + b"\n\n\r\n \n"
            + b'{"type":"attachment","length":3}\nabc\n'
            + b'\n{"type":"attachment"}\nxyz\n')
    status, text = post(server, pid, body, auth(server))
    assert status == 200, text
    items = events(server, pid)["items"]
    assert [i["type"] for i in items] == ["event", "attachment", "attachment"]
    assert items[0]["payload"]["message"] == "blank lines"
    assert [base64.b64decode(i["payload_base64"]) for i in items[1:]] == [b"abc", b"xyz"]
    # ... but not at the end, where Relay expects another item
    status, text = post(server, pid, body + b"\n", auth(server))
    assert status == 400 and "item 4: unexpected end of envelope" in text


def test_envelope_posted_to_store(server: MockSentryServer, pid: int) -> None:
    event_id = uuid.uuid4().hex
    body = envelope_with({"event_id": event_id}, event_item("via store"),
                         ({"type": "attachment", "length": 2, "filename": "x.bin"}, b"\x00\xff"))
    for encoding in (None, "gzip"):
        headers = {"Content-Type": "application/x-sentry-envelope", **auth(server)}
        data = body
        if encoding:
            headers["Content-Encoding"] = encoding
            data = gzip.compress(body)
        status, text = post(server, pid, data, headers, endpoint="store")
        assert status == 200, text
        assert json.loads(text) == {"id": event_id}
    items = server.items(pid)
    assert [(i["type"], i["endpoint"]) for i in items] == [("event", "store"), ("attachment", "store")] * 2
    assert items[0]["payload"]["message"] == "via store"
    # without the envelope content type, /store/ wants one JSON event
    status, text = post(server, pid, body, {"Content-Type": "application/json", **auth(server)}, endpoint="store")
    assert status == 400 and "store body is not valid JSON" in text


def test_store_legacy_base64_and_zlib_bodies(server: MockSentryServer, pid: int) -> None:
    event = {"event_id": uuid.uuid4().hex, "message": "raven"}
    raw = json.dumps(event).encode()
    for body in (base64.b64encode(raw), base64.b64encode(zlib.compress(raw))):
        status, text = post(server, pid, body, auth(server), endpoint="store")
        assert status == 200, text
    assert [i["payload"] for i in server.items(pid)] == [event, event]
    status, text = post(server, pid, b"not base64 at all!", auth(server), endpoint="store")
    assert status == 400 and "neither JSON nor base64" in text
    bomb = base64.b64encode(zlib.compress(b" " * (server.max_body + 1)))
    status, text = post(server, pid, bomb, auth(server), endpoint="store")
    assert status == 413 and "decompresses to more than the limit" in text


@pytest.mark.parametrize("value", ["", "UTF-8", "utf-8"])
def test_ignored_content_encodings(server: MockSentryServer, pid: int, value: str) -> None:
    status, text = post(server, pid, minimal_envelope(), {"Content-Encoding": value, **auth(server)})
    assert status == 200, text


def test_empty_body(server: MockSentryServer, pid: int) -> None:
    assert post(server, pid, b"", auth(server)) == (400, "empty request body")
    assert post(server, pid, gzip.compress(b""), {"Content-Encoding": "gzip", **auth(server)}) == \
        (400, "empty request body")


# ---------------------------------------------------------------------------
# chunked transfer encoding, with the size cap applied while reading


def test_chunked_bodies_accepted(server: MockSentryServer, pid: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        body = envelope_with({}, event_item("chunked"))
        for chunks, encoding in (([body[:7], body[7:20], body[20:]], None),
                                 ([gzip.compress(body)], "gzip")):
            headers = {**auth(server), **({"Content-Encoding": encoding} if encoding else {})}
            conn.request("POST", f"/api/{pid}/envelope/", body=iter(chunks), headers=headers, encode_chunked=True)
            resp = conn.getresponse()  # the same keep-alive connection serves both
            assert resp.status == 200, resp.read()
            resp.read()
    finally:
        conn.close()
    assert [i["payload"]["message"] for i in server.items(pid)] == ["chunked", "chunked"]


def raw_post(port: int, head: bytes, parts: list[bytes], read_after: int | None = None) -> bytes:
    """Send head and parts on one socket; read the answer (after part `read_after`, or after all)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        for i, part in enumerate(parts):
            sock.sendall(part)
            if read_after is not None and i == read_after:
                break
        sock.settimeout(5)
        answer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
                head_end = answer.find(b"\r\n\r\n")
                if head_end >= 0:
                    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", answer[:head_end + 2])
                    if m and len(answer) >= head_end + 4 + int(m.group(1)):
                        break
        except socket.timeout:
            pass
        return answer


def chunked_head(server: MockSentryServer, pid: int) -> bytes:
    return (f"POST /api/{pid}/envelope/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"X-Sentry-Auth: Sentry sentry_key={server.public_key}\r\n\r\n").encode()


def test_chunked_body_over_the_limit_is_413_while_reading() -> None:
    with MockSentryServer(max_body=1000) as srv:
        pid = srv.new_project()
        head = chunked_head(srv, pid)
        piece = b"x" * 600
        start = time.monotonic()
        # the second chunk's size line already says it is too much: the answer comes before its data is sent
        answer = raw_post(srv.port, head, [b"258\r\n" + piece + b"\r\n", b"258\r\n", piece + b"\r\n0\r\n\r\n"],
                          read_after=1)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"chunked body is larger than the limit of 1000 bytes (600 bytes received, the next chunk " \
               b"announces 600)" in answer
        assert b"Connection: close" in answer
        assert time.monotonic() - start < 3
        assert srv.items(pid) == []
        assert srv.stats()["rejected_by_status"] == {413: 1}
        assert_still_serving(srv)


@pytest.mark.parametrize("parts, needle", [
    ([b"zz\r\n"], b"invalid chunk size 'zz'"),
    ([b"5\r\nabc"], b"truncated chunk"),
    ([b"3\r\nabcdef\r\n0\r\n\r\n"], b"a chunk is longer than its size line says"),
])
def test_malformed_chunked_bodies(server: MockSentryServer, pid: int, parts: list[bytes], needle: bytes) -> None:
    if needle == b"truncated chunk":  # the client closes its side mid-chunk
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(chunked_head(server, pid) + parts[0])
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    else:
        answer = raw_post(server.port, chunked_head(server, pid), parts)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert needle in answer
    assert server.items(pid) == []
    assert_still_serving(server)


def test_chunked_with_trailers_and_extensions(server: MockSentryServer, pid: int) -> None:
    body = minimal_envelope()
    parts = [f"{len(body):x};name=value\r\n".encode() + body + b"\r\n", b"0\r\nX-Trailer: 1\r\n\r\n"]
    answer = raw_post(server.port, chunked_head(server, pid), parts)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert len(server.items(pid)) == 1


@pytest.mark.parametrize("te, needle", [
    ("gzip", b"unsupported Transfer-Encoding 'gzip' (only chunked)"),
    ("chunked, chunked", b"unsupported Transfer-Encoding"),
])
def test_other_transfer_encodings_are_400(server: MockSentryServer, pid: int, te: str, needle: bytes) -> None:
    head = (f"POST /api/{pid}/envelope/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n"
            f"X-Sentry-Auth: Sentry sentry_key={server.public_key}\r\n\r\n").encode()
    answer = raw_post(server.port, head, [b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 400 ") and needle in answer, answer[:200]


# ---------------------------------------------------------------------------
# the read API shows every payload


def test_attachments_and_binary_payloads_are_readable(server: MockSentryServer, pid: int) -> None:
    binary = bytes(range(256)) + b"\n\x00end"
    body = envelope_with(
        {"event_id": uuid.uuid4().hex},
        event_item("with attachments"),
        ({"type": "attachment", "length": len(binary), "filename": "dump.bin",
          "content_type": "application/octet-stream", "attachment_type": "event.minidump"}, binary),
        ({"type": "attachment", "length": 9, "filename": "data.json", "content_type": "application/json"},
         b'{"a": 1}\n'[:9]),
        ({"type": "replay_recording", "length": 4}, b"\x1f\x8b\x08\x00"),
        ({"type": "attachment", "length": 0}, b""),
    )
    assert post(server, pid, body, auth(server))[0] == 200
    items = events(server, pid)["items"]  # over HTTP, as a person would read them
    event, dump, data, replay, empty = items
    assert "payload_base64" not in event and event["payload"]["message"] == "with attachments"
    assert base64.b64decode(dump["payload_base64"]) == binary and dump["payload"] is None
    assert dump["headers"] == {"type": "attachment", "length": len(binary), "filename": "dump.bin",
                               "content_type": "application/octet-stream", "attachment_type": "event.minidump"}
    assert dump["size"] == len(binary)
    # an attachment that happens to be JSON: both its parsed form and its exact bytes
    assert data["payload"] == {"a": 1} and base64.b64decode(data["payload_base64"]) == b'{"a": 1}\n'
    assert replay["type"] == "replay_recording" and base64.b64decode(replay["payload_base64"]) == b"\x1f\x8b\x08\x00"
    assert empty["payload_base64"] == "" and empty["payload"] is None


# ---------------------------------------------------------------------------
# decompressions at once


def test_large_decompressions_beyond_the_limit_wait_then_get_503() -> None:
    with MockSentryServer(max_decompressions=2, decompress_wait=0.3) as srv:
        pid = srv.new_project()
        small = gzip.compress(minimal_envelope())
        # 1 MiB once inflated: past body.LARGE_OUTPUT, so it needs one of the slots
        large = gzip.compress(envelope_with({}, ({"type": "attachment", "length": 1 << 20}, b" " * (1 << 20))))
        gz = {"Content-Encoding": "gzip", **auth(srv)}
        assert post(srv, pid, large, gz)[0] == 200
        for _ in range(2):  # both slots busy (as if two bombs were inflating)
            assert srv._decompressions.acquire(timeout=1)
        try:
            start = time.monotonic()
            status, data, resp = request(srv, "POST", f"/api/{pid}/envelope/", large, gz)
            waited = time.monotonic() - start
            assert status == 503, data
            assert data.decode() == ("busy: 2 large decompressions are running and none finished within 0.3s; "
                                     "retry later\n")
            assert resp.getheader("Retry-After") == "1"
            assert 0.25 <= waited < 3
            # small envelopes (the SDKs' own) and bodies without Content-Encoding need no slot
            assert post(srv, pid, small, gz)[0] == 200
            assert post(srv, pid, minimal_envelope(), auth(srv))[0] == 200
            srv._decompressions.release()  # a slot frees up: the large one is served again
            assert post(srv, pid, large, gz)[0] == 200
        finally:
            srv._decompressions.release()
        assert [i["type"] for i in srv.items(pid)] == ["attachment", "event", "event", "attachment"]
        assert srv.stats()["rejected_by_status"] == {503: 1}
        assert srv._decompressions.acquire(timeout=0) and srv._decompressions.acquire(timeout=0)  # all released

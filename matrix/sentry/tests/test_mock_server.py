"""Tests for matrix.sentry (envelope parsing and the mock server), against the real server on loopback."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import brotli
import pytest

from matrix.sentry.envelope import (
    BodyError,
    EnvelopeError,
    TooLarge,
    UnsupportedEncoding,
    decode_body,
    parse_envelope,
)
from matrix.sentry.server import DEFAULT_MAX_BODY, MockSentryServer
from matrix.sentry.tests.helpers import (TIMEOUT, assert_still_serving, auth, events, make_envelope,
                                         minimal_envelope, post_envelope, raw_exchange, request, sdk_envelope)

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------
# parse_envelope / decode_body units


class TestParseEnvelope:
    def test_no_items(self) -> None:
        assert parse_envelope(b'{"event_id":"x"}').items == ()
        assert parse_envelope(b'{"event_id":"x"}\n').headers == {"event_id": "x"}

    def test_trailing_newline(self) -> None:
        env = parse_envelope(b'{}\n{"type":"a","length":3}\nabc\n')
        assert [(i.type, i.payload) for i in env.items] == [("a", b"abc")]
        assert parse_envelope(b'{}\n{"type":"a","length":3}\nabc').items[0].payload == b"abc"
        # Relay: whitespace where the next item header should start, up to the end, is "unexpected end of file"
        with pytest.raises(EnvelopeError, match="item 2: unexpected end of envelope"):
            parse_envelope(b'{}\n{"type":"a"}\nabc\n\n')
        with pytest.raises(EnvelopeError, match="item 1: unexpected end of envelope: only whitespace after the envelope header"):
            parse_envelope(b'{}\n\n')

    def test_empty_payload_with_length_zero(self) -> None:
        env = parse_envelope(b'{}\n{"type":"a","length":0}\n\n{"type":"b","length":0}\n')
        assert [(i.type, i.payload) for i in env.items] == [("a", b""), ("b", b"")]

    def test_empty_payload_without_length(self) -> None:
        env = parse_envelope(b'{}\n{"type":"a"}\n\n{"type":"b"}\nxyz\n{"type":"c"}')
        assert [(i.type, i.payload) for i in env.items] == [("a", b""), ("b", b"xyz"), ("c", b"")]

    def test_length_payload_may_contain_newlines(self) -> None:
        env = parse_envelope(b'{}\n{"type":"attachment","length":4}\na\nb\n\n')
        assert env.items[0].payload == b"a\nb\n"

    def test_item_json(self) -> None:
        item = parse_envelope(b'{}\n{"type":"event"}\n{"a":1}').items[0]
        assert item.json() == {"a": 1}
        with pytest.raises(EnvelopeError):
            parse_envelope(b'{}\n{"type":"x"}\nnot json').items[0].json()

    @pytest.mark.parametrize(
        "data, reason",
        [
            (b"", "empty envelope"),
            (b"{nope\n", "envelope header is not valid JSON"),
            (b"[1]\n", "envelope header must be a JSON object"),
            (b'{}\n{"length":1}\na\n', 'item 1: item header has no "type"'),
            (b'{}\n{"type":7}\n\n', 'item 1: item "type" must be a string, got 7'),
            (b'{}\n{"type":"a"}\nx\n{bad\n', "item 2 header is not valid JSON"),
            (b'{}\n{"type":"a"}\nx\n{"type":"b","length":500}\n' + b"x" * 120,
             "item 2: length 500 runs past the end of the envelope (120 bytes left)"),
            (b'{}\n{"type":"a","length":2}\nabc\n', "item 1: payload of length 2 is followed by b'c\\n' instead of a newline"),
            (b'{}\n{"type":"a","length":-1}\n', "got -1"),
            (b'{}\n{"type":"a","length":"3"}\nabc\n', "got '3'"),
            (b'{}\n{"type":"event"}\n{broken\n', "item 1: event payload is not valid JSON"),
            (b'{}\n{"type":"transaction","length":2}\n[]\n', "item 1: transaction payload must be a JSON object"),
            (b'{} \n{"type":"a"}\n', "envelope header is followed by ' ' instead of a newline"),
            (b'{"a":1}\r\n{"type":"a"}\n', "envelope header is followed by '\\r' instead of a newline"),
            (b'{}\n{"type":"a","x":NaN}\n\n', "item 1 header is not valid JSON (NaN is not JSON)"),
            (b" \n\t", "missing envelope header"),
        ],
    )
    def test_malformed(self, data: bytes, reason: str) -> None:
        with pytest.raises(EnvelopeError) as info:
            parse_envelope(data)
        assert reason in str(info.value)
        assert "\n" not in str(info.value)

    @pytest.mark.skipif(sdk_envelope is None, reason="sentry_sdk not installed")
    def test_sdk_envelope_roundtrip(self) -> None:
        raw, event_id, expected = make_envelope()
        env = parse_envelope(raw)
        assert env.headers["event_id"] == event_id
        assert [i.type for i in env.items] == [t for t, _ in expected]
        assert env.items[0].json() == expected[0][1]
        assert env.items[1].payload == b"line1\nline2"


class TestDecodeBody:
    DATA = b"sentry " * 5000

    @pytest.mark.parametrize(
        "encoding, encode",
        [
            (None, lambda d: d),
            ("identity", lambda d: d),
            ("gzip", gzip.compress),
            ("GZip", gzip.compress),
            ("deflate", zlib.compress),
            ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate
            ("br", brotli.compress),
            ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ],
    )
    def test_roundtrip(self, encoding: str | None, encode: Any) -> None:
        assert decode_body(encode(self.DATA), encoding, len(self.DATA)) == self.DATA

    def test_unknown_encoding(self) -> None:
        with pytest.raises(UnsupportedEncoding, match="'compress'.*gzip"):
            decode_body(b"x", "compress", 100)

    @pytest.mark.parametrize("encoding, encode", [("gzip", gzip.compress), ("deflate", zlib.compress),
                                                  ("br", brotli.compress), (None, lambda d: d)])
    def test_too_large(self, encoding: str | None, encode: Any) -> None:
        with pytest.raises(TooLarge):
            decode_body(encode(self.DATA), encoding, len(self.DATA) - 1)

    @pytest.mark.parametrize("encoding, body", [
        ("gzip", gzip.compress(DATA)[:-8]),
        ("gzip", b"not gzip at all"),
        ("deflate", zlib.compress(DATA)[:20]),
        ("br", brotli.compress(DATA)[:-2]),
        ("gzip", gzip.compress(DATA) + b"junk"),
    ])
    def test_corrupt(self, encoding: str, body: bytes) -> None:
        with pytest.raises(BodyError) as info:
            decode_body(body, encoding, 10 * len(self.DATA))
        assert not isinstance(info.value, (TooLarge, UnsupportedEncoding))

    def test_bomb_is_cheap(self) -> None:
        bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)
        start = time.monotonic()
        with pytest.raises(TooLarge):
            decode_body(bomb, "gzip", 1024 * 1024)
        assert time.monotonic() - start < 1.0


# ---------------------------------------------------------------------------
# the server over HTTP


def test_bound_to_loopback(server: MockSentryServer) -> None:
    assert server.server.server_address[0] == "127.0.0.1"
    assert server.server_address == ("127.0.0.1", server.port)
    assert server.host == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert len(server.public_key) == 32


def test_projects_and_dsn(server: MockSentryServer) -> None:
    a, b = server.new_project(), server.new_project()
    assert 1 <= a < b
    assert server.dsn(a) == f"http://{server.public_key}@127.0.0.1:{server.port}/{a}"
    with pytest.raises(ValueError):
        server.dsn(10_000)


def test_healthz(server: MockSentryServer) -> None:
    status, data, _ = request(server, "GET", "/healthz")
    assert (status, data.strip()) == (200, b"ok")


@pytest.mark.parametrize(
    "encoding, encode",
    [(None, lambda d: d), ("identity", lambda d: d), ("gzip", gzip.compress),
     ("deflate", zlib.compress), ("deflate", lambda d: zlib.compress(d)[2:-4]), ("br", brotli.compress)],
)
def test_envelope_accepted_and_read_back(server: MockSentryServer, pid: int, encoding: str | None,
                                         encode: Any) -> None:
    raw, event_id, expected = make_envelope(f"enc-{encoding}")
    status, data, resp = post_envelope(server, pid, encode(raw), encoding)
    assert status == 200, data
    assert json.loads(data) == {"id": event_id}
    assert resp.getheader("Content-Type") == "application/json"

    parsed = parse_envelope(raw)
    got = events(server, pid)
    assert got["project"] == pid
    assert [i["type"] for i in got["items"]] == [t for t, _ in expected]
    for record, item, (_, payload) in zip(got["items"], parsed.items, expected):
        assert record["headers"] == item.headers
        assert record["envelope_headers"] == parsed.headers
        assert record["payload"] == payload
        assert record["size"] == len(item.payload)
        assert record["endpoint"] == "envelope"
        assert isinstance(record["received_at"], float)
    assert server.items(pid) == got["items"]


def test_store_endpoint(server: MockSentryServer, pid: int) -> None:
    event = {"event_id": uuid.uuid4().hex, "message": "legacy"}
    body = json.dumps(event).encode()
    status, data, _ = request(server, "POST", f"/api/{pid}/store/", body,
                              {"Content-Type": "application/json", **auth(server)})
    assert status == 200, data
    assert json.loads(data) == {"id": event["event_id"]}
    txn = {"type": "transaction", "transaction": "/x", "spans": []}
    status, data, _ = request(server, "POST", f"/api/{pid}/store/?sentry_key={server.public_key}",
                              zlib.compress(json.dumps(txn).encode()), {"Content-Encoding": "deflate"})
    assert status == 200, data
    assert json.loads(data) == {"id": None}
    items = server.items(pid)
    assert [(i["type"], i["endpoint"], i["payload"]) for i in items] == [
        ("event", "store", event), ("transaction", "store", txn)]


@pytest.mark.parametrize("header", [
    "Sentry sentry_key={key}, sentry_version=7",
    "Sentry sentry_version=7,sentry_client=raven-python/6.10.0,sentry_key={key}",
    "Sentry  sentry_key = {key} ,  sentry_version=7 ",
    "sentry sentry_key={key}",
    "SENTRY sentry_key={key},sentry_version=7.0",
])
def test_auth_header_variants(server: MockSentryServer, pid: int, header: str) -> None:
    status, data, _ = request(server, "POST", f"/api/{pid}/envelope/", minimal_envelope(),
                              {"X-Sentry-Auth": header.format(key=server.public_key)})
    assert status == 200, data


def test_auth_query_param(server: MockSentryServer, pid: int) -> None:
    path = f"/api/{pid}/envelope/?sentry_key={server.public_key}&sentry_version=7"
    status, data, _ = request(server, "POST", path, minimal_envelope())
    assert status == 200, data


def test_auth_wrong_and_missing(server: MockSentryServer, pid: int) -> None:
    status, data, _ = post_envelope(server, pid, minimal_envelope(), headers=auth(server, "abc"))
    assert (status, data.decode().strip()) == (401, "wrong sentry_key 'abc' (from the X-Sentry-Auth header)")
    status, data, _ = request(server, "POST", f"/api/{pid}/envelope/?sentry_key=zzz", minimal_envelope())
    assert (status, data.decode().strip()) == (401, "wrong sentry_key 'zzz' (from the query string)")
    status, data, _ = request(server, "POST", f"/api/{pid}/envelope/", minimal_envelope())
    assert status == 401 and data.decode().startswith("missing authorization information")
    assert "the envelope header gives no dsn" in data.decode() and data.count(b"\n") == 1
    # Relay reads X-Sentry-Auth only with the "Sentry " scheme: a bare key=value list is no auth at all
    status, data, _ = request(server, "POST", f"/api/{pid}/envelope/", minimal_envelope(),
                              {"X-Sentry-Auth": f"sentry_key={server.public_key}"})
    assert status == 401 and data.decode().startswith("missing authorization information")
    assert server.items(pid) == []
    assert_still_serving(server)


TRUNCATED_GZIP = gzip.compress(minimal_envelope() * 50)[:-10]


@pytest.mark.parametrize(
    "body, encoding, status, reason",
    [
        (b'{"event_id": nope}\n{"type":"event"}\n{}\n', None, 400, "envelope header is not valid JSON"),
        (b'{}\n{"length":2}\n{}\n', None, 400, 'item 1: item header has no "type"'),
        (b'{}\n{"type":"attachment","length":500}\n' + b"x" * 120, None, 400,
         "item 1: length 500 runs past the end of the envelope (120 bytes left)"),
        (b'{}\n{"type":"attachment","length":2}\nabcd\n', None, 400, "is followed by b'cd\\n'"),
        (b'{}\n{"type":"event"}\n{"message": oops}\n', None, 400, "item 1: event payload is not valid JSON"),
        (minimal_envelope(), "compress", 415, "unsupported Content-Encoding 'compress'"),
        (TRUNCATED_GZIP, "gzip", 400, "truncated gzip body"),
        (b"\xff" * 16, "br", 400, "br body"),
    ],
)
def test_malformed_rejected(server: MockSentryServer, pid: int, body: bytes, encoding: str | None,
                            status: int, reason: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        got, data, resp = post_envelope(server, pid, body, encoding, conn=conn)
        text = data.decode()
        assert got == status, text
        assert reason in text
        assert text.count("\n") == 1 and text.endswith("\n")
        assert resp.getheader("Content-Type").startswith("text/plain")
        # the same keep-alive connection still works, and so does the server
        got, data, _ = post_envelope(server, pid, minimal_envelope(), conn=conn)
        assert got == 200, data
    finally:
        conn.close()
    assert [i["payload"] for i in server.items(pid)] == [{"message": "ok"}]
    assert_still_serving(server)


def test_gzip_bomb_rejected_quickly(server: MockSentryServer, pid: int) -> None:
    bomb = gzip.compress(b"\0" * (DEFAULT_MAX_BODY + 4 * 1024 * 1024), 9)
    assert len(bomb) < 64 * 1024
    start = time.monotonic()
    status, data, _ = post_envelope(server, pid, bomb, "gzip")
    assert status == 413, data
    assert b"decompresses to more than the limit" in data
    assert time.monotonic() - start < 3.0
    assert_still_serving(server)


def test_oversized_body_rejected(server: MockSentryServer, pid: int) -> None:
    body = b"x" * (21 * 1024 * 1024)
    status, data, resp = post_envelope(server, pid, body)
    assert status == 413, data
    assert data.decode().strip() == (
        f"body of {len(body)} bytes is larger than the limit of {DEFAULT_MAX_BODY} bytes")
    assert resp.getheader("Connection") == "close"
    assert_still_serving(server)


def test_oversized_body_answered_before_it_is_sent(server: MockSentryServer, pid: int) -> None:
    head = (f"POST /api/{pid}/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: sentry_key={server.public_key}\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    answer = raw_exchange(server, head)  # no body is sent at all
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert_still_serving(server)


def test_missing_content_length(server: MockSentryServer, pid: int) -> None:
    head = (f"POST /api/{pid}/envelope/ HTTP/1.1\r\nHost: x\r\n"
            f"X-Sentry-Auth: sentry_key={server.public_key}\r\n\r\n").encode()
    answer = raw_exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 411 "), answer[:100]
    assert answer.endswith(b"\r\n\r\nmissing Content-Length (send one, or Transfer-Encoding: chunked)\n")
    assert_still_serving(server)


def test_bad_content_length(server: MockSentryServer, pid: int) -> None:
    head = (f"POST /api/{pid}/envelope/ HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n"
            f"X-Sentry-Auth: sentry_key={server.public_key}\r\n\r\n").encode()
    answer = raw_exchange(server, head, b"abcd")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert b"invalid Content-Length '-4'" in answer


def test_unknown_project_path_and_method(server: MockSentryServer) -> None:
    status, data, _ = post_envelope(server, 17_000, minimal_envelope())
    assert (status, data.decode().strip()) == (404, "unknown project 17000")
    status, data, _ = request(server, "GET", "/api/17000/events/")
    assert (status, data.decode().strip()) == (404, "unknown project 17000")
    status, data, _ = request(server, "GET", "/nope")
    assert status == 404 and data.count(b"\n") == 1
    status, data, _ = request(server, "POST", "/api/abc/envelope/", b"{}", auth(server))
    assert status == 404
    pid = server.new_project()
    status, data, resp = request(server, "GET", f"/api/{pid}/envelope/")
    assert status == 405 and resp.getheader("Allow") == "POST"
    status, data, resp = request(server, "PUT", f"/api/{pid}/events/", b"x" * 10)
    assert status == 405 and "DELETE" in resp.getheader("Allow")
    status, _, _ = request(server, "POST", "/healthz", b"{}")
    assert status == 405
    assert_still_serving(server)


def test_concurrent_clients(server: MockSentryServer, pid: int) -> None:
    n = 200
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    results: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        raw, event_id, _ = make_envelope(f"client-{i}")
        body, enc = (gzip.compress(raw), "gzip") if i % 2 else (raw, None)
        barrier.wait()
        status, data, _ = post_envelope(server, pid, body, enc)
        with lock:
            results.append(status)
            if status == 200:
                ids.append(json.loads(data)["id"])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert results == [200] * n
    items = server.wait_for_items(pid, lambda its: len(its) >= 3 * n, timeout=5)
    events_ = [i for i in items if i["type"] == "event"]
    assert len(events_) == n == server.stats()["envelopes_by_project"][pid]
    assert sorted(e["payload"]["event_id"] for e in events_) == sorted(ids)
    assert len(events(server, pid)["items"]) == 3 * n


def test_read_api_and_reset(server: MockSentryServer, pid: int) -> None:
    for _ in range(2):
        assert post_envelope(server, pid, minimal_envelope())[0] == 200
    got = events(server, pid)
    assert got["project"] == pid and len(got["items"]) == 2
    assert got["items"][0]["envelope_seq"] < got["items"][1]["envelope_seq"]
    status, data, _ = request(server, "DELETE", f"/api/{pid}/events/")
    assert status == 200, data
    assert events(server, pid)["items"] == [] and server.items(pid) == []
    assert post_envelope(server, pid, minimal_envelope())[0] == 200
    assert len(server.items(pid)) == 1
    server.reset(pid)
    assert server.items(pid) == []
    status, data, _ = request(server, "GET", "/stats")
    stats = json.loads(data)
    assert stats["envelopes_by_project"][str(pid)] == 3
    assert stats["rejected_total"] == sum(stats["rejected_by_status"].values())


def test_stats_counts_rejections(pid: int) -> None:
    with MockSentryServer() as srv:
        p = srv.new_project()
        post_envelope(srv, p, minimal_envelope())
        post_envelope(srv, p, b"junk")
        post_envelope(srv, p, minimal_envelope(), headers=auth(srv, "nope"))
        post_envelope(srv, p + 1, minimal_envelope())
        stats = srv.stats()
    assert stats["envelopes_accepted"] == 1 and stats["items_accepted"] == 1
    assert stats["envelopes_by_project"] == {p: 1}
    assert stats["rejected_by_status"] == {400: 1, 401: 1, 404: 1}
    assert stats["rejected_total"] == 3


def test_wait_for_items(server: MockSentryServer, pid: int) -> None:
    def later() -> None:
        time.sleep(0.2)
        post_envelope(server, pid, minimal_envelope())
        post_envelope(server, pid, minimal_envelope())

    t = threading.Thread(target=later, daemon=True)
    start = time.monotonic()
    t.start()
    items = server.wait_for_items(pid, lambda its: len(its) == 2, timeout=5)
    assert len(items) == 2
    assert time.monotonic() - start < 3
    t.join(TIMEOUT)

    start = time.monotonic()
    items = server.wait_for_items(pid, lambda its: len(its) > 5, timeout=0.3)
    elapsed = time.monotonic() - start
    assert len(items) == 2 and 0.25 <= elapsed < 2
    with pytest.raises(ValueError):
        server.wait_for_items(99_999, bool, 0.1)


def test_stop_closes_socket() -> None:
    srv = MockSentryServer()
    with srv:
        port = srv.port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request("GET", "/healthz")  # an idle keep-alive connection left open
        assert conn.getresponse().read().strip() == b"ok"
    start = time.monotonic()
    srv.stop()  # idempotent
    assert time.monotonic() - start < 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    conn.close()


@pytest.mark.skipif(sdk_envelope is None, reason="sentry_sdk not installed")
def test_real_sdk_transport(server: MockSentryServer, pid: int) -> None:
    """The real SDK transport (its compression and auth header) in a child process."""
    code = textwrap.dedent(f"""
        import sentry_sdk
        sentry_sdk.init(dsn={server.dsn(pid)!r}, traces_sample_rate=1.0, default_integrations=False)
        sentry_sdk.set_tag("unit", "child")
        sentry_sdk.capture_message("from the real sdk")
        with sentry_sdk.start_transaction(name="txn"):
            pass
        sentry_sdk.flush(5)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=30, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    items = server.wait_for_items(
        pid, lambda its: {"event", "transaction"} <= {i["type"] for i in its}, timeout=5)
    event = next(i for i in items if i["type"] == "event")
    assert event["payload"]["message"] == "from the real sdk"
    assert event["payload"]["tags"]["unit"] == "child"


def test_cli_serves_and_stops() -> None:
    proc = subprocess.run([sys.executable, "-m", "matrix.sentry", "--serve-seconds", "0.5",
                           "--projects", "2"], cwd=REPO, timeout=20, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("mock sentry server at http://127.0.0.1:")
    assert lines[1].startswith("project 1: http://") and lines[2].startswith("project 2: http://")
    bad = subprocess.run([sys.executable, "-m", "matrix.sentry", "--port", "nope"],
                         cwd=REPO, timeout=20, capture_output=True, text=True)
    assert bad.returncode == 2 and "--port: not an integer: 'nope'" in bad.stderr

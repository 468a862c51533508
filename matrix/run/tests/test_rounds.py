"""rounds.wait_arrived against a real HTTP server on loopback that answers GET /arrived as the apps do."""
from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from matrix.run.rounds import wait_arrived


@pytest.fixture()
def arrivals():
    """(base url, the list of unit ids /arrived reports): the test appends to it as units 'arrive'."""
    arrived: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = json.dumps({"normal": len(arrived), "units": list(arrived)}).encode()
            self.send_response(200 if self.path == "/arrived" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", arrived
    finally:
        server.shutdown()
        server.server_close()


def test_the_next_unit_goes_once_this_unit_arrived_even_when_an_earlier_one_never_did(arrivals):
    base, arrived = arrivals
    pending: Future = Future()  # unit 2's request: still waiting at the barrier
    # unit 1 hangs before the barrier (never in the list); unit 2 arrives a moment after it was sent
    threading.Timer(0.2, arrived.append, args=(2,)).start()
    assert wait_arrived(base, 2, 5.0, pending, unit=2) is None
    # without the unit id only the count is known: 1 of 2 units, so it gives up at the timeout and says so
    said = wait_arrived(base, 2, 0.3, pending)
    assert said == "not at the barrier after 0.3s: sent the next unit anyway"


def test_a_unit_that_answers_without_arriving_is_said(arrivals):
    base, _ = arrivals
    answered: Future = Future()
    answered.set_result((500, "boom"))
    assert wait_arrived(base, 1, 5.0, answered, unit=1) == \
        "answered before reaching the barrier: sent the next unit at once"

"""Talking to a running app over loopback: one HTTP request, one websocket unit, a free port."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

# No proxy may ever see loopback traffic, whatever the environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, timeout: float) -> tuple[int, Any]:
    """One request to the app; returns (status, parsed JSON or text). Raises OSError on no answer."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return status, body.decode("utf-8", "replace")


def websocket_unit(url: str, timeout: float) -> tuple[int, Any]:
    """One unit over a websocket: connect, read the single text frame the app answers with.

    The asyncio client of `websockets` (its own loop per call, in the driving thread): the sync
    client was seen to report the close without the frame before it (about 2 in 2000 connections).
    """
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    async def one() -> str:
        async with connect(url, open_timeout=timeout, close_timeout=2, proxy=None) as ws:
            return await asyncio.wait_for(ws.recv(), timeout)

    try:
        text = asyncio.run(one())
    except (WebSocketException, asyncio.TimeoutError, TimeoutError) as exc:
        raise OSError(f"websocket {type(exc).__name__}: {exc}") from None
    try:
        return 200, json.loads(text)
    except ValueError:
        return 200, text

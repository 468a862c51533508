"""Driving an app's units: one round (all units at once), and the memory probe's load windows."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..plan.cells import Cell
from .client import http, websocket_unit

ROUNDS = ("normal", "control")


def drive_round(base_url: str, name: str, units: int, timeout: float, route: str | None = None,
                unit_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Send all units' requests of one round at once; one answer (or error) per unit."""

    def one(unit: int) -> dict[str, Any]:
        try:
            if route == "websocket":
                ws_base = "ws://" + base_url.split("://", 1)[1]
                status, body = websocket_unit(f"{ws_base}/ws/unit/{unit}?round={name}", timeout)
            else:
                status, body = http("GET", f"{base_url}/unit/{unit}?round={name}", timeout=timeout)
        except OSError as exc:
            return {"unit": unit, "round": name, "error": f"no answer: {exc}"}
        if not isinstance(body, dict):
            return {"unit": unit, "round": name, "error": f"HTTP {status}: {str(body)[:200]}"}
        if status != 200 and not body.get("error"):
            body["error"] = f"HTTP {status}"
        return body

    with ThreadPoolExecutor(max_workers=units) as pool:
        return list(pool.map(one, unit_ids or range(1, units + 1)))


def rss_kib(base_url: str) -> int:
    status, body = http("GET", base_url + "/rss", timeout=10)
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("rss_kib"), int):
        raise OSError(f"/rss answered HTTP {status}: {str(body)[:120]}")
    return body["rss_kib"]


def probe_memory(cell: Cell, base_url: str, units: int, timeout: float) -> dict[str, Any]:
    """Warm up, then two equal windows of load requests (N at a time), reading the app's RSS
    before and after each window."""
    probe = cell.memory
    assert probe is not None
    half = max(1, probe.requests // 2)
    result: dict[str, Any] = {"requests": 2 * half, "warmup": probe.warmup,
                              "threshold_kib_per_request": probe.kib_per_request, "failed_requests": 0}

    def load(count: int) -> None:
        for start in range(0, count, units):
            batch = list(range(1, min(units, count - start) + 1))
            for answer in drive_round(base_url, "load", units, timeout, cell.route, batch):
                if answer.get("error"):
                    result["failed_requests"] += 1
                    result.setdefault("first_failure", f"unit {answer.get('unit')}: {answer['error']}"[:200])

    try:
        t = time.monotonic()
        load(probe.warmup)
        result["rss_kib"] = [rss_kib(base_url)]
        for _ in range(2):
            load(half)
            result["rss_kib"].append(rss_kib(base_url))
        result["seconds"] = round(time.monotonic() - t, 3)
    except OSError as exc:
        result["error"] = str(exc)
    return result

"""Driving an app's units: one round (all units at once), and the memory probe's load windows."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from ..plan.cells import Cell
from .client import http, websocket_unit

ROUNDS = ("normal", "control")


def drive_round(base_url: str, name: str, units: int, timeout: float, route: str | None = None,
                unit_ids: list[int] | None = None, in_turn: float | None = None,
                notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Send all units' requests of one round at once; one answer (or error) per unit.

    `in_turn` (seconds): send unit k+1 only once the app says unit k reached the normal barrier
    (GET /arrived), waiting at most that long per unit; the units still overlap at the barrier. What
    happened on the way goes to `notes`."""

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

    ids = list(unit_ids or range(1, units + 1))
    with ThreadPoolExecutor(max_workers=units) as pool:
        if in_turn is None:
            return list(pool.map(one, ids))
        futures = []
        for k, unit in enumerate(ids, 1):
            futures.append(pool.submit(one, unit))
            if k < len(ids):
                said = wait_arrived(base_url, k, in_turn, futures[-1], unit)
                if said and notes is not None:
                    notes.append(f"in turn: unit {unit}: {said}")
        return [f.result() for f in futures]


def wait_arrived(base_url: str, count: int, timeout: float, sent: Future, unit: int | None = None) -> str | None:
    """Poll GET /arrived until unit `unit` is among the units at the normal barrier (-> None; without a
    unit id, or from an app whose /arrived lists no ids: until `count` units are), or say why not: the
    unit answered without arriving (an error before the barrier), the app has no /arrived, or time ran
    out. The caller then sends the next unit anyway; the barrier says whether the units overlapped.
    Waiting on the unit itself, not a count, keeps one unit that never arrives from costing every later
    unit the whole timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = http("GET", base_url + "/arrived", timeout=2)
        except OSError as exc:
            status, body = 0, str(exc)
        if status == 200 and isinstance(body, dict):
            ids = body.get("units")
            if unit is not None and isinstance(ids, list):
                if unit in ids:
                    return None
            elif int(body.get("normal", 0)) >= count:
                return None
        if status not in (0, 200):
            return f"GET /arrived answered HTTP {status}: sent the next unit at once"
        if sent.done():
            return "answered before reaching the barrier: sent the next unit at once"
        if time.monotonic() >= deadline:
            return f"not at the barrier after {timeout:g}s: sent the next unit anyway"
        time.sleep(0.005)


def memory_sample(base_url: str) -> dict[str, Any]:
    """Flush the SDK's queue, then count what the app still holds (GET /memory, after gc)."""
    http("POST", base_url + "/flush", timeout=15)
    status, body = http("GET", base_url + "/memory", timeout=30)
    if status != 200 or not isinstance(body, dict):
        raise OSError(f"/memory answered HTTP {status}: {str(body)[:120]}")
    return body


def probe_memory(cell: Cell, base_url: str, units: int, timeout: float,
                 decided: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Warm up, then `windows` windows of load requests (N at a time), one sample after a flush before the
    first window and after each: [[requests so far, live SDK objects, RSS KiB], ...]. `decided(result)`
    (the judge's rule, handed in) may end it after a sample: `requests` and `windows` then say what ran,
    `stopped_early` why."""
    probe = cell.memory
    assert probe is not None
    per = max(units, probe.requests // probe.windows)
    result: dict[str, Any] = {"requests": per * probe.windows, "warmup": probe.warmup, "windows": probe.windows,
                              "threshold_per_request": probe.per_request, "failed_requests": 0, "samples": []}

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
        done = 0
        for window in range(probe.windows + 1):
            sample = memory_sample(base_url)
            result["samples"].append([done, sample.get("sdk_objects"), sample.get("rss_kib")])
            result["sdk_classes"] = sample.get("sdk_classes")
            if window < probe.windows and decided is not None and decided(result):
                result["stopped_early"] = (f"after {window} of {probe.windows} windows ({done} requests) the "
                                           "slope's 95% interval is already wholly above the threshold")
                result["requests"], result["windows"] = done, window
                break
            if window < probe.windows:
                load(per)
                done += per
        result["seconds"] = round(time.monotonic() - t, 3)
    except OSError as exc:
        result["error"] = str(exc)
    return result

"""The mock server's memory: per-project item lists in arrival order, counters, and waiting for items.

Thread-safe (one lock + condition); the read API (`GET/DELETE /api/<pid>/events/`) is answered from here.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable


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
        self._closed = False  # set when the server stops: waiters return at once
        self._last_add: dict[int, float] = {}  # project -> when its last envelope arrived (monotonic)

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
            self._last_add[pid] = time.monotonic()
            self._version += 1
            self._cond.notify_all()

    def reject(self, status: int) -> None:
        with self._cond:
            counts = self._stats.rejected_by_status
            counts[status] = counts.get(status, 0) + 1

    def items(self, pid: int) -> list[dict]:
        with self._cond:
            return [dict(r) for r in self._require(pid)]

    def read_api(self, pid: int, reset: bool = False) -> dict:
        """The answer of `GET /api/<pid>/events/` (the items), or of `DELETE` (empties the project)."""
        if reset:
            self.reset(pid)
            return {"project": pid, "reset": True}
        return {"project": pid, "items": self.items(pid)}

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

    def close(self) -> None:
        """The server is stopping: every waiter returns now with what it has."""
        with self._cond:
            self._closed = True
            self._version += 1
            self._cond.notify_all()

    def wait_for(self, pid: int, predicate: Callable[[list[dict]], bool], timeout: float,
                 settle: float | None = None) -> list[dict]:
        """Block until ``predicate(items)`` holds, ``timeout`` passes or the store is closed; the predicate
        runs unlocked. With ``settle``, also return once the project has received nothing for that long
        (the sender says it is done: what has not come by then will not come)."""
        start = time.monotonic()
        deadline = start + max(0.0, timeout)
        while True:
            with self._cond:
                items = [dict(r) for r in self._require(pid)]
                seen = self._version
                closed = self._closed
            if closed or predicate(items):
                return items
            with self._cond:
                while self._version == seen:
                    now = time.monotonic()
                    remaining = deadline - now
                    if settle is not None:
                        quiet = now - max(start, self._last_add.get(pid, start))
                        if quiet >= settle:
                            return items
                        remaining = min(remaining, settle - quiet)
                    if remaining <= 0 and now >= deadline:
                        return items
                    self._cond.wait(max(remaining, 0.001))

    def _require(self, pid: int) -> list[dict]:
        try:
            return self._projects[pid]
        except KeyError:
            raise ValueError(f"unknown project {pid}") from None

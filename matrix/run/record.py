"""What a run observed, nothing decided: the input of the judge.

A RunRecord saved as JSON is enough to judge a run again without any server, which is how
the judge's tests work (tests/data/*.json are records of real runs).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunRecord:
    cell_id: str
    units: int
    attempt: int = 1
    # Start-up: did the app answer /facts? If not, why (exit code, first error line of its log).
    started: bool = False
    start_error: str | None = None
    facts: dict[str, Any] | None = None
    # round name ("normal", "control") -> one response per unit, in unit order. A unit whose
    # request failed has {"unit": i, "error": "..."} instead of the app's answer.
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Items the mock server received for this cell's project, in arrival order.
    items: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    exit_signal: int | None = None
    killed: bool = False  # the engine had to kill the app
    timed_out: str | None = None  # which stage ran out of time, if any
    timings: dict[str, float] = field(default_factory=dict)
    # Memory probe: {"requests", "warmup", "windows", "samples": [[requests, SDK objects, RSS KiB], ...],
    # "threshold_per_request", ...} or {"error": "..."}; None when the cell has no memory probe.
    memory: dict[str, Any] | None = None
    log: str = ""
    log_tail: list[str] = field(default_factory=list)
    # The app's deadlock report (exit code DEADLOCK_EXIT): its first line and the blocked stacks.
    deadlock: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunRecord":
        return cls(**json.loads(text))

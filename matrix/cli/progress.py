"""What a run shows while and after it runs: a progress line per finished cell (a rich bar on a terminal),
and the pytest-like end of the run."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from ..report.advice import scope_mark
from ..report.view import counts


class Progress:
    """Per-cell outcomes as they finish: a rich progress bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.lock = threading.Lock()
        self.rich = None
        if sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeElapsedColumn, TimeRemainingColumn

            self.rich = RichProgress(TextColumn("[bold]matrix"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
            self.task = self.rich.add_task("cells", total=total)
            self.rich.start()

    def __call__(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.done += 1
            line = (f"[{self.done}/{self.total}] {scope_mark(entry):<4} {entry.get('scope', '?'):<8} {entry['id']}"
                    + (f"  ({short_reason(entry['reason'])})" if entry.get("reason") else ""))
            if self.rich is not None:
                self.rich.console.print(line, markup=False, highlight=False)
                self.rich.advance(self.task)
            else:
                print(line, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
        print(f"{self.done} cells in {time.monotonic() - self.start:.1f}s", flush=True)


def run_end(doc: dict[str, Any], written: list[str], width: int = 100) -> str:
    """The last lines of a run, the way pytest ends: what leaked, then the counts per scope answer."""
    cells = [c for c in doc["cells"] if c["verdict"] != "unsupported"]
    tally = counts(doc["cells"])
    lines = []
    leaking = [c["id"] for c in cells if c.get("scope") == "leak"]
    if leaking:
        lines.append(" scope data leaked ".center(width, "="))
        lines += [f"LEAK {cell_id}" for cell_id in leaking]
    unknown = [c for c in cells if c.get("scope") == "unknown"]
    if unknown:
        lines.append(" could not answer ".center(width, "-"))
        lines += [f"UNKNOWN {c['id']}: {short_reason(c.get('reason', ''))}" for c in unknown]
    lines.append(f"tables: {', '.join(written)}")
    parts = [f"{tally['scope'].get(k, 0)} {k}" for k in ("leak", "isolated", "unknown") if tally["scope"].get(k)]
    n_a = tally["verdict"].get("unsupported", 0)
    parts += [f"{n_a} not run"] if n_a else []
    parts += [f"{len(doc.get('not_planned', []))} not planned"] if doc.get("not_planned") else []
    lines.append(f" scope: {', '.join(parts)} ".center(width, "="))
    return "\n".join(lines)


def short_reason(reason: str, limit: int = 160) -> str:
    """A reason cut to `limit` characters keeping its informative end (the error is last, not first)."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit // 3] + " ... " + reason[-(limit - limit // 3 - 5):]

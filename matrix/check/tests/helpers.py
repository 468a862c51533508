"""Small results documents for the lookup and command tests: cells shaped like matrix.json's (schema 2)."""
from __future__ import annotations

import json
import os
from typing import Any

from matrix.plan.cells import parse_cell_id

EVIDENCE = {
    "leak": {"scope_leak": {"ok": False, "evidence": ["event unit-1 carried tag unit=3", "event unit-2 carried user id 1",
                                                      "event unit-3 carried tag unit=1"]}},
    "nested": {"span_nesting": {"ok": False, "evidence": ["span unit-1.child-2 is nested under its sibling unit-1.child-1"]}},
}


def cell(cell_id: str, scope: str, tracing: str = "parallel", verdict: str | None = None,
         packages: dict[str, str] | None = None, reason: str = "") -> dict[str, Any]:
    app, variant, python, pins, route = parse_cell_id(cell_id)
    checks: dict[str, Any] = {"scope_leak": {"ok": scope != "leak"}, "delivery": {"ok": True}}
    if scope == "leak":
        checks.update(EVIDENCE["leak"])
    if tracing == "nested":
        checks.update(EVIDENCE["nested"])
    entry = {"id": cell_id, "app": app, "variant": variant, "python": f"{python}.1",
             "packages": dict(pins, **(packages or {})), "backend": "venv",
             "verdict": verdict or {"leak": "leak", "isolated": "isolated" if tracing == "parallel" else "nested"}.get(scope, "error"),
             "scope": scope, "tracing": tracing, "checks": checks, "context_backend": "contextvars", "units": 4,
             "log": f"logs/{cell_id}.log", "rerun": f"nox -s cell -- {cell_id}"}
    if route:
        entry["route"] = route
    if reason or scope == "leak":
        entry["reason"] = reason or "event unit-1 carried tag unit=3"
    return entry


def write_results(folder: str, cells: list[dict[str, Any]], schema: int = 2, summary: list | None = None,
                  not_planned: list | None = None, history: dict | None = None,
                  generated_at: str = "2026-12-01T00:00:00+00:00") -> str:
    os.makedirs(folder, exist_ok=True)
    if schema < 2:
        cells = [{k: v for k, v in c.items() if k not in ("scope", "tracing")} for c in cells]
    doc: dict[str, Any] = {"schema": schema, "generated_at": generated_at, "command": "test", "cells": cells}
    if summary is not None:
        doc["summary"] = summary
    if not_planned is not None:
        doc["not_planned"] = not_planned
    with open(os.path.join(folder, "matrix.json"), "w") as fh:
        json.dump(doc, fh)
    if history is not None:
        with open(os.path.join(folder, "history.json"), "w") as fh:
            json.dump(history, fh)
    return folder

"""matrix.json: one entry per judged cell and the results document around them (shaped by the schema). Pure."""
from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from typing import Any, Mapping

from packaging.version import Version

from ..axes.spec import AppAxes
from ..judge.outcome import CellOutcome
from ..plan.cells import Cell
from .advice import UNDER_TEST
from .summary import summarize


def packages_under_test(cell: Cell, installed: dict[str, str]) -> dict[str, str]:
    """Exact installed versions of the pinned packages and every package under test present."""
    found = {name: installed.get(name.lower(), version) for name, version in cell.pins}
    for name in UNDER_TEST:
        if name in installed and name not in found:
            found[name] = installed[name]
    return found


def cell_entry(outcome: CellOutcome) -> dict[str, Any]:
    """One element of matrix.json's `cells`, shaped by the results schema."""
    cell, judgement = outcome.cell, outcome.judgement
    entry: dict[str, Any] = {
        "id": cell.id,
        "app": cell.app,
        "variant": cell.variant,
        "python": outcome.python_version,
        "packages": packages_under_test(cell, outcome.installed),
        "backend": cell.backend,
        "verdict": judgement.verdict,
        "scope": judgement.scope,
        "tracing": judgement.tracing,
        "checks": {k: v.to_json() for k, v in judgement.checks.items()},
        "context_backend": judgement.context_backend,
        "units": outcome.units,
        "repeats": outcome.repeats,
        "duration_s": round(outcome.duration_s, 2),
        "rerun": cell.rerun,
    }
    if cell.route:
        entry["route"] = cell.route
    if judgement.reason:
        entry["reason"] = judgement.reason
    if outcome.log:
        entry["log"] = outcome.log
    if outcome.facts:
        entry["context_detail"] = outcome.facts.get("context_detail")
    return entry


def results_document(cells: list[dict[str, Any]], command: str, backend: str,
                     generated_at: str | None = None, claims: list[dict[str, Any]] | None = None,
                     apps: Mapping[str, AppAxes] | None = None,
                     not_planned: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """matrix.json (schema 2). With the apps' axes (their advice), the headline `summary` too; with
    `not_planned`, the combinations the plan left out because they cannot run, and why."""
    doc = {
        "schema": 2,
        "generated_at": generated_at or datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "command": command,
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "backend": backend,
                 "harness_python": platform.python_version()},
        "cells": sorted(cells, key=_cell_order),
    }
    if claims is not None:
        doc["claims"] = claims
    if apps is not None:
        doc["summary"] = summarize(doc["cells"], apps)
    if not_planned:
        doc["not_planned"] = sorted(not_planned, key=lambda c: c["id"])
    return doc


def _cell_order(cell: dict[str, Any]) -> tuple:
    return (cell["app"], cell["variant"] != "plain", cell["variant"],
            [Version(v) for v in cell["packages"].values() if _is_version(v)],
            Version(cell["python"]) if _is_version(cell["python"]) else Version("0"))


def _is_version(text: str) -> bool:
    try:
        Version(text)
        return True
    except Exception:
        return False

"""What both renderings show, computed once: per-app grids (rows variant x pins, columns Pythons),
the cells that could not run, fix variants that isolate, and the end-of-run counts. Pure."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def route_of(cell: dict[str, Any]) -> str | None:
    """The route segment of a cell id (…/on-websocket), if any."""
    last = cell["id"].rsplit("/", 1)[-1]
    return cell.get("route") or (last[3:] if last.startswith("on-") else None)


def pinned(cell: dict[str, Any]) -> set[str]:
    """The packages the cell id pins: app/variant/pyX.Y/name-ver/.../on-route."""
    return {part.rsplit("-", 1)[0] for part in cell["id"].split("/")[3:] if not part.startswith("on-")}


def row_key(cell: dict[str, Any]) -> str:
    pins = " ".join(f"{k} {v}" for k, v in cell["packages"].items() if k == "sentry-sdk" or k in pinned(cell))
    route = route_of(cell)
    return f"{cell['variant']} · {pins}" + (f" · on {route}" if route else "")


@dataclass
class AppView:
    name: str
    pythons: list[str]
    rows: dict[str, dict[str, dict]]  # row label -> python minor -> cell
    not_run: list[dict] = field(default_factory=list)  # unsupported and not-planned cells, one collapsed line
    summary: list[dict] = field(default_factory=list)  # this app's entries of doc["summary"]
    backends: list[str] = field(default_factory=list)  # context storages seen in cells that ran
    models: str = ""


def app_views(doc: dict[str, Any]) -> list[AppView]:
    cells = doc["cells"]
    views = []
    for app in sorted({c["app"] for c in cells}, key=lambda a: (a != "threads", a)):
        app_cells = [c for c in cells if c["app"] == app]
        ran = [c for c in app_cells if c["verdict"] != "unsupported"]
        rows: dict[str, dict[str, dict]] = {}
        for c in ran:
            rows.setdefault(row_key(c), {})[minor(c["python"])] = c
        views.append(AppView(
            app, sorted({minor(c["python"]) for c in ran}, key=Version), rows,
            [c for c in app_cells if c["verdict"] == "unsupported"]
            + [c for c in doc.get("not_planned", []) if c["app"] == app],
            [s for s in doc.get("summary", []) if s["app"] == app],
            sorted({c["context_backend"] for c in ran if c["context_backend"] != "unknown"})))
    return views


def counts(cells: list[dict[str, Any]]) -> dict[str, Counter]:
    """Counts per scope answer, tracing answer and verdict."""
    return {"scope": Counter(c.get("scope", "unknown") for c in cells if c["verdict"] != "unsupported"),
            "tracing": Counter(c.get("tracing", "unknown") for c in cells if c["verdict"] != "unsupported"),
            "verdict": Counter(c["verdict"] for c in cells)}


def not_run_share(cells: list[dict[str, Any]]) -> float:
    """The share of planned cells that did not run (n/a)."""
    return sum(c["verdict"] == "unsupported" for c in cells) / max(1, len(cells))

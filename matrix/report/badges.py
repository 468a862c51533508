"""shields.io endpoint badges, one per app: results/badges/<app>.json. Pure.

What a badge says: the app's headline scope answer, i.e. the `summary` entry of its `plain` variant
(the app used the way its users write it, no workaround) on the newest stack measured. Apps with
several routes (Channels) have one plain entry per route: the badge says `isolated` when every route
is, `leak` (with how many routes) when any leaks, else `unknown`. The tracing answer and the fix
variants are in the table, not on the badge.

Use: https://img.shields.io/endpoint?url=<raw URL of results/badges/gevent.json>
"""
from __future__ import annotations

from typing import Any

from .roles import derived_answers
from .summary import newest_key

COLORS = {"isolated": "brightgreen", "leak": "red", "unknown": "lightgrey"}


def _headline_plain(doc: dict[str, Any]) -> dict[str, list[str]]:
    """app -> the scope answers of its plain variant's headline entries (one per route)."""
    out: dict[str, list[str]] = {}
    summary = doc.get("summary")
    if summary:
        for entry in summary:
            if entry.get("variant", "plain") == "plain":
                out.setdefault(entry["app"], []).append(entry["scope"])
        for entry in summary:  # an app without a plain variant: its first entry
            out.setdefault(entry["app"], [entry["scope"]])
        return out
    # schema 1 (no summary): the newest plain cell that answered, per app and route
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in doc.get("cells", []):
        if cell.get("variant") == "plain" and cell.get("verdict") != "unsupported":
            groups.setdefault((cell["app"], cell.get("route") or ""), []).append(cell)
    for (app, _), cells in sorted(groups.items()):
        known = [c for c in cells if derived_answers(c)["scope"] != "unknown"]
        out.setdefault(app, []).append(derived_answers(max(known, key=newest_key))["scope"] if known else "unknown")
    return out


def badge(label: str, scopes: list[str]) -> dict[str, Any]:
    if scopes and all(s == "isolated" for s in scopes):
        message = "isolated"
    elif "leak" in scopes:
        leaks = scopes.count("leak")
        message = "leak" if len(scopes) == 1 else f"leak ({leaks} of {len(scopes)} routes)"
    else:
        message = "unknown"
    return {"schemaVersion": 1, "label": label, "message": message, "color": COLORS[message.split()[0]]}


def badges(doc: dict[str, Any], label_suffix: str = "") -> dict[str, dict[str, Any]]:
    """app -> its shields.io endpoint JSON. `label_suffix` marks a lane, e.g. ' (sdk main)'."""
    return {app: badge(app + label_suffix, scopes) for app, scopes in sorted(_headline_plain(doc).items())}

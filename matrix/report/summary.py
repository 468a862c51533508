"""The headline: per app and variant, the newest stack measured, its scope and tracing answers, where
the answer differs, and one line of advice chosen by what the cells measured. Pure."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

from packaging.version import InvalidVersion, Version

from ..axes.spec import AppAxes

KNOWN_SCOPES = ("isolated", "leak")


def _v(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def newest_key(cell: dict[str, Any]) -> tuple:
    """Order cells by how new their stack is: the SDK first, then the Python, then the other packages."""
    packages = cell["packages"]
    others = tuple(_v(v) for k, v in sorted(packages.items()) if k != "sentry-sdk")
    return (_v(packages.get("sentry-sdk", "0")), _v(cell["python"]), others, cell.get("route") or "")


def stack_label(cell: dict[str, Any], pinned_only: bool = True) -> str:
    """'py3.12 · sentry-sdk 2.75.0 · gevent 26.9.0' (the pins of the cell id, or every package under test)."""
    pinned = {part.rsplit("-", 1)[0] for part in cell["id"].split("/")[3:] if not part.startswith("on-")}
    parts = [f"py{'.'.join(cell['python'].split('.')[:2])}"]
    parts += [f"{k} {v}" for k, v in cell["packages"].items() if not pinned_only or k in pinned]
    if cell.get("route"):
        parts.append(f"on {cell['route']}")
    return " · ".join(parts)


def _env_key(cell: dict[str, Any]) -> tuple:
    """Cells that differ only by variant share this key (same Python minor, same pins, same route)."""
    return ".".join(cell["python"].split(".")[:2]), cell["id"].split("/", 3)[3]


def _differs(cells: list[dict[str, Any]], headline: str, limit: int = 3) -> list[str]:
    """'leak on py3.7 · sentry-sdk 0.10.2 · gevent 1.4.0' for the known cells whose scope is not the headline's."""
    other = sorted((c for c in cells if c["scope"] in KNOWN_SCOPES and c["scope"] != headline), key=newest_key)
    lines = [f"{c['scope']} on {stack_label(c)}" for c in other[:limit]]
    if len(other) > limit:
        lines.append(f"... and {len(other) - limit} more {other[0]['scope']} cell(s)")
    return lines


def fixes_that_isolate(app_cells: list[dict[str, Any]], fix_variants: list[str]) -> dict[str, tuple[int, int]]:
    """Per fix variant: (cells isolated, cells measured) in the environments where `plain` leaks."""
    leaking = {_env_key(c) for c in app_cells if c["variant"] == "plain" and c["scope"] == "leak"}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in app_cells:
        if c["variant"] in fix_variants and _env_key(c) in leaking and c["scope"] in KNOWN_SCOPES:
            counts[c["variant"]][1] += 1
            counts[c["variant"]][0] += c["scope"] == "isolated"
    return {v: (n, total) for v, (n, total) in counts.items() if total}


def _tracing_note(app: AppAxes | None, tracing: str) -> str:
    if app is None:
        return ""
    return {"detached": app.advice.detached, "nested": app.advice.nested}.get(tracing, "")


def _where(differs: list[str], answer: str) -> str:
    """'py3.7 · sentry-sdk 0.19.5 · twisted 20.3.0' (one), or 'N stacks (see where the answer differs)'."""
    found = [d[len(answer) + 4:] for d in differs if d.startswith(answer + " on ")]
    many = any(d.startswith("...") for d in differs) or len(found) > 1
    return found[0] if len(found) == 1 and not many else "older or other stacks (see where the answer differs)"


def advice_line(app: AppAxes | None, variant: str, scope: str, tracing: str, differs: list[str],
                fixes: dict[str, tuple[int, int]], reason: str = "") -> str:
    """One line of advice that agrees with the data of this app and variant."""
    fix_names = [name for name, _ in app.advice.fixes] if app else []
    leaks_elsewhere = any(d.startswith("leak") for d in differs)
    if scope == "unknown":
        text = "No cell of this variant could answer" + (f": {reason}" if reason else " (see the cells' reasons).")
    elif variant == "plain":
        if scope == "leak":
            text = (app.advice.leak if app else "") or "Scope data leaks between concurrent units."
            good = [f"{v} ({n}/{t})" for v, (n, t) in fixes.items() if n == t]
            text += (" Measured to isolate where plain leaks: " + ", ".join(good) + "."
                     if good else " No fix variant measured here isolated every leaking environment.")
        else:
            text = app.advice.isolated if app else "Nothing to do."
            if leaks_elsewhere:
                text += f" But it leaks on {_where(differs, 'leak')}: " + ((app.advice.leak if app else "") or "upgrade.")
    elif variant in fix_names:
        if scope == "isolated":
            text = "This fix keeps scope data apart" + (
                f" here, but not on {_where(differs, 'leak')}." if leaks_elsewhere else ".")
        else:
            text = "This fix does not keep scope data apart here."
    else:
        text = ("Scope data stays apart in this configuration." if scope == "isolated"
                else "Scope data leaks in this configuration.")
    note = _tracing_note(app, tracing)
    return f"{text} {note}".strip()


def summarize(cells: list[dict[str, Any]], apps: Mapping[str, AppAxes]) -> list[dict[str, Any]]:
    """The `summary` array of matrix.json: one entry per app and variant, plain first."""
    by_app: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        by_app[c["app"]].append(c)
    out = []
    for app_name in sorted(by_app, key=lambda a: (a != "threads", a)):
        app_cells = by_app[app_name]
        app = apps.get(app_name)
        fix_names = [name for name, _ in app.advice.fixes] if app else []
        fixes = fixes_that_isolate(app_cells, fix_names)
        groups = sorted({(c["variant"], c.get("route") or "") for c in app_cells},
                        key=lambda g: (g[0] != "plain", g[0] not in fix_names,
                                       fix_names.index(g[0]) if g[0] in fix_names else 0, g))
        for variant, route in groups:
            mine = [c for c in app_cells if c["variant"] == variant and (c.get("route") or "") == route]
            known = [c for c in mine if c["scope"] in KNOWN_SCOPES]
            head = max(known or [c for c in mine if c["verdict"] != "unsupported"] or mine, key=newest_key)
            scope = head["scope"] if known else "unknown"
            differs = _differs(known, scope)
            entry = {"app": app_name, "variant": variant, "cell": head["id"], "stack": stack_label(head),
                     "scope": scope, "tracing": head.get("tracing", "unknown"),
                     "advice": advice_line(app, variant, scope, head.get("tracing", "unknown"), differs, fixes,
                                           "" if known else head.get("reason", "")),
                     "differs": differs, "measured": len(known), "cells": len(mine)}
            if route:
                entry["route"] = route
            if variant in fix_names and app is not None:
                entry["fix_code"] = dict(app.advice.fixes)[variant]
            out.append(entry)
    return out

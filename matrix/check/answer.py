"""What check says: the report as text for people and as JSON for machines (the same content), and the
exit code. Pure: the command line prints what these functions return.

Exit codes: 0 every counted model keeps scope data apart; 1 a counted model leaks; 3 a counted model (or a
framework no model covers) could not be answered. 2 (bad input) is raised before anything is answered.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..paths import REPO
from .model_answer import Fix, Match, ModelAnswer, RouteAnswer
from .models import Mapping
from .results import Results
from .stack import Stack

EXIT_ISOLATED, EXIT_LEAK, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
MARK = {"isolated": "✅ isolated", "leak": "❌ LEAK", "unknown": "❔ unknown"}
FORMAT_VERSION = 1


@dataclass
class Report:
    mode: str  # "lookup" or "run"
    stack: Stack
    mapping: Mapping
    answers: list[ModelAnswer]
    results: Results | None  # the committed results (None: none could be read)
    notes: list[str] = field(default_factory=list)
    installed: bool = False  # the harness runs from an installed package (no checkout: no nox)
    run_dir: str | None = None  # where --run wrote its logs
    relevant: tuple[str, ...] = ()  # the packages the answers depend on, in order

    @property
    def counted(self) -> list[ModelAnswer]:
        return [a for a in self.answers if a.implied.counted]

    @property
    def exit_code(self) -> int:
        if any(a.scope == "leak" for a in self.counted):
            return EXIT_LEAK
        if any(a.scope != "isolated" for a in self.counted) or any(counted for _, counted in self.mapping.unmodelled):
            return EXIT_UNKNOWN
        return EXIT_ISOLATED

    @property
    def answer(self) -> str:
        return {EXIT_LEAK: "leak", EXIT_UNKNOWN: "unknown", EXIT_ISOLATED: "isolated"}[self.exit_code]


def shown_path(path: str, installed: bool) -> str:
    """A results file as the user should read it: relative to here, or `results/...` of the installed package."""
    if installed and os.path.abspath(path).startswith(REPO + os.sep):
        return os.path.relpath(path, REPO) + ", installed with the package"
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def here(path: str) -> str:
    """A path as the user should type it: relative to the working directory when below it, else absolute."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else os.path.abspath(path)


def rerun_command(cell_id: str, installed: bool) -> str:
    return f"sentry-context-matrix cell {cell_id}" if installed else f"nox -s cell -- {cell_id}"


def log_path(cell: dict[str, Any]) -> str | None:
    """Where the cell's log is: a path that exists here, or where it lives in the repository."""
    if not cell.get("log"):
        return None
    path = os.path.join(cell.get("_dir", ""), cell["log"])
    if os.path.exists(path):
        return here(path)
    folder = os.path.basename(cell.get("_dir", "").rstrip(os.sep))
    where = "results/full/" if folder == "full" else "results/"
    return f"{where}{cell['log']} (in the repository; logs are not installed with the package)"


def evidence(cell: dict[str, Any], limit: int = 2) -> list[str]:
    """The first findings behind a cell's answers: the leaked values, the misplaced or missing spans."""
    checks = cell.get("checks", {})
    names = []
    if cell.get("scope") == "leak":
        names += ["scope_leak", "children_bleed"]
    if cell.get("tracing") == "nested":
        names.append("span_nesting")
    if cell.get("tracing") == "detached":
        names.append("delivery")
    out = []
    for name in names:
        check = checks.get(name, {})
        if check.get("ok") is False:
            lines = [str(x) for x in check.get("evidence", []) if not str(x).startswith("... and")]
            more = len(check.get("evidence", [])) - len(lines[:limit])
            out += [f"{line}" for line in lines[:limit]]
            if more > 0:
                out.append(f"... ({name}: {more} more)")
    if not out and cell.get("reason") and cell.get("scope") == "leak":
        out.append(cell["reason"])
    return out


# ---- JSON --------------------------------------------------------------------------------------------

def _match_json(match: Match | None, installed: bool) -> dict[str, Any] | None:
    if match is None:
        return None
    cell = match.cell
    return {"cell": cell["id"], "exact": match.exact, "differs": match.differs, "support": match.support,
            "other_side": match.other["id"] if match.other else None, "uncertain": match.uncertain,
            "notes": match.notes,
            "log": log_path(cell), "rerun": rerun_command(cell["id"], installed), "evidence": evidence(cell),
            "derived_from_verdict": bool(cell.get("_derived")), "verdict": cell.get("verdict")}


def _fix_json(fix: Fix, installed: bool) -> dict[str, Any]:
    return {"variant": fix.variant, "code": fix.code, "scope": fix.scope, "tracing": fix.tracing,
            "helps": fix.helps, "checked_by": _match_json(fix.match, installed)}


def _route_json(route: RouteAnswer, installed: bool) -> dict[str, Any]:
    return {"route": route.route, "scope": route.scope, "tracing": route.tracing, "reason": route.reason,
            "match": _match_json(route.match, installed), "fixes": [_fix_json(f, installed) for f in route.fixes],
            "fixed_in": route.fixed_in}


def to_json(report: Report) -> dict[str, Any]:
    stack = report.stack
    return {
        "format": FORMAT_VERSION,
        "mode": report.mode,
        "answer": report.answer,
        "exit_code": report.exit_code,
        "inputs": [{"source": s, "kind": k} for s, k in zip(stack.sources, stack.kinds)],
        "python": stack.python,
        "python_from": stack.python_from,
        "stack": {name: {"version": p.version, "specifier": str(p.specifier) or None, "origin": p.origin,
                         "how": p.how or None}
                  for name, p in sorted(stack.packages.items(), key=lambda kv: _relevance(kv[0], report))},
        "results": [{"path": f.path, "schema": f.schema, "generated_at": f.generated_at, "cells": f.cells}
                    for f in (report.results.files if report.results else [])],
        "history": bool(report.results and report.results.history),
        "run_dir": here(report.run_dir) if report.run_dir else None,
        "models": [{"app": a.implied.app, "why": a.implied.why, "counted": a.implied.counted,
                    "condition": a.implied.condition or None, "measured_now": a.measured_now,
                    "scope": a.scope, "tracing": a.tracing, "advice": a.advice,
                    "route_notes": a.implied.route_notes,
                    "routes": [_route_json(r, report.installed) for r in a.routes]} for a in report.answers],
        "not_implied": report.mapping.not_implied,
        "unmodelled": [{"line": line, "counted": counted} for line, counted in report.mapping.unmodelled],
        "notes": report.notes + stack.notes + (report.results.notes if report.results else []),
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=1, ensure_ascii=False)


def _relevance(name: str, report: Report) -> tuple:
    return (report.relevant.index(name) if name in report.relevant else len(report.relevant), name)


# ---- text --------------------------------------------------------------------------------------------

def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.splitlines()]


def _match_lines(match: Match, installed: bool, prefix: str = "   ") -> list[str]:
    cell = match.cell
    lines = [f"{prefix}cell: {cell['id']}" + (" (your stack exactly)" if match.exact else "")]
    if not match.exact:
        lines.append(f"{prefix}  nearest measured: {'; '.join(match.differs)}")
        if match.support:
            lines.append(f"{prefix}  {match.support}")
    lines += [f"{prefix}  note: {note}" for note in match.notes]
    if cell.get("_derived"):
        lines.append(f"{prefix}  (schema-1 results: scope derived from the verdict `{cell.get('verdict')}`)")
    found = evidence(cell)
    if found:
        lines.append(f"{prefix}evidence: " + "; ".join(found))
    path = log_path(cell)
    if path:
        lines.append(f"{prefix}log: {path}")
    lines.append(f"{prefix}rerun: {rerun_command(cell['id'], installed)}")
    return lines


def _fix_lines(route: RouteAnswer, installed: bool) -> list[str]:
    """The fixes that help, as code to paste (at most two), each with the cell that checked it; else the one
    tried, said plainly; the other variants by name."""
    if not route.fixes:
        return []
    lines = []
    helping = [f for f in route.fixes if f.helps]
    shown = helping[:2] or route.fixes[:1]
    for fix in shown:
        if fix.match is None:
            checked = "not measured for this stack"
        else:
            where = fix.match.cell["id"] + ("" if fix.match.exact else f", nearest: {'; '.join(fix.match.differs)}")
            checked = f"scope {fix.scope} · tracing {fix.tracing} on {where}"
        head = "fix" if fix.helps else "tried, does not help here"
        lines.append(f"   {head} ({fix.variant}), checked by its own cell: {checked}")
        lines += _indent(fix.code, "       ")
    others = [f for f in route.fixes if f not in shown]
    if others:
        lines.append("   other fix variants: " + ", ".join(f"{f.variant} (scope {f.scope} · tracing {f.tracing})"
                                                         for f in others))
    return lines


def render_text(report: Report) -> str:
    stack = report.stack
    out = []
    sources = ", ".join(stack.sources)
    out.append(f"check ({report.mode}): {sources} · Python {stack.python} ({stack.python_from})")
    shown = [stack.packages[n].label for n in report.relevant if n in stack.packages]
    if shown:
        out.append("stack: " + " · ".join(shown))
    if report.results and report.results.files:
        files = []
        for f in report.results.files:
            files.append(f"{shown_path(f.path, report.installed)} (schema {f.schema}, {f.generated_at[:10]}"
                         + (": scope derived from the verdicts" if f.schema < 2 else "") + ")")
        out.append(("measured now; lookups from: " if report.mode == "run" else "answers from: ") + ", ".join(files))
    if report.run_dir:
        out.append(f"logs of this run: {here(report.run_dir)}")
    out.append("")
    out.append("models this stack implies:")
    for answer in report.answers:
        implied = answer.implied
        line = f"  {implied.why}"
        if not implied.counted:
            line += f" — only {implied.condition} (not counted; --uses {implied.app} counts it)"
        out.append(line)
        out += [f"      {note}" for note in implied.route_notes]
    out += [f"  {line}" for line in report.mapping.not_implied]
    out += [f"  not modelled: {line}" for line, _ in report.mapping.unmodelled]
    for answer in report.answers:
        out.append("")
        out += _model_lines(answer, report)
    notes = report.notes + stack.notes + (report.results.notes if report.results else [])
    if notes:
        out.append("")
        out += [f"note: {n}" for n in notes]
    out.append("")
    out.append(_closing(report))
    return "\n".join(out) + "\n"


def _model_lines(answer: ModelAnswer, report: Report) -> list[str]:
    implied = answer.implied
    source = " (measured now)" if answer.measured_now else ""
    counted = "" if implied.counted else " [not counted]"
    lines = []
    for route in answer.routes:
        name = implied.app + (f" on {route.route}" if route.route else "")
        lines.append(f"{MARK[route.scope]}  {name}: scope {route.scope} · tracing {route.tracing}{source}{counted}")
        if route.reason:
            lines.append(f"   {route.reason}")
        if route.match is not None:
            lines += _match_lines(route.match, report.installed)
        lines += [f"   fixed in: {line}" for line in route.fixed_in]
        lines += _fix_lines(route, report.installed)
    if answer.advice:
        lines.append(f"   advice: {answer.advice}")
    return lines


def _closing(report: Report) -> str:
    counted = report.counted
    leaking = [a.implied.app for a in counted if a.scope == "leak"]
    unknown = [a.implied.app for a in counted if a.scope not in ("leak", "isolated")]
    unmodelled = [line.split(":")[0] for line, c in report.mapping.unmodelled if c]
    if leaking:
        head = f"LEAK: scope data leaks in {', '.join(leaking)} ({len(leaking)} of {len(counted)} counted models)"
    elif unknown or unmodelled:
        parts = ([f"no answer for {', '.join(unknown)}"] if unknown else []) + \
            ([f"not modelled: {', '.join(unmodelled)}"] if unmodelled else [])
        head = "UNKNOWN: " + "; ".join(parts)
    else:
        head = (f"ISOLATED: every counted model keeps scope data apart ({len(counted)} "
                f"model{'s' if len(counted) != 1 else ''})")
    hint = ""
    nearest = any(r.match is not None and not r.match.exact for a in counted for r in a.routes)
    if report.mode == "lookup" and (nearest or unknown):
        hint = "; measure your exact stack with --run"
    return f"{head} (exit {report.exit_code}){hint}"

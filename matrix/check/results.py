"""The measured answers `check` looks up: results/matrix.json (default size) and results/full/matrix.json
(nightly size) merged by cell id (the newer file wins), and results/history.json when it exists.

Schema 2 cells carry `scope` and `tracing`. Schema 1 files (before the two answers) still answer: scope
is derived from the machine verdict (leak -> leak; isolated, nested, lost -> isolated; else unknown),
tracing from the verdicts that tell it (isolated -> parallel, nested -> nested), and the answer says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from ..paths import RESULTS_DIR
from ..plan.cells import CellIdError, parse_cell_id

SCOPE_FROM_VERDICT = {"leak": "leak", "isolated": "isolated", "nested": "isolated", "lost": "isolated"}
TRACING_FROM_VERDICT = {"isolated": "parallel", "nested": "nested"}


class ResultsMissing(LookupError):
    """No results file to answer from (exit 3)."""


@dataclass(frozen=True)
class ResultsFile:
    path: str
    schema: int
    generated_at: str
    command: str
    cells: int


@dataclass
class Results:
    cells: list[dict[str, Any]]
    summary: list[dict[str, Any]] = field(default_factory=list)
    not_planned: list[dict[str, Any]] = field(default_factory=list)
    files: list[ResultsFile] = field(default_factory=list)
    history: "History | None" = None
    notes: list[str] = field(default_factory=list)

    @property
    def derived(self) -> bool:
        return any(f.schema < 2 for f in self.files)

    def of(self, app: str, variant: str, route: str | None) -> list[dict[str, Any]]:
        return [c for c in self.cells if c["app"] == app and c["variant"] == variant
                and (c.get("route") or None) == route]

    def fix_code(self, app: str, variant: str) -> str | None:
        return next((s["fix_code"] for s in self.summary if s.get("app") == app and s.get("variant") == variant
                     and s.get("fix_code")), None)


def default_dirs() -> list[str]:
    return [RESULTS_DIR, os.path.join(RESULTS_DIR, "full")]


def normalize(cell: dict[str, Any], schema: int, results_dir: str) -> dict[str, Any] | None:
    """A results cell with its answers (derived on schema 1), the python minor and the pins of its id."""
    try:
        _, _, minor, pins, _ = parse_cell_id(cell["id"])
    except (CellIdError, KeyError):
        return None
    out = dict(cell)
    if "scope" not in out or schema < 2:
        out["scope"] = SCOPE_FROM_VERDICT.get(cell.get("verdict", ""), "unknown")
        out["tracing"] = TRACING_FROM_VERDICT.get(cell.get("verdict", ""), "unknown")
        out["_derived"] = True
    out["_minor"] = minor
    out["_pins"] = dict(pins)
    out["_dir"] = results_dir
    return out


def load_results(dirs: list[str] | None = None, explicit: bool = False) -> Results:
    """Every matrix.json found in these directories (default: results/ and results/full/), merged."""
    by_id: dict[str, tuple[str, dict[str, Any]]] = {}
    results = Results([])
    not_planned: dict[str, dict[str, Any]] = {}
    summaries: list[tuple[str, list[dict[str, Any]]]] = []
    for directory in dirs or default_dirs():
        path = directory if directory.endswith(".json") else os.path.join(directory, "matrix.json")
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            if explicit:
                raise ResultsMissing(f"{path}: no such results file") from None
            continue
        except (OSError, ValueError) as exc:
            results.notes.append(f"{path} skipped: not readable JSON ({exc})")
            continue
        schema = int(doc.get("schema", 1))
        stamp = str(doc.get("generated_at", ""))
        folder = os.path.dirname(path)
        results.files.append(ResultsFile(path, schema, stamp, str(doc.get("command", "")), len(doc.get("cells", []))))
        for raw in doc.get("cells", []):
            cell = normalize(raw, schema, folder)
            if cell is None:
                continue
            previous = by_id.get(cell["id"])
            if previous is None or stamp > previous[0]:
                by_id[cell["id"]] = (stamp, cell)
        for entry in doc.get("not_planned", []):
            not_planned.setdefault(entry.get("id", ""), entry)
        summaries.append((stamp, doc.get("summary", [])))
        history = _history_beside(folder)
        if history is not None and results.history is None:
            results.history = history
        elif os.path.exists(os.path.join(folder, "history.json")) and results.history is None:
            results.notes.append(f"{os.path.join(folder, 'history.json')} is not in a shape check reads; ignored")
    if not results.files:
        where = ", ".join(os.path.join(d, "matrix.json") for d in (dirs or default_dirs()))
        raise ResultsMissing(f"no results to look up ({where} missing): run `nox -s matrix`, or measure your stack "
                             "with --run")
    results.cells = [cell for _, cell in by_id.values()]
    results.not_planned = list(not_planned.values())
    for _, summary in sorted(summaries, key=lambda s: s[0], reverse=True):
        results.summary += summary
    return results


# ---- history.json (issue 13: where verdicts change) ----------------------------------------------

def _v(text: str) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Span:
    """A range of consecutive releases with the same answers: first..last, both measured."""

    first: Version
    last: Version
    scope: str
    tracing: str


@dataclass(frozen=True)
class Timeline:
    app: str
    variant: str
    python: str | None  # a minor, or None for any
    package: str
    fixed: tuple[tuple[str, str], ...]  # the other pins the timeline was measured with
    spans: tuple[Span, ...]


class History:
    """Timelines of answers over every release of one package. Read from results/history.json written by
    `nox -s history`: its `lines`, each with a `timeline` of ranges (`from`/`to`, `scope`, `tracing`), or in
this shape (unknown keys ignored; `from`/`to` accepted for `first`/`last`):

        {"timelines": [{"app": "threads", "variant": "plain", "python": "3.12", "package": "sentry-sdk",
                        "fixed": {"gevent": "26.9.0"},
                        "ranges": [{"first": "0.9.0", "last": "1.2.0", "scope": "leak", "tracing": "..."}, ...]}]}
    """

    def __init__(self, timelines: list[Timeline]):
        self.timelines = timelines

    def find(self, app: str, variant: str, python: str, package: str,
             others: dict[str, str]) -> Timeline | None:
        for timeline in self.timelines:
            if (timeline.app, timeline.variant, timeline.package) != (app, variant, package):
                continue
            if timeline.python not in (None, python):
                continue
            if all(others.get(name) == version for name, version in timeline.fixed):
                return timeline
        return None

    @staticmethod
    def span_of(timeline: Timeline, version: str) -> Span | None:
        wanted = _v(version)
        if wanted is None:
            return None
        return next((s for s in timeline.spans if s.first <= wanted <= s.last), None)


def parse_history(doc: Any) -> History | None:
    entries = (doc.get("timelines") or doc.get("lines")) if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        return None
    timelines = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"app", "variant", "package"} <= set(entry):
            continue
        spans = []
        if entry.get("status", "done") != "done":
            continue  # a line the history run did not finish says nothing yet
        for span in entry.get("ranges") or entry.get("spans") or entry.get("timeline") or []:
            first, last = _v(span.get("first", span.get("from", ""))), _v(span.get("last", span.get("to", "")))
            if first is None or last is None or span.get("scope") not in ("isolated", "leak", "unknown"):
                continue
            spans.append(Span(first, last, span["scope"], str(span.get("tracing", "unknown"))))
        if spans:
            python = entry.get("python")
            timelines.append(Timeline(entry["app"], entry["variant"],
                                      ".".join(str(python).split(".")[:2]) if python else None,
                                      entry["package"], tuple(sorted((entry.get("fixed") or {}).items())),
                                      tuple(sorted(spans, key=lambda s: s.first))))
    return History(timelines) if timelines else None


def _history_beside(folder: str) -> History | None:
    try:
        with open(os.path.join(folder, "history.json"), encoding="utf-8") as fh:
            return parse_history(json.load(fh))
    except (OSError, ValueError):
        return None

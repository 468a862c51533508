"""Judge a RunRecord: pure functions from what was observed to a verdict with evidence.

Checks (each {ok, evidence}):
- scope_leak: an event or transaction of unit i carries a value only unit j wrote.
- span_nesting: a unit's transaction holds another unit's span, or a parallel child span has a
  sibling child as an ancestor ("nested when they should be parallel").
- delivery: every unit's message and transaction arrived, with the unit's own scope data and
  every span the unit says it opened.
- control: the positive control (all units writing one shared scope) must be seen leaking;
  if it is not, the probe is blind and the cell is `error`, so `isolated` always means something.
Verdict precedence: error/timeout, then leak, nested, lost, else isolated.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from .records import RunRecord

VERDICTS = ("isolated", "leak", "nested", "lost", "error", "timeout", "unsupported", "flaky")
MAX_EVIDENCE = 25
_UNIT_SPAN = re.compile(r"^unit-(\d+)\.(.+)$")
_UNIT_TAG = re.compile(r"^unit\.(\d+)$")


@dataclass
class Check:
    ok: bool
    evidence: list[str] = field(default_factory=list)
    measured: dict[str, Any] | None = None  # numbers behind the check (memory), if any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "evidence": self.evidence}
        if self.measured is not None:
            out["measured"] = self.measured
        return out


@dataclass
class Judgement:
    verdict: str
    reason: str
    checks: dict[str, Check]
    context_backend: str

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "context_backend": self.context_backend,
                "checks": {k: v.to_json() for k, v in self.checks.items()}}


# ---- reading events --------------------------------------------------------------------------

def message_text(payload: dict) -> str | None:
    logentry = payload.get("logentry") or {}
    message = payload.get("message")
    if isinstance(message, dict):
        message = message.get("message") or message.get("formatted")
    return logentry.get("message") or logentry.get("formatted") or message


def tags_of(payload: dict) -> dict[str, str]:
    tags = payload.get("tags") or {}
    if isinstance(tags, list):  # [[key, value], ...] in some old payloads
        tags = {str(k): v for k, v in tags}
    return {str(k): str(v) for k, v in tags.items()}


def breadcrumbs_of(payload: dict) -> list[dict]:
    crumbs = payload.get("breadcrumbs") or []
    if isinstance(crumbs, dict):
        crumbs = crumbs.get("values") or []
    return [c for c in crumbs if isinstance(c, dict)]


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_EVIDENCE:
        return lines
    return lines[:MAX_EVIDENCE] + [f"... and {len(lines) - MAX_EVIDENCE} more"]


def foreign_values(label: str, unit: int, payload: dict, with_breadcrumbs: bool = True) -> list[str]:
    """Every value in this event that some other unit wrote, as evidence lines."""
    own = str(unit)
    found: list[str] = []
    tags = tags_of(payload)
    if "unit" in tags and tags["unit"] != own:
        found.append(f"{label} carried tag unit={tags['unit']}")
    for key in sorted(tags):
        m = _UNIT_TAG.match(key)
        if m and m.group(1) != own:
            found.append(f"{label} carried tag {key}={tags[key]}")
    user = payload.get("user") or {}
    if isinstance(user, dict) and user.get("id") is not None and str(user["id"]) != own:
        found.append(f"{label} carried user id {user['id']}")
    if with_breadcrumbs:
        for crumb in breadcrumbs_of(payload):
            msg = crumb.get("message") or ""
            if crumb.get("category") == "unit" and msg != f"unit-{own}":
                found.append(f"{label} carried breadcrumb {msg}")
    extra = payload.get("extra") or {}
    if isinstance(extra, dict) and "unit_name" in extra and str(extra["unit_name"]) != f"unit-{own}":
        found.append(f"{label} carried extra unit_name={extra['unit_name']}")
    ctx = ((payload.get("contexts") or {}).get("unit") or {})
    if isinstance(ctx, dict) and ctx.get("id") is not None and str(ctx["id"]) != own:
        found.append(f"{label} carried context unit.id={ctx['id']}")
    return found


def missing_own_values(label: str, unit: int, payload: dict) -> list[str]:
    """Scope data the unit wrote that its own message event does not carry."""
    own = str(unit)
    tags = tags_of(payload)
    missing = []
    if "unit" not in tags:
        missing.append(f"{label} lacks its own tag unit={own}")
    if f"unit.{own}" not in tags:
        missing.append(f"{label} lacks its own tag unit.{own}=1")
    user = payload.get("user") or {}
    if not isinstance(user, dict) or user.get("id") is None:
        missing.append(f"{label} lacks its own user id {own}")
    if not any(c.get("category") == "unit" and c.get("message") == f"unit-{own}" for c in breadcrumbs_of(payload)):
        missing.append(f"{label} lacks its own breadcrumb unit-{own}")
    return missing


@dataclass
class Observed:
    """The record's items sorted by role: unit -> payload."""

    messages: dict[int, dict]
    controls: dict[int, dict]
    transactions: dict[int, dict]
    duplicates: list[str]


def _trace_units(responses: Iterable[dict]) -> dict[tuple[str, str], int]:
    """(trace_id, span_id) of each unit's transaction, where the app reported them."""
    return {(r["trace_id"], r.get("span_id") or ""): r["unit"] for r in responses
            if isinstance(r.get("unit"), int) and r.get("trace_id")}


def _unit_by_trace(payload: dict, traces: dict[tuple[str, str], int]) -> int | None:
    trace = (payload.get("contexts") or {}).get("trace") or {}
    key = (trace.get("trace_id"), trace.get("span_id") or "")
    if key in traces:
        return traces[key]
    matches = {unit for (trace_id, _), unit in traces.items() if trace_id == trace.get("trace_id")}
    return matches.pop() if len(matches) == 1 else None


def sort_items(items: Iterable[dict], responses: Iterable[dict] = ()) -> Observed:
    """Sort the items by role and unit. A transaction an integration renamed (e.g. to the request
    URL) is matched to its unit by the trace the unit reported, when the app reports it."""
    messages: dict[int, dict] = {}
    controls: dict[int, dict] = {}
    transactions: dict[int, dict] = {}
    duplicates: list[str] = []
    traces = _trace_units(responses)
    for item in items:
        payload = item.get("payload")
        if not isinstance(payload, dict):
            continue
        kind = item.get("type")
        if kind == "transaction" or payload.get("type") == "transaction":
            m = re.match(r"^unit-(\d+)$", str(payload.get("transaction") or ""))
            if not m and traces:
                unit = _unit_by_trace(payload, traces)
                m = re.match(r"^(\d+)$", str(unit)) if unit is not None else None
            target, label = transactions, "transaction"
        elif kind == "event":
            text = message_text(payload) or ""
            m = re.match(r"^unit-(\d+)$", text)
            target, label = messages, "event"
            if not m:
                m = re.match(r"^control-unit-(\d+)$", text)
                target, label = controls, "control event"
        else:
            continue
        if m:
            unit = int(m.group(1))
            if unit in target:
                duplicates.append(f"{label} for unit {unit} arrived twice")
            target[unit] = payload
    return Observed(messages, controls, transactions, duplicates)


# ---- the checks ------------------------------------------------------------------------------

def check_scope_leak(obs: Observed) -> Check:
    lines: list[str] = []
    for unit, payload in sorted(obs.messages.items()):
        lines += foreign_values(f"event unit-{unit}", unit, payload)
    for unit, payload in sorted(obs.transactions.items()):
        lines += foreign_values(f"transaction unit-{unit}", unit, payload, with_breadcrumbs=False)
    return Check(not lines, _cap(lines))


def check_control(obs: Observed, units: int) -> Check:
    """The control must leak: at least one control event carries another unit's value."""
    lines: list[str] = []
    for unit, payload in sorted(obs.controls.items()):
        lines += foreign_values(f"control event unit-{unit}", unit, payload)
    missing = [u for u in range(1, units + 1) if u not in obs.controls]
    if missing:
        lines.append("control events missing for units " + ", ".join(map(str, missing)))
    leaked = any("carried" in line for line in lines)
    return Check(leaked, _cap(lines) if lines else ["no control event carried another unit's value"])


def check_span_nesting(obs: Observed) -> Check:
    lines: list[str] = []
    for unit, txn in sorted(obs.transactions.items()):
        spans = [s for s in txn.get("spans") or [] if isinstance(s, dict)]
        by_id = {s.get("span_id"): s for s in spans}
        own: dict[str, str] = {}
        for span in spans:
            desc = str(span.get("description") or span.get("name") or "")
            m = _UNIT_SPAN.match(desc)
            if not m:
                continue
            if int(m.group(1)) != unit:
                lines.append(f"transaction unit-{unit} contains span {desc}")
            else:
                own[span.get("span_id")] = desc
        for span_id, desc in own.items():
            parent = by_id.get(span_id, {}).get("parent_span_id")
            seen = set()
            while parent and parent not in seen:
                seen.add(parent)
                if parent in own:
                    lines.append(f"span {desc} is nested under its sibling {own[parent]}")
                    break
                parent = by_id.get(parent, {}).get("parent_span_id")
    return Check(not lines, _cap(sorted(set(lines), key=lines.index)))


def traced_units(responses: Iterable[dict], units: int) -> set[int]:
    """Units that started a transaction. An SDK without tracing (before 0.11) answers
    "transaction": null, and then no transaction is expected; without answers, all are."""
    answered = {r["unit"]: r for r in responses if isinstance(r.get("unit"), int)}
    return {u for u in range(1, units + 1) if u not in answered or answered[u].get("transaction") is not None}


def check_delivery(obs: Observed, responses: list[dict], units: int) -> Check:
    lines: list[str] = list(obs.duplicates)
    traced = traced_units(responses, units)
    for unit in range(1, units + 1):
        if unit not in obs.messages:
            lines.append(f"event unit-{unit} never arrived")
        else:
            lines += missing_own_values(f"event unit-{unit}", unit, obs.messages[unit])
        if unit in traced and unit not in obs.transactions:
            lines.append(f"transaction unit-{unit} never arrived")
    for resp in responses:
        unit = resp.get("unit")
        txn = obs.transactions.get(unit) if isinstance(unit, int) else None
        if txn is None:
            continue
        present = {str(s.get("description") or s.get("name") or "") for s in txn.get("spans") or []}
        for desc in resp.get("spans") or []:
            if desc not in present:
                lines.append(f"span {desc} never arrived in transaction unit-{unit}")
    return Check(not lines, _cap(lines))


def check_memory(memory: dict[str, Any]) -> Check:
    """RSS growth per load request in two windows after the warm-up; fails only when both windows
    grow faster than the threshold (a leak keeps growing, warm-up growth flattens)."""
    if memory.get("error"):
        return Check(False, [f"memory probe failed: {memory['error']}"])
    rss = memory["rss_kib"]
    window = memory["requests"] // 2
    slopes = [(rss[i + 1] - rss[i]) / window for i in range(2)]
    limit = memory["threshold_kib_per_request"]
    line = (f"RSS {rss[0]} -> {rss[1]} -> {rss[2]} KiB over 2 x {window} requests after {memory['warmup']} "
            f"warm-up: {slopes[0]:.2f} then {slopes[1]:.2f} KiB/request (threshold {limit:g}, both windows above it "
            "means a leak)")
    lines = [line]
    if memory.get("failed_requests"):
        lines.append(f"{memory['failed_requests']} load requests failed, first: {memory.get('first_failure', '?')}")
    leaking = all(slope > limit for slope in slopes)
    return Check(not leaking and not memory.get("failed_requests"), lines,
                 {"kib_per_request": [round(x, 3) for x in slopes], "threshold_kib_per_request": limit,
                  "requests": memory["requests"], "warmup": memory["warmup"]})


def _failed_requests(record: RunRecord) -> list[str]:
    lines = []
    for name, answers in record.responses.items():
        for resp in answers:
            if resp.get("error"):
                lines.append(f"unit {resp.get('unit')} ({name} round): {resp['error']}")
    return lines


def _barrier_timeouts(record: RunRecord) -> list[str]:
    return [f"unit {r.get('unit')} ({name} round)" for name, answers in record.responses.items()
            for r in answers if r.get("barrier") == "timeout"]


_HINT_WORDS = ("BLOCKED", "Error", "error", "Traceback", "deadlock", "Exception")


def _app_log_hint(tail: list[str]) -> str:
    """The most telling recent line of the app's own log (not the engine's notes), shortened."""
    lines = [line.strip() for line in tail if line.strip() and not line.startswith("[matrix")]
    telling = [line for line in lines if any(word in line for word in _HINT_WORDS)]
    pick = (telling or lines or [""])[-1]
    return pick[:200]


def _first(check: Check) -> str:
    return check.evidence[0] if check.evidence else ""


def judge(record: RunRecord) -> Judgement:
    """One run -> verdict, reason (one line) and checks with evidence."""
    facts = record.facts or {}
    backend = str(facts.get("context_backend") or "unknown")
    normal = record.responses.get("normal", [])
    obs = sort_items(record.items, normal)
    checks = {
        "scope_leak": check_scope_leak(obs),
        "delivery": check_delivery(obs, normal, record.units),
    }
    if any(r.get("spans") for r in normal):
        checks["span_nesting"] = check_span_nesting(obs)
    checks["control"] = check_control(obs, record.units)
    if record.memory is not None:
        checks["memory"] = check_memory(record.memory)

    def result(verdict: str, reason: str) -> Judgement:
        return Judgement(verdict, reason, checks, backend)

    if not record.started:
        verdict = "timeout" if record.timed_out else "error"
        return result(verdict, record.start_error or "the app did not start")
    if record.timed_out:
        return result("timeout", f"the cell ran out of time ({record.timed_out}); see the log")
    if record.exit_signal and not record.killed:
        return result("error", f"the app died with signal {record.exit_signal}")
    failed = _failed_requests(record)
    if failed:
        hint = _app_log_hint(record.log_tail)
        return result("error", failed[0] + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else "")
                      + (f"; app log: {hint}" if hint else ""))
    stuck = _barrier_timeouts(record)
    if stuck:
        return result("timeout", "overlap not forced: " + ", ".join(stuck) + " timed out at the barrier")
    if not checks["control"].ok:
        return result("error", "probe blind: the control round (one shared scope) showed no leak; "
                               + _first(checks["control"]))
    if not checks["scope_leak"].ok:
        return result("leak", _first(checks["scope_leak"]))
    if "span_nesting" in checks and not checks["span_nesting"].ok:
        return result("nested", _first(checks["span_nesting"]))
    if not checks["delivery"].ok:
        return result("lost", "no leak, but " + _first(checks["delivery"]))
    return result("isolated", "")


def combine(judgements: list[Judgement]) -> tuple[Judgement, int]:
    """Repeats of one cell -> one judgement. Disagreeing repeats give `flaky` with the counts."""
    counts = Counter(j.verdict for j in judgements)
    first = judgements[0]
    if len(counts) == 1:
        return first, len(judgements)
    summary = ", ".join(f"{v}x{n}" for v, n in counts.most_common())
    # Keep the evidence of the first repeat that disagreed with the first one.
    odd = next(j for j in judgements if j.verdict != first.verdict)
    return Judgement("flaky", f"repeats disagree: {summary}; e.g. {odd.verdict}: {odd.reason}",
                     odd.checks, first.context_backend), len(judgements)

"""The checks of one run, each {ok, evidence}: scope_leak, control, span_nesting, delivery, memory. Pure.

- scope_leak: an event or transaction of unit i carries a value only unit j wrote.
- span_nesting: a unit's transaction holds another unit's span, or a parallel child span has a
  sibling child as an ancestor ("nested when they should be parallel").
- delivery: every unit's message and transaction arrived, with the unit's own scope data and
  every span the unit says it opened.
- control: the positive control (all units writing one shared scope) must be seen leaking.
- children_bleed: within one unit, a child's scope write (tag child.<i>.<k>) reached the parent's event
  or a sibling's event. Neither a cross-unit leak nor a span problem: its own check.
- memory: RSS growth per load request stays under the threshold.
- propagation: a unit that runs as a task (the app reports the `producer` transaction that enqueued
  it) has its transaction in the producer's trace, as a child of one of the producer's spans.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .events import (_CHILD_TAG, _UNIT_SPAN, MAX_EVIDENCE, Observed, child_events_expected, foreign_values,
                     missing_own_values, producer_keys, tags_of, traced_units)


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


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_EVIDENCE:
        return lines
    return lines[:MAX_EVIDENCE] + [f"... and {len(lines) - MAX_EVIDENCE} more"]


def check_scope_leak(obs: Observed) -> Check:
    lines: list[str] = []
    for unit, payload in sorted(obs.messages.items()):
        lines += foreign_values(f"event unit-{unit}", unit, payload)
    for unit, payload in sorted(obs.transactions.items()):
        lines += foreign_values(f"transaction unit-{unit}", unit, payload, with_breadcrumbs=False)
    for (unit, k), payload in sorted(obs.children.items()):
        lines += foreign_values(f"event unit-{unit}.child-{k}", unit, payload)
    return Check(not lines, _cap(lines))


def check_children_bleed(obs: Observed, responses: list[dict]) -> Check | None:
    """Children that really run concurrently (the unit answers `"children": "spawned"`) each write tag
    child.<i>.<k> and capture their own event, siblings overlapping; the parent captures after joining
    them. None when no unit spawned children (inline children share the parent's scope by design)."""
    spawned = {r["unit"] for r in responses if isinstance(r.get("unit"), int) and r.get("children") == "spawned"}
    if not spawned:
        return None
    lines: list[str] = []
    for unit in sorted(spawned):
        event = obs.messages.get(unit)
        if event is not None:
            for key in sorted(tags_of(event)):
                m = _CHILD_TAG.match(key)
                if m and int(m.group(1)) == unit:
                    lines.append(f"event unit-{unit} carried tag {key} written by its child {m.group(2)}")
    for (unit, k), payload in sorted(obs.children.items()):
        if unit not in spawned:
            continue
        for key in sorted(tags_of(payload)):
            m = _CHILD_TAG.match(key)
            if m and int(m.group(1)) == unit and int(m.group(2)) != k:
                lines.append(f"event unit-{unit}.child-{k} carried tag {key} written by its sibling {m.group(2)}")
    return Check(not lines, _cap(lines), {"units_with_spawned_children": len(spawned)})


def check_propagation(obs: Observed, responses: list[dict]) -> Check | None:
    """Each unit enqueued by a producer transaction (its answer has `producer`) must run in that trace:
    its transaction's trace_id is the producer's and its parent_span_id one of the producer's spans (the
    integration's enqueue span, or the transaction itself). None when no unit reports a producer."""
    enqueued = producer_keys(responses)
    if not enqueued:
        return None
    lines: list[str] = []
    unlinked = 0
    for (trace_id, span_id), unit in sorted(enqueued.items(), key=lambda kv: kv[1]):
        producer, txn = obs.producers.get(unit), obs.transactions.get(unit)
        if producer is None or txn is None:
            what = "its producer transaction" if producer is None else "its own transaction"
            lines.append(f"unit {unit}: {what} never arrived; the link cannot be checked")
            continue
        trace = (txn.get("contexts") or {}).get("trace") or {}
        parents = {span_id} | {s.get("span_id") for s in producer.get("spans") or [] if isinstance(s, dict)}
        if trace.get("trace_id") != trace_id:
            unlinked += 1
            lines.append(f"transaction of unit {unit} ({txn.get('transaction')}) started its own trace "
                         f"{trace.get('trace_id')}, not the trace {trace_id} of {producer.get('transaction')} "
                         "that enqueued it")
        elif trace.get("parent_span_id") not in parents:
            unlinked += 1
            lines.append(f"transaction of unit {unit} is in the producer's trace but its parent span "
                         f"{trace.get('parent_span_id')} is none of {producer.get('transaction')}'s spans")
    return Check(not lines, _cap(lines), {"units": len(enqueued), "unlinked": unlinked})


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


def check_delivery(obs: Observed, responses: list[dict], units: int) -> Check:
    """Everything the units sent arrived. `measured` counts what is missing by kind, so that the
    answers can tell lost events (the scope question cannot be answered) from detached spans."""
    lines: list[str] = list(obs.duplicates)
    missing = {"events": 0, "transactions": 0, "own_values": 0, "spans": 0, "child_events": 0}
    traced = traced_units(responses, units)
    for unit in range(1, units + 1):
        if unit not in obs.messages:
            lines.append(f"event unit-{unit} never arrived")
            missing["events"] += 1
        else:
            own = missing_own_values(f"event unit-{unit}", unit, obs.messages[unit])
            lines += own
            missing["own_values"] += len(own)
        if unit in traced and unit not in obs.transactions:
            lines.append(f"transaction unit-{unit} never arrived")
            missing["transactions"] += 1
    for unit, k in sorted(child_events_expected(responses) - set(obs.children)):
        lines.append(f"event unit-{unit}.child-{k} never arrived")
        missing["child_events"] += 1
    for resp in responses:
        unit = resp.get("unit")
        txn = obs.transactions.get(unit) if isinstance(unit, int) else None
        if txn is None:
            continue
        present = {str(s.get("description") or s.get("name") or "") for s in txn.get("spans") or []}
        for desc in resp.get("spans") or []:
            if desc not in present:
                lines.append(f"span {desc} never arrived in transaction unit-{unit}")
                missing["spans"] += 1
    return Check(not lines, _cap(lines), {"missing": missing})


# Two-sided 95% quantiles of Student's t by degrees of freedom (the probe's windows - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 14: 2.145, 16: 2.120, 20: 2.086, 30: 2.042}


def _t95(df: int) -> float:
    return _T95.get(df) or _T95[max(k for k in _T95 if k <= df)] if df >= 1 else float("inf")


def slope_ci(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares slope of y over x with its 95% confidence interval: (slope, low, high)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in points)
    half = _t95(n - 2) * (residual / (n - 2) / sxx) ** 0.5 if n > 2 else float("inf")
    return slope, slope - half, slope + half


#: The probe may end once this many samples (4 windows of load) already show a leak by check_memory's own rule.
EARLY_STOP_SAMPLES = 5


def _memory_points(memory: dict[str, Any]) -> list[tuple[float, float]]:
    return [(float(s[0]), float(s[1])) for s in memory.get("samples") or [] if s[1] is not None]


def memory_leak_certain(memory: dict[str, Any]) -> bool:
    """Whether the probe can stop before its last window: at least EARLY_STOP_SAMPLES samples, and the
    slope's 95% interval already wholly above the threshold (the rule check_memory judges a leak by).
    An SDK that keeps every request's objects slows down as they pile up, so its later windows are
    the slowest; a cell without a leak always runs every window."""
    points = _memory_points(memory)
    if len(points) < EARLY_STOP_SAMPLES or len({x for x, _ in points}) < 3:
        return False
    return slope_ci(points)[1] > memory["threshold_per_request"]


def check_memory(memory: dict[str, Any]) -> Check:
    """The SDK objects the app still holds after each window of load requests (flushed, gc'd) against
    the requests sent: a leak when the 95% confidence interval of the slope lies wholly above the
    threshold (objects per request). RSS is reported beside it, not judged: allocator pools hide small
    growth and warm-up grows it for thousands of requests."""
    if memory.get("error"):
        return Check(False, [f"memory probe failed: {memory['error']}"])
    samples = [s for s in memory.get("samples") or [] if s[1] is not None]
    points = _memory_points(memory)
    if len({x for x, _ in points}) < 3:
        return Check(False, [f"memory probe got {len(points)} sample(s) at {len({x for x, _ in points})} load "
                             "level(s); a slope needs 3"])
    slope, low, high = slope_ci(points)
    limit = memory["threshold_per_request"]
    rss = [s[2] for s in samples if s[2] is not None]
    lines = [f"SDK objects alive {points[0][1]:.0f} -> {points[-1][1]:.0f} over {memory['requests']} requests in "
             f"{memory.get('windows', len(points) - 1)} windows after {memory['warmup']} warm-up: {slope:.3f} "
             f"objects/request, 95% CI [{low:.3f}, {high:.3f}] (threshold {limit:g}: a leak when the whole "
             f"interval is above it)" + (f"; RSS {rss[0]} -> {rss[-1]} KiB" if rss else "")]
    if memory.get("stopped_early"):
        lines.append(f"the probe stopped early: {memory['stopped_early']}")
    if memory.get("sdk_classes"):
        lines.append("most numerous SDK objects at the end: " + ", ".join(
            f"{name} {n}" for name, n in memory["sdk_classes"].items()))
    if memory.get("failed_requests"):
        lines.append(f"{memory['failed_requests']} load requests failed, first: {memory.get('first_failure', '?')}")
    leaking = low > limit
    return Check(not leaking and not memory.get("failed_requests"), lines,
                 {"sdk_objects_per_request": round(slope, 3), "ci95": [round(low, 3), round(high, 3)],
                  "threshold_per_request": limit, "requests": memory["requests"], "warmup": memory["warmup"],
                  "seconds": memory.get("seconds")})

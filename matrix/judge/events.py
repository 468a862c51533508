"""Reading what the mock server received: the fields of an event, and the items sorted by role and unit. Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

MAX_EVIDENCE = 25
_UNIT_SPAN = re.compile(r"^unit-(\d+)\.(.+)$")
_UNIT_TAG = re.compile(r"^unit\.(\d+)$")
_CHILD_TAG = re.compile(r"^child\.(\d+)\.(\d+)$")  # child k of unit i writes tag child.<i>.<k> = "1"
_CHILD_EVENT = re.compile(r"^unit-(\d+)\.child-(\d+)$")


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


_REPR_STRING = re.compile(r"""^u?(['"])(.*)\1$""", re.S)


def plain_value(value: object) -> str:
    """A scope value as the unit wrote it. SDK 0.7.x sends extra values through repr(), so the string
    unit-4 arrives as "'unit-4'" (u'unit-4' on Python 2): the quotes are the serializer's, not data."""
    text = str(value)
    m = _REPR_STRING.match(text)
    return m.group(2) if m else text


def foreign_values(label: str, unit: int, payload: dict, with_breadcrumbs: bool = True) -> list[str]:
    """Every value in this event that some other unit wrote, as evidence lines."""
    own = str(unit)
    found: list[str] = []
    tags = tags_of(payload)
    if "unit" in tags and tags["unit"] != own:
        found.append(f"{label} carried tag unit={tags['unit']}")
    for key in sorted(tags):
        m = _UNIT_TAG.match(key) or _CHILD_TAG.match(key)  # a child of unit j writes child.<j>.<k>
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
    if isinstance(extra, dict) and "unit_name" in extra and plain_value(extra["unit_name"]) != f"unit-{own}":
        found.append(f"{label} carried extra unit_name={extra['unit_name']}")
    ctx = ((payload.get("contexts") or {}).get("unit") or {})
    if isinstance(ctx, dict) and ctx.get("id") is not None and plain_value(ctx["id"]) != own:
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
    children: dict[tuple[int, int], dict] = field(default_factory=dict)  # (unit, k) -> child k's own event
    producers: dict[int, dict] = field(default_factory=dict)  # unit -> the transaction that enqueued it


def producer_keys(responses: Iterable[dict]) -> dict[tuple[str, str], int]:
    """(trace_id, span_id) of the transaction that enqueued each unit, where the app reports one
    (`producer`: a unit that runs as a task, sent by a request's transaction; apps/README.md)."""
    keys = {}
    for r in responses:
        producer = r.get("producer")
        if isinstance(r.get("unit"), int) and isinstance(producer, dict) and producer.get("trace_id"):
            keys[(producer["trace_id"], producer.get("span_id") or "")] = r["unit"]
    return keys


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
    children: dict[tuple[int, int], dict] = {}
    producers: dict[int, dict] = {}
    duplicates: list[str] = []
    responses = list(responses)
    traces = _trace_units(responses)
    enqueued_by = producer_keys(responses)
    for item in items:
        payload = item.get("payload")
        if not isinstance(payload, dict):
            continue
        kind = item.get("type")
        if kind == "transaction" or payload.get("type") == "transaction":
            trace = (payload.get("contexts") or {}).get("trace") or {}
            producer = enqueued_by.get((trace.get("trace_id"), trace.get("span_id") or ""))
            if producer is not None:  # the request that enqueued the unit, not the unit's own
                if producer in producers:
                    duplicates.append(f"producer transaction for unit {producer} arrived twice")
                producers[producer] = payload
                continue
            m = re.match(r"^unit-(\d+)$", str(payload.get("transaction") or ""))
            if not m and traces:
                unit = _unit_by_trace(payload, traces)
                m = re.match(r"^(\d+)$", str(unit)) if unit is not None else None
            target, label = transactions, "transaction"
        elif kind == "event":
            text = message_text(payload) or ""
            child = _CHILD_EVENT.match(text)
            if child:
                key = (int(child.group(1)), int(child.group(2)))
                if key in children:
                    duplicates.append(f"event unit-{key[0]}.child-{key[1]} arrived twice")
                children[key] = payload
                continue
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
    return Observed(messages, controls, transactions, duplicates, children, producers)


def traced_units(responses: Iterable[dict], units: int) -> set[int]:
    """Units that started a transaction. An SDK without tracing (before 0.11) answers
    "transaction": null, and then no transaction is expected; without answers, all are."""
    answered = {r["unit"]: r for r in responses if isinstance(r.get("unit"), int)}
    return {u for u in range(1, units + 1) if u not in answered or answered[u].get("transaction") is not None}


def child_events_expected(responses: Iterable[dict]) -> set[tuple[int, int]]:
    """(unit, k) of every child event a unit says its children captured (`child_events`: their ids)."""
    return {(r["unit"], k) for r in responses if isinstance(r.get("unit"), int)
            for k, event_id in enumerate(r.get("child_events") or [], 1) if event_id}


def expected_items(units: int, responses: list[dict]):
    """A predicate over received items: true once every unit's message (both rounds), transaction and
    children's events have arrived (this judge's own sorting decides what belongs to which unit,
    renamed transactions included). The run stage waits on it."""
    wanted = set(range(1, units + 1))
    traced = traced_units(responses, units)
    children = child_events_expected(responses)
    producers = set(producer_keys(responses).values())

    def done(items: list[dict]) -> bool:
        obs = sort_items(items, responses)
        return (wanted <= set(obs.messages) and wanted <= set(obs.controls) and traced <= set(obs.transactions)
                and children <= set(obs.children) and producers <= set(obs.producers))

    return done

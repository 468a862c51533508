"""Judge a RunRecord: pure functions from what was observed to a verdict with evidence.

Checks (each {ok, evidence}):
- scope_leak: an event or transaction of unit i carries a value only unit j wrote.
- span_nesting: a unit's transaction holds another unit's span, or a parallel child span has a
  sibling child as an ancestor ("nested when they should be parallel").
- delivery: every unit's message and transaction arrived, with the unit's own scope data and
  every span the unit says it opened.
- propagation (apps whose units are tasks enqueued by a request): each task's transaction continues
  the trace of the transaction that enqueued it; if not, the tracing answer is `detached`.
- control: the positive control (all units writing one shared scope) must be seen leaking;
  if it is not, the probe is blind and the cell is `error`, so `isolated` always means something.
Verdict precedence: error/timeout, then leak, nested, lost, else isolated.

Besides the verdict (for machines), two answers people ask for (schema 2):
- scope: isolated | leak | unknown -- did any unit's event or transaction carry another unit's data?
- tracing: parallel | nested | detached | untested | unknown -- where did the spans go?
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..run.record import RunRecord
from .checks import (Check, check_children_bleed, check_control, check_delivery, check_memory, check_propagation,
                     check_scope_leak, check_span_nesting)
from .events import sort_items

VERDICTS = ("isolated", "leak", "nested", "lost", "error", "timeout", "unsupported", "flaky")
SCOPES = ("isolated", "leak", "unknown")
TRACINGS = ("parallel", "nested", "detached", "untested", "unknown")
INCONCLUSIVE = ("error", "timeout", "unsupported", "flaky")
STACK_FAILS = 4  # the apps' exit code for "the stack cannot run here without the SDK" (apps/README.md)


@dataclass
class Judgement:
    verdict: str
    reason: str
    checks: dict[str, Check]
    context_backend: str
    scope: str = "unknown"
    tracing: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "scope": self.scope, "tracing": self.tracing, "reason": self.reason,
                "context_backend": self.context_backend,
                "checks": {k: v.to_json() for k, v in self.checks.items()}}


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


def blocked_at(report: list[str]) -> str:
    """'; the hub waits in `with self._lock:` (sentry_sdk/transport.py:123)': the innermost frame of the
    hub's OS thread in a deadlock report (the first stack after its header)."""
    hub = []
    for line in report[2:]:
        if line.lstrip().startswith("OS thread"):
            break
        hub.append(line.strip())
    files = [i for i, line in enumerate(hub) if line.startswith("File ")]
    if not files:
        return ""
    where = hub[files[-1]].split('"')
    path = where[1] if len(where) > 2 else "?"
    short = "/".join(path.split("/")[-2:])
    lineno = hub[files[-1]].split("line ")[-1].split(",")[0]
    code = hub[files[-1] + 1] if files[-1] + 1 < len(hub) else ""
    return f"; the hub waits in `{code}` ({short}:{lineno})"


def _first(check: Check) -> str:
    return check.evidence[0] if check.evidence else ""


def scope_answer(verdict: str, checks: dict[str, Check]) -> str:
    """isolated | leak | unknown. A leak seen is a leak; `isolated` needs every unit's own event to have
    arrived with its own data (and a control round that did leak, which the verdict already demands)."""
    if verdict in INCONCLUSIVE:
        return "unknown"
    if not checks["scope_leak"].ok:
        return "leak"
    missing = (checks["delivery"].measured or {}).get("missing", {})
    if missing.get("events") or missing.get("own_values"):
        return "unknown"
    return "isolated"


def tracing_answer(verdict: str, checks: dict[str, Check], traced: bool) -> str:
    """parallel | nested | detached | untested | unknown (see the schema)."""
    if verdict in INCONCLUSIVE:
        return "unknown"
    if not traced:
        return "untested"
    if "span_nesting" in checks and not checks["span_nesting"].ok:
        return "nested"
    missing = (checks["delivery"].measured or {}).get("missing", {})
    if missing.get("transactions"):
        return "unknown"
    if missing.get("spans") or ("propagation" in checks and (checks["propagation"].measured or {}).get("unlinked")):
        return "detached"
    return "parallel" if "span_nesting" in checks else "untested"


def judge(record: RunRecord) -> Judgement:
    """One run -> verdict, reason (one line), the scope and tracing answers, and checks with evidence."""
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
    bleed = check_children_bleed(obs, normal)
    if bleed is not None:
        checks["children_bleed"] = bleed
    propagation = check_propagation(obs, normal)
    if propagation is not None:
        checks["propagation"] = propagation
    checks["control"] = check_control(obs, record.units)
    if record.memory is not None:
        checks["memory"] = check_memory(record.memory)
    traced = any(r.get("transaction") is not None for r in normal)

    def result(verdict: str, reason: str) -> Judgement:
        return Judgement(verdict, reason, checks, backend, scope_answer(verdict, checks),
                         tracing_answer(verdict, checks, traced))

    if not record.started:
        if record.exit_code == STACK_FAILS and not record.timed_out:
            # the app says the framework itself cannot run here (no SDK involved): n/a, not an error
            return result("unsupported", record.start_error or "the stack cannot run here")
        verdict = "timeout" if record.timed_out else "error"
        return result(verdict, record.start_error or "the app did not start")
    if record.deadlock:
        lines = [line.rstrip() for line in record.deadlock.splitlines() if line.strip()]
        checks["deadlock"] = Check(False, lines[:40])
        return result("error", lines[0].split(": no green thread")[0] + blocked_at(lines))
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
    if "propagation" in checks and not checks["propagation"].ok:
        return result("lost", "no leak, but " + _first(checks["propagation"]))
    return result("isolated", "")


def combine(judgements: list[Judgement]) -> tuple[Judgement, int]:
    """Repeats of one cell -> one judgement. Disagreeing repeats give `flaky` with the counts; each answer
    stays what every repeat said, or `unknown` where they disagree."""
    counts = Counter(j.verdict for j in judgements)
    first = judgements[0]
    if len(counts) == 1:
        return first, len(judgements)
    summary = ", ".join(f"{v}x{n}" for v, n in counts.most_common())
    # Keep the evidence of the first repeat that disagreed with the first one.
    odd = next(j for j in judgements if j.verdict != first.verdict)
    scope = first.scope if all(j.scope == first.scope for j in judgements) else "unknown"
    tracing = first.tracing if all(j.tracing == first.tracing for j in judgements) else "unknown"
    return Judgement("flaky", f"repeats disagree: {summary}; e.g. {odd.verdict}: {odd.reason}",
                     odd.checks, first.context_backend, scope, tracing), len(judgements)


def not_judged(verdict: str, reason: str) -> Judgement:
    """The judgement of a cell that never reached its app (unsupported, environment failure, harness error)."""
    checks = {"scope_leak": Check(False, [f"not judged: {reason}"]), "delivery": Check(False, [f"not judged: {reason}"])}
    return Judgement(verdict, reason, checks, "unknown")

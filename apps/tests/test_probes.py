"""The two probes that end a cell early, on real apps: the memory probe catches a per-request leak
planted in a real Channels app (and passes the same app without it), stopping once the leak is
certain (and never for the app without it), and a green app whose hub
deadlocks (the SDK initialised before monkeypatching) ends as `error: deadlock` with the blocked
stacks as evidence instead of hanging until every request times out."""
from dataclasses import replace

import pytest
from packaging.version import Version

from matrix.axes.lock import load_lock
from matrix.axes.spec import load_axes
from matrix.backends.base import EnvUnsupported
from matrix.backends.interpreters import discover
from matrix.backends.venv import VenvSession, prepare_env
from matrix.judge.checks import EARLY_STOP_SAMPLES, memory_leak_certain
from matrix.judge.events import expected_items
from matrix.judge.verdict import judge
from matrix.plan.planner import plan_cells
from matrix.run.cell import RunOptions, run_cell_once
from matrix.sentry.server import MockSentryServer

INTERPRETERS = discover()
PLAN = plan_cells(load_axes(), load_lock(), set(INTERPRETERS))


def newest(app, variant, **where):
    found = [c for c in PLAN if c.app == app and c.variant == variant and not c.unsupported
             and all(getattr(c, k) == v for k, v in where.items())]
    if not found:
        pytest.skip(f"no planned {app}/{variant} cell runs here")
    # the newest releases (compared as versions: "0.9.5" is older than "2.75.0"), then the newest Python
    return max(found, key=lambda c: ([Version(v) for _, v in c.pins], tuple(map(int, c.python.split(".")))))


def run(cell, tmp_path, memory_decided=None):
    try:
        env = prepare_env(INTERPRETERS[cell.python], cell.pin_specs(), requires=list(cell.requires))
    except EnvUnsupported as exc:
        pytest.skip(f"does not install here: {exc}")
    log = tmp_path / (cell.variant + ".log")
    with MockSentryServer() as server:
        record = run_cell_once(cell, env.python, server, str(log), RunOptions(), VenvSession(), expected_items,
                               log_rel=str(log), memory_decided=memory_decided)
    return record, judge(record)


def test_the_memory_probe_catches_a_planted_per_request_leak(tmp_path):
    plain = newest("channels", "plain", route="http-consumer")
    assert plain.memory is not None
    leaky = replace(plain, variant="planted-leak")  # every round keeps copies of its scopes
    _, clean = run(plain, tmp_path)
    record, leaking = run(leaky, tmp_path)
    assert clean.checks["memory"].ok, clean.checks["memory"].evidence
    memory = leaking.checks["memory"]
    assert not memory.ok, memory.evidence
    low, high = memory.measured["ci95"]
    assert low > memory.measured["threshold_per_request"], memory.measured
    assert "Scope" in " ".join(memory.evidence)  # the retained objects are named
    assert len(record.memory["samples"]) == record.memory["windows"] + 1


def test_the_memory_probe_stops_early_only_once_the_leak_is_certain(tmp_path):
    plain = newest("channels", "plain", route="http-consumer")
    leaky = replace(plain, variant="planted-leak")
    record, leaking = run(leaky, tmp_path, memory_leak_certain)
    memory = leaking.checks["memory"]
    assert not memory.ok, memory.evidence  # the same answer as the whole probe gives
    assert record.memory["stopped_early"], record.memory
    assert EARLY_STOP_SAMPLES - 1 <= record.memory["windows"] < plain.memory.windows
    assert len(record.memory["samples"]) == record.memory["windows"] + 1
    assert any("stopped early" in line for line in memory.evidence)
    record, clean = run(plain, tmp_path, memory_leak_certain)
    assert clean.checks["memory"].ok, clean.checks["memory"].evidence
    assert "stopped_early" not in record.memory and record.memory["windows"] == plain.memory.windows


def test_a_deadlocked_green_app_is_error_deadlock_with_the_blocked_stack(tmp_path):
    cell = newest("gevent", "sdk-first")
    record, judgement = run(cell, tmp_path)
    assert record.exit_code == 5, record.log_tail
    assert judgement.verdict == "error" and judgement.reason.startswith("deadlock: the gevent hub has been blocked")
    assert "the hub waits in" in judgement.reason
    evidence = judgement.checks["deadlock"].evidence
    assert any("(the hub's)" in line for line in evidence) and any("File " in line for line in evidence)

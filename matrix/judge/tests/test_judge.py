"""The judge on recorded real runs (records/*.json beside this file were written by real cells).

Each record is what `matrix.run.cell.run_cell_once` observed from a real app and the real mock
server; the judge must reach the verdict the SDK really produced, and tampering with a record
in the ways a regression would must change the verdict.
"""
import copy
import os


from matrix.judge.checks import check_memory
from matrix.judge.events import foreign_values
from matrix.judge.verdict import combine, judge
from matrix.run.record import RunRecord

RECORDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "records")


def load(name: str) -> RunRecord:
    with open(os.path.join(RECORDS, name)) as fh:
        return RunRecord.from_json(fh.read())


def test_threads_run_is_isolated_and_control_leaked():
    j = judge(load("threads-isolated-2.75.0.json"))
    assert j.verdict == "isolated", j.reason
    assert j.checks["control"].ok and any("carried tag unit." in e for e in j.checks["control"].evidence)
    assert j.context_backend == "contextvars"


def test_asyncio_plain_run_leaks_with_evidence():
    j = judge(load("asyncio-plain-leak-1.45.1.json"))
    assert j.verdict == "leak"
    assert j.reason.startswith("event unit-")
    evidence = j.checks["scope_leak"].evidence
    assert any("carried tag unit." in line for line in evidence)
    assert any("carried breadcrumb unit-" in line for line in evidence)


def test_hub_clone_isolates_tags_but_nests_parallel_children():
    j = judge(load("asyncio-hub-clone-nested-1.45.1.json"))
    assert j.checks["scope_leak"].ok
    assert j.verdict == "nested"
    assert "is nested under its sibling" in j.reason


def test_asyncio_integration_run_is_isolated():
    assert judge(load("asyncio-integration-isolated-2.75.0.json")).verdict == "isolated"


def _message_events(record):
    return [i for i in record.items if i["type"] == "event" and i["payload"].get("message", "").startswith("unit-")]


def test_a_foreign_tag_injected_into_an_isolated_run_is_a_leak():
    record = load("threads-isolated-2.75.0.json")
    event = _message_events(record)[0]["payload"]
    event["tags"]["unit.9"] = "1"
    j = judge(record)
    assert j.verdict == "leak"
    assert any("carried tag unit.9=1" in e for e in j.checks["scope_leak"].evidence)


def test_a_missing_transaction_is_lost():
    record = load("threads-isolated-2.75.0.json")
    record.items = [i for i in record.items if not (i["type"] == "transaction" and i["payload"]["transaction"] == "unit-2")]
    j = judge(record)
    assert j.verdict == "lost"
    assert "transaction unit-2 never arrived" in j.checks["delivery"].evidence


def test_a_blind_control_makes_the_cell_an_error():
    record = load("threads-isolated-2.75.0.json")
    for item in record.items:
        msg = item["payload"].get("message") or ""
        if msg.startswith("control-unit-"):
            unit = msg.rsplit("-", 1)[1]
            item["payload"]["tags"] = {"unit": unit, f"unit.{unit}": "1"}
            item["payload"]["user"] = {"id": unit}
            item["payload"]["breadcrumbs"] = {"values": []}
            item["payload"]["extra"] = {}
            item["payload"]["contexts"] = {}
    j = judge(record)
    assert j.verdict == "error" and j.reason.startswith("probe blind")


def test_barrier_timeout_is_reported_not_hidden():
    record = load("threads-isolated-2.75.0.json")
    record.responses["normal"][2]["barrier"] = "timeout"
    j = judge(record)
    assert j.verdict == "timeout" and "unit 3 (normal round)" in j.reason


def test_start_failure_and_crash():
    record = RunRecord(cell_id="x/plain/py3.6/sentry-sdk-1.0.0", units=4, started=False,
                       start_error="the app exited before answering (exit 1): ImportError: no aiocontextvars")
    j = judge(record)
    assert j.verdict == "error" and "ImportError" in j.reason
    crashed = load("threads-isolated-2.75.0.json")
    crashed.exit_signal = 11
    assert judge(crashed).verdict == "error"


def test_foreign_values_reads_every_kind_of_scope_data():
    payload = {"tags": {"unit": "2", "unit.2": "1"}, "user": {"id": "2"},
               "breadcrumbs": {"values": [{"category": "unit", "message": "unit-2"}]},
               "extra": {"unit_name": "unit-2"}, "contexts": {"unit": {"id": "2"}}}
    assert foreign_values("event unit-2", 2, payload) == []
    found = foreign_values("event unit-1", 1, payload)
    assert found == ["event unit-1 carried tag unit=2", "event unit-1 carried tag unit.2=1",
                     "event unit-1 carried user id 2", "event unit-1 carried breadcrumb unit-2",
                     "event unit-1 carried extra unit_name=unit-2", "event unit-1 carried context unit.id=2"]


def test_disagreeing_repeats_are_flaky_with_counts():
    leak = judge(load("asyncio-plain-leak-1.45.1.json"))
    iso = judge(load("asyncio-integration-isolated-2.75.0.json"))
    merged, n = combine([iso, iso, leak])
    assert merged.verdict == "flaky" and n == 3
    assert "isolatedx2" in merged.reason and "leakx1" in merged.reason
    same, _ = combine([leak, copy.deepcopy(leak)])
    assert same.verdict == "leak"


def test_memory_check_is_a_slope_of_sdk_objects_with_a_confidence_interval():
    base = {"requests": 48, "warmup": 16, "windows": 6, "threshold_per_request": 0.5, "failed_requests": 0}
    leak = check_memory(dict(base, samples=[[8 * k, 100 + 4 * 8 * k + (k % 2), 60000] for k in range(7)],
                             sdk_classes={"Scope": 90}))
    assert not leak.ok and abs(leak.measured["sdk_objects_per_request"] - 4.0) < 0.05
    assert leak.measured["ci95"][0] > 0.5 and "Scope 90" in leak.evidence[1]
    flat = check_memory(dict(base, samples=[[8 * k, 90 + (3 if k % 3 else -2), 60000 + 400 * k] for k in range(7)]))
    assert flat.ok  # counts wobble around a constant; RSS growth is reported, not judged
    noisy = check_memory(dict(base, samples=[[8 * k, 90 + (k % 2) * 12 + 0.8 * 8 * k, 1] for k in range(7)]))
    assert noisy.ok and noisy.measured["ci95"][0] < 0.5 < noisy.measured["sdk_objects_per_request"]  # not proven
    assert not check_memory(dict(base, samples=[[8 * k, 1, 1] for k in range(7)], failed_requests=2,
                                 first_failure="unit 1: x")).ok
    assert "memory probe failed" in check_memory({"error": "/memory answered HTTP 404"}).evidence[0]
    assert "a slope needs 3" in check_memory(dict(base, samples=[[0, 1, 1], [0, 2, 2]])).evidence[0]


def test_a_renamed_transaction_is_matched_by_the_trace_the_unit_reported():
    record = load("threads-isolated-2.75.0.json")
    for item in record.items:
        if item["type"] == "transaction" and item["payload"]["transaction"] == "unit-2":
            item["payload"]["transaction"] = "/unit/2"
            trace = item["payload"]["contexts"]["trace"]
    assert judge(copy.deepcopy(record)).verdict == "lost"  # nobody says whose it is
    for answer in record.responses["normal"]:
        if answer["unit"] == 2:
            answer["trace_id"], answer["span_id"] = trace["trace_id"], trace["span_id"]
    assert judge(record).verdict == "isolated"


def test_an_sdk_without_tracing_is_not_expected_to_send_transactions():
    record = load("threads-isolated-2.75.0.json")
    record.items = [i for i in record.items if i["type"] != "transaction"]
    for answer in record.responses["normal"]:
        answer["transaction"], answer["spans"] = None, []
    assert judge(record).verdict == "isolated"


def test_sdk_07_repr_serialized_extras_are_the_units_own_values():
    """SDK 0.7.x sends extra values through repr(): unit-4 arrives as "'unit-4'". A real gevent run on
    0.7.0 keeps every unit apart; reading the quotes as data would call it a leak."""
    record = load("gevent-isolated-0.7.0-repr-extras.json")
    events = [item for item in record.items if '"unit_name": "\'unit-' in __import__("json").dumps(item)]
    assert events, "the record holds repr-quoted extras"
    j = judge(record)
    assert j.verdict == "isolated", j.reason
    payload = {"extra": {"unit_name": "'unit-2'"}, "contexts": {"unit": {"id": "'2'"}}}
    assert foreign_values("event unit-2", 2, payload) == []
    assert foreign_values("event unit-1", 1, dict(payload, extra={"unit_name": "u'unit-2'"})) == [
        "event unit-1 carried extra unit_name=u'unit-2'", "event unit-1 carried context unit.id='2'"]

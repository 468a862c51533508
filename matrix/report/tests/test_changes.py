"""CHANGES.md, changes.json and the badges: newest first, kept across runs, links to both cells' logs."""
import json

import pytest

from matrix.report.badges import badge, badges
from matrix.report.changes import prepend_markdown, publish
from matrix.report.diff import diff_results
from matrix.report.tests.test_roles import T, cell, doc


def night(day, scope_new="leak"):
    old = doc(cell(T + "2.74.0", scope="isolated"), cell(T + "1.45.1", scope="isolated"))
    new = doc(cell(T + "2.75.0", scope=scope_new), cell(T + "1.45.1", scope="leak"))
    new["generated_at"] = f"2026-01-{day:02d}T02:17:00+00:00"
    new["run"] = {"size": "full", "commit": "c" * 40, "lock": "l" * 64}
    return old, new


def test_publish_prepends_entries_and_keeps_the_older_ones(tmp_path):
    for day in (1, 2):
        old, new = night(day, "leak" if day == 1 else "unknown")
        publish(diff_results(old, new), old, new, str(tmp_path), "full", "full",
                "https://github.com/o/r/blob/" + "c" * 40 + "/results/full")
    feed = json.loads((tmp_path / "changes.json").read_text())
    assert [e["date"] for e in feed["entries"]] == ["2026-01-02", "2026-01-01"]
    first = feed["entries"][0]
    assert {c["how"] for c in first["changes"]} == {"cell", "role"}
    role = next(c for c in first["changes"] if c["how"] == "role")
    assert role["role"] == "threads/plain/py3.12/newest sentry-sdk" and role["moved"] == "sentry-sdk 2.74.0 -> 2.75.0"
    assert role["new"]["evidence"] == "full/logs/" + T + "2.75.0.log"
    assert role["old"]["evidence"].startswith("https://github.com/o/r/blob/") and role["old"]["evidence"].endswith("2.74.0.log")
    md = (tmp_path / "CHANGES.md").read_text()
    assert md.startswith("# Changes") and md.index("2026-01-02") < md.index("2026-01-01")
    assert "[now (sentry-sdk-2.75.0)](full/logs/" + T + "2.75.0.log)" in md
    # the same night reported twice: replaced, not repeated
    old, new = night(2, "unknown")
    publish(diff_results(old, new), old, new, str(tmp_path), "full", "full", None)
    assert (tmp_path / "CHANGES.md").read_text().count("<!-- entry ") == 2
    assert len(json.loads((tmp_path / "changes.json").read_text())["entries"]) == 2


def test_no_change_writes_badges_only(tmp_path):
    old = doc(cell(T + "2.75.0"))
    written = publish(diff_results(old, old), old, old, str(tmp_path), "", ".", None)
    assert [p.split("/")[-1] for p in written] == ["threads.json"]
    assert not (tmp_path / "CHANGES.md").exists()


def test_a_broken_feed_is_never_overwritten(tmp_path):
    (tmp_path / "changes.json").write_text("{not json")
    old, new = night(3)
    with pytest.raises(ValueError):
        publish(diff_results(old, new), old, new, str(tmp_path), "full", "full", None)
    assert (tmp_path / "changes.json").read_text() == "{not json"


def test_prepend_markdown_keeps_hand_written_text_above_the_entries():
    text = prepend_markdown("# Changes\n\nhand-written note\n", {
        "key": "k1", "date": "2026-01-01", "folder": "full", "size": "full", "changes": [], "new_cells": 0,
        "vanished_cells": 0})
    assert text.index("hand-written note") < text.index("<!-- entry k1 -->")


def test_badges_say_the_plain_variants_headline_scope():
    d = {"summary": [
        {"app": "gevent", "variant": "plain", "scope": "isolated", "advice": ""},
        {"app": "gevent", "variant": "isolation-scope", "scope": "leak", "advice": ""},
        {"app": "channels", "variant": "plain", "route": "websocket", "scope": "leak", "advice": ""},
        {"app": "channels", "variant": "plain", "route": "http-consumer", "scope": "isolated", "advice": ""},
        {"app": "twisted", "variant": "plain", "scope": "unknown", "advice": ""}]}
    got = badges(d)
    assert got["gevent"] == {"schemaVersion": 1, "label": "gevent", "message": "isolated", "color": "brightgreen"}
    assert got["channels"]["message"] == "leak (1 of 2 routes)" and got["channels"]["color"] == "red"
    assert got["twisted"]["color"] == "lightgrey"
    assert badge("gevent (sdk git)", ["leak"])["label"] == "gevent (sdk git)"


def test_badges_of_a_schema_1_document_come_from_its_newest_plain_cells():
    d = {"cells": [{"id": T + "1.45.1", "app": "threads", "variant": "plain", "verdict": "leak", "python": "3.12.1",
                    "packages": {"sentry-sdk": "1.45.1"}},
                   {"id": T + "2.75.0", "app": "threads", "variant": "plain", "verdict": "isolated", "python": "3.12.1",
                    "packages": {"sentry-sdk": "2.75.0"}}]}
    assert badges(d)["threads"]["message"] == "isolated"


def test_a_difference_that_persists_night_after_night_is_logged_once(tmp_path):
    """The pre-release lane finds the same role difference every night under new ids (new commits)."""
    for day, sha in ((1, "aaaaaaaaaa"), (2, "bbbbbbbbbb")):
        old = doc(cell(T + "2.75.0", scope="isolated"))
        new = doc(cell(T + f"2.75.0+git.{sha}", scope="leak"))
        new["generated_at"] = f"2026-01-{day:02d}T04:47:00+00:00"
        publish(diff_results(old, new), old, new, str(tmp_path), "", ".", "../..")
    entries = json.loads((tmp_path / "changes.json").read_text())["entries"]
    assert len(entries) == 1 and entries[0]["date"] == "2026-01-01"

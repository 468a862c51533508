"""The timeline document and its markdown, and the one-line explanations from /facts. Pure."""
from __future__ import annotations

import pytest

from matrix.bisect.history import carried_lines, cause_text, explain, history_doc, line_doc, render_markdown, timeline
from matrix.bisect.lines import Line
from matrix.bisect.search import UNKNOWN, Answer, Bisection, run_bisection

THREAD_LOCAL = {"context_backend": "thread-local", "context_detail": "sentry_sdk.hub._local is _threading_local.local"}
CONTEXTVARS = {"context_backend": "contextvars", "context_detail": "sentry_sdk.hub._local is _contextvars.ContextVar"}


def m(version, scope, tracing, facts=None, variant="plain", repeat=1, verdict=None, reason="", evidence=None):
    return {"cell": f"threads/{variant}/py3.12/sentry-sdk-{version}", "variant": variant, "repeat": repeat,
            "scope": scope, "tracing": tracing, "verdict": verdict or scope, "reason": reason,
            "context_backend": (facts or {}).get("context_backend"), "facts": facts, "evidence": evidence or {},
            "packages": {"sentry-sdk": version}, "runs": repeat}


def test_explain_names_what_the_facts_show():
    assert explain(m("1", "leak", "nested", THREAD_LOCAL), m("2", "isolated", "parallel", CONTEXTVARS)) == (
        "context storage thread-local -> contextvars; storage detail: sentry_sdk.hub._local is "
        "_threading_local.local -> sentry_sdk.hub._local is _contextvars.ContextVar")
    wrap_b = dict(CONTEXTVARS, sdk_wrapped={"concurrent.futures.ThreadPoolExecutor.submit": False})
    wrap_a = dict(CONTEXTVARS, sdk_wrapped={"concurrent.futures.ThreadPoolExecutor.submit": True},
                  integrations_enabled=["threading"])
    assert explain(m("1", "leak", "nested", wrap_b), m("2", "isolated", "parallel", wrap_a)) == (
        "the SDK now wraps concurrent.futures.ThreadPoolExecutor.submit; integrations enabled: +threading")
    same = explain(m("2.26.0", "leak", "nested", CONTEXTVARS, evidence={"scope_leak": ["event unit-1 carried tag unit=4"]}),
                   m("2.26.1", "isolated", "parallel", CONTEXTVARS))
    assert same.startswith("the apps' /facts show no difference (context storage contextvars on both sides)")
    assert "2.26.0 scope_leak: event unit-1 carried tag unit=4" in same
    crash = explain(m("0.9", "leak", "untested", CONTEXTVARS),
                    m("0.10", UNKNOWN, UNKNOWN, None, verdict="error", reason="ImportError: cannot import name 'Mapping'"))
    assert crash == "the app gave no /facts after the change (error: ImportError: cannot import name 'Mapping')"
    assert explain(m("1.45.1", "leak", "nested", CONTEXTVARS, variant="hub-clone"),
                   m("2.0.0", "isolated", "parallel", CONTEXTVARS, variant="isolation-scope")).startswith(
        "the fix's code changes with the SDK (hub-clone -> isolation-scope)")


VERSIONS = [f"0.{i}.0" for i in range(20)]


def _answers(i):
    if i < 5:
        return "leak", "untested", THREAD_LOCAL
    if i < 8:
        return UNKNOWN, UNKNOWN, None
    return "isolated", "parallel", CONTEXTVARS


def _search():
    measured = {}

    def measure(version, repeat):
        scope, tracing, facts = _answers(VERSIONS.index(version))
        measured[(version, repeat)] = m(version, scope, tracing, facts, repeat=repeat,
                                        verdict="error" if scope == UNKNOWN else None,
                                        reason="ImportError: x" if scope == UNKNOWN else "")
        return Answer(scope, tracing, measured[(version, repeat)]["verdict"])

    return run_bisection(Bisection(VERSIONS, stride=4), measure), measured


def test_timeline_rows_cover_every_release_with_excluded_runs_in_between():
    b, measured = _search()
    releases = [(v, None) for v in VERSIONS[:10]] + [("0.9.5", "x 0.9.5 requires Python >=3.8")] + \
               [(v, None) for v in VERSIONS[10:]]
    rows = timeline(releases, b, measured)
    assert [(r["from"], r["to"], r["kind"]) for r in rows] == [
        ("0.0.0", "0.4.0", "answer"), ("0.5.0", "0.7.0", "unknown"), ("0.8.0", "0.9.0", "answer"),
        ("0.9.5", "0.9.5", "excluded"), ("0.10.0", "0.19.0", "answer")]
    assert sum(r["releases"] for r in rows) == len(releases)
    assert rows[1]["verdicts"] == ["error"] and rows[1]["reason"] == "ImportError: x"
    assert rows[3]["reasons"] == ["requires Python >=3.8"]
    assert rows[0]["context_backend"] == ["thread-local"]


def test_an_unknown_range_with_different_reasons_along_it_names_each_with_its_releases():
    """Flask 3.1 on py3.13: SDK 0.x does not import (collections.Mapping), 1.x imports but its FlaskIntegration
    refuses Flask 3.1. One range that cannot answer; a user on 1.20 must read the second reason, not the first."""
    def reason(i):
        return "ImportError: cannot import name 'Mapping'" if i < 10 else "FlaskIntegration: DidNotEnable"

    measured = {}

    def measure(version, repeat):
        i = VERSIONS.index(version)
        answer = ("isolated", "parallel") if i >= 16 else (UNKNOWN, UNKNOWN)
        measured[(version, repeat)] = m(version, *answer, CONTEXTVARS if i >= 16 else None, repeat=repeat,
                                        verdict="error" if i < 16 else None, reason=reason(i) if i < 16 else "")
        return Answer(*answer, measured[(version, repeat)]["verdict"])

    b = run_bisection(Bisection(VERSIONS, stride=4), measure)
    rows = timeline([(v, None) for v in VERSIONS], b, measured)
    assert [(r["from"], r["to"], r["kind"]) for r in rows] == [("0.0.0", "0.15.0", "unknown"),
                                                                ("0.16.0", "0.19.0", "answer")]
    causes = rows[0]["causes"]
    assert [c["reason"] for c in causes] == [reason(0), reason(10)]
    # each cause spans the releases measured with it (the samples: releases between two causes are not
    # attributed to either, and the row says so by its gap)
    assert [(c["from"], c["to"]) for c in causes] == [("0.0.0", "0.8.0"), ("0.12.0", "0.15.0")]
    text = cause_text(rows[0])
    assert text == ("0.0.0 – 0.8.0: error: ImportError: cannot import name 'Mapping'; "
                    "0.12.0 – 0.15.0: error: FlaskIntegration: DidNotEnable")
    assert cause_text(rows[1] | {"kind": "unknown", "verdicts": ["error"], "reason": "x"}) == "error: x"
    # the same failure in two environments is one cause, and an HTML error page is one line
    from matrix.bisect.history import unknown_causes
    flask = "FlaskIntegration: ImportError: cannot import name '_request_ctx_stack' from 'flask' ({}/flask/__init__.py)"
    same = unknown_causes([("0.6.4", {"verdict": "error", "reason": flask.format("/w/.matrix/envs/2e55/lib")}),
                           ("0.7.2", {"verdict": "error", "reason": flask.format("/w/.matrix/envs/8563/lib")}),
                           ("0.16.4", {"verdict": "error", "reason": "HTTP 500: \n<!doctype html>\n<title>x</title>"})])
    assert [(c["from"], c["to"]) for c in same] == [("0.6.4", "0.7.2"), ("0.16.4", "0.16.4")]
    assert same[0]["reason"].endswith("from 'flask' (...)") and same[1]["reason"] == "HTTP 500: <!doctype html> <title>x</title>"
    # a reason that names its own release is one cause over the releases that fail that way, and an app's
    # log line differs by neither pid nor time; a reason naming another release stays apart
    needs = "variant asgi-middleware needs SentryAsgiMiddleware, which sentry-sdk {} does not have"
    shutdown = "HTTP 500; app log: [django-asgi pid={} 16:19:{}] exiting with code 0: POST /shutdown"
    named = unknown_causes([(v, {"verdict": "error", "reason": needs.format(v)}) for v in ("0.6.4", "0.7.2", "0.7.10")]
                           + [("0.7.11", {"verdict": "error", "reason": needs.format("0.7.1")})]
                           + [(v, {"verdict": "unknown", "reason": shutdown.format(p, s)})
                              for v, p, s in (("0.16.4", 19311, 33), ("0.17.6", 20877, 51))])
    assert [(c["from"], c["to"], c["reason"]) for c in named] == [
        ("0.6.4", "0.7.10", needs.format("<release>")), ("0.7.11", "0.7.11", needs.format("0.7.1")),
        ("0.16.4", "0.17.6", "HTTP 500; app log: [django-asgi] exiting with code 0: POST /shutdown")]


def test_line_doc_and_markdown_name_the_boundary_across_the_unknown_gap_with_links():
    b, measured = _search()
    line = Line("threads", "plain", "3.12", "sentry-sdk", (("sentry-sdk", "*"),))
    logs = {"threads/plain/py3.12/sentry-sdk-0.4.0": "history/logs/threads/plain/py3.12/sentry-sdk-0.4.0.log"}
    d = line_doc(line, [(v, None) for v in VERSIONS], b, measured, logs, 12.0)
    scope = [x for x in d["boundaries"] if x["dimension"] == "scope"][0]
    assert (scope["before"]["version"], scope["after"]["version"], scope["confirmed"]) == ("0.4.0", "0.8.0", True)
    assert scope["between"]["measured"] and "cannot answer" in scope["between"]["note"]
    assert scope["explanation"].startswith("context storage thread-local -> contextvars")
    assert scope["before"]["runs"] == 4 and scope["before"]["log"].endswith("sentry-sdk-0.4.0.log")
    assert [(p["value"], p["from"], p["to"]) for p in d["story"]["scope"]] == [
        ("leak", "0.0.0", "0.4.0"), ("isolated", "0.8.0", "0.19.0")]
    doc = history_doc([d], "nox -s history", "venv", "2026-01-01T00:00:00+00:00", 60.0, ["x/plain/py3.7/sentry-sdk-*"])
    assert doc["totals"]["boundaries"] == len(d["boundaries"]) and not doc["complete"]
    text = render_markdown(doc)
    assert "**Partial**: 1 line(s) not finished" in text
    assert "[0.4.0](history/logs/threads/plain/py3.12/sentry-sdk-0.4.0.log)" in text
    assert "| 0.5.0 – 0.7.0 (3) | cannot answer | cannot answer |" in text
    assert "Scope data: leak 0.0.0 – 0.4.0, isolated 0.8.0 – 0.19.0. Tracing: untested 0.0.0 – 0.4.0" in text
    assert "scope data leak → isolated" in text and "(across releases that cannot answer)" in text


def test_index_html_gets_the_history_section_and_matrix_json_stays_as_it_was(tmp_path):
    import json
    import os

    from matrix.paths import REPO
    from matrix.report.files import write_results

    src = os.path.join(REPO, "results", "matrix.json")
    if not os.path.exists(src):
        pytest.skip("no committed results/matrix.json")
    with open(src) as fh:
        doc = json.load(fh)
    b, measured = _search()
    line = Line("threads", "plain", "3.12", "sentry-sdk", (("sentry-sdk", "*"),))
    history = history_doc([line_doc(line, [(v, None) for v in VERSIONS], b, measured, {}, 1.0)],
                          "nox -s history", "venv", "2026-01-01T00:00:00+00:00", 1.0)
    write_results(doc, str(tmp_path / "with"), history=history)
    write_results(doc, str(tmp_path / "without"))
    page = (tmp_path / "with" / "index.html").read_text()
    assert 'id="history"' in page and "threads/plain/py3.12/sentry-sdk-*" in page and "thread-local -&gt; contextvars" in page
    assert 'id="history"' not in (tmp_path / "without" / "index.html").read_text()
    assert (tmp_path / "with" / "matrix.json").read_text() == (tmp_path / "without" / "matrix.json").read_text()


def test_check_reads_the_history_this_package_writes():
    """`check` answers between measured cells from results/history.json: it must read the very shape
    history_doc writes (lines with a timeline), and skip lines a partial run did not finish."""
    from matrix.check.results import History, parse_history

    b, measured = _search()
    line = Line("threads", "plain", "3.12", "sentry-sdk", (("sentry-sdk", "*"),))
    done = line_doc(line, [(v, None) for v in VERSIONS], b, measured, {}, 1.0)
    unfinished = dict(done, line="threads/plain/py3.11/sentry-sdk-*", python="3.11", status="pending")
    history = parse_history(history_doc([done, unfinished], "nox -s history", "venv",
                                        "2026-01-01T00:00:00+00:00", 1.0))
    assert history is not None and len(history.timelines) == 1
    found = history.find("threads", "plain", "3.12", "sentry-sdk", {})
    assert found is not None and history.find("threads", "plain", "3.11", "sentry-sdk", {}) is None
    assert History.span_of(found, "0.2.0").scope == "leak"
    assert History.span_of(found, "0.9.0").scope == "isolated"
    assert History.span_of(found, "0.6.0").scope == "unknown"


def test_a_history_built_by_several_filtered_runs_names_every_run_and_its_lines():
    b, measured = _search()
    first = line_doc(Line("threads", "plain", "3.12", "sentry-sdk", (("sentry-sdk", "*"),)),
                     [(v, None) for v in VERSIONS], b, measured, {}, 1.0)
    second = dict(first, line="threads/plain/py3.7/sentry-sdk-*", python="3.7")
    first["measured_by"] = {"command": "nox -s history -- --only app=threads", "commit": "a" * 40,
                            "backend": "venv", "at": "2026-01-01T00:00:00+00:00"}
    second["measured_by"] = {"command": "nox -s history -- --only app=gevent", "commit": "b" * 40,
                             "backend": "docker", "at": "2026-01-02T00:00:00+00:00"}
    doc = history_doc([first, second], "nox -s history -- --only app=gevent", "docker",
                      "2026-01-02T00:00:00+00:00", 60.0)
    assert [(r["command"], r["lines"]) for r in doc["runs"]] == [
        ("nox -s history -- --only app=gevent", 1), ("nox -s history -- --only app=threads", 1)]
    text = render_markdown(doc)
    assert "Last written by `nox -s history -- --only app=gevent`" in text
    assert "- `nox -s history -- --only app=threads` at aaaaaaaaaaaa, backend venv, 2026-01-01: 1 line(s)" in text
    single = render_markdown(history_doc([second], "nox -s history -- --only app=gevent", "docker",
                                         "2026-01-02T00:00:00+00:00", 60.0))
    assert "The lines come from these runs" not in single


def test_a_filtered_run_keeps_the_other_lines_and_drops_the_ones_the_history_no_longer_has():
    """Celery 5.3 turned out not to install on 3.7 (kombu 5.3 needs 3.8): the 3.7 lines now fix celery 5.2.7,
    and the lines that fixed 5.3.0 (309 releases that could not answer) must leave the history."""
    old_37 = "celery/plain/py3.7/sentry-sdk-*/celery-5.3.0/on-solo"
    new_37 = "celery/plain/py3.7/sentry-sdk-*/celery-5.2.7/on-solo"
    other = "celery/plain/py3.13/sentry-sdk-*/celery-5.7.0/on-solo"
    measured_again = "threads/plain/py3.13/sentry-sdk-*"
    previous = [{"line": old_37}, {"line": other}, {"line": measured_again}]
    kept, dropped = carried_lines(previous, {new_37, measured_again}, {new_37, other, measured_again})
    assert [d["line"] for d in kept] == [other] and dropped == [old_37]


def test_a_framework_lines_boundary_without_a_facts_difference_is_put_on_the_framework_not_the_sdk():
    """twisted 20.3.0 -> 21.2.0 with sentry-sdk fixed: inlineCallbacks starts copying the caller's context.
    The SDK did not change, so the explanation must not say the change is in the SDK's code paths."""
    facts = {"context_backend": "contextvars"}
    before = {"facts": facts, "packages": {"sentry-sdk": "2.75.0", "twisted": "20.3.0"}}
    after = {"facts": facts, "packages": {"sentry-sdk": "2.75.0", "twisted": "21.2.0"}}
    text = explain(before, after, "scope", package="twisted")
    assert "twisted's own code" in text and "sentry-sdk 2.75.0 on both" in text and "SDK's code paths" not in text
    assert "SDK's code paths" in explain(before, after, "scope")


def test_history_render_rewrites_the_committed_history_with_the_current_grouping_and_measures_nothing(tmp_path):
    """`python -m matrix history --render` (a real process): a history written before causes were grouped by
    release and pid gets them grouped; answers, boundaries and times stay; a missing history is one line."""
    import json
    import subprocess
    import sys

    from matrix.paths import REPO

    b, measured = _search()
    line = Line("threads", "plain", "3.12", "sentry-sdk", (("sentry-sdk", "*"),))
    doc = history_doc([line_doc(line, [(v, None) for v in VERSIONS], b, measured, {}, 12.0)],
                      "nox -s history", "venv", "2026-01-01T00:00:00+00:00", 60.0)
    needs = "needs SentryAsgiMiddleware, which sentry-sdk {} does not have; app log: [threads pid={} 10:00:0{}] bye"
    unknown = next(r for r in doc["lines"][0]["timeline"] if r["kind"] == "unknown")
    unknown["causes"] = [{"from": v, "to": v, "verdict": "error", "reason": needs.format(v, 100 + i, i)}
                         for i, v in enumerate(("0.5.0", "0.6.0", "0.7.0"))]
    before = json.loads(json.dumps(doc))
    (tmp_path / "history.json").write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, "-m", "matrix", "history", "--render", "--results", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "nothing measured" in proc.stdout
    after = json.loads((tmp_path / "history.json").read_text())
    row = next(r for r in after["lines"][0]["timeline"] if r["kind"] == "unknown")
    assert "causes" not in row  # one cause now: the row's own reason says it
    assert after["lines"][0]["boundaries"] == before["lines"][0]["boundaries"]
    assert (after["wall_s"], after["totals"], after["runs"]) == (before["wall_s"], before["totals"], before["runs"])
    assert "history" in (tmp_path / "history.md").read_text().lower()
    missing = subprocess.run([sys.executable, "-m", "matrix", "history", "--render", "--results",
                              str(tmp_path / "none")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "history.json is missing" in missing.stderr


def test_a_long_cause_is_cut_at_a_space_and_says_so():
    from matrix.bisect.history import clipped

    reason = "variant asgi-middleware needs SentryAsgiMiddleware, which sentry-sdk <release> does not have"
    assert clipped(reason, 200) == reason
    cut = clipped(reason, 75)
    assert cut == "variant asgi-middleware needs SentryAsgiMiddleware, which sentry-sdk …"
    assert clipped("x" * 50, 10) == "x" * 10 + " …"

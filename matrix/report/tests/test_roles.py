"""Roles and the role diff: a new release is compared with the release that held its place before."""
from matrix.report.diff import diff_results, render_diff
from matrix.report.roles import derived_answers, roles, successions


def cell(cell_id, scope="isolated", tracing="parallel", verdict=None, **extra):
    app, variant = cell_id.split("/")[:2]
    out = {"id": cell_id, "app": app, "variant": variant, "verdict": verdict or scope, "scope": scope,
           "tracing": tracing, "log": f"logs/{cell_id}.log", "packages": {}, "python": "3.12.1"}
    out.update(extra)
    return out


def doc(*cells):
    return {"schema": 2, "generated_at": "2026-01-01T00:00:00+00:00", "cells": list(cells)}


T = "threads/plain/py3.12/sentry-sdk-"
G = "gevent/plain/py3.12/sentry-sdk-{}/gevent-{}"


def test_roles_name_the_newest_release_and_the_newest_per_major_series():
    held = roles([cell(T + "1.45.1"), cell(T + "2.0.1"), cell(T + "2.75.0")])
    assert held["threads/plain/py3.12/newest sentry-sdk"] == T + "2.75.0"
    assert held["threads/plain/py3.12/newest sentry-sdk 2.x"] == T + "2.75.0"
    assert held["threads/plain/py3.12/newest sentry-sdk 1.x"] == T + "1.45.1"
    assert T + "2.0.1" not in held.values()


def test_roles_with_two_axes_fix_one_and_move_the_other_or_both():
    cells = [cell(G.format(s, g)) for s in ("1.45.1", "2.75.0") for g in ("20.9.0", "26.9.0")]
    held = roles(cells)
    assert held["gevent/plain/py3.12/sentry-sdk 2.75.0/newest gevent"] == G.format("2.75.0", "26.9.0")
    assert held["gevent/plain/py3.12/newest sentry-sdk/gevent 20.9.0"] == G.format("2.75.0", "20.9.0")
    assert held["gevent/plain/py3.12/newest sentry-sdk/newest gevent"] == G.format("2.75.0", "26.9.0")


def test_a_cell_that_could_not_run_holds_no_role():
    held = roles([cell(T + "2.0.1"), cell(T + "2.75.0", scope="unknown", verdict="unsupported")])
    assert held["threads/plain/py3.12/newest sentry-sdk"] == T + "2.0.1"


def test_a_new_release_with_another_answer_is_a_change_by_role():
    old = doc(cell(T + "1.45.1"), cell(T + "2.74.0", scope="isolated"))
    new = doc(cell(T + "1.45.1"), cell(T + "2.75.0", scope="leak", verdict="leak"))
    d = diff_results(old, new)
    (change,) = d.changes
    assert change.how == "role" and change.role == "threads/plain/py3.12/newest sentry-sdk"
    assert change.old["id"] == T + "2.74.0" and change.new["id"] == T + "2.75.0" and change.fields == ("scope",)
    text = render_diff(d)
    assert "by role  threads/plain/py3.12/newest sentry-sdk: sentry-sdk 2.74.0 -> 2.75.0: scope isolated -> leak" in text


def test_a_new_release_with_the_same_answers_is_no_change_but_is_shown_taking_the_role():
    d = diff_results(doc(cell(T + "2.74.0")), doc(cell(T + "2.75.0")))
    assert not d.changed and d.reshaped
    assert "now holds threads/plain/py3.12/newest sentry-sdk, after " + T + "2.74.0, same answers" in render_diff(d)


def test_tracing_counts_by_role_and_every_answer_on_the_same_id():
    old = doc(cell(T + "2.74.0", tracing="parallel"), cell("asyncio/plain/py3.12/sentry-sdk-2.75.0", scope="leak"))
    new = doc(cell(T + "2.75.0", tracing="nested"),
              cell("asyncio/plain/py3.12/sentry-sdk-2.75.0", scope="leak", verdict="flaky"))
    got = {(c.how, c.fields) for c in diff_results(old, new).changes}
    assert got == {("role", ("tracing",)), ("cell", ("verdict",))}


def test_an_older_release_appearing_takes_no_role_from_a_newer_one():
    # a slice that newly includes an older release is not "a new release that changed"
    old = doc(cell(T + "2.75.0"))
    new = doc(cell(T + "2.75.0"), cell(T + "1.45.1", scope="leak"))
    assert not diff_results(old, new).changes and not successions(old["cells"], new["cells"])


def test_two_roles_shared_by_one_pair_give_one_change():
    old = doc(cell(G.format("2.74.0", "26.9.0")))
    new = doc(cell(G.format("2.75.0", "26.9.0"), scope="leak"))
    (change,) = diff_results(old, new).changes  # 'newest sentry-sdk' and 'newest sentry-sdk 2.x', once
    assert change.role == "gevent/plain/py3.12/newest sentry-sdk/gevent 26.9.0"


def test_schema_1_documents_compare_by_verdict_and_a_scope_derived_from_it():
    old = {"schema": 1, "cells": [{"id": T + "2.74.0", "verdict": "leak"}, {"id": T + "1.45.1", "verdict": "lost"}]}
    new = doc(cell(T + "2.75.0", scope="isolated"), cell(T + "1.45.1", scope="isolated", verdict="isolated"))
    assert derived_answers(old["cells"][0]) == {"verdict": "leak", "scope": "leak"}
    got = {(c.how, c.fields) for c in diff_results(old, new).changes}
    # by role: scope leak -> isolated (tracing not compared: schema 1 has none); same id: the verdict only
    # (lost gave no scope answer to compare)
    assert got == {("role", ("scope",)), ("cell", ("verdict",))}

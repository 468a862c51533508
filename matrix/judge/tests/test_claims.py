"""Claims against cells (pure): selectors, evidence rules and the four outcomes."""
import pytest

from matrix.judge.claims import ClaimsError, evaluate, load_claims, matches, parse_claims


def cell(id_, app="gevent", variant="plain", verdict="isolated", python="3.7.16", backend="thread-local",
         checks=None, **packages):
    pk = {"sentry-sdk": "1.45.1"}
    pk.update({k.replace("_", "-"): v for k, v in packages.items()})
    return {"id": id_, "app": app, "variant": variant, "verdict": verdict, "python": python, "packages": pk,
            "context_backend": backend, "checks": checks or {"scope_leak": {"ok": verdict != "leak"}}}


CLAIMS = parse_claims({"claims": [
    {"id": "old-gevent", "section": "s", "text": "t", "predicts": [
        {"where": {"app": "gevent", "packages": {"gevent": "<20.5"}}, "context_backend": ["thread-local"]}]},
    {"id": "iso", "section": "s", "text": "t", "predicts": [{"where": {"app": "gevent"}, "verdict": ["isolated"]}]},
    {"id": "py36", "section": "s", "text": "t", "predicts": [
        {"where": {"python": "~=3.6.0", "packages": {"aiocontextvars": "absent"}}, "verdict": ["error"]}]},
    {"id": "mem", "section": "s", "text": "t", "predicts": [{"where": {"app": "channels"}, "check": {"memory": True}}]},
]})


def test_outcomes_confirmed_contradicted_partly_untested():
    cells = [cell("a", gevent="20.4.0"), cell("b", gevent="20.9.0", backend="contextvars", verdict="leak"),
             cell("c", python="3.6.15", verdict="error"), cell("d", python="3.6.15", verdict="error", aiocontextvars="0.2.2")]
    out = {c["id"]: c for c in evaluate(CLAIMS, cells)}
    assert out["old-gevent"]["observed"] == "confirmed" and out["old-gevent"]["cells"] == ["a"]
    assert out["iso"]["observed"] == "partly" and out["iso"]["disagreeing"] == ["b"]
    assert out["py36"]["observed"] == "confirmed" and out["py36"]["cells"] == ["c"]
    assert out["mem"]["observed"] == "untested"


def test_inconclusive_cells_are_not_evidence():
    cells = [cell("u", verdict="unsupported", gevent="1.4.0"), cell("t", verdict="timeout", gevent="1.4.0"),
             cell("e", verdict="error", gevent="1.4.0", backend="unknown")]
    out = {c["id"]: c for c in evaluate(CLAIMS, cells)}
    assert out["old-gevent"]["observed"] == "untested"
    assert out["iso"]["observed"] == "untested"  # an error where none is predicted says nothing


def test_contradicted_when_every_cell_disagrees():
    out = {c["id"]: c for c in evaluate(CLAIMS, [cell("x", gevent="20.4.0", backend="contextvars")])}
    assert out["old-gevent"]["observed"] == "contradicted"


def test_selector_package_specifiers():
    c = cell("x", gevent="20.5.2")
    assert matches(c, {"packages": {"gevent": ">=20.5"}})
    assert not matches(c, {"packages": {"gevent": "<20.5"}})
    assert matches(c, {"packages": {"eventlet": "absent"}}) and not matches(c, {"packages": {"eventlet": "present"}})
    assert matches(c, {"python": ">=3.7", "app": ["gevent", "eventlet"]})


def test_committed_claims_file_parses_and_bad_entries_are_named():
    assert len(load_claims()) >= 11
    with pytest.raises(ClaimsError, match=r"claims\[0\]\.predicts\[0\]\.where: unknown key\(s\) \['colour'\]"):
        parse_claims({"claims": [{"id": "x", "section": "s", "text": "t",
                                  "predicts": [{"where": {"colour": "red"}, "verdict": ["leak"]}]}]})
    with pytest.raises(ClaimsError, match="give exactly one of"):
        parse_claims({"claims": [{"id": "x", "section": "s", "text": "t", "predicts": [{"where": {}}]}]})

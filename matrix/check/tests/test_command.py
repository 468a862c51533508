"""The `check` command: every exit code, text and JSON output, through the real command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from matrix.axes.releases import Release
from matrix.cli import main
from matrix.paths import CHECKOUT

from .helpers import cell, write_results

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture
def results(tmp_path):
    """Schema-2 results: threads isolated, asyncio plain leaking with two fixes, django-gevent of the case."""
    pins = "gevent-1.4.0/django-3.0.14/gunicorn-20.0.4"
    return write_results(str(tmp_path / "results"), [
        cell("threads/plain/py3.12/sentry-sdk-2.75.0", "isolated"),
        cell("threads/plain/py3.7/sentry-sdk-0.19.5", "isolated"),
        cell("threads/plain/py3.7/sentry-sdk-0.10.2", "isolated"),
        cell("asyncio/plain/py3.12/sentry-sdk-2.75.0", "leak", "nested"),
        cell("asyncio/asyncio-integration/py3.12/sentry-sdk-2.75.0", "isolated"),
        cell("asyncio/isolation-scope/py3.12/sentry-sdk-2.75.0", "isolated", "nested"),
        cell("gevent/plain/py3.7/sentry-sdk-0.10.2/gevent-1.4.0", "isolated", "detached", verdict="lost"),
        cell(f"django-gevent/plain/py3.7/sentry-sdk-0.10.2/{pins}", "leak"),
        cell(f"django-gevent/plain/py3.7/sentry-sdk-0.19.5/{pins}", "isolated"),
    ])


def check(capsys, *args):
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_0_every_counted_model_isolated(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--python", "3.12", "sentry-sdk==2.75.0")
    assert code == 0
    assert "✅ isolated  threads: scope isolated · tracing parallel" in out
    assert "cell: threads/plain/py3.12/sentry-sdk-2.75.0 (your stack exactly)" in out
    assert "rerun: nox -s cell -- threads/plain/py3.12/sentry-sdk-2.75.0" in out
    assert "[not counted]" in out  # asyncio leaks, but the requirements do not say the code runs asyncio tasks
    assert out.rstrip().endswith("(exit 0)")


def test_exit_1_a_leak_with_the_fix_checked(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--python", "3.12", "--uses", "asyncio", "sentry-sdk==2.75.0")
    assert code == 1
    assert "❌ LEAK  asyncio: scope leak · tracing nested" in out
    assert ("fix (asyncio-integration), checked by its own cell: scope isolated · tracing parallel on "
            "asyncio/asyncio-integration/py3.12/sentry-sdk-2.75.0") in out
    assert "AsyncioIntegration()" in out
    assert "LEAK: scope data leaks in asyncio" in out


def test_exit_1_the_issue_stack_from_pins(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--python", "3.7", "django==3.0.14", "gunicorn==20.0.4",
                         "gevent==1.4.0", "sentry-sdk==0.10.2")
    assert code == 1
    assert "django + gunicorn + gevent → django-gevent (gunicorn -k gevent)" in out
    assert "fixed in: sentry-sdk 0.19.5: the first measured release" in out


def test_json_says_the_same(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--format", "json", "--python", "3.7", "django==3.0.14",
                         "gunicorn==20.0.4", "gevent==1.4.0", "sentry-sdk==0.10.2")
    doc = json.loads(out)
    assert code == doc["exit_code"] == 1 and doc["answer"] == "leak" and doc["mode"] == "lookup"
    models = {m["app"]: m for m in doc["models"]}
    assert set(models) >= {"threads", "gevent", "django-gevent", "asyncio"}
    route = models["django-gevent"]["routes"][0]
    assert route["match"]["cell"] == ("django-gevent/plain/py3.7/sentry-sdk-0.10.2/gevent-1.4.0/django-3.0.14/"
                                      "gunicorn-20.0.4") and route["match"]["exact"]
    assert route["match"]["evidence"][0] == "event unit-1 carried tag unit=3"
    assert route["match"]["log"].endswith("gunicorn-20.0.4.log (in the repository; logs are not installed with the "
                                          "package)")
    assert models["gevent"]["scope"] == "isolated" and models["gevent"]["tracing"] == "detached"
    assert list(doc["stack"])[:4] == ["sentry-sdk", "gevent", "django", "gunicorn"]
    assert doc["python_from"] == "--python"


def test_exit_3_a_model_the_results_do_not_hold(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--python", "3.12", "sentry-sdk==2.75.0", "twisted==24.7.0")
    assert code == 3
    assert "the results hold no twisted cell" in out and "UNKNOWN: no answer for twisted" in out


def test_exit_3_a_framework_without_a_model(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--python", "3.12", "sentry-sdk==2.75.0", "quart==0.19.0")
    assert code == 3 and "not modelled: quart: Quart's request contexts" in out


def test_exit_3_no_results(tmp_path, capsys):
    code, _, err = check(capsys, "--results", str(tmp_path / "nowhere"), "sentry-sdk==2.75.0")
    assert code == 3 and "no such results file" in err


@pytest.mark.parametrize("args,message", [
    (["deps.yaml"], "deps.yaml: unknown file format; allowed: requirements files"),
    (["--python", "three", "sentry-sdk==2.75.0"], "--python three: not a Python version; allowed: X.Y"),
    (["--uses", "nosuch", "sentry-sdk==2.75.0"], "--uses nosuch: 'nosuch' is not a model"),
    (["django==3.0.14"], "no sentry-sdk in the command line"),
    ([], "nothing to check: give -r requirements.txt"),
    (["sentry-sdk==2.75.0", "sentry-sdk==2.74.0"], "sentry-sdk is pinned to 2.75.0 (the command line) and to 2.74.0"),
])
def test_exit_2_bad_input(results, capsys, args, message):
    code, out, err = check(capsys, "--results", results, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_exit_2_an_unparseable_line(results, tmp_path, capsys):
    path = tmp_path / "requirements.txt"
    path.write_text("sentry-sdk==2.75.0\ngevent>=>1\n")
    code, _, err = check(capsys, "--results", results, "-r", str(path))
    assert code == 2 and "requirements.txt:2: 'gevent>=>1' is not a requirement" in err


def test_exit_2_a_release_that_does_not_exist(results, capsys, monkeypatch):
    from matrix.check import versions

    known = [Release("sentry-sdk", v, None, None, False, ()) for v in ("2.73.0", "2.74.0", "2.75.0")]
    monkeypatch.setattr(versions, "releases", lambda name, refresh=False: known)
    monkeypatch.setattr(versions, "_pypi_has_release", lambda name, version: False)
    code, _, err = check(capsys, "--results", results, "sentry-sdk==9.9.9")
    assert code == 2
    assert err == "error: sentry-sdk 9.9.9 is not a release of sentry-sdk; nearest: 2.75.0, 2.74.0, 2.73.0\n"


def test_offline_a_version_nothing_here_knows_is_taken_as_written(results, capsys):
    code, out, _ = check(capsys, "--results", results, "--offline", "--python", "3.12", "sentry-sdk==2.75.1")
    assert code == 0 and "could not check that sentry-sdk 2.75.1 is a release" in out


def test_every_input_format_reaches_an_answer(results, capsys):
    for args in (["-r", os.path.join(FIXTURES, "requirements", "prod.txt")],
                 [os.path.join(FIXTURES, "uv", "uv.lock")],
                 [os.path.join(FIXTURES, "poetry", "poetry.lock")],
                 [os.path.join(FIXTURES, "pipenv", "Pipfile.lock")],
                 [os.path.join(FIXTURES, "uv-forks", "pyproject.toml"), "--python", "3.12"]):
        code, out, err = check(capsys, "--results", results, "--offline", *args)
        assert code in (0, 1, 3), err
        assert out.startswith("check (lookup): ") and "models this stack implies:" in out


def test_pip_freeze_on_stdin_through_python_m_matrix(results):
    with open(os.path.join(FIXTURES, "freeze", "freeze.txt")) as fh:
        freeze = fh.read()
    proc = subprocess.run([sys.executable, "-m", "matrix", "check", "-", "--python", "3.12", "--offline",
                           "--results", results, "--format", "json"], input=freeze, cwd=CHECKOUT,
                          capture_output=True, text=True, timeout=120)
    doc = json.loads(proc.stdout)
    assert proc.returncode == doc["exit_code"] == 3  # tornado: the results of this test hold no tornado cell
    assert doc["inputs"] == [{"source": "pip freeze on stdin", "kind": "pip freeze"}]
    assert doc["stack"]["tornado"]["version"] == "6.5.2"
    assert "tornado" in {m["app"] for m in doc["models"] if m["counted"]}


def test_the_committed_results_answer(capsys):
    """The results in the repository (schema 1 or 2) answer a recent stack without running anything."""
    code, out, _ = check(capsys, "--offline", "--python", "3.12", "sentry-sdk==2.75.0")
    assert code in (0, 1, 3)
    assert "answers from: " in out and "threads: scope" in out

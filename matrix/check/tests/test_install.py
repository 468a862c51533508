"""`pip install .` (not editable) into a fresh virtualenv gives a `sentry-context-matrix` command that answers
`check -r requirements.txt` from any directory, and whose `--run` finds the apps it ships."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from matrix.backends.interpreters import discover
from matrix.paths import CHECKOUT

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def clean_copy(dest: str) -> None:
    """What a clone of this checkout holds (tracked and new files, not ignored ones), without the cells' logs."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=CHECKOUT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if rel.startswith("results/") and "/logs/" in f"/{rel}":
            continue
        source = os.path.join(CHECKOUT, rel)
        if os.path.isfile(source):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(source, os.path.join(dest, rel))


def fresh_venv(path: str) -> str:
    made = subprocess.run([sys.executable, "-m", "venv", path], capture_output=True, text=True)
    if made.returncode != 0:  # an interpreter without ensurepip: virtualenv (a dependency) brings pip
        subprocess.run([sys.executable, "-m", "virtualenv", "-q", path], check=True, timeout=300)
    return os.path.join(path, "bin")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if shutil.which("git") is None or not os.path.exists(os.path.join(CHECKOUT, ".git")):
        pytest.skip("needs a git checkout to copy")
    root = tmp_path_factory.mktemp("install")
    tree = str(root / "clone")
    clean_copy(tree)
    bin_dir = fresh_venv(str(root / "venv"))
    proc = subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "install", "-q", tree],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    elsewhere = root / "project"
    elsewhere.mkdir()
    shutil.copy(os.path.join(FIXTURES, "requirements", "shop.txt"), elsewhere / "requirements.txt")
    return os.path.join(bin_dir, "sentry-context-matrix"), str(elsewhere)


def run(command: list[str], cwd: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_check_answers_from_any_directory(installed):
    command, cwd = installed
    proc = run([command, "check", "-r", "requirements.txt"], cwd)
    assert proc.returncode in (0, 1, 3), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("check (lookup): requirements.txt · Python 3.11 (the pip-compile header")
    assert "results/matrix.json, installed with the package (schema" in proc.stdout
    assert "django + gunicorn + gevent → django-gevent (gunicorn -k gevent)" in proc.stdout
    assert "rerun: sentry-context-matrix cell " in proc.stdout
    doc = json.loads(run([command, "check", "-r", "requirements.txt", "--format", "json"], cwd).stdout)
    assert doc["exit_code"] == proc.returncode and all("site-packages" in f["path"] for f in doc["results"])


def test_every_verb_and_exit_2(installed):
    command, cwd = installed
    proc = run([command, "--help"], cwd)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: sentry-context-matrix")
    for verb in ("plan", "run", "cell", "report", "merge", "update-axes", "seed", "check"):
        assert verb in proc.stdout
    plan = run([command, "plan", "--backend", "venv", "--only", "app=threads"], cwd)  # the shipped apps validate
    assert plan.returncode == 0 and "threads/plain/" in plan.stdout, plan.stderr
    bad = run([command, "check", "uv.lock"], cwd)
    assert bad.returncode == 2 and bad.stderr == "error: uv.lock: no such file\n"


def test_run_from_the_installed_package_finds_its_apps(installed):
    found = discover()
    minor = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in found), None)
    if minor is None:
        pytest.skip("no Python 3.10+ interpreter installed")
    command, cwd = installed
    proc = run([command, "check", "--run", "--python", minor, "sentry-sdk==2.75.0", "--format", "json", "-j", "1"],
               cwd, timeout=900)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    threads = next(m for m in json.loads(proc.stdout)["models"] if m["app"] == "threads")
    assert threads["measured_now"] and threads["routes"][0]["match"]["cell"] == f"threads/plain/py{minor}/sentry-sdk-2.75.0"
    assert "/site-packages/matrix/_bundle/apps/threads/app.py" in open(threads["routes"][0]["match"]["log"]).read()
    # the rerun command check prints for an installed package works too
    printed = threads["routes"][0]["match"]["rerun"].split()
    assert printed[:2] == ["sentry-context-matrix", "cell"]
    rerun = run([command, *printed[1:]], cwd, timeout=900)
    assert rerun.returncode == 0 and f"threads/plain/py{minor}/sentry-sdk-2.75.0" in rerun.stdout, rerun.stderr[-2000:]

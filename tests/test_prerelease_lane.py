"""The pre-release lane, here: the SDK installed from a local git repository built from its sdist (as
the lane installs sentry-python's main branch), run through `nox -s prerelease`, reported in its own
folder and compared by role with the released answers."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from matrix.axes.lock import load_lock
from matrix.backends.install import _uv
from matrix.paths import CACHE_DIR, REPO
from matrix.plan.sources import newest_sdk

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "lane", "GIT_AUTHOR_EMAIL": "lane@localhost",
           "GIT_COMMITTER_NAME": "lane", "GIT_COMMITTER_EMAIL": "lane@localhost"}


def _sdist(version: str) -> str:
    """The SDK's sdist from PyPI (`pip download`; pip through uv where this Python has none), cached."""
    dest = os.path.join(CACHE_DIR, "sdists")
    found = glob.glob(os.path.join(dest, f"sentry_sdk-{version}.tar.gz"))
    if found:
        return found[0]
    args = ["download", "--no-deps", "--no-binary", ":all:", "-d", dest, f"sentry-sdk=={version}"]
    for cmd in ([sys.executable, "-m", "pip"], _uv() + ["tool", "run", "--from", "pip", "pip"]):
        proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=300)
        found = glob.glob(os.path.join(dest, f"sentry_sdk-{version}.tar.gz"))
        if proc.returncode == 0 and found:
            return found[0]
    pytest.skip(f"could not download the sentry-sdk {version} sdist: {proc.stderr.strip()[-300:]}")


def _git_repo(sdist: str, where) -> tuple[str, str]:
    """The sdist unpacked and committed as a git repository on branch master; (path, commit)."""
    subprocess.run(["tar", "--no-same-owner", "-xzf", sdist, "-C", str(where)], check=True)
    (src,) = glob.glob(os.path.join(str(where), "sentry_sdk-*"))
    repo = os.path.join(str(where), "sentry-python")
    os.rename(src, repo)
    for cmd in (["init", "-q", "-b", "master"], ["add", "-A"], ["commit", "-qm", "sentry-sdk sdist as a git repository"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=GIT_ENV, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    return repo, sha.stdout.strip()


# python_minor: the fixture in the repository's conftest.py


def test_the_lane_installs_the_sdk_from_a_git_repository(tmp_path, python_minor):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    newest = newest_sdk(load_lock())
    repo, sha = _git_repo(_sdist(newest), tmp_path)
    lane = tmp_path / "results" / "prerelease" / "git"
    nox = [shutil.which("nox")] if shutil.which("nox") else [sys.executable, "-m", "nox"]
    proc = subprocess.run(nox + ["-s", "prerelease", "--", "--sdk-source", f"git+file://{repo}@master",
                                 "--backend", "venv", "--only", "app=threads", "--only", f"python={python_minor}",
                                 "--results", str(lane)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc = json.loads((lane / "matrix.json").read_text())
    source = doc["run"]["sdk_source"]
    assert source["kind"] == "git" and source["requirement"] == f"sentry-sdk@git+file://{repo}@{sha}"
    (cell,) = doc["cells"]
    label = f"{newest}+git.{sha[:10]}"
    assert cell["id"] == f"threads/plain/py{python_minor}/sentry-sdk-{label}"
    assert cell["packages"]["sentry-sdk"] == label
    assert cell["scope"] in ("isolated", "leak") and cell["checks"]["control"]["ok"], cell
    # what was installed really came from the repository, at that commit
    log = (lane / cell["log"]).read_text()
    assert f"sentry-sdk {newest}," in log  # the app reports the version the source declares
    env = log.split("environment: ", 1)[1].split(" ", 1)[0]
    freeze = subprocess.run(_uv() + ["pip", "freeze", "--python", os.path.join(env, "bin", "python")],
                            capture_output=True, text=True, timeout=120).stdout
    assert f"sentry-sdk @ git+file://{repo}@{sha}" in freeze

    # compared by role with a released result that answered otherwise: a change, in the lane's own folder
    released = tmp_path / "released"
    released.mkdir()
    other = dict(cell, id=f"threads/plain/py{python_minor}/sentry-sdk-{newest}", packages={"sentry-sdk": newest},
                 scope="leak" if cell["scope"] == "isolated" else "isolated", log=None)
    (released / "matrix.json").write_text(json.dumps({"schema": 2, "generated_at": "2026-01-01T00:00:00+00:00",
                                                      "command": "nox -s matrix", "cells": [other]}))
    proc = subprocess.run([sys.executable, "-m", "matrix", "report", "--results", str(lane), "--diff",
                           str(released / "matrix.json"), "--changes", str(lane), "--fail-on-change"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"by role  threads/plain/py{python_minor}/newest sentry-sdk: sentry-sdk {newest} -> {label}" in proc.stdout
    assert "vanished" not in proc.stdout  # the lane plans only the newest SDK's cells
    changes = (lane / "CHANGES.md").read_text()
    assert f"pre-release lane {label}" in changes
    assert json.loads((lane / "badges" / "threads.json").read_text())["label"] == "threads (sdk git)"
    assert not (tmp_path / "results" / "matrix.json").exists()  # never mixed into the released table

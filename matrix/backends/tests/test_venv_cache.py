"""The venv backend's env cache trusts an env only while the interpreter it records still exists."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from matrix.backends import venv
from matrix.backends.interpreters import discover

MINOR = next((m for m in ("3.12", "3.11", "3.13", "3.10") if m in discover()), None)
pytestmark = pytest.mark.skipif(MINOR is None, reason="no Python 3.10-3.13 on this machine")


@pytest.mark.parametrize("how", ["recorded elsewhere", "interpreter removed"])
def test_an_env_whose_interpreter_is_gone_is_rebuilt_not_trusted(tmp_path, monkeypatch, how):
    monkeypatch.setattr(venv, "CACHE_DIR", str(tmp_path))
    pins = ["sentry-sdk==2.75.0"]
    first = venv.prepare_env(discover()[MINOR], pins)
    assert first.created
    again = venv.prepare_env(discover()[MINOR], pins)
    assert not again.created and again.path == first.path  # a sound env is reused

    marker = os.path.join(first.path, venv.MARKER)
    if how == "recorded elsewhere":  # the env was made under a cache directory that no longer exists
        with open(marker) as fh:
            info = json.load(fh)
        info["python"] = str(tmp_path / "gone-worktree" / ".matrix" / "envs" / first.key / "bin" / "python")
        with open(marker, "w") as fh:
            json.dump(info, fh)
    else:  # the interpreter the env links to was uninstalled: its python is a dangling link
        os.unlink(first.python)
        os.symlink(str(tmp_path / "uninstalled" / "python3"), first.python)

    rebuilt = venv.prepare_env(discover()[MINOR], pins)
    assert rebuilt.created and rebuilt.path == first.path
    out = subprocess.run([rebuilt.python, "-c", "import sentry_sdk; print(sentry_sdk.VERSION)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "2.75.0", out.stderr
    assert rebuilt.installed["sentry-sdk"] == "2.75.0"

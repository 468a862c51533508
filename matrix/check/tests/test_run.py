"""`check --run`, end to end: a stack the committed results do not hold, measured now through the engine
(real app, real SDK from PyPI, real mock server)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from packaging.version import Version

from matrix.axes.lock import load_lock
from matrix.axes.releases import releases
from matrix.check.results import ResultsMissing, load_results
from matrix.paths import CHECKOUT
from matrix.plan.sources import newest_sdk


# python_minor: the fixture in the repository's conftest.py


def unmeasured_sdk(python_minor: str) -> str:
    """The newest release of the lock's newest SDK major that no committed threads cell on this Python holds."""
    try:
        held = {c["_pins"]["sentry-sdk"] for c in load_results().cells
                if c["app"] == "threads" and c["_minor"] == python_minor}
    except ResultsMissing:
        held = set()
    major = Version(newest_sdk(load_lock())).major
    candidates = [r.version for r in releases("sentry-sdk") if not r.yanked and not r.parsed.is_prerelease
                  and r.parsed.major == major and r.version not in held]
    return max(candidates, key=Version)


def test_run_measures_a_stack_the_results_do_not_hold(python_minor):
    version = unmeasured_sdk(python_minor)
    expected = f"threads/plain/py{python_minor}/sentry-sdk-{version}"
    proc = subprocess.run([sys.executable, "-m", "matrix", "check", "--run", "--python", python_minor,
                           f"sentry-sdk=={version}", "--format", "json", "-j", "1"],
                          cwd=CHECKOUT, capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "run" and doc["exit_code"] == proc.returncode
    threads = next(m for m in doc["models"] if m["app"] == "threads")
    assert threads["measured_now"] and threads["counted"] and threads["scope"] in ("isolated", "leak")
    match = threads["routes"][0]["match"]
    assert match["cell"] == expected and match["exact"]
    assert os.path.isfile(match["log"]) and doc["run_dir"] and match["log"].startswith(doc["run_dir"])
    assert f"plain [1/1] scope {threads['scope']}" in proc.stderr  # progress, on stderr
    # asyncio is shown from the committed results, not measured: nothing says the stack runs asyncio tasks
    asyncio = next(m for m in doc["models"] if m["app"] == "asyncio")
    assert not asyncio["measured_now"] and not asyncio["counted"]

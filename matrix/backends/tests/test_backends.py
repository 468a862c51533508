"""The Docker and venv backends judge the same cells identically (real containers, real apps)."""
import json
import subprocess
import sys

import pytest

from matrix.backends.docker.engine import engine_available
from matrix.backends.interpreters import discover
from matrix.paths import REPO

pytestmark = pytest.mark.skipif(engine_available() is None, reason="no Docker engine answers (start dockerd)")


def _run(cells, backend, out):
    proc = subprocess.run([sys.executable, "-m", "matrix", "cell", *cells, "--backend", backend, "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"backend: {backend}" in proc.stdout
    return {e["id"]: e for e in json.loads(out.read_text())}


def test_docker_and_venv_give_the_same_verdicts(tmp_path):
    minor = next((m for m in ("3.11", "3.12", "3.13") if m in discover()), None)
    if minor is None:
        pytest.skip("no Python 3.11+ interpreter to seed an image from")
    cells = [f"threads/plain/py{minor}/sentry-sdk-2.75.0", f"asyncio/plain/py{minor}/sentry-sdk-2.75.0",
             f"asyncio/asyncio-integration/py{minor}/sentry-sdk-1.45.1"]
    docker = _run(cells, "docker", tmp_path / "docker.json")
    venv = _run(cells, "venv", tmp_path / "venv.json")
    for cell in cells:
        assert docker[cell]["backend"] == "docker" and venv[cell]["backend"] == "venv"
        assert docker[cell]["verdict"] == venv[cell]["verdict"], (docker[cell], venv[cell])
        assert docker[cell]["context_backend"] == venv[cell]["context_backend"]
        assert docker[cell]["packages"]["sentry-sdk"] == venv[cell]["packages"]["sentry-sdk"]
    assert [docker[c]["verdict"] for c in cells] == ["isolated", "leak", "isolated"]


def test_ctrl_c_on_the_docker_backend_leaves_no_container(tmp_path):
    from tests.helpers import interrupt_run

    minor = next((m for m in ("3.11", "3.12", "3.13") if m in discover()), None)
    if minor is None:
        pytest.skip("no Python 3.11+ interpreter to seed an image from")

    def containers(pid):  # the Container class names each container scm-<pid of its owner>-<random>
        out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"name=scm-{pid}-"],
                             capture_output=True, text=True, timeout=60).stdout
        return out.split()

    results = tmp_path / "results"
    proc, out, err = interrupt_run(["run", "--backend", "docker", "--only", "app=asyncio", "--only",
                                    f"python={minor}", "--repeat", "2", "-j", "2", "--results", str(results)],
                                   results / "matrix.partial.jsonl")
    assert proc.returncode == 2, out + err
    assert (results / "matrix.partial.jsonl").read_text().strip()  # it did run cells in containers
    assert containers(proc.pid) == []

"""The shared code compiles on the interpreters the apps run on.

apps/_common is imported by Python-2.7 apps (threads, gevent, eventlet,
twisted) and by Python-3-only apps; only aio.py (async def) is Python 3 only.
Checked with the real interpreters (`py_compile`, bytecode written to a
temporary directory); an interpreter that is not installed is skipped.

    pytest apps/tests
"""
import glob
import os
import shutil
import subprocess

import pytest

APPS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = os.path.join(APPS, "_common")
PY3_ONLY = {"aio.py"}

CHECK = """
import os, py_compile, sys
bad = []
for n, path in enumerate(sys.argv[2:]):
    try:
        py_compile.compile(path, cfile=os.path.join(sys.argv[1], "%d.pyc" % n), doraise=True)
    except py_compile.PyCompileError as exc:
        bad.append(exc.msg.strip())
sys.stdout.write("\\n".join(bad))
sys.exit(1 if bad else 0)
"""


def interpreter(minor):
    """The real pythonX.Y: pyenv's (PYENV_ROOT or ~/.pyenv), else on PATH."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", minor + ".*", "bin", "python")))
    return found[-1] if found else shutil.which("python" + minor)


def modules(python3):
    names = sorted(n for n in os.listdir(COMMON) if n.endswith(".py"))
    return [os.path.join(COMMON, n) for n in names if python3 or n not in PY3_ONLY]


@pytest.mark.parametrize("minor", ["2.7", "3.6", "3.13"])
def test_common_compiles(minor, tmp_path):
    python = interpreter(minor)
    if not python:
        pytest.skip("no Python %s here" % minor)
    paths = modules(python3=not minor.startswith("2."))
    proc = subprocess.run([python, "-c", CHECK, str(tmp_path)] + paths, capture_output=True, text=True)
    assert proc.returncode == 0, "%s (%s):\n%s%s" % (minor, python, proc.stdout, proc.stderr)


def test_the_python3_only_module_is_only_aio():
    """Only aio.py may use Python-3 syntax; it says so in its first lines."""
    with open(os.path.join(COMMON, "aio.py")) as fh:
        head = fh.read(200)
    assert "PYTHON 3.6+ ONLY" in head

"""apps/flask-gunicorn: the launcher's one-line errors before it execs gunicorn. The real Flask app
under each gunicorn worker class runs in test_apps.py (one default cell per worker class)."""
import os
import subprocess
import sys

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flask-gunicorn", "app.py")


def _run(*extra):
    argv = [sys.executable, APP, "--dsn", "http://k@127.0.0.1:9/1", "--port", "0", "--variant", "plain"]
    return subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=60)


def test_unknown_worker_class_is_one_line_and_exit_2():
    proc = _run("--route", "tornado")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "flask-gunicorn: error: unknown route 'tornado' (this app supports: sync, gthread, gevent)"]


def test_unknown_variant_is_one_line_and_exit_2():
    proc = _run("--variant", "hub-clone", "--route", "sync")
    assert proc.returncode == 2
    assert "unknown variant 'hub-clone'" in proc.stderr

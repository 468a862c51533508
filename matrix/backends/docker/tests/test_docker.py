"""The Docker backend: containers always removed, host network, bind mounts, cached cell images.

Tests that need an engine are skipped (with the reason) when `docker version` gets no answer
from a server. The first run on a machine without a registry seeds scm-debian/scm-python
(debootstrap, ~40 s); later runs reuse them.
"""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

from matrix.backends import interpreters
from matrix.backends.base import EnvUnsupported
from matrix.backends.docker import base_images, cell_images, container, engine
from matrix.backends.docker.backend import cell_container

ENGINE = engine.engine_available()
needs_engine = pytest.mark.skipif(
    ENGINE is None, reason="no Docker engine answers `docker version` (start dockerd to run these tests)")


def _exists(name: str) -> bool:
    return engine._call(["inspect", "--format", "{{.Id}}", name], check=False, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def interp() -> interpreters.Interpreter:
    found = interpreters.discover()
    if not found:
        pytest.skip("no Python interpreter found on this machine")
    minor = "3.11" if "3.11" in found else max(found, key=lambda m: tuple(int(x) for x in m.split(".")))
    return found[minor]


@pytest.fixture(scope="module")
def py_image(interp) -> str:
    return base_images.ensure_python_image(interp)


# -- pure parts (no engine) ------------------------------------------------------------------------

def test_image_tag_is_a_content_hash():
    lines = [["--exclude-newer", "2026-10-22T00:00:00Z", "sentry-sdk==2.75.0"]]
    tag = cell_images.image_tag("sha256:abc", lines)
    assert tag.startswith("scm-cell:") and len(tag.split(":")[1]) == 16
    assert tag == cell_images.image_tag("sha256:abc", [list(lines[0])])
    assert tag != cell_images.image_tag("sha256:abd", lines)
    assert tag != cell_images.image_tag("sha256:abc", [["--exclude-newer", "2026-10-22T00:00:00Z", "sentry-sdk==2.74.0"]])
    assert tag != cell_images.image_tag("sha256:abc", [["sentry-sdk==2.75.0"]])
    two = [["gevent==23.9.1", "greenlet"], ["sentry-sdk==1.40.0"]]
    assert cell_images.image_tag("sha256:abc", two) != cell_images.image_tag("sha256:abc", two[::-1])


def test_host_mirror_reads_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert base_images.host_mirror("bookworm", (str(tmp_path),)) == "http://mirror.example/debian"
    one = tmp_path / "sources.list"
    one.write_text("# deb http://old/ bookworm main\n"
                   "deb [arch=amd64] http://other.example/debian trixie main contrib\n")
    assert base_images.host_mirror("trixie", (str(one),)) == "http://other.example/debian"


def test_host_suite_reads_os_release(tmp_path):
    path = tmp_path / "os-release"
    path.write_text('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n')
    assert base_images.host_suite(str(path)) == "bookworm"


def test_engine_available_is_none_without_a_cli(monkeypatch):
    monkeypatch.setenv("MATRIX_DOCKER", "/nonexistent/docker")
    assert engine.engine_available(timeout=2) is None


# -- containers ------------------------------------------------------------------------------------

@needs_engine
def test_container_runs_python_and_is_removed(py_image):
    with container.Container(py_image) as box:
        name = box.name
        assert _exists(name)
        proc = box.run(["python", "-c", "import sys; print(sys.version_info[0] * 14)"], timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "42"
    assert not _exists(name)
    box.stop()  # idempotent


@needs_engine
@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_container_removed_after_exception(py_image, exc_type):
    with pytest.raises(exc_type):
        with container.Container(py_image) as box:
            name = box.name
            raise exc_type("boom")
    assert not _exists(name)


@needs_engine
def test_atexit_cleanup_removes_live_containers(py_image):
    box = container.Container(py_image).start()
    assert _exists(box.name)
    container._cleanup_live()
    assert not _exists(box.name)


@needs_engine
def test_remove_stale_clears_containers_of_dead_owners(py_image):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f"scm-stale-test-{os.getpid()}"
    engine._call(["run", "-d", "--rm", "--init", "--network", "host", "--name", name,
                  "--label", f"{container.LABEL_OWNER}={container.OWNER}", "--label", f"{container.LABEL_PID}={dead.pid}",
                  py_image, "sleep", "infinity"])
    try:
        assert name in container.remove_stale()
        assert not _exists(name)
    finally:
        engine._call(["rm", "-f", name], check=False)


@needs_engine
def test_bind_mounted_app_dir_is_readable_and_read_only(py_image, tmp_path):
    app = tmp_path / "apps" / "demo"
    app.mkdir(parents=True)
    (app / "app.py").write_text("print('hello from the app')\n")
    with container.Container(py_image, mounts=[(str(tmp_path / "apps"), "/apps", "ro")], workdir="/apps") as box:
        proc = box.run(["python", "/apps/demo/app.py"], timeout=60)
        assert proc.stdout.strip() == "hello from the app", proc.stderr
        assert box.run(["sh", "-c", "touch /apps/x"], timeout=30).returncode != 0


@needs_engine
def test_exec_popen_streams_and_kill_processes_keeps_the_container(py_image, tmp_path):
    log_path = tmp_path / "app.log"
    with container.Container(py_image) as box:
        with open(log_path, "wb") as log:
            proc = box.exec_popen(["python", "-u", "-c", "import time; print('up'); time.sleep(120)"],
                                  stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while b"up" not in log_path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"up" in log_path.read_bytes()
        box.kill_processes()
        assert proc.wait(timeout=15) != 0
        assert box.alive()
        assert box.run(["true"], timeout=30).returncode == 0


_PIDS = "for s in /proc/[0-9]*/stat; do read -r p c st pp r < $s; echo $p $c $pp; done"


def _processes(box: container.Container) -> dict[str, tuple[str, str]]:
    """pid -> (comm, parent pid) of every process in the container, read from /proc inside it."""
    rows = [line.split() for line in box.run(["sh", "-c", _PIDS], timeout=30).stdout.splitlines()]
    return {pid: (comm, ppid) for pid, comm, ppid in rows}


@needs_engine
def test_kill_processes_kills_orphans_of_init_and_keeps_only_the_idle_process(py_image):
    """An app that daemonizes leaves a process whose parent is init, like the idle `sleep` itself (here
    another `sleep`): the idle process is told apart by being the first init started, without an exec of
    its own when the container starts."""
    with container.Container(py_image, lifetime=120) as box:
        before = _processes(box)
        idle = [pid for pid, (comm, ppid) in before.items() if ppid == "1" and pid != "1"]
        assert len(idle) == 1 and before[idle[0]][0] == "(sleep)"
        orphan = box.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], timeout=30).stdout.strip()
        assert _processes(box).get(orphan) == ("(sleep)", "1")  # re-parented to init, a sleep as well
        box.kill_processes()
        after = _processes(box)
        assert orphan not in after
        assert idle[0] in after and "1" in after
        assert box.alive()


@needs_engine
def test_a_session_kills_what_an_app_left_before_the_next_app_starts(py_image, tmp_path):
    """after_stop defers the kill: the container is removed when the cell ends, and the exec that kills runs
    only when another attempt's app starts in the same container."""
    from matrix.backends.docker.backend import DockerSession

    with container.Container(py_image, lifetime=120) as box:
        session = DockerSession(box)
        first = session.launch(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], str(tmp_path / "1.log"))
        assert first.wait(30)
        first.reap()
        session.after_stop()
        orphan = (tmp_path / "1.log").read_text().strip()
        assert orphan in _processes(box)  # not killed yet: nothing else runs in the container
        second = session.launch(["sh", "-c", _PIDS], str(tmp_path / "2.log"))
        assert second.wait(30)
        second.reap()
        pids = [line.split()[0] for line in (tmp_path / "2.log").read_text().splitlines()]
        assert orphan not in pids
    assert not _exists(box.name)


@needs_engine
def test_host_network_reaches_a_server_on_loopback(py_image):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"pong from the test process"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ping"
        code = ("import sys\ntry:\n from urllib.request import urlopen\nexcept ImportError:\n"
                " from urllib2 import urlopen\nsys.stdout.write(urlopen(sys.argv[1], timeout=10).read().decode())\n")
        with container.Container(py_image) as box:
            proc = box.run(["python", "-c", code, url], timeout=60)
        assert proc.stdout == "pong from the test process", proc.stderr
    finally:
        server.shutdown()
        server.server_close()


# -- cell images -----------------------------------------------------------------------------------

@needs_engine
def test_prepare_image_second_time_is_a_cache_hit(interp, py_image):
    pins = ["sentry-sdk==2.75.0"]
    first = cell_images.prepare_image(interp, pins)
    second = cell_images.prepare_image(interp, pins)
    assert second.created is False
    assert second.image == first.image and second.image.startswith("scm-cell:")
    assert second.installed["sentry-sdk"] == "2.75.0"
    assert second.python == "/env/bin/python"
    with cell_container(second) as box:
        code = "import sentry_sdk, os; print(sentry_sdk.VERSION, os.path.isdir('/apps'))"
        proc = box.run([second.python, "-c", code], timeout=60)
        assert proc.stdout.split() == ["2.75.0", "True"], proc.stderr


def test_python3_builds_go_one_at_a_time_until_one_has_put_uv_in_the_cache(monkeypatch):
    """Two cold builds at once once raced on the uv binary's temporary file in the shared cache (both
    containers' shells were pid 14): the gate holds the second until the first succeeded, and then lets
    every build through; a failed first build passes the gate on, and Python 2.7 (pip) never waits."""
    monkeypatch.setattr(cell_images, "_uv_in_cache", False)
    py3 = interpreters.Interpreter("3.12", "3.12.0", "/x")
    py2 = interpreters.Interpreter("2.7", "2.7.18", "/x")
    inside, overlap, first_in = [], [], threading.Event()

    def build(fail: bool) -> None:
        try:
            with cell_images._uv_gate(py3):
                inside.append(1)
                overlap.append(len(inside))
                first_in.set()
                time.sleep(0.2)
                inside.pop()
                if fail:
                    raise RuntimeError("build failed")
        except RuntimeError:
            pass

    failing = threading.Thread(target=build, args=(True,))
    failing.start()
    first_in.wait(5)
    others = [threading.Thread(target=build, args=(False,)) for _ in range(2)]
    for t in others:
        t.start()
    with cell_images._uv_gate(py2):  # pip's builds do not wait for the held gate
        assert cell_images._first_uv_build.locked()
    for t in [failing] + others:
        t.join(10)
    assert overlap == [1, 1, 1] and cell_images._uv_in_cache
    # once uv is in the cache, builds overlap freely: both meet inside the gate
    met, barrier = [], threading.Barrier(2, timeout=5)

    def free_build() -> None:
        with cell_images._uv_gate(py3):
            met.append(barrier.wait())

    both = [threading.Thread(target=free_build) for _ in range(2)]
    for t in both:
        t.start()
    for t in both:
        t.join(10)
    assert sorted(met) == [0, 1]


def test_what_a_build_installed_is_read_from_its_own_output():
    output = ("#6 9.812 cell-install: installed:\n#6 9.813 certifi==2024.7.4\n#6 9.813 sentry-sdk==2.75.0\n"
              "#6 9.813 zope-interface==6.2\n#6 DONE 10.1s\n\n#7 exporting to image\n#7 exporting layers 1.2s done\n"
              "#7 writing image sha256:0123 done\n#7 naming to docker.io/library/scm-cell:abc done\n")
    assert cell_images.installed_from_build(output) == {
        "certifi": "2024.7.4", "sentry-sdk": "2.75.0", "zope-interface": "6.2"}
    assert cell_images.installed_from_build("#6 ERROR: executor failed running\n") == {}


@needs_engine
def test_a_new_cell_image_is_made_as_the_venv_backend_makes_envs(interp, py_image):
    """uv venv (no pip or setuptools seeded), and what the build listed is what the image holds."""
    pins = ["sentry-sdk==2.74.0"]
    env = cell_images.prepare_image(interp, pins)
    assert env.installed == cell_images._installed_from_image(env.image)
    assert "pip" not in env.installed and env.installed["sentry-sdk"] == "2.74.0"


@needs_engine
def test_prepare_image_unsupported_pin(interp, py_image):
    # An explicit date skips the release lookup, so the installer inside the build is what says no.
    with pytest.raises(EnvUnsupported):
        cell_images.prepare_image(interp, ["sentry-sdk==0.0.0.404"], exclude_newer="2030-01-01T00:00:00Z")

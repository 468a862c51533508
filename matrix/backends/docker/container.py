"""`Container` owns one container's whole life (modelled on cibuildwheel's `oci_container.py`).

It is started detached with an idle `sleep infinity` (or `sleep <lifetime>`, so it ends by itself)
under `--init` (so orphans are reaped),
work is `docker exec`-ed into it, and it is ALWAYS removed (`docker rm -f`): on `__exit__`,
on exceptions, on Ctrl-C, at interpreter exit (atexit) and on SIGTERM (turned into SystemExit
so `with` blocks unwind). Containers carry labels naming this project and the owning pid, so
`remove_stale()` can clear what a SIGKILLed run left behind. Every call goes through `engine._call`.
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import uuid
from typing import IO, Any, Iterable, Mapping, Sequence

from .engine import BuildError, DockerError, _call, _fmt, _tail_line, docker_cli, log

LABEL_OWNER = "org.sentry-context-matrix.owner"
LABEL_PID = "org.sentry-context-matrix.pid"
OWNER = "sentry-context-matrix"

_live: dict[str, "Container"] = {}
_live_lock = threading.Lock()
_handlers_installed = False


def _cleanup_live() -> None:
    """atexit: remove every container this process still owns, in one bounded call."""
    with _live_lock:
        names = list(_live)
        _live.clear()
    if names:
        try:
            _call(["rm", "-f", *names], check=False, timeout=60)
        except DockerError:
            pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    """Once: atexit cleanup, and SIGTERM -> SystemExit (so `with` blocks and atexit run) if SIGTERM is default."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_cleanup_live)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            pass


def remove_stale() -> list[str]:
    """Remove containers of this project whose owning process no longer exists; returns their names."""
    proc = _call(["ps", "-a", "--filter", f"label={LABEL_OWNER}={OWNER}",
                  "--format", "{{.Names}}\t{{.Label \"" + LABEL_PID + "\"}}"], check=False, timeout=30)
    stale = []
    for line in proc.stdout.splitlines():
        name, _, pid = line.partition("\t")
        if not pid.strip().isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # owner alive
        except ProcessLookupError:
            stale.append(name)
        except PermissionError:
            continue
    if stale:
        _call(["rm", "-f", *stale], check=False, timeout=60)
    return stale


# The idle process is the first one `--init` started: the lowest pid, other than init's own 1, whose parent is 1
# (every `docker exec`-ed process, and every orphan re-parented to init, was started after it). Found here, in
# the one exec that kills, instead of by an exec of its own when the container starts.
_KILL_SCRIPT = r"""
self=$$
keep=
for s in /proc/[0-9]*/stat; do
  read -r pid comm state ppid rest < "$s" 2>/dev/null || continue
  [ "$pid" != 1 ] && [ "$ppid" = 1 ] && { [ -z "$keep" ] || [ "$pid" -lt "$keep" ]; } && keep=$pid
done
for s in /proc/[0-9]*/stat; do
  read -r pid comm state ppid rest < "$s" 2>/dev/null || continue
  case "$pid" in 1|"$self"|"$keep") continue;; esac
  kill -KILL "$pid" 2>/dev/null || true
done
"""


class Container:
    """One container: `docker run -d --rm --init --network host ... sleep infinity`, exec into it, always removed.

    Killing a `docker exec` client does NOT stop the process it started inside the container;
    use `kill_processes()` (or `stop()`) for that.
    """

    def __init__(self, image: str, name: str | None = None, mounts: Sequence[tuple[str, str, str]] = (),
                 env: Mapping[str, str] | None = None, workdir: str | None = None, prefix: str = "scm",
                 lifetime: float | None = None):
        self.image = image
        # The idle process is `sleep <lifetime>` (default: forever): the container ends by itself (and
        # --rm removes it) even when the process that owns it was SIGKILLed and can remove nothing.
        self.lifetime = lifetime
        self.name = name or f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.mounts = list(mounts)
        self.env = dict(env or {})
        self.workdir = workdir
        self.started = False
        self.removed = False

    # -- life ----------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> "Container":
        _install_handlers()
        args = ["run", "-d", "--rm", "--init", "--network", "host", "--name", self.name,
                "--label", f"{LABEL_OWNER}={OWNER}", "--label", f"{LABEL_PID}={os.getpid()}"]
        for host, target, mode in self.mounts:
            args += ["-v", f"{os.path.abspath(host)}:{target}:{mode or 'ro'}"]
        for key, value in self.env.items():
            args += ["-e", f"{key}={value}"]
        if self.workdir:
            args += ["-w", self.workdir]
        args += [self.image, "sleep", f"{int(self.lifetime) + 1}" if self.lifetime else "infinity"]
        with _live_lock:
            _live[self.name] = self  # registered before it exists: a half-started container is still removed
        self.started = True
        self.removed = False
        _call(args, timeout=timeout)
        return self

    def stop(self, timeout: float = 30) -> None:
        """`docker rm -f`: bounded, idempotent, survives one Ctrl-C while it runs."""
        if self.removed or not self.started:
            return
        interrupted: BaseException | None = None
        for _ in range(2):
            try:
                _call(["rm", "-f", self.name], check=False, timeout=timeout)
                break
            except DockerError as exc:  # timed out: say so, the atexit hook will try again
                log.warning("could not remove container %s: %s", self.name, exc)
                return
            except KeyboardInterrupt as exc:
                interrupted = exc
        self.removed = True
        with _live_lock:
            _live.pop(self.name, None)
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> "Container":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def alive(self) -> bool:
        proc = _call(["inspect", "--format", "{{.State.Running}}", self.name], check=False, timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() == "true"

    # -- work ----------------------------------------------------------------------------------
    def exec_argv(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                  workdir: str | None = None) -> list[str]:
        """The `docker exec` command line that runs `argv` inside (for callers that spawn it themselves)."""
        args = [docker_cli(), "exec"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if workdir:
            args += ["-w", workdir]
        return [*args, self.name, *argv]

    def exec_popen(self, argv: Sequence[str], stdout: IO | int | None = None, stderr: IO | int | None = None,
                   env: Mapping[str, str] | None = None, workdir: str | None = None) -> subprocess.Popen:
        """Start `argv` inside the container via `docker exec`; the caller streams stdout/stderr where it likes."""
        args = self.exec_argv(argv, env, workdir)
        log.debug("%s", _fmt(args))
        return subprocess.Popen(args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def run(self, argv: Sequence[str], timeout: float = 60, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> subprocess.CompletedProcess:
        """Run `argv` inside and wait (captured text). On timeout the in-container processes are killed."""
        args = self.exec_argv(argv, env, workdir)
        log.debug("%s", _fmt(args))
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.kill_processes()
            raise

    def kill_processes(self, timeout: float = 30) -> None:
        """SIGKILL every process in the container except init and the idle sleep (the container stays up)."""
        if not self.started or self.removed:
            return
        args = self.exec_argv(["sh", "-c", _KILL_SCRIPT])
        log.debug("%s", _fmt(args))
        try:
            subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            log.warning("killing the processes in %s timed out", self.name)

    def __repr__(self) -> str:
        return f"Container({self.image!r}, name={self.name!r})"


def build_by_commit(base_image: str, tag: str, script: str, env: Mapping[str, str] | None = None,
                    mounts: Sequence[tuple[str, str, str]] = (), copy_in: Sequence[tuple[str, str]] = (),
                    changes: Iterable[str] = (), timeout: float = 1800, output: list[str] | None = None) -> None:
    """The no-BuildKit fallback: run `script` (sh) in a container of `base_image` and commit it as `tag`.

    Secrets go in `mounts` (bind-mounted read-only: `docker commit` does not include bind-mounted
    content, only an empty mount-point stub). `env` is given to the exec, not to the container,
    so it is not committed either. `copy_in` = [(host path, container dir)] is
    copied with `docker cp` before the script runs.
    """
    with Container(base_image, mounts=mounts) as box:
        for host, target in copy_in:
            _call(["cp", host, f"{box.name}:{target}"], timeout=timeout)
        proc = box.run(["sh", "-euc", script], timeout=timeout, env=env)  # exec env: not committed
        text = proc.stdout + proc.stderr
        if output is not None:
            output.append(text)
        if proc.returncode != 0:
            raise BuildError(f"building {tag} in a container failed (exit {proc.returncode}): {_tail_line(text)}",
                             text, proc.returncode)
        box.kill_processes()
        # The build container's ownership labels must not pass on to the image (remove_stale reads them).
        args = ["commit", "--change", f"LABEL {LABEL_OWNER}= {LABEL_PID}="]
        for change in changes:
            args += ["--change", change]
        _call([*args, box.name, tag], timeout=600)

"""The one place that calls the `docker` CLI: engine probe, images, builds (containers: `container.py`).

Everything goes through the `docker` CLI via subprocess: no extra dependency, every call
visible and logged (logger `matrix.docker`, DEBUG, the exact argv), and each one is the same
command a user can paste into a shell to reproduce what the matrix did.

Builds need BuildKit (for `RUN --mount=type=secret`, which keeps the CA bundle out of every
layer). `docker buildx build` is used when the buildx plugin exists; otherwise a docker CLI
older than 23 (Debian bookworm's docker.io 20.10 ships one at /usr/bin/docker) builds with
`DOCKER_BUILDKIT=1`. When neither exists `build()` raises `BuildKitUnavailable`, and callers
may fall back to `build_by_commit()` (a running container, the secrets bind-mounted
read-only, then `docker commit`).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
from typing import Any, Iterable, Mapping, Sequence

log = logging.getLogger("matrix.docker")

class DockerError(RuntimeError):
    """A docker CLI call failed; the message is one line."""


class BuildError(DockerError):
    """`docker build` failed. `str()` is one line ending with the build's last lines; `.output` has it all."""

    def __init__(self, message: str, output: str = "", returncode: int | None = None):
        super().__init__(message)
        self.output = output
        self.returncode = returncode


class BuildKitUnavailable(DockerError):
    """No BuildKit-capable builder (no buildx plugin, no docker CLI < 23)."""


# ---------------------------------------------------------------------------------------------
# CLI plumbing


def docker_cli() -> str:
    """The docker CLI to use: $MATRIX_DOCKER, else `docker` on PATH."""
    return os.environ.get("MATRIX_DOCKER") or shutil.which("docker") or "docker"


def _fmt(argv: Sequence[str], env_prefix: Mapping[str, str] | None = None) -> str:
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env_prefix or {}).items())
    return (prefix + " " if prefix else "") + shlex.join(argv)


def _call(args: Sequence[str], timeout: float | None = 60, check: bool = True, cli: str | None = None,
          env_prefix: Mapping[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run one docker CLI command, logged with its exact argv; raise DockerError (one line) if `check`."""
    argv = [cli or docker_cli(), *args]
    log.debug("%s", _fmt(argv, env_prefix))
    env = {**os.environ, **env_prefix} if env_prefix else None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"`{_fmt(argv)}` did not finish within {timeout:g}s") from exc
    except OSError as exc:
        raise DockerError(f"cannot run {argv[0]}: {exc}") from exc
    if check and proc.returncode != 0:
        raise DockerError(f"`{_fmt(argv)}` exited {proc.returncode}: {_last_line(proc.stderr or proc.stdout)}")
    return proc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def engine_available(timeout: float = 5) -> str | None:
    """The engine's server version, or None when no engine answers (or no CLI exists)."""
    try:
        proc = _call(["version", "--format", "{{.Server.Version}}"], timeout=timeout, check=False)
    except DockerError:
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version and "<no value>" not in version else None


# ---------------------------------------------------------------------------------------------
# Images


def image_exists(tag: str) -> bool:
    return _call(["image", "inspect", "--format", "{{.Id}}", tag], check=False, timeout=30).returncode == 0


def image_id(tag: str) -> str | None:
    proc = _call(["image", "inspect", "--format", "{{.Id}}", tag], check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_labels(tag: str) -> dict[str, str]:
    proc = _call(["image", "inspect", "--format", "{{json .Config.Labels}}", tag], check=False, timeout=30)
    if proc.returncode != 0:
        return {}
    try:
        return json.loads(proc.stdout) or {}
    except ValueError:
        return {}


def pull(ref: str, timeout: float = 30) -> bool:
    """Try once to pull `ref`; False (never raises) when no registry answers in time."""
    try:
        return _call(["pull", "--quiet", ref], timeout=timeout, check=False).returncode == 0
    except DockerError:
        return False


def tag_image(source: str, target: str) -> None:
    _call(["tag", source, target], timeout=30)


def remove_image(tag: str) -> None:
    _call(["image", "rm", "-f", tag], check=False, timeout=60)


def import_rootfs(tar_path: str, tag: str, changes: Iterable[str] = (), timeout: float = 600) -> str:
    """`docker import` a root filesystem tarball as `tag`; returns the image id."""
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    _call([*args, tar_path, tag], timeout=timeout)
    return image_id(tag) or ""


_builder_lock = threading.Lock()
_builder: tuple[list[str], dict[str, str]] | None | bool = False  # False: not probed yet


def _cli_major(cli: str) -> int | None:
    try:
        proc = _call(["version", "--format", "{{.Client.Version}}"], cli=cli, check=False, timeout=15)
    except DockerError:
        return None
    try:
        return int(proc.stdout.strip().split(".")[0])
    except ValueError:
        return None


def buildkit_builder() -> tuple[list[str], dict[str, str]] | None:
    """(argv prefix, extra env) of a BuildKit-capable `build` command, or None. Probed once.

    $MATRIX_DOCKER_BUILD=commit forces None (to exercise the commit fallback).
    """
    global _builder
    with _builder_lock:
        if _builder is not False:
            return _builder  # type: ignore[return-value]
        found: tuple[list[str], dict[str, str]] | None = None
        if os.environ.get("MATRIX_DOCKER_BUILD") != "commit":
            cli = docker_cli()
            try:
                has_buildx = _call(["buildx", "version"], cli=cli, check=False, timeout=15).returncode == 0
            except DockerError:
                has_buildx = False
            if has_buildx:
                found = ([cli, "buildx", "build", "--load"], {})
            else:
                candidates = [cli] + [c for c in ("/usr/bin/docker", "/usr/local/bin/docker") if os.path.exists(c)]
                for candidate in dict.fromkeys(candidates):
                    major = _cli_major(candidate)
                    if major is not None and major < 23:  # the legacy CLI still drives the engine's BuildKit
                        found = ([candidate, "build"], {"DOCKER_BUILDKIT": "1"})
                        break
        _builder = found
        return found


def build(context_dir: str, dockerfile: str, tag: str, build_args: Mapping[str, str] | None = None,
          secrets: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
          timeout: float = 1800, output: list[str] | None = None, buildkit: bool = True) -> None:
    """Build `dockerfile` (context `context_dir`) as `tag` with BuildKit.

    `secrets` maps a secret id to a host file; it is visible only to `RUN --mount=type=secret`
    and never stored in a layer. Missing secret files are skipped (the Dockerfile treats the
    secret as optional). Builds use the host network (the engine may run with `--bridge=none`).
    On failure raises BuildError whose message is one line ending with the last build lines.
    The full output is appended to `output` when given. `buildkit=False` uses the classic
    builder (for Dockerfiles without RUN --mount when no BuildKit exists).
    """
    if buildkit:
        builder = buildkit_builder()
        if builder is None:
            raise BuildKitUnavailable("no BuildKit builder: install the buildx plugin (Debian: docker-buildx) "
                                      "or a docker CLI < 23 (Debian bookworm: docker.io)")
        prefix, env_prefix = builder
        argv = [*prefix, "--progress=plain"]
    else:  # the classic builder: no RUN --mount, no secrets
        prefix, env_prefix, secrets = [docker_cli(), "build"], {"DOCKER_BUILDKIT": "0"}, {}
        argv = list(prefix)
    argv += ["--network=host", "-f", dockerfile, "-t", tag]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        argv += ["--label", f"{key}={value}"]
    for sid, path in (secrets or {}).items():
        if path and os.path.isfile(path):
            argv += ["--secret", f"id={sid},src={path}"]
    argv.append(context_dir)
    log.debug("%s", _fmt(argv, env_prefix))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **env_prefix}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        text = _text(exc.stdout) + _text(exc.stderr)
        if output is not None:
            output.append(text)
        raise BuildError(f"docker build {tag} did not finish within {timeout:g}s: {_tail_line(text)}", text) from exc
    text = proc.stdout + proc.stderr
    if output is not None:
        output.append(text)
    if proc.returncode != 0:
        raise BuildError(f"docker build {tag} failed (exit {proc.returncode}): {_tail_line(text)}", text,
                         proc.returncode)


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def build_lines(text: str) -> list[str]:
    """The build's own output lines, without BuildKit's `#12 3.456 ` prefixes and step noise."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^#\d+ (\d+\.\d+ )?", "", line).rstrip()
        if not line or line.startswith(("DONE ", "CACHED", "ERROR: executor failed", "sha256:")) or \
                re.match(r"^\[[\w ./-]+\] ", line) or line.startswith(("transferring ", "resolve ", "naming to ")):
            continue
        out.append(line)
    return out


def _tail_line(text: str, n: int = 3) -> str:
    """One line for an error message: the last error line and what follows it, else the last lines."""
    text = text.split("\n------\n")[0]  # BuildKit's closing error box only repeats the step
    lines = [line.strip() for line in build_lines(text)
             if line.strip() and not line.startswith(("------", "> [", "executor failed running"))]
    errors = [i for i, line in enumerate(lines) if re.match(r"^(error|ERROR)\b|^\w*(Error|Exception)\b", line)]
    if errors:
        return " | ".join(lines[errors[-1]:errors[-1] + n])
    return " | ".join(lines[-n:]) if lines else "no output"

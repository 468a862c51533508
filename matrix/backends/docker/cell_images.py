"""Cell images: `scm-cell:<hash>` = dockerfiles/cell.Dockerfile on a python image + a venv at /env
with the cell's pins, installed by the same era-consistent steps as the venv backend. The tag is
a content hash of what goes in, so a warm run builds nothing. pip's CA bundle ($PIP_CERT) is a
BuildKit secret (or a read-only bind mount without BuildKit), never in a layer.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from typing import Iterator

from ..base import CannotInstall, Env, EnvError, EnvUnsupported
from ..install import InstallStep, install_plan, installer_args, parse_freeze, unreachable_cause, unsupported_cause
from ..interpreters import Interpreter
from . import engine as docker
from .container import build_by_commit
from .base_images import (DOCKER_CACHE, DOCKERFILES, LABEL, _build_logged, ca_secret, ensure_python_image,
                          uv_version)

log = logging.getLogger("matrix.images")

CELL_DOCKERFILE = os.path.join(DOCKERFILES, "cell.Dockerfile")
CELL_SCRIPT = os.path.join(DOCKERFILES, "cell-install.sh")
IMAGE_FORMAT = 1  # bump to invalidate every cached image tag
ENV_PYTHON = "/env/bin/python"
_tag_locks: dict[str, threading.Lock] = {}
_tag_locks_guard = threading.Lock()
# Until one Python 3 image has been built in this process, builds go one at a time: the first puts the
# uv binary in the shared BuildKit cache, and cell-install.sh names its temporary file by pid, which two
# containers share (both builds were pid 14: "No such file or directory: '/cache/uv-bin/.../.uv.14'").
_first_uv_build = threading.Lock()
_uv_in_cache = False


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def install_arg(lines: list[list[str]]) -> str:
    """The INSTALL build arg: one installer call per line, its words (`install.installer_args`)."""
    return "\n".join(" ".join(words) for words in lines)


def image_key(python_image_id: str, lines: list[list[str]], system: tuple[str, ...] = ()) -> str:
    blob = json.dumps([IMAGE_FORMAT, python_image_id, install_arg(lines), uv_version(),
                       _read(CELL_DOCKERFILE), _read(CELL_SCRIPT)] + ([sorted(system)] if system else [])).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_tag(python_image_id: str, lines: list[list[str]], system: tuple[str, ...] = ()) -> str:
    """`scm-cell:<sha256(python image id, the installer calls, cell.Dockerfile, cell-install.sh, uv
    [, the Debian packages the stack needs])[:16]>`."""
    return f"scm-cell:{image_key(python_image_id, lines, system)}"


def _lock_for(tag: str) -> threading.Lock:
    with _tag_locks_guard:
        return _tag_locks.setdefault(tag, threading.Lock())


def _sidecar(key: str) -> str:
    return os.path.join(DOCKER_CACHE, "cells", key + ".json")


def _installed_from_image(tag: str) -> dict[str, str]:
    proc = docker._call(["run", "--rm", "--network", "none", "--entrypoint", "cat", tag, "/env/freeze.txt"],
                        check=False, timeout=120)
    if proc.returncode != 0:
        raise EnvError(f"could not read /env/freeze.txt from {tag}: {docker._last_line(proc.stderr)}")
    return parse_freeze(proc.stdout)


def installed_from_build(output: str) -> dict[str, str]:
    """What cell-install.sh listed after "cell-install: installed:" in a build's output (BuildKit's
    step lines after it ignored); {} when the listing is not there. Saves a container per new image."""
    lines = docker.build_lines(output)
    marker = [i for i, line in enumerate(lines) if line.strip() == "cell-install: installed:"]
    if not marker:
        return {}
    listed = []
    for line in lines[marker[-1] + 1:]:
        if "==" not in line and " @ " not in line:
            break
        listed.append(line)
    return parse_freeze("\n".join(listed))


def _classify(exc: docker.BuildError) -> Exception:
    lines = docker.build_lines(exc.output)
    marker = [i for i, line in enumerate(lines) if "cell-install: installing the pins" in line]
    if not marker:  # it failed while setting up, before the pins' own resolution
        return EnvError(str(exc))
    lines = lines[marker[-1] + 1:]
    cause = unreachable_cause("\n".join(lines))
    if cause is not None:
        return CannotInstall(f"cannot install: the package index is unreachable ({cause})")
    cause = unsupported_cause("\n".join(lines))
    if cause is not None:
        return EnvUnsupported(_shorten(cause or str(exc)))
    return EnvError(str(exc))


def _shorten(message: str) -> str:
    """pip lists every release it saw ('(from versions: 0.1.0rc1, ... 1.45.1)'): keep the last few."""
    match = re.search(r"\(from versions: ([^)]*)\)", message)
    if match:
        versions = [v.strip() for v in match.group(1).split(",") if v.strip()]
        if len(versions) > 4:
            message = message.replace(match.group(0), "(from versions: ..., " + ", ".join(versions[-3:]) + ")")
    return message


def prepare_image(interp: Interpreter, pins: list[str], log: list[str] | None = None,
                  requires: list[str] | None = None, exclude_newer: str | None = None,
                  system: tuple[str, ...] = ()) -> Env:
    """Return a ready cell image for these pins on this Python, building it only if its tag is missing.

    Installs exactly like the venv backend (the same `installer_args`): by default one step per pin,
    each resolved as of its own release date. An explicit `exclude_newer` date instead installs
    everything in one step with that limit. `system` names Debian packages the stack needs (apt-get, in
    the image, before the pins).
    """
    log_lines = log if log is not None else []
    start = time.monotonic()
    requires = list(requires or [])
    if exclude_newer is not None:
        steps = [InstallStep(tuple(pins) + tuple(requires), exclude_newer)]
    else:
        steps = install_plan(interp.minor, pins, requires, log_lines)
    python_image = ensure_python_image(interp, log_lines)
    python_id = docker.image_id(python_image)
    if not python_id:
        raise EnvError(f"{python_image} vanished right after it was prepared")
    lines = installer_args(interp.minor, steps, pins)
    key = image_key(python_id, lines, system)
    tag = f"scm-cell:{key}"
    with _lock_for(tag):
        if docker.image_exists(tag):
            try:
                with open(_sidecar(key)) as fh:
                    installed = json.load(fh)["installed"]
            except (OSError, ValueError, KeyError):
                installed = _installed_from_image(tag)
            return Env(key, "/env", ENV_PYTHON, installed, False, time.monotonic() - start, interp, tag)
        build_args = {"PYTHON_IMAGE": python_image, "INSTALL": install_arg(lines), "UV_VERSION": uv_version(),
                      "SYSTEM": " ".join(sorted(system))}
        labels = {f"{LABEL}.pins": " ".join(pins), f"{LABEL}.python": interp.version,
                  f"{LABEL}.python-image": python_id, f"{LABEL}.install": " ; ".join(map(" ".join, lines))}
        output: list[str] = []
        try:
            with _uv_gate(interp):
                try:
                    _build_logged(DOCKERFILES, CELL_DOCKERFILE, tag, build_args, ca_secret(), labels, log_lines,
                                  output=output)
                except docker.BuildKitUnavailable:
                    _build_cell_by_commit(python_image, tag, build_args, labels, log_lines)
        except docker.BuildError as exc:
            raise _classify(exc) from None
        except docker.DockerError as exc:
            raise EnvError(str(exc)) from None
        installed = installed_from_build("".join(output)) or _installed_from_image(tag)
        os.makedirs(os.path.dirname(_sidecar(key)), exist_ok=True)
        with open(_sidecar(key), "w") as fh:
            json.dump({"tag": tag, "installed": installed, "pins": pins, "python": interp.version,
                       "python_image": python_id, "install": lines}, fh, indent=1)
        return Env(key, "/env", ENV_PYTHON, installed, True, time.monotonic() - start, interp, tag)


@contextlib.contextmanager
def _uv_gate(interp: Interpreter) -> Iterator[None]:
    """Held around a Python 3 image build while no such build has succeeded in this process (see
    `_first_uv_build`); afterwards, and for Python 2.7 (pip, no uv), it lets every build through at once."""
    global _uv_in_cache
    if interp.minor.startswith("2.") or _uv_in_cache:
        yield
        return
    with _first_uv_build:
        yield
        _uv_in_cache = True  # not reached when the build raised: the next build holds the gate instead


def _build_cell_by_commit(python_image: str, tag: str, build_args: dict[str, str], labels: dict[str, str],
                          log_lines: list[str]) -> None:
    """No BuildKit: the same install script in a running container (CA bind-mounted read-only), committed."""
    mounts = [(path, "/run/secrets/ca", "ro") for path in ca_secret().values()]
    env = {k: build_args[k] for k in ("INSTALL", "UV_VERSION", "SYSTEM")}
    changes = ["ENV VIRTUAL_ENV=/env",
               "ENV PATH=/env/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV PYTHONDONTWRITEBYTECODE=1"]
    changes += [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()]
    output: list[str] = []
    log_lines.append(f"$ (no BuildKit) sh cell-install.sh in {python_image}, then docker commit -> {tag}")
    try:
        build_by_commit(python_image, tag, _read(CELL_SCRIPT), env=env, mounts=mounts, changes=changes, output=output)
    finally:
        log_lines.append("".join(output)[-8000:])

"""The Docker backend: one cell image per install plan, one container per cell, the app `docker exec`-ed.

apps/ is bind-mounted read-only at /apps (editing an app never rebuilds an image), the container
shares the host network (the app reaches the mock server on 127.0.0.1), and the container is
always removed when the cell's session ends.
"""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

from ...paths import APPS_DIR
from ...plan.cells import Cell
from ..base import Env, EnvError
from ..interpreters import Interpreter, discover
from ..process import AppProcess
from .base_images import registry_available
from .cell_images import prepare_image
from .container import Container, remove_stale
from .engine import DockerError, engine_available

APPS_MOUNT = "/apps"
CONTAINER_ENV = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                 "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def cell_container(env: Env, extra_mounts: list[tuple[str, str, str]] | None = None,
                   lifetime: float | None = None) -> Container:
    """A Container for this cell image with apps/ bind-mounted read-only at /apps (not started yet).
    With `lifetime`, the container ends by itself after that many seconds, even if this process dies."""
    return Container(env.image, mounts=[(APPS_DIR, APPS_MOUNT, "ro"), *(extra_mounts or [])],
                     env=CONTAINER_ENV, workdir=APPS_MOUNT, lifetime=lifetime)


class DockerSession:
    """One started container; each app is a `docker exec` child. Whatever an attempt's app leaves behind
    is killed inside the container before the next attempt's app starts, or with the container (`docker
    rm -f`) when the cell ends: most cells have one attempt, and an exec that kills just before the
    container is removed would cost each of them a `docker exec` (about 0.1 s) for nothing."""

    apps_dir = APPS_MOUNT
    parent_pid = 0  # the harness is not visible from inside the container: the container's lifetime bounds it

    def __init__(self, box: Container):
        self.box = box
        self.leftovers = False  # an app ran since the container's processes were last killed

    def launch(self, argv: list[str], log_path: str) -> AppProcess:
        if self.leftovers:
            self.box.kill_processes()
        self.leftovers = True
        return AppProcess(self.box.exec_argv(argv), log_path).start()

    def after_stop(self) -> None:
        pass  # deferred: see the class docstring


class DockerBackend:
    name = "docker"

    def __init__(self) -> None:
        self._interpreters: dict[str, Interpreter] | None = None
        self._swept = False

    def sweep(self) -> list[str]:
        """Once per backend object: remove the containers that runs which no longer exist left behind
        (a SIGKILLed harness cannot remove its own; their lifetime ends them anyway)."""
        if self._swept:
            return []
        self._swept = True
        try:
            return remove_stale()
        except DockerError:
            return []

    def interpreters(self) -> dict[str, Interpreter]:
        """The machine's interpreters (copied into seeded images); where a registry answers, the official
        python:X.Y-slim images stand in for the minors this machine lacks."""
        if self._interpreters is None:
            found = discover()
            if registry_available():
                from ...axes.spec import load_axes

                for minor in load_axes().pythons:
                    found.setdefault(minor, Interpreter(minor, minor, f"python:{minor}-slim"))
            self._interpreters = found
        return self._interpreters

    def prepare(self, cell: Cell, log: list[str]) -> Env:
        try:
            return prepare_image(self.interpreters()[cell.python], cell.pin_specs(), log, list(cell.requires),
                                 system=cell.system)
        except (EnvError, DockerError) as exc:
            gone = engine_gone(exc)
            if gone is not None:
                raise gone from None
            if isinstance(exc, EnvError):
                raise
            raise EnvError(str(exc)) from None

    @contextlib.contextmanager
    def session(self, env: Env, max_seconds: float) -> Iterator[DockerSession]:
        self.sweep()
        box = cell_container(env, lifetime=max_seconds)
        try:
            box.__enter__()
        except DockerError as exc:
            raise (engine_gone(exc) or EnvError(f"could not start the cell's container: {exc}")) from None
        try:
            yield DockerSession(box)
        finally:
            box.stop()


def engine_gone(exc: Exception) -> EnvError | None:
    """If the Docker engine no longer answers, an EnvError that says so (and what failed); else None."""
    if engine_available() is not None:
        return None
    host = os.environ.get("DOCKER_HOST") or "the default socket"
    m = re.match(r"^`\S*docker (\w+).*?` exited \d+: (.*)$", str(exc), re.S)
    what, detail = (f" (docker {m.group(1)})", m.group(2)) if m else ("", str(exc))
    return EnvError(f"the Docker engine stopped answering at {host}{what}: {detail}")

"""What every backend provides, so the engine never knows which one it drives.

    backend.prepare(cell, log)  -> Env           the cell's pins installed (cached, keyed by content)
    backend.session(env, max_s) -> Session       a context manager around one cell's runs (gone after max_s)
    session.launch(argv, log)   -> AppProcess    a running app (process group / container exec)

The venv backend (`venv.py`) and the Docker backend (`docker/backend.py`) implement it; a third
backend is one more module with these three calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager, Protocol

from ..plan.cells import Cell
from .interpreters import Interpreter
from .process import AppProcess


class EnvUnsupported(RuntimeError):
    """The pins cannot be installed on this interpreter (no release for it): the cell is `unsupported`."""


class EnvError(RuntimeError):
    """Creating or filling the environment failed for another reason: the cell is `error`."""


class CannotInstall(EnvError):
    """The installer could not get the packages at all (the package index is unreachable, or the installer
    did not finish within the install timeout): the cell is `error`, its reason this message, which starts
    with "cannot install: ". Never `unsupported`: nothing was learnt about the pins."""


@dataclass(frozen=True)
class Env:
    """A ready environment for one cell's pins."""

    key: str  # content hash of what went into it
    path: str  # where the env lives (a directory on the host, or /env inside the image)
    python: str  # the interpreter that runs the app, as the app's launcher sees it
    installed: dict[str, str]  # distribution name (lower-case) -> version, read back from the env
    created: bool  # False when reused from the cache
    seconds: float
    interpreter: Interpreter
    image: str = ""  # the Docker image tag (docker backend only)


class Session(Protocol):
    """One cell's place to run apps: nothing for venv, a container for Docker."""

    apps_dir: str  # where apps/ is seen by the app's interpreter
    parent_pid: int  # what the app watches (--parent-pid): this process, or 0 where it cannot see it

    def launch(self, argv: list[str], log_path: str) -> AppProcess:
        """Start an app (argv as seen inside the session), its output appended to log_path."""

    def after_stop(self) -> None:
        """Called once the app is stopped and reaped: kill whatever it left behind, now or at the latest
        before the session's next app starts (never alongside it)."""


class Backend(Protocol):
    name: str

    def interpreters(self) -> dict[str, Interpreter]:
        """Python minor -> the interpreter cells of that Python run on."""

    def prepare(self, cell: Cell, log: list[str]) -> Env:
        """Install the cell's pins (or reuse them); raise EnvUnsupported or EnvError."""

    def session(self, env: Env, max_seconds: float) -> ContextManager[Session]:
        """Where one cell's attempts run; always cleaned up on exit, and gone after max_seconds even if
        this process is killed."""

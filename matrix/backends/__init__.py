"""Where cells run. Every backend answers the same three calls (`base.Backend`): the engine never
knows which one it drives. `resolve("auto")` picks Docker when an engine answers, else venv."""
from __future__ import annotations

from .base import Backend, Env, EnvError, EnvUnsupported  # noqa: F401

NAMES = ("venv", "docker")


class BackendUnavailable(RuntimeError):
    """A one-line reason why the requested backend cannot run here."""


def resolve(requested: str) -> tuple[str, str | None]:
    """'auto' | 'docker' | 'venv' -> (backend name, Docker engine version or None)."""
    if requested not in ("auto", *NAMES):
        raise BackendUnavailable(f"unknown backend {requested!r}; allowed: auto, {', '.join(NAMES)}")
    if requested == "venv":
        return "venv", None
    from .docker.engine import engine_available

    version = engine_available()
    if requested == "docker" and version is None:
        raise BackendUnavailable("--backend docker: no Docker engine answers (start dockerd, or use --backend venv)")
    return ("docker" if version else "venv"), version


def get(name: str) -> Backend:
    """A fresh backend object by name."""
    if name == "docker":
        from .docker.backend import DockerBackend

        return DockerBackend()
    if name == "venv":
        from .venv import VenvBackend

        return VenvBackend()
    raise BackendUnavailable(f"unknown backend {name!r}; allowed: {', '.join(NAMES)}")

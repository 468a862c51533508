"""Nox sessions of sentry-context-matrix. `nox -l` lists them."""
from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["matrix"]


def _install(session: nox.Session, extras: str = "") -> None:
    session.install("-e", f".{extras}")


@nox.session
def matrix(session: nox.Session) -> None:
    """Plan, prepare, run and judge every cell, then write results/ (args go to `python -m matrix run`)."""
    _install(session)
    label = " ".join(["nox -s matrix"] + (["--"] + session.posargs if session.posargs else []))
    session.run("python", "-m", "matrix", "run", "--command-label", label, *session.posargs)


@nox.session
def cell(session: nox.Session) -> None:
    """Rerun one or more cells by id, streaming their logs: nox -s cell -- <cell-id>."""
    if not session.posargs:
        session.error("give a cell id: nox -s cell -- asyncio/plain/py3.11/sentry-sdk-2.75.0 (ids: nox -s plan)")
    _install(session)
    session.run("python", "-m", "matrix", "cell", *session.posargs)


@nox.session
def plan(session: nox.Session) -> None:
    """List the cells the matrix would run (accepts --only/--exclude)."""
    _install(session)
    session.run("python", "-m", "matrix", "plan", *session.posargs)


@nox.session(name="update-axes")
def update_axes(session: nox.Session) -> None:
    """Resolve the axes' version policies against PyPI and rewrite matrix/axes/axes.lock.json."""
    _install(session)
    session.run("python", "-m", "matrix", "update-axes", *session.posargs)


@nox.session
def merge(session: nox.Session) -> None:
    """Merge shards' matrix.json files (nox -s matrix -- --shard K/N) into one results/ set."""
    _install(session)
    session.run("python", "-m", "matrix", "merge", *session.posargs)


@nox.session
def seed(session: nox.Session) -> None:
    """Build the Docker base images offline (Debian rootfs + this machine's interpreters) when no registry answers."""
    _install(session)
    session.run("python", "-m", "matrix", "seed", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """Re-render results/ (README.md, index.html) from results/matrix.json without rerunning."""
    _install(session)
    session.run("python", "-m", "matrix", "report", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Speed figures and ratios (12-cell slice cold/warm, overhead, env build, mock ingest); writes results/bench.json."""
    _install(session)
    session.run("python", "-m", "benchmarks.bench", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: mock server over real HTTP, the judge on recorded runs, real cells end to end."""
    _install(session, "[test]")
    session.run("pytest", *(session.posargs or ["-q"]))

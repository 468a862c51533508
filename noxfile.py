"""Nox sessions of sentry-context-matrix. `nox -l` lists them."""
from __future__ import annotations

import argparse
import os

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


@nox.session
def check(session: nox.Session) -> None:
    """Is my stack affected? nox -s check -- -r requirements.txt | uv.lock | poetry.lock | Pipfile.lock |
    pyproject.toml | pins [--python X.Y] [--run] [--format json]: the answers from the committed results
    (or measured now with --run); exit 1 on a leak, 2 bad input, 3 no answer (nox fails the session)."""
    if not session.posargs:
        session.error("give your stack: nox -s check -- -r requirements.txt (or uv.lock, poetry.lock, Pipfile.lock, "
                      "pyproject.toml, or pins like sentry-sdk==2.75.0 gevent==24.2.1)")
    _install(session)
    # relative paths are the caller's: nox runs sessions from the repository root
    session.run("python", "-m", "matrix", "check", *_from(session.invoked_from, session.posargs))


def _from(directory: str, args: list[str]) -> list[str]:
    """Arguments naming existing files, made absolute from the directory nox was started in."""
    out = []
    for arg in args:
        candidate = os.path.join(directory, arg)
        out.append(candidate if not os.path.isabs(arg) and not arg.startswith("-") and os.path.exists(candidate)
                   and "==" not in arg else arg)
    return out


@nox.session(name="update-axes")
def update_axes(session: nox.Session) -> None:
    """Resolve the axes' version policies against PyPI and rewrite matrix/axes/axes.lock.json."""
    _install(session)
    session.run("python", "-m", "matrix", "update-axes", *session.posargs)


@nox.session
def merge(session: nox.Session) -> None:
    """Merge every shard of one run (nox -s matrix -- --shard K/N) into its size's folder, logs included; strict."""
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
    """What users wait for: whole default runs per backend (-- --full: the full size and its 4 shards), a heavy
    env by uv vs virtualenv+pip, mock ingest, the gzip-bomb attack, image reuse; writes results/bench.json."""
    _install(session)
    session.run("python", "-m", "benchmarks.bench", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: mock server over real HTTP, the judge on recorded runs, real cells end to end."""
    _install(session, "[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def rehearse(session: nox.Session) -> None:
    """One night of .github/workflows/nightly.yml here, on a small slice: 2 shards, refused merges, the merge,
    the role diff against planted previous results, CHANGES.md and badges (python -m tests.rehearsal)."""
    _install(session, "[test]")
    session.run("python", "-m", "tests.rehearsal", *session.posargs)


@nox.session
def prerelease(session: nox.Session) -> None:
    """The pre-release lane: the newest SDK's cells with the SDK from PyPI's newest pre-release or a git URL
    (-- --sdk-source pre|git+URL[@REF], other `run` options too), compared by role with the released
    results; writes results/prerelease/<pypi|git>/ with its own CHANGES.md and badges."""
    _install(session)
    args = list(session.posargs) or ["--sdk-source", "pre"]
    known = argparse.ArgumentParser(add_help=False)
    known.add_argument("--sdk-source", required=True)
    known.add_argument("--results", default=None)
    known.add_argument("--full", action="store_true")
    lane, _ = known.parse_known_args(args)
    kind = "pypi" if lane.sdk_source == "pre" else "git"
    results = lane.results or os.path.join("results", "prerelease", kind, "full" if lane.full else "")
    released = os.path.join("results", "full" if lane.full else "", "matrix.json")
    label = " ".join(["nox -s prerelease --"] + args)
    session.run("python", "-m", "matrix", "run", "--command-label", label, *args)
    if os.path.exists(os.path.join(results, "matrix.json")) and os.path.exists(released):
        session.run("python", "-m", "matrix", "report", "--results", results, "--diff", released, "--changes", results)


@nox.session
def bisect(session: nox.Session) -> None:
    """Where the answers change over every release of one package: nox -s bisect -- threads/plain/py3.12/sentry-sdk-*
    (or a cell id and --package NAME); searches, confirms each boundary 3 times, prints the timeline."""
    if not session.posargs:
        session.error("give a line: nox -s bisect -- 'threads/plain/py3.12/sentry-sdk-*' (one version left open)")
    _install(session)
    session.run("python", "-m", "matrix", "bisect", *session.posargs)


@nox.session
def history(session: nox.Session) -> None:
    """Bisect every app x {plain, fix variants} over every SDK release (newest Python and 3.7), and over gevent,
    eventlet, twisted and channels with the newest SDK and the newest 1.x: writes results/history.json,
    results/history.md and the history section of results/index.html. Resumable: -- --resume."""
    _install(session)
    label = " ".join(["nox -s history"] + (["--"] + session.posargs if session.posargs else []))
    session.run("python", "-m", "matrix", "history", "--command-label", label, *session.posargs)

"""The pre-release lane: the SDK from somewhere other than a PyPI release, for SDK maintainers.

    --sdk-source pre              the newest PyPI pre-release newer than the newest locked release
    --sdk-source git+URL[@REF]    a git repository (https://..., file:///...) at REF (default HEAD)

The lane takes the planned cells that pin the newest locked SDK release and swaps the SDK for the
source: the cell id carries the source's version (`sentry-sdk-2.76.0a1`, or for git the newest
release plus the commit as a PEP 440 local label, `sentry-sdk-2.75.0+git.1a2b3c4d5e`), and the
installer gets the exact requirement (`sentry-sdk==2.76.0a1`, `sentry-sdk@git+URL@<full sha>`: the
commit, never a branch, so a cached environment is never stale). Everything else about the cells is
unchanged. Results of the lane go to results/prerelease/, never into the released tables.

`resolve_sdk_source` asks PyPI or `git ls-remote` (I/O); `apply_sdk_source` is pure.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from typing import Callable

from packaging.version import InvalidVersion, Version

from .cells import Cell

SDK = "sentry-sdk"
_SHA = re.compile(r"^[0-9a-f]{40}$")


class SourceError(ValueError):
    """An --sdk-source that cannot be used: one line saying why."""


@dataclass(frozen=True)
class SdkSource:
    spec: str  # as given on the command line
    kind: str  # "pypi" or "git"
    label: str  # the SDK version shown in cell ids
    requirement: str  # what the installer gets
    detail: str = ""  # the resolved ref, the pre-release's upload date...

    def to_json(self) -> dict[str, str]:
        return {"spec": self.spec, "kind": self.kind, "label": self.label, "requirement": self.requirement,
                "detail": self.detail}


def lane_kind(spec: str | None) -> str | None:
    """None (no lane), 'pypi' (--sdk-source pre) or 'git' (--sdk-source git+URL); SourceError otherwise."""
    if not spec:
        return None
    if spec == "pre":
        return "pypi"
    if spec.startswith("git+"):
        return "git"
    raise SourceError(f"--sdk-source {spec!r}: expected `pre` (PyPI pre-releases) or git+URL[@REF], "
                      "e.g. git+https://github.com/getsentry/sentry-python@master")


def split_git(spec: str) -> tuple[str, str]:
    """'git+https://host/x.git@main' -> ('https://host/x.git', 'main'); the ref defaults to HEAD.
    An '@' before the path is a user name (git+ssh://git@host/...), not a ref."""
    url = spec[len("git+"):]
    _, sep, rest = url.partition("://")
    at, slash = rest.rfind("@"), rest.find("/")
    if sep and at > slash >= 0:
        cut = len(url) - len(rest) + at
        return url[:cut], url[cut + 1:]
    return url, "HEAD"


def ls_remote(url: str, ref: str) -> str:
    """The commit `ref` points at in the repository at `url`."""
    if _SHA.match(ref):
        return ref
    try:
        proc = subprocess.run(["git", "ls-remote", url, ref], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SourceError(f"--sdk-source: git ls-remote {url} {ref} failed: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceError(f"--sdk-source: git ls-remote {url} {ref} failed: {last}")
    lines = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    exact = [sha for sha, name in lines if name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}")]
    found = exact or [sha for sha, _ in lines]
    if not found:
        raise SourceError(f"--sdk-source: {url} has no ref {ref!r}")
    return found[0]


def newest_prerelease(newest: str, release_list: list) -> object | None:
    """The newest non-yanked pre-release above the newest locked release, if PyPI has one."""
    floor = Version(newest)
    found = [r for r in release_list if r.parsed.is_prerelease and not r.yanked and r.parsed > floor]
    return max(found, key=lambda r: r.parsed) if found else None


def resolve_sdk_source(spec: str, newest: str, release_list: Callable[[], list] | None = None,
                       resolve_ref: Callable[[str, str], str] = ls_remote) -> SdkSource | None:
    """What the lane installs. None when `pre` finds no pre-release newer than `newest` (nothing to run)."""
    kind = lane_kind(spec)
    if kind == "pypi":
        if release_list is None:
            from ..axes.releases import releases

            def release_list() -> list:
                return releases(SDK, refresh=True)
        rel = newest_prerelease(newest, release_list())
        if rel is None:
            return None
        return SdkSource(spec, "pypi", rel.version, f"{SDK}=={rel.version}", f"uploaded {rel.uploaded:%Y-%m-%d}")
    url, ref = split_git(spec)
    if not url:
        raise SourceError(f"--sdk-source {spec!r}: no repository URL after git+")
    sha = resolve_ref(url, ref)
    return SdkSource(spec, "git", f"{newest}+git.{sha[:10]}", f"{SDK}@git+{url}@{sha}", f"{ref} = {sha}")


def apply_sdk_source(cells: list[Cell], source: SdkSource, newest: str) -> list[Cell]:
    """The cells pinning the newest SDK release, with the SDK swapped for the source (pure)."""
    out = []
    for cell in cells:
        if dict(cell.pins).get(SDK) != newest:
            continue
        pins = tuple((name, source.label if name == SDK else version) for name, version in cell.pins)
        out.append(replace(cell, pins=pins, sdk_requirement=source.requirement))
    return out


def newest_sdk(lock: dict) -> str:
    """The newest SDK release in the lock's axis."""
    versions = [entry["version"] for entry in lock.get("axes", {}).get(SDK, [])]
    try:
        return str(max(versions, key=Version))
    except (ValueError, InvalidVersion):
        raise SourceError("the lock has no sentry-sdk versions: run `nox -s update-axes`") from None

"""Axis policies: which releases of a package the matrix tests, chosen from real release data.

Pure functions over `Release` lists (no network), so they are unit-tested on fixed data.
Candidates are the newest patch release of each minor series, with yanked releases and
pre-releases dropped; each policy key then picks from those candidates and says why.

Policy keys (all optional, combined as a union):
  newest = true              the newest release
  newest_per_major = true    the newest release of every major series
  first_per_major = true     the first release of every major series (x.0.0 or its newest patch)
  lowest = true              the lowest candidate (at or above `min`)
  around = ["20.5.0", ...]   the last release before and the first release at/after each boundary
  include = ["0.19.5", ...]  exact releases, taken as they are
  min = "0.10.0"             floor for every rule except include
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from packaging.version import InvalidVersion, Version

from .releases import Release

POLICY_KEYS = ("newest", "newest_per_major", "first_per_major", "lowest", "around", "include", "min")


class PolicyError(ValueError):
    """A one-line complaint about a policy entry."""


@dataclass(frozen=True)
class Pick:
    version: str
    why: tuple[str, ...]


def candidates(releases: Iterable[Release], floor: Version | None = None) -> list[Release]:
    """Newest patch of each minor series, no pre-releases, no yanked; oldest first."""
    best: dict[tuple[int, int], Release] = {}
    for rel in releases:
        v = rel.parsed
        if v.is_prerelease or v.is_devrelease or rel.yanked or (floor is not None and v < floor):
            continue
        key = (v.major, v.minor)
        if key not in best or v > best[key].parsed:
            best[key] = rel
    return sorted(best.values(), key=lambda r: r.parsed)


def _version(value: Any, where: str) -> Version:
    try:
        return Version(str(value))
    except InvalidVersion:
        raise PolicyError(f"{where} = {value!r}: not a version (e.g. '20.5.0')") from None


def validate_policy(name: str, policy: dict[str, Any]) -> None:
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise PolicyError(f"packages.{name}: unknown key(s) {unknown}; allowed: {', '.join(POLICY_KEYS)}")
    for key in ("newest", "newest_per_major", "first_per_major", "lowest"):
        if key in policy and not isinstance(policy[key], bool):
            raise PolicyError(f"packages.{name}.{key} = {policy[key]!r}: expected true or false")
    for key in ("around", "include"):
        if key in policy:
            if not isinstance(policy[key], list):
                raise PolicyError(f"packages.{name}.{key} = {policy[key]!r}: expected a list of versions")
            for value in policy[key]:
                _version(value, f"packages.{name}.{key}")
    if "min" in policy:
        _version(policy["min"], f"packages.{name}.min")
    if not any(policy.get(k) for k in POLICY_KEYS if k != "min"):
        raise PolicyError(f"packages.{name}: the policy selects nothing; use one of "
                          "newest, newest_per_major, first_per_major, lowest, around, include")


def select(name: str, policy: dict[str, Any], releases: list[Release]) -> list[Pick]:
    """Apply one package's policy to its releases; versions oldest first, each with its reasons."""
    validate_policy(name, policy)
    floor = _version(policy["min"], f"packages.{name}.min") if "min" in policy else None
    pool = candidates(releases, floor)
    if not pool:
        raise PolicyError(f"packages.{name}: no release left after dropping pre-releases, yanked and < min")
    why: dict[str, list[str]] = {}

    def take(rel: Release, reason: str) -> None:
        why.setdefault(rel.version, []).append(reason)

    if policy.get("newest"):
        take(pool[-1], "newest")
    if policy.get("lowest"):
        take(pool[0], "lowest" + (f" at or above {floor}" if floor else ""))
    majors = sorted({r.parsed.major for r in pool})
    for major in majors:
        series = [r for r in pool if r.parsed.major == major]
        if policy.get("newest_per_major"):
            take(series[-1], f"newest {major}.x")
        if policy.get("first_per_major"):
            take(series[0], f"first {major}.x")
    for boundary in policy.get("around", []):
        edge = _version(boundary, f"packages.{name}.around")
        before = [r for r in pool if r.parsed < edge]
        after = [r for r in pool if r.parsed >= edge]
        if before:
            take(before[-1], f"last before {boundary}")
        if after:
            take(after[0], f"first at/after {boundary}")
    known = {r.version: r for r in releases}
    for value in policy.get("include", []):
        if str(value) not in known:
            newest = ", ".join(r.version for r in pool[-3:])
            raise PolicyError(f"packages.{name}.include: {value!r} is not a release on PyPI (newest: {newest})")
        take(known[str(value)], "named in the axes")
    return [Pick(v, tuple(reasons)) for v, reasons in sorted(why.items(), key=lambda kv: Version(kv[0]))]

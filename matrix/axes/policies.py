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
  boundaries_from_history = true
                             both releases of every confirmed boundary results/history.json records for
                             this package (`nox -s history`), exact releases at or above `min`; the lock also
                             lists them as cells (app, variant, Python, the line's other pins) that every
                             run size plans, so the default results hold both sides of each boundary
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from packaging.version import InvalidVersion, Version

from .releases import Release

POLICY_KEYS = ("newest", "newest_per_major", "first_per_major", "lowest", "around", "include", "min",
               "boundaries_from_history")


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
    for key in ("newest", "newest_per_major", "first_per_major", "lowest", "boundaries_from_history"):
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
                          "newest, newest_per_major, first_per_major, lowest, around, include, boundaries_from_history")


def select(name: str, policy: dict[str, Any], releases: list[Release],
           boundaries: Iterable[tuple[str, str]] = ()) -> list[Pick]:
    """Apply one package's policy to its releases; versions oldest first, each with its reasons.
    `boundaries`: (version, why) of both sides of every boundary the history found for this package
    (history_boundaries), taken when the policy says boundaries_from_history."""
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
    if policy.get("boundaries_from_history"):
        for version, reason in boundaries:
            if version in known:
                take(known[version], reason)
    return [Pick(v, tuple(reasons)) for v, reasons in sorted(why.items(), key=lambda kv: Version(kv[0]))]


@dataclass(frozen=True)
class BoundaryCell:
    """One side of one confirmed boundary of results/history.json, as a cell to plan."""

    package: str
    app: str
    variant: str  # concrete (the history records which variant ran on each side)
    python: str
    pins: tuple[tuple[str, str], ...]  # the line's pins with the package at this side's release
    version: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"package": self.package, "app": self.app, "variant": self.variant, "python": self.python,
                "pins": [list(p) for p in self.pins], "why": self.why}


def history_boundaries(history: dict[str, Any], package: str) -> list[BoundaryCell]:
    """Both sides of every confirmed boundary the history found over `package`'s releases. Pure."""
    out: dict[tuple, BoundaryCell] = {}
    for line in history.get("lines", []):
        if line.get("package") != package:
            continue
        for b in line.get("boundaries", []):
            if not b.get("confirmed"):
                continue
            for side, word in ((b["before"], "last before"), (b["after"], "first after")):
                if not side.get("variant"):
                    continue
                pins = [(package, side["version"]) if n == package else (n, v) for n, v in _line_pins(line)]
                cell = BoundaryCell(package, line["app"], side["variant"], line["python"], tuple(pins),
                                    side["version"], f"history: {word} {b['dimension']} {b['from']}->{b['to']} "
                                                     f"in {line['line']}")
                key = (cell.app, cell.variant, cell.python, cell.pins)
                out.setdefault(key, cell)
    return list(out.values())


def _line_pins(line: dict[str, Any]) -> list[tuple[str, str]]:
    """A history line's pins in cell-id order (sentry-sdk first), the open package included as '*'."""
    if line.get("pins"):
        return [(str(n), str(v)) for n, v in line["pins"]]
    pins = [("sentry-sdk", line["fixed"].get("sentry-sdk", "*"))]
    pins += [(n, v) for n, v in line["fixed"].items() if n != "sentry-sdk"]
    if line["package"] != "sentry-sdk":
        pins.append((line["package"], "*"))
    return pins

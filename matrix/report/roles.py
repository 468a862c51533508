"""Roles: what place a cell holds in its results document, so a new release is compared with the
release that held the same place before. Pure functions of the documents; nothing else is read.

A cell id pins exact versions (`gevent/plain/py3.12/sentry-sdk-2.75.0/gevent-26.9.0`). When
`update-axes` picks up sentry-sdk 2.76.0, the cell gets a new id and an id-keyed diff sees only
"new" and "vanished". A role names the place instead of the version:

    threads/plain/py3.12/newest sentry-sdk
    gevent/plain/py3.12/newest sentry-sdk/gevent 26.9.0          (the SDK moves, gevent fixed)
    gevent/plain/py3.12/sentry-sdk 2.75.0/newest gevent          (gevent moves, the SDK fixed)
    gevent/plain/py3.12/newest sentry-sdk/newest gevent          (both moved the same night)
    asyncio/plain/py3.12/newest sentry-sdk 1.x                   (the newest of one major series)

A cell holds "newest <pkg>" when no cell of the same document with the same app, variant, Python
minor, route and other pins has a newer <pkg>; "newest <pkg> <major>.x" likewise within its major
series. At most two packages move at once (apps have at most two axes; the named cases pin many
packages but keep their ids across runs, so their id comparison already covers them).

Answers: a schema-2 cell carries `scope` and `tracing`; a schema-1 cell (before they existed) only a
`verdict`, from which a coarse scope answer is derived (leak -> leak, isolated/nested -> isolated,
anything else unknown) and no tracing answer. Comparisons use only answers both sides really have.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Iterable

from packaging.version import InvalidVersion, Version

from ..plan.cells import CellIdError, parse_cell_id

ANSWERS = ("verdict", "scope", "tracing")
MAX_MOVING = 2


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Place:
    """A cell id taken apart: what a role keeps fixed and what it lets move."""

    app: str
    variant: str
    python: str  # minor, as in the id
    pins: tuple[tuple[str, str], ...]
    route: str | None

    @classmethod
    def of(cls, cell_id: str) -> "Place | None":
        try:
            app, variant, python, pins, route = parse_cell_id(cell_id)
        except CellIdError:
            return None
        return cls(app, variant, python, pins, route)


def derived_answers(cell: dict[str, Any]) -> dict[str, str]:
    """verdict, scope and tracing of a cell: the cell's own where it has them; for a schema-1 cell a
    scope derived from its verdict. Tracing is left out where the cell never measured it."""
    out = {"verdict": cell.get("verdict", "unknown")}
    if "scope" in cell:
        out["scope"] = cell["scope"]
    else:
        out["scope"] = {"leak": "leak", "isolated": "isolated", "nested": "isolated"}.get(out["verdict"], "unknown")
    if "tracing" in cell:
        out["tracing"] = cell["tracing"]
    return out


def differing(old: dict[str, Any], new: dict[str, Any], fields: Iterable[str]) -> list[str]:
    """Which of `fields` differ between two cells, counting only answers both cells have. The scope
    answer always exists (derived from the verdict on schema-1 cells); tracing only on schema-2 cells."""
    a, b = derived_answers(old), derived_answers(new)
    out = []
    for name in fields:
        if name == "scope" and ("scope" in old) != ("scope" in new):
            # one side is schema 1: compare the coarse answer only where both sides can give it
            if "unknown" in (a["scope"], b["scope"]):
                continue
        if name in a and name in b and a[name] != b[name]:
            out.append(name)
    return out


def _role_name(place: Place, moving: dict[str, str]) -> str:
    """'gevent/plain/py3.12/sentry-sdk 2.75.0/newest gevent[/on-route]'; moving: pkg -> rank label."""
    parts = [place.app, place.variant, f"py{place.python}"]
    for name, version in place.pins:
        parts.append(moving[name] if name in moving else f"{name} {version}")
    if place.route:
        parts.append(f"on-{place.route}")
    return "/".join(parts)


def roles(cells: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Every role held in one document: role name -> the id of the cell holding it.

    Cells that could not run (`unsupported`) hold no role: a release that cannot install on a Python
    does not take that Python's place from the release that ran there."""
    places: dict[str, Place] = {}
    for cell in cells:
        if cell.get("verdict") == "unsupported":
            continue
        place = Place.of(cell["id"])
        if place is not None and all(_version(v) is not None for _, v in place.pins):
            places[cell["id"]] = place
    # group key -> [(cell id, {moving pkg: version})]
    groups: dict[tuple, list[tuple[str, dict[str, Version]]]] = defaultdict(list)
    for cell_id, place in places.items():
        names = [name for name, _ in place.pins]
        for size in range(1, min(MAX_MOVING, len(names)) + 1):
            for moving in combinations(names, size):
                fixed = tuple((n, v) for n, v in place.pins if n not in moving)
                key = (place.app, place.variant, place.python, place.route, tuple(names), moving, fixed)
                groups[key].append((cell_id, {n: _version(v) for n, v in place.pins if n in moving}))
    held: dict[str, str] = {}
    for key, members in groups.items():
        moving = key[5]
        # newest in every moving package at once
        best = {name: max(m[1][name] for m in members) for name in moving}
        for cell_id, versions in members:
            if all(versions[name] == best[name] for name in moving):
                held[_role_name(places[cell_id], {n: f"newest {n}" for n in moving})] = cell_id
        if len(moving) == 1:  # the newest of each major series
            name = moving[0]
            series: dict[int, tuple[Version, str]] = {}
            for cell_id, versions in members:
                major = versions[name].release[0]
                if major not in series or versions[name] > series[major][0]:
                    series[major] = (versions[name], cell_id)
            for major, (_, cell_id) in series.items():
                held[_role_name(places[cell_id], {name: f"newest {name} {major}.x"})] = cell_id
    return held


def _moved_forward(old_id: str, new_id: str) -> bool:
    """The new holder's pins are at least as new as the old holder's, and at least one is newer."""
    old, new = Place.of(old_id), Place.of(new_id)
    if old is None or new is None:
        return False
    a, b = dict(old.pins), dict(new.pins)
    if set(a) != set(b):
        return False
    newer = False
    for name in a:
        va, vb = _version(a[name]), _version(b[name])
        if va is None or vb is None or vb < va:
            return False
        newer = newer or vb > va
    return newer


def _role_rank(role: str) -> tuple[int, int, str]:
    """Most telling role first: fewer moving packages, 'newest X' before 'newest X 2.x'."""
    parts = role.split("/")
    moving = [p for p in parts if p.startswith("newest ")]
    series = sum(1 for p in moving if p.endswith(".x"))
    return (len(moving), series, role)


@dataclass(frozen=True)
class Succession:
    """A new cell that took a role over from a cell of the previous document."""

    role: str  # the most telling role they share
    old_id: str
    new_id: str
    roles: tuple[str, ...]  # every role the new cell took over from the old one


def successions(old_cells: list[dict[str, Any]], new_cells: list[dict[str, Any]]) -> list[Succession]:
    """Pairs (previous holder, new holder) of the same role where the new holder is a cell the previous
    document did not have and its pins moved forward (a newer release took the place). One entry per
    pair, however many roles they share."""
    old_ids = {c["id"] for c in old_cells}
    before, after = roles(old_cells), roles(new_cells)
    pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for role, new_id in after.items():
        old_id = before.get(role)
        if old_id is None or old_id == new_id or new_id in old_ids:
            continue
        if _moved_forward(old_id, new_id):
            pairs[(old_id, new_id)].append(role)
    out = []
    for (old_id, new_id), names in pairs.items():
        names.sort(key=_role_rank)
        out.append(Succession(names[0], old_id, new_id, tuple(names)))
    return sorted(out, key=lambda s: (s.new_id, s.old_id))

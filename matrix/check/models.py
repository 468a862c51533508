"""Which models a stack implies, and why: the rules are data (matrix/check/models.toml), the app ids and
their Python ranges and routes come from the axes (matrix/axes/axes.toml).

"gunicorn + gevent + django -> django-gevent (gunicorn -k gevent)"; threads always; asyncio and the
thread pool on every Python 3, but only as "if you ..." (requirements cannot show whether your code
runs concurrent tasks), counted toward the exit code with `--uses`. A framework the harness has no app
for gets one line naming what is missing.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from ..axes.spec import AppAxes, Axes
from .inputs import InputError
from .stack import Stack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RULES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models.toml")
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "report",
                           "results.schema.json")
APP_KEYS = ("when", "unless", "always", "if_you", "note", "routes", "pick")
UNMODELLED_KEYS = ("what", "nearest", "unless")


class ModelsError(ValueError):
    """A mistake in matrix/check/models.toml: one line naming the key and what is allowed."""


@dataclass(frozen=True)
class Rule:
    app: str
    when: tuple[tuple[str, ...], ...] = ()  # all groups present; a group is satisfied by any of its names
    unless: tuple[str, ...] = ()
    always: bool = False
    if_you: str = ""
    note: str = ""
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pick: str = ""


@dataclass(frozen=True)
class Unmodelled:
    package: str
    what: str
    nearest: str = ""
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rules:
    apps: tuple[Rule, ...]
    unmodelled: tuple[Unmodelled, ...]

    def rule(self, app: str) -> Rule | None:
        return next((r for r in self.apps if r.app == app), None)


@dataclass
class Implied:
    """A model the stack implies: the app, why, and whether its answer counts toward the exit code."""

    app: str
    why: str  # "gunicorn + gevent + django -> django-gevent (gunicorn -k gevent)"
    counted: bool
    condition: str = ""  # "if you run concurrent asyncio tasks that use the SDK" (shown when not counted)
    routes: tuple[str | None, ...] = (None,)  # the routes that apply; (None,) for an app without routes
    route_notes: list[str] = field(default_factory=list)  # routes left out and why, how to pick one
    axes: AppAxes | None = None  # None: the harness has no such app yet


@dataclass
class Mapping:
    implied: list[Implied]
    not_implied: list[str]  # matched rules that do not apply, one line each
    unmodelled: list[tuple[str, bool]]  # (line, counted toward "could not answer")


def known_app_ids(axes: Axes) -> tuple[str, ...]:
    """The apps of the axes and the ones the results schema already names (being added elsewhere)."""
    ids = list(axes.apps)
    try:
        with open(SCHEMA_FILE, encoding="utf-8") as fh:
            ids += [a for a in json.load(fh)["$defs"]["cell"]["properties"]["app"]["enum"] if a not in ids]
    except (OSError, ValueError, KeyError):
        pass
    return tuple(ids)


def _names(value: Any, key: str, alternatives: bool = False) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)):
        raise ModelsError(f"{key} = {value!r}: expected a list of package names"
                          + (" (a|b for either)" if alternatives else ""))
    return tuple(value)


def parse_rules(data: dict, known: tuple[str, ...]) -> Rules:
    """Validate models.toml (parsed) against the known app ids. Pure."""
    extra = set(data) - {"apps", "unmodelled"}
    if extra:
        raise ModelsError(f"unknown top-level key(s) {sorted(extra)}; allowed: apps, unmodelled")
    rules = []
    for app, table in data.get("apps", {}).items():
        key = f"apps.{app}"
        if app not in known:
            raise ModelsError(f"{key}: not an app of the axes or the results schema; allowed: {', '.join(known)}")
        if not isinstance(table, dict):
            raise ModelsError(f"{key} = {table!r}: expected a table")
        unknown = set(table) - set(APP_KEYS)
        if unknown:
            raise ModelsError(f"{key}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(APP_KEYS)}")
        when = tuple(tuple(canonicalize_name(n) for n in group.split("|"))
                     for group in _names(table.get("when", []), f"{key}.when", True)) if "when" in table else ()
        always = table.get("always", False)
        if not isinstance(always, bool):
            raise ModelsError(f"{key}.always = {always!r}: expected true or false")
        if bool(when) == always:
            raise ModelsError(f"{key}: give exactly one of `when = [...]` and `always = true`")
        for text_key in ("if_you", "note", "pick"):
            if not isinstance(table.get(text_key, ""), str):
                raise ModelsError(f"{key}.{text_key}: expected a string")
        routes = table.get("routes", {})
        if not isinstance(routes, dict):
            raise ModelsError(f"{key}.routes = {routes!r}: expected a table route = [packages]")
        rules.append(Rule(app, when, tuple(canonicalize_name(n) for n in
                                           _names(table.get("unless", []), f"{key}.unless")) if "unless" in table
                          else (), always, table.get("if_you", ""), table.get("note", ""),
                          {r: tuple(canonicalize_name(n) for n in _names(v, f"{key}.routes.{r}"))
                           for r, v in routes.items()}, table.get("pick", "")))
    unmodelled = []
    for package, table in data.get("unmodelled", {}).items():
        key = f"unmodelled.{package}"
        if not isinstance(table, dict) or not isinstance(table.get("what"), str) or not table["what"].strip():
            raise ModelsError(f"{key}: expected a table with what = 'what is missing'")
        unknown = set(table) - set(UNMODELLED_KEYS)
        if unknown:
            raise ModelsError(f"{key}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(UNMODELLED_KEYS)}")
        nearest = table.get("nearest", "")
        if nearest and nearest not in known:
            raise ModelsError(f"{key}.nearest = {nearest!r}: not an app; allowed: {', '.join(known)}")
        unmodelled.append(Unmodelled(canonicalize_name(package), table["what"], nearest,
                                     tuple(canonicalize_name(n) for n in _names(table["unless"], f"{key}.unless"))
                                     if "unless" in table else ()))
    return Rules(tuple(rules), tuple(unmodelled))


def load_rules(axes: Axes, path: str = RULES_FILE) -> Rules:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ModelsError(f"{path}: not valid TOML: {exc}") from None
    return parse_rules(data, known_app_ids(axes))


def parse_uses(values: list[str], rules: Rules, axes: Axes) -> dict[str, set[str]]:
    """--uses APP[:ROUTE] -> {app: routes (empty: all)}; one-line InputError for an unknown one."""
    out: dict[str, set[str]] = {}
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            app, _, route = item.partition(":")
            if rules.rule(app) is None:
                raise InputError(f"--uses {item}: {app!r} is not a model; allowed: "
                                 + ", ".join(r.app for r in rules.apps))
            routes = _all_routes(app, rules, axes)
            if route and route not in routes:
                raise InputError(f"--uses {item}: {route!r} is not a route of {app}; allowed: "
                                 + (", ".join(routes) or "none (use --uses " + app + ")"))
            out.setdefault(app, set())
            if route:
                out[app].add(route)
    return out


def _all_routes(app: str, rules: Rules, axes: Axes) -> tuple[str, ...]:
    if app in axes.apps:
        return axes.apps[app].routes
    rule = rules.rule(app)
    return tuple(rule.routes) if rule else ()


def imply(stack: Stack, rules: Rules, axes: Axes, uses: dict[str, set[str]] | None = None) -> Mapping:
    """The models this stack implies, each with its reason; the matched rules that do not apply; and
    the frameworks no model covers."""
    uses = uses or {}
    implied: list[Implied] = []
    not_implied: list[str] = []
    for rule in rules.apps:
        matched = [next(n for n in group if stack.has(n)) for group in rule.when
                   if any(stack.has(n) for n in group)]
        if not rule.always and len(matched) < len(rule.when):
            continue
        head = " + ".join(matched) if matched else "any stack"
        arrow = f"{head} → {rule.app}" + (f" ({rule.note})" if rule.note else "")
        blocker = next((n for n in rule.unless if stack.has(n)), None)
        if blocker:
            not_implied.append(f"{head} → not {rule.app}: {blocker} is in the stack, another model covers it")
            continue
        app = axes.apps.get(rule.app)
        if app is not None and Version(stack.python) not in app.python:
            if matched:
                not_implied.append(f"{arrow}: not on Python {stack.python} (the app runs on {app.python})")
            continue
        condition, counted = (f"if you {rule.if_you}" if rule.if_you else ""), not rule.if_you
        if matched and stack.direct is not None and not any(n in stack.direct for n in matched):
            condition = (f"if you use {' + '.join(matched)} yourself: the project does not depend on "
                         f"{'it' if len(matched) == 1 else 'them'} directly (another package brings "
                         f"{'it' if len(matched) == 1 else 'them'})")
            counted = False
        if rule.app in uses:
            condition, counted = "", True
        routes, notes = _routes(rule, app, stack, uses.get(rule.app, set()))
        implied.append(Implied(rule.app, arrow, counted, condition, routes, notes, app))
    unmodelled = []
    for item in rules.unmodelled:
        if not stack.has(item.package) or any(stack.has(n) for n in item.unless):
            continue
        line = f"{item.package}: {item.what}" + (f"; nearest model: {item.nearest}" if item.nearest else "")
        transitive = stack.direct is not None and item.package not in stack.direct
        unmodelled.append((line + (" (it comes with another package: not counted)" if transitive else ""),
                           not transitive))
    return Mapping(implied, not_implied, unmodelled)


def _routes(rule: Rule, app: AppAxes | None, stack: Stack, chosen: set[str]) -> tuple[tuple[str | None, ...], list[str]]:
    names = app.routes if app is not None else tuple(rule.routes)
    if not names:
        return (None,), []
    notes = []
    keep = []
    for route in names:
        needs = [n for n in rule.routes.get(route, ()) if not stack.has(n)]
        if chosen and route not in chosen:
            continue
        if needs and not chosen:
            notes.append(f"{route}: needs {', '.join(needs)} (not in the stack)")
            continue
        keep.append(route)
    if rule.pick and not chosen and len(keep) > 1:
        notes.append(f"which is yours: {rule.pick}; every one that can run is answered "
                     f"(--uses {rule.app}:<{'|'.join(keep)}> keeps one)")
    return tuple(keep) or (None,), notes

"""Load and validate `matrix/axes.toml`: the matrix declared as data.

Every bad entry is reported as one line naming the key, the value and what is allowed.
Package versions are not listed here but chosen by policies (matrix/policies.py) that
`nox -s update-axes` resolves into matrix/axes.lock.json.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..paths import known_apps
from .policies import PolicyError, validate_policy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AXES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "axes.toml")
SIZES = ("default", "full")
_MINOR_RE = re.compile(r"^[23]\.[0-9]+$")


class AxesError(ValueError):
    """A one-line complaint about the axes file."""


@dataclass(frozen=True)
class MemoryProbe:
    """After `warmup` load requests send `requests` more in `windows` equal windows, counting the SDK
    objects the app still holds (after a flush and gc) before and after each; the memory check fails
    when the 95% confidence interval of the count's slope over requests lies wholly above
    `per_request` (a leak grows linearly; warm-up growth is over before the first sample)."""

    requests: int
    per_request: float
    warmup: int = 50
    routes: tuple[str, ...] | None = None  # probe only these routes (None: every route)
    windows: int = 8


@dataclass(frozen=True)
class Slice:
    """Which pythons and versions of each axis a run size takes: "all", or a list (versions,
    "newest", "oldest")."""

    python: tuple[str, ...] | None  # None: all
    versions: dict[str, tuple[str, ...] | None]  # axis -> None (all) or chosen values
    variants: tuple[str, ...] | None = None  # None: the app's variants


@dataclass(frozen=True)
class NotApplicable:
    """Cells of this route (or any) whose pins all match are planned `unsupported` with the reason."""

    route: str | None
    packages: tuple[tuple[str, SpecifierSet], ...]
    reason: str
    python: SpecifierSet | None = None
    variants: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Advice:
    """What the report tells a user of this app, chosen by what the cells measured (never assumed):
    `leak` when the plain variant leaks, `isolated` when it does not, `detached`/`nested` for the
    tracing answer, and per fix variant the code to paste (`fixes`: variant -> snippet)."""

    leak: str = ""
    isolated: str = "Nothing to do: each unit keeps its own scope data."
    detached: str = ""
    nested: str = ""
    fixes: tuple[tuple[str, str], ...] = ()  # (variant or @alias, code to paste)


ADVICE_KEYS = ("leak", "isolated", "detached", "nested", "fixes")


@dataclass(frozen=True)
class AppAxes:
    app: str
    python: SpecifierSet
    variants: tuple[str, ...]
    axes: tuple[str, ...]
    requires: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    memory: MemoryProbe | None = None
    slices: dict[str, Slice] = field(default_factory=dict)  # "default"/"full" -> Slice
    not_applicable: tuple[NotApplicable, ...] = ()
    advice: Advice = field(default_factory=Advice)
    models: str = ""  # one line: what the app models (shown in the summary)
    system: tuple[str, ...] = ()  # Debian packages the stack needs besides Python ones (redis-server...)
    arrival: str = "together"  # how the normal round's units are sent: see ARRIVALS


#: How the harness sends a normal round's units. `together`: all N requests at once (the barrier forces
#: the overlap). `in-turn`: unit k+1 is sent only once unit k has reached the barrier (GET /arrived), so
#: every later unit is dispatched after every earlier one wrote its scope, and they still overlap at the
#: barrier: the order in which a leak through "the request dispatched meanwhile clones the current
#: hub" (Tornado 5's gen.coroutine) shows every time instead of by luck.
ARRIVALS = ("together", "in-turn")


@dataclass(frozen=True)
class Case:
    """A named cell set the page's claims need, planned in every run size."""

    claim: str
    app: str
    pythons: tuple[str, ...]
    pins: tuple[tuple[str, str], ...]
    variants: tuple[str, ...] | None  # None: the app's variants
    note: str = ""


@dataclass(frozen=True)
class Axes:
    pythons: tuple[str, ...]
    policies: dict[str, dict[str, Any]]
    apps: dict[str, AppAxes]
    variant_aliases: dict[str, tuple[tuple[SpecifierSet, str], ...]]
    cases: tuple[Case, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def resolve_variant(self, variant: str, sdk_version: str) -> str | None:
        """`@alias` -> the concrete variant for this SDK release (None if no rule covers it)."""
        if not variant.startswith("@"):
            return variant
        for spec, name in self.variant_aliases[variant[1:]]:
            if Version(sdk_version) in spec:
                return name
        return None


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise AxesError(message)


def _str_list(value: object, key: str) -> tuple[str, ...]:
    _need(
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value),
        f"{key} = {value!r}: expected a non-empty list of strings",
    )
    return tuple(value)  # type: ignore[arg-type]


def _specifier(value: object, key: str) -> SpecifierSet:
    try:
        return SpecifierSet(str(value))
    except InvalidSpecifier:
        raise AxesError(f"{key} = {value!r}: not a PEP 440 specifier (e.g. '>=3.6')") from None


def _minor(value: str, key: str) -> str:
    _need(bool(_MINOR_RE.match(value)), f"{key}: {value!r} is not a minor version like '3.11'")
    return value


def _version_or_keyword(value: str, key: str) -> str:
    if value in ("newest", "oldest"):
        return value
    try:
        Version(value)
    except InvalidVersion:
        raise AxesError(f"{key}: {value!r} is not a version, 'newest' or 'oldest'") from None
    return value


def _slice(table: object, key: str, axes: tuple[str, ...]) -> Slice:
    _need(isinstance(table, dict), f"{key} = {table!r}: expected a table like {{python = 'all', sentry-sdk = ['newest']}}")
    assert isinstance(table, dict)
    unknown = set(table) - {"python", "variants", *axes}
    _need(not unknown, f"{key}: unknown key(s) {sorted(unknown)}; allowed: python, variants, {', '.join(axes)}")
    python = table.get("python", "all")
    pythons = None if python == "all" else tuple(_minor(p, f"{key}.python") for p in _str_list(python, f"{key}.python"))
    versions: dict[str, tuple[str, ...] | None] = {}
    for axis in axes:
        value = table.get(axis, "all")
        versions[axis] = None if value == "all" else tuple(
            _version_or_keyword(v, f"{key}.{axis}") for v in _str_list(value, f"{key}.{axis}"))
    variants = _str_list(table["variants"], f"{key}.variants") if "variants" in table else None
    return Slice(pythons, versions, variants)


def _concrete(variants: tuple[str, ...], aliases: dict[str, tuple[tuple[SpecifierSet, str], ...]]) -> tuple[str, ...]:
    """Every variant name the app can run: plain names, and what each @alias resolves to."""
    out: list[str] = []
    for variant in variants:
        names = [name for _, name in aliases[variant[1:]]] if variant.startswith("@") else [variant]
        out += [n for n in names if n not in out]
    return tuple(out)


def _advice(table: object, key: str, variants: tuple[str, ...]) -> Advice:
    _need(isinstance(table, dict), f"{key} = {table!r}: expected a table like {{leak = '...', fixes = {{...}}}}")
    assert isinstance(table, dict)
    unknown = set(table) - set(ADVICE_KEYS)
    _need(not unknown, f"{key}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(ADVICE_KEYS)}")
    texts = {}
    for name in ("leak", "isolated", "detached", "nested"):
        if name in table:
            _need(isinstance(table[name], str) and table[name].strip(), f"{key}.{name}: expected a non-empty string")
            texts[name] = table[name]
    fixes = table.get("fixes", {})
    _need(isinstance(fixes, dict) and all(isinstance(v, str) for v in fixes.values()),
          f"{key}.fixes = {fixes!r}: expected a table variant = 'code to paste'")
    for variant in fixes:
        _need(variant in variants, f"{key}.fixes: {variant!r} is not one of the app's variants ({', '.join(variants)})")
    return Advice(**texts, fixes=tuple(fixes.items()))


def parse_axes(data: dict) -> Axes:
    """Validate the parsed TOML and build Axes. Pure: no file or network access."""
    unknown = set(data) - {"python", "packages", "apps", "variant_aliases", "cases"}
    _need(not unknown, f"unknown top-level key(s) {sorted(unknown)}: allowed are python, packages, apps, "
                       "variant_aliases, cases")
    pythons = tuple(_minor(m, "python.versions") for m in _str_list(data.get("python", {}).get("versions"),
                                                                    "python.versions"))
    policies: dict[str, dict[str, Any]] = {}
    for name, policy in data.get("packages", {}).items():
        try:
            validate_policy(name, policy)
        except PolicyError as exc:
            raise AxesError(str(exc)) from None
        policies[name] = policy
    _need("sentry-sdk" in policies, "packages.sentry-sdk is missing: every cell pins the SDK")

    aliases: dict[str, tuple[tuple[SpecifierSet, str], ...]] = {}
    for name, table in data.get("variant_aliases", {}).items():
        aliases[name] = tuple(
            (_specifier(spec, f"variant_aliases.{name}"), str(variant)) for spec, variant in table.items()
        )

    apps: dict[str, AppAxes] = {}
    app_keys = {"python", "variants", "axes", "requires", "routes", "memory", "default", "full", "note",
                "not_applicable", "advice", "models", "system", "arrival"}
    for app, table in data.get("apps", {}).items():
        known = known_apps()
        _need(app in known, f"apps.{app}: no apps/{app}/app.py; allowed: {', '.join(known)}")
        extra = set(table) - app_keys
        _need(not extra, f"apps.{app}: unknown key(s) {sorted(extra)}; allowed: {', '.join(sorted(app_keys))}")
        variants = _str_list(table.get("variants"), f"apps.{app}.variants")
        for variant in variants:
            if variant.startswith("@"):
                _need(variant[1:] in aliases,
                      f"apps.{app}.variants: {variant!r} names no [variant_aliases.{variant[1:]}] table")
        axes = _str_list(table.get("axes", ["sentry-sdk"]), f"apps.{app}.axes")
        for axis in axes:
            _need(axis in policies, f"apps.{app}.axes: {axis!r} has no [packages.{axis}] table; known: {', '.join(policies)}")
        _need("sentry-sdk" in axes, f"apps.{app}.axes: must include 'sentry-sdk'")
        requires = tuple(table.get("requires", []))
        _need(all(isinstance(r, str) for r in requires), f"apps.{app}.requires: expected a list of requirement strings")
        routes = _str_list(table["routes"], f"apps.{app}.routes") if "routes" in table else ()
        memory = None
        if "memory" in table:
            mem = table["memory"]
            _need(isinstance(mem, dict) and isinstance(mem.get("requests"), int) and mem["requests"] > 0
                  and isinstance(mem.get("per_request"), (int, float)),
                  f"apps.{app}.memory = {mem!r}: expected {{requests = <int > 0>, per_request = <SDK objects>}}")
            _need(int(mem.get("windows", 8)) >= 3, f"apps.{app}.memory.windows: at least 3 (a slope needs points)")
            memory = MemoryProbe(mem["requests"], float(mem["per_request"]), int(mem.get("warmup", 50)),
                                 tuple(mem["routes"]) if "routes" in mem else None, int(mem.get("windows", 8)))
        arrival = table.get("arrival", "together")
        _need(arrival in ARRIVALS, f"apps.{app}.arrival = {arrival!r}: allowed: {', '.join(ARRIVALS)}")
        slices = {size: _slice(table[size], f"apps.{app}.{size}", axes) for size in SIZES if size in table}
        for size, chosen in slices.items():
            for variant in chosen.variants or ():
                _need(variant in variants, f"apps.{app}.{size}.variants: {variant!r} is not one of apps.{app}.variants "
                                           f"({', '.join(variants)})")
        rules = []
        for index, rule in enumerate(table.get("not_applicable", [])):
            key = f"apps.{app}.not_applicable[{index}]"
            _need(isinstance(rule, dict) and isinstance(rule.get("reason"), str) and isinstance(rule.get("packages", {}), dict),
                  f"{key} = {rule!r}: expected {{route = ..., packages = {{name = specifier}}, reason = '...'}}")
            _need(rule.get("route") is None or rule["route"] in routes,
                  f"{key}.route = {rule.get('route')!r}: not one of apps.{app}.routes ({', '.join(routes) or 'none'})")
            extra = set(rule) - {"route", "packages", "reason", "python", "variants"}
            _need(not extra, f"{key}: unknown key(s) {sorted(extra)}; allowed: route, packages, python, variants, reason")
            rules.append(NotApplicable(
                rule.get("route"),
                tuple((n, _specifier(v, f"{key}.packages.{n}")) for n, v in rule.get("packages", {}).items()),
                rule["reason"],
                _specifier(rule["python"], f"{key}.python") if "python" in rule else None,
                _str_list(rule["variants"], f"{key}.variants") if "variants" in rule else None))
        apps[app] = AppAxes(app, _specifier(table.get("python", ">=2.7"), f"apps.{app}.python"), variants, axes,
                            requires, routes, memory, slices, tuple(rules),
                            _advice(table.get("advice", {}), f"apps.{app}.advice", _concrete(variants, aliases)),
                            str(table.get("models", "")),
                            _str_list(table["system"], f"apps.{app}.system") if "system" in table else (),
                            arrival)
    _need(bool(apps), "no [apps.*] table: nothing to run")

    cases = []
    for index, case in enumerate(data.get("cases", [])):
        key = f"cases[{index}]"
        _need(isinstance(case, dict) and case.get("app") in apps,
              f"{key}.app = {case.get('app') if isinstance(case, dict) else case!r}: must name an app of [apps.*] "
              f"({', '.join(apps)})")
        pins = case.get("pins")
        _need(isinstance(pins, dict) and "sentry-sdk" in pins,
              f"{key}.pins = {pins!r}: expected a table of exact versions including sentry-sdk")
        for name, version in pins.items():
            try:
                Version(str(version))
            except InvalidVersion:
                raise AxesError(f"{key}.pins.{name} = {version!r}: not a version") from None
        variants = _str_list(case["variants"], f"{key}.variants") if "variants" in case else None
        cases.append(Case(str(case.get("claim", f"case-{index}")), case["app"],
                          tuple(_minor(p, f"{key}.python") for p in _str_list(case.get("python"), f"{key}.python")),
                          tuple((str(n), str(v)) for n, v in pins.items()), variants, str(case.get("note", ""))))
    return Axes(pythons, policies, apps, aliases, tuple(cases), data)


def load_raw(path: str = AXES_FILE) -> dict:
    with open(path, "rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise AxesError(f"{path}: not valid TOML: {exc}") from None


def load_axes(path: str = AXES_FILE) -> Axes:
    return parse_axes(load_raw(path))

"""Load and validate `matrix/axes.toml`: the matrix declared as data.

Every bad entry is reported as one line naming the key, the value and what is allowed.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .cells import MemoryProbe
from .paths import APPS_DIR  # noqa: F401  (re-exported for the CLI)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox sessions run on 3.11+, kept for direct use on older hosts
    import tomli as tomllib

AXES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "axes.toml")
KNOWN_APPS = (
    "threads", "asyncio", "gevent", "eventlet", "django-gevent", "django-eventlet",
    "channels", "twisted", "asyncio-gevent",
)
_MINOR_RE = re.compile(r"^[23]\.[0-9]+$")


class AxesError(ValueError):
    """A one-line complaint about the axes file."""


@dataclass(frozen=True)
class AppAxes:
    app: str
    python: SpecifierSet
    variants: tuple[str, ...]
    axes: tuple[str, ...]
    requires: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    memory: MemoryProbe | None = None


@dataclass(frozen=True)
class Axes:
    pythons: tuple[str, ...]
    packages: dict[str, tuple[str, ...]]
    apps: dict[str, AppAxes]
    variant_aliases: dict[str, tuple[tuple[SpecifierSet, str], ...]]

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


def parse_axes(data: dict) -> Axes:
    """Validate the parsed TOML and build Axes. Pure: no file or network access."""
    unknown = set(data) - {"python", "packages", "apps", "variant_aliases"}
    _need(not unknown, f"unknown top-level key(s) {sorted(unknown)}: allowed are python, packages, apps, variant_aliases")
    pythons = _str_list(data.get("python", {}).get("versions"), "python.versions")
    for minor in pythons:
        _need(bool(_MINOR_RE.match(minor)), f"python.versions: {minor!r} is not a minor version like '3.11'")

    packages: dict[str, tuple[str, ...]] = {}
    for name, table in data.get("packages", {}).items():
        versions = _str_list(table.get("versions"), f"packages.{name}.versions")
        for version in versions:
            try:
                Version(version)
            except InvalidVersion:
                raise AxesError(f"packages.{name}.versions: {version!r} is not a version (e.g. '2.75.0')") from None
        packages[name] = versions
    _need("sentry-sdk" in packages, "packages.sentry-sdk is missing: every cell pins the SDK")

    aliases: dict[str, tuple[tuple[SpecifierSet, str], ...]] = {}
    for name, table in data.get("variant_aliases", {}).items():
        aliases[name] = tuple(
            (_specifier(spec, f"variant_aliases.{name}"), str(variant)) for spec, variant in table.items()
        )

    apps: dict[str, AppAxes] = {}
    for app, table in data.get("apps", {}).items():
        _need(app in KNOWN_APPS, f"apps.{app}: unknown app id; allowed: {', '.join(KNOWN_APPS)}")
        variants = _str_list(table.get("variants"), f"apps.{app}.variants")
        for variant in variants:
            if variant.startswith("@"):
                _need(variant[1:] in aliases,
                      f"apps.{app}.variants: {variant!r} names no [variant_aliases.{variant[1:]}] table")
        axes = _str_list(table.get("axes", ["sentry-sdk"]), f"apps.{app}.axes")
        for axis in axes:
            _need(axis in packages, f"apps.{app}.axes: {axis!r} has no [packages.{axis}] table; known: {', '.join(packages)}")
        _need("sentry-sdk" in axes, f"apps.{app}.axes: must include 'sentry-sdk'")
        requires = tuple(table.get("requires", []))
        _need(all(isinstance(r, str) for r in requires), f"apps.{app}.requires: expected a list of requirement strings")
        routes = _str_list(table["routes"], f"apps.{app}.routes") if "routes" in table else ()
        memory = None
        if "memory" in table:
            mem = table["memory"]
            _need(isinstance(mem, dict) and isinstance(mem.get("requests"), int) and mem["requests"] > 0
                  and isinstance(mem.get("kib_per_request"), (int, float)),
                  f"apps.{app}.memory = {mem!r}: expected {{requests = <int > 0>, kib_per_request = <number>}}")
            memory = MemoryProbe(mem["requests"], float(mem["kib_per_request"]), int(mem.get("warmup", 50)))
        apps[app] = AppAxes(app, _specifier(table.get("python", ">=2.7"), f"apps.{app}.python"), variants, axes,
                            requires, routes, memory)
    _need(bool(apps), "no [apps.*] table: nothing to run")
    return Axes(pythons, packages, apps, aliases)


def load_axes(path: str = AXES_FILE) -> Axes:
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise AxesError(f"{path}: not valid TOML: {exc}") from None
    return parse_axes(data)

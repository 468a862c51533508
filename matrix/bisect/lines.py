"""What one bisect covers (a *line*: a cell id with one package left open) and which releases it measures.

A line reads like a cell id whose open package has the version `*`:

    threads/plain/py3.13/sentry-sdk-*
    gevent/@scope-fix/py3.7/sentry-sdk-*/gevent-22.10.2
    gevent/plain/py3.13/sentry-sdk-2.75.0/gevent-*
    channels/plain/py3.13/sentry-sdk-*/channels-4.3.2/on-websocket

The variant may be an `@alias` of the axes ([variant_aliases]: `@scope-fix` is `hub-clone` on SDK 1.x and
`isolation-scope` on 2.x), resolved per release. Package axes of the app left out of a pattern are pinned to
their newest release that installs on that Python.

Releases of the open package: every release PyPI lists that is neither yanked nor a pre-release or dev
release, oldest first. Of those, the ones that cannot be measured in this line are kept in the timeline with
their reason and never run: the release does not install on that Python (`requires_python`, wheel tags:
`releases.python_support`, and for wheels-only packages a release that ships no wheel at all), the app's
`not_applicable` rules (a stack known not to run, a variant that does not exist for that SDK), or an
`@alias` with no variant for that SDK.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from ..axes.releases import WHEELS_ONLY, Release, python_support, releases
from ..axes.spec import AppAxes, Axes
from ..plan.cells import Cell, CellIdError, parse_cell_id, unpinned
from ..plan.planner import _not_applicable

OPEN = "*"
_SENTINEL = "0.0.0.dev424242"  # stands for `*` while the rest of the id is parsed as a cell id

#: The packages `nox -s history` bisects with a fixed SDK, besides the SDK itself.
HISTORY_PACKAGES = ("gevent", "eventlet", "twisted", "channels")
OLDEST_PYTHON = "3.7"


class LineError(ValueError):
    """A one-line complaint about a line (pattern) or what it selects."""


@dataclass(frozen=True)
class Line:
    app: str
    variant: str  # as the axes write it: plain, asyncio-integration, @scope-fix
    python: str
    package: str  # the open package
    pins: tuple[tuple[str, str], ...]  # in cell-id order; the open package's version is OPEN
    route: str | None = None

    @property
    def id(self) -> str:
        pins = "/".join(f"{name}-{version}" for name, version in self.pins)
        return f"{self.app}/{self.variant}/py{self.python}/{pins}" + (f"/on-{self.route}" if self.route else "")

    @property
    def fixed(self) -> dict[str, str]:
        return {name: version for name, version in self.pins if name != self.package}

    def pins_at(self, version: str) -> tuple[tuple[str, str], ...]:
        return tuple((name, version if name == self.package else v) for name, v in self.pins)

    def sdk_at(self, version: str) -> str:
        return dict(self.pins_at(version))["sentry-sdk"]

    def concrete_variant(self, axes: Axes, version: str) -> str | None:
        return axes.resolve_variant(self.variant, self.sdk_at(version))

    def cell(self, axes: Axes, version: str, backend: str = "venv") -> Cell:
        """The cell measuring `version`: exactly the cell `nox -s cell -- <id>` runs, without the memory
        probe (it answers neither scope nor tracing, and costs a channels cell ten seconds)."""
        variant = self.concrete_variant(axes, version)
        if variant is None:
            raise LineError(f"{self.id}: no variant {self.variant} for sentry-sdk {self.sdk_at(version)}")
        app = axes.apps[self.app]
        pins = self.pins_at(version)
        return Cell(self.app, variant, self.python, pins, backend, requires=unpinned(app.requires, pins),
                    route=self.route, memory=None, arrival=app.arrival)


def final_releases(name: str, releases_of: Callable[[str], list[Release]] = releases) -> list[Release]:
    """Every release neither yanked nor a pre-release/dev release, oldest first."""
    return [r for r in releases_of(name) if not (r.yanked or r.parsed.is_prerelease or r.parsed.is_devrelease)]


#: minor -> the full version of the interpreter installed here ("3.7" -> "3.7.16"), set by the command line.
#: `requires_python` is checked against it: python_support checks "3.7.0", which `>=3.7.1` (Twisted 23.8)
#: refuses although the 3.7.16 installed here satisfies it.
INTERPRETERS: dict[str, str] = {}


def install_reason(rel: Release, python: str) -> str | None:
    """Why `rel` cannot install on CPython `python`, or None. python_support (requires_python checked
    against the installed interpreter's full version when known), plus: a wheels-only package (gevent,
    greenlet: never built from source here) whose release ships no wheel at all."""
    full = INTERPRETERS.get(python)
    if full and rel.requires_python:
        try:
            if Version(full) not in SpecifierSet(rel.requires_python):
                return f"{rel.name} {rel.version} requires Python {rel.requires_python}"
            rel = replace(rel, requires_python=None)
        except InvalidSpecifier:
            pass
    reason = python_support(rel, python)
    if reason:
        return reason
    if canonicalize_name(rel.name) in WHEELS_ONLY and not any(f.endswith(".whl") for f in rel.files):
        return f"{rel.name} {rel.version} ships no wheel (installed from wheels only)"
    return None


def newest_installable(name: str, python: str, ok: Callable[[str], bool] = lambda v: True,
                       releases_of: Callable[[str], list[Release]] = releases, major: int | None = None) -> str:
    for rel in reversed(final_releases(name, releases_of)):
        if (major is None or rel.parsed.major == major) and install_reason(rel, python) is None and ok(rel.version):
            return rel.version
    raise LineError(f"no release of {name}{f' {major}.x' if major is not None else ''} installs on Python {python}")


def exclusion(line: Line, axes: Axes, rel: Release) -> str | None:
    """Why this release is not measured in this line, or None."""
    reason = install_reason(rel, line.python)
    if reason:
        return reason
    concrete = line.concrete_variant(axes, rel.version)
    if concrete is None:
        return f"no {line.variant} variant for sentry-sdk {line.sdk_at(rel.version)}"
    return _not_applicable(axes.apps[line.app], concrete, line.python, line.route, line.pins_at(rel.version))


def domain(line: Line, axes: Axes, releases_of: Callable[[str], list[Release]] = releases,
           low: str | None = None, high: str | None = None) -> list[tuple[str, str | None]]:
    """(version, reason it is not measured or None) for every final release of the open package within
    [low, high], oldest first."""
    out = []
    for rel in final_releases(line.package, releases_of):
        if (low and rel.parsed < Version(low)) or (high and rel.parsed > Version(high)):
            continue
        out.append((rel.version, exclusion(line, axes, rel)))
    return out


def _fill(app: AppAxes, axes: Axes, python: str, pins: dict[str, str], route: str | None,
          variant: str, open_package: str, releases_of: Callable[[str], list[Release]]) -> None:
    """Pin every package axis of the app that `pins` lacks to its newest release installing on `python`
    (and not excluded by the app's rules with the newest SDK)."""
    sdk = pins.get("sentry-sdk")
    for axis in app.axes:
        if axis in pins:
            continue
        newest_sdk = sdk if sdk and sdk != OPEN else newest_installable("sentry-sdk", python, releases_of=releases_of)

        def applicable(version: str, axis: str = axis) -> bool:
            probe = dict(pins, **{axis: version, "sentry-sdk": newest_sdk})
            concrete = axes.resolve_variant(variant, newest_sdk) or variant
            order = tuple((a, probe[a]) for a in app.axes if a in probe)
            return _not_applicable(app, concrete, python, route, order) is None

        pins[axis] = newest_installable(axis, python, applicable, releases_of)


def parse_line(pattern: str, axes: Axes, package: str | None = None,
               releases_of: Callable[[str], list[Release]] = releases) -> Line:
    """A line from a cell id with one version `*` (or, with `package`, the id with that package open)."""
    text = pattern.strip()
    alias = ""
    parts = text.split("/")
    if len(parts) > 1 and parts[1].startswith("@"):
        alias, parts[1] = "@", parts[1][1:]
    stars = [p for p in parts if p.endswith("-" + OPEN)]
    if len(stars) > 1:
        raise LineError(f"{pattern!r}: leave exactly one package open (`-*`), not {len(stars)}")
    try:
        app_id, variant, python, pins, route = parse_cell_id("/".join(p[:-1] + _SENTINEL if p.endswith("-" + OPEN)
                                                                      else p for p in parts))
    except CellIdError as exc:
        raise LineError(str(exc).replace(_SENTINEL, OPEN)) from None
    if app_id not in axes.apps:
        raise LineError(f"unknown app {app_id!r} in {pattern!r}; allowed: {', '.join(sorted(axes.apps))}")
    app = axes.apps[app_id]
    if alias and variant not in axes.variant_aliases:
        raise LineError(f"@{variant}: no [variant_aliases.{variant}]; known: "
                        + ", ".join("@" + a for a in sorted(axes.variant_aliases)))
    variant = alias + variant
    opened = [name for name, version in pins if version == _SENTINEL]
    if package:
        if opened and opened != [package]:
            raise LineError(f"{pattern!r} leaves {opened[0]} open but --package says {package}")
        opened = [package]
    if not opened:
        raise LineError(f"{pattern!r}: leave one package open, e.g. {app_id}/{variant}/py{python}/sentry-sdk-*, "
                        "or name it with --package")
    open_package = opened[0]
    pinned = {name: (OPEN if name == open_package else version) for name, version in pins}
    pinned.setdefault(open_package, OPEN)
    if "sentry-sdk" not in pinned:
        pinned["sentry-sdk"] = newest_installable("sentry-sdk", python, releases_of=releases_of)
    if app.routes and route not in app.routes:
        raise LineError(f"{pattern!r} needs a route: end it with one of " + ", ".join(f"/on-{r}" for r in app.routes))
    if route and route not in app.routes:
        raise LineError(f"unknown route {route!r} in {pattern!r}; allowed: {', '.join(app.routes) or 'none'}")
    _fill(app, axes, python, pinned, route, variant, open_package, releases_of)
    order = [a for a in app.axes if a in pinned] + [n for n, _ in pins if n not in app.axes]
    order += [n for n in pinned if n not in order]
    return Line(app_id, variant, python, open_package, tuple((n, pinned[n]) for n in order), route)


def fix_variants(app: AppAxes, axes: Axes) -> list[str]:
    """The app's variants that are fixes (their code is in [apps.X.advice.fixes]), as the axes write them."""
    fixes = {name for name, _ in app.advice.fixes}
    out = []
    for variant in app.variants:
        names = [n for _, n in axes.variant_aliases[variant[1:]]] if variant.startswith("@") else [variant]
        if variant != "plain" and fixes & set(names):
            out.append(variant)
    return out


def history_pythons(app: AppAxes, axes: Axes, available: Sequence[str]) -> list[str]:
    """The newest Python the app supports (among the axes' Pythons installed here), and 3.7 if it supports it."""
    ok = [p for p in axes.pythons if Version(p) in app.python and p in available]
    if not ok:
        return []
    newest = max(ok, key=Version)
    return [newest] + ([OLDEST_PYTHON] if OLDEST_PYTHON in ok and OLDEST_PYTHON != newest else [])


def history_lines(axes: Axes, available: Sequence[str],
                  releases_of: Callable[[str], list[Release]] = releases) -> list[Line]:
    """Every line `nox -s history` bisects, SDK lines first:
    - sentry-sdk: every app x {plain, each fix variant} x route, on the newest Python the app supports and
      on 3.7 (where it supports it), the app's other packages at their newest release for that Python;
    - gevent, eventlet, twisted, channels: the same apps, variants and Pythons for the apps that have that
      axis, with the SDK fixed to its newest release and its newest 1.x."""
    sdk_lines: list[Line] = []
    package_lines: list[Line] = []
    for app in sorted(axes.apps.values(), key=lambda a: a.app):
        for python in history_pythons(app, axes, available):
            for variant in ["plain"] + fix_variants(app, axes):
                for route in app.routes or (None,):
                    base = Line(app.app, variant, python, "sentry-sdk", (("sentry-sdk", OPEN),), route)
                    pattern = base.id
                    try:
                        sdk_lines.append(parse_line(pattern, axes, releases_of=releases_of))
                    except LineError:
                        continue  # no release of the app's packages makes this variant/route a cell (a not_applicable rule)
                    for package in HISTORY_PACKAGES:
                        if package not in app.axes:
                            continue
                        for major in (None, 1):
                            sdk = newest_installable("sentry-sdk", python, releases_of=releases_of, major=major)
                            line = parse_line(pattern.replace("sentry-sdk-*", f"sentry-sdk-{sdk}"), axes,
                                              package=package, releases_of=releases_of)
                            if line not in package_lines:
                                package_lines.append(line)
    return sdk_lines + package_lines


def select_lines(lines: list[Line], only: list[str], exclude: list[str]) -> list[Line]:
    """--only / --exclude KEY=V[,V] with keys app, variant, python, package, route (or `line=<id glob>`)."""
    def match(line: Line, expr: str) -> bool:
        key, _, values = expr.partition("=")
        wanted = [v.strip() for v in values.split(",") if v.strip()]
        if not wanted:
            raise LineError(f"{expr!r}: expected KEY=V[,V] with KEY one of app, variant, python, package, route, line")
        value = {"app": line.app, "variant": line.variant, "python": line.python, "package": line.package,
                 "route": line.route or "", "line": line.id}.get(key)
        if value is None:
            raise LineError(f"{expr!r}: unknown key {key!r}; allowed: app, variant, python, package, route, line")
        if key == "line":
            return any(re.fullmatch(re.escape(w).replace(r"\*", ".*"), value) for w in wanted)
        return value in wanted or (key == "variant" and value.lstrip("@") in wanted)

    out = [line for line in lines if all(match(line, e) for e in only) and not any(match(line, e) for e in exclude)]
    if (only or exclude) and not out:
        raise LineError("the filters select no line; `python -m matrix history --lines` lists them")
    return out

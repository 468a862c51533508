"""Answer each implied model from measured cells: the exact cell when it was measured, otherwise the nearest
measured cells and how they differ from the stack, the fix variants' own cells, and the first measured
release that no longer leaks.

The same code answers from the committed results (lookup) and from the cells `--run` just measured: both
are lists of results cells (matrix.json's shape).
"""
from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from ..axes.lock import release_info
from ..axes.spec import AppAxes, Axes
from ..plan.planner import _not_applicable
from .model_answer import Fix, Match, ModelAnswer, RouteAnswer
from .models import Implied
from .results import History, Results
from .stack import Stack

KNOWN = ("isolated", "leak")


def _v(text: str | None) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def wanted_pins(app: AppAxes, stack: Stack) -> dict[str, str]:
    """The stack's versions of the app's axes and of the packages under test the app requires (django,
    gunicorn, daphne: what the results record; not helpers like setuptools)."""
    from packaging.requirements import Requirement

    from ..report.advice import UNDER_TEST

    names = list(app.axes) + [n for n in (Requirement(r).name for r in app.requires) if n in UNDER_TEST]
    return {name: stack.version(name) for name in names if stack.version(name)}  # type: ignore[misc]


def cannot_run(app: AppAxes, variant: str, python: str, route: str | None, pins: dict[str, str],
               lock: dict, not_planned: list[dict[str, Any]]) -> str | None:
    """Why this exact stack cannot run (the lock's per-Python reasons, the axes' not_applicable rules, the
    results' not_planned list), or None."""
    axis_pins = tuple((name, pins[name]) for name in app.axes if name in pins)
    for name, version in axis_pins:
        reason = (release_info(lock, name, version) or {}).get("unsupported", {}).get(python)
        if reason:
            return reason
    try:
        reason = _not_applicable(app, variant, python, route, axis_pins)
    except InvalidVersion:
        reason = None
    if reason:
        return reason
    wanted = f"{app.app}/{variant}/py{python}/" + "/".join(f"{n}-{v}" for n, v in axis_pins) + \
        (f"/on-{route}" if route else "")
    return next((entry.get("reason") or "not planned" for entry in not_planned if entry.get("id") == wanted), None)


class Matcher:
    """Finds, among the cells of one app, variant and route, the one that answers for the stack."""

    def __init__(self, cells: list[dict[str, Any]], python: str, wanted: dict[str, str], axes: tuple[str, ...],
                 history: History | None, app: str, variant: str):
        self.cells, self.python, self.wanted, self.axes = cells, python, wanted, axes
        self.history, self.app, self.variant = history, app, variant

    def _differs(self, cell: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """dimension -> (measured, yours) for the python and every axis and pinned package that differs."""
        out = {}
        if cell["_minor"] != self.python:
            out["python"] = (cell["_minor"], self.python)
        for name, version in cell["_pins"].items():
            mine = self.wanted.get(name)
            if mine is not None and _v(mine) != _v(version):
                out[name] = (version, mine)
        return out

    def _rank(self, name: str, value: str, mine: str) -> int:
        values = {c["_pins"].get(name) for c in self.cells if c["_pins"].get(name)} | {mine}
        ordered = sorted((v for v in values if _v(v) is not None), key=Version)
        try:
            return abs(ordered.index(value) - ordered.index(mine))
        except ValueError:
            return 99

    def _key(self, cell: dict[str, Any]) -> tuple:
        differs = self._differs(cell)
        sdk = differs.get("sentry-sdk")
        major = int(bool(sdk and _v(sdk[0]) and _v(sdk[1]) and _v(sdk[0]).major != _v(sdk[1]).major))  # type: ignore[union-attr]
        python = abs(Version(cell["_minor"]).minor - Version(self.python).minor) + \
            10 * abs(Version(cell["_minor"]).major - Version(self.python).major)
        ranks = sum(self._rank(n, a, b) for n, (a, b) in differs.items() if n != "python")
        gap = sum(abs(_order_value_of(_v(a) or Version("0")) - _order_value_of(_v(b) or Version("0")))
                  for n, (a, b) in differs.items() if n != "python")
        return (major, len(differs), python, ranks, gap, cell["id"])

    def best(self) -> tuple[Match | None, str]:
        """(match, reason): the exact cell with an answer, else the nearest ones; reason when none answers."""
        exact = [c for c in self.cells if not self._differs(c)]
        exact.sort(key=lambda c: -len([n for n in c["_pins"] if n in self.wanted]))
        reason = ""
        for cell in exact:
            if cell["scope"] in KNOWN:
                return Match(cell, True, notes=self._resolved(cell)), ""
            reason = (f"the exact cell {cell['id']} could not answer ({cell.get('verdict')}: "
                      f"{cell.get('reason', '').strip() or 'no reason recorded'})")
        known = [c for c in self.cells if c["scope"] in KNOWN]
        if not known:
            return None, reason or f"no cell of {self.app}/{self.variant} was measured with an answer"
        cell = min(known, key=self._key)
        differs = self._differs(cell)
        match = Match(cell, False, [f"{_dim(name, measured)} instead of your {mine}"
                                    for name, (measured, mine) in differs.items()], notes=self._resolved(cell))
        sdk = differs.get("sentry-sdk")
        if sdk and _v(sdk[0]) and _v(sdk[1]) and _v(sdk[0]).major != _v(sdk[1]).major:  # type: ignore[union-attr]
            return None, (f"no cell of {self.app}/{self.variant} measured sentry-sdk {_v(sdk[1]).major}.x"  # type: ignore[union-attr]
                          f"{' on this stack' if len(differs) > 1 else ''}; the nearest, {cell['id']}, "
                          f"is {cell['scope']} with sentry-sdk {sdk[0]}")
        if len(differs) == 1:
            (name, (measured, mine)), = differs.items()
            if self._from_history(match, name, measured, mine):
                return match, ""
            other = self._other_side(cell, name, measured, mine)
            if other is not None:
                match.other = other
                if other["scope"] == cell["scope"]:
                    match.support = (f"measured on both sides of yours: {_dim(name, measured)} and "
                                     f"{_dim(name, other['_minor'] if name == 'python' else other['_pins'][name])} "
                                     f"are both {cell['scope']}")
                else:
                    below, above = sorted([cell, other], key=lambda c: _order(c, name))
                    changes = (f"the answer changes between {_dim(name, _value(below, name))} ({below['scope']}) "
                               f"and {_dim(name, _value(above, name))} ({above['scope']}), and yours lies between")
                    wanted = _order_value_of(_v(mine) or Version("0"))
                    gap = {id(c): abs(_order_value(c, name) - wanted) for c in (below, above)}
                    if gap[id(below)] == gap[id(above)]:
                        return None, f"{changes}: measure it with --run"
                    closer = min((below, above), key=lambda c: gap[id(c)])
                    match.cell, match.other, match.uncertain = closer, (above if closer is below else below), True
                    match.differs = [f"{_dim(name, _value(closer, name))} instead of your {mine}"]
                    match.support = (f"{changes}: this is the answer of the closer one, {_dim(name, _value(closer, name))}"
                                     "; --run measures yours")
            else:
                match.support = "measured on one side of yours only"
        else:
            match.support = f"the nearest measured cell ({len(differs)} differences)"
        return match, ""

    def _resolved(self, cell: dict[str, Any]) -> list[str]:
        """Packages the stack has in another version than the cell installed without pinning them."""
        out = []
        for name, version in cell.get("packages", {}).items():
            mine = self.wanted.get(name)
            if name not in cell["_pins"] and mine and _v(mine) != _v(version):
                out.append(f"{name}: the harness resolved {version} for this cell, yours is {mine}")
        return out

    def _other_side(self, cell: dict[str, Any], name: str, measured: str, mine: str) -> dict[str, Any] | None:
        """The nearest measured cell on the other side of `mine` along `name`, the same in everything else."""
        side = (_v(measured) or Version("0")) > (_v(mine) or Version("0"))
        same_rest = []
        for c in self.cells:
            if c["scope"] not in KNOWN or c is cell:
                continue
            rest = {k: v for k, v in self._differs(c).items() if k != name}
            if rest or name not in self._differs(c):
                continue
            value = _v(_value(c, name))
            if value is None or (value > _v(mine)) == side:  # type: ignore[operator]
                continue
            same_rest.append(c)
        return _closest(same_rest, name, mine)

    def _from_history(self, match: Match, name: str, measured: str, mine: str) -> bool:
        """Use history.json for a stack that differs from the nearest cell in one package: the same span
        ("nothing changed between them"), or the answer of the stack's own span. True when it answered."""
        if self.history is None or name == "python":
            return False
        cell = match.cell
        others = {k: v for k, v in cell["_pins"].items() if k != name}
        timeline = self.history.find(self.app, self.variant, cell["_minor"], name, others)
        if timeline is None:
            return False
        mine_span, cell_span = History.span_of(timeline, mine), History.span_of(timeline, measured)
        if mine_span is None:
            return False
        if mine_span == cell_span:
            match.support = (f"the history says nothing changed between {name} {mine} and {measured} "
                             f"({mine_span.first}..{mine_span.last}: {mine_span.scope})")
            return True
        match.support = (f"the history measured {name} {mine_span.first}..{mine_span.last} (yours among them): "
                         f"scope {mine_span.scope}, tracing {mine_span.tracing}")
        match.cell = dict(cell, scope=mine_span.scope, tracing=mine_span.tracing)
        return True


def _closest(cells: list[dict[str, Any]], name: str, mine: str) -> dict[str, Any] | None:
    wanted = _v(mine) or Version("0")
    ranked = [(abs(_order_value(c, name) - _order_value_of(wanted)), c) for c in cells]
    return min(ranked, key=lambda item: (item[0], item[1]["id"]))[1] if ranked else None


def _order_value(cell: dict[str, Any], name: str) -> float:
    return _order_value_of(_v(_value(cell, name)) or Version("0"))


def _order_value_of(version: Version) -> float:
    release = list(version.release) + [0, 0, 0]
    return release[0] * 1e6 + release[1] * 1e3 + release[2]


def _value(cell: dict[str, Any], name: str) -> str:
    return cell["_minor"] if name == "python" else cell["_pins"][name]


def _order(cell: dict[str, Any], name: str) -> Version:
    return _v(_value(cell, name)) or Version("0")


def _dim(name: str, value: str) -> str:
    return f"Python {value}" if name == "python" else f"{name} {value}"


# ---- per model ------------------------------------------------------------------------------------

def fix_variants(app: AppAxes, axes: Axes, sdk: str | None) -> list[str]:
    """The app's fix variants for this SDK release (aliases resolved), in the advice's order."""
    codes = [name for name, _ in app.advice.fixes]
    out = []
    for variant in app.variants:
        if variant == "plain":
            continue
        concrete = axes.resolve_variant(variant, sdk) if sdk and _v(sdk) else (
            None if variant.startswith("@") else variant)
        if concrete and concrete in codes and concrete not in out:
            out.append(concrete)
    return sorted(out, key=codes.index)


def answer_model(implied: Implied, stack: Stack, results: Results, axes: Axes, lock: dict,
                 committed: Results | None = None) -> ModelAnswer:
    app = implied.axes
    if app is None:
        return ModelAnswer(implied, [RouteAnswer(None, "unknown", "unknown",
                                                 reason=f"the harness does not measure {implied.app} yet "
                                                        f"(no [apps.{implied.app}] in matrix/axes/axes.toml)")])
    wanted = wanted_pins(app, stack)
    sdk = wanted.get("sentry-sdk")
    routes = []
    for route in implied.routes:
        routes.append(_answer_route(app, route, stack, wanted, sdk, results, axes, lock, committed or results))
    return ModelAnswer(implied, routes, _advice(app, routes))


def _answer_route(app: AppAxes, route: str | None, stack: Stack, wanted: dict[str, str], sdk: str | None,
                  results: Results, axes: Axes, lock: dict, committed: Results) -> RouteAnswer:
    missing = [n for n in app.axes if n not in wanted]
    if missing:
        return RouteAnswer(route, "unknown", "unknown",
                           reason=f"the stack has no version of {', '.join(missing)} (needed for {app.app})")
    blocked = cannot_run(app, "plain", stack.python, route, wanted, lock, committed.not_planned)
    if blocked:
        return RouteAnswer(route, "unknown", "unknown", reason=f"this stack cannot run: {blocked}")
    matcher = Matcher(results.of(app.app, "plain", route), stack.python, wanted, app.axes, results.history,
                      app.app, "plain")
    match, reason = matcher.best()
    if match is None:
        if not results.of(app.app, "plain", route) and results is committed:
            reason = (f"the results hold no {app.app} cell{' on ' + route if route else ''}: measure it with "
                      f"`check --run --uses {app.app}` (or `nox -s matrix -- --only app={app.app}`)")
        return RouteAnswer(route, "unknown", "unknown", reason=reason)
    answer = RouteAnswer(route, match.cell["scope"], match.cell.get("tracing", "unknown"), match, reason)
    if answer.scope == "leak" or answer.tracing in ("nested", "detached"):
        for variant in fix_variants(app, axes, sdk):
            if cannot_run(app, variant, stack.python, route, wanted, lock, []):
                continue
            fix_matcher = Matcher(results.of(app.app, variant, route), stack.python, wanted, app.axes,
                                  results.history, app.app, variant)
            fix_match, _ = fix_matcher.best()
            code = results.fix_code(app.app, variant) or committed.fix_code(app.app, variant) or \
                dict(app.advice.fixes)[variant]
            answer.fixes.append(Fix(variant, code, fix_match.cell["scope"] if fix_match else "unknown",
                                    fix_match.cell.get("tracing", "unknown") if fix_match else "unknown", fix_match))
        for fix in answer.fixes:
            fix.helps = fix.scope == "isolated" and (answer.scope == "leak" or fix.tracing == "parallel")
        answer.fixes.sort(key=lambda f: (not f.helps, f.scope != "isolated", f.tracing != "parallel",
                                         f.match is None))
    if answer.scope == "leak":
        answer.fixed_in = first_fixed(app, route, match.cell, wanted, committed)
    return answer


def first_fixed(app: AppAxes, route: str | None, cell: dict[str, Any], wanted: dict[str, str],
                results: Results) -> list[str]:
    """Per axis: the first release above the stack's from which every measured plain cell (the rest of the
    stack as in `cell`) keeps scope data apart; the history's exact release when it has one."""
    out = []
    plain = [c for c in results.of(app.app, "plain", route) if c["scope"] in KNOWN and c["_minor"] == cell["_minor"]]
    for axis in app.axes:
        mine = _v(wanted.get(axis))
        if mine is None:
            continue
        others = {k: v for k, v in cell["_pins"].items() if k != axis}
        history = results.history.find(app.app, "plain", cell["_minor"], axis, others) if results.history else None
        if history is not None:
            spans = [s for s in history.spans if s.first > mine]
            for index, span in enumerate(spans):
                if all(s.scope == "isolated" for s in spans[index:]):
                    out.append(f"{axis} {span.first} (the history: every release from {span.first} to "
                               f"{spans[-1].last} keeps scope data apart)")
                    break
            continue
        line = sorted((c for c in plain if all(c["_pins"].get(k) == v for k, v in others.items())
                       and _v(c["_pins"].get(axis))), key=lambda c: _v(c["_pins"][axis]))
        above = [c for c in line if _v(c["_pins"][axis]) > mine]  # type: ignore[operator]
        for index, c in enumerate(above):
            if all(x["scope"] == "isolated" for x in above[index:]):
                before = [x for x in line if _v(x["_pins"][axis]) < _v(c["_pins"][axis])]  # type: ignore[operator]
                last_leak = before[-1]["_pins"][axis] if before else None
                out.append(f"{axis} {c['_pins'][axis]}: the first measured release that keeps scope data apart "
                           f"here (Python {cell['_minor']}"
                           + "".join(f", {k} {v}" for k, v in others.items())
                           + (f"; {axis} {last_leak} leaks, the releases between were not measured"
                              if last_leak else "") + ")")
                break
    return out


def _advice(app: AppAxes, routes: list[RouteAnswer]) -> str:
    scopes = {r.scope for r in routes}
    tracings = {r.tracing for r in routes}
    parts = []
    if "leak" in scopes:
        parts.append(app.advice.leak)
    elif scopes == {"isolated"}:
        parts.append(app.advice.isolated)
    for tracing in ("nested", "detached"):
        if tracing in tracings and getattr(app.advice, tracing):
            parts.append(getattr(app.advice, tracing))
    return " ".join(p for p in parts if p)


def answer_all(implied: list[Implied], stack: Stack, results: Results, axes: Axes, lock: dict,
               committed: Results | None = None) -> list[ModelAnswer]:
    return [answer_model(model, stack, results, axes, lock, committed) for model in implied]

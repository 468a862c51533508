"""Check the troubleshooting page's claims against judged cells (pure, apart from loading the file).

Each claim in matrix/claims.toml predicts, for the cells a selector picks, a verdict, a context
backend or a check outcome. A claim is `confirmed` when every evidence cell agrees, `contradicted`
when none does, `partly` when some do, and `untested` without evidence cells.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CLAIMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "claims.toml")
INCONCLUSIVE = {"unsupported", "flaky", "timeout"}
SELECTOR_KEYS = {"app", "variant", "route", "python", "packages", "context"}
EXPECT_KEYS = ("scope", "tracing", "verdict", "context_backend", "check")


class ClaimsError(ValueError):
    """A one-line complaint about the claims file."""


@dataclass(frozen=True)
class Prediction:
    where: dict[str, Any]
    kind: str  # verdict | context_backend | check
    expected: Any  # list of verdicts / backends, or {check: bool}

    def describe(self) -> str:
        parts = []
        for key, value in self.where.items():
            if key == "packages":
                parts += [f"{name} {spec}" for name, spec in value.items()]
            elif key == "python":
                parts.append(f"python {value}")
            else:
                parts.append(f"{key} " + " or ".join(_as_list(value)))
        sel = ", ".join(parts)
        if self.kind == "check":
            want = ", ".join(f"{k} {'ok' if v else 'failing'}" for k, v in self.expected.items())
        else:
            want = " or ".join(self.expected)
        return f"{sel} → {self.kind.replace('_', ' ')} {want}"


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    text: str
    quote: bool
    predicts: tuple[Prediction, ...]


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def parse_claims(data: dict) -> list[Claim]:
    claims = []
    for index, raw in enumerate(data.get("claims", [])):
        key = f"claims[{index}]"
        for field in ("id", "section", "text", "predicts"):
            if field not in raw:
                raise ClaimsError(f"{key}: missing {field!r}")
        preds = []
        for j, pred in enumerate(raw["predicts"]):
            where = pred.get("where", {})
            unknown = set(where) - SELECTOR_KEYS
            if unknown:
                raise ClaimsError(f"{key}.predicts[{j}].where: unknown key(s) {sorted(unknown)}; "
                                  f"allowed: {', '.join(sorted(SELECTOR_KEYS))}")
            for spec in [where.get("python")] + list(where.get("packages", {}).values()):
                if spec is not None and spec not in ("absent", "present"):
                    try:
                        SpecifierSet(str(spec))
                    except InvalidSpecifier:
                        raise ClaimsError(f"{key}.predicts[{j}].where: {spec!r} is not a PEP 440 specifier") from None
            kinds = [k for k in EXPECT_KEYS if k in pred]
            if len(kinds) != 1:
                raise ClaimsError(f"{key}.predicts[{j}]: give exactly one of {', '.join(EXPECT_KEYS)}")
            allowed = {"scope": ("isolated", "leak"), "tracing": ("parallel", "nested", "detached", "untested")}
            if kinds[0] in allowed:
                bad = [v for v in _as_list(pred[kinds[0]]) if v not in allowed[kinds[0]]]
                if bad:
                    raise ClaimsError(f"{key}.predicts[{j}].{kinds[0]}: {bad[0]!r} is not an answer; allowed: "
                                      + ", ".join(allowed[kinds[0]]))
            preds.append(Prediction(where, kinds[0], pred[kinds[0]]))
        claims.append(Claim(raw["id"], raw["section"], raw["text"], bool(raw.get("quote", False)), tuple(preds)))
    return claims


def load_claims(path: str = CLAIMS_FILE) -> list[Claim]:
    with open(path, "rb") as fh:
        return parse_claims(tomllib.load(fh))


def _version_in(version: str, spec: str) -> bool:
    try:
        return Version(version) in SpecifierSet(spec)
    except (InvalidVersion, InvalidSpecifier):
        return False


def matches(cell: dict[str, Any], where: dict[str, Any]) -> bool:
    """Does this results cell fall under the selector?"""
    if "app" in where and cell["app"] not in _as_list(where["app"]):
        return False
    if "variant" in where and cell["variant"] not in _as_list(where["variant"]):
        return False
    if "route" in where and cell.get("route") not in _as_list(where["route"]):
        return False
    if "context" in where and cell.get("context_backend") not in _as_list(where["context"]):
        return False
    if "python" in where and not _version_in(cell["python"], str(where["python"])):
        return False
    for name, spec in where.get("packages", {}).items():
        installed = cell["packages"].get(name)
        if spec == "absent":
            if installed is not None:
                return False
        elif spec == "present":
            if installed is None:
                return False
        elif installed is None or not _version_in(installed, str(spec)):
            return False
    return True


def _agrees(cell: dict[str, Any], pred: Prediction) -> bool | None:
    """True/False: evidence for/against; None: this cell cannot tell."""
    verdict = cell["verdict"]
    if verdict in INCONCLUSIVE:
        return None
    if pred.kind == "verdict":
        if verdict == "error" and "error" not in pred.expected:
            return None
        return verdict in pred.expected
    if verdict == "error":
        return None
    if pred.kind in ("scope", "tracing"):
        answer = cell.get(pred.kind, "unknown")
        return None if answer == "unknown" else answer in pred.expected
    if pred.kind == "context_backend":
        if cell.get("context_backend") in (None, "unknown"):
            return None
        return cell["context_backend"] in pred.expected
    for name, want in pred.expected.items():
        check = cell["checks"].get(name)
        if check is None:
            return None
        if bool(check["ok"]) != bool(want):
            return False
    return True


def shows(cell: dict[str, Any], pred: Prediction) -> str:
    """What this cell shows about the thing the prediction is about (e.g. 'scope leak', 'memory 0.4 KiB/request')."""
    if pred.kind in ("scope", "tracing"):
        return f"{pred.kind} {cell.get(pred.kind, 'unknown')}"
    if pred.kind == "context_backend":
        return f"context {cell.get('context_backend', 'unknown')}"
    if pred.kind == "verdict":
        return f"verdict {cell['verdict']}"
    parts = []
    for name in pred.expected:
        check = cell["checks"].get(name) or {}
        measured = check.get("measured") or {}
        if name == "memory" and measured.get("sdk_objects_per_request") is not None:
            parts.append(f"memory {measured['sdk_objects_per_request']:g} SDK objects/request")
        else:
            parts.append(f"{name} {'ok' if check.get('ok') else 'failed'}")
    return ", ".join(parts)


def evaluate(claims: Iterable[Claim], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `claims` array of matrix.json: each claim with its evidence cells and what each showed about
    the answer or check the claim is about."""
    out = []
    for claim in claims:
        agree: list[str] = []
        disagree: list[str] = []
        evidence: dict[str, dict[str, Any]] = {}
        for pred in claim.predicts:
            for cell in cells:
                if matches(cell, pred.where):
                    result = _agrees(cell, pred)
                    if result is None:
                        continue
                    (agree if result else disagree).append(cell["id"])
                    evidence.setdefault(cell["id"], {"cell": cell["id"], "shows": [], "agrees": True})
                    evidence[cell["id"]]["shows"].append(shows(cell, pred))
                    evidence[cell["id"]]["agrees"] &= result
        if not agree and not disagree:
            observed = "untested"
        elif not disagree:
            observed = "confirmed"
        elif not agree:
            observed = "contradicted"
        else:
            observed = "partly"
        out.append({
            "id": claim.id,
            "text": claim.text,
            "section": claim.section,
            "quote": claim.quote,
            "expected": "; ".join(p.describe() for p in claim.predicts),
            "cells": sorted(set(agree + disagree)),
            "agreeing": len(set(agree)),
            "disagreeing": sorted(set(disagree)),
            "about": sorted({p.kind if p.kind != "check" else "check " + ", ".join(p.expected) for p in claim.predicts}),
            "evidence": [dict(e, shows="; ".join(dict.fromkeys(e["shows"]))) for _, e in sorted(evidence.items())],
            "observed": observed,
        })
    return out

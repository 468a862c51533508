"""What `check` answers per model: the cell that answered (`Match`), each fix with its own cell (`Fix`), the
answer per route (`RouteAnswer`) and per model (`ModelAnswer`). Data only: lookup.py fills them, answer.py
renders them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import Implied

# The tracing answer of a model with several routes: the worst one.
TRACING_ORDER = ("nested", "detached", "unknown", "untested", "parallel")


@dataclass
class Match:
    cell: dict[str, Any]
    exact: bool
    differs: list[str] = field(default_factory=list)  # "sentry-sdk 2.75.0 instead of your 2.74.0"
    support: str = ""  # what backs a nearest answer: the history, both sides measured, or one side only
    other: dict[str, Any] | None = None  # the measured cell on the other side of the stack, if any
    notes: list[str] = field(default_factory=list)  # packages the harness resolved differently
    uncertain: bool = False  # the measured cells on both sides disagree: the closer one's answer


@dataclass
class Fix:
    variant: str
    code: str
    scope: str
    tracing: str
    match: Match | None
    helps: bool = False  # it fixes what plain got wrong here: the leak, or else the spans



@dataclass
class RouteAnswer:
    route: str | None
    scope: str
    tracing: str
    match: Match | None = None
    reason: str = ""  # why the answer is unknown, or what it rests on
    fixes: list[Fix] = field(default_factory=list)
    fixed_in: list[str] = field(default_factory=list)
    history: str = ""


@dataclass
class ModelAnswer:
    implied: Implied
    routes: list[RouteAnswer]
    advice: str = ""
    measured_now: bool = False

    @property
    def scope(self) -> str:
        scopes = [r.scope for r in self.routes]
        return "leak" if "leak" in scopes else "unknown" if "unknown" in scopes or not scopes else "isolated"

    @property
    def tracing(self) -> str:
        return min((r.tracing for r in self.routes), key=TRACING_ORDER.index, default="unknown")

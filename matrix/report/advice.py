"""What the report shows for each answer: symbols, their words (every symbol has a text alternative),
and which packages a cell records. The per-app advice itself lives in the axes file (apps.<id>.advice)."""
from __future__ import annotations

# The scope answer colours the tables; the tracing answer is a secondary mark beside it.
SCOPE = {
    "isolated": ("✅", "isolated", "every unit's events carried only its own scope data (and the control round did leak)"),
    "leak": ("❌", "leaks", "an event or transaction of one unit carried another unit's tag, user, breadcrumb, extra or context"),
    "unknown": ("❔", "unknown", "the cell could not answer (see its reason): error, timeout, or repeats that disagree"),
}
TRACING = {
    "parallel": ("", "parallel", "every unit's spans in its own transaction, siblings side by side"),
    "nested": ("🪆", "nested", "spans chained under a sibling, or landed in another unit's transaction"),
    "detached": ("✂️", "detached", "spans opened in spawned children never reached the unit's transaction"),
    "untested": ("", "untested", "this SDK has no tracing"),
    "unknown": ("", "unknown", "the cell could not answer"),
}
# The machine verdict (matrix.json `verdict`) and its symbol, still shown in each cell's details.
SYMBOLS = {
    "isolated": "✅", "leak": "❌", "nested": "🪆", "lost": "📭",
    "error": "💥", "timeout": "⏱️", "unsupported": "n/a", "flaky": "🎲",
}
MEANINGS = {
    "isolated": "scope data apart, spans parallel, everything arrived (and the control round did leak)",
    "leak": "an event of one unit carried another unit's tag, user, breadcrumb, extra or context",
    "nested": "no value leaked, but spans landed in another unit's transaction or parallel spans were chained",
    "lost": "no leak, but an event, transaction, span or the unit's own scope data never arrived",
    "error": "the app failed to start or answer, or crashed",
    "timeout": "the cell or a barrier ran out of time (the overlap was not forced)",
    "unsupported": "cannot run here: interpreter missing, no release installs on it, or the stack fails on its own",
    "flaky": "repeats disagreed (counts in the reason)",
}
CLAIM = {"confirmed": ("✅", "confirmed"), "contradicted": ("❌", "contradicted"), "partly": ("🌓", "partly"),
         "untested": ("❔", "untested")}
# Packages whose installed version is recorded in each cell when present.
UNDER_TEST = ("sentry-sdk", "gevent", "eventlet", "greenlet", "django", "channels", "daphne", "gunicorn",
              "twisted", "aiocontextvars", "contextvars", "asgiref", "uvicorn")


def scope_mark(cell: dict) -> str:
    """'❌ 🪆': the scope symbol, then the tracing mark when spans went wrong."""
    if cell["verdict"] == "unsupported":
        return "n/a"
    symbol = SCOPE[cell.get("scope", "unknown")][0]
    mark = TRACING[cell.get("tracing", "unknown")][0]
    return f"{symbol} {mark}".strip()


def scope_words(cell: dict) -> str:
    """The same in words: 'leaks; tracing nested' (text alternative of scope_mark)."""
    if cell["verdict"] == "unsupported":
        return "not run: " + cell.get("reason", "")
    return f"scope {SCOPE[cell.get('scope', 'unknown')][1]}; tracing {TRACING[cell.get('tracing', 'unknown')][1]}"

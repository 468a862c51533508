"""What the report says in words: symbols and meanings of verdicts, and what to do per app."""
from __future__ import annotations

SYMBOLS = {
    "isolated": "✅", "leak": "❌", "nested": "🪆", "lost": "📭",
    "error": "💥", "timeout": "⏱️", "unsupported": "n/a", "flaky": "🎲",
}
MEANINGS = {
    "isolated": "every unit's events carried only its own scope data (and the control round did leak)",
    "leak": "an event of one unit carried another unit's tag, user, breadcrumb or extra",
    "nested": "no value leaked, but spans landed in another unit's transaction or parallel spans were chained",
    "lost": "no leak, but an event, transaction, span or the unit's own scope data never arrived",
    "error": "the app failed to start or answer, crashed, or the probe was blind",
    "timeout": "the cell or a barrier ran out of time (the overlap was not forced)",
    "unsupported": "cannot run here: interpreter missing or no release installs on it",
    "flaky": "repeats disagreed (counts in the reason)",
}
# Packages whose installed version is recorded in each cell when present.
UNDER_TEST = ("sentry-sdk", "gevent", "eventlet", "greenlet", "django", "channels", "daphne", "gunicorn",
              "twisted", "aiocontextvars", "contextvars", "asgiref", "uvicorn")
# What to do about a leaking `plain` configuration, per app, and which variants are the documented fixes.
ADVICE = {
    "threads": ("Threads should each get their own hub/scope; a leak here is an SDK bug worth reporting.", ()),
    "asyncio": ("Enable `AsyncioIntegration` (call `sentry_sdk.init` inside the running loop), or run each "
                "request in `with Hub(Hub.current):` (0.x/1.x) / `with sentry_sdk.isolation_scope():` (2.x). The "
                "per-request clone alone keeps scope data apart but chains the spans of parallel `gather` children "
                "(they share the request's scope); the integration forks a scope per task.",
                ("asyncio-integration", "hub-clone", "isolation-scope")),
    "gevent": ("Call `gevent.monkey.patch_all()` before importing the SDK. Scope data stays apart per greenlet; spans "
               "opened in `gevent.spawn` children start in an empty context and never reach the request's "
               "transaction: pass the parent span explicitly or run the child in a copy of the context.",
               ("hub-clone", "isolation-scope")),
    "eventlet": ("Call `eventlet.monkey_patch()` before importing the SDK (importing it first can deadlock or leak). "
                 "Spans opened in `eventlet.spawn` children never reach the request's transaction: pass the parent "
                 "span explicitly.", ("hub-clone", "isolation-scope")),
    "channels": ("Wrap the whole `ProtocolTypeRouter` in `SentryAsgiMiddleware`: the Django integration alone wraps "
                 "Django's ASGI handler, not your consumers, so HTTP and websocket consumers share one scope.",
                 ("asgi-middleware",)),
    "twisted": ("The SDK has no Twisted integration: create a hub/isolation scope per request and re-enter it around "
                "every resumption of the request's generator (a plain `with` block around `yield` only works from "
                "Twisted 21.2, whose inlineCallbacks copies the context).", ("hub-clone", "isolation-scope")),
    "asyncio-gevent": ("Avoid mixing: when the SDK keeps its context per greenlet, every task on the loop's greenlet "
                       "shares one scope. With real contextvars (gevent >= 20.9, SDK >= 1.x) requests stay apart.",
                       ("hub-clone", "isolation-scope")),
    "django-gevent": ("Nothing to do when the SDK is initialised after gunicorn's worker patched (settings.py).", ()),
    "django-eventlet": ("Nothing to do when the SDK is initialised after gunicorn's worker patched (settings.py).", ()),
}

"""Shared helpers for the reference apps (see apps/README.md).

Everything in this package must stay valid Python 2.7 *and* 3.6-3.13 syntax,
use the standard library only, and work with any sentry-sdk from 0.10 to 2.x
by feature detection (hasattr/getattr, try/except TypeError), never by
comparing version numbers.

Modules:
  cli       -- argument parsing (one-line errors, exit code 2)
  log       -- tiny stderr logger used by the apps
  sdk       -- SDK init, scope-write helpers (normal/control), spans,
               transactions, capture, flush and close
  facts     -- the GET /facts document (context backend read from the SDK)
  httpjson  -- routing of request targets and JSON HTTP responses
  lifecycle -- orphan watchdog, optional lifetime cap, exit after /shutdown
"""

"""Shared code of the reference apps (see apps/README.md, "Layout" and "The unit runner").

Everything in this package must stay valid Python 2.7 *and* 3.6-3.13 syntax,
use the standard library only, and work with any sentry-sdk from 0.9 to 2.x
by feature detection (hasattr/getattr, try/except TypeError), never by
comparing version numbers. The one exception: aio.py is Python 3.6+ only and
is imported only by Python-3-only apps.

Modules:
  unit      -- the unit protocol as generators of operations; the blocking driver
  aio       -- (Python 3 only) the coroutine driver, AsyncBarrier, gather, asyncio HTTP
  deferred  -- the Deferred (Twisted) driver and twisted.web glue
  variants  -- the scope-fix wrappers and the "SDK lacks the API" exit 2
  service   -- the request layer: routing, /facts /rss /flush /shutdown
  wsgi      -- one WSGI callable on top of service
  threaded  -- the threaded wsgiref server (threads, thread-pool)
  gevent_app -- the gevent-patched apps' watchdog, "starting:" line and pywsgi server
  gunicorn_launch -- the gunicorn launcher pattern and the worker's POST /shutdown
  httpjson  -- routing of request targets and JSON HTTP responses
  cli       -- argument parsing (one-line errors, exit code 2), check_port
  early     -- what a green app does before monkeypatching (imports sys only)
  realwatch -- the watchdog on a REAL OS thread of the green models
  lifecycle -- start_app, orphan watchdog, optional lifetime cap, exit after
               /shutdown, start-up failures after init
  sdk       -- SDK init, scope writes (normal/control), spans, transactions,
               capture, flush and close
  facts     -- the GET /facts document (context backend read from the SDK)
  log       -- tiny stderr logger used by the apps
"""

from _common import pathguard  # noqa: E402,F401  (app folders never import as packages)

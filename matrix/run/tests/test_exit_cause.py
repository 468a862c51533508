"""Why an app exited before answering: the cause line from its log, not the SDK's debug output after it."""
from __future__ import annotations

import pytest

from matrix.run.cell import exit_cause

FASTAPI = """[matrix 08:37:54] attempt 1: /env/bin/python -u /apps/fastapi/app.py --variant asgi-middleware
[fastapi pid=16 08:37:54] integrations enabled: argv, atexit, dedupe, excepthook, fastapi, logging
 [sentry] DEBUG: Killing HTTP transport
[fastapi pid=16 08:37:54] start-up failure, exiting with code 2
fastapi: error: variant asgi-middleware: SentryAsgiMiddleware(app) raised RuntimeError: remove it
 [sentry] DEBUG: Killing HTTP transport
 [sentry] DEBUG: background worker got kill request
"""
TWISTED = """[twisted pid=9 15:54:16] starting: python 3.13.0, sentry-sdk 2.75.0, twisted 23.10.0
Traceback (most recent call last):
  File "/apps/twisted/app.py", line 219, in main
    from twisted.web import server
    import cgi
ModuleNotFoundError: No module named 'cgi'
 [sentry] DEBUG: Flushing HTTP transport
 [sentry] DEBUG: background worker got kill request
[matrix 15:54:16] attempt 1 done: exit=1 signal=None killed=False items=1
"""
PLAIN = """[threads pid=3 10:00:00] starting
something went wrong without a traceback
 [sentry] DEBUG: background worker got kill request
"""


@pytest.mark.parametrize("text, cause", [
    (FASTAPI, "fastapi: error: variant asgi-middleware: SentryAsgiMiddleware(app) raised RuntimeError: remove it"),
    (TWISTED, "ModuleNotFoundError: No module named 'cgi'"),
    (PLAIN, "something went wrong without a traceback"),
    ("", "no output"),
])
def test_the_cause_is_the_apps_error_or_exception_line_not_the_sdks_last_words(tmp_path, text, cause):
    log = tmp_path / "app.log"
    log.write_text(text)
    assert exit_cause(str(log)) == cause

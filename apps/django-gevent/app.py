"""Reference app: Django under gunicorn's gevent worker (one worker process,
one greenlet per connection).

This file only parses the contract arguments, checks what the run needs and
exec's gunicorn (`--worker-class gevent --workers 1`, bound to
127.0.0.1:PORT) serving the shared Django project in apps/_django/. The SDK
is initialised in the project's settings.py, inside the worker, after
gunicorn's gevent worker ran `gevent.monkey.patch_all()`.
See apps/django-gevent/README.md and apps/README.md.
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _django import launcher  # noqa: E402

APP_ID = "django-gevent"

if __name__ == "__main__":
    launcher.main(APP_ID, "gevent")

"""Shared code of the django-gevent and django-eventlet apps (see their READMEs).

  launcher       -- app.py's body: contract args, pre-flight checks, exec gunicorn
  gunicorn_conf  -- the gunicorn config (one worker, bind 127.0.0.1, hooks that
                    make the arbiter stop by itself)
  ctxproject/    -- the minimal Django project (settings with sentry_sdk.init,
                    urls, views, wsgi)

Valid Python 2.7 and 3.6+ syntax; nothing here imports sentry_sdk in the
gunicorn arbiter (only the worker does, after gunicorn's monkeypatching).
"""

import _common  # noqa: E402,F401  (installs _common.pathguard before settings.py imports the SDK)

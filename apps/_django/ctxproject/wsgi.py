"""WSGI entry point: gunicorn serves `_django.ctxproject.wsgi:application`.

Imported by gunicorn in the worker (init_process -> load_wsgi), i.e. after
the gevent/eventlet worker monkeypatched the stdlib. get_wsgi_application()
runs django.setup(), which imports _django.ctxproject.settings, where sentry_sdk.init
happens.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "_django.ctxproject.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

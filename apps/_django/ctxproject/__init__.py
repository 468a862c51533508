"""Minimal Django project of the django-gevent / django-eventlet apps."""

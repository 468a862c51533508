"""URL patterns of the contract endpoints (apps/README.md)."""
try:
    from django.urls import re_path  # Django 2.0+
except ImportError:  # Django 1.x
    from django.conf.urls import url as re_path

from _django.ctxproject import views

urlpatterns = [
    re_path(r"^facts/?$", views.facts),
    re_path(r"^unit/(?P<raw>[^/]*)/?$", views.unit_view),
    re_path(r"^flush/?$", views.flush),
    re_path(r"^shutdown/?$", views.shutdown),
    re_path(r"", views.fallback),  # JSON 404/405 for anything else; GET /rss too
]

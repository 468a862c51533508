"""The documented per-request fixes ("scope-fix" variants), written once.

  hub-clone        the unit runs inside `with sentry_sdk.Hub(sentry_sdk.Hub.current):`
                   (the 0.x/1.x fix; needs sentry_sdk.Hub)
  isolation-scope  the unit runs inside `with sentry_sdk.isolation_scope():`
                   (the 2.x fix; needs sentry_sdk.isolation_scope)
  anything else    no wrapper

The asyncio-integration variant (sentry_sdk.init(integrations=[AsyncioIntegration()]),
sdk.framework_integrations) is no wrapper either; its need is here too.

`check_supported` is the contract's fail-fast: a variant whose API the
installed SDK lacks is ONE line on stderr and exit 2, before serving. An app
adds its own variants' needs (names under `sentry_sdk`, dotted for
submodules: "scope.use_scope", "integrations.asyncio.AsyncioIntegration", and
"module:Class.attr" for an attribute of a class: "scope:Scope.get_current_scope").
Feature detection only, never version numbers.
"""
from __future__ import absolute_import, print_function

import importlib

import sentry_sdk

from _common import cli
from _common.log import one_line
from _common.sdk import sdk_version

NEEDS = {"hub-clone": ("Hub",), "isolation-scope": ("isolation_scope",),
         "asyncio-integration": ("integrations.asyncio.AsyncioIntegration",)}


class _Nothing(object):
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


def scope_fix(variant):
    """The variant's context manager, made NOW (in the unit's own thread,
    greenlet or task): enter it around the unit's work."""
    if variant == "hub-clone":
        return sentry_sdk.Hub(sentry_sdk.Hub.current)
    if variant == "isolation-scope":
        return sentry_sdk.isolation_scope()
    return _Nothing()


def _lookup(name):
    """sentry_sdk.<name>; a dotted name imports sentry_sdk.<module> first, and
    "module:Class.attr" follows attributes after the import (the classmethods
    that 2.0.x has where later releases have top-level functions).
    Raises (ImportError, AttributeError, DidNotEnable...) when absent."""
    if ":" in name:
        module_name, attrs = name.split(":", 1)
        value = importlib.import_module("sentry_sdk." + module_name)
        for attr in attrs.split("."):
            value = getattr(value, attr)
    else:
        module_name, _, attr = ("sentry_sdk." + name).rpartition(".")
        value = getattr(importlib.import_module(module_name), attr)
    if not callable(value):
        raise AttributeError("%s is not callable" % name)
    return value


def check_supported(app_id, variant, needs=None):
    """Exit 2 (one line) when the SDK lacks what `variant` needs."""
    table = dict(NEEDS)
    table.update(needs or {})
    names = table.get(variant, ())
    if isinstance(names, str):
        names = (names,)
    for name in names:
        try:
            _lookup(name)
        except Exception as exc:  # a submodule's import error says why: keep it
            why = " (%s)" % one_line(exc) if "." in name else ""
            cli.die(app_id, "variant %s needs sentry_sdk.%s, which sentry-sdk %s does not have%s"
                    % (variant, name, sdk_version(), why))

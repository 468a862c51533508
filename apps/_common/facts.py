"""The GET /facts document.

`context_backend` is read FROM THE SDK: we inspect the object the SDK really
stores its per-context state in --
  2.x:      sentry_sdk.scope._current_scope
  0.x/1.x:  sentry_sdk.hub._local
and classify its class:
  * the SDK's own thread-local shim (class defined in sentry_sdk.utils, built
    by _make_threadlocal_contextvar[s]) or a threading.local -> "thread-local"
  * gevent's ContextVar (gevent.contextvars)                  -> "contextvars"
    (detail says gevent)
  * a ContextVar from contextvars/_contextvars                -> "contextvars",
    or "aiocontextvars" on Python < 3.7 (there it can only be the PyPI
    `contextvars` backport that aiocontextvars builds on)
  * anything else                                             -> "unknown"
"""
from __future__ import absolute_import, print_function

import importlib
import io
import os
import platform
import sys
import threading

from _common.log import log
from _common.sdk import sdk_version

_packages_source = []


def _packages():
    """{distribution name: version} for every installed distribution."""
    try:
        try:
            from importlib import metadata as md  # 3.8+
        except ImportError:
            import importlib_metadata as md  # backport, if installed
        result = {}
        for dist in md.distributions():
            name = dist.metadata["Name"]
            if name:
                result[name] = dist.version
        _packages_source[:] = ["importlib.metadata"]
        return result
    except ImportError:
        pass
    try:
        import pkg_resources  # 2.7 / 3.6 / 3.7 with setuptools

        result = dict((d.project_name, d.version) for d in pkg_resources.working_set)
        _packages_source[:] = ["pkg_resources"]
        return result
    except ImportError:
        pass
    _packages_source[:] = ["dist-info scan"]
    return _scan_dist_info()


def _scan_dist_info():
    """Last resort (e.g. Python 3.7 in a venv without setuptools): read
    Name/Version from *.dist-info/METADATA and *.egg-info/PKG-INFO."""
    result = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                meta = os.path.join(entry, name, "METADATA")
            elif name.endswith(".egg-info"):
                meta = os.path.join(entry, name)
                if os.path.isdir(meta):
                    meta = os.path.join(meta, "PKG-INFO")
            else:
                continue
            dist_name = version = None
            try:
                with io.open(meta, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        if not line.strip():
                            break
                        if line.startswith("Name:") and dist_name is None:
                            dist_name = line[5:].strip()
                        elif line.startswith("Version:") and version is None:
                            version = line[8:].strip()
            except (IOError, OSError, UnicodeDecodeError):
                continue
            if dist_name and dist_name not in result:
                result[dist_name] = version
    return result


def _storage():
    """(label, object) of the SDK's context storage."""
    for module_name, attr in (("sentry_sdk.scope", "_current_scope"), ("sentry_sdk.hub", "_local")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        obj = getattr(module, attr, None)
        if obj is not None:
            return "%s.%s" % (module_name, attr), obj
    return None, None


def _qualname(cls):
    return "%s.%s" % (cls.__module__, getattr(cls, "__qualname__", cls.__name__))


def context_backend():
    """(backend, detail) as read from the SDK."""
    label, obj = _storage()
    if obj is None:
        return "unknown", "no sentry_sdk.scope._current_scope nor sentry_sdk.hub._local"
    cls = type(obj)
    module = cls.__module__ or ""
    qual = _qualname(cls)
    parts = ["%s is %s" % (label, qual)]

    if isinstance(obj, threading.local) or module in ("_threading_local", "thread"):
        backend = "thread-local"
    elif module == "sentry_sdk.utils":
        backend = "thread-local"
        inner = getattr(obj, "_local", None)
        if inner is not None:
            parts.append("shim wraps %s" % _qualname(type(inner)))
    elif module.split(".")[0] == "gevent":
        backend = "contextvars"
        parts.append("gevent's ContextVar (gevent.contextvars)")
    elif module in ("contextvars", "_contextvars", "builtins") and cls.__name__ == "ContextVar":
        # (3.7/3.8's C ContextVar type reports __module__ "builtins")
        stdlib_cv = getattr(sys.modules.get("contextvars"), "ContextVar", None)
        if stdlib_cv is not None and isinstance(obj, stdlib_cv):
            parts.append("isinstance(contextvars.ContextVar)")
        if sys.version_info < (3, 7):
            backend = "aiocontextvars"
            parts.append("Python < 3.7: the contextvars backport used by aiocontextvars")
        else:
            backend = "contextvars"
    else:
        backend = "unknown"

    try:
        utils = importlib.import_module("sentry_sdk.utils")
    except ImportError:
        utils = None
    if utils is not None and hasattr(utils, "HAS_REAL_CONTEXTVARS"):
        parts.append("HAS_REAL_CONTEXTVARS=%r" % (utils.HAS_REAL_CONTEXTVARS,))
    broken = getattr(utils, "_is_contextvars_broken", None)
    if broken is not None:
        try:
            parts.append("_is_contextvars_broken()=%r" % (broken(),))
        except Exception as exc:  # report, never hide
            parts.append("_is_contextvars_broken() raised %s: %s" % (type(exc).__name__, exc))
    return backend, "; ".join(parts)


def patched():
    """Whether gevent/eventlet monkeypatched threading / contextvars. Only
    looks at libraries already imported: nothing can be patched by a library
    that was never imported, and importing one here could have side effects."""
    result = {"threading": False, "contextvars": False}
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None:
        check = getattr(gevent_monkey, "is_module_patched", None)
        if check is not None:
            result["threading"] = result["threading"] or bool(check("threading"))
            result["contextvars"] = result["contextvars"] or bool(check("contextvars"))
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None:
        check = getattr(eventlet_patcher, "is_monkey_patched", None)
        if check is not None:
            # eventlet calls the threading patch "thread"
            result["threading"] = result["threading"] or bool(check("thread"))
            try:
                result["contextvars"] = result["contextvars"] or bool(check("contextvars"))
            except Exception:
                pass
    return result


def _is_sentry_code(func):
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    return bool(code is not None and "sentry_sdk" in code.co_filename)


def sdk_patched(paths):
    """{"pkg.module.Class.method": True if the SDK replaced it} for each of
    the dotted `paths` that imports (read from the live code objects): which
    entry points of a framework the SDK's integrations wrapped."""
    import warnings

    found = {}
    for path in paths:
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # e.g. channels.http's deprecation
                    obj = importlib.import_module(".".join(parts[:cut]))
                for name in parts[cut:]:
                    obj = getattr(obj, name)
            except (ImportError, AttributeError):
                continue
            found[path] = _is_sentry_code(obj)
            break
    return found


def facts(app_id, variant, units):
    backend, detail = context_backend()
    packages = _packages()
    log("facts: packages read via %s" % (_packages_source[0] if _packages_source else "?"))
    return {
        "app": app_id,
        "variant": variant,
        "units": units,
        "pid": os.getpid(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sdk_version": sdk_version(),
        "packages": packages,
        "context_backend": backend,
        "context_detail": detail,
        "patched": patched(),
    }

"""Everything the apps do with the Sentry SDK, by feature detection only.

Supported range: sentry-sdk 0.10 .. 2.x. Nothing here compares version
numbers; each helper probes for the API it needs (top-level functions first,
then the Hub / configure_scope era fallbacks) and says in the log which path
it took.

Scope data written per unit i (normal and control rounds alike):
  tag  unit      = "i"
  tag  unit.i    = "1"        (only unit i ever sets it)
  user           = {"id": "i"}
  breadcrumb     category="unit", message="unit-i"
  extra unit_name = "unit-i"
  context unit   = {"id": "i"} (only where set_context exists)
"""
from __future__ import absolute_import, print_function

import contextlib
import importlib
import inspect
import sys

import sentry_sdk

from _common.log import log

SPAN_OP = "unit.step"
TRANSACTION_OP = "unit"

# What the helpers discovered, for the log (filled lazily, per process).
_notes = {}


def _note_once(key, text):
    if _notes.get(key) != text:
        _notes[key] = text
        log("sdk path: %s -> %s" % (key, text))


def sdk_version():
    version = getattr(sentry_sdk, "VERSION", None)
    if version is None:
        try:
            from sentry_sdk.consts import VERSION as version
        except ImportError:
            version = None
    return version


def _hub_class():
    return getattr(sentry_sdk, "Hub", None)


def has_hub():
    return _hub_class() is not None


def has_isolation_scope():
    return callable(getattr(sentry_sdk, "isolation_scope", None))


# --------------------------------------------------------------------------
# init / flush / close


def init_sdk(dsn, integrations=None):
    """sentry_sdk.init(dsn, traces_sample_rate=1.0, debug=True, default
    integrations [+ `integrations`]). Returns the init guard (keep it)."""
    kwargs = {"dsn": dsn, "traces_sample_rate": 1.0, "debug": True}
    if integrations:
        kwargs["integrations"] = list(integrations)
    try:
        return sentry_sdk.init(**kwargs)
    except TypeError as exc:
        # Very old SDKs reject unknown options with TypeError.
        if "traces_sample_rate" not in str(exc):
            raise
        log("SDK has no traces_sample_rate option (%s); init without tracing" % exc)
        del kwargs["traces_sample_rate"]
        return sentry_sdk.init(**kwargs)


def init_or_die(app_id, dsn, integrations=None, detail="", die=None):
    """init_sdk, or the contract's one line + exit 2 (`die`, default
    cli.die, is how this app fails: see lifecycle.fail_after_init)."""
    try:
        return init_sdk(dsn, integrations=integrations)
    except Exception as exc:  # e.g. BadDsn, DidNotEnable
        from _common import cli
        from _common.log import one_line

        (die or cli.die)(app_id, "sentry_sdk.init failed%s: %s" % (detail, one_line(exc)))


def get_client():
    get = getattr(sentry_sdk, "get_client", None)  # 2.x
    if get is not None:
        return get()
    hub = _hub_class()
    return hub.current.client if hub is not None else None


def enabled_integrations():
    """The identifiers of the integrations the client enabled, sorted."""
    return sorted(getattr(get_client(), "integrations", None) or {})


def framework_integrations(variant, integration=None):
    """-> (the integrations to pass to init, how `integration` is enabled, or None).

    `integration` is the dotted path of a framework's integration class, as the SDK lists it in
    `sentry_sdk.integrations._AUTO_ENABLING_INTEGRATIONS` ("sentry_sdk.integrations.aiohttp.AioHttpIntegration"):
    on as users have it, auto-enabled where the SDK lists it there, else passed explicitly. The
    asyncio-integration variant adds AsyncioIntegration()."""
    chosen = []
    how = None
    if integration:
        try:
            from sentry_sdk import integrations as integrations_module
        except ImportError:
            integrations_module = None
        module_name, _, class_name = integration.rpartition(".")
        if integration in getattr(integrations_module, "_AUTO_ENABLING_INTEGRATIONS", ()):
            how = "auto-enabled (default integrations)"
        else:
            chosen.append(getattr(importlib.import_module(module_name), class_name)())
            how = "explicit %s() (this SDK does not auto-enable it)" % class_name
    if variant == "asyncio-integration":
        from sentry_sdk.integrations.asyncio import AsyncioIntegration

        chosen.append(AsyncioIntegration())
    return chosen, how


def init_framework(app_id, args, integration=None):
    """init_or_die with framework_integrations(args.variant, integration), then the log of what
    is enabled: with `integration`, a WARNING when it is not (its identifier is its module's
    name: requests would share a scope) and how it is enabled. -> (how, enabled identifiers)."""
    integrations, how = framework_integrations(args.variant, integration)
    init_or_die(app_id, args.dsn, integrations, " for variant %s" % args.variant)
    enabled = enabled_integrations()
    if integration is None:
        log("integrations enabled: %s" % ", ".join(enabled))
        return how, enabled
    module_name, _, class_name = integration.rpartition(".")
    if module_name.rpartition(".")[2] not in enabled:
        log("WARNING: the %s is NOT enabled (see the SDK's debug lines): requests share a scope" % class_name)
    log("%s: %s; enabled integrations: %s" % (class_name, how, ", ".join(enabled)))
    return how, enabled


def flush(timeout=5):
    fn = getattr(sentry_sdk, "flush", None)
    if fn is not None:
        fn(timeout=timeout)
        return
    client = get_client()
    if client is not None:
        client.flush(timeout=timeout)


def close_client(timeout=2):
    client = get_client()
    if client is None:
        return
    close = getattr(client, "close", None)
    if close is None:
        return
    try:
        close(timeout=timeout)
    except TypeError:
        close()


# --------------------------------------------------------------------------
# scope writes


def _set_user_on(scope, user):
    if hasattr(scope, "set_user"):
        scope.set_user(user)
    else:
        scope.user = user


def _write_to_scope(scope, i, with_breadcrumb):
    si = str(i)
    scope.set_tag("unit", si)
    scope.set_tag("unit." + si, "1")
    _set_user_on(scope, {"id": si})
    if with_breadcrumb:
        scope.add_breadcrumb(category="unit", message="unit-" + si)
    scope.set_extra("unit_name", "unit-" + si)
    if hasattr(scope, "set_context"):
        scope.set_context("unit", {"id": si})


def write_scope_normal(i):
    """Write unit i's scope data the way user code would. Returns the API
    path used ("top-level" or "configure_scope")."""
    si = str(i)
    names = ("set_tag", "set_user", "set_extra", "add_breadcrumb")
    if all(hasattr(sentry_sdk, n) for n in names):
        sentry_sdk.set_tag("unit", si)
        sentry_sdk.set_tag("unit." + si, "1")
        sentry_sdk.set_user({"id": si})
        sentry_sdk.add_breadcrumb(category="unit", message="unit-" + si)
        sentry_sdk.set_extra("unit_name", "unit-" + si)
        if hasattr(sentry_sdk, "set_context"):
            sentry_sdk.set_context("unit", {"id": si})
        path = "top-level sentry_sdk.set_*"
    else:
        with sentry_sdk.configure_scope() as scope:
            _write_to_scope(scope, i, with_breadcrumb=False)
        sentry_sdk.add_breadcrumb(category="unit", message="unit-" + si)
        path = "configure_scope() + sentry_sdk.add_breadcrumb"
    _note_once("normal scope write", path)
    return path


def write_child_tag(i, k):
    """Child k of unit i writes tag child.<i>.<k> = "1" the way user code in a
    spawned task would: through the top-level API (configure_scope before 0.12)."""
    key = "child.%d.%d" % (i, k)
    if hasattr(sentry_sdk, "set_tag"):
        sentry_sdk.set_tag(key, "1")
    else:
        with sentry_sdk.configure_scope() as scope:
            scope.set_tag(key, "1")


def scope_copies():
    """Copies of the scopes the current unit writes to (2.x: isolation and current scope; 0.x/1.x:
    the hub's scope), what a per-request hub or scope kept alive by mistake retains."""
    import copy

    found = [scope_getter(name) for name in ("get_isolation_scope", "get_current_scope")]
    if all(found):
        return [copy.copy(get()) for get in found]
    hub = _current_hub()
    return [copy.copy(hub.scope)] if hub is not None else []


def _shared_hub():
    hub_cls = _hub_class()
    hub = None
    try:
        hub = getattr(hub_cls, "main", None)
    except Exception:
        hub = None
    if hub is None:
        from sentry_sdk import hub as hub_module

        hub = hub_module.GLOBAL_HUB
        _note_once("control shared hub", "sentry_sdk.hub.GLOBAL_HUB")
    else:
        _note_once("control shared hub", "Hub.main")
    return hub


def scope_getter(name):
    """sentry_sdk.<name> (get_global_scope, get_isolation_scope, get_current_scope),
    or the classmethod Scope.<name> where the top-level function is missing
    (2.0.x has only the classmethods); None on 0.x/1.x."""
    found = getattr(sentry_sdk, name, None)
    if callable(found):
        return found
    try:
        from sentry_sdk.scope import Scope
    except ImportError:
        return None
    found = getattr(Scope, name, None)
    return found if callable(found) else None


def write_scope_control(i):
    """Positive control: write unit i's data into ONE scope shared by all
    units (2.x: the global scope, which every capture merges first; 0.x/1.x:
    the main hub's scope)."""
    get_global = scope_getter("get_global_scope")
    if get_global is not None:
        scope = get_global()
        _write_to_scope(scope, i, with_breadcrumb=True)
        _note_once("control scope write", "%s.get_global_scope()" % getattr(get_global, "__module__", "?"))
        return "global-scope"
    hub = _shared_hub()
    root = _root_scope(hub)
    if root is not None:
        # An integration pushed a scope on the main hub itself (1.x CeleryIntegration in a prefork
        # child or the solo pool: the task runs on the main thread, whose Hub.current IS Hub.main):
        # configure_scope() would write into that task's scope, popped with it. The root scope
        # under it is what every task's pushed scope is copied from: the one shared scope.
        _write_to_scope(root, i, with_breadcrumb=hasattr(root, "add_breadcrumb"))
        _note_once("control scope write", "main hub's root scope (a scope is pushed on the main hub)")
        return "main-hub-root"
    with hub.configure_scope() as scope:
        _write_to_scope(scope, i, with_breadcrumb=False)
    hub.add_breadcrumb(category="unit", message="unit-" + str(i))
    _note_once("control scope write", "main hub configure_scope()")
    return "main-hub"


def _root_scope(hub):
    """The bottom scope of the hub's stack when a scope is pushed above it, else None."""
    stack = getattr(hub, "_stack", None)
    try:
        if stack and len(stack) > 1 and stack[0][1] is not stack[-1][1]:
            return stack[0][1]
    except (TypeError, IndexError):
        pass
    return None


# On OS threads, captures go one at a time, process-wide: 0.x/1.x Scope.apply_to_event's recursion
# guard is a plain attribute on the scope (`_should_capture`), so two threads capturing through the
# SAME scope at once see each other's guard and one event is silently discarded -- or not, by timing
# (before: 33 events lost in 15 of 20 runs of four such cells; after: none). The units still overlap
# (every capture comes after the round's barrier, while every unit is inside its round); only the
# captures themselves are serialised, so whether an event arrives never depends on luck.
# Not on green threads (gevent, eventlet): a greenlet is never preempted inside a capture, so there is
# no race to remove -- and serialising their captures would hide a real failure: with the SDK set up
# before the monkeypatching (sdk-first), concurrent captures block the hub on the SDK's real lock.
_capture_lock = {}  # "lock": a Lock, or None on green threads; decided at the first capture


@contextlib.contextmanager
def capturing():
    if "lock" not in _capture_lock:
        import threading

        from _common.facts import patched  # facts imports this module: imported here, not at the top

        # dict.setdefault keeps one decision if two threads get here first at once.
        _capture_lock.setdefault("lock", None if patched()["threading"] else threading.Lock())
    lock = _capture_lock["lock"]
    if lock is None:
        yield
        return
    with lock:
        yield


def _checked(message, event_id):
    if event_id is None:
        # The SDK dropped the event without raising (captures are serialised, see capturing()).
        log("capture_message(%r) returned None: the SDK dropped the event" % message)
    return event_id


def capture_unit_message(message):
    with capturing():
        event_id = sentry_sdk.capture_message(message, level="info")
    return _checked(message, event_id)


def capture_control_message(message):
    with capturing():
        if scope_getter("get_global_scope") is not None:
            # 2.x: the top-level capture merges global + isolation + current scope.
            event_id = sentry_sdk.capture_message(message, level="info")
        else:
            event_id = _shared_hub().capture_message(message, level="info")
    return _checked(message, event_id)


# --------------------------------------------------------------------------
# tracing


def _param_names(func):
    func = getattr(func, "__func__", func)
    try:
        sig = inspect.signature(func)  # Python 3
        return list(sig.parameters)
    except AttributeError:
        pass
    try:
        return list(inspect.getargspec(func).args)  # Python 2.7
    except (TypeError, ValueError):
        return []


_span_keyword = []


def span_name_keyword():
    """Keyword that names a span: `name` on recent 2.x (where `description`
    is deprecated), `description` everywhere before that."""
    if not _span_keyword:
        keyword = "description"
        try:
            from sentry_sdk.tracing import Span

            if "name" in _param_names(Span.__init__):
                keyword = "name"
        except ImportError:
            pass
        _span_keyword.append(keyword)
        _note_once("span name keyword", keyword)
    return _span_keyword[0]


def _call_with_name(factory, name, op):
    """factory(op=op, <name keyword>=name); if the probe guessed wrong, the
    SDK rejects the keyword with TypeError and we retry with the other one."""
    keyword = span_name_keyword()
    try:
        return factory(**{"op": op, keyword: name})
    except TypeError:
        other = "description" if keyword == "name" else "name"
        span = factory(**{"op": op, other: name})
        _span_keyword[:] = [other]
        _note_once("span name keyword", other + " (after TypeError)")
        return span


def _span_is_context_manager():
    """Span objects are context managers from ~0.11 on; on 0.10 only the
    Hub.span() context manager binds a span to the scope and sends it."""
    try:
        from sentry_sdk.tracing import Span
    except ImportError:
        return False
    return hasattr(Span, "__enter__")


def _current_hub():
    hub_cls = _hub_class()
    return hub_cls.current if hub_cls is not None else None


@contextlib.contextmanager
def unit_transaction(name, op=TRANSACTION_OP):
    """Start (and on exit finish) the unit's transaction. Yields the
    transaction name, or None on an SDK without tracing. Finishing it
    captures it: one capture at a time, as messages (capturing())."""
    start_transaction = getattr(sentry_sdk, "start_transaction", None)
    if start_transaction is not None:
        _note_once("transaction", "sentry_sdk.start_transaction(name=, op=)")
        with _finished_in_turn(start_transaction(name=name, op=op)):
            yield name
        return
    hub = _current_hub()
    if hub is not None and hasattr(hub, "start_span") and _span_is_context_manager():
        _note_once("transaction", "with Hub.current.start_span(transaction=, op=)")
        with _finished_in_turn(hub.start_span(transaction=name, op=op)):
            yield name
        return
    if hub is not None and hasattr(hub, "span"):
        _note_once("transaction", "with Hub.current.span(transaction=, op=)")
        with _finished_in_turn(hub.span(transaction=name, op=op)):
            yield name
        return
    _note_once("transaction", "NONE: this SDK has no tracing API")
    yield None


@contextlib.contextmanager
def _finished_in_turn(manager):
    """`with manager:`, its exit (where the SDK captures the transaction) under capturing()."""
    manager.__enter__()
    try:
        yield
    except BaseException:
        exc = sys.exc_info()
        with capturing():
            swallowed = manager.__exit__(*exc)
        if not swallowed:
            raise
    else:
        with capturing():
            manager.__exit__(None, None, None)


def current_span_ids():
    """(trace_id, span_id) of the span now on the current scope, or (None,
    None). Read right after the unit's transaction was entered, it lets a
    judge find that transaction even when an SDK event processor renamed it
    (1.x SentryAsgiMiddleware renames custom-named ones to the URL)."""
    span = current_span()
    if span is None:
        return None, None
    return getattr(span, "trace_id", None), getattr(span, "span_id", None)


def current_span():
    """The span (or transaction) on the current scope, or None."""
    get_span = getattr(sentry_sdk, "get_current_span", None)
    if get_span is not None:
        return get_span()
    if has_hub():
        return getattr(sentry_sdk.Hub.current.scope, "span", None)
    return None


@contextlib.contextmanager
def integration_transaction(name, op=TRANSACTION_OP):
    """The unit's transaction where an integration already started one for the unit (a Celery
    task, a Flask request): that transaction, under the integration's name, as user code that opens
    spans in a task or a view has it. Where there is none, start `name` (unit_transaction)."""
    span = current_span()
    if span is None:
        _note_once("transaction", "no transaction from an integration: sentry_sdk.start_transaction")
        with unit_transaction(name, op) as tx_name:
            yield tx_name
        return
    tx = getattr(span, "containing_transaction", None) or span
    _note_once("transaction", "the integration's transaction (%s)" % type(tx).__name__)
    yield getattr(tx, "name", None) or getattr(tx, "transaction", None) or "(unnamed)"


@contextlib.contextmanager
def child_span(name, op=SPAN_OP):
    """Open a span through the current-scope API; yields True if a span was
    really opened (False on an SDK without tracing)."""
    start_span = getattr(sentry_sdk, "start_span", None)
    if start_span is not None and _span_is_context_manager():
        _note_once("span", "sentry_sdk.start_span(op=, %s=)" % span_name_keyword())
        with _call_with_name(start_span, name, op):
            yield True
        return
    hub = _current_hub()
    if hub is not None and hasattr(hub, "start_span") and _span_is_context_manager():
        _note_once("span", "with Hub.current.start_span(op=, %s=)" % span_name_keyword())
        with _call_with_name(hub.start_span, name, op):
            yield True
        return
    if hub is not None and hasattr(hub, "span"):
        _note_once("span", "with Hub.current.span(op=, %s=)" % span_name_keyword())
        with _call_with_name(hub.span, name, op):
            yield True
        return
    _note_once("span", "NONE: this SDK has no span API")
    yield False


# --------------------------------------------------------------------------
# unit results


def new_result(i, round_name, variant):
    return {
        "unit": i,
        "round": round_name,
        "barrier": None,
        "barrier_waited_s": None,
        "event_id": None,
        "transaction": None,
        "spans": [],
        "variant": variant,
        "error": None,
    }

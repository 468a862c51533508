"""Reference app: one asyncio task per connection (stdlib asyncio server).

All units run concurrently on ONE thread, interleaved at await points, so
only contextvars (as used by the SDK) can keep their scope data apart.

Variants:
  plain                no workaround
  asyncio-integration  AsyncioIntegration() (sentry_sdk.init runs inside the
                       running loop, before start_server, because the
                       integration patches the running loop's task factory)
  hub-clone            unit body inside `with sentry_sdk.Hub(Hub.current):`
                       (the documented 0.x/1.x fix; needs sentry_sdk.Hub)
  isolation-scope      unit body inside `with sentry_sdk.isolation_scope():`
                       (the 2.x fix; needs sentry_sdk.isolation_scope)

Runs unchanged on Python 3.6-3.13: no asyncio.run, no walrus, every asyncio
primitive is created inside a coroutine (3.6-3.9 bind them to a loop).
See apps/README.md for the contract.
"""
from __future__ import absolute_import, print_function

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402

from _common import cli  # noqa: E402
from _common import facts as facts_mod  # noqa: E402
from _common import httpjson, lifecycle, sdk  # noqa: E402
from _common.log import log, log_exception, one_line, set_prefix  # noqa: E402

APP_ID = "asyncio"
VARIANTS = ("plain", "asyncio-integration", "hub-clone", "isolation-scope")

READ_TIMEOUT = 30.0
MAX_HEADER_LINES = 100
MAX_BODY = 1 << 20

_monotonic = getattr(time, "monotonic", time.time)


class AsyncBarrier(object):
    """Cyclic N-party barrier: an asyncio.Event per generation + a counter.
    wait(timeout) -> ("ok"|"timeout", seconds waited). A party that times
    out withdraws from its generation. Events are created lazily, inside a
    coroutine, so they bind to the running loop on 3.6-3.9."""

    def __init__(self, parties):
        self.parties = parties
        self._count = 0
        self._event = None

    async def wait(self, timeout):
        start = _monotonic()
        if self._event is None:
            self._event = asyncio.Event()
        event = self._event
        self._count += 1
        if self._count >= self.parties:
            self._count = 0
            self._event = None
            event.set()
            return "ok", _monotonic() - start
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            if not event.is_set() and self._event is event:
                self._count -= 1
                return "timeout", _monotonic() - start
        return "ok", _monotonic() - start


class App(object):
    def __init__(self, args):
        self.args = args
        self.normal_barrier = AsyncBarrier(args.units)
        self.control_barrier = AsyncBarrier(args.units)

    # -- the unit body, wrapped according to the variant -------------------

    async def run_unit(self, i, round_name):
        variant = self.args.variant
        body = self.run_control if round_name == "control" else self.run_normal
        if variant == "hub-clone":
            with sentry_sdk.Hub(sentry_sdk.Hub.current):
                return await body(i)
        if variant == "isolation-scope":
            with sentry_sdk.isolation_scope():
                return await body(i)
        return await body(i)

    async def _child(self, name, k, siblings, result):
        child = "%s.child-%d" % (name, k)
        with sdk.child_span(child) as opened:
            if opened:
                result["spans"].append(child)
            # While this span is open, wait for all C siblings to have opened
            # theirs, so the C spans overlap deterministically.
            state, waited = await siblings.wait(self.args.barrier_timeout)
            if state != "ok":
                log("%s: sibling barrier timed out after %.2fs, continuing" % (child, waited))
        return state

    async def run_normal(self, i):
        args = self.args
        result = sdk.new_result(i, "normal", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_normal(i)
            with sdk.unit_transaction(name) as tx_name:
                result["transaction"] = tx_name
                with sdk.child_span(name + ".before") as opened:
                    if opened:
                        result["spans"].append(name + ".before")
                state, waited = await self.normal_barrier.wait(args.barrier_timeout)
                result["barrier"] = state
                result["barrier_waited_s"] = round(waited, 4)
                if state != "ok":
                    log("%s: normal barrier timed out after %.2fs, continuing" % (name, waited))
                siblings = AsyncBarrier(args.children)
                await asyncio.gather(
                    *[self._child(name, k, siblings, result) for k in range(1, args.children + 1)]
                )
                result["event_id"] = sdk.capture_unit_message(name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: normal round failed" % name)
        return result

    async def run_control(self, i):
        args = self.args
        result = sdk.new_result(i, "control", args.variant)
        name = "unit-%d" % i
        try:
            sdk.write_scope_control(i)
            state, waited = await self.control_barrier.wait(args.barrier_timeout)
            result["barrier"] = state
            result["barrier_waited_s"] = round(waited, 4)
            if state != "ok":
                log("%s: control barrier timed out after %.2fs, continuing" % (name, waited))
            result["event_id"] = sdk.capture_control_message("control-" + name)
        except Exception as exc:
            result["error"] = one_line(exc)
            log_exception("%s: control round failed" % name)
        return result

    # -- HTTP ----------------------------------------------------------------

    async def dispatch(self, method, target):
        """-> (status, json object, after) where after() runs once answered."""
        r = httpjson.route(method, target, self.args.units)
        kind = r[0]
        if kind == "error":
            return r[1], {"error": r[2]}, None
        if kind == "facts":
            try:
                return 200, facts_mod.facts(APP_ID, self.args.variant, self.args.units), None
            except Exception as exc:
                log_exception("facts failed")
                return 500, {"error": one_line(exc)}, None
        if kind == "flush":
            try:
                sdk.flush(timeout=5)  # blocks the loop (<= 5 s); nothing else runs now
                return 200, {"flushed": True}, None
            except Exception as exc:
                log_exception("flush failed")
                return 500, {"flushed": False, "error": one_line(exc)}, None
        if kind == "shutdown":
            return 200, {"shutting_down": True}, lifecycle.exit_after_shutdown
        # unit
        i, round_name = r[1], r[2]
        try:
            result = await self.run_unit(i, round_name)
        except Exception as exc:  # e.g. entering the variant's wrapper failed
            log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
            result = sdk.new_result(i, round_name, self.args.variant)
            result["error"] = one_line(exc)
        return (500 if result["error"] else 200), result, None

    async def handle_connection(self, reader, writer):
        peer = writer.get_extra_info("peername")
        status, method, target = 400, "-", "-"
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                parts = line.decode("latin-1").split()
                if len(parts) < 2:
                    raise ValueError("bad request line %r" % line[:80])
                method, target = parts[0].upper(), parts[1]
                length = 0
                for _ in range(MAX_HEADER_LINES):
                    header = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = header.decode("latin-1").partition(":")
                    if key.strip().lower() == "content-length":
                        length = int(value.strip() or 0)
                if length > 0:  # body ignored
                    await asyncio.wait_for(reader.readexactly(min(length, MAX_BODY)), READ_TIMEOUT)
            except (ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                writer.write(httpjson.response_bytes(400, {"error": one_line(exc)}))
                await writer.drain()
                return
            status, obj, after = await self.dispatch(method, target)
            writer.write(httpjson.response_bytes(status, obj))
            await writer.drain()
            if after is not None:
                after()
        except Exception:
            log_exception("connection from %r failed" % (peer,))
        finally:
            log("http %s %s -> %s" % (method, target, status))
            try:
                writer.close()
            except Exception:
                pass


def check_variant_supported(variant):
    """Fail fast (one line, exit 2) when the SDK lacks what a variant needs."""
    if variant == "hub-clone" and not sdk.has_hub():
        cli.die(APP_ID, "variant hub-clone needs sentry_sdk.Hub, which sentry-sdk %s does not have" % sdk.sdk_version())
    if variant == "isolation-scope" and not sdk.has_isolation_scope():
        cli.die(
            APP_ID,
            "variant isolation-scope needs sentry_sdk.isolation_scope, which sentry-sdk %s does not have"
            % sdk.sdk_version(),
        )
    if variant == "asyncio-integration":
        try:
            from sentry_sdk.integrations.asyncio import AsyncioIntegration
        except ImportError as exc:
            cli.die(APP_ID, "variant asyncio-integration: cannot import AsyncioIntegration (%s)" % one_line(exc))
        return AsyncioIntegration
    return None


async def serve(args, integration_cls):
    # Inside the running loop, before start_server: AsyncioIntegration
    # patches the *running* loop's task factory. Every variant initialises at
    # the same point so that the only difference between them is the fix.
    integrations = [integration_cls()] if integration_cls is not None else None
    try:
        sdk.init_sdk(args.dsn, integrations=integrations)
    except Exception as exc:
        # e.g. DidNotEnable for an explicitly requested integration
        cli.die(APP_ID, "sentry_sdk.init failed for variant %s: %s" % (args.variant, one_line(exc)))
    if integration_cls is not None:
        factory = asyncio.get_event_loop().get_task_factory()
        log("task factory after init: %r" % (factory,))
    app = App(args)
    try:
        server = await asyncio.start_server(app.handle_connection, "127.0.0.1", args.port, backlog=128)
    except Exception as exc:
        cli.die(APP_ID, "cannot bind 127.0.0.1:%d: %s" % (args.port, one_line(exc)), code=1)
    port = server.sockets[0].getsockname()[1]
    log("listening on http://127.0.0.1:%d/" % port)
    while True:  # until POST /shutdown (os._exit) or a watchdog
        await asyncio.sleep(3600)


def main(argv=None):
    set_prefix(APP_ID)
    args = cli.parse_args(APP_ID, VARIANTS, argv)
    integration_cls = check_variant_supported(args.variant)
    lifecycle.start_watchdogs(args.max_seconds)
    log(
        "starting: python %s, sentry-sdk %s, variant=%s units=%d children=%d barrier_timeout=%s"
        % (sys.version.split()[0], sdk.sdk_version(), args.variant, args.units, args.children, args.barrier_timeout)
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(args, integration_cls))
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

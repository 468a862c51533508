"""The coroutine flavour of the unit runner. PYTHON 3.6+ ONLY.

Unlike the rest of _common this module uses `async def`; only Python-3-only
apps (asyncio, asyncio-gevent, channels) import it. It runs on 3.6-3.13:
no asyncio.run / get_running_loop / create_task, no walrus, and every asyncio
primitive is created inside a coroutine (3.6-3.9 bind them to a loop).

  drive(model, gen)       a real coroutine that runs an operation generator
                          (_common.unit) INSIDE the calling task: asyncio
                          callbacks run in a copied context, which would
                          change what the SDK sees, so no callback resumption
  answer(units, i, round) unit i's round inside the variant's scope fix
                          -> (status, result)
  AsyncBarrier            asyncio.Event per generation + a counter
  AsyncioModel            barrier = AsyncBarrier; children = asyncio.gather
                          (each child its own Task; siblings overlap at a
                          C-party AsyncBarrier)
  answer_route, dispatch  the request layer (service.Service) for coroutines
  http_handler            a stdlib asyncio HTTP/1.0 server connection handler
                          (asyncio.start_server), for any coroutine app
  run_main(serve, *args)  a new event loop runs serve(*args) until the process exits
  serve_uvicorn(...)      uvicorn's Server.serve() on a socket bound to 127.0.0.1:PORT
"""
import asyncio
import sys
import time

from _common import httpjson, lifecycle, unit
from _common.log import log, log_exception, one_line

_monotonic = getattr(time, "monotonic", time.time)

READ_TIMEOUT = 30.0
MAX_HEADER_LINES = 100
MAX_BODY = 1 << 20


class AsyncBarrier(object):
    """Cyclic N-party barrier: an asyncio.Event per generation + a counter.
    wait(timeout) -> ("ok"|"timeout", seconds waited). A party that times out
    withdraws from its generation. The Event is created lazily, inside a
    coroutine, so it binds to the running loop on 3.6-3.9."""

    def __init__(self, parties, name=None):
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


class AsyncioModel(object):
    barrier = AsyncBarrier

    async def run_children(self, runners):
        return await asyncio.gather(*[run() for run in runners])


async def run_child(model, gen):
    """One child, a Task of its own under gather (AsyncioIntegration names
    the task's span after this coroutine: description `run_child`)."""
    await drive(model, gen)


async def drive(model, gen):
    """Run an operation generator to its end in the calling task."""
    value, error = None, None
    while True:
        try:
            op = unit.resume(gen, value, error)
        except StopIteration:
            return
        value, error = None, None
        try:
            if isinstance(op, unit.Wait):
                value = await op.barrier.wait(op.timeout)
            elif isinstance(op, unit.Children):
                await model.run_children(unit.runners(model, op, run_child))
                value = op.states
            else:
                raise TypeError("unknown operation %r" % (op,))
        except BaseException:
            error = sys.exc_info()


async def answer(units, i, round_name):
    with units.scope_fix():
        result, gen = units.body(i, round_name)
        await drive(units.model, gen)
    return (500 if result["error"] else 200), result


async def answer_route(svc, units, r):
    """r: ("unit", i, round_name) or ("error", status, message) -> (status, obj)."""
    if r[0] != "unit":
        return r[1], {"error": r[2]}
    try:
        return await answer(units, r[1], r[2])
    except Exception as exc:  # e.g. entering the variant's wrapper failed
        return svc.unit_failed(r[1], r[2], exc)


async def dispatch(svc, units, method, target):
    """service.Service.answer for coroutines -> (status, obj, after)."""
    r = svc.route(method, target)
    if r[0] != "unit":
        return svc.admin(r)
    status, obj = await answer_route(svc, units, r)
    return status, obj, None


async def read_request(reader):
    """-> (method, target); the body is read and ignored. Raises ValueError,
    asyncio.TimeoutError or asyncio.IncompleteReadError."""
    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
    parts = line.decode("latin-1").split()
    if len(parts) < 2:
        raise ValueError("bad request line %r" % line[:80])
    length = 0
    for _ in range(MAX_HEADER_LINES):
        header = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        if header in (b"\r\n", b"\n", b""):
            break
        key, _, value = header.decode("latin-1").partition(":")
        if key.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if length > 0:
        await asyncio.wait_for(reader.readexactly(min(length, MAX_BODY)), READ_TIMEOUT)
    return parts[0].upper(), parts[1]


def http_handler(svc, units):
    """A connection handler for asyncio.start_server: one request, a JSON
    answer (HTTP/1.0, Connection: close), then close."""

    async def handle_connection(reader, writer):
        peer = writer.get_extra_info("peername")
        status, method, target = 400, "-", "-"
        try:
            try:
                method, target = await read_request(reader)
            except (ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                writer.write(httpjson.response_bytes(400, {"error": one_line(exc)}))
                await writer.drain()
                return
            status, obj, after = await dispatch(svc, units, method, target)
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

    return handle_connection


def run_main(serve, *args):
    """serve(*args) (a coroutine function) on a new event loop, until the process exits
    (POST /shutdown, a watchdog); Ctrl-C closes the client and exits 0."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(serve(*args))
    except KeyboardInterrupt:
        lifecycle.close_and_exit("KeyboardInterrupt")


async def serve_uvicorn(app_id, application, port, what):
    """uvicorn's Server.serve() for the ASGI `application` on a socket bound here
    (lifecycle.bind_loopback: a busy port is the contract's exit 1), in the running
    loop; logs "uvicorn <version> serving <what> on 127.0.0.1:PORT"."""
    import uvicorn

    sock = lifecycle.bind_loopback(app_id, port)
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    log("uvicorn %s serving %s on 127.0.0.1:%d" % (getattr(uvicorn, "__version__", "?"), what, sock.getsockname()[1]))
    await server.serve(sockets=[sock])
    lifecycle.close_and_exit("uvicorn stopped")

"""The Deferred flavour of the unit runner (Twisted), and twisted.web glue.

  drive(model, gen, binding=None) -> Deferred
      Runs an operation generator (_common.unit) under
      `defer.inlineCallbacks`: a Wait yields the barrier's Deferred, a
      Children op yields model.run_children(runners) (e.g. a DeferredList).
      With a `binding` (a zero-argument callable returning a context
      manager), EVERY resumption of the generator runs inside a fresh
      `with binding():`, and so does starting the operation it yielded;
      children started there are given model.child_binding() (when the
      model has it), computed right before each child starts. That is how a
      per-request fix is made to hold across a reactor that resumes every
      unit on one thread (see apps/twisted).
  resource(svc, run_unit) -> a twisted.web Resource answering every route;
      run_unit(i, round_name) -> Deferred firing with the result dict.

Twisted is imported lazily (an app imports it after checking its command
line). Valid Python 2.7 and 3.6+.
"""
from __future__ import absolute_import, print_function

import sys

from _common import httpjson, sdk, unit
from _common.log import log


class _Nothing(object):
    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        return False


_NOTHING = _Nothing()


def _perform(model, op):
    if isinstance(op, unit.Wait):
        return op.barrier.wait(op.timeout)
    if isinstance(op, unit.Children):
        child_binding = getattr(model, "child_binding", None)

        def drive_child(model_, gen):
            return drive(model_, gen, child_binding() if child_binding is not None else None)

        d = model.run_children(unit.runners(model, op, drive_child))
        return d.addCallback(lambda _: op.states)
    raise TypeError("unknown operation %r" % (op,))


def _steps(model, gen, binding):
    """The generator inlineCallbacks drives: it performs what `gen` yields
    and sends (or throws) the outcome back. (No `yield from`: Python 2.7.)"""
    from twisted.internet import defer

    value, error = None, None
    while True:
        with (binding() if binding is not None else _NOTHING):
            try:
                op = unit.resume(gen, value, error)
            except StopIteration:
                return
            try:
                pending = _perform(model, op)
            except Exception:
                pending = defer.fail()
        value, error = None, None
        try:
            value = yield pending
        except GeneratorExit:
            gen.close()
            raise
        except BaseException:  # a failed Deferred, thrown in by inlineCallbacks
            error = sys.exc_info()


def drive(model, gen, binding=None):
    from twisted.internet import defer

    return defer.inlineCallbacks(_steps)(model, gen, binding)


def resource(svc, run_unit):
    from twisted.internet import defer
    from twisted.web import resource as web_resource
    from twisted.web import server

    def send(request, status, obj, gone):
        if gone:
            log("http %s: client went away before the answer" % (request.uri,))
            return
        body = httpjson.json_body(obj)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", str(len(body)).encode("ascii"))
        request.setHeader(b"connection", b"close")
        request.write(body)
        request.finish()
        log("http %s %s -> %d" % (request.method.decode("ascii"), request.uri.decode("latin-1"), status))

    def render(request, method):
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        r = svc.route(method, request.uri.decode("latin-1"))
        if r[0] != "unit":
            status, obj, after = svc.admin(r)
            send(request, status, obj, gone)
            if after is not None:
                after()
            return server.NOT_DONE_YET
        i, round_name = r[1], r[2]
        try:
            d = run_unit(i, round_name)
        except Exception as exc:  # e.g. making the variant's binding failed
            d = defer.succeed(svc.unit_failed(i, round_name, exc)[1])

        def failed(failure):
            log("unit-%d: %s round failed: %s" % (i, round_name, failure.getTraceback()))
            result = sdk.new_result(i, round_name, svc.variant)
            result["error"] = " ".join(failure.getErrorMessage().split()) or repr(failure.value)
            return result

        d.addErrback(failed)
        d.addCallback(lambda result: send(request, 500 if result["error"] else 200, result, gone))
        d.addErrback(lambda f: log("unit-%d: answering failed: %s" % (i, f.getTraceback())))
        return server.NOT_DONE_YET

    class UnitResource(web_resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            return render(request, "GET")

        def render_POST(self, request):
            return render(request, "POST")

    return UnitResource()

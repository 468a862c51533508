"""The request layer, answered once for every app (apps/README.md).

    svc = Service(app_id, variant, units, extra_facts=None, shutdown=None, rounds=ROUNDS)
    svc.route(method, target)   -> httpjson.route(...) with this app's units and rounds
    svc.admin(r)                -> (status, obj, after) for a non-unit route:
                                   GET /facts (+ extra_facts()), GET /rss, GET /memory,
                                   GET /arrived (units at the normal barrier),
                                   POST /flush,
                                   POST /shutdown (after = shutdown, run once answered),
                                   and the JSON errors (404, 405, 400)
    svc.unit_failed(i, round, exc) -> (500, result): the unit failed outside its body
                                   (e.g. entering the variant's wrapper)
    svc.answer(method, target, run_unit) -> (status, obj, after), where
                                   run_unit(i, round_name) -> (status, result) blocks

The coroutine and Deferred flavours (aio.py, deferred.py) use route/admin/
unit_failed around their own run_unit. Valid Python 2.7 and 3.6-3.13.
"""
from __future__ import absolute_import, print_function

from _common import facts as facts_mod
from _common import httpjson, lifecycle, memory, sdk
from _common.log import log_exception, one_line


from _common.memory import rss_kib


def _rss():
    return {"rss_kib": rss_kib()}


def _arrivals():
    from _common import unit  # here: unit imports the SDK helpers, the service layer loads first
    return unit.arrived()


class Service(object):
    def __init__(self, app_id, variant, units, extra_facts=None, shutdown=None, rounds=httpjson.ROUNDS):
        self.app_id = app_id
        self.variant = variant
        self.units = units
        self.extra_facts = extra_facts
        self.shutdown = shutdown or lifecycle.exit_after_shutdown
        self.rounds = rounds

    def route(self, method, target):
        return httpjson.route(method, target, self.units, self.rounds)

    def facts(self):
        doc = facts_mod.facts(self.app_id, self.variant, self.units)
        if self.extra_facts is not None:
            doc.update(self.extra_facts())
        return doc

    def admin(self, r):
        kind = r[0]
        if kind == "error":
            return r[1], {"error": r[2]}, None
        probes = {"facts": (self.facts, "facts failed"), "rss": (_rss, "rss failed"),
                  "memory": (memory.sample, "memory probe failed"),
                  "arrived": (_arrivals, "arrived failed")}
        if kind in probes:
            read, failed = probes[kind]
            try:
                return 200, read(), None
            except Exception as exc:
                log_exception(failed)
                return 500, {"error": one_line(exc)}, None
        if kind == "flush":
            try:
                sdk.flush(timeout=5)  # on one-thread models this blocks everything (<= 5 s)
                return 200, {"flushed": True}, None
            except Exception as exc:
                log_exception("flush failed")
                return 500, {"flushed": False, "error": one_line(exc)}, None
        if kind == "shutdown":
            return 200, {"shutting_down": True}, self.shutdown
        return 404, {"error": "no route for %r" % (r,)}, None

    def unit_failed(self, i, round_name, exc):
        log_exception("unit-%d: %s round failed outside the body" % (i, round_name))
        result = sdk.new_result(i, round_name, self.variant)
        result["error"] = one_line(exc)
        return 500, result

    def answer(self, method, target, run_unit):
        r = self.route(method, target)
        if r[0] != "unit":
            return self.admin(r)
        i, round_name = r[1], r[2]
        try:
            status, result = run_unit(i, round_name)
        except Exception as exc:
            status, result = self.unit_failed(i, round_name, exc)
        return status, result, None

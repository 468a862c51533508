"""Reference app: a threaded server whose requests fan out to ONE shared
concurrent.futures.ThreadPoolExecutor (see apps/README.md for the contract).

Server: stdlib wsgiref + socketserver.ThreadingMixIn, one OS thread per
request (_common.threaded, like apps/threads). The pool is created once at start-up, as real
code does (`EXECUTOR = ThreadPoolExecutor(...)` next to the app), and every
request submits its C children to it and waits for all their results.

Pool size: C workers (--children), not N x C. A pool smaller than the peak
demand is what makes real pools interesting: its threads serve one request's
tasks, then the next request's. With C workers that reuse is deterministic:
the first unit to fan out starts all C worker threads (ThreadPoolExecutor
starts them lazily, inside `submit`, from the submitting request's thread),
and every later unit's children run on those same threads. C is also the
least that lets the C siblings overlap at their barrier. A unit submits its
C children under one lock, so each unit's children are contiguous in the
pool's FIFO queue and C workers can never be split between two units'
children (which would hold them all at the sibling barrier until it times
out). The lock orders submissions only; it touches no scope.

Barrier: threading.Condition (unit.ConditionBarrier). Children write tag
child.<i>.<k>, overlap at their sibling barrier and capture their own event
(`"children": "spawned"`): a child's write reaching another unit's event is
a scope leak, reaching its own parent's or a sibling's is children_bleed.

Variants (what wraps the callable handed to `submit`, made in the request
thread at submit time):
  plain            pool.submit(run)
  hub-clone, isolation-scope   the per-request fix around the unit (_common.variants)
  copy-context     pool.submit(contextvars.copy_context().run, run)
  hub-per-task     0.x/1.x: hub = Hub(Hub.current) at submit, `with hub:` in the worker
  fork-per-task    2.x: the submitter's isolation and current scopes forked at submit,
                   entered in the worker with use_isolation_scope/use_scope (what
                   ThreadingIntegration does for every submit from 2.41.0 on)
  propagate-hub    sentry_sdk.init(integrations=[ThreadingIntegration(propagate_hub=True)])

Python 3.6+ only (concurrent.futures' thread_name_prefix; copy-context needs
3.7's contextvars).
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sentry_sdk  # noqa: E402

from _common import cli, facts, lifecycle, sdk, service, threaded, unit  # noqa: E402
from _common.log import log  # noqa: E402

APP_ID = "thread-pool"
VARIANTS = ("plain", "hub-clone", "isolation-scope", "copy-context", "hub-per-task", "fork-per-task",
            "propagate-hub")
NEEDS = {
    "hub-per-task": ("Hub",),
    "fork-per-task": ("scope.use_isolation_scope", "scope.use_scope", "scope:Scope.fork"),
    "propagate-hub": ("integrations.threading.ThreadingIntegration",),
}
WRAPPED = ("threading.Thread.start", "concurrent.futures.ThreadPoolExecutor.submit")


def _plain(run):
    return run


def _ctx_run(ctx, run):
    return lambda: ctx.run(run)  # ctx copied in the request thread, at submit


def _hub_per_task(run):
    hub = sentry_sdk.Hub(sentry_sdk.Hub.current)  # in the request thread, at submit

    def task():
        with hub:
            return run()

    return task


def _fork_per_task(run):
    from sentry_sdk.scope import use_isolation_scope, use_scope

    isolation = sdk.scope_getter("get_isolation_scope")().fork()  # in the request thread, at submit
    current = sdk.scope_getter("get_current_scope")().fork()

    def task():
        with use_isolation_scope(isolation):
            with use_scope(current):
                return run()

    return task


def make_wrapper(variant):
    if variant == "copy-context":
        import contextvars

        return lambda run: _ctx_run(contextvars.copy_context(), run)
    return {"hub-per-task": _hub_per_task, "fork-per-task": _fork_per_task}.get(variant, _plain)


def _logged(run, wrapped):
    def task():
        log("%s runs on %s" % (run.name, threading.current_thread().name))
        return wrapped()

    return task


class PoolModel(object):
    """Children: every runner submitted to the ONE shared pool (under a lock,
    so a unit's children are contiguous in the queue), then all results; then
    the unit waits until every unit's children are done, so every request is
    still open while any pool task runs (where a task's span lands does not
    depend on which request finished first)."""

    barrier = unit.ConditionBarrier

    def __init__(self, pool, wrap, result_timeout, units, done_timeout):
        self.pool = pool
        self.wrap = wrap
        self.result_timeout = result_timeout
        self._submit_lock = threading.Lock()
        self._done = unit.ConditionBarrier(units)
        self._done_timeout = done_timeout

    def run_children(self, runners):
        with self._submit_lock:
            futures = [self.pool.submit(_logged(run, self.wrap(run))) for run in runners]
        for future in futures:
            future.result(timeout=self.result_timeout)  # re-raises a child's failure
        state, waited = self._done.wait(self._done_timeout)
        if state != "ok":
            log("children-done barrier timed out after %.2fs, continuing" % waited)


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv, NEEDS)
    if args.variant == "copy-context":
        try:
            import contextvars  # noqa: F401
        except ImportError as exc:
            cli.die(APP_ID, "variant copy-context needs contextvars (Python 3.7+): %s" % exc)
    lifecycle.log_start(args, (), (("pool_workers", args.children),))
    integrations = None
    if args.variant == "propagate-hub":
        from sentry_sdk.integrations.threading import ThreadingIntegration

        integrations = [ThreadingIntegration(propagate_hub=True)]
    sdk.init_or_die(APP_ID, args.dsn, integrations, " for variant %s" % args.variant)
    # The one shared pool, created at start-up; its threads start lazily on submit.
    pool = ThreadPoolExecutor(max_workers=args.children, thread_name_prefix="pool")
    timeout = args.barrier_timeout * (args.units + 1) + 5
    model = PoolModel(pool, make_wrapper(args.variant), timeout, args.units, timeout)
    units = unit.Units.from_args(model, args)
    extra = {"pool_workers": args.children, "wrap": args.variant}
    svc = service.Service(APP_ID, args.variant, args.units,
                          extra_facts=lambda: dict(extra, sdk_wrapped=facts.sdk_patched(WRAPPED)))
    threaded.serve(APP_ID, args.port, svc, lambda i, r: unit.answer_blocking(units, i, r),
                   "pool of %d workers" % args.children)


if __name__ == "__main__":
    main()

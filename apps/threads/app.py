"""Reference app: one OS thread per request (threading HTTP server).

Models a classic WSGI-style threaded server: each HTTP request is handled on
its own thread, so the SDK's per-thread (or per-thread context) state is what
should keep units apart. Variant: plain (no workaround).

Server: stdlib wsgiref + socketserver.ThreadingMixIn, a thread per request
(_common.threaded).
Barrier: threading.Condition (unit.ConditionBarrier). Children: the C child
spans one after another in the unit's own thread (unit.InlineModel).

Valid Python 2.7 and 3.6-3.13; stdlib only. See apps/README.md for the
contract and apps/threads/README.md for how to run it by hand.
"""
from __future__ import absolute_import, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import lifecycle, sdk, service, threaded, unit  # noqa: E402

APP_ID = "threads"
VARIANTS = ("plain",)


def main(argv=None):
    args = lifecycle.start_app(APP_ID, VARIANTS, argv)
    lifecycle.log_start(args)
    sdk.init_or_die(APP_ID, args.dsn)
    units = unit.Units.from_args(unit.InlineModel(), args)
    svc = service.Service(APP_ID, args.variant, args.units)
    threaded.serve(APP_ID, args.port, svc, lambda i, r: unit.answer_blocking(units, i, r))


if __name__ == "__main__":
    main()

"""The Flask application that gunicorn serves for apps/flask-gunicorn (`wsgiapp:app`).

Imported by gunicorn in the worker (preload_app is off), i.e. AFTER gunicorn's gevent worker has
monkeypatched the stdlib in init_process(). `sentry_sdk.init(..., integrations=[FlaskIntegration()])`
runs at the top of this module, before the Flask app is made: where Flask users put it.

The unit runs in the request's own thread or greenlet (_common.unit, blocking flavour) inside the
FlaskIntegration's transaction for the request (sdk.integration_transaction): the view opens its spans
in it, as user code does. Children run inline. The overlap, per worker class (CTXM_WORKER_CLASS):
  * gthread (1 worker, N threads) and gevent (1 worker, greenlets): N requests at once in one
    process, an N-party threading.Condition barrier (green under gevent's patching).
  * sync (1 worker): one request at a time, the N units one after another in the same process; the
    round's barrier is skipped. What can leak in a sync worker is a request's scope data reaching the
    NEXT request's event: concurrent requests of N sync workers live in N processes, which share no
    scope, so neither could the control round's one shared scope (the probe would be blind).
POST /shutdown answers, closes the client and sends SIGTERM to the gunicorn arbiter
(_common.gunicorn_launch.shutdown). Python 3 only.
"""
import os

from _common import facts, gunicorn_launch, httpjson, sdk, service, unit
from _common.log import log, one_line, set_prefix

ENV = os.environ
APP_ID = ENV.get("CTXM_APP_ID", "flask-gunicorn")
WORKER_CLASS = ENV.get("CTXM_WORKER_CLASS", "sync")
SEQUENTIAL = WORKER_CLASS == "sync"

set_prefix("%s worker" % APP_ID)

from sentry_sdk.integrations.flask import FlaskIntegration  # noqa: E402

log("worker booting (%s): patched=%s" % (WORKER_CLASS, facts.patched()))
try:
    sdk.init_sdk(ENV["CTXM_DSN"], integrations=[FlaskIntegration()])
except Exception as exc:
    line = "sentry_sdk.init failed in the worker: %s" % one_line(exc)
    log(line)
    if ENV.get("CTXM_STATUS_FILE"):
        with open(ENV["CTXM_STATUS_FILE"], "w") as fh:
            fh.write("2 " + line + "\n")
    raise RuntimeError(line)  # gunicorn: "Worker failed to boot"; gunicorn_conf.on_exit exits 2
_backend, _detail = facts.context_backend()
log("sentry-sdk %s initialised (FlaskIntegration): context_backend=%s (%s)" % (sdk.sdk_version(), _backend, _detail))

from flask import Flask, Response, request  # noqa: E402


class SkipBarrier(object):
    """One request at a time (the sync worker): nothing to wait for."""

    def __init__(self, parties, name=None):
        self.parties = parties

    def wait(self, timeout):
        return "skipped", 0.0


class FlaskModel(unit.InlineModel):
    def barrier(self, parties, name):
        return SkipBarrier(parties, name) if SEQUENTIAL else unit.ConditionBarrier(parties, name)

    def unit_transaction(self, name):
        return sdk.integration_transaction(name)


UNITS = unit.Units(FlaskModel(), int(ENV.get("CTXM_UNITS", "4")), int(ENV.get("CTXM_CHILDREN", "3")),
                   float(ENV.get("CTXM_BARRIER_TIMEOUT", "10")), ENV.get("CTXM_VARIANT", "plain"))
SERVICE = service.Service(APP_ID, UNITS.variant, UNITS.units, shutdown=gunicorn_launch.shutdown,
                          extra_facts=lambda: {"worker_class": WORKER_CLASS, "units_overlap": not SEQUENTIAL})

app = Flask(__name__)


def _dispatch():
    target = request.path + ("?" + request.query_string.decode("latin-1") if request.query_string else "")
    status, obj, after = SERVICE.answer(request.method, target, lambda i, r: unit.answer_blocking(UNITS, i, r))
    if after is not None:
        after()
    return Response(httpjson.json_body(obj), status=status, mimetype="application/json")


@app.route("/unit/<raw>", methods=["GET", "POST"])
def unit_view(raw):
    return _dispatch()


@app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE"])
@app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
def contract(path):
    return _dispatch()

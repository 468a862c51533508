"""Reference app: Celery tasks on a real Redis broker, the pool under test given as --route
(prefork, threads, gevent, eventlet, solo), the CeleryIntegration in the producer and the worker.

This process is the HTTP front and the PRODUCER (stdlib threaded WSGI server). Its children, each
SIGKILLed by the kernel if this process dies (PR_SET_PDEATHSIG) and stopped by /shutdown:
redis-server on a free loopback port (`--save '' --appendonly no`), and a real Celery worker
(`python -m celery -A worker worker -P <pool>`, apps/celery/worker.py: the SDK on `celeryd_init`).
GET /unit/<i>?round=normal: in a fresh per-request scope and a transaction `enqueue-unit-i`,
`unit_task.apply_async`; then BLPOP (bounded) the task's answer, returned with `producer` (that
transaction's trace and span ids: the judge checks that the task's transaction continues it).
GET /facts answers the WORKER's facts. See apps/celery/README.md. Python 3 only.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from _common import cli, lifecycle, sdk, service, variants, wsgi  # noqa: E402
from _common.log import log, one_line, set_prefix  # noqa: E402

APP_ID = "celery"
VARIANTS = ("plain", "no-propagation")  # no-propagation: the documented per-call opt-out
POOLS = ("prefork", "threads", "gevent", "eventlet", "solo")
POOL_LIBRARY, QUEUE = {"gevent": "gevent", "eventlet": "eventlet"}, "ctxm"
_children = []  # Popen objects, stopped in reverse order


def _die_with_pdeathsig():
    """In the child, before exec: SIGKILL when the front (our parent) dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the engine still kills the whole process group
        pass


def _descendants(pid):
    """The pids under pid (a prefork worker's pool children), from /proc; empty where there is none."""
    parents = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open("/proc/%s/stat" % entry) as fh:
                stat = fh.read()
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        except (ValueError, IndexError, OSError):
            continue
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def stop_children(grace=3.0):
    """SIGKILL the worker (with its pool children) and redis-server. They hold nothing left to lose:
    by /shutdown every unit has answered and the worker's client has flushed (or said it could not,
    and the harness waited for the events). A graceful stop costs time and nothing else: Celery's cold
    shutdown of a prefork pool took 1.5 s, redis-server's 0.4 s."""
    for proc in reversed(_children):
        if proc.poll() is None:
            for pid in [proc.pid] + _descendants(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    deadline = time.monotonic() + grace
    for proc in reversed(_children):
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log("child %d outlived SIGKILL for %.1fs" % (proc.pid, grace))


def fail(message, code=2):
    stop_children(1.0), lifecycle.fail_after_init(APP_ID, message, code)


def preflight(args):
    """The stack without the SDK: Celery, the pool's library, the pool itself, redis-server."""
    try:
        import celery
        from celery.concurrency import get_implementation
    except Exception as exc:
        cli.die_stack(APP_ID, "celery does not import", exc)
    if args.route in POOL_LIBRARY:
        try:
            __import__(POOL_LIBRARY[args.route])
        except Exception as exc:
            cli.die_stack(APP_ID, "Celery's %s pool needs %s, which does not import" % (args.route, args.route), exc)
    try:
        get_implementation(args.route)
    except Exception as exc:
        cli.die_stack(APP_ID, "Celery %s has no %s pool" % (celery.__version__, args.route), exc)
    server = shutil.which("redis-server")
    if server is None:
        cli.die(APP_ID, "the stack cannot run here without the SDK: redis-server is not installed "
                        "(apt-get install -y redis-server)", code=4)
    return celery.__version__, server


def start_redis(server):
    port = cli.check_port(APP_ID, 0)
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", "/tmp", "--loglevel", "warning"]
    log("starting %s" % " ".join(repr(a) if not a else a for a in argv))
    _children.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_pdeathsig))
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    deadline = time.monotonic() + 15
    while True:
        try:
            if client.ping():
                return "redis://127.0.0.1:%d/0" % port
        except redis.RedisError:
            pass
        if _children[-1].poll() is not None or time.monotonic() > deadline:
            fail("redis-server on port %d did not answer PING (exit %s)" % (port, _children[-1].poll()))
        time.sleep(0.05)


def start_worker(args, broker):
    env = dict(os.environ)
    env.update({"CTXM_BROKER": broker, "CTXM_DSN": args.dsn, "CTXM_POOL": args.route, "CTXM_QUEUE": QUEUE,
                "CTXM_UNITS": str(args.units), "CTXM_CHILDREN": str(args.children),
                "CTXM_BARRIER_TIMEOUT": repr(args.barrier_timeout), "CTXM_VARIANT": args.variant,
                "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE)] + [p for p in [env.get("PYTHONPATH")] if p])})
    # prefork with ONE child and solo: the N tasks run one after another in one process.
    concurrency = {"prefork": 1, "solo": 1}.get(args.route, args.units)
    argv = [sys.executable, "-u", "-m", "celery", "-A", "worker", "worker", "-P", args.route, "-c", str(concurrency),
            "-Q", QUEUE, "-n", "ctxm-%d@127.0.0.1" % os.getpid(), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
    log("starting the worker: %s" % " ".join(argv[2:]))
    worker = subprocess.Popen(argv, env=env, cwd=HERE, stdin=subprocess.DEVNULL, preexec_fn=_die_with_pdeathsig)
    _children.append(worker)


class Front(object):
    """The producer: sends tasks, waits for their answers on Redis."""

    def __init__(self, worker_module, broker, wait_s, variant):
        import redis

        self.worker = worker_module
        self.redis = redis.Redis.from_url(broker)
        self.wait_s = wait_s
        # The SDK's Celery page: this header makes the task "start its own trace".
        self.headers = {"sentry-propagate-traces": False} if variant == "no-propagation" else None

    def call(self, task, wait_s):
        key = "ctxm:reply:%s" % uuid.uuid4().hex
        task.apply_async(args=(key,))
        return self.wait(key, wait_s)

    def wait(self, key, wait_s):
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if _children[-1].poll() is not None:
                raise RuntimeError("the celery worker exited (code %s)" % _children[-1].poll())
            got = self.redis.blpop([key], timeout=1)
            if got is not None:
                return json.loads(got[1])
        raise RuntimeError("no answer from the worker within %.0fs" % wait_s)

    def run_unit(self, i, round_name):
        key = "ctxm:reply:%s" % uuid.uuid4().hex
        producer = None
        with request_scope():
            if round_name == "normal":
                with sdk.unit_transaction("enqueue-unit-%d" % i, op="http.server") as tx_name:
                    if tx_name is not None:
                        trace_id, span_id = sdk.current_span_ids()
                        producer = {"transaction": tx_name, "trace_id": trace_id, "span_id": span_id}
                    self.worker.unit_task.apply_async(args=(i, round_name, key), headers=self.headers)
            else:
                self.worker.unit_task.apply_async(args=(i, round_name, key))
        answer = self.wait(key, self.wait_s)
        result = answer["result"]
        if producer is not None:
            result["producer"] = producer
        return answer["status"], result


def request_scope():
    """What a web framework's integration gives each request: its own scope."""
    fix = "isolation-scope" if sdk.has_isolation_scope() else "hub-clone" if sdk.has_hub() else "plain"
    return variants.scope_fix(fix)


class CeleryService(service.Service):
    def __init__(self, front, worker_facts, args):
        service.Service.__init__(self, APP_ID, args.variant, args.units, shutdown=self.stop)
        self.front, self.worker_facts = front, worker_facts

    def facts(self):
        doc = dict(self.worker_facts)
        doc["producer"] = service.facts_mod.facts(APP_ID, self.variant, self.units)
        doc["producer"].pop("packages", None)
        return doc

    def admin(self, r):
        if r[0] != "flush":
            return service.Service.admin(self, r)
        # The worker's client too: that is where the units' events are. Its queue is drained only if
        # both flushes say so; otherwise the harness waits for the events instead of settling early.
        try:
            worker = self.front.call(self.front.worker.flush_task, 10)
        except Exception as exc:
            worker = {"flushed": False, "error": one_line(exc)}
        status, body, then = service.Service.admin(self, r)
        if not worker.get("flushed"):
            log("worker flush failed: %s" % worker.get("error"))
            body = dict(body, flushed=False, worker=worker)
        return status, body, then

    def stop(self):
        def run():
            time.sleep(0.05)
            stop_children()
            lifecycle.close_and_exit()

        threading.Thread(target=run, name="app-shutdown", daemon=True).start()


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads, request_queue_size = True, 128


class Handler(WSGIRequestHandler):
    log_message = staticmethod(lambda fmt, *fargs: log("http %s" % (fmt % fargs)))


def main(argv=None):
    set_prefix("celery front")
    args = cli.parse_args(APP_ID, VARIANTS, argv, routes=POOLS)
    variants.check_supported(APP_ID, args.variant)
    celery_version, server = preflight(args)
    # Bound (and listening) now, served once the worker is up: Redis and the worker open connections
    # before that, and an outgoing connection's ephemeral port can be this very port if it is not held
    # (seen twice: "cannot bind 127.0.0.1:P: Address already in use"). The harness retries /facts meanwhile.
    try:
        httpd = Server(("127.0.0.1", args.port), Handler)
    except Exception as exc:
        cli.die_bind(APP_ID, args.port, exc)
    lifecycle.start_watchdogs(args.max_seconds)
    lifecycle.log_start(args, [("celery", celery_version)], [("pool", args.route)])
    signal.signal(signal.SIGTERM, lambda *_: (stop_children(1.0), lifecycle.exit_now(0, "SIGTERM")))
    broker = start_redis(server)
    os.environ["CTXM_BROKER"] = broker
    import worker  # apps/celery/worker.py: the Celery app and its tasks (the front only sends them)

    sdk.init_or_die(APP_ID, args.dsn, integrations=worker.integrations(), die=lambda a, m: fail(m))
    start_worker(args, broker)
    front = Front(worker, broker, args.barrier_timeout * 2 + 8, args.variant)
    try:
        worker_facts = front.call(worker.facts_task, 45)
    except Exception as exc:
        fail("the %s worker did not start: %s" % (args.route, one_line(exc)))
    log("worker ready: pid %s, context_backend=%s" % (worker_facts.get("pid"), worker_facts.get("context_backend")))
    svc = CeleryService(front, worker_facts, args)
    httpd.set_app(wsgi.application(svc, front.run_unit, connection_close=False))
    log("listening on http://127.0.0.1:%d/ (producer; %s pool worker pid %s)"
        % (httpd.server_address[1], args.route, worker_facts.get("pid")))
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        stop_children(1.0)
        lifecycle.close_and_exit("KeyboardInterrupt")


if __name__ == "__main__":
    main()

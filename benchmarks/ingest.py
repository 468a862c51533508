"""Mock server ingest rate: the server in its own process pinned to one core, clients on the other."""
from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import threading
import time

ENVELOPE = (b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event","length":41}\n'
            b'{"message":"bench","level":"info","x":1}\n')


def _serve(ready, stop, core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    from matrix.sentry.server import MockSentryServer

    with MockSentryServer() as server:
        project = server.new_project()
        ready.put((server.port, server.public_key, project))
        stop.wait(300)
        ready.put(server.stats())


def _client(port: int, key: str, project: int, count: int, results: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ok = 0
    headers = {"Content-Type": "application/x-sentry-envelope",
               "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"}
    for _ in range(count):
        conn.request("POST", f"/api/{project}/envelope/", body=ENVELOPE, headers=headers)
        resp = conn.getresponse()
        resp.read()
        ok += resp.status == 200
    conn.close()
    results.append(ok)


def ingest_rate(clients: int = 8, per_client: int = 1500) -> dict:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    proc = ctx.Process(target=_serve, args=(ready, stop, cores[0]), daemon=True)
    proc.start()
    port, key, project = ready.get(timeout=30)
    if hasattr(os, "sched_setaffinity") and len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))
    try:
        results: list[int] = []
        threads = [threading.Thread(target=_client, args=(port, key, project, per_client, results)) for _ in range(clients)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.monotonic() - t
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cores))
        stop.set()
    stats = ready.get(timeout=30)
    proc.join(10)
    total = clients * per_client
    return {"envelopes": total, "clients": clients, "seconds": round(elapsed, 3),
            "envelopes_per_s": round(total / elapsed), "all_accepted": sum(results) == total == stats["envelopes_accepted"],
            "server_core": cores[0]}


if __name__ == "__main__":
    print(json.dumps(ingest_rate(), indent=1))

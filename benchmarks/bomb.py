"""The mock server under a gzip-bomb attack: memory, answers, and a normal client's latency.

The server runs in its own process (`python -m matrix.sentry --serve-seconds ...`), so its memory is
its own: peak RSS is VmHWM from /proc/<pid>/status, reset after start-up through /proc/<pid>/clear_refs,
and RSS (VmRSS) is read before and after the attack. N clients post one gzip bomb each at the same moment
(1 MB compressed that inflates to about 1 GiB), while one normal client keeps posting small gzip envelopes
and times each answer.

    python -m benchmarks.bomb [--bombs 40] [--bomb-mib 1] [--json]

Returns (and prints) a dict of figures; `nox -s bench` includes it. Nothing is asserted here: the test
`matrix/sentry/tests/test_bounded_memory.py` holds the targets.
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_bomb_cache: dict[int, bytes] = {}


def make_bomb(compressed_bytes: int) -> tuple[bytes, int]:
    """A gzip stream of zeros about `compressed_bytes` long; returns (bomb, its inflated size)."""
    if compressed_bytes not in _bomb_cache:
        block = b"\0" * (1 << 20)
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts, size, inflated = [], 0, 0
        while size < compressed_bytes:
            chunk = c.compress(block)
            parts.append(chunk)
            size += len(chunk)
            inflated += len(block)
        parts.append(c.flush())
        _bomb_cache[compressed_bytes] = b"".join(parts)
        _bomb_cache[-compressed_bytes] = inflated.to_bytes(8, "big")
    return _bomb_cache[compressed_bytes], int.from_bytes(_bomb_cache[-compressed_bytes], "big")


def _status_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Server:
    """`python -m matrix.sentry` in its own process; parses its URL and first DSN from stdout."""

    def __init__(self, seconds: float, extra: list[str] | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "matrix.sentry", "--serve-seconds", str(seconds),
                                      *(extra or [])], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        first = self.proc.stdout.readline()
        dsn_line = self.proc.stdout.readline()
        m = re.match(r"project (\d+): http://(\w+)@127\.0\.0\.1:(\d+)/\d+", dsn_line)
        if not first.startswith("mock sentry server at") or not m:
            self.stop()
            raise RuntimeError(f"the mock server did not start: {first!r} {dsn_line!r} {self.proc.stderr.read()[-500:]}")
        self.project, self.key, self.port = int(m.group(1)), m.group(2), int(m.group(3))
        self.pid = self.proc.pid

    def post(self, body: bytes, encoding: str | None = "gzip", timeout: float = 60) -> tuple[int, str, float]:
        headers = {"Content-Type": "application/x-sentry-envelope",
                   "X-Sentry-Auth": f"Sentry sentry_key={self.key}, sentry_version=7"}
        if encoding:
            headers["Content-Encoding"] = encoding
        t = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", f"/api/{self.project}/envelope/", body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace").strip()
            return resp.status, text, time.monotonic() - t
        except OSError as exc:
            return 0, f"{type(exc).__name__}: {exc}", time.monotonic() - t
        finally:
            conn.close()

    def stats(self) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


def normal_envelope() -> bytes:
    event_id = uuid.uuid4().hex
    event = json.dumps({"event_id": event_id, "message": "normal client", "level": "info"}).encode()
    raw = (json.dumps({"event_id": event_id}).encode() + b"\n"
           + json.dumps({"type": "event", "length": len(event)}).encode() + b"\n" + event + b"\n")
    return gzip.compress(raw)


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def bomb_attack(bombs: int = 40, bomb_mib: float = 1.0, normal_interval: float = 0.02,
                settle_timeout: float = 10.0, server_args: list[str] | None = None) -> dict:
    """Run the attack against a fresh server process and return the figures."""
    bomb, inflated = make_bomb(int(bomb_mib * (1 << 20)))
    server = Server(seconds=600, extra=server_args)
    try:
        for _ in range(50):  # warm up: threads, imports and the allocator's first arenas
            server.post(normal_envelope())
        time.sleep(0.3)
        baseline = _status_kib(server.pid)["VmRSS"]
        peak_reset = _reset_peak(server.pid)

        answers: list[tuple[int, str, float]] = []
        normal: list[tuple[int, float]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(bombs + 1)
        attack_over = threading.Event()

        def attacker() -> None:
            barrier.wait()
            result = server.post(bomb, timeout=120)
            with lock:
                answers.append(result)

        def normal_client() -> None:
            barrier.wait()
            while not attack_over.is_set():
                status, _, seconds = server.post(normal_envelope(), timeout=60)
                with lock:
                    normal.append((status, seconds))
                time.sleep(normal_interval)

        threads = [threading.Thread(target=attacker, daemon=True) for _ in range(bombs)]
        watcher = threading.Thread(target=normal_client, daemon=True)
        for t in threads:
            t.start()
        watcher.start()
        start = time.monotonic()
        for t in threads:
            t.join(180)
        attack_s = time.monotonic() - start
        attack_over.set()
        watcher.join(60)
        peak = _status_kib(server.pid)["VmHWM"]

        # RSS after the attack: give the allocator a moment, stop as soon as it is back near the baseline
        deadline = time.monotonic() + settle_timeout
        after = _status_kib(server.pid)["VmRSS"]
        while after > baseline + 20 * 1024 and time.monotonic() < deadline:
            time.sleep(0.2)
            after = _status_kib(server.pid)["VmRSS"]
        settle_s = settle_timeout - max(0.0, deadline - time.monotonic())
        stats = server.stats()
        still_ok = server.post(normal_envelope())[0] == 200
    finally:
        server.stop()

    statuses: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for status, text, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        reasons.setdefault(str(status), text[:200])
    latencies = sorted(s for _, s in normal)
    return {
        "bombs": bombs,
        "bomb_compressed_bytes": len(bomb),
        "bomb_inflated_bytes": inflated,
        "bomb_answers": dict(sorted(statuses.items())),
        "bomb_reasons": reasons,
        "bomb_answer_s_max": round(max(s for _, _, s in answers), 3),
        "attack_s": round(attack_s, 3),
        "baseline_rss_mib": _mib(baseline),
        "peak_rss_mib": _mib(peak),
        "peak_measured_from_reset": peak_reset,
        "after_rss_mib": _mib(after),
        "after_settle_s": round(settle_s, 2),
        "normal_requests": len(normal),
        "normal_ok": sum(1 for status, _ in normal if status == 200),
        "normal_latency_ms_median": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "normal_latency_ms_max": round(1000 * latencies[-1], 1) if latencies else None,
        "served_after_attack": still_ok,
        "server_rejected_by_status": stats.get("rejected_by_status"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bomb", description=__doc__.split("\n\n")[0])
    p.add_argument("--bombs", type=int, default=40)
    p.add_argument("--bomb-mib", type=float, default=1.0, help="compressed size of each bomb")
    p.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = p.parse_args(argv)
    figures = bomb_attack(args.bombs, args.bomb_mib)
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(summary(figures))
    return 0


def summary(f: dict) -> str:
    answers = ", ".join(f"{n}x {s}" for s, n in f["bomb_answers"].items())
    return (f"bomb attack: {f['bombs']} concurrent gzip bombs of {f['bomb_compressed_bytes'] / 2**20:.2f} MiB "
            f"(each inflates to {f['bomb_inflated_bytes'] / 2**30:.2f} GiB): answers {answers} in {f['attack_s']} s; "
            f"server RSS baseline {f['baseline_rss_mib']} MiB, peak {f['peak_rss_mib']} MiB, after "
            f"{f['after_rss_mib']} MiB ({f['after_settle_s']} s later); normal client during the attack: "
            f"{f['normal_ok']}/{f['normal_requests']} accepted, latency median {f['normal_latency_ms_median']} ms, "
            f"max {f['normal_latency_ms_max']} ms")


if __name__ == "__main__":
    sys.exit(main())

"""`nox -s bench`: figures and ratios for the harness's speed, written to results/bench.json.

1. cold and warm wall time of a fixed 12-cell slice (cold: empty env cache, warm package cache)
2. the harness's own overhead per cell (cell time minus the app's start, rounds, flush and stop)
3. env materialisation: the project's uv method vs nox's default (virtualenv + pip), same pins
4. the mock server's ingest rate, server pinned to one core, clients on the other
5. warm Docker image reuse per image (when an engine answers)
6. the mock server under 40 concurrent 1 MB gzip bombs (its own process): peak and after RSS, answers, and a
   normal client's latency during the attack (benchmarks/bomb.py; also `python -m benchmarks.bomb`)
7. bisect: cells a bisect over the whole SDK history of one line needed against its releases, and its wall time;
   the same figures for the committed results/history.json (benchmarks/bisect.py)
No thresholds are asserted here or in the tests: this prints what it measured.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SLICE = ["--only", "app=threads,asyncio", "--only", "python=3.11,3.12", "--only", "sentry-sdk=1.45.1,2.75.0",
         "--only", "variant=plain,asyncio-integration"]
PINS = ["sentry-sdk==2.75.0"]


def run_slice(cache: str, results: str) -> tuple[float, list[dict]]:
    env = dict(os.environ, MATRIX_CACHE=cache)
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "matrix", "run", *SLICE, "--backend", "venv", "--results", results],
                          cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(f"the slice failed: {proc.stderr[-2000:]}")
    with open(os.path.join(results, "matrix.json")) as fh:
        return wall, json.load(fh)["cells"]


def app_seconds(cache: str, cell_id: str) -> float:
    with open(os.path.join(cache, "records", cell_id, "attempt-1.json")) as fh:
        t = json.load(fh)["timings"]
    return sum(t.get(k, 0.0) for k in ("start_s", "normal_s", "control_s", "delivery_s", "stop_s"))


def env_methods(interp) -> dict:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        from matrix.backends import venv

        saved, venv.CACHE_DIR = venv.CACHE_DIR, tmp  # a cold env cache, the package cache stays warm
        times = []
        for _ in range(3):
            shutil.rmtree(os.path.join(tmp, "envs"), ignore_errors=True)
            t = time.monotonic()
            venv.prepare_env(interp, PINS)
            times.append(time.monotonic() - t)
        figures["uv_env_s"] = round(statistics.median(times), 3)
        t = time.monotonic()
        env = venv.prepare_env(interp, PINS)
        figures["cached_env_s"] = round(time.monotonic() - t, 4)
        assert not env.created
        times = []
        for i in range(3):
            target = os.path.join(tmp, f"nox-default-{i}")
            t = time.monotonic()
            subprocess.run([sys.executable, "-m", "virtualenv", "-q", "-p", interp.path, target], check=True)
            subprocess.run([os.path.join(target, "bin", "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", *PINS], check=True)
            times.append(time.monotonic() - t)
        figures["virtualenv_pip_s"] = round(statistics.median(times), 3)
        figures["ratio_virtualenv_pip_over_uv"] = round(figures["virtualenv_pip_s"] / figures["uv_env_s"], 1)
        venv.CACHE_DIR = saved
    return figures


def docker_reuse(interp) -> dict:
    try:
        from matrix.backends.docker.cell_images import prepare_image
        from matrix.backends.docker.engine import engine_available
    except ImportError:
        return {"docker": "not available"}
    if engine_available() is None:
        return {"docker": "no engine answers"}
    prepare_image(interp, PINS)  # make sure it exists
    times = []
    for _ in range(5):
        t = time.monotonic()
        env = prepare_image(interp, PINS)
        times.append(time.monotonic() - t)
        assert not env.created
    return {"docker_warm_image_reuse_s": round(statistics.median(times), 3)}


def main() -> int:
    from benchmarks.bomb import bomb_attack, summary as bomb_summary
    from benchmarks.ingest import ingest_rate
    from matrix.backends.interpreters import discover

    interps = discover()
    interp = interps.get("3.11") or interps[sorted(interps)[-1]]
    out: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                             "python": platform.python_version()},
                 "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                 "command": "nox -s bench"}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as results:
        cold, _ = run_slice(cache, results)
        warm, cells = run_slice(cache, results)
        app = [app_seconds(cache, c["id"]) for c in cells]
        overhead = [c["duration_s"] - a for c, a in zip(cells, app)]
        jobs = os.cpu_count() or 2
        out["slice"] = {
            "cells": len(cells), "cold_s": round(cold, 2), "warm_s": round(warm, 2),
            "apps_own_s_sum": round(sum(app), 2),
            "warm_over_apps_per_core": round(warm / (sum(app) / jobs), 2),
            "harness_overhead_per_cell_s": round(statistics.mean(overhead), 3),
            "harness_overhead_per_cell_max_s": round(max(overhead), 3),
            "process_startup_and_plan_s": round(warm - sum(c["duration_s"] for c in cells) / jobs, 2),
        }
    out["env"] = env_methods(interp)
    out["mock_server"] = ingest_rate()
    out["bomb_attack"] = bomb_attack()
    out["docker"] = docker_reuse(interp)
    from benchmarks import bisect as bisect_bench

    out["bisect"] = bisect_bench.bench()
    with open(os.path.join(REPO, "results", "bench.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    s, e, m = out["slice"], out["env"], out["mock_server"]
    print(f"12-cell slice: cold {s['cold_s']} s, warm {s['warm_s']} s; apps' own time {s['apps_own_s_sum']} s "
          f"-> warm / (apps / {jobs} cores) = {s['warm_over_apps_per_core']}x")
    print(f"harness overhead per cell: mean {s['harness_overhead_per_cell_s']} s, max {s['harness_overhead_per_cell_max_s']} s")
    print(f"env for {PINS[0]}: uv {e['uv_env_s']} s, cached {e['cached_env_s']} s, virtualenv+pip {e['virtualenv_pip_s']} s "
          f"-> {e['ratio_virtualenv_pip_over_uv']}x faster")
    print(f"mock server ingest: {m['envelopes_per_s']} envelopes/s on one core ({m['envelopes']} envelopes, "
          f"{m['clients']} clients, all accepted: {m['all_accepted']})")
    print(bomb_summary(out["bomb_attack"]))
    print(f"docker: {out['docker']}")
    print(bisect_bench.summary(out["bisect"]))
    print("wrote results/bench.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

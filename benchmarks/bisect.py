"""Bisect figures for `nox -s bench` (also `python -m benchmarks.bisect`):

1. a real bisect over the whole SDK history of one line (default `threads/plain/py3.12/sentry-sdk-*`, every
   release PyPI lists): cells measured and app runs against the number of releases, and its wall time
   (environments from the normal cache: warm once `nox -s history` or an earlier bench built them);
2. the committed results/history.json: the same figures over every line of `nox -s history`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = "threads/plain/py3.12/sentry-sdk-*"


def bench_bisect(line: str = LINE, backend: str = "venv") -> dict:
    with tempfile.TemporaryDirectory() as out:
        t = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "matrix", "bisect", line, "--backend", backend, "--out", out],
                              cwd=REPO, capture_output=True, text=True)
        wall = time.monotonic() - t
        if proc.returncode != 0:
            return {"line": line, "error": (proc.stderr or proc.stdout)[-500:]}
        with open(os.path.join(out, "bisect.json")) as fh:
            doc = json.load(fh)
    d = doc["lines"][0]
    return {"line": line, "backend": backend, "releases": d["releases"], "measurable": d["measurable"],
            "cells": d["cells"], "app_runs": d["app_runs"], "boundaries": len(d["boundaries"]),
            "cells_per_release": round(d["cells"] / max(1, d["measurable"]), 3),
            "wall_s": round(wall, 1), "stride": d["stride"], "repeats": d["repeats"]}


def history_figures(path: str = os.path.join(REPO, "results", "history.json")) -> dict:
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return {"error": "no results/history.json (run `nox -s history`)"}
    sdk = [d for d in doc["lines"] if d["package"] == "sentry-sdk"]
    t = doc["totals"]
    return {"command": doc["command"], "complete": doc["complete"], "lines": t["lines"], "done": t["done"],
            "cells": t["cells"], "app_runs": t["app_runs"], "measurable_releases": t["measurable"],
            "cells_per_release": round(t["cells"] / max(1, t["measurable"]), 3), "boundaries": t["boundaries"],
            "wall_s": doc.get("wall_s"),
            "sdk_lines": len(sdk), "sdk_cells": sum(d["cells"] for d in sdk),
            "sdk_measurable_releases": sum(d["measurable"] for d in sdk),
            "sdk_cells_per_line_mean": round(sum(d["cells"] for d in sdk) / max(1, len(sdk)), 1)}


def summary(figures: dict) -> str:
    b, h = figures.get("line", {}), figures.get("history", {})
    lines = []
    if "error" in b:
        lines.append(f"bisect {b.get('line')}: failed: {b['error']}")
    elif b:
        lines.append(f"bisect {b['line']}: {b['cells']} cells ({b['app_runs']} app runs, {b['boundaries']} boundaries) "
                     f"for {b['measurable']} releases ({b['cells_per_release']} per release) in {b['wall_s']} s")
    if "error" in h:
        lines.append(f"history: {h['error']}")
    elif h:
        lines.append(f"history ({h['command']}{'' if h['complete'] else ', partial'}): {h['cells']} cells "
                     f"({h['app_runs']} app runs) for {h['measurable_releases']} releases over {h['done']} lines "
                     f"({h['cells_per_release']} per release), {h['boundaries']} boundaries"
                     + (f", wall {h['wall_s'] / 60:.0f} min" if h.get("wall_s") else ""))
    return "\n".join(lines)


def bench() -> dict:
    return {"line": bench_bisect(), "history": history_figures()}


if __name__ == "__main__":
    figures = bench()
    print(json.dumps(figures, indent=1))
    print(summary(figures))

"""Memory stays bounded under a gzip-bomb attack: the server in its own process, 40 bombs at once.

The figures come from benchmarks/bomb.py (the same code `nox -s bench` reports): the server process's peak
RSS (VmHWM, reset after start-up) and its RSS afterwards, every bomb's answer, and a normal client that
keeps sending small gzip envelopes during the attack.
"""
from __future__ import annotations

import os

import pytest

from benchmarks.bomb import bomb_attack


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from Linux /proc")
def test_forty_concurrent_gzip_bombs() -> None:
    f = bomb_attack(bombs=40, bomb_mib=1.0)
    print(f)
    assert f["bomb_compressed_bytes"] >= 1 << 20 and f["bomb_inflated_bytes"] >= 1 << 30
    # every bomb is refused: 413 once it inflates past the limit (503 would mean refused for concurrency)
    assert set(f["bomb_answers"]) <= {"413", "503"}, f
    assert sum(f["bomb_answers"].values()) == 40, f
    assert "decompresses to more than the limit" in f["bomb_reasons"]["413"]
    if "503" in f["bomb_reasons"]:
        assert f["bomb_reasons"]["503"].startswith("busy: ")
    assert f["peak_measured_from_reset"]
    assert f["peak_rss_mib"] <= 200, f
    assert f["after_rss_mib"] <= f["baseline_rss_mib"] + 20, f
    # the normal client was served during the attack, and the server still serves afterwards
    assert f["normal_requests"] >= 1 and f["normal_ok"] == f["normal_requests"], f
    assert f["normal_latency_ms_max"] < 5000, f
    assert f["served_after_attack"]
    assert f["server_rejected_by_status"] == f["bomb_answers"]  # nothing else was refused

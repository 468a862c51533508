"""The bench's assessment of its targets (pure): met, or missed by how much and why."""
from benchmarks.bench import assess


def test_targets_met_and_missed_say_by_how_much_and_why():
    out = {"runs": [{"backend": "venv", "size": "default", "shard": None, "ran": 595, "wall_s": 315.0,
                     "over_apps_per_core": 1.03}],
           "env": {"uv_speedup": 6.6, "steps": 2}}
    found = {a["target"]: a for a in assess(out)}
    wall = found["default size on venv, warm caches (s)"]
    assert wall["met"] is False and wall["note"].startswith("missed by 1.75x")
    assert "595 cells, not the 329" in wall["note"] and "174 s at 329" in wall["note"]
    assert found["default size on venv: wall / (apps' own time / cores)"]["met"] is True
    uv = found["uv against virtualenv + pip for a heavy cell (x faster)"]
    assert uv["met"] is False and "2.3x short" in uv["note"]


def test_an_unmeasured_target_is_said_so():
    found = assess({"runs": [], "env": {}})
    assert [a["target"] for a in found if a["met"] is None] == [
        "full size, warm caches (s): run with --full", "full size shard of 4 (s): run with --full",
        "uv against virtualenv + pip for a heavy cell (x faster)"]
    assert all(a["note"] == "not measured" for a in found)

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


def test_runs_this_bench_did_not_measure_are_carried_from_the_one_before_and_marked(tmp_path):
    import json

    from benchmarks.bench import carried_runs

    before = {"generated_at": "2026-12-02T07:00:00+00:00", "command": "nox -s bench -- --full",
              "runs": [{"backend": "venv", "size": "default", "shard": None, "ran": 598, "wall_s": 397.0},
                       {"backend": "venv", "size": "full", "shard": None, "ran": 2696, "wall_s": 1304.0,
                        "over_apps_per_core": 1.04},
                       {"backend": "venv", "size": "full", "shard": "1/4", "ran": 636, "wall_s": 331.0},
                       {"backend": "docker", "size": "full", "shard": None, "error": "engine gone"}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(before))
    carried = carried_runs(str(path), {("venv", "default"), ("docker", "default")})
    assert [(r["size"], r["shard"]) for r in carried] == [("full", None), ("full", "1/4")]
    assert all(r["carried_from"] == {"generated_at": before["generated_at"], "command": before["command"]}
               for r in carried)
    found = {a["target"]: a for a in assess({"runs": carried, "env": {}})}
    assert found["full (carried from the bench of 2026-12-02T07:00:00+00:00) size on venv, warm caches (s)"]["met"] is False
    assert "full size shard 1/4 on venv (carried from 2026-12-02T07:00:00+00:00) (s)" in found
    assert carried_runs(str(tmp_path / "missing.json"), set()) == []
    again = carried_runs(str(path), {("venv", "full")})  # the default size on venv is carried this time
    assert [(r["size"], r["shard"]) for r in again] == [("default", None)]

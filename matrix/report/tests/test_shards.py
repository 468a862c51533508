"""Strict merge: every shard of one run, once, from one lock and commit."""
import copy

from matrix.report.shards import check_shards, merged_run


def shard(k, n=3, **run):
    base = {"size": "full", "shard": {"index": k, "total": n}, "lock": "a" * 64, "commit": "b" * 40,
            "backend": "docker", "repeat": 3, "units": 4, "filters": [], "sdk_source": None, "dirty": False}
    base.update(run)
    return (f"shard-{k}/matrix.json", {"run": base, "cells": [{"id": f"threads/plain/py3.12/sentry-sdk-{k}.0.0"}]})


def test_all_shards_of_one_run_merge():
    shards = [shard(1), shard(2), shard(3)]
    assert check_shards(shards, "a" * 64) is None
    run = merged_run(shards)
    assert run["shards"] == 3 and run["shard"] is None and run["lock"] == "a" * 64


def test_refusals_are_one_line_naming_the_problem():
    cases = [
        ([shard(1), shard(3)], "shard 2/3 missing (given: 1/3, 3/3)"),
        ([shard(1), shard(2), shard(2), shard(3)], "shard 2/3 given 2 times"),
        ([shard(1), shard(2, commit="c" * 40), shard(3)], "different commit (cccccccccccc) than shard 1/3 (bbbbbbbbbbbb)"),
        ([shard(1), shard(2, lock="d" * 64), shard(3)], "different lock"),
        ([shard(1), shard(2, size="default"), shard(3)], "different size"),
        ([shard(1), shard(2, filters=["--only app=x"]), shard(3)], "different filters"),
        ([shard(1), shard(2, n=4), shard(3)], "shards of different runs"),
        ([("old.json", {"cells": []})], "old.json is not a shard"),
    ]
    for shards, needle in cases:
        problem = check_shards(shards, "a" * 64)
        assert problem and needle in problem and "\n" not in problem, (needle, problem)


def test_the_checkout_must_have_the_lock_the_shards_ran_on():
    assert "this checkout has lock" in check_shards([shard(1, n=1)], "e" * 64)


def test_a_cell_in_two_shards_is_refused():
    one, two = shard(1, n=2), shard(2, n=2)
    two = (two[0], copy.deepcopy(two[1]))
    two[1]["cells"] = one[1]["cells"]
    assert "is in two shards" in check_shards([one, two], "a" * 64)


def test_dirty_means_the_code_differs_not_the_results_the_run_writes(tmp_path):
    import subprocess

    from matrix.report.runinfo import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "matrix.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "init")
    assert git_commit(str(tmp_path))[1] is False
    (tmp_path / "results" / "matrix.json").write_text('{"cells": []}')
    assert git_commit(str(tmp_path))[1] is False  # the run rewrote its own results
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(str(tmp_path))[1] is True


def test_a_run_records_the_commit_it_started_from_not_one_made_while_it_ran(tmp_path):
    import subprocess

    from matrix.report.runinfo import git_commit, run_record

    def git(*args):
        return subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
                              cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-qm", "first")
    started = git_commit(str(tmp_path))  # what cmd_run takes before its cells run
    (tmp_path / "code.py").write_text("x = 2\n")
    git("commit", "-qam", "second, while the run runs")
    record = run_record("full", "docker", (1, 4), checkout=started)
    assert record["commit"] == started[0] != git("rev-parse", "HEAD")
    assert record["shard"] == {"index": 1, "total": 4} and record["dirty"] is False

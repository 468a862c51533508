"""The pre-release lane's SDK source: parsing, resolving (with stand-ins for PyPI and git) and the swap."""
from dataclasses import dataclass

import pytest
from packaging.version import Version

from matrix.backends.install import InstallStep, era_cutoffs, installer_args
from matrix.plan.cells import Cell
from matrix.plan.sources import SourceError, apply_sdk_source, lane_kind, resolve_sdk_source, split_git
from matrix.report.runinfo import folder_for

SHA = "6270a3fcdc53f2c9f8feddfe2ba4cc392314ceff"


@dataclass
class Rel:
    version: str
    yanked: bool = False
    uploaded: object = None

    @property
    def parsed(self):
        return Version(self.version)


def test_split_git_keeps_user_names_and_defaults_to_head():
    assert split_git("git+https://github.com/getsentry/sentry-python@master") == (
        "https://github.com/getsentry/sentry-python", "master")
    assert split_git("git+file:///tmp/sdk") == ("file:///tmp/sdk", "HEAD")
    assert split_git("git+ssh://git@github.com/getsentry/sentry-python") == (
        "ssh://git@github.com/getsentry/sentry-python", "HEAD")


def test_a_git_source_is_pinned_to_the_commit_and_labelled_with_it():
    source = resolve_sdk_source("git+file:///tmp/sdk@master", "2.75.0", resolve_ref=lambda url, ref: SHA)
    assert source.kind == "git" and source.label == "2.75.0+git.6270a3fcdc"
    assert source.requirement == f"sentry-sdk@git+file:///tmp/sdk@{SHA}"


def test_pre_takes_the_newest_prerelease_above_the_newest_release_or_nothing():
    import datetime

    day = datetime.datetime(2026, 1, 2)
    rels = [Rel("2.75.0", uploaded=day), Rel("2.76.0a1", uploaded=day), Rel("2.76.0b1", yanked=True, uploaded=day),
            Rel("2.70.0rc1", uploaded=day)]
    source = resolve_sdk_source("pre", "2.75.0", release_list=lambda: rels)
    assert (source.kind, source.label, source.requirement) == ("pypi", "2.76.0a1", "sentry-sdk==2.76.0a1")
    assert resolve_sdk_source("pre", "2.76.0", release_list=lambda: rels) is None


@pytest.mark.parametrize("spec", ["main", "https://github.com/x/y", "sentry-sdk==2.76.0a1"])
def test_other_sources_are_refused_in_one_line(spec):
    with pytest.raises(SourceError, match="expected `pre`"):
        lane_kind(spec)


def test_the_lane_keeps_the_newest_sdks_cells_and_swaps_the_sdk():
    cells = [Cell("threads", "plain", "3.12", (("sentry-sdk", v),)) for v in ("1.45.1", "2.75.0")]
    cells.append(Cell("gevent", "plain", "3.12", (("sentry-sdk", "2.75.0"), ("gevent", "26.9.0"))))
    source = resolve_sdk_source("git+file:///tmp/sdk", "2.75.0", resolve_ref=lambda url, ref: SHA)
    lane = apply_sdk_source(cells, source, "2.75.0")
    assert [c.id for c in lane] == ["threads/plain/py3.12/sentry-sdk-2.75.0+git.6270a3fcdc",
                                    "gevent/plain/py3.12/sentry-sdk-2.75.0+git.6270a3fcdc/gevent-26.9.0"]
    assert lane[1].pin_specs() == [source.requirement, "gevent==26.9.0"]


def test_the_installer_takes_a_lane_requirement_explicitly_and_without_a_date():
    req = f"sentry-sdk@git+file:///tmp/sdk@{SHA}"
    assert era_cutoffs([req], []) == {req: None}  # no PyPI lookup for a direct reference
    (git,) = installer_args("3.12", [InstallStep((req,), None)], [req])
    assert git[:2] == ["--prerelease", "if-necessary"] and git[-1] == req
    (pre,) = installer_args("3.12", [InstallStep(("sentry-sdk==2.76.0a1",), "2026-01-03T00:00:00Z")], [])
    assert "if-necessary" in pre
    (released,) = installer_args("3.12", [InstallStep(("sentry-sdk==2.75.0",), "2026-01-03T00:00:00Z")], [])
    assert released[2:4] == ["--prerelease", "disallow"]


def test_each_run_has_its_folder():
    assert folder_for("default") == "" and folder_for("full") == "full"
    assert folder_for("default", "git") == "prerelease/git" and folder_for("full", "pypi") == "prerelease/pypi/full"

"""Install plans: era-consistent steps, shared by both backends. Pure."""
from matrix.backends.install import InstallStep, installer_args, install_steps


def test_install_steps_are_era_consistent():
    cutoffs = {"sentry-sdk==2.75.0": "2026-10-22T00:00:00Z", "gevent==20.4.0": "2020-04-24T00:00:00Z",
               "eventlet==0.33.3": "2023-01-20T00:00:00Z"}
    steps = install_steps(["sentry-sdk==2.75.0", "gevent==20.4.0"], ["gunicorn"], cutoffs)
    # oldest pin first; the framework pin carries the unpinned requirements, in its own era
    assert steps == [InstallStep(("gevent==20.4.0", "gunicorn"), "2020-04-24T00:00:00Z"),
                     InstallStep(("sentry-sdk==2.75.0",), "2026-10-22T00:00:00Z")]
    only_sdk = install_steps(["sentry-sdk==2.75.0"], ["django"], cutoffs)
    assert only_sdk == [InstallStep(("sentry-sdk==2.75.0", "django"), "2026-10-22T00:00:00Z")]
    newest_framework = install_steps(["sentry-sdk==2.75.0", "gevent==20.4.0", "eventlet==0.33.3"], ["gunicorn<26"], cutoffs)
    assert newest_framework[1] == InstallStep(("eventlet==0.33.3", "gunicorn<26"), "2023-01-20T00:00:00Z")


def test_no_step_resolves_before_its_interpreter_existed():
    steps = install_steps(["sentry-sdk==0.19.5"], [], {"sentry-sdk==0.19.5": "2020-12-09T00:00:00Z"},
                          floor="2023-10-02T00:00:00Z")
    assert steps == [InstallStep(("sentry-sdk==0.19.5",), "2023-10-02T00:00:00Z")]


def test_installer_args_never_take_a_prerelease_and_build_no_gevent():
    steps = [InstallStep(("eventlet==0.33.3",), "2023-01-20T00:00:00Z"), InstallStep(("sentry-sdk==2.75.0",), None)]
    first, second = installer_args("3.12", steps, ["eventlet==0.33.3", "sentry-sdk==2.75.0"])
    assert first[:4] == ["--exclude-newer", "2023-01-20T00:00:00Z", "--prerelease", "disallow"]
    assert "--only-binary" in first and first[-1] == "eventlet==0.33.3"
    assert "--exclude-newer" not in second and second[-1] == "sentry-sdk==2.75.0"


def test_python_2_steps_cap_companions_as_constraints(monkeypatch):
    from datetime import datetime, timezone

    from matrix.axes import releases as rel_mod
    from matrix.backends import install

    def fake(name, refresh=False):
        return [rel_mod.Release(name, v, datetime(y, 1, 1, tzinfo=timezone.utc), None, False, ())
                for v, y in (("0.4.15", 2018), ("1.0.0", 2021))]

    monkeypatch.setattr(install, "releases", fake)
    (args,) = installer_args("2.7", [InstallStep(("gevent==1.4.0",), "2019-01-04T00:00:00Z")], ["gevent==1.4.0"])
    assert args == ["cap:greenlet<=0.4.15", "gevent==1.4.0"]

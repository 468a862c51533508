"""The mapping from a stack to the models it implies, and why; the rules file's validation."""
from __future__ import annotations

import os

import pytest

from matrix.axes.spec import load_axes
from matrix.check import inputs
from matrix.check.inputs import InputError
from matrix.check.models import ModelsError, imply, load_rules, parse_rules, parse_uses
from matrix.check.stack import build_stack

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
AXES = load_axes()
RULES = load_rules(AXES)


def stack(*pins: str, python: str = "3.12", direct: set[str] | None = None):
    built = build_stack([inputs.read_pins(list(pins))], python, AXES.pythons)
    built.direct = direct
    return built


def mapped(the_stack, uses=None):
    mapping = imply(the_stack, RULES, AXES, uses)
    return mapping, {m.app: m for m in mapping.implied}


def test_the_rules_file_loads_against_the_axes():
    assert {r.app for r in RULES.apps} >= set(AXES.apps)  # every app of the harness has a rule


def test_gunicorn_gevent_django():
    mapping, models = mapped(stack("django==3.0.14", "gunicorn==20.0.4", "gevent==1.4.0", "sentry-sdk==0.10.2",
                                   python="3.7"))
    counted = {app for app, m in models.items() if m.counted}
    assert counted == {"threads", "gevent", "django-gevent"}
    assert models["django-gevent"].why == "django + gunicorn + gevent → django-gevent (gunicorn -k gevent)"
    assert models["threads"].why.startswith("any stack → threads")
    # asyncio on every Python 3, but requirements cannot show concurrent tasks: shown, not counted
    assert not models["asyncio"].counted and models["asyncio"].condition.startswith("if you run concurrent asyncio")
    assert not models["asyncio-gevent"].counted and not models["thread-pool"].counted
    assert mapping.unmodelled == []


def test_uses_counts_a_conditional_model():
    _, models = mapped(stack("sentry-sdk==2.75.0"), parse_uses(["asyncio,thread-pool"], RULES, AXES))
    assert models["asyncio"].counted and models["thread-pool"].counted and models["asyncio"].condition == ""


def test_channels_covers_daphne_twisted():
    parsed = inputs.read_path(os.path.join(FIXTURES, "pipenv", "Pipfile.lock"))
    mapping, models = mapped(build_stack([parsed], None, AXES.pythons))
    assert models["channels"].counted and models["channels"].why.startswith("channels → channels")
    assert "twisted" not in models
    assert any(line.startswith("twisted → not twisted: daphne") for line in mapping.not_implied)
    assert models["channels"].routes == AXES.apps["channels"].routes  # every route is answered


def test_twisted_and_tornado_and_aiohttp():
    _, models = mapped(stack("twisted==24.7.0", "tornado==6.4", "aiohttp==3.10.11", "sentry-sdk==2.75.0"))
    assert {"twisted", "tornado", "aiohttp"} <= {app for app, m in models.items() if m.counted}


def test_a_dependency_of_a_dependency_is_not_counted():
    # uv.lock and the pyproject.toml beside poetry.lock/Pipfile.lock name the project's own dependencies
    _, models = mapped(stack("openai==1.0.0", "aiohttp==3.10.11", "sentry-sdk==2.75.0",
                             direct={"openai", "sentry-sdk"}))
    assert not models["aiohttp"].counted and "does not depend on it directly" in models["aiohttp"].condition


def test_python_range_of_the_app():
    mapping, models = mapped(stack("sentry-sdk==1.45.1", "gevent==22.10.2", python="2.7"))
    assert "asyncio" not in models and "thread-pool" not in models and "asyncio-gevent" not in models
    assert "gevent" in models and "threads" in models
    assert any("asyncio-gevent" in line and "not on Python 2.7" in line for line in mapping.not_implied)


def test_frameworks_without_a_model_get_one_line():
    mapping, _ = mapped(stack("quart==0.19.0", "sentry-sdk==2.75.0"))
    assert mapping.unmodelled == [("quart: Quart's request contexts on asyncio are not modelled; nearest model: aiohttp",
                                   True)]
    mapping, models = mapped(stack("fastapi==0.115.0", "starlette==0.40.0", "uvicorn==0.30.0", "sentry-sdk==2.75.0"))
    assert mapping.unmodelled == []  # starlette and uvicorn come with FastAPI, which has a model
    assert models["fastapi"].counted and (models["fastapi"].axes is None) == ("fastapi" not in AXES.apps)


def test_routes_that_need_a_package():
    rules = parse_rules({"apps": {"channels": {"when": ["channels"], "routes": {"websocket": ["websockets"]}}}},
                        tuple(AXES.apps))
    mapping = imply(stack("channels==4.3.2", "sentry-sdk==2.75.0"), rules, AXES)
    (channels,) = mapping.implied
    assert "websocket" not in channels.routes and "http-consumer" in channels.routes
    assert channels.route_notes == ["websocket: needs websockets (not in the stack)"]
    only = imply(stack("channels==4.3.2", "sentry-sdk==2.75.0"), rules, AXES,
                 parse_uses(["channels:async-view"], rules, AXES)).implied[0]
    assert only.routes == ("async-view",)


@pytest.mark.parametrize("data,message", [
    ({"apps": {"nosuch": {"always": True}}}, "apps.nosuch: not an app of the axes or the results schema; allowed:"),
    ({"apps": {"threads": {"always": True, "colour": "red"}}}, "apps.threads: unknown key(s) ['colour']; allowed:"),
    ({"apps": {"threads": {"always": True, "when": ["x"]}}}, "apps.threads: give exactly one of"),
    ({"apps": {"threads": {"when": "gevent"}}}, "apps.threads.when = 'gevent': expected a list of package names"),
    ({"unmodelled": {"quart": {"what": "x", "nearest": "nosuch"}}}, "unmodelled.quart.nearest = 'nosuch': not an app"),
    ({"models": {}}, "unknown top-level key(s) ['models']"),
])
def test_rules_errors_are_one_line(data, message):
    with pytest.raises(ModelsError) as exc:
        parse_rules(data, tuple(AXES.apps))
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_uses_errors():
    with pytest.raises(InputError, match="--uses nosuch: 'nosuch' is not a model; allowed: threads"):
        parse_uses(["nosuch"], RULES, AXES)
    with pytest.raises(InputError, match="'nope' is not a route of channels; allowed: http-consumer"):
        parse_uses(["channels:nope"], RULES, AXES)

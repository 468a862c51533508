"""Each input format, parsed from files written by the real tools (fixtures/): `uv lock`, `poetry lock`,
`pipenv lock`, `pip-compile --generate-hashes`, `uv pip compile --python-version`, `pip freeze`, and a
hand-written requirements file with -r and markers."""
from __future__ import annotations

import os

import pytest
from packaging.version import Version

from matrix.check import inputs
from matrix.check.inputs import InputError, poetry_constraint
from matrix.check.stack import build_stack

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
PYTHONS = ("2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


def fixture(*parts: str) -> str:
    return os.path.join(FIXTURES, *parts)


def stack_of(*parsed, python=None, running="3.11"):
    return build_stack(list(parsed), python, PYTHONS, running)


def versions(stack) -> dict[str, str | None]:
    return {name: package.version for name, package in stack.packages.items()}


def test_requirements_with_include_and_markers():
    stack = stack_of(inputs.read_path(fixture("requirements", "prod.txt"), requirements=True))
    # the Python comes from the header `uv pip compile` wrote into the included base.txt
    assert stack.python == "3.7" and "--python-version" in stack.python_from and "base.txt" in stack.python_from
    found = versions(stack)
    assert found["sentry-sdk"] == "0.10.2" and found["django"] == "3.0.14"  # from -r base.txt (hashes skipped)
    assert found["gunicorn"] == "20.0.4"
    assert found["gevent"] == "1.4.0" and found["greenlet"] == "0.4.15"  # python_version < "3.8"
    assert found["psycopg2-binary"] == "2.8.6"  # a per-requirement --hash option after the pin
    assert stack.packages["gevent"].origin.endswith("prod.txt:5")
    assert stack.packages["django"].origin.endswith("base.txt:10")


def test_requirements_markers_follow_the_chosen_python():
    stack = stack_of(inputs.read_path(fixture("requirements", "prod.txt"), requirements=True), python="3.9")
    found = versions(stack)
    assert found["gevent"] == "20.9.0" and "greenlet" not in found
    assert stack.python_from == "--python"


def test_pip_compile_output_with_hashes():
    stack = stack_of(inputs.read_path(fixture("requirements", "shop.txt")))
    assert stack.python == "3.11" and "pip-compile header" in stack.python_from
    found = versions(stack)
    assert found["django"] == "5.2.19" and found["gevent"] == "26.9.0" and found["gunicorn"] == "27.0.1"
    assert found["sentry-sdk"] == "2.75.0"  # pip-compile --strip-extras dropped [django]
    assert len(found) == 11


def test_pip_freeze_from_stdin_text():
    with open(fixture("freeze", "freeze.txt")) as fh:
        parsed = inputs.read_freeze(fh.read())
    stack = stack_of(parsed, running="3.12")
    assert stack.python == "3.12" and "interpreter running check" in stack.python_from
    found = versions(stack)
    assert found["tornado"] == "6.5.2" and found["sentry-sdk"] == "2.75.0" and found["requests"] == "2.34.2"
    assert any("editable" in note for note in stack.notes)  # -e /path/to/myapp: a local project, skipped
    assert "myapp" not in found


def test_uv_lock_project_dependencies_not_dev_groups():
    parsed = inputs.read_path(fixture("uv", "uv.lock"))
    assert parsed.kind == "uv.lock" and parsed.direct == {"django", "gevent", "gunicorn", "psycopg", "sentry-sdk"}
    stack = stack_of(parsed)
    # requires-python = ">=3.12" does not allow the running 3.11: the lowest Python the range allows
    assert stack.python == "3.12" and "requires-python" in stack.python_from
    found = versions(stack)
    assert found["gevent"] == "26.9.0" and found["sentry-sdk"] == "2.75.0" and found["greenlet"] == "3.5.6"
    assert "pytest" not in found and "pytest-django" not in found and "shop" not in found
    assert "psycopg-binary" in found  # psycopg[binary]: the extra's dependency is followed


def test_uv_lock_forks_per_python():
    parsed = inputs.read_path(fixture("uv-forks", "uv.lock"))
    on = {py: versions(stack_of(parsed, python=py)) for py in ("3.8", "3.9", "3.12")}
    assert on["3.8"]["twisted"] == "25.5.0" and on["3.9"]["twisted"] == "26.4.0" and on["3.12"]["twisted"] == "26.10.0"
    assert "django" not in on["3.8"] and on["3.12"]["django"] == "6.1.3"  # django; python_version >= '3.10'
    assert "pyopenssl" in on["3.12"]  # twisted[tls]
    assert "sphinx" not in on["3.12"] and "pytest" not in on["3.12"]  # an optional extra and a dev group
    assert stack_of(parsed, running="3.11").python == "3.11"  # >=3.8 allows the running interpreter


def test_poetry_lock_main_group_and_direct_from_pyproject():
    parsed = inputs.read_path(fixture("poetry", "poetry.lock"))
    assert parsed.direct == {"aiohttp", "sentry-sdk", "orjson"}
    stack = stack_of(parsed)
    assert stack.python == "3.11" and "^3.11" in stack.python_from
    found = versions(stack)
    assert found["aiohttp"] == "3.14.5" and found["sentry-sdk"] == "2.74.0"
    assert "pytest" not in found and "pytest-aiohttp" not in found
    assert any("only in other groups" in note for note in stack.notes)


def test_poetry_range_chooses_lowest_allowed_when_running_is_outside():
    parsed = inputs.read_path(fixture("poetry", "poetry.lock"))
    stack = stack_of(parsed, running="3.10")
    assert stack.python == "3.11" and "lowest Python" in stack.python_from


def test_pipfile_lock_default_section():
    parsed = inputs.read_path(fixture("pipenv", "Pipfile.lock"))
    assert parsed.direct == {"channels", "daphne", "django", "sentry-sdk"}
    stack = stack_of(parsed)
    assert stack.python == "3.12" and "python_version" in stack.python_from
    found = versions(stack)
    assert found["channels"] == "4.3.2" and found["twisted"] == "26.10.0" and found["daphne"] == "4.2.3"
    assert "pytest" not in found and "pytest-asyncio" not in found


def test_pyproject_pep621_and_poetry_tables():
    pep621 = stack_of(inputs.read_path(fixture("uv-forks", "pyproject.toml")), python="3.12")
    assert pep621.packages["sentry-sdk"].version is None and str(pep621.packages["sentry-sdk"].specifier) == ">=1.45"
    assert "django" in pep621.packages
    assert "django" not in stack_of(inputs.read_path(fixture("uv-forks", "pyproject.toml")), python="3.9").packages
    poetry = stack_of(inputs.read_path(fixture("poetry", "pyproject.toml")))
    assert poetry.packages["sentry-sdk"].version == "2.74.0"  # "2.74.0" in poetry means ==2.74.0
    assert str(poetry.packages["aiohttp"].specifier) == "<4,>=3.10"  # ^3.10


def test_pins_on_the_command_line():
    stack = stack_of(inputs.read_pins(["django==3.0.14", "gunicorn==20.0.4", "gevent==1.4.0", "sentry-sdk==0.10.2"]),
                     python="3.7")
    assert versions(stack) == {"django": "3.0.14", "gunicorn": "20.0.4", "gevent": "1.4.0", "sentry-sdk": "0.10.2"}


@pytest.mark.parametrize("text,allowed,refused", [
    ("^3.11", ["3.11.0", "3.13.2"], ["3.10.9", "4.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("~1.4", ["1.4.0", "1.4.9"], ["1.5.0"]),
    (">=3.8,<4.0", ["3.8.0"], ["4.0.0"]),
    ("3.9.* || >=3.11", ["3.9.1", "3.12.0"], ["3.10.0"]),
    ("*", ["2.7.18"], []),
])
def test_poetry_constraints(text, allowed, refused):
    test = poetry_constraint(text)
    assert all(test(Version(v)) for v in allowed) and not any(test(Version(v)) for v in refused)


# ---- bad input: one line naming the value and what is allowed -------------------------------------

def test_unparseable_line_names_file_and_line(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("sentry-sdk==2.75.0\ndjan go==3.0\n")
    with pytest.raises(InputError) as exc:
        inputs.read_path(str(path), requirements=True)
    message = str(exc.value)
    assert "requirements.txt:2" in message and "'djan go==3.0'" in message and "allowed" in message
    assert "\n" not in message


def test_unknown_format_and_unknown_option(tmp_path):
    with pytest.raises(InputError, match="unknown file format.*allowed: requirements"):
        inputs.read_path(str(tmp_path / "environment.yml"))
    with pytest.raises(InputError, match="pipenv lock"):
        inputs.read_path(str(tmp_path / "Pipfile"))
    path = tmp_path / "requirements.txt"
    path.write_text("--frobnicate\n")
    with pytest.raises(InputError, match="unknown option '--frobnicate'"):
        inputs.read_path(str(path), requirements=True)


def test_include_cycle_and_missing_include(tmp_path):
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("-r a.txt\n")
    with pytest.raises(InputError, match="includes itself"):
        inputs.read_path(str(tmp_path / "a.txt"), requirements=True)
    (tmp_path / "c.txt").write_text("-r nowhere.txt\n")
    with pytest.raises(InputError, match="nowhere.txt: no such file"):
        inputs.read_path(str(tmp_path / "c.txt"), requirements=True)


def test_two_pins_of_one_package_conflict(tmp_path):
    (tmp_path / "base.txt").write_text("django==3.0.14\n")
    (tmp_path / "prod.txt").write_text("-r base.txt\nDjango==3.2.0\n")
    with pytest.raises(InputError, match=r"django is pinned to 3\.0\.14 .*base\.txt:1.* and to 3\.2\.0 .*prod\.txt:2"):
        stack_of(inputs.read_path(str(tmp_path / "prod.txt"), requirements=True))


def test_constraints_narrow_only_what_is_required(tmp_path):
    (tmp_path / "constraints.txt").write_text("gevent==24.2.1\nflask==3.0.0\n")
    (tmp_path / "requirements.txt").write_text("-c constraints.txt\ngevent\nsentry-sdk==2.75.0\n")
    found = versions(stack_of(inputs.read_path(str(tmp_path / "requirements.txt"), requirements=True)))
    assert found == {"gevent": "24.2.1", "sentry-sdk": "2.75.0"}


def test_not_a_lock_file(tmp_path):
    (tmp_path / "uv.lock").write_text("version = 1\n")
    with pytest.raises(InputError, match="not a uv.lock"):
        inputs.read_path(str(tmp_path / "uv.lock"))
    (tmp_path / "Pipfile.lock").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        inputs.read_path(str(tmp_path / "Pipfile.lock"))

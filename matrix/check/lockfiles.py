"""Lock and project files: uv.lock, poetry.lock, Pipfile.lock and pyproject.toml (`[project]` or
`[tool.poetry]` dependencies), each read into a `Parsed` (matrix/check/parsed.py) whose `select(env)`
evaluates markers and lock forks once the Python is chosen."""
from __future__ import annotations

import json
import os
import sys
from typing import Callable

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (canonicalize_name)
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .parsed import (Entry, InputError, Parsed, PythonHint, _applies, _marker, _minor_hint, _pin, _read_text,
                     _requirement, _specifier_hint, _toml)


# ---- uv.lock ----------------------------------------------------------------------------------------

def read_uv_lock(path: str, shown: str | None = None) -> Parsed:
    """uv.lock: every package reachable from the project's own dependencies (not its dev groups), the
    markers of each edge and the lock's forks (resolution-markers) evaluated on the chosen Python."""
    shown = shown or path
    data = _toml(path, shown)
    packages = data.get("package")
    if not isinstance(packages, list) or not all(isinstance(p, dict) and "name" in p for p in packages):
        raise InputError(f"{shown}: no [[package]] tables with a name: not a uv.lock")
    by_name: dict[str, list[dict]] = {}
    for package in packages:
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    # the project itself (and workspace members): source = { virtual = "." } or { editable = "." }
    roots = [p for p in packages if set(p.get("source") or {}) & {"virtual", "editable"}]
    direct = {canonicalize_name(dep["name"]) for root in roots for dep in root.get("dependencies", [])}
    hint = _specifier_hint(data["requires-python"], f"requires-python in {shown}") \
        if "requires-python" in data else None

    def fork_applies(package: dict, env: dict[str, str]) -> bool:
        markers = package.get("resolution-markers") or []
        return not markers or any(_marker(m, shown).evaluate(env) for m in markers)

    def pick(name: str, version: str | None, env: dict[str, str]) -> dict | None:
        options = by_name.get(canonicalize_name(name), [])
        if version is not None:
            options = [p for p in options if p.get("version") == version] or options
        return next((p for p in options if fork_applies(p, env)), options[0] if options else None)

    def select(env: dict[str, str]) -> list[Entry]:
        out: dict[str, Entry] = {}
        todo: list[tuple[dict, tuple[str, ...]]] = [(root, ()) for root in roots] if roots else \
            [(p, ()) for p in packages]
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        while todo:
            package, extras = todo.pop()
            key = (package["name"], str(package.get("version")), extras)
            if key in seen:
                continue
            seen.add(key)
            if package not in roots and "version" in package:
                name = canonicalize_name(package["name"])
                out.setdefault(name, _pin(package["name"], package["version"], shown))
            edges = list(package.get("dependencies", []))
            for extra in extras:
                edges += package.get("optional-dependencies", {}).get(extra, [])
            for edge in edges:
                if not _applies(_marker(edge.get("marker"), shown), env):
                    continue
                target = pick(edge["name"], edge.get("version"), env)
                if target is not None:
                    todo.append((target, tuple(sorted(edge.get("extra", [])))))
        return list(out.values())

    return Parsed(shown, "uv.lock", select, hint, direct or None)


# ---- poetry.lock ----------------------------------------------------------------------------------

def poetry_constraint(text: str) -> Callable[[Version], bool]:
    """Poetry's version constraint language (^, ~, *, ||, comma or space separated ranges) as a test."""
    alternatives = [part.strip() for part in text.split("||")]
    tests = [_poetry_range(alt) for alt in alternatives if alt]
    if not tests:
        raise InvalidSpecifier(text)
    return lambda version: any(test(version) for test in tests)


def _poetry_specs(text: str) -> list[str]:
    """One poetry range ('^2.1', '~1.4', '>=1,<2', '1.2.3', '*') as PEP 440 specifier clauses."""
    specs: list[str] = []
    for word in text.replace(",", " ").split():
        if word == "*":
            continue
        if word[0] in "^~" and word[:2] != "~=":
            given = word[1:].split(".")
            parts = list(Version(word[1:]).release) + [0] * (3 - len(given))
            if word[0] == "^":  # up to the next change of the leftmost non-zero part
                position = next((i for i, n in enumerate(parts[:len(given)]) if n), len(given) - 1)
                upper = parts[:position] + [parts[position] + 1]
            else:  # ~1 -> <2, ~1.4 / ~1.4.2 -> <1.5
                upper = [parts[0] + 1] if len(given) == 1 else [parts[0], parts[1] + 1]
            specs += [f">={word[1:]}", "<" + ".".join(map(str, upper))]
        elif word[0].isdigit():
            specs.append(f"=={word}")
        else:
            specs.append(word)
    SpecifierSet(",".join(specs))  # raises InvalidSpecifier for anything else
    return specs


def _poetry_range(text: str) -> Callable[[Version], bool]:
    spec = SpecifierSet(",".join(_poetry_specs(text)))
    return lambda version: spec.contains(version, prereleases=True)


def _poetry_python_hint(text: str, origin: str) -> PythonHint:
    try:
        test = poetry_constraint(text)
    except (InvalidSpecifier, InvalidVersion, IndexError, ValueError):
        raise InputError(f"{origin}: {text!r} is not a Python constraint (e.g. '^3.11' or '>=3.9,<4.0')") from None
    return PythonHint(text, origin, lambda minor: test(Version(minor + ".0")) or test(Version(minor + ".99")))


def read_poetry_lock(path: str, shown: str | None = None) -> Parsed:
    """poetry.lock: the packages of the main group (poetry 2's `groups`, poetry 1's `category`), each
    package's markers evaluated on the chosen Python; the pyproject.toml beside it names the direct ones."""
    shown = shown or path
    data = _toml(path, shown)
    packages = data.get("package")
    if not isinstance(packages, list) or not all(isinstance(p, dict) and "name" in p and "version" in p
                                                 for p in packages):
        raise InputError(f"{shown}: no [[package]] tables with name and version: not a poetry.lock")
    meta = data.get("metadata", {})
    hint = _poetry_python_hint(meta["python-versions"], f"python-versions in {shown}") \
        if isinstance(meta.get("python-versions"), str) and meta["python-versions"] != "*" else None
    entries: list[tuple[Entry, Marker | None]] = []
    notes: list[str] = []
    for package in packages:
        groups = package.get("groups") or [package.get("category", "main")]
        if "main" not in groups:
            continue
        markers = package.get("markers")
        if isinstance(markers, dict):  # poetry 2: markers per group
            markers = markers.get("main")
        entries.append((_pin(package["name"], package["version"], shown), _marker(markers, shown)))
    if len(entries) < len(packages):
        notes.append(f"{shown}: {len(packages) - len(entries)} package(s) only in other groups (dev, test) left out")
    direct = _direct_beside(path)

    def select(env: dict[str, str]) -> list[Entry]:
        return [entry for entry, marker in entries if _applies(marker, env)]

    return Parsed(shown, "poetry.lock", select, hint, direct, notes)


def _direct_beside(lock_path: str) -> set[str] | None:
    """The project's own dependencies from the pyproject.toml beside a lock file, if there is one."""
    path = os.path.join(os.path.dirname(os.path.abspath(lock_path)), "pyproject.toml")
    try:
        data = tomllib.loads(_read_text(path, path))
    except (InputError, tomllib.TOMLDecodeError):
        return None
    names = set()
    for text in data.get("project", {}).get("dependencies", []):
        try:
            names.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            continue
    names |= {canonicalize_name(n) for n in data.get("tool", {}).get("poetry", {}).get("dependencies", {})
              if n != "python"}
    return names or None


# ---- Pipfile.lock ---------------------------------------------------------------------------------

def read_pipfile_lock(path: str, shown: str | None = None) -> Parsed:
    """Pipfile.lock: the `default` section (what `pipenv install --deploy` installs), markers evaluated on
    the chosen Python; `_meta.requires` names the Python, the Pipfile beside it the direct packages."""
    shown = shown or path
    try:
        data = json.loads(_read_text(path, shown))
    except ValueError as exc:
        raise InputError(f"{shown}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("default"), dict):
        raise InputError(f"{shown}: no \"default\" section: not a Pipfile.lock")
    requires = data.get("_meta", {}).get("requires", {})
    hint = None
    for key in ("python_full_version", "python_version"):
        if requires.get(key):
            hint = _minor_hint(str(requires[key]), f"_meta.requires.{key} in {shown}")
            break
    entries: list[tuple[Entry, Marker | None]] = []
    notes = []
    for name, info in data["default"].items():
        origin = f"{shown} [default] {name}"
        if not isinstance(info, dict):
            raise InputError(f"{origin}: expected a table with a version, got {info!r}")
        if "version" in info:
            spec = str(info["version"])
            text = f"{name}{spec}" if spec != "*" else name
            entries.append((Entry(_requirement(text, origin), origin), _marker(info.get("markers"), origin)))
        else:
            notes.append(f"{origin}: from {next(iter(k for k in info if k in ('git', 'path', 'file', 'editable')), 'a source')}"
                         " (not a release)")
            entries.append((Entry(_requirement(name, origin), origin), _marker(info.get("markers"), origin)))
    direct = None
    pipfile = os.path.join(os.path.dirname(os.path.abspath(path)), "Pipfile")
    if os.path.exists(pipfile):
        try:
            direct = {canonicalize_name(n) for n in _toml(pipfile, pipfile).get("packages", {})} or None
        except InputError:
            direct = None

    def select(env: dict[str, str]) -> list[Entry]:
        return [entry for entry, marker in entries if _applies(marker, env)]

    return Parsed(shown, "Pipfile.lock", select, hint, direct, notes)


# ---- pyproject.toml -------------------------------------------------------------------------------

def read_pyproject(path: str, shown: str | None = None) -> Parsed:
    """pyproject.toml: [project] dependencies and requires-python, or poetry's [tool.poetry.dependencies]."""
    shown = shown or path
    data = _toml(path, shown)
    project = data.get("project", {})
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies")
    entries: list[tuple[Entry, Marker | None]] = []
    hint = None
    if "dependencies" in project:
        if not isinstance(project["dependencies"], list):
            raise InputError(f"{shown}: [project] dependencies must be a list of requirement strings")
        for index, text in enumerate(project["dependencies"]):
            origin = f"{shown} [project] dependencies[{index}]"
            requirement = _requirement(str(text), origin)
            entries.append((Entry(requirement, origin), requirement.marker))
        if "requires-python" in project:
            hint = _specifier_hint(str(project["requires-python"]), f"requires-python in {shown}")
    elif isinstance(poetry, dict):
        for name, value in poetry.items():
            origin = f"{shown} [tool.poetry.dependencies] {name}"
            constraint = value.get("version", "*") if isinstance(value, dict) else value
            if name == "python":
                hint = _poetry_python_hint(str(constraint), origin)
                continue
            entries.append((Entry(_requirement(f"{name}{_pep440(str(constraint), origin)}", origin), origin),
                            _marker(value.get("markers"), origin) if isinstance(value, dict) else None))
    else:
        raise InputError(f"{shown}: no [project] dependencies and no [tool.poetry.dependencies]: nothing to check")

    def select(env: dict[str, str]) -> list[Entry]:
        return [entry for entry, marker in entries if _applies(marker, env)]

    return Parsed(shown, "pyproject.toml", select, hint, {entry.name for entry, _ in entries})


def _pep440(constraint: str, origin: str) -> str:
    """A poetry constraint as a PEP 440 specifier (the last alternative of an `||`)."""
    try:
        return ",".join(_poetry_specs(constraint.split("||")[-1].strip()))
    except (InvalidSpecifier, InvalidVersion, IndexError, ValueError):
        raise InputError(f"{origin}: {constraint!r} is not a version constraint (e.g. '^2.0' or '>=2,<3')") from None

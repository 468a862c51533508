"""Read a user's stack from what their project already has.

Every reader returns a `Parsed`: where it came from, the Python the file names (if it names one), the
direct dependencies when the file knows them, and `select(env)`, the requirements that apply on one
Python (environment markers and lock-file forks are evaluated there, once the Python is chosen).

Formats: requirements files (pip's format: `-r`/`-c` includes, markers, per-line options, hashes),
`pip freeze` output, `uv.lock`, `poetry.lock`, `Pipfile.lock`, `pyproject.toml` (`[project]` or
`[tool.poetry]` dependencies) and pins typed on the command line. Requirements are parsed by
`packaging`, TOML by `tomllib`/`tomli`; whatever neither understands is an `InputError`: one line
naming the file, the line and what is allowed.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename,
                             parse_wheel_filename)
from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("requirements", "pip freeze", "uv.lock", "poetry.lock", "Pipfile.lock", "pyproject.toml")
ALLOWED = ("requirements files (*.txt, *.in, or any file with -r), uv.lock, poetry.lock, Pipfile.lock, "
           "pyproject.toml, - (pip freeze on stdin), or pins like sentry-sdk==2.75.0")


class InputError(ValueError):
    """A file or argument check cannot read: one line naming the value and what is allowed (exit 2)."""


@dataclass(frozen=True)
class Entry:
    """One requirement of the stack and where it was written."""

    requirement: Requirement
    origin: str  # "requirements.txt:12", "uv.lock", "the command line"
    constraint: bool = False  # from -c: applies only to packages required elsewhere

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def pinned(self) -> str | None:
        """The exact version when the specifier allows exactly one (==X or ===X, no wildcard)."""
        specs = list(self.requirement.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and not specs[0].version.endswith(".*"):
            return specs[0].version
        return None


@dataclass(frozen=True)
class PythonHint:
    """What a file says about the Python it runs on: an exact minor or a range."""

    text: str  # as written: "3.12", ">=3.12", "^3.11"
    origin: str  # "requires-python in uv.lock"
    allows: Callable[[str], bool] = field(compare=False)  # minor ("3.11") -> allowed
    exact: str | None = None  # a minor when the file names one Python


@dataclass
class Parsed:
    source: str  # what was read, as the user named it
    kind: str  # one of FORMATS, or "pins"
    select: Callable[[dict[str, str]], list[Entry]]  # marker environment -> the entries that apply
    python: PythonHint | None = None
    direct: set[str] | None = None  # canonical names of the project's own dependencies, when known
    notes: list[str] = field(default_factory=list)


# ---- helpers -------------------------------------------------------------------------------------

def _requirement(text: str, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        message = str(exc).splitlines()[0]
        raise InputError(f"{origin}: {text!r} is not a requirement ({message}); allowed: name[extras]"
                         " [specifier] [; marker], e.g. sentry-sdk==2.75.0") from None


def _applies(marker: Marker | None, env: dict[str, str]) -> bool:
    return marker is None or marker.evaluate(env)


def _marker(text: str | None, origin: str) -> Marker | None:
    if not text:
        return None
    try:
        return Marker(text)
    except InvalidMarker as exc:
        raise InputError(f"{origin}: {text!r} is not an environment marker ({str(exc).splitlines()[0]})") from None


def _pin(name: str, version: str, origin: str, marker: str | None = None) -> Entry:
    text = f"{name}=={version}" + (f"; {marker}" if marker else "")
    return Entry(_requirement(text, origin), origin)


def _specifier_hint(text: str, origin: str) -> PythonHint:
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        raise InputError(f"{origin}: {text!r} is not a Python version specifier (e.g. '>=3.11')") from None
    exact = None
    specs = list(spec)
    if len(specs) == 1 and specs[0].operator == "==":
        exact = minor_of(specs[0].version.rstrip(".*"))
    return PythonHint(text, origin, lambda minor: spec.contains(minor + ".0") or spec.contains(minor + ".99"),
                      exact)


def _minor_hint(text: str, origin: str) -> PythonHint:
    minor = minor_of(text)
    if minor is None:
        raise InputError(f"{origin}: {text!r} is not a Python version like 3.12")
    return PythonHint(text, origin, lambda m: m == minor, minor)


def minor_of(text: str) -> str | None:
    """'3.12.1' -> '3.12'; None when it is not a version."""
    try:
        release = Version(text.strip()).release
    except InvalidVersion:
        return None
    return f"{release[0]}.{release[1] if len(release) > 1 else 0}"


def _read_text(path: str, shown: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a directory; allowed: {ALLOWED}") from None
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not a text file; allowed: {ALLOWED}") from None
    except OSError as exc:
        raise InputError(f"{shown}: cannot read it ({exc.strerror})") from None


def _toml(path: str, shown: str) -> dict:
    try:
        return tomllib.loads(_read_text(path, shown))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{shown}: not valid TOML ({exc})") from None


# ---- requirements files and pip freeze (pip's file format) -------------------------------------

# Options pip accepts in a requirements file that say nothing about which releases are installed.
_SKIPPED_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index", "--pre",
                    "--trusted-host", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes",
                    "--use-feature", "--config-settings", "--global-option", "--hash")
_INCLUDES = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_EDITABLE = ("-e", "--editable")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """pip's reading: lines ending in a backslash continue; '#' at the start or after whitespace comments."""
    buffer, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not buffer:
            first = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        line, buffer = (buffer + line).strip(), ""
        if line:
            yield first, line
    if buffer.strip():
        yield first, buffer.strip()


def _strip_comment(line: str) -> str:
    for index, char in enumerate(line):
        if char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def _option(line: str) -> tuple[str, str]:
    """'-r base.txt' / '--requirement=base.txt' / '-rbase.txt' -> ('-r', 'base.txt')."""
    if line.startswith("--"):
        name, _, value = line.partition("=") if "=" in line.split(" ", 1)[0] else line.partition(" ")
        return name.strip(), value.strip()
    return line[:2], line[2:].strip()


def _name_from_location(location: str, origin: str) -> Entry | None:
    """A requirement given as a URL or path: the name (and version) from `#egg=`, or a wheel/sdist name."""
    parts = urlsplit(location)
    for item in parts.fragment.split("&"):
        key, _, value = item.partition("=")
        if key == "egg" and value:
            return Entry(_requirement(f"{value} @ {location.split('#')[0]}" if parts.scheme else value, origin),
                         origin)
    filename = os.path.basename(unquote(parts.path))
    try:
        name, version, *_ = parse_wheel_filename(filename) if filename.endswith(".whl") else \
            parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return Entry(_requirement(f"{name}=={version}", origin), origin)


def _is_location(text: str) -> bool:
    return ("://" in text.split(" ")[0] or text.startswith((".", "/", "~"))
            or text.endswith((".whl", ".tar.gz", ".zip")))


def read_requirements(path: str, shown: str | None = None, kind: str = "requirements",
                      text: str | None = None) -> Parsed:
    """A requirements file (or `pip freeze` output when text is given), following -r and -c includes."""
    shown = shown or path
    entries: list[tuple[Entry, Marker | None]] = []
    notes: list[str] = []
    hint: list[PythonHint] = []

    def read(file: str, label: str, constraint: bool, seen: tuple[str, ...]) -> None:
        content = text if text is not None and file == path else _read_text(file, label)
        if not entries and not hint:
            hint.extend(_compiled_with(content, label))
        for number, line in _logical_lines(content):
            origin = f"{label}:{number}"
            if line.startswith("-"):
                option, value = _option(line)
                if option in _INCLUDES:
                    if not value:
                        raise InputError(f"{origin}: {option} needs a file name")
                    target = os.path.normpath(os.path.join(os.path.dirname(file), os.path.expanduser(value)))
                    if target in seen:
                        raise InputError(f"{origin}: {option} {value} includes itself (through {' -> '.join(seen)})")
                    include_label = os.path.normpath(os.path.join(os.path.dirname(label), value))
                    read(target, include_label, constraint or _INCLUDES[option], seen + (target,))
                elif option in _EDITABLE:
                    entry = _name_from_location(value, origin)
                    if entry is None:
                        notes.append(f"{origin}: editable {value} skipped (a local project, not a release)")
                    else:
                        notes.append(f"{origin}: {entry.name} is an editable install (not a release)")
                        entries.append((Entry(_requirement(entry.requirement.name, origin), origin), None))
                elif option in _SKIPPED_OPTIONS:
                    continue
                else:
                    raise InputError(f"{origin}: unknown option {option!r}; allowed in a requirements file: -r, -c, "
                                     "-e, index and install options, and requirements")
                continue
            requirement_text = line.split(" --", 1)[0].strip()  # per-requirement options (--hash=...) follow
            try:
                requirement = Requirement(requirement_text)
            except InvalidRequirement:
                if not _is_location(requirement_text):
                    _requirement(requirement_text, origin)  # raises the one-line InputError
                location, _, marker_text = requirement_text.partition(";")
                entry = _name_from_location(location.strip(), origin)
                if entry is None:
                    notes.append(f"{origin}: {location.strip()} skipped (no package name in it)")
                    continue
                entries.append((Entry(entry.requirement, origin, constraint), _marker(marker_text.strip(), origin)))
                continue
            if requirement.url and not requirement.specifier:  # name @ URL: a wheel or sdist names its version
                from_file = _name_from_location(requirement.url, origin)
                if from_file is not None and from_file.pinned:
                    requirement = _requirement(f"{requirement.name}=={from_file.pinned}"
                                               + (f"; {requirement.marker}" if requirement.marker else ""), origin)
            entries.append((Entry(requirement, origin, constraint), requirement.marker))

    start = os.path.normpath(path)
    read(start, shown, False, (start,))

    def select(env: dict[str, str]) -> list[Entry]:
        return [entry for entry, marker in entries if _applies(marker, env)]

    return Parsed(shown, kind, select, hint[0] if hint else None, None, notes)


def _compiled_with(content: str, label: str) -> list[PythonHint]:
    """The Python a compiled requirements file names in its header: pip-compile's 'with Python 3.11' or the
    `--python-version` / `--python` of the command `uv pip compile` records."""
    for raw in content.splitlines()[:12]:
        if not raw.startswith("#"):
            continue
        line = raw.lstrip("#").strip()
        if line.startswith("This file is autogenerated by pip-compile with Python "):
            version = line.rsplit(" ", 1)[-1]
            if minor_of(version):
                return [_minor_hint(version, f"the pip-compile header of {label}")]
        if line.startswith("uv pip compile"):
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            for index, word in enumerate(words):
                for flag in ("--python-version", "-p", "--python"):
                    value = words[index + 1] if word == flag and index + 1 < len(words) else (
                        word[len(flag) + 1:] if word.startswith(flag + "=") else None)
                    if value and minor_of(value):
                        return [_minor_hint(value, f"the `uv pip compile {flag}` in {label}")]
    return []


def read_freeze(text: str, shown: str = "pip freeze on stdin") -> Parsed:
    """`pip freeze` output: the requirements format, pins only (editables and local URLs noted)."""
    return read_requirements(shown, shown, "pip freeze", text)


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


# ---- pins on the command line ---------------------------------------------------------------------

def read_pins(texts: list[str]) -> Parsed:
    entries = []
    for text in texts:
        requirement = _requirement(text, "the command line")
        entries.append((Entry(requirement, "the command line"), requirement.marker))

    def select(env: dict[str, str]) -> list[Entry]:
        return [entry for entry, marker in entries if _applies(marker, env)]

    return Parsed("the command line", "pins", select)


# ---- which reader -------------------------------------------------------------------------------

READERS = {
    "uv.lock": read_uv_lock,
    "poetry.lock": read_poetry_lock,
    "Pipfile.lock": read_pipfile_lock,
    "pyproject.toml": read_pyproject,
}


def detect_format(path: str) -> str:
    """The format of a file named on the command line, from its name (lock files have fixed names)."""
    name = os.path.basename(path)
    if name in READERS:
        return name
    if name.endswith((".txt", ".in", ".pip")) or name.startswith(("requirements", "constraints")):
        return "requirements"
    hint = {"Pipfile": "; lock it first (`pipenv lock`) and pass Pipfile.lock",
            "setup.py": "; pass the requirements it installs (pip freeze > requirements.txt)",
            "environment.yml": "; conda environments are not read: pass `pip freeze` output"}.get(name, "")
    raise InputError(f"{path}: unknown file format{hint}; allowed: {ALLOWED}")


def read_path(path: str, requirements: bool = False) -> Parsed:
    """One file named by the user: by its name (a lock file's name is fixed), else -r FILE is the
    requirements format."""
    if requirements and os.path.basename(path) not in READERS:
        return read_requirements(path)
    kind = detect_format(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    return READERS[kind](path) if kind in READERS else read_requirements(path)


FILE_SUFFIXES = (".txt", ".in", ".pip", ".lock", ".toml", ".json", ".yml", ".yaml", ".cfg", ".ini", ".py")


def looks_like_path(text: str) -> bool:
    """A positional argument that names a file rather than a requirement (pins have a specifier)."""
    if os.path.exists(text) or os.sep in text or os.path.basename(text) in READERS or text == "Pipfile":
        return True
    return not any(op in text for op in "=<>~!;@[") and text.lower().endswith(FILE_SUFFIXES)

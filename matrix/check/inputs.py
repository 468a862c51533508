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

import os
import shlex
import sys
from typing import Iterable
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename,
                             parse_wheel_filename)

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

from .lockfiles import poetry_constraint, read_pipfile_lock, read_poetry_lock, read_pyproject, read_uv_lock
from .parsed import (ALLOWED, FORMATS, Entry, InputError, Parsed, PythonHint, _applies, _marker, _minor_hint,
                     _read_text, _requirement, minor_of)

__all__ = ["ALLOWED", "FORMATS", "Entry", "InputError", "Parsed", "PythonHint", "minor_of", "poetry_constraint",
           "read_freeze", "read_path", "read_pins", "read_pipfile_lock", "read_poetry_lock", "read_pyproject",
           "read_requirements", "read_uv_lock"]


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

"""The unit of the matrix: one app, one variant, one Python, one set of pinned packages.

A cell's id is derived from its fields and is stable across runs, so it can be typed
(`nox -s cell -- asyncio/plain/py3.11/sentry-sdk-2.75.0`) and compared between runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..axes.spec import MemoryProbe

BACKENDS = ("venv", "docker")
RERUN = "nox -s cell -- {id}"

_ID_RE = re.compile(
    r"^(?P<app>[a-z][a-z0-9-]*)/(?P<variant>[a-z][a-z0-9-]*)/py(?P<python>[23]\.[0-9]+)"
    r"(?P<pins>(/[A-Za-z0-9_.-]+-[0-9][A-Za-z0-9_.+!-]*)+)(/on-(?P<route>[a-z][a-z0-9-]*))?$"
)
_PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>[0-9][A-Za-z0-9_.+!-]*)$")


class CellIdError(ValueError):
    """A cell id that does not have the form app/variant/pyX.Y/pkg-ver[/pkg-ver...]."""


@dataclass(frozen=True)
class Cell:
    """What to run. Pins are (distribution, exact version) pairs, sentry-sdk first."""

    app: str
    variant: str
    python: str  # minor version, e.g. "3.11"
    pins: tuple[tuple[str, str], ...]
    backend: str = "venv"
    # Set by the planner when the cell cannot run here (no interpreter, no release for that Python).
    unsupported: str | None = field(default=None, compare=False)
    # Unpinned requirements the app needs besides the pins (e.g. "gunicorn"), resolved in the era of
    # the oldest pin. Not part of the id: they follow from the app.
    requires: tuple[str, ...] = field(default=(), compare=False)
    # Which part of the app serves the units, for apps with several (channels: http-consumer,
    # websocket, async-view). Part of the id as a last segment "on-<route>".
    route: str | None = None
    # Debian packages the stack needs (the app's `system` in the axes): installed into the cell's image on
    # Docker; on the venv backend the machine must have them (the app exits 4 otherwise).
    system: tuple[str, ...] = field(default=(), compare=False)
    # Memory probe for this cell (load requests and the threshold), from the axes.
    memory: MemoryProbe | None = field(default=None, compare=False)
    # The pre-release lane (plan/sources.py): what the installer gets for sentry-sdk instead of
    # `sentry-sdk==<pin>` (a git URL at a commit, or a pre-release); the pin is then its label.
    sdk_requirement: str | None = field(default=None, compare=False)
    # How the normal round's units are sent (the app's `arrival` in the axes): "together" or "in-turn".
    arrival: str = field(default="together", compare=False)

    @property
    def id(self) -> str:
        pins = "/".join(f"{name}-{version}" for name, version in self.pins)
        route = f"/on-{self.route}" if self.route else ""
        return f"{self.app}/{self.variant}/py{self.python}/{pins}{route}"

    @property
    def rerun(self) -> str:
        """The one command that reruns this cell."""
        return RERUN.format(id=self.id)

    @property
    def log_relpath(self) -> str:
        """Where the cell's log lives below a results directory: the id's parts become directories."""
        return log_relpath(self.id)

    @property
    def sdk_version(self) -> str:
        return dict(self.pins)["sentry-sdk"]

    def pin_specs(self) -> list[str]:
        """Requirement strings for the installer: ['sentry-sdk==2.75.0', ...]."""
        return [self.sdk_requirement if name == "sentry-sdk" and self.sdk_requirement else f"{name}=={version}"
                for name, version in self.pins]


def parse_cell_id(cell_id: str) -> tuple[str, str, str, tuple[tuple[str, str], ...], str | None]:
    """Split a cell id into (app, variant, python minor, pins, route); raise CellIdError naming the bad part."""
    match = _ID_RE.match(cell_id.strip())
    if not match:
        raise CellIdError(
            f"malformed cell id {cell_id!r}: expected app/variant/pyX.Y/package-version[/package-version...], "
            "[/on-route], e.g. asyncio/plain/py3.11/sentry-sdk-2.75.0"
        )
    pins = []
    for part in match.group("pins").strip("/").split("/"):
        pin = _PIN_RE.match(part)
        assert pin is not None  # guaranteed by _ID_RE
        pins.append((pin.group("name"), pin.group("version")))
    return match.group("app"), match.group("variant"), match.group("python"), tuple(pins), match.group("route")


def unpinned(requires: tuple[str, ...] | list[str], pins: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The requirements whose package is not pinned already (a pin always wins)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned = {canonicalize_name(name) for name, _ in pins}
    return tuple(r for r in requires if canonicalize_name(Requirement(r).name) not in pinned)


def log_relpath(cell_id: str) -> str:
    """Where a cell's log lives below results/: the id's parts become directories."""
    return "logs/" + cell_id + ".log"

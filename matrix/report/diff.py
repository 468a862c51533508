"""Compare two results documents (pure): what changed, matched by cell id and by role.

A change is
- on the same cell id: a different `verdict`, `scope` or `tracing` (scope and tracing where both
  documents carry them; see roles.differing for schema-1 documents);
- by role: a cell the previous document did not have (a new release picked up by `update-axes`)
  took a role over from a previous cell (roles.py) and answers `scope` or `tracing` differently.
New and vanished cells are listed too; a new cell that took a role over with the same answers is
shown with the role it took, so a new release never passes unseen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .roles import ANSWERS, Place, Succession, differing, successions

ROLE_FIELDS = ("scope", "tracing")


def cell_view(cell: dict[str, Any]) -> dict[str, Any]:
    """What a change records of each side: the answers, the stack and where its evidence is."""
    keep = ("id", "verdict", "scope", "tracing", "python", "packages", "log", "reason")
    return {k: cell[k] for k in keep if k in cell}


@dataclass(frozen=True)
class CellChange:
    how: str  # "cell" (same id) or "role"
    old: dict[str, Any]
    new: dict[str, Any]
    fields: tuple[str, ...]  # which answers differ, in ANSWERS order
    role: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"how": self.how, "fields": list(self.fields), "old": self.old, "new": self.new}
        if self.role:
            out["role"] = self.role
        return out


@dataclass
class ResultsDiff:
    changes: list[CellChange] = field(default_factory=list)
    new: list[tuple[str, str]] = field(default_factory=list)  # (id, verdict)
    vanished: list[tuple[str, str]] = field(default_factory=list)
    successions: list[Succession] = field(default_factory=list)  # every role handed over, changed or not

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def reshaped(self) -> bool:
        """Cells appeared or disappeared (the table's shape changed), whether or not an answer did."""
        return bool(self.new or self.vanished)

    def to_json(self) -> dict[str, Any]:
        return {"changes": [c.to_json() for c in self.changes],
                "new": [{"id": i, "verdict": v} for i, v in self.new],
                "vanished": [{"id": i, "verdict": v} for i, v in self.vanished],
                "successions": [{"role": s.role, "old": s.old_id, "new": s.new_id} for s in self.successions]}


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> ResultsDiff:
    old_cells, new_cells = old.get("cells", []), new.get("cells", [])
    before = {c["id"]: c for c in old_cells}
    after = {c["id"]: c for c in new_cells}
    out = ResultsDiff()
    for cell_id in sorted(after):
        cell = after[cell_id]
        if cell_id not in before:
            out.new.append((cell_id, cell.get("verdict", "")))
            continue
        fields = differing(before[cell_id], cell, ANSWERS)
        if fields:
            out.changes.append(CellChange("cell", cell_view(before[cell_id]), cell_view(cell), tuple(fields)))
    out.vanished = [(cell_id, before[cell_id].get("verdict", "")) for cell_id in sorted(set(before) - set(after))]
    out.successions = successions(old_cells, new_cells)
    for s in out.successions:
        fields = differing(before[s.old_id], after[s.new_id], ROLE_FIELDS)
        if fields:
            out.changes.append(CellChange("role", cell_view(before[s.old_id]), cell_view(after[s.new_id]),
                                          tuple(fields), s.role))
    return out


def moved_pins(old_id: str, new_id: str) -> str:
    """'sentry-sdk 2.74.0 -> 2.75.0' (the pins that differ between two holders of a role)."""
    a, b = Place.of(old_id), Place.of(new_id)
    if a is None or b is None:
        return f"{old_id} -> {new_id}"
    old_pins = dict(a.pins)
    return ", ".join(f"{name} {old_pins.get(name, '?')} -> {version}" for name, version in b.pins
                     if old_pins.get(name) != version)


def describe(change: CellChange) -> str:
    """'scope leak -> isolated, tracing nested -> parallel'."""
    return ", ".join(f"{name} {change.old.get(name, '?')} -> {change.new.get(name, '?')}" for name in change.fields)


def render_diff(d: ResultsDiff, limit: int = 50, vanished: bool = True) -> str:
    """The diff for a terminal or a pull request body. `vanished=False` leaves out the previous cells the
    new document did not plan (the pre-release lane plans only the newest SDK's cells)."""
    gone = d.vanished if vanished else []
    if not (d.changes or d.new or gone):
        return "no difference: every cell has the answers it had"
    by_cell = [c for c in d.changes if c.how == "cell"]
    by_role = [c for c in d.changes if c.how == "role"]
    head = (f"{len(d.changes)} change(s): {len(by_cell)} on the same cell, {len(by_role)} by role"
            if d.changes else "no answer changed")
    lines = [f"{head}; {len(d.new)} new cell(s)" + (f", {len(d.vanished)} vanished" if vanished else "")]
    lines += [f"  changed  {c.new['id']}: {describe(c)}" for c in by_cell[:limit]]
    lines += [f"  by role  {c.role}: {moved_pins(c.old['id'], c.new['id'])}: {describe(c)}" for c in by_role[:limit]]
    took = {s.new_id: s for s in d.successions}
    changed_roles = {c.new["id"] for c in by_role}
    for cell_id, verdict in d.new[:limit]:
        s = took.get(cell_id)
        note = ""
        if s is not None:
            same = "" if cell_id in changed_roles else ", same answers"
            note = f" (now holds {s.role}, after {s.old_id}{same})"
        lines.append(f"  new      {cell_id}: {verdict}{note}")
    lines += [f"  vanished {i}: was {v}" for i, v in gone[:limit]]
    hidden = sum(max(0, len(x) - limit) for x in (by_cell, by_role, d.new, gone))
    if hidden:
        lines.append(f"  ... and {hidden} more")
    return "\n".join(lines)

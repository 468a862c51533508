"""Compare two results documents: verdicts that changed, cells that are new or vanished (pure)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ResultsDiff:
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (id, old verdict, new verdict)
    new: list[tuple[str, str]] = field(default_factory=list)  # (id, verdict)
    vanished: list[tuple[str, str]] = field(default_factory=list)

    @property
    def verdicts_changed(self) -> bool:
        return bool(self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"changed": [{"id": i, "old": o, "new": n} for i, o, n in self.changed],
                "new": [{"id": i, "verdict": v} for i, v in self.new],
                "vanished": [{"id": i, "verdict": v} for i, v in self.vanished]}


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> ResultsDiff:
    before = {c["id"]: c["verdict"] for c in old.get("cells", [])}
    after = {c["id"]: c["verdict"] for c in new.get("cells", [])}
    out = ResultsDiff()
    for cell_id in sorted(after):
        if cell_id not in before:
            out.new.append((cell_id, after[cell_id]))
        elif before[cell_id] != after[cell_id]:
            out.changed.append((cell_id, before[cell_id], after[cell_id]))
    out.vanished = [(cell_id, before[cell_id]) for cell_id in sorted(set(before) - set(after))]
    return out


def render_diff(d: ResultsDiff, limit: int = 50) -> str:
    if not (d.changed or d.new or d.vanished):
        return "no difference: every cell has the verdict it had"
    lines = [f"{len(d.changed)} verdict(s) changed, {len(d.new)} new cell(s), {len(d.vanished)} vanished"]
    lines += [f"  changed  {i}: {o} -> {n}" for i, o, n in d.changed[:limit]]
    lines += [f"  new      {i}: {v}" for i, v in d.new[:limit]]
    lines += [f"  vanished {i}: was {v}" for i, v in d.vanished[:limit]]
    hidden = max(0, len(d.changed) - limit) + max(0, len(d.new) - limit) + max(0, len(d.vanished) - limit)
    if hidden:
        lines.append(f"  ... and {hidden} more")
    return "\n".join(lines)

"""The changelog of the results: results/CHANGES.md (newest first, kept across runs), the same as a JSON
feed (results/changes.json) and the per-app badges (results/badges/<app>.json).

Each run that found a change (diff.py: same cell or by role) adds one entry on top; an entry is
keyed by the run (`generated_at` and folder of the new results), so reporting the same run twice
replaces its entry instead of adding a second one. Links point at both cells' evidence: the new
cell's log in this checkout (relative), the previous cell's log where the previous results live
(`old_base`: the blob URL of the commit the run started from, or a relative folder).

Rendering is pure (entry, markdown, feed); `publish` is the only function that writes.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

from .badges import badges
from .diff import CellChange, ResultsDiff, describe, moved_pins

CHANGES_MD = "CHANGES.md"
CHANGES_JSON = "changes.json"
BADGES_DIR = "badges"
HEADER = """# Changes

What the nightly found different from the results before it, newest first: an answer (`verdict`,
`scope`, `tracing`) that changed on the same cell, and a new release whose scope or tracing answer
differs from the release that held its role before (e.g. *threads/plain/py3.12/newest sentry-sdk*).
Each row links the evidence of both cells. The same entries as JSON: [`changes.json`](changes.json).
Written by `python -m matrix report --diff OLD.json --changes DIR` (see `.github/workflows/nightly.yml`).
"""
_ENTRY_MARK = re.compile(r"^<!-- entry (?P<key>\S+) -->$", re.M)


def _join(base: str | None, path: str | None) -> str | None:
    if not base or not path:
        return None
    return base.rstrip("/") + "/" + path


def entry_key(new_doc: dict[str, Any], folder: str) -> str:
    return f"{folder or '.'}@{new_doc.get('generated_at', '')}"


def make_entry(d: ResultsDiff, old_doc: dict[str, Any], new_doc: dict[str, Any], folder: str,
               new_base: str | None, old_base: str | None) -> dict[str, Any]:
    """One feed entry. `folder`: the results folder relative to the changelog (e.g. 'full');
    new_base / old_base: what a cell's `log` is joined to for the new / previous evidence link."""
    run = new_doc.get("run") or {}
    changes = []
    for c in d.changes:
        item = c.to_json()
        item["old"]["evidence"] = _join(old_base, c.old.get("log"))
        item["new"]["evidence"] = _join(new_base, c.new.get("log"))
        if c.how == "role":
            item["moved"] = moved_pins(c.old["id"], c.new["id"])
        changes.append(item)
    return {
        "key": entry_key(new_doc, folder),
        "date": (new_doc.get("generated_at") or "")[:10],
        "generated_at": new_doc.get("generated_at"),
        "previous_generated_at": old_doc.get("generated_at"),
        "folder": folder,
        "size": run.get("size"),
        "lane": run.get("sdk_source"),
        "command": new_doc.get("command"),
        "commit": run.get("commit"),
        "lock": run.get("lock"),
        "changes": changes,
        "new_cells": len(d.new),
        "vanished_cells": len(d.vanished),
    }


def _answers(side: dict[str, Any], fields: list[str]) -> str:
    return ", ".join(f"{name} **{side.get(name, '?')}**" for name in fields)


def _link(text: str, url: str | None) -> str:
    return f"[{text}]({url})" if url else text


def render_entry(entry: dict[str, Any]) -> str:
    """One entry of CHANGES.md (a level-2 section with its key in a comment)."""
    what = f"{entry.get('size') or '?'} size" + (f" ({entry['folder']}/)" if entry.get("folder") else "")
    if entry.get("lane"):
        lane = entry["lane"]
        what += f", pre-release lane {lane.get('label', '') if isinstance(lane, dict) else lane}"
    lines = [f"<!-- entry {entry['key']} -->",
             f"## {entry['date']} · {what} · {len(entry['changes'])} change(s)", ""]
    about = [f"Run `{entry['command']}`" if entry.get("command") else "Run"]
    if entry.get("commit"):
        about.append(f"at commit `{entry['commit'][:12]}`")
    if entry.get("lock"):
        about.append(f"(lock `{entry['lock'][:12]}`)")
    about.append(f"finished {entry.get('generated_at')}, compared with the results of "
                 f"{entry.get('previous_generated_at') or 'an earlier run'}; "
                 f"{entry['new_cells']} new cell(s), {entry['vanished_cells']} vanished.")
    lines += [" ".join(about), "", "| how | where | before | now | evidence |", "|---|---|---|---|---|"]
    for c in entry["changes"]:
        fields = c["fields"]
        old, new = c["old"], c["new"]
        if c["how"] == "role":
            how = "new release" if "sentry-sdk" in c.get("moved", "") else "new version"
            where_cell = f"{c['role']}: {c['moved']}"
            evidence = " · ".join([_link(f"before ({old['id'].split('/', 3)[3]})", old.get("evidence")),
                                   _link(f"now ({new['id'].split('/', 3)[3]})", new.get("evidence"))])
        else:
            how = "same cell"
            where_cell = f"`{new['id']}`"
            evidence = " · ".join([_link("before", old.get("evidence")), _link("now", new.get("evidence"))])
        lines.append(f"| {how} | {where_cell} | {_answers(old, fields)} | {_answers(new, fields)} | {evidence} |")
    return "\n".join(lines) + "\n"


def prepend_markdown(existing: str | None, entry: dict[str, Any]) -> str:
    """CHANGES.md with `entry` on top (after the header), or in place of the entry with the same key."""
    text = existing if existing and existing.strip() else HEADER
    rendered = render_entry(entry)
    marks = list(_ENTRY_MARK.finditer(text))
    for i, m in enumerate(marks):
        if m.group("key") == entry["key"]:
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            return text[:m.start()] + rendered + ("\n" if i + 1 < len(marks) else "") + text[end:].lstrip("\n")
    if marks:
        at = marks[0].start()
        return text[:at] + rendered + "\n" + text[at:]
    return text.rstrip("\n") + "\n\n" + rendered


def prepend_feed(existing: dict[str, Any] | None, entry: dict[str, Any]) -> dict[str, Any]:
    """changes.json: {"title", "entries": [newest first]}; an entry with the same key is replaced."""
    entries = [e for e in (existing or {}).get("entries", []) if e.get("key") != entry["key"]]
    return {"title": "sentry-context-matrix: changes found by the nightly, newest first",
            "entries": [entry] + entries}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)
    return path


def signature(entry: dict[str, Any]) -> list[tuple]:
    """What an entry found, without when or at which commit: (how, role or cell id, answers before and
    after). The pre-release lane finds the same difference night after night under new cell ids (the
    commit is in the id), so its role is what identifies it."""
    out = []
    for c in entry.get("changes", []):
        where = c.get("role") or c["new"]["id"]
        out.append((c["how"], where, tuple(c["fields"]), tuple(c["old"].get(f) for f in c["fields"]),
                    tuple(c["new"].get(f) for f in c["fields"])))
    return sorted(out)


def publish(d: ResultsDiff, old_doc: dict[str, Any], new_doc: dict[str, Any], changes_dir: str, folder: str,
            new_base: str | None, old_base: str | None, badge_suffix: str = "") -> list[str]:
    """Write the badges (always: they show the current results) and, when the diff has changes that the
    newest entry does not already say (same signature), the entry on top of CHANGES.md and changes.json.
    Returns the paths written."""
    written = []
    for app, data in badges(new_doc, badge_suffix).items():
        written.append(_write(os.path.join(changes_dir, BADGES_DIR, f"{app}.json"),
                              json.dumps(data, indent=1) + "\n"))
    if not d.changes:
        return written
    entry = make_entry(d, old_doc, new_doc, folder, new_base, old_base)
    json_path = os.path.join(changes_dir, CHANGES_JSON)
    raw = _read(json_path)
    try:
        feed = json.loads(raw) if raw else None
    except ValueError as exc:  # never overwrite the history with a feed of one entry
        raise ValueError(f"{json_path} is not valid JSON ({exc}): fix or remove it first") from None
    newest = ((feed or {}).get("entries") or [None])[0]
    if newest and newest.get("key") != entry["key"] and newest.get("folder") == folder \
            and signature(newest) == signature(entry):
        return written  # the same differences as the newest entry: nothing new to log
    written.append(_write(json_path, json.dumps(prepend_feed(feed, entry), indent=1, ensure_ascii=False) + "\n"))
    md_path = os.path.join(changes_dir, CHANGES_MD)
    written.append(_write(md_path, prepend_markdown(_read(md_path), entry)))
    return written


__all__ = ["CellChange", "describe", "make_entry", "render_entry", "prepend_markdown", "prepend_feed", "publish"]

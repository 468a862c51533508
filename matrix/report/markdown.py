"""results/README.md: the table people read. Pure: results document in, Markdown out."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from packaging.version import Version

from .advice import ADVICE, MEANINGS, SYMBOLS


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _row_key(cell: dict[str, Any]) -> str:
    pins = " ".join(f"{k} {v}" for k, v in cell["packages"].items() if k == "sentry-sdk" or k in _pinned(cell))
    route = route_of(cell)
    return f"{cell['variant']} · {pins}" + (f" · on {route}" if route else "")


def route_of(cell: dict[str, Any]) -> str | None:
    """The route segment of a cell id (…/on-websocket), if any."""
    last = cell["id"].rsplit("/", 1)[-1]
    return cell.get("route") or (last[3:] if last.startswith("on-") else None)


def _pinned(cell: dict[str, Any]) -> set[str]:
    # The id lists the pins after the python part: app/variant/pyX.Y/name-ver/.../on-route
    return {part.rsplit("-", 1)[0] for part in cell["id"].split("/")[3:] if not part.startswith("on-")}


def fix_outcomes(cells: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """For each leaking plain cell: [(fix variant, its verdict)] in the same environment."""
    by_env: dict[tuple, dict[str, str]] = defaultdict(dict)
    for c in cells:
        by_env[(c["app"], _minor(c["python"]), c["id"].split("/", 3)[3])][c["variant"]] = c["verdict"]
    out: dict[str, list[tuple[str, str]]] = {}
    for c in cells:
        if c["variant"] == "plain" and c["verdict"] in ("leak", "nested", "lost"):
            fixes = ADVICE.get(c["app"], ("", ()))[1]
            env = by_env[(c["app"], _minor(c["python"]), c["id"].split("/", 3)[3])]
            out[c["id"]] = [(v, env[v]) for v in fixes if v in env]
    return out


def fix_summary(outcomes: list[tuple[str, str]]) -> str:
    """'In the same environments: asyncio-integration isolated 14/14; hub-clone nested 7/7.'"""
    if not outcomes:
        return "No fix variant ran in the same environments."
    per_variant: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for variant, verdict in outcomes:
        per_variant[variant][verdict] += 1
    parts = []
    for variant, verdicts in per_variant.items():
        total = sum(verdicts.values())
        parts.append(f"`{variant}` " + ", ".join(f"{v} {n}/{total}" for v, n in sorted(verdicts.items())))
    return "In the same environments: " + "; ".join(parts) + "."


CLAIM_SYMBOLS = {"confirmed": "✅ confirmed", "contradicted": "❌ contradicted", "partly": "🌓 partly",
                 "untested": "❔ untested"}


def render_claims(claims: list[dict[str, Any]] | None, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """The claims table: what the troubleshooting page says, and what the cells showed."""
    if not claims:
        return []
    lines = ["", "## The troubleshooting page's claims, checked", "",
             "| claim (section of the page) | what it predicts | observed | evidence |", "|---|---|---|---|"]
    for claim in claims:
        text = claim["text"] if not claim.get("quote") else f"“{claim['text']}”"
        evidence = []
        for cell_id in (claim.get("disagreeing") or [])[:2] + [c for c in claim["cells"]
                                                              if c not in (claim.get("disagreeing") or [])][:2]:
            cell = by_id.get(cell_id, {})
            mark = SYMBOLS.get(cell.get("verdict", ""), "?")
            evidence.append(f"[{mark} {cell_id}]({cell.get('log', '')})" if cell.get("log") else f"`{cell_id}`")
        more = len(claim["cells"]) - len(evidence)
        summary = (f"{claim.get('agreeing', 0)} of {len(claim['cells'])} cells agree" if claim["cells"] else "no cell")
        lines.append(f"| {text} <br>*{claim.get('section', '')}* | {claim['expected']} | "
                     f"{CLAIM_SYMBOLS[claim['observed']]} ({summary}) | "
                     + "<br>".join(evidence) + (f"<br>+{more} more" if more > 0 else "") + " |")
    lines += ["", "A quoted claim is the page's exact wording; the others restate a passage whose wording changed "
              "between the page's Hub-era and scopes-era versions. Cells that could not answer (n/a, timeout, "
              "flaky) are not counted.", ""]
    return lines


CONTEXT_SHORT = {"contextvars": "cv", "thread-local": "tl", "aiocontextvars": "acv", "unknown": "?"}


def _app_rows(app_cells: list[dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, dict]]]:
    pythons = sorted({_minor(c["python"]) for c in app_cells}, key=Version)
    rows: dict[str, dict[str, dict]] = {}
    for c in app_cells:
        rows.setdefault(_row_key(c), {})[_minor(c["python"])] = c
    return pythons, rows


def _grid(pythons: list[str], rows: dict[str, dict[str, dict]], show) -> list[str]:
    lines = ["| variant · packages | " + " | ".join(f"py{p}" for p in pythons) + " |",
             "|---|" + "---|" * len(pythons)]
    for row, by_py in rows.items():
        lines.append(f"| {row} | " + " | ".join(show(by_py[p]) if p in by_py else " " for p in pythons) + " |")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """The table people read: the page's claims first, then one table per app (rows variant x pins,
    columns Python versions), the context storage where it differs, and what to do."""
    cells = doc["cells"]
    by_id = {c["id"]: c for c in cells}
    size = "the full size (`--full`)" if "--full" in doc["command"] else "the default size"
    lines = [
        "# Does Sentry scope data stay inside its request, thread or task?",
        "",
        f"Generated by `{doc['command']}` ({size}) at {doc['generated_at']}, backend "
        f"{doc['host'].get('backend')}, {doc['host'].get('cpus')} CPUs. Do not edit: rerun the command, or "
        "`nox -s report` to re-render from `matrix.json`. Each cell starts the real app, forces N concurrent units "
        "to overlap (a barrier of the concurrency model itself), sends the events to a mock Sentry server over HTTP "
        "and judges what arrived; a control round with one deliberately shared scope must leak in every cell, so "
        "`isolated` never means \"the probe saw nothing\". Click a symbol for the cell's log; rerun any cell with "
        "`nox -s cell -- <cell id>`." + ("" if "--full" in doc["command"] else
                                          " The nightly size is in [full/README.md](full/README.md)."),
    ]
    lines += render_claims(doc.get("claims"), by_id)
    lines += ["## Legend", "", "| symbol | verdict | meaning |", "|---|---|---|"]
    lines += [f"| {SYMBOLS[v]} | `{v}` | {MEANINGS[v]} |" for v in SYMBOLS]
    counts: dict[str, int] = defaultdict(int)
    for c in cells:
        counts[c["verdict"]] += 1
    lines += ["", "Totals: " + ", ".join(f"{SYMBOLS[v]} {v} {n}" for v, n in sorted(counts.items())), ""]
    fixes = fix_outcomes(cells)
    for app in sorted({c["app"] for c in cells}, key=lambda a: (a != "threads", a)):
        app_cells = [c for c in cells if c["app"] == app]
        pythons, rows = _app_rows(app_cells)
        lines += [f"## {app}", ""]
        lines += _grid(pythons, rows, lambda c: f"[{SYMBOLS[c['verdict']]}]({c['log']} \"{_title(c)}\")"
                       if c.get("log") else SYMBOLS[c["verdict"]])
        backends = sorted({c["context_backend"] for c in app_cells if c["context_backend"] != "unknown"})
        if len(backends) > 1:
            lines += ["", "Context storage the SDK chose in each cell (read from the SDK inside the app: "
                      "cv = contextvars, tl = thread locals, acv = aiocontextvars):", ""]
            lines += _grid(pythons, rows, lambda c: CONTEXT_SHORT.get(c["context_backend"], c["context_backend"])
                           if c["verdict"] != "unsupported" else "n/a")
        elif backends:
            lines += ["", f"Context storage the SDK chose in every cell that ran: {backends[0]}."]
        lines.append("")
        troubled = [c for c in app_cells if c["verdict"] in ("leak", "nested", "lost") and c["variant"] == "plain"]
        if troubled and app in ADVICE:
            lines.append(f"**What to do** ({len(troubled)} plain cells not isolated): {ADVICE[app][0]} "
                         + fix_summary([v for c in troubled for v in fixes.get(c["id"], [])]))
            lines.append("")
        notable = [c for c in app_cells if c["verdict"] != "isolated"]
        if notable:
            lines += ["<details><summary>Why each non-isolated cell got its verdict</summary>", ""]
            for c in notable:
                fixed = fixes.get(c["id"])
                fixed_by = ("; fix variants here: " + ", ".join(f"{v} {SYMBOLS[r]} {r}" for v, r in fixed)
                            if fixed else "")
                lines.append(f"- `{c['id']}` {SYMBOLS[c['verdict']]} {c['verdict']}: {c.get('reason', '')}"
                             f"{fixed_by} (rerun: `{c['rerun']}`)")
            lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _title(c: dict[str, Any]) -> str:
    text = f"{c['verdict']}: {c.get('reason', '')}".strip().rstrip(":")
    for char in '"()[]':  # a link title must not end the markdown link early
        text = text.replace(char, "'" if char == '"' else " ")
    return " ".join(text.split())[:200]

"""results/README.md: the answer first (per app and variant), then the legend, the page's claims, and
one table per app coloured by the scope answer. Pure: results document in, Markdown out."""
from __future__ import annotations

import re
from typing import Any

from .advice import CLAIM, SCOPE, SYMBOLS, TRACING, scope_mark, scope_words
from .view import AppView, app_views, counts

CONTEXT_SHORT = {"contextvars": "cv", "thread-local": "tl", "aiocontextvars": "acv", "unknown": "?"}


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def md_text(text: str) -> str:
    """Text from a run (a reason, an app's log line, an explanation) as literal Markdown: an HTML error page's
    tags and '<release>' shown, not taken as HTML; `__init__` and `a | b` not taken as emphasis or a table
    cell's end."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")


def _link(cell: dict[str, Any], text: str) -> str:
    title = " ".join(scope_words(cell).replace('"', "'").split())[:200]
    return f"[{text}]({cell['log']} \"{title}\")" if cell.get("log") else text


def _answer(scope: str, tracing: str) -> tuple[str, str]:
    s, t = SCOPE[scope], TRACING[tracing]
    return f"{s[0]} {s[1]}", f"{t[0]} {t[1]}".strip()


def render_summary(doc: dict[str, Any]) -> list[str]:
    """The headline table: one row per app and variant (the newest stack measured)."""
    summary = doc.get("summary") or []
    if not summary:
        return []
    lines = ["## The answer, per app and variant", "",
             "The newest stack measured for each way of using the SDK. *Scope data* answers the question people "
             "fear (another request's tags, user, breadcrumbs, extra or contexts in my event); *tracing* says where "
             "the spans went.", "",
             "| app | how the SDK is used | newest stack measured | scope data | tracing | what to do | where the answer differs |",
             "|---|---|---|---|---|---|---|"]
    by_id = {c["id"]: c for c in doc["cells"]}
    for s in summary:
        scope, tracing = _answer(s["scope"], s.get("tracing", "unknown"))
        cell = by_id.get(s.get("cell", ""), {})
        stack = _link(cell, s.get("stack") or s.get("cell", "")) if cell else s.get("stack", "")
        differs = "<br>".join(s.get("differs") or []) or "nowhere measured"
        how = s.get("variant", "") + (f" (on {s['route']})" if s.get("route") else "")
        lines.append(f"| **{s['app']}** | {how} | {stack} | {scope} | {tracing} | {s['advice']} "
                     f"| {differs} |")
    return lines + [""]


def render_legend(doc: dict[str, Any]) -> list[str]:
    c = counts(doc["cells"])
    lines = ["## Legend", "", "| mark | answer | meaning |", "|---|---|---|"]
    lines += [f"| {sym} | scope data {word} | {meaning} |" for sym, word, meaning in SCOPE.values()]
    lines += [f"| {sym} | tracing {word} | {meaning} |" for sym, word, meaning in TRACING.values() if sym]
    lines += ["| n/a | not run | the stack cannot run here (listed per app, collapsed) |", "",
              "Totals: " + ", ".join(f"{SCOPE[k][0]} scope {SCOPE[k][1]} {n}" for k, n in sorted(c["scope"].items()))
              + "; " + ", ".join(f"tracing {k} {n}" for k, n in sorted(c["tracing"].items())) + ". "
              "Each cell also keeps a `verdict` for machines (" + ", ".join(
                  f"{SYMBOLS[v]} {v} {n}" for v, n in sorted(c["verdict"].items())) + ").", ""]
    return lines


def render_claims(doc: dict[str, Any]) -> list[str]:
    """The claims table: what the troubleshooting page says, and what the cells showed about it."""
    claims = doc.get("claims")
    if not claims:
        return []
    by_id = {c["id"]: c for c in doc["cells"]}
    lines = ["## The troubleshooting page's claims, checked", "",
             "| claim (section of the page) | what it predicts | observed | evidence (what the cell showed) |",
             "|---|---|---|---|"]
    for claim in claims:
        text = claim["text"] if not claim.get("quote") else f"“{claim['text']}”"
        evidence = claim.get("evidence") or [{"cell": i, "shows": "", "agrees": i not in claim.get("disagreeing", [])}
                                             for i in claim["cells"]]
        picked = [e for e in evidence if not e["agrees"]][:2] + [e for e in evidence if e["agrees"]][:2]
        shown = []
        for e in picked:
            cell = by_id.get(e["cell"], {})
            label = f"{'✔' if e['agrees'] else '✘'} {e['shows']}: {e['cell']}"
            shown.append(f"[{label}]({cell['log']})" if cell.get("log") else f"`{label}`")
        more = len(evidence) - len(shown)
        sym, word = CLAIM[claim["observed"]]
        agree = f"{claim.get('agreeing', 0)} of {len(claim['cells'])} cells agree" if claim["cells"] else "no cell"
        lines.append(f"| {text} <br>*{claim.get('section', '')}* | {claim['expected']} | {sym} {word} ({agree}) | "
                     + "<br>".join(shown) + (f"<br>+{more} more" if more > 0 else "") + " |")
    return lines + ["", "A quoted claim is the page's exact wording; the others restate a passage whose wording "
                    "changed between the page's Hub-era and scopes-era versions. Cells that could not answer are not "
                    "counted; ✔/✘ say whether that cell agrees.", ""]


def _grid(view: AppView, show) -> list[str]:
    lines = ["| variant · packages | " + " | ".join(f"py{p}" for p in view.pythons) + " |",
             "|---|" + "---|" * len(view.pythons)]
    for row, by_py in view.rows.items():
        lines.append(f"| {row} | " + " | ".join(show(by_py[p]) if p in by_py else " " for p in view.pythons) + " |")
    return lines


def render_app(view: AppView, cells: list[dict[str, Any]]) -> list[str]:
    lines = [f"## {view.name}", ""]
    for s in view.summary:
        scope, tracing = _answer(s["scope"], s.get("tracing", "unknown"))
        how = s.get("variant", "") + (f" on {s['route']}" if s.get("route") else "")
        lines.append(f"- **{how}**: {scope}, tracing {tracing}. {s['advice']}")
    lines.append("")
    if view.rows:
        lines += _grid(view, lambda c: _link(c, scope_mark(c)))
    if len(view.backends) > 1:
        lines += ["", "Context storage the SDK chose in each cell (read from the SDK inside the app: "
                  "cv = contextvars, tl = thread locals, acv = aiocontextvars):", ""]
        lines += _grid(view, lambda c: CONTEXT_SHORT.get(c["context_backend"], c["context_backend"]))
    elif view.backends:
        lines += ["", f"Context storage the SDK chose in every cell that ran: {view.backends[0]}."]
    bleed = [c for c in cells if c["checks"].get("children_bleed", {}).get("ok") is False]
    if bleed:
        lines += ["", f"Children's scope writes reached their parent's or a sibling's event in {len(bleed)} cell(s) "
                  f"(check `children_bleed`; not a cross-request leak), e.g. `{bleed[0]['id']}`: "
                  f"{bleed[0]['checks']['children_bleed']['evidence'][0]}."]
    lines.append("")
    odd = [c for c in cells if c["verdict"] not in ("isolated", "unsupported")]
    if odd:
        lines += ["<details><summary>Each cell that is not isolated with parallel spans, and why</summary>", ""]
        lines += [f"- `{c['id']}` {scope_mark(c)} ({scope_words(c)}; verdict {c['verdict']}): {md_text(c.get('reason', ''))} "
                  f"(rerun: `{c['rerun']}`)" for c in odd]
        lines += ["", "</details>", ""]
    if view.not_run:
        reasons = "; ".join(f"`{c['id']}`: {md_text(c.get('reason', ''))}" for c in view.not_run)
        lines += [f"<details><summary>Not run: {len(view.not_run)} combination(s) that cannot run here</summary>",
                  "", reasons, "", "</details>", ""]
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    full = "--full" in doc["command"]
    lines = [
        "# Does Sentry scope data stay inside its request, thread or task?",
        "",
        f"Generated by `{doc['command']}` ({'the full size' if full else 'the default size'}) at "
        f"{doc['generated_at']}, backend {doc['host'].get('backend')}, {doc['host'].get('cpus')} CPUs. Do not edit: "
        "rerun the command, or `nox -s report` to re-render from `matrix.json`. Each cell starts the real app, forces N "
        "concurrent units to overlap (a barrier of the concurrency model itself), sends the events to a mock Sentry "
        "server over HTTP and judges what arrived; a control round with one deliberately shared scope must leak in "
        "every cell, so `isolated` never means \"the probe saw nothing\". Click a mark for the cell's log; rerun any "
        "cell with `nox -s cell -- <cell id>`." + ("" if full else " The nightly size is in [full/README.md](full/README.md)."),
        "",
    ]
    lines += render_summary(doc)
    lines += render_legend(doc)
    lines += render_claims(doc)
    for view in app_views(doc):
        lines += render_app(view, [c for c in doc["cells"] if c["app"] == view.name])
    return "\n".join(lines).rstrip() + "\n"

"""The timeline of one line and of the whole history: data (history.json) and markdown (history.md). Pure.

A line's document holds its releases cut into ranges with the same answers, each boundary of a real
answer with its last-before and first-after releases (their answers, repeats and logs), and one line
explaining the change from what the apps' `/facts` said on both sides.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from ..report.markdown import md_text
from .search import UNKNOWN, Bisection, Boundary

FORMAT = 1
WORDS = {"scope": "scope data", "tracing": "tracing"}


# ---- explanations ------------------------------------------------------------------------------

def _detail_parts(detail: str | None) -> list[str]:
    return [p.strip() for p in (detail or "").split(";") if p.strip()]


def _flag_changes(before: dict, after: dict, what: str) -> list[str]:
    """{'x.y': True/False} maps -> 'now wraps x.y' / 'no longer wraps x.y'."""
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if b and not a:
            out.append(f"the SDK now {what} {key}")
        elif a and not b:
            out.append(f"the SDK no longer {what} {key}")
    return out


def explain(before: dict[str, Any], after: dict[str, Any], dimension: str | None = None,
            package: str = "sentry-sdk") -> str:
    """One line: what the apps' /facts show changed between the two measurements (first runs); where they
    show nothing, what the run showed on the side that leaked / nested (`dimension`'s evidence)."""
    parts: list[str] = []
    if before.get("variant") != after.get("variant"):
        parts.append(f"the fix's code changes with the SDK ({before.get('variant')} -> {after.get('variant')})")
    bf, af = before.get("facts") or {}, after.get("facts") or {}
    if not bf or not af:
        side, m = ("before", before) if not bf else ("after", after)
        parts.append(f"the app gave no /facts {side} the change ({m.get('verdict')}: {m.get('reason', '')[:160]})")
        return "; ".join(parts)
    if bf.get("context_backend") != af.get("context_backend"):
        parts.append(f"context storage {bf.get('context_backend')} -> {af.get('context_backend')}")
    gone = [p for p in _detail_parts(bf.get("context_detail")) if p not in _detail_parts(af.get("context_detail"))]
    new = [p for p in _detail_parts(af.get("context_detail")) if p not in _detail_parts(bf.get("context_detail"))]
    if gone or new:
        parts.append("storage detail: " + ("; ".join(gone) or "-") + " -> " + ("; ".join(new) or "-"))
    parts += _flag_changes(bf.get("sdk_wrapped") or {}, af.get("sdk_wrapped") or {}, "wraps")
    patched_b, patched_a = bf.get("patched") or {}, af.get("patched") or {}
    for key in sorted(set(patched_b) | set(patched_a)):
        if patched_b.get(key) != patched_a.get(key):
            parts.append(f"{key} monkeypatched: {patched_b.get(key)} -> {patched_a.get(key)}")
    ib, ia = set(bf.get("integrations_enabled") or ()), set(af.get("integrations_enabled") or ())
    if ib != ia:
        parts.append("integrations enabled: " + ", ".join([f"+{i}" for i in sorted(ia - ib)]
                                                          + [f"-{i}" for i in sorted(ib - ia)]))
    skip = {"context_backend", "context_detail", "sdk_wrapped", "patched", "integrations_enabled"}
    for key in sorted((set(bf) | set(af)) - skip):
        if bf.get(key) != af.get(key) and isinstance(bf.get(key, ""), (str, int, float, bool, type(None))):
            parts.append(f"{key}: {bf.get(key)} -> {af.get(key)}")
    if parts:
        return "; ".join(parts)
    storage = bf.get("context_backend") or "?"
    if package == "sentry-sdk":
        text = (f"the apps' /facts show no difference (context storage {storage} on both sides): the change is in "
                "the SDK's code paths, not in what it stores its context in")
    else:  # a framework line: the SDK is the same release on both sides
        sdk = (before.get("packages") or {}).get("sentry-sdk", "?")
        text = (f"the apps' /facts show no difference (context storage {storage} on both sides, sentry-sdk {sdk} on "
                f"both): the change is in {package}'s own code")
    shown = [f"{m.get('packages', {}).get(package, '')} {line}".strip()
             for m in (before, after) if (line := evidence_line(m, dimension))]
    return text + (" (" + "; ".join(shown) + ")" if shown else "")


EVIDENCE = {"scope": ("scope_leak",), "tracing": ("span_nesting", "delivery"),
            None: ("scope_leak", "span_nesting", "children_bleed", "delivery")}


def evidence_line(m: dict[str, Any], dimension: str | None = None) -> str:
    """The first telling evidence line of a measurement for one answer (what leaked, which span went where)."""
    for name in EVIDENCE[dimension]:
        lines = (m.get("evidence") or {}).get(name)
        if lines:
            return f"{name}: {lines[0]}"
    return ""


# ---- one line's document -----------------------------------------------------------------------

def _side(bisection: Bisection, index: int, measurements: dict[tuple[str, int], dict], logs: dict[str, str]) -> dict:
    version = bisection.versions[index]
    first = measurements.get((version, 1), {})
    confirm = measurements.get((version, bisection.repeats))
    answer = bisection.answer(index)
    side = {"version": version, "cell": first.get("cell"), "variant": first.get("variant"),
            "scope": answer.scope if answer else UNKNOWN, "tracing": answer.tracing if answer else UNKNOWN,
            "verdict": first.get("verdict"), "context_backend": first.get("context_backend"),
            "runs": 1 + (bisection.repeats if confirm else 0)}
    if confirm:
        side["repeats"] = {"scope": confirm.get("scope"), "tracing": confirm.get("tracing"),
                           "verdict": confirm.get("verdict")}
    if first.get("cell") in logs:
        side["log"] = logs[first["cell"]]
    if first.get("cell") and f"{first['cell']}#x{bisection.repeats}" in logs:
        side["confirm_log"] = logs[f"{first['cell']}#x{bisection.repeats}"]
    if evidence_line(first):
        side["evidence"] = evidence_line(first)  # the first telling line, whichever check
    return side


def boundary_doc(bisection: Bisection, b: Boundary, measurements: dict[tuple[str, int], dict],
                 logs: dict[str, str], package: str = "sentry-sdk") -> dict[str, Any]:
    before, after = (measurements.get((bisection.versions[i], 1), {}) for i in (b.before, b.after))
    doc = {"dimension": b.dimension, "from": b.old, "to": b.new, "confirmed": b.confirmed,
           "before": _side(bisection, b.before, measurements, logs),
           "after": _side(bisection, b.after, measurements, logs),
           "explanation": explain(before, after, b.dimension, package)}
    if b.between or b.unmeasured:
        reasons = sorted({(measurements.get((bisection.versions[i], 1)) or {}).get("verdict", "?") for i in b.between})
        doc["between"] = {"measured": [bisection.versions[i] for i in b.between], "unmeasured": b.unmeasured,
                          "verdicts": reasons,
                          "note": f"the {len(b.between) + b.unmeasured} release(s) between cannot answer: the change "
                                  "happened somewhere in that range"}
    return doc


def carried_lines(previous: list[dict[str, Any]], measuring: set[str],
                  current: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """What a filtered run keeps of the history it updates: the lines it does not measure itself, if the
    history still has them (`current`). A line whose fixed pins changed (its framework's newest release for
    that Python, a not_applicable rule) has a new id: the old one is dropped, not shown beside it."""
    kept = [d for d in previous if d["line"] not in measuring and d["line"] in current]
    dropped = [d["line"] for d in previous if d["line"] not in current]
    return kept, dropped


def _strip_version(reason: str) -> str:
    """'gevent 1.2.0 ships no wheel ...' -> 'ships no wheel ...' (so consecutive exclusions group)."""
    words = reason.split(" ", 2)
    return words[2] if len(words) == 3 and words[1][:1].isdigit() else reason


def timeline(releases: list[tuple[str, str | None]], bisection: Bisection,
             measurements: dict[tuple[str, int], dict]) -> list[dict[str, Any]]:
    """Every release in order, cut into rows: a range of the search (answer / unknown / unresolved) or
    a run of releases not measured in this line (excluded, with the reasons)."""
    label: list[tuple] = []
    ranges = bisection.ranges()
    by_index = {}
    for n, r in enumerate(ranges):
        for i in range(r.first, r.last + 1):
            by_index[i] = n
    position = {v: i for i, v in enumerate(bisection.versions)}
    for version, reason in releases:
        label.append(("excluded",) if reason else ("range", by_index.get(position[version])))
    rows: list[dict[str, Any]] = []
    start = 0
    for k in range(1, len(releases) + 1):
        if k < len(releases) and label[k] == label[start]:
            continue
        chunk = releases[start:k]
        row: dict[str, Any] = {"from": chunk[0][0], "to": chunk[-1][0], "releases": len(chunk)}
        if label[start][0] == "excluded":
            row["kind"] = "excluded"
            row["reasons"] = sorted({_strip_version(str(reason)) for _, reason in chunk})
        else:
            r = ranges[label[start][1]] if label[start][1] is not None else None
            inside = {v for v, _ in chunk}
            measured = [bisection.versions[i] for i in (r.measured if r else ()) if bisection.versions[i] in inside]
            row["kind"] = r.kind if r else "unresolved"
            if r and r.key:
                row["scope"], row["tracing"] = r.key
            row["measured"] = measured
            firsts = [measurements.get((v, 1), {}) for v in measured]
            storages = sorted({m.get("context_backend") for m in firsts if m.get("context_backend")})
            if storages:
                row["context_backend"] = storages
            if row["kind"] == "unknown":
                seen = [m for m in firsts if m]
                row["verdicts"] = sorted({m.get("verdict") for m in seen})
                row["reason"] = one_line(next((m.get("reason") for m in seen if m.get("reason")), ""))
                causes = unknown_causes([(v, m) for v, m in zip(measured, firsts) if m])
                if len(causes) > 1:  # one range that cannot answer, for different reasons along it
                    row["causes"] = causes
        rows.append(row)
        start = k
    return rows


def unknown_causes(measured: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """A range that cannot answer, cut where the measured releases' reason changes: [{from, to, verdict,
    reason}] (an old SDK that does not import on this Python, then newer ones whose integration refuses
    the framework, are one range of `unknown` with two causes, each naming its own releases)."""
    return fold_causes([{"from": v, "to": v, "verdict": m.get("verdict", "?"), "reason": m.get("reason", "")}
                        for v, m in measured])


def fold_causes(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive causes [{from, to, verdict, reason}] that fail the same way, as one: the same verdict and
    the same reason as one line (`one_line`), a single release's reason naming that release as '<release>'."""
    out: list[dict[str, Any]] = []
    for span in spans:
        reason = one_line(span["reason"])
        key = (span["verdict"], _masked(reason, span))
        if out and (out[-1]["verdict"], _masked(out[-1]["reason"], out[-1])) == key:
            out[-1]["to"] = span["to"]
            out[-1]["reason"] = key[1]  # 'which sentry-sdk <release> does not have': true of each release
        else:
            out.append({"from": span["from"], "to": span["to"], "verdict": span["verdict"], "reason": reason})
    return out


def _masked(reason: str, span: dict[str, Any]) -> str:
    """A single release's reason with that release named as '<release>' ('... which sentry-sdk 0.7.2 does not
    have' on 0.7.2), so that consecutive releases failing for the same reason are one cause; a span of several
    releases already says '<release>'."""
    if span["from"] != span["to"]:
        return reason
    return re.sub(r"(?<![\w.])" + re.escape(span["from"]) + r"(?![\w.]*\d)", "<release>", reason)


def regrouped(doc: dict[str, Any]) -> dict[str, Any]:
    """A history document with its rows' reasons and causes as the current rules write them (`one_line`,
    `fold_causes`), measuring nothing: what `history --render` writes after a change to how causes read."""
    for line in doc.get("lines", []):
        for row in line.get("timeline", []):
            if "reason" in row:
                row["reason"] = one_line(row["reason"])
            if row.get("causes"):
                causes = fold_causes(row["causes"])
                if len(causes) > 1:
                    row["causes"] = causes
                else:
                    del row["causes"]
    return doc


_PATH_IN_PARENS = re.compile(r"\((?:/[^()\s]*)+\)")
_APP_LOG_PREFIX = re.compile(r"\[([\w.-]+) pid=\d+ \d\d:\d\d:\d\d\]")


def one_line(reason: str) -> str:
    """A reason as one line, without this machine's paths: an HTML error page's whitespace collapsed, and
    '(/work/.../.matrix/envs/<key>/lib/.../flask/__init__.py)' as '(...)', and an app's log line without its
    pid and time ('[django-asgi pid=19311 16:19:33]' as '[django-asgi]'), so that releases failing the same
    way group into one cause instead of one per environment or process."""
    return _APP_LOG_PREFIX.sub(r"[\1]", _PATH_IN_PARENS.sub("(...)", " ".join(reason.split())))


def clipped(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a space, with '…' when something was cut ('<release>' and
    a path stay whole or go)."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ;,:") + " …"


def cause_text(row: dict[str, Any], limit: int = 160) -> str:
    """What an unknown row shows: its verdicts and reason, or each cause with the releases it covers."""
    if not row.get("causes"):
        return f"{'/'.join(row.get('verdicts', []))}: {clipped(one_line(row.get('reason', '')), limit)}"
    return "; ".join(f"{c['from']}" + (f" – {c['to']}" if c["to"] != c["from"] else "")
                     + f": {c['verdict']}: {clipped(c['reason'], limit)}" for c in row["causes"])


def story(rows: list[dict[str, Any]], dimension: str) -> list[dict[str, Any]]:
    """One answer's history in a few words: [{value, from, to}], consecutive answered ranges with the same
    value merged (ranges that cannot answer or were not measured in between are skipped, not merged over
    silently: `gap` says so)."""
    out: list[dict[str, Any]] = []
    gap = False
    for row in rows:
        if row["kind"] != "answer":
            gap = gap or bool(out)
            continue
        value = row[dimension]
        if out and out[-1]["value"] == value:
            out[-1]["to"] = row["to"]
            out[-1]["gap"] = out[-1].get("gap", False) or gap
        else:
            out.append({"value": value, "from": row["from"], "to": row["to"]})
        gap = False
    return out


def story_text(parts: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['value']} {p['from']}" + (f" – {p['to']}" if p["to"] != p["from"] else "") for p in parts)


def line_doc(line, releases: list[tuple[str, str | None]], bisection: Bisection,
             measurements: dict[tuple[str, int], dict], logs: dict[str, str], seconds: float,
             status: str = "done") -> dict[str, Any]:
    """history.json's entry for one line (`line` is a lines.Line)."""
    runs = sum(m.get("runs", m.get("repeat", 1)) for m in measurements.values())
    cells = len({m["cell"] for m in measurements.values()})
    return {
        "line": line.id, "app": line.app, "variant": line.variant, "python": line.python, "route": line.route,
        "package": line.package, "fixed": line.fixed, "pins": [list(p) for p in line.pins], "status": status,
        "releases": len(releases), "measurable": len(bisection.versions),
        "cells": cells, "measurements": len(measurements), "app_runs": runs,
        "stride": bisection.stride, "repeats": bisection.repeats, "seconds": round(seconds, 1),
        "timeline": (rows := timeline(releases, bisection, measurements)),
        "story": {dim: story(rows, dim) for dim in ("scope", "tracing")},
        "boundaries": [boundary_doc(bisection, b, measurements, logs, line.package) for b in bisection.boundaries()],
        "answers": {v: {"scope": m["scope"], "tracing": m["tracing"], "verdict": m["verdict"],
                        "context_backend": m.get("context_backend")}
                    for (v, r), m in sorted(measurements.items(), key=lambda kv: bisection.versions.index(kv[0][0]))
                    if r == 1},
    }


def history_doc(lines: list[dict[str, Any]], command: str, backend: str, generated_at: str, wall_s: float | None,
                pending: Iterable[str] = (), stride: int = 8, repeats: int = 3) -> dict[str, Any]:
    pending = list(pending)
    done = [d for d in lines if d["status"] == "done"]
    runs: dict[tuple, dict[str, Any]] = {}
    for d in lines:  # which runs the lines come from: a filtered run keeps the lines of the runs before it
        by = d.get("measured_by") or {}
        key = (by.get("command"), by.get("commit"), by.get("backend"), by.get("committed_in"))
        entry = runs.setdefault(key, {"command": by.get("command"), "commit": by.get("commit"),
                                      "backend": by.get("backend"), "at": None, "lines": 0})
        if by.get("committed_in"):  # lines from before runs recorded their commit: where git has them from
            entry["committed_in"] = by["committed_in"]
        entry["lines"] += 1
        entry["at"] = max(filter(None, (entry["at"], by.get("at"))), default=None)
    return {
        "format": FORMAT, "generated_at": generated_at, "command": command, "backend": backend,
        "stride": stride, "repeats": repeats,
        "complete": not pending, "pending": pending,
        "wall_s": round(wall_s, 1) if wall_s is not None else None,
        "totals": {"lines": len(lines) + len(pending), "done": len(done),
                   "cells": sum(d["cells"] for d in lines), "app_runs": sum(d["app_runs"] for d in lines),
                   "releases": sum(d["releases"] for d in lines),
                   "measurable": sum(d["measurable"] for d in lines),
                   "boundaries": sum(len(d["boundaries"]) for d in lines)},
        "runs": sorted(runs.values(), key=lambda r: r["at"] or "", reverse=True),
        "lines": lines,
    }


# ---- markdown ----------------------------------------------------------------------------------

def _span(row: dict[str, Any]) -> str:
    return row["from"] if row["from"] == row["to"] else f"{row['from']} – {row['to']}"


def _link(side: dict[str, Any], base: str) -> str:
    text = f"{side['version']}"
    if side.get("log"):
        text = f"[{text}]({base}{side['log']})"
    if side.get("confirm_log"):
        text += f" ([x{side['runs'] - 1}]({base}{side['confirm_log']}))"
    return text


def boundary_sentence(group: list[dict[str, Any]], base: str = "") -> str:
    """One sentence for the boundaries of one line sharing the same two releases (scope and tracing often do)."""
    b = group[0]
    changes = ", ".join(f"{WORDS[x['dimension']]} **{x['from']} → {x['to']}**" for x in group)
    status = "confirmed" if all(x["confirmed"] for x in group) else "NOT confirmed"
    gap = f"; {b['between']['note']}" if b.get("between") else ""
    return (f"{changes}: last before {_link(b['before'], base)}, first after {_link(b['after'], base)} "
            f"({status}: 1 + {b['after']['runs'] - 1} runs on each side{gap}). {md_text(b['explanation'])}")


def grouped(boundaries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for b in boundaries:
        groups.setdefault((b["before"]["version"], b["after"]["version"]), []).append(b)
    return list(groups.values())


def render_line(d: dict[str, Any], base: str = "") -> list[str]:
    out = [f"### `{d['line']}`", ""]
    fixed = ", ".join(f"{k} {v}" for k, v in d["fixed"].items())
    out.append(f"{d['releases']} releases of {d['package']}, {d['measurable']} measurable here"
               + (f"; fixed: {fixed}" if fixed else "") + f"; {d['cells']} cells measured ({d['app_runs']} app runs)"
               + (f" in {d['seconds']:.0f} s" if d.get("seconds") else "")
               + ("" if d["status"] == "done" else f"; **{d['status']}**") + ".")
    if d.get("story"):
        out += ["", f"Scope data: {story_text(d['story']['scope']) or 'never answered'}. "
                    f"Tracing: {story_text(d['story']['tracing']) or 'never answered'}."]
    out += ["", "| releases | scope data | tracing | measured | context storage |", "|---|---|---|---|---|"]
    for row in d["timeline"]:
        if row["kind"] == "excluded":
            out.append(f"| {_span(row)} ({row['releases']}) | not measured | | | {md_text(clipped('; '.join(row['reasons']), 200))} |")
        elif row["kind"] == "unknown":
            out.append(f"| {_span(row)} ({row['releases']}) | cannot answer | cannot answer | {len(row['measured'])} "
                       f"| {md_text(cause_text(row))} |")
        elif row["kind"] == "unresolved":
            out.append(f"| {_span(row)} ({row['releases']}) | not measured yet | | | |")
        else:
            out.append(f"| {_span(row)} ({row['releases']}) | {row['scope']} | {row['tracing']} | {len(row['measured'])} "
                       f"| {', '.join(row.get('context_backend', []))} |")
    out.append("")
    if d["boundaries"]:
        out += [f"- {boundary_sentence(g, base)}" for g in grouped(d["boundaries"])]
    else:
        out.append("- no boundary: every release that answered gave the same answers.")
    out.append("")
    return out


HOW = """How to read it. Each line is one app, variant, Python and fixed versions, with one package open; every
release of that package PyPI lists (neither yanked nor a pre-release) is in its timeline, cut into ranges
with the same answers. Releases that cannot install on that Python, or that the app's `not_applicable` rules
exclude, are listed as *not measured*. The search measures both ends, every {stride}th release and both
sides of every major version change, then halves every interval whose ends answered differently until the
two releases are neighbours. Each boundary's two releases are then measured {repeats} more times; a release
whose repeats disagree with its first run becomes *cannot answer* there and the boundary moves outwards.
**What the stride can miss**: a change undone within fewer than {stride} releases between two samples
(both samples answer the same, so nothing is searched in between). **Cells that cannot answer** (unsupported,
error, timeout, flaky) are never an answer: a boundary is only between two releases that both answered, and
a boundary across releases that cannot answer says so. Inside a range, releases not measured are inferred
from the measured releases on both sides, which agree. Logs: the first run (`version`) and the {repeats}
confirmation runs (`x{repeats}`) of both sides of every boundary."""


def render_markdown(doc: dict[str, Any], base: str = "") -> str:
    t = doc["totals"]
    out = ["# Where the answers change: the isolation history", ""]
    out.append(f"Last written by `{doc['command']}` at {doc['generated_at']} (backend {doc['backend']}"
               + (f", wall time {doc['wall_s'] / 60:.0f} min" if doc.get("wall_s") else "") + "). "
               f"{t['done']} of {t['lines']} lines done: {t['cells']} cells measured ({t['app_runs']} app runs) "
               f"over {t['measurable']} measurable releases, {t['boundaries']} boundaries.")
    runs = doc.get("runs") or []
    if len(runs) > 1 or (runs and runs[0].get("command") != doc["command"]):
        out += ["", "The lines come from these runs (each line's `measured_by` in history.json names its own):", ""]
        out += [f"- `{r['command'] or 'an earlier run (not recorded)'}`"
                + (f" at {r['commit'][:12]}" if r.get("commit") else "")
                + (f" (committed in {r['committed_in']})" if r.get("committed_in") else "")
                + (f", backend {r['backend']}" if r.get("backend") else "")
                + (f", {r['at'][:10]}" if r.get("at") else "") + f": {r['lines']} line(s)" for r in runs]
    if doc.get("pending"):
        out += ["", f"**Partial**: {len(doc['pending'])} line(s) not finished: "
                + ", ".join(f"`{p}`" for p in doc["pending"][:20]) + (" ..." if len(doc["pending"]) > 20 else "")]
    out += ["", HOW.format(stride=doc["stride"], repeats=doc["repeats"]), ""]
    out += ["## Every boundary", "", "| line | change | last before | first after | explanation |", "|---|---|---|---|---|"]
    for d in doc["lines"]:
        for b in d["boundaries"]:
            mark = "" if b["confirmed"] else " (not confirmed)"
            gap = " (across releases that cannot answer)" if b.get("between") else ""
            out.append(f"| `{d['line']}` | {WORDS[b['dimension']]} {b['from']} → {b['to']}{mark}{gap} | "
                       f"{_link(b['before'], base)} | {_link(b['after'], base)} | {md_text(b['explanation'])} |")
    out.append("")
    apps: dict[str, list[dict]] = {}
    for d in doc["lines"]:
        apps.setdefault(d["app"], []).append(d)
    for app in sorted(apps):
        out += [f"## {app}", ""]
        for d in apps[app]:
            out += render_line(d, base)
    return "\n".join(out).rstrip() + "\n"


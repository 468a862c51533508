"""results/index.html: one self-contained page (no external assets) with the answer first, the tables,
filters, and every cell's evidence behind a permalink. Pure."""
from __future__ import annotations

import json
from typing import Any

from packaging.version import Version

from ..bisect.history import cause_text, clipped
from .advice import CLAIM, SCOPE, TRACING, scope_mark, scope_words
from .view import app_views, minor, pinned


def _json(value: Any) -> str:
    return json.dumps(value).replace("</", "<\\/")


def render_html(doc: dict[str, Any]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("matrix.report", "templates"), autoescape=select_autoescape())
    cells = doc["cells"]
    ran = [c for c in cells if c["verdict"] != "unsupported"]
    packages = sorted({f"{k} {v}" for c in ran for k, v in c["packages"].items() if k in pinned(c)},
                      key=lambda text: (text.split(" ")[0], Version(text.split(" ")[1])
                                        if text.split(" ")[1][:1].isdigit() else Version("0")))
    return env.get_template("index.html.j2").render(
        doc=doc, apps=app_views(doc), summary=doc.get("summary") or [], scope=SCOPE, tracing=TRACING, claim=CLAIM,
        pythons=sorted({minor(c["python"]) for c in ran}, key=Version), packages=packages,
        mark=scope_mark, words=scope_words, cause_text=cause_text, clipped=clipped,
        cells_json=_json({c["id"]: c for c in cells}), summary_json=_json(doc.get("summary") or []))

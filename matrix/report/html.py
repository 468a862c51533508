"""results/index.html: one self-contained page with the tables and every cell's evidence. Pure."""
from __future__ import annotations

import json
from typing import Any

from packaging.version import Version

from .advice import MEANINGS, SYMBOLS
from .markdown import CLAIM_SYMBOLS, _minor, _row_key


def render_html(doc: dict[str, Any]) -> str:
    """A single self-contained page (no external assets) with the same tables and every cell's evidence."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("matrix.report", "templates"), autoescape=select_autoescape())
    cells = doc["cells"]
    apps = []
    for app in sorted({c["app"] for c in cells}, key=lambda a: (a != "threads", a)):
        app_cells = [c for c in cells if c["app"] == app]
        pythons = sorted({_minor(c["python"]) for c in app_cells}, key=Version)
        rows: dict[str, dict[str, dict]] = {}
        for c in app_cells:
            rows.setdefault(_row_key(c), {})[_minor(c["python"])] = c
        apps.append({"name": app, "pythons": pythons, "rows": rows})
    return env.get_template("index.html.j2").render(
        doc=doc, apps=apps, symbols=SYMBOLS, meanings=MEANINGS, claim_symbols=CLAIM_SYMBOLS,
        cells_json=json.dumps({c["id"]: c for c in cells}).replace("</", "<\\/"))

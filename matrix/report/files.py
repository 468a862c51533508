"""The report's only side effect: writing matrix.json, README.md and index.html (and reading them back)."""
from __future__ import annotations

import json
import os
from typing import Any

from .html import render_html
from .markdown import render_markdown


def write_results(doc: dict[str, Any], outdir: str, history: dict[str, Any] | None = None) -> list[str]:
    """Write matrix.json, README.md and index.html into outdir; return the paths written. With `history`
    (results/history.json, `nox -s history`), index.html gets its section; matrix.json stays as it was."""
    os.makedirs(outdir, exist_ok=True)
    written = []
    page = render_html(dict(doc, history=history) if history else doc)
    for name, text in (("matrix.json", json.dumps(doc, indent=1, ensure_ascii=False) + "\n"),
                       ("README.md", render_markdown(doc)), ("index.html", page)):
        path = os.path.join(outdir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
    return written


def load_results(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)

"""results/README.md rendered from the committed results. Pure."""
import json
import os

import pytest

from matrix.paths import REPO
from matrix.report.markdown import render_markdown


def test_every_committed_cell_has_its_own_place_in_the_table():
    """Rows must never merge two cells (routes, extra pins): every cell's log is linked from README.md."""
    path = os.path.join(REPO, "results", "matrix.json")
    if not os.path.exists(path):
        pytest.skip("no committed results yet")
    with open(path) as fh:
        doc = json.load(fh)
    text = render_markdown(doc)
    missing = [c["id"] for c in doc["cells"] if c.get("log") and f"]({c['log']} " not in text]
    assert not missing, missing[:5]


def test_a_reason_from_a_run_is_literal_markdown_not_html_emphasis_or_a_cell_end():
    """An app's HTTP 500 page, `__init__.py` and `a | b` in a committed cell's reason render as written: in
    results/README.md's list of cells that are not isolated, and in history.md's table of a line."""
    from matrix.bisect.history import render_line
    from matrix.report.markdown import md_text

    path = os.path.join(REPO, "results", "matrix.json")
    if not os.path.exists(path):
        pytest.skip("no committed results yet")
    with open(path) as fh:
        doc = json.load(fh)
    odd = next(c for c in doc["cells"] if c["verdict"] not in ("isolated", "unsupported"))
    reason = "HTTP 500: <html><title>500</title> from flask/__init__.py | tag *unit* [x]"
    odd["reason"] = reason
    text = render_markdown(doc)
    assert md_text(reason) in text and reason not in text
    assert "&lt;html&gt;&lt;title&gt;500&lt;/title&gt;" in md_text(reason) and "flask/\\_\\_init\\_\\_.py \\|" in md_text(reason)
    line = {"line": "x/plain/py3.12/sentry-sdk-*", "fixed": {}, "releases": 2, "package": "sentry-sdk",
            "measurable": 2, "cells": 2, "app_runs": 2, "status": "done", "boundaries": [],
            "timeline": [{"from": "0.1.0", "to": "0.2.0", "releases": 2, "kind": "unknown", "measured": ["0.1.0"],
                          "verdicts": ["error"], "reason": reason}]}
    row = [r for r in render_line(line) if r.startswith("| 0.1.0")][0]
    assert row.count(" | ") == 4 and "&lt;html&gt;" in row  # five cells: the reason's own | does not end one

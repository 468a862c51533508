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

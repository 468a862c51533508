"""results/index.html in a real headless Chromium: it loads, the filters work, a cell's detail opens."""
import json
import os

import pytest

from matrix.paths import REPO

pytest.importorskip("selenium")
from matrix.report.browser import BrowserMissing, chromium, serve  # noqa: E402
from matrix.report.files import write_results  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The committed matrix.json rendered by the current code into a temporary results directory."""
    src = os.path.join(REPO, "results", "matrix.json")
    if not os.path.exists(src):
        pytest.skip("no committed results/matrix.json yet")
    out = tmp_path_factory.mktemp("results")
    with open(src) as fh:
        doc = json.load(fh)
    write_results(doc, str(out))
    try:
        with serve(str(out)) as base, chromium() as browser:
            browser.get(base + "/index.html")
            yield browser, doc
    except BrowserMissing as exc:
        pytest.skip(str(exc))


def test_page_loads_with_every_cell(page):
    from selenium.webdriver.common.by import By

    browser, doc = page
    assert "sentry-context-matrix" in browser.title
    buttons = browser.find_elements(By.CSS_SELECTOR, "td[data-verdict] button")
    assert len(buttons) == len(doc["cells"])
    assert browser.execute_script("return Object.keys(CELLS).length") == len(doc["cells"])


def test_verdict_filter_hides_other_verdicts(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser, doc = page
    wanted = next(v for v in ("leak", "nested", "isolated") if any(c["verdict"] == v for c in doc["cells"]))
    Select(browser.find_element(By.ID, "f-verdict")).select_by_visible_text(wanted)
    visible = [td for td in browser.find_elements(By.CSS_SELECTOR, "td[data-verdict]")
               if "hidden" not in td.get_attribute("class")]
    assert visible and all(td.get_attribute("data-verdict") == wanted for td in visible)
    assert len(visible) == sum(1 for c in doc["cells"] if c["verdict"] == wanted)
    Select(browser.find_element(By.ID, "f-verdict")).select_by_visible_text("all")
    Select(browser.find_element(By.ID, "f-app")).select_by_visible_text("threads")
    shown = [s.get_attribute("data-app") for s in browser.find_elements(By.CSS_SELECTOR, "section.app")
             if s.is_displayed()]
    assert shown == ["threads"]
    Select(browser.find_element(By.ID, "f-app")).select_by_visible_text("all")


def test_clicking_a_cell_opens_its_evidence(page):
    from selenium.webdriver.common.by import By

    browser, doc = page
    cell = next((c for c in doc["cells"] if c["verdict"] == "leak"), doc["cells"][0])
    button = browser.find_element(By.CSS_SELECTOR, f"button[data-id='{cell['id']}']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    detail = browser.find_element(By.ID, "detail")
    assert detail.is_displayed()
    text = detail.text
    assert cell["id"] in text and cell["verdict"] in text
    assert cell["context_backend"] in text and f"sentry-sdk {cell['packages']['sentry-sdk']}" in text
    for line in cell["checks"]["scope_leak"].get("evidence", [])[:1]:
        assert line in text
    assert detail.find_element(By.LINK_TEXT, "log").get_attribute("href").endswith(cell["log"])

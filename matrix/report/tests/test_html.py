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


def _visible_cells(browser):
    from selenium.webdriver.common.by import By

    return [td for td in browser.find_elements(By.CSS_SELECTOR, "td.cell")
            if td.is_displayed() and "dim" not in td.get_attribute("class")]


def _select(browser, element_id, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, element_id)).select_by_visible_text(text)


def test_page_loads_with_every_cell_that_ran_and_the_answer_first(page):
    from selenium.webdriver.common.by import By

    browser, doc = page
    assert "sentry-context-matrix" in browser.title
    ran = [c for c in doc["cells"] if c["verdict"] != "unsupported"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "td.cell button")) == len(ran)
    assert browser.execute_script("return Object.keys(CELLS).length") == len(doc["cells"])
    first_h2 = browser.find_element(By.CSS_SELECTOR, "h2").text
    assert first_h2 == "The answer, per app and variant"
    assert browser.find_element(By.CSS_SELECTOR, "meta[name=viewport]")
    # every mark has a text alternative (readable without a colour-emoji font)
    for button in browser.find_elements(By.CSS_SELECTOR, "td.cell button")[:50]:
        assert "scope " in button.get_attribute("aria-label")


def test_python_and_scope_filters_hide_rows(page):
    from selenium.webdriver.common.by import By

    browser, doc = page
    ran = [c for c in doc["cells"] if c["verdict"] != "unsupported"]
    python = sorted({".".join(c["python"].split(".")[:2]) for c in ran})[0]
    _select(browser, "f-python", python)
    visible = _visible_cells(browser)
    assert visible and all(td.get_attribute("data-py") == python for td in visible)
    assert len(visible) == sum(1 for c in ran if c["python"].startswith(python + "."))
    for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-row]"):  # rows without such a cell are hidden
        if row.is_displayed():
            assert row.find_elements(By.CSS_SELECTOR, f"td.cell[data-py='{python}']")
    _select(browser, "f-python", "all")
    wanted = next(s for s in ("leak", "isolated") if any(c.get("scope") == s for c in ran))
    _select(browser, "f-scope", {"leak": "leaks", "isolated": "isolated"}[wanted])
    visible = _visible_cells(browser)
    assert len(visible) == sum(1 for c in ran if c.get("scope") == wanted)
    _select(browser, "f-scope", "any")
    _select(browser, "f-app", "threads")
    shown = [s.get_attribute("data-app") for s in browser.find_elements(By.CSS_SELECTOR, "section.app")
             if s.is_displayed()]
    assert shown == ["threads"]
    _select(browser, "f-app", "all")


def test_permalink_opens_the_panel_and_esc_and_the_button_close_it(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser, doc = page
    cell = next((c for c in doc["cells"] if c.get("scope") == "leak"), doc["cells"][0])
    base = browser.current_url.split("#")[0]
    browser.get(base + "#" + cell["id"])
    detail = browser.find_element(By.ID, "detail")
    assert detail.is_displayed()
    text = detail.text
    assert cell["id"] in text and f"scope data {cell['scope']}" in text
    assert cell["context_backend"] in text and f"sentry-sdk {cell['packages']['sentry-sdk']}" in text
    assert "What to do" in text  # the advice of the cell's app and variant
    for line in cell["checks"]["scope_leak"].get("evidence", [])[:1]:
        assert line in text
    assert detail.find_element(By.LINK_TEXT, "log").get_attribute("href").endswith(cell["log"])
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    assert not detail.is_displayed()
    assert "#" not in browser.current_url
    button = browser.find_element(By.CSS_SELECTOR, f"td.cell button[data-id='{cell['id']}']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    assert detail.is_displayed() and browser.current_url.endswith("#" + cell["id"])
    browser.find_element(By.ID, "detail-close").click()
    assert not detail.is_displayed()

"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the page test
and the committed screenshot. Nothing is downloaded: the binaries are given explicitly and
Selenium Manager is kept offline."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from typing import Iterator

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


class BrowserMissing(RuntimeError):
    """Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)."""


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if os.path.exists(p)), None)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(directory: str) -> Iterator[str]:
    """Serve a directory on 127.0.0.1 (a free port) for as long as the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 900, phone: bool = False) -> Iterator["object"]:
    """A headless Chromium WebDriver with no network beyond loopback and a throwaway profile. `phone`
    emulates a touch device of that viewport (a desktop window cannot be made narrower than ~500 px)."""
    binary, driver = _first(CHROMIUM), _first(CHROMEDRIVER)
    if not binary or not driver:
        raise BrowserMissing("headless Chromium needs Debian's chromium and chromium-driver packages")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="scm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # The viewport itself is width x height (a window size would include the browser's own chrome).
    options.add_experimental_option("mobileEmulation", {
        "deviceMetrics": {"width": width, "height": height, "pixelRatio": 1, "touch": phone}})
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


SIZES = {"index.png": (1400, 900, False), "index-phone.png": (390, 844, True)}


def screenshots(results_dir: str) -> list[str]:
    """The committed pictures of results_dir/index.html: a desktop (1400x900) and a phone (390x844)
    window, each with the first leaking cell's panel open through its permalink."""
    import json

    with open(os.path.join(results_dir, "matrix.json")) as fh:
        cells = json.load(fh)["cells"]
    pick = next((c for c in cells if c.get("scope") == "leak"), cells[0])
    written = []
    for name, (width, height, phone) in SIZES.items():
        with serve(results_dir) as base, chromium(width, height, phone) as browser:
            browser.get(base + "/index.html#" + pick["id"])
            browser.execute_script("document.querySelector('h2').scrollIntoView({block: 'start'})")
            path = os.path.join(results_dir, name)
            browser.save_screenshot(path)
            written.append(path)
    return written


if __name__ == "__main__":
    import sys

    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "results")
    for written in screenshots(results):
        print("wrote", written)

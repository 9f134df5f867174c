"""Headless Chromium for page tests (any page: the conv lab, the backprop explorer, ...).

Uses Debian's ``chromium`` and ``/usr/bin/chromedriver`` through selenium, with the flags
``--headless=new --no-sandbox --disable-gpu``. The DevTools performance log is switched on, so
:func:`network_requests` lists every request a page made: a self-contained page makes none
besides its own ``file://`` load (and ``data:`` URLs).

``tests/conftest.py`` exposes :func:`start_browser` as the session fixture ``browser``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu")


class BrowserUnavailable(RuntimeError):
    """Chromium, chromedriver or selenium is missing (the message says which and how to get it)."""


def chromium_binary() -> str:
    """Path of the Chromium binary, or raise :class:`BrowserUnavailable`."""
    for c in CHROMIUM_CANDIDATES:
        if os.path.exists(c):
            return c
    found = shutil.which("chromium")
    if found:
        return found
    raise BrowserUnavailable("no Chromium: apt-get install chromium chromium-driver")


def start_browser(width: int = 1400, height: int = 1000) -> Any:
    """A selenium Chrome driver on headless Debian Chromium with the performance log on."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:  # pragma: no cover - the test extra installs selenium
        raise BrowserUnavailable(f"selenium is not installed: pip install selenium ({e})") from e
    if not os.path.exists(CHROMEDRIVER):
        raise BrowserUnavailable(f"no {CHROMEDRIVER}: apt-get install chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_binary()
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def open_page(driver: Any, path: str | os.PathLike) -> None:
    """Load a local file and drop the log entries of earlier pages."""
    driver.get_log("performance")  # discard what came before
    driver.get(Path(path).resolve().as_uri())


def wait_ready(driver: Any, timeout: float = 30.0) -> None:
    """Wait until the page says its first render is done (``document.body.dataset.ready``)."""
    deadline = time.time() + timeout
    while not driver.execute_script("return document.body.dataset.ready === '1'"):
        assert time.time() < deadline, "the page did not finish its first render"
        time.sleep(0.05)


def open_ready(driver: Any, path: str | os.PathLike) -> None:
    """:func:`open_page`, then :func:`wait_ready`."""
    open_page(driver, path)
    wait_ready(driver)


def network_requests(driver: Any) -> list[str]:
    """URLs of every request the page made since :func:`open_page` (DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def outside_requests(driver: Any, page: str | os.PathLike) -> list[str]:
    """Requests that leave the page: anything but the page's own file and ``data:`` URLs."""
    own = Path(page).resolve().as_uri()
    return [u for u in network_requests(driver) if u != own and not u.startswith("data:")]


def console_errors(driver: Any) -> list[str]:
    """Console messages of level SEVERE (script errors, CSP violations)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]

"""Reading the conv lab page's DOM in browser tests (cells are keyed by their full index)."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By


def cells(driver: Any, css: str) -> list:
    """The elements matching ``css``."""
    return driver.find_elements(By.CSS_SELECTOR, css)


def keys(elements: Any) -> set[str]:
    """The ``data-key`` of each element."""
    return {e.get_attribute("data-key") for e in elements}


def texts(driver: Any, anim: str, grid: str) -> dict[str, str]:
    """``{cell key: shown text}`` of one grid of one animation."""
    return {
        e.get_attribute("data-key"): e.text
        for e in cells(driver, f"#anim-{anim} .grid[data-grid='{grid}'] td.cell")
    }

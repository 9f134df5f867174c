"""Shared pytest fixtures for the engine tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed numpy generator, so every test sees the same data on every run."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (selenium) shared by the page tests; see tests/browser.py."""
    from browser import start_browser

    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()

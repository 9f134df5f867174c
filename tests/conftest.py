"""Shared pytest fixtures for the engine tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed numpy generator, so every test sees the same data on every run."""
    return np.random.default_rng(1234)

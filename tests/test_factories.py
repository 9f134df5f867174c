"""Tensor factories (factories.py): values and dtypes against NumPy/PyTorch, seeding, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tinygrad_conv as tc


def test_eye():
    np.testing.assert_array_equal(tc.eye(3).numpy(), torch.eye(3).numpy())
    np.testing.assert_array_equal(tc.eye(2, 4, k=1).numpy(), np.eye(2, 4, 1))
    assert tc.eye(2).dtype == np.float32 and tc.eye(2, dtype=np.float64).dtype == np.float64
    assert tc.eye(3, requires_grad=True).requires_grad


def test_linspace_logspace():
    np.testing.assert_allclose(tc.linspace(-1, 2, 7).numpy(), torch.linspace(-1, 2, 7).numpy())
    y = tc.linspace(0, 1, 5, dtype=np.float64)
    assert y.dtype == np.float64 and y.numpy()[-1] == 1.0
    np.testing.assert_allclose(
        tc.logspace(0, 3, 4, base=2.0).numpy(), torch.logspace(0, 3, 4, base=2.0).numpy()
    )
    assert tc.linspace(0, 1, 0).shape == (0,)


def test_like_and_empty():
    x = tc.tensor(np.arange(6, dtype=np.float64).reshape(2, 3))
    y = tc.full_like(x, 2.5)
    assert y.shape == (2, 3) and y.dtype == np.float64 and (y.numpy() == 2.5).all()
    assert tc.full_like(x, 1, dtype=np.int32).dtype == np.int32
    assert tc.empty(2, 3).shape == (2, 3) and tc.empty(2, 3).dtype == np.float32
    assert tc.empty((4,), dtype=np.float64).shape == (4,)
    e = tc.empty_like(x)
    assert e.shape == x.shape and e.dtype == x.dtype
    assert (
        tc.rand_like(x).dtype == np.float64 and tc.randn_like(tc.tensor([1, 2])).dtype == np.float32
    )


def test_randint():
    tc.manual_seed(0)
    a = tc.randint(3, 7, (1000,))
    assert a.dtype == np.int64 and a.numpy().min() == 3 and a.numpy().max() == 6
    b = tc.randint(5, size=(2, 3), generator=1)
    assert b.shape == (2, 3) and 0 <= b.numpy().min() and b.numpy().max() < 5
    np.testing.assert_array_equal(
        tc.randint(0, 100, 10, generator=7).numpy(), tc.randint(0, 100, 10, generator=7).numpy()
    )
    assert not a.requires_grad


def test_bad_input():
    with pytest.raises(ValueError, match="eye: n must be a non-negative int, got -1"):
        tc.eye(-1)
    with pytest.raises(ValueError, match="linspace: num must be a non-negative int, got 2.5"):
        tc.linspace(0, 1, 2.5)
    with pytest.raises(ValueError, match="randint: low=5 must be less than high=5"):
        tc.randint(5, 5, (2,))
    with pytest.raises(TypeError, match="randint: high must be an int, got 2.5"):
        tc.randint(0, 2.5)
    with pytest.raises(ValueError, match=r"shape must be non-negative integers, got \(-2,\)"):
        tc.empty(-2)
    with pytest.raises(TypeError, match="requires_grad: only floating-point tensors"):
        tc.eye(2, dtype=np.int64, requires_grad=True)

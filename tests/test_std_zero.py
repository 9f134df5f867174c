"""tc.std where the variance is 0: value 0 and gradient 0 like PyTorch (not NaN from sqrt'(0))."""

from __future__ import annotations

import numpy as np
import torch

import tinygrad_conv as tc
from tinygrad_conv.gradcheck import gradcheck


def test_std_of_equal_values_has_zero_gradient_like_torch():
    x = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    t = tc.tensor(x.copy(), requires_grad=True)
    y = tc.std(t, 1)
    tt = torch.tensor(x, requires_grad=True)
    ty = torch.std(tt, 1, correction=0)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    w = np.array([2.0, 3.0])
    (y * w).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(t.grad.data, tt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert t.grad.data[0].tolist() == [0.0, 0.0, 0.0]


def test_std_keeps_nan_and_the_nonzero_rows_are_differentiable():
    t = tc.tensor(np.array([[1.0, np.nan], [2.0, 2.0]]), requires_grad=True)
    y = tc.std(t, 1)
    assert np.isnan(y.data[0]) and y.data[1] == 0.0
    x = tc.tensor(np.array([[0.3, 1.2, -0.7], [2.0, 2.0, 2.0]]), requires_grad=True)
    assert gradcheck(lambda a: tc.std(a, 1)[0:1], [x])


def test_std_without_zero_variance_is_one_sqrt_node():
    t = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert tc.std(t).grad_fn.name == "sqrt"

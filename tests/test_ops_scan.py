"""Reductions and scans (ops/scan.py): prod (also with zeros), cumsum, cumprod (also with zeros),
std, sort/topk values, and the non-differentiable any/all/argmax/argmin; against PyTorch in float32
and float64, gradcheck/gradgradcheck in float64, vjp rules against the recorded backward,
hypothesis over shapes and axes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from vjp_rules import check_rule

import tinygrad_conv as tc
from tinygrad_conv.ops import indexing as I
from tinygrad_conv.ops import scan as S

HYP = settings(max_examples=15, deadline=None, derandomize=True)


def leaf(x, dtype=np.float64):
    return tc.tensor(np.asarray(x, dtype=dtype), requires_grad=True)


def torch_prod(x, axis, keepdims):
    if axis is None:
        return torch.prod(x)
    axes = (axis,) if isinstance(axis, int) else axis
    for ax in sorted((a % x.ndim for a in axes), reverse=True):
        x = torch.prod(x, ax, keepdim=keepdims)
    return x


# name: (tc fn, torch fn) on a [3, 4] input
CASES = {
    "prod_all": (lambda x: tc.prod(x), lambda x: torch_prod(x, None, False)),
    "prod_axis1": (lambda x: tc.prod(x, 1), lambda x: torch_prod(x, 1, False)),
    "prod_axes_keep": (
        lambda x: tc.prod(x, (0, 1), keepdims=True),
        lambda x: torch_prod(x, (0, 1), True),
    ),
    "cumsum0": (lambda x: tc.cumsum(x, 0), lambda x: torch.cumsum(x, 0)),
    "cumsum_neg": (lambda x: tc.cumsum(x, -1), lambda x: torch.cumsum(x, -1)),
    "cumprod1": (lambda x: tc.cumprod(x, 1), lambda x: torch.cumprod(x, 1)),
    "std_all": (lambda x: tc.std(x), lambda x: torch.std(x, correction=0)),
    "std_ddof1": (
        lambda x: tc.std(x, 0, ddof=1, keepdims=True),
        lambda x: torch.std(x, 0, correction=1, keepdim=True),
    ),
    "sort_values": (lambda x: tc.sort(x, 1)[0], lambda x: torch.sort(x, 1)[0]),
    "sort_desc": (
        lambda x: tc.sort(x, 0, descending=True)[0],
        lambda x: torch.sort(x, 0, descending=True)[0],
    ),
    "topk": (lambda x: tc.topk(x, 2, 1)[0], lambda x: torch.topk(x, 2, 1)[0]),
    "topk_smallest": (
        lambda x: tc.topk(x, 3, 0, largest=False)[0],
        lambda x: torch.topk(x, 3, 0, largest=False)[0],
    ),
}


def data(rng, shape=(3, 4), zeros=0):
    x = rng.standard_normal(shape)
    x = np.sign(x) * (np.abs(x) + 0.3)  # no ties, no zeros (unless asked)
    x.reshape(-1)[:zeros] = 0
    return x


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(name, dtype, rng):
    fn, tfn = CASES[name]
    x = data(rng).astype(dtype)
    t = leaf(x, dtype)
    y = fn(t)
    v = rng.standard_normal(y.shape).astype(dtype)
    y.backward(tc.tensor(v))
    q = torch.tensor(x, requires_grad=True)
    ty = tfn(q)
    ty.backward(torch.tensor(v))
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), **tol)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name, rng):
    fn, _ = CASES[name]
    x = leaf(data(rng))
    assert tc.gradcheck(fn, [x])
    assert tc.gradgradcheck(fn, [x])


@pytest.mark.parametrize("zeros", [1, 2])
@pytest.mark.parametrize("axis", [None, 1])
def test_prod_with_zeros_matches_torch(zeros, axis, rng):
    x = data(rng, zeros=zeros)
    t = leaf(x)
    y = tc.prod(t, axis)
    y.backward(tc.ones_like(y))
    q = torch.tensor(x, requires_grad=True)
    torch_prod(q, axis, False).sum().backward()
    np.testing.assert_allclose(y.numpy(), torch_prod(q, axis, False).detach().numpy(), atol=1e-15)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert tc.gradcheck(lambda a: tc.prod(a, axis), [leaf(x)])
    if zeros == 1:  # second derivatives exact through a lone zero (see ops/scan.py)
        assert tc.gradgradcheck(lambda a: tc.prod(a, axis), [leaf(x)])
        h = torch.autograd.functional.hessian(lambda a: torch_prod(a, axis, False).sum(), q)
        t = leaf(x)
        (gx,) = tc.grad(tc.prod(t, axis).sum(), [t], create_graph=True)
        (row,) = tc.grad(gx.reshape(-1)[0], [t])
        np.testing.assert_allclose(row.numpy(), h.reshape(12, 3, 4)[0].numpy(), atol=1e-15)


def test_cumprod_with_zeros_matches_torch(rng):
    x = data(rng, (2, 5))
    x[0, 1] = 0.0
    x[1, 2] = x[1, 4] = 0.0
    t = leaf(x)
    y = tc.cumprod(t, 1)
    v = rng.standard_normal(y.shape)
    y.backward(tc.tensor(v))
    q = torch.tensor(x, requires_grad=True)
    torch.cumprod(q, 1).backward(torch.tensor(v))
    np.testing.assert_allclose(y.numpy(), np.cumprod(x, 1), atol=1e-15)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert tc.gradcheck(lambda a: tc.cumprod(a, 1), [leaf(x)])


def test_vjp_rules(rng):
    x = data(rng)
    check_rule(tc.prod(leaf(x), 1), S.Prod)
    check_rule(tc.prod(leaf(x)), S.Prod)
    check_rule(tc.cumsum(leaf(x), 1), S.CumSum)
    check_rule(tc.cumprod(leaf(x), 0), S.CumProd)
    check_rule(tc.sort(leaf(x), 1)[0], I.Gather)


def test_non_differentiable_reductions():
    x = np.array([[0.0, 2.0, -1.0], [3.0, 3.0, 0.5]])
    t = leaf(x)
    for name in ("argmax", "argmin"):
        for axis in (None, 0, 1, -1):
            got = getattr(tc, name)(t, axis)
            ref = getattr(torch, name)(torch.tensor(x), axis)
            assert not got.requires_grad and got.dtype == np.int64
            np.testing.assert_array_equal(got.numpy(), ref.numpy())
        got = getattr(tc, name)(t, 1, keepdims=True)
        assert got.shape == (2, 1)
    for name in ("any", "all"):
        for axis in (None, 0, 1):
            got = getattr(tc, name)(t, axis)
            ref = (
                getattr(torch, name)(torch.tensor(x))
                if axis is None
                else (getattr(torch, name)(torch.tensor(x), axis))
            )
            assert not got.requires_grad and got.dtype == bool
            np.testing.assert_array_equal(got.numpy(), ref.numpy())
    np.testing.assert_array_equal(t.argmax(1).numpy(), [1, 0])  # first of the tied maxima
    vals, idx = tc.sort(t, 1)
    assert vals.requires_grad and not idx.requires_grad and idx.dtype == np.int64
    np.testing.assert_array_equal(idx.numpy(), torch.sort(torch.tensor(x), dim=1, stable=True)[1])
    ties = np.array([1.0, 3.0, 3.0, 2.0])
    _, idx = tc.sort(tc.tensor(ties), descending=True)
    ref = torch.sort(torch.tensor(ties), descending=True, stable=True)[1]
    np.testing.assert_array_equal(idx.numpy(), ref.numpy())
    vals, idx = tc.topk(tc.tensor(ties), 2)
    np.testing.assert_array_equal(vals.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(idx.numpy(), [1, 2])


def test_tensor_methods(rng):
    x = leaf(data(rng))
    np.testing.assert_allclose(x.prod(1).numpy(), np.prod(x.numpy(), 1))
    np.testing.assert_allclose(x.cumsum(1).numpy(), np.cumsum(x.numpy(), 1))
    np.testing.assert_allclose(x.cumprod(0).numpy(), np.cumprod(x.numpy(), 0))
    np.testing.assert_allclose(x.std(0).numpy(), np.std(x.numpy(), 0))
    np.testing.assert_array_equal(x.argmax(0).numpy(), np.argmax(x.numpy(), 0))
    assert x.any().item() and x.all().item()
    np.testing.assert_allclose(x.topk(1)[0].numpy(), x.numpy().max(1, keepdims=True))
    np.testing.assert_allclose(x.sort()[0].numpy(), np.sort(x.numpy()))


def test_bad_input():
    t = tc.ones(2, 3)
    with pytest.raises(ValueError, match="prod: axis 2 is out of range for a tensor with 2 dims"):
        tc.prod(t, 2)
    with pytest.raises(
        ValueError, match="cumsum: axis -3 is out of range for a tensor with 2 dims"
    ):
        tc.cumsum(t, -3)
    with pytest.raises(TypeError, match=r"cumprod: axis must be an int, got \(0, 1\)"):
        tc.cumprod(t, (0, 1))
    with pytest.raises(ValueError, match="argmax: axis 5 is out of range"):
        tc.argmax(t, 5)
    with pytest.raises(
        ValueError, match=r"argmin: cannot take the min of an empty tensor of shape \(0, 3\)"
    ):
        tc.argmin(tc.zeros(0, 3))
    with pytest.raises(ValueError, match="topk: k=4 is out of range for axis -1 of length 3"):
        tc.topk(t, 4)
    with pytest.raises(ValueError, match="sort: axis 2 is out of range"):
        tc.sort(t, 2)
    with pytest.raises(ValueError, match="var: 1 elements over axis 0 with ddof=1 leave no degree"):
        tc.std(tc.ones(1, 3), 0, ddof=1)


@HYP
@given(
    shape=array_shapes(min_dims=1, max_dims=3, max_side=4),
    op=st.sampled_from(["prod", "cumsum", "cumprod", "std", "sort", "argmax"]),
    data_=st.data(),
)
def test_hypothesis_shapes_and_axes(shape, op, data_):
    axis = data_.draw(st.integers(-len(shape), len(shape) - 1))
    x = data(np.random.default_rng(2), shape)
    t = leaf(x)
    q = torch.tensor(x, requires_grad=True)
    if op == "prod":
        y, ty = tc.prod(t, axis), torch.prod(q, axis)
    elif op == "cumsum":
        y, ty = tc.cumsum(t, axis), torch.cumsum(q, axis)
    elif op == "cumprod":
        y, ty = tc.cumprod(t, axis), torch.cumprod(q, axis)
    elif op == "std":
        y, ty = tc.std(t, axis), torch.std(q, axis, correction=0)
    elif op == "sort":
        y, ty = tc.sort(t, axis)[0], torch.sort(q, axis)[0]
    else:
        np.testing.assert_array_equal(tc.argmax(t, axis).numpy(), torch.argmax(q, axis).numpy())
        return
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12)

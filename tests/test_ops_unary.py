"""Elementwise math and activations (ops/unary.py, ops/activation.py): values and gradients against
PyTorch in float32 and float64, finite-difference gradcheck in float64 on broadcasting shapes,
gradgradcheck for the smooth ops, declared vjp rules against the recorded backward calls,
stability at extreme inputs, non-differentiable results, hypothesis over shapes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes
from vjp_rules import check_rule

import tinygrad_conv as tc
from tinygrad_conv.ops import activation as A
from tinygrad_conv.ops import unary as U

HYP = settings(max_examples=12, deadline=None, derandomize=True)


def sample(rng: np.random.Generator, shape, domain: str, kinks=()) -> np.ndarray:
    x = rng.standard_normal(shape)
    if domain == "positive":
        x = np.abs(x) + 0.5
    elif domain == "unit":
        x = np.tanh(x) * 0.9
    elif domain == "gt1":
        x = np.abs(x) + 1.2
    elif domain == "wide":
        x = x * 4
    elif domain == "nonzero":  # |x| in [0.2, 2]: a mod b with b in [5, 6] has no jump nearby
        x = np.sign(x) * (0.2 + np.abs(np.tanh(x)) * 1.8)
    elif domain == "big":
        x = 5 + np.abs(np.tanh(x))
    for k in kinks:  # keep finite differences away from kinks
        near = np.abs(x - k) < 0.1
        x[near] = k + np.where(x[near] >= k, 0.2, -0.2)
    return x


# name: (tc function, torch function, domain, kinks, smooth, node class)
UNARY = {
    "sin": (tc.sin, torch.sin, "wide", (), True, U.Sin),
    "cos": (tc.cos, torch.cos, "wide", (), True, U.Cos),
    "tan": (tc.tan, torch.tan, "unit", (), True, U.Tan),
    "asin": (tc.asin, torch.asin, "unit", (), True, U.Asin),
    "acos": (tc.acos, torch.acos, "unit", (), True, U.Acos),
    "atan": (tc.atan, torch.atan, "wide", (), True, U.Atan),
    "sinh": (tc.sinh, torch.sinh, "real", (), True, U.Sinh),
    "cosh": (tc.cosh, torch.cosh, "real", (), True, U.Cosh),
    "asinh": (tc.asinh, torch.asinh, "wide", (), True, U.Asinh),
    "acosh": (tc.acosh, torch.acosh, "gt1", (), True, U.Acosh),
    "atanh": (tc.atanh, torch.atanh, "unit", (), True, U.Atanh),
    "exp2": (tc.exp2, torch.exp2, "real", (), True, U.Exp2),
    "log2": (tc.log2, torch.log2, "positive", (), True, U.Log2),
    "log10": (tc.log10, torch.log10, "positive", (), True, U.Log10),
    "expm1": (tc.expm1, torch.expm1, "real", (), True, U.Expm1),
    "log1p": (tc.log1p, torch.log1p, "positive", (), True, U.Log1p),
    "rsqrt": (tc.rsqrt, torch.rsqrt, "positive", (), True, U.Rsqrt),
    "square": (tc.square, torch.square, "real", (), True, U.Square),
    "reciprocal": (tc.reciprocal, torch.reciprocal, "positive", (), True, U.Reciprocal),
    "erf": (tc.erf, torch.erf, "wide", (), True, U.Erf),
    "erfc": (tc.erfc, torch.erfc, "wide", (), True, U.Erfc),
    "ndtr": (tc.ndtr, torch.special.ndtr, "wide", (), True, A.Ndtr),
    "gelu": (tc.gelu, F.gelu, "wide", (), True, A.Gelu),
    "gelu_tanh": (
        lambda x: tc.gelu(x, approximate="tanh"),
        lambda x: F.gelu(x, approximate="tanh"),
        "wide",
        (),
        True,
        A.GeluTanh,
    ),
    "elu": (lambda x: tc.elu(x, 0.7), lambda x: F.elu(x, 0.7), "wide", (0,), True, A.Elu),
    "celu": (lambda x: tc.celu(x, 1.3), lambda x: F.celu(x, 1.3), "wide", (0,), True, A.Celu),
    "selu": (tc.selu, F.selu, "wide", (0,), True, A.Selu),
    "silu": (tc.silu, F.silu, "wide", (), True, A.Silu),
    "softplus": (
        lambda x: tc.softplus(x, 2.0, 5.0),
        lambda x: F.softplus(x, 2.0, 5.0),
        "wide",
        (2.5,),
        True,
        A.Softplus,
    ),
    "logsigmoid": (tc.logsigmoid, F.logsigmoid, "wide", (), True, A.LogSigmoid),
    "hardtanh": (
        lambda x: tc.hardtanh(x, -0.5, 1.5),
        lambda x: F.hardtanh(x, -0.5, 1.5),
        "wide",
        (-0.5, 1.5),
        False,
        A.Hardtanh,
    ),
    "relu6": (tc.relu6, F.relu6, "wide", (0, 6), False, A.Hardtanh),
    "hardsigmoid": (tc.hardsigmoid, F.hardsigmoid, "wide", (-3, 3), False, A.Hardsigmoid),
    "hardswish": (tc.hardswish, F.hardswish, "wide", (-3, 3), True, A.Hardswish),
    "softshrink": (
        lambda x: tc.softshrink(x, 0.4),
        lambda x: F.softshrink(x, 0.4),
        "wide",
        (-0.4, 0.4),
        False,
        A.Softshrink,
    ),
    "hardshrink": (
        lambda x: tc.hardshrink(x, 0.4),
        lambda x: F.hardshrink(x, 0.4),
        "wide",
        (-0.4, 0.4),
        False,
        A.Hardshrink,
    ),
    # composites (no node class of their own)
    "mish": (tc.mish, F.mish, "wide", (), True, None),
    "softsign": (tc.softsign, F.softsign, "wide", (0,), True, None),
    "tanhshrink": (tc.tanhshrink, F.tanhshrink, "wide", (), True, None),
    "softmin": (
        lambda x: tc.softmin(x, axis=-1),
        lambda x: F.softmin(x, dim=-1),
        "real",
        (),
        True,
        None,
    ),
}

# name: (tc function, torch function, domain a, domain b, smooth, node class)
BINARY = {
    "logaddexp": (tc.logaddexp, torch.logaddexp, "wide", "wide", True, U.LogAddExp),
    "remainder": (tc.remainder, torch.remainder, "nonzero", "big", False, U.Remainder),
    "fmod": (tc.fmod, torch.fmod, "nonzero", "big", False, U.Fmod),
}

BROADCAST_CASES = [((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((), (2, 2))]


def _leaf(x: np.ndarray, dtype=np.float64) -> tc.Tensor:
    return tc.tensor(x.astype(dtype), requires_grad=True)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_matches_torch(name, dtype, rng):
    fn, tfn, domain, kinks, _, _ = UNARY[name]
    x = sample(rng, (3, 5), domain, kinks).astype(dtype)
    v = rng.standard_normal((3, 5)).astype(dtype)
    t = _leaf(x, dtype)
    y = fn(t)
    assert y.dtype == dtype
    y.backward(tc.tensor(v))
    tx = torch.tensor(x, requires_grad=True)
    ty = tfn(tx)
    ty.backward(torch.tensor(v))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    if dtype == np.float64:
        tol = TORCH_GRAD_TOL.get(name, tol)
    np.testing.assert_allclose(t.grad.numpy(), tx.grad.numpy(), **tol)


# PyTorch 2.13's float64 gradients of celu and hardsigmoid carry a float32 constant (1/alpha,
# 1/6: relative error ~3e-8); ours are exact to 1e-16 (test_celu_gradient_exact) and pass gradcheck
TORCH_GRAD_TOL = {"celu": dict(rtol=1e-7, atol=1e-9), "hardsigmoid": dict(rtol=1e-7, atol=1e-9)}


def test_celu_gradient_exact():
    x0 = np.array([-0.5, -2.0, -3.0, 0.7])
    t = tc.tensor(x0, requires_grad=True)
    tc.celu(t, 1.3).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.where(x0 > 0, 1, np.exp(x0 / 1.3)), rtol=1e-15)
    t = tc.tensor(np.array([-3.5, -1.0, 2.0, 3.5]), requires_grad=True)
    tc.hardsigmoid(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [0, 1 / 6, 1 / 6, 0])


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradcheck(name, rng):
    fn, _, domain, kinks, smooth, _ = UNARY[name]
    x = _leaf(sample(rng, (2, 3), domain, kinks))
    assert tc.gradcheck(fn, [x])
    if smooth:
        assert tc.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", [n for n in UNARY if UNARY[n][5] is not None])
def test_unary_vjp_rule(name, rng):
    fn, _, domain, kinks, _, cls = UNARY[name]
    check_rule(fn(_leaf(sample(rng, (2, 3), domain, kinks))), cls)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", BROADCAST_CASES)
def test_binary_matches_torch(name, dtype, shapes, rng):
    fn, tfn, da, db, _, _ = BINARY[name]
    a = sample(rng, shapes[0], da).astype(dtype)
    b = sample(rng, shapes[1], db).astype(dtype)
    ta, tb = _leaf(a, dtype), _leaf(b, dtype)
    y = fn(ta, tb)
    v = rng.standard_normal(y.shape).astype(dtype)
    y.backward(tc.tensor(v))
    qa, qb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    tfn(qa, qb).backward(torch.tensor(v))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(y.numpy(), tfn(qa, qb).detach().numpy(), **tol)
    np.testing.assert_allclose(ta.grad.numpy(), qa.grad.numpy(), **tol)
    np.testing.assert_allclose(tb.grad.numpy(), qb.grad.numpy(), **tol)


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST_CASES)
def test_binary_gradcheck(name, shapes, rng):
    fn, _, da, db, smooth, cls = BINARY[name]
    a, b = _leaf(sample(rng, shapes[0], da)), _leaf(sample(rng, shapes[1], db))
    assert tc.gradcheck(fn, [a, b])
    if smooth:
        assert tc.gradgradcheck(fn, [a, b])
    check_rule(fn(a, b), cls)


def test_lerp_matches_torch(rng):
    s, e, w = rng.standard_normal((2, 3)), rng.standard_normal((3,)), rng.random((2, 1))
    ts, te, tw = _leaf(s), _leaf(e), _leaf(w)
    y = tc.lerp(ts, te, tw)
    y.backward(tc.ones_like(y))
    qs, qe, qw = (torch.tensor(x, requires_grad=True) for x in (s, e, w))
    torch.lerp(qs, qe, qw).sum().backward()
    np.testing.assert_allclose(y.numpy(), torch.lerp(qs, qe, qw).detach().numpy(), rtol=1e-12)
    for mine, theirs in ((ts, qs), (te, qe), (tw, qw)):
        np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)
    assert tc.gradgradcheck(tc.lerp, [_leaf(s), _leaf(e), _leaf(w)])
    np.testing.assert_allclose(tc.lerp(ts, te, 0.25).numpy(), s + 0.25 * (e - s))


def test_prelu_matches_torch(rng):
    x = sample(rng, (2, 3, 4), "wide", (0,))
    w = np.array([0.1, -0.2, 0.3, 0.5])
    tx, tw = _leaf(x), _leaf(w)
    y = tc.prelu(tx, tw)
    y.sum().backward()
    qx, qw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    # PyTorch's weight runs along axis 1: move our channels-last axis there
    F.prelu(qx.permute(0, 2, 1), qw).sum().backward()
    ref = np.where(x > 0, x, w * x)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(tx.grad.numpy(), qx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tw.grad.numpy(), qw.grad.numpy(), rtol=1e-12)
    assert tc.gradcheck(tc.prelu, [_leaf(x), _leaf(w)])


def test_stability_at_extremes():
    big = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        sp = tc.softplus(tc.tensor(big)).numpy()
        ls = tc.logsigmoid(tc.tensor(big)).numpy()
        la = tc.logaddexp(tc.tensor(big), tc.tensor(big[::-1].copy())).numpy()
    np.testing.assert_allclose(sp, F.softplus(torch.tensor(big)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(ls, F.logsigmoid(torch.tensor(big)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(la, [1e4, 50.0, np.log(2.0), 50.0, 1e4], rtol=1e-15)
    for fn in (tc.softplus, tc.logsigmoid, tc.elu, tc.selu, tc.silu, tc.gelu, tc.mish):
        x = tc.tensor(big, requires_grad=True)
        y = fn(x)
        y.sum().backward()
        assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all(), fn
    # log1p / expm1 keep every digit near 0, where log(1 + x) and exp(x) - 1 lose them
    tiny = np.array([1e-12, -3e-15, 2e-20])
    np.testing.assert_allclose(tc.log1p(tc.tensor(tiny)).numpy(), tiny, rtol=1e-11)
    np.testing.assert_allclose(tc.expm1(tc.tensor(tiny)).numpy(), tiny, rtol=1e-11)
    # gelu's negative tail is relatively accurate: x * Phi(x), Phi from erfc (no 1 + erf cancel)
    x = np.array([-10.0, -20.0, -30.0])
    import math

    ref = x * np.array([math.erfc(-v / math.sqrt(2)) / 2 for v in x])
    np.testing.assert_allclose(tc.gelu(tc.tensor(x)).numpy(), ref, rtol=1e-12)
    assert (tc.gelu(tc.tensor(x)).numpy() < 0).all()
    gt = tc.gelu(tc.tensor(np.array([-40.0, 40.0])), approximate="tanh").numpy()
    np.testing.assert_allclose(gt, [0.0, 40.0], atol=1e-300)


NONDIFF = {
    "sign": (tc.sign, torch.sign),
    "floor": (tc.floor, torch.floor),
    "ceil": (tc.ceil, torch.ceil),
    "round": (tc.round, torch.round),
    "trunc": (tc.trunc, torch.trunc),
    "isnan": (tc.isnan, torch.isnan),
    "isinf": (tc.isinf, torch.isinf),
    "isfinite": (tc.isfinite, torch.isfinite),
    "logical_not": (tc.logical_not, torch.logical_not),
}


@pytest.mark.parametrize("name", list(NONDIFF))
def test_non_differentiable_unary(name):
    x = np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.7, np.nan, np.inf, -np.inf])
    fn, tfn = NONDIFF[name]
    y = fn(tc.tensor(x, requires_grad=True))
    assert not y.requires_grad and y.grad_fn is None
    ref = tfn(torch.tensor(x)).numpy()
    if name == "sign":  # NumPy's sign(nan) is nan, PyTorch's 0: we follow NumPy
        assert np.isnan(y.numpy()[8])
        ref[8] = np.nan
    np.testing.assert_array_equal(y.numpy(), ref)


@pytest.mark.parametrize(
    "name",
    [
        "floor_divide",
        "logical_and",
        "logical_or",
        "logical_xor",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
    ],
)
def test_non_differentiable_binary(name):
    a = np.array([[-3.0, -1.0, 0.0, 2.0, 7.0]])
    b = np.array([[2.0], [-2.0], [0.5]])
    y = getattr(tc, name)(tc.tensor(a, requires_grad=True), b)
    assert not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), getattr(torch, name)(torch.tensor(a), torch.tensor(b)))
    with pytest.raises(ValueError, match=rf"{name}: operands of shapes \(2,\) and \(3,\)"):
        getattr(tc, name)(np.ones(2), np.ones(3))


def test_integer_inputs_follow_numpy():
    x = tc.tensor(np.array([1, 2, 4]))
    assert tc.sin(x).dtype == np.float64
    assert tc.reciprocal(x).dtype == np.float64
    np.testing.assert_array_equal(tc.remainder(x, 3).numpy(), [1, 2, 1])
    np.testing.assert_array_equal(tc.floor_divide(x, 3).numpy(), [0, 0, 1])
    assert tc.square(tc.tensor(np.float32(3.0))).dtype == np.float32


def test_tensor_methods_forward():
    x = tc.tensor(np.array([0.3, -0.7]), requires_grad=True)
    for name in ("sin", "cos", "tan", "atan", "expm1", "square", "erf", "gelu", "silu", "mish"):
        np.testing.assert_allclose(getattr(x, name)().numpy(), getattr(tc, name)(x).numpy())
    np.testing.assert_allclose(x.softplus(beta=2.0).numpy(), tc.softplus(x, 2.0).numpy())
    np.testing.assert_allclose((x % 0.5).numpy(), np.mod(x.numpy(), 0.5))
    np.testing.assert_allclose((x // 0.5).numpy(), np.floor_divide(x.numpy(), 0.5))
    assert x.isnan().dtype == bool and not x.floor().requires_grad


def test_bad_input_messages():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        tc.gelu(tc.tensor([1.0]), approximate="fast")
    with pytest.raises(TypeError, match="elu: expected a floating-point tensor, got dtype int64"):
        tc.elu(tc.tensor(np.array([1, 2])))
    with pytest.raises(ValueError, match="hardtanh: min_val=2 is greater than max_val=1"):
        tc.hardtanh(tc.tensor([1.0]), 2, 1)
    with pytest.raises(ValueError, match=r"logaddexp: operands of shapes \(2,\) and \(3,\)"):
        tc.logaddexp(tc.tensor([1.0, 2.0]), tc.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="softplus: beta must be a positive number, got 0"):
        tc.softplus(tc.tensor([1.0]), beta=0)
    with pytest.raises(ValueError, match="celu: alpha must be non-zero"):
        tc.celu(tc.tensor([1.0]), alpha=0.0)
    with pytest.raises(ValueError, match=r"prelu: weight must have shape \[1\] or \[C\] = \[4\]"):
        tc.prelu(tc.ones(2, 4), tc.ones(3))
    with pytest.raises(
        ValueError, match="softmin: axis 2 is out of range for a tensor with 2 dims"
    ):
        tc.softmin(tc.ones(2, 4), axis=2)
    with pytest.raises(ValueError, match=r"lerp: start \(2,\), end \(2,\) and weight \(3,\)"):
        tc.lerp(tc.ones(2), tc.ones(2), tc.ones(3))


@HYP
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), name=st.sampled_from(sorted(UNARY)))
def test_hypothesis_unary_shapes(shape, name):
    fn, tfn, domain, kinks, _, _ = UNARY[name]
    if name == "softmin" and shape == ():
        return
    x = sample(np.random.default_rng(0), shape, domain, kinks)
    t = _leaf(x)
    y = fn(t)
    assert y.shape == shape
    y.sum().backward()
    q = torch.tensor(x, requires_grad=True)
    tfn(q).sum().backward()
    np.testing.assert_allclose(y.numpy(), tfn(q).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12)


@HYP
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_hypothesis_logaddexp_broadcasting(shapes):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(1)
    a, b = _leaf(rng.standard_normal(sa)), _leaf(rng.standard_normal(sb))
    y = tc.logaddexp(a, b)
    assert y.shape == shapes.result_shape
    y.sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    qa, qb = torch.tensor(a.data, requires_grad=True), torch.tensor(b.data, requires_grad=True)
    torch.logaddexp(qa, qb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), qa.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), qb.grad.numpy(), rtol=1e-12)

"""gradcheck / gradgradcheck themselves: they pass on right gradients, catch wrong ones (naming the
input, the worst index and both values), and refuse inputs they cannot check."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import Function, GradcheckError, Tensor


def leaf(a, name=None) -> Tensor:
    return tc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True, name=name)


class WrongMul(Function):
    """a * b whose gradient for b is off by a factor of 2 (a deliberately wrong Function)."""

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        return g * b, g * a * 2


class TransposedGrad(Function):
    """x @ W with the gradient of W transposed-wrong; invisible to a uniform upstream gradient
    only when the test is sloppy, so gradcheck must use a non-uniform one."""

    @staticmethod
    def forward(ctx, x, w):
        return x @ w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.inputs
        return g @ w.T, (g.T @ x).T[::-1]


class Square(Function):
    """x^2 with a correct first derivative whose backward hides x from the graph (uses a
    constant copy), so its *second* derivative is wrong: only gradgradcheck can see it."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.inputs
        return g * tc.tensor(2 * a.data)


class SquareRight(Function):
    """x^2 with a differentiable backward."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.inputs
        return g * a * 2


def test_gradcheck_passes_on_correct_functions(rng) -> None:
    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((3,)))
    assert tc.gradcheck(lambda x, y: (x * y).exp().sum(axis=1), [a, b]) is True
    assert tc.gradcheck(SquareRight.apply, [a]) is True
    assert tc.gradgradcheck(SquareRight.apply, [a]) is True


def test_gradcheck_catches_wrong_function_and_names_input_index_values(rng) -> None:
    a = leaf(rng.standard_normal((2, 3)))
    b = leaf(rng.standard_normal((2, 3)), name="weight")
    with pytest.raises(GradcheckError) as info:
        tc.gradcheck(WrongMul.apply, [a, b])
    msg = str(info.value)
    assert "input 1 (weight)" in msg
    assert "of shape (2, 3)" in msg
    m = re.search(r"at index \((\d), (\d)\): analytic (\S+) vs numeric (\S+)", msg)
    assert m, msg
    i, j = int(m.group(1)), int(m.group(2))
    analytic, numeric = float(m.group(3)), float(m.group(4))
    # the reported values are the real ones at the reported (worst) index
    v = np.random.default_rng(0).standard_normal((2, 3))
    v = v + 0.5 * np.sign(v)
    assert numeric == pytest.approx(v[i, j] * a.data[i, j], rel=1e-5)
    assert analytic == pytest.approx(2 * v[i, j] * a.data[i, j], rel=1e-12)
    worst = np.unravel_index(np.argmax(np.abs(v * a.data)), (2, 3))
    assert (i, j) == tuple(int(k) for k in worst)
    assert "atol" in msg and "rtol" in msg


def test_gradcheck_error_is_an_assertion_error(rng) -> None:
    assert issubclass(GradcheckError, AssertionError)
    with pytest.raises(AssertionError, match=r"gradcheck failed for input 1 of shape \(3,\)"):
        tc.gradcheck(WrongMul.apply, [leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))])


def test_gradcheck_only_checks_inputs_that_require_grad(rng) -> None:
    a = leaf(rng.standard_normal(3))
    b = tc.tensor(rng.standard_normal(3))  # constant: its wrong gradient is never computed
    assert tc.gradcheck(WrongMul.apply, [a, b])


def test_gradcheck_catches_transposition_bug(rng) -> None:
    x = leaf(rng.standard_normal((3, 2)))
    w = leaf(rng.standard_normal((2, 2)))
    with pytest.raises(GradcheckError, match="input 1"):
        tc.gradcheck(TransposedGrad.apply, [x, w])


def test_gradcheck_catches_missing_gradient() -> None:
    class Detached(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 3

        @staticmethod
        def backward(ctx, g):
            return None

    with pytest.raises(GradcheckError, match=r"input 0.*analytic 0\.0 vs numeric"):
        tc.gradcheck(Detached.apply, [leaf([1.0, 2.0])])


def test_gradcheck_catches_gradient_hidden_by_detach() -> None:
    with pytest.raises(GradcheckError, match="input 0"):
        tc.gradcheck(lambda x: x * x.detach(), [leaf([1.0, 2.0])])


def test_gradgradcheck_catches_wrong_second_derivative(rng) -> None:
    x = leaf(rng.standard_normal((2, 2)))
    assert tc.gradcheck(Square.apply, [x])  # first order is right...
    with pytest.raises(GradcheckError, match=r"input 0 of shape \(2, 2\)"):
        tc.gradgradcheck(Square.apply, [x])  # ...second order is not


def test_gradgradcheck_checks_backward_consistency_not_first_order(rng) -> None:
    # like torch.autograd.gradgradcheck it differentiates whatever backward computes, so a wrong
    # (but differentiable) first derivative passes: run gradcheck first
    a, b = leaf(rng.standard_normal(3)), leaf(rng.standard_normal(3))
    assert tc.gradgradcheck(WrongMul.apply, [a, b])
    with pytest.raises(GradcheckError):
        tc.gradcheck(WrongMul.apply, [a, b])


def test_gradcheck_restores_inputs(rng) -> None:
    a = rng.standard_normal((3, 2))
    x = leaf(a.copy())
    tc.gradcheck(lambda t: (t * t).sum(), [x])
    np.testing.assert_array_equal(x.data, a)
    with pytest.raises(GradcheckError):
        tc.gradcheck(WrongMul.apply, [x, leaf(a.copy())])
    np.testing.assert_array_equal(x.data, a)


def test_gradcheck_passes_non_tensor_arguments_through(rng) -> None:
    x = leaf(rng.standard_normal((2, 3)))
    assert tc.gradcheck(lambda t, axis, k: t.sum(axis=axis) * k, [x, 1, 2.5])


def test_gradcheck_rejects_float32_inputs() -> None:
    x = tc.tensor(np.ones(2, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"gradcheck: input 0 is float32; .*float64"):
        tc.gradcheck(lambda t: t * 2, [x])
    with pytest.raises(TypeError, match="gradgradcheck: input 0 is float32"):
        tc.gradgradcheck(lambda t: t * 2, [x])


def test_gradcheck_needs_an_input_requiring_grad() -> None:
    with pytest.raises(ValueError, match="gradcheck: no input requires grad"):
        tc.gradcheck(lambda t: t * 2, [tc.tensor(np.ones(2))])


def test_gradcheck_fn_must_return_tensor() -> None:
    with pytest.raises(TypeError, match="gradcheck: fn must return a Tensor, got float"):
        tc.gradcheck(lambda t: 1.0, [leaf([1.0])])


def test_gradcheck_rejects_non_contiguous_input() -> None:
    base = leaf(np.arange(6.0).reshape(2, 3))
    view = tc.tensor(base.data.T, requires_grad=True)
    with pytest.raises(
        ValueError, match=r"gradcheck: input 0 of shape \(3, 2\) must be contiguous"
    ):
        tc.gradcheck(lambda t: t * 2, [view])


def test_gradcheck_tolerances_are_honoured(rng) -> None:
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, g):
            return g * 1.0005

    x = leaf(rng.standard_normal(4))
    assert tc.gradcheck(SlightlyOff.apply, [x])  # rtol=1e-3 by default
    with pytest.raises(GradcheckError):
        tc.gradcheck(SlightlyOff.apply, [x], rtol=1e-4, atol=1e-7)


def test_gradcheck_with_fn_output_not_requiring_grad() -> None:
    # a piecewise-constant function: zero analytic and numeric gradients agree
    assert tc.gradcheck(lambda t: tc.tensor((t.data > 0).astype(np.float64)), [leaf([0.5, -1.0])])


def test_gradcheck_does_not_leave_grad_or_graph_state() -> None:
    x = leaf([1.0, 2.0])
    tc.gradcheck(lambda t: t.exp(), [x])
    tc.gradgradcheck(lambda t: t.exp(), [x])
    assert x.grad is None
    assert tc.is_grad_enabled()


def test_gradgradcheck_on_a_multi_input_composite(rng) -> None:
    a = leaf(rng.standard_normal((2, 3)))
    b = leaf(np.abs(rng.standard_normal((3,))) + 0.5)
    assert tc.gradgradcheck(lambda x, y: (x.tanh() / y + x * x * y.log()).sum(axis=0), [a, b])

"""Reductions (sum, mean, max, min, var, logsumexp): axis as int/tuple/None/negative, keepdims,
values against numpy, gradients by finite differences, tie conventions, errors, hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import tinygrad_conv as tc
from tinygrad_conv import Tensor

HYP = settings(max_examples=60, deadline=None, derandomize=True)


def leaf(a) -> Tensor:
    return tc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def distinct(rng, shape) -> np.ndarray:
    """Values with no ties and gaps >= 0.05 (safe for max/min finite differences)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 + rng.uniform(-0.02, 0.02, n)).reshape(shape) - 0.05 * n


# name: (tc function, numpy reference, smooth, needs distinct values)
REDUCERS = {
    "sum": (tc.sum, np.sum, True, False),
    "mean": (tc.mean, np.mean, True, False),
    "max": (tc.max, np.max, False, True),
    "min": (tc.min, np.min, False, True),
    "var": (
        lambda a, axis=None, keepdims=False: tc.var(a, axis, keepdims=keepdims),
        np.var,
        True,
        False,
    ),
    "logsumexp": (tc.logsumexp, np_logsumexp, True, False),
}

AXES = [None, 0, 1, -1, 2, (0, 2), (1, 2), (0, 1, 2), (-1, 0), ()]


def _data(rng, name, shape):
    return distinct(rng, shape) if REDUCERS[name][3] else rng.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(REDUCERS))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_values_match_numpy(name, axis, keepdims, rng) -> None:
    fn, ref, _, _ = REDUCERS[name]
    a = _data(rng, name, (2, 3, 4))
    out = fn(tc.tensor(a), axis=axis, keepdims=keepdims)
    expected = ref(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(REDUCERS))
@pytest.mark.parametrize("axis", [None, 1, (0, 2), -1], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_gradcheck(name, axis, keepdims, rng) -> None:
    fn, _, _, _ = REDUCERS[name]
    x = leaf(_data(rng, name, (2, 3, 4)))
    assert tc.gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("name", sorted(n for n, v in REDUCERS.items() if v[2]))
@pytest.mark.parametrize("axis", [None, 0, (0, 2)], ids=str)
def test_gradgradcheck_smooth(name, axis, rng) -> None:
    fn, _, _, _ = REDUCERS[name]
    x = leaf(rng.standard_normal((2, 3, 2)))
    assert tc.gradgradcheck(lambda t: fn(t, axis=axis), [x])


@pytest.mark.parametrize("name", ["max", "min"])
def test_extremum_gradgradcheck_in_composite(name, rng) -> None:
    fn = REDUCERS[name][0]
    x = leaf(distinct(rng, (3, 4)))
    assert tc.gradgradcheck(lambda t: fn(t * t, axis=1), [x])


@pytest.mark.parametrize("name", sorted(REDUCERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(name, dtype, rng) -> None:
    fn = REDUCERS[name][0]
    x = tc.tensor(_data(rng, name, (3, 4)).astype(dtype), requires_grad=True)
    out = fn(x, axis=1)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == (3, 4)


def test_method_forms(rng) -> None:
    a = rng.standard_normal((3, 4))
    t = tc.tensor(a)
    np.testing.assert_allclose(t.sum().data, a.sum())
    np.testing.assert_allclose(t.sum(1, keepdims=True).data, a.sum(1, keepdims=True))
    np.testing.assert_allclose(t.mean(axis=0).data, a.mean(0))
    np.testing.assert_allclose(t.max(axis=(0, 1)).data, a.max())
    np.testing.assert_allclose(t.min(-1).data, a.min(-1))
    np.testing.assert_allclose(t.var(1, ddof=1).data, a.var(1, ddof=1))
    np.testing.assert_allclose(t.var(keepdims=True).data, a.var(keepdims=True))
    np.testing.assert_allclose(t.logsumexp(1).data, np_logsumexp(a, 1))


def test_sum_gradient_is_ones_and_mean_is_one_over_n() -> None:
    x = leaf(np.ones((2, 3)))
    x.sum(axis=0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    x.grad = None
    x.mean(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 1 / 3))
    x.grad = None
    x.mean().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 1 / 6))


def test_reduce_gradient_with_upstream_gradient_and_keepdims() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = x.sum(axis=1, keepdims=True)
    y.backward(np.array([[2.0], [-1.0]]))
    np.testing.assert_array_equal(x.grad.data, [[2, 2, 2], [-1, -1, -1]])


def test_var_ddof_values_and_gradient(rng) -> None:
    a = rng.standard_normal((4, 5))
    for ddof in (0, 1, 2):
        np.testing.assert_allclose(tc.var(tc.tensor(a), 1, ddof).data, a.var(1, ddof=ddof))
        assert tc.gradcheck(lambda t, d=ddof: tc.var(t, 0, d), [leaf(a)])
    x = leaf([1.0, 2.0, 3.0, 6.0])
    x.var().backward()
    np.testing.assert_allclose(x.grad.data, 2 * (x.data - x.data.mean()) / 4)


def test_var_errors() -> None:
    with pytest.raises(ValueError, match=r"var: 3 elements over axis 0 with ddof=3"):
        tc.var(tc.ones(3, 2), 0, ddof=3)


# -- ties ------------------------------------------------------------------------------------------


def test_max_ties_share_gradient_equally() -> None:
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [0, 0, 0]])


def test_min_ties_share_gradient_equally() -> None:
    x = leaf([[1.0, 1.0, 3.0], [5.0, 2.0, 4.0]])
    x.min(axis=1, keepdims=True).backward(np.array([[4.0], [3.0]]))
    np.testing.assert_allclose(x.grad.data, [[2.0, 2.0, 0.0], [0.0, 3.0, 0.0]])
    x.grad = None
    x.min(axis=0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1, 1, 1], [0, 0, 0]])


def test_max_over_tuple_axis_with_ties() -> None:
    x = leaf(np.array([[[1.0, 7.0], [7.0, 0.0]], [[2.0, 2.0], [1.0, 0.5]]]))
    x.max(axis=(1, 2)).sum().backward()
    expected = np.array([[[0, 0.5], [0.5, 0]], [[0.5, 0.5], [0, 0]]])
    np.testing.assert_allclose(x.grad.data, expected)


def test_max_of_constant_tensor_has_no_grad() -> None:
    t = tc.tensor([1.0, 2.0])
    assert not t.max().requires_grad


# -- logsumexp stability ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_no_overflow(dtype) -> None:
    a = np.array([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4, -1e4]], dtype)
    x = tc.tensor(a, requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        out = x.logsumexp(axis=1)
        out.sum().backward()
    expected = np.array([1e4 + np.log1p(np.exp(-1.0)), -1e4 + np.log(3.0)])
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    assert np.all(np.isfinite(x.grad.data))
    # exp(a - z) at |a| = 1e4 is only good to ~ulp(1e4) = 1e-3 in float32 (as in PyTorch)
    tol = 1e-3 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(x.grad.data.sum(axis=1), [1.0, 1.0], rtol=tol)


def test_logsumexp_gradient_is_softmax(rng) -> None:
    a = rng.standard_normal((3, 5))
    x = leaf(a)
    x.logsumexp(axis=1).sum().backward()
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(x.grad.data, e / e.sum(1, keepdims=True), rtol=1e-12)


def test_logsumexp_with_minus_inf_entries() -> None:
    x = tc.tensor(np.array([[0.0, -np.inf], [-np.inf, -np.inf]]))
    with np.errstate(divide="ignore"):
        out = tc.logsumexp(x, axis=1)
    np.testing.assert_array_equal(out.data, [0.0, -np.inf])


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REDUCERS))
def test_axis_out_of_range_names_op_and_ndim(name) -> None:
    fn = REDUCERS[name][0]
    with pytest.raises(
        ValueError, match=rf"{name}: axis 2 is out of range for a tensor with 2 dims"
    ):
        fn(tc.ones(2, 3), axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
        fn(tc.ones(2, 3), axis=-3)


@pytest.mark.parametrize("name", sorted(REDUCERS))
def test_repeated_and_non_int_axis(name) -> None:
    fn = REDUCERS[name][0]
    with pytest.raises(ValueError, match=rf"{name}: repeated axis"):
        fn(tc.ones(2, 3), axis=(1, -1))
    with pytest.raises(TypeError, match=rf"{name}: axis must be int"):
        fn(tc.ones(2, 3), axis=(1.0,))
    with pytest.raises(TypeError):
        fn(tc.ones(2, 3), axis=1.0)


@pytest.mark.parametrize("name", ["max", "min", "logsumexp"])
def test_empty_extremum_raises(name) -> None:
    with pytest.raises(
        ValueError, match=rf"{name}: cannot reduce an empty tensor of shape \(0, 3\)"
    ):
        REDUCERS[name][0](tc.ones(0, 3))


def test_reductions_of_empty_and_0d() -> None:
    assert tc.sum(tc.ones(0, 3)).item() == 0.0
    np.testing.assert_array_equal(tc.sum(tc.ones(0, 3), axis=0).data, [0, 0, 0])
    s = tc.tensor(2.5, requires_grad=True)
    for fn in (tc.sum, tc.mean, tc.max, tc.min, tc.logsumexp):
        out = fn(s)
        assert out.shape == () and out.item() == pytest.approx(2.5)
        out2 = fn(s, axis=0)
        assert out2.shape == () and out2.item() == pytest.approx(2.5)
        assert fn(s, axis=0, keepdims=True).shape == ()
        with pytest.raises(ValueError, match="out of range"):
            fn(s, axis=1)
    assert tc.var(s, axis=0).item() == 0.0
    s.sum(axis=0).backward()
    assert s.grad.item() == 1.0


def test_integer_reductions() -> None:
    i = tc.tensor(np.arange(6).reshape(2, 3))
    assert tc.sum(i).dtype == np.int64 and tc.sum(i).item() == 15
    assert tc.max(i, axis=1).data.tolist() == [2, 5]
    assert tc.mean(i).dtype == np.float64


# -- hypothesis ------------------------------------------------------------------------------------


@st.composite
def shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-len(shape), len(shape) - 1))
    else:
        axes = draw(st.sets(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape)))
        axis = tuple(a - len(shape) if draw(st.booleans()) else a for a in sorted(axes))
    return shape, axis


@HYP
@given(
    name=st.sampled_from(sorted(REDUCERS)),
    sa=shape_and_axis(),
    keepdims=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_reductions(name, sa, keepdims, seed) -> None:
    shape, axis = sa
    fn, ref, _, _ = REDUCERS[name]
    rng = np.random.default_rng(seed)
    a = _data(rng, name, shape)
    x = leaf(a)
    out = fn(x, axis=axis, keepdims=keepdims)
    expected = ref(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert tc.gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims), [x])

"""Elementwise ops: values against numpy, gradients by finite differences (float64, broadcasting
shapes), second derivatives for the smooth ops, tie/kink conventions with exact values, stability,
dtype rules, and hypothesis-driven checks over random broadcastable shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_conv as tc
from tinygrad_conv import Tensor

HYP = settings(max_examples=60, deadline=None, derandomize=True)


def away_from(values: np.ndarray, kinks=(0.0,), margin: float = 0.1) -> np.ndarray:
    """Push values at least ``margin`` away from every kink (for finite differences)."""
    out = values.copy()
    for k in kinks:
        near = np.abs(out - k) < margin
        out[near] = k + np.where(out[near] >= k, margin, -margin) * 2
    return out


def sample(rng, shape, domain: str = "real") -> np.ndarray:
    x = rng.standard_normal(shape)
    if domain == "positive":
        return np.abs(x) + 0.5
    if domain == "nonzero":
        return away_from(x, (0.0,), 0.2)
    return x


def leaf(a) -> Tensor:
    return tc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def sigmoid_ref(x):
    return 1 / (1 + np.exp(-x))


# name: (tc function, numpy reference, input domain, smooth)
UNARY = {
    "neg": (tc.neg, np.negative, "real", True),
    "exp": (tc.exp, np.exp, "real", True),
    "log": (tc.log, np.log, "positive", True),
    "sqrt": (tc.sqrt, np.sqrt, "positive", True),
    "abs": (tc.abs, np.abs, "nonzero", False),
    "relu": (tc.relu, lambda x: np.maximum(x, 0), "nonzero", False),
    "leaky_relu": (
        lambda x: tc.leaky_relu(x, 0.2),
        lambda x: np.where(x > 0, x, 0.2 * x),
        "nonzero",
        False,
    ),
    "sigmoid": (tc.sigmoid, sigmoid_ref, "real", True),
    "tanh": (tc.tanh, np.tanh, "real", True),
    "clip": (lambda x: tc.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), "clip", False),
    "square_via_pow": (lambda x: x**2, lambda x: x**2, "real", True),
    "cube_via_pow": (lambda x: tc.pow(x, 3.0), lambda x: x**3, "real", True),
    "rsqrt_via_pow": (lambda x: x**-0.5, lambda x: x**-0.5, "positive", True),
}

# name: (tc function, numpy reference, domain of a, domain of b, smooth)
BINARY = {
    "add": (tc.add, np.add, "real", "real", True),
    "sub": (tc.sub, np.subtract, "real", "real", True),
    "mul": (tc.mul, np.multiply, "real", "real", True),
    "div": (tc.div, np.divide, "real", "nonzero", True),
    "pow": (tc.pow, np.power, "positive", "real", True),
    "maximum": (tc.maximum, np.maximum, "real", "real", False),
    "minimum": (tc.minimum, np.minimum, "real", "real", False),
}

BROADCAST_CASES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((2, 1), (1, 3)),
    ((4, 1, 3), (2, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((1, 2, 1), (3, 1, 4)),
]


def unary_input(rng, shape, domain):
    if domain == "clip":
        return away_from(rng.standard_normal(shape), (-0.5, 0.7), 0.05)
    return sample(rng, shape, domain)


def binary_inputs(rng, name, sa, sb, da, db):
    if name in ("maximum", "minimum"):
        # two interleaved grids: every pair (a_i, b_j) differs by more than 0.1, so no ties
        a = 0.3 * rng.integers(-5, 5, sa) + 0.10 + rng.uniform(-0.02, 0.02, sa)
        b = 0.3 * rng.integers(-5, 5, sb) + 0.25 + rng.uniform(-0.02, 0.02, sb)
        return a, b
    return sample(rng, sa, da), sample(rng, sb, db)


# -- values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_values_and_dtype(name, dtype, rng) -> None:
    fn, ref, domain, _ = UNARY[name]
    a = unary_input(rng, (3, 4), domain).astype(dtype)
    out = fn(tc.tensor(a))
    assert out.dtype == dtype
    assert out.shape == a.shape
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.data, ref(a), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa, sb", BROADCAST_CASES)
def test_binary_values_broadcast(name, sa, sb, rng) -> None:
    fn, ref, da, db, _ = BINARY[name]
    a, b = sample(rng, sa, da), sample(rng, sb, db)
    out = fn(tc.tensor(a), tc.tensor(b))
    np.testing.assert_allclose(out.data, ref(a, b), rtol=1e-12)
    assert out.shape == np.broadcast_shapes(sa, sb)


# -- first derivatives -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name, rng) -> None:
    fn, _, domain, _ = UNARY[name]
    x = leaf(unary_input(rng, (2, 3), domain))
    assert tc.gradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa, sb", BROADCAST_CASES)
def test_binary_gradcheck_broadcast(name, sa, sb, rng) -> None:
    fn, _, da, db, _ = BINARY[name]
    a, b = binary_inputs(rng, name, sa, sb, da, db)
    ta, tb = leaf(a), leaf(b)
    assert tc.gradcheck(fn, [ta, tb])
    # each gradient has exactly its input's shape (broadcasting undone)
    fn(ta, tb).sum().backward()
    assert ta.grad.shape == sa and tb.grad.shape == sb


def test_gradcheck_with_one_constant_operand(rng) -> None:
    a = leaf(rng.standard_normal((2, 3)))
    c = rng.standard_normal((3,)) + 3.0
    assert tc.gradcheck(lambda t: t / c, [a])
    assert tc.gradcheck(lambda t: c / t, [leaf(np.abs(a.data) + 0.5)])
    assert tc.gradcheck(lambda t: c**t, [a])
    assert tc.gradcheck(lambda t: t**c, [leaf(np.abs(a.data) + 0.5)])
    assert tc.gradcheck(lambda t: 2.5 - t, [a])


def test_where_gradcheck_and_values(rng) -> None:
    cond = rng.standard_normal((2, 3)) > 0
    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((3,)))
    out = tc.where(cond, a, b)
    np.testing.assert_array_equal(out.data, np.where(cond, a.data, b.data))
    assert tc.gradcheck(lambda x, y: tc.where(cond, x, y), [a, b])
    assert tc.gradgradcheck(lambda x, y: tc.where(cond, x * x, y * y), [a, b])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, cond.astype(float))
    np.testing.assert_array_equal(b.grad.data, (~cond).sum(axis=0))


def test_where_with_tensor_condition_scalars_and_broadcast_cond(rng) -> None:
    x = leaf([-1.0, 2.0, -3.0])
    y = tc.where(x > 0, x, 0.0)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.data, [0.0, 2.0, 0.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])
    # cond broadcasts against the operands
    a = leaf(np.ones((2, 3)))
    out = tc.where(np.array([True, False, True]), a, -a)
    np.testing.assert_array_equal(out.data, [[1, -1, 1], [1, -1, 1]])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [[1, -1, 1], [1, -1, 1]])


def test_where_condition_mutated_after_forward_does_not_change_gradient() -> None:
    mask = np.array([True, False, True])
    a = leaf(np.ones(3))
    y = tc.where(mask, a, 0.0)
    mask[:] = False  # e.g. a reused buffer
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1.0, 0.0, 1.0])


def test_where_errors() -> None:
    with pytest.raises(TypeError, match="where: cond must be boolean.*float"):
        tc.where(np.array([1.0, 0.0]), tc.ones(2), tc.zeros(2))
    with pytest.raises(ValueError, match=r"where.*\(3,\).*\(2,\)"):
        tc.where(np.array([True, False, True]), tc.ones(2), tc.zeros(2))


# -- second derivatives ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n, v in UNARY.items() if v[3]))
def test_unary_gradgradcheck(name, rng) -> None:
    fn, _, domain, _ = UNARY[name]
    x = leaf(unary_input(rng, (2, 3), domain))
    assert tc.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(n for n, v in BINARY.items() if v[4]))
@pytest.mark.parametrize("sa, sb", [((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2,))])
def test_binary_gradgradcheck(name, sa, sb, rng) -> None:
    fn, _, da, db, _ = BINARY[name]
    a, b = sample(rng, sa, da), sample(rng, sb, db)
    assert tc.gradgradcheck(fn, [leaf(a), leaf(b)])


@pytest.mark.parametrize("name", ["abs", "relu", "leaky_relu", "clip"])
def test_piecewise_linear_second_derivative_is_zero(name, rng) -> None:
    fn, _, domain, _ = UNARY[name]
    x = leaf(unary_input(rng, (5,), domain))
    (g,) = tc.grad(fn(x).sum(), x, create_graph=True)
    if g.requires_grad:
        (h,) = tc.grad(g.sum(), x, allow_unused=True)
        assert h is None or not h.data.any()


def test_piecewise_ops_gradgradcheck_on_composites(rng) -> None:
    x = leaf(away_from(rng.standard_normal((2, 3)), (0.0,), 0.2))
    y = leaf(rng.standard_normal((2, 3)) + 5.0)
    assert tc.gradgradcheck(lambda t: tc.relu(t) * t, [x])
    assert tc.gradgradcheck(lambda t: tc.abs(t) ** 3, [x])
    assert tc.gradgradcheck(lambda t, u: tc.maximum(t, 0.0) * u, [x, y])


# -- kinks and ties: exact conventions -------------------------------------------------------------


def _grad(fn, values):
    x = leaf(values)
    fn(x).sum().backward()
    return x.grad.data


def test_relu_at_zero_has_zero_gradient() -> None:
    np.testing.assert_array_equal(_grad(tc.relu, [-1.0, 0.0, 2.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(tc.relu(tc.tensor([-1.0, 0.0, 2.0])).data, [0.0, 0.0, 2.0])


def test_abs_at_zero_has_zero_gradient() -> None:
    np.testing.assert_array_equal(_grad(tc.abs, [-2.0, 0.0, 3.0]), [-1.0, 0.0, 1.0])


def test_leaky_relu_values_and_slope_at_zero() -> None:
    out = tc.leaky_relu(tc.tensor([-2.0, 0.0, 3.0]), 0.1)
    np.testing.assert_allclose(out.data, [-0.2, 0.0, 3.0])
    np.testing.assert_allclose(_grad(lambda t: t.leaky_relu(0.1), [-2.0, 0.0, 3.0]), [0.1, 0.1, 1])
    np.testing.assert_allclose(_grad(tc.leaky_relu, [-2.0, 5.0]), [0.01, 1.0])  # default slope


def test_maximum_minimum_ties_split_the_gradient() -> None:
    a, b = leaf([1.0, 2.0, 3.0]), leaf([1.0, 5.0, 0.0])
    tc.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 1.0, 0.0])
    a.grad = b.grad = None
    tc.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.grad.data, [0.5, 0.0, 1.0])


def test_maximum_with_scalar_and_broadcast_tie() -> None:
    a = leaf([[0.0, 1.0], [-1.0, 0.0]])
    tc.maximum(a, 0.0).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [[0.5, 1.0], [0.0, 0.5]])
    b = leaf([0.0])
    c = leaf([[0.0], [1.0], [-1.0]])
    tc.maximum(b, c).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [0.5 + 0.0 + 1.0])
    np.testing.assert_array_equal(c.grad.data, [[0.5], [1.0], [0.0]])


def test_clip_gradient_passes_inside_and_on_bounds() -> None:
    x = [-2.0, -1.0, 0.0, 1.0, 2.0]
    out = tc.clip(tc.tensor(x), -1.0, 1.0)
    np.testing.assert_array_equal(out.data, [-1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(_grad(lambda t: t.clip(-1.0, 1.0), x), [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(_grad(lambda t: tc.clip(t, min=0.0), x), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(_grad(lambda t: tc.clip(t, max=0.0), x), [1, 1, 1, 0, 0])


def test_clip_errors() -> None:
    with pytest.raises(ValueError, match="clip: at least one"):
        tc.clip(tc.ones(2))
    with pytest.raises(ValueError, match=r"clip: min=2.0 is greater than max=1.0"):
        tc.clip(tc.ones(2), 2.0, 1.0)


# -- stability and special values ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype) -> None:
    x = tc.tensor(np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4], dtype), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        y = tc.sigmoid(x)
        y.sum().backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))
    assert y.data[0] == 0.0 and y.data[-1] == 1.0 and y.data[3] == 0.5
    assert y.dtype == dtype


def test_tanh_saturates_without_nan() -> None:
    x = leaf([-1e4, 0.0, 1e4])
    y = tc.tanh(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 0.0])


def test_pow_gradient_values() -> None:
    x = leaf([1.0, 2.0, 3.0])
    (x**3).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)
    y = leaf([-2.0, 0.0, 2.0])
    (y**2).sum().backward()  # integer-valued exponent with a negative and zero base
    np.testing.assert_array_equal(y.grad.data, [-4.0, 0.0, 4.0])
    e = leaf([0.5, 2.0])
    (3.0**e).sum().backward()
    np.testing.assert_allclose(e.grad.data, np.log(3.0) * 3.0**e.data)


def test_pow_zero_exponent_and_zero_base_give_zero_not_nan() -> None:
    # polynomial features x**k for k = 0..3 at x = 0 must not poison the gradient with NaN
    x = leaf([0.0, 1.0, 2.0])
    p = sum((k + 1.0) * x**k for k in range(4))
    p.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 + 6 * x.data + 12 * x.data**2)
    # a learnable exponent at a zero base: z = 0^b is flat in b for b > 0 (PyTorch gives 0 too)
    a, b = leaf([0.0, 2.0]), leaf([2.0, 2.0])
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.0, 4.0])
    np.testing.assert_allclose(b.grad.data, [0.0, 4.0 * np.log(2.0)])
    # second order through the masked gradient stays finite away from the masked points
    c = leaf([0.0, 1.5])
    (g,) = tc.grad((c**2.0).sum(), c, create_graph=True)
    (h,) = tc.grad(g.sum(), c)
    np.testing.assert_allclose(h.data, [2.0, 2.0])


def test_div_by_constant_and_reciprocal() -> None:
    x = leaf([1.0, 2.0, 4.0])
    (1.0 / x).sum().backward()
    np.testing.assert_allclose(x.grad.data, -1.0 / x.data**2)


def test_elementwise_on_integer_tensors_produce_float_where_numpy_does() -> None:
    i = tc.tensor([1, 2, 3])
    assert tc.exp(i).dtype == np.float64
    assert tc.sqrt(i).dtype == np.float64
    np.testing.assert_allclose(tc.sigmoid(i).data, sigmoid_ref(np.array([1.0, 2.0, 3.0])))
    assert tc.sigmoid(i).dtype.kind == "f"
    assert tc.tanh(i).dtype.kind == "f"
    assert tc.relu(tc.tensor([-1, 2])).data.tolist() == [0, 2]
    leaky = tc.leaky_relu(tc.tensor([-2, 3]), 0.5)  # the slope must not be truncated to int
    assert leaky.data.tolist() == [-1.0, 3.0] and leaky.dtype.kind == "f"
    assert tc.abs(tc.tensor([-1, 2])).dtype == np.int64


# -- method forms, operands, names -----------------------------------------------------------------


def test_method_forms_match_functions(rng) -> None:
    a = rng.standard_normal((2, 3))
    t = tc.tensor(a)
    pos = tc.tensor(np.abs(a) + 0.1)
    pairs = [
        (t.exp(), tc.exp(t)),
        (pos.log(), tc.log(pos)),
        (pos.sqrt(), tc.sqrt(pos)),
        (t.abs(), tc.abs(t)),
        (abs(t), tc.abs(t)),
        (t.relu(), tc.relu(t)),
        (t.leaky_relu(0.3), tc.leaky_relu(t, 0.3)),
        (t.sigmoid(), tc.sigmoid(t)),
        (t.tanh(), tc.tanh(t)),
        (t.clip(-0.1, 0.1), tc.clip(t, -0.1, 0.1)),
        (t.maximum(0.2), tc.maximum(t, 0.2)),
        (t.minimum(pos), tc.minimum(t, pos)),
        (-t, tc.neg(t)),
    ]
    for m, f in pairs:
        np.testing.assert_array_equal(m.data, f.data)


def test_functions_accept_arrays_and_scalars() -> None:
    assert isinstance(tc.exp(np.zeros(2)), Tensor)
    assert tc.add(1.0, 2.0).item() == 3.0
    assert tc.add(1.0, 2.0).dtype == np.float32
    np.testing.assert_allclose(tc.mul(np.ones(2), 3.0).data, [3.0, 3.0])
    assert tc.mul(np.ones(2), 3.0).dtype == np.float64


def test_op_names_in_graph() -> None:
    x = leaf([1.0])
    names = {
        "add": x + 1,
        "sub": x - 1,
        "mul": x * 2,
        "div": x / 2,
        "neg": -x,
        "pow": x**2,
        "exp": x.exp(),
        "log": x.log(),
        "sqrt": x.sqrt(),
        "abs": x.abs(),
        "maximum": x.maximum(0.0),
        "minimum": x.minimum(0.0),
        "relu": x.relu(),
        "leaky_relu": x.leaky_relu(),
        "sigmoid": x.sigmoid(),
        "tanh": x.tanh(),
        "clip": x.clip(0, 1),
        "where": tc.where(np.array([True]), x, 0.0),
    }
    for name, t in names.items():
        assert t.grad_fn.name == name


# -- hypothesis ------------------------------------------------------------------------------------


@HYP
@given(
    name=st.sampled_from(sorted(UNARY)),
    shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_unary(name, shape, seed) -> None:
    fn, ref, domain, smooth = UNARY[name]
    rng = np.random.default_rng(seed)
    a = unary_input(rng, shape, domain)
    x = leaf(a)
    out = fn(x)
    np.testing.assert_allclose(out.data, ref(a), rtol=1e-12, atol=1e-15)
    assert out.shape == a.shape and out.dtype == np.float64
    assert tc.gradcheck(fn, [x])


@HYP
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_binary_broadcast(name, shapes, seed) -> None:
    fn, ref, da, db, _ = BINARY[name]
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a, b = binary_inputs(rng, name, sa, sb, da, db)
    ta, tb = leaf(a), leaf(b)
    out = fn(ta, tb)
    np.testing.assert_allclose(out.data, ref(a, b), rtol=1e-12)
    assert out.shape == shapes.result_shape
    assert tc.gradcheck(fn, [ta, tb])


@HYP
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_float32_binary_keeps_dtype_and_grad_dtype(shapes, seed) -> None:
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a = tc.tensor(rng.standard_normal(sa).astype(np.float32), requires_grad=True)
    b = tc.tensor(rng.standard_normal(sb).astype(np.float32) + 4, requires_grad=True)
    y = (a * b + a / b - 2.0 * a) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.shape == sa
    assert b.grad.dtype == np.float32 and b.grad.shape == sb

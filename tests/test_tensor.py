"""Tests for the Tensor data structure: construction, dtype rules, factories, conversions,
operators."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import Tensor

# -- construction and dtype rules ------------------------------------------------------------------


def test_python_floats_become_float32() -> None:
    assert tc.tensor(3.0).dtype == np.float32
    assert tc.tensor([1.0, 2.5]).dtype == np.float32
    assert tc.tensor([[1, 2.5], [3, 4]]).dtype == np.float32
    assert Tensor(1.5).dtype == np.float32


def test_python_ints_and_bools_keep_integer_and_bool_dtypes() -> None:
    assert tc.tensor([1, 2, 3]).dtype == np.int64
    assert tc.tensor(True).dtype == np.bool_
    assert tc.tensor([True, False]).dtype == np.bool_


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8]
)
def test_ndarrays_keep_their_dtype(dtype) -> None:
    arr = np.arange(6).reshape(2, 3).astype(dtype)
    t = tc.tensor(arr)
    assert t.dtype == dtype
    assert t.shape == (2, 3)


def test_numpy_scalars_keep_their_dtype() -> None:
    assert tc.tensor(np.float64(1.5)).dtype == np.float64
    assert tc.tensor(np.float32(1.5)).dtype == np.float32
    assert tc.tensor(np.int16(3)).dtype == np.int16


def test_explicit_dtype_converts() -> None:
    assert tc.tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert tc.tensor(np.ones(3, np.float32), dtype="float64").dtype == np.float64
    assert tc.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert tc.tensor(1.5, dtype=np.float64).item() == 1.5


def test_data_is_not_copied() -> None:
    arr = np.zeros(4)
    t = tc.tensor(arr)
    assert t.data is arr
    assert t.numpy() is arr
    arr[0] = 7.0
    assert t.data[0] == 7.0
    # converting to the same dtype is no copy either
    assert tc.tensor(arr, dtype=np.float64).data is arr


def test_tensor_from_tensor_shares_data() -> None:
    a = tc.tensor(np.arange(3.0))
    b = Tensor(a)
    assert b.data is a.data
    assert not b.requires_grad


def test_object_data_is_rejected() -> None:
    with pytest.raises(TypeError, match="tensor"):
        tc.tensor({"a": 1})


def test_properties() -> None:
    t = tc.tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3
    assert t.size == 24
    assert t.dtype == np.float64
    assert len(t) == 2
    assert t.is_leaf and t.grad_fn is None and t.grad is None
    assert not t.requires_grad
    assert t.T.shape == (4, 3, 2)


def test_len_of_0d_raises() -> None:
    with pytest.raises(TypeError, match="0-d"):
        len(tc.tensor(1.0))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.uint8])
def test_requires_grad_on_integer_tensor_is_type_error(dtype) -> None:
    arr = np.zeros((2, 3), dtype=dtype)
    with pytest.raises(
        TypeError, match=r"requires_grad.*int|requires_grad.*bool|requires_grad.*uint"
    ):
        tc.tensor(arr, requires_grad=True)
    with pytest.raises(TypeError, match=r"\(2, 3\)"):
        Tensor(arr, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        tc.tensor(arr).requires_grad_()


def test_requires_grad_integer_python_list_is_type_error() -> None:
    with pytest.raises(TypeError, match="int64"):
        tc.tensor([1, 2, 3], requires_grad=True)


def test_requires_grad_flag_and_in_place_setter() -> None:
    t = tc.tensor([1.0, 2.0])
    assert t.requires_grad_() is t
    assert t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad


def test_requires_grad_false_on_non_leaf_raises() -> None:
    x = tc.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_item() -> None:
    assert tc.tensor(2.5).item() == 2.5
    assert isinstance(tc.tensor([3]).item(), int)
    assert tc.tensor([[4.0]]).item() == 4.0
    with pytest.raises(ValueError, match=r"item\(\).*3 elements.*\(3,\)"):
        tc.tensor([1.0, 2.0, 3.0]).item()


def test_tolist_and_array_protocol() -> None:
    t = tc.tensor(np.arange(4.0).reshape(2, 2))
    assert t.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


def test_bool_of_tensor() -> None:
    assert bool(tc.tensor(1.0))
    assert not bool(tc.tensor([0.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tc.tensor([1.0, 2.0]))


def test_repr_shows_dtype_and_grad_state() -> None:
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "float32" in repr(x)
    assert "grad_fn=<mul>" in repr(x * 2)


def test_detach_shares_data_and_cuts_graph() -> None:
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.data is y.data
    assert not d.requires_grad and d.is_leaf
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # d was a constant


def test_astype_float_double_are_differentiable() -> None:
    x = tc.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])
    assert y.float().dtype == np.float32
    assert x.astype(np.float32) is x
    i = x.astype(np.int32)
    assert i.dtype == np.int32 and not i.requires_grad


# -- factories -------------------------------------------------------------------------------------


def test_zeros_ones_full() -> None:
    z = tc.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.data.any()
    o = tc.ones((4,), dtype=np.float64, requires_grad=True)
    assert o.shape == (4,) and o.dtype == np.float64 and o.requires_grad
    np.testing.assert_array_equal(o.data, 1.0)
    f = tc.full((2, 2), 7.0)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f.data, 7.0)
    assert tc.zeros(3, dtype=np.int64).dtype == np.int64
    assert tc.zeros().shape == ()


def test_zeros_like_ones_like() -> None:
    a = tc.tensor(np.ones((2, 5), np.float64))
    assert tc.zeros_like(a).shape == (2, 5) and tc.zeros_like(a).dtype == np.float64
    assert tc.ones_like(np.zeros(3, np.int32)).dtype == np.int32


def test_factories_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"non-negative.*-1"):
        tc.zeros(2, -1)
    with pytest.raises(ValueError, match="shape"):
        tc.ones(2.5)


def test_factories_requires_grad_on_int_is_type_error() -> None:
    with pytest.raises(TypeError, match="int64"):
        tc.zeros(3, dtype=np.int64, requires_grad=True)


@pytest.mark.parametrize("factory", [tc.randn, tc.rand])
def test_random_factories_dtype_and_seedable_generator(factory) -> None:
    a = factory(3, 4, generator=42)
    b = factory(3, 4, generator=42)
    c = factory(3, 4, generator=43)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    d = factory(2, 2, dtype=np.float64, generator=np.random.default_rng(0))
    e = factory(2, 2, dtype=np.float64, generator=np.random.default_rng(0))
    assert d.dtype == np.float64
    np.testing.assert_array_equal(d.data, e.data)
    assert factory((5,), requires_grad=True).requires_grad


def test_manual_seed_makes_global_generator_reproducible() -> None:
    tc.manual_seed(7)
    a = tc.randn(5)
    b = tc.rand(5)
    tc.manual_seed(7)
    np.testing.assert_array_equal(a.data, tc.randn(5).data)
    np.testing.assert_array_equal(b.data, tc.rand(5).data)


def test_rand_range_and_randn_statistics() -> None:
    u = tc.rand(10000, generator=0).data
    assert u.min() >= 0.0 and u.max() < 1.0
    n = tc.randn(10000, dtype=np.float64, generator=0).data
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


def test_arange() -> None:
    a = tc.arange(5)
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a.data, np.arange(5))
    b = tc.arange(0, 1, 0.25)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b.data, [0, 0.25, 0.5, 0.75])
    c = tc.arange(2, 8, 2, dtype=np.float64)
    assert c.dtype == np.float64
    np.testing.assert_array_equal(c.data, [2, 4, 6])


# -- operators and dtype promotion -----------------------------------------------------------------


def _pair(rng):
    a = rng.standard_normal((2, 3))
    b = rng.standard_normal((2, 3)) + 3.0
    return a, b


@pytest.mark.parametrize(
    "op",
    [
        lambda x, y: x + y,
        lambda x, y: x - y,
        lambda x, y: x * y,
        lambda x, y: x / y,
        lambda x, y: abs(x) ** y,
    ],
    ids=["add", "sub", "mul", "div", "pow"],
)
def test_binary_operators_all_operand_kinds(op, rng) -> None:
    a, b = _pair(rng)
    expected = op(a, b)
    ta, tb = tc.tensor(a), tc.tensor(b)
    for x, y in [(ta, tb), (ta, b), (a, tb)]:
        out = op(x, y)
        assert isinstance(out, Tensor), (type(x), type(y))
        np.testing.assert_allclose(out.data, expected, rtol=1e-12)
        assert out.dtype == np.float64


@pytest.mark.parametrize(
    "op, ref",
    [
        (lambda t: t + 2, lambda a: a + 2),
        (lambda t: 2 + t, lambda a: 2 + a),
        (lambda t: t - 2, lambda a: a - 2),
        (lambda t: 2 - t, lambda a: 2 - a),
        (lambda t: t * 3.0, lambda a: a * 3.0),
        (lambda t: 3.0 * t, lambda a: 3.0 * a),
        (lambda t: t / 4, lambda a: a / 4),
        (lambda t: 4 / t, lambda a: 4 / a),
        (lambda t: t**2, lambda a: a**2),
        (lambda t: 2.0**t, lambda a: 2.0**a),
        (lambda t: -t, lambda a: -a),
        (lambda t: +t, lambda a: +a),
        (lambda t: abs(t), lambda a: abs(a)),
    ],
)
def test_operators_with_python_scalars(op, ref) -> None:
    a = np.array([[0.5, -1.5, 2.0], [3.0, 1.0, -0.25]])
    out = op(tc.tensor(a))
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, ref(a))


def test_ndarray_on_the_left_gives_a_tensor() -> None:
    a = np.array([1.0, 2.0])
    t = tc.tensor([3.0, 4.0], requires_grad=True)
    for out in (a + t, a - t, a * t, a / t, a**t, np.ones((2, 2)) @ t):
        assert isinstance(out, Tensor)
        assert out.requires_grad
    (a * t).sum().backward()
    np.testing.assert_allclose(t.grad.data, a)


def test_matmul_operator_and_reflected() -> None:
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose((tc.tensor(a) @ tc.tensor(b)).data, a @ b)
    np.testing.assert_allclose((a @ tc.tensor(b)).data, a @ b)
    np.testing.assert_allclose((tc.tensor(a) @ b).data, a @ b)
    np.testing.assert_allclose(tc.tensor(a).matmul(b).data, a @ b)


def test_float32_stays_float32_with_python_scalars() -> None:
    x = tc.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    outs = [x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x**2, x**0.5, 2.0**x, -x]
    outs += [x.exp(), x.log(), x.sqrt(), x.sigmoid(), x.tanh(), x.relu(), x.clip(0.5, 1.5)]
    outs += [x.sum(), x.mean(), x.var(), x.max(), x.softmax(), x.logsumexp()]
    outs += [tc.where(x > 1.5, x, 0.0), x.maximum(1.0), x.leaky_relu(0.1)]
    for out in outs:
        assert out.dtype == np.float32, out
    total = outs[0].sum()
    for o in outs[1:]:
        total = total + o.sum()
    total.backward()
    assert x.grad.dtype == np.float32


def test_float32_with_numpy_float64_array_promotes() -> None:
    x = tc.tensor(np.ones(2, np.float32))
    assert (x * np.ones(2)).dtype == np.float64
    assert (np.ones(2) + x).dtype == np.float64


def test_mixed_float32_float64_promotes_and_leaf_grads_keep_dtype() -> None:
    a = tc.tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    b = tc.tensor(np.array([4.0, 5.0, 6.0], np.float64), requires_grad=True)
    z = a * b
    assert z.dtype == np.float64
    (z * z).sum().backward()
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.data, 2 * a.data * b.data**2, rtol=1e-6)
    np.testing.assert_allclose(b.grad.data, 2 * b.data * a.data**2)


def test_mixed_dtype_broadcast_grad_has_leaf_shape_and_dtype() -> None:
    a = tc.tensor(np.ones((1, 3), np.float32), requires_grad=True)
    b = tc.tensor(np.full((4, 1), 2.0), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (1, 3) and a.grad.dtype == np.float32
    assert b.grad.shape == (4, 1) and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.data, [[8.0, 8.0, 8.0]])
    np.testing.assert_allclose(b.grad.data, [[3.0]] * 4)


def test_integer_tensor_arithmetic_follows_numpy() -> None:
    i = tc.tensor([1, 2, 3])
    assert (i + 1).dtype == np.int64
    np.testing.assert_array_equal((i * 2).data, [2, 4, 6])
    assert (i / 2).dtype == np.float64
    assert (i + 0.5).dtype == np.float64
    assert not (i * 2).requires_grad


def test_int_tensor_plus_float_tensor_promotes_and_grad_flows_to_float() -> None:
    i = tc.tensor(np.array([1, 2], np.int32))
    x = tc.tensor(np.array([0.5, 0.25]), requires_grad=True)
    y = i * x
    assert y.dtype == np.float64
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 2.0])


def test_comparisons_give_boolean_constants() -> None:
    x = tc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for out, exp in [
        (x < 2, [True, False, False]),
        (x <= 2, [True, True, False]),
        (x > 2, [False, False, True]),
        (x >= 2, [False, True, True]),
        (x == 2, [False, True, False]),
        (x != 2, [True, False, True]),
    ]:
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.data, exp)


def test_tensors_are_hashable_by_identity() -> None:
    a, b = tc.tensor([1.0]), tc.tensor([1.0])
    assert len({a, b}) == 2
    assert {a: 1}[a] == 1


def test_binary_op_shape_mismatch_names_op_and_shapes() -> None:
    a, b = tc.ones(2, 3), tc.ones(4)
    for name, f in [
        ("add", lambda: a + b),
        ("sub", lambda: a - b),
        ("mul", lambda: a * b),
        ("div", lambda: a / b),
        ("pow", lambda: a**b),
        ("maximum", lambda: tc.maximum(a, b)),
        ("minimum", lambda: tc.minimum(a, b)),
    ]:
        with pytest.raises(ValueError, match=rf"{name}.*\(2, 3\).*\(4,\)"):
            f()


# -- API surface: every op as tc.<name>, and as a method where PyTorch has one ---------------------

FUNCTIONS = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "maximum", "minimum",
    "where", "clip", "relu", "leaky_relu", "sigmoid", "tanh", "sum", "mean", "max", "min", "var",
    "matmul", "reshape", "transpose", "flatten", "broadcast_to", "squeeze", "unsqueeze", "getitem",
    "pad", "concatenate", "stack", "logsumexp", "softmax", "log_softmax", "cross_entropy",
    "mse_loss", "binary_cross_entropy_with_logits", "grad", "no_grad", "gradcheck", "gradgradcheck",
    "tensor", "zeros", "ones", "randn", "rand", "arange",
]  # fmt: skip

METHODS = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "maximum", "minimum",
    "where", "clip", "relu", "sigmoid", "tanh", "sum", "mean", "max", "min", "var", "matmul",
    "reshape", "transpose", "permute", "flatten", "broadcast_to", "squeeze", "unsqueeze",
    "logsumexp", "softmax", "log_softmax", "backward", "detach", "numpy", "item", "retain_grad",
    "register_hook",
]  # fmt: skip


@pytest.mark.parametrize("name", FUNCTIONS)
def test_public_function_exists(name) -> None:
    assert callable(getattr(tc, name))


def test_permute_function_exists() -> None:
    x = tc.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(tc.permute(x, (1, 0)).data, x.data.T)


@pytest.mark.parametrize("name", METHODS)
def test_tensor_method_exists(name) -> None:
    assert callable(getattr(Tensor, name))


def test_arithmetic_methods_match_operators() -> None:
    a = np.array([[1.0, -2.0, 3.0]])
    b = np.array([[2.0], [0.5]])
    x, y = tc.tensor(a, requires_grad=True), tc.tensor(b)
    np.testing.assert_array_equal(x.add(y).data, a + b)
    np.testing.assert_array_equal(x.sub(2.0).data, a - 2.0)
    np.testing.assert_array_equal(x.mul(y).data, a * b)
    np.testing.assert_array_equal(x.div(y).data, a / b)
    np.testing.assert_array_equal(x.neg().data, -a)
    np.testing.assert_array_equal(x.pow(2).data, a**2)
    np.testing.assert_array_equal(x.where(x > 0, 0.0).data, np.where(a > 0, a, 0.0))
    x.where(x > 0, y).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[2.0, 0.0, 2.0]])

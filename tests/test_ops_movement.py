"""Movement ops: reshape, transpose/permute/swapaxes, flatten, broadcast_to, squeeze/unsqueeze,
indexing (slices, ints, None, Ellipsis, integer arrays with repeats, boolean masks), pad,
concatenate and stack: values against numpy, gradients, second derivatives, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, basic_indices

import tinygrad_conv as tc
from tinygrad_conv import Tensor

HYP = settings(max_examples=25, deadline=None, derandomize=True)


def leaf(a) -> Tensor:
    return tc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, *arrays, second: bool = True) -> None:
    """gradcheck (and gradgradcheck) of fn at float64 leaves made from ``arrays``."""
    leaves = [leaf(a) for a in arrays]
    assert tc.gradcheck(fn, leaves)
    if second:
        assert tc.gradgradcheck(fn, leaves)


# -- reshape / flatten -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(6, 4), (24,), (-1,), (2, -1, 3), (4, 3, 2), (1, 24, 1), (2, 3, 4)], ids=str
)
def test_reshape(shape, rng) -> None:
    a = rng.standard_normal((2, 3, 4))
    t = tc.tensor(a)
    np.testing.assert_array_equal(tc.reshape(t, shape).data, a.reshape(shape))
    np.testing.assert_array_equal(t.reshape(shape).data, a.reshape(shape))
    np.testing.assert_array_equal(t.reshape(*shape).data, a.reshape(shape))
    check(lambda x: tc.reshape(x, shape), a)


def test_reshape_int_and_scalar() -> None:
    assert tc.reshape(tc.ones(6), 6).shape == (6,)
    assert tc.tensor([3.0]).reshape(()).shape == ()
    assert tc.tensor(3.0).reshape(1, 1).shape == (1, 1)


@pytest.mark.parametrize("shape", [(4, 2), (5, -1), (-1, -1), (0, -1), (-2, 3), (7,)], ids=str)
def test_reshape_errors_name_both_shapes(shape) -> None:
    t = tc.ones(2, 3)
    with pytest.raises(
        ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) into"
    ):
        t.reshape(shape)


def test_reshape_shares_memory_with_input() -> None:
    a = np.arange(6.0)
    assert np.shares_memory(tc.tensor(a).reshape(2, 3).data, a)


@pytest.mark.parametrize(
    "start, end, shape",
    [(0, -1, (24,)), (1, -1, (2, 12)), (0, 1, (6, 4)), (1, 1, (2, 3, 4)), (-2, -1, (2, 12))],
)
def test_flatten(start, end, shape, rng) -> None:
    a = rng.standard_normal((2, 3, 4))
    out = tc.tensor(a).flatten(start, end)
    assert out.shape == shape
    np.testing.assert_array_equal(out.data, a.reshape(shape))
    check(lambda x: tc.flatten(x, start, end), a)


def test_flatten_edge_cases() -> None:
    assert tc.tensor(2.0).flatten().shape == (1,)
    assert tc.ones(0, 3).flatten().shape == (0,)
    with pytest.raises(ValueError, match="flatten: start_axis 2 comes after end_axis 1"):
        tc.ones(2, 3, 4).flatten(2, 1)
    with pytest.raises(ValueError, match="flatten: axis 3 is out of range"):
        tc.ones(2, 3, 4).flatten(3)


# -- transpose / permute / swapaxes ----------------------------------------------------------------


@pytest.mark.parametrize("axes", [None, (0, 2, 1), (2, 0, 1), (1, 2, 0), (-1, 0, 1)], ids=str)
def test_transpose(axes, rng) -> None:
    a = rng.standard_normal((2, 3, 4))
    t = tc.tensor(a)
    np.testing.assert_array_equal(tc.transpose(t, axes).data, np.transpose(a, axes))
    if axes is None:
        np.testing.assert_array_equal(t.transpose().data, a.T)
        np.testing.assert_array_equal(t.T.data, a.T)
    else:
        np.testing.assert_array_equal(t.transpose(*axes).data, np.transpose(a, axes))
        np.testing.assert_array_equal(t.transpose(axes).data, np.transpose(a, axes))
        np.testing.assert_array_equal(t.permute(*axes).data, np.transpose(a, axes))
        np.testing.assert_array_equal(t.permute(axes).data, np.transpose(a, axes))
    check(lambda x: tc.transpose(x, axes), a)


def test_transpose_of_matrix_and_gradient_layout() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    g = np.arange(6.0).reshape(3, 2) * 10
    x.transpose(1, 0).backward(g)  # NumPy semantics: the arguments are the full permutation
    np.testing.assert_array_equal(x.grad.data, g.T)
    assert x.T.shape == (3, 2)


def test_transpose_identity_returns_input() -> None:
    t = tc.ones(2, 3)
    assert tc.transpose(t, (0, 1)) is t


def test_transpose_errors() -> None:
    with pytest.raises(
        ValueError, match=r"transpose: axes \(0, 0, 1\) are not a permutation of a 3-d"
    ):
        tc.ones(2, 3, 4).transpose(0, 0, 1)
    with pytest.raises(ValueError, match="transpose: axes"):
        tc.ones(2, 3).permute(0, 2)


@pytest.mark.parametrize("a1, a2", [(0, 1), (0, 2), (-1, 0), (1, 1)])
def test_swapaxes(a1, a2, rng) -> None:
    a = rng.standard_normal((2, 3, 4))
    out = tc.tensor(a).swapaxes(a1, a2)
    np.testing.assert_array_equal(out.data, np.swapaxes(a, a1, a2))
    check(lambda x: tc.swapaxes(x, a1, a2), a)
    with pytest.raises(ValueError, match="swapaxes: axis 3 is out of range"):
        tc.swapaxes(tc.tensor(a), 0, 3)


# -- broadcast_to / sum_to_shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    "src, dst",
    [((3,), (2, 3)), ((2, 1), (2, 4)), ((1,), (3, 2, 5)), ((), (2, 2)), ((2, 1, 3), (4, 2, 5, 3))],
)
def test_broadcast_to(src, dst, rng) -> None:
    a = rng.standard_normal(src)
    out = tc.broadcast_to(tc.tensor(a), dst)
    np.testing.assert_array_equal(out.data, np.broadcast_to(a, dst))
    np.testing.assert_array_equal(tc.tensor(a).broadcast_to(dst).data, np.broadcast_to(a, dst))
    check(lambda x: tc.broadcast_to(x, dst), a)
    x = leaf(a)
    tc.broadcast_to(x, dst).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.full(src, np.prod(dst) / max(a.size, 1)))


def test_broadcast_to_errors() -> None:
    with pytest.raises(
        ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to \(4, 3\)"
    ):
        tc.ones(2, 3).broadcast_to((4, 3))
    with pytest.raises(
        ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to \(3,\)"
    ):
        tc.ones(2, 3).broadcast_to((3,))


def test_sum_to_shape(rng) -> None:
    a = rng.standard_normal((4, 2, 3))
    out = tc.sum_to_shape(tc.tensor(a), (2, 1))
    np.testing.assert_allclose(out.data, a.sum(axis=(0, 2))[:, None])
    check(lambda x: tc.sum_to_shape(x, (1, 3)), a)


# -- squeeze / unsqueeze ---------------------------------------------------------------------------


def test_squeeze_unsqueeze(rng) -> None:
    a = rng.standard_normal((1, 3, 1, 2))
    t = tc.tensor(a)
    assert t.squeeze().shape == (3, 2)
    assert t.squeeze(axis=0).shape == (3, 1, 2)
    assert t.squeeze(2).shape == (1, 3, 2)
    assert t.squeeze(axis=(0, -2)).shape == (3, 2)
    assert tc.squeeze(t, axis=-2).shape == (1, 3, 2)
    b = tc.tensor(rng.standard_normal((3, 2)))
    assert b.unsqueeze(0).shape == (1, 3, 2)
    assert b.unsqueeze(axis=1).shape == (3, 1, 2)
    assert b.unsqueeze(2).shape == (3, 2, 1)
    assert b.unsqueeze(-1).shape == (3, 2, 1)
    assert tc.unsqueeze(b, -3).shape == (1, 3, 2)
    check(lambda x: x.squeeze(0), a)
    check(lambda x: x.unsqueeze(1), a)


def test_squeeze_0d() -> None:
    s = tc.tensor(2.0, requires_grad=True)
    assert s.squeeze().shape == () and s.squeeze(0).shape == ()
    s.squeeze(0).backward()
    assert s.grad.item() == 1.0
    with pytest.raises(ValueError, match="squeeze: axis 3 is out of range"):
        s.squeeze(3)


def test_squeeze_errors() -> None:
    with pytest.raises(ValueError, match=r"squeeze: axis 1 has length 3 \(shape \(1, 3\)\)"):
        tc.ones(1, 3).squeeze(1)
    with pytest.raises(ValueError, match="squeeze: axis 2 is out of range"):
        tc.ones(1, 3).squeeze(2)
    with pytest.raises(ValueError, match="unsqueeze: axis 3 is out of range"):
        tc.ones(1, 3).unsqueeze(3)


# -- getitem ---------------------------------------------------------------------------------------

INDICES = [
    0,
    -1,
    (1, 2),
    slice(1, None),
    slice(None, None, -1),
    (slice(None), slice(0, 3, 2)),
    (Ellipsis, 1),
    (None, 0),
    (0, None, slice(1, 3)),
    np.array([0, 2, 0, 2, 2]),
    (slice(None), np.array([1, 1, 3])),
    (np.array([0, 2, 0]), np.array([1, 1, 1])),
    (np.array([[0, 1], [1, 0]]), slice(None)),
    np.array([True, False, True]),
    (Ellipsis, np.array([-1, 0, -1])),
    (np.array([2, 2]), slice(None), np.array([0, 0])),
]


def _ids(ix):
    return repr(ix).replace(" ", "").replace("\n", "")


@pytest.mark.parametrize("index", INDICES, ids=_ids)
def test_getitem_values_and_gradients(index, rng) -> None:
    a = rng.standard_normal((3, 4, 2))
    out = tc.tensor(a)[index]
    np.testing.assert_array_equal(out.data, a[index])
    check(lambda x: x[index], a)
    # the gradient is a scatter-add: repeated indices accumulate
    x = leaf(a)
    g = rng.standard_normal(np.shape(a[index]))
    x[index].backward(g)
    expected = np.zeros_like(a)
    np.add.at(expected, index, g)
    np.testing.assert_allclose(x.grad.data, expected)


def test_getitem_repeated_indices_accumulate_exactly() -> None:
    x = leaf([10.0, 20.0, 30.0])
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])
    y = leaf(np.zeros((2, 2)))
    y[[1, 1], [0, 0]].sum().backward()
    np.testing.assert_array_equal(y.grad.data, [[0, 0], [2, 0]])


def test_getitem_with_list_and_tensor_indices() -> None:
    a = np.arange(12.0).reshape(3, 4)
    t = tc.tensor(a)
    np.testing.assert_array_equal(t[[2, 0]].data, a[[2, 0]])
    np.testing.assert_array_equal(t[tc.tensor([1, 1])].data, a[[1, 1]])
    np.testing.assert_array_equal(t[:, tc.tensor([3, 0])].data, a[:, [3, 0]])
    np.testing.assert_array_equal(t[t > 5].data, a[a > 5])
    np.testing.assert_array_equal(tc.getitem(t, (1, slice(None))).data, a[1])


def test_getitem_empty_list_selects_nothing() -> None:
    x = leaf([1.0, 2.0])
    out = x[[]]
    assert out.shape == (0,)
    (out.sum() + x.sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_getitem_mask_gradient() -> None:
    x = leaf([[1.0, -2.0], [-3.0, 4.0]])
    x[x > 0].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 0], [0, 1]])


def test_getitem_float32_grad_dtype() -> None:
    x = tc.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x[np.array([0, 0])].sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [[2, 2], [0, 0], [0, 0]])


@pytest.mark.parametrize(
    "index, pattern",
    [
        (5, r"getitem: index 5 is invalid for shape \(3, 4\).*out of bounds"),
        ((0, -5), r"getitem: index \(0, -5\) is invalid for shape \(3, 4\)"),
        (np.array([0, 3]), r"getitem: index .*3.* is invalid for shape \(3, 4\)"),
        ((slice(None), [1, 4]), r"getitem: .* is invalid for shape \(3, 4\)"),
        ((0, 0, 0), r"getitem: .* is invalid for shape \(3, 4\).*too many"),
        (np.array([True, False]), r"getitem: .* is invalid for shape \(3, 4\)"),
    ],
)
def test_getitem_out_of_range_is_index_error(index, pattern) -> None:
    with pytest.raises(IndexError, match=pattern):
        tc.ones(3, 4)[index]


def test_getitem_float_index_is_type_error() -> None:
    with pytest.raises(
        TypeError, match="getitem: index arrays must be integer or boolean, got float64"
    ):
        tc.ones(3)[np.array([0.0, 1.0])]
    with pytest.raises(TypeError, match="getitem"):
        tc.ones(3)[tc.tensor([1.0])]


def test_getitem_index_array_mutated_after_forward_does_not_change_gradient() -> None:
    idx = np.array([0, 1])
    x = leaf([1.0, 2.0, 3.0])
    y = x[idx]
    idx[:] = 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1, 0])


@HYP
@given(
    shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_basic_indexing(shape, data, seed) -> None:
    index = data.draw(basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    a = np.random.default_rng(seed).standard_normal(shape)
    out = tc.tensor(a)[index]
    np.testing.assert_array_equal(out.data, a[index])
    if out.size:
        assert tc.gradcheck(lambda x: x[index], [leaf(a)])


# -- pad -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pad_width", [1, (1, 2), ((0, 1), (2, 0)), [[1, 1], [0, 0]], ((3, 0),)], ids=str
)
def test_pad(pad_width, rng) -> None:
    a = rng.standard_normal((2, 3))
    out = tc.pad(tc.tensor(a), pad_width)
    np.testing.assert_array_equal(out.data, np.pad(a, pad_width))
    np.testing.assert_array_equal(
        tc.pad(tc.tensor(a), pad_width, value=-2.5).data,
        np.pad(a, pad_width, constant_values=-2.5),
    )
    check(lambda x: tc.pad(x, pad_width, value=1.5), a)


def test_pad_gradient_is_the_unpadded_slice() -> None:
    x = leaf(np.ones((2, 2)))
    g = np.arange(20.0).reshape(4, 5)
    tc.pad(x, ((1, 1), (2, 1))).backward(g)
    np.testing.assert_array_equal(x.grad.data, g[1:3, 2:4])


def test_pad_keeps_dtype() -> None:
    assert tc.pad(tc.ones(2), 1).dtype == np.float32
    assert tc.pad(tc.tensor([1, 2]), 1).dtype == np.int64


def test_pad_errors() -> None:
    with pytest.raises(
        ValueError, match=r"pad: pad_width .* does not fit a tensor of shape \(2, 3\)"
    ):
        tc.pad(tc.ones(2, 3), ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match="pad: negative pad_width"):
        tc.pad(tc.ones(2, 3), -1)


# -- concatenate / stack ---------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis, rng) -> None:
    shapes = [(2, 3), (2, 1), (2, 2)] if axis else [(2, 3), (1, 3), (3, 3)]
    arrays = [rng.standard_normal(s) for s in shapes]
    out = tc.concatenate([tc.tensor(a) for a in arrays], axis=axis)
    np.testing.assert_array_equal(out.data, np.concatenate(arrays, axis=axis))
    check(lambda *xs: tc.concatenate(xs, axis=axis), *arrays)


def test_concatenate_gradient_slices_and_constants(rng) -> None:
    a = leaf(np.ones((2, 2)))
    c = np.zeros((2, 1))
    b = leaf(np.ones((2, 3)))
    out = tc.concatenate([a, c, b], axis=1)
    g = np.arange(12.0).reshape(2, 6)
    out.backward(g)
    np.testing.assert_array_equal(a.grad.data, g[:, :2])
    np.testing.assert_array_equal(b.grad.data, g[:, 3:])


def test_concatenate_mixed_dtypes_promote() -> None:
    a = tc.tensor(np.ones(2, np.float32), requires_grad=True)
    b = tc.tensor(np.ones(3, np.float64), requires_grad=True)
    out = tc.concatenate([a, b])
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(axis, rng) -> None:
    arrays = [rng.standard_normal((2, 3)) for _ in range(3)]
    out = tc.stack([tc.tensor(a) for a in arrays], axis=axis)
    np.testing.assert_array_equal(out.data, np.stack(arrays, axis=axis))
    check(lambda *xs: tc.stack(xs, axis=axis), *arrays)


def test_stack_same_tensor_twice_accumulates() -> None:
    x = leaf([1.0, 2.0])
    tc.stack([x, x * 2, x], axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 4.0])


def test_concatenate_stack_errors() -> None:
    with pytest.raises(
        ValueError, match=r"concatenate: tensor 1 has shape \(3, 2\), incompatible with \(2, 3\)"
    ):
        tc.concatenate([tc.ones(2, 3), tc.ones(3, 2)], axis=0)
    with pytest.raises(ValueError, match=r"concatenate: tensor 1 has shape \(3,\)"):
        tc.concatenate([tc.ones(2, 3), tc.ones(3)], axis=1)
    with pytest.raises(
        ValueError, match=r"stack: tensor 2 has shape \(2, 4\), incompatible with \(2, 3\)"
    ):
        tc.stack([tc.ones(2, 3), tc.ones(2, 3), tc.ones(2, 4)])
    with pytest.raises(ValueError, match="stack: needs at least one tensor"):
        tc.stack([])
    with pytest.raises(ValueError, match="concatenate: needs at least one tensor"):
        tc.concatenate([])
    with pytest.raises(ValueError, match="stack: axis 3 is out of range"):
        tc.stack([tc.ones(2, 3)], axis=3)
    with pytest.raises(ValueError, match="concatenate: axis 2 is out of range"):
        tc.concatenate([tc.ones(2, 3)], axis=2)


def test_op_names_and_graph_nodes() -> None:
    x = leaf(np.ones((2, 3)))
    assert x.reshape(3, 2).grad_fn.name == "reshape"
    assert x.T.grad_fn.name == "transpose"
    assert x.broadcast_to((4, 2, 3)).grad_fn.name == "broadcast_to"
    assert x[0].grad_fn.name == "getitem"
    assert tc.pad(x, 1).grad_fn.name == "pad"
    assert tc.concatenate([x, x]).grad_fn.name == "concatenate"
    assert tc.stack([x, x]).grad_fn.name == "stack"

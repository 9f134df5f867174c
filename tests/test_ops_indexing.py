"""Movement and indexing ops (ops/indexing.py) against PyTorch in float32 and float64 (values and
gradients), gradcheck/gradgradcheck in float64, vjp rules against the recorded backward, einsum's
forms (implicit, '...', traces, labels summed inside one operand), and the bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from vjp_rules import check_rule

import tinygrad_conv as tc
from tinygrad_conv.ops import indexing as I

HYP = settings(max_examples=15, deadline=None, derandomize=True)

IDX0 = np.array([[0, 2, 1, 0], [2, 2, 0, 1]])  # gather along axis 0 of a [3, 4]
IDX1 = np.array([[3, 0], [1, 1], [0, 2]])  # along axis 1, with a repeat
IDX_SMALL = np.array([[3, 0], [1, 1]])  # fewer rows than the input: PyTorch uses the first rows


def leaf(x, dtype=np.float64):
    return tc.tensor(np.asarray(x, dtype=dtype), requires_grad=True)


# name: (tc fn, torch fn) on one [3, 4] input
UNARY = {
    "flip0": (lambda x: tc.flip(x, 0), lambda x: torch.flip(x, (0,))),
    "flip_all": (lambda x: tc.flip(x), lambda x: torch.flip(x, (0, 1))),
    "roll": (lambda x: tc.roll(x, 2, 1), lambda x: torch.roll(x, 2, 1)),
    "roll_two": (lambda x: tc.roll(x, (1, -1), (0, 1)), lambda x: torch.roll(x, (1, -1), (0, 1))),
    "roll_flat": (lambda x: tc.roll(x, 5), lambda x: torch.roll(x, 5)),
    "tile": (lambda x: tc.tile(x, (2, 1, 3)), lambda x: x.repeat(2, 1, 3)),
    "repeat": (lambda x: x.repeat(2, 2), lambda x: x.repeat(2, 2)),
    "repeat_interleave": (
        lambda x: tc.repeat_interleave(x, 2, 1),
        lambda x: torch.repeat_interleave(x, 2, 1),
    ),
    "repeat_interleave_counts": (
        lambda x: tc.repeat_interleave(x, [1, 0, 3], 0),
        lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 3]), 0),
    ),
    "repeat_interleave_flat": (
        lambda x: tc.repeat_interleave(x, 2),
        lambda x: torch.repeat_interleave(x, 2),
    ),
    "split_last": (lambda x: tc.split(x, 3, 1)[1], lambda x: torch.split(x, 3, 1)[1]),
    "split_sizes": (lambda x: tc.split(x, [1, 2], 0)[1], lambda x: torch.split(x, [1, 2], 0)[1]),
    "chunk": (lambda x: tc.chunk(x, 3, 1)[0], lambda x: torch.chunk(x, 3, 1)[0]),
    "tril": (lambda x: tc.tril(x), lambda x: torch.tril(x)),
    "triu_k": (lambda x: tc.triu(x, 1), lambda x: torch.triu(x, 1)),
    "tril_neg": (lambda x: tc.tril(x, -1), lambda x: torch.tril(x, -1)),
    "diag2d": (lambda x: tc.diag(x), lambda x: torch.diag(x)),
    "diag2d_k": (lambda x: tc.diag(x, 2), lambda x: torch.diag(x, 2)),
    "diag2d_negk": (lambda x: tc.diag(x, -1), lambda x: torch.diag(x, -1)),
    "diag1d": (lambda x: tc.diag(x[0]), lambda x: torch.diag(x[0])),
    "diag1d_k": (lambda x: tc.diag(x[1], 1), lambda x: torch.diag(x[1], 1)),
    "diag1d_negk": (lambda x: tc.diag(x[2], -2), lambda x: torch.diag(x[2], -2)),
    "moveaxis": (
        lambda x: tc.moveaxis(x.reshape(3, 2, 2), 0, -1),
        lambda x: torch.movedim(x.reshape(3, 2, 2), 0, -1),
    ),
    "einsum_trace": (
        lambda x: tc.einsum("ii->", x[:, :3]),
        lambda x: torch.einsum("ii->", x[:, :3]),
    ),
    "einsum_diag": (
        lambda x: tc.einsum("ii->i", x[:, :3]),
        lambda x: torch.einsum("ii->i", x[:, :3]),
    ),
    "einsum_rowsum": (lambda x: tc.einsum("ij->i", x), lambda x: torch.einsum("ij->i", x)),
    "einsum_transpose": (lambda x: tc.einsum("ij", x), lambda x: torch.einsum("ij", x)),
    "einsum_implicit_t": (lambda x: tc.einsum("ji", x), lambda x: torch.einsum("ji", x)),
    "pad_reflect": (
        lambda x: tc.pad_mode(x, ((1, 2), (2, 3)), "reflect"),
        lambda x: F.pad(x[None], (2, 3, 1, 2), mode="reflect")[0],
    ),
    "pad_replicate": (
        lambda x: tc.pad_mode(x, ((2, 0), (1, 3)), "replicate"),
        lambda x: F.pad(x[None], (1, 3, 2, 0), mode="replicate")[0],
    ),
    "pad_circular": (
        lambda x: tc.pad_mode(x, ((1, 2), (3, 1)), "circular"),
        lambda x: F.pad(x[None, None], (3, 1, 1, 2), mode="circular")[0, 0],
    ),
    "pad_constant": (
        lambda x: tc.pad_mode(x, ((1, 0), (0, 2)), "constant", 1.5),
        lambda x: F.pad(x, (0, 2, 1, 0), value=1.5),
    ),
    "gather0": (lambda x: tc.gather(x, 0, IDX0), lambda x: torch.gather(x, 0, torch.tensor(IDX0))),
    "gather1": (lambda x: tc.gather(x, 1, IDX1), lambda x: torch.gather(x, 1, torch.tensor(IDX1))),
    "gather_neg": (  # negative indices count from the end (PyTorch refuses them)
        lambda x: tc.gather(x, 1, IDX1 - 4),
        lambda x: torch.gather(x, 1, torch.tensor(IDX1)),
    ),
    "gather_small_index": (
        lambda x: tc.gather(x, 1, IDX_SMALL),
        lambda x: torch.gather(x, 1, torch.tensor(IDX_SMALL)),
    ),
    "masked_fill": (
        lambda x: tc.masked_fill(x, np.array([True, False, False, True]), -2.0),
        lambda x: x.masked_fill(torch.tensor([True, False, False, True]), -2.0),
    ),
}

# name: (tc fn, torch fn, shapes)
MULTI = {
    "einsum_matmul": (
        lambda a, b: tc.einsum("ij,jk->ik", a, b),
        lambda a, b: torch.einsum("ij,jk->ik", a, b),
        [(2, 3), (3, 4)],
    ),
    "einsum_batch": (
        lambda a, b: tc.einsum("bij,bjk->bik", a, b),
        lambda a, b: torch.einsum("bij,bjk->bik", a, b),
        [(2, 2, 3), (2, 3, 2)],
    ),
    "einsum_implicit": (
        lambda a, b: tc.einsum("ij,jk", a, b),
        lambda a, b: torch.einsum("ij,jk", a, b),
        [(2, 3), (3, 4)],
    ),
    "einsum_ellipsis": (
        lambda a, b: tc.einsum("...ij,...jk->...ik", a, b),
        lambda a, b: torch.einsum("...ij,...jk->...ik", a, b),
        [(2, 2, 3), (2, 3, 2)],
    ),
    "einsum_sum_inside": (
        lambda a, b: tc.einsum("ijk,j->i", a, b),
        lambda a, b: torch.einsum("ijk,j->i", a, b),
        [(2, 3, 2), (3,)],
    ),
    "einsum_three": (
        lambda a, b, c: tc.einsum("ij,jk,k->i", a, b, c),
        lambda a, b, c: torch.einsum("ij,jk,k->i", a, b, c),
        [(2, 3), (3, 4), (4,)],
    ),
    "einsum_bilinear_diag": (
        lambda a, b: tc.einsum("ii,i->i", a, b),
        lambda a, b: torch.einsum("ii,i->i", a, b),
        [(3, 3), (3,)],
    ),
    "tensordot": (
        lambda a, b: tc.tensordot(a, b, 2),
        lambda a, b: torch.tensordot(a, b, 2),
        [(2, 3, 4), (3, 4, 2)],
    ),
    "tensordot_pairs": (
        lambda a, b: tc.tensordot(a, b, ([0, 2], [1, 0])),
        lambda a, b: torch.tensordot(a, b, ([0, 2], [1, 0])),
        [(2, 3, 4), (4, 2)],
    ),
    "outer": (tc.outer, torch.outer, [(3,), (4,)]),
    "scatter_add": (
        lambda a, s: tc.scatter_add(a, 1, IDX1, s),
        lambda a, s: torch.scatter_add(a, 1, torch.tensor(IDX1), s),
        [(3, 4), (3, 2)],
    ),
    "scatter_add_small_index": (
        lambda a, s: tc.scatter_add(a, 1, IDX_SMALL, s),
        lambda a, s: torch.scatter_add(a, 1, torch.tensor(IDX_SMALL), s),
        [(3, 4), (2, 2)],
    ),
    "scatter_add_big_src": (
        lambda a, s: tc.scatter_add(a, 0, IDX0, s),
        # PyTorch 2.13's backward fails for a src larger than the index: slice it first
        lambda a, s: torch.scatter_add(a, 0, torch.tensor(IDX0), s[:2, :4]),
        [(3, 4), (3, 5)],
    ),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_matches_torch(name, dtype, rng):
    fn, tfn = UNARY[name]
    x = rng.standard_normal((3, 4)).astype(dtype)
    t = leaf(x, dtype)
    y = fn(t)
    v = rng.standard_normal(y.shape).astype(dtype)
    y.backward(tc.tensor(v))
    q = torch.tensor(x, requires_grad=True)
    ty = tfn(q)
    ty.backward(torch.tensor(v))
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradcheck(name, rng):
    fn, _ = UNARY[name]
    x = leaf(rng.standard_normal((3, 4)))
    assert tc.gradcheck(fn, [x])
    assert tc.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", list(MULTI))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multi_matches_torch(name, dtype, rng):
    fn, tfn, shapes = MULTI[name]
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ts = [leaf(x, dtype) for x in xs]
    y = fn(*ts)
    v = rng.standard_normal(y.shape).astype(dtype)
    y.backward(tc.tensor(v))
    qs = [torch.tensor(x, requires_grad=True) for x in xs]
    ty = tfn(*qs)
    ty.backward(torch.tensor(v))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    for t, q in zip(ts, qs, strict=True):
        np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), **tol)


@pytest.mark.parametrize("name", list(MULTI))
def test_multi_gradcheck(name, rng):
    fn, _, shapes = MULTI[name]
    xs = [leaf(rng.standard_normal(s)) for s in shapes]
    assert tc.gradcheck(fn, xs)
    assert tc.gradgradcheck(fn, xs)


def test_vjp_rules(rng):
    x = rng.standard_normal((3, 4))
    check_rule(tc.flip(leaf(x), 1), I.Flip)
    check_rule(tc.roll(leaf(x), (1, 2), (0, 1)), I.Roll)
    check_rule(tc.roll(leaf(x), 3), I.Roll)
    check_rule(tc.gather(leaf(x), 1, IDX1), I.Gather)
    src = leaf(rng.standard_normal((3, 2)))
    y = tc.scatter_add(tc.zeros(3, 4, dtype=np.float64), 1, IDX1, src)
    check_rule(y.grad_fn.inputs[1], I.ScatterAddAlong)  # the node under the add
    for sub, shapes in [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("ijk,j->i", [(2, 3, 2), (3,)]),
        ("ii,i->i", [(3, 3), (3,)]),
        ("ii->", [(3, 3)]),
    ]:
        check_rule(tc.einsum(sub, *[leaf(rng.standard_normal(s)) for s in shapes]), I.Einsum)


def test_one_hot_and_non_differentiable():
    y = tc.one_hot(np.array([[0, 2], [1, 0]]), 3)
    ref = F.one_hot(torch.tensor([[0, 2], [1, 0]]), 3)
    assert y.dtype == np.int64 and not y.requires_grad
    np.testing.assert_array_equal(y.numpy(), ref.numpy())
    np.testing.assert_array_equal(tc.one_hot(tc.tensor(np.array([1, 3]))).numpy().shape, (2, 4))


def test_split_chunk_shapes():
    x = tc.arange(10)
    assert [p.shape for p in tc.split(x, 4)] == [(4,), (4,), (2,)]
    assert [p.shape for p in tc.chunk(x, 4)] == [(3,), (3,), (3,), (1,)]
    assert [p.shape for p in tc.chunk(tc.arange(6), 4)] == [(2,), (2,), (2,)]
    assert [p.shape for p in x.split([3, 0, 7])] == [(3,), (0,), (7,)]


def test_bad_input_messages():
    t = tc.ones(3, 4)
    with pytest.raises(
        ValueError,
        match=r"split: sizes \[1, 2\] add up to 3, but axis 1 of shape \(3, 4\) has length 4",
    ):
        tc.split(t, [1, 2], 1)
    with pytest.raises(ValueError, match="flip: axis 2 is out of range for a tensor with 2 dims"):
        tc.flip(t, 2)
    with pytest.raises(
        TypeError, match="gather: index must be an integer array, got dtype float64"
    ):
        tc.gather(t, 0, np.zeros((3, 4)))
    with pytest.raises(IndexError, match="gather: index 4 is out of range for axis 1 of length 4"):
        tc.gather(t, 1, np.array([[0, 4]]))
    with pytest.raises(IndexError, match="scatter_add: index -5 is out of range for axis 1"):
        tc.scatter_add(t, 1, np.array([[-5]]), tc.ones(1, 1))
    with pytest.raises(ValueError, match="one_hot: label 3 is out of range for num_classes=3"):
        tc.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="one_hot: label -1 is negative"):
        tc.one_hot(np.array([0, -1]), 3)
    with pytest.raises(TypeError, match="one_hot: labels must be integers, got dtype float64"):
        tc.one_hot(np.array([0.0]), 3)
    with pytest.raises(
        ValueError,
        match=r"einsum: operand 1 has 1 dims \(shape \(4,\)\) but subscripts 'jk' name 2",
    ):
        tc.einsum("ij,jk->ik", t, tc.ones(4))
    with pytest.raises(ValueError, match=r"einsum: label 'j' has size 4 and 3 in 'ij,jk->ik'"):
        tc.einsum("ij,jk->ik", t, tc.ones(3, 2))
    with pytest.raises(ValueError, match="einsum: subscripts 'ij,jk' name 2 operands, got 1"):
        tc.einsum("ij,jk", t)
    with pytest.raises(
        ValueError, match="einsum: output 'iz' of 'ij->iz' must name distinct labels"
    ):
        tc.einsum("ij->iz", t)
    with pytest.raises(
        ValueError, match=r"tensordot: axis 1 of a \(shape \(3, 4\)\) and axis 0 of b"
    ):
        tc.tensordot(t, tc.ones(3, 2), ([1], [0]))
    with pytest.raises(
        ValueError, match=r"outer: needs two 1-D tensors, got shapes \(3, 4\) and \(2,\)"
    ):
        tc.outer(t, tc.ones(2))
    with pytest.raises(ValueError, match="pad_mode: mode must be one of 'constant', 'reflect'"):
        tc.pad_mode(t, 1, "mirror")
    with pytest.raises(ValueError, match=r"repeat: 1 sizes \(2,\) for a tensor with 2 dims"):
        t.repeat(2)
    with pytest.raises(ValueError, match=r"repeat_interleave: repeats must be 3 non-negative ints"):
        tc.repeat_interleave(t, [1, 2], 0)
    with pytest.raises(ValueError, match="roll: 2 shifts"):
        tc.roll(t, (1, 2), 0)
    with pytest.raises(ValueError, match=r"diag: needs a 1-D or 2-D tensor, got shape \(1, 3, 4\)"):
        tc.diag(t.reshape(1, 3, 4))
    with pytest.raises(
        ValueError, match=r"tril: needs a tensor with at least 2 dims, got shape \(4,\)"
    ):
        tc.tril(tc.ones(4))
    with pytest.raises(
        ValueError, match=r"masked_fill: mask of shape \(3,\) does not broadcast to \(3, 4\)"
    ):
        tc.masked_fill(t, np.ones(3, dtype=bool), 0.0)
    with pytest.raises(ValueError, match=r"moveaxis: repeated axis in source \(0, -2\)"):
        tc.moveaxis(t, (0, -2), (0, 1))
    with pytest.raises(ValueError, match="chunk: chunks must be a positive int, got 0"):
        tc.chunk(t, 0)


def test_tensor_methods(rng):
    x = leaf(rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(x.flip(0).numpy(), np.flip(x.numpy(), 0))
    np.testing.assert_array_equal(x.roll(1, 1).numpy(), np.roll(x.numpy(), 1, 1))
    np.testing.assert_array_equal(x.tile(2).numpy(), np.tile(x.numpy(), 2))
    np.testing.assert_array_equal(x.repeat_interleave(2, 0).numpy(), np.repeat(x.numpy(), 2, 0))
    np.testing.assert_array_equal(x.tril().numpy(), np.tril(x.numpy()))
    np.testing.assert_array_equal(x.triu(1).numpy(), np.triu(x.numpy(), 1))
    np.testing.assert_array_equal(x.moveaxis(0, 1).numpy(), x.numpy().T)
    np.testing.assert_array_equal(x.gather(1, IDX1).numpy(), np.take_along_axis(x.numpy(), IDX1, 1))
    assert len(x.chunk(2, 1)) == 2
    m = x.masked_fill(x.numpy() > 0, 0.0)
    np.testing.assert_array_equal(m.numpy(), np.where(x.numpy() > 0, 0, x.numpy()))
    s = x.scatter_add(1, IDX1, tc.ones(3, 2, dtype=np.float64))
    assert s.shape == (3, 4)


@HYP
@given(
    n=st.integers(1, 5),
    m=st.integers(1, 5),
    lo=st.integers(0, 4),
    hi=st.integers(0, 4),
    mode=st.sampled_from(["reflect", "replicate", "circular"]),
)
def test_hypothesis_pad_modes(n, m, lo, hi, mode):
    x = np.random.default_rng(3).standard_normal((n, m))
    if mode == "reflect" and (lo >= m or hi >= m):  # PyTorch requires pad < size
        return
    if mode == "circular" and (lo > m or hi > m):
        return
    t = leaf(x)
    y = tc.pad_mode(t, ((0, 0), (lo, hi)), mode)
    y.sum().backward()
    q = torch.tensor(x[None], requires_grad=True)
    ty = F.pad(q, (lo, hi), mode=mode)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty[0].detach().numpy())
    np.testing.assert_allclose(t.grad.numpy(), q.grad[0].numpy())


@HYP
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    data_=st.data(),
)
def test_hypothesis_gather_roll_flip(shape, data_):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    ax = data_.draw(st.integers(0, len(shape) - 1))
    idx = rng.integers(0, shape[ax], size=shape)
    t = leaf(x)
    y = tc.gather(t, ax, idx) * 2 + tc.roll(t, 1, ax) + tc.flip(t, ax)
    y.sum().backward()
    q = torch.tensor(x, requires_grad=True)
    ty = torch.gather(q, ax, torch.tensor(idx)) * 2 + torch.roll(q, 1, ax) + torch.flip(q, (ax,))
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), rtol=1e-12)

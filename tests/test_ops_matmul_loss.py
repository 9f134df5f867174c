"""matmul (1-D, 2-D, batched, broadcast batch dims) and the softmax family and losses: values
against numpy references, gradients and second derivatives, stability at large logits, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_conv as tc
from tinygrad_conv import Tensor

HYP = settings(max_examples=20, deadline=None, derandomize=True)


def leaf(a) -> Tensor:
    return tc.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# -- matmul ----------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((2, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (4, 1, 3, 2)),
]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
def test_matmul_values_and_gradients(sa, sb, rng) -> None:
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = tc.matmul(tc.tensor(a), tc.tensor(b))
    expected = np.matmul(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    ta, tb = leaf(a), leaf(b)
    assert tc.gradcheck(tc.matmul, [ta, tb])
    (ta @ tb).sum().backward()
    assert ta.grad.shape == sa and tb.grad.shape == sb


@pytest.mark.parametrize(
    "sa, sb", MATMUL_SHAPES[:4] + MATMUL_SHAPES[5:6] + MATMUL_SHAPES[9:10], ids=str
)
def test_matmul_gradgradcheck(sa, sb, rng) -> None:
    assert tc.gradgradcheck(
        tc.matmul, [leaf(rng.standard_normal(sa)), leaf(rng.standard_normal(sb))]
    )


def test_matmul_gradient_formulas(rng) -> None:
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    g = rng.standard_normal((2, 4))
    ta, tb = leaf(a), leaf(b)
    (ta @ tb).backward(g)
    np.testing.assert_allclose(ta.grad.data, g @ b.T)
    np.testing.assert_allclose(tb.grad.data, a.T @ g)


def test_matmul_with_one_constant_operand(rng) -> None:
    w = leaf(rng.standard_normal((3, 2)))
    x = rng.standard_normal((4, 3))
    assert tc.gradcheck(lambda t: x @ t, [w])
    assert tc.gradcheck(lambda t: t.T @ x.T, [w])


def test_matmul_dtypes() -> None:
    a32 = tc.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b64 = tc.tensor(np.ones((3, 2)), requires_grad=True)
    assert (a32 @ a32.T).dtype == np.float32
    out = a32 @ b64
    assert out.dtype == np.float64
    out.sum().backward()
    assert a32.grad.dtype == np.float32
    i = tc.tensor(np.arange(6).reshape(2, 3))
    assert (i @ i.T).dtype == np.int64


@pytest.mark.parametrize(
    "sa, sb, pattern",
    [
        ((2, 3), (2, 3), r"matmul: inner dimensions differ: \(2, 3\) @ \(2, 3\) \(3 != 2\)"),
        ((3,), (4,), r"matmul: inner dimensions differ: \(3,\) @ \(4,\)"),
        ((2, 3), (4,), r"matmul: inner dimensions differ: \(2, 3\) @ \(4,\)"),
        ((2, 2, 3), (3, 3, 4), r"matmul: batch dimensions of \(2, 2, 3\) and \(3, 3, 4\)"),
        ((), (3,), r"matmul: operands must be at least 1-D, got \(\) and \(3,\)"),
    ],
)
def test_matmul_shape_errors(sa, sb, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        tc.ones(*sa) @ tc.ones(*sb)


@HYP
@given(
    m=st.integers(1, 3),
    k=st.integers(1, 3),
    n=st.integers(1, 3),
    batch=st.sampled_from([((), ()), ((2,), ()), ((), (2,)), ((2, 1), (3,)), ((1,), (2,))]),
    vec=st.sampled_from(["none", "a", "b"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_matmul(m, k, n, batch, vec, seed) -> None:
    rng = np.random.default_rng(seed)
    sa = (k,) if vec == "a" else batch[0] + (m, k)
    sb = (k,) if vec == "b" else batch[1] + (k, n)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((tc.tensor(a) @ tc.tensor(b)).data, a @ b, rtol=1e-12)
    assert tc.gradcheck(tc.matmul, [leaf(a), leaf(b)])


# -- softmax / log_softmax -------------------------------------------------------------------------


def np_log_softmax(a, axis=-1):
    s = a - a.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_log_softmax_values(axis, rng) -> None:
    a = rng.standard_normal((3, 4, 2))
    ls = np_log_softmax(a, axis)
    np.testing.assert_allclose(tc.log_softmax(tc.tensor(a), axis).data, ls, rtol=1e-12)
    np.testing.assert_allclose(tc.softmax(tc.tensor(a), axis).data, np.exp(ls), rtol=1e-12)
    np.testing.assert_allclose(tc.tensor(a).softmax(axis).data, np.exp(ls), rtol=1e-12)
    np.testing.assert_allclose(tc.tensor(a).log_softmax(axis).data, ls, rtol=1e-12)
    np.testing.assert_allclose(tc.softmax(tc.tensor(a), axis).data.sum(axis), 1.0)


@pytest.mark.parametrize("fn", [tc.softmax, tc.log_softmax], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_family_gradcheck_and_gradgradcheck(fn, axis, rng) -> None:
    x = leaf(rng.standard_normal((3, 4)))
    assert tc.gradcheck(lambda t: fn(t, axis), [x])
    assert tc.gradgradcheck(lambda t: fn(t, axis), [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_no_overflow_at_1e4(dtype) -> None:
    a = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, 5.0]], dtype)
    x = tc.tensor(a, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sm = tc.softmax(x, axis=1)
        ls = tc.log_softmax(x, axis=1)
        lse = tc.logsumexp(x, axis=1)
        (sm * tc.tensor(np.arange(9.0).reshape(3, 3).astype(dtype))).sum().backward()
        ls[:, 0].sum().backward()
    assert sm.dtype == dtype and ls.dtype == dtype
    np.testing.assert_allclose(sm.data[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(sm.data[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(ls.data[0], [0.0, -1e4, -2e4])
    np.testing.assert_allclose(lse.data, [1e4, 1e4 + np.log(3), 5.0], rtol=1e-6)
    assert np.all(np.isfinite(x.grad.data))


def test_softmax_axis_error() -> None:
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        tc.softmax(tc.ones(2, 3), axis=2)
    with pytest.raises(ValueError, match="log_softmax: axis -3 is out of range"):
        tc.log_softmax(tc.ones(2, 3), axis=-3)


# -- cross_entropy ---------------------------------------------------------------------------------


def np_cross_entropy(logits, labels):
    return -np_log_softmax(logits, 1)[np.arange(len(labels)), labels]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_values(reduction, rng) -> None:
    z = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    per = np_cross_entropy(z, y)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    out = tc.cross_entropy(tc.tensor(z), y, reduction=reduction)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    assert out.shape == np.shape(expected)
    assert tc.gradcheck(lambda t: tc.cross_entropy(t, y, reduction), [leaf(z)])
    assert tc.gradgradcheck(lambda t: tc.cross_entropy(t, y, reduction), [leaf(z)])


def test_cross_entropy_gradient_is_softmax_minus_onehot(rng) -> None:
    z = rng.standard_normal((4, 3))
    y = np.array([2, 0, 0, 1])
    x = leaf(z)
    tc.cross_entropy(x, y).backward()
    p = np.exp(np_log_softmax(z, 1))
    np.testing.assert_allclose(x.grad.data, (p - np.eye(3)[y]) / 4, rtol=1e-12)


def test_cross_entropy_label_types_and_float32() -> None:
    z = tc.tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    for labels in (
        [0, 2],
        np.array([0, 2], np.uint8),
        tc.tensor([0, 2]),
        np.array([0, 2], np.int32),
    ):
        out = tc.cross_entropy(z, labels)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.item(), np.log(3), rtol=1e-6)
    tc.cross_entropy(z, [0, 2]).backward()
    assert z.grad.dtype == np.float32


def test_cross_entropy_is_one_node_and_its_backward_is_one_op(rng) -> None:
    """Fused like PyTorch's: one recorded node, whose backward is one cross_entropy_backward."""
    x = leaf(rng.standard_normal((4, 3)))
    loss = tc.cross_entropy(x, [0, 1, 2, 0])
    assert loss.grad_fn.name == "cross_entropy" and loss.grad_fn.inputs[0] is x
    loss.backward()
    assert [c.op for c in loss.grad_fn.backward_record.calls] == ["cross_entropy_backward"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward_node_is_differentiable_in_both_inputs(reduction, rng) -> None:
    """The gradient node's own backward (d/d logits and d/d upstream gradient), by central
    differences: what second derivatives of cross_entropy are made of."""
    from tinygrad_conv.ops.loss import CrossEntropyBackward

    z = leaf(rng.standard_normal((5, 4)))
    g = leaf(rng.standard_normal(5) if reduction == "none" else np.array(rng.standard_normal()))
    y = np.array([0, 3, 1, 1, 2])

    def f(zt, gt):
        return CrossEntropyBackward.apply(zt, gt, y, reduction=reduction)

    p = np.exp(np_log_softmax(z.data, 1))
    scale = g.data[:, None] if reduction == "none" else g.data / (5 if reduction == "mean" else 1)
    np.testing.assert_allclose(f(z, g).data, (p - np.eye(4)[y]) * scale, rtol=1e-12)
    assert tc.gradcheck(f, [z, g])
    assert tc.gradgradcheck(f, [z, g])


def test_cross_entropy_keeps_its_own_copy_of_the_labels(rng) -> None:
    """A loader that reuses its label buffer must not change a pending gradient."""
    z = rng.standard_normal((4, 3))
    labels = np.array([2, 0, 1, 1])
    expected = leaf(z)
    tc.cross_entropy(expected, labels.copy()).backward()
    x = leaf(z)
    loss = tc.cross_entropy(x, labels)
    labels[:] = 0  # the next batch overwrites the buffer before backward runs
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, expected.grad.data)


def test_cross_entropy_empty_batch_and_bad_reduction() -> None:
    z = leaf(np.zeros((0, 3)))
    mean = tc.cross_entropy(z, np.zeros(0, np.int64))
    assert np.isnan(mean.item())  # PyTorch's mean of nothing
    assert tc.cross_entropy(z, np.zeros(0, np.int64), reduction="sum").item() == 0.0
    tc.cross_entropy(z, np.zeros(0, np.int64), reduction="sum").backward()
    assert z.grad.shape == (0, 3)
    with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        tc.cross_entropy(leaf(np.zeros((2, 3))), [0, 1], reduction="avg")


def test_cross_entropy_large_logits_are_finite() -> None:
    z = leaf([[1e4, -1e4, 0.0], [0.0, 0.0, 1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = tc.cross_entropy(z, [1, 2], reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [2e4, 0.0])
    np.testing.assert_allclose(z.grad.data, [[1, -1, 0], [0, 0, 0]], atol=1e-12)


@pytest.mark.parametrize(
    "logits, labels, exc, pattern",
    [
        (
            np.zeros((2, 3)),
            [0, 3],
            ValueError,
            r"cross_entropy: label 3 is out of range for 3 classes",
        ),
        (np.zeros((2, 3)), [-1, 0], ValueError, r"cross_entropy: label -1 is out of range"),
        (
            np.zeros((2, 3)),
            [0.0, 1.0],
            TypeError,
            r"cross_entropy: labels must be integers, got dtype float",
        ),
        (
            np.zeros((2, 3)),
            [0, 1, 2],
            ValueError,
            r"cross_entropy: labels have shape \(3,\), expected \(2,\)",
        ),
        (np.zeros(3), [0], ValueError, r"cross_entropy: logits must be \[N, C\], got shape \(3,\)"),
    ],
)
def test_cross_entropy_errors(logits, labels, exc, pattern) -> None:
    with pytest.raises(exc, match=pattern):
        tc.cross_entropy(tc.tensor(logits), labels)


def test_bad_reduction_names_the_loss() -> None:
    with pytest.raises(ValueError, match="cross_entropy: reduction must be"):
        tc.cross_entropy(tc.ones(2, 3), [0, 1], reduction="avg")
    with pytest.raises(ValueError, match="mse_loss: reduction must be"):
        tc.mse_loss(tc.ones(2), tc.ones(2), reduction="avg")
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: reduction must be"):
        tc.binary_cross_entropy_with_logits(tc.ones(2), tc.ones(2), reduction="avg")


# -- mse_loss --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction, rng) -> None:
    p, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    sq = (p - t) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(tc.mse_loss(tc.tensor(p), t, reduction).data, expected, rtol=1e-12)
    assert tc.gradcheck(lambda a, b: tc.mse_loss(a, b, reduction), [leaf(p), leaf(t)])
    assert tc.gradgradcheck(lambda a, b: tc.mse_loss(a, b, reduction), [leaf(p), leaf(t)])


def test_mse_loss_gradient_and_shape_error() -> None:
    p = leaf([1.0, 2.0])
    tc.mse_loss(p, np.array([0.0, 0.0])).backward()
    np.testing.assert_allclose(p.grad.data, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"mse_loss: prediction \(2, 3\) and target \(3,\)"):
        tc.mse_loss(tc.ones(2, 3), tc.ones(3))


# -- binary_cross_entropy_with_logits --------------------------------------------------------------


def np_bce_logits(x, y):
    return np.logaddexp(0, x) - x * y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_values_and_gradients(reduction, rng) -> None:
    x = rng.standard_normal((3, 4)) * 3
    x[np.abs(x) < 0.1] = 0.5  # gradcheck away from 0 (exact value at 0 is tested below)
    y = rng.uniform(size=(3, 4))
    per = np_bce_logits(x, y)
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    out = tc.binary_cross_entropy_with_logits(tc.tensor(x), y, reduction)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)
    f = lambda a, b: tc.binary_cross_entropy_with_logits(a, b, reduction)  # noqa: E731
    assert tc.gradcheck(f, [leaf(x), leaf(y)])
    assert tc.gradgradcheck(f, [leaf(x), leaf(y)])


def test_bce_with_logits_gradient_is_sigmoid_minus_target(rng) -> None:
    x = np.array([-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0])
    y = np.array([0.0, 1.0, 0.3, 0.0, 1.0, 0.5, 1.0])
    t = leaf(x)
    tc.binary_cross_entropy_with_logits(t, y, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.data, 1 / (1 + np.exp(-x)) - y, rtol=1e-12, atol=1e-15)


def test_bce_with_logits_at_zero_logits() -> None:
    # zero-initialised heads start exactly here: the gradient must be sigmoid(0) - y = 0.5 - y
    x = leaf(np.zeros(3))
    y = np.array([0.0, 1.0, 0.25])
    loss = tc.binary_cross_entropy_with_logits(x, y, reduction="sum")
    np.testing.assert_allclose(loss.data, 3 * np.log(2.0))
    (g,) = tc.grad(loss, x, create_graph=True)
    np.testing.assert_allclose(g.data, 0.5 - y)
    (h,) = tc.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, [0.25, 0.25, 0.25])  # sigmoid'(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_for_large_logits(dtype) -> None:
    x = tc.tensor(np.array([-1e4, -100.0, 100.0, 1e4], dtype), requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 0.0], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = tc.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(loss.data, [1e4, 0.0, 0.0, 1e4], atol=1e-6)
    np.testing.assert_allclose(x.grad.data, [-1.0, 0.0, 0.0, 1.0], atol=1e-6)


def test_bce_with_logits_shape_error() -> None:
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy_with_logits: logits \(2,\) and target \(3,\) differ",
    ):
        tc.binary_cross_entropy_with_logits(tc.ones(2), tc.ones(3))


# -- small end-to-end ------------------------------------------------------------------------------


def test_linear_softmax_regression_learns(rng) -> None:
    x = rng.standard_normal((60, 2))
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(np.int64)
    w = tc.tensor(np.zeros((2, 2)), requires_grad=True)
    b = tc.tensor(np.zeros(2), requires_grad=True)
    first = None
    for _ in range(100):
        loss = tc.cross_entropy(tc.tensor(x) @ w + b, y)
        first = loss.item() if first is None else first
        w.grad = b.grad = None
        loss.backward()
        with tc.no_grad():
            w.data -= 1.0 * w.grad.data
            b.data -= 1.0 * b.grad.data
    assert first == pytest.approx(np.log(2))
    assert loss.item() < 0.2


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_matmul_transpose_flags_and_their_gradients(transpose_a, transpose_b, batch, rng) -> None:
    """MatMul's tf.matmul-style flags (what its backward uses instead of transpose nodes)."""
    from tinygrad_conv.ops.matmul import MatMul

    a_np = rng.standard_normal(batch + ((4, 3) if transpose_a else (3, 4)))
    b_np = rng.standard_normal((5, 4) if transpose_b else (4, 5))

    def f(a, b):
        return MatMul.apply(a, b, transpose_a=transpose_a, transpose_b=transpose_b)

    expected = (np.swapaxes(a_np, -1, -2) if transpose_a else a_np) @ (
        b_np.T if transpose_b else b_np
    )
    np.testing.assert_allclose(f(leaf(a_np), leaf(b_np)).data, expected, rtol=1e-12)
    assert tc.gradcheck(f, [leaf(a_np), leaf(b_np)])
    assert tc.gradgradcheck(f, [leaf(a_np), leaf(b_np)])


def test_matmul_backward_is_two_matmuls_without_transpose_nodes(rng) -> None:
    x, w = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal((4, 2)))
    y = tc.matmul(x, w)
    y.sum().backward()
    assert [c.op for c in y.grad_fn.backward_record.calls] == ["matmul_nt", "matmul_tn"]
    np.testing.assert_allclose(x.grad.data, np.ones((3, 2)) @ w.data.T, rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, x.data.T @ np.ones((3, 2)), rtol=1e-12)

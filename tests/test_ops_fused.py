"""ops/fused.py: conv2d -> +bias -> relu -> max_pool2d as one node, against the layer-by-layer
graph (exactly), PyTorch, finite differences (float64) and its declared vjp rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vjp_rules import check_rule

import tinygrad_conv as tc
from tinygrad_conv.ops.fused import Conv2DPoolBiasReLU, conv2d_pool_bias_relu

# (x shape, w shape, conv kwargs, pool kwargs)
CASES = {
    "same_2x2": ((2, 8, 8, 3), (3, 3, 3, 4), {"padding": "SAME"}, {}),
    "valid_stride2": ((2, 11, 9, 2), (3, 3, 2, 5), {"strides": 2}, {}),
    "pool3_same": (
        (1, 9, 9, 2),
        (2, 2, 2, 3),
        {"padding": "VALID"},
        {"pool_ksize": 3, "pool_strides": 2, "pool_padding": "SAME"},
    ),
    "groups_dilation": ((2, 10, 10, 4), (3, 3, 2, 6), {"padding": "SAME", "dilations": 2}, {}),
}


def _inputs(case: str, dtype=np.float64, seed: int = 0):
    xs, ws, conv, pool = CASES[case]
    rng = np.random.default_rng(seed)
    x = tc.tensor(rng.standard_normal(xs).astype(dtype), requires_grad=True)
    w = tc.tensor(rng.standard_normal(ws).astype(dtype), requires_grad=True)
    b = tc.tensor(rng.standard_normal(ws[3]).astype(dtype) * 0.5, requires_grad=True)
    return x, w, b, conv, pool


def _layered(x, w, b, conv, pool):
    y = tc.relu(tc.conv2d(x, w, **conv) + b)
    k = pool.get("pool_ksize", 2)
    return tc.max_pool2d(y, k, pool.get("pool_strides"), pool.get("pool_padding", "VALID"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_the_layer_by_layer_graph(case: str, dtype) -> None:
    x, w, b, conv, pool = _inputs(case, dtype)
    out = conv2d_pool_bias_relu(x, w, b, **conv, **pool)
    ref = _layered(x, w, b, conv, pool)
    assert out.dtype == dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out.data, ref.data)  # exact: the reorder is exact
    assert out.grad_fn.name == "conv2d_pool_bias_relu"
    g = tc.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(dtype))
    got = tc.grad((out * g).sum(), [x, w, b])
    want = tc.grad((ref * g).sum(), [x, w, b])
    tol = 1e-12 if dtype == np.float64 else 1e-4
    for a, c in zip(got, want, strict=True):
        np.testing.assert_allclose(a.data, c.data, rtol=tol, atol=tol)
    with tc.no_grad():  # inference path (no argmax, no mask): the same values
        np.testing.assert_array_equal(conv2d_pool_bias_relu(x, w, b, **conv, **pool).data, ref.data)


@pytest.mark.parametrize("case", ["same_2x2", "valid_stride2"])
def test_against_pytorch(case: str) -> None:
    x, w, b, conv, _ = _inputs(case)
    out = conv2d_pool_bias_relu(x, w, b, **conv)
    g = np.random.default_rng(2).standard_normal(out.shape)
    dx, dw, db = tc.grad((out * tc.tensor(g)).sum(), [x, w, b])
    tx = torch.tensor(x.data.transpose(0, 3, 1, 2), requires_grad=True)
    tw = torch.tensor(w.data.transpose(3, 2, 0, 1), requires_grad=True)
    tb = torch.tensor(b.data, requires_grad=True)
    pad = 1 if conv.get("padding") == "SAME" else 0
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=conv.get("strides", 1), padding=pad)
    tout = torch.max_pool2d(torch.relu(ty), 2)
    np.testing.assert_allclose(out.data, tout.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    tout.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(dx.data, tx.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(dw.data, tw.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)
    np.testing.assert_allclose(db.data, tb.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_and_gradgradcheck(case: str) -> None:
    x, w, b, conv, pool = _inputs(case)

    def fn(x, w, b):
        return conv2d_pool_bias_relu(x, w, b, **conv, **pool)

    assert tc.gradcheck(fn, [x, w, b])
    assert tc.gradgradcheck(fn, [x, w, b])


@pytest.mark.parametrize(
    "needs", [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]
)
def test_declared_vjp_matches_the_recorded_backward(needs: tuple[bool, bool, bool]) -> None:
    x, w, b, conv, pool = _inputs("same_2x2")
    for t, need in zip((x, w, b), needs, strict=True):
        t.requires_grad = need
    check_rule(conv2d_pool_bias_relu(x, w, b, **conv, **pool), Conv2DPoolBiasReLU)


def test_bad_input_names_the_op() -> None:
    x, w, b, _, _ = _inputs("same_2x2")
    with pytest.raises(ValueError) as exc:
        conv2d_pool_bias_relu(x, w, tc.zeros(3))
    assert str(exc.value) == (
        "conv2d_pool_bias_relu: bias must have shape (4,) (the filters' output channels), got (3,)"
    )
    with pytest.raises(ValueError) as exc:
        conv2d_pool_bias_relu(x.data[0], w, b)
    assert str(exc.value) == "conv2d_pool_bias_relu: input must have rank 4, got shape (8, 8, 3)"
    with pytest.raises(TypeError) as exc:
        conv2d_pool_bias_relu(x, w, np.arange(4))
    assert str(exc.value) == "conv2d_pool_bias_relu: bias must be a float tensor, got dtype int64"
    with pytest.raises(ValueError, match="conv2d_pool_bias_relu"):
        conv2d_pool_bias_relu(x, w, b, pool_ksize=9)  # a pool window larger than the conv output

"""The four public conv ops: finite-difference gradients (first and second order), argument
validation with clear errors, and float32 support. No TensorFlow needed (see test_conv_tf.py)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import tinygrad_conv as tc

# (id, x_shape in data_format order, w_shape HWIO, kwargs); shapes are tiny: finite differences
# evaluate the op twice per input element, gradgradcheck also runs backward each time.
GEOMETRIES = [
    ("valid", (2, 4, 5, 2), (2, 3, 2, 2), dict(strides=1, padding="VALID")),
    ("same-uneven-stride2", (1, 6, 5, 2), (2, 3, 2, 2), dict(strides=2, padding="SAME")),
    (
        "nchw-explicit-s21-d12",
        (1, 2, 5, 6),
        (2, 2, 2, 3),
        dict(strides=[2, 1], padding=[[1, 0], [0, 2]], data_format="NCHW", dilations=[1, 2]),
    ),
    (
        "groups2-cg2-og3-dil2",
        (1, 5, 4, 4),
        (2, 2, 2, 6),
        dict(strides=1, padding="SAME", dilations=2),
    ),
    (
        "stride2-dil2-leftover",
        (2, 7, 6, 1),
        (2, 2, 1, 2),
        dict(strides=2, padding=[[1, 2], [0, 1]], dilations=2),
    ),
    (
        "nchw-groups3-stride3",
        (1, 3, 7, 5),
        (3, 2, 1, 3),
        dict(strides=[1, 1, 3, 2], padding="SAME", data_format="NCHW"),
    ),
]


def _setup(x_shape, w_shape, kw, seed=0):
    """x, w and an out_backprop-shaped array (all float64) for one geometry."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y = tc.conv2d(x, w, **kw)
    dy = rng.standard_normal(y.shape)
    return x, w, dy


def _op_cases(x_shape, w_shape, kw):
    """(name, fn, inputs) for the four ops; the differentiable inputs require grad."""
    x, w, dy = _setup(x_shape, w_shape, kw)
    xs, ws = np.array(x_shape), np.array(w_shape)

    def T(a):  # noqa: N802
        return tc.Tensor(a.copy(), requires_grad=True)

    return [
        ("conv2d", lambda a, b: tc.conv2d(a, b, **kw), [T(x), T(w)]),
        (
            "conv2d_backprop_input",
            lambda b, g: tc.conv2d_backprop_input(xs, b, g, **kw),
            [T(w), T(dy)],
        ),
        (
            "conv2d_backprop_filter",
            lambda a, g: tc.conv2d_backprop_filter(a, ws, g, **kw),
            [T(x), T(dy)],
        ),
        ("conv2d_transpose", lambda g, b: tc.conv2d_transpose(g, b, xs, **kw), [T(dy), T(w)]),
    ]


OPS = ["conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "conv2d_transpose"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    ("gid", "x_shape", "w_shape", "kw"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES]
)
def test_gradcheck(op, gid, x_shape, w_shape, kw):
    name, fn, inputs = next(c for c in _op_cases(x_shape, w_shape, kw) if c[0] == op)
    assert tc.gradcheck(fn, inputs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    ("gid", "x_shape", "w_shape", "kw"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES]
)
def test_gradgradcheck(op, gid, x_shape, w_shape, kw):
    name, fn, inputs = next(c for c in _op_cases(x_shape, w_shape, kw) if c[0] == op)
    assert tc.gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6)


def test_gradcheck_catches_a_wrong_gradient():
    """The check itself has teeth: a conv whose backward is off by a factor must fail."""

    class Doubled(tc.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 3.0

    with pytest.raises(tc.GradcheckError):
        tc.gradcheck(lambda a: Doubled.apply(a), [tc.Tensor(np.ones((2, 2)), requires_grad=True)])


def test_transpose_is_backprop_input_and_adjoint_identity():
    """<conv2d(x, w), g> == <x, backprop_input(g)> == <w, backprop_filter(x, g)> (adjointness)."""
    for _, x_shape, w_shape, kw in GEOMETRIES:
        x, w, g = _setup(x_shape, w_shape, kw, seed=4)
        y = tc.conv2d(x, w, **kw).data
        dx = tc.conv2d_backprop_input(np.array(x_shape), w, g, **kw).data
        dw = tc.conv2d_backprop_filter(x, np.array(w_shape), g, **kw).data
        tr = tc.conv2d_transpose(g, w, np.array(x_shape), **kw).data
        np.testing.assert_array_equal(dx, tr)
        lhs = np.sum(y * g)
        np.testing.assert_allclose(np.sum(x * dx), lhs, rtol=1e-12)
        np.testing.assert_allclose(np.sum(w * dw), lhs, rtol=1e-12)


def test_backward_accumulates_grads_through_public_ops():
    x, w, dy = _setup((2, 5, 5, 2), (3, 3, 2, 3), {"strides": 2, "padding": "SAME"})
    xt, wt = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
    y = tc.conv2d(xt, wt, strides=2, padding="SAME")
    y.backward(dy)
    np.testing.assert_allclose(
        xt.grad.data, tc.conv2d_backprop_input(np.array(x.shape), w, dy, 2, "SAME").data
    )
    np.testing.assert_allclose(
        wt.grad.data, tc.conv2d_backprop_filter(x, np.array(w.shape), dy, 2, "SAME").data
    )


# ----------------------------------------------------------------------------- bad input

_rng = np.random.default_rng(0)
X = _rng.standard_normal((2, 5, 5, 3))
W = _rng.standard_normal((3, 3, 3, 4))
DY = _rng.standard_normal((2, 3, 3, 4))
XS, WS = [2, 5, 5, 3], [3, 3, 3, 4]

BAD_CASES: list[tuple[str, Any, str]] = [
    # rank != 4
    (
        "conv2d: input rank 3",
        lambda: tc.conv2d(X[0], W),
        r"conv2d: input must have rank 4, got shape \(5, 5, 3\)",
    ),
    (
        "conv2d: filter rank 3",
        lambda: tc.conv2d(X, W[0]),
        r"conv2d: filters must have rank 4, got shape \(3, 3, 4\)",
    ),
    (
        "backprop_input: out_backprop rank 3",
        lambda: tc.conv2d_backprop_input(XS, W, DY[0], 1, "VALID"),
        r"conv2d_backprop_input: out_backprop must have rank 4, got shape \(3, 3, 4\)",
    ),
    (
        "backprop_input: input_sizes of 3",
        lambda: tc.conv2d_backprop_input([2, 5, 5], W, DY, 1, "VALID"),
        r"conv2d_backprop_input: input_sizes must be 4 integers, got \[2, 5, 5\]",
    ),
    (
        "backprop_filter: input rank 5",
        lambda: tc.conv2d_backprop_filter(X[None], WS, DY, 1, "VALID"),
        r"conv2d_backprop_filter: input must have rank 4, got shape \(1, 2, 5, 5, 3\)",
    ),
    (
        "backprop_filter: filter_sizes of 5",
        lambda: tc.conv2d_backprop_filter(X, [3, 3, 3, 4, 1], DY, 1, "VALID"),
        r"conv2d_backprop_filter: filter_sizes must be 4 integers",
    ),
    (
        "transpose: filter rank 2",
        lambda: tc.conv2d_transpose(DY, W[0, 0], XS, 1, "VALID"),
        r"conv2d_transpose: filters must have rank 4, got shape \(3, 4\)",
    ),
    # channel mismatch: input channels not a multiple of the filter's in-channels
    (
        "conv2d: channels",
        lambda: tc.conv2d(X, _rng.standard_normal((3, 3, 2, 4))),
        r"conv2d: input channels 3 \(input shape \(2, 5, 5, 3\).*multiple of the filter's "
        r"in-channels 2 \(filter shape \(3, 3, 2, 4\)",
    ),
    (
        "backprop_input: channels",
        lambda: tc.conv2d_backprop_input([2, 5, 5, 5], W, DY, 1, "VALID"),
        r"conv2d_backprop_input: input channels 5 \(input shape \(2, 5, 5, 5\).*in-channels 3",
    ),
    (
        "backprop_filter: channels",
        lambda: tc.conv2d_backprop_filter(X, [3, 3, 2, 4], DY, 1, "VALID"),
        r"conv2d_backprop_filter: input channels 3 .*in-channels 2 \(filter shape \(3, 3, 2, 4\)",
    ),
    (
        "conv2d: groups do not divide out-channels",
        lambda: tc.conv2d(_rng.standard_normal((1, 5, 5, 4)), _rng.standard_normal((3, 3, 2, 3))),
        r"conv2d: filter out-channels 3 \(filter shape \(3, 3, 2, 3\)\) must be divisible by "
        r"groups = 4 // 2 = 2",
    ),
    # a filter larger than the padded input
    (
        "conv2d: filter too big",
        lambda: tc.conv2d(X, _rng.standard_normal((7, 3, 3, 4))),
        r"conv2d: filter \(shape \(7, 3, 3, 4\).*effective height 7 is larger than the padded "
        r"input height 5",
    ),
    (
        "conv2d: dilated filter too big",
        lambda: tc.conv2d(X, W, padding=[[0, 0], [1, 0]], dilations=[1, 3]),
        r"conv2d: filter \(shape \(3, 3, 3, 4\), dilations \(1, 3\)\): effective width 7 is "
        r"larger than the padded input width 6",
    ),
    (
        "transpose: filter too big for output_shape",
        lambda: tc.conv2d_transpose(DY, W, [2, 2, 2, 3], 1, "VALID"),
        r"conv2d_transpose: filter .*larger than the padded input",
    ),
    # input_sizes / output_shape inconsistent with out_backprop under the strides / padding
    (
        "backprop_input: input_sizes vs strides",
        lambda: tc.conv2d_backprop_input(XS, W, DY, 2, "VALID"),
        r"conv2d_backprop_input: out_backprop has shape \(2, 3, 3, 4\).*needs \(2, 2, 2, 4\)"
        r".*input_sizes",
    ),
    (
        "backprop_input: input_sizes vs padding",
        lambda: tc.conv2d_backprop_input(XS, W, DY, 1, "SAME"),
        r"conv2d_backprop_input: out_backprop has shape \(2, 3, 3, 4\).*needs \(2, 5, 5, 4\)",
    ),
    (
        "backprop_input: batch",
        lambda: tc.conv2d_backprop_input([3, 5, 5, 3], W, DY, 1, "VALID"),
        r"conv2d_backprop_input: out_backprop has shape \(2, 3, 3, 4\).*needs \(3, 3, 3, 4\)",
    ),
    (
        "backprop_filter: out_backprop vs strides",
        lambda: tc.conv2d_backprop_filter(X, WS, DY, [1, 2], "VALID"),
        r"conv2d_backprop_filter: out_backprop has shape \(2, 3, 3, 4\).*needs \(2, 3, 2, 4\)",
    ),
    (
        "backprop_filter: filter_sizes out-channels vs out_backprop",
        lambda: tc.conv2d_backprop_filter(X, [3, 3, 3, 5], DY, 1, "VALID"),
        r"conv2d_backprop_filter: out_backprop has shape \(2, 3, 3, 4\).*5 channels",
    ),
    (
        "transpose: output_shape vs input",
        lambda: tc.conv2d_transpose(DY, W, [2, 9, 9, 3], 1, "VALID"),
        r"conv2d_transpose: .*shape \(2, 3, 3, 4\).*needs \(2, 7, 7, 4\).*output_shape",
    ),
    (
        "transpose: output_shape NCHW",
        lambda: tc.conv2d_transpose(
            DY.transpose(0, 3, 1, 2), W, [2, 3, 6, 6], 1, "VALID", data_format="NCHW"
        ),
        r"conv2d_transpose: .*shape \(2, 4, 3, 3\) \(NCHW\).*needs \(2, 4, 4, 4\)",
    ),
    # strides or dilations < 1
    (
        "conv2d: strides 0",
        lambda: tc.conv2d(X, W, strides=0),
        r"conv2d: strides must be >= 1, got 0",
    ),
    (
        "conv2d: negative stride",
        lambda: tc.conv2d(X, W, strides=[1, -1]),
        r"conv2d: strides must be >= 1, got \[1, -1\]",
    ),
    (
        "conv2d: dilations 0",
        lambda: tc.conv2d(X, W, dilations=[1, 0]),
        r"conv2d: dilations must be >= 1, got \[1, 0\]",
    ),
    (
        "backprop_input: strides 0",
        lambda: tc.conv2d_backprop_input(XS, W, DY, [1, 0, 1, 1], "VALID"),
        r"conv2d_backprop_input: strides must be >= 1",
    ),
    (
        "backprop_filter: dilations 0",
        lambda: tc.conv2d_backprop_filter(X, WS, DY, 1, "VALID", dilations=0),
        r"conv2d_backprop_filter: dilations must be >= 1, got 0",
    ),
    (
        "transpose: strides -2",
        lambda: tc.conv2d_transpose(DY, W, XS, -2, "VALID"),
        r"conv2d_transpose: strides must be >= 1, got -2",
    ),
    (
        "conv2d: strides of length 3",
        lambda: tc.conv2d(X, W, strides=[1, 1, 1]),
        r"conv2d: strides must be an int or a list of 1, 2 or 4 ints, got \[1, 1, 1\]",
    ),
    # unknown padding or data_format
    (
        "conv2d: padding FULL",
        lambda: tc.conv2d(X, W, padding="FULL"),
        r"conv2d: padding must be 'VALID', 'SAME' or explicit pairs, got 'FULL'",
    ),
    (
        "backprop_input: padding",
        lambda: tc.conv2d_backprop_input(XS, W, DY, 1, "valid!"),
        r"conv2d_backprop_input: padding must be .*got 'valid!'",
    ),
    (
        "backprop_filter: negative explicit padding",
        lambda: tc.conv2d_backprop_filter(X, WS, DY, 1, [[1, -1], [0, 0]]),
        r"conv2d_backprop_filter: padding must be non-negative, got \[\[1, -1\], \[0, 0\]\]",
    ),
    (
        "transpose: padding of 3 pairs",
        lambda: tc.conv2d_transpose(DY, W, XS, 1, [[0, 0], [0, 0], [0, 0]]),
        r"conv2d_transpose: padding must be 'VALID', 'SAME', \[\[top, bottom\], \[left, right\]\]",
    ),
    (
        "conv2d: data_format",
        lambda: tc.conv2d(X, W, data_format="NWHC"),
        r"conv2d: data_format must be one of \('NHWC', 'NCHW'\), got 'NWHC'",
    ),
    (
        "backprop_input: data_format",
        lambda: tc.conv2d_backprop_input(XS, W, DY, 1, "VALID", data_format="CHWN"),
        r"conv2d_backprop_input: data_format must be one of .*got 'CHWN'",
    ),
    (
        "backprop_filter: data_format None",
        lambda: tc.conv2d_backprop_filter(X, WS, DY, 1, "VALID", data_format=None),
        r"conv2d_backprop_filter: data_format must be one of .*got None",
    ),
    (
        "transpose: data_format",
        lambda: tc.conv2d_transpose(DY, W, XS, 1, "VALID", data_format="HWC"),
        r"conv2d_transpose: data_format must be one of .*got 'HWC'",
    ),
]


@pytest.mark.parametrize(
    ("fn", "pattern"), [(c[1], c[2]) for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_input_raises_clear_value_error(fn, pattern):
    """A ValueError that names the op, the argument and the shapes -- never a numpy error."""
    with pytest.raises(ValueError, match=pattern) as info:
        fn()
    assert type(info.value) is ValueError  # not a numpy subclass or re-raised AxisError
    assert re.match(r"conv2d(_backprop_input|_backprop_filter|_transpose)?: ", str(info.value))


def test_non_float_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"conv2d: input must be a float tensor, got dtype int64"):
        tc.conv2d(X.astype(np.int64), W)


# ----------------------------------------------------------------------------- float32


@pytest.mark.parametrize(
    ("gid", "x_shape", "w_shape", "kw"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES]
)
def test_float32_works_and_stays_float32(gid, x_shape, w_shape, kw):
    x, w, dy = _setup(x_shape, w_shape, kw, seed=5)
    x32, w32, dy32 = x.astype(np.float32), w.astype(np.float32), dy.astype(np.float32)
    xs, ws = np.array(x_shape), np.array(w_shape)

    xt, wt = tc.Tensor(x32, requires_grad=True), tc.Tensor(w32, requires_grad=True)
    y = tc.conv2d(xt, wt, **kw)
    y.backward(dy32)
    outs = {
        "forward": (y, tc.conv2d(x, w, **kw)),
        "grad_x": (xt.grad, tc.conv2d_backprop_input(xs, w, dy, **kw)),
        "grad_w": (wt.grad, tc.conv2d_backprop_filter(x, ws, dy, **kw)),
        "backprop_input": (
            tc.conv2d_backprop_input(xs, w32, dy32, **kw),
            tc.conv2d_backprop_input(xs, w, dy, **kw),
        ),
        "backprop_filter": (
            tc.conv2d_backprop_filter(x32, ws, dy32, **kw),
            tc.conv2d_backprop_filter(x, ws, dy, **kw),
        ),
        "transpose": (
            tc.conv2d_transpose(dy32, w32, xs, **kw),
            tc.conv2d_transpose(dy, w, xs, **kw),
        ),
    }
    # second order stays float32 too
    xt, wt = tc.Tensor(x32, requires_grad=True), tc.Tensor(w32, requires_grad=True)
    dyt = tc.Tensor(dy32, requires_grad=True)
    (gx,) = tc.grad(tc.conv2d(xt, wt, **kw), [xt], grad_outputs=dyt, create_graph=True)
    ggw, ggdy = tc.grad((gx * gx).sum(), [wt, dyt])
    xt64, wt64 = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt64 = tc.Tensor(dy, requires_grad=True)
    (gx64,) = tc.grad(tc.conv2d(xt64, wt64, **kw), [xt64], grad_outputs=dyt64, create_graph=True)
    ggw64, ggdy64 = tc.grad((gx64 * gx64).sum(), [wt64, dyt64])
    outs["gg_w"], outs["gg_dy"] = (ggw, ggw64), (ggdy, ggdy64)

    for name, (got, ref) in outs.items():
        assert got.dtype == np.float32, f"{name} is {got.dtype}"
        scale = max(np.abs(ref.data).max(), 1.0)
        np.testing.assert_allclose(got.data, ref.data, atol=1e-5 * scale, rtol=1e-5, err_msg=name)

"""A training node for the commonest CNN block: conv2d -> + bias -> relu -> max_pool2d in one.

    out = relu(max_pool2d(conv2d(x, w)) + b)  ==  max_pool2d(relu(conv2d(x, w) + b))

The two sides are equal exactly, in floating point too: adding a per-channel constant and relu
are both monotonic (rounding included), so they commute with taking a window's maximum. The
left side does the bias add and the relu on the pooled array (4x smaller for a 2x2 pool), and the
graph holds one node where the layer-by-layer model holds four (conv2d, add, relu, max_pool2d),
so a training step makes fewer Tensors, fewer passes over memory and fewer engine steps.

The backward is written with the family's ops, so it is differentiable again::

    g1 = mul(g, mask)                             # relu' on the pooled output (mask = out > 0)
    dy = max_pool2d_backprop(g1, argmax)          # back through the pool
    dx = conv2d_backprop_input(w, dy)             # and through the conv
    dw = conv2d_backprop_filter(x, dy)
    db = sum_to_shape(g1)                         # over N, Hp, Wp

Gradients equal the layer-by-layer ones except where two conv outputs of a pooling window are
different but round to the same value after the bias add: there the layer-by-layer model sends
the gradient to the first of the tied sums, this node to the larger conv output (both are valid
subgradients of the max).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import conv as KC
from tinygrad_conv.kernels import pool as KP
from tinygrad_conv.kernels.padding import ConvGeometry, conv_geometry, pool_geometry
from tinygrad_conv.ops._util import as_tensor, constant, memoized
from tinygrad_conv.ops.conv import Conv2DBackpropFilter, Conv2DBackpropInput, _conv_threads
from tinygrad_conv.ops.elementwise import Mul
from tinygrad_conv.ops.movement import sum_to_shape
from tinygrad_conv.ops.pool import MaxPool2DBackprop
from tinygrad_conv.tensor import Tensor

__all__ = ["conv2d_pool_bias_relu"]


class Conv2DPoolBiasReLU(Function):
    """out = relu(max_pool2d(conv2d(x, w)) + b).

    x: [N,H,W,Cin], w: [kh,kw,Cin/groups,Cout], b: [Cout] -> out: [N,Hp,Wp,Cout], where
    [Hp,Wp] is the pool's output size on the conv's output [N,Ho,Wo,Cout].
    """

    op_name = "conv2d_pool_bias_relu"
    input_names = ("x", "w", "b")
    # mask = out > 0; argmax = the pool's window positions; cols = the conv's window matrix when
    # worth keeping for the filter gradient (else None), as Conv2D keeps it
    saved_names = ("mask", "argmax", "cols")
    vjp = {
        "x": "conv2d_backprop_input(w, max_pool2d_backprop(mul(g, mask), argmax))",
        "w": "conv2d_backprop_filter(x, max_pool2d_backprop(mul(g, mask), argmax))",
        "b": "sum_to_shape(mul(g, mask))",
    }

    @staticmethod
    def forward(ctx, x, w, b, *, geom: ConvGeometry, pool_geom: ConvGeometry):
        needs = ctx.needs_input_grad
        cols = None
        with _conv_threads(x.shape[0], x.shape[3], w.shape, geom):
            if needs[1] and KC.windows_worth_keeping(
                x.shape, w.shape, geom, np.result_type(x, w).itemsize
            ):
                cols = KC.conv2d_windows(x, geom, x.shape[3] // w.shape[2])
                y = KC.conv2d(x, w, geom, cols=cols)
            else:
                y = KC.conv2d(x, w, geom)
        if not any(needs):  # inference: no argmax, no mask
            out = KP.max_pool2d_values(y, pool_geom) + b
            return np.maximum(out, 0, out=out)
        pooled, argmax = KP.max_pool2d(y, pool_geom)
        out = pooled + b  # a new array (dtype by NumPy promotion), then relu in place
        np.maximum(out, 0, out=out)
        ctx.save_for_backward(out > 0, argmax, cols)
        return out

    @staticmethod
    def backward(ctx, g):
        mask, argmax, cols = ctx.saved_tensors
        x, w, b = ctx.inputs
        needs = ctx.needs_input_grad
        geom = ctx.attrs["geom"]
        g1 = Mul.apply(g, constant(mask))  # bool mask: numpy casts it in the multiply
        dx = dw = db = None
        if needs[0] or needs[1]:
            conv_shape = (x.shape[0], *geom.output_hw, w.shape[3])
            dy = MaxPool2DBackprop.apply(
                g1, argmax, input_shape=conv_shape, geom=ctx.attrs["pool_geom"]
            )
            if needs[0]:
                dx = Conv2DBackpropInput.apply(w, dy, input_shape=x.shape, geom=geom)
            if needs[1]:
                dw = Conv2DBackpropFilter.apply(x, dy, filter_shape=w.shape, geom=geom, cols=cols)
        if needs[2]:
            # the bias gradient: g1 summed to [Cout] (10x faster than np.sum over axes 0,1,2)
            db = sum_to_shape(g1, b.shape)
        return dx, dw, db


def conv2d_pool_bias_relu(
    input: Any,  # noqa: A002 - TensorFlow's argument name, as tc.conv2d
    filters: Any,
    bias: Any,
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
    pool_ksize: int | Sequence[int] = 2,
    pool_strides: int | Sequence[int] | None = None,
    pool_padding: Any = "VALID",
) -> Tensor:
    """relu(max_pool2d(conv2d(input, filters) + bias)) as ONE graph node (see the module doc).

    Args:
        input: [N,H,W,Cin] (NHWC only).
        filters: [kh,kw,Cin/groups,Cout] (HWIO).
        bias: [Cout].
        strides, padding, dilations: the conv's, as ``tc.conv2d``.
        pool_ksize, pool_strides, pool_padding: the max pool's, as ``tc.max_pool2d`` (strides
            default to the window).

    Returns:
        [N,Hp,Wp,Cout]: equal to ``tc.max_pool2d(tc.relu(tc.conv2d(...) + bias), ...)``.
    """
    op = "conv2d_pool_bias_relu"
    x, w, b = as_tensor(input), as_tensor(filters), as_tensor(bias)
    for name, t in (("input", x), ("filters", w)):
        if t.ndim != 4:
            raise ValueError(f"{op}: {name} must have rank 4, got shape {t.shape}")
    for name, t in (("input", x), ("filters", w), ("bias", b)):
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a float tensor, got dtype {t.dtype}")
    if b.shape != (w.shape[3],):
        raise ValueError(
            f"{op}: bias must have shape ({w.shape[3]},) (the filters' output channels), got "
            f"{b.shape}"
        )
    geom = memoized(conv_geometry, op, x.shape, w.shape, strides, padding, dilations, "NHWC")
    conv_shape = (x.shape[0], *geom.output_hw, w.shape[3])
    pool_geom = memoized(
        pool_geometry,
        op,
        conv_shape,
        pool_ksize,
        pool_ksize if pool_strides is None else pool_strides,
        pool_padding,
        "NHWC",
    )
    return Conv2DPoolBiasReLU.apply(x, w, b, geom=geom, pool_geom=pool_geom)

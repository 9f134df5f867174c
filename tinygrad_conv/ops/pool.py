"""Max and average pooling (TF semantics) as closed families of linear-in-the-gradient nodes.

max_pool2d:  y = gather(x at argmax)       backward: scatter-add g to the argmax positions
             the scatter's adjoint is the gather at the same argmax, and vice versa, so the
             second derivative is again a gather (argmax is a constant: max is piecewise linear).
avg_pool2d:  y = A x (window means)         backward: A^T g; the adjoint of A^T is A again.
TF's rules: max pooling pads with -inf; 'SAME' average pooling divides by the number of in-bounds
elements of each window, not by kh*kw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import pool as K
from tinygrad_conv.kernels.padding import ConvGeometry, pool_geometry
from tinygrad_conv.ops._util import as_tensor, memoized
from tinygrad_conv.ops.conv import _TO_NCHW, _TO_NHWC
from tinygrad_conv.ops.movement import transpose
from tinygrad_conv.tensor import Tensor


class MaxPool2D(Function):
    """y = max over each window. x: [N,H,W,C] -> y: [N,Ho,Wo,C]."""

    op_name = "max_pool2d"
    backward_summary = ("max_pool2d_backprop (scatter to argmax) -> d input",)

    @staticmethod
    def forward(ctx, x, *, geom: ConvGeometry, padding: Any = None):
        if not ctx.needs_input_grad[0]:  # nothing will backpropagate: skip the argmax
            return K.max_pool2d_values(x, geom)
        y, ctx.argmax = K.max_pool2d(x, geom)
        return y

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return MaxPool2DBackprop.apply(
            g, argmax=ctx.argmax, input_shape=x.shape, geom=ctx.attrs["geom"]
        )


class MaxPool2DBackprop(Function):
    """dx = scatter-add of dy to the argmax positions of each window (linear in dy)."""

    op_name = "max_pool2d_backprop"
    backward_summary = ("max_pool2d_gather -> d out_backprop",)

    @staticmethod
    def forward(ctx, dy, *, argmax, input_shape, geom: ConvGeometry):
        # argmax is max_pool2d's own (saved by MaxPool2D): no need to validate it again
        return K.max_pool2d_backprop(input_shape, argmax, dy, geom, check_argmax=False)

    @staticmethod
    def backward(ctx, g):
        return MaxPool2DGather.apply(
            g,
            argmax=ctx.attrs["argmax"],
            input_shape=ctx.attrs["input_shape"],
            geom=ctx.attrs["geom"],
        )


class MaxPool2DGather(Function):
    """gy = gx picked at the argmax positions: the adjoint of MaxPool2DBackprop."""

    op_name = "max_pool2d_gather"
    backward_summary = ("max_pool2d_backprop -> d input",)

    @staticmethod
    def forward(ctx, gx, *, argmax, input_shape, geom: ConvGeometry):
        return K.max_pool2d_gather(gx, argmax, geom, check_argmax=False)

    @staticmethod
    def backward(ctx, g):
        a = ctx.attrs
        return MaxPool2DBackprop.apply(
            g, argmax=a["argmax"], input_shape=a["input_shape"], geom=a["geom"]
        )


class AvgPool2D(Function):
    """y = mean over each window's in-bounds elements. x: [N,H,W,C] -> y: [N,Ho,Wo,C]."""

    op_name = "avg_pool2d"
    backward_summary = ("avg_pool2d_backprop -> d input",)

    @staticmethod
    def forward(ctx, x, *, geom: ConvGeometry, padding: Any = None):
        return K.avg_pool2d(x, geom)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2DBackprop.apply(g, input_shape=ctx.inputs[0].shape, geom=ctx.attrs["geom"])


class AvgPool2DBackprop(Function):
    """dx = A^T dy: each output gradient spread evenly over its window's in-bounds inputs."""

    op_name = "avg_pool2d_backprop"
    backward_summary = ("avg_pool2d -> d out_backprop",)

    @staticmethod
    def forward(ctx, dy, *, input_shape, geom: ConvGeometry):
        return K.avg_pool2d_backprop(input_shape, dy, geom)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2D.apply(g, geom=ctx.attrs["geom"])


def _pool(
    cls: type[Function],
    op: str,
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None,
    padding: str | Sequence[Sequence[int]],
    data_format: str,
) -> Tensor:
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(f"{op}: input must have rank 4, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got dtype {x.dtype}")
    geom = memoized(
        pool_geometry,
        op,
        x.shape,
        ksize,
        ksize if strides is None else strides,
        padding,
        data_format,
    )
    if data_format.upper() == "NCHW":
        y = cls.apply(transpose(x, _TO_NHWC), geom=geom, padding=padding)
        return transpose(y, _TO_NCHW)
    return cls.apply(x, geom=geom, padding=padding)


def max_pool2d(
    input: Any,  # noqa: A002 - TensorFlow's argument name
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NHWC",
) -> Tensor:
    """Max pooling as ``tf.nn.max_pool2d``. input: [N,H,W,C] -> [N,Ho,Wo,C].

    ksize/strides: int or 1, 2 or 4 ints (strides default to ksize); padding 'VALID', 'SAME'
    (pads with -inf) or explicit pairs. Ties go to the first element of the window, as in TF.
    """
    return _pool(MaxPool2D, "max_pool2d", input, ksize, strides, padding, data_format)


def avg_pool2d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NHWC",
) -> Tensor:
    """Average pooling as ``tf.nn.avg_pool2d``; 'SAME' divides by the in-bounds count."""
    return _pool(AvgPool2D, "avg_pool2d", input, ksize, strides, padding, data_format)

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
from tinygrad_conv.kernels.padding import (
    DATA_FORMATS_ND,
    ConvGeometry,
    pool_geometry,
    pool_geometry_nd,
)
from tinygrad_conv.ops._util import as_tensor, memoized
from tinygrad_conv.ops.conv import _TO_NCHW, _TO_NHWC
from tinygrad_conv.ops.movement import reshape, transpose
from tinygrad_conv.tensor import Tensor


class MaxPool2D(Function):
    """y = max over each window. x: [N,H,W,C] -> y: [N,Ho,Wo,C]."""

    op_name = "max_pool2d"
    input_names = ("x",)
    saved_names = ("argmax",)  # window position of each window's first maximum, [N,Ho,Wo,C]
    vjp = {"x": "max_pool2d_backprop(g, argmax)"}

    @staticmethod
    def forward(ctx, x, *, geom: ConvGeometry, padding: Any = None):
        if not ctx.needs_input_grad[0]:  # nothing will backpropagate: skip the argmax
            return K.max_pool2d_values(x, geom)
        y, argmax = K.max_pool2d(x, geom)
        ctx.save_for_backward(argmax)
        return y

    @staticmethod
    def backward(ctx, g):
        (argmax,) = ctx.saved_tensors
        return MaxPool2DBackprop.apply(
            g, argmax, input_shape=ctx.inputs[0].shape, geom=ctx.attrs["geom"]
        )


class MaxPool2DBackprop(Function):
    """dx = scatter-add of dy to the argmax positions of each window (linear in dy).

    dy: [N,Ho,Wo,C], argmax: [N,Ho,Wo,C] (a constant input, as in TF's MaxPoolGradWithArgmax)
    -> dx: input_shape [N,H,W,C].
    """

    op_name = "max_pool2d_backprop"
    input_names = ("dy", "argmax")
    saved_names = ()
    vjp = {"dy": "max_pool2d_gather(g, argmax)"}

    @staticmethod
    def forward(ctx, dy, argmax, *, input_shape, geom: ConvGeometry):
        # argmax is max_pool2d's own (saved by MaxPool2D): no need to validate it again
        return K.max_pool2d_backprop(input_shape, argmax, dy, geom, check_argmax=False)

    @staticmethod
    def backward(ctx, g):
        argmax = ctx.inputs[1]
        return MaxPool2DGather.apply(g, argmax, geom=ctx.attrs["geom"]), None


class MaxPool2DGather(Function):
    """gy = gx picked at the argmax positions: the adjoint of MaxPool2DBackprop.

    gx: [N,H,W,C], argmax: [N,Ho,Wo,C] (constant) -> gy: [N,Ho,Wo,C].
    """

    op_name = "max_pool2d_gather"
    input_names = ("gx", "argmax")
    saved_names = ()
    vjp = {"gx": "max_pool2d_backprop(g, argmax)"}

    @staticmethod
    def forward(ctx, gx, argmax, *, geom: ConvGeometry):
        return K.max_pool2d_gather(gx, argmax, geom, check_argmax=False)

    @staticmethod
    def backward(ctx, g):
        gx, argmax = ctx.inputs
        return (
            MaxPool2DBackprop.apply(g, argmax, input_shape=gx.shape, geom=ctx.attrs["geom"]),
            None,
        )


class AvgPool2D(Function):
    """y = mean over each window's in-bounds elements. x: [N,H,W,C] -> y: [N,Ho,Wo,C]."""

    op_name = "avg_pool2d"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "avg_pool2d_backprop(g)"}

    @staticmethod
    def forward(ctx, x, *, geom: ConvGeometry, padding: Any = None):
        return K.avg_pool2d(x, geom)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2DBackprop.apply(g, input_shape=ctx.inputs[0].shape, geom=ctx.attrs["geom"])


class AvgPool2DBackprop(Function):
    """dx = A^T dy: each output gradient spread evenly over its window's in-bounds inputs."""

    op_name = "avg_pool2d_backprop"
    input_names = ("dy",)
    saved_names = ()
    vjp = {"dy": "avg_pool2d(g)"}

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


# -- 1-D and 3-D pooling: the 2-D family on reshaped views ------------------------------------------
# A 1-D window is a 2-D window of height 1 over [N, 1, W, C]. A 3-D window is separable: the max
# (or TF's mean over in-bounds elements, whose count is the product of the per-axis counts) over
# a (kd, kh, kw) box is the max (mean) over kd planes of the max (mean) over each plane's (kh, kw)
# window. So max_pool3d is a max_pool2d over (H, W) of the N*D planes, then one over (D, 1) of
# [N, D, Ho*Wo, C]; ties go to the first maximum in (d, h, w) order, as TF's. Every step is a
# reshape or a 2-D pool, so the gradients (of any order) are the 2-D family's.
def _pool_nd(
    rank: int,
    op: str,
    pool2d: Any,
    input: Any,  # noqa: A002
    ksize: Any,
    strides: Any,
    padding: Any,
    data_format: Any,
) -> Tensor:
    x = as_tensor(input)
    fmt = DATA_FORMATS_ND[rank][0] if data_format is None else data_format
    if x.ndim != rank + 2:
        raise ValueError(
            f"{op}: input must have rank {rank + 2} ({fmt}), got shape {x.shape} (rank {x.ndim})"
        )
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a float tensor, got dtype {x.dtype}")
    geom = memoized(
        pool_geometry_nd,
        op,
        rank,
        x.shape,
        ksize,
        ksize if strides is None else strides,
        padding,
        fmt,
    )
    to_last = (0, *range(2, rank + 2), 1)
    to_first = (0, rank + 1, *range(1, rank + 1))
    channels_first = fmt.upper()[1] == "C"
    if channels_first:
        x = transpose(x, to_last)
    n, c = x.shape[0], x.shape[-1]
    explicit = not isinstance(padding, str)
    pads = geom.pads
    if rank == 1:
        (w,), (k,), (s,), (wo,) = geom.input_hw, geom.kernel_hw, geom.strides, geom.output_hw
        p2 = [[0, 0], list(pads[0])] if explicit else padding
        y = pool2d(reshape(x, (n, 1, w, c)), (1, k), (1, s), p2)
        y = reshape(y, (n, wo, c))
    else:
        (d, h, w), (kd, kh, kw) = geom.input_hw, geom.kernel_hw
        (sd, sh, sw), (do, ho, wo) = geom.strides, geom.output_hw
        p_hw = [list(pads[1]), list(pads[2])] if explicit else padding
        p_d = [list(pads[0]), [0, 0]] if explicit else padding
        y = pool2d(reshape(x, (n * d, h, w, c)), (kh, kw), (sh, sw), p_hw)
        y = pool2d(reshape(y, (n, d, ho * wo, c)), (kd, 1), (sd, 1), p_d)
        y = reshape(y, (n, do, ho, wo, c))
    return transpose(y, to_first) if channels_first else y


def max_pool1d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NWC",
) -> Tensor:
    """Max pooling as ``tf.nn.max_pool1d``. input: [N,W,C] (or NCW) -> [N,Wo,C].

    ksize/strides: int, [v] or 3 ints in data_format order (strides default to ksize).
    """
    return _pool_nd(1, "max_pool1d", max_pool2d, input, ksize, strides, padding, data_format)


def avg_pool1d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NWC",
) -> Tensor:
    """Average pooling as ``tf.nn.avg_pool1d`` ('SAME' divides by the in-bounds count)."""
    return _pool_nd(1, "avg_pool1d", avg_pool2d, input, ksize, strides, padding, data_format)


def max_pool3d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NDHWC",
) -> Tensor:
    """Max pooling as ``tf.nn.max_pool3d``. input: [N,D,H,W,C] (or NCDHW) -> [N,Do,Ho,Wo,C].

    ksize/strides: int, 3 ints or 5 ints in data_format order (strides default to ksize).
    """
    return _pool_nd(3, "max_pool3d", max_pool2d, input, ksize, strides, padding, data_format)


def avg_pool3d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | Sequence[Sequence[int]] = "VALID",
    data_format: str = "NDHWC",
) -> Tensor:
    """Average pooling as ``tf.nn.avg_pool3d`` ('SAME' divides by the in-bounds count)."""
    return _pool_nd(3, "avg_pool3d", avg_pool2d, input, ksize, strides, padding, data_format)

"""The conv family as graph nodes: each one's backward is made of the others.

With <.,.> the sum of elementwise products, and every op linear in each of its two arguments,
the gradient of <g, out> with respect to each argument is another member of the family:

* y = conv2d(x, w):
    d/dx = conv2d_backprop_input(x.shape, w, g)      d/dw = conv2d_backprop_filter(x, w.shape, g)
* dx = conv2d_backprop_input(sizes, w, dy):
    d/dw = conv2d_backprop_filter(g, w.shape, dy)    d/d(dy) = conv2d(g, w)
* dw = conv2d_backprop_filter(x, sizes, dy):
    d/dx = conv2d_backprop_input(x.shape, g, dy)     d/d(dy) = conv2d(x, g)

``conv2d_transpose(y, w, output_shape)`` *is* ``conv2d_backprop_input(output_shape, w, y)``.
Every backward is therefore a call of another node, so with ``create_graph=True`` the gradients
are differentiable again (Hessian-vector products, gradient penalties) with no extra code.

The nodes work in NHWC/HWIO; NCHW inputs are transposed around them by differentiable transposes.
The geometry (strides, resolved padding, dilations, output size) is computed once by
``kernels.padding.conv_geometry`` and shared by a node and all the nodes its backward creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import conv as K
from tinygrad_conv.kernels.blas import gemm_threads
from tinygrad_conv.kernels.padding import ConvGeometry, check_out_backprop, conv_geometry
from tinygrad_conv.ops._util import as_tensor, memoized
from tinygrad_conv.ops.movement import transpose
from tinygrad_conv.tensor import Tensor

Padding = str | Sequence[Sequence[int]]
IntOrInts = int | Sequence[int]

_TO_NHWC = (0, 2, 3, 1)
_TO_NCHW = (0, 3, 1, 2)


def _conv_threads(batch: int, in_channels: int, w_shape: Any, geom: ConvGeometry) -> gemm_threads:
    """The BLAS thread policy for the conv's GEMM (the same for all three nodes): its size
    N*Ho*Wo * kh*kw*Cin/groups * Cout and its output columns Cout/groups."""
    kh, kw, cg, cout = w_shape
    mnk = batch * geom.output_hw[0] * geom.output_hw[1] * kh * kw * cg * cout
    return gemm_threads(mnk, cols=cout // max(in_channels // cg, 1))


class Conv2D(Function):
    """y = conv2d(x, w). x: [N,H,W,Cin], w: [kh,kw,Cin/groups,Cout] -> y: [N,Ho,Wo,Cout]."""

    op_name = "conv2d"
    backward_summary = ("conv2d_backprop_input -> d input", "conv2d_backprop_filter -> d filter")

    @staticmethod
    def forward(ctx, x, w, *, geom: ConvGeometry, padding: Any = None):
        with _conv_threads(x.shape[0], x.shape[3], w.shape, geom):
            return Conv2D._forward(ctx, x, w, geom)

    @staticmethod
    def _forward(ctx, x, w, geom: ConvGeometry):
        if ctx.needs_input_grad[1] and K.windows_worth_keeping(
            x.shape, w.shape, geom, np.result_type(x, w).itemsize
        ):
            # keep the window matrix (im2col) for the filter gradient: it is exactly the GEMM
            # operand backprop_filter needs, so backward skips rebuilding it. Only for small
            # matrices (see windows_worth_keeping, 8 MiB): big ones are rebuilt block by block in cache,
            # which is faster than a second pass over memory. It lives as long as this node:
            # until backward releases the graph (or the graph is dropped).
            ctx.cols = K.conv2d_windows(x, geom, x.shape[3] // w.shape[2])
            return K.conv2d(x, w, geom, cols=ctx.cols)
        return K.conv2d(x, w, geom)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.inputs
        geom = ctx.attrs["geom"]
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = Conv2DBackpropInput.apply(w, dy, input_shape=x.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            dw = Conv2DBackpropFilter.apply(
                x, dy, filter_shape=w.shape, geom=geom, cols=ctx.__dict__.get("cols")
            )
        return dx, dw


class Conv2DBackpropInput(Function):
    """dx = conv2d_backprop_input(input_shape, w, dy): the adjoint of x -> conv2d(x, w).

    w: [kh,kw,Cin/groups,Cout], dy: [N,Ho,Wo,Cout] -> dx: input_shape [N,H,W,Cin].
    Equivalently: dilate dy by the strides, pad it to "full", and correlate with rot180(w) with
    in/out channels swapped (see ``tinygrad_conv.derivations``).
    """

    op_name = "conv2d_backprop_input"
    backward_summary = ("conv2d_backprop_filter -> d filter", "conv2d -> d out_backprop")

    @staticmethod
    def forward(ctx, w, dy, *, input_shape, geom: ConvGeometry, padding: Any = None):
        with _conv_threads(dy.shape[0], input_shape[3], w.shape, geom):
            return K.conv2d_backprop_input(input_shape, w, dy, geom)

    @staticmethod
    def backward(ctx, g):
        w, dy = ctx.inputs
        geom = ctx.attrs["geom"]
        gw = gdy = None
        if ctx.needs_input_grad[0]:
            gw = Conv2DBackpropFilter.apply(g, dy, filter_shape=w.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            gdy = Conv2D.apply(g, w, geom=geom)
        return gw, gdy


class Conv2DBackpropFilter(Function):
    """dw = conv2d_backprop_filter(x, filter_shape, dy): the adjoint of w -> conv2d(x, w).

    x: [N,H,W,Cin], dy: [N,Ho,Wo,Cout] -> dw: filter_shape [kh,kw,Cin/groups,Cout].
    Equivalently: a conv2d of x (batch and channel axes swapped) with dy (likewise swapped) as the
    filter, stride = the forward dilation, dilation = the forward stride.
    """

    op_name = "conv2d_backprop_filter"
    backward_summary = ("conv2d_backprop_input -> d input", "conv2d -> d out_backprop")

    @staticmethod
    def forward(ctx, x, dy, *, filter_shape, geom: ConvGeometry, cols=None, padding: Any = None):
        with _conv_threads(x.shape[0], x.shape[3], filter_shape, geom):
            return K.conv2d_backprop_filter(x, filter_shape, dy, geom, cols=cols)

    @staticmethod
    def backward(ctx, g):
        x, dy = ctx.inputs
        geom = ctx.attrs["geom"]
        gx = gdy = None
        if ctx.needs_input_grad[0]:
            gx = Conv2DBackpropInput.apply(g, dy, input_shape=x.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            gdy = Conv2D.apply(x, g, geom=geom)
        return gx, gdy


# -- public functions with TensorFlow's signatures ------------------------------------------------
def _sizes(op: str, name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        value = value.data
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size != 4 or arr.dtype.kind not in "iu":
        raise ValueError(f"{op}: {name} must be 4 integers, got {value!r}")
    return tuple(int(v) for v in arr)


def _nhwc(shape: Sequence[int], data_format: str) -> tuple[int, ...]:
    return tuple(shape) if data_format.upper() == "NHWC" else tuple(shape[i] for i in _TO_NHWC)


def _check_rank(op: str, name: str, t: Tensor) -> None:
    if t.ndim != 4:
        raise ValueError(f"{op}: {name} must have rank 4, got shape {t.shape}")


def _float_dtypes(op: str, *named: tuple[str, Tensor]) -> None:
    for name, t in named:
        if t.data.dtype.kind != "f":  # (np.issubdtype costs ~1 us per call)
            raise TypeError(f"{op}: {name} must be a float tensor, got dtype {t.dtype}")


def conv2d(
    input: Any,  # noqa: A002 - TensorFlow's argument name
    filters: Any,
    strides: IntOrInts = 1,
    padding: Padding = "VALID",
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """2-D cross-correlation as ``tf.nn.conv2d``.

    Args:
        input: [N,H,W,Cin] (or [N,Cin,H,W] with data_format='NCHW').
        filters: [kh,kw,Cin/groups,Cout] (HWIO); groups = Cin // filters.shape[2], as TF infers.
        strides, dilations: int or 1, 2 or 4 ints (TF's forms). Strides > 1 with dilations > 1
            is supported (TF's CPU kernel refuses it).
        padding: 'VALID', 'SAME' (output = ceil(in/stride), the odd extra row/column at the
            bottom/right), [[top,bottom],[left,right]] or TF's 4-pair form.
        data_format: 'NHWC' or 'NCHW'.
    Returns:
        [N,Ho,Wo,Cout] (or [N,Cout,Ho,Wo]).
    """
    op = "conv2d"
    x, w = as_tensor(input), as_tensor(filters)
    _check_rank(op, "input", x)
    _check_rank(op, "filters", w)
    _float_dtypes(op, ("input", x), ("filters", w))
    geom = memoized(conv_geometry, op, x.shape, w.shape, strides, padding, dilations, data_format)
    if data_format.upper() == "NCHW":
        y = Conv2D.apply(transpose(x, _TO_NHWC), w, geom=geom, padding=padding)
        return transpose(y, _TO_NCHW)
    return Conv2D.apply(x, w, geom=geom, padding=padding)


def conv2d_backprop_input(
    input_sizes: Any,
    filters: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv2d w.r.t. its input, as ``tf.compat.v1.nn.conv2d_backprop_input``.

    Args:
        input_sizes: the 4 ints of the forward input's shape (in data_format order): needed
            because several input sizes give the same output size when strides do not divide.
        filters: [kh,kw,Cin/groups,Cout].
        out_backprop: [N,Ho,Wo,Cout] (or NCHW), the gradient of conv2d's output.
        strides, padding, data_format, dilations: those of the forward conv2d.
    Returns:
        [N,H,W,Cin] = input_sizes. Differentiable in filters and out_backprop.
    """
    op = "conv2d_backprop_input"
    sizes = _sizes(op, "input_sizes", input_sizes)
    w, dy = as_tensor(filters), as_tensor(out_backprop)
    _check_rank(op, "filters", w)
    _check_rank(op, "out_backprop", dy)
    _float_dtypes(op, ("filters", w), ("out_backprop", dy))
    geom = memoized(conv_geometry, op, sizes, w.shape, strides, padding, dilations, data_format)
    nhwc = _nhwc(sizes, data_format)
    check_out_backprop(op, geom, dy.shape, nhwc[0], w.shape[3], data_format)
    if data_format.upper() == "NCHW":
        dy = transpose(dy, _TO_NHWC)
    dx = Conv2DBackpropInput.apply(w, dy, input_shape=nhwc, geom=geom, padding=padding)
    return transpose(dx, _TO_NCHW) if data_format.upper() == "NCHW" else dx


def conv2d_backprop_filter(
    input: Any,  # noqa: A002
    filter_sizes: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv2d w.r.t. its filter, as ``tf.compat.v1.nn.conv2d_backprop_filter``.

    Args:
        input: the forward input [N,H,W,Cin] (or NCHW).
        filter_sizes: the 4 ints [kh,kw,Cin/groups,Cout].
        out_backprop: [N,Ho,Wo,Cout] (or NCHW).
        strides, padding, data_format, dilations: those of the forward conv2d.
    Returns:
        [kh,kw,Cin/groups,Cout]. Differentiable in input and out_backprop.
    """
    op = "conv2d_backprop_filter"
    x, dy = as_tensor(input), as_tensor(out_backprop)
    sizes = _sizes(op, "filter_sizes", filter_sizes)
    _check_rank(op, "input", x)
    _check_rank(op, "out_backprop", dy)
    _float_dtypes(op, ("input", x), ("out_backprop", dy))
    geom = memoized(conv_geometry, op, x.shape, sizes, strides, padding, dilations, data_format)
    check_out_backprop(op, geom, dy.shape, x.shape[0], sizes[3], data_format)
    if data_format.upper() == "NCHW":
        x, dy = transpose(x, _TO_NHWC), transpose(dy, _TO_NHWC)
    return Conv2DBackpropFilter.apply(x, dy, filter_shape=sizes, geom=geom, padding=padding)


def conv2d_transpose(
    input: Any,  # noqa: A002
    filters: Any,
    output_shape: Any,
    strides: IntOrInts,
    padding: Padding = "SAME",
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Transposed convolution as ``tf.nn.conv2d_transpose`` (the "deconvolution").

    It is exactly ``conv2d_backprop_input(output_shape, filters, input)``: the adjoint of the
    conv2d that maps an ``output_shape`` tensor to ``input``'s shape.

    Args:
        input: [N,H,W,in_channels] (or NCHW).
        filters: [kh,kw,out_channels,in_channels] -- the *forward* conv's HWIO filter.
        output_shape: the 4 ints of the result's shape (data_format order).
        strides, padding, data_format, dilations: those of that forward conv.
    Returns:
        [N,H_out,W_out,out_channels] = output_shape.
    """
    op = "conv2d_transpose"
    y, w = as_tensor(input), as_tensor(filters)
    sizes = _sizes(op, "output_shape", output_shape)
    _check_rank(op, "input", y)
    _check_rank(op, "filters", w)
    _float_dtypes(op, ("input", y), ("filters", w))
    geom = memoized(conv_geometry, op, sizes, w.shape, strides, padding, dilations, data_format)
    nhwc = _nhwc(sizes, data_format)
    check_out_backprop(op, geom, y.shape, nhwc[0], w.shape[3], data_format)
    if data_format.upper() == "NCHW":
        y = transpose(y, _TO_NHWC)
    out = Conv2DBackpropInput.apply(w, y, input_shape=nhwc, geom=geom, padding=padding)
    return transpose(out, _TO_NCHW) if data_format.upper() == "NCHW" else out

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

The same table holds for 1-D (``conv1d``, ``conv1d_backprop_input`` / ``_filter``,
``conv1d_transpose``) and 3-D (``conv3d``, ``conv3d_backprop_input_v2`` / ``_filter_v2``,
``conv3d_transpose``): one set of rank-generic nodes whose backward calls its own rank's members
(``_family``), computed by ``kernels/conv_nd.py``. ``depthwise_conv2d`` (and its backprops) is
the grouped conv2d with one group per input channel (a reshape of the filter), and
``separable_conv2d`` a depthwise then a 1x1 conv2d, so their gradients are the conv2d family's.

The nodes work in NHWC/HWIO; NCHW inputs are transposed around them by differentiable transposes.
The geometry (strides, resolved padding, dilations, output size) is computed once by
``kernels.padding.conv_geometry`` and shared by a node and all the nodes its backward creates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import conv as K
from tinygrad_conv.kernels import conv_nd as KN
from tinygrad_conv.kernels.blas import gemm_threads
from tinygrad_conv.kernels.padding import (
    DATA_FORMATS_ND,
    ConvGeometry,
    channels_last,
    check_out_backprop,
    conv_geometry,
    conv_geometry_nd,
    layout_hint,
)
from tinygrad_conv.ops._util import as_tensor, memoized
from tinygrad_conv.ops.movement import reshape, transpose
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
    input_names = ("x", "w")
    # the window matrix of x when worth keeping (else None): backprop_filter's GEMM operand
    saved_names = ("cols",)
    vjp = {"x": "conv2d_backprop_input(w, g)", "w": "conv2d_backprop_filter(x, g)"}

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
            cols = K.conv2d_windows(x, geom, x.shape[3] // w.shape[2])
            ctx.save_for_backward(cols)
            return K.conv2d(x, w, geom, cols=cols)
        ctx.save_for_backward(None)
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
                x, dy, filter_shape=w.shape, geom=geom, cols=ctx.saved_tensors[0]
            )
        return dx, dw


class Conv2DBackpropInput(Function):
    """dx = conv2d_backprop_input(input_shape, w, dy): the adjoint of x -> conv2d(x, w).

    w: [kh,kw,Cin/groups,Cout], dy: [N,Ho,Wo,Cout] -> dx: input_shape [N,H,W,Cin].
    Equivalently: dilate dy by the strides, pad it to "full", and correlate with rot180(w) with
    in/out channels swapped (see ``tinygrad_conv.derivations``).
    """

    op_name = "conv2d_backprop_input"
    input_names = ("w", "dy")
    saved_names = ()
    vjp = {"w": "conv2d_backprop_filter(g, dy)", "dy": "conv2d(g, w)"}

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
    input_names = ("x", "dy")
    saved_names = ()
    vjp = {"x": "conv2d_backprop_input(g, dy)", "dy": "conv2d(x, g)"}

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


# -- 1-D and 3-D: the same family on the rank-generic kernels -------------------------------------
# One set of node classes serves every rank: a node's geometry says how many spatial axes it
# has, and kernels/conv_nd.py picks the strategy (1-D runs on the tuned 2-D kernels as a
# height-1 problem, 3-D on the rank-generic window matrix). Only the names differ per rank, so
# that drawings and records say conv1d / conv3d; each class's ``family`` holds its rank's three
# members, which is what its backward calls.
class _Family:
    """The three nodes of one rank: forward, input gradient, filter gradient."""

    conv: type[Function]
    backprop_input: type[Function]
    backprop_filter: type[Function]


def _nd_threads(batch: int, w_shape: Any, geom: ConvGeometry) -> gemm_threads:
    *ks, cg, cout = w_shape
    mnk = batch * math.prod(geom.output_hw) * math.prod(ks) * cg * cout
    return gemm_threads(mnk, cols=cout)


class _ConvNd(Function):
    """y = conv(x, w). x: [N,*S,Cin], w: [*K,Cin/groups,Cout] -> y: [N,*O,Cout]."""

    family: _Family
    input_names = ("x", "w")
    saved_names = ()

    @staticmethod
    def forward(ctx, x, w, *, geom: ConvGeometry, padding: Any = None):
        with _nd_threads(x.shape[0], w.shape, geom):
            return KN.conv(x, w, geom, op=ctx.name)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.inputs
        geom, fam = ctx.attrs["geom"], type(ctx).family
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = fam.backprop_input.apply(w, dy, input_shape=x.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            dw = fam.backprop_filter.apply(x, dy, filter_shape=w.shape, geom=geom)
        return dx, dw


class _ConvNdBackpropInput(Function):
    """dx = backprop_input(input_shape, w, dy): the adjoint of x -> conv(x, w).
    w: [*K,Cin/groups,Cout], dy: [N,*O,Cout] -> dx: input_shape [N,*S,Cin]."""

    family: _Family
    input_names = ("w", "dy")
    saved_names = ()

    @staticmethod
    def forward(ctx, w, dy, *, input_shape, geom: ConvGeometry, padding: Any = None):
        with _nd_threads(dy.shape[0], w.shape, geom):
            return KN.conv_backprop_input(input_shape, w, dy, geom, op=ctx.name)

    @staticmethod
    def backward(ctx, g):
        w, dy = ctx.inputs
        geom, fam = ctx.attrs["geom"], type(ctx).family
        gw = gdy = None
        if ctx.needs_input_grad[0]:
            gw = fam.backprop_filter.apply(g, dy, filter_shape=w.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            gdy = fam.conv.apply(g, w, geom=geom)
        return gw, gdy


class _ConvNdBackpropFilter(Function):
    """dw = backprop_filter(x, filter_shape, dy): the adjoint of w -> conv(x, w).
    x: [N,*S,Cin], dy: [N,*O,Cout] -> dw: filter_shape [*K,Cin/groups,Cout]."""

    family: _Family
    input_names = ("x", "dy")
    saved_names = ()

    @staticmethod
    def forward(ctx, x, dy, *, filter_shape, geom: ConvGeometry, padding: Any = None):
        with _nd_threads(x.shape[0], filter_shape, geom):
            return KN.conv_backprop_filter(x, filter_shape, dy, geom, op=ctx.name)

    @staticmethod
    def backward(ctx, g):
        x, dy = ctx.inputs
        geom, fam = ctx.attrs["geom"], type(ctx).family
        gx = gdy = None
        if ctx.needs_input_grad[0]:
            gx = fam.backprop_input.apply(g, dy, input_shape=x.shape, geom=geom)
        if ctx.needs_input_grad[1]:
            gdy = fam.conv.apply(x, g, geom=geom)
        return gx, gdy


def _family(conv: str, bp_input: str, bp_filter: str) -> _Family:
    """The three node classes of one rank, with its op names and vector-Jacobian rules."""
    fam = _Family()

    def node(base: type[Function], name: str, vjp: dict[str, str]) -> type[Function]:
        body = {"op_name": name, "family": fam, "vjp": vjp, "__module__": __name__}
        return type(name.title().replace("_", ""), (base,), body)

    fam.conv = node(_ConvNd, conv, {"x": f"{bp_input}(w, g)", "w": f"{bp_filter}(x, g)"})
    fam.backprop_input = node(
        _ConvNdBackpropInput, bp_input, {"w": f"{bp_filter}(g, dy)", "dy": f"{conv}(g, w)"}
    )
    fam.backprop_filter = node(
        _ConvNdBackpropFilter, bp_filter, {"x": f"{bp_input}(g, dy)", "dy": f"{conv}(x, g)"}
    )
    return fam


CONV1D = _family("conv1d", "conv1d_backprop_input", "conv1d_backprop_filter")
CONV3D = _family("conv3d", "conv3d_backprop_input_v2", "conv3d_backprop_filter_v2")
Conv1D, Conv1DBackpropInput, Conv1DBackpropFilter = (
    CONV1D.conv,
    CONV1D.backprop_input,
    CONV1D.backprop_filter,
)
Conv3D, Conv3DBackpropInputV2, Conv3DBackpropFilterV2 = (
    CONV3D.conv,
    CONV3D.backprop_input,
    CONV3D.backprop_filter,
)
_FAMILIES = {1: CONV1D, 3: CONV3D}


def _perms(rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channels-first -> channels-last, channels-last -> channels-first) axis orders."""
    return (0, *range(2, rank + 2), 1), (0, rank + 1, *range(1, rank + 1))


def _format(op: str, rank: int, data_format: Any) -> str:
    formats = DATA_FORMATS_ND[rank]
    if not isinstance(data_format, str) or data_format.upper() not in formats:
        raise ValueError(f"{op}: data_format must be one of {formats}, got {data_format!r}")
    return data_format.upper()


def _rank_of(op: str, name: str, t: Tensor, rank: int, layout: str) -> None:
    if t.ndim != rank + 2:
        raise ValueError(
            f"{op}: {name} must have rank {rank + 2} ({layout}), got shape {t.shape} "
            f"(rank {t.ndim})"
        )


def _sizes_n(op: str, name: str, value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, Tensor):
        value = value.data
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size != n or arr.dtype.kind not in "iu":
        raise ValueError(f"{op}: {name} must be {n} integers, got {value!r}")
    return tuple(int(v) for v in arr)


def _filter_layout(rank: int) -> str:
    return {1: "WIO", 3: "DHWIO"}[rank]


def _conv_nd(
    rank: int, op: str, x: Any, w: Any, strides: Any, padding: Any, data_format: Any, dilations: Any
) -> Tensor:
    fmt = _format(op, rank, data_format)
    x, w = as_tensor(x), as_tensor(w)
    _rank_of(op, "input", x, rank, fmt)
    _rank_of(op, "filters", w, rank, _filter_layout(rank))
    _float_dtypes(op, ("input", x), ("filters", w))
    geom = memoized(
        conv_geometry_nd, op, rank, x.shape, w.shape[:-2], strides, padding, dilations, fmt
    )
    _check_groups(op, channels_last(x.shape, fmt), w.shape)
    to_last, to_first = _perms(rank)
    if fmt[1] == "C":
        x = transpose(x, to_last)
    y = _FAMILIES[rank].conv.apply(x, w, geom=geom, padding=padding)
    return transpose(y, to_first) if fmt[1] == "C" else y


def _check_groups(op: str, x_last: tuple[int, ...], w_shape: tuple[int, ...]) -> None:
    cin, cg, cout = x_last[-1], w_shape[-2], w_shape[-1]
    if cg < 1 or cout < 1 or cin % cg:
        raise ValueError(
            f"{op}: input channels {cin} (input shape {x_last}, channels last) must be a multiple "
            f"of the filter's in-channels {cg} (filter shape {w_shape})"
            + layout_hint(x_last, w_shape, cin, True)
        )
    if cout % (cin // cg):
        raise ValueError(
            f"{op}: filter out-channels {cout} (filter shape {w_shape}) must be divisible by "
            f"groups = {cin} // {cg} = {cin // cg}"
        )


def _check_dy(op: str, geom: ConvGeometry, dy_last: tuple[int, ...], n: int, c: int) -> None:
    expected = (n, *geom.output_hw, c)
    if tuple(dy_last) != expected:
        raise ValueError(
            f"{op}: out_backprop has shape {tuple(dy_last)} (channels last) but the geometry "
            f"[{geom}] with batch {n} and {c} channels needs {expected}: input_sizes / "
            "output_shape is inconsistent with the gradient"
        )


def _backprop_input_nd(
    rank: int,
    op: str,
    sizes: Any,
    w: Any,
    dy: Any,
    strides: Any,
    padding: Any,
    data_format: Any,
    dilations: Any,
) -> Tensor:
    fmt = _format(op, rank, data_format)
    shape = _sizes_n(
        op, "input_sizes" if "transpose" not in op else "output_shape", sizes, rank + 2
    )
    w, dy = as_tensor(w), as_tensor(dy)
    _rank_of(op, "filters", w, rank, _filter_layout(rank))
    _rank_of(op, "out_backprop" if "transpose" not in op else "input", dy, rank, fmt)
    _float_dtypes(op, ("filters", w), ("out_backprop", dy))
    geom = memoized(
        conv_geometry_nd, op, rank, shape, w.shape[:-2], strides, padding, dilations, fmt
    )
    last = channels_last(shape, fmt)
    _check_groups(op, last, w.shape)
    _check_dy(op, geom, channels_last(dy.shape, fmt), last[0], w.shape[-1])
    to_last, to_first = _perms(rank)
    if fmt[1] == "C":
        dy = transpose(dy, to_last)
    dx = _FAMILIES[rank].backprop_input.apply(w, dy, input_shape=last, geom=geom, padding=padding)
    return transpose(dx, to_first) if fmt[1] == "C" else dx


def _backprop_filter_nd(
    rank: int,
    op: str,
    x: Any,
    sizes: Any,
    dy: Any,
    strides: Any,
    padding: Any,
    data_format: Any,
    dilations: Any,
) -> Tensor:
    fmt = _format(op, rank, data_format)
    fs = _sizes_n(op, "filter_sizes", sizes, rank + 2)
    x, dy = as_tensor(x), as_tensor(dy)
    _rank_of(op, "input", x, rank, fmt)
    _rank_of(op, "out_backprop", dy, rank, fmt)
    _float_dtypes(op, ("input", x), ("out_backprop", dy))
    geom = memoized(conv_geometry_nd, op, rank, x.shape, fs[:-2], strides, padding, dilations, fmt)
    last = channels_last(x.shape, fmt)
    _check_groups(op, last, fs)
    _check_dy(op, geom, channels_last(dy.shape, fmt), last[0], fs[-1])
    to_last, _ = _perms(rank)
    if fmt[1] == "C":
        x, dy = transpose(x, to_last), transpose(dy, to_last)
    return _FAMILIES[rank].backprop_filter.apply(x, dy, filter_shape=fs, geom=geom, padding=padding)


def conv1d(
    input: Any,  # noqa: A002 - TensorFlow's argument name
    filters: Any,
    stride: IntOrInts = 1,
    padding: Padding = "VALID",
    data_format: str = "NWC",
    dilations: IntOrInts | None = None,
) -> Tensor:
    """1-D cross-correlation as ``tf.nn.conv1d``.

    Args:
        input: [N,W,Cin] (or [N,Cin,W] with data_format='NCW').
        filters: [k,Cin/groups,Cout] (WIO); groups = Cin // filters.shape[1].
        stride, dilations: int, [v] or TF's 3-element form (1 at N and C).
        padding: 'VALID', 'SAME' (the odd extra column at the end), [[left, right]] or the
            3-pair form (TF's conv1d takes strings only; explicit pairs are an extension).
        data_format: 'NWC' or 'NCW'.
    Returns:
        [N,Wo,Cout] (or [N,Cout,Wo]).
    """
    return _conv_nd(1, "conv1d", input, filters, stride, padding, data_format, dilations or 1)


def conv1d_backprop_input(
    input_sizes: Any,
    filters: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv1d w.r.t. its input. input_sizes: 3 ints [N,W,Cin] (data_format order);
    filters: [k,Cin/groups,Cout]; out_backprop: [N,Wo,Cout]. Returns input_sizes."""
    return _backprop_input_nd(
        1,
        "conv1d_backprop_input",
        input_sizes,
        filters,
        out_backprop,
        strides,
        padding,
        data_format,
        dilations,
    )


def conv1d_backprop_filter(
    input: Any,  # noqa: A002
    filter_sizes: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv1d w.r.t. its filter. input: [N,W,Cin]; filter_sizes: 3 ints
    [k,Cin/groups,Cout]; out_backprop: [N,Wo,Cout]. Returns [k,Cin/groups,Cout]."""
    return _backprop_filter_nd(
        1,
        "conv1d_backprop_filter",
        input,
        filter_sizes,
        out_backprop,
        strides,
        padding,
        data_format,
        dilations,
    )


def conv1d_transpose(
    input: Any,  # noqa: A002
    filters: Any,
    output_shape: Any,
    strides: IntOrInts,
    padding: Padding = "SAME",
    data_format: str = "NWC",
    dilations: IntOrInts | None = None,
) -> Tensor:
    """Transposed 1-D convolution as ``tf.nn.conv1d_transpose``: exactly
    ``conv1d_backprop_input(output_shape, filters, input)``.

    input: [N,W,in_channels]; filters: [k,out_channels,in_channels] (the forward conv's);
    output_shape: 3 ints in data_format order. Returns output_shape.
    """
    return _backprop_input_nd(
        1,
        "conv1d_transpose",
        output_shape,
        filters,
        input,
        strides,
        padding,
        data_format,
        dilations or 1,
    )


def conv3d(
    input: Any,  # noqa: A002
    filters: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NDHWC",
    dilations: IntOrInts | None = None,
) -> Tensor:
    """3-D cross-correlation as ``tf.nn.conv3d``.

    Args:
        input: [N,D,H,W,Cin] (or [N,Cin,D,H,W] with data_format='NCDHW').
        filters: [kd,kh,kw,Cin/groups,Cout] (DHWIO); groups = Cin // filters.shape[3] (TF's
            CPU kernel refuses groups; here they work as in conv2d).
        strides, dilations: int, 3 ints or TF's 5-element form (1 at N and C).
        padding: 'VALID', 'SAME', three [before, after] pairs or the 5-pair form.
        data_format: 'NDHWC' or 'NCDHW'.
    Returns:
        [N,Do,Ho,Wo,Cout] (or [N,Cout,Do,Ho,Wo]).
    """
    return _conv_nd(3, "conv3d", input, filters, strides, padding, data_format, dilations or 1)


def conv3d_backprop_input_v2(
    input_sizes: Any,
    filter: Any,  # noqa: A002 - TensorFlow's argument name
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NDHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv3d w.r.t. its input, as ``tf.raw_ops.Conv3DBackpropInputV2``.
    input_sizes: 5 ints (data_format order); filter: [kd,kh,kw,Cin/groups,Cout];
    out_backprop: [N,Do,Ho,Wo,Cout]. Returns input_sizes."""
    return _backprop_input_nd(
        3,
        "conv3d_backprop_input_v2",
        input_sizes,
        filter,
        out_backprop,
        strides,
        padding,
        data_format,
        dilations,
    )


def conv3d_backprop_filter_v2(
    input: Any,  # noqa: A002
    filter_sizes: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NDHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of conv3d w.r.t. its filter, as ``tf.compat.v1.nn.conv3d_backprop_filter_v2``.
    input: [N,D,H,W,Cin]; filter_sizes: 5 ints; out_backprop: [N,Do,Ho,Wo,Cout]."""
    return _backprop_filter_nd(
        3,
        "conv3d_backprop_filter_v2",
        input,
        filter_sizes,
        out_backprop,
        strides,
        padding,
        data_format,
        dilations,
    )


def conv3d_transpose(
    input: Any,  # noqa: A002
    filters: Any,
    output_shape: Any,
    strides: IntOrInts,
    padding: Padding = "SAME",
    data_format: str = "NDHWC",
    dilations: IntOrInts | None = None,
) -> Tensor:
    """Transposed 3-D convolution as ``tf.nn.conv3d_transpose``: exactly
    ``conv3d_backprop_input_v2(output_shape, filters, input)``.

    input: [N,D,H,W,in_channels]; filters: [kd,kh,kw,out_channels,in_channels]."""
    return _backprop_input_nd(
        3,
        "conv3d_transpose",
        output_shape,
        filters,
        input,
        strides,
        padding,
        data_format,
        dilations or 1,
    )


# -- depthwise: a grouped conv2d with one group per input channel -----------------------------------
# TF's depthwise filter [kh, kw, Cin, M] gives output channel c*M + m from input channel c with
# filter[:, :, c, m]: exactly conv2d's grouped filter [kh, kw, 1, Cin*M] (groups = Cin, group c
# writing outputs [c*M, (c+1)*M)), which is the same memory read as a reshape. So the depthwise
# ops are reshapes around the conv2d family, and their gradients are members of that family.
def _depthwise_filter_shape(op: str, name: str, fshape: tuple[int, ...], cin: int) -> None:
    if len(fshape) != 4:
        raise ValueError(f"{op}: {name} must have rank 4 [kh,kw,Cin,M], got shape {fshape}")
    if fshape[2] != cin or min(fshape) < 1:
        raise ValueError(
            f"{op}: {name} has shape {fshape} ([kh,kw,in_channels,channel_multiplier]) but the "
            f"input has {cin} channels"
        )


def _channels(op: str, shape: tuple[int, ...], data_format: str) -> int:
    fmt = _check_data_format_2d(op, data_format)
    return shape[3] if fmt == "NHWC" else shape[1]


def _check_data_format_2d(op: str, data_format: Any) -> str:
    if not isinstance(data_format, str) or data_format.upper() not in ("NHWC", "NCHW"):
        raise ValueError(f"{op}: data_format must be one of ('NHWC', 'NCHW'), got {data_format!r}")
    return data_format.upper()


def depthwise_conv2d(
    input: Any,  # noqa: A002
    filter: Any,  # noqa: A002
    strides: IntOrInts,
    padding: Padding,
    data_format: str | None = None,
    dilations: IntOrInts | None = None,
) -> Tensor:
    """Depthwise 2-D convolution as ``tf.nn.depthwise_conv2d``.

    Args:
        input: [N,H,W,Cin] (or NCHW).
        filter: [kh,kw,Cin,M]: each input channel c is convolved with M filters of its own.
        strides, dilations: int, 2 ints or TF's 4-element form (TF's CPU kernel needs equal
            strides and refuses strides with dilations; both work here).
        padding: 'VALID', 'SAME' or explicit pairs. data_format: 'NHWC' (default) or 'NCHW'.
    Returns:
        [N,Ho,Wo,Cin*M], output channel c*M + m from input channel c and filter[..., c, m].
    """
    op, fmt = "depthwise_conv2d", data_format or "NHWC"
    x, w = as_tensor(input), as_tensor(filter)
    _check_rank(op, "input", x)
    _depthwise_filter_shape(op, "filter", w.shape, _channels(op, x.shape, fmt))
    kh, kw, cin, m = w.shape
    return conv2d(x, reshape(w, (kh, kw, 1, cin * m)), strides, padding, fmt, dilations or 1)


def depthwise_conv2d_backprop_input(
    input_sizes: Any,
    filter: Any,  # noqa: A002
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of depthwise_conv2d w.r.t. its input (``tf.nn.depthwise_conv2d_backprop_input``,
    whose CPU kernel ignores ``dilations``; here they are honoured). input_sizes: 4 ints;
    filter: [kh,kw,Cin,M]; out_backprop: [N,Ho,Wo,Cin*M]. Returns input_sizes."""
    op = "depthwise_conv2d_backprop_input"
    sizes = _sizes(op, "input_sizes", input_sizes)
    w = as_tensor(filter)
    _depthwise_filter_shape(op, "filter", w.shape, _channels(op, sizes, data_format))
    kh, kw, cin, m = w.shape
    w2 = reshape(w, (kh, kw, 1, cin * m))
    return conv2d_backprop_input(sizes, w2, out_backprop, strides, padding, data_format, dilations)


def depthwise_conv2d_backprop_filter(
    input: Any,  # noqa: A002
    filter_sizes: Any,
    out_backprop: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str = "NHWC",
    dilations: IntOrInts = 1,
) -> Tensor:
    """Gradient of depthwise_conv2d w.r.t. its filter (``tf.nn.depthwise_conv2d_backprop_filter``;
    dilations honoured). input: [N,H,W,Cin]; filter_sizes: 4 ints [kh,kw,Cin,M];
    out_backprop: [N,Ho,Wo,Cin*M]. Returns [kh,kw,Cin,M]."""
    op = "depthwise_conv2d_backprop_filter"
    x = as_tensor(input)
    _check_rank(op, "input", x)
    fs = _sizes(op, "filter_sizes", filter_sizes)
    _depthwise_filter_shape(op, "filter_sizes", fs, _channels(op, x.shape, data_format))
    kh, kw, cin, m = fs
    dw = conv2d_backprop_filter(
        x, (kh, kw, 1, cin * m), out_backprop, strides, padding, data_format, dilations
    )
    return reshape(dw, fs)


def separable_conv2d(
    input: Any,  # noqa: A002
    depthwise_filter: Any,
    pointwise_filter: Any,
    strides: IntOrInts,
    padding: Padding,
    data_format: str | None = None,
    dilations: IntOrInts | None = None,
) -> Tensor:
    """Depthwise then 1x1 convolution, as ``tf.nn.separable_conv2d``.

    depthwise_filter: [kh,kw,Cin,M]; pointwise_filter: [1,1,Cin*M,Cout]. Returns [N,Ho,Wo,Cout].
    """
    op, fmt = "separable_conv2d", data_format or "NHWC"
    p = as_tensor(pointwise_filter)
    dw = as_tensor(depthwise_filter)
    if (
        p.ndim != 4
        or p.shape[:2] != (1, 1)
        or dw.ndim != 4
        or p.shape[2] != dw.shape[2] * dw.shape[3]
    ):
        raise ValueError(
            f"{op}: pointwise_filter must be [1,1,Cin*M,Cout] for depthwise_filter "
            f"{dw.shape}, got shape {p.shape}"
        )
    h = depthwise_conv2d(input, dw, strides, padding, fmt, dilations)
    return conv2d(h, p, 1, "VALID", fmt)

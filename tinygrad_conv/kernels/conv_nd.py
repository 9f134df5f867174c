"""Convolution with any number of spatial axes (1-D, 2-D, 3-D) and its two adjoints.

Layouts are channels-last: x [N, *S, Cin], filters [*K, Cin/G, Cout], dy [N, *O, Cout]; the
geometry is a :class:`~.padding.ConvGeometry` of rank r (``conv_geometry_nd``). The definition
is that of :mod:`.conv_ref` (the oracle); this module only decides *how* to compute it.

Strategies (each computes all three products for the shapes it accepts):

* ``"conv2d"``: the 2-D kernels of :mod:`.conv` (window copy + GEMM, cache blocking,
  channel-major for few channels, stride phases; benchmarked in benchmarks/README.md). A rank-1
  problem runs through them as a 2-D one with a height of 1 (free views: [N, W, C] is
  [N, 1, W, C]); rank 3 cannot.
* ``"im2col"``: the same idea written once for any rank, without the 2-D tuning: per block of
  whole images (about ``block_bytes`` of window matrix, so the copy stays in cache), one strided
  window view of the padded input copied into the window matrix cols [G, M, prod(K)*Cg]
  (M = images*prod(O)), then y = cols @ W, dW = sum of cols^T @ dy, and for dx one GEMM
  dcols = dy @ W^T followed by one strided add per tap into the padded input gradient (col2im).
* ``"reference"``: :mod:`.conv_ref` itself (slow; for tests and the profiler).

:func:`plan` is the one place that picks a strategy from the geometry and shapes; the public
functions take ``strategy=`` to force one (the tests run every strategy on the same cases).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import conv as conv2d_kernels
from .conv_ref import conv_backprop_filter_ref, conv_backprop_input_ref, conv_ref
from .padding import ConvGeometry

__all__ = ["STRATEGIES", "plan", "conv", "conv_backprop_input", "conv_backprop_filter"]

#: Every strategy name, in order of preference.
STRATEGIES = ("conv2d", "im2col", "reference")


def plan(geom: ConvGeometry) -> str:
    """The strategy for a problem of this geometry: the tuned 2-D kernels whenever the
    problem is (or lifts to) 2-D, else the rank-generic window matrix + GEMM."""
    return "conv2d" if geom.rank <= 2 else "im2col"


# ----------------------------------------------------------------------------- validation


def _array(op: str, name: str, a: object, rank: int) -> np.ndarray:
    arr = a if type(a) is np.ndarray else np.asarray(a)
    if arr.ndim != rank + 2:
        raise ValueError(
            f"{op}: {name} must be {rank + 2}-D for {rank} spatial axes, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{op}: {name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _sizes(op: str, name: str, shape: Sequence[int], rank: int) -> tuple[int, ...]:
    dims = tuple(int(v) for v in shape)
    if len(dims) != rank + 2:
        raise ValueError(
            f"{op}: {name} must have {rank + 2} entries for {rank} spatial axes, got {dims}"
        )
    return dims


def _check(
    op: str, geom: ConvGeometry, x_shape: tuple[int, ...], w_shape: tuple[int, ...], dy_shape
) -> int:
    """Check input, filter and (optional) dy shapes against geom; return the groups."""
    if not isinstance(geom, ConvGeometry):
        raise TypeError(f"{op}: geom must be a ConvGeometry, got {type(geom).__name__}")
    if x_shape[1:-1] != geom.input_hw or x_shape[-1] < 1:
        raise ValueError(
            f"{op}: input has shape {x_shape} but the geometry ({geom}) expects "
            f"[N, {', '.join(map(str, geom.input_hw))}, C >= 1]"
        )
    if tuple(w_shape[:-2]) != geom.kernel_hw:
        raise ValueError(
            f"{op}: filter has shape {w_shape} but the geometry expects a "
            f"{'x'.join(map(str, geom.kernel_hw))} kernel"
        )
    cin, cg, cout = x_shape[-1], w_shape[-2], w_shape[-1]
    if cg < 1 or cout < 1 or cin % cg:
        raise ValueError(
            f"{op}: input channels {cin} must be a multiple of the filter's in-channels {cg} "
            f"(filter shape {w_shape})"
        )
    groups = cin // cg
    if cout % groups:
        raise ValueError(
            f"{op}: filter out-channels {cout} (filter shape {w_shape}) must be divisible by "
            f"groups = {cin} // {cg} = {groups}"
        )
    if dy_shape is not None and tuple(dy_shape) != (x_shape[0], *geom.output_hw, cout):
        raise ValueError(
            f"{op}: dy has shape {tuple(dy_shape)} but the geometry ({geom}) with batch "
            f"{x_shape[0]} and {cout} output channels needs {(x_shape[0], *geom.output_hw, cout)}"
        )
    return groups


def _strategy(op: str, strategy: str | None, geom: ConvGeometry) -> str:
    name = plan(geom) if strategy is None else strategy
    if name not in STRATEGIES:
        raise ValueError(f"{op}: strategy must be one of {STRATEGIES}, got {strategy!r}")
    if name == "conv2d" and geom.rank > 2:
        raise ValueError(
            f"{op}: strategy 'conv2d' serves 1-D and 2-D problems, got rank {geom.rank}"
        )
    return name


# ----------------------------------------------------------------------------- rank 1 as rank 2


def _lift(geom: ConvGeometry) -> ConvGeometry:
    """The 2-D geometry of a rank-1 (or rank-2) problem: a height of 1 with a 1-tall kernel."""
    if geom.rank == 2:
        return geom
    return ConvGeometry(
        (1, *geom.input_hw),
        (1, *geom.kernel_hw),
        (1, *geom.strides),
        (1, *geom.dilations),
        ((0, 0), *geom.pads),
        (1, *geom.output_hw),
    )


def _as2d(a: np.ndarray, rank: int, filt: bool = False) -> np.ndarray:
    """[N, W, C] -> [N, 1, W, C] (or a [k, Cg, Cout] filter -> [1, k, Cg, Cout]): a view."""
    if rank == 2:
        return a
    return a[None] if filt else a[:, None]


def _from2d(a: np.ndarray, rank: int, filt: bool = False) -> np.ndarray:
    if rank == 2:
        return a
    return a[0] if filt else a[:, 0]


# ----------------------------------------------------------------------------- rank-generic im2col


def _windows(x: np.ndarray, geom: ConvGeometry, groups: int) -> np.ndarray:
    """cols [G, M, prod(K)*Cg]: cols[g, (n, o), (t, c)] = xpad[n, o*s + t*d, g*Cg + c]."""
    r = geom.rank
    n, cin = x.shape[0], x.shape[-1]
    # the last `leftover` padded rows are never read: pad only up to what a window reaches
    hi = [max(h - lft, 0) for (_, h), lft in zip(geom.pads, geom.leftover, strict=True)]
    pads = [(0, 0), *((lo, h) for (lo, _), h in zip(geom.pads, hi, strict=True)), (0, 0)]
    xp = np.pad(x, pads) if any(lo or h for lo, h in pads) else np.ascontiguousarray(x)
    st = xp.strides
    shape = (n, *geom.output_hw, *geom.kernel_hw, cin)
    strides = (
        st[0],
        *(st[1 + a] * geom.strides[a] for a in range(r)),
        *(st[1 + a] * geom.dilations[a] for a in range(r)),
        st[-1],
    )
    view = as_strided(xp, shape=shape, strides=strides, writeable=False)
    m, taps, cg = n * math.prod(geom.output_hw), math.prod(geom.kernel_hw), cin // groups
    if groups == 1:
        return view.reshape(1, m, taps * cin)  # reshape of a strided view: the one copy
    cols = np.empty((groups, m, taps * cg), dtype=x.dtype)
    src = view.reshape(m, taps, groups, cg).transpose(2, 0, 1, 3)
    np.copyto(cols.reshape(groups, m, taps, cg), src)
    return cols


def _filter_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """[*K, Cg, G*Og] -> [G, prod(K)*Cg, Og] (a view)."""
    cout = w.shape[-1]
    return w.reshape(-1, groups, cout // groups).transpose(1, 0, 2)


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """[..., G*C] -> [G, prod(...), C] (a view)."""
    c = a.shape[-1]
    return a.reshape(-1, groups, c // groups).transpose(1, 0, 2)


def _image_blocks(n: int, geom: ConvGeometry, row_bytes: int, budget: int) -> list[tuple[int, int]]:
    """Batch ranges [n0, n1) whose window matrix (``row_bytes`` per output pixel) is about
    ``budget`` bytes: each block's copy stays in cache for its GEMM (whole images per block; one
    image may exceed the budget). A tiling of the batch, not a loop over items."""
    per_image = max(math.prod(geom.output_hw) * row_bytes, 1)
    step = max(1, budget // per_image)
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _im2col_conv(
    x: np.ndarray, w: np.ndarray, geom: ConvGeometry, groups: int, budget: int
) -> np.ndarray:
    """y = cols @ W per block of images, straight into y's channels-last rows."""
    y = np.empty((x.shape[0], *geom.output_hw, w.shape[-1]), dtype=x.dtype)
    wg = _filter_matrix(w, groups)
    row_bytes = math.prod(geom.kernel_hw) * x.shape[-1] * x.dtype.itemsize
    for n0, n1 in _image_blocks(x.shape[0], geom, row_bytes, budget):
        np.matmul(_windows(x[n0:n1], geom, groups), wg, out=_grouped(y[n0:n1], groups))
    return y


def _im2col_backprop_filter(
    x: np.ndarray,
    fshape: tuple[int, ...],
    dy: np.ndarray,
    geom: ConvGeometry,
    groups: int,
    budget: int,
) -> np.ndarray:
    """dW = sum over blocks of images of cols^T @ dy."""
    dw = np.empty(fshape, dtype=x.dtype)
    dwg = _filter_matrix(dw, groups)
    part = None
    row_bytes = math.prod(geom.kernel_hw) * x.shape[-1] * x.dtype.itemsize
    for k, (n0, n1) in enumerate(_image_blocks(x.shape[0], geom, row_bytes, budget)):
        cols = _windows(x[n0:n1], geom, groups)
        if k == 0:
            np.matmul(cols.transpose(0, 2, 1), _grouped(dy[n0:n1], groups), out=dwg)
            continue
        part = np.empty_like(dwg) if part is None else part
        np.matmul(cols.transpose(0, 2, 1), _grouped(dy[n0:n1], groups), out=part)
        dwg += part
    return dw


def _im2col_backprop_input(
    xshape: tuple[int, ...],
    w: np.ndarray,
    dy: np.ndarray,
    geom: ConvGeometry,
    groups: int,
    budget: int,
) -> np.ndarray:
    """dcols = dy @ W^T per block of images, then one strided add per tap (col2im)."""
    n, cin = xshape[0], xshape[-1]
    taps, cg = math.prod(geom.kernel_hw), cin // groups
    wt = _filter_matrix(w, groups).transpose(0, 2, 1)  # [G, Og, taps*Cg]
    padded = [i + lo + hi for i, (lo, hi) in zip(geom.input_hw, geom.pads, strict=True)]
    dxpad = np.zeros((n, *padded, cin), dtype=dy.dtype)
    dsts = [
        tuple(
            slice(i * d, i * d + (o - 1) * s + 1, s)
            for i, d, s, o in zip(tap, geom.dilations, geom.strides, geom.output_hw, strict=True)
        )
        for tap in itertools.product(*(range(k) for k in geom.kernel_hw))
    ]
    row_bytes = taps * cin * dy.dtype.itemsize
    for n0, n1 in _image_blocks(n, geom, row_bytes, budget):
        # dcols[g, (n, o), (t, c)] = sum_o' dy[(n, o), g*Og + o'] w[t, c, g*Og + o']
        prod = np.matmul(_grouped(dy[n0:n1], groups), wt)
        # [G, M, taps*Cg] -> [M, taps, G, Cg] = [nb, *O, taps, Cin]
        dcols = prod.reshape(groups, -1, taps, cg).transpose(1, 2, 0, 3)
        dcols = dcols.reshape(n1 - n0, *geom.output_hw, taps, cin)
        block = dxpad[n0:n1]
        for t, dst in enumerate(dsts):
            block[(slice(None), *dst)] += dcols[..., t, :]
    inner = tuple(slice(lo, lo + i) for i, (lo, _) in zip(geom.input_hw, geom.pads, strict=True))
    return np.ascontiguousarray(dxpad[(slice(None), *inner)])


# ----------------------------------------------------------------------------- public kernels


def _budget(op: str, block_bytes: int | None) -> int:
    if block_bytes is None:
        return conv2d_kernels.TUNING.block_bytes
    if not isinstance(block_bytes, int) or isinstance(block_bytes, bool) or block_bytes < 1:
        raise ValueError(f"{op}: block_bytes must be a positive int, got {block_bytes!r}")
    return block_bytes


def _dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    return np.result_type(a, b)


def conv(
    x: np.ndarray,
    w: np.ndarray,
    geom: ConvGeometry,
    strategy: str | None = None,
    op: str = "conv",
    block_bytes: int | None = None,
) -> np.ndarray:
    """Cross-correlation y = conv(x, w) for any rank (the definition in :mod:`.conv_ref`).

    Args:
        x: [N, *S, Cin]. w: [*K, Cin/G, Cout]. geom: rank-r geometry (r = len(S)).
        strategy: one of :data:`STRATEGIES`; None lets :func:`plan` choose.
        op: the caller's op name, for error messages.
        block_bytes: the "im2col" strategy's window-matrix block size (default
            ``conv.TUNING.block_bytes``; the 2-D strategies take their tuning from ``conv.plan``).

    Returns:
        y [N, *O, Cout] in np.result_type(x, w).
    """
    r = geom.rank if isinstance(geom, ConvGeometry) else 0
    x, w = _array(op, "input", x, r), _array(op, "filter", w, r)
    groups = _check(op, geom, x.shape, w.shape, None)
    name = _strategy(op, strategy, geom)
    dt = _dtype(x, w)
    x, w = x.astype(dt, copy=False), np.ascontiguousarray(w, dtype=dt)
    if name == "reference":
        return conv_ref(x, w, geom)
    if name == "im2col":
        return _im2col_conv(x, w, geom, groups, _budget(op, block_bytes))
    y = conv2d_kernels.conv2d(_as2d(x, r), _as2d(w, r, True), _lift(geom))
    return _from2d(y, r)


def conv_backprop_input(
    input_shape: Sequence[int],
    w: np.ndarray,
    dy: np.ndarray,
    geom: ConvGeometry,
    strategy: str | None = None,
    op: str = "conv_backprop_input",
    block_bytes: int | None = None,
) -> np.ndarray:
    """dx, the adjoint of x -> conv(x, w). input_shape: [N, *S, Cin]; w: [*K, Cin/G, Cout];
    dy: [N, *O, Cout]. Returns [N, *S, Cin] in np.result_type(w, dy)."""
    r = geom.rank if isinstance(geom, ConvGeometry) else 0
    xs = _sizes(op, "input_sizes", input_shape, r)
    w, dy = _array(op, "filter", w, r), _array(op, "dy", dy, r)
    groups = _check(op, geom, xs, w.shape, dy.shape)
    name = _strategy(op, strategy, geom)
    dt = _dtype(w, dy)
    w, dy = np.ascontiguousarray(w, dtype=dt), np.ascontiguousarray(dy, dtype=dt)
    if name == "reference":
        return conv_backprop_input_ref(xs, w, dy, geom)
    if name == "im2col":
        return _im2col_backprop_input(xs, w, dy, geom, groups, _budget(op, block_bytes))
    xs2 = xs if r == 2 else (xs[0], 1, *xs[1:])
    dx = conv2d_kernels.conv2d_backprop_input(xs2, _as2d(w, r, True), _as2d(dy, r), _lift(geom))
    return _from2d(dx, r)


def conv_backprop_filter(
    x: np.ndarray,
    filter_shape: Sequence[int],
    dy: np.ndarray,
    geom: ConvGeometry,
    strategy: str | None = None,
    op: str = "conv_backprop_filter",
    block_bytes: int | None = None,
) -> np.ndarray:
    """dw, the adjoint of w -> conv(x, w). x: [N, *S, Cin]; filter_shape: [*K, Cin/G, Cout];
    dy: [N, *O, Cout]. Returns filter_shape in np.result_type(x, dy)."""
    r = geom.rank if isinstance(geom, ConvGeometry) else 0
    x, dy = _array(op, "input", x, r), _array(op, "dy", dy, r)
    fs = _sizes(op, "filter_sizes", filter_shape, r)
    groups = _check(op, geom, x.shape, fs, dy.shape)
    name = _strategy(op, strategy, geom)
    dt = _dtype(x, dy)
    x, dy = x.astype(dt, copy=False), np.ascontiguousarray(dy, dtype=dt)
    if name == "reference":
        return conv_backprop_filter_ref(x, fs, dy, geom)
    if name == "im2col":
        return _im2col_backprop_filter(x, fs, dy, geom, groups, _budget(op, block_bytes))
    fs2 = fs if r == 2 else (1, *fs)
    dw = conv2d_kernels.conv2d_backprop_filter(_as2d(x, r), fs2, _as2d(dy, r), _lift(geom))
    return _from2d(dw, r, True)

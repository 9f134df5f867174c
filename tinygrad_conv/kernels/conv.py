"""2-D convolution and its two adjoints on NHWC / HWIO ndarrays: validation, ONE planner, dispatch.

The computation is split into named strategies, one idea per module, all computing the
definition of :mod:`.conv_ref` (the tests run every strategy on the same cases against it):

========================  ======================================================================
``"im2col"``              window matrix (im2col) of the padded input, copied block by block
                          into cache, then one GEMM per block (conv_im2col.py)
``"pointwise"``           1x1, stride 1, unpadded: x itself is the window matrix: one GEMM
``"kmajor"``              few input channels (kw*Cin small, groups 1): channel-major windows
                          whose copies run along image rows (conv_kmajor.py)
``"taps"`` (dx)           dcols = dy @ W^T, then one strided add per tap into dx (col2im)
``"phases"`` (dx)         col2im per stride phase of dx, for a width stride > 1 (conv_phases.py)
``"direct"`` (dx)         stride 1: dx = conv2d(dy padded to "full", rot180(w) in/out swapped),
                          one window copy + one GEMM (small problems)
========================  ======================================================================

:func:`plan` chooses one strategy per op from the geometry, the shapes and the dtype's size,
with the measured thresholds in one immutable :class:`Tuning`. The public kernels take
``plan=`` to run a given :class:`Conv2dPlan` (tests, benchmarks, the profiler); a plan whose
strategy cannot run a problem is refused with a clear error (``applicable`` lists the choices).

Groups (G = Cin // filter_in_channels, as TF infers them) make each product a batched matmul over
G on strided views of the NHWC / HWIO arrays (no transposing copies). The result dtype is
``np.result_type`` of the array inputs (float32 and float64 are first-class).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .blas import single_threaded
from .conv_im2col import (
    backprop_input_blocks,
    im2col_backprop_filter,
    im2col_conv2d,
    pointwise_conv2d,
    taps_backprop_input,
)
from .conv_kmajor import (
    _cm_block_views,
    kmajor_backprop_filter,
    kmajor_backprop_input,
    kmajor_conv2d,
)
from .conv_layout import (
    _fill_windows,
    _filter_matrix,
    _full_geometry,
    _gemm_tn,
    _grouped,
    _plan,
    _window_view,
)
from .conv_phases import phase_backprop_input
from .padding import ConvGeometry, _check_input, _shape4

__all__ = [
    "conv2d",
    "conv2d_backprop_input",
    "conv2d_backprop_filter",
    "conv2d_windows",
    "windows_worth_keeping",
    "Tuning",
    "TUNING",
    "Conv2dPlan",
    "plan",
    "applicable",
]


# ----------------------------------------------------------------------------- tuning and plan
@dataclasses.dataclass(frozen=True)
class Tuning:
    """The planner's measured thresholds (2-core AVX2 VM, benchmarks/README.md). Immutable: a
    different tuning is a different object passed to :func:`plan`, never a patched global.

    Attributes:
        block_bytes: target size of one block of the window matrix (or of dcols): inside L2 + L3
            of a typical x86 core, yet hundreds of rows at least so that each GEMM runs at full
            speed.
        keep_windows_bytes: up to this size a whole window matrix is worth keeping from forward
            for the filter gradient (:func:`windows_worth_keeping`); beyond it, rebuilding it
            block by block in cache is faster. For mid-sized matrices (cases c and d: 58 and
            38 MB) the winner flips with the machine's state by 10-20 %; the smaller memory
            footprint decides: at most 8 MiB per conv held from forward until its backward.
        kmajor_max_run: "kmajor" for forward and filter gradient when kw*Cin is at most this
            (groups 1): the im2col copies gain up to kw*Cin ~ 12 ...
        kmajor_max_run_backprop_input: ... the col2im adds of the input gradient up to ~ 24.
        direct_max_bytes: the stride-1 input gradient runs "direct" up to this many bytes of its
            window matrix: fewer numpy calls than GEMM + kh*kw tap adds, which pays for small
            batches (the digits CNN's conv2: 407 -> 321 us); beyond it the tap adds are as fast
            or faster (case (c): 41 ms with tap adds, 47 ms direct).
        tn_chunk_rows, tn_chunk_min_kn: the filter gradient's GEMM (K, M) @ (M, Og) has the long
            reduction; single-threaded OpenBLAS runs it 1.6-2.5x slower than the same product
            cut into M-chunks of a few hundred rows ((144 x 12544) @ (12544 x 32): 6.0 ms whole,
            3.8 ms in 384-row chunks). With two threads the whole product is faster (2.2 ->
            1.85 ms), so "auto" chunks only on one thread, and only when K*Og >= tn_chunk_min_kn.
    """

    block_bytes: int = 2 << 20
    keep_windows_bytes: int = 8 << 20
    kmajor_max_run: int = 12
    kmajor_max_run_backprop_input: int = 24
    direct_max_bytes: int = 4 << 20
    tn_chunk_rows: int = 384
    tn_chunk_min_kn: int = 1024


#: The default tuning.
TUNING = Tuning()

FORWARD_STRATEGIES = ("pointwise", "kmajor", "im2col")
BACKPROP_INPUT_STRATEGIES = ("pointwise", "kmajor", "direct", "phases", "taps")
BACKPROP_FILTER_STRATEGIES = ("pointwise", "kmajor", "im2col")
FILTER_GEMMS = ("auto", "chunked", "whole")


class Conv2dPlan(NamedTuple):
    """How to compute one problem: a strategy per op, the filter GEMM's chunking, the tuning."""

    forward: str
    backprop_input: str
    backprop_filter: str
    filter_gemm: str  # "auto" (chunk on one BLAS thread), "chunked" or "whole"
    tuning: Tuning


@functools.lru_cache(maxsize=1024)
def applicable(
    geom: ConvGeometry, input_shape: tuple[int, ...], filter_shape: tuple[int, ...]
) -> dict[str, tuple[str, ...]]:
    """The strategies that can compute this problem, per op ("forward", "backprop_input",
    "backprop_filter"), in the order of :data:`FORWARD_STRATEGIES` etc."""
    lp = _plan(geom)
    groups = input_shape[3] // filter_shape[2]
    ok = {"pointwise": lp.pointwise, "kmajor": groups == 1, "im2col": True, "taps": True}
    ok["direct"] = groups == 1 and _full_geometry(geom) is not None
    ok["phases"] = lp.phases is not None
    return {
        "forward": tuple(s for s in FORWARD_STRATEGIES if ok[s]),
        "backprop_input": tuple(s for s in BACKPROP_INPUT_STRATEGIES if ok[s]),
        "backprop_filter": tuple(s for s in BACKPROP_FILTER_STRATEGIES if ok[s]),
    }


@functools.lru_cache(maxsize=1024)
def plan(
    geom: ConvGeometry,
    input_shape: tuple[int, ...],
    filter_shape: tuple[int, ...],
    itemsize: int = 4,
    tuning: Tuning = TUNING,
) -> Conv2dPlan:
    """THE planner: the strategy of each op for input [N,H,W,Cin] and filter [kh,kw,Cg,Cout].

    forward / filter gradient: "pointwise" for 1x1 stride-1 unpadded convs, "kmajor" for few
    input channels (groups 1, kw*Cin <= ``kmajor_max_run``), else "im2col". Input gradient:
    "pointwise"; "kmajor" up to ``kmajor_max_run_backprop_input``; "direct" for stride 1 with
    a window matrix of at most ``direct_max_bytes``; "phases" for a width stride > 1; else
    "taps".
    """
    lp = _plan(geom)
    n, h, w, cin = input_shape
    kh, kw, cg, cout = filter_shape
    groups = cin // cg
    if lp.pointwise:
        return Conv2dPlan("pointwise", "pointwise", "pointwise", "auto", tuning)
    few = groups == 1 and cin * kw <= tuning.kmajor_max_run
    fwd = "kmajor" if few else "im2col"
    limit = max(tuning.kmajor_max_run, tuning.kmajor_max_run_backprop_input)
    if groups == 1 and cin * kw <= limit:
        bpi = "kmajor"
    elif (
        groups == 1
        and _full_geometry(geom) is not None
        and n * h * w * kh * kw * cout * itemsize <= tuning.direct_max_bytes
    ):
        bpi = "direct"
    else:
        bpi = "phases" if lp.phases is not None else "taps"
    return Conv2dPlan(fwd, bpi, fwd, "auto", tuning)


def _resolve(
    op: str,
    which: str,
    given: Conv2dPlan | None,
    geom: ConvGeometry,
    input_shape: tuple[int, ...],
    filter_shape: tuple[int, ...],
    itemsize: int,
) -> Conv2dPlan:
    """The planner's plan, or the given one after checking that it can run this problem."""
    if given is None:
        return plan(geom, input_shape, filter_shape, itemsize)
    if not isinstance(given, Conv2dPlan):
        raise TypeError(f"{op}: plan must be a Conv2dPlan (from conv.plan), got {given!r}")
    choice = getattr(given, which)
    allowed = applicable(geom, input_shape, filter_shape)[which]
    if choice not in allowed:
        raise ValueError(
            f"{op}: strategy {choice!r} cannot compute this problem (input {input_shape}, "
            f"filter {filter_shape}, {geom}); applicable: {allowed}"
        )
    if given.filter_gemm not in FILTER_GEMMS:
        raise ValueError(
            f"{op}: filter_gemm must be one of {FILTER_GEMMS}, got {given.filter_gemm!r}"
        )
    return given


# ----------------------------------------------------------------------------- validation
# Shape checks shared with pool.py live in padding.py: _shape4 (with this module's wording of the
# wrong-length error) and _check_input (convolutions need C >= 1 input channels).
_RANK_ERROR = "must have 4 entries, got {dims}"


def _arr4(op: str, name: str, a: object) -> np.ndarray:
    arr = a if type(a) is np.ndarray else np.asarray(a)
    if arr.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{op}: {name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _check_filter(op: str, name: str, fshape: tuple[int, ...], cin: int, geom: ConvGeometry) -> int:
    """Validate an HWIO filter shape against the input channels; return the number of groups."""
    if fshape[:2] != geom.kernel_hw:
        raise ValueError(
            f"{op}: {name} has shape {tuple(fshape)} (HWIO) but the geometry expects a "
            f"{geom.kernel_hw[0]}x{geom.kernel_hw[1]} kernel"
        )
    cg, cout = fshape[2], fshape[3]
    if cg < 1 or cout < 1 or cin % cg != 0:
        raise ValueError(
            f"{op}: input channels {cin} must be a multiple of the filter's in-channels {cg} "
            f"({name} shape {tuple(fshape)}, HWIO)"
        )
    groups = cin // cg
    if cout % groups != 0:
        raise ValueError(
            f"{op}: filter out-channels {cout} ({name} shape {tuple(fshape)}) must be divisible "
            f"by groups = {cin} // {cg} = {groups}"
        )
    return groups


def _check_dy(op: str, dy_shape: tuple[int, ...], n: int, cout: int, geom: ConvGeometry) -> None:
    if dy_shape != (n, *geom.output_hw, cout):
        raise ValueError(
            f"{op}: dy (out_backprop) has shape {tuple(dy_shape)} but the geometry ({geom}) with "
            f"batch {n} and {cout} output channels needs {(n, *geom.output_hw, cout)}"
        )


def _check_cols(op: str, cols: object, expected: tuple[int, int, int], dt: np.dtype) -> np.ndarray:
    arr = np.asarray(cols)
    if arr.shape != expected:
        raise ValueError(
            f"{op}: cols (precomputed windows) has shape {arr.shape}, expected {expected} "
            "= (groups, N*Ho*Wo, kh*kw*Cin/groups) from conv2d_windows"
        )
    return arr.astype(dt, copy=False)


def _common_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    return a.dtype if a.dtype is b.dtype else np.result_type(a, b)


# ----------------------------------------------------------------------------- public kernels


def conv2d_windows(x: np.ndarray, geom: ConvGeometry, groups: int = 1) -> np.ndarray:
    """The whole window matrix (im2col) of ``x``: shape (groups, N*Ho*Wo, kh*kw*Cin/groups).

    ``cols[g, (n, oh, ow), (i, j, c)] = xpad[n, oh*sh + i*dh, ow*sw + j*dw, g*Cg + c]``.
    Pass it as ``cols=`` to :func:`conv2d` and :func:`conv2d_backprop_filter` to build it once
    for both. (Without ``cols`` they build it block by block in cache, which costs little and
    needs no memory: reuse pays off most for small inputs.) For a 1x1, stride-1, unpadded conv
    with groups=1 it is a view of x when x is C-contiguous. For few input channels (the
    "kmajor" case) it is the transposed view of a (K, M) array: the same matrix in the layout
    that is fastest to build there; BLAS reads either in place.
    """
    op = "conv2d_windows"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 1)
    n, _, _, cin = x.shape
    if (
        not isinstance(groups, numbers.Integral)
        or isinstance(groups, bool)
        or groups < 1
        or cin % groups
    ):
        raise ValueError(f"{op}: groups must be a positive divisor of Cin={cin}, got {groups!r}")
    groups = int(groups)
    lp = _plan(geom)
    ho, wo = geom.output_hw
    kh, kw = geom.kernel_hw
    m, kg = n * ho * wo, kh * kw * (cin // groups)
    if lp.pointwise and groups == 1:
        return x.reshape(1, m, cin)
    if m and groups == 1 and cin * kw <= TUNING.kmajor_max_run:
        # channel-major windows of the whole batch as one block: cols_t[(i, j, c), (n, oh, ow)]
        cols_t = np.empty((kg, m), dtype=x.dtype)
        _, _, _, _, view = next(_cm_block_views(x, geom, lp, ((0, n, 0, ho),)))
        np.copyto(cols_t.reshape(view.shape), view)
        return cols_t.T[None]
    cols = np.empty((groups, m, kg), dtype=x.dtype)
    if not m:
        return cols
    _fill_windows(cols, _window_view(x, geom, lp), groups)
    return cols


def windows_worth_keeping(
    input_shape: Sequence[int], filter_shape: Sequence[int], geom: ConvGeometry, itemsize: int = 4
) -> bool:
    """Whether building :func:`conv2d_windows` once for forward + filter gradient pays off.

    True for small window matrices (up to ``Tuning.keep_windows_bytes``): reusing them saves a
    second im2col and per-call overhead. False for big ones, where the kernels' own
    block-by-block im2col runs in cache and beats writing the whole matrix to memory and reading
    it back. 1x1 stride-1 unpadded convs with groups=1: True (the windows are a view of x).
    """
    n, _, _, cin = (int(v) for v in input_shape)
    kh, kw, cg, _ = (int(v) for v in filter_shape)
    groups = cin // cg if cg else 1
    if _plan(geom).pointwise and groups == 1:
        return True
    ho, wo = geom.output_hw
    return n * ho * wo * kh * kw * cin * itemsize <= TUNING.keep_windows_bytes


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    geom: ConvGeometry,
    cols: np.ndarray | None = None,
    plan: Conv2dPlan | None = None,
) -> np.ndarray:
    """Cross-correlation y = conv2d(x, w), as TF's ``tf.nn.conv2d`` (NHWC, HWIO).

    Args:
        x: input [N, H, W, Cin].
        w: filter [kh, kw, Cin/groups, Cout]; groups = Cin // w.shape[2], as TF infers it.
        geom: the resolved geometry (``padding.conv_geometry``).
        cols: optional window matrix of x from :func:`conv2d_windows` (then no strategy runs:
            one GEMM).
        plan: a :class:`Conv2dPlan` to run instead of the planner's (its ``forward``).

    Returns:
        y [N, Ho, Wo, Cout], y[n,oh,ow,o] = sum_{i,j,c} xpad[n, oh*sh+i*dh, ow*sw+j*dw, c]
        * w[i, j, c, o] with c over o's group; dtype np.result_type(x, w).
    """
    op = "conv2d"
    x, w = _arr4(op, "x", x), _arr4(op, "filter", w)
    _check_input(op, "x", x.shape, geom, 1)
    n, _, _, cin = x.shape
    groups = _check_filter(op, "filter", w.shape, cin, geom)
    dt = _common_dtype(x, w)
    x, w = x.astype(dt, copy=False), np.ascontiguousarray(w, dtype=dt)
    ho, wo = geom.output_hw
    kh, kw, cg, cout = w.shape
    y = np.empty((n, ho, wo, cout), dtype=dt)
    wg = _filter_matrix(w, groups)  # (G, K, Og)
    if cols is not None:
        cols = _check_cols(op, cols, (groups, n * ho * wo, kh * kw * cg), dt)
        np.matmul(cols, wg, out=_grouped(y, groups))
        return y
    p = _resolve(op, "forward", plan, geom, x.shape, w.shape, dt.itemsize)
    _forward_into(p.forward, x, wg, y, geom, groups, p.tuning)
    return y


def _forward_into(
    strategy: str,
    x: np.ndarray,
    wg: np.ndarray,
    y: np.ndarray,
    geom: ConvGeometry,
    groups: int,
    tuning: Tuning,
) -> None:
    """Run a forward strategy into ``y`` (arrays validated and cast)."""
    if strategy == "pointwise":
        pointwise_conv2d(x, wg, y, groups)
    elif strategy == "kmajor":
        kmajor_conv2d(x, wg[0], y, geom, _plan(geom), wg.shape[1], tuning.block_bytes)
    else:
        im2col_conv2d(x, wg, y, geom, _plan(geom), groups, tuning.block_bytes)


def conv2d_backprop_input(
    input_shape: Sequence[int],
    w: np.ndarray,
    dy: np.ndarray,
    geom: ConvGeometry,
    plan: Conv2dPlan | None = None,
) -> np.ndarray:
    """Gradient of conv2d with respect to x: the adjoint of x -> conv2d(x, w).

    Args:
        input_shape: [N, H, W, Cin] of the forward input. Needed because several H give the
            same Ho when the stride leaves a remainder (``ConvGeometry.leftover``).
        w: filter [kh, kw, Cin/groups, Cout].
        dy: gradient of the output [N, Ho, Wo, Cout].
        geom: the forward conv's geometry.
        plan: a :class:`Conv2dPlan` to run instead of the planner's (its ``backprop_input``).

    Returns:
        dx [N, H, W, Cin], dtype np.result_type(w, dy). Padding and never-read leftover rows
        receive exactly zero (taps are clipped to the real input).
    """
    op = "conv2d_backprop_input"
    n, h, wd, cin = _shape4(op, "input_sizes", input_shape, _RANK_ERROR)
    _check_input(op, "input_sizes", (n, h, wd, cin), geom, 1)
    w, dy = _arr4(op, "filter", w), _arr4(op, "dy", dy)
    groups = _check_filter(op, "filter", w.shape, cin, geom)
    kh, kw, cg, cout = w.shape
    _check_dy(op, dy.shape, n, cout, geom)
    dt = _common_dtype(w, dy)
    w, dy = np.ascontiguousarray(w, dtype=dt), dy.astype(dt, copy=False)
    p = _resolve(op, "backprop_input", plan, geom, (n, h, wd, cin), w.shape, dt.itemsize)
    og, taps = cout // groups, kh * kw
    dx = np.empty((n, h, wd, cin), dtype=dt)
    lp, budget, strategy = _plan(geom), p.tuning.block_bytes, p.backprop_input
    if strategy == "kmajor":
        kmajor_backprop_input(w.reshape(taps * cin, cout), dy, dx, geom, lp, budget)
        return dx
    if strategy == "direct":
        # stride 1: dx = conv2d(dy padded to "full", rot180(w) with in/out swapped). One window
        # copy and one GEMM straight into dx, instead of a GEMM and kh*kw tap adds
        full = _full_geometry(geom)
        w_rot = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(1, -1, cin)
        inner = plan_for(full, dy.shape, (kh, kw, cout, cin), dt.itemsize, p.tuning)
        _forward_into(inner.forward, dy, w_rot, dx, full, 1, p.tuning)
        return dx
    # wt[t, g] = w[i, j, :, g*Og:(g+1)*Og]^T, (Og, Cg): a transposed view BLAS reads in place
    wt = w.reshape(taps, cg, groups, og).transpose(0, 2, 3, 1)
    if strategy == "pointwise":  # dx = dy @ W^T, one GEMM per group, straight into dx
        np.matmul(_grouped(dy, groups), wt[0], out=_grouped(dx, groups))
        return dx
    blocks, tap_blocks = backprop_input_blocks(dy, wt, dx, geom, groups, budget)
    if strategy == "phases":
        phase_backprop_input(tap_blocks, dx, geom, lp, blocks)
    else:
        taps_backprop_input(tap_blocks, dx, geom, lp, blocks)
    return dx


def plan_for(
    geom: ConvGeometry,
    input_shape: tuple[int, ...],
    filter_shape: tuple[int, ...],
    itemsize: int,
    tuning: Tuning,
) -> Conv2dPlan:
    """:func:`plan` under another name, for the "direct" input gradient's inner conv (the public
    functions' ``plan`` argument shadows the planner inside them)."""
    return plan(geom, tuple(input_shape), tuple(filter_shape), itemsize, tuning)


def conv2d_backprop_filter(
    x: np.ndarray,
    filter_shape: Sequence[int],
    dy: np.ndarray,
    geom: ConvGeometry,
    cols: np.ndarray | None = None,
    plan: Conv2dPlan | None = None,
) -> np.ndarray:
    """Gradient of conv2d with respect to w: the adjoint of w -> conv2d(x, w).

    Args:
        x: forward input [N, H, W, Cin].
        filter_shape: [kh, kw, Cin/groups, Cout].
        dy: gradient of the output [N, Ho, Wo, Cout].
        geom: the forward conv's geometry.
        cols: optional window matrix of x from :func:`conv2d_windows` (e.g. kept from forward).
        plan: a :class:`Conv2dPlan` to run instead of the planner's (its ``backprop_filter``
            and ``filter_gemm``).

    Returns:
        dw [kh, kw, Cin/groups, Cout] = cols^T @ dy per group, i.e. the sum over all N*Ho*Wo
        output pixels of (window of x) outer (dy); dtype np.result_type(x, dy).
    """
    op = "conv2d_backprop_filter"
    x, dy = _arr4(op, "x", x), _arr4(op, "dy", dy)
    _check_input(op, "x", x.shape, geom, 1)
    n, _, _, cin = x.shape
    fshape = _shape4(op, "filter_sizes", filter_shape, _RANK_ERROR)
    groups = _check_filter(op, "filter_sizes", fshape, cin, geom)
    kh, kw, cg, cout = fshape
    _check_dy(op, dy.shape, n, cout, geom)
    dt = _common_dtype(x, dy)
    x, dy = x.astype(dt, copy=False), dy.astype(dt, copy=False)
    ho, wo = geom.output_hw
    kg = kh * kw * cg
    p = _resolve(op, "backprop_filter", plan, geom, x.shape, fshape, dt.itemsize)
    t = p.tuning
    chunk = p.filter_gemm == "chunked" or (p.filter_gemm == "auto" and single_threaded())
    dw = np.zeros((kh, kw, cg, cout), dtype=dt)
    dwg = _filter_matrix(dw, groups)  # (G, K, Og) view of dw
    # chunk the long reduction only for products with a large enough K*Og
    rows = t.tn_chunk_rows if chunk and kg * (cout // groups) >= t.tn_chunk_min_kn else None
    if cols is not None:
        cols = _check_cols(op, cols, (groups, n * ho * wo, kg), dt)
        _gemm_tn(cols, _grouped(dy, groups), dwg, None, rows)
    elif p.backprop_filter == "pointwise":
        _gemm_tn(_grouped(x, groups), _grouped(dy, groups), dwg, None, rows)
    elif p.backprop_filter == "kmajor":
        kmajor_backprop_filter(x, dy, dwg[0], geom, _plan(geom), kg, t.block_bytes)
    else:
        im2col_backprop_filter(x, dy, dwg, geom, _plan(geom), groups, t.block_bytes, rows)
    return dw

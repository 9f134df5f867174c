"""2-D convolution and its two adjoints on NHWC / HWIO ndarrays.

All three are built on the same window matrix (im2col) of the zero-padded input xpad:

    cols[(n, oh, ow), (i, j, c)] = xpad[n, oh*sh + i*dh, ow*sw + j*dw, c]     shape (M, K)

with M = N*Ho*Wo, K = kh*kw*Cin. It is read through ONE strided view of xpad (stride and dilation
are just the view's strides) and copied once into a contiguous matrix. With W = w as (K, Cout):

    conv2d:                  y = cols @ W           (M, Cout) is y in NHWC: no transposing copy
    conv2d_backprop_filter:  dW = cols^T @ dy       (the adjoint of w -> y)
    conv2d_backprop_input:   dcols = dy @ W^T, then each tap's block of dcols is added into the
                             strided slice of dx it was read from: the adjoint of "take the
                             window view" (col2im), as a loop over the kh*kw taps. With a
                             width stride > 1 the taps are added per stride phase of dx
                             instead (contiguous buffers, see ``_phase_backprop_input``).
                             Small stride-1 cases run as the seed identity itself: a conv2d
                             of dy padded to "full" with rot180(w), in/out swapped
                             (``_full_geometry``): one window copy and one GEMM.

Groups (G = Cin // filter_in_channels, as TF infers them) make each product a batched matmul over
G: group g reads input channels [g*Cg, (g+1)*Cg) and writes outputs [g*Og, (g+1)*Og). The batched
operands are strided views of the NHWC / HWIO arrays that BLAS reads and writes in place, so
groups cost no transposing copies either.

Cache blocking: the window matrix is kh*kw times the input (58 MB for a float32 batch of 64
28x28x32 images and a 3x3 kernel). Built whole, its copy and the GEMM that reads it back both run
at DRAM speed. So the kernels walk the batch in blocks of whole images (or in bands of output
rows, for one huge image) whose window matrix is about ``_BLOCK_BYTES``: each block's im2col copy
lands in cache and its GEMM reads it from there. Small problems are a single block. This is
tiling, not a per-item loop: a batch of 64 28x28 images is a few dozen GEMMs of >= 1500 rows.
The forward pass's whole window matrix is kept for the filter gradient only up to
``_KEEP_WINDOWS_BYTES`` (``windows_worth_keeping``).

Few input channels (kw*Cin small: RGB / grey first layers) use a channel-major variant of the
same scheme, see ``_kmajor``. 1x1 stride-1 unpadded convs are plain GEMMs on x itself.

The result dtype is ``np.result_type`` of the array inputs (float32 and float64 are first-class).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .blas import single_threaded
from .padding import ConvGeometry, _check_input, _shape4, axis_taps

__all__ = [
    "conv2d",
    "conv2d_backprop_input",
    "conv2d_backprop_filter",
    "conv2d_windows",
    "windows_worth_keeping",
]

# Target size of one block of the window matrix (or of dcols): inside L2 + L3 of a typical x86
# core, yet large enough (hundreds of rows at least) that each GEMM still runs at full speed.
_BLOCK_BYTES = 2 << 20
# Up to this size a whole window matrix is worth keeping from forward for the filter gradient
# (see windows_worth_keeping); beyond it, rebuilding it block by block in cache is faster.
# Which is faster for mid-sized matrices (cases c and d of benchmarks/README.md: 58 and 38 MB)
# flips with the machine's state, by 10-20 % either way (benchmarks/README.md); with no clear
# winner the smaller memory footprint decides: at most 8 MiB per conv held from forward until
# its backward.
_KEEP_WINDOWS_BYTES = 8 << 20


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


# ----------------------------------------------------------------------------- per-geometry plan


class _Plan(NamedTuple):
    """Constants derived once per distinct geometry (see ``_plan``)."""

    pad_lo: tuple[int, int]  # (top, left)
    pad_hi: tuple[int, int]  # (bottom, right) minus the never-read leftover, clipped at 0
    padded: bool
    pointwise: bool  # 1x1, stride 1, unpadded: x itself is the window matrix
    steps: tuple[int, int, int, int]  # (sh, sw, dh, dw): the window view's step multipliers
    taps_w: tuple[tuple[slice, slice] | None, ...]  # axis_taps along W for all output columns
    taps_h: tuple[tuple[slice, slice] | None, ...]  # axis_taps along H for all output rows
    cover: tuple | None  # a tap reading every input pixel, see _covering_tap
    phases: _PhasePlan | None  # input gradient by stride phases (width stride > 1), else None


class _PhasePlan(NamedTuple):
    """Per-geometry constants of ``_phase_backprop_input``."""

    taps_h: tuple  # _axis_phases along H for all output rows
    taps_w: tuple  # _axis_phases along W for all output columns
    live: tuple[tuple[int, int], ...]  # phases (p, q) that some tap reaches; the rest get zeros
    shapes: tuple[tuple[int, int], ...]  # per live phase: its (rows, cols) in dx
    first: tuple[tuple[int, int] | None, ...]  # per live phase: a tap (i, j) covering all of it


def _phase_plan(geom: ConvGeometry, top: int, left: int) -> _PhasePlan:
    (h, w), (kh, kw), (ho, wo) = geom.input_hw, geom.kernel_hw, geom.output_hw
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    taps_h = _axis_phases(h, kh, sh, dh, top, 0, ho)
    taps_w = _axis_phases(w, kw, sw, dw, left, 0, wo)
    cover_h: dict[int, int] = {}
    cover_w: dict[int, int] = {}
    for taps, cover in ((taps_h, cover_h), (taps_w, cover_w)):
        for t, tap in enumerate(taps):
            if tap is not None and tap[3]:
                cover.setdefault(tap[1], t)
    ps = sorted({tap[1] for tap in taps_h if tap is not None})
    qs = sorted({tap[1] for tap in taps_w if tap is not None})
    live = tuple((p, q) for p in ps for q in qs)
    return _PhasePlan(
        taps_h,
        taps_w,
        live,
        tuple((len(range(p, h, sh)), len(range(q, w, sw))) for p, q in live),
        tuple((cover_h[p], cover_w[q]) if p in cover_h and q in cover_w else None for p, q in live),
    )


@functools.lru_cache(maxsize=1024)
def _plan(geom: ConvGeometry) -> _Plan:
    (top, bottom), (left, right) = geom.pads
    rh, rw = geom.leftover
    # The last r = leftover padded rows are never read, so they need not exist. (If r exceeds
    # the pad, real rows at the end go unread too; the view just never reaches them.)
    bottom, right = max(bottom - rh, 0), max(right - rw, 0)
    pointwise = (
        geom.kernel_hw == (1, 1) and geom.strides == (1, 1) and geom.pads == ((0, 0), (0, 0))
    )
    (h, w), (kh, kw), (ho, wo) = geom.input_hw, geom.kernel_hw, geom.output_hw
    taps_w = axis_taps(w, kw, geom.strides[1], geom.dilations[1], left, 0, wo)
    taps_h = axis_taps(h, kh, geom.strides[0], geom.dilations[0], top, 0, ho)
    return _Plan(
        (top, left),
        (bottom, right),
        bool(top or bottom or left or right),
        pointwise,
        (*geom.strides, *geom.dilations),
        taps_w,
        taps_h,
        _covering_tap(taps_h, taps_w, h, w),
        _phase_plan(geom, top, left) if geom.strides[1] > 1 else None,
    )


@functools.lru_cache(maxsize=4096)
def _axis_phases(
    size: int, k: int, s: int, d: int, pad_lo: int, o_lo: int, o_hi: int
) -> tuple[tuple[slice, int, slice, bool] | None, ...]:
    """``axis_taps`` regrouped by stride phase, for the input gradient (see _phase_backprop_input).

    Input index x = a*s + p belongs to phase p in [0, s) at phase index a. A tap reads inputs
    o*s + t*d - pad_lo for consecutive o, i.e. ONE phase p = (t*d - pad_lo) mod s at consecutive
    phase indices a0, a0+1, ...: a unit-stride slice of that phase. Per tap: None (reads only
    padding) or ``(out, p, dst, full)`` with ``out`` the tap's output slice (relative to o_lo),
    ``dst`` its slice of phase p, and ``full`` whether it covers all len(range(p, size, s)) inputs
    of phase p.
    """
    res: list[tuple[slice, int, slice, bool] | None] = []
    for tap in axis_taps(size, k, s, d, pad_lo, o_lo, o_hi):
        if tap is None:
            res.append(None)
            continue
        out, src = tap
        a0, p = divmod(src.start, s)
        na = out.stop - out.start
        res.append((out, p, slice(a0, a0 + na), na == len(range(p, size, s))))
    return tuple(res)


@functools.lru_cache(maxsize=1024)
def _blocks(n: int, ho: int, row_bytes: int, budget: int) -> tuple[tuple[int, int, int, int], ...]:
    """Cover (images [0, n)) x (output rows [0, ho)) with blocks (n0, n1, r0, r1) of about
    ``budget`` bytes (_BLOCK_BYTES), ``row_bytes`` being the block-matrix bytes per output row.

    Either several whole images per block or, when one image alone is over budget, one image
    at a time in bands of output rows. Either way a block is a contiguous range of rows of the
    (M, K) window matrix and of y's (M, Cout) view.
    """
    img_bytes = max(ho * row_bytes, 1)
    if img_bytes <= budget:
        nb = max(1, budget // img_bytes)
        return tuple((n0, min(n, n0 + nb), 0, ho) for n0 in range(0, n, nb))
    hb = max(1, budget // max(row_bytes, 1))
    return tuple((n0, n0 + 1, r0, min(ho, r0 + hb)) for n0 in range(n) for r0 in range(0, ho, hb))


@functools.lru_cache(maxsize=1024)
def _block_rows(n: int, ho: int, row_bytes: int, budget: int) -> int:
    """Most output rows (n1-n0)*(r1-r0) in any block: sizes the one reusable block buffer."""
    return max(
        ((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in _blocks(n, ho, row_bytes, budget)),
        default=0,
    )


# ----------------------------------------------------------------------------- strided views


def _strided_windows(xp: np.ndarray, geom: ConvGeometry, plan: _Plan) -> np.ndarray:
    """view[n, oh, ow, i, j, c] = xp[n, oh*sh + i*dh, ow*sw + j*dw, c]: (N, Ho, Wo, kh, kw, C)
    over an already padded xp. No data is copied; do not write to the view."""
    (ho, wo), (kh, kw) = geom.output_hw, geom.kernel_hw
    sh, sw, dh, dw = plan.steps
    s0, s1, s2, s3 = xp.strides
    shape = (xp.shape[0], ho, wo, kh, kw, xp.shape[3])
    strides = (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3)
    if xp.flags.c_contiguous and xp.size:
        return np.ndarray(shape, xp.dtype, xp, 0, strides)  # = as_strided, 10x less overhead
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def _window_view(x: np.ndarray, geom: ConvGeometry, plan: _Plan) -> np.ndarray:
    """Window view (N, Ho, Wo, kh, kw, C) of the zero-padded x; only the padding is copied."""
    if not plan.padded:
        return _strided_windows(x, geom, plan)
    n, h, w, c = x.shape
    (top, left), (bottom, right) = plan.pad_lo, plan.pad_hi
    xp = np.zeros((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    xp[:, top : top + h, left : left + w, :] = x
    return _strided_windows(xp, geom, plan)


def _block_views(
    x: np.ndarray, geom: ConvGeometry, plan: _Plan, blocks: tuple[tuple[int, int, int, int], ...]
) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
    """Yield (n0, n1, r0, r1, window view of that block).

    With padding, each block's images are copied into ONE reused buffer whose zero border is
    written once; an image split into row bands is padded once for all its bands.
    """
    n, h, w, c = x.shape
    ho = geom.output_hw[0]
    if plan.padded:
        (top, left), (bottom, right) = plan.pad_lo, plan.pad_hi
        nb_max = max((n1 - n0 for n0, n1, _, _ in blocks), default=0)
        xp_buf = np.zeros((nb_max, top + h + bottom, left + w + right, c), dtype=x.dtype)
    current, view = (-1, -1), None
    for n0, n1, r0, r1 in blocks:
        if (n0, n1) != current:
            if plan.padded:
                xp = xp_buf[: n1 - n0]
                xp[:, top : top + h, left : left + w, :] = x[n0:n1]
            else:
                xp = x[n0:n1]
            view, current = _strided_windows(xp, geom, plan), (n0, n1)
        yield n0, n1, r0, r1, (view if r1 - r0 == ho else view[:, r0:r1])


def _fill_windows(out: np.ndarray, view: np.ndarray, groups: int) -> None:
    """Copy a window view (nb, hb, Wo, kh, kw, Cin) into out (G, nb*hb*Wo, kh*kw*Cg)."""
    if groups == 1:
        np.copyto(out.reshape(view.shape), view)
        return
    nb, hb, wo, kh, kw, cin = view.shape
    cg = cin // groups
    src = view.reshape(nb, hb, wo, kh, kw, groups, cg).transpose(5, 0, 1, 2, 3, 4, 6)
    np.copyto(out.reshape(groups, nb, hb, wo, kh, kw, cg), src)


def _block_windows(buf: np.ndarray, view: np.ndarray, groups: int, kg: int) -> np.ndarray:
    """Window matrix of one block, (G, mb, Kg), copied into ``buf``."""
    cols = buf[: view.size].reshape(groups, -1, kg)
    _fill_windows(cols, view, groups)
    return cols


# ----------------------------------------------------------------------------- few input channels
# With Cin*kw small (RGB or grey first layers) every (i, c) run of the NHWC window matrix is
# only kw*Cin elements long, and numpy's per-run overhead dominates the im2col copy and the
# col2im adds (a 7x7 stride-2 conv on 224x224x3 spends 3/4 of its time there). So for those
# convs the kernels work channel-major: the block is copied once to (Cin, nb, Hp, Wp) and the
# window matrix is built transposed, cols_t[(i, j, c), (n, oh, ow)], whose runs are whole
# output rows (Wo elements). K = (i, j, c) matches w.reshape(K, Cout), so every product is
# still ONE GEMM per block (BLAS reads cols_t^T in place), and dcols_t = W @ dy^T comes out
# per tap as a contiguous (Cin, nb, hb, Wo) block for the adds.

# Use the channel-major layout when kw*Cin is at most this (and groups == 1); measured on a
# 2-core AVX2 box: the col2im adds gain up to kw*Cin ~ 24, the im2col copies only up to ~12.
_KMAJOR_MAX_RUN = 12
_KMAJOR_MAX_RUN_BACKPROP_INPUT = 24


def _kmajor(cin: int, kw: int, groups: int, limit: int | None = None) -> bool:
    return groups == 1 and cin * kw <= (_KMAJOR_MAX_RUN if limit is None else limit)


def _cm_block_views(
    x: np.ndarray, geom: ConvGeometry, plan: _Plan, blocks: tuple[tuple[int, int, int, int], ...]
) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
    """Yield (n0, n1, r0, r1, view) with view (kh, kw, Cin, nb, hb, Wo) of the block's windows,
    view[i, j, c, n, oh, ow] = xpad[n0 + n, (r0 + oh)*sh + i*dh, ow*sw + j*dw, c], over one
    reused channel-major zero-bordered buffer (each image group transposed into it once)."""
    n, h, w, c = x.shape
    (top, left), (bottom, right) = plan.pad_lo, plan.pad_hi
    wo, (kh, kw) = geom.output_hw[1], geom.kernel_hw
    sh, sw, dh, dw = plan.steps
    nb_max = max((n1 - n0 for n0, n1, _, _ in blocks), default=0)
    xc = np.zeros((c, nb_max, top + h + bottom, left + w + right), dtype=x.dtype)
    s0, s1, s2, s3 = xc.strides
    current = (-1, -1)
    for n0, n1, r0, r1 in blocks:
        if (n0, n1) != current:
            xc[:, : n1 - n0, top : top + h, left : left + w] = x[n0:n1].transpose(3, 0, 1, 2)
            current = (n0, n1)
        view = np.ndarray(
            (kh, kw, c, n1 - n0, r1 - r0, wo),
            xc.dtype,
            xc,
            r0 * sh * s2,
            (s2 * dh, s3 * dw, s0, s1, s2 * sh, s3 * sw),
        )
        yield n0, n1, r0, r1, view


def _kmajor_conv2d(x, wm, y, geom, plan, kg):
    """conv2d for few input channels: y_block = cols_t^T @ W per block."""
    n, cout = x.shape[0], wm.shape[1]
    ho, wo = geom.output_hw
    row_bytes = wo * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * kg, dtype=x.dtype)
    for n0, n1, r0, r1, view in _cm_block_views(x, geom, plan, blocks):
        cols_t = buf[: view.size].reshape(kg, -1)
        np.copyto(cols_t.reshape(view.shape), view)
        np.matmul(cols_t.T, wm, out=y[n0:n1, r0:r1].reshape(-1, cout))


def _kmajor_backprop_filter(x, dy, dwm, geom, plan, kg):
    """dW = sum over blocks of cols_t @ dy_block (K, mb) @ (mb, Cout)."""
    n, cout = x.shape[0], dwm.shape[1]
    ho, wo = geom.output_hw
    row_bytes = wo * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * kg, dtype=x.dtype)
    part = np.empty_like(dwm)
    for k, (n0, n1, r0, r1, view) in enumerate(_cm_block_views(x, geom, plan, blocks)):
        cols_t = buf[: view.size].reshape(kg, -1)
        np.copyto(cols_t.reshape(view.shape), view)
        np.matmul(cols_t, dy[n0:n1, r0:r1].reshape(-1, cout), out=part if k else dwm)
        if k:
            dwm += part


def _kmajor_backprop_input(wm, dy, dx, geom, plan):
    """dcols_t = W @ dy_block^T, then per tap one add of its (Cin, nb, hb, Wo) block into a
    channel-major accumulator whose inner loops run along image rows; each finished image
    group is transposed into dx once.

    With a width stride > 1 the accumulator is split into the stride phases of dx (as in
    ``_phase_backprop_input``): tap (i, j) then adds into ONE phase buffer at unit stride,
    instead of into every sw-th element of the rows (measured on case (e), 7x7 stride 2 on
    224x224x3: the 49 tap adds took 3.6 ms strided).
    """
    n, h, wd, cin = dx.shape
    (ho, wo), (kh, kw) = geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, _), (top, _) = geom.strides, geom.dilations, plan.pad_lo
    kg, cout = wm.shape
    row_bytes = wo * kg * dx.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * kg, dtype=dx.dtype)
    nb_max = max((n1 - n0 for n0, n1, _, _ in blocks), default=0)
    pp = plan.phases
    if pp is None:  # one accumulator, the "phase" (0, 0) of a stride of 1
        shapes, phase_of = ((h, wd),), {(0, 0): 0}
    else:
        shapes, phase_of = pp.shapes, {pq: k for k, pq in enumerate(pp.live)}
    pbuf = np.empty(cin * nb_max * sum(r * c for r, c in shapes), dtype=dx.dtype)
    accs: list[np.ndarray] = []
    for n0, n1, r0, r1 in blocks:
        nb, hb = n1 - n0, r1 - r0
        if r0 == 0:  # a new image group: zeroed accumulators (one per phase)
            accs, off = [], 0
            for rows, cols in shapes:
                accs.append(pbuf[off : off + cin * nb * rows * cols].reshape(cin, nb, rows, cols))
                accs[-1].fill(0)
                off += cin * nb * rows * cols
        dcols_t = buf[: kg * nb * hb * wo].reshape(kg, -1)
        # (mb, Cout) @ (Cout, K) written through the transposed view: OpenBLAS is faster in
        # this orientation than computing W @ dy^T directly
        np.matmul(dy[n0:n1, r0:r1].reshape(-1, cout), wm.T, out=dcols_t.T)
        taps = dcols_t.reshape(kh, kw, cin, nb, hb, wo)
        if pp is None:
            taps_h = plan.taps_h if hb == ho else axis_taps(h, kh, sh, dh, top, r0, r1)
            # (out, dst) per tap, all into phase 0
            rows_t = [None if t is None else (t[0], 0, t[1]) for t in taps_h]
            cols_t = [None if t is None else (t[0], 0, t[1]) for t in plan.taps_w]
        else:
            taps_h = pp.taps_h if hb == ho else _axis_phases(h, kh, sh, dh, top, r0, r1)
            rows_t = [None if t is None else t[:3] for t in taps_h]
            cols_t = [None if t is None else t[:3] for t in pp.taps_w]
        for i, th in enumerate(rows_t):
            if th is None:
                continue
            out_h, p, dst_h = th
            for j, tw in enumerate(cols_t):
                if tw is None:
                    continue
                out_w, q, dst_w = tw
                accs[phase_of[p, q]][:, :, dst_h, dst_w] += taps[i, j][:, :, out_h, out_w]
        if r1 == ho:  # image group complete: transpose each phase into its place in dx
            if pp is None:
                dx[n0:n1] = accs[0].transpose(1, 2, 3, 0)
                continue
            for p in range(sh):
                for q in range(sw):
                    k = phase_of.get((p, q))
                    dx[n0:n1, p::sh, q::sw] = 0 if k is None else accs[k].transpose(1, 2, 3, 0)


# The filter gradient is a GEMM whose inner (reduction) dimension is the long one: (K, M) @ (M, Og)
# with M = N*Ho*Wo rows. Single-threaded OpenBLAS runs that 1.6-2.5x slower than the same product
# cut into M-chunks of a few hundred rows whose results are added up (measured, float32, 2-core
# AVX2: (144 x 12544) @ (12544 x 32) 6.0 ms whole, 3.8 ms in 384-row chunks; (288 x 50176) @
# (50176 x 64) 135 ms against 54 ms). With two threads it is the other way round: OpenBLAS splits
# the whole product better than the chunks (2.2 -> 1.85 ms and, for the digits CNN's conv2,
# (144 x 1024) @ (1024 x 32), 150 -> 125 us; bigger products tie), so chunks are only for one
# thread. Products with a small K*Og gain nothing from the chunks.
_TN_CHUNK_ROWS = 384
_TN_CHUNK_MIN_KN = 1024


def _gemm_tn(a: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: np.ndarray | None) -> None:
    """out = a^T @ b batched over groups: a (G, M, K), b (G, M, Og), out (G, K, Og).

    Chunked along M when BLAS runs on one thread (see _TN_CHUNK_ROWS); ``scratch`` is an
    out-shaped buffer for the chunks' partial products (allocated here when None).
    """
    m = a.shape[1]
    if (
        m <= 2 * _TN_CHUNK_ROWS
        or a.shape[2] * b.shape[2] < _TN_CHUNK_MIN_KN
        or not single_threaded()
    ):
        np.matmul(a.transpose(0, 2, 1), b, out=out)
        return
    part = np.empty_like(out) if scratch is None else scratch
    for r0 in range(0, m, _TN_CHUNK_ROWS):
        r1 = min(m, r0 + _TN_CHUNK_ROWS)
        np.matmul(a[:, r0:r1].transpose(0, 2, 1), b[:, r0:r1], out=out if r0 == 0 else part)
        if r0:
            out += part


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(..., G*C) array -> (G, prod(...), C) view (a copy only if a is not contiguous enough).

    Each (prod(...), C) matrix has unit column stride, so BLAS reads and writes it in place.
    Callers pass ``out=`` arrays only from contiguous regions, so those are always views.
    """
    c = a.shape[-1]
    return a.reshape(a.size // c, groups, c // groups).transpose(1, 0, 2)


def _filter_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """HWIO (kh, kw, Cg, G*Og) -> (G, kh*kw*Cg, Og) view: group g's (K, Og) matrix."""
    kh, kw, cg, cout = w.shape
    return w.reshape(kh * kw * cg, groups, cout // groups).transpose(1, 0, 2)


# ----------------------------------------------------------------------------- public kernels


def conv2d_windows(x: np.ndarray, geom: ConvGeometry, groups: int = 1) -> np.ndarray:
    """The whole window matrix (im2col) of ``x``: shape (groups, N*Ho*Wo, kh*kw*Cin/groups).

    ``cols[g, (n, oh, ow), (i, j, c)] = xpad[n, oh*sh + i*dh, ow*sw + j*dw, g*Cg + c]``.
    Pass it as ``cols=`` to :func:`conv2d` and :func:`conv2d_backprop_filter` to build it once
    for both. (Without ``cols`` they build it block by block in cache, which costs little and
    needs no memory: reuse pays off most for small inputs.) For a 1x1, stride-1, unpadded conv
    with groups=1 it is a view of x when x is C-contiguous. For few input channels (the
    channel-major case, see ``_kmajor``) it is the transposed view of a (K, M) array: the same
    matrix in the layout that is fastest to build there; BLAS reads either in place.
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
    plan = _plan(geom)
    ho, wo = geom.output_hw
    kh, kw = geom.kernel_hw
    m, kg = n * ho * wo, kh * kw * (cin // groups)
    if plan.pointwise and groups == 1:
        return x.reshape(1, m, cin)
    if m and _kmajor(cin, kw, groups):
        # channel-major windows of the whole batch as one block: cols_t[(i, j, c), (n, oh, ow)]
        cols_t = np.empty((kg, m), dtype=x.dtype)
        _, _, _, _, view = next(_cm_block_views(x, geom, plan, ((0, n, 0, ho),)))
        np.copyto(cols_t.reshape(view.shape), view)
        return cols_t.T[None]
    cols = np.empty((groups, m, kg), dtype=x.dtype)
    if not m:
        return cols
    _fill_windows(cols, _window_view(x, geom, plan), groups)
    return cols


def windows_worth_keeping(
    input_shape: Sequence[int], filter_shape: Sequence[int], geom: ConvGeometry, itemsize: int = 4
) -> bool:
    """Whether building :func:`conv2d_windows` once for forward + filter gradient pays off.

    True for small window matrices (up to ``_KEEP_WINDOWS_BYTES``): reusing them saves a second
    im2col and per-call overhead. False for big ones, where the kernels' own block-by-block
    im2col runs in cache and beats writing the whole matrix to memory and reading it back.
    1x1 stride-1 unpadded convs with groups=1: True (the windows are a view of x, free).
    """
    n, _, _, cin = (int(v) for v in input_shape)
    kh, kw, cg, _ = (int(v) for v in filter_shape)
    groups = cin // cg if cg else 1
    if _plan(geom).pointwise and groups == 1:
        return True
    ho, wo = geom.output_hw
    return n * ho * wo * kh * kw * cin * itemsize <= _KEEP_WINDOWS_BYTES


def conv2d(
    x: np.ndarray, w: np.ndarray, geom: ConvGeometry, cols: np.ndarray | None = None
) -> np.ndarray:
    """Cross-correlation y = conv2d(x, w), as TF's ``tf.nn.conv2d`` (NHWC, HWIO).

    Args:
        x: input [N, H, W, Cin].
        w: filter [kh, kw, Cin/groups, Cout]; groups = Cin // w.shape[2], as TF infers it.
        geom: the resolved geometry (``padding.conv_geometry``).
        cols: optional window matrix of x from :func:`conv2d_windows`.

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
    plan = _plan(geom)
    ho, wo = geom.output_hw
    kh, kw, cg, cout = w.shape
    kg = kh * kw * cg
    y = np.empty((n, ho, wo, cout), dtype=dt)
    wg = _filter_matrix(w, groups)  # (G, K, Og)
    if cols is not None:
        cols = _check_cols(op, cols, (groups, n * ho * wo, kg), dt)

    _conv2d_into(x, wg, y, geom, plan, groups, cols)
    return y


def _conv2d_into(
    x: np.ndarray,
    wg: np.ndarray,
    y: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    groups: int,
    cols: np.ndarray | None,
) -> None:
    """conv2d of ``x`` into ``y``, after the public function validated and cast the arrays."""
    if cols is not None:
        np.matmul(cols, wg, out=_grouped(y, groups))
        return
    if plan.pointwise:  # 1x1 stride 1 unpadded: one plain GEMM (M, Cin) @ (Cin, Cout)
        np.matmul(_grouped(x, groups), wg, out=_grouped(y, groups))
        return
    n, cin = x.shape[0], x.shape[3]
    kg = wg.shape[1]
    if _kmajor(cin, geom.kernel_hw[1], groups):
        _kmajor_conv2d(x, wg[0], y, geom, plan, kg)
        return
    ho, wo = geom.output_hw
    row_bytes = wo * groups * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * groups * kg, dtype=x.dtype)
    for n0, n1, r0, r1, view in _block_views(x, geom, plan, blocks):
        cols_b = _block_windows(buf, view, groups, kg)  # the block's one im2col copy, in cache
        # ONE GEMM per block, written straight into y's NHWC rows [n0:n1, r0:r1]
        np.matmul(cols_b, wg, out=_grouped(y[n0:n1, r0:r1], groups))


def conv2d_backprop_input(
    input_shape: Sequence[int], w: np.ndarray, dy: np.ndarray, geom: ConvGeometry
) -> np.ndarray:
    """Gradient of conv2d with respect to x: the adjoint of x -> conv2d(x, w).

    Args:
        input_shape: [N, H, W, Cin] of the forward input. Needed because several H give the
            same Ho when the stride leaves a remainder (``ConvGeometry.leftover``).
        w: filter [kh, kw, Cin/groups, Cout].
        dy: gradient of the output [N, Ho, Wo, Cout].
        geom: the forward conv's geometry.

    Returns:
        dx [N, H, W, Cin], dtype np.result_type(w, dy). dcols = dy @ W^T per group, computed in
        tap-major layout (kh*kw, M, Cin) so that each tap's block is a contiguous NHWC array;
        the block is added into the strided slice of dx that the tap read (for a width stride
        > 1: into a contiguous buffer per stride phase of dx, see ``_phase_backprop_input``).
        Taps are clipped to the real input (the crop of the padded gradient, without a padded
        buffer): padding and never-read leftover rows receive exactly zero.
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
    og, taps = cout // groups, kh * kw
    # wt[t, g] = w[i, j, :, g*Og:(g+1)*Og]^T, (Og, Cg): a transposed view BLAS reads in place
    wt = w.reshape(taps, cg, groups, og).transpose(0, 2, 3, 1)
    dx = np.empty((n, h, wd, cin), dtype=dt)
    _backprop_input_into(w, wt, dy, dx, geom, _plan(geom), groups)
    return dx


def _backprop_input_into(
    w: np.ndarray,
    wt: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    groups: int,
) -> None:
    """conv2d_backprop_input into all of ``dx``, after the public function validated the arrays."""
    n, h, _, cin = dx.shape
    kh, kw, _, cout = w.shape
    ho, wo = geom.output_hw
    taps = kh * kw
    if plan.pointwise:  # dx = dy @ W^T, one GEMM per group, straight into dx's NHWC layout
        np.matmul(_grouped(dy, groups), wt[0], out=_grouped(dx, groups))
        return
    if _kmajor(cin, kw, groups, max(_KMAJOR_MAX_RUN, _KMAJOR_MAX_RUN_BACKPROP_INPUT)):
        _kmajor_backprop_input(w.reshape(taps * cin, cout), dy, dx, geom, plan)
        return
    full = _full_geometry(geom)
    window_bytes = n * h * dx.shape[2] * taps * cout * dx.dtype.itemsize
    if full is not None and groups == 1 and window_bytes <= _DIRECT_MAX:
        # stride 1, small: dx = conv2d(dy padded to "full", rot180(w) with in/out swapped). One
        # window copy and one GEMM straight into dx, instead of a GEMM and kh*kw tap adds
        w_rot = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(-1, 1, cin)
        _conv2d_into(dy, w_rot.transpose(1, 0, 2), dx, full, _plan(full), 1, None)
        return
    row_bytes = wo * taps * cin * dx.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * taps * cin, dtype=dx.dtype)
    tap_blocks = _tap_blocks(dy, wt, cin, groups, blocks, buf)
    if plan.phases is not None:
        _phase_backprop_input(tap_blocks, dx, geom, plan, blocks)
        return
    (sh, _), (dh, _), (top, _) = geom.strides, geom.dilations, plan.pad_lo
    taps_w, taps_h_all = plan.taps_w, plan.taps_h
    # If some tap reads every input pixel (stride 1: the centre tap when pads are small), its
    # block is *assigned* to dx first: no zero-filling of dx and one pass less over it.
    cover = plan.cover if all(r1 - r0 == ho for _, _, r0, r1 in blocks) else None
    if cover is None:
        dx.fill(0)
    for n0, n1, r0, r1, blk in tap_blocks:
        dxb = dx[n0:n1]
        taps_h = taps_h_all if r1 - r0 == ho else axis_taps(h, kh, sh, dh, top, r0, r1)
        if cover is not None:
            (i, th), (j, tw) = cover
            dxb[:, th[1], tw[1], :] = blk[i * kw + j, :, th[0], tw[0], :]
        for i in range(kh):
            th = taps_h[i]
            if th is None:
                continue
            for j in range(kw):
                tw = taps_w[j]
                if tw is not None and (cover is None or (i, j) != (cover[0][0], cover[1][0])):
                    # dx[rows, cols this tap read] += the tap's (nb, hb, Wo, Cin) block
                    dxb[:, th[1], tw[1], :] += blk[i * kw + j, :, th[0], tw[0], :]


# The stride-1 input gradient runs as a direct conv of the padded dy (``_full_geometry``) up to
# this many bytes of its window matrix: fewer numpy calls than GEMM + kh*kw tap adds, which pays
# for small batches (the digits CNN's conv2: 407 -> 321 us). Beyond it the tap adds are as fast
# or faster (case (c) of benchmarks/README.md: 41 ms with tap adds, 47 ms direct).
_DIRECT_MAX = 4 << 20


@functools.lru_cache(maxsize=1024)
def _full_geometry(geom: ConvGeometry) -> ConvGeometry | None:
    """For a stride-1 conv, the geometry of its input gradient as a conv of dy, else None.

    dx[ih] = sum_i dy[ih + top - i*d] w[i] (per axis). With i' = k-1-i that is a correlation of
    dy, padded by lo = (k-1)*d - top in front, with the flipped filter: dx[ih] = sum_i'
    dypad[ih + i'*d] w[k-1-i']. The back pad hi makes the output exactly H long. Both pads must
    be >= 0 (pads larger than the dilated kernel would need a crop of dy instead: None).
    """
    if geom.strides != (1, 1):
        return None
    pads = []
    for size, out, k, d, (top, _) in zip(
        geom.input_hw, geom.output_hw, geom.kernel_hw, geom.dilations, geom.pads, strict=True
    ):
        lo = (k - 1) * d - top
        hi = size - out - lo + (k - 1) * d
        if lo < 0 or hi < 0:
            return None
        pads.append((lo, hi))
    return ConvGeometry(
        geom.output_hw, geom.kernel_hw, (1, 1), geom.dilations, (pads[0], pads[1]), geom.input_hw
    )


def _tap_blocks(
    dy: np.ndarray,
    wt: np.ndarray,
    cin: int,
    groups: int,
    blocks: tuple[tuple[int, int, int, int], ...],
    buf: np.ndarray,
) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
    """Yield (n0, n1, r0, r1, blk) per block: blk[t] is tap t's (nb, hb, Wo, Cin) block of
    dcols = dy @ W^T, computed by ONE batched GEMM per block into the reused ``buf``."""
    taps, wo = wt.shape[0], dy.shape[2]
    cg = cin // groups
    for n0, n1, r0, r1 in blocks:
        nb, hb = n1 - n0, r1 - r0
        mb = nb * hb * wo
        dcols = buf[: taps * mb * cin]
        # (G, mb, Og) @ (T, G, Og, Cg) -> (T, G, mb, Cg), stored as (T, mb, Cin)
        out = dcols.reshape(taps, mb, groups, cg).transpose(0, 2, 1, 3)
        np.matmul(_grouped(dy[n0:n1, r0:r1], groups), wt, out=out)
        yield n0, n1, r0, r1, dcols.reshape(taps, nb, hb, wo, cin)


def _phase_backprop_input(
    tap_blocks: Iterator[tuple[int, int, int, int, np.ndarray]],
    dx: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    blocks: tuple[tuple[int, int, int, int], ...],
) -> None:
    """col2im for a width stride sw > 1, accumulated per stride phase; writes all of ``dx``.

    Why: the generic path adds each tap's block into the strided slice dx[:, ., w0::sw, :],
    whose contiguous runs are only Cin long, and does that read-modify-write kh*kw times. Yet
    along one axis tap t reads inputs x = o*s + t*d - pad_lo for consecutive outputs o, and
    those all lie in ONE stride phase p = x mod s, at consecutive phase indices a = x // s.
    So split dx into its sh*sw phases

        P[p, q] = dx[:, p::sh, q::sw, :]     (nb, len(range(p, H, sh)), len(range(q, W, sw)), Cin)

    kept as contiguous buffers: tap (i, j) is added into P[p, q][:, a0:a0+na, c0:c0+nc] (see
    _axis_phases), a unit-stride slice whose runs are whole rows of nc*Cin elements. Every dx
    pixel is in exactly one phase, so afterwards ONE strided copy per phase writes dx: sh*sw
    strided writes instead of kh*kw strided read-modify-writes. A phase's first tap that covers
    it entirely is assigned rather than added, so it needs no zero fill (3x3 stride 2: every
    phase has one); phases no tap reaches (1x1 stride 2, leftover rows) are zero in dx.

    Blocks of whole images are finished one block at a time. For an image in row bands the
    taps of different bands overlap, so its phases are zeroed first and copied after the last
    band. Works for any groups: the tap blocks are already in dx's Cin layout.
    """
    n, h, wd, cin = dx.shape
    (ho, _), (kh, kw) = geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, _), (top, _) = geom.strides, geom.dilations, plan.pad_lo
    pp = plan.phases
    assert pp is not None
    first = pp.first if all(r1 - r0 == ho for _, _, r0, r1 in blocks) else (None,) * len(pp.live)
    phase_of = {pq: k for k, pq in enumerate(pp.live)}
    nb_max = max((n1 - n0 for n0, n1, _, _ in blocks), default=0)
    pbuf = np.empty(nb_max * sum(r * c for r, c in pp.shapes) * cin, dtype=dx.dtype)
    bufs: list[np.ndarray] = []
    for n0, n1, r0, r1, blk in tap_blocks:
        nb = n1 - n0
        if r0 == 0:  # a new image group: lay out its phase buffers, assign or zero each one
            bufs, off = [], 0
            for (rows, cols), cov in zip(pp.shapes, first, strict=True):
                size = nb * rows * cols * cin
                bufs.append(pbuf[off : off + size].reshape(nb, rows, cols, cin))
                off += size
                if cov is None:
                    bufs[-1].fill(0)
                else:
                    i, j = cov
                    out_h, _, dst_h, _ = pp.taps_h[i]
                    out_w, _, dst_w, _ = pp.taps_w[j]
                    bufs[-1][:, dst_h, dst_w] = blk[i * kw + j, :, out_h, out_w]
        taps_h = pp.taps_h if r1 - r0 == ho else _axis_phases(h, kh, sh, dh, top, r0, r1)
        for i, th in enumerate(taps_h):
            if th is None:
                continue
            out_h, p, dst_h, _ = th
            for j, tw in enumerate(pp.taps_w):
                if tw is None:
                    continue
                out_w, q, dst_w, _ = tw
                k = phase_of[p, q]
                if first[k] != (i, j):
                    bufs[k][:, dst_h, dst_w] += blk[i * kw + j, :, out_h, out_w]
        if r1 == ho:  # image group complete: one strided copy (or zero fill) per phase of dx
            for p in range(sh):
                for q in range(sw):
                    k = phase_of.get((p, q))
                    if k is None:
                        dx[n0:n1, p::sh, q::sw] = 0
                    else:
                        dx[n0:n1, p::sh, q::sw] = bufs[k]


def _covering_tap(taps_h, taps_w, h: int, w: int):
    """((i, taps_h[i]), (j, taps_w[j])) for a tap whose input slices cover all of [0,h)x[0,w)."""
    full_h = [(i, t) for i, t in enumerate(taps_h) if t is not None and len(range(h)[t[1]]) == h]
    full_w = [(j, t) for j, t in enumerate(taps_w) if t is not None and len(range(w)[t[1]]) == w]
    return (full_h[0], full_w[0]) if full_h and full_w else None


def conv2d_backprop_filter(
    x: np.ndarray,
    filter_shape: Sequence[int],
    dy: np.ndarray,
    geom: ConvGeometry,
    cols: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of conv2d with respect to w: the adjoint of w -> conv2d(x, w).

    Args:
        x: forward input [N, H, W, Cin].
        filter_shape: [kh, kw, Cin/groups, Cout].
        dy: gradient of the output [N, Ho, Wo, Cout].
        geom: the forward conv's geometry.
        cols: optional window matrix of x from :func:`conv2d_windows` (e.g. kept from forward).

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
    plan = _plan(geom)
    ho, wo = geom.output_hw
    kg = kh * kw * cg
    if cols is not None:
        cols = _check_cols(op, cols, (groups, n * ho * wo, kg), dt)
    return _backprop_filter_sum(x, dy, fshape, geom, plan, groups, cols)


def _backprop_filter_sum(
    x: np.ndarray,
    dy: np.ndarray,
    fshape: tuple[int, int, int, int],
    geom: ConvGeometry,
    plan: _Plan,
    groups: int,
    cols: np.ndarray | None,
) -> np.ndarray:
    """dw = sum over all windows of (window of x) outer dy; arrays already validated and cast."""
    kh, kw, cg, cout = fshape
    ho, wo = geom.output_hw
    kg, n, cin, dt = kh * kw * cg, x.shape[0], x.shape[3], x.dtype
    dw = np.zeros((kh, kw, cg, cout), dtype=dt)
    dwg = _filter_matrix(dw, groups)  # (G, K, Og) view of dw
    if cols is not None:
        _gemm_tn(cols, _grouped(dy, groups), dwg, None)
        return dw
    if plan.pointwise:
        _gemm_tn(_grouped(x, groups), _grouped(dy, groups), dwg, None)
        return dw
    if _kmajor(cin, kw, groups):
        _kmajor_backprop_filter(x, dy, dwg[0], geom, plan, kg)
        return dw
    row_bytes = wo * groups * kg * dt.itemsize
    blocks = _blocks(n, ho, row_bytes, _BLOCK_BYTES)
    buf = np.empty(_block_rows(n, ho, row_bytes, _BLOCK_BYTES) * wo * groups * kg, dtype=dt)
    # partial sums of the later blocks, and _gemm_tn's chunk buffer (both dw-sized, small)
    part, scratch = (np.empty_like(dwg), np.empty_like(dwg)) if len(blocks) > 1 else (dwg, None)
    for k, (n0, n1, r0, r1, view) in enumerate(_block_views(x, geom, plan, blocks)):
        cols_b = _block_windows(buf, view, groups, kg)
        # (G, K, mb) @ (G, mb, Og): BLAS reads cols_b^T in place; the blocks' sums add up in dw
        _gemm_tn(cols_b, _grouped(dy[n0:n1, r0:r1], groups), part if k else dwg, scratch)
        if k:
            dwg += part
    return dw

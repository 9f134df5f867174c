"""Shared machinery of the 2-D conv strategies (conv_im2col, conv_kmajor, conv_phases).

Per geometry, once (``_plan``, cached): the padding actually materialised, the tap slices along
each axis (``axis_taps``), a tap covering the whole input, and the stride-phase tables of the
input gradient. Per call: cache blocks of the batch (``_blocks``), strided window views of the
padded input (``_strided_windows``, ``_block_views``) and the grouped GEMM operand views
(``_grouped``, ``_filter_matrix``, ``_gemm_tn``). Pure numpy on validated, cast arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .padding import ConvGeometry, axis_taps

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
    """Per-geometry constants of ``conv_phases.phase_backprop_input``."""

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
    """``axis_taps`` regrouped by stride phase, for the input gradient (see conv_phases).

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
    ``budget`` bytes (``Tuning.block_bytes``), ``row_bytes`` being the block-matrix bytes per output row.

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


# The filter gradient is a GEMM whose inner (reduction) dimension is the long one: (K, M) @ (M, Og)
# with M = N*Ho*Wo rows. Single-threaded OpenBLAS runs that 1.6-2.5x slower than the same product
# cut into M-chunks of a few hundred rows whose results are added up (measured, float32, 2-core
# AVX2: (144 x 12544) @ (12544 x 32) 6.0 ms whole, 3.8 ms in 384-row chunks; (288 x 50176) @
# (50176 x 64) 135 ms against 54 ms). With two threads it is the other way round: OpenBLAS splits
# the whole product better than the chunks (2.2 -> 1.85 ms and, for the digits CNN's conv2,
# (144 x 1024) @ (1024 x 32), 150 -> 125 us; bigger products tie), so chunks are only for one
# thread. Products with a small K*Og gain nothing from the chunks.
# (The chunk size and the minimum K*Og are ``Tuning.tn_chunk_rows`` / ``tn_chunk_min_kn``;
# whether to chunk is the plan's ``filter_gemm``: "auto" asks BLAS's thread count at run time.)


def _gemm_tn(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    scratch: np.ndarray | None,
    chunk_rows: int | None,
) -> None:
    """out = a^T @ b batched over groups: a (G, M, K), b (G, M, Og), out (G, K, Og).

    Chunked along M in ``chunk_rows``-row pieces when given (None: one product); ``scratch`` is
    an out-shaped buffer for the chunks' partial products (allocated here when None).
    """
    m = a.shape[1]
    if chunk_rows is None or m <= 2 * chunk_rows:
        np.matmul(a.transpose(0, 2, 1), b, out=out)
        return
    part = np.empty_like(out) if scratch is None else scratch
    for r0 in range(0, m, chunk_rows):
        r1 = min(m, r0 + chunk_rows)
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


def _covering_tap(taps_h, taps_w, h: int, w: int):
    """((i, taps_h[i]), (j, taps_w[j])) for a tap whose input slices cover all of [0,h)x[0,w)."""
    full_h = [(i, t) for i, t in enumerate(taps_h) if t is not None and len(range(h)[t[1]]) == h]
    full_w = [(j, t) for j, t in enumerate(taps_w) if t is not None and len(range(w)[t[1]]) == w]
    return (full_h[0], full_w[0]) if full_h and full_w else None

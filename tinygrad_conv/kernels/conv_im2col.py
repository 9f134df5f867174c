"""Strategy "im2col" (and "pointwise", "taps"): the window matrix + GEMM scheme of conv2d.

All three products read the window matrix (im2col) of the zero-padded input xpad,

    cols[(n, oh, ow), (i, j, c)] = xpad[n, oh*sh + i*dh, ow*sw + j*dw, c]     shape (M, K),

through ONE strided view of xpad, copied block by block (cache blocking, ``conv_layout._blocks``):

* forward (``im2col_conv2d``):  y = cols @ W, one GEMM per block straight into y's NHWC rows;
* filter gradient (``im2col_backprop_filter``): dW = sum over blocks of cols^T @ dy;
* input gradient (``taps_backprop_input``): dcols = dy @ W^T per block in tap-major layout
  (``tap_blocks``), then each tap's block added into the strided slice of dx it was read from
  (col2im as a loop over the kh*kw taps; a tap covering the whole input is assigned first).

"pointwise" (1x1, stride 1, unpadded) is the same scheme with x itself as the window matrix.
Arrays arrive validated and cast by ``conv.py``; groups make every product a batched GEMM over
strided views (``_grouped``, ``_filter_matrix``), with no transposing copies.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .conv_layout import (
    _block_rows,
    _block_views,
    _block_windows,
    _blocks,
    _gemm_tn,
    _grouped,
    _Plan,
)
from .padding import ConvGeometry, axis_taps


def pointwise_conv2d(x: np.ndarray, wg: np.ndarray, y: np.ndarray, groups: int) -> None:
    """1x1 stride 1 unpadded: one plain GEMM (M, Cin) @ (Cin, Cout) per group, into y."""
    np.matmul(_grouped(x, groups), wg, out=_grouped(y, groups))


def im2col_conv2d(
    x: np.ndarray,
    wg: np.ndarray,
    y: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    groups: int,
    budget: int,
) -> None:
    """y = cols @ W block by block; ``wg`` is the (G, K, Og) filter matrix, blocks ~``budget``."""
    n = x.shape[0]
    kg = wg.shape[1]
    ho, wo = geom.output_hw
    row_bytes = wo * groups * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * groups * kg, dtype=x.dtype)
    for n0, n1, r0, r1, view in _block_views(x, geom, plan, blocks):
        cols_b = _block_windows(buf, view, groups, kg)  # the block's one im2col copy, in cache
        # ONE GEMM per block, written straight into y's NHWC rows [n0:n1, r0:r1]
        np.matmul(cols_b, wg, out=_grouped(y[n0:n1, r0:r1], groups))


def im2col_backprop_filter(
    x: np.ndarray,
    dy: np.ndarray,
    dwg: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    groups: int,
    budget: int,
    chunk_rows: int | None,
) -> None:
    """dW (the (G, K, Og) view ``dwg`` of dw) = sum over blocks of cols^T @ dy."""
    kg, n, dt = dwg.shape[1], x.shape[0], x.dtype
    ho, wo = geom.output_hw
    row_bytes = wo * groups * kg * dt.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * groups * kg, dtype=dt)
    # partial sums of the later blocks, and _gemm_tn's chunk buffer (both dw-sized, small)
    part, scratch = (np.empty_like(dwg), np.empty_like(dwg)) if len(blocks) > 1 else (dwg, None)
    for k, (n0, n1, r0, r1, view) in enumerate(_block_views(x, geom, plan, blocks)):
        cols_b = _block_windows(buf, view, groups, kg)
        # (G, K, mb) @ (G, mb, Og): BLAS reads cols_b^T in place; the blocks' sums add up in dw
        _gemm_tn(
            cols_b, _grouped(dy[n0:n1, r0:r1], groups), part if k else dwg, scratch, chunk_rows
        )
        if k:
            dwg += part


def backprop_input_blocks(
    dy: np.ndarray, wt: np.ndarray, dx: np.ndarray, geom: ConvGeometry, groups: int, budget: int
) -> tuple[tuple[tuple[int, int, int, int], ...], Iterator]:
    """The blocks of dx's computation and the iterator of their tap blocks (``tap_blocks``)."""
    n, _, _, cin = dx.shape
    taps = wt.shape[0]
    ho, wo = geom.output_hw
    row_bytes = wo * taps * cin * dx.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * taps * cin, dtype=dx.dtype)
    return blocks, tap_blocks(dy, wt, cin, groups, blocks, buf)


def tap_blocks(
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


def taps_backprop_input(
    tap_blocks: Iterator[tuple[int, int, int, int, np.ndarray]],
    dx: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    blocks: tuple[tuple[int, int, int, int], ...],
) -> None:
    """col2im: each tap's block added into the strided slice of dx it was read from; all of dx."""
    h = dx.shape[1]
    ho = geom.output_hw[0]
    kh, kw = geom.kernel_hw
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

"""Strategy "phases": the col2im of the input gradient for a width stride > 1, per stride phase.

See :func:`phase_backprop_input`. The tap blocks come from ``conv_im2col.tap_blocks``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .conv_layout import _axis_phases, _Plan
from .padding import ConvGeometry


def phase_backprop_input(
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

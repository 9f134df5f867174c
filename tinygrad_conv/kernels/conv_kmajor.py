"""Strategy "kmajor": conv2d and its adjoints for few input channels (channel-major windows).

With Cin*kw small (RGB or grey first layers) every (i, c) run of the NHWC window matrix is
only kw*Cin elements long, and numpy's per-run overhead dominates the im2col copy and the
col2im adds (a 7x7 stride-2 conv on 224x224x3 spends 3/4 of its time there). So for those
convs the kernels work channel-major: the block is copied once to (Cin, nb, Hp, Wp) and the
window matrix is built transposed, cols_t[(i, j, c), (n, oh, ow)], whose runs are whole
output rows (Wo elements). K = (i, j, c) matches w.reshape(K, Cout), so every product is
still ONE GEMM per block (BLAS reads cols_t^T in place), and dcols_t = W @ dy^T comes out
per tap as a contiguous (Cin, nb, hb, Wo) block for the adds.


The planner (``conv.plan``) picks it when groups == 1 and kw*Cin is at most
``Tuning.kmajor_max_run`` (``kmajor_max_run_backprop_input`` for the input gradient).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .conv_layout import _axis_phases, _block_rows, _blocks, _Plan
from .padding import ConvGeometry, axis_taps


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


def kmajor_conv2d(
    x: np.ndarray,
    wm: np.ndarray,
    y: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    kg: int,
    budget: int,
) -> None:
    """conv2d for few input channels: y_block = cols_t^T @ W per block.

    x: [N,H,W,Cin]; wm: the filter as a (K, Cout) matrix, K = kh*kw*Cin = ``kg``;
    y: [N,Ho,Wo,Cout] (written); blocks of about ``budget`` bytes of window matrix.
    """
    n, cout = x.shape[0], wm.shape[1]
    ho, wo = geom.output_hw
    row_bytes = wo * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * kg, dtype=x.dtype)
    for n0, n1, r0, r1, view in _cm_block_views(x, geom, plan, blocks):
        cols_t = buf[: view.size].reshape(kg, -1)
        np.copyto(cols_t.reshape(view.shape), view)
        np.matmul(cols_t.T, wm, out=y[n0:n1, r0:r1].reshape(-1, cout))


def kmajor_backprop_filter(
    x: np.ndarray,
    dy: np.ndarray,
    dwm: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    kg: int,
    budget: int,
) -> None:
    """dW = sum over blocks of cols_t @ dy_block (K, mb) @ (mb, Cout).

    x: [N,H,W,Cin]; dy: [N,Ho,Wo,Cout]; dwm: the (K, Cout) view of dw (written).
    """
    n, cout = x.shape[0], dwm.shape[1]
    ho, wo = geom.output_hw
    row_bytes = wo * kg * x.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * kg, dtype=x.dtype)
    part = np.empty_like(dwm)
    for k, (n0, n1, r0, r1, view) in enumerate(_cm_block_views(x, geom, plan, blocks)):
        cols_t = buf[: view.size].reshape(kg, -1)
        np.copyto(cols_t.reshape(view.shape), view)
        np.matmul(cols_t, dy[n0:n1, r0:r1].reshape(-1, cout), out=part if k else dwm)
        if k:
            dwm += part


def kmajor_backprop_input(
    wm: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    geom: ConvGeometry,
    plan: _Plan,
    budget: int,
) -> None:
    """wm: (K, Cout) filter matrix; dy: [N,Ho,Wo,Cout]; dx: [N,H,W,Cin] (all written).

    dcols_t = W @ dy_block^T, then per tap one add of its (Cin, nb, hb, Wo) block into a
    channel-major accumulator whose inner loops run along image rows; each finished image
    group is transposed into dx once.

    With a width stride > 1 the accumulator is split into the stride phases of dx (as in
    ``conv_phases.phase_backprop_input``): tap (i, j) then adds into ONE phase buffer at unit stride,
    instead of into every sw-th element of the rows (measured on case (e), 7x7 stride 2 on
    224x224x3: the 49 tap adds took 3.6 ms strided).
    """
    n, h, wd, cin = dx.shape
    (ho, wo), (kh, kw) = geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, _), (top, _) = geom.strides, geom.dilations, plan.pad_lo
    kg, cout = wm.shape
    row_bytes = wo * kg * dx.dtype.itemsize
    blocks = _blocks(n, ho, row_bytes, budget)
    buf = np.empty(_block_rows(n, ho, row_bytes, budget) * wo * kg, dtype=dx.dtype)
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

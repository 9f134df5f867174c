"""Where tinygrad_conv's time goes in the benchmark's conv cases and training step.

    python benchmarks/profile_conv.py                 # stages of (c) and (d), cProfile of (f)
    python benchmarks/profile_conv.py --cases c --cprofile

Stage timings re-run the steps of ``kernels/conv.py`` one by one (same helpers, same order) with
``time.perf_counter`` around each, so the sum can be set against the real fwd+bwd through the
graph: the difference is engine overhead (node creation, gradient accumulation, leaf .grad copies).
The "candidates" section times alternative formulations of the same stage, checked against the
kernel's result, as input for kernel changes (this file changes no kernel). The "strategies"
section runs every strategy the planner could pick (``conv.applicable``, forced with ``plan=``),
each checked first against the reference kernel ``kernels/conv_ref.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import _workloads as W  # noqa: E402

import tinygrad_conv as tc  # noqa: E402
from tinygrad_conv.kernels import conv as K  # noqa: E402
from tinygrad_conv.kernels.conv_ref import (  # noqa: E402
    conv_backprop_filter_ref,
    conv_backprop_input_ref,
    conv_ref,
)
from tinygrad_conv.kernels.padding import axis_taps, conv_geometry  # noqa: E402

STAT = min  # best of the reps: robust to other processes on a shared 2-core machine


def run_interleaved(fns: dict[str, object], reps: int, warmup: int = 2) -> dict[str, float]:
    """ms of each callable: warm-up, then ``reps`` rounds calling every one in turn (so a burst
    of outside load hits all of them alike); best of the rounds (``--median``: median)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: STAT(v) * 1e3 for k, v in times.items()}


# ----------------------------------------------------------------------------- stage replicas


def _window_view(xp: np.ndarray, geom, n: int) -> np.ndarray:
    """(N, Ho, Wo, kh, kw, C) strided view of an already padded x (as the kernel builds it)."""
    (ho, wo), (kh, kw) = geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    s0, s1, s2, s3 = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (n, ho, wo, kh, kw, xp.shape[3]), (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3)
    )


def _blocks(n: int, ho: int, row_bytes: int, budget: int = 2 << 20):
    """The kernel's cache blocking: whole images per block, else bands of output rows."""
    img = max(ho * row_bytes, 1)
    if img <= budget:
        nb = max(1, budget // img)
        return [(n0, min(n, n0 + nb), 0, ho) for n0 in range(0, n, nb)]
    hb = max(1, budget // row_bytes)
    return [(n0, n0 + 1, r0, min(ho, r0 + hb)) for n0 in range(n) for r0 in range(0, ho, hb)]


def stages(case: W.ConvCase) -> dict[str, object]:
    """ms per stage of Conv2D forward (graph path) + backward, replicating kernels/conv.py
    (self-contained numpy, groups=1, so it survives refactors of the kernel's private helpers)."""
    x, w, g = W.conv_arrays(case)
    geom = conv_geometry("conv2d", x.shape, w.shape, case.stride, case.padding, 1, "NHWC")
    n, h, wd, cin = x.shape
    kh, kw, _, cout = w.shape
    ho, wo = geom.output_hw
    taps = kh * kw
    (top, bottom), (left, right) = geom.pads
    rh, rw = geom.leftover
    bottom, right = max(bottom - rh, 0), max(right - rw, 0)
    m, kk = n * ho * wo, taps * cin
    out: dict[str, float] = {}

    # forward (requires_grad path): conv2d_windows = pad copy + window copy, then one GEMM
    def pad():
        xp = np.zeros((n, top + h + bottom, left + wd + right, cin), np.float32)
        xp[:, top : top + h, left : left + wd, :] = x
        return xp

    out["fwd: np.zeros + copy into padded x"] = pad
    view = _window_view(pad(), geom, n)
    cols = np.empty((n, ho, wo, kh, kw, cin), np.float32)
    out["fwd: window copy (im2col, whole batch)"] = lambda: np.copyto(cols, view)
    cm = cols.reshape(m, kk)
    y = np.empty((m, cout), np.float32)
    wm = w.reshape(kk, cout)
    out["fwd: GEMM cols @ W (one, whole batch)"] = lambda: np.matmul(cm, wm, out=y)

    # backprop_input: blocked GEMM dy @ W^T -> dcols (tap-major), then per-tap strided adds
    wt = w.reshape(taps, cin, cout).transpose(0, 2, 1)  # (T, Cout, Cin)
    blocks = _blocks(n, ho, wo * kk * 4)
    buf = np.empty(max((b[1] - b[0]) * (b[3] - b[2]) for b in blocks) * wo * kk, np.float32)
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    taps_w = axis_taps(wd, kw, sw, dw, left, 0, wo)
    dx = np.zeros_like(x)
    out["bwd_in: np.zeros dx"] = lambda: np.zeros_like(x)

    def block_gemm(n0, n1, r0, r1):
        mb = (n1 - n0) * (r1 - r0) * wo
        dcols = buf[: taps * mb * cin].reshape(taps, mb, cin)
        np.matmul(g[n0:n1, r0:r1].reshape(mb, cout), wt, out=dcols)
        return dcols.reshape(taps, n1 - n0, r1 - r0, wo, cin)

    def tap_adds(bl, n0, n1, r0, r1):
        dxb = dx[n0:n1]
        taps_h = axis_taps(h, kh, sh, dh, top, r0, r1)
        for i in range(kh):
            th = taps_h[i]
            if th is None:
                continue
            for j in range(kw):
                tw = taps_w[j]
                if tw is not None:
                    dxb[:, th[1], tw[1], :] += bl[i * kw + j, :, th[0], tw[0], :]

    def gemms_only():
        for b in blocks:
            block_gemm(*b)

    key = f"bwd_in: GEMM dy @ W^T into dcols ({len(blocks)} blocks)"
    out[key] = gemms_only

    def gemm_and_adds():
        for b in blocks:
            tap_adds(block_gemm(*b), *b)

    out["bwd_in: GEMM + tap adds (blocked, as the kernel)"] = gemm_and_adds

    # backprop_filter with the kept cols: one GEMM cols^T @ dy
    dwm = np.empty((kk, cout), np.float32)
    gm = g.reshape(m, cout)
    out["bwd_w: GEMM cols^T @ dy (kept cols)"] = lambda: np.matmul(cm.T, gm, out=dwm)
    return out


def graph_times(case: W.ConvCase) -> dict[str, object]:
    fns = W.tc_conv(case)
    res = {"graph fwd (no_grad, blocked im2col)": fns["fwd"]}
    res["graph fwd+bwd"] = fns["fwdbwd"]
    x, w, g = W.conv_arrays(case)
    xt, wt = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
    res["graph fwd only, requires_grad (whole cols kept)"] = lambda: tc.conv2d(
        xt, wt, case.stride, case.padding
    )
    return res


# ----------------------------------------------------------------------------- candidates


def cand_im2col_no_pad(x, geom, cols):
    """Window matrix straight from x: per tap, copy the in-bounds slice, zero only the border."""
    n, h, wd, cin = x.shape
    (kh, kw), (ho, wo) = geom.kernel_hw, geom.output_hw
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    (top, _), (left, _) = geom.pads
    c6 = cols.reshape(n, ho, wo, kh, kw, cin)
    th_all = axis_taps(h, kh, sh, dh, top, 0, ho)
    tw_all = axis_taps(wd, kw, sw, dw, left, 0, wo)
    for i in range(kh):
        th = th_all[i]
        for j in range(kw):
            tw = tw_all[j]
            dst = c6[:, :, :, i, j, :]
            if th is None or tw is None:
                dst[...] = 0
                continue
            (oh_sl, ih_sl), (ow_sl, iw_sl) = th, tw
            # zero the border rows/cols this tap does not reach, copy the rest
            if oh_sl.start > 0:
                dst[:, : oh_sl.start] = 0
            if oh_sl.stop < ho:
                dst[:, oh_sl.stop :] = 0
            if ow_sl.start > 0:
                dst[:, oh_sl, : ow_sl.start] = 0
            if ow_sl.stop < wo:
                dst[:, oh_sl, ow_sl.stop :] = 0
            dst[:, oh_sl, ow_sl] = x[:, ih_sl, iw_sl, :]


def cand_bwd_input_direct(w, dy, geom, x_shape):
    """Stride 1 only: dx = correlate(pad_full(dy), rot180(w)^T) as im2col + GEMM straight into dx.

    Blocked over images like the kernel; no zeros for dx, no tap scatter-adds."""
    n, h, wd, cin = x_shape
    kh, kw, _, cout = w.shape
    (top, _), (left, _) = geom.pads
    ho, wo = geom.output_hw
    # the transposed conv: pad dy with (k-1-top) before and what makes the output h x w after
    ph0, pw0 = kh - 1 - top, kw - 1 - left
    ph1, pw1 = h + kh - 1 - ho - ph0, wd + kw - 1 - wo - pw0
    wr = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(kh * kw * cout, cin)
    dx = np.empty(x_shape, np.float32)
    kk = kh * kw * cout
    img_bytes = h * wd * kk * 4
    nb = max(1, (2 << 20) // img_bytes)
    buf = np.empty(min(n, nb) * h * wd * kk, np.float32)
    dyp = np.zeros((min(n, nb), ho + ph0 + ph1, wo + pw0 + pw1, cout), np.float32)
    for n0 in range(0, n, nb):
        n1 = min(n, n0 + nb)
        b = n1 - n0
        dyp[:b, ph0 : ph0 + ho, pw0 : pw0 + wo] = dy[n0:n1]
        s0, s1, s2, s3 = dyp.strides
        view = np.lib.stride_tricks.as_strided(
            dyp, (b, h, wd, kh, kw, cout), (s0, s1, s2, s1, s2, s3), writeable=False
        )
        cols = buf[: b * h * wd * kk].reshape(b, h, wd, kh, kw, cout)
        np.copyto(cols, view)
        np.matmul(cols.reshape(-1, kk), wr, out=dx[n0:n1].reshape(-1, cin))
    return dx


def cand_bwd_input_direct_s2(w, dy, geom, x_shape):
    """Stride 2 (sub-pixel): each of the 4 output phases of dx is a stride-1 correlation of dy with
    the taps that land on it; one im2col + GEMM per phase into a phase buffer, then one strided
    copy per phase into dx. No dx zeros (every pixel of dx belongs to one phase), no scatter-adds.
    """
    n, h, wd, cin = x_shape
    kh, kw, _, cout = w.shape
    (sh, sw) = geom.strides
    (top, _), (left, _) = geom.pads
    ho, wo = geom.output_hw
    dx = np.empty(x_shape, np.float32)
    for ph in range(sh):
        for pw in range(sw):
            # input rows r = ph + sh*a; r = o*sh + i - top  ->  i = (r + top) - o*sh
            ti = [i for i in range(kh) if (ph + top - i) % sh == 0]
            tj = [j for j in range(kw) if (pw + left - j) % sw == 0]
            ha, wa = len(range(ph, h, sh)), len(range(pw, wd, sw))
            # output o for (a, i): o = (ph + sh*a + top - i)/sh = a + (ph + top - i)//sh
            oi = [(ph + top - i) // sh for i in ti]
            oj = [(pw + left - j) // sw for j in tj]
            lo_h, lo_w = -min(oi), -min(oj)
            hi_h, hi_w = max(0, ha - 1 + max(oi) - (ho - 1)), max(0, wa - 1 + max(oj) - (wo - 1))
            dyp = np.zeros((n, lo_h + ho + hi_h, lo_w + wo + hi_w, cout), np.float32)
            dyp[:, lo_h : lo_h + ho, lo_w : lo_w + wo] = dy
            kk = len(ti) * len(tj) * cout
            cols = np.empty((n, ha, wa, len(ti), len(tj), cout), np.float32)
            for a in range(len(ti)):
                for b in range(len(tj)):
                    r0, c0 = oi[a] + lo_h, oj[b] + lo_w
                    cols[:, :, :, a, b] = dyp[:, r0 : r0 + ha, c0 : c0 + wa]
            wsub = w[np.ix_(ti, tj)].transpose(0, 1, 3, 2).reshape(kk, cin)
            res = cols.reshape(-1, kk) @ wsub
            dx[:, ph::sh, pw::sw] = res.reshape(n, ha, wa, cin)
    return dx


def _phase_plan(taps_h, taps_w, h: int, wd: int, sh: int, sw: int, kw: int):
    """Per tap: (t, phase_h, phase_w, out slices, phase-buffer slices); and per phase the tap
    whose input slice covers the whole phase (assigned instead of added), or None."""
    plan, cover = [], {}
    for i, th in enumerate(taps_h):
        if th is None:
            continue
        for j, tw in enumerate(taps_w):
            if tw is None:
                continue
            (o_h, r_h), (o_w, r_w) = th, tw
            a0, p_h = divmod(r_h.start, sh)
            c0, p_w = divmod(r_w.start, sw)
            na, nc = len(range(h)[r_h]), len(range(wd)[r_w])
            full = na == len(range(p_h, h, sh)) and nc == len(range(p_w, wd, sw))
            if full and (p_h, p_w) not in cover:
                cover[(p_h, p_w)] = len(plan)
            plan.append((i * kw + j, p_h, p_w, o_h, o_w, slice(a0, a0 + na), slice(c0, c0 + nc)))
    return plan, cover


def cand_bwd_input_phase_adds(w, dy, geom, x_shape, budget: int = 2 << 20):
    """Strided conv (proposal for kernels/conv.py): the kernel's GEMM (dy @ W^T -> tap-major
    dcols, blocked over whole images), but each tap is accumulated into the contiguous buffer of
    its phase P[ph, pw] = dx[:, ph::sh, pw::sw] with unit-stride shifted slices (long contiguous
    inner runs instead of Cin-long strided ones); a tap that covers its whole phase is assigned
    first (no zero fill when every phase has one, as for 3x3 stride 2); then ONE strided copy
    per phase writes dx (sh*sw strided writes instead of kh*kw strided read-modify-writes)."""
    n, h, wd, cin = x_shape
    kh, kw, _, cout = w.shape
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    (top, _), (left, _) = geom.pads
    ho, wo = geom.output_hw
    taps = kh * kw
    wt = w.reshape(taps, cin, cout).transpose(0, 2, 1)
    ha, wa = -(-h // sh), -(-wd // sw)
    plan, cover = _phase_plan(
        axis_taps(h, kh, sh, dh, top, 0, ho),
        axis_taps(wd, kw, sw, dw, left, 0, wo),
        h,
        wd,
        sh,
        sw,
        kw,
    )
    all_covered = len(cover) == sh * sw
    dx = np.empty(x_shape, np.float32)
    img = ho * wo * taps * cin * 4
    nb = max(1, budget // max(img, 1))
    buf = np.empty(min(n, nb) * ho * wo * taps * cin, np.float32)
    phase = np.empty((sh, sw, min(n, nb), ha, wa, cin), np.float32)
    for n0 in range(0, n, nb):
        n1 = min(n, n0 + nb)
        b = n1 - n0
        mb = b * ho * wo
        dcols = buf[: taps * mb * cin].reshape(taps, mb, cin)
        np.matmul(dy[n0:n1].reshape(mb, cout), wt, out=dcols)
        blk = dcols.reshape(taps, b, ho, wo, cin)
        ph_b = phase[:, :, :b]
        if not all_covered:
            ph_b[...] = 0
        first = set(cover.values())  # covering taps are assigned before any add to their phase
        for k in [*sorted(first), *(k for k in range(len(plan)) if k not in first)]:
            t, p_h, p_w, o_h, o_w, a_sl, c_sl = plan[k]
            dst = ph_b[p_h, p_w, :, a_sl, c_sl]
            if k in first:
                dst[...] = blk[t, :, o_h, o_w]
            else:
                dst += blk[t, :, o_h, o_w]
        for p_h in range(sh):
            for p_w in range(sw):
                nh, nw = len(range(p_h, h, sh)), len(range(p_w, wd, sw))
                dx[n0:n1, p_h::sh, p_w::sw] = ph_b[p_h, p_w, :, :nh, :nw]
    return dx


def cand_im2col_transposed(x, geom):
    """For tiny Cin: build the window matrix transposed, colsT (K, M), one contiguous (N,Ho,Wo)
    slab per tap and channel (inner loops over whole output rows), then y = (W^T @ colsT)^T."""
    n, h, wd, cin = x.shape
    (kh, kw), (ho, wo) = geom.kernel_hw, geom.output_hw
    (sh, sw) = geom.strides
    (top, bottom), (left, right) = geom.pads
    xp = x
    if top or bottom or left or right:
        xp = np.zeros((n, h + top + bottom, wd + left + right, cin), x.dtype)
        xp[:, top : top + h, left : left + wd] = x
    colsT = np.empty((kh, kw, cin, n, ho, wo), x.dtype)
    xc = np.moveaxis(xp, 3, 0)  # (C, N, Hp, Wp) view
    for i in range(kh):
        for j in range(kw):
            colsT[i, j] = xc[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
    return colsT.reshape(kh * kw * cin, n * ho * wo)


def candidates(case: W.ConvCase) -> dict[str, object]:
    x, w, g = W.conv_arrays(case)
    geom = conv_geometry("conv2d", x.shape, w.shape, case.stride, case.padding, 1, "NHWC")
    ho, wo = geom.output_hw
    kk = case.k * case.k * case.cin
    ref_cols = K.conv2d_windows(x, geom)
    cols = np.empty_like(ref_cols)
    cand_im2col_no_pad(x, geom, cols)
    assert np.array_equal(cols, ref_cols)
    res = {
        "im2col: current conv2d_windows (pad + copy)": lambda: K.conv2d_windows(x, geom),
        "im2col: from x per tap, zero border only": lambda: cand_im2col_no_pad(x, geom, cols),
    }
    res["fwd: current blocked conv2d (no_grad path)"] = lambda: K.conv2d(x, w, geom)
    res["fwd: conv2d_windows + one GEMM (graph path)"] = lambda: K.conv2d(
        x, w, geom, cols=K.conv2d_windows(x, geom)
    )
    res["bwd_w: blocked, rebuilding windows (no kept cols)"] = lambda: K.conv2d_backprop_filter(
        x, w.shape, g, geom
    )
    res["bwd_w: with kept cols"] = lambda: K.conv2d_backprop_filter(
        x, w.shape, g, geom, cols=ref_cols
    )
    ref_dx = K.conv2d_backprop_input(x.shape, w, g, geom)
    res["bwd_in: current (GEMM + tap adds)"] = lambda: K.conv2d_backprop_input(x.shape, w, g, geom)
    if case.stride == 1:
        dx = cand_bwd_input_direct(w, g, geom, x.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        res["bwd_in: direct conv of padded dy (im2col + GEMM into dx)"] = lambda: (
            cand_bwd_input_direct(w, g, geom, x.shape)
        )
    else:
        dx = cand_bwd_input_direct_s2(w, g, geom, x.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        res["bwd_in: sub-pixel phases (im2col + GEMM per phase)"] = lambda: (
            cand_bwd_input_direct_s2(w, g, geom, x.shape)
        )
    if case.stride > 1:
        dx = cand_bwd_input_phase_adds(w, g, geom, x.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        res["bwd_in: kernel GEMM + taps added into phase buffers"] = lambda: (
            cand_bwd_input_phase_adds(w, g, geom, x.shape)
        )
    if case.cin <= 4:
        wT = np.ascontiguousarray(w.reshape(kk, case.cout).T)
        ct = cand_im2col_transposed(x, geom)
        np.testing.assert_allclose(
            (wT @ ct).T, K.conv2d(x, w, geom).reshape(-1, case.cout), rtol=1e-4, atol=1e-4
        )
        res["fwd: transposed im2col + (W^T @ colsT)^T"] = lambda: np.ascontiguousarray(
            (wT @ cand_im2col_transposed(x, geom)).T
        )
    m = case.n * ho * wo
    a = ref_cols.reshape(m, kk)
    wm = w.reshape(kk, case.cout)
    yy = np.empty((m, case.cout), np.float32)
    res["ref: bare GEMM (M,K)@(K,Cout) on a prebuilt window matrix"] = lambda: np.matmul(
        a, wm, out=yy
    )
    return res


def strategies(case: W.ConvCase) -> dict[str, object]:
    """Every strategy the planner could pick for this case's three products (``K.applicable``),
    each first checked against the reference kernel (kernels/conv_ref.py, in float64 on the
    same float32 data), then timed; the planner's own choice is marked."""
    x, w, g = W.conv_arrays(case)
    geom = conv_geometry("conv2d", x.shape, w.shape, case.stride, case.padding, 1, "NHWC")
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    refs = {
        "forward": conv_ref(x64, w64, geom),
        "backprop_input": conv_backprop_input_ref(x.shape, w64, g64, geom),
        "backprop_filter": conv_backprop_filter_ref(x64, w.shape, g64, geom),
    }
    calls = {
        "forward": lambda p: K.conv2d(x, w, geom, plan=p),
        "backprop_input": lambda p: K.conv2d_backprop_input(x.shape, w, g, geom, plan=p),
        "backprop_filter": lambda p: K.conv2d_backprop_filter(x, w.shape, g, geom, plan=p),
    }
    chosen = K.plan(geom, x.shape, w.shape, x.dtype.itemsize)
    res: dict[str, object] = {}
    for op, names in K.applicable(geom, x.shape, w.shape).items():
        for name in names:
            p = chosen._replace(**{op: name})
            got = calls[op](p)
            ref = refs[op]
            err = float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
            assert err < 1e-4, f"{op} {name}: relative error {err:.2e} against conv_ref"
            mark = " (planner's choice)" if getattr(chosen, op) == name else ""
            res[f"{op}: {name}{mark}"] = lambda f=calls[op], p=p: f(p)
    return res


# ----------------------------------------------------------------------------- training step


def cprofile_train(pool: str, steps: int, top: int) -> str:
    fns = W.tc_train(pool)
    for _ in range(5):
        fns["fwdbwd"]()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        fns["fwdbwd"]()
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    return s.getvalue()


def train_op_times(pool: str) -> dict[str, object]:
    """ms per kernel-level piece of the training step, and the whole step."""
    fns = W.tc_train(pool)
    out = {"train step fwd+bwd+SGD (graph)": fns["fwdbwd"]}
    out["train fwd, no_grad"] = fns["fwd"]
    return out


def _all_functions(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


def train_op_breakdown(pool: str, steps: int) -> tuple[float, dict[str, tuple[int, float]]]:
    """ms per training step spent inside each op's forward (= its kernel: backward runs the
    family's ops), by wrapping every Function subclass's forward with a perf_counter."""
    acc: dict[str, list[float]] = {}
    originals = {}
    for cls in set(_all_functions(tc.Function)):
        if "forward" not in cls.__dict__:
            continue
        orig = cls.__dict__["forward"]
        fn = orig.__func__ if isinstance(orig, staticmethod) else orig
        name = cls.op_name or cls.__name__

        def timed(ctx, *a, _fn=fn, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _fn(ctx, *a, **k)
            finally:
                rec = acc.setdefault(_name, [0, 0.0])
                rec[0] += 1
                rec[1] += time.perf_counter() - t0

        originals[cls] = orig
        cls.forward = staticmethod(timed)
    try:
        fns = W.tc_train(pool)
        for _ in range(20):
            fns["fwdbwd"]()
        acc.clear()
        t0 = time.perf_counter()
        for _ in range(steps):
            fns["fwdbwd"]()
        total = (time.perf_counter() - t0) / steps * 1e3
    finally:
        for cls, orig in originals.items():
            cls.forward = orig
    per = {k: (v[0] // steps, v[1] / steps * 1e3) for k, v in acc.items()}
    return total, dict(sorted(per.items(), key=lambda kv: -kv[1][1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="c,d,f,a,e")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--pool", default=None, help="maxpool|stride2 (default: what tc supports)")
    p.add_argument("--cprofile", action="store_true", help="cProfile the conv cases too")
    p.add_argument("--median", action="store_true", help="report medians, not best-of-reps")
    args = p.parse_args()
    if args.median:
        global STAT
        STAT = statistics.median
    pool = args.pool or ("maxpool" if hasattr(tc, "max_pool2d") else "stride2")
    for key in args.cases.split(","):
        print(f"\n=== ({key}) {W.case_label(key, pool)}")
        if key == W.TRAIN:
            for k, v in run_interleaved(train_op_times(pool), args.reps * 5).items():
                print(f"  {v:8.3f} ms  {k}")
            total, per = train_op_breakdown(pool, 300)
            print("  -- per op (timer around each op's forward = its kernel), mean of 300 steps:")
            print(f"  {total:8.3f} ms  whole step (with timers)")
            for k, (calls, ms) in per.items():
                print(f"  {ms:8.3f} ms  {k} (x{calls})")
            inside = sum(ms for _, ms in per.values())
            print(f"  {inside:8.3f} ms  sum inside ops")
            print(f"  {total - inside:8.3f} ms  outside ops: engine, Tensor wrapping, SGD update")
            if args.cprofile:
                print(cprofile_train(pool, 300, 25))
            continue
        case = W.CONV_CASES[key]
        gt, st, cd = graph_times(case), stages(case), candidates(case)
        sg = strategies(case)
        t = run_interleaved({**gt, **st, **cd, **sg}, args.reps)
        for k in gt:
            print(f"  {t[k]:8.2f} ms  {k}")
        print("  -- stages of the graph fwd+bwd:")
        total = 0.0
        adds = "bwd_in: GEMM + tap adds (blocked, as the kernel)"
        gemm_key = next(k for k in st if k.startswith("bwd_in: GEMM dy"))
        for k in st:
            v = t[k] - t[gemm_key] if k == adds else t[k]
            name = "bwd_in: tap strided adds (GEMM + adds minus GEMM)" if k == adds else k
            print(f"  {v:8.2f} ms  {name}")
            total += v
        print(f"  {total:8.2f} ms  sum of stages")
        print(f"  {t['graph fwd+bwd'] - total:8.2f} ms  engine + rest (graph fwd+bwd - stages)")
        print("  -- candidates:")
        for k in cd:
            print(f"  {t[k]:8.2f} ms  {k}")
        print("  -- every applicable strategy (conv.applicable), each checked against conv_ref:")
        for k in sg:
            print(f"  {t[k]:8.2f} ms  {k}")
        if args.cprofile:
            fns = W.tc_conv(case)
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(args.reps):
                fns["fwdbwd"]()
            pr.disable()
            s = io.StringIO()
            pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(15)
            print(s.getvalue())


if __name__ == "__main__":
    main()

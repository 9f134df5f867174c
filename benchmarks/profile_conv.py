"""Where tinygrad_conv's time goes in the benchmark's conv cases and training step.

    python benchmarks/profile_conv.py                 # stages of (c) and (d), cProfile of (f)
    python benchmarks/profile_conv.py --cases c --cprofile

Stage timings re-run the steps of ``kernels/conv.py`` one by one (same helpers, same order) with
``time.perf_counter`` around each, so the sum can be set against the real fwd+bwd through the
graph: the difference is engine overhead (node creation, gradient accumulation, leaf .grad copies).
The "candidates" section times alternative formulations of the same stage, checked against the
kernel's result, as input for kernel changes (this file changes no kernel).
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
from tinygrad_conv.kernels.padding import axis_taps, conv_geometry  # noqa: E402

STAT = min  # best of the reps: robust to other processes on a shared 2-core machine


def med_ms(fn, reps: int = 9, warmup: int = 2) -> float:
    """Best-of-``reps`` (or median with --median) milliseconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return STAT(ts) * 1e3


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


def stages(case: W.ConvCase, reps: int) -> dict[str, float]:
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

    out["fwd: np.zeros + copy into padded x"] = med_ms(pad, reps)
    view = _window_view(pad(), geom, n)
    cols = np.empty((n, ho, wo, kh, kw, cin), np.float32)
    out["fwd: window copy (im2col, whole batch)"] = med_ms(lambda: np.copyto(cols, view), reps)
    cm = cols.reshape(m, kk)
    y = np.empty((m, cout), np.float32)
    wm = w.reshape(kk, cout)
    out["fwd: GEMM cols @ W (one, whole batch)"] = med_ms(lambda: np.matmul(cm, wm, out=y), reps)

    # backprop_input: blocked GEMM dy @ W^T -> dcols (tap-major), then per-tap strided adds
    wt = w.reshape(taps, cin, cout).transpose(0, 2, 1)  # (T, Cout, Cin)
    blocks = _blocks(n, ho, wo * kk * 4)
    buf = np.empty(max((b[1] - b[0]) * (b[3] - b[2]) for b in blocks) * wo * kk, np.float32)
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    taps_w = axis_taps(wd, kw, sw, dw, left, 0, wo)
    dx = np.zeros_like(x)
    out["bwd_in: np.zeros dx"] = med_ms(lambda: np.zeros_like(x), reps)

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
    out[key] = med_ms(gemms_only, reps)

    def gemm_and_adds():
        for b in blocks:
            tap_adds(block_gemm(*b), *b)

    out["bwd_in: tap strided adds (by difference)"] = med_ms(gemm_and_adds, reps) - out[key]

    # backprop_filter with the kept cols: one GEMM cols^T @ dy
    dwm = np.empty((kk, cout), np.float32)
    gm = g.reshape(m, cout)
    out["bwd_w: GEMM cols^T @ dy (kept cols)"] = med_ms(lambda: np.matmul(cm.T, gm, out=dwm), reps)
    return out


def graph_times(case: W.ConvCase, reps: int) -> dict[str, float]:
    fns = W.tc_conv(case)
    res = {"graph fwd (no_grad, blocked im2col)": med_ms(fns["fwd"], reps)}
    res["graph fwd+bwd"] = med_ms(fns["fwdbwd"], reps)
    x, w, g = W.conv_arrays(case)
    xt, wt = tc.Tensor(x, requires_grad=True), tc.Tensor(w, requires_grad=True)
    res["graph fwd only, requires_grad (whole cols kept)"] = med_ms(
        lambda: tc.conv2d(xt, wt, case.stride, case.padding), reps
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


def candidates(case: W.ConvCase, reps: int) -> dict[str, float]:
    x, w, g = W.conv_arrays(case)
    geom = conv_geometry("conv2d", x.shape, w.shape, case.stride, case.padding, 1, "NHWC")
    ho, wo = geom.output_hw
    kk = case.k * case.k * case.cin
    ref_cols = K.conv2d_windows(x, geom)
    cols = np.empty_like(ref_cols)
    cand_im2col_no_pad(x, geom, cols)
    assert np.array_equal(cols, ref_cols)
    res = {
        "im2col: current conv2d_windows (pad + copy)": med_ms(
            lambda: K.conv2d_windows(x, geom), reps
        ),
        "im2col: from x per tap, zero border only": med_ms(
            lambda: cand_im2col_no_pad(x, geom, cols), reps
        ),
    }
    res["fwd: current blocked conv2d (no_grad path)"] = med_ms(lambda: K.conv2d(x, w, geom), reps)
    res["fwd: conv2d_windows + one GEMM (graph path)"] = med_ms(
        lambda: K.conv2d(x, w, geom, cols=K.conv2d_windows(x, geom)), reps
    )
    res["bwd_w: blocked, rebuilding windows (no kept cols)"] = med_ms(
        lambda: K.conv2d_backprop_filter(x, w.shape, g, geom), reps
    )
    res["bwd_w: with kept cols"] = med_ms(
        lambda: K.conv2d_backprop_filter(x, w.shape, g, geom, cols=ref_cols), reps
    )
    ref_dx = K.conv2d_backprop_input(x.shape, w, g, geom)
    res["bwd_in: current (GEMM + tap adds)"] = med_ms(
        lambda: K.conv2d_backprop_input(x.shape, w, g, geom), reps
    )
    if case.stride == 1:
        dx = cand_bwd_input_direct(w, g, geom, x.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        res["bwd_in: direct conv of padded dy (im2col + GEMM into dx)"] = med_ms(
            lambda: cand_bwd_input_direct(w, g, geom, x.shape), reps
        )
    else:
        dx = cand_bwd_input_direct_s2(w, g, geom, x.shape)
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
        res["bwd_in: sub-pixel phases (im2col + GEMM per phase)"] = med_ms(
            lambda: cand_bwd_input_direct_s2(w, g, geom, x.shape), reps
        )
    m = case.n * ho * wo
    a = ref_cols.reshape(m, kk)
    wm = w.reshape(kk, case.cout)
    yy = np.empty((m, case.cout), np.float32)
    res["ref: bare GEMM (M,K)@(K,Cout) on a prebuilt window matrix"] = med_ms(
        lambda: np.matmul(a, wm, out=yy), reps
    )
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


def train_op_times(pool: str, reps: int) -> dict[str, float]:
    """ms per kernel-level piece of the training step, and the whole step."""
    fns = W.tc_train(pool)
    out = {"train step fwd+bwd+SGD (graph)": med_ms(fns["fwdbwd"], reps * 5)}
    out["train fwd, no_grad"] = med_ms(fns["fwd"], reps * 5)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="c,d,f")
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
            for k, v in train_op_times(pool, args.reps).items():
                print(f"  {v:8.3f} ms  {k}")
            print(cprofile_train(pool, 300, 25))
            continue
        case = W.CONV_CASES[key]
        gt = graph_times(case, args.reps)
        for k, v in gt.items():
            print(f"  {v:8.2f} ms  {k}")
        st = stages(case, args.reps)
        print("  -- stages of the graph fwd+bwd:")
        for k, v in st.items():
            print(f"  {v:8.2f} ms  {k}")
        total = sum(st.values())
        print(f"  {total:8.2f} ms  sum of stages")
        print(f"  {gt['graph fwd+bwd'] - total:8.2f} ms  engine + rest (graph fwd+bwd - stages)")
        print("  -- candidates:")
        for k, v in candidates(case, args.reps).items():
            print(f"  {v:8.2f} ms  {k}")
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

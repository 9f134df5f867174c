"""The conv lab and the shape oracle in 1-D and 3-D (tc.conv_lab / tc.shape_oracle with 3- or
5-dim shapes).

As in tests/test_lab.py, the frames are checked against the conv arithmetic written out here per
axis (``cell = o*s + t*d - p_lo`` on every spatial axis), which the lab never uses (it reads the
windows from tc.conv1d / tc.conv3d on coded probes); their sums against the engine's ops of that
rank; the oracle's ambiguous input sizes against what TensorFlow's transposed convs accept, and its
PyTorch calls against PyTorch's conv1d/conv3d/conv_transpose1d/conv_transpose3d.
"""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import tinygrad_conv as tc
from tinygrad_conv import lab as L
from tinygrad_conv.kernels.padding import conv_geometry_nd

CONV = {1: tc.conv1d, 3: tc.conv3d}
BPI = {1: tc.conv1d_backprop_input, 3: tc.conv3d_backprop_input_v2}
BPF = {1: tc.conv1d_backprop_filter, 3: tc.conv3d_backprop_filter_v2}

# ----------------------------------------------------------------------------- geometries


@st.composite
def geometries(draw, rank):
    """(x_shape, w_shape, strides, padding, dilations) of ``rank`` spatial axes, small enough to
    animate; pads may exceed the effective kernel (explicit pads larger than the kernel)."""
    n = draw(st.integers(1, 2))
    groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    top = 3 if rank == 1 else 2
    k = tuple(draw(st.integers(1, top)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    size = tuple(draw(st.integers(1, 9 if rank == 1 else 4)) for _ in range(rank))
    kind = draw(st.sampled_from(["VALID", "SAME", "explicit"]))
    if kind == "explicit":
        pads = [
            [
                draw(st.integers(0, d[a] * (k[a] - 1) + 3)),
                draw(st.integers(0, d[a] * (k[a] - 1) + 3)),
            ]
            for a in range(rank)
        ]
    else:
        pads = kind
    return (n, *size, groups * cg), (*k, cg, groups * og), s, pads, d


SPECIAL = {
    1: [
        ((1, 9, 1), (3, 1, 1), 2, "VALID", 2),  # stride > 1 with dilation > 1
        ((1, 6, 1), (2, 1, 1), 1, "SAME", 1),  # asymmetric SAME (odd total pad)
        ((1, 4, 1), (2, 1, 1), 3, [[4, 5]], 1),  # pads larger than the kernel
        ((2, 5, 4), (3, 2, 4), 2, "SAME", 2),  # groups = 2, unequal Cg / Og
        ((1, 7, 3), (2, 1, 6), 3, [[1, 0]], 2),  # depthwise-like, leftover
    ],
    3: [
        ((1, 5, 4, 4, 1), (2, 2, 2, 1, 1), (2, 2, 1), "VALID", (2, 1, 2)),  # stride with dilation
        ((1, 4, 3, 4, 1), (2, 2, 2, 1, 1), (1, 2, 1), "SAME", 1),  # asymmetric SAME
        ((1, 2, 2, 3, 1), (2, 1, 2, 1, 1), (3, 1, 2), [[3, 2], [0, 3], [1, 4]], 1),  # big pads
        ((1, 3, 3, 3, 4), (2, 2, 1, 2, 4), (2, 1, 1), "SAME", (1, 1, 2)),  # groups = 2
    ],
}


def _lab_or_reject(case, **kw):
    xs, ws, s, p, d = case
    rank = len(xs) - 2
    try:
        g = conv_geometry_nd("t", rank, xs, ws[:-2], s, p, d)
    except ValueError:
        assume(False)
    frames = xs[0] * int(np.prod(g.output_hw)) * ws[-1]
    assume(frames * int(np.prod(ws[:-1])) * 2 <= L.MAX_TERMS and frames <= 300)
    return L.conv_lab(xs, ws, s, p, d, **kw), g


def _expected_windows(g, ws):
    """Conv arithmetic per output position o: [(cell, tap)] with cell[a] = o[a] s[a] + t[a] d[a]
    - p_lo[a] on every spatial axis (a cell outside 0..size-1 is forward padding)."""
    out = {}
    for o in itertools.product(*(range(v) for v in g.output_hw)):
        out[o] = [
            (
                tuple(
                    o[a] * g.strides[a] + t[a] * g.dilations[a] - g.pads[a][0]
                    for a in range(g.rank)
                ),
                t,
            )
            for t in itertools.product(*(range(k) for k in ws[:-2]))
        ]
    return out


def _rows(arr):
    return [tuple(int(v) for v in r) for r in arr]


def _check_lab(case):
    lab, g = _lab_or_reject(case, seed=11)
    xs, ws, s, p, d = case
    r = len(xs) - 2
    n, size, cin = xs[0], xs[1:-1], xs[-1]
    k, cg, cout = ws[:-2], ws[-2], ws[-1]
    og = cout // (cin // cg)
    assert lab.rank == r and lab.layouts == (("NWC", "WIO") if r == 1 else ("NDHWC", "DHWIO"))
    x, wt, dy = lab.x, lab.w, lab.dy
    y = CONV[r](x, wt, s, p, dilations=d).data
    dx = BPI[r](np.array(xs), wt, dy, s, p, dilations=d).data
    dw = BPF[r](x, np.array(ws), dy, s, p, dilations=d).data
    # integer example values: every sum is exact whatever the order
    np.testing.assert_array_equal(lab.forward.rebuilt(), y)
    np.testing.assert_array_equal(lab.input_grad.rebuilt("scatter"), dx)
    np.testing.assert_array_equal(lab.input_grad.rebuilt("gather"), dx)
    np.testing.assert_array_equal(lab.filter_grad.rebuilt(), dw)
    assert len(lab.checks) == 6 and all(lab.checks.values()), lab.checks

    win = _expected_windows(g, ws)
    outs = list(itertools.product(*(range(v) for v in g.output_hw)))
    fwd = lab.forward.frames
    scat, gath = lab.input_grad.view("scatter").frames, lab.input_grad.view("gather").frames
    assert [f.index for f in fwd] == [
        (i, *o, q) for i in range(n) for o in outs for q in range(cout)
    ]
    assert [f.index for f in scat] == [f.index for f in fwd] == [f.index for f in gath]
    acc_s, acc_g = np.zeros(xs), np.zeros(xs)
    for f, fs, fg in zip(fwd, scat, gath, strict=True):
        i, o, q = f.index[0], f.index[1:-1], f.index[-1]
        grp = q // og
        expect = {((i, *cell, grp * cg + c), (*t, c, q)) for cell, t in win[o] for c in range(cg)}
        assert set(zip(_rows(f.sources), _rows(f.taps), strict=True)) == expect
        pad = [not all(0 <= row[1 + a] < size[a] for a in range(r)) for row in _rows(f.sources)]
        assert list(f.source_kinds == L.KIND_PAD) == pad
        assert f.partial[-1] == y[f.index] and np.all(f.a[pad] == 0)
        # scatter: the same cells, stamped; those in the padding dropped
        assert set(zip(_rows(fs.targets), _rows(fs.taps), strict=True)) == expect
        assert list(~fs.kept) == pad
        kept = {
            (t, tp)
            for t, tp, kk in zip(_rows(fs.targets), _rows(fs.taps), fs.kept, strict=True)
            if kk
        }
        # gather: the same (d_x cell, tap) pairs, the tap read from rot180(w), in/out swapped
        # (rot180 tap (k-1-t per axis), in-channel q - g*Og, out-channel g*Cg + c)
        assert all(tp[r] == q - grp * og for tp in _rows(fg.taps))
        got = {
            (t, (*(k[a] - 1 - tp[a] for a in range(r)), tp[r + 1] - grp * cg, q))
            for t, tp in zip(_rows(fg.targets), _rows(fg.taps), strict=True)
        }
        assert got == kept
        assert np.all(fg.a == dy[f.index]) and np.all(fs.a == dy[f.index])
        np.add.at(acc_s, tuple(fs.targets[fs.kept].T), fs.products[fs.kept])
        np.add.at(acc_g, tuple(fg.targets.T), fg.products)
        np.testing.assert_allclose(acc_s, acc_g, rtol=0, atol=1e-12)  # in step, every frame

    fgs = lab.filter_grad.frames
    taps = list(itertools.product(*(range(v) for v in k)))
    assert [f.index for f in fgs] == [
        (*t, c, q) for t in taps for c in range(cg) for q in range(cout)
    ]
    for f in fgs:
        t, c, q = f.index[:r], f.index[r], f.index[-1]
        chan = (q // og) * cg + c
        expect = {
            ((i, *cell, chan), (i, *o, q))
            for i in range(n)
            for o, cells in win.items()
            for cell, tt in cells
            if tt == t
        }
        assert set(zip(_rows(f.sources), _rows(f.taps), strict=True)) == expect
        assert f.partial[-1] == dw[f.index]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=geometries(1))
@example(case=SPECIAL[1][0])
@example(case=SPECIAL[1][1])
@example(case=SPECIAL[1][2])
@example(case=SPECIAL[1][3])
@example(case=SPECIAL[1][4])
def test_1d_frames_rebuild_the_ops_and_match_the_conv_arithmetic(case):
    _check_lab(case)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=geometries(3))
@example(case=SPECIAL[3][0])
@example(case=SPECIAL[3][1])
@example(case=SPECIAL[3][2])
@example(case=SPECIAL[3][3])
def test_3d_frames_rebuild_the_ops_and_match_the_conv_arithmetic(case):
    _check_lab(case)


@pytest.mark.parametrize("case", SPECIAL[1] + SPECIAL[3])
def test_float_values_and_partial_sums(case):
    xs, ws, s, p, d = case
    r = len(xs) - 2
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    g = conv_geometry_nd("t", r, xs, ws[:-2], s, p, d)
    dy = rng.standard_normal((xs[0], *g.output_hw, ws[-1]))
    lab = tc.conv_lab(xs, ws, s, p, d, x=x, w=w, dy=dy)
    assert all(lab.checks.values())
    np.testing.assert_allclose(
        lab.forward.rebuilt(), CONV[r](x, w, s, p, dilations=d).data, rtol=1e-12, atol=1e-12
    )
    ig = lab.input_grad
    for kk in range(len(ig.frames)):
        np.testing.assert_allclose(ig.partial(kk, "scatter"), ig.partial(kk, "gather"), atol=1e-12)
    np.testing.assert_allclose(ig.partial(len(ig.frames) - 1), ig.result, atol=1e-12)


@pytest.mark.parametrize(
    ("cl", "cf", "xs_cl", "ws"),
    [
        ("NWC", "NCW", (2, 7, 4), (3, 2, 4)),
        ("NDHWC", "NCDHW", (1, 3, 4, 3, 2), (2, 2, 2, 1, 2)),
    ],
)
def test_channels_first_is_the_same_lab(cl, cf, xs_cl, ws):
    rng = np.random.default_rng(0)
    r = len(xs_cl) - 2
    xs_cf = (xs_cl[0], xs_cl[-1], *xs_cl[1:-1])
    x_cf = rng.integers(-3, 4, xs_cf).astype(float)
    w = rng.integers(-3, 4, ws).astype(float)
    a = tc.conv_lab(xs_cf, ws, 2, "SAME", x=x_cf, w=w, data_format=cf.lower())
    b = tc.conv_lab(xs_cl, ws, 2, "SAME", x=np.moveaxis(x_cf, 1, -1), w=w, data_format=cl)
    assert a.data_format == cf and b.data_format == cl
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.forward.result, b.forward.result)
    np.testing.assert_array_equal(a.input_grad.result, b.input_grad.result)
    assert [f.index for f in a.filter_grad.frames] == [f.index for f in b.filter_grad.frames]
    # the lab's values are channels-last whatever data_format; the engine agrees in cf order
    y_cf = CONV[r](x_cf, w, 2, "SAME", data_format=cf).data
    np.testing.assert_array_equal(np.moveaxis(y_cf, 1, -1), a.forward.result)
    assert a.groups == 2 and "group 1: x / d_x channels" in a.text()


def test_zfull_kinds_3d():
    lab = tc.conv_lab((1, 3, 4, 5, 1), (3, 2, 2, 1, 1), (2, 2, 1), "SAME")
    kinds, vals = lab.zkinds, lab.zfull[0, ..., 0]
    assert kinds.shape == vals.shape and kinds.ndim == 3
    assert sorted(vals[kinds == L.KIND_VALUE].tolist()) == sorted(lab.dy.ravel().tolist())
    assert np.all(vals[kinds != L.KIND_VALUE] == 0)
    assert (kinds == L.KIND_INSERTED).any() and (kinds == L.KIND_PAD).any()
    # the inserted zeros are exactly the odd rows/cols of the dilated region along strided axes
    grid = lab.input_grad.grids["zfull"]
    assert grid.values.shape == lab.zfull.shape and grid.offset == (0, 0, 0)
    x = lab.forward.grids["x"]
    assert x.offset == tuple(-lo for lo, _ in lab.geometry.pads)


# ----------------------------------------------------------------------------- the shape oracle


def test_oracle_text_1d_and_3d():
    ora = tc.shape_oracle((1, 5, 1), (3, 1, 1), 2, "SAME")
    assert ora.rank == 1 and ora.overlap.shape == (5,)
    assert ora.text.split("\n") == [
        "shape oracle: x (1, 5, 1) NWC, w (3, 1, 1) WIO, groups 1",
        "width: i=5 k=3 s=2 d=1 pads=(1,1); e = d(k-1)+1 = 1*2+1 = 3; o = floor((i + p_lo + p_hi "
        "- e)/s) + 1 = floor((5+1+1-3)/2) + 1 = 3; leftover r = 0",
        "  SAME: o = ceil(5/2) = 3; total pad = max((o-1)s + e - i, 0) = max(2*2+3-5, 0) = 2; "
        "p_lo = total // 2 = 1, p_hi = total - p_lo = 1",
        "  input widths giving output 3: 5, 6 -> conv1d_transpose / conv1d_backprop_input need "
        "output_shape to choose",
        "overlap count of the transposed conv (taps landing on each input cell; uneven = "
        "checkerboard):",
        "  1 2 1 2 1",
        "  counts 1..2 (cells near the border get fewer taps; where a stride does not divide the "
        "kernel, neighbouring inner cells differ too: the checkerboard)",
        "PyTorch (NCW x, weight = w.permute(2, 1, 0)):",
        "  y  = F.conv1d(x, weight, stride=(2,), padding=(1,), dilation=(1,), groups=1)",
        "  dx = F.conv_transpose1d(dy, weight, stride=(2,), padding=(1,), output_padding=(0,), "
        "dilation=(1,), groups=1)",
    ]
    odd = tc.shape_oracle((1, 6, 1), (2, 1, 1), 1, "SAME")
    assert "p_hi = total - p_lo = 1 (the odd extra one goes to the right)" in odd.text
    ora3 = tc.shape_oracle((1, 4, 6, 6, 1), (2, 3, 3, 1, 1), (1, 2, 2), "SAME")
    t3 = ora3.text
    assert t3.startswith("shape oracle: x (1, 4, 6, 6, 1) NDHWC, w (2, 3, 3, 1, 1) DHWIO")
    assert (
        "  SAME: o = ceil(4/1) = 4; total pad = max((o-1)s + e - i, 0) = max(3*1+2-4, 0) = 1; "
        "p_lo = total // 2 = 0, p_hi = total - p_lo = 1 (the odd extra one goes to the back)"
    ) in t3
    assert "  input depths giving output 4: 4 (unique)" in t3
    assert (
        "  input heights giving output 3: 5, 6 -> conv3d_transpose / conv3d_backprop_input_v2 "
        "need output_shape to choose"
    ) in t3
    # the overlap map: one block per depth slice
    assert t3.count("  depth ") == 4 and (
        "  depth 0:\n  1 1 2 1 2 1\n  1 1 2 1 2 1\n  2 2 4 2 4 2\n" in t3
    )
    # by hand: depth taps cover cell 0 once and the others twice; h and w cells 2, 4 twice
    assert "  depth 1:\n  2 2 4 2 4 2\n" in t3
    assert ora3.overlap.shape == (4, 6, 6)
    assert "PyTorch (NCDHW x, weight = w.permute(4, 3, 0, 1, 2)):" in t3
    assert "F.conv3d(F.pad(x, (0, 1, 0, 1, 0, 1)), weight, stride=(1, 2, 2)" in t3


def _overlap_by_arithmetic(g, k):
    cnt = np.zeros(g.input_hw)
    for o in itertools.product(*(range(v) for v in g.output_hw)):
        for t in itertools.product(*(range(v) for v in k)):
            cell = tuple(
                o[a] * g.strides[a] + t[a] * g.dilations[a] - g.pads[a][0] for a in range(g.rank)
            )
            if all(0 <= cell[a] < g.input_hw[a] for a in range(g.rank)):
                cnt[cell] += 1
    return cnt


TORCH_CASES = (
    SPECIAL[1]
    + SPECIAL[3]
    + [
        ((1, 8, 2), (3, 2, 2), 2, "SAME", 1),
        ((1, 7, 1), (4, 1, 1), 3, "VALID", 1),
        ((1, 5, 6, 6, 2), (3, 3, 3, 1, 2), 2, "SAME", 1),
        ((1, 4, 5, 5, 1), (2, 2, 2, 1, 1), (1, 2, 1), "VALID", 1),
    ]
)


@pytest.mark.parametrize("case", TORCH_CASES)
def test_oracle_overlap_and_torch_calls(case):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    xs, ws, s, p, d = case
    r = len(xs) - 2
    ora = tc.shape_oracle(xs, ws, s, p, d)
    g = ora.geometry
    np.testing.assert_array_equal(ora.overlap, _overlap_by_arithmetic(g, ws[:-2]))
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    dy = rng.standard_normal((xs[0], *g.output_hw, ws[-1]))
    to_cf = (0, r + 1, *range(1, r + 1))
    tx = torch.tensor(x.transpose(to_cf))
    tw = torch.tensor(w.transpose(r + 1, r, *range(r)))
    conv = {1: F.conv1d, 3: F.conv3d}[r]
    conv_t = {1: F.conv_transpose1d, 3: F.conv_transpose3d}[r]
    fw = ora.torch_conv
    assert fw is ora.torch_conv2d  # the 2-D name still answers
    if fw["pad"]:
        tx = F.pad(tx, fw["pad"])
    ty = conv(tx, tw, stride=fw["stride"], padding=fw["padding"], dilation=fw["dilation"],
              groups=fw["groups"])  # fmt: skip
    back = (0, *range(2, r + 2), 1)
    np.testing.assert_allclose(
        ty.numpy().transpose(back), CONV[r](x, w, s, p, dilations=d).data, atol=1e-10
    )
    ref = BPI[r](np.array(xs), w, dy, s, p, dilations=d).data
    tdy = torch.tensor(dy.transpose(to_cf))
    tr = ora.torch_conv_transpose
    if tr is not None:
        got = conv_t(tdy, tw, stride=tr["stride"], padding=tr["padding"],
                     output_padding=tr["output_padding"], dilation=tr["dilation"],
                     groups=tr["groups"])  # fmt: skip
        np.testing.assert_allclose(got.numpy().transpose(back), ref, atol=1e-10)
        assert f"F.conv_transpose{r}d(dy, weight" in ora.text
    else:
        assert f"dx = no single F.conv_transpose{r}d call" in ora.text
        # no symmetric padding / output_padding pair reproduces dx
        for pads in itertools.product(range(4), repeat=r):
            ranges = [range(max(g.strides[a], g.dilations[a])) for a in range(r)]
            for op in itertools.product(*ranges):
                try:
                    got = conv_t(tdy, tw, stride=g.strides, padding=pads, output_padding=op,
                                 dilation=g.dilations, groups=ora.groups)  # fmt: skip
                except RuntimeError:
                    continue
                arr = got.numpy().transpose(back)
                assert arr.shape != ref.shape or not np.allclose(arr, ref)


def _tf_accepted(tf, rank, axis, size, k, s, padding):
    """Sizes along ``axis`` for which TF's transposed conv of ``rank`` accepts the output shape.

    The dilated kernel is given as its zero-inserted equivalent (``k`` = e taps; TF's CPU kernels
    refuse dilated backprop, conv3d refuses dilation outright): the same shape arithmetic. 1-D
    explicit pads go through conv2d_transpose on [N, 1, W, C] (TF's conv1d refuses explicit
    padding and is that 2-D conv inside)."""
    kk = [1] * rank
    kk[axis] = k
    ss = [1] * rank
    ss[axis] = s
    if isinstance(padding, str):
        pads = padding
    else:
        pads = [[0, 0] for _ in range(rank)]
        pads[axis] = list(padding)
    o = conv_geometry_nd("t", rank, (1, *size, 1), kk, ss, pads).output_hw
    y = tf.ones((1, *o, 1), tf.float64)
    ok = []
    for cand in range(1, size[axis] + 3 * s + k + 3):
        shape = [1, *size, 1]
        shape[axis + 1] = cand
        try:
            if rank == 3:
                f = tf.ones((*kk, 1, 1), tf.float64)
                tf.nn.conv3d_transpose(y, f, shape, strides=[1, *ss, 1], padding=pads)
            elif isinstance(pads, str):
                f = tf.ones((*kk, 1, 1), tf.float64)
                tf.nn.conv1d_transpose(y, f, shape, strides=ss[0], padding=pads)
            else:
                f = tf.ones((1, *kk, 1, 1), tf.float64)
                tf.nn.conv2d_transpose(
                    y[:, None], f, [1, 1, *shape[1:]], strides=[1, 1, ss[0], 1],
                    padding=[[0, 0], [0, 0], pads[0], [0, 0]],
                )  # fmt: skip
        except (tf.errors.InvalidArgumentError, ValueError):
            continue
        ok.append(cand)
    return tuple(ok)


@settings(max_examples=12, deadline=None)
@given(
    rank=st.sampled_from([1, 3]), axis=st.integers(0, 2), i=st.integers(1, 10),
    k=st.integers(1, 4), s=st.integers(1, 4), d=st.integers(1, 3),
    kind=st.sampled_from(["VALID", "SAME", "explicit"]), lo=st.integers(0, 5), hi=st.integers(0, 5),
)  # fmt: skip
@example(rank=1, axis=0, i=24, k=3, s=2, d=1, kind="SAME", lo=0, hi=0)  # 23 / 24 -> 12
@example(rank=3, axis=0, i=8, k=3, s=2, d=2, kind="SAME", lo=0, hi=0)
@example(rank=1, axis=0, i=5, k=2, s=3, d=2, kind="explicit", lo=4, hi=1)
def test_oracle_ambiguous_sizes_are_those_tf_accepts(rank, axis, i, k, s, d, kind, lo, hi):
    from tf_helpers import import_tensorflow

    tf = import_tensorflow()
    axis = axis % rank
    if rank == 3 and kind == "explicit":
        kind = "VALID"  # TF's conv3d family takes no explicit padding
    e = d * (k - 1) + 1
    assume(kind == "SAME" or i + (lo + hi if kind == "explicit" else 0) >= e)
    size = [3] * rank
    size[axis] = i
    kk, ss, dd = [1] * rank, [1] * rank, [1] * rank
    kk[axis], ss[axis], dd[axis] = k, s, d
    if kind == "explicit":
        pads = [[0, 0] for _ in range(rank)]
        pads[axis] = [lo, hi]
    else:
        pads = kind
    ora = tc.shape_oracle((1, *size, 1), (*kk, 1, 1), ss, pads, dd)
    want = _tf_accepted(tf, rank, axis, size, e, s, kind if kind != "explicit" else (lo, hi))
    assert ora.same_inputs[axis] == want, (axis, ora.text)
    assert i in want
    if (rank, i, k, s, kind) == (1, 24, 3, 2, "SAME"):
        assert want == (23, 24)


# ----------------------------------------------------------------------------- page, media, CLI


def _page_data(text):
    m = re.search(r'<script type="application/json" id="lab-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


@pytest.mark.parametrize(
    ("xs", "ws", "s", "p"),
    [((1, 6, 2), (3, 1, 2), 2, [[2, 1]]), ((1, 3, 3, 3, 1), (2, 2, 2, 1, 1), (2, 1, 1), "SAME")],
)
def test_page_carries_the_nd_frames(tmp_path, xs, ws, s, p):
    lab = tc.conv_lab(xs, ws, s, p, seed=2)
    r = len(xs) - 2
    text = lab.save_html(tmp_path / "lab.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)
    data = _page_data(text)
    assert data["rank"] == r and data["m"] == r + 2
    for a, anim in zip(data["anims"], lab.animations, strict=True):
        for key, gd in a["grids"].items():
            assert gd["filter"] == (key in ("w", "wrot", "dw")), key
            assert len(gd["shape"]) == r + 2 and len(gd["offset"]) == r
        for v, view in zip(a["views"], anim.views, strict=True):
            for fd, f in zip(v["frames"], view.frames, strict=True):
                assert len(fd["i"]) == r + 2 and fd["i"] == list(f.index)
                assert fd["t"] == f.targets.ravel().tolist() and len(fd["t"]) == (r + 2) * len(f)
    x = data["anims"][0]["grids"]["x"]
    assert x["offset"] == [-lo for lo, _ in lab.geometry.pads]
    assert x["shape"] == list(lab.forward.grids["x"].values.shape)
    slices = data["overlap_slices"]
    if r == 1:
        assert slices == [{"title": "", "rows": [lab.oracle.overlap.astype(int).tolist()]}]
    else:
        assert [sl["title"] for sl in slices] == [f"d={i}" for i in range(xs[1])]
        assert [sl["rows"] for sl in slices] == lab.oracle.overlap.astype(int).tolist()


def test_svg_and_gif_3d_show_depth_slices(tmp_path):
    from PIL import Image

    lab = tc.conv_lab((1, 3, 3, 3, 1), (2, 2, 2, 1, 1), 1, [[1, 0], [0, 0], [0, 0]], seed=3)
    fwd = lab.forward
    root = ET.parse(fwd.save_svg(tmp_path / "f.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()) for t in root.iter(f"{ns}text")]
    # x's padded canvas starts at depth -1 (the front pad); the filter's taps are kd=0, 1
    assert [t for t in texts if t.startswith("n=0 c=0 d=")][:4] == [
        "n=0 c=0 d=-1", "n=0 c=0 d=0", "n=0 c=0 d=1", "n=0 c=0 d=2",
    ]  # fmt: skip
    assert "in=0 out=0 kd=0" in texts and "in=0 out=0 kd=1" in texts
    frames = [g for g in root.iter(f"{ns}g") if g.get("class") == "frame"]
    assert len(frames) == len(fwd.frames) == 2 * 2 * 3 * 1
    im = Image.open(fwd.save_gif(tmp_path / "f.gif"))
    assert im.n_frames == len(fwd.frames)
    one = tc.conv_lab((1, 5, 1), (2, 1, 1), 2, "VALID", seed=1)
    root = ET.parse(one.input_grad.save_svg(tmp_path / "g.svg")).getroot()
    groups = [g for g in root.iter(f"{ns}g") if g.get("class") == "frame"]
    assert len(groups) == len(one.input_grad.frames) == 2


def test_cli_lab_1d_and_3d(tmp_path, capsys):
    from tinygrad_conv.__main__ import main

    out = tmp_path / "lab1.html"
    code = main([
        "lab", "--x-shape", "1,7,1", "--w-shape", "3,1,1", "--strides", "2",
        "--padding", "SAME", "--out", str(out),
    ])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "input widths giving output 4: 7, 8 -> conv1d_transpose" in text
    assert "check gather frames sum to conv1d_backprop_input(x.shape, w, dy): OK" in text
    assert _page_data(out.read_text())["anims"][0]["frames"] == 4
    out3 = tmp_path / "lab3.html"
    code = main([
        "lab", "--x-shape", "1,1,3,4,4", "--w-shape", "2,2,2,1,1", "--strides", "1,2,1",
        "--padding", "1,0,0,1,1,1", "--dilations", "1,1,2", "--data-format", "NCDHW",
        "--out", str(out3), "--gif", str(tmp_path / "a.gif"),
    ])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert (
        "strides (1, 2, 1), padding [[1, 0], [0, 1], [1, 1]] -> pads ((1, 0), (0, 1), (1, 1)), "
        "dilations (1, 1, 2)"
    ) in text
    assert "check conv3d(x swapped, dy swapped) == conv3d_backprop_filter_v2: OK" in text
    assert (tmp_path / "a.gif").stat().st_size > 0
    # bad values: clear errors, status 2
    assert main(["lab", "--x-shape", "1,7", "--out", ""]) == 2
    assert capsys.readouterr().err == (
        "error: --x-shape (3, 4 or 5 values: 1-D, 2-D or 3-D) must have 3 or 4 or 5 values, "
        "got '1,7'\n"
    )
    assert main(["lab", "--x-shape", "1,7,1", "--w-shape", "3,3,1,1", "--out", ""]) == 2
    assert capsys.readouterr().err == (
        "error: --w-shape (for a 1-D --x-shape) must have 3 values, got '3,3,1,1'\n"
    )
    assert main(["lab", "--x-shape", "1,7,1", "--w-shape", "3,1,1", "--padding", "1,1,1,1",
                 "--out", ""]) == 2  # fmt: skip
    assert "--padding (SAME, VALID or left,right) must have 2 values" in capsys.readouterr().err
    assert main(["lab", "--x-shape", "1,7,1", "--w-shape", "3,1,1", "--data-format", "NHWC",
                 "--out", ""]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        "error: conv_lab: data_format must be 'NWC' or 'NCW' for a 1-D x_shape, got 'NHWC'\n"
    )


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors_nd():
    def err(*a, **kw):
        with pytest.raises((ValueError, TypeError)) as ei:
            tc.conv_lab(*a, **kw)
        return str(ei.value)

    assert err((1, 5), (3, 1, 1)) == (
        "conv_lab: x_shape (1, 5) has 2 dims; the lab takes 3 (1-D: NWC or NCW), 4 (2-D: NHWC or "
        "NCHW) or 5 (3-D: NDHWC or NCDHW)"
    )
    assert err((1, 2, 2, 2, 2, 1), (1, 1, 1, 1, 1, 1)).startswith(
        "conv_lab: x_shape (1, 2, 2, 2, 2, 1) has 6 dims"
    )
    assert err((1, 5, 1), (3, 3, 1, 1)) == (
        "conv_lab: w_shape (3, 3, 1, 1) must have 3 dims (WIO) for the 1-D input x_shape "
        "(1, 5, 1) (NWC)"
    )
    assert err((1, 4, 4, 4, 1), (3, 3, 1, 1)) == (
        "conv_lab: w_shape (3, 3, 1, 1) must have 5 dims (DHWIO) for the 3-D input x_shape "
        "(1, 4, 4, 4, 1) (NDHWC)"
    )
    assert err((1, 5, 1), (3, 1, 1), data_format="NDHWC") == (
        "conv_lab: data_format must be 'NWC' or 'NCW' for a 1-D x_shape, got 'NDHWC'"
    )
    assert err((1, 5, 3), (3, 2, 2)) == (
        "conv_lab: input channels 3 (input shape (1, 5, 3), NWC) must be a multiple of the "
        "filter's in-channels 2 (filter shape (3, 2, 2), WIO)"
    )
    assert err((1, 3, 3, 3, 4), (1, 1, 1, 2, 3)) == (
        "conv_lab: filter out-channels 3 (filter shape (1, 1, 1, 2, 3)) must be divisible by "
        "groups = 4 // 2 = 2 (input shape (1, 3, 3, 3, 4))"
    )
    assert err((1, 2, 1), (3, 1, 1)).startswith(
        "conv_lab: effective kernel 3 (kernel (3,), dilations (1,)) is larger than the padded "
        "input 2 along spatial axis 0"
    )
    assert err((1, 5, 1), (3, 1, 1), 2, "SAME", dy=np.zeros((1, 2, 1))) == (
        "conv_lab: dy has shape (1, 2, 1) but the geometry needs (1, 3, 1) (NWC)"
    )
    assert err((1, 1, 3, 3, 3), (2, 2, 2, 1, 1), x=np.zeros((1, 3, 3, 3, 1)),
               data_format="NCDHW") == (
        "conv_lab: x has shape (1, 3, 3, 3, 1) but the geometry needs (1, 1, 3, 3, 3) (NCDHW)"
    )  # fmt: skip
    assert err((1, 3, 3, 3, 1), (2, 2, 2, 1, 1), w=np.zeros((2, 2, 1, 1))) == (
        "conv_lab: w has shape (2, 2, 1, 1) but the geometry needs (2, 2, 2, 1, 1) (DHWIO)"
    )
    assert err((1, 5.0, 1), (3, 1, 1)) == "conv_lab: x_shape must contain ints, got (1, 5.0, 1)"
    assert (
        err((0, 5, 1), (3, 1, 1)) == "conv_lab: x_shape (0, 5, 1) has batch 0: nothing to animate"
    )
    assert err((1, 12, 12, 12, 1), (2, 2, 2, 1, 1)) == (
        "conv_lab: the forward animation would have 1331 frames (N*Do*Ho*Wo*Cout = "
        "1*11*11*11*1) and 10648 products; the limits are MAX_FRAMES = 1024 frames and "
        "MAX_TERMS = 60000 products per animation: use a smaller example"
    )
    assert err((1, 3, 40), (3, 40, 40)).startswith(
        "conv_lab: the filter_grad animation would have 4800 frames (k*Cin/groups*Cout = 3*40*40)"
    )
    assert err((1, 5, 1), (3, 1, 1), strides=(1, 1)).startswith("conv_lab: strides must be")
    with pytest.raises(ValueError, match="shape_oracle: x_shape"):
        tc.shape_oracle((5,), (3, 1, 1))
    # the oracle has no frame limit
    assert tc.shape_oracle((1, 40, 40, 40, 1), (3, 3, 3, 1, 1)).geometry.output_hw == (38, 38, 38)

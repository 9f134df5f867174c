"""The conv lab (tc.conv_lab): frames, the shape oracle, pages and media, bad input.

The frames are checked against the conv arithmetic written out here (``a*s + u*d - p_lo``), which
the lab itself never uses (it reads the windows from the engine's conv2d on coded probes); their
sums against the engine's ops; the oracle's ambiguous input sizes against what TensorFlow's
conv2d_transpose accepts, and its PyTorch calls against PyTorch.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import tinygrad_conv as tc
from tinygrad_conv import lab as L
from tinygrad_conv.kernels.padding import conv_geometry

# ----------------------------------------------------------------------------- geometries


@st.composite
def geometries(draw):
    """(x_shape, w_shape, strides, padding, dilations) with a non-empty output, within limits."""
    n = draw(st.integers(1, 2))
    groups, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kind = draw(st.sampled_from(["VALID", "SAME", "explicit"]))
    if kind == "explicit":  # pads up to the effective kernel + 2: larger than the kernel
        pads = [
            [draw(st.integers(0, d[i] * (k - 1) + 3)), draw(st.integers(0, d[i] * (k - 1) + 3))]
            for i, k in enumerate((kh, kw))
        ]
    else:
        pads = kind
    return (n, h, w, groups * cg), (kh, kw, cg, groups * og), s, pads, d


def _lab_or_reject(case, **kw):
    xs, ws, s, p, d = case
    try:
        g = conv_geometry("t", xs, ws, s, p, d)
    except ValueError:
        assume(False)
    frames = xs[0] * g.output_hw[0] * g.output_hw[1] * ws[3]
    assume(frames * ws[0] * ws[1] * ws[2] * 2 <= L.MAX_TERMS and frames <= 400)
    return L.conv_lab(xs, ws, s, p, d, **kw), g


SPECIAL = [
    ((1, 7, 7, 1), (3, 3, 1, 1), (2, 2), "VALID", (2, 2)),  # stride > 1 with dilation > 1
    ((1, 6, 5, 1), (2, 3, 1, 1), (2, 2), "SAME", (1, 1)),  # asymmetric SAME (odd total pad)
    ((1, 4, 4, 1), (2, 2, 1, 1), (1, 3), [[4, 3], [0, 5]], (1, 1)),  # pads larger than the kernel
    ((2, 5, 5, 4), (3, 2, 2, 4), (2, 1), "SAME", (1, 2)),  # groups = 2, unequal Cg/Og
    ((1, 5, 6, 3), (2, 2, 1, 6), (3, 2), [[1, 0], [2, 2]], (2, 1)),  # depthwise-like, leftover
]


def _expected_windows(g, xs, ws):
    """Conv arithmetic per output (a, b): {(h, w, u, v)} with h = a*s + u*d - p_lo (may be pad)."""
    (sh, sw), (dh, dw), ((pt, _), (pl, _)) = g.strides, g.dilations, g.pads
    return {
        (a, b): [
            (a * sh + u * dh - pt, b * sw + v * dw - pl, u, v)
            for u in range(ws[0])
            for v in range(ws[1])
        ]
        for a in range(g.output_hw[0])
        for b in range(g.output_hw[1])
    }


def _rows(arr):
    return [tuple(int(v) for v in r) for r in arr]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=geometries())
@example(case=SPECIAL[0])
@example(case=SPECIAL[1])
@example(case=SPECIAL[2])
@example(case=SPECIAL[3])
@example(case=SPECIAL[4])
def test_frames_rebuild_the_ops_and_match_the_conv_arithmetic(case):
    lab, g = _lab_or_reject(case, seed=7)
    xs, ws, s, p, d = case
    n, h, w, cin = xs
    kh, kw, cg, cout = ws
    og = cout // (cin // cg)
    x, wt, dy = lab.x, lab.w, lab.dy
    y = tc.conv2d(x, wt, s, p, dilations=d).data
    dx = tc.conv2d_backprop_input(np.array(xs), wt, dy, s, p, dilations=d).data
    dw = tc.conv2d_backprop_filter(x, np.array(ws), dy, s, p, dilations=d).data
    # integer example values: every sum is exact whatever the order
    np.testing.assert_array_equal(lab.forward.rebuilt(), y)
    np.testing.assert_array_equal(lab.input_grad.rebuilt("scatter"), dx)
    np.testing.assert_array_equal(lab.input_grad.rebuilt("gather"), dx)
    np.testing.assert_array_equal(lab.filter_grad.rebuilt(), dw)
    assert all(lab.checks.values()), lab.checks

    win = _expected_windows(g, xs, ws)
    fwd = lab.forward.frames
    scat, gath = lab.input_grad.view("scatter").frames, lab.input_grad.view("gather").frames
    assert [f.index for f in fwd] == [
        (i, a, b, q) for i in range(n) for a in range(g.output_hw[0])
        for b in range(g.output_hw[1]) for q in range(cout)
    ]  # fmt: skip
    assert [f.index for f in scat] == [f.index for f in fwd] == [f.index for f in gath]
    acc_s, acc_g = np.zeros(xs), np.zeros(xs)
    for f, fs, fg in zip(fwd, scat, gath, strict=True):
        i, a, b, q = f.index
        grp = q // og
        expect = {
            ((i, hh, ww, grp * cg + c), (u, v, c, q))
            for hh, ww, u, v in win[(a, b)]
            for c in range(cg)
        }
        assert set(zip(_rows(f.sources), _rows(f.taps), strict=True)) == expect
        pad = [not (0 <= r[1] < h and 0 <= r[2] < w) for r in _rows(f.sources)]
        assert list(f.source_kinds == L.KIND_PAD) == pad
        assert f.partial[-1] == y[f.index] and np.all(f.a[pad] == 0)
        # scatter: the same cells, stamped; those in the padding dropped
        assert set(zip(_rows(fs.targets), _rows(fs.taps), strict=True)) == expect
        assert list(~fs.kept) == pad
        kept = {
            (t, tp)
            for t, tp, k in zip(_rows(fs.targets), _rows(fs.taps), fs.kept, strict=True)
            if k
        }
        # gather: the same (d_x cell, tap) pairs, the tap read from rot180(w)
        got = {
            (t, (kh - 1 - tp[0], kw - 1 - tp[1], tp[3] - grp * cg, q))
            for t, tp in zip(_rows(fg.targets), _rows(fg.taps), strict=True)
        }
        assert got == kept
        assert np.all(fg.a == dy[f.index]) and np.all(fs.a == dy[f.index])
        np.add.at(acc_s, tuple(fs.targets[fs.kept].T), fs.products[fs.kept])
        np.add.at(acc_g, tuple(fg.targets.T), fg.products)
        np.testing.assert_allclose(acc_s, acc_g, rtol=0, atol=1e-12)  # in step, every frame
        if fs.kept.any():
            np.testing.assert_array_equal(fs.partial[fs.kept], acc_s[tuple(fs.targets[fs.kept].T)])

    fg_frames = lab.filter_grad.frames
    assert [f.index for f in fg_frames] == [
        (u, v, c, q) for u in range(kh) for v in range(kw) for c in range(cg) for q in range(cout)
    ]
    for f in fg_frames:
        u, v, c, q = f.index
        chan = (q // og) * cg + c
        expect = {
            ((i, hh, ww, chan), (i, a, b, q))
            for i in range(n)
            for (a, b), cells in win.items()
            for hh, ww, uu, vv in cells
            if (uu, vv) == (u, v)
        }
        assert set(zip(_rows(f.sources), _rows(f.taps), strict=True)) == expect
        assert f.partial[-1] == dw[f.index]


@pytest.mark.parametrize("case", SPECIAL)
def test_float_values_and_partial_sums(case):
    xs, ws, s, p, d = case
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    g = conv_geometry("t", xs, ws, s, p, d)
    dy = rng.standard_normal((xs[0], *g.output_hw, ws[3]))
    lab = tc.conv_lab(xs, ws, s, p, d, x=x, w=w, dy=dy)
    assert all(lab.checks.values())
    np.testing.assert_allclose(lab.forward.rebuilt(), tc.conv2d(x, w, s, p, dilations=d).data,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    ig = lab.input_grad
    for k in (0, len(ig.frames) // 2, len(ig.frames) - 1):
        np.testing.assert_allclose(ig.partial(k, "scatter"), ig.partial(k, "gather"), atol=1e-12)
    assert np.all(ig.partial(-1) == 0)
    np.testing.assert_allclose(ig.partial(len(ig.frames) - 1), ig.result, atol=1e-12)
    with pytest.raises(IndexError, match=r"conv_lab: frame 99999 out of range"):
        ig.partial(99999)


def test_zfull_kinds_and_data_format_nchw():
    lab = tc.conv_lab((1, 4, 5, 1), (3, 3, 1, 1), 2, "SAME")
    # zfull: dy cells every s-th row/col inside the dilated region, inserted zeros between,
    # padding around; its dy cells are exactly dy (derivations.dilate + pad_or_crop)
    kinds = lab.zkinds
    vals = lab.zfull[0, :, :, 0]
    assert sorted(vals[kinds == L.KIND_VALUE].tolist()) == sorted(lab.dy.ravel().tolist())
    assert np.all(vals[kinds != L.KIND_VALUE] == 0)
    assert (kinds == L.KIND_INSERTED).any() and (kinds == L.KIND_PAD).any()
    # NCHW: the same lab as NHWC with transposed arrays
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (2, 4, 5, 6)).astype(float)  # NCHW: C=4
    w = rng.integers(-3, 4, (2, 2, 2, 4)).astype(float)
    a = tc.conv_lab((2, 4, 5, 6), (2, 2, 2, 4), 1, "SAME", x=x, w=w, data_format="NCHW")
    b = tc.conv_lab((2, 5, 6, 4), (2, 2, 2, 4), 1, "SAME", x=x.transpose(0, 2, 3, 1), w=w)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.forward.result, b.forward.result)
    assert [f.index for f in a.filter_grad.frames] == [f.index for f in b.filter_grad.frames]
    assert a.groups == 2 and a.group_of_channel(3) == 1 and a.group_of_output(1) == 0
    assert "group 1: x / d_x channels 2..3, y / dy / w out-channels 2..3" in a.text()


# ----------------------------------------------------------------------------- the shape oracle


def _tf_accepted_sizes(tf, axis, i, k, s, d, padding, other):
    """Input sizes along ``axis`` for which tf.nn.conv2d_transpose accepts the output shape.

    TF's CPU backprop kernels refuse dilations > 1, so the dilated filter is given as its
    zero-inserted equivalent (e = d(k-1)+1 taps, dilation 1): the same shape arithmetic."""
    e = d * (k - 1) + 1
    kh, kw = (e, 1) if axis == 0 else (1, e)
    sh, sw = (s, 1) if axis == 0 else (1, s)
    if isinstance(padding, str):
        tfp = padding
        pads = [[0, 0], [0, 0]]
    else:
        pads = [[0, 0], [0, 0]]
        pads[axis] = list(padding)
        tfp = [[0, 0], pads[0], pads[1], [0, 0]]
    hw = [other, other]
    hw[axis] = i
    o = conv_geometry(
        "t", (1, *hw, 1), (kh, kw, 1, 1), (sh, sw), tfp if isinstance(tfp, str) else pads
    ).output_hw
    y = tf.ones((1, *o, 1), tf.float64)
    f = tf.ones((kh, kw, 1, 1), tf.float64)
    ok = []
    for cand in range(1, i + 3 * s + e + 3):
        shape = [1, other, other, 1]
        shape[axis + 1] = cand
        try:
            tf.nn.conv2d_transpose(y, f, shape, strides=[1, sh, sw, 1], padding=tfp)
        except (tf.errors.InvalidArgumentError, ValueError):
            continue
        ok.append(cand)
    return tuple(ok)


@settings(max_examples=25, deadline=None)
@given(
    i=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 4), d=st.integers(1, 3),
    kind=st.sampled_from(["VALID", "SAME", "explicit"]), lo=st.integers(0, 6), hi=st.integers(0, 6),
)  # fmt: skip
@example(i=24, k=3, s=2, d=1, kind="SAME", lo=0, hi=0)  # the 23 / 24 -> 12
def test_oracle_ambiguous_sizes_are_those_tf_conv2d_transpose_accepts(i, k, s, d, kind, lo, hi):
    from tf_helpers import import_tensorflow

    tf = import_tensorflow()
    e = d * (k - 1) + 1
    padding = kind if kind != "explicit" else [lo, hi]
    assume(i + (lo + hi if kind == "explicit" else 0) >= e or kind == "SAME")
    for axis in (0, 1):
        pads = [[0, 0], [0, 0]]
        if kind == "explicit":
            pads[axis] = [lo, hi]
        hw = [3, 3]
        hw[axis] = i
        kk = [1, 1]
        kk[axis] = k
        dd = [1, 1]
        dd[axis] = d
        ss = [1, 1]
        ss[axis] = s
        ora = tc.shape_oracle(
            (1, *hw, 1), (*kk, 1, 1), ss, kind if kind != "explicit" else pads, dd
        )
        want = _tf_accepted_sizes(tf, axis, i, k, s, d, padding, 3)
        assert ora.same_inputs[axis] == want, (axis, ora.text)
        assert i in want
        if (i, k, s, kind) == (24, 3, 2, "SAME"):
            assert ora.same_inputs[axis] == (23, 24)


def test_oracle_text_overlap_and_torch_calls():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    ora = tc.shape_oracle((1, 5, 5, 1), (3, 3, 1, 1), 2, "SAME")
    text = ora.text
    assert (
        "height: i=5 k=3 s=2 d=1 pads=(1,1); e = d(k-1)+1 = 1*2+1 = 3; o = floor((i + p_lo + "
        "p_hi - e)/s) + 1 = floor((5+1+1-3)/2) + 1 = 3; leftover r = 0" in text
    )
    assert (
        "  SAME: o = ceil(5/2) = 3; total pad = max((o-1)s + e - i, 0) = max(2*2+3-5, 0) = 2; p_lo = total // 2 = 1, p_hi = total - p_lo = 1"
        in text
    )
    assert "  input heights giving output 3: 5, 6 -> conv2d_transpose" in text
    assert "  1 2 1 2 1\n  2 4 2 4 2\n" in text
    odd = tc.shape_oracle((1, 6, 6, 1), (2, 2, 1, 1), 1, "SAME")
    assert "p_hi = total - p_lo = 1 (the odd extra one goes to the bottom/right)" in odd.text

    rng = np.random.default_rng(5)
    cases = SPECIAL + [
        ((1, 8, 8, 2), (3, 3, 2, 2), 2, "SAME", 1),
        ((1, 7, 7, 1), (4, 4, 1, 1), 3, "VALID", 1),
    ]
    seen_none = seen_call = False
    for xs, ws, s, p, d in cases:
        ora = tc.shape_oracle(xs, ws, s, p, d)
        g = ora.geometry
        # overlap counts by the conv arithmetic
        cnt = np.zeros(g.input_hw)
        for a in range(g.output_hw[0]):
            for b in range(g.output_hw[1]):
                for u in range(ws[0]):
                    for v in range(ws[1]):
                        hh = a * g.strides[0] + u * g.dilations[0] - g.pads[0][0]
                        ww = b * g.strides[1] + v * g.dilations[1] - g.pads[1][0]
                        if 0 <= hh < xs[1] and 0 <= ww < xs[2]:
                            cnt[hh, ww] += 1
        np.testing.assert_array_equal(ora.overlap, cnt)
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        dy = rng.standard_normal((xs[0], *g.output_hw, ws[3]))
        tx = torch.tensor(x.transpose(0, 3, 1, 2))
        tw = torch.tensor(w.transpose(3, 2, 0, 1))
        fw = ora.torch_conv2d
        if fw["pad"]:
            tx = F.pad(tx, fw["pad"])
        ty = F.conv2d(
            tx,
            tw,
            stride=fw["stride"],
            padding=fw["padding"],
            dilation=fw["dilation"],
            groups=fw["groups"],
        )
        np.testing.assert_allclose(
            ty.numpy().transpose(0, 2, 3, 1), tc.conv2d(x, w, s, p, dilations=d).data, atol=1e-10
        )
        ref = tc.conv2d_backprop_input(np.array(xs), w, dy, s, p, dilations=d).data
        tdy = torch.tensor(dy.transpose(0, 3, 1, 2))
        tr = ora.torch_conv_transpose2d
        if tr is not None:
            seen_call = True
            got = F.conv_transpose2d(
                tdy,
                tw,
                stride=tr["stride"],
                padding=tr["padding"],
                output_padding=tr["output_padding"],
                dilation=tr["dilation"],
                groups=tr["groups"],
            )
            np.testing.assert_allclose(got.numpy().transpose(0, 2, 3, 1), ref, atol=1e-10)
            assert (
                f"output_padding=({tr['output_padding'][0]}, {tr['output_padding'][1]})" in ora.text
            )
        else:
            seen_none = True
            assert "dx = no single F.conv_transpose2d call" in ora.text
            # no symmetric padding / output_padding pair reproduces dx
            for ph in range(0, 4):
                for pw in range(0, 4):
                    for oph in range(max(g.strides[0], g.dilations[0])):
                        for opw in range(max(g.strides[1], g.dilations[1])):
                            try:
                                got = F.conv_transpose2d(
                                    tdy,
                                    tw,
                                    stride=g.strides,
                                    padding=(ph, pw),
                                    output_padding=(oph, opw),
                                    dilation=g.dilations,
                                    groups=ora.groups,
                                )
                            except RuntimeError:
                                continue
                            arr = got.numpy().transpose(0, 2, 3, 1)
                            assert arr.shape != ref.shape or not np.allclose(arr, ref)
    assert seen_none and seen_call


# ----------------------------------------------------------------------------- page, media, CLI


def _page_data(text):
    m = re.search(r'<script type="application/json" id="lab-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def test_save_html_is_offline_and_carries_the_frames(tmp_path):
    lab = tc.conv_lab((1, 4, 4, 2), (2, 2, 1, 2), 2, [[1, 0], [0, 1]], seed=2)
    path = lab.save_html(tmp_path / "lab.html")
    text = path.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)
    data = _page_data(text)
    assert [a["name"] for a in data["anims"]] == ["forward", "input_grad", "filter_grad"]
    for a, anim in zip(data["anims"], lab.animations, strict=True):
        for v, view in zip(a["views"], anim.views, strict=True):
            assert len(v["frames"]) == len(view.frames)
            for fd, f in zip(v["frames"], view.frames, strict=True):
                assert fd["i"] == list(f.index)
                assert fd["s"] == f.sources.ravel().tolist()
                assert fd["x"] == f.products.tolist()
    assert data["oracle"] == lab.oracle.text
    only = _page_data(lab.forward.save_html(tmp_path / "f.html").read_text())
    assert [a["name"] for a in only["anims"]] == ["forward"]
    assert (tmp_path / "f.html").stat().st_mode & 0o777 == 0o644
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lab.save_html(tmp_path / "missing" / "x.html")


def test_save_svg_and_gif(tmp_path):
    lab = tc.conv_lab((1, 4, 4, 1), (3, 3, 1, 1), 2, "SAME", seed=1)
    ig = lab.input_grad
    root = ET.parse(ig.save_svg(tmp_path / "a.svg")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g for g in root.iter(f"{ns}g") if g.get("class") == "frame"]
    assert len(groups) == len(ig.frames)
    assert all(len(list(g.iter(f"{ns}animate"))) == 1 for g in groups)
    # every frame shows the running sums of the frames so far: one text per change of a cell,
    # visible over frames [k0, k1); at each frame k the visible texts are ig.partial(k)
    sums = [t for t in root.iter(f"{ns}text") if t.get("class") == "sum"]
    for k in (0, len(ig.frames) // 2, len(ig.frames) - 1):
        shown = []
        for t in sums:
            k0, k1 = (int(v) for v in t.get("data-frames").split("-"))
            if k0 <= k < k1:
                shown.append(float("".join(t.itertext())))
        touched = {tuple(r) for f in ig.frames[: k + 1] for r in f.targets[f.kept]}
        part = ig.partial(k)
        expect = [float(part[i]) for i in touched]
        assert sorted(shown) == sorted(expect * 2)  # the scatter and the gather d_x
    from PIL import Image

    im = Image.open(lab.forward.save_gif(tmp_path / "f.gif"))
    assert im.n_frames == len(lab.forward.frames) and im.info["loop"] == 0
    big = tc.conv_lab((1, 23, 23, 1), (3, 3, 1, 1))
    with pytest.raises(ValueError) as ei:
        big.forward.save_gif(tmp_path / "big.gif")
    assert str(ei.value) == (
        "conv_lab: save_gif of forward would hold 441 pictures; the limit is MAX_GIF_FRAMES = 400"
        " (Pillow keeps every picture in memory): use save_svg or save_html, or a smaller example"
    )


def test_cli_lab(tmp_path, capsys):
    from tinygrad_conv.__main__ import main

    out = tmp_path / "lab.html"
    code = main([
        "lab", "--x-shape", "1,5,5,1", "--w-shape", "3,3,1,1", "--strides", "2",
        "--padding", "SAME", "--out", str(out), "--svg", str(tmp_path / "a.svg"),
    ])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "input heights giving output 3: 5, 6" in text and f"wrote {out}" in text
    assert "check gather frames sum to conv2d_backprop_input(x.shape, w, dy): OK" in text
    assert _page_data(out.read_text())["anims"][0]["frames"] == 9
    assert main(["lab", "--x-shape", "1,2,2,1", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: conv_lab: filter (shape (3, 3, 1, 1), dilations (1, 1)): effective height 3"
    )
    assert (
        main(
            [
                "lab",
                "--x-shape",
                "1,3,5,5",
                "--w-shape",
                "3,3,3,2",
                "--data-format",
                "NCHW",
                "--out",
                "",
            ]
        )
        == 0
    )


def test_explain_conv_is_built_on_the_lab_frames():
    e = tc.explain_conv((1, 5, 5, 2), (3, 3, 1, 2), 2, "SAME", 2, seed=4)
    lab = tc.conv_lab((1, 5, 5, 2), (3, 3, 1, 2), 2, "SAME", 2, seed=4)
    np.testing.assert_array_equal(e.step("d_x").array, lab.input_grad.rebuilt("gather"))
    np.testing.assert_array_equal(e.step("d_w").array, lab.filter_grad.rebuilt())
    np.testing.assert_array_equal(e.step("dy_padded").array, lab.zfull)
    assert all(e.checks.values()) and "check y == conv2d(x, w): OK" in e.text


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 2, 2, 1), (3, 3, 1, 1))
    assert str(ei.value) == (
        "conv_lab: filter (shape (3, 3, 1, 1), dilations (1, 1)): effective height 3 is larger "
        "than the padded input height 2 (input 2x2, pads ((0, 0), (0, 0))): output size would be < 1"
    )
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 5, 5, 3), (3, 3, 2, 2))
    assert str(ei.value) == (
        "conv_lab: input channels 3 (input shape (1, 5, 5, 3), NHWC) must be a multiple of the "
        "filter's in-channels 2 (filter shape (3, 3, 2, 2), HWIO)"
    )
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 5, 5, 4), (3, 3, 2, 3))
    assert str(ei.value) == (
        "conv_lab: filter out-channels 3 (filter shape (3, 3, 2, 3)) must be divisible by "
        "groups = 4 // 2 = 2 (input shape (1, 5, 5, 4))"
    )
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 5, 5, 1), (3, 3, 1, 1), 2, "SAME", dy=np.zeros((1, 2, 2, 1)))
    assert str(ei.value) == (
        "conv_lab: dy has shape (1, 2, 2, 1) but the geometry needs (1, 3, 3, 1) (NHWC)"
    )
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 3, 5, 5), (3, 3, 3, 1), x=np.zeros((1, 5, 5, 3)), data_format="NCHW")
    assert str(ei.value) == (
        "conv_lab: x has shape (1, 5, 5, 3) but the geometry needs (1, 3, 5, 5) (NCHW)"
    )
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 5, 5, 1), (3, 3, 1, 1), w=np.zeros((3, 3, 1)))
    assert (
        str(ei.value)
        == "conv_lab: w has shape (3, 3, 1) but the geometry needs (3, 3, 1, 1) (HWIO)"
    )
    with pytest.raises(TypeError, match=r"conv_lab: x must hold numbers, got dtype <U1"):
        tc.conv_lab((1, 1, 1, 1), (1, 1, 1, 1), x=np.array([[[["a"]]]]))
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((0, 5, 5, 1), (3, 3, 1, 1))
    assert str(ei.value) == "conv_lab: x_shape (0, 5, 5, 1) has batch 0: nothing to animate"
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 5, 5, 1), (3, 3, 1, 1), data_format="NWHC")
    assert str(ei.value) == "conv_lab: data_format must be 'NHWC' or 'NCHW', got 'NWHC'"
    with pytest.raises(ValueError) as ei:
        tc.conv_lab((1, 40, 40, 1), (3, 3, 1, 1))
    assert str(ei.value) == (
        "conv_lab: the forward animation would have 1444 frames (N*Ho*Wo*Cout = 1*38*38*1) and "
        "12996 products; the limits are MAX_FRAMES = 1024 frames and MAX_TERMS = 60000 products "
        "per animation: use a smaller example"
    )
    with pytest.raises(
        ValueError,
        match=r"the filter_grad animation would have 1152 frames \(kh\*kw\*Cin/groups\*Cout = 3\*3\*8\*16\)",
    ):
        tc.conv_lab((1, 3, 3, 8), (3, 3, 8, 16))
    with pytest.raises(KeyError, match="conv_lab: forward has no view 'gather'"):
        tc.conv_lab((1, 3, 3, 1), (2, 2, 1, 1)).forward.view("gather")
    # the oracle has no frame limit
    assert tc.shape_oracle((1, 40, 40, 1), (3, 3, 1, 1)).geometry.output_hw == (38, 38)


def test_lab_oracle_uses_the_users_padding():
    lab = tc.conv_lab((1, 8, 8, 1), (3, 3, 1, 1), 2, "SAME", 2)
    assert (
        "  SAME: o = ceil(8/2) = 4; total pad = max((o-1)s + e - i, 0) = max(3*2+5-8, 0) = 3"
        in str(lab)
    )
    assert "  input heights giving output 4: 7, 8 -> conv2d_transpose" in str(lab)
    # with the same pads given explicitly, other sizes give 4 rows
    explicit = tc.conv_lab((1, 8, 8, 1), (3, 3, 1, 1), 2, [[1, 2], [1, 2]], 2)
    assert "  input heights giving output 4: 8, 9 -> conv2d_transpose" in str(explicit)

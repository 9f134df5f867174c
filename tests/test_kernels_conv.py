"""Tests for tinygrad_conv.kernels.conv against naive loops, adjointness and TensorFlow."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_conv.kernels import conv as conv_mod
from tinygrad_conv.kernels import conv_layout
from tinygrad_conv.kernels.conv import (
    conv2d,
    conv2d_backprop_filter,
    conv2d_backprop_input,
    conv2d_windows,
    windows_worth_keeping,
)
from tinygrad_conv.kernels.conv_ref import (
    conv_backprop_filter_ref,
    conv_backprop_input_ref,
    conv_ref,
)
from tinygrad_conv.kernels.padding import ConvGeometry, check_out_backprop, conv_geometry

# ----------------------------------------------------------------------------- naive references
# Written for obviousness: loop over every output pixel and kernel tap, matmul over channels.


def _padded(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    (t, b), (l, r) = geom.pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


def _loops(geom: ConvGeometry):
    (ho, wo), (kh, kw) = geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    for oh in range(ho):
        for ow in range(wo):
            for i in range(kh):
                for j in range(kw):
                    yield oh, ow, i, j, oh * sh + i * dh, ow * sw + j * dw


def ref_conv2d(x, w, geom):
    n, _, _, cin = x.shape
    _, _, cg, cout = w.shape
    groups = cin // cg
    og = cout // groups
    xp = _padded(x.astype(np.float64), geom)
    y = np.zeros((n, *geom.output_hw, cout))
    for oh, ow, i, j, ph, pw in _loops(geom):
        for g in range(groups):
            ci, co = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
            y[:, oh, ow, co] += xp[:, ph, pw, ci] @ w[i, j, :, co]
    return y


def ref_backprop_input(input_shape, w, dy, geom):
    n, h, wd, cin = input_shape
    _, _, cg, cout = w.shape
    groups = cin // cg
    og = cout // groups
    (t, _), (l, _) = geom.pads
    dxp = np.zeros(_padded(np.zeros(input_shape), geom).shape)
    for oh, ow, i, j, ph, pw in _loops(geom):
        for g in range(groups):
            ci, co = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
            dxp[:, ph, pw, ci] += dy[:, oh, ow, co] @ w[i, j, :, co].T
    return dxp[:, t : t + h, l : l + wd, :]


def ref_backprop_filter(x, filter_shape, dy, geom):
    kh, kw, cg, cout = filter_shape
    groups = x.shape[3] // cg
    og = cout // groups
    xp = _padded(x.astype(np.float64), geom)
    dw = np.zeros(filter_shape)
    for oh, ow, i, j, ph, pw in _loops(geom):
        for g in range(groups):
            ci, co = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
            dw[i, j, :, co] += xp[:, ph, pw, ci].T @ dy[:, oh, ow, co]
    return dw


def assert_close(actual, expected, rtol=1e-12):
    """Elementwise relative tolerance, with an absolute floor at rtol * max|expected| for entries
    that cancel to ~0 (sums of products in a different order)."""
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


# ----------------------------------------------------------------------------- random cases


def random_case(rng: np.random.Generator, max_hw: int = 11, plain: bool = False):
    """A random valid conv configuration: shapes, geometry, and float64 x, w, dy.

    plain=True: no dilation and no groups (what TF's CPU backprop ops accept)."""
    while True:
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        strides = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilations = (1, 1) if plain else tuple(int(v) for v in rng.integers(1, 4, 2))
        groups = 1 if plain else int(rng.choice([1, 1, 2, 3]))
        cg, og = (int(v) for v in rng.integers(1, 4, 2))
        n = int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(1, max_hw + 1, 2))
        kind = rng.choice(["VALID", "SAME", "explicit"])
        padding = (
            [[int(v) for v in rng.integers(0, 4, 2)] for _ in range(2)]
            if kind == "explicit"
            else str(kind)
        )
        try:
            geom = conv_geometry(
                "conv2d",
                (n, h, w, groups * cg),
                (kh, kw, cg, groups * og),
                strides,
                padding,
                dilations,
            )
        except ValueError:
            continue  # filter larger than the padded input: draw again
        x = rng.standard_normal((n, h, w, groups * cg))
        wt = rng.standard_normal((kh, kw, cg, groups * og))
        dy = rng.standard_normal((n, *geom.output_hw, groups * og))
        return dict(
            x=x,
            w=wt,
            dy=dy,
            geom=geom,
            strides=strides,
            padding=padding,
            dilations=dilations,
            groups=groups,
        )


CASES = [random_case(np.random.default_rng(seed)) for seed in range(120)]


def _id(case):
    g = case["geom"]
    return (
        f"x{case['x'].shape}-k{g.kernel_hw}-s{g.strides}-d{g.dilations}-p{g.pads}-g{case['groups']}"
    ).replace(" ", "")


# ----------------------------------------------------------------------------- against the loops


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_naive_reference_float64(case):
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    y = conv2d(x, w, geom)
    assert y.dtype == np.float64
    assert_close(y, ref_conv2d(x, w, geom))
    assert_close(
        conv2d_backprop_input(x.shape, w, dy, geom), ref_backprop_input(x.shape, w, dy, geom)
    )
    assert_close(
        conv2d_backprop_filter(x, w.shape, dy, geom), ref_backprop_filter(x, w.shape, dy, geom)
    )


@pytest.mark.parametrize("case", CASES[:40], ids=_id)
def test_float32_follows_dtype_and_is_accurate(case):
    x, w, dy, geom = (
        case[k].astype(np.float32) if k != "geom" else case[k] for k in ("x", "w", "dy", "geom")
    )
    y = conv2d(x, w, geom)
    dx = conv2d_backprop_input(x.shape, w, dy, geom)
    dw = conv2d_backprop_filter(x, w.shape, dy, geom)
    assert y.dtype == dx.dtype == dw.dtype == np.float32
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    assert_close(y, ref_conv2d(x64, w64, geom), rtol=2e-5)
    assert_close(dx, ref_backprop_input(x.shape, w64, dy64, geom), rtol=2e-5)
    assert_close(dw, ref_backprop_filter(x64, w.shape, dy64, geom), rtol=2e-5)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_adjointness(case):
    """<conv2d(x, w), dy> = <x, backprop_input(dy)> = <w, backprop_filter(x, dy)>."""
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    lhs = np.vdot(conv2d(x, w, geom), dy)
    via_x = np.vdot(x, conv2d_backprop_input(x.shape, w, dy, geom))
    via_w = np.vdot(w, conv2d_backprop_filter(x, w.shape, dy, geom))
    scale = np.abs(x).sum() * np.abs(w).max() * np.abs(dy).max() + 1.0
    assert abs(lhs - via_x) <= 1e-13 * scale
    assert abs(lhs - via_w) <= 1e-13 * scale


conv_shapes = st.tuples(
    st.integers(1, 3),  # batch
    st.integers(1, 12),  # H
    st.integers(1, 12),  # W
    st.integers(1, 5),  # kh
    st.integers(1, 5),  # kw
    st.integers(1, 3),  # sh
    st.integers(1, 3),  # sw
    st.integers(1, 3),  # dh
    st.integers(1, 3),  # dw
    st.sampled_from([1, 2, 3]),  # groups
    st.integers(1, 3),  # in-channels per group
    st.integers(1, 3),  # out-channels per group
    st.one_of(
        st.sampled_from(["SAME", "VALID"]),
        st.tuples(
            st.tuples(st.integers(0, 4), st.integers(0, 4)),
            st.tuples(st.integers(0, 4), st.integers(0, 4)),
        ),
    ),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=60, deadline=None)
@given(conv_shapes)
def test_hypothesis_against_reference(params):
    n, h, w, kh, kw, sh, sw, dh, dw, groups, cg, og, padding, seed = params
    try:
        geom = conv_geometry(
            "conv2d", (n, h, w, groups * cg), (kh, kw, cg, groups * og), (sh, sw), padding, (dh, dw)
        )
    except ValueError as e:
        assert "larger than the padded input" in str(e)
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, groups * cg))
    wt = rng.standard_normal((kh, kw, cg, groups * og))
    dy = rng.standard_normal((n, *geom.output_hw, groups * og))
    assert_close(conv2d(x, wt, geom), ref_conv2d(x, wt, geom))
    assert_close(
        conv2d_backprop_input(x.shape, wt, dy, geom), ref_backprop_input(x.shape, wt, dy, geom)
    )
    assert_close(
        conv2d_backprop_filter(x, wt.shape, dy, geom), ref_backprop_filter(x, wt.shape, dy, geom)
    )


# ----------------------------------------------------------------------------- code paths
# Strategies and thresholds are chosen by ONE planner (conv.plan) from an immutable Tuning: the
# tests give it other tunings or run other plans, never patch module globals.


def _tuned(geom, x_shape, w_shape, itemsize=8, **tuning):
    """The planner's plan under a modified Tuning."""
    t = dataclasses.replace(conv_mod.TUNING, **tuning)
    return conv_mod.plan(geom, tuple(x_shape), tuple(w_shape), itemsize, t)


@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 21], ids=["bands", "blocks", "one"])
def test_every_strategy_matches_the_reference_kernel(block_bytes):
    """Each applicable strategy of each op (and both filter-GEMM forms), on the same cases,
    against kernels/conv_ref.py, with row bands, several image blocks and one block."""
    runs = {"forward": set(), "backprop_input": set(), "backprop_filter": set()}
    rng = np.random.default_rng(8)
    pointwise = []  # 1x1 stride-1 unpadded, groups 1 and 2
    for xs, fs in (((2, 5, 6, 4), (1, 1, 4, 3)), ((3, 4, 4, 6), (1, 1, 3, 4))):
        geom = conv_geometry("conv2d", xs, fs, 1, "VALID")
        x, w = rng.standard_normal(xs), rng.standard_normal(fs)
        pointwise.append(
            {"x": x, "w": w, "dy": rng.standard_normal((*xs[:3], fs[3])), "geom": geom}
        )
    for case in CASES[:60] + [c for c in CASES if c["groups"] == 1][:20] + pointwise:
        x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
        ok = conv_mod.applicable(geom, x.shape, w.shape)
        base = _tuned(geom, x.shape, w.shape, block_bytes=block_bytes)
        y_ref = conv_ref(x, w, geom)
        dx_ref = conv_backprop_input_ref(x.shape, w, dy, geom)
        dw_ref = conv_backprop_filter_ref(x, w.shape, dy, geom)
        for name in ok["forward"]:
            assert_close(conv2d(x, w, geom, plan=base._replace(forward=name)), y_ref)
            runs["forward"].add(name)
        for name in ok["backprop_input"]:
            p = base._replace(backprop_input=name)
            assert_close(conv2d_backprop_input(x.shape, w, dy, geom, plan=p), dx_ref)
            runs["backprop_input"].add(name)
        for name in ok["backprop_filter"]:
            for gemm in conv_mod.FILTER_GEMMS:
                p = base._replace(backprop_filter=name, filter_gemm=gemm)
                assert_close(conv2d_backprop_filter(x, w.shape, dy, geom, plan=p), dw_ref)
            runs["backprop_filter"].add(name)
    assert runs == {
        "forward": set(conv_mod.FORWARD_STRATEGIES),
        "backprop_input": set(conv_mod.BACKPROP_INPUT_STRATEGIES),
        "backprop_filter": set(conv_mod.BACKPROP_FILTER_STRATEGIES),
    }


def test_a_plan_that_cannot_run_the_problem_is_refused():
    geom = conv_geometry("conv2d", (1, 6, 6, 4), (3, 3, 2, 4), 2, "SAME")  # groups 2, stride 2
    p = conv_mod.plan(geom, (1, 6, 6, 4), (3, 3, 2, 4))
    x, w = np.zeros((1, 6, 6, 4)), np.zeros((3, 3, 2, 4))
    assert conv_mod.applicable(geom, x.shape, w.shape)["backprop_input"] == ("phases", "taps")
    with pytest.raises(
        ValueError,
        match=r"conv2d: strategy 'kmajor' cannot compute this problem \(input \(1, 6, 6, 4\), filter \(3, 3, 2, 4\)",
    ):
        conv2d(x, w, geom, plan=p._replace(forward="kmajor"))
    with pytest.raises(
        ValueError,
        match=r"conv2d_backprop_input: strategy 'direct' cannot compute .*applicable: \('phases', 'taps'\)",
    ):
        conv2d_backprop_input(
            x.shape, w, np.zeros((1, 3, 3, 4)), geom, plan=p._replace(backprop_input="direct")
        )
    with pytest.raises(TypeError, match=r"conv2d_backprop_filter: plan must be a Conv2dPlan"):
        conv2d_backprop_filter(x, w.shape, np.zeros((1, 3, 3, 4)), geom, plan="im2col")
    with pytest.raises(ValueError, match=r"conv2d_backprop_filter: filter_gemm must be one of"):
        conv2d_backprop_filter(
            x, w.shape, np.zeros((1, 3, 3, 4)), geom, plan=p._replace(filter_gemm="x")
        )


def test_planner_choices_follow_the_documented_rules():
    g = conv_geometry("conv2d", (8, 28, 28, 1), (5, 5, 1, 6), 1, "SAME")  # case (a)-like
    assert conv_mod.plan(g, (8, 28, 28, 1), (5, 5, 1, 6))[:3] == ("kmajor", "kmajor", "kmajor")
    g = conv_geometry("conv2d", (64, 28, 28, 32), (3, 3, 32, 64), 1, "SAME")
    assert conv_mod.plan(g, (64, 28, 28, 32), (3, 3, 32, 64))[:3] == ("im2col", "taps", "im2col")
    g = conv_geometry("conv2d", (2, 8, 8, 32), (3, 3, 32, 16), 1, "SAME")  # small: direct
    assert conv_mod.plan(g, (2, 8, 8, 32), (3, 3, 32, 16)).backprop_input == "direct"
    g = conv_geometry("conv2d", (8, 16, 16, 32), (3, 3, 32, 16), 2, "SAME")
    assert conv_mod.plan(g, (8, 16, 16, 32), (3, 3, 32, 16)).backprop_input == "phases"
    g = conv_geometry("conv2d", (8, 16, 16, 32), (1, 1, 32, 16), 1, "VALID")
    assert conv_mod.plan(g, (8, 16, 16, 32), (1, 1, 32, 16))[:3] == ("pointwise",) * 3


@pytest.mark.parametrize("block_bytes", [1, 300, 5000])
@pytest.mark.parametrize("seed", [0, 3, 7, 11, 20, 33])
def test_cache_blocks_and_row_bands_give_same_result(block_bytes, seed):
    """Tiny block budgets force many blocks of images and bands of rows inside one image."""
    case = CASES[seed]
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    expected = (
        conv2d(x, w, geom),
        conv2d_backprop_input(x.shape, w, dy, geom),
        conv2d_backprop_filter(x, w.shape, dy, geom),
    )
    p = _tuned(geom, x.shape, w.shape, block_bytes=block_bytes)
    got = (
        conv2d(x, w, geom, plan=p),
        conv2d_backprop_input(x.shape, w, dy, geom, plan=p),
        conv2d_backprop_filter(x, w.shape, dy, geom, plan=p),
    )
    for a, b in zip(got, expected, strict=True):
        assert_close(a, b, rtol=1e-13)


@pytest.mark.parametrize("block_bytes", [300, 1 << 21])
@pytest.mark.parametrize("max_run", [0, 10**6], ids=["nhwc-windows", "channel-major-windows"])
def test_both_window_layouts_match_reference(max_run, block_bytes):
    """Tunings that send every groups=1 conv through the NHWC im2col path or the channel-major
    one (the default picks channel-major only when kw*Cin is small), one or many blocks."""
    for case in [c for c in CASES if c["groups"] == 1][:25]:
        x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
        p = _tuned(
            geom,
            x.shape,
            w.shape,
            kmajor_max_run=max_run,
            kmajor_max_run_backprop_input=max_run,
            block_bytes=block_bytes,
        )
        if not conv_mod._plan(geom).pointwise:
            assert (p.forward == "kmajor") == (max_run > 0)
        assert_close(conv2d(x, w, geom, plan=p), ref_conv2d(x, w, geom))
        assert_close(
            conv2d_backprop_input(x.shape, w, dy, geom, plan=p),
            ref_backprop_input(x.shape, w, dy, geom),
        )
        assert_close(
            conv2d_backprop_filter(x, w.shape, dy, geom, plan=p),
            ref_backprop_filter(x, w.shape, dy, geom),
        )


@pytest.mark.parametrize("direct_max", [0, 1 << 40], ids=["tap-adds", "direct-conv"])
def test_stride1_input_gradient_both_ways(direct_max):
    """The stride-1 input gradient as GEMM + tap adds, or as a direct conv of the padded dy
    (chosen for every size by the tuning, explicit pads and dilations included), vs the loops."""
    rng = np.random.default_rng(5)
    n_direct = 0
    for _ in range(40):
        kh, kw, dh, dw, cin, cout = (int(v) for v in rng.integers(1, 4, 6))
        h, w = (int(v) for v in rng.integers(3, 10, 2))
        padding = rng.choice(["SAME", "VALID", "explicit"])
        if padding == "explicit":
            padding = [[int(v) for v in rng.integers(0, 5, 2)] for _ in range(2)]
        try:
            geom = conv_geometry("c", (2, h, w, cin), (kh, kw, cin, cout), 1, padding, (dh, dw))
        except ValueError:
            continue
        p = _tuned(
            geom,
            (2, h, w, cin),
            (kh, kw, cin, cout),
            kmajor_max_run=0,
            kmajor_max_run_backprop_input=0,
            direct_max_bytes=direct_max,
        )
        n_direct += p.backprop_input == "direct"
        wt = rng.standard_normal((kh, kw, cin, cout))
        dy = rng.standard_normal((2, *geom.output_hw, cout))
        assert_close(
            conv2d_backprop_input((2, h, w, cin), wt, dy, geom, plan=p),
            ref_backprop_input((2, h, w, cin), wt, dy, geom),
        )
    # most geometries take the direct path when the tuning allows it, none when it does not
    assert n_direct >= 15 if direct_max else n_direct == 0


def test_full_geometry_is_the_transposed_conv():
    """The direct conv's geometry: pads (k-1)*d - top in front, output the forward's input."""
    g = conv_geometry("conv2d", (2, 7, 9, 3), (3, 5, 3, 4), 1, "SAME", (1, 2))
    full = conv_layout._full_geometry(g)
    assert full.input_hw == (7, 9) and full.output_hw == (7, 9)
    assert full.pads == ((1, 1), (4, 4)) and full.dilations == (1, 2)
    assert (
        conv_layout._full_geometry(conv_geometry("c", (1, 8, 8, 1), (3, 3, 1, 1), 2, "SAME"))
        is None
    )
    # a pad larger than the dilated kernel would need a crop of dy: not this path
    big = conv_geometry("c", (1, 8, 8, 1), (3, 3, 1, 1), 1, [[3, 0], [0, 0]])
    assert conv_layout._full_geometry(big) is None


def test_block_plan_covers_everything():
    for n, ho, row_bytes in [(5, 7, 100), (3, 4, 600), (4, 9, 2000), (1, 1, 1), (0, 3, 10)]:
        covered = np.zeros((n, ho), dtype=int)
        blocks = conv_layout._blocks(n, ho, row_bytes, 1000)
        for n0, n1, r0, r1 in blocks:
            assert n1 - n0 == 1 or (r0, r1) == (0, ho)  # contiguous rows of (M, K)
            covered[n0:n1, r0:r1] += 1
        assert (covered == 1).all()
        rows = conv_layout._block_rows(n, ho, row_bytes, 1000)
        assert rows == max(((b - a) * (d - c) for a, b, c, d in blocks), default=0)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("seed", range(6))
def test_window_reuse(groups, seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        case = random_case(rng)
        if case["groups"] == groups:
            break
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    cols = conv2d_windows(x, geom, groups)
    m = x.shape[0] * geom.output_hw[0] * geom.output_hw[1]
    assert cols.shape == (groups, m, geom.kernel_hw[0] * geom.kernel_hw[1] * x.shape[3] // groups)
    assert_close(conv2d(x, w, geom, cols=cols), conv2d(x, w, geom), rtol=1e-13)
    assert_close(
        conv2d_backprop_filter(x, w.shape, dy, geom, cols=cols),
        conv2d_backprop_filter(x, w.shape, dy, geom),
        rtol=1e-13,
    )


def test_windows_worth_keeping():
    small = conv_geometry("conv2d", (8, 14, 14, 16), (3, 3, 16, 32), 1, "SAME")
    assert windows_worth_keeping((8, 14, 14, 16), (3, 3, 16, 32), small)
    c = conv_geometry("conv2d", (64, 28, 28, 32), (3, 3, 32, 64), 1, "SAME")
    assert not windows_worth_keeping((64, 28, 28, 32), (3, 3, 32, 64), c)  # 58 MB > 8 MiB
    mid = conv_geometry("conv2d", (8, 28, 28, 32), (3, 3, 32, 64), 1, "SAME")
    assert windows_worth_keeping((8, 28, 28, 32), (3, 3, 32, 64), mid)  # 7.2 MB
    assert not windows_worth_keeping((8, 28, 28, 32), (3, 3, 32, 64), mid, itemsize=8)
    grey = conv_geometry("conv2d", (4, 28, 28, 1), (5, 5, 1, 6), 1, "VALID")
    # few channels: kept too, as the transposed view of channel-major windows
    assert windows_worth_keeping((4, 28, 28, 1), (5, 5, 1, 6), grey)
    x = np.random.default_rng(0).standard_normal((4, 28, 28, 1))
    cols = conv_mod.conv2d_windows(x, grey)
    assert cols.shape == (1, 4 * 24 * 24, 25) and cols[0].T.flags.c_contiguous
    full = np.lib.stride_tricks.sliding_window_view(x, (5, 5), axis=(1, 2))  # (4,24,24,1,5,5)
    np.testing.assert_array_equal(cols[0], full.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 25))
    pw = conv_geometry("conv2d", (64, 56, 56, 64), (1, 1, 64, 64), 1, "VALID")
    assert windows_worth_keeping((64, 56, 56, 64), (1, 1, 64, 64), pw)  # a view of x


def test_windows_layout():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    geom = conv_geometry("conv2d", x.shape, (2, 2, 1, 2), (1, 2), [[1, 0], [0, 1]], 1)
    cols = conv2d_windows(x, geom, groups=2)
    xp = np.pad(x, ((0, 0), (1, 0), (0, 1), (0, 0)))
    for g in range(2):
        for n in range(2):
            for oh in range(geom.output_hw[0]):
                for ow in range(geom.output_hw[1]):
                    row = (n * geom.output_hw[0] + oh) * geom.output_hw[1] + ow
                    expected = xp[n, oh : oh + 2, 2 * ow : 2 * ow + 2, g].reshape(-1)
                    np.testing.assert_array_equal(cols[g, row], expected)


@pytest.mark.parametrize("groups", [1, 3])
def test_pointwise_fast_path(groups):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 4, 6))
    w = rng.standard_normal((1, 1, 6 // groups, 9))
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, "SAME", 1)
    assert geom.pads == ((0, 0), (0, 0))
    dy = rng.standard_normal((3, 5, 4, 9))
    assert_close(conv2d(x, w, geom), ref_conv2d(x, w, geom))
    assert_close(
        conv2d_backprop_input(x.shape, w, dy, geom), ref_backprop_input(x.shape, w, dy, geom)
    )
    assert_close(
        conv2d_backprop_filter(x, w.shape, dy, geom), ref_backprop_filter(x, w.shape, dy, geom)
    )
    if groups == 1:
        assert np.shares_memory(conv2d_windows(x, geom), x)  # no copy at all


def test_depthwise_and_unequal_group_channels():
    """groups = Cin (depthwise) and groups with more outputs than inputs per group."""
    rng = np.random.default_rng(9)
    for cin, cg, cout in [(4, 1, 4), (4, 1, 8), (6, 2, 9), (6, 3, 2)]:
        x = rng.standard_normal((2, 7, 6, cin))
        w = rng.standard_normal((3, 2, cg, cout))
        geom = conv_geometry("conv2d", x.shape, w.shape, (2, 1), "SAME", (1, 2))
        dy = rng.standard_normal((2, *geom.output_hw, cout))
        assert_close(conv2d(x, w, geom), ref_conv2d(x, w, geom))
        assert_close(
            conv2d_backprop_input(x.shape, w, dy, geom), ref_backprop_input(x.shape, w, dy, geom)
        )
        assert_close(
            conv2d_backprop_filter(x, w.shape, dy, geom), ref_backprop_filter(x, w.shape, dy, geom)
        )


def test_noncontiguous_inputs_and_empty_batch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 6, 7)).transpose(0, 2, 3, 1)  # NCHW storage, NHWC view
    w = rng.standard_normal((3, 3, 3, 4))[::-1]  # negative strides
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, "SAME", 1)
    dy = rng.standard_normal((5, 7, 6, 4)).transpose(0, 2, 1, 3)
    assert_close(conv2d(x, w, geom), ref_conv2d(x, w, geom))
    assert_close(
        conv2d_backprop_input(x.shape, w, dy, geom), ref_backprop_input(x.shape, w, dy, geom)
    )
    assert_close(
        conv2d_backprop_filter(x, w.shape, dy, geom), ref_backprop_filter(x, w.shape, dy, geom)
    )
    geom0 = conv_geometry("conv2d", (0, 6, 7, 3), w.shape, 2, "SAME", 1)
    x0 = np.zeros((0, 6, 7, 3))
    dy0 = np.zeros((0, *geom0.output_hw, 4))
    assert conv2d(x0, w, geom0).shape == (0, *geom0.output_hw, 4)
    assert conv2d_backprop_input(x0.shape, w, dy0, geom0).shape == x0.shape
    np.testing.assert_array_equal(conv2d_backprop_filter(x0, w.shape, dy0, geom0), 0)


def test_mixed_dtypes_follow_numpy_promotion():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 2))
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, "VALID", 1)
    dy32 = np.ones((2, 3, 3, 2), np.float32)
    assert conv2d(x, w, geom).dtype == np.float64
    assert conv2d(x, w.astype(np.float32), geom).dtype == np.float32
    assert conv2d_backprop_input(x.shape, w.astype(np.float32), dy32, geom).dtype == np.float32
    assert conv2d_backprop_input(x.shape, w, dy32, geom).dtype == np.float64
    assert conv2d_backprop_filter(x, w.shape, dy32, geom).dtype == np.float32
    assert conv2d_backprop_filter(x, w.shape, dy32.astype(np.float64), geom).dtype == np.float64


def test_leftover_rows_get_zero_gradient():
    """Stride 3 on 9 rows with a 2-row kernel: windows read rows 0-1, 3-4, 6-7; the leftover
    row 8 (and rows 2, 5 between windows) get exactly zero gradient."""
    x = np.ones((1, 9, 9, 1))
    w = np.ones((2, 2, 1, 1))
    geom = conv_geometry("conv2d", x.shape, w.shape, 3, "VALID", 1)
    assert geom.output_hw == (3, 3) and geom.leftover == (1, 1)
    dx = conv2d_backprop_input(x.shape, w, np.ones((1, 3, 3, 1)), geom)
    for r in (2, 5, 8):
        assert not dx[0, r, :, 0].any() and not dx[0, :, r, 0].any()
    assert dx.sum() == 36


# The input gradient of a conv with width stride > 1 is accumulated per stride phase of dx
# (conv_phases.phase_backprop_input) unless the few-channel path takes it (tuned off below).
PHASE_CASES = [
    # (input NHWC, filter HWIO, strides, padding, dilations)
    ((2, 9, 10, 9), (3, 3, 9, 5), 2, "SAME", 1),  # SAME split (0, 1) on W, (1, 1) on H
    ((2, 10, 11, 9), (3, 3, 9, 4), 2, "SAME", 1),  # uneven SAME: odd pad on one axis only
    ((1, 11, 13, 10), (4, 3, 10, 3), 3, "SAME", 1),  # stride 3
    ((2, 12, 11, 9), (3, 4, 9, 4), (3, 2), "VALID", 2),  # dilation 2, leftover rows/cols
    ((1, 13, 12, 11), (3, 3, 11, 2), (2, 3), "SAME", (2, 2)),  # dilation 2 with SAME
    ((2, 10, 9, 9), (3, 3, 9, 3), 2, [[2, 0], [1, 3]], 1),  # explicit pads + leftover
    ((2, 11, 10, 9), (2, 3, 9, 3), 3, [[0, 1], [2, 0]], 1),  # explicit, leftover > pad
    ((1, 9, 9, 9), (2, 2, 9, 3), 3, "VALID", 1),  # gaps between windows: phases no tap hits
    ((2, 7, 9, 30), (3, 1, 30, 4), (1, 2), "SAME", 1),  # stride 1 on H, 2 on W
    ((2, 9, 9, 12), (3, 3, 4, 6), 2, "SAME", 1),  # groups = 3
]


@pytest.mark.parametrize("block_bytes", [1, 3000, 1 << 21], ids=["bands", "blocks", "one"])
@pytest.mark.parametrize("case", PHASE_CASES, ids=str)
def test_strided_input_gradient_by_phases(case, block_bytes):
    """Against the loops, with whole batches, several image blocks, and row bands in one image
    (where taps of successive bands overlap in the same phase buffers)."""
    xs, fs, strides, padding, dilations = case
    geom = conv_geometry("conv2d", xs, fs, strides, padding, dilations)
    assert geom.strides[1] > 1 and conv_mod._plan(geom).phases is not None
    # never the few-channel path: the planner must pick the phases
    p = _tuned(
        geom, xs, fs, block_bytes=block_bytes, kmajor_max_run=0, kmajor_max_run_backprop_input=0
    )
    assert p.backprop_input == "phases"
    rng = np.random.default_rng(sum(xs) + sum(fs))
    w = rng.standard_normal(fs)
    dy = rng.standard_normal((xs[0], *geom.output_hw, fs[3]))
    dx = conv2d_backprop_input(xs, w, dy, geom, plan=p)
    assert_close(dx, ref_backprop_input(xs, w, dy, geom))
    dx32 = conv2d_backprop_input(xs, w.astype(np.float32), dy.astype(np.float32), geom, plan=p)
    assert dx32.dtype == np.float32
    assert_close(dx32, ref_backprop_input(xs, w, dy, geom), rtol=2e-5)


@pytest.mark.parametrize("padding", ["SAME", "VALID", [[1, 0], [0, 1]]])
@pytest.mark.parametrize("strides", [2, 3, (2, 3)])
def test_strided_1x1_input_gradient_is_exactly_zero_off_the_grid(strides, padding):
    """A 1x1 strided conv reads one stride phase only: every other pixel of dx (and every
    padded / leftover row) must be exactly 0, not merely small, and never uninitialised."""
    rng = np.random.default_rng(4)
    xs = (3, 8, 9, 32)
    w = rng.standard_normal((1, 1, 32, 5))
    geom = conv_geometry("conv2d", xs, w.shape, strides, padding, 1)
    dy = rng.standard_normal((3, *geom.output_hw, 5))
    for _ in range(2):  # the second call reuses freed memory: stale values would show up
        dx = conv2d_backprop_input(xs, w, dy, geom)
        expected = ref_backprop_input(xs, w, dy, geom)
        assert_close(dx, expected)
        np.testing.assert_array_equal(dx == 0, expected == 0)
    assert (dx == 0).sum() > dx.size // 2


def test_phase_plan_covering_taps():
    """3x3 stride 2 SAME: every phase has a tap covering it (no zero fill); 1x1 stride 2: one
    phase is reached, the other three are written as zeros."""
    g = conv_geometry("conv2d", (1, 32, 32, 64), (3, 3, 64, 64), 2, "SAME", 1)
    pp = conv_mod._plan(g).phases
    assert len(pp.live) == 4 and None not in pp.first
    assert sorted(pp.shapes) == [(16, 16)] * 4
    g1 = conv_geometry("conv2d", (1, 9, 8, 64), (1, 1, 64, 64), 2, "VALID", 1)
    pp1 = conv_mod._plan(g1).phases
    assert pp1.live == ((0, 0),) and pp1.shapes == ((5, 4),) and pp1.first == ((0, 0),)
    assert (
        conv_mod._plan(conv_geometry("conv2d", (1, 8, 8, 4), (3, 3, 4, 4), 1, "SAME")).phases
        is None
    )


# ----------------------------------------------------------------------------- errors


def test_kernel_errors_name_the_argument():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 4))
    w = rng.standard_normal((3, 3, 2, 6))
    geom = conv_geometry("conv2d", x.shape, w.shape, 1, "SAME", 1)
    dy = np.zeros((2, 6, 6, 6))
    with pytest.raises(ValueError, match=r"conv2d: x must be 4-D"):
        conv2d(x[0], w, geom)
    with pytest.raises(ValueError, match=r"conv2d: x has shape \(2, 5, 6, 4\)"):
        conv2d(x[:, :5], w, geom)
    with pytest.raises(ValueError, match=r"conv2d: filter has shape .*3x3 kernel"):
        conv2d(x, w[:2], geom)
    with pytest.raises(ValueError, match=r"conv2d: input channels 4 .*in-channels 3"):
        conv2d(x, rng.standard_normal((3, 3, 3, 6)), geom)
    with pytest.raises(ValueError, match=r"conv2d: filter out-channels 5 .*groups"):
        conv2d(x, rng.standard_normal((3, 3, 2, 5)), geom)
    with pytest.raises(TypeError, match=r"conv2d: x must be a real numeric array"):
        conv2d(x.astype(complex), w, geom)
    with pytest.raises(ValueError, match=r"conv2d: cols \(precomputed windows\) has shape"):
        conv2d(x, w, geom, cols=np.zeros((1, 72, 18)))
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: dy \(out_backprop\) has shape"):
        conv2d_backprop_input(x.shape, w, dy[:, :5], geom)
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: input_sizes has shape"):
        conv2d_backprop_input((2, 7, 6, 4), w, dy, geom)
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: input_sizes must have 4"):
        conv2d_backprop_input((2, 6, 6), w, dy, geom)
    with pytest.raises(TypeError, match=r"conv2d_backprop_input: input_sizes must contain ints"):
        conv2d_backprop_input((2, 6.0, 6, 4), w, dy, geom)
    with pytest.raises(ValueError, match=r"conv2d_backprop_filter: filter_sizes has shape"):
        conv2d_backprop_filter(x, (3, 2, 2, 6), dy, geom)
    with pytest.raises(ValueError, match=r"conv2d_backprop_filter: dy \(out_backprop\)"):
        conv2d_backprop_filter(x, w.shape, dy[:1], geom)
    with pytest.raises(TypeError, match=r"conv2d: geom must be a ConvGeometry"):
        conv2d(x, w, ((6, 6), (3, 3)))
    with pytest.raises(ValueError, match=r"conv2d_windows: groups must be a positive divisor"):
        conv2d_windows(x, geom, 3)


def test_inconsistent_input_sizes_detected_by_check_out_backprop():
    """conv2d_backprop_input(input_sizes=...) with a gradient of the wrong spatial size."""
    w = np.zeros((3, 3, 1, 1))
    geom = conv_geometry("conv2d_backprop_input", (1, 9, 9, 1), w.shape, 2, "VALID", 1)
    check_out_backprop("conv2d_backprop_input", geom, (1, 4, 4, 1), 1, 1)
    # input 10 also gives 4 outputs (leftover 1): both are consistent
    geom10 = conv_geometry("conv2d_backprop_input", (1, 10, 10, 1), w.shape, 2, "VALID", 1)
    check_out_backprop("conv2d_backprop_input", geom10, (1, 4, 4, 1), 1, 1)
    assert geom10.leftover == (1, 1)
    with pytest.raises(ValueError, match="out_backprop"):
        check_out_backprop("conv2d_backprop_input", geom, (1, 5, 5, 1), 1, 1)


# ----------------------------------------------------------------------------- TensorFlow


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("CI") == "true":
        import tensorflow  # in CI a missing TensorFlow is a failure, not a skip

        return tensorflow
    return pytest.importorskip("tensorflow")


def _tf_padding(case):
    p = case["padding"]
    return p if isinstance(p, str) else [[0, 0], list(p[0]), list(p[1]), [0, 0]]


def _tf_conv(tf, x, w, case):
    return tf.nn.conv2d(
        x,
        w,
        strides=list(case["strides"]),
        padding=_tf_padding(case),
        dilations=list(case["dilations"]),
    )


def _tf_grads(tf, x, w, dy, case):
    """(y, dx, dw) from TF by GradientTape; groups by per-group convs (CPU refuses grouped
    gradients). TF's CPU has no dilated backprop kernels at all (2.21: not even at stride 1),
    so dilated cases are differentiated through an explicitly zero-inserted filter."""
    groups, (dh, dw_) = case["groups"], case["dilations"]
    kh, kw, cg, cout = w.shape
    og = cout // groups
    use_dilated_filter = max(case["dilations"]) > 1
    ys, dxs, dws = [], [], []
    for g in range(groups):
        xg = tf.constant(x[..., g * cg : (g + 1) * cg])
        wg_np = w[..., g * og : (g + 1) * og]
        if use_dilated_filter:
            big = np.zeros((dh * (kh - 1) + 1, dw_ * (kw - 1) + 1, cg, og))
            big[::dh, ::dw_] = wg_np
            wg = tf.constant(big)
            sub = dict(case, dilations=(1, 1))
        else:
            wg, sub = tf.constant(wg_np), case
        with tf.GradientTape() as tape:
            tape.watch([xg, wg])
            y = _tf_conv(tf, xg, wg, sub)
            loss = tf.reduce_sum(y * tf.constant(dy[..., g * og : (g + 1) * og]))
        gx, gw = tape.gradient(loss, [xg, wg])
        gw = gw.numpy()
        ys.append(y.numpy())
        dxs.append(gx.numpy())
        dws.append(gw[::dh, ::dw_] if use_dilated_filter else gw)
    return np.concatenate(ys, -1), np.concatenate(dxs, -1), np.concatenate(dws, -1)


TF_CASES = CASES[:60]


@pytest.mark.parametrize("case", TF_CASES, ids=_id)
def test_against_tensorflow(tf, case):
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    # forward, grouped or not, any stride and dilation: TF's CPU kernel directly
    y_tf = _tf_conv(tf, tf.constant(x), tf.constant(w), case).numpy()
    assert y_tf.shape == (x.shape[0], *geom.output_hw, w.shape[3])
    assert_close(conv2d(x, w, geom), y_tf)
    y2, dx_tf, dw_tf = _tf_grads(tf, x, w, dy, case)
    assert_close(y2, y_tf)
    assert_close(conv2d_backprop_input(x.shape, w, dy, geom), dx_tf)
    assert_close(conv2d_backprop_filter(x, w.shape, dy, geom), dw_tf)


PLAIN_CASES = [random_case(np.random.default_rng(1000 + seed), plain=True) for seed in range(30)]


@pytest.mark.parametrize("case", PLAIN_CASES, ids=_id)
def test_against_tensorflow_backprop_ops(tf, case):
    """tf.compat.v1.nn.conv2d_backprop_input / _filter directly (no dilation, no groups: the
    CPU kernels support neither)."""
    x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
    kw = dict(
        strides=[1, *case["strides"], 1],
        padding=_tf_padding(case),
        dilations=[1, *case["dilations"], 1],
    )
    dx_tf = tf.compat.v1.nn.conv2d_backprop_input(
        list(x.shape), tf.constant(w), tf.constant(dy), **kw
    )
    dw_tf = tf.compat.v1.nn.conv2d_backprop_filter(
        tf.constant(x), list(w.shape), tf.constant(dy), **kw
    )
    assert_close(conv2d_backprop_input(x.shape, w, dy, geom), dx_tf.numpy())
    assert_close(conv2d_backprop_filter(x, w.shape, dy, geom), dw_tf.numpy())


def test_against_tensorflow_nchw_geometry(tf):
    """NCHW shapes and 4-forms resolve to the same geometry; compare by transposing."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 7, 3))
    w = rng.standard_normal((3, 2, 3, 4))
    geom = conv_geometry(
        "conv2d",
        (2, 3, 9, 7),
        w.shape,
        [1, 1, 2, 1],
        [[0, 0], [0, 0], [1, 2], [0, 1]],
        [1, 1, 1, 2],
        data_format="NCHW",
    )
    y_tf = tf.nn.conv2d(
        tf.constant(x),
        tf.constant(w),
        [1, 2, 1, 1],
        [[0, 0], [1, 2], [0, 1], [0, 0]],
        dilations=[1, 1, 2, 1],
    )
    y_nchw = conv2d(x.transpose(0, 3, 1, 2).transpose(0, 2, 3, 1), w, geom).transpose(0, 3, 1, 2)
    assert_close(y_nchw, y_tf.numpy().transpose(0, 3, 1, 2))


def test_output_sizes_and_errors_agree_with_tensorflow(tf):
    rng = np.random.default_rng(8)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = str(rng.choice(["SAME", "VALID"]))
        x = np.zeros((1, h, w, 1))
        f = np.zeros((kh, kw, 1, 1))
        try:
            y = tf.nn.conv2d(x, f, [1, *s, 1], padding, dilations=[1, *d, 1])
        except tf.errors.InvalidArgumentError:  # "Computed output size would be negative"
            y = None
        if y is None or 0 in y.shape:
            # Where the filter outgrows the input TF 2.21 either raises or (when the overshoot
            # is less than one stride) quietly returns an empty output; we always refuse
            with pytest.raises(ValueError, match="larger than the padded input"):
                conv_geometry("conv2d", x.shape, f.shape, s, padding, d)
            continue
        geom = conv_geometry("conv2d", x.shape, f.shape, s, padding, d)
        assert tuple(y.shape[1:3]) == geom.output_hw


@pytest.mark.parametrize(
    "x_shape, w_shape, padding",
    [
        ((3, 20, 20, 8), (3, 3, 8, 16), "SAME"),  # NHWC windows: K*Og = 72*16
        ((3, 20, 20, 16), (3, 3, 8, 64), "SAME"),  # groups=2: K*Og = 72*32 per group
        ((3, 28, 28, 1), (5, 5, 1, 64), "VALID"),  # channel-major windows: 25*64
        ((3, 20, 20, 64), (1, 1, 64, 32), "VALID"),  # pointwise: 64*32
    ],
)
@pytest.mark.parametrize("one_thread", [True, False])
def test_filter_gradient_chunks_long_reductions(x_shape, w_shape, padding, one_thread):
    """M = N*Ho*Wo > 2 * tn_chunk_rows rows go through _gemm_tn's chunked sum ("chunked": what
    "auto" does on one BLAS thread) or one product ("whole"): from x, from kept windows (also
    the channel-major transposed view), with one block or several."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    geom = conv_geometry("conv2d", x_shape, w_shape, 1, padding)
    dy = rng.standard_normal((x_shape[0], *geom.output_hw, w_shape[3]))
    t = conv_mod.TUNING
    assert x_shape[0] * geom.output_hw[0] * geom.output_hw[1] > 2 * t.tn_chunk_rows
    groups = x_shape[3] // w_shape[2]
    assert w_shape[0] * w_shape[1] * w_shape[2] * w_shape[3] // groups >= t.tn_chunk_min_kn
    gemm = "chunked" if one_thread else "whole"
    p = conv_mod.plan(geom, x_shape, w_shape, 8)._replace(filter_gemm=gemm)
    expected = ref_backprop_filter(x, w_shape, dy, geom)
    assert_close(conv2d_backprop_filter(x, w_shape, dy, geom, plan=p), expected)
    cols = conv_mod.conv2d_windows(x, geom, groups)
    assert_close(conv2d_backprop_filter(x, w_shape, dy, geom, cols=cols, plan=p), expected)
    # several blocks of > 768 rows or not
    p = _tuned(geom, x_shape, w_shape, block_bytes=20000)._replace(filter_gemm=gemm)
    assert_close(conv2d_backprop_filter(x, w_shape, dy, geom, plan=p), expected)

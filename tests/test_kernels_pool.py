"""Tests for tinygrad_conv.kernels.pool against naive loops, adjointness and TensorFlow."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_conv.kernels import pool as pool_mod
from tinygrad_conv.kernels.padding import ConvGeometry, pool_geometry
from tinygrad_conv.kernels.pool import (
    avg_pool2d,
    avg_pool2d_backprop,
    max_pool2d,
    max_pool2d_backprop,
    max_pool2d_flat_argmax,
    max_pool2d_gather,
)

# ----------------------------------------------------------------------------- naive references


def _windows(geom: ConvGeometry):
    """For each output pixel: the in-bounds input positions of its window, row-major."""
    (h, w), (kh, kw), (ho, wo) = geom.input_hw, geom.kernel_hw, geom.output_hw
    (sh, sw), ((t, _), (l, _)) = geom.strides, geom.pads
    for oh in range(ho):
        for ow in range(wo):
            pos = [
                (oh * sh + i - t, ow * sw + j - l)
                for i in range(kh)
                for j in range(kw)
                if 0 <= oh * sh + i - t < h and 0 <= ow * sw + j - l < w
            ]
            yield oh, ow, pos


def ref_max_pool(x, geom, flat=False):
    """(y, argmax): argmax is the window position i*kw + j of the winner (flat: ih*W + iw)."""
    n, _, w, c = x.shape
    kw, (sh, sw), ((t, _), (l, _)) = geom.kernel_hw[1], geom.strides, geom.pads
    y = np.zeros((n, *geom.output_hw, c), x.dtype)
    arg = np.zeros((n, *geom.output_hw, c), np.int64)
    for oh, ow, pos in _windows(geom):
        vals = np.stack([x[:, ih, iw, :] for ih, iw in pos])  # (L, N, C)
        k = np.argmax(vals, axis=0)  # first maximum: TF's tie rule
        y[:, oh, ow, :] = np.take_along_axis(vals, k[None], 0)[0]
        if flat:
            index = np.array([ih * w + iw for ih, iw in pos])
        else:
            index = np.array([(ih - oh * sh + t) * kw + (iw - ow * sw + l) for ih, iw in pos])
        arg[:, oh, ow, :] = index[k]
    return y, arg


def ref_flat_argmax(x, geom):
    return ref_max_pool(x, geom, flat=True)[1]


def ref_max_pool_backprop(input_shape, arg, dy):
    n, h, w, c = input_shape
    dx = np.zeros((n, h * w, c))
    for b in range(n):
        for ch in range(c):
            for idx, g in zip(arg[b, ..., ch].ravel(), dy[b, ..., ch].ravel(), strict=True):
                dx[b, idx, ch] += g
    return dx.reshape(input_shape)


def ref_avg_pool(x, geom):
    n, _, _, c = x.shape
    y = np.zeros((n, *geom.output_hw, c))
    for oh, ow, pos in _windows(geom):
        y[:, oh, ow, :] = np.mean([x[:, ih, iw, :] for ih, iw in pos], axis=0)
    return y


def ref_avg_pool_backprop(input_shape, dy, geom):
    dx = np.zeros(input_shape)
    for oh, ow, pos in _windows(geom):
        for ih, iw in pos:
            dx[:, ih, iw, :] += dy[:, oh, ow, :] / len(pos)
    return dx


def random_pool_case(rng: np.random.Generator, explicit: bool = True):
    while True:
        n, c = (int(v) for v in rng.integers(1, 4, 2))
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        ksize = tuple(int(v) for v in rng.integers(1, 5, 2))
        strides = tuple(int(v) for v in rng.integers(1, 4, 2))
        kind = str(rng.choice(["SAME", "VALID", "explicit"] if explicit else ["SAME", "VALID"]))
        padding = (
            [[int(rng.integers(0, k)) for _ in range(2)] for k in ksize]
            if kind == "explicit"
            else kind
        )
        try:
            geom = pool_geometry("max_pool2d", (n, h, w, c), ksize, strides, padding)
        except ValueError:
            continue
        x = rng.standard_normal((n, h, w, c))
        dy = rng.standard_normal((n, *geom.output_hw, c))
        return dict(x=x, dy=dy, geom=geom, ksize=ksize, strides=strides, padding=padding)


CASES = [random_pool_case(np.random.default_rng(seed)) for seed in range(80)]


def _id(case):
    g = case["geom"]
    return f"x{case['x'].shape}-k{g.kernel_hw}-s{g.strides}-p{g.pads}".replace(" ", "")


# ----------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool_matches_reference(case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert arg.dtype == np.uint8 and y.dtype == x.dtype
    flat_ref = ref_flat_argmax(x, geom)
    flat = max_pool2d_flat_argmax(arg, geom)
    assert flat.dtype == np.int32
    np.testing.assert_array_equal(flat, flat_ref)
    dx = max_pool2d_backprop(x.shape, arg, dy, geom)
    np.testing.assert_allclose(
        dx, ref_max_pool_backprop(x.shape, flat_ref, dy), rtol=1e-14, atol=1e-14
    )


@pytest.mark.parametrize("case", CASES[:30], ids=_id)
def test_max_pool_ties_pick_first_in_window(case):
    """Integer-valued data from {0, 1, 2} makes ties everywhere."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, case["x"].shape).astype(np.float64)
    y, arg = max_pool2d(x, case["geom"])
    y_ref, arg_ref = ref_max_pool(x, case["geom"])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    yi, argi = max_pool2d(x.astype(np.int32), case["geom"])  # integer dtypes work too
    assert yi.dtype == np.int32
    np.testing.assert_array_equal(yi, y_ref)
    np.testing.assert_array_equal(argi, arg_ref)


@pytest.mark.parametrize(
    "ksize,strides,padding",
    [
        (3, 2, "SAME"),
        (3, 1, [[2, 1], [1, 2]]),  # top/left padding: the first in-bounds tap is not tap 0
        (3, 1, [[2, 0], [2, 0]]),  # taps (0, *) and (*, 0) read only padding
    ],
)
def test_max_pool_all_minus_inf_and_float32(ksize, strides, padding):
    x = np.full((1, 4, 4, 2), -np.inf, np.float32)
    x[0, 3, 3, 1] = 5
    geom = pool_geometry("max_pool2d", x.shape, ksize, strides, padding)
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, y_ref)
    # -inf everywhere: the window's first in-bounds element
    np.testing.assert_array_equal(arg, arg_ref)
    np.testing.assert_array_equal(max_pool2d_flat_argmax(arg, geom), ref_flat_argmax(x, geom))
    dy = np.ones(y.shape, np.float32)
    np.testing.assert_array_equal(
        max_pool2d_backprop(x.shape, arg, dy, geom),
        ref_max_pool_backprop(x.shape, ref_flat_argmax(x, geom), dy),
    )


def test_max_pool_first_tap_out_of_bounds_everywhere():
    """Row 0 and 1 of every window are padding: the first kept tap (2, 0) still fills y."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 1, 5, 3))
    geom = pool_geometry("max_pool2d", x.shape, 3, (1, 2), [[2, 0], [0, 0]])
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert arg.min() >= 6  # window rows 0 and 1 are never chosen


def test_max_pool_nan_propagates_and_argmax_points_at_it():
    x = np.arange(2 * 6 * 6 * 2, dtype=np.float64).reshape(2, 6, 6, 2)
    x[0, 1, 1, 0] = np.nan
    x[0, 1, 2, 0] = np.nan
    geom = pool_geometry("max_pool2d", x.shape, 3, 2, "SAME")
    y, arg = max_pool2d(x, geom)
    n, h, w, c = x.shape
    flat = max_pool2d_flat_argmax(arg, geom)
    picked = np.take_along_axis(x.reshape(n, h * w, c), flat.reshape(n, -1, c), 1).reshape(y.shape)
    np.testing.assert_array_equal(picked, y)  # y is always x at argmax, NaN included
    # the first NaN: window (0, 0) covers rows 0-2, cols 0-2; window (0, 1) cols 2-4
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1 * 3 + 1
    assert flat[0, 0, 0, 0] == 1 * 6 + 1
    assert np.isnan(y[0, 0, 1, 0]) and arg[0, 0, 1, 0] == 1 * 3 + 0
    assert flat[0, 0, 1, 0] == 1 * 6 + 2
    clean = ~np.isnan(y)
    y_ref, arg_ref = ref_max_pool(np.nan_to_num(x, nan=-1.0), geom)
    np.testing.assert_array_equal(y[clean], y_ref[clean])
    np.testing.assert_array_equal(arg[clean], arg_ref[clean])


@pytest.mark.parametrize(
    "shape,ksize,strides,padding",
    [
        ((2, 6, 8, 3), 2, 2, "VALID"),  # windows tile x exactly
        ((2, 7, 9, 3), 2, 2, "SAME"),  # disjoint windows, padded
        ((2, 7, 9, 3), (2, 1), 3, "VALID"),  # disjoint with gaps and leftover rows
        ((2, 7, 9, 3), 3, 2, "SAME"),  # overlapping: bincount scatter
        ((2, 7, 9, 3), 3, 1, [[1, 2], [0, 1]]),  # overlapping, explicit asymmetric pads
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_backprop_strategy(shape, ksize, strides, padding, dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    geom = pool_geometry("max_pool2d", shape, ksize, strides, padding)
    dy = rng.standard_normal((shape[0], *geom.output_hw, shape[3])).astype(dtype)
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    dx = max_pool2d_backprop(shape, arg, dy, geom)
    assert dx.dtype == dtype
    flat_ref = ref_flat_argmax(x, geom)
    np.testing.assert_allclose(dx, ref_max_pool_backprop(shape, flat_ref, dy), rtol=tol, atol=tol)
    ya, dxa = avg_pool2d(x, geom), avg_pool2d_backprop(shape, dy, geom)
    assert ya.dtype == dxa.dtype == dtype
    np.testing.assert_allclose(ya, ref_avg_pool(x, geom), rtol=tol, atol=tol)
    np.testing.assert_allclose(dxa, ref_avg_pool_backprop(shape, dy, geom), rtol=tol, atol=tol)


def test_max_pool_backprop_accepts_int64_argmax():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 7, 3))
    geom = pool_geometry("max_pool2d", x.shape, 2, (1, 2), "SAME")
    _, arg = max_pool2d(x, geom)
    dy = rng.standard_normal((2, *geom.output_hw, 3))
    expected = max_pool2d_backprop(x.shape, arg, dy, geom)
    for dt in (np.int64, np.int32, np.int8, np.uint16):
        np.testing.assert_array_equal(
            max_pool2d_backprop(x.shape, arg.astype(dt), dy, geom), expected
        )
    gx = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(
        max_pool2d_gather(gx, arg.astype(np.int64), geom), max_pool2d_gather(gx, arg, geom)
    )


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool_backprop_and_gather_are_adjoint(case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    _, arg = max_pool2d(x, geom)
    gx = np.random.default_rng(1).standard_normal(x.shape)
    dx = max_pool2d_backprop(x.shape, arg, dy, geom)
    gy = max_pool2d_gather(gx, arg, geom)
    assert gy.shape == dy.shape
    np.testing.assert_allclose(np.vdot(dx, gx), np.vdot(dy, gy), rtol=1e-12, atol=1e-12)
    # gather really is gx at the argmax
    n, h, w, c = x.shape
    flat = ref_flat_argmax(x, geom)
    expected = np.take_along_axis(gx.reshape(n, h * w, c), flat.reshape(n, -1, c), 1)
    np.testing.assert_array_equal(gy, expected.reshape(gy.shape))


def test_max_pool_backprop_dtype_and_linearity():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    geom = pool_geometry("max_pool2d", x.shape, 3, 1, "SAME")  # overlapping windows
    _, arg = max_pool2d(x, geom)
    a, b = rng.standard_normal((2, 2, 7, 6, 3)).astype(np.float32)
    da, db = (max_pool2d_backprop(x.shape, arg, v, geom) for v in (a, b))
    assert da.dtype == np.float32
    np.testing.assert_allclose(
        max_pool2d_backprop(x.shape, arg, 2 * a - b, geom), 2 * da - db, rtol=1e-5, atol=1e-5
    )


def test_argmax_pointing_into_the_padding_is_rejected():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 5, 3))
    # 'SAME' 2x2/2 on 5x5 pads one row/column at the bottom/right: the last row/column of
    # outputs has no tap (1, *) / (*, 1)
    geom = pool_geometry("max_pool2d", x.shape, 2, 2, "SAME")
    _, arg = max_pool2d(x, geom)
    dy = rng.standard_normal(arg.shape)
    bad = arg.copy()
    bad[1, 2, 0, 2] = 2  # tap (1, 0) of output (2, 0): input row 5, in the padding
    msg = r"argmax\[1, 2, 0, 2\] = 2 points at window tap \(i, j\) = \(1, 0\), which lies in the padding"
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: " + msg):
        max_pool2d_backprop(x.shape, bad, dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: " + msg):
        max_pool2d_gather(x, bad, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_flat_argmax: " + msg):
        max_pool2d_flat_argmax(bad, geom)
    bad = arg.astype(np.int64)
    bad[0, 1, 2, 0] = 3  # tap (1, 1) of output (1, 2): input column 5
    with pytest.raises(ValueError, match=r"argmax\[0, 1, 2, 0\] = 3 .* lies in the padding"):
        max_pool2d_backprop(x.shape, bad, dy, geom)
    # an overlapping geometry with padding (the bincount path) checks too
    geom3 = pool_geometry("max_pool2d", x.shape, 3, 1, "SAME")
    _, arg3 = max_pool2d(x, geom3)
    arg3[0, 0, 0, 0] = 0  # tap (0, 0) of output (0, 0): row -1
    with pytest.raises(ValueError, match=r"argmax\[0, 0, 0, 0\] = 0 .* lies in the padding"):
        max_pool2d_backprop(x.shape, arg3, rng.standard_normal(arg3.shape), geom3)


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_max_pool_big_window_uses_uint16(padding):
    """A 17x17 window has 289 taps: argmax no longer fits uint8."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 21, 20, 3))
    geom = pool_geometry("max_pool2d", x.shape, 17, (2, 3), padding)
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    assert arg.dtype == np.uint16
    assert arg.max() > 255  # the test reaches positions that uint8 could not hold
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    flat_ref = ref_flat_argmax(x, geom)
    np.testing.assert_array_equal(max_pool2d_flat_argmax(arg, geom), flat_ref)
    dy = rng.standard_normal(y.shape)
    dx = max_pool2d_backprop(x.shape, arg, dy, geom)
    np.testing.assert_allclose(dx, ref_max_pool_backprop(x.shape, flat_ref, dy), atol=1e-14)
    gx = rng.standard_normal(x.shape)
    gy = max_pool2d_gather(gx, arg, geom)
    np.testing.assert_allclose(np.vdot(dx, gx), np.vdot(dy, gy), rtol=1e-12)
    if padding == "VALID":  # a narrow dtype that cannot hold every position is widened
        _, argz = max_pool2d(np.zeros_like(x), geom)  # all ties: every argmax is 0
        assert not argz.any()
        np.testing.assert_array_equal(
            max_pool2d_backprop(x.shape, argz.astype(np.int8), dy, geom),
            max_pool2d_backprop(x.shape, argz, dy, geom),
        )
    # a disjoint 17x17 geometry: the per-tap path with uint16 compares
    geom_d = pool_geometry("max_pool2d", (1, 17, 34, 2), 17, 17, "VALID")
    xd = rng.standard_normal((1, 17, 34, 2))
    yd, argd = max_pool2d(xd, geom_d)
    assert argd.dtype == np.uint16
    np.testing.assert_array_equal(argd, ref_max_pool(xd, geom_d)[1])
    dyd = rng.standard_normal(yd.shape)
    np.testing.assert_array_equal(
        max_pool2d_backprop(xd.shape, argd, dyd, geom_d),
        ref_max_pool_backprop(xd.shape, ref_flat_argmax(xd, geom_d), dyd),
    )
    # the per-tap path compares against every position 0..288: an int8 argmax must be widened
    # first (np.int8(200) would overflow), and then gives the same gradient
    argz_d = np.zeros_like(argd)
    np.testing.assert_array_equal(
        max_pool2d_backprop(xd.shape, argz_d.astype(np.int8), dyd, geom_d),
        max_pool2d_backprop(xd.shape, argz_d, dyd, geom_d),
    )


def test_unchecked_argmax_paths_equal_the_checked_ones():
    """The graph nodes skip the argmax validation for max_pool2d's own argmax."""
    rng = np.random.default_rng(8)
    for padding, k, s in (("VALID", 2, 2), ("SAME", 3, 2), ("SAME", 2, 2)):
        x = rng.standard_normal((2, 7, 9, 3))
        geom = pool_geometry("max_pool2d", x.shape, k, s, padding)
        y, arg = max_pool2d(x, geom)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_array_equal(
            max_pool2d_backprop(x.shape, arg, dy, geom, check_argmax=False),
            max_pool2d_backprop(x.shape, arg, dy, geom),
        )
        np.testing.assert_array_equal(
            max_pool2d_gather(x, arg, geom, check_argmax=False),
            max_pool2d_gather(x, arg, geom),
        )


def test_max_pool2d_flat_argmax():
    x = np.zeros((1, 5, 7, 2))
    x[0, 1, 2, 0] = x[0, 4, 6, 1] = 1
    geom = pool_geometry("max_pool2d", x.shape, 3, 2, "SAME")  # pads top 1, left 1
    _, arg = max_pool2d(x, geom)
    flat = max_pool2d_flat_argmax(arg, geom)
    assert flat.dtype == np.int32 and flat.shape == arg.shape
    # output (0, 1) reads rows -1..1, cols 1..3: the 1 at (1, 2) is tap (2, 1)
    assert arg[0, 0, 1, 0] == 2 * 3 + 1 and flat[0, 0, 1, 0] == 1 * 7 + 2
    # output (2, 3) reads rows 3..5, cols 5..7: the 1 at (4, 6) is tap (1, 1)
    assert arg[0, 2, 3, 1] == 1 * 3 + 1 and flat[0, 2, 3, 1] == 4 * 7 + 6
    # all-zero windows pick their first in-bounds element
    assert arg[0, 0, 0, 1] == 1 * 3 + 1 and flat[0, 0, 0, 1] == 0
    np.testing.assert_array_equal(flat, ref_flat_argmax(x, geom))
    np.testing.assert_array_equal(max_pool2d_flat_argmax(arg.astype(np.int64), geom), flat)
    assert max_pool2d_flat_argmax(arg[:0], geom).shape == (0, 3, 4, 2)


@pytest.mark.parametrize("ksize,strides,padding", [(2, 2, "VALID"), (3, 2, "SAME"), (2, 2, "SAME")])
def test_max_pool_op_double_backward(ksize, strides, padding):
    """The op graph: backward is max_pool2d_backprop, its backward max_pool2d_gather (with geom)."""
    import tinygrad_conv as tc
    from tinygrad_conv.gradcheck import gradcheck, gradgradcheck
    from tinygrad_conv.tensor import Tensor

    x = Tensor(np.random.default_rng(2).standard_normal((2, 5, 6, 3)), requires_grad=True)

    def f(t):
        return tc.max_pool2d(t, ksize, strides, padding)

    assert gradcheck(f, [x]) and gradgradcheck(f, [x])


# ----------------------------------------------------------------------------- average pooling


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_avg_pool_matches_reference_and_is_adjoint(case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    y = avg_pool2d(x, geom)
    np.testing.assert_allclose(y, ref_avg_pool(x, geom), rtol=1e-12, atol=1e-12)
    dx = avg_pool2d_backprop(x.shape, dy, geom)
    np.testing.assert_allclose(dx, ref_avg_pool_backprop(x.shape, dy, geom), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, dx), rtol=1e-12, atol=1e-12)


def test_avg_pool_dtypes():
    x = np.arange(2 * 5 * 5 * 2).reshape(2, 5, 5, 2)
    geom = pool_geometry("avg_pool2d", x.shape, 2, 2, "SAME")
    assert avg_pool2d(x, geom).dtype == np.float64  # integers average to float64
    np.testing.assert_allclose(avg_pool2d(x, geom), ref_avg_pool(x, geom))
    y32 = avg_pool2d(x.astype(np.float32), geom)
    assert y32.dtype == np.float32
    dy = np.ones(y32.shape, np.float32)
    assert avg_pool2d_backprop(x.shape, dy, geom).dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 10),
    w=st.integers(1, 10),
    c=st.integers(1, 4),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["SAME", "VALID"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_pooling(n, h, w, c, k, s, padding, seed):
    try:
        geom = pool_geometry("max_pool2d", (n, h, w, c), k, s, padding)
    except ValueError:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c))
    dy = rng.standard_normal((n, *geom.output_hw, c))
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    flat_ref = ref_flat_argmax(x, geom)
    np.testing.assert_array_equal(max_pool2d_flat_argmax(arg, geom), flat_ref)
    np.testing.assert_allclose(
        max_pool2d_backprop(x.shape, arg, dy, geom),
        ref_max_pool_backprop(x.shape, flat_ref, dy),
        atol=1e-14,
    )
    np.testing.assert_allclose(avg_pool2d(x, geom), ref_avg_pool(x, geom), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        avg_pool2d_backprop(x.shape, dy, geom),
        ref_avg_pool_backprop(x.shape, dy, geom),
        rtol=1e-12,
        atol=1e-12,
    )


# ----------------------------------------------------------------------------- errors


def test_pool_errors_name_the_argument():
    x = np.zeros((2, 6, 6, 3))
    geom = pool_geometry("max_pool2d", x.shape, 2, 2, "VALID")
    _, arg = max_pool2d(x, geom)
    dy = np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"max_pool2d: x must be 4-D"):
        max_pool2d(x[0], geom)
    with pytest.raises(ValueError, match=r"max_pool2d: x has shape \(2, 5, 6, 3\)"):
        max_pool2d(x[:, :5], geom)
    with pytest.raises(TypeError, match=r"max_pool2d: x has unsupported dtype"):
        max_pool2d(x.astype(bool), geom)
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: argmax has shape"):
        max_pool2d_backprop(x.shape, arg[:, :2], dy, geom)
    with pytest.raises(TypeError, match=r"max_pool2d_backprop: argmax has unsupported dtype"):
        max_pool2d_backprop(x.shape, arg.astype(float), dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: dy has shape"):
        max_pool2d_backprop(x.shape, arg, dy[..., :2], geom)
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: input_shape has shape"):
        max_pool2d_backprop((2, 7, 6, 3), arg, dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: input_shape must be 4 ints"):
        max_pool2d_backprop((2, 6, 6), arg, dy, geom)
    with pytest.raises(TypeError, match=r"avg_pool2d_backprop: input_shape must contain ints"):
        avg_pool2d_backprop((2, 6.0, 6, 3), dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: argmax holds window positions"):
        max_pool2d_backprop(x.shape, arg - 1, dy, geom)  # uint8: 0 - 1 wraps to 255
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: argmax holds window positions"):
        max_pool2d_backprop(x.shape, arg.astype(np.int64) - 1, dy, geom)  # negative
    with pytest.raises(ValueError, match=r"outside \[0, kh\*kw = 4\)"):
        max_pool2d_backprop(x.shape, arg + 4, dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: argmax shape .* does not match gx"):
        max_pool2d_gather(np.zeros((1, 6, 6, 3)), arg, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: gx has shape \(2, 3, 3, 3\)"):
        max_pool2d_gather(np.zeros((2, 3, 3, 3)), arg, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: argmax has shape \(2, 2, 3, 3\)"):
        max_pool2d_gather(x, arg[:, :2], geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: argmax holds window positions"):
        max_pool2d_gather(x, arg + 20, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_flat_argmax: argmax has shape"):
        max_pool2d_flat_argmax(arg[:, :, :2], geom)
    with pytest.raises(ValueError, match=r"max_pool2d_flat_argmax: argmax holds window positions"):
        max_pool2d_flat_argmax(arg + 4, geom)
    with pytest.raises(TypeError, match=r"max_pool2d_flat_argmax: argmax has unsupported dtype"):
        max_pool2d_flat_argmax(arg.astype(np.float32), geom)
    with pytest.raises(TypeError, match=r"max_pool2d_flat_argmax: geom must be a ConvGeometry"):
        max_pool2d_flat_argmax(arg, None)
    with pytest.raises(ValueError, match=r"avg_pool2d: x has shape"):
        avg_pool2d(np.zeros((2, 6, 5, 3)), geom)
    with pytest.raises(ValueError, match=r"avg_pool2d_backprop: dy has shape"):
        avg_pool2d_backprop(x.shape, dy[:, :, :2], geom)
    with pytest.raises(TypeError, match=r"avg_pool2d: geom must be a ConvGeometry"):
        avg_pool2d(x, None)
    # a hand-made geometry whose windows can lie entirely in the padding
    bad = ConvGeometry((3, 3), (2, 2), (1, 1), (1, 1), ((2, 0), (0, 0)), (3, 2))
    with pytest.raises(ValueError, match=r"max_pool2d: some pooling window lies entirely"):
        max_pool2d(np.zeros((1, 3, 3, 1)), bad)
    with pytest.raises(ValueError, match=r"avg_pool2d: some pooling window lies entirely"):
        avg_pool2d(np.zeros((1, 3, 3, 1)), bad)


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


@pytest.mark.parametrize("case", CASES[:40], ids=_id)
def test_max_pool_against_tensorflow(tf, case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    k, s = list(case["ksize"]), list(case["strides"])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_tf = tf.nn.max_pool2d(xt, k, s, _tf_padding(case))
        loss = tf.reduce_sum(y_tf * tf.constant(dy))
    dx_tf = tape.gradient(loss, xt).numpy()
    y, arg = max_pool2d(x, geom)
    np.testing.assert_array_equal(y, y_tf.numpy())
    np.testing.assert_allclose(
        max_pool2d_backprop(x.shape, arg, dy, geom), dx_tf, rtol=1e-12, atol=1e-12
    )
    if isinstance(case["padding"], str):  # MaxPoolWithArgmax takes only SAME / VALID
        _, arg_tf = tf.nn.max_pool_with_argmax(
            xt, k, s, case["padding"], include_batch_in_index=False
        )
        # TF's index is (ih * W + iw) * C + c
        np.testing.assert_array_equal(
            max_pool2d_flat_argmax(arg, geom), arg_tf.numpy() // x.shape[3]
        )


@pytest.mark.parametrize("case", [c for c in CASES if isinstance(c["padding"], str)][:40], ids=_id)
def test_avg_pool_against_tensorflow(tf, case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y_tf = tf.nn.avg_pool2d(xt, list(case["ksize"]), list(case["strides"]), case["padding"])
        loss = tf.reduce_sum(y_tf * tf.constant(dy))
    dx_tf = tape.gradient(loss, xt).numpy()
    np.testing.assert_allclose(avg_pool2d(x, geom), y_tf.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        avg_pool2d_backprop(x.shape, dy, geom), dx_tf, rtol=1e-12, atol=1e-12
    )


def test_pool_nchw_and_4forms_against_tensorflow(tf):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 9, 8, 3))
    xt = tf.constant(x, dtype=tf.float64)
    geom = pool_geometry("max_pool2d", (2, 3, 9, 8), [1, 1, 3, 2], [1, 1, 2, 3], "SAME", "NCHW")
    y_tf = tf.nn.max_pool2d(xt, [1, 3, 2, 1], [1, 2, 3, 1], "SAME").numpy()
    np.testing.assert_array_equal(max_pool2d(x, geom)[0], y_tf)
    a_tf = tf.nn.avg_pool2d(xt, [1, 3, 2, 1], [1, 2, 3, 1], "SAME").numpy()
    np.testing.assert_allclose(avg_pool2d(x, geom), a_tf, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("window", [(2, 2), (3, 3), (2, 3), (1, 2), (1, 1)])
@pytest.mark.parametrize("channels", [1, 16, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiling_backprop_upsampled_and_per_tap_agree(monkeypatch, window, channels, dtype):
    """The upsampling backprop for tiling windows (np.repeat, one compare, one multiply) and the
    per-tap loop of the other disjoint windows give the same dx, with many ties (small integer
    values) so the first-maximum rule matters; argmax in its own uint8 and as int64."""
    rng = np.random.default_rng(channels)
    kh, kw = window
    x = rng.integers(0, 3, (3, 2 * kh, 3 * kw, channels)).astype(dtype)
    geom = pool_geometry("max_pool2d", x.shape, window, window, "VALID")
    y, argmax = max_pool2d(x, geom)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy_before = dy.copy()
    tiled = max_pool2d_backprop(x.shape, argmax, dy, geom)
    wide = max_pool2d_backprop(x.shape, argmax.astype(np.int64), dy, geom)
    monkeypatch.setattr(pool_mod, "_tiles", lambda geom: False)  # force the per-tap loop
    per_tap = max_pool2d_backprop(x.shape, argmax, dy, geom)
    np.testing.assert_array_equal(tiled, per_tap)
    np.testing.assert_array_equal(wide, per_tap)
    np.testing.assert_array_equal(dy, dy_before)  # dx is a new array, dy untouched
    assert tiled.dtype == dtype
    # each output's dy lands on exactly one element of its window: the first maximum
    dx = tiled.reshape(3, 2, kh, 3, kw, channels)
    np.testing.assert_array_equal(dx.sum(axis=(2, 4)), dy)
    assert ((dx != 0).sum(axis=(2, 4)) <= 1).all()

"""Tests for tinygrad_conv.kernels.pool against naive loops, adjointness and TensorFlow."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_conv.kernels.padding import ConvGeometry, pool_geometry
from tinygrad_conv.kernels.pool import (
    avg_pool2d,
    avg_pool2d_backprop,
    max_pool2d,
    max_pool2d_backprop,
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


def ref_max_pool(x, geom):
    n, _, w, c = x.shape
    y = np.zeros((n, *geom.output_hw, c), x.dtype)
    arg = np.zeros((n, *geom.output_hw, c), np.int64)
    for oh, ow, pos in _windows(geom):
        vals = np.stack([x[:, ih, iw, :] for ih, iw in pos])  # (L, N, C)
        k = np.argmax(vals, axis=0)  # first maximum: TF's tie rule
        y[:, oh, ow, :] = np.take_along_axis(vals, k[None], 0)[0]
        flat = np.array([ih * w + iw for ih, iw in pos])
        arg[:, oh, ow, :] = flat[k]
    return y, arg


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
    assert arg.dtype == np.int32 and y.dtype == x.dtype
    dx = max_pool2d_backprop(x.shape, arg, dy, geom)
    np.testing.assert_allclose(
        dx, ref_max_pool_backprop(x.shape, arg_ref, dy), rtol=1e-14, atol=1e-14
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


def test_max_pool_all_minus_inf_and_float32():
    x = np.full((1, 4, 4, 2), -np.inf, np.float32)
    x[0, 3, 3, 1] = 5
    geom = pool_geometry("max_pool2d", x.shape, 3, 2, "SAME")
    y, arg = max_pool2d(x, geom)
    y_ref, arg_ref = ref_max_pool(x, geom)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)  # -inf everywhere: the window's first element


def test_max_pool_nan_propagates_and_argmax_points_at_it():
    x = np.arange(2 * 6 * 6 * 2, dtype=np.float64).reshape(2, 6, 6, 2)
    x[0, 1, 1, 0] = np.nan
    x[0, 1, 2, 0] = np.nan
    geom = pool_geometry("max_pool2d", x.shape, 3, 2, "SAME")
    y, arg = max_pool2d(x, geom)
    n, h, w, c = x.shape
    picked = np.take_along_axis(x.reshape(n, h * w, c), arg.reshape(n, -1, c), 1).reshape(y.shape)
    np.testing.assert_array_equal(picked, y)  # y is always x at argmax, NaN included
    assert np.isnan(y[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 1 * 6 + 1  # the first NaN
    assert np.isnan(y[0, 0, 1, 0]) and arg[0, 0, 1, 0] == 1 * 6 + 2
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
    np.testing.assert_allclose(dx, ref_max_pool_backprop(shape, arg, dy), rtol=tol, atol=tol)
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
    np.testing.assert_array_equal(
        max_pool2d_backprop(x.shape, arg.astype(np.int64), dy, geom),
        max_pool2d_backprop(x.shape, arg, dy, geom),
    )


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool_backprop_and_gather_are_adjoint(case):
    x, dy, geom = case["x"], case["dy"], case["geom"]
    _, arg = max_pool2d(x, geom)
    gx = np.random.default_rng(1).standard_normal(x.shape)
    dx = max_pool2d_backprop(x.shape, arg, dy, geom)
    gy = max_pool2d_gather(gx, arg)
    assert gy.shape == dy.shape
    np.testing.assert_allclose(np.vdot(dx, gx), np.vdot(dy, gy), rtol=1e-12, atol=1e-12)
    # gather really is gx at the argmax
    n, h, w, c = x.shape
    expected = np.take_along_axis(gx.reshape(n, h * w, c), arg.reshape(n, -1, c), 1)
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
    np.testing.assert_allclose(
        max_pool2d_backprop(x.shape, arg, dy, geom),
        ref_max_pool_backprop(x.shape, arg, dy),
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
    with pytest.raises(ValueError, match=r"max_pool2d_backprop: argmax holds indices outside"):
        max_pool2d_backprop(x.shape, arg - 1, dy, geom)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: argmax shape .* does not match gx"):
        max_pool2d_gather(np.zeros((1, 6, 6, 3)), arg)
    with pytest.raises(ValueError, match=r"max_pool2d_gather: argmax holds indices outside"):
        max_pool2d_gather(np.zeros((2, 3, 3, 3)), arg + 20)
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
        np.testing.assert_array_equal(arg, arg_tf.numpy() // x.shape[3])


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

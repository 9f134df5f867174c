"""derivations.py: every way of computing d_x (4) and d_w (3) agrees, and the building blocks
(rot180, dilate, pad_to_full, the NHWC<->HWIO swaps) do exactly what their docstrings say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinygrad_conv as tc
from tinygrad_conv import derivations as D
from tinygrad_conv.kernels.padding import conv_geometry

TOL = 1e-10


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = np.abs(ref).max() if ref.size else 0.0
    diff = np.abs(a - ref).max() if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def _check_all_ways(x_shape, w_shape, strides, padding, dilations, seed=0) -> None:
    rng = np.random.default_rng(seed)
    geom = conv_geometry("test", x_shape, w_shape, strides, padding, dilations)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    dy = rng.standard_normal((x_shape[0], *geom.output_hw, w_shape[3]))
    dxs = D.input_grad_ways(x, w, dy, strides, padding, dilations)
    dws = D.filter_grad_ways(x, w, dy, strides, padding, dilations)
    assert list(dxs) == [
        "autodiff",
        "conv2d_of_dilated_full_padded_dy",
        "conv2d_backprop_input",
        "conv2d_transpose",
    ]
    assert list(dws) == ["autodiff", "conv2d_of_swapped_x_and_dy", "conv2d_backprop_filter"]
    for name, v in dxs.items():
        assert v.shape == x.shape and v.dtype == np.float64, name
        assert _rel(v, dxs["autodiff"]) <= TOL, (name, _rel(v, dxs["autodiff"]))
    for name, v in dws.items():
        assert v.shape == w.shape and v.dtype == np.float64, name
        assert _rel(v, dws["autodiff"]) <= TOL, (name, _rel(v, dws["autodiff"]))
    # an independent reference: the adjoint identity <conv2d(x, w), dy> = <x, d_x> = <w, d_w>
    y = tc.conv2d(x, w, strides, padding, dilations=dilations).data
    lhs = np.sum(y * dy)
    scale = np.abs(y).sum() * np.abs(dy).max() + 1e-300
    assert abs(np.sum(x * dxs["conv2d_of_dilated_full_padded_dy"]) - lhs) <= 1e-12 * scale
    assert abs(np.sum(w * dws["conv2d_of_swapped_x_and_dy"]) - lhs) <= 1e-12 * scale


# (x_shape NHWC, w_shape HWIO, strides, padding, dilations)
CASES = [
    ((1, 5, 5, 1), (3, 3, 1, 1), 1, "VALID", 1),
    ((2, 7, 6, 3), (3, 2, 3, 4), 1, "SAME", 1),
    ((1, 6, 6, 1), (3, 3, 1, 1), 2, "SAME", 1),  # SAME uneven: pads (0, 1)
    ((2, 8, 7, 2), (3, 3, 2, 3), 2, "VALID", 1),  # leftover r = 1 on both axes
    ((1, 9, 9, 2), (2, 2, 2, 2), 3, "VALID", 1),  # r = 1, stride > kernel: gaps
    ((1, 7, 8, 1), (1, 1, 1, 3), 3, "VALID", 1),  # 1x1 kernel, rows never read
    ((2, 9, 8, 2), (3, 3, 2, 2), 1, [[2, 1], [0, 2]], 2),  # dilation, explicit asymmetric
    ((1, 11, 10, 2), (3, 2, 2, 3), [2, 3], "SAME", [3, 2]),  # strides and dilations together
    ((1, 4, 5, 2), (2, 2, 2, 2), [1, 2], [[4, 3], [3, 4]], 1),  # pad > d(k-1): crop
    ((2, 1, 1, 1), (1, 1, 1, 2), 3, [[2, 0], [2, 0]], 1),  # the input is never read at all
    ((1, 1, 1, 1), (5, 5, 1, 1), 1, "SAME", 3),  # effective kernel 13 on a 1x1 input
    ((1, 6, 7, 4), (3, 3, 2, 6), 2, "SAME", 1),  # groups 2, Cg 2 != Og 3
    ((2, 7, 7, 6), (2, 3, 2, 3), [3, 2], [[1, 2], [2, 0]], [2, 1]),  # groups 3, Og 1
    ((1, 8, 6, 5), (3, 3, 1, 10), 2, "SAME", 2),  # depthwise, multiplier 2
    ((3, 5, 4, 3), (5, 4, 3, 2), [2, 3], "VALID", 1),  # filter = input size
]


@pytest.mark.parametrize(("x_shape", "w_shape", "strides", "padding", "dilations"), CASES)
def test_all_ways_agree_on_hand_picked_cases(x_shape, w_shape, strides, padding, dilations):
    _check_all_ways(x_shape, w_shape, strides, padding, dilations)


def _random_cases(count: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        g = int(rng.choice([1, 1, 1, 2, 3]))
        cg, og = (int(v) for v in rng.integers(1, 4, 2))
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        s = [int(v) for v in rng.integers(1, 4, 2)]
        d = [int(v) for v in rng.integers(1, 4, 2)]
        mode = int(rng.integers(0, 3))
        padding = ["VALID", "SAME", [[int(v) for v in rng.integers(0, 4, 2)] for _ in range(2)]][
            mode
        ]
        h, w = (int(v) for v in rng.integers(1, 14, 2))
        case = ((int(rng.integers(1, 4)), h, w, g * cg), (kh, kw, cg, g * og), s, padding, d)
        try:
            conv_geometry("t", case[0], case[1], s, padding, d)
        except ValueError:
            continue
        out.append(case)
    return out


RANDOM_CASES = _random_cases(150)


def test_random_cases_cover_leftover_uneven_same_and_groups():
    geoms = [conv_geometry("t", *c[:2], c[2], c[3], c[4]) for c in RANDOM_CASES]
    assert sum(max(g.leftover) > 0 for g in geoms) >= 20
    assert (
        sum(
            c[3] == "SAME" and any(lo != hi for lo, hi in g.pads)
            for c, g in zip(RANDOM_CASES, geoms, strict=True)
        )
        >= 10
    )
    assert sum(c[0][3] != c[1][2] for c in RANDOM_CASES) >= 20


@pytest.mark.parametrize("i", range(0, len(RANDOM_CASES), 10))
def test_all_ways_agree_on_random_cases(i):
    for j, case in enumerate(RANDOM_CASES[i : i + 10]):
        _check_all_ways(*case, seed=i + j)


@st.composite
def conv_cases(draw):
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    d = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    padding = draw(
        st.one_of(
            st.sampled_from(["VALID", "SAME"]),
            st.lists(st.lists(st.integers(0, 4), min_size=2, max_size=2), min_size=2, max_size=2),
        )
    )
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 12)), draw(st.integers(1, 12))
    return (n, h, w, g * cg), (kh, kw, cg, g * og), s, padding, d


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_all_ways_agree_hypothesis(case, seed):
    try:
        conv_geometry("t", *case[:2], case[2], case[3], case[4])
    except ValueError:
        assume(False)
    _check_all_ways(*case, seed=seed)


# ----------------------------------------------------------------------------- differentiability


@pytest.mark.parametrize(("x_shape", "w_shape", "strides", "padding", "dilations"), CASES[::2])
def test_rearranged_forms_are_differentiable_like_the_nodes(
    x_shape, w_shape, strides, padding, dilations
):
    """Second order through the rearranged forms equals second order through the graph nodes."""
    rng = np.random.default_rng(1)
    geom = conv_geometry("t", x_shape, w_shape, strides, padding, dilations)
    dy_shape = (x_shape[0], *geom.output_hw, w_shape[3])
    x, w, dy = (rng.standard_normal(s) for s in (x_shape, w_shape, dy_shape))
    vx, vw = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    kw = dict(strides=strides, padding=padding, dilations=dilations)

    def grads(fn, a, b, v):
        ta, tb = tc.Tensor(a, requires_grad=True), tc.Tensor(b, requires_grad=True)
        return [g.data for g in tc.grad((fn(ta, tb) * v).sum(), [ta, tb])]

    xs, ws = np.array(x_shape), np.array(w_shape)
    got = grads(lambda a, b: D.input_grad_as_conv2d(a, b, x_shape, **kw), w, dy, vx)
    ref = grads(lambda a, b: tc.conv2d_backprop_input(xs, a, b, **kw), w, dy, vx)
    for g, r in zip(got, ref, strict=True):
        assert _rel(g, r) <= TOL
    got = grads(lambda a, b: D.filter_grad_as_conv2d(a, b, w_shape, **kw), x, dy, vw)
    ref = grads(lambda a, b: tc.conv2d_backprop_filter(a, ws, b, **kw), x, dy, vw)
    for g, r in zip(got, ref, strict=True):
        assert _rel(g, r) <= TOL


def test_building_blocks_pass_gradcheck():
    rng = np.random.default_rng(2)
    w = tc.Tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    dy = tc.Tensor(rng.standard_normal((1, 3, 2, 2)), requires_grad=True)
    assert tc.gradcheck(D.rot180, [w])
    assert tc.gradcheck(lambda t: D.swap_in_out(t, 2), [w])
    assert tc.gradcheck(lambda t: D.dilate(t, [2, 3]), [dy])
    assert tc.gradcheck(lambda t: D.pad_or_crop(t, [[2, -1], [-1, 1]]), [dy])
    assert tc.gradcheck(lambda t: D.batch_channel_swap(t, 2), [dy])
    assert tc.gradcheck(D.nhwc_to_hwio, [dy])


# ----------------------------------------------------------------------------- unit values


def test_rot180_flips_both_spatial_axes_only():
    w = np.arange(2 * 3 * 2 * 1, dtype=np.float64).reshape(2, 3, 2, 1)
    r = D.rot180(w).data
    for u in range(2):
        for v in range(3):
            np.testing.assert_array_equal(r[u, v], w[1 - u, 2 - v])
    np.testing.assert_array_equal(D.rot180(r).data, w)
    np.testing.assert_array_equal(
        D.rot180(np.array([[1.0, 2.0], [3.0, 4.0]])[:, :, None, None]).data[:, :, 0, 0],
        [[4.0, 3.0], [2.0, 1.0]],
    )


def test_dilate_inserts_stride_minus_one_zeros():
    dy = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(D.dilate(dy, [2, 1]).data.ravel(), [1, 0, 2, 0, 3])
    np.testing.assert_array_equal(D.dilate(dy, [3, 5]).data.ravel(), [1, 0, 0, 2, 0, 0, 3])
    dy2 = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(
        D.dilate(dy2, 2).data[0, :, :, 0], [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    )
    np.testing.assert_array_equal(
        D.dilate(dy2, [1, 3]).data[0, :, :, 0], [[1, 0, 0, 2], [3, 0, 0, 4]]
    )
    assert D.dilate(np.ones((2, 1, 1, 3)), 3).shape == (2, 1, 1, 3)
    # a filter's dilation, along HWIO's spatial axes
    w = np.array([1.0, 2.0]).reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(D.dilate(w, [3, 1], axes=(0, 1)).data.ravel(), [1, 0, 0, 2])


def test_dilate_adjoint_is_strided_slice():
    dy = tc.Tensor(np.ones((1, 2, 3, 1)), requires_grad=True)
    g = np.arange(1 * 3 * 7 * 1, dtype=np.float64).reshape(1, 3, 7, 1)
    (gd,) = tc.grad(D.dilate(dy, [2, 3]), [dy], grad_outputs=tc.Tensor(g))
    np.testing.assert_array_equal(gd.data, g[:, ::2, ::3])


def test_full_padding_and_pad_to_full_values():
    dy = np.arange(1.0, 4.0).reshape(1, 3, 1, 1)
    # textbook full padding: k - 1 on both sides
    np.testing.assert_array_equal(D.pad_to_full(dy, [3, 1]).data.ravel(), [0, 0, 1, 2, 3, 0, 0])
    # dilation 2: d(k-1) = 4; explicit pads (1, 3) and leftover 1: lo = 3, hi = 4 - 3 + 1 = 2
    out = D.pad_to_full(dy, [3, 1], padding=[[1, 3], [0, 0]], dilations=[2, 1], leftover=[1, 0])
    np.testing.assert_array_equal(out.data.ravel(), [0, 0, 0, 1, 2, 3, 0, 0])
    # padding larger than d(k-1) crops: k = 2, pads (3, 2): lo = -2, hi = -1
    out = D.pad_to_full(dy, [2, 1], padding=[[3, 2], [0, 0]])
    assert out.shape == (1, 0, 1, 1)
    dy5 = np.arange(1.0, 6.0).reshape(1, 5, 1, 1)
    out = D.pad_to_full(dy5, [2, 1], padding=[[3, 2], [0, 0]])
    np.testing.assert_array_equal(out.data.ravel(), [3, 4])

    def fp(x_shape, w_shape, strides, padding, dilations=1):
        return D.full_padding(conv_geometry("t", x_shape, w_shape, strides, padding, dilations))

    # SAME, i=6, k=3, s=2: total 1 -> pads (0, 1), r = 0 -> full (2, 1): asymmetric the other way
    assert fp((1, 6, 6, 1), (3, 3, 1, 1), 2, "SAME") == ((2, 1), (2, 1))
    # VALID, i=8, k=3, s=2: o = 3, r = 1 -> full (2, 3)
    assert fp((1, 8, 7, 1), (3, 3, 1, 1), 2, "VALID") == ((2, 3), (2, 2))
    # explicit (4, 3) with k=2: crops (-3, -2)
    assert fp((1, 4, 4, 1), (2, 2, 1, 1), 1, [[4, 3], [0, 0]]) == ((-3, -2), (1, 1))
    # dilation 3, k=5, SAME on 1 pixel: total 12 -> (6, 6), full = (12-6, 12-6) = (6, 6)
    assert fp((1, 1, 1, 1), (5, 5, 1, 1), 1, "SAME", 3) == ((6, 6), (6, 6))


def test_pad_or_crop_pads_first_then_crops():
    t = np.array([7.0]).reshape(1, 1, 1, 1)
    np.testing.assert_array_equal(D.pad_or_crop(t, [[2, -2], [0, 0]]).data.ravel(), [0])
    np.testing.assert_array_equal(D.pad_or_crop(t, [[-1, 2], [0, 0]]).data.ravel(), [0, 0])
    np.testing.assert_array_equal(D.pad_or_crop(t, [[1, 1], [0, 0]]).data.ravel(), [0, 7, 0])
    with pytest.raises(ValueError, match="negative size"):
        D.pad_or_crop(t, [[-1, -1], [0, 0]])


def test_swaps():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float64).reshape(2, 3, 4, 6)
    np.testing.assert_array_equal(D.nhwc_to_hwio(x).data, x.transpose(1, 2, 0, 3))
    np.testing.assert_array_equal(D.hwio_to_nhwc(D.nhwc_to_hwio(x)).data, x)
    np.testing.assert_array_equal(D.batch_channel_swap(x).data, x.transpose(3, 1, 2, 0))
    xs = D.batch_channel_swap(x, groups=3).data  # [Cg=2, H, W, G*N=6], channel g*N + n
    assert xs.shape == (2, 3, 4, 6)
    for g in range(3):
        for n in range(2):
            for c in range(2):
                np.testing.assert_array_equal(xs[c, :, :, g * 2 + n], x[n, :, :, g * 2 + c])
    w = np.arange(2 * 2 * 2 * 6, dtype=np.float64).reshape(2, 2, 2, 6)  # Cg 2, G 3, Og 2
    np.testing.assert_array_equal(D.swap_in_out(w).data, w.transpose(0, 1, 3, 2))
    ws = D.swap_in_out(w, groups=3).data  # [2, 2, Og=2, G*Cg=6]
    for g in range(3):
        np.testing.assert_array_equal(
            ws[:, :, :, g * 2 : g * 2 + 2], w[:, :, :, g * 2 : g * 2 + 2].transpose(0, 1, 3, 2)
        )


# ----------------------------------------------------------------------------- explain_steps


def test_explain_steps_is_stable_and_documented():
    steps = D.explain_steps((1, 6, 6, 1), (3, 3, 1, 1), 2, "SAME", 1, seed=0)
    assert [t for t, _ in steps] == list(D.EXPLAIN_STEP_TITLES)
    assert len(steps) == 8
    shapes = [a.shape for _, a in steps]
    assert shapes == [
        (1, 3, 3, 1),  # dy
        (1, 5, 5, 1),  # dilated by 2
        (1, 8, 8, 1),  # full: H + e - 1 = 6 + 3 - 1
        (3, 3, 1, 1),  # rot180(w) swapped
        (1, 6, 6, 1),  # d_x
        (1, 6, 6, 1),  # x swapped [Cin, H, W, N]
        (3, 3, 1, 1),  # dy as filter [Ho, Wo, N, Cout]
        (3, 3, 1, 1),  # d_w
    ]
    for _, a in steps:
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, np.round(a))  # small integers: readable
    again = D.explain_steps((1, 6, 6, 1), (3, 3, 1, 1), 2, "SAME", 1, seed=0)
    for (t1, a1), (t2, a2) in zip(steps, again, strict=True):
        assert t1 == t2 and np.array_equal(a1, a2)
    dy = steps[0][1]
    np.testing.assert_array_equal(steps[1][1][0, ::2, ::2], dy[0])
    assert steps[1][1][0, 1::2].sum() == 0 and steps[1][1][0, :, 1::2].sum() == 0


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "strides", "padding", "dilations"),
    [
        ((2, 7, 5, 4), (2, 3, 2, 6), [2, 1], [[1, 0], [2, 1]], [1, 2]),
        ((1, 5, 5, 2), (3, 3, 2, 3), 3, "VALID", 1),
        ((1, 4, 4, 1), (2, 2, 1, 1), 1, [[3, 3], [3, 3]], 1),
    ],
)
def test_explain_steps_shapes_general(x_shape, w_shape, strides, padding, dilations):
    geom = conv_geometry("t", x_shape, w_shape, strides, padding, dilations)
    (ho, wo), (sh, sw) = geom.output_hw, geom.strides
    (eh, ew), g = geom.effective_kernel_hw, x_shape[3] // w_shape[2]
    n, h, w, cin = x_shape
    kh, kw, cg, cout = w_shape
    shapes = [a.shape for _, a in D.explain_steps(x_shape, w_shape, strides, padding, dilations)]
    assert shapes == [
        (n, ho, wo, cout),
        (n, (ho - 1) * sh + 1, (wo - 1) * sw + 1, cout),
        (n, h + eh - 1, w + ew - 1, cout),
        (kh, kw, cout // g, g * cg),
        (n, h, w, cin),
        (cg, h, w, g * n),
        (ho, wo, n, cout),
        (kh, kw, cg, cout),
    ]


def test_input_checks_name_the_function():
    with pytest.raises(ValueError, match="input_grad_as_conv2d: out_backprop has shape"):
        D.input_grad_as_conv2d(np.ones((3, 3, 1, 1)), np.ones((1, 4, 4, 1)), (1, 5, 5, 1))
    with pytest.raises(ValueError, match="filter_grad_as_conv2d: x must have rank 4"):
        D.filter_grad_as_conv2d(np.ones((5, 5, 1)), np.ones((1, 3, 3, 1)), (3, 3, 1, 1))
    with pytest.raises(ValueError, match="rot180: w must have rank 4"):
        D.rot180(np.ones((3, 3)))

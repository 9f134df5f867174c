"""derivations.py in 1-D and 3-D: d_x four ways and d_w three ways agree on every case
(strides with dilations, SAME with odd totals, explicit pads larger than d(k-1) (crops), leftover
rows, groups), and the rearranged forms are differentiable like the nodes."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import derivations as D
from tinygrad_conv.kernels.padding import conv_geometry_nd


def _cases(rank: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        cg, og = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, rank))
        s = tuple(int(v) for v in rng.integers(1, 4, rank))
        d = tuple(int(v) for v in rng.integers(1, 3, rank))
        mode = int(rng.integers(0, 3))
        padding = (
            ("VALID", "SAME")[mode]
            if mode < 2
            else [[int(a), int(b)] for a, b in rng.integers(0, 5, (rank, 2))]
        )
        size = tuple(int(v) for v in rng.integers(2, 10 if rank == 1 else 6, rank))
        xs, ws = (int(rng.integers(1, 3)), *size, groups * cg), (*k, cg, groups * og)
        try:
            geom = conv_geometry_nd("t", rank, xs, k, s, padding, d)
        except ValueError:
            continue
        out.append((xs, ws, s, padding, d, geom))
    return out


CASES = [(r, c) for r in (1, 3) for c in _cases(r, 30, r)]


@pytest.mark.parametrize(("rank", "case"), CASES)
def test_all_ways_agree(rank, case):
    xs, ws, s, padding, d, geom = case
    rng = np.random.default_rng(len(str(case)))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    dy = rng.standard_normal((xs[0], *geom.output_hw, ws[-1]))
    dx = D.input_grad_ways(x, w, dy, s, padding, d)
    dw = D.filter_grad_ways(x, w, dy, s, padding, d)
    name = {1: "conv1d", 3: "conv3d"}[rank]
    bp = {1: "_backprop_input", 3: "_backprop_input_v2"}[rank]
    assert list(dx) == [
        "autodiff",
        f"{name}_of_dilated_full_padded_dy",
        name + bp,
        f"{name}_transpose",
    ]
    assert list(dw)[1] == f"{name}_of_swapped_x_and_dy" and len(dw) == 3
    for ways in (dx, dw):
        ref = ways["autodiff"]
        for key, v in ways.items():
            np.testing.assert_allclose(v, ref, atol=1e-12, err_msg=key)


def test_cases_cover_crops_leftover_and_groups():
    geoms = [c[-1] for _, c in CASES]
    assert any(min(lo for lo, _ in D.full_padding(g)) < 0 for g in geoms)  # pad > d(k-1): crop
    assert any(max(g.leftover) > 0 for g in geoms)
    assert any(c[0][-1] != c[1][-2] for _, c in CASES)  # groups


@pytest.mark.parametrize("rank", [1, 3])
def test_rearranged_forms_are_differentiable(rank):
    rng = np.random.default_rng(rank)
    if rank == 1:
        xs, ws, s, p, d = (1, 7, 2), (3, 2, 2), 2, "SAME", 2
    else:
        xs, ws, s, p, d = (1, 3, 4, 3, 2), (2, 2, 1, 1, 4), [1, 2, 1], [[1, 0], [0, 1], [1, 1]], 1
    geom = conv_geometry_nd("t", rank, xs, ws[:-2], s, p, d)
    dys = (xs[0], *geom.output_hw, ws[-1])
    w = tc.Tensor(rng.standard_normal(ws), requires_grad=True)
    x = tc.Tensor(rng.standard_normal(xs), requires_grad=True)
    dy = tc.Tensor(rng.standard_normal(dys), requires_grad=True)
    assert tc.gradcheck(lambda a, b: D.input_grad_as_conv2d(a, b, xs, s, p, d), [w, dy], atol=1e-7)
    assert tc.gradcheck(lambda a, b: D.filter_grad_as_conv2d(a, b, ws, s, p, d), [x, dy], atol=1e-7)


def test_building_blocks_any_rank():
    w = np.arange(2 * 3 * 4 * 1 * 2.0).reshape(2, 3, 4, 1, 2)
    np.testing.assert_array_equal(D.rot180(w).data, w[::-1, ::-1, ::-1])
    t = np.arange(1, 4.0).reshape(1, 3, 1)
    np.testing.assert_array_equal(D.dilate(t, 2).data[0, :, 0], [1, 0, 2, 0, 3])
    assert D.batch_channel_swap(np.zeros((2, 3, 4, 5, 6)), 3).shape == (2, 3, 4, 5, 6)
    assert D.nhwc_to_hwio(np.zeros((2, 3, 4, 5, 6))).shape == (3, 4, 5, 2, 6)
    assert D.hwio_to_nhwc(np.zeros((3, 4, 5, 2, 6))).shape == (2, 3, 4, 5, 6)
    assert D.swap_in_out(np.zeros((3, 2, 6)), 2).shape == (3, 3, 4)
    with pytest.raises(
        ValueError,
        match=r"input_grad_as_conv2d: w must have rank 5 \(the rank of input_shape \(1, 4, 4, 4, 1\)\), got shape \(3, 3, 1, 1\)",
    ):
        D.input_grad_as_conv2d(np.ones((3, 3, 1, 1)), np.ones((1, 2, 2, 2, 1)), (1, 4, 4, 4, 1))

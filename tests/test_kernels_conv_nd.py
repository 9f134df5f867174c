"""Every N-d conv strategy against the reference (kernels/conv_ref.py) on the same cases, and
the reference itself against an independent loop over output pixels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinygrad_conv.kernels import conv_nd
from tinygrad_conv.kernels.conv_ref import (
    conv_backprop_filter_ref,
    conv_backprop_input_ref,
    conv_ref,
)
from tinygrad_conv.kernels.padding import conv_geometry_nd


def _cases(rank: int, count: int, seed: int):
    """Random geometries: strides with dilations, SAME (odd totals: asymmetric), explicit pads,
    groups with unequal in/out channels per group."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ks = tuple(int(v) for v in rng.integers(1, 4, rank))
        s = tuple(int(v) for v in rng.integers(1, 4, rank))
        d = tuple(int(v) for v in rng.integers(1, 3, rank))
        size = tuple(int(v) for v in rng.integers(3, 9 if rank < 3 else 7, rank))
        kind = rng.integers(0, 3)
        padding = (
            ["VALID", "SAME"][kind]
            if kind < 2
            else [[int(a), int(b)] for a, b in rng.integers(0, 3, (rank, 2))]
        )
        xshape = (int(rng.integers(1, 3)), *size, groups * cg)
        wshape = (*ks, cg, groups * og)
        try:
            geom = conv_geometry_nd("conv", rank, xshape, ks, s, padding, d)
        except ValueError:
            continue  # kernel larger than the padded input
        out.append((xshape, wshape, geom))
    return out


def _strategies(rank: int):
    return [name for name in conv_nd.STRATEGIES if not (name == "conv2d" and rank > 2)]


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_every_strategy_matches_the_reference(rank):
    rng = np.random.default_rng(rank)
    for xshape, wshape, geom in _cases(rank, 40, rank):
        x, w = rng.standard_normal(xshape), rng.standard_normal(wshape)
        y_ref = conv_ref(x, w, geom)
        dy = rng.standard_normal(y_ref.shape)
        dx_ref = conv_backprop_input_ref(xshape, w, dy, geom)
        dw_ref = conv_backprop_filter_ref(x, wshape, dy, geom)
        for name in _strategies(rank):
            # im2col also with one image per block (block_bytes=1): the batch tiling
            for bb in (None, 1) if name == "im2col" else (None,):
                kw = {"block_bytes": bb}
                np.testing.assert_allclose(conv_nd.conv(x, w, geom, name, **kw), y_ref, atol=1e-12)
                np.testing.assert_allclose(
                    conv_nd.conv_backprop_input(xshape, w, dy, geom, name, **kw),
                    dx_ref,
                    atol=1e-12,
                )
                np.testing.assert_allclose(
                    conv_nd.conv_backprop_filter(x, wshape, dy, geom, name, **kw),
                    dw_ref,
                    atol=1e-12,
                )


def _pixel_loop_conv(x, w, geom):
    """The definition with loops over output pixels too (independent of conv_ref's slicing)."""
    (lo_hi), s, d = geom.pads, geom.strides, geom.dilations
    xp = np.pad(x, [(0, 0), *lo_hi, (0, 0)])
    *ks, cg, cout = w.shape
    og = cout // (x.shape[-1] // cg)
    y = np.zeros((x.shape[0], *geom.output_hw, cout))
    for o in itertools.product(*(range(v) for v in geom.output_hw)):
        for co in range(cout):
            g = co // og
            for t in itertools.product(*(range(k) for k in ks)):
                idx = tuple(oi * si + ti * di for oi, si, ti, di in zip(o, s, t, d, strict=True))
                y[(slice(None), *o, co)] += (
                    xp[(slice(None), *idx, slice(g * cg, (g + 1) * cg))] @ w[(*t, slice(None), co)]
                )
    return y


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_reference_is_the_definition_and_its_adjoints(rank):
    rng = np.random.default_rng(10 + rank)
    for xshape, wshape, geom in _cases(rank, 6, 10 + rank):
        x, w = rng.standard_normal(xshape), rng.standard_normal(wshape)
        y = conv_ref(x, w, geom)
        np.testing.assert_allclose(y, _pixel_loop_conv(x, w, geom), atol=1e-12)
        # adjoint identities: <conv(x, w), dy> = <x, dx(dy)> = <w, dw(dy)>
        dy = rng.standard_normal(y.shape)
        lhs = float(np.sum(y * dy))
        assert np.isclose(lhs, np.sum(x * conv_backprop_input_ref(xshape, w, dy, geom)))
        assert np.isclose(lhs, np.sum(w * conv_backprop_filter_ref(x, wshape, dy, geom)))


def test_planner_picks_the_tuned_2d_kernels_up_to_rank_2():
    g1 = conv_geometry_nd("conv", 1, (1, 9, 2), (3,), 1, "SAME")
    g2 = conv_geometry_nd("conv", 2, (1, 9, 9, 2), (3, 3), 1, "SAME")
    g3 = conv_geometry_nd("conv", 3, (1, 5, 5, 5, 2), (3, 3, 3), 1, "SAME")
    assert [conv_nd.plan(g) for g in (g1, g2, g3)] == ["conv2d", "conv2d", "im2col"]


def test_batch_tiling_is_exercised():
    cases = _cases(3, 40, 3)
    assert sum(xs[0] > 1 for xs, _, _ in cases) >= 10  # several images: several blocks
    geom = conv_geometry_nd("conv3d", 3, (1, 5, 5, 5, 2), (3, 3, 3), 1, "SAME")
    with pytest.raises(ValueError, match=r"conv3d: block_bytes must be a positive int, got 0"):
        conv_nd.conv(
            np.zeros((1, 5, 5, 5, 2)), np.zeros((3, 3, 3, 2, 4)), geom, op="conv3d", block_bytes=0
        )


def test_float32_follows_the_inputs():
    geom = conv_geometry_nd("conv", 3, (2, 4, 5, 6, 3), (2, 2, 2), 1, "SAME")
    x = np.ones((2, 4, 5, 6, 3), np.float32)
    w = np.ones((2, 2, 2, 3, 4), np.float32)
    assert conv_nd.conv(x, w, geom).dtype == np.float32


def test_bad_input_names_the_op_and_shapes():
    geom = conv_geometry_nd("conv3d", 3, (1, 5, 5, 5, 2), (3, 3, 3), 1, "SAME")
    with pytest.raises(
        ValueError, match=r"conv3d: input must be 5-D for 3 spatial axes, got shape \(1, 5, 5, 2\)"
    ):
        conv_nd.conv(np.zeros((1, 5, 5, 2)), np.zeros((3, 3, 3, 2, 4)), geom, op="conv3d")
    with pytest.raises(
        ValueError,
        match=r"conv3d: filter has shape \(3, 3, 2, 2, 4\) but the geometry expects a 3x3x3 kernel",
    ):
        conv_nd.conv(np.zeros((1, 5, 5, 5, 2)), np.zeros((3, 3, 2, 2, 4)), geom, op="conv3d")
    with pytest.raises(
        ValueError, match=r"conv3d: strategy 'conv2d' serves 1-D and 2-D problems, got rank 3"
    ):
        conv_nd.conv(
            np.zeros((1, 5, 5, 5, 2)), np.zeros((3, 3, 3, 2, 4)), geom, "conv2d", op="conv3d"
        )
    with pytest.raises(ValueError, match=r"conv3d: strategy must be one of"):
        conv_nd.conv(
            np.zeros((1, 5, 5, 5, 2)), np.zeros((3, 3, 3, 2, 4)), geom, "fast", op="conv3d"
        )
    with pytest.raises(ValueError, match=r"conv3d: dy has shape \(1, 4, 5, 5, 4\)"):
        conv_nd.conv_backprop_input(
            (1, 5, 5, 5, 2), np.zeros((3, 3, 3, 2, 4)), np.zeros((1, 4, 5, 5, 4)), geom, op="conv3d"
        )


def test_geometry_nd_errors():
    with pytest.raises(
        ValueError,
        match=r"conv3d: strides must be an int or a list of 1, 3 or 5 ints for 3 spatial axes, got \[1, 2\]",
    ):
        conv_geometry_nd("conv3d", 3, (1, 5, 5, 5, 2), (3, 3, 3), [1, 2], "SAME")
    with pytest.raises(
        ValueError, match=r"conv1d: data_format must be one of \('NWC', 'NCW'\), got 'NHWC'"
    ):
        conv_geometry_nd("conv1d", 1, (1, 5, 2), (3,), 1, "SAME", 1, "NHWC")
    with pytest.raises(
        ValueError,
        match=r"conv3d: dilations in 5-element form must be 1 in the batch and channel positions \(NDHWC order\)",
    ):
        conv_geometry_nd("conv3d", 3, (1, 5, 5, 5, 2), (3, 3, 3), 1, "SAME", [2, 1, 1, 1, 1])
    g = conv_geometry_nd(
        "conv3d",
        3,
        (1, 2, 5, 6, 7),
        (3, 3, 3),
        [1, 1, 2, 1, 1],
        [[0, 0], [0, 0], [1, 2], [0, 1], [2, 2]],
        1,
        "NCDHW",
    )
    assert g.input_hw == (5, 6, 7) and g.strides == (2, 1, 1) and g.pads == ((1, 2), (0, 1), (2, 2))
    assert g.output_hw == (3, 5, 9)

"""Tests for tinygrad_conv.kernels.padding: TF's conv/pool padding arithmetic and its validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_conv.kernels.padding import (
    ConvGeometry,
    axis_taps,
    check_out_backprop,
    conv_geometry,
    groups_of,
    pool_geometry,
    tap_slices,
)


def _same_1d(i: int, k: int, s: int, d: int = 1) -> tuple[int, tuple[int, int]]:
    """TF's SAME rule, straight from the documentation, for one axis."""
    e = d * (k - 1) + 1
    o = -(-i // s)
    total = max((o - 1) * s + e - i, 0)
    return o, (total // 2, total - total // 2)


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    "i,k,s,expected_o,expected_pads",
    [
        (5, 3, 1, 5, (1, 1)),
        (5, 3, 2, 3, (1, 1)),
        (6, 3, 2, 3, (0, 1)),  # odd total: the extra row goes to the bottom
        (4, 1, 2, 2, (0, 0)),
        (7, 4, 3, 3, (1, 2)),
        (2, 5, 1, 2, (2, 2)),  # kernel larger than input is fine with SAME
        (1, 3, 3, 1, (1, 1)),
    ],
)
def test_same_padding_table(i, k, s, expected_o, expected_pads):
    g = conv_geometry("conv2d", (1, i, i, 1), (k, k, 1, 1), s, "SAME", 1)
    assert g.output_hw == (expected_o, expected_o)
    assert g.pads == (expected_pads, expected_pads)


def test_valid_and_dilation():
    g = conv_geometry("conv2d", (2, 10, 9, 3), (3, 2, 3, 4), (2, 3), "VALID", (2, 3))
    assert g.effective_kernel_hw == (5, 4)
    assert g.output_hw == ((10 - 5) // 2 + 1, (9 - 4) // 3 + 1)
    assert g.pads == ((0, 0), (0, 0))
    assert g.leftover == ((10 - 5) % 2, (9 - 4) % 3)
    assert g.input_hw == (10, 9) and g.kernel_hw == (3, 2)
    assert g.strides == (2, 3) and g.dilations == (2, 3)


@settings(max_examples=200, deadline=None)
@given(
    i=st.integers(1, 30),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    lo=st.integers(0, 4),
    hi=st.integers(0, 4),
)
def test_output_size_and_leftover_formulas(i, k, s, d, lo, hi):
    e = d * (k - 1) + 1
    if i + lo + hi < e:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv_geometry("conv2d", (1, i, 3, 1), (k, 1, 1, 1), (s, 1), [[lo, hi], [0, 0]], (d, 1))
        return
    g = conv_geometry("conv2d", (1, i, 3, 1), (k, 1, 1, 1), (s, 1), [[lo, hi], [0, 0]], (d, 1))
    assert g.output_hw[0] == (i + lo + hi - e) // s + 1
    assert g.leftover[0] == (i + lo + hi - e) % s
    # every one of the o windows fits; one more would not
    o = g.output_hw[0]
    assert (o - 1) * s + e <= i + lo + hi < o * s + e
    o_same, pads_same = _same_1d(i, k, s, d)
    gs = conv_geometry("conv2d", (1, i, 3, 1), (k, 1, 1, 1), (s, 1), "same", (d, 1))
    assert gs.output_hw[0] == o_same and gs.pads[0] == pads_same


def test_argument_forms_are_equivalent():
    base = conv_geometry("conv2d", (2, 9, 8, 4), (3, 3, 4, 2), (2, 1), [[1, 2], [0, 1]], (1, 2))
    nchw = conv_geometry(
        "conv2d",
        (2, 4, 9, 8),
        (3, 3, 4, 2),
        [1, 1, 2, 1],
        [[0, 0], [0, 0], [1, 2], [0, 1]],
        [1, 1, 1, 2],
        data_format="NCHW",
    )
    nhwc4 = conv_geometry(
        "conv2d",
        (2, 9, 8, 4),
        (3, 3, 4, 2),
        [1, 2, 1, 1],
        [[0, 0], [1, 2], [0, 1], [0, 0]],
        [1, 1, 2, 1],
    )
    assert base == nchw == nhwc4
    assert conv_geometry("c", (1, 5, 5, 1), (3, 3, 1, 1), 2, "SAME") == conv_geometry(
        "c", (1, 5, 5, 1), (3, 3, 1, 1), [2], "Same", [1]
    )
    assert conv_geometry("c", (1, 5, 5, 1), (3, 3, 1, 1), np.int64(2), "VALID", np.array([1, 1]))


def test_geometry_object():
    g = conv_geometry("conv2d", (1, 6, 7, 2), (3, 3, 2, 2), 2, "SAME")
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.strides = (1, 1)  # type: ignore[misc]
    assert hash(g) == hash(conv_geometry("conv2d", (1, 6, 7, 2), (3, 3, 2, 2), 2, "SAME"))
    text = str(g)
    assert "6x7" in text and "3x3" in text and "strides" in text and "pads" in text
    assert not hasattr(g, "__dict__")  # slots


def test_groups_of():
    assert groups_of((2, 5, 5, 6), (3, 3, 2, 9)) == 3
    assert groups_of((2, 5, 5, 6), (3, 3, 6, 9)) == 1
    g = conv_geometry("conv2d", (2, 5, 5, 6), (3, 3, 2, 9), 1, "SAME")
    assert g.output_hw == (5, 5)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(input_shape=(1, 5, 5)), ValueError, r"conv2d: input shape .*rank 4"),
        (dict(filter_shape=(3, 3, 1)), ValueError, r"conv2d: filter shape .*rank 4"),
        (
            dict(input_shape=(1, 5, 5, 3), filter_shape=(3, 3, 2, 4)),
            ValueError,
            r"conv2d: input channels 3 .*multiple of the filter's in-channels 2",
        ),
        (
            dict(input_shape=(1, 5, 5, 4), filter_shape=(3, 3, 2, 3)),
            ValueError,
            r"conv2d: filter out-channels 3 .*divisible by groups",
        ),
        (dict(strides=0), ValueError, r"conv2d: strides must be >= 1"),
        (dict(strides=(1, -2)), ValueError, r"conv2d: strides must be >= 1"),
        (dict(strides=(1, 2, 3)), ValueError, r"conv2d: strides .*1, 2 or 4"),
        (dict(strides=(2, 2, 2, 1)), ValueError, r"conv2d: strides .*batch and channel"),
        (dict(dilations=0), ValueError, r"conv2d: dilations must be >= 1"),
        (dict(dilations=(1, 1, 1, 1, 1)), ValueError, r"conv2d: dilations .*1, 2 or 4"),
        (dict(padding="FULL"), ValueError, r"conv2d: padding must be 'VALID', 'SAME'"),
        (dict(padding=[[1, -1], [0, 0]]), ValueError, r"conv2d: padding must be non-negative"),
        (
            dict(padding=[[0, 0], [1, 1], [1, 1], [1, 0]]),
            ValueError,
            r"conv2d: padding in 4-pair form .*batch and channel",
        ),
        (dict(padding=[[1, 1], [1, 1], [1, 1]]), ValueError, r"conv2d: padding must be"),
        (dict(padding=[[1, 1, 1], [1, 1]]), ValueError, r"conv2d: padding entries"),
        (dict(data_format="NWHC"), ValueError, r"conv2d: data_format must be one of"),
        (
            dict(filter_shape=(7, 3, 1, 1)),
            ValueError,
            r"conv2d: filter .*height 7 is larger than the padded input height 5",
        ),
        (
            dict(filter_shape=(3, 3, 1, 1), dilations=3),
            ValueError,
            r"conv2d: filter .*dilations \(3, 3\).*larger than the padded input",
        ),
        (dict(input_shape=(1, 0, 5, 1)), ValueError, r"conv2d: input shape .*positive"),
        (dict(filter_shape=(0, 3, 1, 1)), ValueError, r"conv2d: filter shape .*positive"),
        (dict(strides=1.0), TypeError, r"conv2d: strides must be an int"),
        (dict(strides=(1, 2.0)), TypeError, r"conv2d: strides must be an int"),
        (dict(strides=True), TypeError, r"conv2d: strides must be an int"),
        (dict(dilations="1"), TypeError, r"conv2d: dilations must be an int"),
        (dict(padding=[[1.0, 1], [0, 0]]), TypeError, r"conv2d: padding must contain ints"),
        (dict(input_shape=(1, 5.0, 5, 1)), TypeError, r"conv2d: input shape must contain ints"),
        (dict(padding=3), ValueError, r"conv2d: padding must be"),
    ],
)
def test_conv_geometry_errors(kwargs, exc, match):
    args = dict(
        input_shape=(1, 5, 5, 1),
        filter_shape=(3, 3, 1, 1),
        strides=1,
        padding="VALID",
        dilations=1,
    )
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        conv_geometry("conv2d", **args)


def test_nchw_4form_checks_use_nchw_positions():
    # [1, 2, 1, 1] is a stride of 2 on the channel axis in NCHW order: refused
    with pytest.raises(ValueError, match="strides in 4-element form .*NCHW"):
        conv_geometry(
            "conv2d", (1, 1, 5, 5), (3, 3, 1, 1), [1, 2, 1, 1], "VALID", data_format="NCHW"
        )
    with pytest.raises(ValueError, match="padding in 4-pair form .*NCHW"):
        conv_geometry(
            "conv2d",
            (1, 1, 5, 5),
            (3, 3, 1, 1),
            1,
            [[0, 0], [1, 1], [0, 0], [0, 0]],
            data_format="NCHW",
        )


def test_pool_geometry():
    g = pool_geometry("max_pool2d", (2, 7, 6, 3), 3, 2, "SAME")
    assert g.kernel_hw == (3, 3) and g.dilations == (1, 1)
    assert g.output_hw == (4, 3)
    assert g.pads == ((1, 1), (0, 1))
    g4 = pool_geometry("max_pool2d", (2, 3, 7, 6), [1, 1, 3, 3], [1, 1, 2, 2], "SAME", "NCHW")
    assert g4 == g
    g2 = pool_geometry("avg_pool2d", (1, 5, 5, 1), (2, 3), (1, 2), "VALID")
    assert g2.output_hw == (4, 2) and g2.kernel_hw == (2, 3)
    assert pool_geometry("p", (1, 5, 5, 1), 3, 1, [[2, 0], [1, 2]]).output_hw == (5, 6)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(ksize=0), ValueError, r"max_pool2d: ksize must be >= 1"),
        (dict(ksize=(2, 2, 2)), ValueError, r"max_pool2d: ksize .*1, 2 or 4"),
        (dict(ksize=[2, 2, 2, 2]), ValueError, r"max_pool2d: ksize .*batch and channel"),
        (dict(strides=[1, 1, 1, 2]), ValueError, r"max_pool2d: strides .*batch and channel"),
        (dict(ksize=6), ValueError, r"max_pool2d: ksize .*larger than the padded input"),
        (dict(padding=[[2, 0], [0, 0]]), ValueError, r"max_pool2d: padding .*smaller than ksize"),
        (dict(padding="full"), ValueError, r"max_pool2d: padding must be"),
        (dict(input_shape=(5, 5, 1)), ValueError, r"max_pool2d: input shape .*rank 4"),
        (dict(data_format="HWCN"), ValueError, r"max_pool2d: data_format"),
        (dict(ksize=2.5), TypeError, r"max_pool2d: ksize must be an int"),
    ],
)
def test_pool_geometry_errors(kwargs, exc, match):
    args = dict(input_shape=(1, 5, 5, 1), ksize=2, strides=2, padding="VALID")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        pool_geometry("max_pool2d", **args)


def test_check_out_backprop():
    g = conv_geometry("conv2d_backprop_input", (2, 7, 7, 3), (3, 3, 3, 5), 2, "VALID")
    assert g.output_hw == (3, 3)
    check_out_backprop("conv2d_backprop_input", g, (2, 3, 3, 5), 2, 5)
    check_out_backprop("conv2d_backprop_input", g, (2, 5, 3, 3), 2, 5, data_format="NCHW")
    for bad in [(2, 4, 3, 5), (1, 3, 3, 5), (2, 3, 3, 4)]:
        with pytest.raises(ValueError, match=r"conv2d_backprop_input: out_backprop has shape"):
            check_out_backprop("conv2d_backprop_input", g, bad, 2, 5)
    with pytest.raises(ValueError, match=r"conv2d_transpose: out_backprop shape .*rank 4"):
        check_out_backprop("conv2d_transpose", g, (2, 3, 3), 2, 5)


# ----------------------------------------------------------------------------- tap clipping


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 12),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    lo=st.integers(0, 4),
    hi=st.integers(0, 4),
    data=st.data(),
)
def test_axis_taps_match_brute_force(size, k, s, d, lo, hi, data):
    e = d * (k - 1) + 1
    if size + lo + hi < e:
        return
    o = (size + lo + hi - e) // s + 1
    o_lo = data.draw(st.integers(0, o - 1))
    o_hi = data.draw(st.integers(o_lo + 1, o))
    taps = axis_taps(size, k, s, d, lo, o_lo, o_hi)
    assert len(taps) == k
    for t, tap in enumerate(taps):
        pairs = [
            (oo - o_lo, oo * s + t * d - lo)
            for oo in range(o_lo, o_hi)
            if 0 <= oo * s + t * d - lo < size
        ]
        if not pairs:
            assert tap is None
            continue
        out_sl, in_sl = tap
        outs = list(range(o_hi - o_lo))[out_sl]
        ins = list(range(size))[in_sl]
        assert list(zip(outs, ins, strict=True)) == pairs


def test_tap_slices_2d():
    g = ConvGeometry((4, 5), (2, 3), (2, 1), (1, 2), ((1, 0), (2, 1)), (2, 3))
    # tap (0, 0) reads row oh*2 - 1 and column ow - 2
    (oh, ow), (ih, iw) = tap_slices(g, 0, 0)
    assert (oh, ow) == (slice(1, 2), slice(2, 3)) and (ih, iw) == (slice(1, 2, 2), slice(0, 1, 1))
    assert (
        tap_slices(ConvGeometry((1, 1), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1)), 0, 1)
        is None
    )

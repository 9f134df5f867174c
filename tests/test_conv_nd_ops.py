"""The 1-D / 3-D / depthwise conv ops and the 1-D / 3-D pools as graph nodes: gradcheck and
gradgradcheck on every op (float64), closure of the family (what each backward calls), the
declared vector-Jacobian rules, and the errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv.ops import conv as conv_ops


def _t(rng, shape, grad=True):
    return tc.Tensor(rng.standard_normal(shape), requires_grad=grad)


# op name -> (builder of (fn, inputs)) ; small shapes: finite differences run twice per element
def _cases():
    rng = np.random.default_rng(0)
    sz1 = np.array([2, 7, 4])
    sz3 = np.array([1, 4, 3, 5, 2])
    return {
        "conv1d": (
            lambda x, w: tc.conv1d(x, w, 2, "SAME", dilations=2),
            [_t(rng, (2, 7, 4)), _t(rng, (3, 2, 4))],
        ),
        "conv1d_ncw_explicit": (
            lambda x, w: tc.conv1d(x, w, 1, [[2, 1]], "NCW"),
            [_t(rng, (2, 4, 6)), _t(rng, (2, 4, 3))],
        ),
        "conv1d_backprop_input": (
            lambda w, dy: tc.conv1d_backprop_input(sz1, w, dy, 2, "SAME", dilations=2),
            [_t(rng, (3, 2, 4)), _t(rng, (2, 4, 4))],
        ),
        "conv1d_backprop_filter": (
            lambda x, dy: tc.conv1d_backprop_filter(
                x, np.array([3, 2, 4]), dy, 2, "SAME", dilations=2
            ),
            [_t(rng, (2, 7, 4)), _t(rng, (2, 4, 4))],
        ),
        "conv1d_transpose": (
            lambda y, w: tc.conv1d_transpose(y, w, sz1, 2, "VALID"),
            [_t(rng, (2, 3, 3)), _t(rng, (3, 4, 3))],
        ),
        "conv3d": (
            lambda x, w: tc.conv3d(x, w, [1, 2, 1], "SAME", dilations=[2, 1, 1]),
            [_t(rng, (1, 4, 3, 5, 2)), _t(rng, (2, 2, 2, 1, 4))],
        ),
        "conv3d_backprop_input_v2": (
            lambda w, dy: tc.conv3d_backprop_input_v2(
                sz3, w, dy, [1, 2, 1], "SAME", dilations=[2, 1, 1]
            ),
            [_t(rng, (2, 2, 2, 1, 4)), _t(rng, (1, 4, 2, 5, 4))],
        ),
        "conv3d_backprop_filter_v2": (
            lambda x, dy: tc.conv3d_backprop_filter_v2(
                x, np.array([2, 2, 2, 1, 4]), dy, [1, 2, 1], "SAME", dilations=[2, 1, 1]
            ),
            [_t(rng, (1, 4, 3, 5, 2)), _t(rng, (1, 4, 2, 5, 4))],
        ),
        "conv3d_transpose": (
            lambda y, w: tc.conv3d_transpose(y, w, sz3, 2, "SAME", "NDHWC"),
            [_t(rng, (1, 2, 2, 3, 3)), _t(rng, (2, 2, 2, 2, 3))],
        ),
        "depthwise_conv2d": (
            lambda x, w: tc.depthwise_conv2d(x, w, [2, 1], "SAME", dilations=[1, 2]),
            [_t(rng, (1, 5, 5, 2)), _t(rng, (2, 2, 2, 2))],
        ),
        "depthwise_conv2d_backprop_input": (
            lambda w, dy: tc.depthwise_conv2d_backprop_input(
                np.array([1, 5, 5, 2]), w, dy, [2, 1], "SAME", dilations=[1, 2]
            ),
            [_t(rng, (2, 2, 2, 2)), _t(rng, (1, 3, 5, 4))],
        ),
        "depthwise_conv2d_backprop_filter": (
            lambda x, dy: tc.depthwise_conv2d_backprop_filter(
                x, np.array([2, 2, 2, 2]), dy, [2, 1], "SAME", dilations=[1, 2]
            ),
            [_t(rng, (1, 5, 5, 2)), _t(rng, (1, 3, 5, 4))],
        ),
        "separable_conv2d": (
            lambda x, d, p: tc.separable_conv2d(x, d, p, 1, "VALID"),
            [_t(rng, (1, 4, 4, 2)), _t(rng, (2, 2, 2, 2)), _t(rng, (1, 1, 4, 3))],
        ),
        "max_pool1d": (
            lambda x: tc.max_pool1d(x, 3, 2, "SAME"),
            [tc.Tensor(rng.permutation(14).reshape(1, 7, 2) * 0.37, requires_grad=True)],
        ),
        "avg_pool1d": (
            lambda x: tc.avg_pool1d(x, 3, 2, "SAME", "NCW"),
            [_t(rng, (2, 2, 7))],
        ),
        "max_pool3d": (
            lambda x: tc.max_pool3d(x, 2, [2, 1, 2], "SAME"),
            [tc.Tensor(rng.permutation(60).reshape(1, 3, 4, 5, 1) * 0.41, requires_grad=True)],
        ),
        "avg_pool3d": (
            lambda x: tc.avg_pool3d(x, [2, 3, 2], 2, "SAME"),
            [_t(rng, (1, 3, 4, 5, 2))],
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    fn, inputs = CASES[name]
    assert tc.gradcheck(fn, inputs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_gradgradcheck(name):
    fn, inputs = CASES[name]
    assert tc.gradgradcheck(fn, inputs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(
    ("rank", "names"),
    [
        (1, ("conv1d", "conv1d_backprop_input", "conv1d_backprop_filter")),
        (3, ("conv3d", "conv3d_backprop_input_v2", "conv3d_backprop_filter_v2")),
    ],
)
def test_each_backward_calls_members_of_its_own_family(rank, names):
    """The closure table of DESIGN.md per rank, read from what backward really called, and the
    declared vjp rules naming exactly those calls."""
    fam = conv_ops._FAMILIES[rank]
    conv, bp_in, bp_f = names
    assert (fam.conv.op_name, fam.backprop_input.op_name, fam.backprop_filter.op_name) == names
    assert fam.conv.vjp == {"x": f"{bp_in}(w, g)", "w": f"{bp_f}(x, g)"}
    assert fam.backprop_input.vjp == {"w": f"{bp_f}(g, dy)", "dy": f"{conv}(g, w)"}
    assert fam.backprop_filter.vjp == {"x": f"{bp_in}(g, dy)", "dy": f"{conv}(x, g)"}
    rng = np.random.default_rng(rank)
    xs, ws = ((2, 6, 3), (3, 3, 2)) if rank == 1 else ((1, 3, 4, 5, 3), (2, 2, 2, 3, 2))
    x, w = _t(rng, xs), _t(rng, ws)
    y = (tc.conv1d if rank == 1 else tc.conv3d)(x, w, 1, "SAME")
    node = y._ctx
    assert type(node) is fam.conv
    dy = _t(rng, y.shape)
    gx, gw = tc.grad(y, [x, w], grad_outputs=dy, create_graph=True)
    assert type(gx._ctx) is fam.backprop_input and type(gw._ctx) is fam.backprop_filter
    vx, vw = rng.standard_normal(xs), rng.standard_normal(ws)
    gi_w, gi_dy = tc.grad((gx * vx).sum(), [w, dy], create_graph=True)
    assert type(gi_w._ctx) is fam.backprop_filter and type(gi_dy._ctx) is fam.conv
    gf_x, gf_dy = tc.grad((gw * vw).sum(), [x, dy], create_graph=True)
    assert type(gf_x._ctx) is fam.backprop_input and type(gf_dy._ctx) is fam.conv


def test_pool_and_conv2d_nodes_declare_their_rules():
    from tinygrad_conv.ops import pool as pool_ops

    assert pool_ops.MaxPool2D.saved_names == ("argmax",)
    assert pool_ops.MaxPool2D.vjp == {"x": "max_pool2d_backprop(g, argmax)"}
    assert pool_ops.MaxPool2DBackprop.vjp == {"dy": "max_pool2d_gather(g, argmax)"}
    assert pool_ops.MaxPool2DGather.vjp == {"gx": "max_pool2d_backprop(g, argmax)"}
    assert pool_ops.AvgPool2D.vjp == {"x": "avg_pool2d_backprop(g)"}
    assert pool_ops.AvgPool2DBackprop.vjp == {"dy": "avg_pool2d(g)"}
    assert conv_ops.Conv2D.vjp == {
        "x": "conv2d_backprop_input(w, g)",
        "w": "conv2d_backprop_filter(x, g)",
    }
    # argmax is saved (not an attribute) and reaches the backprop node as a constant input
    x = tc.Tensor(np.arange(16.0).reshape(1, 4, 4, 1), requires_grad=True)
    y = tc.max_pool2d(x, 2)
    assert "argmax" not in y._ctx.attrs and y._ctx.saved_tensors[0].shape == (1, 2, 2, 1)
    up = tc.Tensor(np.ones(y.shape), requires_grad=True)
    (g,) = tc.grad(y, [x], grad_outputs=up, create_graph=True)
    assert g._ctx.name == "max_pool2d_backprop" and not g._ctx.inputs[1].requires_grad
    np.testing.assert_array_equal(g.data[0, :, :, 0], [[0, 0, 0, 0], [0, 1, 0, 1]] * 2)
    gx_up = tc.Tensor(np.ones(x.shape), requires_grad=True)
    (gg,) = tc.grad(g, [up], grad_outputs=gx_up, create_graph=True)
    assert gg._ctx.name == "max_pool2d_gather"
    np.testing.assert_array_equal(gg.data, np.ones(y.shape))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: tc.conv3d(np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 2, 3)), 1, "SAME"),
            r"conv3d: input must have rank 5 \(NDHWC\), got shape \(1, 4, 4, 2\) \(rank 4\)",
        ),
        (
            lambda: tc.conv3d(np.zeros((1, 4, 4, 4, 2)), np.zeros((2, 2, 2, 3)), 1, "SAME"),
            r"conv3d: filters must have rank 5 \(DHWIO\), got shape \(2, 2, 2, 3\) \(rank 4\)",
        ),
        (
            lambda: tc.conv1d(np.zeros((1, 4, 2)), np.zeros((2, 2, 3)), 1, "SAME", "NHWC"),
            r"conv1d: data_format must be one of \('NWC', 'NCW'\), got 'NHWC'",
        ),
        (
            lambda: tc.conv3d(np.zeros((1, 4, 4, 4, 2)), np.zeros((2, 2, 2, 2, 3)), [1, 2], "SAME"),
            r"conv3d: strides must be an int or a list of 1, 3 or 5 ints for 3 spatial axes, got \[1, 2\] \(length 2\)",
        ),
        (
            lambda: tc.conv1d(
                np.zeros((1, 4, 2)), np.zeros((2, 2, 3)), 1, "SAME", dilations=[1, 1]
            ),
            r"conv1d: dilations must be an int or a list of 1, 1 or 3 ints for 1 spatial axes, got \[1, 1\] \(length 2\)",
        ),
        (
            lambda: tc.conv1d(np.zeros((1, 4, 3)), np.zeros((2, 2, 3)), 1, "SAME"),
            r"conv1d: input channels 3 \(input shape \(1, 4, 3\), channels last\) must be a multiple of the filter's in-channels 2 \(filter shape \(2, 2, 3\)\)",
        ),
        (
            lambda: tc.conv3d_backprop_input_v2(
                np.array([1, 4, 4, 4, 2]),
                np.zeros((2, 2, 2, 2, 3)),
                np.zeros((1, 4, 4, 3, 3)),
                1,
                "SAME",
            ),
            r"conv3d_backprop_input_v2: out_backprop has shape \(1, 4, 4, 3, 3\) \(channels last\) but the geometry",
        ),
        (
            lambda: tc.conv3d_backprop_filter_v2(
                np.zeros((1, 4, 4, 4, 2)),
                np.array([2, 2, 2, 3]),
                np.zeros((1, 4, 4, 4, 3)),
                1,
                "SAME",
            ),
            r"conv3d_backprop_filter_v2: filter_sizes must be 5 integers, got array\(\[2, 2, 2, 3\]\)",
        ),
        (
            lambda: tc.conv1d(np.zeros((1, 4, 2), np.int64), np.zeros((2, 2, 3)), 1, "SAME"),
            r"conv1d: input must be a float tensor, got dtype int64",
        ),
        (
            lambda: tc.conv3d(np.zeros((1, 2, 4, 4, 2)), np.zeros((3, 2, 2, 2, 3)), 1, "VALID"),
            r"conv3d: effective kernel 3 \(kernel \(3, 2, 2\), dilations \(1, 1, 1\)\) is larger than the padded input 2 along spatial axis 0",
        ),
        (
            lambda: tc.max_pool3d(np.zeros((1, 4, 4, 2)), 2),
            r"max_pool3d: input must have rank 5 \(NDHWC\), got shape \(1, 4, 4, 2\) \(rank 4\)",
        ),
        (
            lambda: tc.avg_pool1d(np.zeros((1, 4, 2)), 2, 1, [[2, 0]]),
            r"avg_pool1d: padding \[\[2, 0\]\] must be smaller than ksize \(2,\) along spatial axis 0",
        ),
        (
            lambda: tc.max_pool1d(np.zeros((1, 4, 2)), 2, data_format="NDHWC"),
            r"max_pool1d: data_format must be one of \('NWC', 'NCW'\), got 'NDHWC'",
        ),
    ],
)
def test_bad_input_errors_name_the_op_and_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()

"""nn.Conv1d/Conv3d/ConvTranspose1d/3d, MaxPool1d/3d, AvgPool1d/3d and DepthwiseConv2d against
torch.nn's layers on the same weights (float64): outputs and the gradients of input, weight and
bias. Layouts differ (ours channels-last with [*kernel, in, out] weights; torch channels-first
with [out, in, *kernel]), so the test converts the arrays, never the maths."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import nn

torch = pytest.importorskip("torch")


def _first(a, rank):  # channels-last -> channels-first
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def _last(a):
    return np.moveaxis(a, 1, -1)


def _check(ours_layer, torch_layer, x, rank, params):
    """params: list of (our Parameter, torch Parameter, our->torch weight converter)."""
    xt = tc.Tensor(x, requires_grad=True)
    y = ours_layer(xt)
    rng = np.random.default_rng(1)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    tx = torch.tensor(_first(x, rank), requires_grad=True)
    ty = torch_layer(tx)
    ty.backward(torch.tensor(_first(g, rank)))
    np.testing.assert_allclose(y.data, _last(ty.detach().numpy()), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad.data, _last(tx.grad.numpy()), rtol=1e-10, atol=1e-12)
    for ours, theirs, conv in params:
        np.testing.assert_allclose(
            conv(ours.grad.data), theirs.grad.numpy(), rtol=1e-10, atol=1e-12
        )


def _conv_weight(rank):  # ours [*k, in, out] -> torch [out, in, *k]
    return lambda w: np.transpose(w, (rank + 1, rank, *range(rank)))


def _deconv_weight(rank):  # ours [*k, out, in] -> torch [in, out, *k]
    return lambda w: np.transpose(w, (rank + 1, rank, *range(rank)))


@pytest.mark.parametrize(
    ("rank", "kw"),
    [
        (1, dict(kernel_size=3, strides=2, padding=1, dilations=2, groups=1)),
        (1, dict(kernel_size=4, strides=1, padding="valid", dilations=1, groups=2)),
        (
            3,
            dict(
                kernel_size=(2, 3, 2), strides=(1, 2, 1), padding=(1, 0, 1), dilations=1, groups=1
            ),
        ),
        (3, dict(kernel_size=2, strides=1, padding="valid", dilations=(1, 2, 1), groups=2)),
    ],
)
def test_conv_layers_match_torch(rank, kw):
    rng = np.random.default_rng(rank)
    cin, cout = 4, 6
    ours = (nn.Conv1d if rank == 1 else nn.Conv3d)(cin, cout, dtype=np.float64, seed=0, **kw)
    tpad = kw["padding"] if not isinstance(kw["padding"], str) else 0
    tl = (torch.nn.Conv1d if rank == 1 else torch.nn.Conv3d)(
        cin, cout, kw["kernel_size"], kw["strides"], tpad, kw["dilations"], kw["groups"]
    ).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(_conv_weight(rank)(ours.weight.data)))
        tl.bias.copy_(torch.tensor(ours.bias.data))
    size = (9,) if rank == 1 else (5, 6, 5)
    x = rng.standard_normal((2, *size, cin))
    _check(
        ours,
        tl,
        x,
        rank,
        [(ours.weight, tl.weight, _conv_weight(rank)), (ours.bias, tl.bias, lambda b: b)],
    )


@pytest.mark.parametrize(
    ("rank", "kw"),
    [
        (1, dict(kernel_size=3, strides=2, output_padding=None, dilations=1)),
        (1, dict(kernel_size=2, strides=3, output_padding=2, dilations=2)),
        (3, dict(kernel_size=(2, 3, 2), strides=(2, 1, 2), output_padding=None, dilations=1)),
        (3, dict(kernel_size=2, strides=2, output_padding=(1, 0, 1), dilations=(1, 2, 1))),
    ],
)
def test_conv_transpose_layers_match_torch(rank, kw):
    rng = np.random.default_rng(10 + rank)
    cin, cout = 3, 5
    layer = nn.ConvTranspose1d if rank == 1 else nn.ConvTranspose3d
    ours = layer(cin, cout, padding="valid", dtype=np.float64, seed=0, **kw)
    op = kw["output_padding"] or 0
    tl = (torch.nn.ConvTranspose1d if rank == 1 else torch.nn.ConvTranspose3d)(
        cin, cout, kw["kernel_size"], kw["strides"], 0, op, dilation=kw["dilations"]
    ).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(_deconv_weight(rank)(ours.weight.data)))
        tl.bias.copy_(torch.tensor(ours.bias.data))
    size = (6,) if rank == 1 else (3, 4, 3)
    x = rng.standard_normal((2, *size, cin))
    _check(
        ours,
        tl,
        x,
        rank,
        [(ours.weight, tl.weight, _deconv_weight(rank)), (ours.bias, tl.bias, lambda b: b)],
    )


@pytest.mark.parametrize(
    ("layer", "rank", "k", "s", "p"),
    [
        ("Max", 1, 3, 2, 1),
        ("Avg", 1, 3, 2, 1),
        ("Max", 3, (2, 3, 2), (2, 1, 2), (1, 1, 0)),
        ("Avg", 3, 2, (1, 2, 2), 1),
        ("Avg", 3, 3, 2, 0),
    ],
)
def test_pool_layers_match_torch(layer, rank, k, s, p):
    rng = np.random.default_rng(20)
    size = (11,) if rank == 1 else (5, 6, 7)
    shape = (2, *size, 3)
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.37  # no ties
    ours = getattr(nn, f"{layer}Pool{rank}d")(k, s, p)
    tcls = getattr(torch.nn, f"{layer}Pool{rank}d")
    tl = tcls(k, s, p) if layer == "Max" else tcls(k, s, p, count_include_pad=False)
    _check(ours, tl, x, rank, [])


@pytest.mark.parametrize(
    ("mult", "s", "p", "d"), [(1, 1, 1, 1), (2, 2, (1, 0), (1, 2)), (3, (2, 1), 0, 1)]
)
def test_depthwise_layer_matches_torch_grouped_conv(mult, s, p, d):
    rng = np.random.default_rng(30)
    cin = 3
    ours = nn.DepthwiseConv2d(cin, 3, mult, s, p, d, dtype=np.float64, seed=0)
    tl = torch.nn.Conv2d(cin, cin * mult, 3, s, p, d, groups=cin).double()
    to_torch = lambda w: np.transpose(w.reshape(3, 3, 1, cin * mult), (3, 2, 0, 1))  # noqa: E731
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(to_torch(ours.weight.data)))
        tl.bias.copy_(torch.tensor(ours.bias.data))
    x = rng.standard_normal((2, 8, 7, cin))
    _check(ours, tl, x, 2, [(ours.weight, tl.weight, to_torch), (ours.bias, tl.bias, lambda b: b)])


def test_initialisation_bounds_match_torch_fan_in():
    c1 = nn.Conv1d(4, 6, 3, groups=2, seed=0)
    assert np.abs(c1.weight.data).max() <= 1 / np.sqrt(3 * 2) and c1.weight.shape == (3, 2, 6)
    c3 = nn.Conv3d(2, 5, (2, 3, 1), seed=0)
    assert np.abs(c3.weight.data).max() <= 1 / np.sqrt(2 * 3 * 1 * 2)
    dw = nn.DepthwiseConv2d(4, 3, 2, seed=0)
    assert dw.weight.shape == (3, 3, 4, 2) and np.abs(dw.weight.data).max() <= 1 / 3
    assert np.abs(dw.weight.data).max() > 0.25  # drawn with fan_in = 9, not 9 * C_in


def test_layer_errors_name_the_layer():
    with pytest.raises(
        ValueError, match=r"Conv3d: kernel_size must be an int or 3 ints, got \(3, 3\)"
    ):
        nn.Conv3d(2, 2, (3, 3))
    with pytest.raises(
        ValueError,
        match=r"Conv1d: in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)",
    ):
        nn.Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"expected input \[N,D,H,W,2\], got shape \(1, 4, 4, 2\)"):
        nn.Conv3d(2, 2, 2)(tc.Tensor(np.zeros((1, 4, 4, 2), np.float32)))
    with pytest.raises(ValueError, match=r"expected input \[N,W,C\], got shape \(1, 4, 4, 2\)"):
        nn.MaxPool1d(2)(tc.Tensor(np.zeros((1, 4, 4, 2), np.float32)))
    with pytest.raises(
        ValueError,
        match=r"ConvTranspose1d: output_padding \(2,\) must be smaller than strides \(2,\)",
    ):
        nn.ConvTranspose1d(2, 2, 3, 2, output_padding=2)
    assert "depth_multiplier=2" in repr(nn.DepthwiseConv2d(3, 3, 2))
    assert "kernel_size=(2, 2, 2)" in repr(nn.MaxPool3d(2))

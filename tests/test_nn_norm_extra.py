"""Normalisation layers and extra layers (nn/norm.py, nn/extra.py) against torch.nn on the same
weights: forward and backward (input and parameter gradients), train and eval modes, float32 and
float64; NHWC here, NCHW in PyTorch (transposed). Gradcheck/gradgradcheck of the functional
forms, and the bad-input messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinygrad_conv as tc
from tinygrad_conv import nn

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def nchw(x):
    return torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)


def to_nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def run(module, x, v):
    """Forward ``module`` on x, backward with upstream v: (output, input grad)."""
    t = tc.tensor(x, requires_grad=True)
    y = module(t)
    y.backward(tc.tensor(v))
    return y.numpy(), t.grad.numpy()


def set_affine(mine, theirs, rng, dtype):
    w = (1 + 0.3 * rng.standard_normal(mine.weight.shape)).astype(dtype)
    b = (0.2 * rng.standard_normal(mine.bias.shape)).astype(dtype)
    mine.weight.data[...] = w
    mine.bias.data[...] = b
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
        theirs.bias.copy_(torch.tensor(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4,), (3, 4)])
def test_layer_norm_matches_torch(dtype, shape, rng):
    x = rng.standard_normal((2, 5) + shape).astype(dtype) * 3 + 1
    v = rng.standard_normal(x.shape).astype(dtype)
    mine = nn.LayerNorm(shape, eps=1e-4, dtype=dtype)
    theirs = torch.nn.LayerNorm(
        shape, eps=1e-4, dtype=torch.float64 if dtype == np.float64 else torch.float32
    )
    set_affine(mine, theirs, rng, dtype)
    y, gx = run(mine, x, v)
    q = torch.tensor(x, requires_grad=True)
    theirs(q).backward(torch.tensor(v))
    np.testing.assert_allclose(y, theirs(q).detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(gx, q.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(mine.bias.grad.numpy(), theirs.bias.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_matches_torch(dtype, groups, rng):
    x = rng.standard_normal((2, 3, 4, 6)).astype(dtype) * 2 - 1
    v = rng.standard_normal(x.shape).astype(dtype)
    mine = nn.GroupNorm(groups, 6, eps=1e-3, dtype=dtype)
    theirs = torch.nn.GroupNorm(groups, 6, eps=1e-3).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    set_affine(mine, theirs, rng, dtype)
    y, gx = run(mine, x, v)
    q = nchw(x)
    theirs(q).backward(torch.tensor(np.ascontiguousarray(v.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(y, to_nhwc(theirs(q)), **TOL[dtype])
    np.testing.assert_allclose(gx, to_nhwc(q.grad), **TOL[dtype])
    np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(mine.bias.grad.numpy(), theirs.bias.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine,track", [(False, False), (True, False), (True, True)])
def test_instance_norm_matches_torch_train_and_eval(dtype, affine, track, rng):
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    mine = nn.InstanceNorm2d(3, affine=affine, track_running_stats=track, momentum=0.2, dtype=dtype)
    theirs = torch.nn.InstanceNorm2d(3, affine=affine, track_running_stats=track, momentum=0.2).to(
        tdt
    )
    if affine:
        set_affine(mine, theirs, rng, dtype)
    for step in range(3):  # two training steps, then eval
        train = step < 2
        mine.train(train)
        theirs.train(train)
        x = (rng.standard_normal((2, 4, 5, 3)) * (step + 1) + step).astype(dtype)
        v = rng.standard_normal(x.shape).astype(dtype)
        y, gx = run(mine, x, v)
        q = nchw(x)
        out = theirs(q)
        out.backward(torch.tensor(np.ascontiguousarray(v.transpose(0, 3, 1, 2))))
        np.testing.assert_allclose(y, to_nhwc(out), **TOL[dtype])
        np.testing.assert_allclose(gx, to_nhwc(q.grad), **TOL[dtype])
        if track:
            np.testing.assert_allclose(mine.running_mean, theirs.running_mean.numpy(), **TOL[dtype])
            np.testing.assert_allclose(mine.running_var, theirs.running_var.numpy(), **TOL[dtype])
        if affine:
            np.testing.assert_allclose(
                mine.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOL[dtype]
            )
            mine.weight.grad = mine.bias.grad = None
            theirs.zero_grad()


def test_norm_functional_gradgradcheck(rng):
    x = tc.tensor(rng.standard_normal((2, 2, 2, 4)), requires_grad=True)
    w = tc.tensor(1 + 0.1 * rng.standard_normal(4), requires_grad=True)
    b = tc.tensor(0.1 * rng.standard_normal(4), requires_grad=True)
    for fn in (
        lambda a, w, b: nn.layer_norm(a, 4, w, b),
        lambda a, w, b: nn.group_norm(a, 2, w, b),
        lambda a, w, b: nn.instance_norm(a, weight=w, bias=b),
    ):
        assert tc.gradcheck(fn, [x, w, b])
        assert tc.gradgradcheck(fn, [x, w, b])


def test_embedding_matches_torch(rng):
    idx = np.array([[1, 4, 1], [0, 2, 1]])
    mine = nn.Embedding(5, 3, padding_idx=2, seed=0)
    theirs = torch.nn.Embedding(5, 3, padding_idx=2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(mine.weight.numpy()))
    assert (mine.weight.numpy()[2] == 0).all()
    v = rng.standard_normal((2, 3, 3)).astype(np.float32)
    y = mine(idx)
    y.backward(tc.tensor(v))
    ty = theirs(torch.tensor(idx))
    ty.backward(torch.tensor(v))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(mine.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6)
    assert (mine.weight.grad.numpy()[2] == 0).all()  # the padding row learns nothing
    with pytest.raises(
        IndexError, match="Embedding: embedding: index 5 is out of range for 5 embeddings"
    ):
        mine(np.array([0, 5]))
    with pytest.raises(
        TypeError, match="Embedding: embedding: indices must be integers, got dtype float64"
    ):
        mine(np.array([0.0]))
    with pytest.raises(
        ValueError, match="Embedding: padding_idx 7 is out of range for 5 embeddings"
    ):
        nn.Embedding(5, 3, padding_idx=7)


@pytest.mark.parametrize(
    "size,scale,mode,ac",
    [
        ((6, 9), None, "nearest", None),
        (None, 2, "nearest", None),
        ((2, 3), None, "nearest", None),
        ((7, 5), None, "bilinear", False),
        ((7, 5), None, "bilinear", True),
        (None, 1.5, "bilinear", False),
        (None, (2, 0.5), "bilinear", False),
        ((1, 1), None, "bilinear", True),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_torch(size, scale, mode, ac, dtype, rng):
    x = rng.standard_normal((2, 3, 4, 2)).astype(dtype)
    mine = nn.Upsample(size, scale, mode, ac)
    out_shape = mine(tc.tensor(x)).shape
    v = rng.standard_normal(out_shape).astype(dtype)
    y, gx = run(mine, x, v)
    q = nchw(x)
    ty = F.interpolate(q, size=size, scale_factor=scale, mode=mode, align_corners=ac)
    ty.backward(torch.tensor(np.ascontiguousarray(v.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(y, to_nhwc(ty), **TOL[dtype])
    np.testing.assert_allclose(gx, to_nhwc(q.grad), **TOL[dtype])


@pytest.mark.parametrize("out", [1, (2, 3), (3, None), (5, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool_matches_torch(out, dtype, rng):
    x = rng.standard_normal((2, 5, 7, 3)).astype(dtype)
    mine = nn.AdaptiveAvgPool2d(out)
    v = rng.standard_normal(mine(tc.tensor(x)).shape).astype(dtype)
    y, gx = run(mine, x, v)
    q = nchw(x)
    ty = F.adaptive_avg_pool2d(q, out)
    ty.backward(torch.tensor(np.ascontiguousarray(v.transpose(0, 3, 1, 2))))
    np.testing.assert_allclose(y, to_nhwc(ty), **TOL[dtype])
    np.testing.assert_allclose(gx, to_nhwc(q.grad), **TOL[dtype])


def test_resize_gradgradcheck(rng):
    x = tc.tensor(rng.standard_normal((1, 3, 2, 2)), requires_grad=True)
    assert tc.gradgradcheck(lambda a: nn.interpolate(a, (4, 3), mode="bilinear"), [x])
    assert tc.gradgradcheck(lambda a: nn.interpolate(a, scale_factor=2), [x])
    assert tc.gradgradcheck(lambda a: nn.adaptive_avg_pool2d(a, (2, 1)), [x])


def test_dropout2d_zeroes_whole_channels():
    x = tc.ones(8, 3, 3, 16, requires_grad=True)
    drop = nn.Dropout2d(0.5, seed=0)
    y = drop(x)
    per_map = y.numpy().reshape(8, 9, 16)
    assert set(np.unique(per_map)) == {0.0, 2.0}
    assert (
        per_map.min(axis=1) == per_map.max(axis=1)
    ).all()  # a channel is all kept or all dropped
    assert 0.3 < (per_map[:, 0, :] == 0).mean() < 0.7
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # gradient = the scaled mask
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="Dropout2d: p must be in"):
        nn.Dropout2d(1.5)


def test_activation_modules_and_prelu(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = tc.tensor(x)
    q = torch.tensor(x)
    pairs = [
        (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.SiLU(), torch.nn.SiLU()), (nn.ELU(0.5), torch.nn.ELU(0.5)),
        (nn.CELU(1.5), torch.nn.CELU(1.5)), (nn.SELU(), torch.nn.SELU()),
        (nn.Softplus(2.0, 3.0), torch.nn.Softplus(2.0, 3.0)), (nn.Mish(), torch.nn.Mish()),
        (nn.Softsign(), torch.nn.Softsign()), (nn.LogSigmoid(), torch.nn.LogSigmoid()),
        (nn.Hardtanh(-0.5, 0.5), torch.nn.Hardtanh(-0.5, 0.5)), (nn.ReLU6(), torch.nn.ReLU6()),
        (nn.Hardsigmoid(), torch.nn.Hardsigmoid()), (nn.Hardswish(), torch.nn.Hardswish()),
        (nn.Softshrink(0.3), torch.nn.Softshrink(0.3)), (nn.Hardshrink(0.3), torch.nn.Hardshrink(0.3)),
        (nn.Tanhshrink(), torch.nn.Tanhshrink()), (nn.Softmin(1), torch.nn.Softmin(1)),
    ]  # fmt: skip
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine(t).numpy(), theirs(q).numpy(), rtol=1e-5, atol=1e-6)
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    p = nn.PReLU(4, init=0.1)
    xp = tc.tensor(x, requires_grad=True)
    p(xp).sum().backward()
    tp = torch.nn.PReLU(4, init=0.1)
    qp = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
    tp(qp).sum().backward()
    np.testing.assert_allclose(p.weight.grad.numpy(), tp.weight.grad.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh'"):
        nn.GELU("exact")


def test_unflatten_and_model_in_sequential(rng):
    model = nn.Sequential(
        nn.Unflatten(1, (4, 4, 1)), nn.Conv2d(1, 6, 3, padding="SAME"), nn.GroupNorm(2, 6),
        nn.GELU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.LayerNorm(24), nn.SiLU(),
    )  # fmt: skip
    x = tc.tensor(rng.standard_normal((3, 16)).astype(np.float32), requires_grad=True)
    y = model(x)
    assert y.shape == (3, 24)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(
        ValueError, match=r"Unflatten: expected input with axis 1 of length 16, got shape \(3, 15\)"
    ):
        nn.Unflatten(1, (4, 4, 1))(tc.ones(3, 15))


def test_bad_input_messages():
    with pytest.raises(
        ValueError, match=r"LayerNorm: expected input \[\.\.\., 4\], got shape \(2, 3\)"
    ):
        nn.LayerNorm(4)(tc.ones(2, 3))
    with pytest.raises(
        ValueError, match="GroupNorm: num_channels=6 is not divisible by num_groups=4"
    ):
        nn.GroupNorm(4, 6)
    with pytest.raises(
        ValueError, match=r"GroupNorm: expected input \[N, \.\.\., 6\], got shape \(2, 4, 4, 3\)"
    ):
        nn.GroupNorm(2, 6)(tc.ones(2, 4, 4, 3))
    with pytest.raises(
        ValueError, match=r"InstanceNorm2d: expected input \[N, H, W, 3\], got shape \(2, 3\)"
    ):
        nn.InstanceNorm2d(3)(tc.ones(2, 3))
    with pytest.raises(ValueError, match="interpolate: give exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(
        ValueError, match="interpolate: mode must be 'nearest' or 'bilinear', got 'bicubic'"
    ):
        nn.interpolate(tc.ones(1, 2, 2, 1), 4, mode="bicubic")
    with pytest.raises(
        ValueError, match="interpolate: align_corners only applies to mode='bilinear'"
    ):
        nn.interpolate(tc.ones(1, 2, 2, 1), 4, align_corners=True)
    with pytest.raises(
        ValueError, match=r"AdaptiveAvgPool2d: expected input \[N, H, W, C\], got shape \(2, 3\)"
    ):
        nn.AdaptiveAvgPool2d(2)(tc.ones(2, 3))
    with pytest.raises(
        ValueError,
        match=r"layer_norm: input of shape \(2, 3\) does not end with normalized_shape \(4,\)",
    ):
        nn.layer_norm(tc.ones(2, 3), 4)

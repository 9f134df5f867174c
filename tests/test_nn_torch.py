"""Extra check: nn layers against PyTorch (CPU, float64) on random data, forward and gradients.

PyTorch is NCHW with OIHW conv weights and [out, in] linear weights; the comparisons transpose:
x_nchw = x.transpose(0, 3, 1, 2), W_oihw = W_hwio.transpose(3, 2, 0, 1),
W_torch_linear = W.T, and W_torch_convT [in, out, kh, kw] = W_ours [kh, kw, out, in]
.transpose(3, 2, 0, 1).
Skipped when torch is not importable (a failure under CI=true).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import nn


def _require_torch():
    """torch, or a skip when it is missing locally; under CI=true a missing torch fails."""
    if os.environ.get("CI") == "true":
        import torch

        return torch
    return pytest.importorskip("torch")


torch = _require_torch()

F64 = np.float64


def _t(a: np.ndarray, grad: bool = False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _data(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2)


def _nhwc(a) -> np.ndarray:
    return a.detach().numpy().transpose(0, 2, 3, 1)


def test_linear_matches_torch() -> None:
    lin = nn.Linear(5, 3, dtype=F64, seed=0)
    xd, gd = _data((4, 5), 1), _data((4, 3), 2)
    x = tc.Tensor(xd, requires_grad=True)
    lin(x).backward(gd)
    tl = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        tl.weight.copy_(_t(lin.weight.data.T))
        tl.bias.copy_(_t(lin.bias.data))
    tx = _t(xd, True)
    ty = tl(tx)
    ty.backward(_t(gd))
    np.testing.assert_allclose(lin(x).data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.weight.grad.data, tl.weight.grad.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(lin.bias.grad.data, tl.bias.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "torch_pad", "dil", "groups"),
    [
        (3, 4, 3, 1, "same", 1, 1, 1),
        (3, 4, 3, 2, "valid", 0, 1, 1),
        (4, 6, 3, 2, 1, 1, 1, 2),
        (2, 4, (3, 1), 1, (1, 0), (1, 0), 2, 1),
        (6, 6, 3, 1, "same", 1, 1, 6),  # depthwise
    ],
)
def test_conv2d_matches_torch(cin, cout, k, stride, padding, torch_pad, dil, groups) -> None:
    conv = nn.Conv2d(cin, cout, k, stride, padding, dil, groups, dtype=F64, seed=3)
    xd = _data((2, 9, 9, cin), 4)
    x = tc.Tensor(xd, requires_grad=True)
    y = conv(x)
    gd = _data(y.shape, 5)
    y.backward(gd)
    tconv = torch.nn.Conv2d(cin, cout, k, stride, torch_pad, dil, groups).double()
    with torch.no_grad():
        tconv.weight.copy_(_t(conv.weight.data.transpose(3, 2, 0, 1)))
        tconv.bias.copy_(_t(conv.bias.data))
    tx = _t(_nchw(xd), True)
    ty = tconv(tx)
    ty.backward(_t(_nchw(gd)))
    np.testing.assert_allclose(y.data, _nhwc(ty), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, _nhwc(tx.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        conv.weight.grad.data,
        tconv.weight.grad.numpy().transpose(2, 3, 1, 0),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(conv.bias.grad.data, tconv.bias.grad.numpy(), rtol=1e-10)


def test_default_init_has_pytorchs_distribution() -> None:
    # same bound as torch's default Conv2d/Linear init (U(+-1/sqrt(fan_in)))
    conv = nn.Conv2d(8, 16, 3, groups=2, seed=0)
    tconv = torch.nn.Conv2d(8, 16, 3, groups=2)
    ours = np.abs(conv.weight.data).max()
    theirs = tconv.weight.detach().abs().max().item()
    assert ours == pytest.approx(theirs, rel=0.05)
    lin, tlin = nn.Linear(300, 20, seed=0), torch.nn.Linear(300, 20)
    assert np.abs(lin.weight.data).max() == pytest.approx(
        tlin.weight.detach().abs().max().item(), rel=0.05
    )


def test_conv_transpose_matches_torch() -> None:
    # 'valid' with k >= stride is torch's padding=0: out = (in - 1) * s + k
    layer = nn.ConvTranspose2d(3, 2, 3, strides=2, padding="valid", dtype=F64, seed=1)
    xd = _data((2, 4, 4, 3), 6)
    x = tc.Tensor(xd, requires_grad=True)
    y = layer(x)
    gd = _data(y.shape, 7)
    y.backward(gd)
    tl = torch.nn.ConvTranspose2d(3, 2, 3, stride=2).double()
    with torch.no_grad():
        tl.weight.copy_(_t(layer.weight.data.transpose(3, 2, 0, 1)))
        tl.bias.copy_(_t(layer.bias.data))
    tx = _t(_nchw(xd), True)
    ty = tl(tx)
    ty.backward(_t(_nchw(gd)))
    np.testing.assert_allclose(y.data, _nhwc(ty), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, _nhwc(tx.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        layer.weight.grad.data, tl.weight.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10
    )


@pytest.mark.skipif(not hasattr(tc, "max_pool2d"), reason="pool ops not built yet")
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: nn.MaxPool2d(3, strides=2, padding=1), lambda: torch.nn.MaxPool2d(3, 2, 1)),
        (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
        (
            lambda: nn.AvgPool2d(3, strides=2, padding=1),
            lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        ),
        (lambda: nn.AvgPool2d((2, 3), strides=1), lambda: torch.nn.AvgPool2d((2, 3), 1)),
    ],
)
def test_pools_match_torch(ours, theirs) -> None:
    xd = _data((2, 7, 7, 3), 8)
    x = tc.Tensor(xd, requires_grad=True)
    y = ours()(x)
    gd = _data(y.shape, 9)
    y.backward(gd)
    tx = _t(_nchw(xd), True)
    ty = theirs()(tx)
    ty.backward(_t(_nchw(gd)))
    np.testing.assert_allclose(y.data, _nhwc(ty), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, _nhwc(tx.grad), rtol=1e-12, atol=1e-14)


def test_batchnorm2d_matches_torch_train_and_eval() -> None:
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype=F64)
    bn.weight.data[...] = [1.5, 0.5, -1.0]
    bn.bias.data[...] = [0.0, 1.0, 2.0]
    tbn = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        tbn.weight.copy_(_t(bn.weight.data))
        tbn.bias.copy_(_t(bn.bias.data))
    for step in range(2):
        xd = _data((4, 5, 5, 3), 10 + step) * (step + 1) + step
        gd = _data((4, 5, 5, 3), 20 + step)
        bn.zero_grad()
        tbn.zero_grad()
        x = tc.Tensor(xd, requires_grad=True)
        y = bn(x)
        y.backward(gd)
        tx = _t(_nchw(xd), True)
        ty = tbn(tx)
        ty.backward(_t(_nchw(gd)))
        np.testing.assert_allclose(y.data, _nhwc(ty), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.grad.data, _nhwc(tx.grad), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(bn.weight.grad.data, tbn.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.bias.grad.data, tbn.bias.grad.numpy(), rtol=1e-10)
    sd = bn.state_dict()
    tsd = tbn.state_dict()
    assert list(sd) == list(tsd)  # same key names as PyTorch
    for k in sd:
        np.testing.assert_allclose(sd[k], tsd[k].numpy(), rtol=1e-12, err_msg=k)
    bn.eval()
    tbn.eval()
    xd = _data((2, 3, 3, 3), 30)
    np.testing.assert_allclose(
        bn(tc.Tensor(xd)).data, _nhwc(tbn(_t(_nchw(xd)))), rtol=1e-10, atol=1e-12
    )

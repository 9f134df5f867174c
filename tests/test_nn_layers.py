"""Tests for tinygrad_conv.nn layers: values against numpy references, gradients by finite
differences (tc.gradcheck, float64), BatchNorm train/eval behaviour and running statistics,
Dropout masks, conv/transpose-conv/pool shapes, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import nn
from tinygrad_conv.nn import functional as F

F64 = np.float64
has_pool = pytest.mark.skipif(
    not (hasattr(tc, "max_pool2d") and hasattr(tc, "avg_pool2d")), reason="pool ops not built yet"
)


def _x(shape: tuple[int, ...], seed: int = 0, grad: bool = True) -> tc.Tensor:
    data = np.random.default_rng(seed).standard_normal(shape)
    return tc.Tensor(data, requires_grad=grad)


def _params(m: nn.Module) -> list[tc.Tensor]:
    return list(m.parameters())


def _conv_ref(x: np.ndarray, w: np.ndarray, stride: int, pads, dil: int = 1, groups: int = 1):
    """Direct NHWC/HWIO convolution with explicit pads ((t, b), (l, r)): the slow, obvious loop."""
    x = np.pad(x, ((0, 0), *pads, (0, 0)))
    kh, kw, cig, co = w.shape
    n, h, wd, _ = x.shape
    eh, ew = dil * (kh - 1) + 1, dil * (kw - 1) + 1
    ho, wo = (h - eh) // stride + 1, (wd - ew) // stride + 1
    cog = co // groups
    y = np.zeros((n, ho, wo, co))
    for g in range(groups):
        xs = x[..., g * cig : (g + 1) * cig]
        ws = w[..., g * cog : (g + 1) * cog]
        for i in range(ho):
            for j in range(wo):
                patch = xs[
                    :, i * stride : i * stride + eh : dil, j * stride : j * stride + ew : dil
                ]
                y[:, i, j, g * cog : (g + 1) * cog] = np.einsum("nhwc,hwco->no", patch, ws)
    return y


# -- Linear ----------------------------------------------------------------------------------------
def test_linear_values_and_gradcheck() -> None:
    lin = nn.Linear(4, 3, dtype=F64, seed=0)
    x = _x((5, 4))
    np.testing.assert_allclose(lin(x).data, x.data @ lin.weight.data + lin.bias.data, rtol=1e-12)
    assert tc.gradcheck(lambda x, w, b: lin(x), [x, *_params(lin)])
    x3 = _x((2, 3, 4), seed=1)  # leading batch axes
    assert lin(x3).shape == (2, 3, 3)
    assert tc.gradcheck(lambda x, w, b: lin(x), [x3, *_params(lin)])
    np.testing.assert_allclose(F.linear(x, lin.weight, lin.bias).data, lin(x).data)


# -- Conv2d ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "dil", "groups", "pads"),
    [
        (2, 3, 3, 1, "valid", 1, 1, ((0, 0), (0, 0))),
        (2, 3, 3, 1, "same", 1, 1, ((1, 1), (1, 1))),
        (2, 4, 2, 2, "same", 1, 2, ((0, 1), (0, 1))),  # SAME 7x7, k2 s2: extra row bottom
        (2, 4, 3, 2, "same", 1, 1, ((1, 1), (1, 1))),
        (3, 2, (2, 3), 2, 1, 1, 1, ((1, 1), (1, 1))),
        (4, 6, 3, 1, ((2, 0), (1, 1)), 1, 2, ((2, 0), (1, 1))),  # groups with in/out per group 2/3
        (2, 2, 3, 1, "valid", 2, 1, ((0, 0), (0, 0))),
    ],
)
def test_conv2d_values_and_gradcheck(cin, cout, k, stride, padding, dil, groups, pads) -> None:
    conv = nn.Conv2d(cin, cout, k, stride, padding, dil, groups, dtype=F64, seed=1)
    x = _x((2, 7, 7, cin), seed=2)
    y = conv(x)
    ref = _conv_ref(x.data, conv.weight.data, stride, pads, dil, groups) + conv.bias.data
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.data, ref, rtol=1e-10, atol=1e-12)
    assert tc.gradcheck(lambda x, w, b: conv(x), [x, *_params(conv)])


def test_conv2d_without_bias_and_float32() -> None:
    conv = nn.Conv2d(3, 5, 3, padding="same", bias=False, seed=0)
    assert conv.bias is None and [n for n, _ in conv.named_parameters()] == ["weight"]
    y = conv(tc.randn(2, 6, 6, 3, generator=0))
    assert y.shape == (2, 6, 6, 5) and y.dtype == np.float32
    assert repr(conv).endswith("bias=False)")


def test_conv2d_second_derivative() -> None:
    conv = nn.Conv2d(2, 2, 2, strides=1, padding="valid", dtype=F64, seed=3)
    x = _x((1, 4, 4, 2), seed=4)
    assert tc.gradgradcheck(lambda x, w, b: conv(x).tanh(), [x, *_params(conv)])


# -- ConvTranspose2d -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "s", "padding", "op", "hw", "expected"),
    [
        (3, 2, "same", None, 4, 8),  # Keras: in * stride
        (3, 2, "valid", None, 4, 9),  # (in - 1) * stride + k
        (2, 3, "valid", None, 4, 12),  # k < stride: in * stride + max(k - s, 0)
        (3, 1, "valid", None, 5, 7),
        (4, 2, "same", 1, 4, 7),  # (in-1)*s + k - 2*(k//2) + output_padding
        (3, 2, "valid", 1, 4, 10),
    ],
)
def test_conv_transpose_output_size_like_keras(k, s, padding, op, hw, expected) -> None:
    layer = nn.ConvTranspose2d(3, 2, k, s, padding, output_padding=op, seed=0)
    assert layer.weight.shape == (k, k, 2, 3)  # [kh, kw, out, in]
    assert layer(tc.randn(2, hw, hw, 3, generator=0)).shape == (2, expected, expected, 2)


def test_conv_transpose_is_the_adjoint_of_conv_and_gradchecks() -> None:
    # <convT(y; W), x> == <y, conv(x; W)> for the conv whose output shape y has
    up = nn.ConvTranspose2d(3, 2, 3, strides=2, padding="same", bias=False, dtype=F64, seed=0)
    down = nn.Conv2d(2, 3, 3, strides=2, padding="same", bias=False, dtype=F64)
    down.weight.data[...] = up.weight.data
    y, x = _x((2, 4, 4, 3), seed=1, grad=False), _x((2, 8, 8, 2), seed=2, grad=False)
    lhs = float((up(y) * x).sum().item())
    rhs = float((y * down(x)).sum().item())
    assert lhs == pytest.approx(rhs, rel=1e-12)
    up.bias = nn.Parameter(np.linspace(-1, 1, 2))
    yg = _x((1, 3, 3, 3), seed=3)
    assert tc.gradcheck(lambda y, w, b: up(y), [yg, *_params(up)])


# -- BatchNorm -------------------------------------------------------------------------------------
def _bn_reference(x, gamma, beta, eps=1e-5):
    axes = tuple(range(x.ndim - 1))
    mu, var = x.mean(axes), x.var(axes)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta, mu, x.var(axes, ddof=1)


def test_batchnorm2d_train_matches_numpy_and_updates_running_stats() -> None:
    bn = nn.BatchNorm2d(3, momentum=0.1, dtype=F64)
    bn.weight.data[...] = [1.0, 2.0, -0.5]
    bn.bias.data[...] = [0.0, 0.3, 1.0]
    x1 = _x((4, 5, 5, 3), seed=0, grad=False) * 2 + 1
    x2 = _x((4, 5, 5, 3), seed=1, grad=False) - 3
    y, mu1, uvar1 = _bn_reference(x1.data, bn.weight.data, bn.bias.data)
    np.testing.assert_allclose(bn(x1).data, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, 0.1 * mu1, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * uvar1, rtol=1e-12)  # unbiased var
    _, mu2, uvar2 = _bn_reference(x2.data, bn.weight.data, bn.bias.data)
    bn(x2)
    np.testing.assert_allclose(bn.running_mean, 0.9 * 0.1 * mu1 + 0.1 * mu2, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 * (0.9 + 0.1 * uvar1) + 0.1 * uvar2, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 2


def test_batchnorm2d_eval_uses_running_stats_and_does_not_update() -> None:
    bn = nn.BatchNorm2d(2, dtype=F64)
    bn.running_mean[...] = [0.5, -1.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.0, 1.0]
    bn.eval()
    x = _x((3, 2, 2, 2), seed=5)
    expected = (x.data - [0.5, -1.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5) * [2, 1] + [0, 1]
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, [0.5, -1.0])
    assert int(bn.num_batches_tracked) == 0
    assert tc.gradcheck(lambda x, g, b: bn(x), [x, *_params(bn)])


def test_batchnorm2d_train_gradcheck() -> None:
    bn = nn.BatchNorm2d(3, dtype=F64)
    bn.weight.data[...] = [1.5, -0.7, 0.9]
    bn.bias.data[...] = [0.1, 0.2, -0.3]
    x = _x((2, 3, 3, 3), seed=6)
    assert tc.gradcheck(lambda x, g, b: bn(x), [x, *_params(bn)])


def test_batchnorm2d_train_is_one_fused_node_and_second_derivatives() -> None:
    bn = nn.BatchNorm2d(2, dtype=F64)
    bn.weight.data[...] = [1.3, -0.6]
    x = _x((2, 2, 3, 2), seed=11)
    y = bn(x)
    assert y.grad_fn.name == "batch_norm" and y.grad_fn.inputs[0] is x
    # with create_graph the backward is rebuilt from differentiable ops: check it by differences
    assert tc.gradgradcheck(lambda x, g, b: bn(x), [x, *_params(bn)], atol=1e-5, rtol=1e-3)
    # and without weight/bias (affine=False) the input gradient is still exact
    plain = nn.BatchNorm2d(2, affine=False, dtype=F64)
    assert tc.gradcheck(lambda x: plain(x), [x])
    assert tc.gradgradcheck(lambda x: plain(x), [x])


def test_batchnorm_momentum_none_is_a_cumulative_average_and_variants() -> None:
    bn = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    xs = [_x((6, 2), seed=s, grad=False) for s in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.data.mean(0) for x in xs], 0))
    np.testing.assert_allclose(bn.running_var, np.mean([x.data.var(0, ddof=1) for x in xs], 0))
    plain = nn.BatchNorm1d(2, affine=False, track_running_stats=False, dtype=F64)
    assert list(plain.parameters()) == [] and list(plain.state_dict()) == []
    plain.eval()  # no running stats: batch statistics even in eval
    y, _, _ = _bn_reference(xs[0].data, 1.0, 0.0)
    np.testing.assert_allclose(plain(xs[0]).data, y, rtol=1e-10)


def test_batchnorm1d_channels_last_and_gradcheck() -> None:
    bn = nn.BatchNorm1d(3, dtype=F64)
    x = _x((4, 5, 3), seed=7)
    y, _, _ = _bn_reference(x.data, 1.0, 0.0)
    np.testing.assert_allclose(bn(x).data, y, rtol=1e-10, atol=1e-12)
    assert tc.gradcheck(lambda x, g, b: bn(x), [_x((5, 3), seed=8), *_params(bn)])
    with pytest.raises(ValueError, match=r"expected input \[N,3\] or \[N,L,3\]"):
        bn(tc.zeros(2, 2, 2, 3))


def test_batchnorm_float32_keeps_dtype() -> None:
    bn = nn.BatchNorm2d(4)
    y = bn(tc.randn(2, 3, 3, 4, generator=1))
    assert y.dtype == np.float32 and bn.running_var.dtype == np.float32
    bn.eval()
    assert bn(tc.randn(2, 3, 3, 4, generator=2)).dtype == np.float32


# -- Dropout ---------------------------------------------------------------------------------------
def test_dropout_is_a_seeded_inverted_mask() -> None:
    x = tc.ones(200, 50, dtype=F64)
    d = nn.Dropout(0.3, seed=0)
    y = d(x).data
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(nn.Dropout(0.3, seed=0)(x).data, y)  # same seed, same mask
    assert not np.array_equal(d(x).data, y)  # the generator advances
    d.eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).data.any()


def test_dropout_gradient_is_the_mask() -> None:
    x = _x((4, 6), seed=1)
    assert tc.gradcheck(lambda x: nn.Dropout(0.5, seed=3)(x), [x])  # a fresh, same-seeded mask
    y = nn.Dropout(0.5, seed=3)(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.where(y.data == 0, 0.0, 2.0))


def test_dropout_uses_the_global_seed_without_one() -> None:
    tc.manual_seed(11)
    a = nn.Dropout(0.5)(tc.ones(100)).data
    tc.manual_seed(11)
    b = nn.Dropout(0.5)(tc.ones(100)).data
    np.testing.assert_array_equal(a, b)


# -- pooling, activations, reshaping ---------------------------------------------------------------
def test_global_avg_pool_and_flatten() -> None:
    x = _x((2, 3, 4, 5))
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(x).data, x.data.mean((1, 2)))
    assert nn.GlobalAvgPool2d(keepdims=True)(x).shape == (2, 1, 1, 5)
    assert tc.gradcheck(lambda x: nn.GlobalAvgPool2d()(x), [x])
    f = nn.Flatten()(x)
    np.testing.assert_array_equal(f.data, x.data.reshape(2, -1))  # NHWC order
    assert tc.gradcheck(lambda x: nn.Flatten()(x), [x])


@pytest.mark.parametrize(
    ("layer", "fn"),
    [
        (nn.ReLU(), lambda a: np.maximum(a, 0)),
        (nn.LeakyReLU(0.2), lambda a: np.where(a > 0, a, 0.2 * a)),
        (nn.Tanh(), np.tanh),
        (nn.Sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
        (nn.Softmax(), lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)),
        (nn.Identity(), lambda a: a),
    ],
)
def test_activations(layer, fn) -> None:
    x = _x((3, 4), seed=2)
    np.testing.assert_allclose(layer(x).data, fn(x.data), rtol=1e-12)
    assert tc.gradcheck(lambda x: layer(x), [x])


@has_pool
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pool_layers_values_and_gradcheck(padding) -> None:
    x = tc.Tensor(np.random.default_rng(0).permutation(2 * 5 * 5 * 3).reshape(2, 5, 5, 3) / 10.0)
    x.requires_grad_()
    mp, ap = nn.MaxPool2d(2, padding=padding), nn.AvgPool2d(2, padding=padding)
    assert mp.strides == (2, 2)  # strides default to the window
    ym, ya = mp(x), ap(x)
    n = 2 if padding == "valid" else 3
    assert ym.shape == ya.shape == (2, n, n, 3)
    np.testing.assert_allclose(ym.data[:, 0, 0], x.data[:, :2, :2].max((1, 2)))
    np.testing.assert_allclose(ya.data[:, 1, 1], x.data[:, 2:4, 2:4].mean((1, 2)))
    if padding == "same":  # TF: the edge window averages its in-bounds elements only
        np.testing.assert_allclose(ya.data[:, 2, 2], x.data[:, 4, 4])
    assert tc.gradcheck(lambda x: mp(x), [x])
    assert tc.gradcheck(lambda x: ap(x), [x])
    with pytest.raises(ValueError, match=r"^MaxPool2d: expected input \[N,H,W,C\]"):
        mp(tc.zeros(5, 5, 3))


@has_pool
def test_pool_overlapping_windows_and_functional() -> None:
    x = _x((1, 6, 6, 2), seed=3)
    y = nn.MaxPool2d(3, strides=1)(x)
    assert y.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(y.data[0, 1, 2], x.data[0, 1:4, 2:5].max((0, 1)))
    np.testing.assert_allclose(F.max_pool2d(x, 3, 1).data, y.data)
    assert F.avg_pool2d(x, 2).shape == (1, 3, 3, 2)


# -- a whole model ---------------------------------------------------------------------------------
def _cnn(seed: int = 0, pool: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(1, 4, 3, padding="same", seed=seed),
        nn.BatchNorm2d(4),
        nn.ReLU(),
    ]
    layers += [nn.MaxPool2d(2)] if pool else [nn.Conv2d(4, 4, 2, strides=2, seed=seed + 1)]
    layers += [nn.Flatten(), nn.Linear(4 * 4 * 4, 3, seed=seed + 2)]
    return nn.Sequential(*layers)


def test_whole_model_gradcheck_in_float64() -> None:
    model = _cnn(pool=False).double()
    x = _x((2, 8, 8, 1), seed=9)
    params = list(model.parameters())
    assert tc.gradcheck(lambda x, *ps: model(x), [x, *params], atol=1e-5, rtol=1e-4)


def test_training_reduces_the_loss() -> None:
    from tinygrad_conv.optim import SGD

    rng = np.random.default_rng(0)
    x = tc.Tensor(rng.standard_normal((24, 8, 8, 1)).astype(np.float32))
    labels = (x.data[:, :4].mean((1, 2, 3)) > 0).astype(np.int64) + (x.data[:, 4:].mean() > 0)
    model = _cnn(pool=hasattr(tc, "max_pool2d"))
    loss_fn = nn.CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        loss = loss_fn(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    acc = (model(x).data.argmax(1) == labels).mean()
    assert acc > 0.8

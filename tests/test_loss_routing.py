"""The existing entry points take PyTorch's options and route them to the op-breadth losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tinygrad_conv as tc
import tinygrad_conv.nn.functional as F

RNG = np.random.default_rng(3)
Z = RNG.standard_normal((5, 4))
Y = np.array([0, 1, 2, 3, 1])


@pytest.mark.parametrize(
    "kwargs",
    [{"weight": RNG.uniform(0.5, 2, 4)}, {"ignore_index": 1}, {"label_smoothing": 0.1}, {}],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_options_match_torch(kwargs: dict, reduction: str) -> None:
    z = tc.tensor(Z, requires_grad=True)
    loss = tc.cross_entropy(z, Y, reduction, **kwargs)
    loss.sum().backward()
    zt = torch.tensor(Z, requires_grad=True)
    tk = {k: torch.tensor(v) if k == "weight" else v for k, v in kwargs.items()}
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(Y), reduction=reduction, **tk)
    lt.sum().backward()
    np.testing.assert_allclose(loss.data, lt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(z.grad.data, zt.grad.numpy(), rtol=1e-12, atol=1e-14)
    if not kwargs:  # the plain case stays the one fused node
        assert loss.grad_fn.name == "cross_entropy"


def test_cross_entropy_probability_targets_match_torch() -> None:
    p = RNG.dirichlet(np.ones(4), 5)
    got = tc.cross_entropy(Z, p).item()
    want = torch.nn.functional.cross_entropy(torch.tensor(Z), torch.tensor(p)).item()
    assert got == pytest.approx(want, rel=1e-13)


def test_bce_with_logits_weights_match_torch() -> None:
    x, t = RNG.standard_normal((3, 4)), RNG.uniform(0, 1, (3, 4))
    pw, w = RNG.uniform(0.5, 2, 4), RNG.uniform(0.5, 2, (3, 4))
    got = tc.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw).item()
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(t), weight=torch.tensor(w), pos_weight=torch.tensor(pw)
    ).item()
    assert got == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap", "symmetric"])
def test_pad_modes_route_to_pad_mode(mode: str) -> None:
    a = RNG.standard_normal((3, 4))
    out = tc.pad(a, ((1, 2), (2, 0)), mode=mode)
    np.testing.assert_array_equal(out.data, np.pad(a, ((1, 2), (2, 0)), mode=mode))


def test_functional_names_of_the_new_layers() -> None:
    x = RNG.standard_normal((2, 3, 4))
    got = F.layer_norm(tc.tensor(x), (4,)).data
    want = torch.nn.functional.layer_norm(torch.tensor(x), (4,)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-12)
    for name in ("group_norm", "instance_norm", "interpolate", "embedding", "dropout2d",
                 "adaptive_avg_pool2d"):  # fmt: skip
        assert callable(getattr(F, name))

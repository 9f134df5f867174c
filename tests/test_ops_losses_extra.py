"""More losses (ops/losses_extra.py, nn/losses_extra.py) against PyTorch's functional losses and
loss modules in float32 and float64 (values and gradients), gradcheck/gradgradcheck in float64,
stability at extreme logits, the BCE node's vjp rule, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vjp_rules import check_rule

import tinygrad_conv as tc
from tinygrad_conv import nn
from tinygrad_conv.ops import losses_extra as LX

N, C = 5, 4
LABELS = np.array([0, 3, 1, 3, 2])
IGNORED = np.array([0, -100, 1, 3, -100])
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])
POS_WEIGHT = np.array([1.0, 3.0, 0.5, 2.0])


def leaf(x, dtype=np.float64):
    return tc.tensor(np.asarray(x, dtype=dtype), requires_grad=True)


def inputs(rng):
    logits = rng.standard_normal((N, C)) * 2
    probs_target = rng.dirichlet(np.ones(C), N)
    binary = (rng.random((N, C)) > 0.5).astype(float)
    probs = 1 / (1 + np.exp(-rng.standard_normal((N, C))))
    return logits, probs_target, binary, probs


def w_t(x):
    return torch.tensor(WEIGHT, dtype=x.dtype)


# name: builder(dtype) -> (tc loss of (x, extra), torch loss of (x, extra), x data, extra data)
def cases(rng):
    logits, ptarget, binary, probs = inputs(rng)
    lt = torch.tensor
    out = {}
    for red in ("mean", "sum", "none"):
        out[f"nll_{red}"] = (
            lambda x, t, red=red: tc.nll_loss(tc.log_softmax(x, 1), LABELS, WEIGHT, reduction=red),
            lambda x, t, red=red: F.nll_loss(
                F.log_softmax(x, 1), lt(LABELS), w_t(x), reduction=red
            ),
            logits,
            None,
        )
        out[f"ce_all_options_{red}"] = (
            lambda x, t, red=red: tc.softmax_cross_entropy(
                x, IGNORED, WEIGHT, -100, red, label_smoothing=0.2
            ),
            lambda x, t, red=red: F.cross_entropy(
                x, lt(IGNORED), w_t(x), ignore_index=-100, reduction=red,
                label_smoothing=0.2,
            ),
            logits,
            None,
        )  # fmt: skip
        out[f"ce_prob_{red}"] = (
            lambda x, t, red=red: tc.softmax_cross_entropy(
                x, t, WEIGHT, reduction=red, label_smoothing=0.1
            ),
            lambda x, t, red=red: F.cross_entropy(x, t, w_t(x), reduction=red, label_smoothing=0.1),
            logits,
            ptarget,
        )
        out[f"bce_{red}"] = (
            lambda x, t, red=red: tc.binary_cross_entropy(x, t, WEIGHT, reduction=red),
            lambda x, t, red=red: F.binary_cross_entropy(x, t, w_t(x).expand(N, C), reduction=red),
            probs,
            binary,
        )
        out[f"sigmoid_ce_{red}"] = (
            lambda x, t, red=red: tc.sigmoid_cross_entropy(x, t, WEIGHT, POS_WEIGHT, reduction=red),
            lambda x, t, red=red: F.binary_cross_entropy_with_logits(
                x, t, w_t(x), reduction=red,
                pos_weight=torch.tensor(POS_WEIGHT, dtype=x.dtype),
            ),
            logits,
            binary,
        )  # fmt: skip
        out[f"smooth_l1_{red}"] = (
            lambda x, t, red=red: tc.smooth_l1_loss(x, t, red, beta=0.7),
            lambda x, t, red=red: F.smooth_l1_loss(x, t, reduction=red, beta=0.7),
            logits,
            ptarget * 3,
        )
        out[f"huber_{red}"] = (
            lambda x, t, red=red: tc.huber_loss(x, t, red, delta=1.3),
            lambda x, t, red=red: F.huber_loss(x, t, reduction=red, delta=1.3),
            logits,
            ptarget * 3,
        )
        out[f"l1_{red}"] = (
            lambda x, t, red=red: tc.l1_loss(x, t, red),
            lambda x, t, red=red: F.l1_loss(x, t, reduction=red),
            logits,
            ptarget * 3,
        )
    ptarget0 = ptarget.copy()
    ptarget0[1, 2] = 0.0  # a zero target: 0 log 0 = 0
    for red in ("mean", "sum", "none", "batchmean"):
        out[f"kl_{red}"] = (
            lambda x, t, red=red: tc.kl_div(tc.log_softmax(x, 1), t, red),
            lambda x, t, red=red: F.kl_div(F.log_softmax(x, 1), t, reduction=red),
            logits,
            ptarget0,
        )
        out[f"kl_log_target_{red}"] = (
            lambda x, t, red=red: tc.kl_div(tc.log_softmax(x, 1), t, red, log_target=True),
            lambda x, t, red=red: F.kl_div(F.log_softmax(x, 1), t, reduction=red, log_target=True),
            logits,
            np.log(ptarget),
        )
    return out


NAMES = sorted(cases(np.random.default_rng(0)))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # PyTorch's kl_div
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(name, dtype, rng):
    fn, tfn, x, extra = cases(rng)[name]
    x = x.astype(dtype)
    t = leaf(x, dtype)
    e_tc = None if extra is None else leaf(extra, dtype)
    y = fn(t, e_tc)
    v = rng.standard_normal(y.shape).astype(dtype)
    y.backward(tc.tensor(v))
    q = torch.tensor(x, requires_grad=True)
    e_t = None if extra is None else torch.tensor(extra.astype(dtype), requires_grad=True)
    ty = tfn(q, e_t)
    ty.backward(torch.tensor(v))
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    assert y.dtype == dtype and y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(t.grad.numpy(), q.grad.numpy(), **tol)
    if extra is not None and e_t.grad is not None:
        # d/dt of t log t is -inf at t = 0: PyTorch gives NaN there, we give log(1) - x; compare
        # the target's gradient where it is defined
        ok = np.isfinite(e_t.grad.numpy())
        np.testing.assert_allclose(e_tc.grad.numpy()[ok], e_t.grad.numpy()[ok], **tol)


@pytest.mark.parametrize("name", [n for n in NAMES if n.endswith(("_none", "_batchmean"))])
def test_gradcheck(name, rng):
    fn, _, x, extra = cases(rng)[name]
    if name.startswith("kl_") and not name.startswith("kl_log"):
        extra = extra + 0.05  # finite differences need t > 0 (t log t)
    args = [leaf(x)] + ([] if extra is None else [leaf(extra)])
    f = (lambda a: fn(a, None)) if extra is None else fn
    assert tc.gradcheck(f, args)
    if not name.startswith(("smooth_l1", "huber", "l1")):  # kinks at |d| = beta, 0
        assert tc.gradgradcheck(f, args)


def test_loss_modules_match_torch(rng):
    logits, ptarget, binary, probs = inputs(rng)
    pairs = [
        (nn.NLLLoss(WEIGHT, reduction="sum"), torch.nn.NLLLoss(torch.tensor(WEIGHT), reduction="sum"),
         F.log_softmax(torch.tensor(logits), 1).numpy(), LABELS),
        (nn.SoftmaxCrossEntropyLoss(WEIGHT, label_smoothing=0.3),
         torch.nn.CrossEntropyLoss(torch.tensor(WEIGHT), label_smoothing=0.3), logits, LABELS),
        (nn.BCELoss(), torch.nn.BCELoss(), probs, binary),
        (nn.SigmoidCrossEntropyLoss(pos_weight=POS_WEIGHT),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(POS_WEIGHT)), logits, binary),
        (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), logits, ptarget),
        (nn.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5), logits, ptarget),
        (nn.L1Loss(), torch.nn.L1Loss(), logits, ptarget),
        (nn.KLDivLoss("batchmean"), torch.nn.KLDivLoss(reduction="batchmean"),
         F.log_softmax(torch.tensor(logits), 1).numpy(), ptarget),
    ]  # fmt: skip
    for mine, theirs, x, t in pairs:
        got = mine(tc.tensor(x), tc.tensor(t)).item()
        ref = theirs(torch.tensor(x), torch.tensor(t)).item()
        assert got == pytest.approx(ref, rel=1e-12), type(mine).__name__
    assert "label_smoothing=0.3" in repr(nn.SoftmaxCrossEntropyLoss(label_smoothing=0.3))
    assert set(nn.SoftmaxCrossEntropyLoss(WEIGHT).state_dict()) == {"weight"}


def test_extremes_and_edges():
    x = np.array([[-1e4, 1e4], [0.0, 50.0]])
    t = np.array([[1.0, 0.0], [1.0, 1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = tc.sigmoid_cross_entropy(tc.tensor(x), tc.tensor(t), reduction="none").numpy()
    ref = F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-15)
    # BCE on probabilities 0 and 1: logs clamped at -100, gradient finite (PyTorch's clamps)
    p = leaf(np.array([0.0, 1.0, 0.5]))
    y = np.array([1.0, 1.0, 0.0])
    loss = tc.binary_cross_entropy(p, y, reduction="sum")
    loss.backward()
    tp = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    tl = F.binary_cross_entropy(tp, torch.tensor(y), reduction="sum")
    tl.backward()
    assert loss.item() == pytest.approx(tl.item(), rel=1e-15)
    # PyTorch's 1e-12 floor of p (1 - p) is a float32 constant (9.99999996e-13): rtol 1e-8
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(p.grad.numpy(), [-1e12, 0.0, 2.0], rtol=1e-15)
    # every target ignored: the weighted mean is 0/0 = NaN, as in PyTorch
    nan = tc.softmax_cross_entropy(tc.ones(2, 3), np.array([-100, -100]))
    assert np.isnan(nan.item())
    # label smoothing 0 is the plain fused cross_entropy
    z = np.random.default_rng(5).standard_normal((4, 3))
    a = tc.softmax_cross_entropy(tc.tensor(z), np.array([0, 2, 1, 1])).item()
    assert a == pytest.approx(
        tc.cross_entropy(tc.tensor(z), np.array([0, 2, 1, 1])).item(), rel=1e-14
    )


def test_bce_vjp_rule(rng):
    p = leaf(1 / (1 + np.exp(-rng.standard_normal((2, 3)))))
    y = leaf(rng.random((2, 3)))
    out = tc.binary_cross_entropy(p, y, reduction="none")
    check_rule(out, LX.BinaryCrossEntropy)
    assert tc.gradgradcheck(lambda a, b: tc.binary_cross_entropy(a, b), [p, y])


def test_bad_input():
    z = tc.ones(3, 4)
    with pytest.raises(
        ValueError,
        match=r"softmax_cross_entropy: target 4 is out of range for 4 classes \(ignore_index=-100\)",
    ):
        tc.softmax_cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(
        ValueError,
        match=r"softmax_cross_entropy: weight must have shape \(4,\) for 4 classes, got \(3,\)",
    ):
        tc.softmax_cross_entropy(z, np.array([0, 1, 1]), weight=np.ones(3))
    with pytest.raises(
        ValueError,
        match=r"softmax_cross_entropy: probability target has shape \(3, 3\), expected \(3, 4\)",
    ):
        tc.softmax_cross_entropy(z, np.ones((3, 3)))
    with pytest.raises(ValueError, match="softmax_cross_entropy: label_smoothing must be in"):
        tc.softmax_cross_entropy(z, np.array([0, 1, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"nll_loss: target has shape \(2,\), expected \(3,\)"):
        tc.nll_loss(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"nll_loss: input must be \[N, C\], got shape \(4,\)"):
        tc.nll_loss(tc.ones(4), np.array([0]))
    with pytest.raises(ValueError, match="binary_cross_entropy: input values must be in"):
        tc.binary_cross_entropy(tc.tensor([1.5]), tc.tensor([1.0]))
    with pytest.raises(
        ValueError, match=r"sigmoid_cross_entropy: pos_weight of shape \(3,\) does not broadcast"
    ):
        tc.sigmoid_cross_entropy(z, tc.zeros(3, 4), pos_weight=np.ones(3))
    with pytest.raises(
        ValueError,
        match=r"kl_div: reduction must be one of 'mean', 'sum', 'none', 'batchmean', got 'avg'",
    ):
        tc.kl_div(z, z, "avg")
    with pytest.raises(
        ValueError, match=r"huber_loss: input \(3, 4\) and target \(4,\) differ in shape"
    ):
        tc.huber_loss(z, tc.ones(4))
    with pytest.raises(ValueError, match="SmoothL1Loss: reduction must be one of"):
        nn.SmoothL1Loss(reduction="avg")

"""More losses: nll_loss, softmax_cross_entropy (class weights, ignore_index, label smoothing,
probability targets), binary_cross_entropy on probabilities, sigmoid_cross_entropy (logits with
class weights and ``pos_weight``), smooth_l1_loss, huber_loss, l1_loss, kl_div.

They follow PyTorch's formulas and reductions exactly (``reduction`` 'mean', 'sum' or 'none';
kl_div also 'batchmean'), including how weighted means are normalised: nll_loss /
softmax_cross_entropy with class-index targets divide by the sum of the weights of the
non-ignored targets; with probability targets they divide by N.

``tc.cross_entropy`` (ops/loss.py) is the fused one-node loss of the training loop; the extended
forms live here as compositions of differentiable ops (log_softmax, gather, softplus ...), so their
gradients of any order come from those ops. binary_cross_entropy is one node (below) because
PyTorch clamps its logs at -100 and its gradient's denominator at 1e-12, which a composition of
log and maximum would turn into NaN at p = 0 or 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import as_tensor, constant
from tinygrad_conv.ops.activation import softplus
from tinygrad_conv.ops.elementwise import abs, log, maximum, where
from tinygrad_conv.ops.indexing import gather
from tinygrad_conv.ops.loss import log_softmax
from tinygrad_conv.ops.movement import reshape
from tinygrad_conv.ops.reduce import mean, sum
from tinygrad_conv.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op: str, reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(
            f"{op}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    return loss


def _same_shape(op: str, a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{op}: {names[0]} {a.shape} and {names[1]} {b.shape} differ in shape")


def _class_weight(op: str, weight: Any, c: int, dtype: np.dtype) -> np.ndarray:
    if weight is None:
        return np.ones(c, dtype=dtype)
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if w.shape != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},) for {c} classes, got {w.shape}")
    return w


def _labels(op: str, z: Tensor, target: Any, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with ignored entries set to 0, validity mask) for class-index targets."""
    y = np.asarray(target.data if isinstance(target, Tensor) else target)
    if y.shape != (z.shape[0],):
        raise ValueError(
            f"{op}: target has shape {y.shape}, expected ({z.shape[0]},) for input of shape {z.shape}"
        )
    valid = y != ignore_index
    c = z.shape[1]
    bad = valid & ((y < 0) | (y >= c))
    if bad.any():
        raise ValueError(
            f"{op}: target {int(y[bad][0])} is out of range for {c} classes "
            f"(ignore_index={ignore_index})"
        )
    return np.where(valid, y, 0).astype(np.int64), valid


def _nll(
    op: str, logp: Tensor, target: Any, weight: Any, ignore_index: int
) -> tuple[Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample -w[y] logp[y] (0 where ignored), the weights w[y]*valid, w and validity."""
    y, valid = _labels(op, logp, target, ignore_index)
    w = _class_weight(op, weight, logp.shape[1], logp.dtype)
    wy = (w[y] * valid).astype(logp.dtype)
    picked = reshape(gather(logp, 1, y[:, None]), (logp.shape[0],))
    return -(picked * constant(wy)), wy, w, valid


def _weighted_mean(per: Tensor, wy: np.ndarray) -> Tensor:
    """sum(per) / sum(wy); NaN without a warning when every target is ignored (as PyTorch)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return sum(per) / float(wy.sum())


def _batch_input(op: str, x: Any) -> Tensor:
    t = as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{op}: input must be [N, C], got shape {t.shape}")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {t.dtype}")
    return t


def nll_loss(
    log_probs: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices: ``log_probs [N, C]``, ``target [N]`` int.

    loss_n = -weight[y_n] log_probs[n, y_n] (0 where y_n == ignore_index); 'mean' divides the sum
    by sum_n weight[y_n] over non-ignored n (PyTorch's weighted mean).
    """
    _check_reduction("nll_loss", reduction)
    logp = _batch_input("nll_loss", log_probs)
    per, wy, _, _ = _nll("nll_loss", logp, target, weight, ignore_index)
    if reduction == "mean":
        return _weighted_mean(per, wy)
    return _reduce(per, reduction)


def softmax_cross_entropy(
    logits: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """PyTorch's ``F.cross_entropy`` with all its options.

    Args:
        logits: ``[N, C]`` unnormalised scores.
        target: ``[N]`` class indices (int) or ``[N, C]`` class probabilities (float).
        weight: optional ``[C]`` class weights.
        ignore_index: class-index targets equal to it contribute 0 (and no weight to the mean).
        reduction: 'mean', 'sum' or 'none' (``[N]``).
        label_smoothing: epsilon in [0, 1]: the target becomes (1 - eps) onehot + eps / C.
    """
    op = "softmax_cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    z = _batch_input(op, logits)
    n, c = z.shape
    logp = log_softmax(z, axis=1)
    eps = float(label_smoothing)
    is_prob = (isinstance(target, Tensor) and target.dtype.kind == "f") or (
        not isinstance(target, Tensor) and np.asarray(target).dtype.kind == "f"
    )
    if is_prob:
        t = as_tensor(target)
        if t.shape != z.shape:
            raise ValueError(
                f"{op}: probability target has shape {t.shape}, expected {z.shape} like the logits"
            )
        if ignore_index != -100:
            raise ValueError(f"{op}: ignore_index={ignore_index} needs class-index targets")
        w = _class_weight(op, weight, c, z.dtype)
        if eps:
            t = t * (1 - eps) + eps / c
        per = -sum(logp * t * constant(w), 1)
        return sum(per) / n if reduction == "mean" else _reduce(per, reduction)
    per, wy, w, valid = _nll(op, logp, target, weight, ignore_index)
    if reduction == "mean":
        loss = _weighted_mean(per, wy)
    else:
        loss = _reduce(per, reduction)
    if not eps:
        return loss
    smooth = -sum(logp * constant(w), 1) * constant(valid.astype(z.dtype))
    if reduction == "mean":
        smooth_loss = _weighted_mean(smooth, wy)
    else:
        smooth_loss = _reduce(smooth, reduction)
    return loss * (1 - eps) + smooth_loss * (eps / c)


class BinaryCrossEntropy(Function):
    """loss = -w (y max(log p, -100) + (1 - y) max(log(1 - p), -100)), PyTorch's clamped form.

    d/dp = w (p - y) / max(p (1 - p), 1e-12);  d/dy = w (max(log(1-p), -100) - max(log p, -100)).
    """

    op_name = "binary_cross_entropy"
    input_names = ("p", "y")
    saved_names = ("weight",)
    vjp = {
        "p": "mul(mul(g, weight), div(sub(p, y), maximum(mul(p, sub(1, p)), 1e-12)))",
        "y": "mul(mul(g, weight), sub(maximum(log(sub(1, p)), -100), maximum(log(p), -100)))",
    }

    @staticmethod
    def forward(ctx, p, y, *, weight):
        ctx.save_for_backward(weight)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 like PyTorch
            lp = np.maximum(np.log(p), -100)
            l1p = np.maximum(np.log(1 - p), -100)
        return -(weight * (y * lp + (1 - y) * l1p))

    @staticmethod
    def backward(ctx, g):
        (weight,) = ctx.saved_tensors
        p, y = ctx.inputs
        w = constant(weight)
        gp = gy = None
        if ctx.needs_input_grad[0]:
            gp = (g * w) * ((p - y) / maximum(p * (1 - p), 1e-12))
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                gy = (g * w) * (maximum(log(1 - p), -100) - maximum(log(p), -100))
        return gp, gy


def binary_cross_entropy(
    probs: Any, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of probabilities ``probs`` in [0, 1] against ``target`` (same shape;
    ``weight`` broadcasts to it), with PyTorch's clamping of the logs at -100."""
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    p, y = as_tensor(probs), as_tensor(target)
    _same_shape(op, p, y, ("input", "target"))
    if p.size and (np.nanmin(p.data) < 0 or np.nanmax(p.data) > 1):
        bad = p.data[(p.data < 0) | (p.data > 1)].ravel()[0]
        raise ValueError(f"{op}: input values must be in [0, 1], got {bad!r}")
    y = y if y.dtype == p.dtype else y.astype(p.dtype)
    w = (
        np.ones((), dtype=p.dtype)
        if weight is None
        else np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=p.dtype)
    )
    try:
        np.broadcast_to(w, p.shape)
    except ValueError:
        raise ValueError(
            f"{op}: weight of shape {w.shape} does not broadcast to {p.shape}"
        ) from None
    loss = BinaryCrossEntropy.apply(p, y, weight=np.broadcast_to(w, p.shape).copy())
    return _reduce(loss, reduction)


def sigmoid_cross_entropy(
    logits: Any,
    target: Any,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """PyTorch's ``F.binary_cross_entropy_with_logits`` with ``weight`` and ``pos_weight``.

    loss = w ((1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)), softplus exact (logaddexp),
    so logits of +-1e4 are fine. ``pos_weight`` broadcasts along the last axis (one per class).
    """
    op = "sigmoid_cross_entropy"
    _check_reduction(op, reduction)
    x, y = as_tensor(logits), as_tensor(target)
    _same_shape(op, x, y, ("logits", "target"))
    sp = softplus(-x, threshold=float("inf"))
    if pos_weight is None:
        loss = (1 - y) * x + sp
    else:
        pw = _like(pos_weight, x)
        try:
            np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"{op}: pos_weight of shape {pw.shape} does not broadcast to {x.shape}"
            ) from None
        loss = (1 - y) * x + (1 + (pw - 1) * y) * sp
    if weight is not None:
        w = _like(weight, x)
        try:
            np.broadcast_shapes(w.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"{op}: weight of shape {w.shape} does not broadcast to {x.shape}"
            ) from None
        loss = loss * w
    return _reduce(loss, reduction)


def _like(value: Any, x: Tensor) -> Tensor:
    """``value`` as a Tensor of x's dtype (a Tensor that requires grad is kept as it is)."""
    if isinstance(value, Tensor) and value.requires_grad:
        return value
    return constant(np.asarray(getattr(value, "data", value), dtype=x.dtype))


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (d = input - target; beta=0: L1)."""
    op = "smooth_l1_loss"
    _check_reduction(op, reduction)
    if beta < 0:
        raise ValueError(f"{op}: beta must be >= 0, got {beta!r}")
    a, b = as_tensor(input), as_tensor(target)
    _same_shape(op, a, b, ("input", "target"))
    d = a - b
    ad = abs(d)
    if beta == 0:
        return _reduce(ad, reduction)
    loss = where(ad.data < beta, (0.5 / beta) * (d * d), ad - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2) (d = input - target)."""
    op = "huber_loss"
    _check_reduction(op, reduction)
    if delta <= 0:
        raise ValueError(f"{op}: delta must be > 0, got {delta!r}")
    a, b = as_tensor(input), as_tensor(target)
    _same_shape(op, a, b, ("input", "target"))
    d = a - b
    ad = abs(d)
    loss = where(ad.data < delta, 0.5 * (d * d), delta * (ad - 0.5 * delta))
    return _reduce(loss, reduction)


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """|input - target| (same shapes)."""
    op = "l1_loss"
    _check_reduction(op, reduction)
    a, b = as_tensor(input), as_tensor(target)
    _same_shape(op, a, b, ("input", "target"))
    return _reduce(abs(a - b), reduction)


def kl_div(
    input: Any,  # noqa: A002
    target: Any,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """PyTorch's KL divergence: ``input`` are log-probabilities, ``target`` probabilities (or
    log-probabilities with ``log_target``); pointwise target (log target - input), 0 where
    target = 0. 'batchmean' divides the sum by the batch size (the true KL per sample)."""
    op = "kl_div"
    _check_reduction(op, reduction, (*_REDUCTIONS, "batchmean"))
    x, t = as_tensor(input), as_tensor(target)
    _same_shape(op, x, t, ("input", "target"))
    if log_target:
        from tinygrad_conv.ops.elementwise import exp

        loss = exp(t) * (t - x)
    else:
        pos = t.data > 0
        safe = where(pos, t, 1.0)  # log(1) = 0 where the target is 0: the 0 log 0 = 0 convention
        loss = t * log(safe) - t * x
    if reduction == "batchmean":
        return sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


__all__ = [
    "binary_cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "nll_loss",
    "sigmoid_cross_entropy",
    "smooth_l1_loss",
    "softmax_cross_entropy",
]

"""Softmax family and losses: softmax, log_softmax, cross_entropy, mse_loss, BCE with logits.

softmax/log_softmax subtract the row maximum before exponentiating, so logits of 1e4 do not
overflow; their backward passes are written with the saved output (differentiable again).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import _scalar_like, as_tensor, constant, normalize_axes
from tinygrad_conv.ops.elementwise import exp, sigmoid
from tinygrad_conv.ops.movement import reshape
from tinygrad_conv.ops.reduce import mean, sum
from tinygrad_conv.tensor import Tensor


def _stable_log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    # the ufuncs' own reduce: np.max / np.sum add ~4 us of argument handling per call, which is
    # most of the time for a [64, 10] batch of logits
    shifted = a - np.maximum.reduce(a, axis=axis, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))


class LogSoftmax(Function):
    """z = a - logsumexp(a);  backward: g - softmax(a) * sum(g)  with softmax = exp(z)."""

    op_name = "log_softmax"
    vjp = {"x": "sub(g, mul(exp(out), sum(g)))"}

    @staticmethod
    def forward(ctx, a, *, axis):
        return _stable_log_softmax(a, axis)

    @staticmethod
    def backward(ctx, g):
        axis = ctx.attrs["axis"]
        return g - exp(ctx.output) * sum(g, axis, keepdims=True)


class Softmax(Function):
    """z = exp(a) / sum(exp(a));  backward: z * (g - sum(g * z))."""

    vjp = {"x": "mul(out, sub(g, sum(mul(g, out))))"}

    @staticmethod
    def forward(ctx, a, *, axis):
        return np.exp(_stable_log_softmax(a, axis))

    @staticmethod
    def backward(ctx, g):
        z = ctx.output
        return z * (g - sum(g * z, ctx.attrs["axis"], keepdims=True))


class Softplus(Function):
    """z = log(1 + e^a), computed as logaddexp(0, a) (no overflow);  dz/da = sigmoid(a).

    One node rather than ``relu(a) + log(1 + exp(-|a|))``: that composite is smooth, but autodiff
    of its pieces gives relu'(0) = |.|'(0) = 0, i.e. a gradient of 0 instead of 1/2 at a = 0.
    """

    vjp = {"x": "mul(g, sigmoid(x))"}

    @staticmethod
    def forward(ctx, a):
        return np.logaddexp(0, a)

    @staticmethod
    def backward(ctx, g):
        return g * sigmoid(ctx.inputs[0])


class CrossEntropy(Function):
    """Softmax cross-entropy of logits z [N, C] with integer labels [N], as ONE node (PyTorch's).

    loss_n = logsumexp(z_n) - z_n[y_n]; reduced by mean, sum or not at all.
    d loss_n / d z_n = softmax(z_n) - onehot(y_n), so backward is (softmax(z) - onehot) times
    the upstream gradient (divided by N for the mean): one ``cross_entropy_backward`` node, which
    is differentiable again. The labels are an input that takes no gradient (like PyTorch's
    target), so the node's arguments stay plain values.
    """

    op_name = "cross_entropy"
    input_names = ("logits", "labels")
    vjp = {"logits": "cross_entropy_backward(logits, g, labels)"}

    @staticmethod
    def forward(ctx, z, labels, *, reduction):
        picked = _stable_log_softmax(z, 1)[np.arange(z.shape[0]), labels]
        if reduction == "none":
            return -picked
        total = -np.sum(picked)
        if reduction == "sum":
            return total
        with np.errstate(invalid="ignore"):  # an empty batch's mean is NaN, as in PyTorch
            return total / z.shape[0]

    @staticmethod
    def backward(ctx, g):
        z, labels = ctx.inputs
        return (
            CrossEntropyBackward.apply(z, g, labels, reduction=ctx.attrs["reduction"]),
            None,
        )


class CrossEntropyBackward(Function):
    """dz = (softmax(z) - onehot(labels)) * s(dloss): the gradient of cross_entropy, as one node.

    s(dloss) = dloss / N for 'mean', dloss for 'sum', dloss[:, None] for 'none'. Its own backward
    is written in Tensor ops, so second derivatives still work: with p = softmax(z) and an
    upstream G,
        d/dz = p * (G s - sum_c(G s p))           (softmax's Jacobian applied to G s)
        d/d(dloss) = sum(G * (p - onehot)) / N, the plain sum, or the row sums for 'none',
    where p - onehot is this op itself with a unit upstream and reduction 'sum'.
    """

    op_name = "cross_entropy_backward"
    input_names = ("logits", "dloss", "labels")

    @staticmethod
    def forward(ctx, z, g, labels, *, reduction):
        n = z.shape[0]
        dz = np.exp(_stable_log_softmax(z, 1))
        dz[np.arange(n), labels] -= 1
        if reduction == "none":
            dz *= g.reshape(n, 1)
        else:
            dz *= g / max(n, 1) if reduction == "mean" else g
        return dz

    def declared_vjp(self) -> dict[str, str]:
        """The rule of this node's reduction ('mean': s = div(dloss, n))."""
        reduction = self.attrs["reduction"]
        scale = {"mean": "div(dloss, n)", "sum": "dloss", "none": "reshape(dloss)"}[reduction]
        gs = f"mul(g, {scale})"
        grad_z = f"mul(softmax(logits), sub({gs}, sum(mul({gs}, softmax(logits)))))"
        d = "mul(cross_entropy_backward(logits, 1, labels), g)"
        grad_g = {"mean": f"div(sum({d}), n)", "sum": f"sum({d})", "none": f"sum({d})"}
        return {"logits": grad_z, "dloss": grad_g[reduction]}

    @staticmethod
    def backward(ctx, big_g):
        z, g, labels = ctx.inputs
        reduction = ctx.attrs["reduction"]
        n = z.shape[0]
        gz = gg = None
        if ctx.needs_input_grad[0]:
            p = softmax(z, axis=1)
            if reduction == "none":
                scale = reshape(g, (n, 1))
            else:
                scale = g / max(n, 1) if reduction == "mean" else g
            gs = big_g * scale
            gz = p * (gs - sum(gs * p, 1, keepdims=True))
        if ctx.needs_input_grad[1]:
            one = _scalar_like(z, 1)
            # p - onehot: this op with a unit upstream, summed reduction
            d = CrossEntropyBackward.apply(z, one, labels, reduction="sum") * big_g
            if reduction == "none":
                gg = sum(d, 1)
            else:
                gg = sum(d) / max(n, 1) if reduction == "mean" else sum(d)
        return gz, gg, None


def _axis(op: str, a: Tensor, axis: int) -> int:
    return normalize_axes(op, axis, a.ndim)[0]


def softmax(a: Any, axis: int = -1) -> Tensor:
    """Softmax along ``axis``."""
    t = as_tensor(a)
    return Softmax.apply(t, axis=_axis("softmax", t, axis))


def log_softmax(a: Any, axis: int = -1) -> Tensor:
    """Log of the softmax along ``axis``, computed stably."""
    t = as_tensor(a)
    return LogSoftmax.apply(t, axis=_axis("log_softmax", t, axis))


def _reduce_loss(op: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(
    logits: Any,
    labels: Any,
    reduction: str = "mean",
    *,
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy with integer class labels (or class probabilities).

    Args:
        logits: [N, C] unnormalised scores.
        labels: [N] integer class indices in [0, C), or [N, C] class probabilities (float).
        reduction: 'mean' (default), 'sum' or 'none' (per-sample losses [N]).
        weight, ignore_index, label_smoothing: PyTorch's ``F.cross_entropy`` options; with any of
            them, or probability targets, this is ``tc.softmax_cross_entropy`` (several nodes);
            the plain case is one fused node whose backward is one ``cross_entropy_backward``.
    """
    y_probe = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    # float [N, C] targets are class probabilities (PyTorch's rule); float [N] labels stay an error
    probabilities = y_probe.dtype.kind == "f" and y_probe.ndim == 2
    if weight is not None or ignore_index is not None or label_smoothing or probabilities:
        from tinygrad_conv.ops.losses_extra import softmax_cross_entropy

        return softmax_cross_entropy(
            logits,
            labels,
            weight=weight,
            ignore_index=-100 if ignore_index is None else ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    z = as_tensor(logits)
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be [N, C], got shape {z.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {y.dtype}")
    if y.shape != (z.shape[0],):
        raise ValueError(
            f"cross_entropy: labels have shape {y.shape}, expected ({z.shape[0]},) for logits "
            f"of shape {z.shape}"
        )
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        bad = y[(y < 0) | (y >= z.shape[1])][0]
        raise ValueError(f"cross_entropy: label {bad} is out of range for {z.shape[1]} classes")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    # a copy: a data loader that reuses its label buffer must not change the gradient later
    return CrossEntropy.apply(z, constant(np.array(y, copy=True)), reduction=reduction)


def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error; ``prediction`` and ``target`` must have the same shape."""
    p, t = as_tensor(prediction), as_tensor(target)
    if p.shape != t.shape:
        raise ValueError(f"mse_loss: prediction {p.shape} and target {t.shape} differ in shape")
    d = p - t
    return _reduce_loss("mse_loss", d * d, reduction)


def binary_cross_entropy_with_logits(
    logits: Any,
    target: Any,
    reduction: str = "mean",
    *,
    weight: Any = None,
    pos_weight: Any = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula.

    loss = softplus(x) - x*y = log(1 + e^x) - x*y   (softplus never overflows; exact at x = 0)
    ``weight`` / ``pos_weight`` (PyTorch's options) route to ``tc.sigmoid_cross_entropy``.
    Shapes: logits and target alike, any shape.
    """
    if weight is not None or pos_weight is not None:
        from tinygrad_conv.ops.losses_extra import sigmoid_cross_entropy

        return sigmoid_cross_entropy(
            logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
        )
    x, y = as_tensor(logits), as_tensor(target)
    if x.shape != y.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: logits {x.shape} and target {y.shape} differ"
        )
    loss = Softplus.apply(x) - x * y
    return _reduce_loss("binary_cross_entropy_with_logits", loss, reduction)

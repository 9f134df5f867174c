"""Loss modules for the losses of ops/losses_extra.py (PyTorch's names where they do not clash
with nn/loss.py): NLLLoss, SoftmaxCrossEntropyLoss (class weights, ignore_index, label smoothing,
probability targets), BCELoss, SigmoidCrossEntropyLoss (weight, pos_weight), SmoothL1Loss,
HuberLoss, L1Loss, KLDivLoss. Class weights are buffers (saved in ``state_dict``, no gradient)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.nn.module import Module
from tinygrad_conv.ops import losses_extra as L
from tinygrad_conv.tensor import Tensor

__all__ = [
    "BCELoss", "HuberLoss", "KLDivLoss", "L1Loss", "NLLLoss", "SigmoidCrossEntropyLoss",
    "SmoothL1Loss", "SoftmaxCrossEntropyLoss",
]  # fmt: skip


class _Loss(Module):
    _reductions: tuple[str, ...] = ("mean", "sum", "none")

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in self._reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of "
                f"{', '.join(map(repr, self._reductions))}, got {reduction!r}"
            )
        self.reduction = reduction

    def _weight(self, name: str, value: Any) -> None:
        arr = None if value is None else np.array(getattr(value, "data", value), dtype=np.float64)
        self.register_buffer(name, arr)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class NLLLoss(_Loss):
    """Negative log-likelihood: log-probabilities [N, C], class indices [N]."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self._weight("weight", weight)
        self.ignore_index = int(ignore_index)

    def forward(self, log_probs: Any, target: Any) -> Tensor:
        """Loss of ``log_probs`` [N, C] against ``target`` [N]."""
        return L.nll_loss(log_probs, target, self.weight, self.ignore_index, self.reduction)


class SoftmaxCrossEntropyLoss(_Loss):
    """PyTorch's CrossEntropyLoss with weight, ignore_index, label_smoothing and probability
    targets: logits [N, C], target [N] int or [N, C] float."""

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self._weight("weight", weight)
        self.ignore_index = int(ignore_index)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"SoftmaxCrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing!r}"
            )
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: Any, target: Any) -> Tensor:
        """Loss of ``logits`` [N, C] against ``target``."""
        return L.softmax_cross_entropy(
            logits, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (PyTorch's clamped logs); ``weight`` broadcasts."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._weight("weight", weight)

    def forward(self, probs: Any, target: Any) -> Tensor:
        """Loss of ``probs`` against ``target`` (same shape)."""
        return L.binary_cross_entropy(probs, target, self.weight, self.reduction)


class SigmoidCrossEntropyLoss(_Loss):
    """PyTorch's BCEWithLogitsLoss with ``weight`` and ``pos_weight`` (one per class, last axis)."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None):
        super().__init__(reduction)
        self._weight("weight", weight)
        self._weight("pos_weight", pos_weight)

    def forward(self, logits: Any, target: Any) -> Tensor:
        """Loss of ``logits`` against ``target`` (same shape)."""
        return L.sigmoid_cross_entropy(logits, target, self.weight, self.pos_weight, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, linear above (PyTorch's SmoothL1Loss)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = float(beta)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        """Loss of ``input`` against ``target`` (same shape)."""
        return L.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, ``delta``-sloped linear above (PyTorch's HuberLoss)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = float(delta)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        """Loss of ``input`` against ``target`` (same shape)."""
        return L.huber_loss(input, target, self.reduction, self.delta)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        """Loss of ``input`` against ``target`` (same shape)."""
        return L.l1_loss(input, target, self.reduction)


class KLDivLoss(_Loss):
    """KL divergence of log-probability inputs from (log-)probability targets."""

    _reductions = ("mean", "sum", "none", "batchmean")

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = bool(log_target)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        """KL(target || exp(input)) pointwise, reduced."""
        return L.kl_div(input, target, self.reduction, self.log_target)

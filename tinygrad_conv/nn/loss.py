"""Loss modules wrapping ``tc.cross_entropy``, ``tc.mse_loss`` and
``tc.binary_cross_entropy_with_logits``; ``reduction`` is 'mean' (default), 'sum' or 'none'."""

from __future__ import annotations

from typing import Any

from tinygrad_conv.nn.module import Module
from tinygrad_conv.ops import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from tinygrad_conv.tensor import Tensor

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                f"got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy: logits [N, C] and integer labels [N] -> scalar (or [N] for 'none')."""

    def forward(self, logits: Any, labels: Any) -> Tensor:
        """Loss of ``logits`` [N, C] against class indices ``labels`` [N]."""
        return cross_entropy(logits, labels, self.reduction)


class MSELoss(_Loss):
    """Mean squared error: prediction and target of the same shape -> scalar (or that shape)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """Squared error of ``prediction`` against ``target``."""
        return mse_loss(prediction, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy, stable: logits and 0/1 (or soft) targets of one shape."""

    def forward(self, logits: Any, target: Any) -> Tensor:
        """Binary cross-entropy of ``sigmoid(logits)`` against ``target``."""
        return binary_cross_entropy_with_logits(logits, target, self.reduction)

"""``clone``: a copy of a tensor's values that stays in the graph (PyTorch's ``Tensor.clone``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import as_tensor
from tinygrad_conv.tensor import Tensor


class Clone(Function):
    """y = copy of x (its own memory); dy/dx is the identity, so the gradient passes unchanged."""

    op_name = "clone"
    vjp = {"x": "g"}

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True)

    @staticmethod
    def backward(ctx, g):
        return g


def clone(a: Any) -> Tensor:
    """A differentiable copy with its own memory. Shapes: ``a: [*]`` -> ``[*]`` (same dtype).

    Modifying the copy in place never changes ``a`` (use it before an in-place op on a tensor
    that a graph still needs).
    """
    return Clone.apply(as_tensor(a))

"""Matrix product with NumPy's ``matmul`` rules: 1-D operands, 2-D, and broadcast batch dims."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels.blas import gemm_threads
from tinygrad_conv.ops._util import as_tensor
from tinygrad_conv.ops.movement import reshape, swapaxes, unsqueeze
from tinygrad_conv.tensor import Tensor


class MatMul(Function):
    """z = a @ b;  dz/da = g @ b^T,  dz/db = a^T @ g (batch axes summed back by the engine).

    A 1-D ``a`` acts as a row [1,K] and a 1-D ``b`` as a column [K,1]; the extra axis is added to
    ``g`` for the products and removed again from the results.
    """

    op_name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        # multiply-adds: the result's size times the contracted length
        mnk = (
            int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])))
            if a.ndim > 2 or b.ndim > 2
            else 1
        )
        mnk *= (a.shape[-2] if a.ndim > 1 else 1) * a.shape[-1] * (b.shape[-1] if b.ndim > 1 else 1)
        # a vector operand makes it a GEMV, which OpenBLAS threads from a lower size
        gemv = a.ndim == 1 or b.ndim == 1 or a.shape[-2] == 1 or b.shape[-1] == 1
        with gemm_threads(mnk, gemv=gemv):
            return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        a2 = unsqueeze(a, 0) if a.ndim == 1 else a
        b2 = unsqueeze(b, -1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = unsqueeze(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = unsqueeze(g2, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g2 @ swapaxes(b2, -1, -2)
            if a.ndim == 1:  # [..., 1, K] -> [..., K]; leading batch axes are summed by the engine
                ga = reshape(ga, ga.shape[:-2] + ga.shape[-1:])
        if ctx.needs_input_grad[1]:
            gb = swapaxes(a2, -1, -2) @ g2
            if b.ndim == 1:  # [..., K, 1] -> [..., K]
                gb = reshape(gb, gb.shape[:-1])
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b with NumPy semantics. a: [..., M, K] or [K]; b: [..., K, N] or [K]."""
    ta, tb = as_tensor(a), as_tensor(b)
    if ta.ndim == 0 or tb.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got {ta.shape} and {tb.shape}")
    k_a = ta.shape[-1]
    k_b = tb.shape[0] if tb.ndim == 1 else tb.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: inner dimensions differ: {ta.shape} @ {tb.shape} ({k_a} != {k_b})"
        )
    if ta.ndim > 2 or tb.ndim > 2:
        try:
            np.broadcast_shapes(ta.shape[:-2], tb.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {ta.shape} and {tb.shape} cannot be broadcast"
            ) from None
    return MatMul.apply(ta, tb)

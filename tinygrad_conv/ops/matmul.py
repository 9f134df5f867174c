"""Matrix product with NumPy's ``matmul`` rules: 1-D operands, 2-D, and broadcast batch dims."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels.blas import gemm_threads
from tinygrad_conv.ops._util import as_tensor
from tinygrad_conv.ops.movement import reshape, unsqueeze
from tinygrad_conv.tensor import Tensor


class MatMul(Function):
    """z = op(a) @ op(b), op = swap of the last two axes where ``transpose_a`` / ``transpose_b``
    (tf.matmul's flags; the public ``matmul`` never sets them, backward does).

    Plain z = a @ b:  dz/da = g @ b^T,  dz/db = a^T @ g (batch axes summed back by the engine).
    The transposes are flags of the backward's own matmuls, not separate nodes: BLAS reads the
    transposed operand in place. A 1-D ``a`` acts as a row [1,K] and a 1-D ``b`` as a column
    [K,1]; the extra axis is added to ``g`` for the products and removed again from the results.
    """

    op_name = "matmul"

    @property
    def name(self) -> str:
        """ "matmul", or BLAS's "matmul_tn" / "matmul_nt" / "matmul_tt" when an operand is used
        transposed (so drawings of backward read right: the shapes shown are the inputs')."""
        ta, tb = self.attrs.get("transpose_a", False), self.attrs.get("transpose_b", False)
        return "matmul" if not (ta or tb) else f"matmul_{'nt'[ta]}{'nt'[tb]}"

    def declared_vjp(self) -> dict[str, str]:
        """The rule for 2-D operands with this node's transpose flags (1-D operands add an
        ``unsqueeze`` / ``reshape`` around it)."""
        ta, tb = self.attrs.get("transpose_a", False), self.attrs.get("transpose_b", False)

        def mm(x: str, y: str, flag_x: bool, flag_y: bool) -> str:
            name = "matmul" if not (flag_x or flag_y) else f"matmul_{'nt'[flag_x]}{'nt'[flag_y]}"
            return f"{name}({x}, {y})"

        ga = mm("g", "b", False, not tb) if not ta else mm("b", "g", tb, True)
        gb = mm("a", "g", not ta, False) if not tb else mm("g", "a", True, ta)
        return {"a": ga, "b": gb}

    @staticmethod
    def forward(ctx, a, b, *, transpose_a: bool = False, transpose_b: bool = False):
        if transpose_a:
            a = np.swapaxes(a, -1, -2)
        if transpose_b:
            b = np.swapaxes(b, -1, -2)
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
        # flags are only ever set (by this backward) on operands of 2 or more dims
        ta, tb = ctx.attrs.get("transpose_a", False), ctx.attrs.get("transpose_b", False)
        a2 = unsqueeze(a, 0) if a.ndim == 1 else a
        b2 = unsqueeze(b, -1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = unsqueeze(g2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            g2 = unsqueeze(g2, -1)
        # z = A @ B with A = op(a), B = op(b): dA = g @ B^T, dB = A^T @ g, and da = dA (or dA^T
        # where a was transposed); each case is one matmul with flags (as TF's MatMulGrad)
        mm = MatMul.apply
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = (
                mm(g2, b2, transpose_b=not tb)
                if not ta
                else mm(b2, g2, transpose_a=tb, transpose_b=True)
            )
            if a.ndim == 1:  # [..., 1, K] -> [..., K]; leading batch axes are summed by the engine
                ga = reshape(ga, ga.shape[:-2] + ga.shape[-1:])
        if ctx.needs_input_grad[1]:
            gb = (
                mm(a2, g2, transpose_a=not ta)
                if not tb
                else mm(g2, a2, transpose_a=True, transpose_b=ta)
            )
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

"""Reductions over axes: sum, mean, max, min, var, logsumexp (``axis`` int/tuple/None, ``keepdims``).

Backward of a reduction broadcasts the gradient back over the reduced axes: reshape it to the
``keepdims`` shape, then ``broadcast_to`` the input shape (both differentiable ops).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import as_tensor, constant, normalize_axes
from tinygrad_conv.tensor import Tensor


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _expand(g: Tensor, in_shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """Broadcast a reduced gradient back to ``in_shape``."""
    from tinygrad_conv.ops.movement import broadcast_to, reshape

    return broadcast_to(reshape(g, _kept_shape(in_shape, axes)), in_shape)


def _expand_rule(node: Function, g: str = "g") -> str:
    """The calls ``_expand`` makes for this node's shapes: a reshape unless ``keepdims`` (or no
    axis), a broadcast_to unless every reduced axis has length 1."""
    shape = node.input_edges()[0].shape
    axes, keepdims = node.attrs["axes"], node.attrs["keepdims"]
    text = g if keepdims or not axes else f"reshape({g})"
    if _kept_shape(shape, axes) != tuple(shape):
        text = f"broadcast_to({text})"
    return text


class _Reduction(Function):
    """A reduction whose backward starts with ``_expand(g)``: ``vjp`` is written for the common
    case (no keepdims, reduced axes longer than 1) and ``declared_vjp`` gives this node's calls."""

    def declared_vjp(self) -> dict[str, str] | None:
        """The class rule with ``broadcast_to(reshape(g))`` replaced by this node's calls."""
        rules = super().declared_vjp()
        if rules is None:
            return None
        expand = _expand_rule(self)
        return {k: v.replace("broadcast_to(reshape(g))", expand) for k, v in rules.items()}


class Sum(_Reduction):
    """z = sum of a over ``axes``; dz/da = 1 on every summed element."""

    vjp = {"x": "broadcast_to(reshape(g))"}

    @staticmethod
    def forward(ctx, a, *, axes, keepdims):
        return np.sum(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return _expand(g, ctx.inputs[0].shape, ctx.attrs["axes"])


class Mean(_Reduction):
    """z = mean of a over ``axes``; dz/da = 1/n (n: the number of elements averaged)."""

    vjp = {"x": "div(broadcast_to(reshape(g)), n)"}

    @staticmethod
    def forward(ctx, a, *, axes, keepdims):
        return np.mean(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        shape = ctx.inputs[0].shape
        axes = ctx.attrs["axes"]
        n = math.prod([shape[i] for i in axes]) if axes else 1
        return _expand(g, shape, axes) / n


class _Extremum(_Reduction):
    """max/min over ``axes``; the gradient goes to the extreme elements, shared equally by ties."""

    reducer: Any = None
    saved_names = ("share",)
    vjp = {"x": "mul(broadcast_to(reshape(g)), share)"}

    @classmethod
    def forward(cls, ctx, a, *, axes, keepdims):
        z = cls.reducer(a, axis=axes, keepdims=True)
        if ctx.needs_input_grad[0]:
            hit = a == z
            ctx.save_for_backward((hit / hit.sum(axis=axes, keepdims=True)).astype(a.dtype))
        return z if keepdims else z.reshape([s for i, s in enumerate(z.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        (share,) = ctx.saved_tensors
        return _expand(g, ctx.inputs[0].shape, ctx.attrs["axes"]) * constant(share)


class Max(_Extremum):
    """Maximum over axes."""

    reducer = staticmethod(np.max)


class Min(_Extremum):
    """Minimum over axes."""

    reducer = staticmethod(np.min)


class LogSumExp(_Reduction):
    """z = log(sum(exp(a))) = m + log(sum(exp(a - m))) with m = max(a): no overflow.

    dz/da = exp(a - z) (the softmax), written with ``ctx.output`` so it stays differentiable.
    """

    op_name = "logsumexp"
    vjp = {"x": "mul(broadcast_to(reshape(g)), exp(sub(x, reshape(out))))"}

    @staticmethod
    def forward(ctx, a, *, axes, keepdims):
        m = np.max(a, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf rows: avoid inf - inf
        z = m + np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True))
        return z if keepdims else np.squeeze(z, axis=axes)

    @staticmethod
    def backward(ctx, g):
        from tinygrad_conv.ops.elementwise import exp
        from tinygrad_conv.ops.movement import reshape

        a = ctx.inputs[0]
        axes = ctx.attrs["axes"]
        z = reshape(ctx.output, _kept_shape(a.shape, axes))
        return _expand(g, a.shape, axes) * exp(a - z)


def _reduce(cls: type[Function], name: str, a: Any, axis: Any, keepdims: bool) -> Tensor:
    t = as_tensor(a)
    axes = normalize_axes(name, axis, t.ndim)
    if t.ndim == 0:
        axes = ()  # axis 0 or -1 of a 0-d tensor (accepted, as in PyTorch) reduces nothing
    if t.size == 0 and cls in (Max, Min, LogSumExp):
        raise ValueError(f"{name}: cannot reduce an empty tensor of shape {t.shape}")
    return cls.apply(t, axes=axes, keepdims=bool(keepdims))


def sum(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple, or None for all)."""
    return _reduce(Sum, "sum", a, axis, keepdims)


def mean(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``."""
    return _reduce(Mean, "mean", a, axis, keepdims)


def max(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``."""
    return _reduce(Max, "max", a, axis, keepdims)


def min(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``."""
    return _reduce(Min, "min", a, axis, keepdims)


def logsumexp(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(a))) over ``axis``, stable for large inputs (logits of 1e4 are fine)."""
    return _reduce(LogSumExp, "logsumexp", a, axis, keepdims)


def var(
    a: Any, axis: int | Sequence[int] | None = None, ddof: int = 0, keepdims: bool = False
) -> Tensor:
    """Variance over ``axis``: sum((a - mean)^2) / (n - ddof), NumPy's convention (ddof=0)."""
    t = as_tensor(a)
    axes = normalize_axes("var", axis, t.ndim)
    if t.ndim == 0:
        axes = ()  # as in _reduce
    n = math.prod([t.shape[i] for i in axes]) if axes else 1
    if n - ddof <= 0:
        raise ValueError(f"var: {n} elements over axis {axis} with ddof={ddof} leave no degree")
    d = t - mean(t, axes, keepdims=True)
    return sum(d * d, axes, keepdims) / (n - ddof)

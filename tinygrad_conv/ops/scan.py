"""Reductions and scans beyond ops/reduce.py: prod, cumsum, cumprod, std, sort/topk (values and
indices), and the non-differentiable any, all, argmax, argmin.

Shapes: a reduction over ``axis`` (int, tuple or None for all) maps ``[*S]`` to ``S`` without the
reduced axes (kept as 1 with ``keepdims``); a scan along one ``axis`` keeps the shape.

prod's gradient is the product of the *other* elements, computed without dividing by zero. With
``zeros`` (a saved 0/1 mask of the zeros of x), ``nonzero`` its complement and ``lone_zero`` the
zeros that are alone in their slice:

    others = prod(x) / (x + zeros) * nonzero + prod(x * nonzero + zeros) * lone_zero

(``x + zeros`` replaces the zeros by 1; ``x * nonzero + zeros`` does too, and also does not
depend on x at the zeros). Both terms are Tensor expressions of x, so also the second derivative
is exact with no zero or with one zero per slice (prod(x) carries the derivative of the product
through the zero; the second prod is the product of the others at the zero). With two or more zeros in a slice every first derivative is 0 (exact) but the mixed second
derivatives between the zeros are reported as 0 rather than the product of the remaining ones.
cumprod divides by x too, so a cumprod over an axis holding a zero is computed instead as the
prod over a triangular mask (an [..., n, n] intermediate), which inherits prod's exactness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import as_tensor, constant, normalize_axes
from tinygrad_conv.ops.elementwise import sqrt, where
from tinygrad_conv.ops.indexing import Flip, gather, moveaxis
from tinygrad_conv.ops.movement import Reshape, broadcast_to, reshape
from tinygrad_conv.ops.reduce import var
from tinygrad_conv.tensor import Tensor


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Prod(Function):
    """z = product of x over ``axes``;  dz/dx_i = product of the other elements (see module)."""

    op_name = "prod"
    input_names = ("x",)
    saved_names = ("zeros", "nonzero", "lone_zero")
    vjp = {
        "x": "mul(reshape(g), add(mul(div(prod(x), add(x, zeros)), nonzero), "
        "mul(prod(add(mul(x, nonzero), zeros)), lone_zero)))"
    }

    @staticmethod
    def forward(ctx, a, *, axes, keepdims):
        if ctx.needs_input_grad[0]:
            zero = a == 0
            lone = zero & (zero.sum(axis=axes, keepdims=True) == 1)
            ctx.save_for_backward(*[m.astype(a.dtype) for m in (zero, ~zero, lone)])
        return np.prod(a, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        zeros, nonzero, lone = (constant(m) for m in ctx.saved_tensors)
        x = ctx.inputs[0]
        axes = ctx.attrs["axes"]
        kept = _kept_shape(x.shape, axes)
        return Reshape.apply(g, shape=kept) * (
            (Prod.apply(x, axes=axes, keepdims=True) / (x + zeros)) * nonzero
            + Prod.apply(x * nonzero + zeros, axes=axes, keepdims=True) * lone
        )


class CumSum(Function):
    """z_i = sum_{j <= i} x_j along ``axis``;  the adjoint is the reversed cumulative sum."""

    op_name = "cumsum"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "flip(cumsum(flip(g)))"}

    @staticmethod
    def forward(ctx, a, *, axis):
        return np.cumsum(a, axis=axis)

    @staticmethod
    def backward(ctx, g):
        ax = ctx.attrs["axis"]
        return Flip.apply(CumSum.apply(Flip.apply(g, axes=(ax,)), axis=ax), axes=(ax,))


class CumProd(Function):
    """z_i = prod_{j <= i} x_j along ``axis`` for x without zeros on the axis;
    dz/dx gives sum_{i >= k} g_i z_i / x_k = reversed-cumsum(g z) / x."""

    op_name = "cumprod"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "div(flip(cumsum(flip(mul(g, out)))), x)"}

    @staticmethod
    def forward(ctx, a, *, axis):
        return np.cumprod(a, axis=axis)

    @staticmethod
    def backward(ctx, g):
        ax = ctx.attrs["axis"]
        gz = Flip.apply(g * ctx.output, axes=(ax,))
        return Flip.apply(CumSum.apply(gz, axis=ax), axes=(ax,)) / ctx.inputs[0]


# -- public functions -----------------------------------------------------------------------------
def _axes(op: str, t: Tensor, axis: Any) -> tuple[int, ...]:
    axes = normalize_axes(op, axis, t.ndim)
    return () if t.ndim == 0 else axes


def _one_axis(op: str, t: Tensor, axis: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return normalize_axes(op, axis, t.ndim)[0]


def prod(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (int, tuple, None for all). ``[*S] -> S without the axes``."""
    t = as_tensor(a)
    return Prod.apply(t, axes=_axes("prod", t, axis), keepdims=bool(keepdims))


def cumsum(a: Any, axis: int = 0) -> Tensor:
    """Cumulative sum along ``axis`` (np.cumsum / torch.cumsum). ``[*S] -> [*S]``."""
    t = as_tensor(a)
    if t.ndim == 0:
        return reshape(t, ())
    return CumSum.apply(t, axis=_one_axis("cumsum", t, axis))


def cumprod(a: Any, axis: int = 0) -> Tensor:
    """Cumulative product along ``axis``. ``[*S] -> [*S]``; exact gradients also with zeros."""
    t = as_tensor(a)
    if t.ndim == 0:
        return reshape(t, ())
    ax = _one_axis("cumprod", t, axis)
    if not (t.requires_grad and (t.data == 0).any()):
        return CumProd.apply(t, axis=ax)
    # a zero on the axis: z_i = prod_k M[i, k] with M[i, k] = x_k for k <= i, else 1
    n = t.shape[ax]
    x = moveaxis(t, ax, -1)
    lower = np.tril(np.ones((n, n), dtype=bool))
    m = where(lower, broadcast_to(reshape(x, x.shape[:-1] + (1, n)), x.shape + (n,)), 1)
    return moveaxis(prod(m, -1), -1, ax)


def std(
    a: Any, axis: int | Sequence[int] | None = None, ddof: int = 0, keepdims: bool = False
) -> Tensor:
    """Standard deviation sqrt(var) with NumPy's ``ddof`` (0; PyTorch's default is 1).

    Where the variance is 0 (all values equal) the gradient is 0, as in PyTorch: sqrt's
    derivative there is infinite, and times var's zero gradient it would be NaN.
    """
    v = var(a, axis, ddof, keepdims)
    zero = v.data == 0
    if not zero.any():
        return sqrt(v)  # the common case: one node
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


def _nondiff_reduce(op: str, fn: Any, a: Any, axis: Any, keepdims: bool) -> Tensor:
    t = as_tensor(a)
    axes = _axes(op, t, axis)
    return constant(np.asarray(fn(t.data, axis=axes, keepdims=bool(keepdims))))


def any(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """True where any element over ``axis`` is nonzero (bool, no gradient)."""
    return _nondiff_reduce("any", np.any, a, axis, keepdims)


def all(a: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """True where every element over ``axis`` is nonzero (bool, no gradient)."""
    return _nondiff_reduce("all", np.all, a, axis, keepdims)


def _arg(op: str, fn: Any, a: Any, axis: int | None, keepdims: bool) -> Tensor:
    t = as_tensor(a)
    if t.size == 0:
        raise ValueError(f"{op}: cannot take the {op[3:]} of an empty tensor of shape {t.shape}")
    if axis is None:
        idx = np.asarray(fn(t.data.reshape(-1)))
        if keepdims:
            idx = idx.reshape((1,) * t.ndim)
        return constant(idx.astype(np.int64))
    ax = _one_axis(op, t, axis) if t.ndim else None
    if ax is None:
        return constant(np.asarray(0, dtype=np.int64))
    return constant(fn(t.data, axis=ax, keepdims=bool(keepdims)).astype(np.int64))


def argmax(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the (first) maximum along ``axis`` (None: of the flattened tensor); int64, no
    gradient."""
    return _arg("argmax", np.argmax, a, axis, keepdims)


def argmin(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the (first) minimum along ``axis``; int64, no gradient."""
    return _arg("argmin", np.argmin, a, axis, keepdims)


def sort(a: Any, axis: int = -1, descending: bool = False) -> tuple[Tensor, Tensor]:
    """(values, indices) sorted along ``axis`` (stable, like torch.sort(stable=True)).

    Values are a gather of ``a`` (differentiable: each gradient goes back to its element);
    indices are int64 without gradient.
    """
    t = as_tensor(a)
    if t.ndim == 0:
        return t, constant(np.asarray(0, dtype=np.int64))
    ax = _one_axis("sort", t, axis)
    key = t.data
    if descending:
        # a stable descending order: sort the reversed axis ascending by negated rank
        idx = np.flip(np.argsort(np.flip(key, ax), axis=ax, kind="stable"), ax)
        idx = t.shape[ax] - 1 - idx
    else:
        idx = np.argsort(key, axis=ax, kind="stable")
    idx = idx.astype(np.int64)
    return gather(t, ax, idx), constant(idx)


def topk(
    a: Any, k: int, axis: int = -1, largest: bool = True, sorted: bool = True
) -> tuple[Tensor, Tensor]:  # noqa: A002 - PyTorch's argument name
    """The ``k`` largest (or smallest) elements along ``axis``: (values, int64 indices).

    ``[..., n, ...] -> [..., k, ...]``; values are differentiable (a gather). The order is sorted
    (``sorted=False`` is accepted and returns them sorted too, which PyTorch allows).
    """
    t = as_tensor(a)
    ax = _one_axis("topk", t, axis) if t.ndim else 0
    n = t.shape[ax] if t.ndim else 1
    if not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k={k!r} is out of range for axis {axis} of length {n}")
    values, idx = sort(t, ax, descending=largest)
    if t.ndim == 0:
        return values, idx
    cut = (slice(None),) * ax + (slice(0, int(k)),)
    return values[cut], constant(idx.data[cut])


__all__ = [
    "all",
    "any",
    "argmax",
    "argmin",
    "cumprod",
    "cumsum",
    "prod",
    "sort",
    "std",
    "topk",
]

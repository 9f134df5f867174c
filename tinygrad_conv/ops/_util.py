"""Small helpers shared by the op families: operand conversion and axis normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import note_constant
from tinygrad_conv.tensor import Tensor

_PY_SCALARS = (bool, int, float)


def as_tensor(x: Any) -> Tensor:
    """Wrap arrays/scalars as constant Tensors; Tensors pass through."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _scalar_like(t: Tensor, s: bool | int | float) -> Tensor:
    """A 0-d constant for a Python scalar, in the dtype NumPy would give ``t op s``."""
    dt = t.data.dtype
    if dt.kind != "f" or isinstance(s, complex):
        dt = np.result_type(t.data, s)
    c = Tensor._from_op(np.asarray(s, dtype=dt), False)
    note_constant(c, s)  # inside a backward, the record names it by its value
    return c


def binary_operands(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Turn the operands of a binary op into Tensors, keeping NumPy's promotion rules.

    A Python scalar is "weak" in NumPy 2 (float32 * 2.0 stays float32), so it is converted to the
    dtype the result would have, rather than to a float64 array that would promote the result.
    """
    if isinstance(b, _PY_SCALARS) and isinstance(a, Tensor):
        return a, _scalar_like(a, b)
    if isinstance(a, _PY_SCALARS) and isinstance(b, Tensor):
        return _scalar_like(b, a), b
    ta, tb = as_tensor(a), as_tensor(b)
    if ta.data.shape == tb.data.shape:
        return ta, tb
    sa, sb = ta.data.shape, tb.data.shape
    for da, db in zip(reversed(sa), reversed(sb)):  # noqa: B905 - right-aligned, as NumPy
        if da != db and da != 1 and db != 1:
            raise ValueError(f"{op}: operands of shapes {sa} and {sb} cannot be broadcast together")
    return ta, tb


def normalize_axes(op: str, axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; ``None`` means all axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes: tuple = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be int or a tuple of ints, got {axis!r}")
    out = []
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise TypeError(f"{op}: axis must be int or a tuple of ints, got {axis!r}")
        # a 0-d tensor accepts axis 0 / -1 (as PyTorch does); the caller reduces nothing
        if not -max(ndim, 1) <= ax < max(ndim, 1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dims")
        out.append(int(ax) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def constant(array: np.ndarray) -> Tensor:
    """A constant (non-differentiable) Tensor around ``array``."""
    return Tensor._from_op(array, False)


# -- memo of geometry computations ----------------------------------------------------------------
_MEMO: dict[Any, Any] = {}
_MEMO_LIMIT = 4096


def _freeze(value: Any) -> Any:
    """A hashable, type-exact key for shapes/strides/padding arguments (lists become tuples).

    Scalars become ``(type, value)`` so that True / 1 / 1.0 stay distinct keys; a tuple of plain
    ints (a shape, the common case) is its own key: it cannot equal any other frozen form, whose
    tuples all contain a type object.
    """
    kind = type(value)
    if kind is tuple or kind is list:
        if kind is tuple and all(type(v) is int for v in value):
            return value
        return (kind, tuple([_freeze(v) for v in value]))
    hash(value)  # TypeError for anything unhashable: the caller then skips the memo
    return (kind, value)


def memoized(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` remembered by value: layers call the same geometry on every step.

    Only successful results are stored, so bad arguments raise their error every time. Types are
    part of the key, so e.g. ``strides=True`` (an error) never hits the entry of ``strides=1``.
    """
    try:
        key = (fn, _freeze(args))
    except TypeError:
        return fn(*args)
    result = _MEMO.get(key)
    if result is None:
        result = fn(*args)
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[key] = result
    return result

"""Ops that move or select data: reshape, transpose, broadcast, indexing, pad, concatenate, stack.

They come in adjoint pairs, which is what makes their backward passes one line each:
reshape <-> reshape, transpose <-> inverse transpose, broadcast_to <-> sum_to_shape,
getitem <-> scatter-add, pad <-> slice, concatenate <-> slices, stack <-> index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels.elementwise import sum_to_shape as _sum_to_shape
from tinygrad_conv.ops._util import as_tensor, normalize_axes
from tinygrad_conv.tensor import Tensor


class Reshape(Function):
    """Same elements, new shape."""

    vjp = {"x": "reshape(g)"}

    @staticmethod
    def forward(ctx, a, *, shape):
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.inputs[0].shape)


class Transpose(Function):
    """Permute axes; the gradient is permuted back by the inverse permutation."""

    vjp = {"x": "transpose(g)"}

    @staticmethod
    def forward(ctx, a, *, axes):
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        return transpose(g, tuple(np.argsort(ctx.attrs["axes"])))


class BroadcastTo(Function):
    """Broadcast to ``shape``; backward sums over the broadcast axes."""

    op_name = "broadcast_to"
    vjp = {"x": "sum_to_shape(g)"}

    @staticmethod
    def forward(ctx, a, *, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to_shape(g, ctx.inputs[0].shape)


class SumToShape(Function):
    """Sum a broadcast array back to ``shape`` (the adjoint of broadcast_to)."""

    op_name = "sum_to_shape"
    vjp = {"x": "broadcast_to(g)"}

    @staticmethod
    def forward(ctx, a, *, shape):
        return _sum_to_shape(a, shape)

    @staticmethod
    def backward(ctx, g):
        return broadcast_to(g, ctx.inputs[0].shape)


class GetItem(Function):
    """a[index] for basic and advanced (integer-array) indexing."""

    op_name = "getitem"
    vjp = {"x": "scatter_add(g)"}

    @staticmethod
    def forward(ctx, a, *, index):
        return a[index]

    @staticmethod
    def backward(ctx, g):
        return ScatterAdd.apply(g, index=ctx.attrs["index"], shape=ctx.inputs[0].shape)


class ScatterAdd(Function):
    """zeros(shape) with ``g`` added at ``index`` (repeated indices add up): adjoint of getitem."""

    op_name = "scatter_add"
    vjp = {"x": "getitem(g)"}

    @staticmethod
    def forward(ctx, g, *, index, shape):
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic_index(index):
            out[index] += g  # a basic index selects each element at most once: no collisions
        else:
            np.add.at(out, index, g)  # repeated integer indices must add up
        return out

    @staticmethod
    def backward(ctx, gg):
        return GetItem.apply(gg, index=ctx.attrs["index"])


def _is_basic_index(index: Any) -> bool:
    """True for indices made only of slices, ints, None and Ellipsis (no arrays)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (slice, int, np.integer)) or i is None or i is Ellipsis for i in items)


class Pad(Function):
    """Constant padding; the gradient is the un-padded slice."""

    vjp = {"x": "getitem(g)"}

    @staticmethod
    def forward(ctx, a, *, pad_width, value):
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        index = tuple(
            slice(lo, lo + n)
            for (lo, _), n in zip(ctx.attrs["pad_width"], ctx.inputs[0].shape, strict=True)
        )
        return GetItem.apply(g, index=index)


class Concatenate(Function):
    """Join tensors along ``axis``; each input's gradient is its slice of g."""

    input_names = ("x*",)
    vjp = {"*": "getitem(g)"}

    @staticmethod
    def forward(ctx, *arrays, axis):
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        axis = ctx.attrs["axis"]
        out, start = [], 0
        for t in ctx.inputs:
            n = t.shape[axis]
            index = (slice(None),) * axis + (slice(start, start + n),)
            out.append(GetItem.apply(g, index=index))
            start += n
        return tuple(out)


class Stack(Function):
    """Stack equal-shaped tensors along a new ``axis``; gradient i is g indexed at i."""

    input_names = ("x*",)
    vjp = {"*": "getitem(g)"}

    @staticmethod
    def forward(ctx, *arrays, axis):
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        axis = ctx.attrs["axis"]
        return tuple(
            GetItem.apply(g, index=(slice(None),) * axis + (i,)) for i in range(len(ctx.inputs))
        )


# -- public functions -----------------------------------------------------------------------------
def reshape(a: Any, shape: int | Sequence[int]) -> Tensor:
    """Give ``a`` a new shape with the same number of elements (one entry may be -1)."""
    t = as_tensor(a)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape == t.shape:
        return t
    known = math.prod([s for s in shape if s != -1])  # (np.prod on a list: ~8 us more)
    ok = shape.count(-1) <= 1 and all(s >= -1 for s in shape)
    ok = ok and (known == t.size if -1 not in shape else known > 0 and t.size % known == 0)
    if not ok:
        why = (
            "only one size may be -1"
            if shape.count(-1) > 1
            else "sizes must be >= 1, or -1 once"
            if any(s < -1 for s in shape)
            else f"{t.size} elements cannot fill {known} x an unknown size"
            if -1 in shape
            else f"{t.size} elements vs {known}"
        )
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {t.shape} into {shape} ({why})"
        )
    return Reshape.apply(t, shape=shape)


def transpose(a: Any, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes NumPy-style; ``axes=None`` reverses them."""
    t = as_tensor(a)
    if axes is None:
        axes = tuple(reversed(range(t.ndim)))
    axes = tuple(int(x) % max(t.ndim, 1) if -t.ndim <= x < t.ndim else x for x in axes)
    if sorted(axes) != list(range(t.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of a {t.ndim}-d tensor")
    if axes == tuple(range(t.ndim)):
        return t
    return Transpose.apply(t, axes=axes)


def permute(a: Any, axes: Sequence[int]) -> Tensor:
    """Permute axes (PyTorch's name for ``transpose`` with explicit ``axes``)."""
    return transpose(a, axes)


def swapaxes(a: Any, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    t = as_tensor(a)
    (a1,), (a2,) = (
        normalize_axes("swapaxes", axis1, t.ndim),
        normalize_axes("swapaxes", axis2, t.ndim),
    )
    axes = list(range(t.ndim))
    axes[a1], axes[a2] = axes[a2], axes[a1]
    return transpose(t, axes)


def broadcast_to(a: Any, shape: Sequence[int]) -> Tensor:
    """Broadcast to ``shape`` with NumPy's rules (differentiable: backward sums)."""
    t = as_tensor(a)
    shape = tuple(int(s) for s in shape)
    if shape == t.shape:
        return t
    try:
        if np.broadcast_shapes(t.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {t.shape} to {shape}") from None
    return BroadcastTo.apply(t, shape=shape)


def sum_to_shape(a: Any, shape: Sequence[int]) -> Tensor:
    """Sum a tensor down to ``shape`` (the inverse of broadcasting); used by the engine."""
    t = as_tensor(a)
    shape = tuple(shape)
    if shape == t.shape:
        return t
    return SumToShape.apply(t, shape=shape)


def flatten(a: Any, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes ``start_axis..end_axis`` (inclusive) into one."""
    t = as_tensor(a)
    if t.ndim == 0:
        return reshape(t, (1,))
    s, e = (
        normalize_axes("flatten", start_axis, t.ndim)[0],
        normalize_axes("flatten", end_axis, t.ndim)[0],
    )
    if s > e:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    return reshape(t, t.shape[:s] + (-1 if t.size else 0,) + t.shape[e + 1 :])


def squeeze(a: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove length-1 axes (all, or those named in ``axis``; naming a longer axis is an error)."""
    t = as_tensor(a)
    if axis is None:
        axes = tuple(i for i, s in enumerate(t.shape) if s == 1)
    else:
        axes = normalize_axes("squeeze", axis, t.ndim)
        if t.ndim == 0:
            axes = ()  # axis 0 of a 0-d tensor: nothing to remove (as in PyTorch)
        for ax in axes:
            if t.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} has length {t.shape[ax]} (shape {t.shape})")
    return reshape(t, tuple(s for i, s in enumerate(t.shape) if i not in axes))


def unsqueeze(a: Any, axis: int) -> Tensor:
    """Insert a length-1 axis at position ``axis`` (negative counts from the end of the result)."""
    t = as_tensor(a)
    (ax,) = normalize_axes("unsqueeze", axis, t.ndim + 1)
    return reshape(t, t.shape[:ax] + (1,) + t.shape[ax:])


def _normalize_index(t: Tensor, index: Any) -> Any:
    """Convert Tensors/lists inside an index to arrays and check integer arrays are in range."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, (list, np.ndarray)):
            item = np.array(item)  # a private copy: backward must not see later in-place edits
            if item.size == 0 and item.dtype.kind == "f":
                item = item.astype(np.intp)  # x[[]] selects nothing, as in NumPy
        if isinstance(item, np.ndarray) and item.dtype.kind not in "iub":
            raise TypeError(f"getitem: index arrays must be integer or boolean, got {item.dtype}")
        out.append(item)
    return tuple(out) if isinstance(index, tuple) or len(out) != 1 else out[0]


def getitem(a: Any, index: Any) -> Tensor:
    """``a[index]`` (slices, ints, None, Ellipsis, integer or boolean arrays)."""
    t = as_tensor(a)
    index = _normalize_index(t, index)
    try:
        t.data[index]  # validate cheaply before recording (numpy raises on bad indices)
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for shape {t.shape}: {e}") from None
    return GetItem.apply(t, index=index)


def pad(
    a: Any,
    pad_width: int | Sequence[int] | Sequence[Sequence[int]],
    value: float = 0.0,
    mode: str = "constant",
) -> Tensor:
    """Padding with NumPy's ``pad_width`` forms (int, (lo, hi), or one pair per axis).

    ``mode``: 'constant' (with ``value``; one node whose gradient is the un-padded slice), or
    'reflect', 'replicate' / 'edge', 'circular' / 'wrap', 'symmetric' (``tc.pad_mode``).
    Shapes: ``a: [s_0, ...] -> [s_0 + lo_0 + hi_0, ...]``.
    """
    if mode != "constant":
        from tinygrad_conv.ops.indexing import pad_mode

        return pad_mode(a, pad_width, mode, value)
    t = as_tensor(a)
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (t.ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit a tensor of shape {t.shape}"
        ) from None
    if (widths < 0).any():
        raise ValueError(f"pad: negative pad_width {pad_width!r}")
    pw = tuple((int(lo), int(hi)) for lo, hi in widths)
    return Pad.apply(t, pad_width=pw, value=value)


def _join_check(
    op: str, tensors: Sequence[Any], axis: int, new_axis: bool
) -> tuple[list[Tensor], int]:
    ts = [as_tensor(x) for x in tensors]
    if not ts:
        raise ValueError(f"{op}: needs at least one tensor")
    ndim = ts[0].ndim + (1 if new_axis else 0)
    if ndim == 0:
        raise ValueError(
            f"{op}: zero-dimensional tensors (shape ()) cannot be concatenated; use tc.stack to "
            "make a new axis"
        )
    (ax,) = normalize_axes(op, axis, ndim)
    ref = ts[0].shape
    for i, t in enumerate(ts):
        same = (
            t.shape == ref
            if new_axis
            else (
                t.ndim == len(ref)
                and all(
                    s == r for j, (s, r) in enumerate(zip(t.shape, ref, strict=False)) if j != ax
                )
            )
        )
        if not same:
            raise ValueError(
                f"{op}: tensor {i} has shape {t.shape}, incompatible with {ref} (axis={axis})"
            )
    return ts, ax


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing ``axis``."""
    ts, ax = _join_check("concatenate", tensors, axis, new_axis=False)
    return Concatenate.apply(*ts, axis=ax)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Stack equal-shaped tensors along a new ``axis``."""
    ts, ax = _join_check("stack", tensors, axis, new_axis=True)
    return Stack.apply(*ts, axis=ax)

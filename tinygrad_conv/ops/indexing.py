"""Movement and indexing ops: flip, roll, tile/repeat/repeat_interleave, split/chunk, tril/triu,
diag, moveaxis, einsum/tensordot/outer, padding modes (reflect, replicate, circular, symmetric),
gather/scatter_add, masked_fill, one_hot.

Like ops/movement.py these come in adjoint pairs, which is what keeps their backward passes short:
flip <-> flip, roll by s <-> roll by -s, gather <-> scatter_add_along, einsum <-> einsum. The rest
are compositions of differentiable ops (getitem, reshape, broadcast_to, where, pad), so they need
no backward of their own: tile is a reshape + broadcast_to + reshape, a padding mode is an
integer-array getitem (whose adjoint adds the repeated border values back), split is slices.

Shapes are given on each function; axes follow NumPy (negative counts from the end) and an axis out
of range raises a ValueError naming the op, the axis and the tensor's number of dims.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.ops._util import as_tensor, constant, normalize_axes
from tinygrad_conv.ops.elementwise import where
from tinygrad_conv.ops.movement import broadcast_to, getitem, pad, reshape, transpose
from tinygrad_conv.tensor import Tensor


class Flip(Function):
    """z = a reversed along ``axes``; its own adjoint."""

    op_name = "flip"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "flip(g)"}

    @staticmethod
    def forward(ctx, a, *, axes):
        return np.flip(a, axes)

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, axes=ctx.attrs["axes"])


class Roll(Function):
    """z = a rolled by ``shifts`` along ``axes`` (None: the flattened array); adjoint: roll back."""

    op_name = "roll"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "roll(g)"}

    @staticmethod
    def forward(ctx, a, *, shifts, axes):
        return np.roll(a, shifts, axes)

    @staticmethod
    def backward(ctx, g):
        shifts = ctx.attrs["shifts"]
        back = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return Roll.apply(g, shifts=back, axes=ctx.attrs["axes"])


def _along_axis_flat(index: np.ndarray, axis: int, shape: tuple[int, ...]) -> np.ndarray:
    """Flat positions in an array of ``shape`` of ``take_along_axis(., index, axis)``'s elements."""
    grids = list(np.ix_(*[np.arange(n) for n in index.shape]))
    grids[axis] = index
    return np.ravel_multi_index(tuple(grids), shape)


class Gather(Function):
    """z[..., i, ...] = a[..., index[..., i, ...], ...] along ``axis`` (torch.gather,
    np.take_along_axis); the adjoint adds g back at the gathered positions."""

    op_name = "gather"
    input_names = ("x",)
    saved_names = ()
    vjp = {"x": "scatter_add_along(g)"}

    @staticmethod
    def forward(ctx, a, *, axis, index):
        # an index shorter than a off the axis reads a's leading part there (PyTorch's rule)
        cut = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))
        return np.take_along_axis(a[cut], index, axis)

    @staticmethod
    def backward(ctx, g):
        a = ctx.attrs
        return ScatterAddAlong.apply(g, axis=a["axis"], index=a["index"], shape=ctx.inputs[0].shape)


class ScatterAddAlong(Function):
    """zeros(shape) with src added at ``index`` along ``axis`` (repeats add up); adjoint: gather."""

    op_name = "scatter_add_along"
    input_names = ("src",)
    saved_names = ()
    vjp = {"src": "gather(g)"}

    @staticmethod
    def forward(ctx, src, *, axis, index, shape):
        flat = _along_axis_flat(index, axis, shape)
        size = math.prod(shape)
        # bincount sums repeated positions in one pass (np.add.at is ~10x slower)
        if src.dtype.kind == "f" and src.dtype.itemsize <= 8:
            out = np.bincount(flat.ravel(), weights=src.ravel(), minlength=size)
            return out.astype(src.dtype, copy=False).reshape(shape)
        out = np.zeros(size, dtype=src.dtype)
        np.add.at(out, flat.ravel(), src.ravel())
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, gg):
        a = ctx.attrs
        return Gather.apply(gg, axis=a["axis"], index=a["index"])


class Einsum(Function):
    """z = einsum(subscripts, *operands); the gradient of operand i is an einsum of g with the
    others, then broadcast over labels only operand i has, then placed on the diagonal for labels
    it repeats (``'ii->'``)."""

    op_name = "einsum"
    input_names = ("x*",)
    saved_names = ()
    vjp = {"*": "einsum(g, *)"}

    def declared_vjp(self) -> dict[str, str]:
        """This node's rule per operand: the einsum of g with the other operands, then the
        reshape/broadcast and diagonal steps it needs (see ``_einsum_grad``)."""
        labels = self.input_labels()
        ins, out = self.attrs["ins"], self.attrs["out"]
        return {labels[i]: _einsum_grad_rule(labels, ins, out, i) for i in range(len(labels))}

    @staticmethod
    def forward(ctx, *arrays, ins, out):
        return np.einsum(",".join(ins) + "->" + out, *arrays, optimize=len(arrays) > 2)

    @staticmethod
    def backward(ctx, g):
        ins, out = ctx.attrs["ins"], ctx.attrs["out"]
        inputs = ctx.inputs
        grads = []
        for i in range(len(ins)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            grads.append(_einsum_grad(g, inputs, ins, out, i))
        return tuple(grads)


def _einsum_grad(
    g: Tensor, inputs: Sequence[Tensor], ins: Sequence[str], out: str, i: int
) -> Tensor:
    sub = ins[i]
    sizes = dict(zip(sub, inputs[i].shape, strict=True))
    unique, kept = _einsum_grad_plan(ins, out, i)
    others = [(s, t) for j, (s, t) in enumerate(zip(ins, inputs, strict=True)) if j != i]
    operands = [g] + [t for _, t in others]
    subs = [out] + [s for s, _ in others]
    grad = Einsum.apply(*operands, ins=tuple(subs), out=kept)
    if kept != unique:  # labels summed inside operand i alone: d/dx of a sum is 1 everywhere
        shape = [sizes[c] if c in kept else 1 for c in unique]
        grad = broadcast_to(
            reshape(grad, shape),
            [sizes[c] for c in unique],
        )
    if unique != sub:  # repeated labels: the gradient lives on the diagonal
        free = iter(c for c in string.ascii_letters if c not in sub + out)
        placed, eyes, eye_subs = [], [], []
        for c in sub:
            if c in placed:
                new = next(free)
                eyes.append(constant(np.eye(sizes[c], dtype=g.dtype)))
                eye_subs.append(c + new)
                placed.append(new)
            else:
                placed.append(c)
        grad = Einsum.apply(grad, *eyes, ins=(unique, *eye_subs), out="".join(placed))
    return grad


def _einsum_grad_plan(ins: Sequence[str], out: str, i: int) -> tuple[str, str]:
    """(labels of operand i in first-appearance order, those the first einsum can produce)."""
    unique = "".join(dict.fromkeys(ins[i]))
    present = set(out).union(*[set(s) for j, s in enumerate(ins) if j != i])
    return unique, "".join(c for c in unique if c in present)


def _einsum_grad_rule(labels: Sequence[str], ins: Sequence[str], out: str, i: int) -> str:
    unique, kept = _einsum_grad_plan(ins, out, i)
    diagonal = unique != ins[i]
    rule = f"einsum(g, {', '.join(lab for j, lab in enumerate(labels) if j != i)})".replace(
        ", )", ")"
    )
    if kept != unique:
        rule = f"broadcast_to(reshape({rule}))"
    if diagonal:
        eyes = ", ".join(["(numpy, not recorded)"] * (len(ins[i]) - len(unique)))
        rule = f"einsum({rule}, {eyes})"
    return rule


# -- public functions -----------------------------------------------------------------------------
def _axis(op: str, axis: Any, ndim: int) -> int:
    return normalize_axes(op, axis, ndim)[0]


def flip(a: Any, axis: int | Sequence[int] | None = None) -> Tensor:
    """Reverse the order of elements along ``axis`` (all axes when None). ``[*S] -> [*S]``."""
    t = as_tensor(a)
    axes = normalize_axes("flip", axis, t.ndim)
    if not axes or t.ndim == 0:
        return t
    return Flip.apply(t, axes=axes)


def roll(a: Any, shifts: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
    """Shift elements cyclically by ``shifts`` along ``axis`` (None: the flattened tensor, as
    np.roll / torch.roll). ``[*S] -> [*S]``."""
    t = as_tensor(a)
    if axis is None:
        if not isinstance(shifts, (int, np.integer)):
            raise TypeError(f"roll: with axis=None, shifts must be one int, got {shifts!r}")
        return Roll.apply(t, shifts=int(shifts), axes=None)
    one = isinstance(axis, (int, np.integer))
    axes = (axis,) if one else tuple(axis)
    sh = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if len(sh) != len(axes):
        raise ValueError(f"roll: {len(sh)} shifts {shifts!r} for {len(axes)} axes {axis!r}")
    norm = tuple(_axis("roll", ax, t.ndim) for ax in axes)
    return Roll.apply(t, shifts=tuple(int(s) for s in sh), axes=norm)


def tile(a: Any, reps: int | Sequence[int]) -> Tensor:
    """Repeat the whole tensor ``reps`` times per axis (np.tile; PyTorch's ``Tensor.repeat``).

    ``a: [s_0..s_k]``, ``reps: [r_0..r_m]`` -> ``[r_0 s_0, ...]`` after padding the shorter of the
    two with leading 1s. Composite: reshape to ``[1, s_0, 1, s_1, ...]``, broadcast_to
    ``[r_0, s_0, ...]``, reshape; the backward sums the copies.
    """
    t = as_tensor(a)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if any(not isinstance(r, (int, np.integer)) or r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative ints, got {reps!r}")
    d = max(len(reps), t.ndim)
    reps = (1,) * (d - len(reps)) + tuple(int(r) for r in reps)
    shape = (1,) * (d - t.ndim) + t.shape
    inter = [x for s in shape for x in (1, s)]
    big = [x for r, s in zip(reps, shape, strict=True) for x in (r, s)]
    out = [r * s for r, s in zip(reps, shape, strict=True)]
    return reshape(broadcast_to(reshape(t, inter), big), out)


def repeat(a: Any, *sizes: int | Sequence[int]) -> Tensor:
    """PyTorch's ``Tensor.repeat(*sizes)``: np.tile with at least as many sizes as dims.

    For NumPy's ``np.repeat`` (each element repeated) see :func:`repeat_interleave`.
    """
    t = as_tensor(a)
    reps = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    if len(reps) < t.ndim:
        raise ValueError(
            f"repeat: {len(reps)} sizes {tuple(reps)} for a tensor with {t.ndim} dims "
            f"(shape {t.shape}); give at least {t.ndim}"
        )
    return tile(t, reps)  # type: ignore[arg-type]


def repeat_interleave(
    a: Any, repeats: int | Sequence[int] | np.ndarray, axis: int | None = None
) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (np.repeat, torch.repeat_interleave).

    ``axis=None`` works on the flattened tensor. An int ``repeats`` is a broadcast + reshape; a
    sequence (one count per element along the axis) is an integer-array getitem.
    """
    t = as_tensor(a)
    if axis is None:
        t = reshape(t, (-1,) if t.size else (0,))
        axis = 0
    ax = _axis("repeat_interleave", axis, t.ndim)
    n = t.shape[ax]
    if isinstance(repeats, (int, np.integer)):
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats must be >= 0, got {repeats}")
        r = int(repeats)
        expanded = reshape(t, t.shape[: ax + 1] + (1,) + t.shape[ax + 1 :])
        big = broadcast_to(expanded, t.shape[: ax + 1] + (r,) + t.shape[ax + 1 :])
        return reshape(big, t.shape[:ax] + (n * r,) + t.shape[ax + 1 :])
    reps = np.asarray(repeats.data if isinstance(repeats, Tensor) else repeats)
    if reps.dtype.kind not in "iu" or reps.shape != (n,) or (reps < 0).any():
        raise ValueError(
            f"repeat_interleave: repeats must be {n} non-negative ints (one per element along "
            f"axis {axis}), got {reps.tolist()!r}"
        )
    index = (slice(None),) * ax + (np.repeat(np.arange(n), reps),)
    return getitem(t, index)


def split(a: Any, split_size_or_sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
    """Split along ``axis`` like torch.split: an int gives pieces of that size (the last may be
    smaller); a sequence gives pieces of those sizes, which must add up to the axis length."""
    t = as_tensor(a)
    ax = _axis("split", axis, t.ndim)
    n = t.shape[ax]
    s = split_size_or_sections
    if isinstance(s, (int, np.integer)):
        if s <= 0:
            raise ValueError(f"split: split size must be positive, got {s}")
        sizes = [int(s)] * (n // s) + ([n % s] if n % s else [])
        if n == 0:
            sizes = [0]
    else:
        sizes = [int(x) for x in s]
        if any(x < 0 for x in sizes) or sum(sizes) != n:
            raise ValueError(
                f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} of shape "
                f"{t.shape} has length {n}"
            )
    out, start = [], 0
    for size in sizes:
        index = (slice(None),) * ax + (slice(start, start + size),)
        out.append(getitem(t, index))
        start += size
    return tuple(out)


def chunk(a: Any, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` pieces of ceil(n / chunks) along ``axis`` (torch.chunk: may return
    fewer pieces when the length does not divide)."""
    t = as_tensor(a)
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = t.shape[_axis("chunk", axis, t.ndim)]
    return split(t, max(-(-n // chunks), 1), axis)


def _tri_mask(op: str, t: Tensor, k: int, lower: bool) -> np.ndarray:
    if t.ndim < 2:
        raise ValueError(f"{op}: needs a tensor with at least 2 dims, got shape {t.shape}")
    rows, cols = t.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    return (j - i <= k) if lower else (j - i >= k)


def tril(a: Any, k: int = 0) -> Tensor:
    """Zero the elements above the k-th diagonal of the last two axes. ``[..., M, N]``."""
    t = as_tensor(a)
    return where(_tri_mask("tril", t, int(k), True), t, 0)


def triu(a: Any, k: int = 0) -> Tensor:
    """Zero the elements below the k-th diagonal of the last two axes. ``[..., M, N]``."""
    t = as_tensor(a)
    return where(_tri_mask("triu", t, int(k), False), t, 0)


def diag(a: Any, k: int = 0) -> Tensor:
    """``[n] -> [n+|k|, n+|k|]`` with ``a`` on the k-th diagonal, or ``[M, N] -> [d]`` the k-th
    diagonal (np.diag / torch.diag)."""
    t = as_tensor(a)
    k = int(k)
    if t.ndim == 1:
        n = t.shape[0]
        m = n + abs(k)
        w = pad(t, [(k, 0)] if k >= 0 else [(0, -k)])  # w[j] = the value of column j
        i = np.arange(m)[:, None]
        j = np.arange(m)[None, :]
        return where(j - i == k, broadcast_to(reshape(w, (1, m)), (m, m)), 0)
    if t.ndim == 2:
        rows, cols = t.shape
        r0, c0 = (0, k) if k >= 0 else (-k, 0)
        d = max(min(rows - r0, cols - c0), 0)
        return getitem(t, (np.arange(r0, r0 + d), np.arange(c0, c0 + d)))
    raise ValueError(f"diag: needs a 1-D or 2-D tensor, got shape {t.shape}")


def moveaxis(a: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """Move axes to new positions, the others keeping their order (np.moveaxis / torch.movedim)."""
    t = as_tensor(a)
    src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(
            f"moveaxis: {len(src)} source axes {src} but {len(dst)} destinations {dst}"
        )
    s = [_axis("moveaxis", x, t.ndim) for x in src]
    d = [_axis("moveaxis", x, t.ndim) for x in dst]
    if len(set(s)) != len(s) or len(set(d)) != len(d):
        raise ValueError(f"moveaxis: repeated axis in source {src} or destination {dst}")
    order = [i for i in range(t.ndim) if i not in s]
    for dest, srcax in sorted(zip(d, s, strict=True)):
        order.insert(dest, srcax)
    return transpose(t, order)


def _parse_einsum(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[tuple[str, ...], str]:
    """Explicit subscripts (no '...', output given) checked against the operands' shapes."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
    else:
        lhs = spec
        out = None
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(ins)} operands, got {len(shapes)}"
        )
    if "..." in spec:
        ins, out = _expand_ellipsis(subscripts, ins, out, shapes)
    letters = set(string.ascii_letters)
    sizes: dict[str, int] = {}
    for k, (sub, shape) in enumerate(zip(ins, shapes, strict=True)):
        if not set(sub) <= letters:
            raise ValueError(f"einsum: subscripts {subscripts!r} may use only letters and '...'")
        if len(sub) != len(shape):
            raise ValueError(
                f"einsum: operand {k} has {len(shape)} dims (shape {shape}) but subscripts "
                f"{sub!r} name {len(sub)}"
            )
        for c, n in zip(sub, shape, strict=True):
            if sizes.setdefault(c, n) != n:
                raise ValueError(
                    f"einsum: label {c!r} has size {sizes[c]} and {n} in {subscripts!r} "
                    f"(shapes {shapes})"
                )
    if out is None:  # implicit mode: labels seen once, alphabetical
        counts = {c: "".join(ins).count(c) for c in sizes}
        out = "".join(sorted(c for c, n in counts.items() if n == 1))
    if not set(out) <= set(sizes) or len(set(out)) != len(out):
        raise ValueError(
            f"einsum: output {out!r} of {subscripts!r} must name distinct labels of the inputs"
        )
    return tuple(ins), out


def _expand_ellipsis(
    subscripts: str, ins: list[str], out: str | None, shapes: list[tuple[int, ...]]
) -> tuple[list[str], str | None]:
    used = set(subscripts)
    free = [c for c in string.ascii_letters if c not in used]
    nell = max(
        [len(s) - (len(sub) - 3) for sub, s in zip(ins, shapes, strict=True) if "..." in sub],
        default=0,
    )
    if nell < 0 or len(free) < nell:
        raise ValueError(f"einsum: '...' in {subscripts!r} does not fit shapes {shapes}")
    ell = "".join(free[:nell])
    new = []
    for sub, s in zip(ins, shapes, strict=True):
        if "..." in sub:
            k = len(s) - (len(sub) - 3)
            if k < 0:
                raise ValueError(f"einsum: operand of shape {s} is too short for {sub!r}")
            sub = sub.replace("...", ell[nell - k :])
        new.append(sub)
    if out is not None:
        out = out.replace("...", ell)
    else:
        counts = {c: "".join(new).count(c) for c in set("".join(new)) if c not in ell}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    return new, out


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation (np.einsum / torch.einsum), differentiable in every operand.

    ``'...'`` broadcasts leading axes of equal size; the implicit form (no ``->``) sums labels that
    appear twice. Subscripts that do not match the operands raise a ValueError naming them.
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string, got {type(subscripts).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    ts = [as_tensor(x) for x in operands]
    ins, out = _parse_einsum(subscripts, [t.shape for t in ts])
    return Einsum.apply(*ts, ins=ins, out=out)


def tensordot(a: Any, b: Any, axes: int | Sequence[Any] = 2) -> Tensor:
    """np.tensordot / torch.tensordot: contract the last ``axes`` axes of ``a`` with the first of
    ``b``, or the listed pairs ``([a axes], [b axes])`` (an einsum)."""
    ta, tb = as_tensor(a), as_tensor(b)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(ta.ndim, tb.ndim):
            raise ValueError(f"tensordot: axes={axes} for shapes {ta.shape} and {tb.shape}")
        ax_a = list(range(ta.ndim - axes, ta.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = ([x] if isinstance(x, int) else list(x) for x in axes)
        if len(ax_a) != len(ax_b):
            raise ValueError(f"tensordot: {len(ax_a)} axes of a but {len(ax_b)} of b: {axes!r}")
        ax_a = [_axis("tensordot", x, ta.ndim) for x in ax_a]
        ax_b = [_axis("tensordot", x, tb.ndim) for x in ax_b]
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(ta.ndim)]
    sb = [next(letters) for _ in range(tb.ndim)]
    for i, j in zip(ax_a, ax_b, strict=True):
        if ta.shape[i] != tb.shape[j]:
            raise ValueError(
                f"tensordot: axis {i} of a (shape {ta.shape}) and axis {j} of b (shape "
                f"{tb.shape}) differ in length"
            )
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in ax_a] + [
        c for k, c in enumerate(sb) if k not in ax_b
    ]
    return Einsum.apply(ta, tb, ins=("".join(sa), "".join(sb)), out="".join(out))


def outer(a: Any, b: Any) -> Tensor:
    """Outer product of two vectors: ``[m], [n] -> [m, n]``."""
    ta, tb = as_tensor(a), as_tensor(b)
    if ta.ndim != 1 or tb.ndim != 1:
        raise ValueError(f"outer: needs two 1-D tensors, got shapes {ta.shape} and {tb.shape}")
    return Einsum.apply(ta, tb, ins=("i", "j"), out="ij")


_PAD_MODES = {
    "reflect": "reflect",
    "replicate": "edge",
    "edge": "edge",
    "circular": "wrap",
    "wrap": "wrap",
    "symmetric": "symmetric",
}


def pad_mode(
    a: Any,
    pad_width: int | Sequence[int] | Sequence[Sequence[int]],
    mode: str = "reflect",
    value: float = 0.0,
) -> Tensor:
    """Pad with NumPy's ``pad_width`` forms and a mode: 'constant' (``value``), 'reflect',
    'replicate' (= 'edge'), 'circular' (= 'wrap') or 'symmetric' (np.pad's meanings).

    ``a: [s_0, ...] -> [s_0 + lo_0 + hi_0, ...]``. Each padded axis is one integer-array getitem
    (np.pad of the positions gives the source of every output element), so the gradient of a
    border element adds back to the element it copies.
    """
    t = as_tensor(a)
    if mode == "constant":
        return pad(t, pad_width, value)
    if mode not in _PAD_MODES:
        raise ValueError(
            f"pad_mode: mode must be one of 'constant', {', '.join(map(repr, _PAD_MODES))}, "
            f"got {mode!r}"
        )
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (t.ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad_mode: pad_width {pad_width!r} does not fit a tensor of shape {t.shape}"
        ) from None
    if (widths < 0).any():
        raise ValueError(f"pad_mode: negative pad_width {pad_width!r}")
    out = t
    for ax, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        n = t.shape[ax]
        if n == 0:
            raise ValueError(f"pad_mode: cannot {mode}-pad axis {ax} of length 0 (shape {t.shape})")
        src = np.pad(np.arange(n), (int(lo), int(hi)), mode=_PAD_MODES[mode])
        out = getitem(out, (slice(None),) * ax + (src,))
    return out


def _gather_index(op: str, t: Tensor, axis: int, index: Any) -> tuple[int, np.ndarray]:
    ax = _axis(op, axis, t.ndim)
    idx = np.array(index.data if isinstance(index, Tensor) else index)  # own copy
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer array, got dtype {idx.dtype}")
    if idx.ndim != t.ndim:
        raise ValueError(
            f"{op}: index has {idx.ndim} dims (shape {idx.shape}), input has {t.ndim} "
            f"(shape {t.shape})"
        )
    for d in range(t.ndim):
        if d != ax and idx.shape[d] > t.shape[d]:
            raise ValueError(
                f"{op}: index shape {idx.shape} is larger than input shape {t.shape} at axis {d}"
            )
    n = t.shape[ax]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].ravel()[0]
        raise IndexError(f"{op}: index {bad} is out of range for axis {axis} of length {n}")
    idx = np.where(idx < 0, idx + n, idx) if idx.size and idx.min() < 0 else idx
    return ax, idx


def _sliced(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    if t.shape == shape:
        return t
    return getitem(t, tuple(slice(0, s) for s in shape))


def gather(a: Any, axis: int, index: Any) -> Tensor:
    """torch.gather: ``z[i][j][k] = a[index[i][j][k]][j][k]`` for axis 0 (and so on).

    ``a: [*S]``, ``index: [*I]`` integer, same number of dims, ``I[d] <= S[d]`` for d != axis
    -> ``[*I]``. Differentiable in ``a`` (the adjoint adds g back at the gathered positions).
    """
    t = as_tensor(a)
    ax, idx = _gather_index("gather", t, axis, index)
    return Gather.apply(t, axis=ax, index=idx)


def scatter_add(a: Any, axis: int, index: Any, src: Any) -> Tensor:
    """torch.scatter_add: a copy of ``a`` with ``src`` added at ``index`` along ``axis``.

    ``a: [*S]``, ``index: [*I]``, ``src: [*I]`` (PyTorch also allows a larger src; it uses the
    first ``I`` elements, as here) -> ``[*S]``; differentiable in ``a`` and ``src``.
    """
    t, s = as_tensor(a), as_tensor(src)
    ax, idx = _gather_index("scatter_add", t, axis, index)
    if s.ndim != idx.ndim or any(si < ii for si, ii in zip(s.shape, idx.shape, strict=True)):
        raise ValueError(
            f"scatter_add: src of shape {s.shape} is smaller than index of shape {idx.shape}"
        )
    s = _sliced(s, idx.shape)
    return t + ScatterAddAlong.apply(s, axis=ax, index=idx, shape=t.shape)


def masked_fill(a: Any, mask: Any, value: float) -> Tensor:
    """``a`` with ``value`` where the boolean ``mask`` (broadcast to a's shape) is true."""
    t = as_tensor(a)
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise TypeError(f"masked_fill: mask must be boolean, got dtype {m.dtype}")
    try:
        if np.broadcast_shapes(m.shape, t.shape) != t.shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"masked_fill: mask of shape {m.shape} does not broadcast to {t.shape}"
        ) from None
    return where(m, value, t)


def one_hot(labels: Any, num_classes: int = -1) -> Tensor:
    """``[*S]`` integer labels -> ``[*S, C]`` int64 one-hot rows (no gradient), like
    F.one_hot; ``num_classes=-1`` uses max(label) + 1."""
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"one_hot: label {int(y.min())} is negative")
    if num_classes == -1:
        num_classes = int(y.max()) + 1 if y.size else 0
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be a non-negative int, got {num_classes!r}")
    if y.size and y.max() >= num_classes:
        raise ValueError(
            f"one_hot: label {int(y.max())} is out of range for num_classes={num_classes}"
        )
    out = np.zeros(y.shape + (int(num_classes),), dtype=np.int64)
    np.put_along_axis(out, y[..., None].astype(np.intp), 1, axis=-1)
    return constant(out)


__all__ = [
    "chunk",
    "diag",
    "einsum",
    "flip",
    "gather",
    "masked_fill",
    "moveaxis",
    "one_hot",
    "outer",
    "pad_mode",
    "repeat",
    "repeat_interleave",
    "roll",
    "scatter_add",
    "split",
    "tensordot",
    "tile",
    "tril",
    "triu",
]

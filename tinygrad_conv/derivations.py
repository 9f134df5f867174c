r"""The seed made executable: all four conv functions are *one* convolution, rearranged.

Everything here is built from differentiable ``tinygrad_conv`` ops (getitem with ``::-1`` slices,
reshape, pad, transpose, conv2d), so every rearranged form is itself differentiable and can be
checked against the dedicated graph nodes to any order.

Notation (one spatial axis; the height and width axes are independent and work the same way)
-----------------------------------------------------------------------------------------------
input size ``i``, kernel ``k``, stride ``s``, dilation ``d``, pads ``(p_lo, p_hi)``,
effective kernel ``e = d(k-1) + 1``, output size ``o = floor((i + p_lo + p_hi - e)/s) + 1`` and the
*leftover* ``r = (i + p_lo + p_hi - e) mod s``: the last ``r`` rows of the padded input are read by
no window. The forward conv (cross-correlation, TF's conv2d) is

    y[n, a, b, q] = sum_{u, v, c} xpad[n, a*s + u*d, b*s + v*d, c] * w[u, v, c, q]

(``xpad`` = x with ``p_lo`` zeros before and ``p_hi`` after; with groups G, channel ``c`` ranges
over the ``Cg = Cin/G`` channels of output ``q``'s group).

1. The input gradient is a stride-1 conv2d of the dilated, "full"-padded dy
-----------------------------------------------------------------------------
Differentiating ``<dy, y>`` in ``xpad[t]`` collects every (output a, tap u) with ``a*s + u*d = t``:

    dxpad[t] = sum_{a, u : a*s + u*d = t} dy[a] * w[u]

Write ``z = dilate(dy, s)``: dy with ``s-1`` zeros inserted between consecutive rows, so that
``z[a*s] = dy[a]`` (length ``(o-1)s + 1``; this is the "fractional stride" of a transposed conv).
Then ``dxpad[t] = sum_u z[t - u*d] * w[u]``. Substituting ``u' = k-1-u`` (i.e. ``rot180(w)``,
both spatial axes flipped) turns this convolution into a cross-correlation:

    dxpad[t] = sum_{u'} zfull[t + u'*d] * rot180(w)[u']      with  zfull = z padded by d(k-1)

which is conv2d with stride 1 and *the same dilation d*. Two corrections give dx from dxpad:

* drop the ``p_lo`` rows of padding in front: pad z in front by ``lo = d(k-1) - p_lo``;
* the padded input has ``(o-1)s + e + r`` rows, i.e. ``r`` more than the windows cover; they
  (together with the ``p_hi`` padded rows) must come out with gradient 0 / be dropped:
  pad z at the end by ``hi = d(k-1) - p_hi + r``.

A negative amount means *crop*; it only arises from explicit padding (``p_lo > d(k-1)`` or
``p_hi > d(k-1) + r``), since SAME never pads more than ``e - 1 = d(k-1)`` in total. The result has
``(o-1)s + 1 + lo + hi = i + e - 1`` rows, so the stride-1 correlation with the effective kernel
``e`` gives exactly ``i`` rows. Channels: the forward filter maps ``Cin -> Cout``; the adjoint
maps ``Cout -> Cin``, so the in/out axes of ``rot180(w)`` are swapped (``[kh, kw, Cout, Cin]``).
With groups each group's block is swapped on its own (``[kh, kw, Og, G*Cg]``), which is again a
grouped filter with the same number of groups: one grouped conv2d computes all groups at once.

*Strides* therefore become zero insertion in dy (and a stride-1 conv), *dilations* stay dilations,
and *SAME* contributes its asymmetric split: ``p_lo = total // 2`` and ``p_hi = total - p_lo``
(the odd extra row is at the bottom/right) give ``lo = d(k-1) - p_lo >= hi - r``, so the full
padding of the rearranged conv is asymmetric the *other* way round, plus ``r`` at the end.

2. The filter gradient is a conv2d of x and dy with batch and channel axes swapped
----------------------------------------------------------------------------------
Differentiating ``<dy, y>`` in ``w[u, v, c, q]``:

    dw[u, v, c, q] = sum_{n, a, b} xpad[n, a*s + u*d, b*s + v*d, c] * dy[n, a, b, q]

Read ``(u, v)`` as the output position, ``(a, b)`` as the filter tap, ``n`` as the contracted
channel and ``c`` as the batch: this is conv2d with input ``x`` seen as ``[Cin, H, W, N]``
(``NHWC -> CHWN``), filter ``dy`` seen as ``[Ho, Wo, N, Cout]`` (``NHWC -> HWIO``),
**stride = the forward dilation d** (the output position u moves the window by d) and
**dilation = the forward stride s** (consecutive taps a are s apart). Padding is
``(p_lo, p_hi - r)``: the last r rows are read by nobody (with a negative amount the unread rows of
x are cropped); the output has ``((i + p_lo + p_hi - r) - ((o-1)s + 1))/d + 1 = k`` rows exactly.
The result ``[Cin, kh, kw, Cout]`` is swapped back to HWIO ``[kh, kw, Cin, Cout]``.

With groups, group g must only pair its own Cg input channels with its own Og outputs. The swap
puts the groups next to the batch: x becomes ``[Cg, H, W, G*N]`` (channel ``g*N + n``) and the
filter ``[Ho, Wo, N, G*Og]`` is unchanged, so a conv2d with ``G*N / N = G`` groups computes every
group's ``[Cg, kh, kw, Og]`` block at once (no Python loop over groups, no concatenation) and the
result swaps back to ``[kh, kw, Cg, G*Og]``, TF's grouped HWIO filter.

3. conv2d_transpose
-------------------
``conv2d_transpose(dy, w, output_shape)`` *is* ``conv2d_backprop_input(output_shape, w, dy)``:
the adjoint of the conv2d mapping ``output_shape`` to dy's shape; ``w`` is that forward conv's
HWIO filter. It is listed as its own "way" because TF exposes it as its own function.

4. Any number of spatial axes
-----------------------------
Nothing above depends on there being two spatial axes: every step acts on each axis on its own.
So every function here takes 1-D ([N, W, C], filters [k, Cin, Cout]), 2-D and 3-D
([N, D, H, W, C], filters [kd, kh, kw, Cin, Cout]) arrays alike; the rank is read from the
arrays, and the rearranged convolution is ``tc.conv1d`` / ``tc.conv2d`` / ``tc.conv3d``
accordingly (the ways' names then say conv1d / conv3d).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv.kernels.padding import (
    ConvGeometry,
    check_out_backprop,
    conv_geometry,
    conv_geometry_nd,
)
from tinygrad_conv.ops._util import as_tensor
from tinygrad_conv.tensor import Tensor

__all__ = [
    "EXPLAIN_STEP_TITLES",
    "batch_channel_swap",
    "dilate",
    "explain_steps",
    "filter_grad_as_conv2d",
    "filter_grad_ways",
    "full_padding",
    "hwio_to_nhwc",
    "input_grad_as_conv2d",
    "input_grad_ways",
    "nhwc_to_hwio",
    "pad_or_crop",
    "pad_to_full",
    "rot180",
    "swap_in_out",
]

Pads = tuple[tuple[int, int], tuple[int, int]]


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        vals = (int(value), int(value))
    else:
        seq = tuple(int(v) for v in value)
        if len(seq) == 1:
            vals = (seq[0], seq[0])
        elif len(seq) == 2:
            vals = (seq[0], seq[1])
        elif len(seq) == 4:  # TF's NHWC 4-form [1, h, w, 1]
            vals = (seq[1], seq[2])
        else:
            raise ValueError(f"{name} must be an int or 1, 2 or 4 ints, got {value!r}")
    if min(vals) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return vals


def _check_rank4(op: str, name: str, t: Tensor) -> None:
    """Rank 3, 4 or 5 (1, 2 or 3 spatial axes); the message names rank 4, the common case."""
    if t.ndim not in (3, 4, 5):
        raise ValueError(
            f"{op}: {name} must have rank 4 (or 3 / 5 for 1-D / 3-D), got shape {t.shape}"
        )


def _check_rank_n(op: str, name: str, t: Tensor, n: int, what: str, shape: Any) -> None:
    """All arrays of one call have the rank of ``shape`` (3, 4 or 5)."""
    if n not in (3, 4, 5) or t.ndim != n:
        raise ValueError(
            f"{op}: {name} must have rank {n} (the rank of {what} {tuple(shape)}), got shape "
            f"{t.shape}"
        )


def _ints(name: str, value: int | Sequence[int], n: int) -> tuple[int, ...]:
    """An int, 1, n or n+2 ints (TF's channels-last form) -> n ints, each >= 1."""
    if n == 2:
        return _pair(name, value)
    if isinstance(value, int | np.integer):
        vals = (int(value),) * n
    else:
        seq = tuple(int(v) for v in value)
        if len(seq) == 1:
            vals = seq * n
        elif len(seq) == n:
            vals = seq
        elif len(seq) == n + 2:
            vals = seq[1:-1]
        else:
            raise ValueError(f"{name} must be an int or 1, {n} or {n + 2} ints, got {value!r}")
    if min(vals) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return vals


def _spatial(t: Tensor) -> tuple[int, ...]:
    """The spatial axes of an [N, *S, C] tensor (or [*K, I, O] filter: pass offset 0)."""
    return tuple(range(1, t.ndim - 1))


_CONV = {1: "conv1d", 2: "conv2d", 3: "conv3d"}


def _conv(rank: int, x: Any, w: Any, strides: Any, padding: Any, dilations: Any) -> Tensor:
    """The forward conv of the given rank (channels-last)."""
    fn = {1: tc.conv1d, 2: tc.conv2d, 3: tc.conv3d}[rank]
    return fn(x, w, strides, padding, dilations=dilations)


# ----------------------------------------------------------------------------- the rearrangements


def rot180(w: Any) -> Tensor:
    """Rotate an HWIO filter by 180 degrees: flip both spatial axes, ``w[::-1, ::-1]``
    (any rank: every spatial axis of a [*K, I, O] filter is flipped).

    ``rot180(w)[u, v, c, q] = w[kh-1-u, kw-1-v, c, q]``. It turns the *convolution* that
    appears in the input gradient into the *cross-correlation* conv2d computes. Differentiable
    (getitem with negative-step slices; its adjoint is the same flip).
    """
    t = as_tensor(w)
    _check_rank4("rot180", "w", t)
    return t[(slice(None, None, -1),) * (t.ndim - 2)]


def swap_in_out(w: Any, groups: int = 1) -> Tensor:
    """Swap the in/out channel axes of an HWIO filter, group by group.

    ``[kh, kw, Cg, G*Og] -> [kh, kw, Og, G*Cg]``: group g's block ``w[..., :, g*Og:(g+1)*Og]``
    (``Cg -> Og``) becomes ``[kh, kw, Og, Cg]`` at output channels ``g*Cg:(g+1)*Cg``. For
    ``groups == 1`` this is ``transpose(w, (0, 1, 3, 2))``.
    """
    t = as_tensor(w)
    _check_rank4("swap_in_out", "w", t)
    *ks, cg, cout = t.shape
    if groups < 1 or cout % groups:
        raise ValueError(f"swap_in_out: groups={groups} must divide out-channels of w {t.shape}")
    og, r = cout // groups, len(ks)
    t = tc.reshape(t, (*ks, cg, groups, og))
    t = tc.transpose(t, (*range(r), r + 2, r + 1, r))  # [*K, Og, G, Cg]
    return tc.reshape(t, (*ks, og, groups * cg))


def dilate(t: Any, factors: int | Sequence[int], axes: Sequence[int] | None = None) -> Tensor:
    """Insert ``f - 1`` zeros between consecutive entries along each of ``axes`` (zero insertion).

    For dy ``[N, Ho, Wo, C]`` and the forward strides (the default ``axes=(1, 2)``) the result is
    ``[N, (Ho-1)sh + 1, (Wo-1)sw + 1, C]`` with ``z[:, a*sh, b*sw] = dy[:, a, b]`` and zeros
    elsewhere: a stride-s conv's adjoint is a stride-1 conv of this "fractionally strided" dy.
    With ``axes=(0, 1)`` it turns an HWIO filter into the equivalent dilation-1 filter of a
    dilated conv (``e = d(k-1) + 1`` taps, zeros between the real ones).

    Built as reshape -> pad -> reshape -> slice, so it is differentiable (its adjoint is the
    strided slice ``g[:, ::sh, ::sw]``). ``axes=None`` means the spatial axes of an [N, *S, C]
    tensor (1, 2 for 4-D; one factor per axis).
    """
    out = as_tensor(t)
    axes = _spatial(out) if axes is None else tuple(axes)
    f = _ints("dilate: factors", factors, len(axes))
    for ax, fac in zip(axes, f, strict=True):
        if fac == 1:
            continue
        shape = out.shape
        n = shape[ax]
        # a length-1 axis after `ax`, padded to `fac`: every entry followed by fac-1 zeros
        out = tc.reshape(out, shape[: ax + 1] + (1,) + shape[ax + 1 :])
        widths = [(0, 0)] * out.ndim
        widths[ax + 1] = (0, fac - 1)
        out = tc.pad(out, widths)
        out = tc.reshape(out, shape[:ax] + (n * fac,) + shape[ax + 1 :])
        index = [slice(None)] * out.ndim
        index[ax] = slice(0, (n - 1) * fac + 1)  # no trailing zeros after the last entry
        out = out[tuple(index)]
    return out


def pad_or_crop(t: Any, pads: Sequence[Sequence[int]], axes: Sequence[int] | None = None) -> Tensor:
    """Zero-pad (amount > 0) or crop (amount < 0) each side of each of ``axes``.

    ``pads = ((lo_h, hi_h), (lo_w, hi_w))``. Positive amounts are padded first and negative ones
    cropped afterwards, so ``lo = +2, hi = -2`` on a length-1 axis is the valid window
    ``[0, 0, x0, 0]...`` cut to ``[0]`` rather than an error. The final length along an axis is
    ``n + lo + hi`` and must be >= 0. Differentiable (tc.pad and getitem). ``axes=None``: the
    spatial axes of an [N, *S, C] tensor, one pair each.
    """
    out = as_tensor(t)
    axes = _spatial(out) if axes is None else tuple(axes)
    pads = [(int(lo), int(hi)) for lo, hi in pads]
    widths = [(0, 0)] * out.ndim
    for ax, (lo, hi) in zip(axes, pads, strict=True):
        if out.shape[ax] + lo + hi < 0:
            raise ValueError(
                f"pad_or_crop: pads {pads} leave a negative size on axis {ax} of shape {out.shape}"
            )
        widths[ax] = (max(lo, 0), max(hi, 0))
    if any(w != (0, 0) for w in widths):
        out = tc.pad(out, widths)
    index = [slice(None)] * out.ndim
    for ax, (lo, hi) in zip(axes, pads, strict=True):
        n = out.shape[ax]
        index[ax] = slice(max(-lo, 0), n - max(-hi, 0))
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        out = out[tuple(index)]
    return out


def full_padding(geom: ConvGeometry) -> tuple[tuple[int, int], ...]:
    """The "full" padding of the input-gradient conv: ``(d(k-1) - p_lo, d(k-1) - p_hi + r)``.

    ``d(k-1)`` on both sides is the classic full convolution (every partial overlap of dy and the
    kernel); ``p_lo`` / ``p_hi`` remove the forward's padding again (the gradient of a padded zero
    is not wanted), and the leftover ``r`` adds back the rows no window read, whose gradient is 0.
    Amounts may be negative (= crop).
    """
    out = []
    for k, d, (lo, hi), r in zip(
        geom.kernel_hw, geom.dilations, geom.pads, geom.leftover, strict=True
    ):
        out.append((d * (k - 1) - lo, d * (k - 1) - hi + r))
    return tuple(out)


def pad_to_full(
    dy: Any,
    kernel_size: int | Sequence[int],
    padding: Sequence[Sequence[int]] | None = None,
    dilations: int | Sequence[int] = 1,
    leftover: int | Sequence[int] = 0,
) -> Tensor:
    """Pad (already dilated) dy ``[N, h, w, C]`` to the "full" size of the input-gradient conv.

    Per axis: ``lo = d(k-1) - p_lo``, ``hi = d(k-1) - p_hi + r`` (negative = crop), with the
    forward conv's resolved pads ``padding = ((top, bottom), (left, right))`` (resolve 'SAME'
    first, e.g. with ``kernels.padding.conv_geometry``), dilations d and leftover r. With the
    defaults this is the textbook full padding ``k - 1`` on every side. Any rank: one entry per
    spatial axis of dy ([N, *S, C]).
    """
    n = as_tensor(dy).ndim - 2
    k, d = (
        _ints("pad_to_full: kernel_size", kernel_size, n),
        _ints("pad_to_full: dilations", dilations, n),
    )
    padding = ((0, 0),) * n if padding is None else padding
    if isinstance(leftover, int | np.integer):
        r = (int(leftover),) * n
    else:
        r = tuple(int(v) for v in leftover)
    pads = tuple(
        (dd * (kk - 1) - lo, dd * (kk - 1) - hi + rr)
        for kk, dd, (lo, hi), rr in zip(k, d, padding, r, strict=True)
    )
    return pad_or_crop(dy, pads)


def nhwc_to_hwio(t: Any) -> Tensor:
    """``[N, H, W, C] -> [H, W, N, C]``: see a batch of images as a filter bank (I = batch).

    This is how dy becomes the *filter* of the filter-gradient conv (in-channels = the batch,
    which the conv contracts over), and how that conv's output ``[Cin, kh, kw, Cout]`` (an "NHWC"
    tensor whose batch is Cin) becomes the HWIO filter gradient ``[kh, kw, Cin, Cout]``.
    """
    t = as_tensor(t)
    _check_rank4("nhwc_to_hwio", "t", t)
    r = t.ndim - 2  # any rank: [N, *S, C] -> [*S, N, C]
    return tc.transpose(t, (*range(1, r + 1), 0, r + 1))


def hwio_to_nhwc(t: Any) -> Tensor:
    """The inverse of :func:`nhwc_to_hwio`: ``[H, W, I, O] -> [I, H, W, O]``."""
    t = as_tensor(t)
    _check_rank4("hwio_to_nhwc", "t", t)
    r = t.ndim - 2  # any rank: [*S, I, O] -> [I, *S, O]
    return tc.transpose(t, (r, *range(r), r + 1))


def batch_channel_swap(x: Any, groups: int = 1) -> Tensor:
    """``[N, H, W, G*Cg] -> [Cg, H, W, G*N]``: x with batch and channel axes swapped (NHWC->CHWN).

    For ``groups == 1`` this is ``transpose(x, (3, 1, 2, 0))``: channels become the batch and the
    batch becomes the channel axis that the filter-gradient conv contracts over. With groups the
    group index stays in the channel axis next to the batch (channel ``g*N + n``), so that a
    grouped conv (G groups of N channels) pairs group g of x only with group g of dy.
    """
    t = as_tensor(x)
    _check_rank4("batch_channel_swap", "x", t)
    n, *sp, c = t.shape
    if groups < 1 or c % groups:
        raise ValueError(f"batch_channel_swap: groups={groups} must divide channels of {t.shape}")
    cg, r = c // groups, len(sp)
    t = tc.reshape(t, (n, *sp, groups, cg))
    t = tc.transpose(t, (r + 2, *range(1, r + 1), r + 1, 0))  # [Cg, *S, G, N]
    return tc.reshape(t, (cg, *sp, groups * n))


# ----------------------------------------------------------------------------- the two identities


def _geometry(op: str, input_shape, filter_shape, strides, padding, dilations) -> ConvGeometry:
    if len(input_shape) == 4:
        return conv_geometry(
            op, tuple(input_shape), tuple(filter_shape), strides, padding, dilations
        )
    r = len(input_shape) - 2
    if len(filter_shape) != r + 2:
        raise ValueError(
            f"{op}: filter shape {tuple(filter_shape)} must have rank {r + 2} for input shape "
            f"{tuple(input_shape)}"
        )
    return conv_geometry_nd(
        op, r, tuple(input_shape), tuple(filter_shape)[:-2], strides, padding, dilations
    )


def _check_dy(op: str, geom: ConvGeometry, dy: Tensor, n: int, c: int) -> None:
    if geom.rank == 2:
        check_out_backprop(op, geom, dy.shape, n, c)
    elif tuple(dy.shape) != (n, *geom.output_hw, c):
        raise ValueError(
            f"{op}: out_backprop has shape {tuple(dy.shape)} but the geometry [{geom}] with "
            f"batch {n} and {c} channels needs {(n, *geom.output_hw, c)}"
        )


def input_grad_as_conv2d(
    w: Any,
    dy: Any,
    input_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
) -> Tensor:
    """d_x as ONE plain stride-1 conv2d (NHWC / HWIO), differentiable in ``w`` and ``dy``.

    ``conv2d(pad_or_crop(dilate(dy, s), full_padding), swap_in_out(rot180(w)), stride 1,
    dilation d, 'VALID')``: see the module docstring, section 1. Groups: one grouped conv2d
    (``swap_in_out`` keeps each group's block in place).
    """
    op = "input_grad_as_conv2d"
    w, dy = as_tensor(w), as_tensor(dy)
    for name, t in (("w", w), ("dy", dy)):
        _check_rank_n(op, name, t, len(input_shape), "input_shape", input_shape)
    geom = _geometry(op, input_shape, w.shape, strides, padding, dilations)
    _check_dy(op, geom, dy, input_shape[0], w.shape[-1])
    groups = input_shape[-1] // w.shape[-2]
    z = pad_or_crop(dilate(dy, geom.strides), full_padding(geom))
    f = swap_in_out(rot180(w), groups)
    return _conv(geom.rank, z, f, 1, "VALID", geom.dilations)


def filter_grad_as_conv2d(
    x: Any,
    dy: Any,
    filter_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
) -> Tensor:
    """d_w as ONE plain conv2d of swapped x and swapped dy, differentiable in ``x`` and ``dy``.

    ``nhwc_to_hwio(conv2d(batch_channel_swap(x), nhwc_to_hwio(dy), stride = d, dilation = s,
    padding = (p_lo, p_hi - r)))``: see the module docstring, section 2. A negative ``p_hi - r``
    crops the unread rows of x before a conv with the remaining (non-negative) padding. Groups:
    one grouped conv2d (``batch_channel_swap`` puts group g's channels next to the batch).
    """
    op = "filter_grad_as_conv2d"
    x, dy = as_tensor(x), as_tensor(dy)
    for name, t in (("x", x), ("dy", dy)):
        _check_rank_n(op, name, t, len(filter_shape), "filter_shape", filter_shape)
    geom = _geometry(op, x.shape, filter_shape, strides, padding, dilations)
    _check_dy(op, geom, dy, x.shape[0], filter_shape[-1])
    groups = x.shape[-1] // filter_shape[-2]
    xs = batch_channel_swap(x, groups)  # [Cg, *S, G*N]
    f = nhwc_to_hwio(dy)  # [*O, N, Cout]
    pads = [(lo, hi - r) for (lo, hi), r in zip(geom.pads, geom.leftover, strict=True)]
    if min(hi for _, hi in pads) < 0:
        xs, conv_pads = pad_or_crop(xs, pads), [(0, 0)] * geom.rank  # crop unread rows of x
    else:
        conv_pads = pads
    out = _conv(geom.rank, xs, f, geom.dilations, conv_pads, geom.strides)
    return nhwc_to_hwio(out)  # [Cg, *K, Cout] -> [*K, Cg, Cout]


def _arr(a: Any) -> np.ndarray:
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def input_grad_ways(
    x: Any,
    w: Any,
    dy: Any,
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
) -> dict[str, np.ndarray]:
    """d_x = d<dy, conv2d(x, w)>/dx computed four ways (NHWC x / dy, HWIO w, any groups).

    Returns (in this order):
        ``'autodiff'``: ``tc.grad`` through ``tc.conv2d`` with upstream gradient dy;
        ``'conv2d_of_dilated_full_padded_dy'``: :func:`input_grad_as_conv2d` -- dy with s-1 zeros
            between rows/cols (strides), padded by ``lo = d(k-1) - p_lo``,
            ``hi = d(k-1) - p_hi + r`` (negative = crop; SAME's asymmetric split and the leftover
            r enter here), correlated at stride 1 and dilation d with rot180(w), in/out swapped;
        ``'conv2d_backprop_input'``: ``tc.conv2d_backprop_input(x.shape, w, dy, ...)``;
        ``'conv2d_transpose'``: ``tc.conv2d_transpose(dy, w, x.shape, ...)``.
    All four must agree to rounding.
    """
    xa, wa, dya = _arr(x), _arr(w), _arr(dy)
    shape, rank = xa.shape, xa.ndim - 2
    name = _CONV.get(rank, "conv2d")
    xt = Tensor(xa, requires_grad=True)
    y = _conv(rank, xt, Tensor(wa), strides, padding, dilations)
    (auto,) = tc.grad(y, [xt], grad_outputs=Tensor(dya))
    sizes = np.array(shape, dtype=np.int64)
    backprop = {
        1: tc.conv1d_backprop_input,
        2: tc.conv2d_backprop_input,
        3: tc.conv3d_backprop_input_v2,
    }[rank]
    transpose = {1: tc.conv1d_transpose, 2: tc.conv2d_transpose, 3: tc.conv3d_transpose}[rank]
    return {
        "autodiff": auto.data,
        f"{name}_of_dilated_full_padded_dy": input_grad_as_conv2d(
            wa, dya, shape, strides, padding, dilations
        ).data,
        backprop.__name__: backprop(sizes, wa, dya, strides, padding, dilations=dilations).data,
        f"{name}_transpose": transpose(dya, wa, sizes, strides, padding, dilations=dilations).data,
    }


def filter_grad_ways(
    x: Any,
    w: Any,
    dy: Any,
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
) -> dict[str, np.ndarray]:
    """d_w = d<dy, conv2d(x, w)>/dw computed three ways (NHWC x / dy, HWIO w, any groups).

    Returns (in this order):
        ``'autodiff'``: ``tc.grad`` through ``tc.conv2d`` with upstream gradient dy;
        ``'conv2d_of_swapped_x_and_dy'``: :func:`filter_grad_as_conv2d` -- x as ``[Cin,H,W,N]``
            (grouped: ``[Cg,H,W,G*N]``) convolved with dy as an HWIO filter ``[Ho,Wo,N,Cout]``,
            stride = forward dilation, dilation = forward stride (the zero insertion of the
            strides now sits in the *filter*), padding ``(p_lo, p_hi - r)``, swapped back;
        ``'conv2d_backprop_filter'``: ``tc.conv2d_backprop_filter(x, w.shape, dy, ...)``.
    """
    xa, wa, dya = _arr(x), _arr(w), _arr(dy)
    rank = xa.ndim - 2
    name = _CONV.get(rank, "conv2d")
    wt = Tensor(wa, requires_grad=True)
    y = _conv(rank, Tensor(xa), wt, strides, padding, dilations)
    (auto,) = tc.grad(y, [wt], grad_outputs=Tensor(dya))
    sizes = np.array(wa.shape, dtype=np.int64)
    backprop = {
        1: tc.conv1d_backprop_filter,
        2: tc.conv2d_backprop_filter,
        3: tc.conv3d_backprop_filter_v2,
    }[rank]
    return {
        "autodiff": auto.data,
        f"{name}_of_swapped_x_and_dy": filter_grad_as_conv2d(
            xa, dya, wa.shape, strides, padding, dilations
        ).data,
        backprop.__name__: backprop(xa, sizes, dya, strides, padding, dilations=dilations).data,
    }


# ----------------------------------------------------------------------------- a worked example

#: Titles of :func:`explain_steps`'s entries, in order (stable: drawers may rely on them).
EXPLAIN_STEP_TITLES: tuple[str, ...] = (
    "dy",
    "dy dilated by the strides",
    "dilated dy padded to full",
    "rot180(w), in/out swapped",
    "d_x = conv2d(padded dy, rot180(w))",
    "x swapped NHWC->CHWN",
    "dy swapped NHWC->HWIO",
    "d_w = conv2d(x swapped, dy swapped) -> HWIO",
)


def explain_steps(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    dilations: int | Sequence[int] = 1,
    seed: int = 0,
) -> list[tuple[str, np.ndarray]]:
    """The rearrangements on a small random example, step by step, for drawing.

    ``x`` (``x_shape``, NHWC), ``w`` (``w_shape``, HWIO) and ``dy`` are small integers in
    [-3, 3] (float64) drawn from ``np.random.default_rng(seed)`` in that order, so the numbers
    are readable and the output is deterministic. Returns 8 ``(title, array)`` pairs with the
    titles of :data:`EXPLAIN_STEP_TITLES`, always in this order and with these shapes
    (G groups, Cg = Cin/G, Og = Cout/G):

    0. ``dy``                           ``[N, Ho, Wo, Cout]``
    1. dy dilated by the strides        ``[N, (Ho-1)sh+1, (Wo-1)sw+1, Cout]`` (s-1 zero rows/cols)
    2. ... padded to full               ``[N, H + eh - 1, W + ew - 1, Cout]`` (pads of
       :func:`full_padding`, negative = crop)
    3. rot180(w), in/out swapped        ``[kh, kw, Og, G*Cg]``
    4. d_x = conv2d(2, 3), stride 1, dilation d, VALID           ``[N, H, W, Cin]``
    5. x swapped NHWC->CHWN (the input) ``[Cg, H, W, G*N]``
    6. dy swapped NHWC->HWIO (the filter) ``[Ho, Wo, N, Cout]``
    7. d_w = conv2d(5, 6) with stride d, dilation s, padding (p_lo, p_hi - r), back to HWIO
       ``[kh, kw, Cg, Cout]``

    d_x and d_w are checked against ``conv2d_backprop_input`` / ``conv2d_backprop_filter``
    (an AssertionError here would be a bug in the library).
    """
    rng = np.random.default_rng(seed)
    x_shape, w_shape = tuple(int(v) for v in x_shape), tuple(int(v) for v in w_shape)
    geom = _geometry("explain_steps", x_shape, w_shape, strides, padding, dilations)
    groups = x_shape[3] // w_shape[2]
    x = rng.integers(-3, 4, size=x_shape).astype(np.float64)
    w = rng.integers(-3, 4, size=w_shape).astype(np.float64)
    dy = rng.integers(-3, 4, size=(x_shape[0], *geom.output_hw, w_shape[3])).astype(np.float64)

    z = dilate(dy, geom.strides)
    zf = pad_or_crop(z, full_padding(geom))
    f = swap_in_out(rot180(w), groups)
    dx = tc.conv2d(zf, f, strides=1, padding="VALID", dilations=geom.dilations)
    xs = batch_channel_swap(x, groups)
    dyf = nhwc_to_hwio(dy)
    dw = filter_grad_as_conv2d(x, dy, w_shape, strides, padding, dilations)

    ref_dx = tc.conv2d_backprop_input(
        np.array(x_shape), w, dy, strides, padding, dilations=dilations
    )
    ref_dw = tc.conv2d_backprop_filter(
        x, np.array(w_shape), dy, strides, padding, dilations=dilations
    )
    assert np.allclose(dx.data, ref_dx.data) and np.allclose(dw.data, ref_dw.data)

    arrays = (dy, z.data, zf.data, f.data, dx.data, xs.data, dyf.data, dw.data)
    return [(t, np.array(a)) for t, a in zip(EXPLAIN_STEP_TITLES, arrays, strict=True)]

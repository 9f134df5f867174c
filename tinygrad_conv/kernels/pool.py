"""Max and average pooling on NHWC ndarrays, with their gradients, TF semantics.

Every kernel is a loop over the kh*kw window taps. Tap (i, j) of output pixel (oh, ow) reads
input (oh*sh + i - top, ow*sw + j - left); ``axis_taps`` clips each tap to the real input, so the
padding never has to be materialised: max pooling pads with -inf (a padded element never wins)
and average pooling divides by the number of in-bounds elements, exactly as TF does.
Each tap step is a few whole-array numpy operations on strided slices; there are no Python loops
over batch items or pixels and no big (N, Ho, Wo, kh, kw, C) temporaries.

Speed notes (numpy's masked copies, ``np.copyto(where=)`` / ``np.where``, run ~50x slower than
plain arithmetic on random masks): max pooling keeps y with ``np.maximum`` and tracks *which tap*
won in a uint8 array updated arithmetically, turned into flat indices once at the end; its
gradient is a per-tap assignment when windows are disjoint (the usual k <= s) and a single
``np.bincount`` scatter-add when they overlap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .padding import ConvGeometry, _check_input, _shape4, axis_taps

__all__ = [
    "max_pool2d",
    "max_pool2d_values",
    "max_pool2d_backprop",
    "max_pool2d_gather",
    "avg_pool2d",
    "avg_pool2d_backprop",
]

_Tap = tuple[slice, slice, slice, slice, int]  # (out_h, out_w, in_h, in_w, tap index)

# padding._shape4's wrong-length wording for this module (its shape checks are shared with conv.py;
# pooling allows C = 0 channels: _check_input(..., 0))
_RANK_ERROR = "must be 4 ints [N, H, W, C], got {shape}"


# ----------------------------------------------------------------------------- helpers


def _arr4(op: str, name: str, a: object, kinds: str = "fiu") -> np.ndarray:
    arr = a if type(a) is np.ndarray else np.asarray(a)
    if arr.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D (NHWC), got shape {arr.shape}")
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{op}: {name} has unsupported dtype {arr.dtype}")
    return arr


def _check_out(op: str, name: str, shape: tuple[int, ...], n: int, c: int, geom: ConvGeometry):
    expected = (n, *geom.output_hw, c)
    if shape != expected:
        raise ValueError(
            f"{op}: {name} has shape {tuple(shape)} but the geometry ({geom}) with input "
            f"batch {n} and {c} channels needs {expected}"
        )


@functools.lru_cache(maxsize=512)
def _taps(geom: ConvGeometry) -> tuple[_Tap, ...]:
    """The in-bounds part of every window tap, in row-major tap order (TF's tie order)."""
    ax_h, ax_w = _per_axis(geom)
    th_all, tw_all = axis_taps(*ax_h[:5], 0, ax_h[5]), axis_taps(*ax_w[:5], 0, ax_w[5])
    kw = geom.kernel_hw[1]
    out: list[_Tap] = []
    for i, th in enumerate(th_all):
        for j, tw in enumerate(tw_all):
            if th is not None and tw is not None:
                out.append((th[0], tw[0], th[1], tw[1], i * kw + j))
    return tuple(out)


@functools.lru_cache(maxsize=512)
def _counts(op: str, geom: ConvGeometry) -> np.ndarray | float:
    """Number of in-bounds elements of each window: (Ho, Wo, 1) array, or a float if constant."""
    per_axis = []
    for size, k, s, d, lo, o in _per_axis(geom):
        cnt = np.zeros(o, dtype=np.int64)
        for t in axis_taps(size, k, s, d, lo, 0, o):
            if t is not None:
                cnt[t[0]] += 1
        if (cnt == 0).any():
            raise _empty_window_error(op, geom)
        per_axis.append(cnt)
    counts = np.multiply.outer(per_axis[0], per_axis[1])[:, :, None].astype(np.float64)
    if (counts == counts.flat[0]).all():
        return float(counts.flat[0])
    counts.flags.writeable = False
    return counts


@functools.lru_cache(maxsize=512)
def _tap_index(geom: ConvGeometry, t: int, dtype: np.dtype) -> np.ndarray:
    """(1, hb, wb, 1) flat H*W indices read by the t-th entry of _taps(geom)."""
    _, _, in_h, in_w, _ = _taps(geom)[t]
    w = geom.input_hw[1]
    rows = np.arange(in_h.start, in_h.stop, in_h.step, dtype=np.int64)
    cols = np.arange(in_w.start, in_w.stop, in_w.step, dtype=np.int64)
    idx = (rows[:, None] * w + cols[None, :])[None, :, :, None].astype(dtype)
    idx.flags.writeable = False
    return idx


def _per_axis(geom: ConvGeometry):
    (h, w), (kh, kw), (ho, wo) = geom.input_hw, geom.kernel_hw, geom.output_hw
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilations, geom.pads
    return ((h, kh, sh, dh, top, ho), (w, kw, sw, dw, left, wo))


def _empty_window_error(op: str, geom: ConvGeometry) -> ValueError:
    return ValueError(
        f"{op}: some pooling window lies entirely in the padding ({geom}); "
        "pads must be smaller than the window"
    )


@functools.lru_cache(maxsize=512)
def _tap_ids(op: str, geom: ConvGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-geometry tables for turning "which tap won" into a flat H*W index.

    Returns (first, offsets, base): ``first`` (1, Ho, Wo, 1), the position in ``_taps(geom)`` of
    each window's first in-bounds tap (row-major); ``offsets[t]`` = i*dh*W + j*dw for that
    entry's tap (i, j); ``base`` (1, Ho, Wo, 1) = (oh*sh - top)*W + (ow*sw - left), so that the
    flat index read by tap t at (oh, ow) is base + offsets[t].
    """
    taps = _taps(geom)
    w, (ho, wo), kw = geom.input_hw[1], geom.output_hw, geom.kernel_hw[1]
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilations, geom.pads
    first = np.full((ho, wo), -1, dtype=np.int64)
    for t in range(len(taps) - 1, -1, -1):  # earliest tap written last
        first[taps[t][0], taps[t][1]] = t
    if (first < 0).any():
        raise _empty_window_error(op, geom)
    offsets = np.array([(k // kw) * dh * w + (k % kw) * dw for *_, k in taps], dtype=np.int64)
    base = (np.arange(ho) * sh - top)[:, None] * w + (np.arange(wo) * sw - left)[None, :]
    tid_dtype = np.uint8 if len(taps) <= 255 else np.uint16
    out = (first.astype(tid_dtype)[None, :, :, None], offsets, base[None, :, :, None])
    for a in out:
        a.flags.writeable = False
    return out


def _disjoint(geom: ConvGeometry) -> bool:
    """No two windows share an input element: (k - 1) d < s on both axes."""
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel_hw, geom.strides, geom.dilations
    return (kh - 1) * dh < sh and (kw - 1) * dw < sw


def _tiles(geom: ConvGeometry) -> bool:
    """The windows tile the input exactly: every element in exactly one window."""
    return (
        geom.kernel_hw == geom.strides
        and geom.dilations == (1, 1)
        and geom.pads == ((0, 0), (0, 0))
        and geom.leftover == (0, 0)
    )


def _len(sl: slice, size: int) -> int:
    return len(range(size)[sl])


def _lowest(dt: np.dtype):
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _float_dtype(dt: np.dtype) -> np.dtype:
    return dt if dt.kind == "f" else np.dtype(np.float64)


# ----------------------------------------------------------------------------- max pooling


def max_pool2d(x: np.ndarray, geom: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling like ``tf.nn.max_pool2d`` (padding acts as -inf).

    Args:
        x: input [N, H, W, C] (float or int).
        geom: from ``padding.pool_geometry``.

    Returns:
        (y, argmax): y [N, Ho, Wo, C] with x's dtype; argmax [N, Ho, Wo, C] int32 (int64 if
        H*W >= 2**31), the flat index ih*W + iw into x's H*W plane of the element y came from.
        Ties go to the first element of the window in row-major order, like TF. A NaN in a
        window makes y NaN there and argmax points at the window's first NaN.
    """
    op = "max_pool2d"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 0)
    n, h, w, c = x.shape
    first, offsets, base = _tap_ids(op, geom)
    y, tid = _max_and_tap(x, geom, first, nan_aware=False)
    if x.dtype.kind == "f" and np.isnan(y).any():  # np.maximum let a NaN through: redo exactly
        y, tid = _max_and_tap(x, geom, first, nan_aware=True)
    # flat index of the winner = base(oh, ow) + offset of the winning tap
    argmax = np.take(offsets.astype(_index_dtype(h * w)), tid)
    argmax += base
    return y, argmax


def max_pool2d_values(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Max pooling without the argmax (inference: nothing to differentiate). x: [N, H, W, C]
    -> y [N, Ho, Wo, C], the same values as ``max_pool2d(x, geom)[0]`` (NaN wins, as there)."""
    op = "max_pool2d"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 0)
    _tap_ids(op, geom)  # validates that no window lies entirely in the padding
    n, _, _, c = x.shape
    ho, wo = geom.output_hw
    taps = _taps(geom)
    oh, ow, ih, iw, _ = taps[0]
    if _len(oh, ho) == ho and _len(ow, wo) == wo:  # the first tap reaches every output
        y = np.empty((n, ho, wo, c), dtype=x.dtype)
        np.copyto(y, x[:, ih, iw, :])
        taps = taps[1:]
    else:
        y = np.full((n, ho, wo, c), _lowest(x.dtype), dtype=x.dtype)
    for oh, ow, ih, iw, _ in taps:
        ys = y[:, oh, ow, :]
        np.maximum(ys, x[:, ih, iw, :], out=ys)  # propagates NaN, as the argmax version does
    return y


def _index_dtype(size: int) -> type:
    return np.int32 if size < 2**31 else np.int64


def _max_and_tap(
    x: np.ndarray, geom: ConvGeometry, first: np.ndarray, nan_aware: bool
) -> tuple[np.ndarray, np.ndarray]:
    """y = max over the window taps, and tid = position in _taps(geom) of the winning tap.

    Taps run in row-major order; a later tap wins only if it is strictly greater than the
    running maximum (TF's first-wins tie rule, also right when the maximum is -inf). Such
    "record-breaking" taps come in increasing order and each one's position exceeds every
    earlier winner's, so tid = max(tid, t * better) tracks the last record, i.e. the first
    occurrence of the maximum: two fast passes per tap instead of a slow masked copy. Every tid
    starts at its window's first in-bounds tap (``first``); when tap 0 reaches every output it
    is simply copied into y. With nan_aware, a NaN beats every number and the first NaN stays
    (y becomes NaN, tid points at it).
    """
    n, _, _, c = x.shape
    ho, wo = geom.output_hw
    taps = _taps(geom)
    shape = (n, ho, wo, c)
    tid = np.empty(shape, dtype=first.dtype)
    oh, ow, ih, iw, _ = taps[0]
    start = 0
    if not nan_aware and _len(oh, ho) == ho and _len(ow, wo) == wo:
        y = np.empty(shape, dtype=x.dtype)
        np.copyto(y, x[:, ih, iw, :])
        tid.fill(0)
        start = 1
    else:
        y = np.full(shape, _lowest(x.dtype), dtype=x.dtype)
        tid[...] = first
    better = np.empty(shape, dtype=bool)
    step = np.empty(shape, dtype=first.dtype)
    # bool is stored as 0/1 bytes: read it as uint8 (no cast) when tid is uint8 too
    b_as_int = (lambda b: b.view(np.uint8)) if first.dtype.itemsize == 1 else (lambda b: b)
    xbuf = np.empty(shape, dtype=x.dtype)
    for t in range(start, len(taps)):
        oh, ow, ih, iw, _ = taps[t]
        # one strided read of the tap's input slice; the rest are contiguous passes (for taps
        # that reach every output), several times faster than strided ones
        xs = xbuf[:, oh, ow, :]
        np.copyto(xs, x[:, ih, iw, :])
        ys, b, ts, d = y[:, oh, ow, :], better[:, oh, ow, :], tid[:, oh, ow, :], step[:, oh, ow, :]
        np.greater(xs, ys, out=b)
        if nan_aware:
            b |= np.isnan(xs) & ~np.isnan(ys)
            np.copyto(ys, xs, where=b)
        else:
            np.maximum(ys, xs, out=ys)
        if t:
            np.multiply(b_as_int(b), first.dtype.type(t), out=d)
            np.maximum(ts, d, out=ts)
    return y, tid


def max_pool2d_backprop(
    input_shape: Sequence[int], argmax: np.ndarray, dy: np.ndarray, geom: ConvGeometry
) -> np.ndarray:
    """Gradient of max pooling: dx[n, p, c] = sum of dy[n, oh, ow, c] over outputs whose argmax
    is p. Linear in dy (so its adjoint is :func:`max_pool2d_gather`).

    Args:
        input_shape: [N, H, W, C] of the pooled input.
        argmax: [N, Ho, Wo, C] flat H*W indices from :func:`max_pool2d`.
        dy: [N, Ho, Wo, C] gradient of the pooled output.
        geom: the pooling geometry.

    Returns:
        dx [N, H, W, C] with dy's dtype (float64 for integer dy). Disjoint windows (the usual
        k <= s): per tap, dy of the outputs won by that tap goes to the tap's strided slice of
        dx. Overlapping windows: one np.bincount scatter-add.
    """
    op = "max_pool2d_backprop"
    n, h, w, c = _shape4(op, "input_shape", input_shape, _RANK_ERROR)
    _check_input(op, "input_shape", (n, h, w, c), geom, 0)
    argmax, dy = _arr4(op, "argmax", argmax, "iu"), _arr4(op, "dy", dy)
    _check_out(op, "argmax", argmax.shape, n, c, geom)
    _check_out(op, "dy", dy.shape, n, c, geom)
    dt = _float_dtype(dy.dtype)
    dy = dy.astype(dt, copy=False)
    if argmax.size and (argmax.min() < 0 or argmax.max() >= h * w):
        raise ValueError(f"{op}: argmax holds indices outside [0, H*W = {h * w})")
    if not _disjoint(geom):
        # Overlapping windows: an input element can collect dy from several outputs. One
        # bincount over global flat indices (n*H*W + argmax)*C + c does the whole scatter-add
        # (it sums in float64, then rounds once to dt).
        flat = argmax.astype(np.int64) * c
        flat += (np.arange(n, dtype=np.int64) * (h * w * c))[:, None, None, None]
        flat += np.arange(c, dtype=np.int64)
        dx = np.bincount(flat.ravel(), weights=dy.ravel(), minlength=n * h * w * c)
        return dx.astype(dt, copy=False).reshape(n, h, w, c)
    # Disjoint windows: each input element is in at most one window, so the taps write
    # disjoint elements of dx: plain assignment, and no zero fill if the windows tile x exactly.
    dx = (np.empty if _tiles(geom) else np.zeros)((n, h, w, c), dtype=dt)
    hit = np.empty(dy.shape, dtype=bool)
    for t, (oh, ow, ih, iw, _) in enumerate(_taps(geom)):
        # the outputs whose winner is this tap's element send their dy there, the others 0
        ht = hit[:, oh, ow, :]
        np.equal(argmax[:, oh, ow, :], _tap_index(geom, t, argmax.dtype), out=ht)
        np.multiply(dy[:, oh, ow, :], ht, out=dx[:, ih, iw, :])
    return dx


def max_pool2d_gather(gx: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`max_pool2d_backprop` in dy: gy[n, oh, ow, c] = gx[n, argmax // W,
    argmax % W, c]. Used for double backward through max pooling.

    Args:
        gx: [N, H, W, C], shaped like the pooled input.
        argmax: [N, Ho, Wo, C] from :func:`max_pool2d`.

    Returns:
        gy [N, Ho, Wo, C] with gx's dtype.
    """
    op = "max_pool2d_gather"
    gx, argmax = _arr4(op, "gx", gx), _arr4(op, "argmax", argmax, "iu")
    n, h, w, c = gx.shape
    if argmax.shape[0] != n or argmax.shape[3] != c:
        raise ValueError(
            f"{op}: argmax shape {argmax.shape} does not match gx shape {gx.shape} in batch "
            "and channels"
        )
    if argmax.size and (argmax.min() < 0 or argmax.max() >= h * w):
        raise ValueError(
            f"{op}: argmax holds indices outside [0, H*W = {h * w}) for gx shape {gx.shape}"
        )
    _, ho, wo, _ = argmax.shape
    gy = np.take_along_axis(gx.reshape(n, h * w, c), argmax.reshape(n, ho * wo, c), axis=1)
    return gy.reshape(n, ho, wo, c)


# ----------------------------------------------------------------------------- average pooling


def avg_pool2d(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Average pooling like ``tf.nn.avg_pool2d``: each window's sum divided by the number of its
    in-bounds elements (so 'SAME' borders average fewer elements, padding never counts).

    Args:
        x: input [N, H, W, C].
        geom: from ``padding.pool_geometry``.

    Returns:
        y [N, Ho, Wo, C], x's dtype (float64 for integer x).
    """
    op = "avg_pool2d"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 0)
    n, _, _, c = x.shape
    dt = _float_dtype(x.dtype)
    ho, wo = geom.output_hw
    taps = _taps(geom)
    # a tap that reaches every output (tap (0, 0) without top/left padding) is assigned, not
    # added: no zero fill
    full = [k for k, (oh, ow, *_) in enumerate(taps) if _len(oh, ho) == ho and _len(ow, wo) == wo]
    y = (np.empty if full else np.zeros)((n, ho, wo, c), dtype=dt)
    if full:
        oh, ow, ih, iw, _ = taps[full[0]]
        y[:, oh, ow, :] = x[:, ih, iw, :]
    for k, (oh, ow, ih, iw, _) in enumerate(taps):
        if not full or k != full[0]:
            y[:, oh, ow, :] += x[:, ih, iw, :]
    counts = _counts(op, geom)
    y /= counts if isinstance(counts, float) else counts.astype(dt)
    return y


def avg_pool2d_backprop(
    input_shape: Sequence[int], dy: np.ndarray, geom: ConvGeometry
) -> np.ndarray:
    """Gradient (the adjoint) of :func:`avg_pool2d`: each output's dy / count is spread over the
    in-bounds elements of its window.

    Args:
        input_shape: [N, H, W, C] of the pooled input.
        dy: [N, Ho, Wo, C].
        geom: the pooling geometry.

    Returns:
        dx [N, H, W, C], dy's dtype (float64 for integer dy).
    """
    op = "avg_pool2d_backprop"
    n, h, w, c = _shape4(op, "input_shape", input_shape, _RANK_ERROR)
    _check_input(op, "input_shape", (n, h, w, c), geom, 0)
    dy = _arr4(op, "dy", dy)
    _check_out(op, "dy", dy.shape, n, c, geom)
    dt = _float_dtype(dy.dtype)
    counts = _counts(op, geom)
    g = dy / (counts if isinstance(counts, float) else counts.astype(dt))
    g = g.astype(dt, copy=False)
    if _disjoint(geom):  # every input element gets dy/count from at most one window
        dx = (np.empty if _tiles(geom) else np.zeros)((n, h, w, c), dtype=dt)
        for oh, ow, ih, iw, _ in _taps(geom):
            dx[:, ih, iw, :] = g[:, oh, ow, :]
        return dx
    dx = np.zeros((n, h, w, c), dtype=dt)
    for oh, ow, ih, iw, _ in _taps(geom):
        dx[:, ih, iw, :] += g[:, oh, ow, :]
    return dx

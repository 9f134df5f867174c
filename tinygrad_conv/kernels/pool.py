"""Max and average pooling on NHWC ndarrays, with their gradients, TF semantics.

Every kernel is a loop over the kh*kw window taps. Tap (i, j) of output pixel (oh, ow) reads
input (oh*sh + i - top, ow*sw + j - left); ``axis_taps`` clips each tap to the real input, so the
padding never has to be materialised: max pooling pads with -inf (a padded element never wins)
and average pooling divides by the number of in-bounds elements, exactly as TF does.
Each tap step is a few whole-array numpy operations on strided slices; there are no Python loops
over batch items or pixels and no big (N, Ho, Wo, kh, kw, C) temporaries.

Speed notes (numpy's masked copies, ``np.copyto(where=)`` / ``np.where``, run ~50x slower than
plain arithmetic on random masks): max pooling keeps y with ``np.maximum`` and tracks *which tap*
won in a small unsigned array updated arithmetically. That array is the argmax itself: the
window-local position i*kw + j of the winning tap (uint8 for windows of up to 256 taps), never
converted to flat input indices on the hot path (``max_pool2d_flat_argmax`` does that on request).
The gradient, for windows that tile the input (k == s, the usual 2x2 pooling), upsamples dy and
argmax to x's shape and does one compare with the window positions and one multiply; for other
disjoint windows (k < s) it is per tap one compare of argmax with the tap's scalar position and
one multiply into the tap's slice of dx; overlapping windows convert argmax to flat indices and
do a single ``np.bincount`` scatter-add.
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
    "max_pool2d_flat_argmax",
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


def _per_axis(geom: ConvGeometry):
    (h, w), (kh, kw), (ho, wo) = geom.input_hw, geom.kernel_hw, geom.output_hw
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilations, geom.pads
    return ((h, kh, sh, dh, top, ho), (w, kw, sw, dw, left, wo))


def _empty_window_error(op: str, geom: ConvGeometry) -> ValueError:
    return ValueError(
        f"{op}: some pooling window lies entirely in the padding ({geom}); "
        "pads must be smaller than the window"
    )


def _arg_dtype(window: int) -> np.dtype:
    """The argmax dtype for windows of ``window`` = kh*kw taps (positions 0 .. window-1)."""
    return np.dtype(np.uint8 if window <= 256 else np.uint16 if window <= 65536 else np.int32)


@functools.lru_cache(maxsize=512)
def _first_taps(op: str, geom: ConvGeometry) -> np.ndarray:
    """(1, Ho, Wo, 1), in the argmax dtype: the window position i*kw + j of each output's first
    in-bounds tap (row-major), i.e. the argmax of a window whose elements are all the lowest value.
    Raises if some window lies entirely in the padding."""
    ho, wo = geom.output_hw
    first = np.full((ho, wo), -1, dtype=np.int64)
    for oh, ow, _, _, k in reversed(_taps(geom)):  # earliest tap written last
        first[oh, ow] = k
    if (first < 0).any():
        raise _empty_window_error(op, geom)
    out = first.astype(_arg_dtype(geom.kernel_hw[0] * geom.kernel_hw[1]))[None, :, :, None]
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=512)
def _valid_taps(geom: ConvGeometry) -> tuple[np.ndarray, np.ndarray] | None:
    """Which taps of each window are in bounds, per axis: bool tables (Ho, kh) and (Wo, kw)
    (tap (i, j) of output (oh, ow) is in bounds iff both [oh, i] and [ow, j] are), or None when
    every tap of every window is (no padding reached, e.g. any 'VALID' geometry)."""
    tables = []
    for size, k, s, d, lo, o in _per_axis(geom):
        v = np.zeros((o, k), dtype=bool)
        for t, tap in enumerate(axis_taps(size, k, s, d, lo, 0, o)):
            if tap is not None:
                v[tap[0], t] = True
        v.flags.writeable = False
        tables.append(v)
    return None if all(v.all() for v in tables) else (tables[0], tables[1])


@functools.lru_cache(maxsize=512)
def _flat_tables(geom: ConvGeometry, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, base) in dtype: window position k = i*kw + j of output (oh, ow) reads the flat
    H*W index base[0, oh, ow, 0] + offsets[k], with offsets[k] = i*dh*W + j*dw and
    base = (oh*sh - top)*W + (ow*sw - left). (In int32 the sum is right even if a part wraps.)"""
    w, (ho, wo), (kh, kw) = geom.input_hw[1], geom.output_hw, geom.kernel_hw
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilations, geom.pads
    k = np.arange(kh * kw, dtype=np.int64)
    offsets = (k // kw) * (dh * w) + (k % kw) * dw
    base = (np.arange(ho, dtype=np.int64) * sh - top)[:, None] * w
    base = base + (np.arange(wo, dtype=np.int64) * sw - left)[None, :]
    out = (offsets.astype(dtype), base[None, :, :, None].astype(dtype))
    for a in out:
        a.flags.writeable = False
    return out


def _to_flat(argmax: np.ndarray, geom: ConvGeometry, dtype: type) -> np.ndarray:
    """Window positions (already validated) -> flat H*W indices ih*W + iw, in dtype."""
    offsets, base = _flat_tables(geom, np.dtype(dtype))
    flat = np.take(offsets, argmax)
    flat += base
    return flat


def _check_argmax(op: str, argmax: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Check that argmax (4-D integer, shape already checked) holds, for every output, the window
    position of one of its window's in-bounds taps. Returns argmax, widened if its dtype cannot
    hold every window position of the geometry."""
    kh, kw = geom.kernel_hw
    window = kh * kw
    if argmax.size == 0:
        return argmax
    signed = argmax.dtype.kind == "i"
    top = 2 ** (8 * argmax.dtype.itemsize - signed) - 1  # the dtype's largest value
    if (top >= window and argmax.max() >= window) or (signed and argmax.min() < 0):
        raise ValueError(
            f"{op}: argmax holds window positions outside [0, kh*kw = {window}) ({geom}); "
            "argmax must be max_pool2d's, for the same geometry"
        )
    if top < window - 1:
        argmax = argmax.astype(_arg_dtype(window))
    valid = _valid_taps(geom)
    if valid is not None:  # some windows reach into the padding: no argmax may point there
        vh, vw = valid
        ho, wo = geom.output_hw
        i, j = np.divmod(argmax, argmax.dtype.type(kw))
        ok = vh[np.arange(ho).reshape(1, ho, 1, 1), i]
        ok &= vw[np.arange(wo).reshape(1, 1, wo, 1), j]
        if not ok.all():
            pos = tuple(int(v) for v in np.argwhere(~ok)[0])
            k = int(argmax[pos])
            raise ValueError(
                f"{op}: argmax{list(pos)} = {k} points at window tap (i, j) = ({k // kw}, "
                f"{k % kw}), which lies in the padding ({geom}); argmax must be max_pool2d's, "
                "for the same geometry"
            )
    return argmax


@functools.lru_cache(maxsize=512)
def _disjoint(geom: ConvGeometry) -> bool:
    """No two windows share an input element: (k - 1) d < s on both axes."""
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel_hw, geom.strides, geom.dilations
    return (kh - 1) * dh < sh and (kw - 1) * dw < sw


@functools.lru_cache(maxsize=512)
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
        (y, argmax): y [N, Ho, Wo, C] with x's dtype; argmax [N, Ho, Wo, C], the window-local
        position i*kw + j (row-major within the kh x kw window, padding included) of the tap whose
        element y came from: uint8 when kh*kw <= 256, else uint16 (int32 beyond 65536 taps).
        It always names an in-bounds tap. Ties go to the first element of the window in
        row-major order, like TF. A NaN in a window makes y NaN there and argmax points at the
        window's first NaN. :func:`max_pool2d_flat_argmax` turns argmax into flat ih*W + iw
        indices into x's H*W plane.
    """
    op = "max_pool2d"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 0)
    first = _first_taps(op, geom)
    y, argmax = _max_and_tap(x, geom, first, nan_aware=False)
    if x.dtype.kind == "f" and np.isnan(y).any():  # np.maximum let a NaN through: redo exactly
        y, argmax = _max_and_tap(x, geom, first, nan_aware=True)
    return y, argmax


def max_pool2d_flat_argmax(argmax: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Window-local argmax (from :func:`max_pool2d`) -> flat index ih*W + iw into the input's
    H*W plane, as int32 (int64 if H*W >= 2**31): PyTorch's ``max_pool2d`` indices in NHWC.
    TF's ``max_pool_with_argmax(include_batch_in_index=False)`` is ``flat * C + c``.

    Args:
        argmax: [N, Ho, Wo, C] window positions i*kw + j of in-bounds taps.
        geom: the pooling geometry argmax was computed with.
    """
    op = "max_pool2d_flat_argmax"
    argmax = _arr4(op, "argmax", argmax, "iu")
    if not isinstance(geom, ConvGeometry):
        raise TypeError(
            f"{op}: geom must be a ConvGeometry (from pool_geometry), got {type(geom).__name__}"
        )
    _check_out(op, "argmax", argmax.shape, argmax.shape[0], argmax.shape[3], geom)
    argmax = _check_argmax(op, argmax, geom)
    h, w = geom.input_hw
    return _to_flat(argmax, geom, _index_dtype(h * w))


def max_pool2d_values(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """Max pooling without the argmax (inference: nothing to differentiate). x: [N, H, W, C]
    -> y [N, Ho, Wo, C], the same values as ``max_pool2d(x, geom)[0]`` (NaN wins, as there)."""
    op = "max_pool2d"
    x = _arr4(op, "x", x)
    _check_input(op, "x", x.shape, geom, 0)
    _first_taps(op, geom)  # validates that no window lies entirely in the padding
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
    """y = max over the window taps, and tid = window position i*kw + j of the winning tap.

    Taps run in row-major order; a later tap wins only if it is strictly greater than the
    running maximum (TF's first-wins tie rule, also right when the maximum is -inf). Such
    "record-breaking" taps come in increasing order and each one's window position k exceeds
    every earlier winner's, so tid = max(tid, k * better) tracks the last record, i.e. the first
    occurrence of the maximum: two fast passes per tap instead of a slow masked copy. Every tid
    starts at its window's first in-bounds tap (``first``); when the first entry of _taps(geom)
    reaches every output it is simply copied into y. With nan_aware, a NaN beats every number
    and the first NaN stays (y becomes NaN, tid points at it).
    """
    n, _, _, c = x.shape
    ho, wo = geom.output_hw
    taps = _taps(geom)
    shape = (n, ho, wo, c)
    tid = np.empty(shape, dtype=first.dtype)
    oh, ow, ih, iw, k = taps[0]
    start = 0
    if not nan_aware and _len(oh, ho) == ho and _len(ow, wo) == wo:
        y = np.empty(shape, dtype=x.dtype)
        np.copyto(y, x[:, ih, iw, :])
        tid.fill(k)
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
        oh, ow, ih, iw, k = taps[t]
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
        if t:  # (tap 0 is already in ``first`` wherever it is in bounds)
            np.multiply(b_as_int(b), first.dtype.type(k), out=d)
            np.maximum(ts, d, out=ts)
    return y, tid


def max_pool2d_backprop(
    input_shape: Sequence[int],
    argmax: np.ndarray,
    dy: np.ndarray,
    geom: ConvGeometry,
    *,
    check_argmax: bool = True,
) -> np.ndarray:
    """Gradient of max pooling: dx[n, p, c] = sum of dy[n, oh, ow, c] over outputs whose argmax
    names input element p. Linear in dy (so its adjoint is :func:`max_pool2d_gather`).

    Args:
        input_shape: [N, H, W, C] of the pooled input.
        argmax: [N, Ho, Wo, C] window positions i*kw + j from :func:`max_pool2d` (any integer
            dtype); each must name an in-bounds tap of its window.
        dy: [N, Ho, Wo, C] gradient of the pooled output.
        geom: the pooling geometry.
        check_argmax: validate argmax's values (a pass over it, more with padding). The graph
            nodes pass False for the argmax that max_pool2d itself returned.

    argmax holds window positions, not the flat indices ih*W + iw that TF and PyTorch use (and
    that this function took in earlier versions); :func:`max_pool2d_flat_argmax` converts.

    Returns:
        dx [N, H, W, C] with dy's dtype (float64 for integer dy). Tiling windows (k == s): dy
        upsampled to x's shape, kept where the upsampled argmax equals the element's window
        position. Other disjoint windows: per tap, dy of the outputs won by that tap (argmax ==
        its window position) goes to the tap's strided slice of dx. Overlapping windows: one
        np.bincount scatter-add.
    """
    op = "max_pool2d_backprop"
    n, h, w, c = _shape4(op, "input_shape", input_shape, _RANK_ERROR)
    _check_input(op, "input_shape", (n, h, w, c), geom, 0)
    argmax, dy = _arr4(op, "argmax", argmax, "iu"), _arr4(op, "dy", dy)
    _check_out(op, "argmax", argmax.shape, n, c, geom)
    _check_out(op, "dy", dy.shape, n, c, geom)
    if check_argmax:
        argmax = _check_argmax(op, argmax, geom)
    dt = _float_dtype(dy.dtype)
    dy = dy.astype(dt, copy=False)
    if not _disjoint(geom):
        # Overlapping windows: an input element can collect dy from several outputs. One
        # bincount over global flat indices (n*H*W + ih*W + iw)*C + c does the whole scatter-add
        # (it sums in float64, then rounds once to dt).
        flat = _to_flat(argmax, geom, np.int64)
        flat *= c
        flat += (np.arange(n, dtype=np.int64) * (h * w * c))[:, None, None, None]
        flat += np.arange(c, dtype=np.int64)
        dx = np.bincount(flat.ravel(), weights=dy.ravel(), minlength=n * h * w * c)
        return dx.astype(dt, copy=False).reshape(n, h, w, c)
    # Disjoint windows: each input element is in at most one window, so the taps write
    # disjoint elements of dx: plain assignment (the zero fill is for elements no window reads).
    if _tiles(geom):
        return _tile_backprop(argmax, dy, (n, h, w, c), geom)
    dx = np.zeros((n, h, w, c), dtype=dt)
    hit = np.empty(dy.shape, dtype=bool)
    k_of = argmax.dtype.type
    for oh, ow, ih, iw, k in _taps(geom):
        # the outputs won by this tap send their dy to its element, the others send 0
        ht = hit[:, oh, ow, :]
        np.equal(argmax[:, oh, ow, :], k_of(k), out=ht)
        np.multiply(dy[:, oh, ow, :], ht, out=dx[:, ih, iw, :])
    return dx


@functools.lru_cache(maxsize=64)
def _window_positions(kh: int, kw: int, w: int, c: int, dtype: np.dtype) -> np.ndarray:
    """(kh, W, C) array of i*kw + j: each element's position in its window, for one band of kh
    input rows of tiling windows (the same for every band)."""
    pos = np.arange(kh)[:, None] * kw + (np.arange(w) % kw)[None, :]
    out = np.empty((kh, w, c), dtype=dtype)
    out[...] = pos[:, :, None]
    out.flags.writeable = False
    return out


def _tile_backprop(
    argmax: np.ndarray, dy: np.ndarray, input_shape: tuple[int, int, int, int], geom: ConvGeometry
) -> np.ndarray:
    """max_pool2d_backprop for tiling windows: dx[n, oh*kh + i, ow*kw + j, c] = dy[n, oh, ow, c]
    where argmax[n, oh, ow, c] == i*kw + j, else 0.

    dy and argmax are first upsampled to x's shape by np.repeat (copies of whole C-element runs),
    so the compare with the window positions and the multiply are single contiguous passes.
    Measured against one pass per tap over strided slices: [64,8,8,16] 130 -> 89 us,
    [64,4,4,32] 80 -> 50 us, [1,8,8,16] 30 -> 21 us.
    """
    n, h, w, c = input_shape
    kh, kw = geom.kernel_hw
    up = np.repeat(np.repeat(dy, kh, axis=1), kw, axis=2)  # a fresh array: dx is built in it
    arg_up = np.repeat(np.repeat(argmax, kh, axis=1), kw, axis=2)
    hit = np.equal(
        arg_up.reshape(n * (h // kh), kh, w, c), _window_positions(kh, kw, w, c, argmax.dtype)
    )
    return np.multiply(up, hit.reshape(up.shape), out=up)


def max_pool2d_gather(
    gx: np.ndarray, argmax: np.ndarray, geom: ConvGeometry, *, check_argmax: bool = True
) -> np.ndarray:
    """Adjoint of :func:`max_pool2d_backprop` in dy: gy[n, oh, ow, c] = gx[n, ih, iw, c] at the
    element (ih, iw) that argmax names. Used for double backward through max pooling.

    Args:
        gx: [N, H, W, C], shaped like the pooled input.
        argmax: [N, Ho, Wo, C] window positions from :func:`max_pool2d`.
        geom: the pooling geometry.
        check_argmax: validate argmax's values (see :func:`max_pool2d_backprop`).

    Returns:
        gy [N, Ho, Wo, C] with gx's dtype.
    """
    op = "max_pool2d_gather"
    gx, argmax = _arr4(op, "gx", gx), _arr4(op, "argmax", argmax, "iu")
    _check_input(op, "gx", gx.shape, geom, 0)
    n, h, w, c = gx.shape
    if argmax.shape[0] != n or argmax.shape[3] != c:
        raise ValueError(
            f"{op}: argmax shape {argmax.shape} does not match gx shape {gx.shape} in batch "
            "and channels"
        )
    _check_out(op, "argmax", argmax.shape, n, c, geom)
    if check_argmax:
        argmax = _check_argmax(op, argmax, geom)
    _, ho, wo, _ = argmax.shape
    flat = _to_flat(argmax, geom, _index_dtype(h * w))
    gy = np.take_along_axis(gx.reshape(n, h * w, c), flat.reshape(n, ho * wo, c), axis=1)
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

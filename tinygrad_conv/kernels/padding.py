"""TensorFlow's padding arithmetic for 2-D convolution and pooling.

Everything here works on shapes and small integers only. The result is a frozen
:class:`ConvGeometry` that every member of the conv family (conv2d, its two backprops,
conv2d_transpose) and the pooling kernels share, so nobody re-derives output sizes or padding
splits.

One spatial axis, with input size i, kernel k, stride s, dilation d, pads (p_lo, p_hi):

* effective kernel  e = d (k - 1) + 1
* output size       o = floor((i + p_lo + p_hi - e) / s) + 1
* leftover          r = (i + p_lo + p_hi - e) mod s: the last r padded rows are never read by any
  window, so the input gradient there is exactly zero.
* 'SAME'  (TF):     o = ceil(i / s), total = max((o - 1) s + e - i, 0), p_lo = total // 2,
  p_hi = total - p_lo (the odd extra row/column goes to the bottom/right).
* 'VALID':          p_lo = p_hi = 0.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConvGeometry",
    "conv_geometry",
    "pool_geometry",
    "groups_of",
    "check_out_backprop",
    "tap_slices",
    "axis_taps",
    "conv_geometry_nd",
    "pool_geometry_nd",
    "channels_last",
    "DATA_FORMATS_ND",
]

_DATA_FORMATS = ("NHWC", "NCHW")


@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """Resolved geometry of a convolution or pooling window (spatial axes only).

    For 2-D all pairs are (height, width) and ``pads`` is ((top, bottom), (left, right)). The
    same class serves 1-D and 3-D (:func:`conv_geometry_nd`): every field then holds one entry
    per spatial axis (W, or D, H, W), despite the ``_hw`` names kept from 2-D.
    """

    input_hw: tuple[int, int]
    kernel_hw: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    output_hw: tuple[int, int]

    @property
    def effective_kernel_hw(self) -> tuple[int, ...]:
        """Dilated kernel extent e = d (k - 1) + 1 per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_hw, self.dilations, strict=True))

    @property
    def leftover(self) -> tuple[int, int]:
        """r = (i + p_lo + p_hi - e) mod s per axis: bottom/right padded rows no window touches."""
        return tuple(  # type: ignore[return-value]
            (i + lo + hi - e) % s
            for i, (lo, hi), e, s in zip(
                self.input_hw, self.pads, self.effective_kernel_hw, self.strides, strict=True
            )
        )

    @property
    def rank(self) -> int:
        """Number of spatial axes (1, 2 or 3; the fields are tuples of that length)."""
        return len(self.input_hw)

    def __str__(self) -> str:
        if self.rank != 2:

            def x(v: tuple[int, ...]) -> str:
                return "x".join(map(str, v))

            return (
                f"{x(self.input_hw)} -> {x(self.output_hw)}, kernel {x(self.kernel_hw)}, "
                f"strides {self.strides}, dilations {self.dilations}, pads {self.pads}"
            )
        (h, w), (kh, kw), (oh, ow) = self.input_hw, self.kernel_hw, self.output_hw
        (t, b), (l, r) = self.pads
        return (
            f"{h}x{w} -> {oh}x{ow}, kernel {kh}x{kw}, strides {self.strides}, "
            f"dilations {self.dilations}, pads top/bottom ({t},{b}) left/right ({l},{r})"
        )


# ------------------------------------------------------------------------ normalisation helpers


def _is_int(v: Any) -> bool:
    # bool is an int subclass, but strides=True is almost surely a mistake
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_data_format(op: str, data_format: Any) -> str:
    if not isinstance(data_format, str) or data_format.upper() not in _DATA_FORMATS:
        raise ValueError(f"{op}: data_format must be one of {_DATA_FORMATS}, got {data_format!r}")
    return data_format.upper()


def _shape4(
    op: str,
    name: str,
    shape: Any,
    rank_error: str = "must have rank 4, got shape {dims} (rank {rank})",
) -> tuple[int, int, int, int]:
    """``shape`` as a tuple of 4 Python ints, shared by the kernels (conv, pool) and this module.

    ``rank_error`` is the wording of the wrong-length error after "{op}: {name} "; it may use
    {dims} (the entries as a tuple), {shape} (repr of the argument) and {rank}.
    """
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of 4 ints, got {shape!r}") from None
    if len(dims) != 4:
        msg = rank_error.format(dims=dims, shape=repr(shape), rank=len(dims))
        raise ValueError(f"{op}: {name} {msg}")
    for v in dims:
        if type(v) is not int and not _is_int(v):
            raise TypeError(f"{op}: {name} must contain ints, got {shape!r}")
    return tuple(int(v) for v in dims)  # type: ignore[return-value]


def _check_input(
    op: str, name: str, shape: tuple[int, ...], geom: ConvGeometry, min_channels: int
) -> None:
    """Check an NHWC input shape against ``geom`` (the kernels' shared check): spatial size as
    the geometry's, N >= 0 and C >= ``min_channels`` (1 for convolutions, 0 for pooling)."""
    if not isinstance(geom, ConvGeometry):
        raise TypeError(
            f"{op}: geom must be a ConvGeometry (from conv_geometry / pool_geometry), "
            f"got {type(geom).__name__}"
        )
    if shape[1:3] != geom.input_hw or shape[0] < 0 or shape[3] < min_channels:
        channels = f"C >= {min_channels}" if min_channels > 0 else "C"
        raise ValueError(
            f"{op}: {name} has shape {tuple(shape)} (NHWC) but the geometry expects "
            f"[N, {geom.input_hw[0]}, {geom.input_hw[1]}, {channels}] ({geom})"
        )


def _spatial_and_channels(data_format: str, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(N, H, W, C) from a 4-D shape in data_format order."""
    if data_format == "NHWC":
        n, h, w, c = shape
    else:
        n, c, h, w = shape
    return n, h, w, c


def _hw_pair(op: str, name: str, value: Any, data_format: str) -> tuple[int, int]:
    """TF's int / [v] / [vh, vw] / 4-list-in-data_format-order forms -> (vh, vw), each >= 1."""
    if _is_int(value):
        vals: tuple[Any, ...] = (value, value)
    elif _is_array_like(value):
        seq = tuple(value)
        for v in seq:
            if not _is_int(v):
                raise TypeError(f"{op}: {name} must be an int or a list of ints, got {value!r}")
        if len(seq) == 1:
            vals = (seq[0], seq[0])
        elif len(seq) == 2:
            vals = seq
        elif len(seq) == 4:
            if data_format == "NHWC":
                nb, vh, vw, ch = seq
            else:
                nb, ch, vh, vw = seq
            if nb != 1 or ch != 1:
                raise ValueError(
                    f"{op}: {name} in 4-element form must be 1 in the batch and channel "
                    f"positions ({data_format} order), got {list(seq)}"
                )
            vals = (vh, vw)
        else:
            raise ValueError(
                f"{op}: {name} must be an int or a list of 1, 2 or 4 ints, got {list(seq)} "
                f"(length {len(seq)})"
            )
    else:
        raise TypeError(f"{op}: {name} must be an int or a list of ints, got {value!r}")
    out = (int(vals[0]), int(vals[1]))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value!r}")
    return out


def _is_array_like(value: Any) -> bool:
    # numpy arrays / tuples from np.shape etc. without importing numpy here
    return (
        hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, str)
    )


def _pair(op: str, p: Any, padding: Any) -> tuple[int, int]:
    if not _is_array_like(p) or len(p) != 2:
        raise ValueError(f"{op}: padding entries must be [before, after] pairs, got {padding!r}")
    lo, hi = p[0], p[1]
    if not (_is_int(lo) and _is_int(hi)):
        raise TypeError(f"{op}: padding must contain ints, got {padding!r}")
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return lo, hi


def _explicit_pads(
    op: str, padding: Any, data_format: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """TF's 4-pair form (data_format order, zero batch/channel pairs) or [[t, b], [l, r]]."""
    if not _is_array_like(padding) or len(padding) not in (2, 4):
        raise ValueError(
            f"{op}: padding must be 'VALID', 'SAME', [[top, bottom], [left, right]] or TF's "
            f"4-pair form, got {padding!r}"
        )
    pairs = [_pair(op, p, padding) for p in padding]
    if len(pairs) == 2:
        return pairs[0], pairs[1]
    if data_format == "NHWC":
        nb, ph, pw, ch = pairs
    else:
        nb, ch, ph, pw = pairs
    if nb != (0, 0) or ch != (0, 0):
        raise ValueError(
            f"{op}: padding in 4-pair form must be [0, 0] in the batch and channel positions "
            f"({data_format} order), got {padding!r}"
        )
    return ph, pw


def _resolve_pads(
    op: str,
    padding: Any,
    data_format: str,
    input_hw: tuple[int, int],
    eff_hw: tuple[int, int],
    strides: tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0), (0, 0)
        if mode == "SAME":
            pads = []
            for i, e, s in zip(input_hw, eff_hw, strides, strict=True):
                o = -(-i // s)  # ceil(i / s)
                total = max((o - 1) * s + e - i, 0)
                pads.append((total // 2, total - total // 2))  # extra row goes bottom/right
            return pads[0], pads[1]
        raise ValueError(
            f"{op}: padding must be 'VALID', 'SAME' or explicit pairs, got {padding!r}"
        )
    return _explicit_pads(op, padding, data_format)


def _output_hw(
    op: str,
    what: str,
    input_hw: tuple[int, int],
    eff_hw: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[tuple[int, int], tuple[int, int]],
) -> tuple[int, int]:
    out = []
    for axis, i, e, s, (lo, hi) in zip(
        ("height", "width"), input_hw, eff_hw, strides, pads, strict=True
    ):
        span = i + lo + hi - e
        if span < 0:
            raise ValueError(
                f"{op}: {what} {axis} {e} is larger than the padded input {axis} {i + lo + hi} "
                f"(input {input_hw[0]}x{input_hw[1]}, pads {pads}): output size would be < 1"
            )
        out.append(span // s + 1)
    return out[0], out[1]


# ----------------------------------------------------------------------------- public API


def conv_geometry(
    op: str,
    input_shape: Sequence[int],
    filter_shape: Sequence[int],
    strides: int | Sequence[int],
    padding: str | Sequence[Sequence[int]],
    dilations: int | Sequence[int] = 1,
    data_format: str = "NHWC",
) -> ConvGeometry:
    """Resolve and validate the geometry of a 2-D convolution, TF style.

    Args:
        op: name of the calling op, used in every error message.
        input_shape: 4-D input shape in ``data_format`` order ([N,H,W,C] or [N,C,H,W]).
        filter_shape: HWIO filter shape [kh, kw, Cin / groups, Cout].
        strides, dilations: int, or 1, 2 or 4 ints (4-form in data_format order, 1 at N and C).
        padding: 'VALID', 'SAME', [[top, bottom], [left, right]], or TF's 4-pair form in
            data_format order (batch/channel pairs must be [0, 0]).
        data_format: 'NHWC' or 'NCHW'.

    Returns:
        The frozen :class:`ConvGeometry`.

    Raises:
        ValueError: bad rank, channel mismatch, strides/dilations < 1 or of wrong length, unknown
            padding or data_format, negative pads, filter larger than the padded input.
        TypeError: non-int shape, stride, dilation or pad values.
    """
    data_format = _check_data_format(op, data_format)
    xs = _shape4(op, "input shape", input_shape)
    fs = _shape4(op, "filter shape", filter_shape)
    n, h, w, c = _spatial_and_channels(data_format, xs)
    kh, kw, cg, cout = fs
    if n < 0 or h < 1 or w < 1 or c < 1:
        raise ValueError(
            f"{op}: input shape {xs} ({data_format}) must have positive height, width and channels"
        )
    if kh < 1 or kw < 1 or cg < 1 or cout < 1:
        raise ValueError(f"{op}: filter shape {fs} (HWIO) must have positive dimensions")
    if c % cg != 0:
        raise ValueError(
            f"{op}: input channels {c} (input shape {xs}, {data_format}) must be a multiple of "
            f"the filter's in-channels {cg} (filter shape {fs}, HWIO)"
            + layout_hint(xs, fs, c, data_format[-1] == "C")
        )
    groups = c // cg
    if cout % groups != 0:
        raise ValueError(
            f"{op}: filter out-channels {cout} (filter shape {fs}) must be divisible by "
            f"groups = {c} // {cg} = {groups} (input shape {xs})"
        )
    s = _hw_pair(op, "strides", strides, data_format)
    d = _hw_pair(op, "dilations", dilations, data_format)
    eff = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    pads = _resolve_pads(op, padding, data_format, (h, w), eff, s)
    out = _output_hw(op, f"filter (shape {fs}, dilations {d}): effective", (h, w), eff, s, pads)
    return ConvGeometry((h, w), (kh, kw), s, d, pads, out)


def pool_geometry(
    op: str,
    input_shape: Sequence[int],
    ksize: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str | Sequence[Sequence[int]],
    data_format: str = "NHWC",
) -> ConvGeometry:
    """Resolve and validate a pooling window's geometry like ``tf.nn.max_pool2d``.

    ``ksize`` and ``strides`` take an int or 1, 2 or 4 ints (4-form in data_format order with 1 at
    N and C). ``padding`` as in :func:`conv_geometry`; explicit pads must be smaller than the
    window so that every window holds at least one input element. Dilations are (1, 1).
    """
    data_format = _check_data_format(op, data_format)
    xs = _shape4(op, "input shape", input_shape)
    n, h, w, c = _spatial_and_channels(data_format, xs)
    if n < 0 or h < 1 or w < 1 or c < 0:
        raise ValueError(f"{op}: input shape {xs} ({data_format}) must have positive height, width")
    k = _hw_pair(op, "ksize", ksize, data_format)
    s = _hw_pair(op, "strides", strides, data_format)
    pads = _resolve_pads(op, padding, data_format, (h, w), k, s)
    for axis, kk, (lo, hi) in zip(("height", "width"), k, pads, strict=True):
        if lo >= kk or hi >= kk:
            raise ValueError(
                f"{op}: padding {padding!r} must be smaller than ksize {k} along {axis}: "
                "a window would lie entirely in the padding"
            )
    out = _output_hw(op, f"ksize {k}: window", (h, w), k, s, pads)
    return ConvGeometry((h, w), k, s, (1, 1), pads, out)


def groups_of(input_shape_nhwc: Sequence[int], filter_shape: Sequence[int]) -> int:
    """Number of groups as TF infers it: input channels // filter in-channels (HWIO axis 2)."""
    return int(input_shape_nhwc[3]) // int(filter_shape[2])


def check_out_backprop(
    op: str,
    geom: ConvGeometry,
    out_backprop_shape: Sequence[int],
    batch: int,
    channels: int,
    data_format: str = "NHWC",
) -> None:
    """Raise ValueError unless ``out_backprop_shape`` is [batch, Ho, Wo, channels] for ``geom``.

    This is how ``conv2d_backprop_input`` / ``conv2d_transpose`` catch an input_sizes /
    output_shape that does not produce the given gradient's spatial size.
    """
    data_format = _check_data_format(op, data_format)
    dims = _shape4(op, "out_backprop shape", out_backprop_shape)
    oh, ow = geom.output_hw
    expected = (batch, oh, ow, channels) if data_format == "NHWC" else (batch, channels, oh, ow)
    if dims != expected:
        raise ValueError(
            f"{op}: out_backprop has shape {dims} ({data_format}) but the geometry "
            f"[{geom}] with batch {batch} and {channels} channels needs {expected}: "
            "input_sizes / output_shape is inconsistent with the gradient"
        )


@functools.lru_cache(maxsize=4096)
def axis_taps(
    size: int, k: int, s: int, d: int, pad_lo: int, o_lo: int, o_hi: int
) -> tuple[tuple[slice, slice] | None, ...]:
    """Per kernel tap t along one axis: (out, in) slices, clipped to the unpadded input.

    Output index o reads input o*s + t*d - pad_lo. For outputs o in [o_lo, o_hi), returns for each
    t in range(k) either None (the tap reads only padding there) or ``(out, in)`` where ``out`` is
    relative to o_lo and ``in`` is the strided slice of in-bounds input positions it reads.
    """
    res: list[tuple[slice, slice] | None] = []
    for t in range(k):
        off = t * d - pad_lo  # input index = o * s + off
        first = max(o_lo, -(off // s))  # ceil(-off / s): first o with a non-negative input index
        last = min(o_hi - 1, (size - 1 - off) // s)  # last o with input index < size
        if last < first:
            res.append(None)
        else:
            res.append(
                (
                    slice(first - o_lo, last - o_lo + 1),
                    slice(first * s + off, last * s + off + 1, s),
                )
            )
    return tuple(res)


def tap_slices(
    geom: ConvGeometry, i: int, j: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where kernel tap (i, j) lands, clipped to the unpadded input.

    Output pixel (oh, ow) reads input (oh*sh + i*dh - top, ow*sw + j*dw - left). Returns
    ``((out_h, out_w), (in_h, in_w))`` slices such that ``x[:, in_h, in_w]`` are exactly the
    in-bounds inputs read by tap (i, j) for the outputs ``y[:, out_h, out_w]`` (all others fall
    in the zero / -inf padding), or None when the tap touches no input at all.
    """
    (h, w), (kh, kw), (oh, ow) = geom.input_hw, geom.kernel_hw, geom.output_hw
    (sh, sw), (dh, dw), ((top, _), (left, _)) = geom.strides, geom.dilations, geom.pads
    th = axis_taps(h, kh, sh, dh, top, 0, oh)[i]
    tw = axis_taps(w, kw, sw, dw, left, 0, ow)[j]
    if th is None or tw is None:
        return None
    return (th[0], tw[0]), (th[1], tw[1])


# ----------------------------------------------------------------------------- any rank
#: Data formats per number of spatial axes: channels-last first (the kernels' layout).
DATA_FORMATS_ND = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def _nd_format(op: str, rank: int, data_format: Any) -> str:
    formats = DATA_FORMATS_ND[rank]
    if not isinstance(data_format, str) or data_format.upper() not in formats:
        raise ValueError(f"{op}: data_format must be one of {formats}, got {data_format!r}")
    return data_format.upper()


def _shape_n(op: str, name: str, shape: Any, n: int) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of {n} ints, got {shape!r}") from None
    if len(dims) != n:
        raise ValueError(f"{op}: {name} must have rank {n}, got shape {dims} (rank {len(dims)})")
    for v in dims:
        if not _is_int(v):
            raise TypeError(f"{op}: {name} must contain ints, got {shape!r}")
    return tuple(int(v) for v in dims)


def channels_last(shape: Sequence[int], data_format: str) -> tuple[int, ...]:
    """A shape in ``data_format`` order (channels second for 'NC...') as channels-last."""
    dims = tuple(int(v) for v in shape)
    return dims if data_format.upper()[1] != "C" else (dims[0], *dims[2:], dims[1])


def _nd_values(op: str, name: str, value: Any, rank: int, data_format: str) -> tuple[int, ...]:
    """int / [v] / r ints / r+2 ints in data_format order (1 at N and C) -> r ints, each >= 1."""
    if _is_int(value):
        vals: tuple[Any, ...] = (value,) * rank
    elif _is_array_like(value):
        seq = tuple(value)
        for v in seq:
            if not _is_int(v):
                raise TypeError(f"{op}: {name} must be an int or a list of ints, got {value!r}")
        if len(seq) == 1:
            vals = seq * rank
        elif len(seq) == rank:
            vals = seq
        elif len(seq) == rank + 2:
            full = channels_last(seq, data_format)
            if full[0] != 1 or full[-1] != 1:
                raise ValueError(
                    f"{op}: {name} in {rank + 2}-element form must be 1 in the batch and "
                    f"channel positions ({data_format} order), got {list(seq)}"
                )
            vals = full[1:-1]
        else:
            raise ValueError(
                f"{op}: {name} must be an int or a list of 1, {rank} or {rank + 2} ints for "
                f"{rank} spatial axes, got {list(seq)} (length {len(seq)})"
            )
    else:
        raise TypeError(f"{op}: {name} must be an int or a list of ints, got {value!r}")
    out = tuple(int(v) for v in vals)
    if min(out) < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value!r}")
    return out


def _nd_pads(
    op: str,
    padding: Any,
    data_format: str,
    size: tuple[int, ...],
    eff: tuple[int, ...],
    strides: tuple[int, ...],
) -> tuple[tuple[int, int], ...]:
    rank = len(size)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * rank
        if mode == "SAME":
            pads = []
            for i, e, st in zip(size, eff, strides, strict=True):
                total = max((-(-i // st) - 1) * st + e - i, 0)
                pads.append((total // 2, total - total // 2))  # the extra one goes at the end
            return tuple(pads)
        raise ValueError(
            f"{op}: padding must be 'VALID', 'SAME' or explicit pairs, got {padding!r}"
        )
    if not _is_array_like(padding) or len(padding) not in (rank, rank + 2):
        raise ValueError(
            f"{op}: padding must be 'VALID', 'SAME', {rank} [before, after] pairs or the "
            f"{rank + 2}-pair form, got {padding!r}"
        )
    pairs = tuple(_pair(op, p, padding) for p in padding)
    if len(pairs) == rank:
        return pairs
    full = channels_last(range(rank + 2), data_format)
    ordered = tuple(pairs[i] for i in full)
    if ordered[0] != (0, 0) or ordered[-1] != (0, 0):
        raise ValueError(
            f"{op}: padding in {rank + 2}-pair form must be [0, 0] in the batch and channel "
            f"positions ({data_format} order), got {padding!r}"
        )
    return ordered[1:-1]


def conv_geometry_nd(
    op: str,
    rank: int,
    input_shape: Sequence[int],
    kernel: Sequence[int],
    strides: int | Sequence[int],
    padding: str | Sequence[Sequence[int]],
    dilations: int | Sequence[int] = 1,
    data_format: str | None = None,
) -> ConvGeometry:
    """Resolve the geometry of a ``rank``-D convolution or pooling window, TF style.

    Args:
        op: name of the calling op, used in every error message.
        rank: number of spatial axes, 1, 2 or 3.
        input_shape: rank+2 ints in ``data_format`` order ([N, *spatial, C] or [N, C, *spatial]).
        kernel: the ``rank`` spatial kernel sizes (a filter's leading dims, or a pool's ksize).
        strides, dilations: int, 1, rank or rank+2 ints (rank+2 in data_format order, 1 at N, C).
        padding: 'VALID', 'SAME' (extra row at the end), ``rank`` [before, after] pairs or the
            rank+2-pair form in data_format order ([0, 0] at N and C).
        data_format: one of :data:`DATA_FORMATS_ND` [rank]; channels-last by default.

    Returns:
        A :class:`ConvGeometry` whose fields have ``rank`` entries each.
    """
    if rank not in DATA_FORMATS_ND:
        raise ValueError(f"{op}: rank must be 1, 2 or 3 spatial axes, got {rank!r}")
    fmt = _nd_format(op, rank, DATA_FORMATS_ND[rank][0] if data_format is None else data_format)
    xs = channels_last(_shape_n(op, "input shape", input_shape, rank + 2), fmt)
    ks = _shape_n(op, "kernel size", kernel, rank)
    size = xs[1:-1]
    if xs[0] < 0 or min(size) < 1:
        raise ValueError(
            f"{op}: input shape {tuple(input_shape)} ({fmt}) must have positive spatial sizes"
        )
    if min(ks) < 1:
        raise ValueError(f"{op}: kernel size {ks} must be positive")
    s = _nd_values(op, "strides", strides, rank, fmt)
    d = _nd_values(op, "dilations", dilations, rank, fmt)
    eff = tuple(dd * (k - 1) + 1 for k, dd in zip(ks, d, strict=True))
    pads = _nd_pads(op, padding, fmt, size, eff, s)
    out = []
    for axis, i, e, st, (lo, hi) in zip(range(rank), size, eff, s, pads, strict=True):
        span = i + lo + hi - e
        if span < 0:
            raise ValueError(
                f"{op}: effective kernel {e} (kernel {ks}, dilations {d}) is larger than the "
                f"padded input {i + lo + hi} along spatial axis {axis} (input {tuple(input_shape)},"
                f" {fmt}, pads {pads}): output size would be < 1"
            )
        out.append(span // st + 1)
    return ConvGeometry(size, ks, s, d, pads, tuple(out))


def pool_geometry_nd(
    op: str,
    rank: int,
    input_shape: Sequence[int],
    ksize: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str | Sequence[Sequence[int]],
    data_format: str | None = None,
) -> ConvGeometry:
    """A ``rank``-D pooling window's geometry like ``tf.nn.max_pool1d`` / ``max_pool3d``.

    ``ksize`` and ``strides``: int, 1, rank or rank+2 ints (rank+2 in data_format order, 1 at N
    and C). ``padding`` as in :func:`conv_geometry_nd`; explicit pads must be smaller than the
    window, so that every window holds at least one input element.
    """
    if rank not in DATA_FORMATS_ND:
        raise ValueError(f"{op}: rank must be 1, 2 or 3 spatial axes, got {rank!r}")
    fmt = _nd_format(op, rank, DATA_FORMATS_ND[rank][0] if data_format is None else data_format)
    _shape_n(op, "input shape", input_shape, rank + 2)
    k = _nd_values(op, "ksize", ksize, rank, fmt)
    geom = conv_geometry_nd(op, rank, input_shape, k, strides, padding, 1, fmt)
    for axis, kk, (lo, hi) in zip(range(rank), k, geom.pads, strict=True):
        if lo >= kk or hi >= kk:
            raise ValueError(
                f"{op}: padding {padding!r} must be smaller than ksize {k} along spatial axis "
                f"{axis}: a window would lie entirely in the padding"
            )
    return geom


def layout_hint(
    x_shape: Sequence[int], w_shape: Sequence[int], channels: int, channels_last: bool
) -> str:
    """A hint for a channel mismatch that looks like PyTorch's layouts (OIHW filter, NCHW data),
    for any rank: ``x_shape`` as given, ``w_shape`` read as [*k, I, O]; '' when none fits."""
    rank = len(w_shape) - 2
    cg = w_shape[-2]
    names = ("kw",) if rank == 1 else ("kh", "kw") if rank == 2 else ("kd", "kh", "kw")
    if len(names) != rank:
        names = tuple(f"k{i}" for i in range(rank))
    k = ", ".join(names)
    hints = []
    # [out, in, *k] read as HWIO: the input fits its second axis, its kernel axes are alike
    # and its first two are not (HWIO kernels are usually square, so equal leading axes mean HWIO)
    looks_oi = len(set(w_shape[2:])) == 1 and len(set(w_shape[:2])) == 2
    if looks_oi and w_shape[1] >= 1 and channels % w_shape[1] == 0 and w_shape[1] != cg:
        perm = (*range(2, rank + 2), 1, 0)
        hints.append(
            f"the filter looks like PyTorch's [out, in, {k}] layout; this op takes "
            f"[{k}, in, out]: convert it with w.permute{perm}"
        )
    # read channels-first, the channels fit and the spatial axes are alike (square images), and
    # read channels-last they are not
    looks_cf = len(x_shape) == rank + 2 and (
        rank == 1 or (len(set(x_shape[2:])) == 1 and len(set(x_shape[1:-1])) > 1)
    )
    if channels_last and looks_cf and x_shape[1] >= 1 and x_shape[1] % cg == 0:
        perm = (0, *range(2, rank + 2), 1)
        first = "NC" + "".join(n[1].upper() for n in names)
        hints.append(
            f"the input looks channels-first (PyTorch's {first}); this op takes channels last: "
            f"convert it with x.permute{perm} or pass data_format='{first}'"
        )
    return "".join(f". Hint: {h}" for h in hints)

"""The conv lab: a convolution and its two gradients animated with real numbers, and the shape
oracle, for 1, 2 or 3 spatial axes.

``tc.conv_lab(x_shape, w_shape, strides, padding, dilations, ...)`` returns a :class:`ConvLab` with
three animations, each a list of :class:`Frame` s. The rank comes from ``x_shape``: 3 dims is a
1-D conv (x ``[N, W, C]`` NWC or NCW, w ``[k, Cin/groups, Cout]``, ``tc.conv1d``), 4 dims 2-D
(NHWC / NCHW, HWIO, ``tc.conv2d``), 5 dims 3-D (NDHWC / NCDHW, DHWIO, ``tc.conv3d``). In 2-D:

* ``forward``: one frame per output element ``y[n, a, b, q]``: the window over the padded input,
  the products ``x * w`` and their running sum;
* ``input_grad``: one frame per upstream-gradient element ``dy[n, a, b, q]``, in two views kept in
  step: the *scatter* view (``dy[n, a, b, q]`` stamps ``w[..., q]`` into d_x; stamps that land in
  the forward's padding are dropped) and the *gather* view (the same element sits in ``zfull``,
  dy with ``s - 1`` zeros inserted and padded to "full", and every d_x cell whose stride-1 window
  of ``rot180(w)`` covers it takes the same product);
* ``filter_grad``: one frame per filter element ``dw[u, v, c, q]``: the correlation of x with dy
  (dy acts as a filter with stride = the forward dilation and dilation = the forward stride).

1-D and 3-D are the same with one or three spatial indices (``y[n, a, q]``, ``y[n, a, b, c', q]``).

Nothing here re-derives the conv arithmetic. Which cells meet in which product is read from the
engine's own ops of the lab's rank applied to probes: ``tc.conv1d`` / ``tc.conv2d`` /
``tc.conv3d`` of an index-coded input with one-hot filters gives every window (the Jacobian's
sparsity), and ``tinygrad_conv.derivations``' ``dilate`` and ``pad_or_crop`` applied to an
index-coded dy place dy in ``zfull`` (the gather view's windows are again read from the conv).
The values come from the conv and its two backprop ops of that rank (``conv1d_backprop_input``,
``conv2d_backprop_input``, ``conv3d_backprop_input_v2``, ...), and the frames' products must add
up to those results (checked when the lab is built, see :attr:`ConvLab.checks`).

Indices: x, y, dy, d_x are channels-last ``(n, *spatial, c)`` (NWC / NHWC / NDHWC) and w, d_w
``(*taps, c_in_group, q)`` (WIO / HWIO / DHWIO) whatever ``data_format``; an x index with a
spatial coordinate outside the input (negative or ``>=`` the size) is a cell of the forward's
zero padding. ``zfull`` indices are channels-last in its own (larger) frame.

Limits: an animation may have at most :data:`MAX_FRAMES` frames and :data:`MAX_TERMS` products in
all (the page carries every number); larger geometries raise ValueError naming the counts. The
shape oracle (:func:`shape_oracle`) has no such limit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_conv.kernels.padding import (
    ConvGeometry,
    check_out_backprop,
    conv_geometry,
    conv_geometry_nd,
)

__all__ = [
    "MAX_FRAMES",
    "MAX_TERMS",
    "Animation",
    "ConvLab",
    "Frame",
    "ShapeOracle",
    "conv_lab",
    "shape_oracle",
]

#: Most frames one animation may have (forward: N*Ho*Wo*Cout, input_grad: the same, filter_grad:
#: kh*kw*Cin/groups*Cout). Every frame is drawn and carried by the page, so larger examples are
#: refused rather than written as pages a browser cannot play.
MAX_FRAMES = 1024

#: Most products (terms) one animation may hold over all its frames.
MAX_TERMS = 60_000

_OP = "conv_lab"

# cell kinds in grids and frames
KIND_VALUE, KIND_PAD, KIND_INSERTED = 0, 1, 2

#: Per number of spatial axes: the data formats (channels-last first), the filter layout, the
#: names of the spatial axes and of the output sizes / taps in the limit messages.
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
_FILTER = {1: "WIO", 2: "HWIO", 3: "DHWIO"}
_AXES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_OUT_NAMES = {1: "Wo", 2: "Ho*Wo", 3: "Do*Ho*Wo"}
_TAP_NAMES = {1: "k", 2: "kh*kw", 3: "kd*kh*kw"}


def _ops(rank: int) -> tuple[Any, Any, Any, tuple[str, str, str]]:
    """The engine's conv, backprop-input and backprop-filter ops of ``rank`` and their names."""
    from tinygrad_conv.ops import conv as C

    if rank == 1:
        fns = (C.conv1d, C.conv1d_backprop_input, C.conv1d_backprop_filter)
    elif rank == 2:
        fns = (C.conv2d, C.conv2d_backprop_input, C.conv2d_backprop_filter)
    else:
        fns = (C.conv3d, C.conv3d_backprop_input_v2, C.conv3d_backprop_filter_v2)
    return (*fns, tuple(f.__name__ for f in fns))  # type: ignore[return-value]


def _pad_arg(geom: ConvGeometry) -> list[list[int]]:
    """The resolved pads as explicit ``[before, after]`` pairs, one per spatial axis."""
    return [list(p) for p in geom.pads]


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True, eq=False)
class Frame:
    """One step of an animation: the products that are added in it.

    ``index`` is the element the frame is about (2-D forward: ``y[n, a, b, q]``; input_grad:
    ``dy[n, a, b, q]``; filter_grad: ``dw[u, v, c, q]``; 1-D / 3-D have one / three spatial
    indices). Row k of the ``[K, r + 2]`` index arrays (r spatial axes) and entry k of the ``[K]``
    value arrays describe one product ``a[k] * b[k]``:

    * ``targets[k]``: the result element it is added to (y, d_x or d_w index);
    * ``sources[k]``: the first factor's index (x, dy or zfull), ``taps[k]``: the second's
      (w, rot180(w) or dy);
    * ``kept[k]``: False when the product does not reach the result (a scatter stamp into the
      forward's padding, whose gradient is dropped); ``source_kinds[k]`` is 0 for a value, 1 for a
      padding zero, 2 for an inserted zero;
    * ``partial[k]``: the target's running sum right after this product (the partial sum; for
      forward and filter_grad the last one is the frame's result element). NaN where not kept.
    """

    index: tuple[int, ...]
    targets: np.ndarray
    sources: np.ndarray
    taps: np.ndarray
    a: np.ndarray
    b: np.ndarray
    products: np.ndarray
    kept: np.ndarray
    source_kinds: np.ndarray
    partial: np.ndarray

    @property
    def contributors(self) -> list[tuple[int, ...]]:
        """The contributing input indices (``sources``) as tuples, in term order."""
        return [tuple(int(v) for v in row) for row in self.sources]  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.products)

    def __repr__(self) -> str:
        return (
            f"Frame(index={self.index}, {len(self)} products, sum {float(self.products.sum()):g})"
        )


@dataclass(eq=False)
class Grid:
    """An array as the page and the media draw it: ``r + 2``-D values (r spatial axes), the kind
    of every cell (0 value, 1 padding zero, 2 inserted zero), the layout naming its axes
    (``NHWC``-like for data, ``HWIO``-like for filters: the spatial axes lead), and ``offset``:
    per spatial axis, the index of the grid's first cell in the array's own coordinates (negative
    for a padded canvas)."""

    key: str
    title: str
    layout: str
    values: np.ndarray
    kinds: np.ndarray
    offset: tuple[int, ...] = (0, 0)
    result: bool = False
    groups: int = 1


@dataclass(eq=False)
class View:
    """One way of drawing an animation: which grids hold the targets, sources and taps."""

    key: str
    title: str
    target: str
    source: str
    tap: str
    frames: list[Frame]
    note: str = ""


@dataclass(eq=False)
class Animation:
    """One of the lab's animations (``forward``, ``input_grad`` or ``filter_grad``).

    ``frames`` are the main view's frames; ``views`` lists every view (input_grad has the scatter
    and the gather view, frame for frame in step); ``result`` is the engine op's value and ``op``
    names it: 2-D forward ``y: [N, Ho, Wo, Cout]``, input_grad ``d_x: [N, H, W, Cin]``,
    filter_grad ``d_w: [kh, kw, Cin/groups, Cout]`` (NHWC / HWIO whatever data_format; 1-D and
    3-D likewise with one / three spatial axes). ``grids`` are the arrays the page draws (x on its
    padded canvas, w, y, dy, zfull, rot180(w), d_x, d_w).
    """

    name: str
    title: str
    op: str
    result: np.ndarray
    views: list[View]
    grids: dict[str, Grid]
    lab: ConvLab = field(repr=False)

    @property
    def frames(self) -> list[Frame]:
        """The frames of the first view."""
        return self.views[0].frames

    def view(self, key: str) -> View:
        """The view called ``key`` (``'scatter'``, ``'gather'``, ``'window'`` ...)."""
        for v in self.views:
            if v.key == key:
                return v
        raise KeyError(
            f"{_OP}: {self.name} has no view {key!r}; views: {[v.key for v in self.views]}"
        )

    def partial(self, k: int, view: str | None = None) -> np.ndarray:
        """The result (shape of :attr:`result`) as it stands after frames ``0..k`` (``k = -1``: all
        zeros), from the frames' products alone; ``partial(len(frames) - 1)`` equals
        :attr:`result`. ``view``: which view's frames (default: the first)."""
        frames = self.view(view).frames if view else self.frames
        if not -1 <= k < len(frames):
            raise IndexError(f"{_OP}: frame {k} out of range 0..{len(frames) - 1} for {self.name}")
        acc = np.zeros(self.result.shape, dtype=np.float64)
        if k >= 0:
            t = np.concatenate([f.targets[f.kept] for f in frames[: k + 1]])
            p = np.concatenate([f.products[f.kept] for f in frames[: k + 1]])
            np.add.at(acc, tuple(t.T), p)
        return acc

    def rebuilt(self, view: str | None = None) -> np.ndarray:
        """The result rebuilt by adding every frame's kept products."""
        frames = self.view(view).frames if view else self.frames
        return self.partial(len(frames) - 1, view)

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write a self-contained offline page of this animation and the shape oracle."""
        from tinygrad_conv.web import lab_page

        return lab_page.write_lab_page(self.lab, path, only=self.name)

    def save_gif(self, path: str | os.PathLike, *, ms_per_frame: int = 600) -> Path:
        """Write the main view(s) as an animated GIF (needs Pillow)."""
        from tinygrad_conv.web import media

        return media.save_gif(self, path, ms_per_frame=ms_per_frame)

    def save_svg(self, path: str | os.PathLike, *, ms_per_frame: int = 600) -> Path:
        """Write the main view(s) as an animated SVG (SMIL; plays in browsers, no script)."""
        from tinygrad_conv.web import media

        return media.save_svg(self, path, ms_per_frame=ms_per_frame)


# ----------------------------------------------------------------------------- the shape oracle


@dataclass(frozen=True)
class ShapeOracle:
    """What the conv arithmetic says about one geometry, per spatial axis and in words.

    ``geometry``: the engine's resolved geometry (one entry per spatial axis: W, H W or D H W);
    ``same_inputs``: per axis, every input size that gives the same output size (the sizes among
    which ``conv*_transpose`` needs ``output_shape`` to choose); ``overlap``: ``[*spatial]`` count
    of (dy element, tap) pairs that land on each input cell in the transposed conv (uneven counts
    are the checkerboard); ``torch_conv`` / ``torch_conv_transpose``: the keyword arguments of the
    equivalent PyTorch call ``F.conv{r}d`` / ``F.conv_transpose{r}d`` (``pad`` is an ``F.pad`` to
    apply first) or None where none exists; ``text``: all of it in words with the numbers.
    """

    geometry: ConvGeometry
    groups: int
    same_inputs: tuple[tuple[int, ...], ...]
    overlap: np.ndarray
    torch_conv: dict[str, Any]
    torch_conv_transpose: dict[str, Any] | None
    text: str

    @property
    def rank(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self.geometry.rank

    @property
    def torch_conv2d(self) -> dict[str, Any]:
        """:attr:`torch_conv` (the name from when the lab was 2-D only)."""
        return self.torch_conv

    @property
    def torch_conv_transpose2d(self) -> dict[str, Any] | None:
        """:attr:`torch_conv_transpose` (the name from when the lab was 2-D only)."""
        return self.torch_conv_transpose

    def __str__(self) -> str:
        return self.text


def _geometry(
    op: str,
    rank: int,
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: Any,
    padding: Any,
    dilations: Any,
    data_format: str,
) -> ConvGeometry:
    """The engine's geometry of the lab's rank (2-D: conv_geometry, with its channel checks; 1-D /
    3-D: conv_geometry_nd, and the same channel checks here)."""
    if rank == 2:
        return conv_geometry(op, x_shape, w_shape, strides, padding, dilations, data_format)
    fl = _FILTER[rank]
    ws = _int_shape(op, "w_shape", w_shape)
    if len(ws) != rank + 2:
        raise ValueError(
            f"{op}: w_shape {_tuple(ws)} must have {rank + 2} dims ({fl}) for the {rank}-D input "
            f"x_shape {_tuple(x_shape)} ({data_format})"
        )
    if min(ws) < 1:
        raise ValueError(f"{op}: filter shape {ws} ({fl}) must have positive dimensions")
    geom = conv_geometry_nd(op, rank, x_shape, ws[:-2], strides, padding, dilations, data_format)
    xs = _channels_last(x_shape, data_format)
    c, cg, cout = xs[-1], ws[-2], ws[-1]
    if c < 1 or c % cg:
        raise ValueError(
            f"{op}: input channels {c} (input shape {tuple(int(v) for v in x_shape)}, "
            f"{data_format}) must be a multiple of the filter's in-channels {cg} (filter shape "
            f"{ws}, {fl})"
        )
    if cout % (c // cg):
        raise ValueError(
            f"{op}: filter out-channels {cout} (filter shape {ws}) must be divisible by "
            f"groups = {c} // {cg} = {c // cg} (input shape {tuple(int(v) for v in x_shape)})"
        )
    return geom


def _same_output_sizes(geom: ConvGeometry, axis: int, padding: Any) -> tuple[int, ...]:
    """Every input size along ``axis`` for which the engine's geometry gives the same output
    size (the other axes held): asked of the engine, not computed from a formula."""
    o = geom.output_hw[axis]
    s = geom.strides[axis]
    e = geom.effective_kernel_hw[axis]
    r = geom.rank
    # the search window: far enough below and above i that the output size must differ there
    lo = max(1, geom.input_hw[axis] - 2 * s - e - 1)
    hi = geom.input_hw[axis] + 2 * s + e + 1
    pad_arg = padding if isinstance(padding, str) else _pad_arg(geom)
    found = []
    for i in range(lo, hi + 1):
        size = list(geom.input_hw)
        size[axis] = i
        try:
            if r == 2:
                g = conv_geometry(
                    _OP, (1, *size, 1), (*geom.kernel_hw, 1, 1), geom.strides, pad_arg,
                    geom.dilations,
                )  # fmt: skip
            else:
                g = conv_geometry_nd(
                    _OP, r, (1, *size, 1), geom.kernel_hw, geom.strides, pad_arg, geom.dilations
                )
        except ValueError:
            continue
        if g.output_hw[axis] == o:
            found.append(i)
    return tuple(found)


def _torch_calls(geom: ConvGeometry, groups: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    fwd: dict[str, Any] = {
        "stride": geom.strides,
        "dilation": geom.dilations,
        "groups": groups,
    }
    if all(lo == hi for lo, hi in geom.pads):
        fwd["padding"] = tuple(lo for lo, _ in geom.pads)
        fwd["pad"] = None
    else:
        fwd["padding"] = (0,) * geom.rank
        # F.pad's order: last axis first, (before, after) each
        fwd["pad"] = tuple(v for lo, hi in reversed(geom.pads) for v in (lo, hi))
    # conv_transpose crops `padding` from both ends of the full output and adds output_padding
    # at the end: full[p_lo : L - p_lo + op] must be the input's rows full[p_lo : p_lo + i]
    ops = []
    for i, (lo, _hi), e, s, o, d in zip(
        geom.input_hw, geom.pads, geom.effective_kernel_hw, geom.strides, geom.output_hw,
        geom.dilations, strict=True,
    ):  # fmt: skip
        full = (o - 1) * s + e
        op = i + 2 * lo - full
        if not 0 <= op < max(s, d):
            return fwd, None
        ops.append(op)
    tr = {
        "stride": geom.strides,
        "padding": tuple(lo for lo, _ in geom.pads),
        "output_padding": tuple(ops),
        "dilation": geom.dilations,
        "groups": groups,
    }
    return fwd, tr


def _ttuple(v: Sequence[int]) -> str:
    """A Python tuple literal: ``(2,)``, ``(1, 2)``."""
    return "(" + ", ".join(str(int(a)) for a in v) + ("," if len(v) == 1 else "") + ")"


def _torch_text(fwd: dict[str, Any], tr: dict[str, Any] | None, rank: int) -> list[str]:
    t = _ttuple
    x = f"F.pad(x, {fwd['pad']})" if fwd["pad"] else "x"
    perm = ", ".join(map(str, (rank + 1, rank, *range(rank))))
    chf = _FORMATS[rank][1]
    lines = [
        f"PyTorch ({chf} x, weight = w.permute({perm})):",
        f"  y  = F.conv{rank}d({x}, weight, stride={t(fwd['stride'])}, "
        f"padding={t(fwd['padding'])}, dilation={t(fwd['dilation'])}, groups={fwd['groups']})",
    ]
    if tr is None:
        lines.append(
            f"  dx = no single F.conv_transpose{rank}d call: its padding is symmetric and "
            "output_padding must lie in [0, max(stride, dilation)); crop its full output instead"
        )
    else:
        lines.append(
            f"  dx = F.conv_transpose{rank}d(dy, weight, stride={t(tr['stride'])}, "
            f"padding={t(tr['padding'])}, output_padding={t(tr['output_padding'])}, "
            f"dilation={t(tr['dilation'])}, groups={tr['groups']})"
        )
    return lines


def _rank_of(op: str, x_shape: Any) -> int:
    """1, 2 or 3 spatial axes from the number of dims of ``x_shape`` (3, 4 or 5)."""
    dims = _int_shape(op, "x_shape", x_shape)
    if len(dims) not in (3, 4, 5):
        raise ValueError(
            f"{op}: x_shape {_tuple(dims)} has {len(dims)} dims; the lab takes 3 (1-D: NWC or "
            "NCW), 4 (2-D: NHWC or NCHW) or 5 (3-D: NDHWC or NCDHW)"
        )
    return len(dims) - 2


def _check_format(op: str, rank: int, data_format: Any) -> str:
    if data_format is None:
        return _FORMATS[rank][0]
    ok = _FORMATS[rank]
    if not isinstance(data_format, str) or data_format.upper() not in ok:
        raise ValueError(
            f"{op}: data_format must be {ok[0]!r} or {ok[1]!r}"
            + (f" for a {rank}-D x_shape" if rank != 2 else "")
            + f", got {data_format!r}"
        )
    return data_format.upper()


def shape_oracle(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Sequence[int]] = "VALID",
    dilations: int | Sequence[int] = 1,
    data_format: str | None = None,
) -> ShapeOracle:
    """The conv arithmetic of one geometry with the user's numbers, per spatial axis.

    Args:
        x_shape: input shape in data_format order: 1-D ``[N, W, Cin]`` (NWC; ``[N, Cin, W]``
            NCW), 2-D ``[N, H, W, Cin]`` (NHWC / NCHW), 3-D ``[N, D, H, W, Cin]`` (NDHWC /
            NCDHW). The number of dims picks the rank.
        w_shape: filter ``[*k, Cin/groups, Cout]`` (WIO / HWIO / DHWIO).
        strides, padding, dilations: as ``tc.conv1d`` / ``tc.conv2d`` / ``tc.conv3d``.
        data_format: one of the rank's formats; channels-last by default.

    Returns:
        A :class:`ShapeOracle`: output size formula, TF's SAME split, every input size giving the
        same output, the transposed conv's overlap-count map ``[*spatial]`` and the PyTorch calls.

    Raises:
        ValueError / TypeError: as the conv of that rank for bad shapes (named ``shape_oracle``).
    """
    op = "shape_oracle"
    rank = _rank_of(op, x_shape)
    data_format = _check_format(op, rank, data_format)
    geom = _geometry(op, rank, x_shape, w_shape, strides, padding, dilations, data_format)
    _, backprop_input, _, names = _ops(rank)
    xs = _channels_last(x_shape, data_format)
    groups = xs[-1] // int(w_shape[-2])
    same = tuple(_same_output_sizes(geom, a, padding) for a in range(rank))
    # the overlap counts: the transposed conv (the engine's backprop-input) of ones with ones
    overlap = backprop_input(
        np.array((1, *geom.input_hw, 1)),
        np.ones((*geom.kernel_hw, 1, 1)),
        np.ones((1, *geom.output_hw, 1)),
        geom.strides,
        _pad_arg(geom),
        dilations=geom.dilations,
    ).data[(0, ..., 0)]
    fwd, tr = _torch_calls(geom, groups)
    lines = [
        f"shape oracle: x {_tuple(xs)} {_FORMATS[rank][0]}, w {_tuple(w_shape)} {_FILTER[rank]}, "
        f"groups {groups}"
    ]
    transpose = f"conv{rank}d_transpose / {names[1]}"
    for axis, name in enumerate(_AXES[rank]):
        i, k = geom.input_hw[axis], geom.kernel_hw[axis]
        s, d = geom.strides[axis], geom.dilations[axis]
        lo, hi = geom.pads[axis]
        e, o, r = geom.effective_kernel_hw[axis], geom.output_hw[axis], geom.leftover[axis]
        lines.append(
            f"{name}: i={i} k={k} s={s} d={d} pads=({lo},{hi}); e = d(k-1)+1 = {d}*{k - 1}+1 = {e}; "
            f"o = floor((i + p_lo + p_hi - e)/s) + 1 = floor(({i}+{lo}+{hi}-{e})/{s}) + 1 = {o}; "
            f"leftover r = {r}"
            + (f" (the last {r} padded row(s) are read by no window: gradient 0)" if r else "")
        )
        if isinstance(padding, str) and padding.upper() == "SAME":
            total = lo + hi
            lines.append(
                f"  SAME: o = ceil({i}/{s}) = {o}; total pad = max((o-1)s + e - i, 0) = "
                f"max({o - 1}*{s}+{e}-{i}, 0) = {total}; p_lo = total // 2 = {lo}, "
                f"p_hi = total - p_lo = {hi}"
                + (f" (the odd extra one goes to the {_end(rank, name)})" if hi > lo else "")
            )
        sizes = same[axis]
        lines.append(
            f"  input {name}s giving output {o}: {', '.join(map(str, sizes))}"
            + (f" -> {transpose} need output_shape to choose" if len(sizes) > 1 else " (unique)")
        )
    lines.append(
        "overlap count of the transposed conv (taps landing on each input cell; uneven = "
        "checkerboard):"
    )
    width = max(len(str(int(v))) for v in overlap.ravel())

    def rows(plane: np.ndarray) -> list[str]:
        return ["  " + " ".join(str(int(v)).rjust(width) for v in row) for row in plane]

    if rank == 1:
        lines += rows(overlap[None, :])
    elif rank == 2:
        lines += rows(overlap)
    else:  # one depth slice after the other
        for dd, plane in enumerate(overlap):
            lines.append(f"  depth {dd}:")
            lines += rows(plane)
    lo_c, hi_c = int(overlap.min()), int(overlap.max())
    lines.append(
        f"  counts {lo_c}..{hi_c}"
        + (
            ": even overlap"
            if lo_c == hi_c
            else " (cells near the border get fewer taps; where a stride does not divide the"
            " kernel, neighbouring inner cells differ too: the checkerboard)"
        )
    )
    lines += _torch_text(fwd, tr, rank)
    return ShapeOracle(geom, groups, same, overlap, fwd, tr, "\n".join(lines))


def _end(rank: int, axis_name: str) -> str:
    """Where SAME's odd extra pad goes along an axis, in words (2-D keeps its "bottom/right")."""
    if rank == 2:
        return "bottom/right"
    return {"depth": "back", "height": "bottom", "width": "right"}[axis_name]


# ----------------------------------------------------------------------------- building the lab


def _tuple(s: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(v)) for v in s) + ")"


def _int_shape(op: str, name: str, shape: Any) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of ints, got {shape!r}") from None
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in dims):
        raise TypeError(f"{op}: {name} must contain ints, got {shape!r}")
    return tuple(int(v) for v in dims)


def _channels_last(shape: Sequence[int], data_format: str) -> tuple[int, ...]:
    """A shape in data_format order as channels-last (``NC...`` formats move C to the end)."""
    s = tuple(int(v) for v in shape)
    if isinstance(data_format, str) and data_format.upper()[1] == "C":
        return (s[0], *s[2:], s[1])
    return s


def _array(
    name: str, value: Any, shape: tuple[int, ...], data_format: str, data: bool
) -> np.ndarray:
    """``value`` as a float64 channels-last array of ``shape`` (data arrays given in a
    channels-first data_format are transposed), or a clear error."""
    from tinygrad_conv.tensor import Tensor

    a = value.data if isinstance(value, Tensor) else np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{_OP}: {name} must hold numbers, got dtype {a.dtype}")
    first = data and data_format[1] == "C"
    if first and a.ndim == len(shape):
        a = a.transpose(0, *range(2, a.ndim), 1)
    if a.shape != shape:
        want = (shape[0], shape[-1], *shape[1:-1]) if first else shape
        layout = data_format if data else _FILTER[len(shape) - 2]
        raise ValueError(
            f"{_OP}: {name} has shape {tuple(np.shape(value))} but the geometry needs "
            f"{_tuple(want)} ({layout})"
        )
    return np.ascontiguousarray(a, dtype=np.float64)


def _coded(shape: tuple[int, ...]) -> np.ndarray:
    """``[1, *shape, 1]`` holding 1 + the flat index of every cell (0 stays free for 'nothing')."""
    size = int(np.prod(shape))
    return (np.arange(size, dtype=np.float64) + 1).reshape(1, *shape, 1)


def _tap_probes(kernel: tuple[int, ...]) -> np.ndarray:
    """One-hot filters ``[*kernel, 1, K]`` (K taps): output channel t reads only tap t (taps in
    row-major order, e.g. ``u*kw + v`` in 2-D)."""
    k = int(np.prod(kernel))
    return np.eye(k, dtype=np.float64).reshape(*kernel, 1, k)


def _window_map(geom: ConvGeometry) -> np.ndarray:
    """``[*out, K, r]``: the input cell (one coordinate per spatial axis, negative or past the end
    in the padding) that tap t reads at each output position, read from the engine's conv of the
    lab's rank applied to the index-coded padded input with one-hot filters."""
    conv = _ops(geom.rank)[0]
    padded = tuple(i + lo + hi for i, (lo, hi) in zip(geom.input_hw, geom.pads, strict=True))
    got = conv(
        _coded(padded), _tap_probes(geom.kernel_hw), geom.strides, "VALID",
        dilations=geom.dilations,
    )  # fmt: skip
    code = np.rint(got.data[0]).astype(np.int64) - 1  # [*out, K]
    if tuple(got.shape[1:-1]) != tuple(geom.output_hw) or code.min() < 0:
        raise RuntimeError(f"{_OP}: the window probe disagrees with the geometry {geom}")
    cells = np.stack(np.unravel_index(code, padded), axis=-1)
    return cells - np.array([lo for lo, _ in geom.pads])  # input coordinates


class _Acc:
    """Running sums per result element, to give each product its partial sum."""

    def __init__(self, shape: tuple[int, ...]):
        self.acc = np.zeros(shape, dtype=np.float64)

    def add(self, targets: np.ndarray, products: np.ndarray, kept: np.ndarray) -> np.ndarray:
        partial = np.full(len(products), np.nan)
        t, p = targets[kept], products[kept]
        if len(t) == 0:
            return partial
        idx = tuple(t.T)
        flat = np.ravel_multi_index(idx, self.acc.shape)
        if np.all(flat == flat[0]):  # one target: the running sum is a cumsum
            partial[kept] = self.acc[tuple(t[0])] + np.cumsum(p)
            self.acc[tuple(t[0])] = partial[kept][-1]
        else:
            if len(np.unique(flat)) != len(flat):
                raise RuntimeError(f"{_OP}: a frame adds twice to one element")
            self.acc[idx] += p
            partial[kept] = self.acc[idx]
        return partial


def _check_limits(name: str, frames: int, terms: int, what: str, views: str = "") -> None:
    if frames > MAX_FRAMES or terms > MAX_TERMS:
        raise ValueError(
            f"{_OP}: the {name} animation would have {frames} frames ({what}) and {terms} "
            f"products{views}; the limits are MAX_FRAMES = {MAX_FRAMES} frames and MAX_TERMS = "
            f"{MAX_TERMS} products per animation: use a smaller example"
        )


@dataclass(eq=False)
class ConvLab:
    """The lab of one conv geometry (1, 2 or 3 spatial axes): three animations, the shape oracle
    and the numbers.

    Attributes:
        x: ``[N, *S, Cin]``, w: ``[*k, Cin/groups, Cout]``, dy: ``[N, *So, Cout]`` (channels-last
            NWC / NHWC / NDHWC and WIO / HWIO / DHWIO, float64; inputs given channels-first are
            transposed);
        geometry: the engine's resolved :class:`ConvGeometry`; groups; data_format;
        forward, input_grad, filter_grad: the :class:`Animation` s;
        oracle: the :class:`ShapeOracle`;
        zfull: dy dilated by the strides and padded to "full" (the gather view's input);
        wrot: ``swap_in_out(rot180(w))`` ``[*k, Cout/groups, Cin]`` (the gather view's filter);
        checks: name -> bool, every frame sum against the engine ops and the derivations.
    """

    x: np.ndarray
    w: np.ndarray
    dy: np.ndarray
    geometry: ConvGeometry
    groups: int
    data_format: str
    padding: Any
    oracle: ShapeOracle
    zfull: np.ndarray = field(repr=False)
    zkinds: np.ndarray = field(repr=False)
    wrot: np.ndarray = field(repr=False)
    forward: Animation = field(init=False, repr=False)
    input_grad: Animation = field(init=False, repr=False)
    filter_grad: Animation = field(init=False, repr=False)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        """Number of spatial axes (1, 2 or 3)."""
        return self.geometry.rank

    @property
    def layouts(self) -> tuple[str, str]:
        """The channels-last layouts of the data and of the filter, e.g. ``('NHWC', 'HWIO')``."""
        return _FORMATS[self.rank][0], _FILTER[self.rank]

    @property
    def animations(self) -> list[Animation]:
        """``[forward, input_grad, filter_grad]``."""
        return [self.forward, self.input_grad, self.filter_grad]

    def group_of_channel(self, c: int) -> int:
        """The group an input channel of x belongs to."""
        return int(c) // self.w.shape[-2]

    def group_of_output(self, q: int) -> int:
        """The group an output channel (of y, dy, w) belongs to."""
        return int(q) // (self.w.shape[-1] // self.groups)

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write one self-contained offline page with all three animations and the oracle."""
        from tinygrad_conv.web import lab_page

        return lab_page.write_lab_page(self, path)

    def text(self) -> str:
        """A summary in words: the geometry, the checks and the shape oracle."""
        g = self.geometry
        dl, fl = self.layouts
        lines = [
            f"conv lab: x {_tuple(self.x.shape)} {dl}, w {_tuple(self.w.shape)} {fl}, groups "
            f"{self.groups}, strides {g.strides}, padding {self.padding!r} -> pads {g.pads}, "
            f"dilations {g.dilations}, y {_tuple(self.dy.shape)}",
        ]
        if self.groups > 1:
            cg, og = self.w.shape[-2], self.w.shape[-1] // self.groups
            for gi in range(self.groups):
                lines.append(
                    f"group {gi}: x / d_x channels {gi * cg}..{(gi + 1) * cg - 1}, y / dy / w "
                    f"out-channels {gi * og}..{(gi + 1) * og - 1} (w's in-channels 0..{cg - 1})"
                )
        for a in self.animations:
            lines.append(
                f"{a.name}: {len(a.frames)} frames, {sum(len(f) for f in a.frames)} products"
            )
        for name, ok in self.checks.items():
            lines.append(f"check {name}: {'OK' if ok else 'MISMATCH'}")
        return "\n".join(lines) + "\n" + self.oracle.text

    def __str__(self) -> str:
        return self.text()


def conv_lab(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Sequence[int]] = "VALID",
    dilations: int | Sequence[int] = 1,
    x: Any = None,
    w: Any = None,
    dy: Any = None,
    seed: int = 0,
    data_format: str | None = None,
) -> ConvLab:
    """Animate a conv (1-D, 2-D or 3-D), its input gradient (scatter and gather) and its filter
    gradient.

    Args:
        x_shape: in data_format order; its number of dims picks the rank: 1-D ``[N, W, Cin]``
            (NWC; ``[N, Cin, W]`` with 'NCW'), 2-D ``[N, H, W, Cin]`` (NHWC / NCHW), 3-D
            ``[N, D, H, W, Cin]`` (NDHWC / NCDHW).
        w_shape: ``[*k, Cin/groups, Cout]`` (WIO / HWIO / DHWIO); groups = Cin // w_shape[-2] as
            TF infers.
        strides, padding, dilations: as ``tc.conv1d`` / ``tc.conv2d`` / ``tc.conv3d`` ('VALID',
            'SAME' or explicit ``[before, after]`` pairs, one per spatial axis).
        x, w, dy: optional values (x and dy in data_format order, w channels-last); missing ones
            are small integers in [-3, 3] drawn from ``np.random.default_rng(seed)`` in the order
            x, w, dy (the order of ``derivations.explain_steps``), so the sums are readable and
            exact.
        seed: the seed of the drawn values.
        data_format: one of the rank's two formats; channels-last by default.

    Returns:
        A :class:`ConvLab`.

    Raises:
        ValueError: an x_shape of another rank, a w_shape of a rank other than x_shape's, an
            unknown data_format, an empty output, channels that do not divide into groups, a
            value of the wrong shape, or more than MAX_FRAMES frames / MAX_TERMS products in an
            animation.
        TypeError: non-integer shapes, non-numeric values.
    """
    rank = _rank_of(_OP, x_shape)
    data_format = _check_format(_OP, rank, data_format)
    conv, backprop_input, backprop_filter, _ = _ops(rank)
    geom = _geometry(_OP, rank, x_shape, w_shape, strides, padding, dilations, data_format)
    xs = _channels_last(x_shape, data_format)
    ws = tuple(int(v) for v in w_shape)
    n, cin = xs[0], xs[-1]
    kernel, cg, cout = ws[:-2], ws[-2], ws[-1]
    if n < 1:
        raise ValueError(f"{_OP}: x_shape {_tuple(x_shape)} has batch {n}: nothing to animate")
    groups = cin // cg
    og = cout // groups
    out = tuple(geom.output_hw)
    ys = (n, *out, cout)
    ntaps = int(np.prod(kernel))
    npos = int(np.prod(out))
    fwd_frames, fwd_terms = n * npos * cout, n * npos * cout * ntaps * cg
    sizes = "*".join(map(str, (n, *out, cout)))
    what = f"N*{_OUT_NAMES[rank]}*Cout = {sizes}"
    _check_limits("forward", fwd_frames, fwd_terms, what)
    _check_limits("input_grad", fwd_frames, 2 * fwd_terms, what, " (scatter and gather views)")
    fg_frames = ntaps * cg * cout
    _check_limits(
        "filter_grad", fg_frames, fwd_terms,
        f"{_TAP_NAMES[rank]}*Cin/groups*Cout = {'*'.join(map(str, (*kernel, cg, cout)))}",
    )  # fmt: skip

    rng = np.random.default_rng(seed)
    xa = rng.integers(-3, 4, size=xs).astype(np.float64) if x is None else None
    wa = rng.integers(-3, 4, size=ws).astype(np.float64) if w is None else None
    dya = rng.integers(-3, 4, size=ys).astype(np.float64) if dy is None else None
    if xa is None:
        xa = _array("x", x, xs, data_format, True)
    if wa is None:
        wa = _array("w", w, ws, data_format, False)
    if dya is None:
        dya = _array("dy", dy, ys, data_format, True)
    if rank == 2:
        check_out_backprop(_OP, geom, dya.shape, n, cout)

    pad_arg = _pad_arg(geom)
    y = conv(xa, wa, geom.strides, pad_arg, dilations=geom.dilations).data
    dx = backprop_input(np.array(xs), wa, dya, geom.strides, pad_arg, dilations=geom.dilations).data
    dw = backprop_filter(
        xa, np.array(ws), dya, geom.strides, pad_arg, dilations=geom.dilations
    ).data

    wmap = _window_map(geom).reshape(npos, ntaps, rank)  # input cell of each (position, tap)
    zfull, zkinds, zpos, gflat = _gather_maps(geom, dya)
    from tinygrad_conv import derivations as D

    wrot = D.swap_in_out(D.rot180(wa), groups).data  # [*k, Og, G*Cg]: the gather filter

    oracle = shape_oracle(x_shape, ws, strides, padding, dilations, data_format)
    lab = ConvLab(xa, wa, dya, geom, groups, data_format, padding, oracle, zfull, zkinds, wrot)

    size = np.array(geom.input_hw)
    inside = np.all((wmap >= 0) & (wmap < size), axis=-1)  # [P, K]
    taps = np.array(list(np.ndindex(*kernel)), dtype=np.int64).reshape(ntaps, rank)  # [K, r]
    opos = np.array(list(np.ndindex(*out)), dtype=np.int64).reshape(npos, rank)  # [P, r]
    cidx = np.arange(cg)

    # forward and the scatter view: per (n, output position, q), every (tap, c) of the group
    fwd, scat, gath = [], [], []
    acc_y, acc_dx, acc_dxg = _Acc(ys), _Acc(xs), _Acc(xs)
    m = ntaps * cg
    for nn in range(n):
        for pi in range(npos):
            cells = np.repeat(wmap[pi], cg, axis=0)  # [K*cg, r], order (tap, c)
            ok = np.repeat(inside[pi], cg)
            tp = np.repeat(taps, cg, axis=0)
            cc = np.tile(cidx, ntaps)
            for q in range(cout):
                index = (nn, *(int(v) for v in opos[pi]), q)
                chans = (q // og) * cg + cc
                xv = np.zeros(m)
                xv[ok] = xa[(nn, *cells[ok].T, chans[ok])]
                wv = wa[(*tp.T, cc, np.full(m, q))]
                srcs = np.column_stack([np.full(m, nn), cells, chans])
                wid = np.column_stack([tp, cc, np.full(m, q)])
                tgt = np.tile(np.array(index), (m, 1))
                kinds = np.where(ok, KIND_VALUE, KIND_PAD)
                prod = xv * wv
                allk = np.ones(m, dtype=bool)
                fwd.append(
                    Frame(index, tgt, srcs, wid, xv, wv, prod, allk, kinds,
                          acc_y.add(tgt, prod, allk))
                )  # fmt: skip
                # scatter: dy[index] stamps w[..., q] onto the same cells
                dv = np.full(m, dya[index])
                sprod = dv * wv
                scat.append(
                    Frame(index, srcs, tgt.copy(), wid, dv, wv, sprod, ok,
                          np.zeros(m, dtype=np.int64), acc_dx.add(srcs, sprod, ok))
                )  # fmt: skip
                gath.append(_gather_frame(lab, index, zpos[pi], gflat, og, cg, acc_dxg))
    # filter gradient: per (tap, c, q), every (n, output position)
    fg = []
    acc_dw = _Acc(ws)
    mm = n * npos
    nn_all = np.repeat(np.arange(n), npos)
    pos_all = np.tile(opos, (n, 1))  # [N*P, r]
    for t in range(ntaps):
        cells = np.tile(wmap[:, t], (n, 1))  # [N*P, r]
        ok = np.tile(inside[:, t], n)
        for c in range(cg):
            for q in range(cout):
                index = (*(int(v) for v in taps[t]), c, q)
                chan = (q // og) * cg + c
                xv = np.zeros(mm)
                xv[ok] = xa[(nn_all[ok], *cells[ok].T, np.full(int(ok.sum()), chan))]
                dyidx = np.column_stack([nn_all, pos_all, np.full(mm, q)])
                dv = dya[tuple(dyidx.T)]
                srcs = np.column_stack([nn_all, cells, np.full(mm, chan)])
                tgt = np.tile(np.array(index), (mm, 1))
                prod = xv * dv
                allk = np.ones(mm, dtype=bool)
                fg.append(
                    Frame(index, tgt, srcs, dyidx, xv, dv, prod, allk,
                          np.where(ok, KIND_VALUE, KIND_PAD), acc_dw.add(tgt, prod, allk))
                )  # fmt: skip

    cname, iname, fname = _ops(rank)[3]
    r = rank
    grids = _grids(lab, y, dx, dw)
    lab.forward = Animation(
        "forward", f"forward: y = {cname}(x, w)", cname, y,
        [View("window", "the window over the padded input", "y", "x", "w", fwd,
              "each frame: one output element, the window's products and their running sum")],
        {k: grids[k] for k in ("x", "w", "y")}, lab,
    )  # fmt: skip
    lab.input_grad = Animation(
        "input_grad", f"input gradient: d_x = {iname}(x.shape, w, dy)", iname, dx,
        [View("scatter", "scatter: each dy element stamps w into d_x", "dx", "dy", "w", scat,
              "stamps that land in the forward's padding are dropped"),
         View("gather", f"gather: conv{r}d(zfull, rot180(w)), stride 1", "dxg", "zfull", "wrot",
              gath, "zfull = dy with s-1 zeros inserted, padded to full; the same products")],
        {k: grids[k] for k in ("dy", "w", "dx", "zfull", "wrot", "dxg")}, lab,
    )  # fmt: skip
    lab.filter_grad = Animation(
        "filter_grad", f"filter gradient: d_w = {fname}(x, w.shape, dy)", fname, dw,
        [View("correlation", "correlation of x with dy (stride = d, dilation = s)", "dw", "x",
              "dy", fg, "each frame: one filter element, dy laid over x with dilation = stride")],
        {k: grids[k] for k in ("x", "dy", "dw")}, lab,
    )  # fmt: skip
    _run_checks(lab, y, dx, dw)
    return lab


def _gather_maps(
    geom: ConvGeometry, dya: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """zfull (dy dilated and padded to full, by derivations' own ops), the kind of each zfull
    cell, the flat zfull position of each dy cell (``[P]`` in dy's row-major position order, -1
    if cropped away) and the gather conv's windows ``[*in, K]`` (the flat zfull cell that rot180
    tap t reads at each d_x cell), read from the engine's conv of the lab's rank."""
    from tinygrad_conv import derivations as D

    conv = _ops(geom.rank)[0]
    out = tuple(geom.output_hw)
    full = D.full_padding(geom)

    def rearrange(a: np.ndarray) -> np.ndarray:
        return D.pad_or_crop(D.dilate(a, geom.strides), full).data

    zfull = rearrange(dya)
    code = rearrange(_coded(out))[(0, ..., 0)]
    dilated = tuple((o - 1) * s + 1 for o, s in zip(out, geom.strides, strict=True))
    region = D.pad_or_crop(np.ones((1, *dilated, 1)), full).data[(0, ..., 0)]
    kinds = np.where(code > 0, KIND_VALUE, np.where(region > 0, KIND_INSERTED, KIND_PAD))
    zpos = np.full(int(np.prod(out)), -1, dtype=np.int64)
    flat = code.ravel()
    where = np.nonzero(flat)[0]
    zpos[np.rint(flat[where]).astype(np.int64) - 1] = where
    got = conv(_coded(code.shape), _tap_probes(geom.kernel_hw), 1, "VALID",
               dilations=geom.dilations)  # fmt: skip
    if tuple(got.shape[1:-1]) != tuple(geom.input_hw):
        raise RuntimeError(f"{_OP}: the gather probe gives {got.shape}, not the input size")
    gflat = np.rint(got.data[0]).astype(np.int64) - 1  # [*in, K]
    return zfull, kinds, zpos, gflat


def _gather_frame(
    lab: ConvLab,
    index: tuple[int, ...],
    zf: int,
    gflat: np.ndarray,
    og: int,
    cg: int,
    acc: _Acc,
) -> Frame:
    """The gather view of dy[index]: every (d_x cell, rot180 tap) whose window reads its zfull
    cell (flat position ``zf``), times every in-channel of its group."""
    nn, q = index[0], index[-1]
    r = lab.rank
    zshape = lab.zfull.shape[1:-1]
    if zf < 0:  # cropped away: it only ever stamped into padding
        hits = np.zeros((0, r + 1), dtype=np.int64)
        zcell: tuple[int, ...] = (-1,) * r
    else:
        hits = np.argwhere(gflat == zf)  # (*d_x cell, tap)
        zcell = tuple(int(v) for v in np.unravel_index(zf, zshape))
    cc = np.tile(np.arange(cg), len(hits))
    hits = np.repeat(hits, cg, axis=0)
    m = len(cc)
    g = q // og
    tp = np.stack(np.unravel_index(hits[:, -1], lab.geometry.kernel_hw), axis=-1).reshape(m, r)
    # the gather filter is derivations' swap_in_out(rot180(w)): in-channel q - g*Og of its group,
    # out-channel g*Cg + c
    fv = lab.wrot[(*tp.T, np.full(m, q - g * og), g * cg + cc)]
    zv = np.full(m, lab.zfull[(nn, *zcell, q)]) if m else np.zeros(0)
    tgt = np.column_stack([np.full(m, nn), hits[:, :r], g * cg + cc]).astype(np.int64)
    src = np.tile(np.array([nn, *zcell, q]), (m, 1))
    tap = np.column_stack([tp, np.full(m, q - g * og), g * cg + cc]).astype(np.int64)
    prod = zv * fv
    kept = np.ones(m, dtype=bool)
    w = r + 2
    tgt = tgt.reshape(m, w)
    return Frame(index, tgt, src.reshape(m, w), tap.reshape(m, w), zv, fv, prod, kept,
                 np.zeros(m, dtype=np.int64), acc.add(tgt, prod, kept))  # fmt: skip


def _grids(lab: ConvLab, y: np.ndarray, dx: np.ndarray, dw: np.ndarray) -> dict[str, Grid]:
    g = lab.geometry
    dl, fl = lab.layouts
    xpad = np.pad(lab.x, ((0, 0), *g.pads, (0, 0)))
    kinds = np.full(xpad.shape, KIND_PAD, dtype=np.int64)
    inner = tuple(slice(lo, lo + i) for (lo, _), i in zip(g.pads, g.input_hw, strict=True))
    kinds[(slice(None), *inner, slice(None))] = KIND_VALUE
    offset = tuple(-lo for lo, _ in g.pads)
    zero = (0,) * g.rank
    wrot = lab.wrot
    zeros = np.zeros
    G = lab.groups
    return {
        "x": Grid("x", "x (padded; grey = padding zeros)", dl, xpad, kinds, offset, False, G),
        "w": Grid("w", "w", fl, lab.w, zeros(lab.w.shape, np.int64), zero, groups=G),
        "y": Grid("y", "y", dl, y, zeros(y.shape, np.int64), zero, result=True, groups=G),
        "dy": Grid("dy", "dy", dl, lab.dy, zeros(lab.dy.shape, np.int64), zero, groups=G),
        "dx": Grid(
            "dx", "d_x (scatter)", dl, dx, zeros(dx.shape, np.int64), zero, result=True, groups=G
        ),
        "zfull": Grid(
            "zfull",
            "zfull: dy, inserted zeros (hatched), full padding (grey)",
            dl,
            lab.zfull,
            np.broadcast_to(lab.zkinds[None, ..., None], lab.zfull.shape).copy(),
            zero,
            groups=G,
        ),  # fmt: skip
        "wrot": Grid(
            "wrot",
            "rot180(w), in/out swapped",
            fl,
            wrot,
            zeros(wrot.shape, np.int64),
            zero,
            groups=G,
        ),  # fmt: skip
        "dxg": Grid(
            "dxg", "d_x (gather)", dl, dx, zeros(dx.shape, np.int64), zero, result=True, groups=G
        ),
        "dw": Grid("dw", "d_w", fl, dw, zeros(dw.shape, np.int64), zero, result=True, groups=G),
    }


def _run_checks(lab: ConvLab, y: np.ndarray, dx: np.ndarray, dw: np.ndarray) -> None:
    from tinygrad_conv import derivations as D

    g = lab.geometry
    pad_arg = _pad_arg(g)
    dx_conv = D.input_grad_as_conv2d(lab.w, lab.dy, lab.x.shape, g.strides, pad_arg, g.dilations)
    dw_conv = D.filter_grad_as_conv2d(lab.x, lab.dy, lab.w.shape, g.strides, pad_arg, g.dilations)
    cname, iname, fname = _ops(g.rank)[3]
    r = g.rank

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        return bool(a.shape == b.shape and np.max(np.abs(a - b), initial=0.0) <= 1e-12 * scale)

    lab.checks = {
        f"forward frames sum to {cname}(x, w)": close(lab.forward.rebuilt(), y),
        f"scatter frames sum to {iname}(x.shape, w, dy)": close(
            lab.input_grad.rebuilt("scatter"), dx
        ),
        f"gather frames sum to {iname}(x.shape, w, dy)": close(
            lab.input_grad.rebuilt("gather"), dx
        ),
        f"gather conv{r}d(zfull, rot180(w)) == {iname}": close(dx_conv.data, dx),
        f"filter frames sum to {fname}(x, w.shape, dy)": close(lab.filter_grad.rebuilt(), dw),
        f"conv{r}d(x swapped, dy swapped) == {fname}": close(dw_conv.data, dw),
    }

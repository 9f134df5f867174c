"""The conv lab: conv2d and its two gradients animated with real numbers, and the shape oracle.

``tc.conv_lab(x_shape, w_shape, strides, padding, dilations, ...)`` returns a :class:`ConvLab` with
three animations, each a list of :class:`Frame` s:

* ``forward``: one frame per output element ``y[n, a, b, q]``: the window over the padded input,
  the products ``x * w`` and their running sum;
* ``input_grad``: one frame per upstream-gradient element ``dy[n, a, b, q]``, in two views kept in
  step: the *scatter* view (``dy[n, a, b, q]`` stamps ``w[..., q]`` into d_x; stamps that land in
  the forward's padding are dropped) and the *gather* view (the same element sits in ``zfull``,
  dy with ``s - 1`` zeros inserted and padded to "full", and every d_x cell whose stride-1 window
  of ``rot180(w)`` covers it takes the same product);
* ``filter_grad``: one frame per filter element ``dw[u, v, c, q]``: the correlation of x with dy
  (dy acts as a filter with stride = the forward dilation and dilation = the forward stride).

Nothing here re-derives the conv arithmetic. Which cells meet in which product is read from the
engine's own ops applied to probes: ``tc.conv2d`` of an index-coded input with one-hot filters
gives every window (the Jacobian's sparsity), and ``tinygrad_conv.derivations``' ``dilate`` and
``pad_or_crop`` applied to an index-coded dy place dy in ``zfull`` (the gather view's windows are
again read from ``tc.conv2d``). The values come from ``tc.conv2d``, ``tc.conv2d_backprop_input``
and ``tc.conv2d_backprop_filter``, and the frames' products must add up to those results (checked
when the lab is built, see :attr:`ConvLab.checks`).

Indices: x, y, dy, d_x are NHWC ``(n, h, w, c)`` and w, d_w HWIO ``(u, v, c_in_group, q)`` whatever
``data_format``; an x index with ``h`` or ``w`` outside the input (negative or ``>= H``) is a cell
of the forward's zero padding. ``zfull`` indices are NHWC in its own (larger) frame.

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

from tinygrad_conv.kernels.padding import ConvGeometry, check_out_backprop, conv_geometry

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


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True, eq=False)
class Frame:
    """One step of an animation: the products that are added in it.

    ``index`` is the element the frame is about (forward: ``y[n, a, b, q]``; input_grad:
    ``dy[n, a, b, q]``; filter_grad: ``dw[u, v, c, q]``). Row k of the ``[K, 4]`` index arrays
    and entry k of the ``[K]`` value arrays describe one product ``a[k] * b[k]``:

    * ``targets[k]``: the result element it is added to (y, d_x or d_w index);
    * ``sources[k]``: the first factor's index (x, dy or zfull), ``taps[k]``: the second's
      (w, rot180(w) or dy);
    * ``kept[k]``: False when the product does not reach the result (a scatter stamp into the
      forward's padding, whose gradient is dropped); ``source_kinds[k]`` is 0 for a value, 1 for a
      padding zero, 2 for an inserted zero;
    * ``partial[k]``: the target's running sum right after this product (the partial sum; for
      forward and filter_grad the last one is the frame's result element). NaN where not kept.
    """

    index: tuple[int, int, int, int]
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
    def contributors(self) -> list[tuple[int, int, int, int]]:
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
    """An array as the page and the media draw it: 4-D values, the kind of every cell (0 value,
    1 padding zero, 2 inserted zero), the layout naming its axes, and ``offset``: the index of the
    grid's cell ``[.., 0, 0, ..]`` in the array's own coordinates (negative for a padded canvas)."""

    key: str
    title: str
    layout: str
    values: np.ndarray
    kinds: np.ndarray
    offset: tuple[int, int] = (0, 0)
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
    names it: forward ``y: [N, Ho, Wo, Cout]``, input_grad ``d_x: [N, H, W, Cin]``, filter_grad
    ``d_w: [kh, kw, Cin/groups, Cout]`` (NHWC / HWIO whatever data_format). ``grids`` are the
    arrays the page draws (x on its padded canvas, w, y, dy, zfull, rot180(w), d_x, d_w).
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

    ``output_hw``, ``pads``, ``leftover`` as the engine resolved them; ``same_inputs``: per axis,
    every input size that gives the same output size (the sizes among which
    ``conv2d_transpose`` needs ``output_shape`` to choose); ``overlap``: ``[H, W]`` count of
    (dy element, tap) pairs that land on each input cell in the transposed conv (uneven counts are
    the checkerboard); ``torch_conv2d`` / ``torch_conv_transpose2d``: the equivalent PyTorch call
    as keyword arguments (``pad`` is an ``F.pad`` to apply first) or None where none exists;
    ``text``: all of it in words with the numbers.
    """

    geometry: ConvGeometry
    groups: int
    same_inputs: tuple[tuple[int, ...], tuple[int, ...]]
    overlap: np.ndarray
    torch_conv2d: dict[str, Any]
    torch_conv_transpose2d: dict[str, Any] | None
    text: str

    def __str__(self) -> str:
        return self.text


def _same_output_sizes(geom: ConvGeometry, axis: int, padding: Any) -> tuple[int, ...]:
    """Every input size along ``axis`` for which the engine's conv_geometry gives the same output
    size (the other axis held): asked of the engine, not computed from a formula."""
    o = geom.output_hw[axis]
    s = geom.strides[axis]
    e = geom.effective_kernel_hw[axis]
    pads = geom.pads
    # the search window: far enough below and above i that the output size must differ there
    lo = max(1, geom.input_hw[axis] - 2 * s - e - 1)
    hi = geom.input_hw[axis] + 2 * s + e + 1
    found = []
    for i in range(lo, hi + 1):
        hw = list(geom.input_hw)
        hw[axis] = i
        pad_arg = padding if isinstance(padding, str) else [list(pads[0]), list(pads[1])]
        try:
            g = conv_geometry(
                _OP, (1, hw[0], hw[1], 1), (*geom.kernel_hw, 1, 1), geom.strides, pad_arg,
                geom.dilations,
            )  # fmt: skip
        except ValueError:
            continue
        if g.output_hw[axis] == o:
            found.append(i)
    return tuple(found)


def _torch_calls(geom: ConvGeometry, groups: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    (pt, pb), (pl, pr) = geom.pads
    fwd: dict[str, Any] = {
        "stride": geom.strides,
        "dilation": geom.dilations,
        "groups": groups,
    }
    if pt == pb and pl == pr:
        fwd["padding"] = (pt, pl)
        fwd["pad"] = None
    else:
        fwd["padding"] = (0, 0)
        fwd["pad"] = (pl, pr, pt, pb)  # F.pad's order: last axis first
    # conv_transpose2d crops `padding` from both ends of the full output and adds output_padding
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
        "padding": (pt, pl),
        "output_padding": tuple(ops),
        "dilation": geom.dilations,
        "groups": groups,
    }
    return fwd, tr


def _torch_text(fwd: dict[str, Any], tr: dict[str, Any] | None) -> list[str]:
    def t(v: Any) -> str:
        return f"({v[0]}, {v[1]})"

    x = f"F.pad(x, {fwd['pad']})" if fwd["pad"] else "x"
    lines = [
        "PyTorch (NCHW x, weight = w.permute(3, 2, 0, 1)):",
        f"  y  = F.conv2d({x}, weight, stride={t(fwd['stride'])}, padding={t(fwd['padding'])}, "
        f"dilation={t(fwd['dilation'])}, groups={fwd['groups']})",
    ]
    if tr is None:
        lines.append(
            "  dx = no single F.conv_transpose2d call: its padding is symmetric and output_padding "
            "must lie in [0, max(stride, dilation)); crop its full output instead"
        )
    else:
        lines.append(
            f"  dx = F.conv_transpose2d(dy, weight, stride={t(tr['stride'])}, "
            f"padding={t(tr['padding'])}, output_padding={t(tr['output_padding'])}, "
            f"dilation={t(tr['dilation'])}, groups={tr['groups']})"
        )
    return lines


def shape_oracle(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str | Sequence[Sequence[int]] = "VALID",
    dilations: int | Sequence[int] = 1,
    data_format: str = "NHWC",
) -> ShapeOracle:
    """The conv arithmetic of one geometry with the user's numbers.

    Args:
        x_shape: input shape ``[N, H, W, Cin]`` (``[N, Cin, H, W]`` with data_format='NCHW').
        w_shape: HWIO filter ``[kh, kw, Cin/groups, Cout]``.
        strides, padding, dilations, data_format: as ``tc.conv2d``.

    Returns:
        A :class:`ShapeOracle`: output size formula, TF's SAME split, every input size giving the
        same output, the transposed conv's overlap-count map ``[H, W]`` and the PyTorch calls.

    Raises:
        ValueError / TypeError: as ``tc.conv2d`` for bad shapes (named ``shape_oracle``).
    """
    from tinygrad_conv.ops.conv import conv2d_backprop_input

    op = "shape_oracle"
    geom = conv_geometry(op, x_shape, w_shape, strides, padding, dilations, data_format)
    xs = _nhwc_shape(x_shape, data_format)
    groups = xs[3] // int(w_shape[2])
    same = (_same_output_sizes(geom, 0, padding), _same_output_sizes(geom, 1, padding))
    (h, w_), (oh, ow) = geom.input_hw, geom.output_hw
    # the overlap counts: the transposed conv (the engine's backprop-input) of ones with ones
    overlap = conv2d_backprop_input(
        np.array((1, h, w_, 1)),
        np.ones((*geom.kernel_hw, 1, 1)),
        np.ones((1, oh, ow, 1)),
        geom.strides,
        [list(geom.pads[0]), list(geom.pads[1])],
        dilations=geom.dilations,
    ).data[0, :, :, 0]
    fwd, tr = _torch_calls(geom, groups)
    lines = [f"shape oracle: x {_tuple(xs)} NHWC, w {_tuple(w_shape)} HWIO, groups {groups}"]
    for axis, name in enumerate(("height", "width")):
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
                + (" (the odd extra one goes to the bottom/right)" if hi > lo else "")
            )
        sizes = same[axis]
        lines.append(
            f"  input {name}s giving output {o}: {', '.join(map(str, sizes))}"
            + (
                " -> conv2d_transpose / conv2d_backprop_input need output_shape to choose"
                if len(sizes) > 1
                else " (unique)"
            )
        )
    lines.append(
        "overlap count of the transposed conv (taps landing on each input cell; uneven = "
        "checkerboard):"
    )
    width = max(len(str(int(v))) for v in overlap.ravel())
    for row in overlap:
        lines.append("  " + " ".join(str(int(v)).rjust(width) for v in row))
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
    lines += _torch_text(fwd, tr)
    return ShapeOracle(geom, groups, same, overlap, fwd, tr, "\n".join(lines))


# ----------------------------------------------------------------------------- building the lab


def _tuple(s: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(v)) for v in s) + ")"


def _nhwc_shape(shape: Sequence[int], data_format: str) -> tuple[int, int, int, int]:
    s = tuple(int(v) for v in shape)
    if isinstance(data_format, str) and data_format.upper() == "NCHW":
        return (s[0], s[2], s[3], s[1])
    return s  # type: ignore[return-value]


def _array(
    name: str, value: Any, shape: tuple[int, ...], data_format: str, nhwc: bool
) -> np.ndarray:
    from tinygrad_conv.tensor import Tensor

    a = value.data if isinstance(value, Tensor) else np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{_OP}: {name} must hold numbers, got dtype {a.dtype}")
    if nhwc and data_format == "NCHW":
        if a.ndim == 4:
            a = a.transpose(0, 2, 3, 1)
    if a.shape != shape:
        want = shape if not (nhwc and data_format == "NCHW") else (shape[0], shape[3], *shape[1:3])
        raise ValueError(
            f"{_OP}: {name} has shape {tuple(np.shape(value))} but the geometry needs "
            f"{_tuple(want)} ({data_format if nhwc else 'HWIO'})"
        )
    return np.ascontiguousarray(a, dtype=np.float64)


def _coded(shape_hw: tuple[int, int]) -> np.ndarray:
    """``[1, h, w, 1]`` holding 1 + the flat index of every cell (0 stays free for 'nothing')."""
    h, w = shape_hw
    return (np.arange(h * w, dtype=np.float64) + 1).reshape(1, h, w, 1)


def _tap_probes(kh: int, kw: int) -> np.ndarray:
    """One-hot filters ``[kh, kw, 1, kh*kw]``: output channel u*kw + v reads only tap (u, v)."""
    return np.eye(kh * kw, dtype=np.float64).reshape(kh, kw, 1, kh * kw)


def _window_map(geom: ConvGeometry) -> np.ndarray:
    """``[Ho, Wo, kh*kw, 2]``: the padded-input cell (row, col) that tap (u, v) reads at output
    (a, b), read from tc.conv2d of the index-coded padded input with one-hot filters."""
    from tinygrad_conv.ops.conv import conv2d

    (pt, pb), (pl, pr) = geom.pads
    hp, wp = geom.input_hw[0] + pt + pb, geom.input_hw[1] + pl + pr
    kh, kw = geom.kernel_hw
    got = conv2d(
        _coded((hp, wp)), _tap_probes(kh, kw), geom.strides, "VALID", dilations=geom.dilations
    )
    code = np.rint(got.data[0]).astype(np.int64) - 1  # [Ho, Wo, K]
    if got.shape[1:3] != geom.output_hw or code.min() < 0:
        raise RuntimeError(f"{_OP}: the window probe disagrees with the geometry {geom}")
    return np.stack([code // wp - pt, code % wp - pl], axis=-1)  # input coordinates


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
    """The lab of one conv2d geometry: three animations, the shape oracle and the numbers.

    Attributes:
        x: ``[N, H, W, Cin]``, w: ``[kh, kw, Cin/groups, Cout]``, dy: ``[N, Ho, Wo, Cout]``
            (NHWC / HWIO, float64; inputs given as NCHW are transposed);
        geometry: the engine's resolved :class:`ConvGeometry`; groups; data_format;
        forward, input_grad, filter_grad: the :class:`Animation` s;
        oracle: the :class:`ShapeOracle`;
        zfull: dy dilated by the strides and padded to "full" (the gather view's input);
        wrot: ``swap_in_out(rot180(w))`` ``[kh, kw, Cout/groups, Cin]`` (the gather view's filter);
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
    def animations(self) -> list[Animation]:
        """``[forward, input_grad, filter_grad]``."""
        return [self.forward, self.input_grad, self.filter_grad]

    def group_of_channel(self, c: int) -> int:
        """The group an input channel of x belongs to."""
        return int(c) // self.w.shape[2]

    def group_of_output(self, q: int) -> int:
        """The group an output channel (of y, dy, w) belongs to."""
        return int(q) // (self.w.shape[3] // self.groups)

    def save_html(self, path: str | os.PathLike) -> Path:
        """Write one self-contained offline page with all three animations and the oracle."""
        from tinygrad_conv.web import lab_page

        return lab_page.write_lab_page(self, path)

    def text(self) -> str:
        """A summary in words: the geometry, the checks and the shape oracle."""
        g = self.geometry
        lines = [
            f"conv lab: x {_tuple(self.x.shape)} NHWC, w {_tuple(self.w.shape)} HWIO, groups "
            f"{self.groups}, strides {g.strides}, padding {self.padding!r} -> pads {g.pads}, "
            f"dilations {g.dilations}, y {_tuple(self.dy.shape)}",
        ]
        if self.groups > 1:
            cg, og = self.w.shape[2], self.w.shape[3] // self.groups
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
    data_format: str = "NHWC",
) -> ConvLab:
    """Animate conv2d, its input gradient (scatter and gather) and its filter gradient.

    Args:
        x_shape: ``[N, H, W, Cin]`` (``[N, Cin, H, W]`` with data_format='NCHW').
        w_shape: HWIO ``[kh, kw, Cin/groups, Cout]``; groups = Cin // w_shape[2] as TF infers.
        strides, padding, dilations: as ``tc.conv2d`` ('VALID', 'SAME' or explicit pairs).
        x, w, dy: optional values (x and dy in data_format order, w HWIO); missing ones are small
            integers in [-3, 3] drawn from ``np.random.default_rng(seed)`` in the order x, w, dy
            (the order of ``derivations.explain_steps``), so the sums are readable and exact.
        seed: the seed of the drawn values.
        data_format: 'NHWC' or 'NCHW'.

    Returns:
        A :class:`ConvLab`.

    Raises:
        ValueError: an empty output, channels that do not divide into groups, a value of the
            wrong shape, or more than MAX_FRAMES frames / MAX_TERMS products in an animation.
        TypeError: non-integer shapes, non-numeric values.
    """
    from tinygrad_conv.ops.conv import conv2d, conv2d_backprop_filter, conv2d_backprop_input

    if not isinstance(data_format, str) or data_format.upper() not in ("NHWC", "NCHW"):
        raise ValueError(f"{_OP}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    data_format = data_format.upper()
    geom = conv_geometry(_OP, x_shape, w_shape, strides, padding, dilations, data_format)
    xs = _nhwc_shape(x_shape, data_format)
    ws = tuple(int(v) for v in w_shape)
    n, h, wd, cin = xs
    kh, kw, cg, cout = ws
    if n < 1:
        raise ValueError(f"{_OP}: x_shape {_tuple(x_shape)} has batch {n}: nothing to animate")
    groups = cin // cg
    og = cout // groups
    oh, ow = geom.output_hw
    ys = (n, oh, ow, cout)
    fwd_frames, fwd_terms = n * oh * ow * cout, n * oh * ow * cout * kh * kw * cg
    _check_limits("forward", fwd_frames, fwd_terms, f"N*Ho*Wo*Cout = {n}*{oh}*{ow}*{cout}")
    _check_limits(
        "input_grad", fwd_frames, 2 * fwd_terms, f"N*Ho*Wo*Cout = {n}*{oh}*{ow}*{cout}",
        " (scatter and gather views)",
    )  # fmt: skip
    fg_frames = kh * kw * cg * cout
    _check_limits(
        "filter_grad", fg_frames, fwd_terms, f"kh*kw*Cin/groups*Cout = {kh}*{kw}*{cg}*{cout}"
    )

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
    check_out_backprop(_OP, geom, dya.shape, n, cout)

    pad_arg = [list(geom.pads[0]), list(geom.pads[1])]
    y = conv2d(xa, wa, geom.strides, pad_arg, dilations=geom.dilations).data
    dx = conv2d_backprop_input(
        np.array(xs), wa, dya, geom.strides, pad_arg, dilations=geom.dilations
    ).data
    dw = conv2d_backprop_filter(
        xa, np.array(ws), dya, geom.strides, pad_arg, dilations=geom.dilations
    ).data

    wmap = _window_map(geom)  # [Ho, Wo, K, 2] input coordinates of each tap's cell
    zfull, zkinds, zpos, gmap = _gather_maps(geom, dya)
    from tinygrad_conv import derivations as D

    wrot = D.swap_in_out(D.rot180(wa), groups).data  # [kh, kw, Og, G*Cg]: the gather filter

    oracle = shape_oracle(x_shape, ws, strides, padding, dilations, data_format)
    lab = ConvLab(xa, wa, dya, geom, groups, data_format, padding, oracle, zfull, zkinds, wrot)

    in_h = (wmap[..., 0] >= 0) & (wmap[..., 0] < h)
    in_w = (wmap[..., 1] >= 0) & (wmap[..., 1] < wd)
    inside = in_h & in_w  # [Ho, Wo, K]
    taps_uv = np.stack(np.divmod(np.arange(kh * kw), kw), axis=-1)  # [K, 2]
    cidx = np.arange(cg)

    def x_value(nn: int, cells: np.ndarray, chans: np.ndarray, ok: np.ndarray) -> np.ndarray:
        vals = np.zeros(len(cells))
        vals[ok] = xa[nn, cells[ok, 0], cells[ok, 1], chans[ok]]
        return vals

    # forward and the scatter view: per (n, a, b, q), every (tap, c) of the group
    fwd, scat, gath = [], [], []
    acc_y, acc_dx, acc_dxg = _Acc(ys), _Acc(xs), _Acc(xs)
    for nn in range(n):
        for a in range(oh):
            for b in range(ow):
                cells = np.repeat(wmap[a, b], cg, axis=0)  # [K*cg, 2], order (tap, c)
                ok = np.repeat(inside[a, b], cg)
                uv = np.repeat(taps_uv, cg, axis=0)
                cc = np.tile(cidx, kh * kw)
                for q in range(cout):
                    g = q // og
                    chans = g * cg + cc
                    xv = x_value(nn, cells, chans, ok)
                    wv = wa[uv[:, 0], uv[:, 1], cc, q]
                    m = len(cc)
                    srcs = np.column_stack([np.full(m, nn), cells, chans])
                    wid = np.column_stack([uv, cc, np.full(m, q)])
                    tgt = np.tile(np.array([nn, a, b, q]), (m, 1))
                    kinds = np.where(ok, KIND_VALUE, KIND_PAD)
                    prod = xv * wv
                    allk = np.ones(m, dtype=bool)
                    fwd.append(
                        Frame((nn, a, b, q), tgt, srcs, wid, xv, wv, prod, allk, kinds,
                              acc_y.add(tgt, prod, allk))
                    )  # fmt: skip
                    # scatter: dy[n, a, b, q] stamps w[..., q] onto the same cells
                    dv = np.full(m, dya[nn, a, b, q])
                    dyidx = np.tile(np.array([nn, a, b, q]), (m, 1))
                    sprod = dv * wv
                    scat.append(
                        Frame((nn, a, b, q), srcs, dyidx, wid, dv, wv, sprod, ok,
                              np.zeros(m, dtype=np.int64), acc_dx.add(srcs, sprod, ok))
                    )  # fmt: skip
                    gath.append(_gather_frame(lab, (nn, a, b, q), zpos, gmap, og, cg, acc_dxg))
    # filter gradient: per (u, v, c, q), every (n, a, b)
    fg = []
    acc_dw = _Acc(ws)
    flat_ab = wmap.reshape(oh * ow, kh * kw, 2)
    inside_ab = inside.reshape(oh * ow, kh * kw)
    a_idx, b_idx = np.divmod(np.arange(oh * ow), ow)
    for u in range(kh):
        for v in range(kw):
            t = u * kw + v
            cells1 = flat_ab[:, t]  # [Ho*Wo, 2]
            ok1 = inside_ab[:, t]
            cells = np.tile(cells1, (n, 1))
            ok = np.tile(ok1, n)
            nn = np.repeat(np.arange(n), oh * ow)
            aa, bb = np.tile(a_idx, n), np.tile(b_idx, n)
            m = len(nn)
            for c in range(cg):
                for q in range(cout):
                    chan = (q // og) * cg + c
                    xv = np.zeros(m)
                    xv[ok] = xa[nn[ok], cells[ok, 0], cells[ok, 1], chan]
                    dv = dya[nn, aa, bb, q]
                    srcs = np.column_stack([nn, cells, np.full(m, chan)])
                    dyidx = np.column_stack([nn, aa, bb, np.full(m, q)])
                    tgt = np.tile(np.array([u, v, c, q]), (m, 1))
                    prod = xv * dv
                    allk = np.ones(m, dtype=bool)
                    fg.append(
                        Frame((u, v, c, q), tgt, srcs, dyidx, xv, dv, prod, allk,
                              np.where(ok, KIND_VALUE, KIND_PAD), acc_dw.add(tgt, prod, allk))
                    )  # fmt: skip

    grids = _grids(lab, y, dx, dw)
    lab.forward = Animation(
        "forward", "forward: y = conv2d(x, w)", "conv2d", y,
        [View("window", "the window over the padded input", "y", "x", "w", fwd,
              "each frame: one output element, the window's products and their running sum")],
        {k: grids[k] for k in ("x", "w", "y")}, lab,
    )  # fmt: skip
    lab.input_grad = Animation(
        "input_grad", "input gradient: d_x = conv2d_backprop_input(x.shape, w, dy)",
        "conv2d_backprop_input", dx,
        [View("scatter", "scatter: each dy element stamps w into d_x", "dx", "dy", "w", scat,
              "stamps that land in the forward's padding are dropped"),
         View("gather", "gather: conv2d(zfull, rot180(w)), stride 1", "dxg", "zfull", "wrot", gath,
              "zfull = dy with s-1 zeros inserted, padded to full; the same products")],
        {k: grids[k] for k in ("dy", "w", "dx", "zfull", "wrot", "dxg")}, lab,
    )  # fmt: skip
    lab.filter_grad = Animation(
        "filter_grad", "filter gradient: d_w = conv2d_backprop_filter(x, w.shape, dy)",
        "conv2d_backprop_filter", dw,
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
    cell, where each dy cell sits in zfull (``[Ho, Wo, 2]``, -1 if cropped away) and the gather
    conv's windows ``[H, W, K, 2]`` (the zfull cell rot180 tap u'*kw+v' reads at d_x cell t)."""
    from tinygrad_conv import derivations as D
    from tinygrad_conv.ops.conv import conv2d

    oh, ow = geom.output_hw
    kh, kw = geom.kernel_hw
    full = D.full_padding(geom)

    def rearrange(a: np.ndarray) -> np.ndarray:
        return D.pad_or_crop(D.dilate(a, geom.strides), full).data

    zfull = rearrange(dya)
    code = rearrange(_coded((oh, ow)))[0, :, :, 0]
    region = D.pad_or_crop(
        np.ones((1, (oh - 1) * geom.strides[0] + 1, (ow - 1) * geom.strides[1] + 1, 1)), full
    ).data[0, :, :, 0]
    kinds = np.where(code > 0, KIND_VALUE, np.where(region > 0, KIND_INSERTED, KIND_PAD))
    zpos = np.full((oh, ow, 2), -1, dtype=np.int64)
    r, c = np.nonzero(code)
    flat = np.rint(code[r, c]).astype(np.int64) - 1
    zpos[flat // ow, flat % ow] = np.stack([r, c], axis=-1)
    hz, wz = code.shape
    got = conv2d(_coded((hz, wz)), _tap_probes(kh, kw), 1, "VALID", dilations=geom.dilations)
    g = np.rint(got.data[0]).astype(np.int64) - 1  # [H, W, K]
    if got.shape[1:3] != geom.input_hw:
        raise RuntimeError(f"{_OP}: the gather probe gives {got.shape}, not the input size")
    gmap = np.stack([g // wz, g % wz], axis=-1)
    return zfull, kinds, zpos, gmap


def _gather_frame(
    lab: ConvLab,
    index: tuple[int, int, int, int],
    zpos: np.ndarray,
    gmap: np.ndarray,
    og: int,
    cg: int,
    acc: _Acc,
) -> Frame:
    """The gather view of dy[index]: every (d_x cell, rot180 tap) whose window reads its zfull
    cell, times every in-channel of its group."""
    nn, a, b, q = index
    kw = lab.geometry.kernel_hw[1]
    zr, zc = zpos[a, b]
    if zr < 0:  # cropped away: it only ever stamped into padding
        hits = np.zeros((0, 3), dtype=np.int64)
    else:
        hits = np.argwhere((gmap[..., 0] == zr) & (gmap[..., 1] == zc))  # (t_h, t_w, u'kw+v')
    cc = np.tile(np.arange(cg), len(hits))
    hits = np.repeat(hits, cg, axis=0)
    m = len(cc)
    g = q // og
    up, vp = np.divmod(hits[:, 2], kw)
    # the gather filter is derivations' swap_in_out(rot180(w)): in-channel q - g*Og of its group,
    # out-channel g*Cg + c
    fv = lab.wrot[up, vp, q - g * og, g * cg + cc]
    zv = np.full(m, lab.zfull[nn, zr, zc, q]) if m else np.zeros(0)
    tgt = np.column_stack([np.full(m, nn), hits[:, 0], hits[:, 1], g * cg + cc]).astype(np.int64)
    src = np.tile(np.array([nn, zr, zc, q]), (m, 1))
    tap = np.column_stack([up, vp, np.full(m, q - g * og), g * cg + cc]).astype(np.int64)
    prod = zv * fv
    kept = np.ones(m, dtype=bool)
    tgt = tgt.reshape(m, 4)
    return Frame(index, tgt, src.reshape(m, 4), tap.reshape(m, 4), zv, fv, prod, kept,
                 np.zeros(m, dtype=np.int64), acc.add(tgt, prod, kept))  # fmt: skip


def _grids(lab: ConvLab, y: np.ndarray, dx: np.ndarray, dw: np.ndarray) -> dict[str, Grid]:

    g = lab.geometry
    (pt, pb), (pl, pr) = g.pads
    xpad = np.pad(lab.x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kinds = np.full(xpad.shape, KIND_PAD, dtype=np.int64)
    kinds[:, pt : pt + g.input_hw[0], pl : pl + g.input_hw[1], :] = KIND_VALUE
    wrot = lab.wrot
    zeros = np.zeros
    G = lab.groups
    return {
        "x": Grid(
            "x", "x (padded; grey = padding zeros)", "NHWC", xpad, kinds, (-pt, -pl), False, G
        ),
        "w": Grid("w", "w", "HWIO", lab.w, zeros(lab.w.shape, np.int64), groups=G),
        "y": Grid("y", "y", "NHWC", y, zeros(y.shape, np.int64), result=True, groups=G),
        "dy": Grid("dy", "dy", "NHWC", lab.dy, zeros(lab.dy.shape, np.int64), groups=G),
        "dx": Grid(
            "dx", "d_x (scatter)", "NHWC", dx, zeros(dx.shape, np.int64), result=True, groups=G
        ),
        "zfull": Grid(
            "zfull",
            "zfull: dy, inserted zeros (hatched), full padding (grey)",
            "NHWC",
            lab.zfull,
            np.broadcast_to(lab.zkinds[None, :, :, None], lab.zfull.shape).copy(),
            groups=G,
        ),  # fmt: skip
        "wrot": Grid(
            "wrot", "rot180(w), in/out swapped", "HWIO", wrot, zeros(wrot.shape, np.int64), groups=G
        ),
        "dxg": Grid(
            "dxg", "d_x (gather)", "NHWC", dx, zeros(dx.shape, np.int64), result=True, groups=G
        ),
        "dw": Grid("dw", "d_w", "HWIO", dw, zeros(dw.shape, np.int64), result=True, groups=G),
    }


def _run_checks(lab: ConvLab, y: np.ndarray, dx: np.ndarray, dw: np.ndarray) -> None:
    from tinygrad_conv import derivations as D

    g = lab.geometry
    pad_arg = [list(g.pads[0]), list(g.pads[1])]
    dx_conv = D.input_grad_as_conv2d(lab.w, lab.dy, lab.x.shape, g.strides, pad_arg, g.dilations)
    dw_conv = D.filter_grad_as_conv2d(lab.x, lab.dy, lab.w.shape, g.strides, pad_arg, g.dilations)

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        return bool(a.shape == b.shape and np.max(np.abs(a - b), initial=0.0) <= 1e-12 * scale)

    lab.checks = {
        "forward frames sum to conv2d(x, w)": close(lab.forward.rebuilt(), y),
        "scatter frames sum to conv2d_backprop_input(x.shape, w, dy)": close(
            lab.input_grad.rebuilt("scatter"), dx
        ),
        "gather frames sum to conv2d_backprop_input(x.shape, w, dy)": close(
            lab.input_grad.rebuilt("gather"), dx
        ),
        "gather conv2d(zfull, rot180(w)) == conv2d_backprop_input": close(dx_conv.data, dx),
        "filter frames sum to conv2d_backprop_filter(x, w.shape, dy)": close(
            lab.filter_grad.rebuilt(), dw
        ),
        "conv2d(x swapped, dy swapped) == conv2d_backprop_filter": close(dw_conv.data, dw),
    }

"""The seed's rearrangements of conv2d's gradients, drawn on a small integer example.

:func:`explain_conv` shows, as tables of numbers (a Graphviz drawing) and as text (terminal), how
conv2d's input and filter gradients are plain conv2d's of rearranged arguments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import graphviz
import numpy as np

from tinygrad_conv.viz import _pair_text, _shape_text, save_graph

__all__ = ["ConvExplanation", "ConvStep", "explain_conv"]


@dataclass
class ConvStep:
    """One step of :func:`explain_conv`: a title, what it does, and the resulting array (NHWC or
    HWIO, as named by ``layout``)."""

    name: str
    title: str
    detail: str
    array: np.ndarray
    layout: str


@dataclass
class ConvExplanation:
    """What :func:`explain_conv` returns: the steps, their drawing, and their text form.

    ``str(explanation)`` is the terminal text; in Jupyter the drawing renders inline.
    """

    steps: list[ConvStep]
    digraph: graphviz.Digraph
    text: str
    checks: dict[str, bool]

    def step(self, name: str) -> ConvStep:
        """The step called ``name`` (``'dy_dilated'``, ``'d_x'``, ...)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(
            f"explain_conv: no step named {name!r}; steps: {[s.name for s in self.steps]}"
        )

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.digraph._repr_mimebundle_(include=include, exclude=exclude)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the drawing (see :func:`save_graph`)."""
        return save_graph(self.digraph, path)


def _fmt_cell(v: float, integral: bool) -> str:
    if integral:
        return str(int(round(v)))
    return f"{v:.3g}"


def _is_integral(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))


_PLANE_AXES = {  # layout -> (the two non-spatial axes, their names); spatial axes are 1, 2 or 0, 1
    "NHWC": ((0, 3), ("n", "c")),
    "CHWN": ((0, 3), ("c", "n")),
    "HWIO": ((2, 3), ("in", "out")),
}


def _planes(a: np.ndarray, layout: str, max_planes: int = 6) -> list[tuple[str, np.ndarray]]:
    """The 2-D spatial planes of a 4-D array, labelled by their other two indices."""
    (p, q), (pn, qn) = _PLANE_AXES[layout]
    out: list[tuple[str, np.ndarray]] = []
    for i in range(a.shape[p]):
        for j in range(a.shape[q]):
            plane = a[i, :, :, j] if layout != "HWIO" else a[:, :, i, j]
            out.append((f"{pn}={i} {qn}={j}", plane))
    if len(out) > max_planes:
        out = out[:max_planes] + [(f"... {len(out) - max_planes} more", np.zeros((0, 0)))]
    return out


def _html_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html_table(step: ConvStep) -> str:
    """An HTML-like graphviz label: the title, then one grid of numbers per spatial plane."""
    a = step.array
    integral = _is_integral(a)
    head = (
        f'<TR><TD BGCOLOR="#dfe8f5"><B>{_html_escape(step.title)}</B><BR/>'
        f'<FONT POINT-SIZE="9">{_html_escape(step.detail)}</FONT><BR/>'
        f'<FONT POINT-SIZE="9">{step.layout} {_shape_text(a.shape)}</FONT></TD></TR>'
    )
    cells = []
    for caption, plane in _planes(a, step.layout):
        if plane.size == 0:
            cells.append(f"<TD>{_html_escape(caption)}</TD>")
            continue
        grid = ['<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">']
        grid.append(
            f'<TR><TD COLSPAN="{plane.shape[1]}" BORDER="0">'
            f'<FONT POINT-SIZE="8">{caption}</FONT></TD></TR>'
        )
        for row in plane:
            tds = []
            for v in row:
                color = ' BGCOLOR="#eeeeee"' if v == 0 else ""
                tds.append(f"<TD{color}>{_fmt_cell(float(v), integral)}</TD>")
            grid.append("<TR>" + "".join(tds) + "</TR>")
        grid.append("</TABLE>")
        cells.append("<TD>" + "".join(grid) + "</TD>")
    body = (
        '<TR><TD><TABLE BORDER="0" CELLSPACING="4"><TR>'
        + "".join(cells)
        + "</TR></TABLE></TD></TR>"
    )
    return '<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0">' + head + body + "</TABLE>>"


def _text_block(step: ConvStep) -> str:
    """The terminal form of a step: title, detail, and the same grids as right-aligned text."""
    a = step.array
    integral = _is_integral(a)
    out = [f"== {step.title}  [{step.layout} {_shape_text(a.shape)}]", f"   {step.detail}"]
    for caption, plane in _planes(a, step.layout):
        if plane.size == 0:
            out.append(f"   {caption}")
            continue
        cells = [[_fmt_cell(float(v), integral) for v in row] for row in plane]
        width = max(len(c) for row in cells for c in row)
        out.append(f"   {caption}:")
        for row in cells:
            out.append("     " + " ".join(c.rjust(width) for c in row))
    return "\n".join(out)


def _ints(name: str, v: Any, n: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in v)
    except TypeError:
        raise TypeError(f"explain_conv: {name} must be {n} ints, got {v!r}") from None
    if len(vals) != n:
        raise ValueError(f"explain_conv: {name} must have {n} entries, got {v!r}")
    return vals


#: Names of derivations.explain_steps' entries, in its order, with their layouts.
_DERIVATION_STEPS = (
    ("dy", "NHWC"),
    ("dy_dilated", "NHWC"),
    ("dy_padded", "NHWC"),
    ("w_rot180", "HWIO"),
    ("d_x", "NHWC"),
    ("x_swapped", "CHWN"),
    ("dy_swapped", "HWIO"),
    ("d_w", "HWIO"),
)


def _step_details(geom: Any, padding: Any) -> dict[str, str]:
    from tinygrad_conv import derivations as D

    (sh, sw), (dh, dw) = geom.strides, geom.dilations
    (ft, fb), (fl, fr) = D.full_padding(geom)
    (pt, pb), (pl, pr) = geom.pads
    rh, rw = geom.leftover
    return {
        "x": "the forward input",
        "w": "the filter",
        "y": f"conv2d(x, w, strides={_pair_text(geom.strides)}, padding={padding!r}, "
        f"dilations={_pair_text(geom.dilations)})",
        "dy": "the upstream gradient dL/dy (same shape as y)",
        "dy_dilated": f"{sh - 1} zero row(s) / {sw - 1} zero column(s) inserted between entries "
        f"(strides {_pair_text(geom.strides)})",
        "dy_padded": f"pad top/bottom ({ft},{fb}) left/right ({fl},{fr}) = d(k-1) - p_lo, "
        "d(k-1) - p_hi + r (negative = crop)",
        "w_rot180": "w[::-1, ::-1] with in/out channels swapped",
        "d_x": f"conv2d(padded dy, rot180(w)), stride 1, dilations {_pair_text((dh, dw))}, VALID"
        " = conv2d_backprop_input",
        "x_swapped": "x with batch and channel axes swapped: NHWC -> CHWN (channels are the batch)",
        "dy_swapped": "dy as a filter: NHWC -> HWIO (the batch is the contracted in-channel)",
        "d_w": f"conv2d(x swapped, dy swapped), strides {_pair_text((dh, dw))} (= forward "
        f"dilations), dilations {_pair_text((sh, sw))} (= forward strides), pads "
        f"({pt},{pb - rh}) ({pl},{pr - rw}), back to HWIO = conv2d_backprop_filter",
    }


def explain_conv(
    x_shape: Sequence[int] = (1, 5, 5, 1),
    w_shape: Sequence[int] = (3, 3, 1, 1),
    strides: int | Sequence[int] = 2,
    padding: str | Sequence[Sequence[int]] = "SAME",
    dilations: int | Sequence[int] = 1,
    *,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    file: IO[str] | None = None,
) -> ConvExplanation:
    """Show, on a small integer example, how conv2d's two gradients are plain conv2d's.

    Steps (``ConvExplanation.step(name)``): ``x``, ``w``, ``y = conv2d(x, w)`` and an upstream
    ``dy``; for d_x: ``dy_dilated`` (dy with stride-1 zeros inserted), ``dy_padded`` (padded to
    "full", negative = crop), ``w_rot180`` (in/out channels swapped) and ``d_x``, the stride-1
    conv2d of the two; for d_w: ``x_swapped`` (NHWC -> CHWN), ``dy_swapped`` (NHWC -> HWIO, the
    filter) and ``d_w``, their conv2d (stride = forward dilation, dilation = forward stride) swapped
    back to HWIO. The example is that of ``tinygrad_conv.derivations.explain_steps`` (same
    seed); y, d_x and d_w are built from the frames of ``tc.conv_lab`` on the same numbers (the
    sums of the forward, gather and filter-gradient frames' products), so the geometry must stay
    within the lab's frame limit (``tinygrad_conv.lab.MAX_FRAMES``). ``checks`` compares them with
    ``conv2d`` / ``conv2d_backprop_input`` / ``conv2d_backprop_filter`` and with the derivations.

    Args:
        x_shape: NHWC input shape (keep it small: every value is drawn).
        w_shape: HWIO filter shape ``[kh, kw, Cin/groups, Cout]``.
        strides, padding, dilations: as ``tc.conv2d``.
        seed: seed of the integer example values.
        out: optional path to write the drawing to (``.svg``, ``.png``, ``.pdf``, ``.dot``).
        file: optional text stream to print the steps to (e.g. ``sys.stdout``).

    Returns:
        A :class:`ConvExplanation` (``steps``, ``digraph``, ``text``, ``checks``); it renders
        inline in Jupyter and ``str()`` of it is the text.

    Raises:
        TypeError / ValueError: bad shapes, strides, padding or dilations (from the conv checks),
            or a geometry beyond the lab's frame limit.
    """
    import tinygrad_conv as tc
    from tinygrad_conv import derivations as D
    from tinygrad_conv.kernels.padding import conv_geometry
    from tinygrad_conv.lab import conv_lab

    xs, ws = _ints("x_shape", x_shape, 4), _ints("w_shape", w_shape, 4)
    geom = conv_geometry("explain_conv", xs, ws, strides, padding, dilations)
    pairs = D.explain_steps(xs, ws, strides, padding, dilations, seed=seed)
    if len(pairs) != len(_DERIVATION_STEPS):
        raise RuntimeError(
            f"explain_conv: derivations.explain_steps returned {len(pairs)} steps, expected "
            f"{len(_DERIVATION_STEPS)}"
        )
    # the lab draws x, w, dy from default_rng(seed) in explain_steps' order, so its frames are
    # about the same numbers; y, the rearranged dy and the two gradients shown are the lab's
    # (the sums of its frames' products), the layout swaps are explain_steps'
    lab = conv_lab(xs, ws, strides, padding, dilations, seed=seed)
    if not np.array_equal(lab.dy, pairs[0][1]):
        raise RuntimeError("explain_conv: the lab and derivations.explain_steps drew different dy")
    from_lab = {
        "dy": lab.dy,
        "dy_padded": lab.zfull,
        "w_rot180": lab.input_grad.grids["wrot"].values,
        "d_x": lab.input_grad.rebuilt("gather"),
        "d_w": lab.filter_grad.rebuilt(),
    }
    details = _step_details(geom, padding)
    details["d_x"] += "; here the sum of the lab's gather frames"
    details["d_w"] += "; here the sum of the lab's filter-gradient frames"
    derived = {
        name: ConvStep(name, title, details[name], np.asarray(from_lab.get(name, arr)), layout)
        for (name, layout), (title, arr) in zip(_DERIVATION_STEPS, pairs, strict=True)
    }
    x, w, dy = lab.x, lab.w, lab.dy
    y = lab.forward.rebuilt()
    steps: list[ConvStep] = [
        ConvStep("x", "x", details["x"], x, "NHWC"),
        ConvStep("w", "w", details["w"], w, "HWIO"),
        ConvStep(
            "y",
            "y = conv2d(x, w)",
            details["y"] + "; the sum of the lab's forward frames",
            y,
            "NHWC",
        ),
    ]
    ref_dx = tc.conv2d_backprop_input(np.array(xs), w, dy, strides, padding, dilations=dilations)
    ref_dw = tc.conv2d_backprop_filter(x, np.array(ws), dy, strides, padding, dilations=dilations)
    checks: dict[str, bool] = {
        "y == conv2d(x, w)": bool(
            np.allclose(y, tc.conv2d(x, w, strides, padding, dilations=dilations).data)
        ),
        "d_x == conv2d_backprop_input(x.shape, w, dy)": bool(
            np.allclose(derived["d_x"].array, ref_dx.data)
        ),
        "d_w == conv2d_backprop_filter(x, w.shape, dy)": bool(
            np.allclose(derived["d_w"].array, ref_dw.data)
        ),
        "d_x == derivations' conv2d(padded dy, rot180(w))": bool(
            np.array_equal(derived["d_x"].array, pairs[4][1])
        ),
        "d_w == derivations' conv2d(x swapped, dy swapped)": bool(
            np.allclose(derived["d_w"].array, pairs[7][1])
        ),
    }
    steps += list(derived.values())
    return _build_explanation(steps, checks, geom, xs, ws, strides, padding, dilations, out, file)


def _build_explanation(
    steps: list[ConvStep],
    checks: dict[str, bool],
    geom: Any,
    xs: tuple[int, ...],
    ws: tuple[int, ...],
    strides: Any,
    padding: Any,
    dilations: Any,
    out: str | os.PathLike | None,
    file: IO[str] | None,
) -> ConvExplanation:
    (pt, pb), (pl, pr) = geom.pads
    header = (
        f"conv2d's gradients as plain conv2d's: x {_shape_text(xs)} NHWC, w {_shape_text(ws)} "
        f"HWIO, strides={_pair_text(geom.strides)}, padding={padding!r} (pads top/bottom "
        f"({pt},{pb}) left/right ({pl},{pr})), dilations={_pair_text(geom.dilations)}"
    )
    dot = graphviz.Digraph(name="explain_conv")
    dot.attr(rankdir="TB", label=header, labelloc="t", fontname="Helvetica", fontsize="12")
    dot.attr("node", shape="plaintext", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="9")
    names = {s.name for s in steps}
    for s in steps:
        dot.node(s.name, label=_html_table(s))
    for src, dst, label in _EXPLAIN_EDGES:
        if src in names and dst in names:
            dot.edge(src, dst, label=label)
    lines = [header, ""]
    for s in steps:
        lines.append(_text_block(s))
        lines.append("")
    for name, ok in checks.items():
        lines.append(f"check {name}: {'OK' if ok else 'MISMATCH'}")
    text = "\n".join(lines).rstrip("\n")
    result = ConvExplanation(steps=steps, digraph=dot, text=text, checks=checks)
    if out is not None:
        save_graph(dot, out)
    if file is not None:
        print(text, file=file)
    return result


_EXPLAIN_EDGES = (
    ("x", "y", "conv2d"),
    ("w", "y", "conv2d"),
    ("y", "dy", "backward"),
    ("dy", "dy_dilated", "dilate by the strides"),
    ("dy_dilated", "dy_padded", "pad to full"),
    ("w", "w_rot180", "rot180, swap in/out"),
    ("dy_padded", "d_x", "input"),
    ("w_rot180", "d_x", "filter"),
    ("x", "x_swapped", "NHWC -> CHWN"),
    ("dy", "dy_swapped", "NHWC -> HWIO"),
    ("x_swapped", "d_w", "input"),
    ("dy_swapped", "d_w", "filter"),
)

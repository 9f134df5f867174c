"""The lab's animations for slides: an animated SVG (SMIL, no script) and an animated GIF.

Both draw the same scene (:func:`scenes`): every view of the animation as a row of grids (source,
tap, target; any rank: 1-D grids are one row, 3-D grids one panel per depth slice, captioned with
its depth index), one picture per frame with the frame's cells outlined (orange: inputs, green: taps,
blue: results) and the result grids filled with the running sums of the frame products so far.
Padding zeros are grey, inserted zeros hatched (SVG) or pink (GIF).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinygrad_conv.web import write_text_atomic

if TYPE_CHECKING:
    from tinygrad_conv.lab import Animation

__all__ = ["MAX_GIF_FRAMES", "Scene", "save_gif", "save_svg", "scenes"]

#: Most pictures save_gif writes (Pillow holds all of them until the file is written).
MAX_GIF_FRAMES = 400

CELL = 26
GAP = 14
TITLE = 18
_FILL = {0: "#ffffff", 1: "#e4e4e4", 2: "#f1d9f5"}
_OUTLINE = {"src": "#e66100", "tap": "#2ec27e", "tgt": "#1a5fb4"}
_LOGICAL = {"dxg": "dx"}


@dataclass
class _Cell:
    x: int
    y: int
    grid: str
    key: tuple[str, tuple[int, ...]]
    kind: int
    text: str
    result: bool


@dataclass
class Scene:
    """The drawing of one animation: cells, labels, size, and per frame the outlined cells
    (``marks``), the result cells whose running sum changed (``updates``: (grid, index) -> text)
    and the caption lines (``eqs``)."""

    width: int
    height: int
    cells: list[_Cell]
    labels: list[tuple[int, int, str]]
    frames: list[dict[str, Any]]


def _fmt(v: float) -> str:
    f = float(v)
    if f.is_integer():
        return str(int(f))
    return f"{f:.3g}"


def _grid_cells(
    g: Any, x0: int, y0: int
) -> tuple[list[_Cell], list[tuple[int, int, str]], int, int]:
    """Lay out one grid of any rank: one panel per (n, c) (filters: (in, out)) holding the last
    two spatial axes (1-D: one row); in 3-D one panel per depth slice, its caption naming the
    depth index in the array's own coordinates (``d=``; ``kd=`` for filter taps)."""
    shape = g.values.shape
    r = len(shape) - 2
    filt = g.layout.endswith("IO")
    sp = shape[:r] if filt else shape[1 : r + 1]
    outer, chans = (shape[r] if filt else shape[0]), shape[r + 1]
    slices = sp[0] if r == 3 else 1
    rows, cols = (1 if r == 1 else sp[r - 2]), sp[r - 1]
    name = _LOGICAL.get(g.key, g.key)
    cells, labels = [], [(x0, y0 + 12, g.title.split(" (")[0].split(":")[0])]
    x = x0
    chans_per_group = max(1, chans // g.groups)
    for p in range(outer):
        for q in range(chans):
            for s in range(slices):
                cap = f"in={p} out={q}" if filt else f"n={p} c={q}"
                if r == 3:
                    cap += f" {'kd' if filt else 'd'}={s + g.offset[0]}"
                if g.groups > 1:
                    cap += f" (group {q // chans_per_group})"
                labels.append((x, y0 + TITLE + 10, cap))
                for i in range(rows):
                    for j in range(cols):
                        at = (j,) if r == 1 else (i, j) if r == 2 else (s, i, j)
                        arr = (*at, p, q) if filt else (p, *at, q)
                        shifted = tuple(v + o for v, o in zip(at, g.offset, strict=True))
                        idx = (*shifted, p, q) if filt else (p, *shifted, q)
                        v, k = g.values[arr], g.kinds[arr]
                        cells.append(
                            _Cell(x + j * CELL, y0 + TITLE + 14 + i * CELL, g.key, (name, idx),
                                  int(k), "" if g.result else _fmt(v), g.result)
                        )  # fmt: skip
                # a panel is at least as wide as its caption
                x += max(cols * CELL, len(cap) * 7 if r == 3 else 0) + GAP
    width = max(x - x0, int(len(labels[0][2]) * 7) + GAP)
    return cells, labels, width, TITLE + 14 + rows * CELL


def scenes(anim: Animation) -> Scene:
    """Lay out ``anim``'s views and compute every frame's highlights and running sums."""
    cells: list[_Cell] = []
    labels: list[tuple[int, int, str]] = []
    y = 8
    width = 0
    for v in anim.views:
        labels.append((8, y + 12, v.title))
        y += 20
        x = 8
        row_h = 0
        for gk in (v.source, v.tap, v.target):
            c, lab, w, h = _grid_cells(anim.grids[gk], x, y)
            cells += c
            labels += lab
            x += w + GAP
            row_h = max(row_h, h)
        width = max(width, x)
        y += row_h + GAP
    height = y + 14 * len(anim.views) + 10
    frames = []
    sums: dict[tuple[str, tuple[int, ...]], float] = {}
    for k in range(len(anim.frames)):
        marks: dict[tuple[str, tuple[int, ...]], str] = {}
        updates: dict[tuple[str, tuple[int, ...]], str] = {}
        eqs = []
        for v in anim.views:
            f = v.frames[k]
            tname, sname, pname = (_LOGICAL.get(g, g) for g in (v.target, v.source, v.tap))
            for j in range(len(f)):
                marks[(sname, tuple(int(i) for i in f.sources[j]))] = "src"
                marks[(pname, tuple(int(i) for i in f.taps[j]))] = "tap"
                if f.kept[j]:
                    idx = tuple(int(i) for i in f.targets[j])
                    marks[(tname, idx)] = "tgt"
                    gk = (v.target, idx)
                    sums[gk] = sums.get(gk, 0.0) + float(f.products[j])
                    updates[gk] = _fmt(sums[gk])
            eqs.append(
                f"{v.key}: frame {k + 1}/{len(anim.frames)} {anim.name} index {list(f.index)}"
            )
        frames.append({"marks": marks, "updates": updates, "eqs": eqs})
    return Scene(int(width), int(height), cells, labels, frames)


def _window(k0: int, k1: int, n: int, dur: float) -> str:
    """SMIL: visible during frames [k0, k1) of n, hidden otherwise, looping."""
    if k0 <= 0 and k1 >= n:
        return ""
    times, values = ["0"], ["visible" if k0 <= 0 else "hidden"]
    if k0 > 0:
        times.append(f"{k0 / n:.6f}")
        values.append("visible")
    if k1 < n:
        times.append(f"{k1 / n:.6f}")
        values.append("hidden")
    return (
        f'<animate attributeName="visibility" values="{";".join(values)}" '
        f'keyTimes="{";".join(times)}" calcMode="discrete" dur="{dur:g}s" '
        'repeatCount="indefinite"/>'
    )


def save_svg(anim: Animation, path: str | os.PathLike, *, ms_per_frame: int = 600) -> Path:
    """Write ``anim`` as an animated SVG: a static base and one group per frame, shown in turn
    by SMIL ``<animate>`` (looping; no script, so it plays in an ``<img>`` too)."""
    sc = scenes(anim)
    n = len(sc.frames)
    dur = n * ms_per_frame / 1000.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{sc.width}" height="{sc.height}" '
        f'viewBox="0 0 {sc.width} {sc.height}" font-family="monospace" font-size="11">',
        '<defs><pattern id="ins" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<rect width="3" height="6" fill="#f1d9f5"/></pattern></defs>',
        f'<rect width="{sc.width}" height="{sc.height}" fill="#fff"/>',
    ]
    for x, y, t in sc.labels:
        out.append(f'<text x="{x}" y="{y}" font-family="sans-serif">{html.escape(t)}</text>')
    for c in sc.cells:
        fill = "url(#ins)" if c.kind == 2 else _FILL[c.kind]
        out.append(
            f'<rect x="{c.x}" y="{c.y}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#bbb"/>'
        )
        if c.text:
            color = "#888" if c.kind else "#222"
            out.append(
                f'<text x="{c.x + CELL / 2}" y="{c.y + CELL / 2 + 4}" text-anchor="middle" '
                f'fill="{color}">{html.escape(c.text)}</text>'
            )
    pos: dict[Any, list[_Cell]] = {}
    for c in sc.cells:
        pos.setdefault(c.key, []).append(c)
    for k, fr in enumerate(sc.frames):
        vis = "visible" if k == 0 else "hidden"
        out.append(
            f'<g visibility="{vis}" class="frame" data-frame="{k}">{_window(k, k + 1, n, dur)}'
        )
        for key, role in fr["marks"].items():
            for c in pos.get(key, ()):
                out.append(
                    f'<rect x="{c.x + 1.5}" y="{c.y + 1.5}" width="{CELL - 3}" height="{CELL - 3}" '
                    f'fill="none" stroke="{_OUTLINE[role]}" stroke-width="3"/>'
                )
        y = sc.height - 10 - 14 * (len(fr["eqs"]) - 1)
        for i, e in enumerate(fr["eqs"]):
            out.append(f'<text x="8" y="{y + 14 * i}">{html.escape(e)}</text>')
        out.append("</g>")
    # a result cell's running sum: one text per change, shown until its next change
    changes: dict[tuple[str, tuple[int, ...]], list[tuple[int, str]]] = {}
    for k, fr in enumerate(sc.frames):
        for gk, text in fr["updates"].items():
            changes.setdefault(gk, []).append((k, text))
    at = {(c.grid, c.key[1]): c for c in sc.cells if c.result}
    for gk, seq in changes.items():
        c = at[gk]
        for i, (k0, text) in enumerate(seq):
            k1 = seq[i + 1][0] if i + 1 < len(seq) else n
            vis = "visible" if k0 == 0 else "hidden"
            out.append(
                f'<text x="{c.x + CELL / 2}" y="{c.y + CELL / 2 + 4}" text-anchor="middle" '
                f'fill="#1a5fb4" visibility="{vis}" class="sum" data-frames="{k0}-{k1}">'
                f"{_window(k0, k1, n, dur)}{html.escape(text)}</text>"
            )
    out.append("</svg>")
    return write_text_atomic(path, "\n".join(out))


def save_gif(anim: Animation, path: str | os.PathLike, *, ms_per_frame: int = 600) -> Path:
    """Write ``anim`` as an animated GIF (looping), one picture per frame. Needs Pillow."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as e:
        raise ImportError(
            f"conv_lab: save_gif needs Pillow (pip install pillow); save_svg needs nothing ({e})"
        ) from None
    if len(anim.frames) > MAX_GIF_FRAMES:
        raise ValueError(
            f"conv_lab: save_gif of {anim.name} would hold {len(anim.frames)} pictures; the limit "
            f"is MAX_GIF_FRAMES = {MAX_GIF_FRAMES} (Pillow keeps every picture in memory): use "
            "save_svg or save_html, or a smaller example"
        )
    sc = scenes(anim)
    # drawn straight in palette mode with the page's few colours: no per-picture quantisation
    base = Image.new("P", (sc.width, sc.height), "white")
    d = ImageDraw.Draw(base)
    for x, y, t in sc.labels:
        d.text((x, y - 10), t, fill="#222222")
    for c in sc.cells:
        d.rectangle([c.x, c.y, c.x + CELL, c.y + CELL], fill=_FILL[c.kind], outline="#bbbbbb")
        if c.text:
            d.text((c.x + CELL / 2, c.y + CELL / 2), c.text, fill="#888888" if c.kind else "#222222",
                   anchor="mm")  # fmt: skip
    pos: dict[Any, list[_Cell]] = {}
    for c in sc.cells:
        pos.setdefault(c.key, []).append(c)
    at = {(c.grid, c.key[1]): c for c in sc.cells if c.result}

    def pictures() -> Iterator[Any]:
        # one at a time: Pillow's GIF writer takes any iterable, so a long animation never holds
        # all of its pictures in memory
        state: dict[tuple[str, tuple[int, ...]], str] = {}
        for fr in sc.frames:
            state.update(fr["updates"])
            im = base.copy()
            dd = ImageDraw.Draw(im)
            for key, role in fr["marks"].items():
                for c in pos.get(key, ()):
                    dd.rectangle([c.x + 1, c.y + 1, c.x + CELL - 1, c.y + CELL - 1],
                                 outline=_OUTLINE[role], width=3)  # fmt: skip
            for gk, t in state.items():
                c = at[gk]
                dd.text((c.x + CELL / 2, c.y + CELL / 2), t, fill="#1a5fb4", anchor="mm")
            y = sc.height - 10 - 14 * (len(fr["eqs"]) - 1)
            for i, e in enumerate(fr["eqs"]):
                dd.text((8, y + 14 * i - 10), e, fill="#222222")
            yield im

    out = Path(path)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"conv_lab: directory {str(out.parent)!r} does not exist")
    tmp = out.with_name(f".{out.name}.tmp")
    frames = pictures()
    try:
        next(frames).save(tmp, format="GIF", save_all=True, append_images=frames,
                          duration=ms_per_frame, loop=0)  # fmt: skip
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out

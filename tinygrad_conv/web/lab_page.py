"""The conv lab's page: the lab's frames and grids as JSON, drawn by ``lab.js``.

The page carries every number of every frame; the script only draws them (it computes nothing but
the running sums of the products it is given, to fill the result grids as the frames play). Any
rank: a 1-D grid is drawn as one row per plane, a 3-D grid as one panel per depth slice, each
titled with its depth index (``d=``; ``kd=`` for filter taps) in the array's own coordinates.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_conv.web import asset, page_html, write_text_atomic

if TYPE_CHECKING:
    from tinygrad_conv.lab import Animation, ConvLab, Grid

__all__ = ["lab_data", "lab_page_html", "write_lab_page"]

#: Grids that show the same array under two names (hovering one highlights in both views).
_LOGICAL = {"dxg": "dx"}


def _num(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _grid_data(g: Grid) -> dict[str, Any]:
    return {
        "key": g.key,
        "name": _LOGICAL.get(g.key, g.key),
        "title": g.title,
        "layout": g.layout,
        "filter": g.layout.endswith("IO"),
        "shape": list(g.values.shape),
        "values": [_num(v) for v in g.values.ravel()],
        "kinds": [int(k) for k in g.kinds.ravel()],
        "offset": list(g.offset),
        "result": g.result,
        "groups": g.groups,
    }


def _frame_data(f: Any) -> dict[str, Any]:
    return {
        "i": [int(v) for v in f.index],
        "t": f.targets.ravel().tolist(),
        "s": f.sources.ravel().tolist(),
        "p": f.taps.ravel().tolist(),
        "a": [_num(v) for v in f.a],
        "b": [_num(v) for v in f.b],
        "x": [_num(v) for v in f.products],
        "k": [int(bool(v)) for v in f.kept],
        "z": [int(v) for v in f.source_kinds],
        "r": [None if np.isnan(v) else _num(v) for v in f.partial],
    }


def _anim_data(a: Animation) -> dict[str, Any]:
    return {
        "name": a.name,
        "title": a.title,
        "op": a.op,
        "frames": len(a.frames),
        "grids": {k: _grid_data(g) for k, g in a.grids.items()},
        "views": [
            {
                "key": v.key,
                "title": v.title,
                "note": v.note,
                "target": v.target,
                "source": v.source,
                "tap": v.tap,
                "frames": [_frame_data(f) for f in v.frames],
            }
            for v in a.views
        ],
    }


def lab_data(lab: ConvLab, only: str | None = None) -> dict[str, Any]:
    """Everything the page draws, as plain JSON-able data."""
    anims = [a for a in lab.animations if only is None or a.name == only]
    if not anims:
        names = [a.name for a in lab.animations]
        raise ValueError(f"conv_lab: no animation {only!r}; animations: {names}")
    overlap = lab.oracle.overlap.astype(int)
    if lab.rank == 3:  # one table per depth slice
        slices = [{"title": f"d={d}", "rows": plane.tolist()} for d, plane in enumerate(overlap)]
    else:  # 1-D: one row
        slices = [{"title": "", "rows": overlap.reshape(-1, overlap.shape[-1]).tolist()}]
    return {
        "summary": lab.text().split("\n")[0],
        "rank": lab.rank,
        "m": lab.rank + 2,
        "checks": lab.checks,
        "oracle": lab.oracle.text,
        "overlap": overlap.tolist(),
        "overlap_slices": slices,
        "anims": [_anim_data(a) for a in anims],
    }


def lab_page_html(lab: ConvLab, only: str | None = None) -> str:
    """The complete page as a string (see :func:`write_lab_page`)."""
    data = lab_data(lab, only)
    return page_html(
        "conv lab: " + data["summary"],
        _body(data),
        css=asset("lab.css"),
        js=asset("lab.js"),
        data=data,
        data_id="lab-data",
    )


def _body(data: dict[str, Any]) -> str:
    checks = "".join(
        f'<li class="{"ok" if ok else "bad"}">{html.escape(name)}: {"OK" if ok else "MISMATCH"}</li>'
        for name, ok in data["checks"].items()
    )
    return (
        '<header><h1>conv lab</h1><p id="summary">'
        + html.escape(data["summary"])
        + '</p><details><summary>checks against the engine</summary><ul id="checks">'
        + checks
        + '</ul></details><p class="legend"><span class="cell pad">0</span> padding zero '
        '<span class="cell ins">0</span> inserted zero <span class="cell cur-src">x</span> '
        'current input <span class="cell cur-tap">w</span> current tap '
        '<span class="cell cur-tgt">y</span> current result '
        '<span class="cell hl">h</span> contributors of the hovered cell; keys: \u2190 \u2192 '
        "step, space plays the animation under the pointer</p></header>"
        '<main id="anims"></main>'
        '<section id="oracle"><h2>shape oracle</h2><pre id="oracle-text">'
        + html.escape(data["oracle"])
        + "</pre><h3>overlap counts of the transposed conv (darker = more taps land there)</h3>"
        '<div id="overlap"></div></section>'
    )


def write_lab_page(lab: ConvLab, path: str | os.PathLike, only: str | None = None) -> Path:
    """Write the lab (or only the animation named ``only``) as one offline HTML page, atomically."""
    return write_text_atomic(path, lab_page_html(lab, only))

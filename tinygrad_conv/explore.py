"""The backprop explorer: one offline HTML page to step through a real backward pass.

``tc.explore(loss, params=model.named_parameters(), path="backprop.html")`` runs ``loss.backward()``
once under ``tc.record_backward(values=True)`` and turns the trace into one self-contained page
(:mod:`tinygrad_conv.web`: inline CSS, script and data; a Content Security Policy forbids every
request). The page draws the forward graph with the vendored dagre layout (no Graphviz), modules
collapsed into boxes that expand on click (a level with more than 600 items, e.g. a long graph
without modules, is drawn as a window of 600 around the current step that moves with it; scalar
constants are not drawn), and steps through ``trace.steps`` in execution order:
the upstream gradient, the calls the node's backward made (operands by name, shapes, arguments),
the expression of each input's gradient and the running sum where contributions accumulate.

Everything shown comes from the engine's records (:mod:`tinygrad_conv.record`): the explorer
renders, it infers nothing. The data is JSON in ``<script type="application/json" id="tc-trace">``
and the page exposes ``window.tcExplorer`` (``step()``, ``back()``, ``goto(i)``, ``state()``).

Size limits (documented on the page when they apply):

* :data:`MAX_VALUES` numbers in all are embedded (after identical arrays are stored once); above
  that every array's numbers are dropped and only shape, min, max and norm remain;
* an array of more than :data:`MAX_TENSOR_VALUES` elements is always summarised the same way.

Side effects: like ``loss.backward()``, ``explore`` accumulates into the ``.grad`` of the leaves and
releases the graph (unless ``retain_graph=True``); while it runs, the trace holds a copy of every
gradient and every call's result (``record_backward(values=True)``).
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_conv import record as _record
from tinygrad_conv import viz as _viz
from tinygrad_conv.tensor import Tensor
from tinygrad_conv.web import asset, page_html, write_text_atomic

__all__ = ["MAX_TENSOR_VALUES", "MAX_VALUES", "SMALL", "Explorer", "explore", "lab_file_name"]

_OP = "explore"

#: Most numbers the page embeds in all (about 20 bytes each in the file); above it every array is
#: summarised (shape, min, max, norm) and the page says so.
MAX_VALUES = 300_000

#: An array with more elements than this is always summarised (its heatmap would not be readable).
MAX_TENSOR_VALUES = 65_536

#: Arrays with at most this many elements are shown as numbers, larger ones as heatmaps.
SMALL = 64

#: Ops whose node gets a link to the conv lab of its geometry.
_LAB_OPS = ("conv2d",)

#: Conv-family ops whose geometry is spelled out in full (strides and dilations even when 1).
_CONV_OPS = frozenset(
    {
        "conv2d",
        "conv2d_backprop_input",
        "conv2d_backprop_filter",
        "conv2d_transpose",
        "depthwise_conv2d",
        "depthwise_conv2d_backprop_input",
        "depthwise_conv2d_backprop_filter",
    }
)


#: Ops whose result is a conv filter (HWIO).
_FILTER_OPS = {"conv2d_backprop_filter": "HWIO", "depthwise_conv2d_backprop_filter": "HWIO"}


def _filter_layout(op: str, label: str) -> str | None:
    """``'HWIO'`` for the gradient of a conv-family op's filter input ``w``."""
    return "HWIO" if op in _CONV_OPS and label == "w" else None


# ----------------------------------------------------------------------------- values


class _Values:
    """The page's table of arrays: identical arrays are stored once, referred to by index."""

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self.items: list[dict[str, Any]] = []
        self.arrays: list[np.ndarray | None] = []
        self.index: dict[tuple[Any, ...], int] = {}
        self.embedded = 0  # numbers that would be embedded
        self.oversize = 0  # arrays summarised for being larger than MAX_TENSOR_VALUES

    def add(self, a: np.ndarray | None, layout: str | None = None) -> int | None:
        """Index of ``a`` in the table (``None`` for no array). ``layout='HWIO'`` marks a conv
        filter (the page's heatmap then shows kh x kw per channel pair, not H x W)."""
        if a is None:
            return None
        a = np.asarray(a)
        layout = layout if a.ndim == 4 else None
        # the layout is part of the key: equal numbers drawn as a filter and as an activation
        # (e.g. two zero gradients of one 4-D shape) are two items, each with its own heatmap
        digest = hashlib.sha1(np.ascontiguousarray(a).tobytes()).digest()
        key = (a.shape, a.dtype.str, digest, layout)
        k = self.index.get(key)
        if k is None:
            k = self._new(key, a)
            if layout is not None:
                self.items[k]["layout"] = layout
        return k

    def _new(self, key: tuple[Any, ...], a: np.ndarray) -> int:
        k = self.index[key] = len(self.items)
        self.items.append(_stats(a))
        if a.size <= MAX_TENSOR_VALUES:
            self.arrays.append(a)
            self.embedded += a.size
        else:
            self.arrays.append(None)
            self.items[-1]["note"] = (
                f"{a.size} elements: more than MAX_TENSOR_VALUES = {MAX_TENSOR_VALUES}, "
                "numbers not embedded"
            )
            self.oversize += 1
        return k

    def finish(self) -> tuple[list[dict[str, Any]], str | None]:
        """The JSON items, and the page's note when the numbers were dropped."""
        if self.embedded > self.max_values:
            note = (
                f"This trace holds {self.embedded} numbers, more than max_values = "
                f"{self.max_values} (tc.explore's limit, default MAX_VALUES = {MAX_VALUES}): "
                "the numbers were dropped; every tensor shows its shape, min, max and norm. "
                "Use a smaller batch or pass a larger max_values to see them."
            )
            for item in self.items:
                item["data"] = None
                item.setdefault("note", "numbers dropped (size limit, see the note at the top)")
            return self.items, note
        for item, a in zip(self.items, self.arrays, strict=True):
            item["data"] = None if a is None else _flat(a)
        return self.items, None


def _stats(a: np.ndarray) -> dict[str, Any]:
    f = a.astype(np.float64, copy=False) if a.dtype.kind in "biuf" else None
    item: dict[str, Any] = {"shape": list(a.shape), "dtype": a.dtype.name}
    if f is None or f.size == 0:
        item.update(min=None, max=None, norm=None)
        return item
    finite = f[np.isfinite(f)]
    item["min"] = float(finite.min()) if finite.size else None
    item["max"] = float(finite.max()) if finite.size else None
    # scaled by the largest magnitude, so tiny or huge values neither underflow nor overflow
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    if finite.size != f.size:
        item["norm"] = _number(float(np.sqrt(np.sum(np.square(f)))))
    elif scale == 0.0:
        item["norm"] = 0.0
    else:
        item["norm"] = scale * float(np.sqrt(np.sum(np.square(f / scale))))
    if finite.size != f.size:
        item["nonfinite"] = int(f.size - finite.size)
    return item


def _number(v: float) -> float | str:
    """A float for JSON: NaN and infinities as the strings JavaScript's Number() reads."""
    if np.isfinite(v):
        return v
    return "NaN" if np.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _flat(a: np.ndarray) -> list[Any]:
    if a.dtype.kind not in "biuf":
        return [str(v) for v in a.ravel().tolist()]
    f = a.astype(np.float64, copy=False).ravel()
    if np.isfinite(f).all():
        return f.tolist()
    return [_number(v) for v in f.tolist()]


# ----------------------------------------------------------------------------- text


def _shape(shape: Sequence[int]) -> list[int]:
    return [int(s) for s in shape]


def _pair(v: Sequence[int]) -> str:
    return ",".join(str(int(x)) for x in v)


def _geometry_text(attrs: Mapping[str, Any]) -> str:
    """``strides=1,1 padding=SAME (pads 1,1,1,1) dilations=1,1`` for a conv-family call: every
    part spelled out (viz's labels leave out strides and dilations of 1)."""
    geom = next((v for v in attrs.values() if _viz._is_geometry(v)), None)
    if geom is None:
        return ""
    padding = attrs.get("padding")
    (t, b), (left, r) = geom.pads
    pads = f"pads {t},{b},{left},{r}"
    pad_text = f"padding={padding.upper()} ({pads})" if isinstance(padding, str) else pads
    return f"strides={_pair(geom.strides)} {pad_text} dilations={_pair(geom.dilations)}"


def _attr_items(attrs: Mapping[str, Any], op: str) -> list[str]:
    items = _viz._attrs_text(attrs, op)
    if op in _CONV_OPS:
        geometry = _geometry_text(attrs)
        if geometry:
            # the geometry replaces viz's short form (it leaves out strides / dilations of 1)
            drop = ("strides=", "pads=", "padding=", "dilations=")
            items = [i for i in items if not i.startswith(drop)] + [geometry]
    return items


def lab_file_name(
    input_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[Sequence[int]],
    dilations: Sequence[int],
) -> str:
    """The file name the explorer links for a conv2d geometry, e.g.
    ``conv_lab_8x8_k3x3_s1x1_pSAME_d1x1.html`` (explicit padding: ``p1-1-1-1``)."""
    if isinstance(padding, str):
        pad = padding.upper()
    else:
        pad = "-".join(str(int(p)) for pair in padding for p in pair)
    return (
        f"conv_lab_{input_hw[0]}x{input_hw[1]}_k{kernel_hw[0]}x{kernel_hw[1]}_s{strides[0]}x"
        f"{strides[1]}_p{pad}_d{dilations[0]}x{dilations[1]}.html"
    )


def _lab_info(node: Any) -> dict[str, Any] | None:
    """File name and command of the conv lab of a conv2d node's geometry (one image, one channel
    in and out: the lab's frames show the padding / stride / dilation arithmetic)."""
    if node.name not in _LAB_OPS:
        return None
    geom = node.attrs.get("geom")
    edges = node.input_edges()
    if geom is None or len(edges) < 2 or len(edges[0].shape) != 4 or len(edges[1].shape) != 4:
        return None
    padding = node.attrs.get("padding")
    pad_arg: Any = (
        padding.upper()
        if isinstance(padding, str) and padding.upper() in ("SAME", "VALID")
        else [list(geom.pads[0]), list(geom.pads[1])]
    )
    h, w = geom.input_hw
    kh, kw = geom.kernel_hw
    name = lab_file_name(geom.input_hw, geom.kernel_hw, geom.strides, pad_arg, geom.dilations)
    pad_cli = pad_arg if isinstance(pad_arg, str) else _pair([p for pr in geom.pads for p in pr])
    command = (
        f"python -m tinygrad_conv lab --x-shape 1,{h},{w},1 --w-shape {kh},{kw},1,1 "
        f"--strides {_pair(geom.strides)} --padding {pad_cli} --dilations "
        f"{_pair(geom.dilations)} --out {name}"
    )
    return {
        "file": name,
        "command": command,
        "x_shape": [1, h, w, 1],
        "w_shape": [kh, kw, 1, 1],
        "strides": list(geom.strides),
        "padding": pad_arg,
        "dilations": list(geom.dilations),
        "exists": False,
    }


# ----------------------------------------------------------------------------- the page data


def _tensor_kind(box: Any, is_root: bool) -> str:
    if is_root:
        return "root"
    if box.producer is not None:
        return "inter"
    return "param" if box.requires_grad else "const"


def _build(
    loss: Tensor, trace: _record.BackwardTrace, param_names: dict[int, str], max_values: int
) -> dict[str, Any]:
    g = _viz._collect([loss])
    clusters = _viz._Clusters(g, param_names)
    values = _Values(max_values)

    # clusters: key -> index, in the order of module names (layers.2 before layers.10)
    def chain_key(key: Any) -> list[Any]:
        chain = []
        while key is not None:
            chain.append(_viz._natural(clusters.label[key]))
            key = clusters.parent[key]
        return chain[::-1]

    ckeys = sorted(clusters.parent, key=chain_key)
    cindex = {key: i for i, key in enumerate(ckeys)}
    cluster_rows = [
        {
            "label": clusters.label[key],
            "parent": cindex.get(clusters.parent[key], -1),
        }
        for key in ckeys
    ]

    # tensors that are some conv's filter (HWIO): their heatmaps show kh x kw per channel pair
    filters = {
        g.node_in[n][i]
        for n, node in enumerate(g.nodes)
        if node.name in _CONV_OPS
        for i, label in enumerate(node.input_labels())
        if label == "w"
    }

    root_k = g.tid[("node", id(loss._ctx))] if loss._ctx is not None else -1
    tensors = []
    tensor_names: list[str] = []
    for k, box in enumerate(g.tensors):
        pname = param_names.get(id(box.tensor)) if box.tensor is not None else None
        name = pname or box.name or ""
        tensor_names.append(name)
        producer = g.nid.get(id(box.producer), -1) if box.producer is not None else -1
        key = clusters.tensor_cluster(k, box)
        row: dict[str, Any] = {
            "name": name,
            "shape": _shape(box.shape),
            "dtype": np.dtype(box.dtype).name,
            "kind": _tensor_kind(box, k == root_k),
            "producer": producer,
            "cluster": cindex.get(key, -1) if key is not None else -1,
        }
        t = box.tensor
        if (
            row["kind"] == "const"
            and box.shape == ()
            and t is not None
            and t.dtype.kind in "biuf"
            and not box.changed  # modified in place after the forward: not the value it used
        ):
            row["value"] = _number(float(t.data))  # a scalar constant (the page draws no node)
        tensors.append(row)

    ops = []
    for n, node in enumerate(g.nodes):
        key = clusters.node_cluster.get(n)
        ops.append(
            {
                "op": node.name,
                "attrs": _attr_items(node.attrs, node.name),
                "inputs": g.node_in[n],
                "labels": list(node.input_labels()),
                "output": g.node_out[n],
                "cluster": cindex.get(key, -1) if key is not None else -1,
                "lab": _lab_info(node),
            }
        )

    # accumulation events, found again by the identity of their target
    acc_rows = []
    acc_of: dict[int, int] = {}
    for a, ev in enumerate(trace.accumulations):
        target = ev.target
        if isinstance(target, Tensor):
            k = g.tid.get(("t", id(target)), -1)
        else:
            k = g.tid.get(("node", id(target)), -1)
        acc_of[id(target)] = a
        row = {
            "tensor": k,
            "name": (tensor_names[k] if k >= 0 else "") or (ev.name or ""),
            "shape": _shape(ev.shape),
            "count": ev.count,
            "steps": list(ev.steps),
        }
        if ev.contributions is not None:
            lay = "HWIO" if k in filters else None
            row["contributions"] = [values.add(c, lay) for c in ev.contributions]
            running, partial = [], None
            for c in ev.contributions:
                partial = c.copy() if partial is None else partial + c
                running.append(values.add(partial, lay))
            row["running"] = running
            row["total"] = values.add(ev.total, lay)
        acc_rows.append(row)

    steps = []
    for s in trace.steps:
        node = s.node
        n = g.nid.get(id(node))
        if n is None:
            raise RuntimeError(
                f"{_OP}: step {s.index} ({node.name}) is not in the graph below the loss; "
                "record only the loss's backward pass"
            )
        rec = s.record
        labels = node.input_labels()
        saved = type(node).saved_names
        exprs = _record.expressions(rec, labels, saved)
        calls = []
        for k, c in enumerate(rec.calls):
            args = [
                f"#{a.index}" if a.kind == "call" else _record.source_text(a, labels, saved)
                for a in c.args
            ]
            calls.append(
                {
                    "op": c.op,
                    "args": args,
                    "argShapes": [_shape(x) for x in c.arg_shapes],
                    "shape": _shape(c.shape),
                    "attrs": _attr_items(c.attrs, c.op),
                    "value": (
                        values.add(s.call_values[k], _FILTER_OPS.get(c.op))
                        if s.call_values
                        else None
                    ),
                }
            )
        grads = []
        edges = node.input_edges()
        for i, ig in enumerate(rec.input_grads):
            if ig is None:
                continue
            e = edges[i]
            target = e.grad_fn if e.grad_fn is not None else e.leaf
            acc = acc_of.get(id(target)) if target is not None else None
            # the engine recorded where this contribution stands in its target's arrival order
            place = s.arrivals[i] if s.arrivals is not None else None
            arrival = [acc, place] if acc is not None and place is not None else None
            value = s.input_grad_values[i] if s.input_grad_values is not None else None
            grads.append(
                {
                    "i": i,
                    "label": labels[i],
                    "tensor": g.node_in[n][i],
                    "expr": exprs[labels[i]],
                    "shape": _shape(ig.shape),
                    "summedFrom": None if ig.summed_from is None else _shape(ig.summed_from),
                    "castFrom": ig.cast_from,
                    "value": values.add(value, _filter_layout(node.name, labels[i])),
                    "acc": arrival,
                }
            )
        out_acc = acc_of.get(id(node))
        steps.append(
            {
                "node": n,
                "op": node.name,
                "passes": rec.passes,
                "upstream": {
                    "shape": _shape(s.upstream_shape),
                    "value": values.add(s.upstream, _FILTER_OPS.get(node.name)),
                    "acc": out_acc,
                    "hooked": s.hooked,  # a register_hook replaced the sum that arrived
                },
                "calls": calls,
                "grads": grads,
                "same": _viz._same_tensor_lines(labels, g.node_in[n]),
            }
        )

    items, note = values.finish()
    notes = [note] if note else []
    hooked = [f"{s.node.name} (step {s.index + 1})" for s in trace.steps if s.hooked]
    if hooked:
        notes.append(
            "A hook (register_hook) replaced the gradient flowing into "
            + ", ".join(hooked)
            + ": its upstream gradient is what the hook returned, not the sum of the "
            "contributions that arrived."
        )
    if values.oversize:
        notes.append(
            f"{values.oversize} arrays have more than MAX_TENSOR_VALUES = {MAX_TENSOR_VALUES} "
            "elements: they show shape, min, max and norm only."
        )
    loss_value = float(np.asarray(loss.data, dtype=np.float64).ravel()[0])
    return {
        "version": 1,
        "loss": _number(loss_value),
        "small": SMALL,
        "clusters": cluster_rows,
        "tensors": tensors,
        "ops": ops,
        "steps": steps,
        "accumulations": acc_rows,
        "values": items,
        "notes": notes,
        "limits": {"maxValues": max_values, "maxTensorValues": MAX_TENSOR_VALUES},
        "embedded": values.embedded if note is None else 0,
    }


# ----------------------------------------------------------------------------- the page

_BODY = (
    '<header><h1>backprop explorer</h1><p id="summary"></p><p class="legend-bar">'
    '<span class="key op">op</span><span class="key param">parameter / leaf</span>'
    '<span class="key const">data (no grad)</span><span class="key box">module (closed)</span>'
    '<span class="key current">current step</span>'
    '<span class="key receives">receives its gradient</span></p><div id="notes"></div></header>'
    '<div id="controls"><button id="btn-back" title="Left arrow">&#9664; back</button>'
    '<button id="btn-step" title="Right arrow">step &#9654;</button>'
    '<span id="position"></span>'
    '<label><input type="checkbox" id="follow" checked> open boxes while stepping</label>'
    '<button id="btn-collapse">collapse all</button><button id="btn-fit">fit</button>'
    '<span class="hint">Right / Left arrows step; click a module box to open it, its title '
    "to close it; drag to pan, wheel to zoom.</span></div>"
    '<p id="window-note" class="note" style="display:none"></p>'
    '<main><section id="graph-pane"><svg id="graph" xmlns="http://www.w3.org/2000/svg">'
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
    'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>'
    '<g id="viewport"></g></svg></section><section id="step-pane"></section></main>'
)


def _vendored_js() -> str:
    """The vendored dagre bundle without its source-map comment (the page fetches nothing)."""
    text = asset("vendor/dagre.min.js")
    lines = [ln for ln in text.splitlines() if not ln.startswith("//# sourceMappingURL")]
    return "\n".join(lines)


class Explorer:
    """A recorded backward pass ready to be shown: ``save(path)`` writes the page,
    ``_repr_html_()`` shows it inline in Jupyter (an iframe holding the same page).

    Attributes:
        trace: the :class:`~tinygrad_conv.record.BackwardTrace` recorded by :func:`explore`.
        data: the page's JSON data (what ``<script id="tc-trace">`` holds).
    """

    def __init__(self, trace: _record.BackwardTrace, data: dict[str, Any]) -> None:
        self.trace = trace
        self.data = data

    @property
    def nsteps(self) -> int:
        """Number of steps (nodes whose backward ran) in the trace."""
        return len(self.data["steps"])

    def html(self) -> str:
        """The complete page as a string."""
        title = f"backprop explorer: {self.nsteps} steps"
        return page_html(
            title,
            _BODY,
            css=asset("explorer.css"),
            js=_vendored_js() + "\n" + asset("explorer.js"),
            data=self.data,
            data_id="tc-trace",
        )

    def save(self, path: str | os.PathLike, *, labs: bool = False) -> Path:
        """Write the page to ``path`` atomically (temporary file, then ``os.replace``).

        Args:
            path: an ``.html`` file whose directory exists and is writable.
            labs: also write, next to the page, the conv lab page of every conv2d geometry of
                the graph (one image, one channel: see ``tc.conv_lab``); a geometry the lab
                refuses (too many frames) is skipped and the page says why.

        A conv node links its lab page when the file exists next to the page at save time.

        Raises:
            OSError: the directory does not exist, is not writable, or ``path`` is a directory.
        """
        out = _check_path(path)
        for op in self.data["ops"]:
            lab = op.get("lab")
            if lab is None:
                continue
            lab["exists"] = (out.parent / lab["file"]).is_file()
        if labs:
            self._write_labs(out.parent)
        return write_text_atomic(out, self.html())

    def _write_labs(self, directory: Path) -> None:
        from tinygrad_conv.lab import conv_lab

        done: dict[str, str | None] = {}
        for op in self.data["ops"]:
            lab = op.get("lab")
            if lab is None:
                continue
            if lab["file"] not in done:
                try:
                    conv_lab(
                        lab["x_shape"],
                        lab["w_shape"],
                        lab["strides"],
                        lab["padding"],
                        lab["dilations"],
                    ).save_html(directory / lab["file"])
                    done[lab["file"]] = None
                except ValueError as e:
                    done[lab["file"]] = str(e)
            error = done[lab["file"]]
            lab["exists"] = error is None
            if error is not None:
                lab["refused"] = error

    def _repr_html_(self) -> str:
        # an iframe keeps the page's ids, styles and keys apart from the notebook's own
        return (
            '<iframe style="width:100%;height:720px;border:1px solid #ccc" srcdoc="'
            + html.escape(self.html(), quote=True)
            + '"></iframe>'
        )

    def __repr__(self) -> str:
        return (
            f"<Explorer: {self.nsteps} steps, {len(self.data['ops'])} ops, "
            f"{len(self.data['accumulations'])} accumulations>"
        )


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{_OP}: path must be a str or os.PathLike, got {type(path).__name__}")
    out = Path(path)
    directory = out.parent if str(out.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{_OP}: cannot write {str(out)!r}: directory {str(directory)!r} does not exist"
        )
    if out.is_dir():
        raise IsADirectoryError(f"{_OP}: cannot write {str(out)!r}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{_OP}: cannot write {str(out)!r}: directory {str(directory)!r} is not writable"
        )
    return out


def explore(
    loss: Tensor,
    params: Any = None,
    path: str | os.PathLike | None = None,
    *,
    max_values: int = MAX_VALUES,
    retain_graph: bool = False,
    labs: bool = False,
) -> Explorer:
    """Run ``loss.backward()`` once under ``record_backward(values=True)`` and build the explorer.

    Args:
        loss: a one-element Tensor that requires grad (e.g. a training loss ``[]``).
        params: ``model.named_parameters()`` (or a Module, a dict name -> Tensor, or pairs): the
            names shown for the parameters.
        path: if given, the page is written there (see :meth:`Explorer.save`); the path is checked
            before backward runs, so a bad path changes nothing.
        max_values: most numbers embedded in the page (default :data:`MAX_VALUES`); above it the
            numbers are dropped (shape, min, max, norm remain) and the page says so.
        retain_graph: passed to ``backward`` (keep the graph for another pass).
        labs: with ``path``, also write the conv lab pages of the conv2d geometries next to it.

    Returns:
        An :class:`Explorer` (``.save(path)``, ``._repr_html_()``, ``.trace``, ``.data``).

    Raises:
        TypeError: ``loss`` is not a Tensor, ``params`` is not name/Tensor pairs, ``path`` is
            not a path, ``max_values`` is not an int.
        ValueError: ``loss`` does not require grad, has more than one element, or
            ``max_values`` is negative.
        OSError: ``path``'s directory is missing or not writable (checked before anything runs).
        RuntimeError: the graph was already released by an earlier backward.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"{_OP}: loss must be a Tensor, got {type(loss).__name__}")
    if not loss.requires_grad:
        raise ValueError(
            f"{_OP}: the loss (shape {loss.shape}) does not require grad: nothing to step "
            "through (was it computed under no_grad(), or from inputs without requires_grad?)"
        )
    if loss.data.size != 1:
        raise ValueError(
            f"{_OP}: the loss must have one element, got shape {loss.shape}; reduce it first "
            "(e.g. loss.sum() or loss.mean())"
        )
    if isinstance(max_values, bool) or not isinstance(max_values, (int, np.integer)):
        raise TypeError(f"{_OP}: max_values must be an int, got {type(max_values).__name__}")
    if max_values < 0:
        raise ValueError(f"{_OP}: max_values must be >= 0, got {max_values}")
    if path is not None:
        _check_path(path)
    try:
        param_names = _viz._param_names(params)
    except TypeError as e:
        raise TypeError(str(e).replace("draw_graph:", f"{_OP}:", 1)) from None
    with _record.record_backward(values=True) as trace:
        loss.backward(retain_graph=retain_graph)
    explorer = Explorer(trace, _build(loss, trace, param_names, int(max_values)))
    if path is not None:
        explorer.save(path, labs=labs)
    return explorer

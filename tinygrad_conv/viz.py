"""Graphviz drawings of the autograd graph and of what each op's backward did, as recorded.

Views render, the engine records: nothing here is inferred from shapes, counts or names.

* :func:`draw_graph` draws the graph below one or more tensors as a ``graphviz.Digraph`` (which
  renders inline in Jupyter): tensor nodes (name, shape, dtype, small values and gradients signed,
  larger ones as norm/min/max) and op nodes (name and readable attributes, e.g.
  ``conv2d  strides=2  padding=SAME``). It walks the nodes' recorded edges
  (``Function.input_edges()``), which survive ``backward()`` freeing the arrays.
  ``show_backward=True`` adds, for every op, a note read from ``node.backward_record``: the calls
  its backward made with their operands by source (``#0 = conv2d_backprop_input(w, g)``) and the
  expression of each input's gradient; before backward has run, the op's declared rule
  (``Function.vjp``). ``collapse='module'`` groups each module's ops into a cluster.
* :func:`save_graph` writes ``.dot`` / ``.gv`` / ``.svg`` / ``.png`` / ``.pdf`` atomically.

The traversal is iterative (no recursion limit) and node ids (``t0``, ``op0``, ``bw0``) are assigned
here, in traversal order, while every object drawn is held alive: drawings of the same graph are
identical, and ``id()`` reuse of temporaries cannot merge two nodes.

Styles: parameters / leaves that require grad are green boxes, constants grey dashed boxes,
intermediate tensors white rounded boxes, the roots red rounded boxes, ops yellow boxes, backward
notes pink; red dashed edges carry the gradients that backward sends to each input.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from tinygrad_conv import record as _record
from tinygrad_conv import scope as _scope
from tinygrad_conv.function import Function
from tinygrad_conv.tensor import Tensor

__all__ = [
    "GraphvizNotFoundError",
    "dot_counts",
    "draw_graph",
    "save_graph",
]

_RANKDIRS = ("TB", "LR", "BT", "RL")
_COLLAPSE = (None, "module")
_FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf"}

_STYLE_PARAM = {"shape": "box", "style": "filled,bold", "fillcolor": "#b9e3a8"}
_STYLE_CONST = {"shape": "box", "style": "filled,dashed", "fillcolor": "#eeeeee"}
_STYLE_INTER = {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff"}
_STYLE_ROOT = {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#f6b8b8"}
_STYLE_OP = {"shape": "box", "style": "filled", "fillcolor": "#fde7a4"}
_STYLE_OP_RELEASED = {"shape": "box", "style": "filled,dashed", "fillcolor": "#fdf3d2"}
_STYLE_BW = {"shape": "note", "style": "filled", "fillcolor": "#fbd5cf", "fontsize": "9"}
_EDGE_GRAD = {"color": "#c0392b", "fontcolor": "#c0392b", "style": "dashed", "constraint": "false"}
_EDGE_BW = {"style": "dotted", "arrowhead": "none", "color": "#999999"}


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is needed to render and is not installed."""


# ----------------------------------------------------------------------------- text helpers


def _esc(text: str) -> str:
    """Escape user text for a DOT escString (backslashes would start an escape sequence)."""
    return str(text).replace("\\", "\\\\")


def _lines(*parts: str, left: bool = False) -> graphviz.quoting.NoHtml:
    """Join lines into a DOT label (centered, or left-justified with ``\\l``); never HTML."""
    parts = tuple(_esc(p) for p in parts if p)
    body = ("\\l".join(parts) + "\\l") if left else "\\n".join(parts)
    return graphviz.nohtml(body)


def _quoted(label: str) -> str:
    """A DOT double-quoted string for a label already escaped by :func:`_lines`."""
    return '"' + label.replace('"', '\\"') + '"'


def _attr_text(attrs: Mapping[str, str]) -> str:
    """Pre-quoted ``key=value`` text of a style (quoted once, reused for every node)."""
    return " ".join(f"{k}={graphviz.quoting.quote(v)}" for k, v in attrs.items())


class _Writer:
    """Appends node and edge statements to a Digraph's body directly.

    graphviz's ``node()`` / ``edge()`` re-quote every attribute of every statement, which is most
    of the time of a 10,000-node drawing; here the styles are quoted once and only labels per node.
    """

    def __init__(self, dot: graphviz.Digraph) -> None:
        self.body = dot.body
        self.styles: dict[int, str] = {}

    def _style(self, attrs: Mapping[str, str]) -> str:
        key = id(attrs)
        text = self.styles.get(key)
        if text is None:
            text = self.styles[key] = _attr_text(attrs)
        return text

    def node(self, node_id: str, label: str, style: Mapping[str, str]) -> None:
        self.body.append(f"\t{node_id} [label={_quoted(label)} {self._style(style)}]\n")

    def edge(
        self, src: str, dst: str, label: str | None = None, style: Mapping[str, str] | None = None
    ) -> None:
        attrs = [] if label is None else [f"label={_quoted(label)}"]
        if style:
            attrs.append(self._style(style))
        tail = f" [{' '.join(attrs)}]" if attrs else ""
        self.body.append(f"\t{src} -> {dst}{tail}\n")


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _num(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _pair_text(v: Any) -> str:
    """``(2, 2)`` -> ``2``; ``(1, 2)`` -> ``1,2``."""
    v = tuple(v)
    if len(v) == 2 and v[0] == v[1]:
        return _num(v[0])
    return ",".join(_num(x) for x in v)


def _index_text(idx: Any) -> str:
    """Python indexing expressions as written: ``[:, 1:3, ...]``."""
    items = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for it in items:
        if isinstance(it, slice):
            s = "" if it.start is None else _num(it.start)
            s += ":" + ("" if it.stop is None else _num(it.stop))
            if it.step is not None:
                s += ":" + _num(it.step)
            out.append(s)
        elif it is Ellipsis:
            out.append("...")
        elif it is None:
            out.append("None")
        elif isinstance(it, (np.ndarray, Tensor, list)):
            a = np.asarray(it.data if isinstance(it, Tensor) else it)
            out.append(f"{a.dtype.name}{_shape_text(a.shape)}")
        else:
            out.append(_num(it))
    return "[" + ", ".join(out) + "]"


def _is_geometry(v: Any) -> bool:
    return all(hasattr(v, a) for a in ("strides", "dilations", "pads", "output_hw"))


def _geometry_items(geom: Any, padding: Any, op: str) -> list[str]:
    items = []
    if "pool" in op and hasattr(geom, "kernel_hw"):  # a conv's kernel shows in its filter's shape
        items.append(f"ksize={_pair_text(geom.kernel_hw)}")
    if tuple(geom.strides) != (1, 1):
        items.append(f"strides={_pair_text(geom.strides)}")
    if isinstance(padding, str):
        items.append(f"padding={padding.upper()}")
    elif any(p for pair in geom.pads for p in pair):
        (t, b), (left, r) = geom.pads
        items.append(f"pads={t},{b},{left},{r}")
    else:
        items.append("padding=VALID")
    if tuple(geom.dilations) != (1, 1):
        items.append(f"dilations={_pair_text(geom.dilations)}")
    return items


def _value_text(key: str, v: Any, limit: int = 40) -> str | None:
    """A short readable form of an op attribute (``None`` to leave it out)."""
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return f"{v.dtype.name}{_shape_text(v.shape)}"
    if isinstance(v, Tensor):
        return f"tensor{_shape_text(v.shape)}"
    if isinstance(v, (np.dtype, type)) and key in ("dtype", "to", "type"):
        return np.dtype(v).name
    if isinstance(v, np.dtype):
        return v.name
    if key in ("index", "idx", "key", "indices") or isinstance(v, slice):
        return _index_text(v)
    if isinstance(v, (tuple, list)):
        inner = ", ".join(_value_text("", x, limit) or "None" for x in v)
        text = f"({inner},)" if isinstance(v, tuple) and len(v) == 1 else f"({inner})"
        text = text if isinstance(v, tuple) else f"[{inner}]"
    elif isinstance(v, str):
        text = v
    elif isinstance(v, (bool, int, float, np.number, np.bool_)):
        text = _num(v)
    else:
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _attrs_text(attrs: Mapping[str, Any], op: str = "") -> list[str]:
    """Readable ``key=value`` items of an op's attributes (geometry objects expanded)."""
    items: list[str] = []
    geom_padding = attrs.get("padding")
    for key, value in attrs.items():
        if _is_geometry(value):
            items.extend(_geometry_items(value, geom_padding, op))
            continue
        if key == "padding" and any(_is_geometry(v) for v in attrs.values()):
            continue  # shown with the geometry
        if key == "cols":
            continue  # a cached window matrix: an implementation detail
        text = _value_text(key, value)
        if text is not None:
            items.append(f"{key}={text}")
    return items


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


# ----------------------------------------------------------------------------- graph collection


@dataclass
class _TensorBox:
    """One tensor of the drawing, from the live Tensor or from the node's recorded Edge."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str | None
    requires_grad: bool
    producer: Function | None  # the node that made it (None for a leaf)
    tensor: Tensor | None  # the Tensor itself while it is alive
    value: Any = None  # a scalar constant's number, kept by the edge after its array is freed
    # modified in place after an op of the drawing used it: its values now are not the forward's
    changed: bool = False


@dataclass
class _Graph:
    """Everything reachable from the roots, with the ids assigned to it (objects kept alive)."""

    tensors: list[_TensorBox] = field(default_factory=list)
    nodes: list[Function] = field(default_factory=list)
    tid: dict[Any, int] = field(default_factory=dict)  # tensor key -> index in tensors
    nid: dict[int, int] = field(default_factory=dict)  # id(node) -> index in nodes
    node_out: list[int] = field(default_factory=list)  # node index -> output tensor index
    node_in: list[list[int]] = field(default_factory=list)
    # tensor index -> [(node index, input position)] of the ops that use it
    consumers: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


def _flatten_roots(roots: tuple[Any, ...]) -> list[Tensor]:
    out: list[Tensor] = []
    for i, r in enumerate(roots):
        items = list(r) if isinstance(r, (list, tuple)) else [r]
        for item in items:
            if not isinstance(item, Tensor):
                raise TypeError(
                    f"draw_graph: root {i} is {type(item).__name__}, expected a Tensor (or a "
                    "list/tuple of Tensors); a None usually is a gradient that was not computed"
                )
            out.append(item)
    if not out:
        raise ValueError("draw_graph: give at least one Tensor to draw")
    return out


def _collect(roots: list[Tensor]) -> _Graph:
    """Walk the graph from ``roots`` over the nodes' recorded edges (no recursion).

    A non-leaf tensor is keyed by the node that produced it (one output per node), a live leaf by
    itself; a constant that backward freed gets a key of its own per use.
    """
    g = _Graph()
    held: list[Any] = []  # keeps every keyed object alive while the drawing is made

    def add(key: Any, box: _TensorBox) -> tuple[int, bool]:
        k = g.tid.get(key)
        if k is not None:
            if g.tensors[k].tensor is None and box.tensor is not None:
                g.tensors[k].tensor = box.tensor
            return k, False
        g.tid[key] = len(g.tensors)
        g.tensors.append(box)
        return len(g.tensors) - 1, True

    stack: list[Function] = []
    for r in roots:
        held.append(r)
        key = ("node", id(r._ctx)) if r._ctx is not None else ("t", id(r))
        add(key, _TensorBox(r.shape, r.dtype, r.name, r.requires_grad, r._ctx, r))
        if r._ctx is not None:
            stack.append(r._ctx)
    while stack:
        node = stack.pop()
        if id(node) in g.nid:
            continue
        n = len(g.nodes)
        g.nid[id(node)] = n
        g.nodes.append(node)
        out_live = node.output
        shape, dtype = node.output_info()
        name = out_live.name if out_live is not None else None
        k_out, _ = add(("node", id(node)), _TensorBox(shape, dtype, name, True, node, out_live))
        g.node_out.append(k_out)
        idxs = []
        for pos, e in enumerate(node.input_edges()):
            live = e.tensor
            if e.grad_fn is not None:
                key: Any = ("node", id(e.grad_fn))
            elif live is not None:
                key = ("t", id(live))
                held.append(live)
            else:
                key = ("edge", n, pos)
            box = _TensorBox(e.shape, e.dtype, e.name, e.requires_grad, e.grad_fn, live, e.value)
            k, _ = add(key, box)
            stamp = node.__dict__.get("_v")
            if live is not None and stamp is not None and getattr(live, "_version", 0) > stamp:
                g.tensors[k].changed = True
            idxs.append(k)
            g.consumers.setdefault(k, []).append((n, pos))
            if e.grad_fn is not None and id(e.grad_fn) not in g.nid:
                stack.append(e.grad_fn)
        g.node_in.append(idxs)
    g.held = held  # type: ignore[attr-defined]
    return g


def _param_names(params: Any) -> dict[int, str]:
    """``{id(tensor): name}`` from ``named_parameters()`` pairs, a mapping, or a Module."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        params = params.named_parameters()
    items = params.items() if isinstance(params, Mapping) else params
    names: dict[int, str] = {}
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError(
            f"draw_graph: params must be model.named_parameters(), a dict of name -> Tensor or "
            f"(name, Tensor) pairs, got {type(params).__name__}"
        ) from None
    for item in iterator:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], Tensor)
        ):
            raise TypeError(f"draw_graph: params must yield (name, Tensor) pairs, got {item!r:.60}")
        names.setdefault(id(item[1]), item[0])
    return names


# ----------------------------------------------------------------------------- labels

#: tensors with at most this many elements show their values (and gradients) signed
SMALL = 6


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _num(values)


def _values_text(label: str, a: np.ndarray) -> str:
    """``grad = -4`` / ``data = [[1, -2], [0, 3]]`` for small arrays (signed, as micrograd
    shows them); ``|grad|=5.2  min -1  max 3`` for larger ones."""
    if a.size == 0:
        return f"{label} (empty)"
    if a.size <= SMALL:
        return f"{label} = {_nested(a.tolist())}"
    if a.dtype.kind in "fiub":
        f = a.astype(np.float64, copy=False)
        return f"|{label}|={_num(_norm(f))}  min {_num(f.min())}  max {_num(f.max())}"
    return f"{label}: {a.size} values"


def _tensor_label(box: _TensorBox, name: str | None, show_values: bool, is_root: bool) -> list[str]:
    lines = []
    title = name or box.name
    if title:
        lines.append(title)
    elif is_root and box.producer is not None:
        lines.append(f"output of {box.producer.name}")
    lines.append(f"{_shape_text(box.shape)} {box.dtype.name}")
    t = box.tensor
    if show_values and t is not None and box.changed:
        lines.append(_values_text("data now", t.data))
        lines.append("(changed in place after the forward used it)")
    elif show_values and t is not None:
        lines.append(_values_text("data", t.data))
    elif box.value is not None:  # a scalar constant (the 2 of x * 2): its number is its meaning
        lines.append(f"value = {_num(box.value)}")
    grad = None if t is None else t._grad  # the slot: a non-leaf's .grad property would warn
    if grad is not None:
        graph = "  (graph)" if grad._ctx is not None else ""
        lines.append(_values_text("grad", grad.data) + graph)
    return lines


def _call_line(k: int, call: Any, labels: Sequence[str], saved: Sequence[str]) -> str:
    """``#1 = getitem(g)  index=[:, 0:2] -> (2, 2)``: one call of a pass, its operands by
    source, the op's arguments as it ran, and the shape of its result."""
    args = []
    for a in call.args:
        args.append(f"#{a.index}" if a.kind == "call" else _record.source_text(a, labels, saved))
    attrs = "".join(f"  {item}" for item in _attrs_text(call.attrs, call.op))
    return f"#{k} = {call.op}({', '.join(args)}){attrs} -> {_shape_text(call.shape)}"


def _display_labels(
    labels: Sequence[str], in_idx: Sequence[int], names: Sequence[str], reserved: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """How a note names the inputs: the tensors' own names where that is unambiguous (``d e =
    mul(g, b)`` reads better than the op's ``d a = ...``), else the op's input labels.

    Returns (names inside expressions, left-hand sides, extra lines). A named tensor in several
    positions (``x * x``) keeps its name and its left-hand sides say which position (``d x (as
    a)``); an unnamed one keeps the op's labels and a line says they are one tensor.
    """
    display = [name or label for name, label in zip(names, labels, strict=True)]
    owner: dict[str, int] = {}
    for i, (text, k) in enumerate(zip(display, in_idx, strict=True)):
        if text in reserved or owner.setdefault(text, k) != k:
            display = list(labels)
            break
        if not names[i]:
            owner[text] = -1 - i  # an op label names one position only
    lhs = list(display)
    extra = []
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(in_idx):
        groups.setdefault(k, []).append(i)
    for positions in groups.values():
        if len(positions) > 1 and display[positions[0]] == display[positions[1]]:  # named
            for i in positions:
                lhs[i] = f"{display[i]} (as {labels[i]})"
        elif len(positions) > 1:
            extra += _same_tensor_lines([display[i] for i in positions], [0] * len(positions))
    return display, lhs, extra


def _same_tensor_lines(labels: Sequence[str], in_idx: Sequence[int]) -> list[str]:
    """``(a and b are the same tensor)`` for inputs that are one tensor (``x * x``, ``a + a``);
    ``in_idx`` says which tensor each input is."""
    groups: dict[int, list[str]] = {}
    for label, k in zip(labels, in_idx, strict=True):
        groups.setdefault(k, []).append(label)
    return [
        f"({', '.join(names[:-1])} and {names[-1]} are the same tensor)"
        for names in groups.values()
        if len(names) > 1
    ]


def _rule_text(rule: str, mapping: dict[str, str]) -> str:
    """A declared rule with the op's input labels replaced by the note's names."""
    tree = _record.parse_rule(rule)

    def render(t: Any) -> str:
        if isinstance(t, tuple):
            return f"{t[0]}({', '.join(render(a) for a in t[1])})"
        return mapping.get(t, t)

    return render(tree)


def _backward_lines(
    node: Function, in_idx: Sequence[int], names: Sequence[str]
) -> tuple[list[str], dict[int, str]]:
    """Lines of the backward note, and ``{input index: edge label}`` for the gradient edges.

    Read from ``node.backward_record`` once backward has run, else from the op's declared rule.
    ``in_idx`` are the drawing's indices of the input tensors, ``names`` their names ("" when
    unnamed); the edge labels say ``d <name>`` and the shape that arrived.
    """
    labels = node.input_labels()
    saved = type(node).saved_names
    display, lhs, extra = _display_labels(labels, in_idx, names, ("g", "out", *saved))
    record = node.backward_record
    edges: dict[int, str] = {}
    lines: list[str] = []
    if record is None:
        rules = node.declared_vjp()
        needed = [i for i, need in enumerate(node.needs_input_grad) if need]
        if rules is None:
            return [f"backward of {node.name}: no rule declared; has not run"], {}
        lines.append(f"backward of {node.name} (not run yet) will compute:")
        mapping = dict(zip(labels, display, strict=True))
        for i in needed:
            rule = rules.get(labels[i])
            text = _rule_text(rule, mapping) if rule is not None else "(not declared)"
            lines.append(f"d {lhs[i]} = {text}")
            edges[i] = f"d {display[i]}"
        return lines + extra, edges
    passes = "1 pass" if record.passes == 1 else f"{record.passes} passes"
    if record.calls:
        lines.append(f"backward of {node.name} ran ({passes}); the last pass called:")
        lines.extend(_call_line(k, c, display, saved) for k, c in enumerate(record.calls))
    else:
        lines.append(f"backward of {node.name} ran ({passes}); it called no op")
    for i, ig in enumerate(record.input_grads):
        if ig is None:
            continue
        expr = _record.source_text(ig.source, display, saved, record.calls)
        text = f"d {lhs[i]} = {expr}"
        edge = f"d {display[i]}  {_shape_text(ig.shape)}"
        if ig.summed_from is not None:
            text += f"  (summed from {_shape_text(ig.summed_from)})"
            edge += f"\nsummed from {_shape_text(ig.summed_from)}"
        if ig.cast_from is not None:
            text += f"  (cast from {ig.cast_from})"
        lines.append(text)
        edges[i] = edge
    return lines + extra, edges


# ----------------------------------------------------------------------------- clusters


def _natural(text: str) -> list[Any]:
    """Sort key with numbers compared as numbers (``layers.2`` before ``layers.10``)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]


class _Clusters:
    """Groups op nodes (and parameters used only inside one group) into nested clusters."""

    def __init__(self, g: _Graph, param_names: dict[int, str]) -> None:
        self.g = g
        self.parent: dict[Any, Any] = {}  # cluster key -> parent key (None at top level)
        self.label: dict[Any, str] = {}
        self.members: dict[Any, list[str]] = {}  # cluster key -> node ids
        self.node_cluster: dict[int, Any] = {}  # node index -> innermost cluster key
        self._names_cache: dict[int, dict[int, str]] = {}
        chains = {n: node.__dict__.get("scope") for n, node in enumerate(g.nodes)}
        has_child: set[int] = set()
        for chain in chains.values():
            if isinstance(chain, tuple):
                for m in chain[:-1]:
                    has_child.add(id(m))
        for n, chain in chains.items():
            key = None
            if isinstance(chain, str) and chain:
                key = self._string_path(chain)
            elif isinstance(chain, tuple) and chain and isinstance(chain[0], str):
                key = self._string_path(".".join(chain))
            elif isinstance(chain, tuple) and chain:
                key = self._module_chain(chain, has_child)
            elif param_names:
                key = self._from_params(n, param_names)
            if key is not None:
                self.node_cluster[n] = key

    def _add(self, key: Any, parent: Any, label: str) -> None:
        if key not in self.label:
            self.label[key] = label
            self.parent[key] = parent
            self.members[key] = []

    def _string_path(self, path: str) -> Any:
        parts = path.split(".")
        parent = None
        for k in range(1, len(parts) + 1):
            key = ("path", ".".join(parts[:k]))
            self._add(key, parent, key[1])
            parent = key
        return parent

    def _names(self, root: Any) -> dict[int, str]:
        cached = self._names_cache.get(id(root))
        if cached is None:
            cached = {}
            named = getattr(root, "named_modules", None)
            if callable(named):
                try:
                    cached = {id(m): str(name) for name, m in named()}
                except Exception:  # noqa: BLE001 - a drawing must not fail on a user's module
                    cached = {}
            self._names_cache[id(root)] = cached
        return cached

    def _module_chain(self, chain: tuple[Any, ...], has_child: set[int]) -> Any:
        names = self._names(chain[0])
        parent = None
        # the outermost module wraps the whole forward pass: a cluster only when it is a leaf
        start = 0 if id(chain[0]) not in has_child else 1
        for k in range(start, len(chain)):
            key = ("chain", tuple(id(m) for m in chain[: k + 1]))
            path = _scope.module_path(chain[: k + 1], names)
            cls = type(chain[k]).__name__
            self._add(key, parent, f"{path}: {cls}" if path else cls)
            parent = key
        return parent

    def _from_params(self, n: int, param_names: dict[int, str]) -> Any:
        """No scope recorded: an op using parameters of one module goes to that module."""
        live = [self.g.tensors[k].tensor for k in self.g.node_in[n]]
        prefixes = {param_names[id(t)].rpartition(".")[0] for t in live if id(t) in param_names}
        if len(prefixes) != 1:
            return None
        (prefix,) = prefixes
        return self._string_path(prefix) if prefix else None

    def tensor_cluster(self, k: int, box: _TensorBox) -> Any:
        """Cluster of a tensor: its producer's, or for a parameter the one cluster using it."""
        g = self.g
        if box.producer is not None:
            return self.node_cluster.get(g.nid.get(id(box.producer), -1))
        if not box.requires_grad:
            return None
        users = {self.node_cluster.get(n) for n, _ in g.consumers.get(k, ())}
        return users.pop() if len(users) == 1 else None

    def emit(self, dot: graphviz.Digraph) -> None:
        """Add the clusters (nested, deepest built first) with their member node ids to ``dot``."""
        children: dict[Any, list[Any]] = {}
        for key, parent in self.parent.items():
            children.setdefault(parent, []).append(key)
        for keys in children.values():
            keys.sort(key=lambda k: _natural(self.label[k]))
        order: list[Any] = []
        stack = list(reversed(children.get(None, [])))
        while stack:  # preorder; built in reverse so children exist before parents
            key = stack.pop()
            order.append(key)
            stack.extend(reversed(children.get(key, [])))
        index = {key: i for i, key in enumerate(order)}
        built: dict[Any, graphviz.Digraph] = {}
        for key in reversed(order):
            sub = graphviz.Digraph(name=f"cluster_{index[key]}")
            sub.attr(
                label=_lines(self.label[key]),
                style="rounded,filled",
                fillcolor="#f3f6fb",
                color="#8aa2c8",
                fontsize="10",
            )
            for node_id in self.members[key]:
                sub.node(node_id)
            for child in children.get(key, []):
                sub.subgraph(built.pop(child))
            built[key] = sub
        for key in children.get(None, []):
            dot.subgraph(built.pop(key))


# ----------------------------------------------------------------------------- draw_graph


def draw_graph(
    *roots: Tensor,
    show_backward: bool = False,
    show_values: bool = False,
    params: Any = None,
    collapse: str | None = None,
    rankdir: str = "TB",
    show_data: bool | None = None,
) -> graphviz.Digraph:
    """Draw the autograd graph that produced ``roots``, from what the engine recorded.

    Args:
        *roots: the tensors to draw from (e.g. a loss; a gradient made with ``create_graph=True``
            is a graph too). A list/tuple of Tensors counts as several roots.
        show_backward: for every op, add a note with what its backward did, read from the node's
            ``backward_record`` (the calls of the last pass with their operands, and the exact
            expression of each input's gradient), or before backward has run the op's declared
            rule (``Function.vjp``); dashed red edges carry each gradient to its input, labelled
            with the shape that arrived (and "summed from" when broadcasting was undone).
        show_values: add the values of small tensors (at most ``SMALL`` = 6 elements) signed, and
            min/max/norm of larger ones, for every tensor still alive. Gradients (``.grad``) are
            always shown the same way.
        params: ``model.named_parameters()`` (or a Module, a dict name -> Tensor, or pairs): names
            such as ``features.0.weight`` for the parameter nodes.
        collapse: ``None`` or ``'module'``: draw each module's ops (and its parameters) inside a
            cluster. Uses the module scope recorded on nodes (``ctx.scope``, see
            ``tinygrad_conv.scope``); without it, ops using one module's parameters are grouped.
        rankdir: graphviz layout direction, one of ``'TB'``, ``'LR'``, ``'BT'``, ``'RL'``.
        show_data: old name of ``show_values``.

    Returns:
        A ``graphviz.Digraph`` (renders inline in Jupyter; ``.source`` is the DOT text; write it
        with :func:`save_graph`).

    Nodes: ``t<k>`` tensors, ``op<k>`` ops, ``bw<k>`` backward notes. The graph's structure
    survives ``backward()`` (nodes keep an ``Edge`` per input while the arrays are freed), so a
    graph can be drawn after a plain backward; values show only for tensors still alive.

    Raises:
        TypeError: a root is not a Tensor, ``params`` is not name/Tensor pairs.
        ValueError: no roots, unknown ``collapse`` or ``rankdir``.
    """
    if show_data is not None:
        show_values = show_values or bool(show_data)
    if collapse not in _COLLAPSE:
        raise ValueError(f"draw_graph: collapse must be None or 'module', got {collapse!r}")
    if not isinstance(rankdir, str) or rankdir.upper() not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    root_list = _flatten_roots(roots)
    param_names = _param_names(params)
    g = _collect(root_list)
    root_idx = {
        g.tid[("node", id(r._ctx)) if r._ctx is not None else ("t", id(r))] for r in root_list
    }

    dot = graphviz.Digraph(name="autograd")
    dot.attr(rankdir=rankdir.upper(), ranksep="0.3", nodesep="0.25", fontname="Helvetica")
    dot.attr("node", fontname="Helvetica", fontsize="10", margin="0.08,0.04", height="0.3")
    dot.attr("edge", fontname="Helvetica", fontsize="8", arrowsize="0.6")

    clusters = _Clusters(g, param_names) if collapse == "module" else None

    def place(node_id: str, key: Any) -> None:
        if clusters is not None and key is not None:
            clusters.members[key].append(node_id)

    names: list[str] = []  # tensor index -> display name (for "d <name>" on gradient edges)
    out = _Writer(dot)
    for k, box in enumerate(g.tensors):
        pname = param_names.get(id(box.tensor)) if box.tensor is not None else None
        names.append(pname or box.name or "")
        if k in root_idx:
            style = _STYLE_ROOT
        elif box.producer is not None:
            style = _STYLE_INTER
        elif box.requires_grad:
            style = _STYLE_PARAM
        else:
            style = _STYLE_CONST
        label = _tensor_label(box, pname, show_values, k in root_idx)
        node_id = f"t{k}"
        out.node(node_id, _lines(*label), style)
        place(node_id, clusters.tensor_cluster(k, box) if clusters else None)

    for n, node in enumerate(g.nodes):
        op_id = f"op{n}"
        attrs = _attrs_text(node.attrs, node.name)
        first = "  ".join([node.name, *attrs])
        lines = [node.name, *attrs] if len(first) > 60 and attrs else [first]
        out.node(op_id, _lines(*lines), _STYLE_OP)
        key = clusters.node_cluster.get(n) if clusters else None
        place(op_id, key)
        for k in g.node_in[n]:
            out.edge(f"t{k}", op_id)
        out.edge(op_id, f"t{g.node_out[n]}")
        if show_backward:
            bw_id = f"bw{n}"
            in_idx = g.node_in[n]
            bw_lines, grad_edges = _backward_lines(node, in_idx, [names[k] for k in in_idx])
            out.node(bw_id, _lines(*bw_lines, left=True), _STYLE_BW)
            place(bw_id, key)
            out.edge(op_id, bw_id, style=_EDGE_BW)
            for i, text in sorted(grad_edges.items()):
                out.edge(bw_id, f"t{in_idx[i]}", _lines(*text.split("\n")), _EDGE_GRAD)
    if clusters is not None:
        clusters.emit(dot)
    return dot


_NODE_RE = re.compile(r"^\s*(t|op|bw)\d+ \[", re.M)
_EDGE_RE = re.compile(r"^\s*\S+ -> \S+", re.M)


def dot_counts(source: str) -> tuple[int, int]:
    """``(nodes, edges)`` of a :func:`draw_graph` DOT text (cluster membership lines excluded)."""
    return len(_NODE_RE.findall(source)), len(_EDGE_RE.findall(source))


# ----------------------------------------------------------------------------- save_graph


def _dot_source(graph: Any) -> str:
    if isinstance(graph, str):
        return graph
    source = getattr(graph, "source", None)
    if isinstance(source, str):
        return source
    digraph = getattr(graph, "digraph", None)
    if digraph is not None and isinstance(getattr(digraph, "source", None), str):
        return digraph.source
    raise TypeError(
        f"save_graph: expected a graphviz.Digraph (from draw_graph / explain_conv) or DOT text, "
        f"got {type(graph).__name__}"
    )


def _dot_program() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFoundError(
            "save_graph: the Graphviz 'dot' program was not found on PATH; it renders .svg/.png/"
            ".pdf. Install it with `apt-get install graphviz` (Debian/Ubuntu), `brew install "
            "graphviz` (macOS) or `conda install graphviz`. Saving to .dot needs no Graphviz."
        )
    return exe


def save_graph(graph: Any, path: str | os.PathLike, *, timeout: float | None = 300.0) -> Path:
    """Write a drawing to ``path``; the format follows the extension.

    ``.dot`` / ``.gv`` write the DOT text; ``.svg``, ``.png`` and ``.pdf`` run the system ``dot``.
    The file is written to a temporary file in the same directory and moved into place with
    ``os.replace``, so ``path`` is never left half-written.

    Args:
        graph: a ``graphviz.Digraph`` (from :func:`draw_graph`), a :class:`ConvExplanation`, or
            DOT text.
        path: output file; its directory must exist and be writable.
        timeout: seconds allowed for ``dot``.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: ``graph`` is not a drawing.
        ValueError: unsupported extension.
        GraphvizNotFoundError: ``dot`` is missing (the message says how to install it).
        OSError: the path cannot be written (directory missing, permission denied).
        TimeoutError: ``dot`` took longer than ``timeout`` seconds (very large graphs).
        RuntimeError: ``dot`` failed (its message is included).
    """
    source = _dot_source(graph)
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"save_graph: cannot tell the format of {str(path)!r}: use one of the extensions "
            f"{', '.join(_FORMATS)}"
        )
    exe = None if fmt == "dot" else _dot_program()
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"save_graph: cannot write {str(path)!r}: directory {str(directory)!r} does not exist"
        )
    if path.is_dir():
        raise IsADirectoryError(f"save_graph: cannot write {str(path)!r}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise type(e)(
            e.errno, f"save_graph: cannot write {str(path)!r}: {e.strerror}", str(directory)
        ) from None
    try:
        if exe is None:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(source)
        else:
            os.close(fd)
            try:
                proc = subprocess.run(
                    [exe, f"-T{fmt}", "-o", tmp],
                    input=source.encode("utf-8"),
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                nodes, edges = dot_counts(source)
                raise TimeoutError(
                    f"save_graph: dot -T{fmt} did not finish within {timeout} s for {str(path)!r} "
                    f"({nodes} nodes, {edges} edges); Graphviz's layout is superlinear: draw "
                    "fewer nodes (show_backward=False, smaller roots), pass a larger timeout, or "
                    "save as .dot and lay it out elsewhere"
                ) from None
            if proc.returncode != 0:
                err = proc.stderr.decode("utf-8", "replace").strip()
                raise RuntimeError(
                    f"save_graph: dot -T{fmt} failed (exit {proc.returncode}) writing "
                    f"{str(path)!r}: {err}"
                )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path

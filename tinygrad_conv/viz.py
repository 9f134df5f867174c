"""Graphviz drawings of the autograd graph, of what each op's backward calls, and of the conv seed.

* :func:`draw_graph` draws the graph below one or more tensors as a ``graphviz.Digraph`` (which
  renders inline in Jupyter): tensor nodes (name, shape, dtype, and after ``backward()`` the
  gradient's shape and norm) and op nodes (name and readable attributes, e.g.
  ``conv2d  strides=2  padding=SAME``). ``show_backward=True`` adds, for every op, the ops its
  backward calls and which input gradient each produces (``conv2d_backprop_input -> d input``),
  read from ``node.backward_calls`` recorded by the engine, or from the op class's
  ``backward_summary`` before backward has run.
  ``collapse='module'`` groups each module's ops into a cluster.
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


def _data_text(a: np.ndarray) -> str:
    if a.size == 0:
        return "data: (empty)"
    if a.size <= 6:
        vals = ", ".join(_num(x) for x in a.ravel().tolist())
        return f"data: [{vals}]"
    if a.dtype.kind in "fiub":
        f = a.astype(np.float64, copy=False)
        return f"data: min {_num(f.min())}  mean {_num(f.mean())}  max {_num(f.max())}"
    return f"data: {a.size} values"


# ----------------------------------------------------------------------------- graph collection


@dataclass
class _Graph:
    """Everything reachable from the roots, with the ids assigned to it (objects kept alive)."""

    tensors: list[Tensor] = field(default_factory=list)
    nodes: list[Function] = field(default_factory=list)
    tid: dict[int, int] = field(default_factory=dict)  # id(tensor) -> index in tensors
    nid: dict[int, int] = field(default_factory=dict)  # id(node) -> index in nodes
    node_out: list[int] = field(default_factory=list)  # node index -> output tensor index
    node_in: list[list[int] | None] = field(default_factory=list)  # None when released
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
    """Walk the graph from ``roots`` with an explicit stack (no recursion)."""
    g = _Graph()

    def tensor_index(t: Tensor) -> tuple[int, bool]:
        k = g.tid.get(id(t))
        if k is not None:
            return k, False
        g.tid[id(t)] = len(g.tensors)
        g.tensors.append(t)
        return len(g.tensors) - 1, True

    stack: list[Tensor] = []
    for r in roots:
        _, new = tensor_index(r)
        if new:
            stack.append(r)
    while stack:
        t = stack.pop()
        node = t._ctx
        if node is None or id(node) in g.nid:
            continue
        n = len(g.nodes)
        g.nid[id(node)] = n
        g.nodes.append(node)
        g.node_out.append(g.tid[id(t)])
        inputs = None if node.released else node.inputs
        if inputs is None:
            g.node_in.append(None)
            continue
        idxs = []
        for pos, inp in enumerate(inputs):
            k, new = tensor_index(inp)
            idxs.append(k)
            g.consumers.setdefault(k, []).append((n, pos))
            if new:
                stack.append(inp)
        g.node_in.append(idxs)
    return g


def _backward_ran(g: _Graph) -> list[bool]:
    """Whether each node's backward has run, as far as the graph tells.

    A node ran if it recorded backward calls or was released, or if an op that uses its output
    (with a gradient for it) ran: gradients flow from consumers to producers. Nodes are visited
    consumers first (Kahn's algorithm on the collected graph; no recursion).
    """
    n_nodes = len(g.nodes)
    pending = [0] * n_nodes  # consumers of each node's output not yet visited
    for n in range(n_nodes):
        pending[n] = len(g.consumers.get(g.node_out[n], ()))
    ran = [bool(node.backward_calls) or node.released for node in g.nodes]
    ready = [n for n in range(n_nodes) if pending[n] == 0]
    while ready:
        n = ready.pop()
        for pos, k in enumerate(g.node_in[n] or ()):
            ctx = g.tensors[k]._ctx
            p = g.nid.get(id(ctx)) if ctx is not None else None
            if p is None:
                continue
            if ran[n] and g.nodes[n].needs_input_grad[pos]:
                ran[p] = True
            pending[p] -= 1
            if pending[p] == 0:
                ready.append(p)
    return ran


def _dedupe_calls(calls: list[Any]) -> tuple[list[Any], int]:
    """``(one pass, number of passes)`` when ``calls`` repeats one sequence (several backwards)."""
    n = len(calls)
    for period in range(1, n // 2 + 1):
        if n % period == 0 and calls == calls[:period] * (n // period):
            return calls[:period], n // period
    return calls, 1


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


def _tensor_label(t: Tensor, name: str | None, show_data: bool, is_root: bool) -> list[str]:
    lines = []
    title = name or t.name
    if title:
        lines.append(title)
    elif is_root and t._ctx is not None:
        lines.append(f"output of {t._ctx.name}")
    lines.append(f"{_shape_text(t.shape)} {t.dtype.name}")
    if show_data:
        lines.append(_data_text(t.data))
    if t.grad is not None:
        gr = t.grad
        graph = "  (graph)" if gr._ctx is not None else ""
        lines.append(f"grad {_shape_text(gr.shape)} |g|={_num(_norm(gr.data))}{graph}")
    return lines


def _input_names(node: Function, g: _Graph, labels: dict[int, str]) -> list[str]:
    """What to call each input's gradient: from ``input_names``, ``backward_summary`` or tensors."""
    n_in = len(node.needs_input_grad)
    declared = getattr(type(node), "input_names", None)
    if declared and len(declared) == n_in:
        return [f"d {x}" for x in declared]
    summary = _summary(node)
    if summary and len(summary) == n_in:
        return [s.split("->", 1)[1].strip() for s in summary]
    inputs = g.node_in[g.nid[id(node)]]
    if n_in == 1:
        return ["d input"]
    out = []
    for i in range(n_in):
        name = labels.get(inputs[i]) if inputs is not None else None
        out.append(f"d {name}" if name else f"d input{i}")
    return out


def _summary(node: Function) -> tuple[str, ...]:
    summary = getattr(type(node), "backward_summary", None)
    if isinstance(summary, (tuple, list)) and all(
        isinstance(s, str) and "->" in s for s in summary
    ):
        return tuple(summary)
    return ()


def _assign_calls(
    node: Function, inputs: Sequence[Tensor] | None, calls: list[Any]
) -> dict[int, tuple[int, bool]]:
    """Map input index -> (index into backward_calls that produced its gradient, summed?).

    Uses the engine's ``node.backward_results`` (index of the producing call per input) when it is
    recorded. Otherwise: the last not-yet-assigned call whose output has the input's shape (the
    input named by ``backward_summary`` preferring that op), taking inputs from last to first; then
    a call whose output sums down (broadcasting undone) to the input's shape.
    """
    recorded = node.__dict__.get("backward_results")
    if recorded is not None:
        return {i: (k, False) for i, k in enumerate(recorded) if k is not None and k < len(calls)}
    if inputs is None or not calls:
        return {}
    summary = _summary(node)
    wanted_ops = (
        [(s.split("->", 1)[0].split() or [""])[0] for s in summary]
        if len(summary) == len(inputs)
        else None
    )
    taken: set[int] = set()
    result: dict[int, tuple[int, bool]] = {}
    for i in reversed(range(len(inputs))):
        if not node.needs_input_grad[i]:
            continue
        shape = tuple(inputs[i].shape)
        exact = [k for k, c in enumerate(calls) if k not in taken and tuple(c[2]) == shape]
        if wanted_ops is not None:
            preferred = [k for k in exact if calls[k][0] == wanted_ops[i]]
            exact = preferred or exact
        if exact:
            result[i] = (exact[-1], False)
            taken.add(exact[-1])
            continue
        summed = [
            k
            for k, c in enumerate(calls)
            if k not in taken and len(c[2]) >= len(shape) and _reduces_to(tuple(c[2]), shape)
        ]
        if summed:
            result[i] = (summed[-1], True)
            taken.add(summed[-1])
    return result


def _reduces_to(big: tuple[int, ...], small: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(big, small) == big
    except ValueError:
        return False


def _passed_through(name: str, inp: Tensor, out_shape: tuple[int, ...]) -> str:
    if tuple(out_shape) != tuple(inp.shape):
        return f"{name} = the upstream gradient summed to {_shape_text(inp.shape)}"
    return f"{name} = the upstream gradient (passed through)"


def _backward_lines(
    node: Function, g: _Graph, labels: dict[int, str], backward_ran: bool
) -> tuple[list[str], dict[int, str]]:
    """Lines of the backward note, and ``{input index: edge label}`` for the gradient edges."""
    n = g.nid[id(node)]
    out_shape = g.tensors[g.node_out[n]].shape
    in_idx = g.node_in[n]
    inputs = None if in_idx is None else [g.tensors[k] for k in in_idx]
    names = _input_names(node, g, labels)
    calls, passes = _dedupe_calls(list(node.backward_calls))
    edges: dict[int, str] = {}
    if calls:
        assigned = _assign_calls(node, inputs, calls)
        produced = {k: (i, summed) for i, (k, summed) in assigned.items()}
        times = f" ({passes} backward passes, each)" if passes > 1 else ""
        lines = [f"backward of {node.name} called{times}:"]
        for k, (op, in_shapes, out_shape) in enumerate(calls):
            args = ", ".join(_shape_text(s) for s in in_shapes)
            text = f"{op}({args}) -> {_shape_text(out_shape)}"
            if k in produced:
                i, summed = produced[k]
                text += f"  = {names[i]}" + ("  (summed to shape)" if summed else "")
                edges[i] = f"{names[i]}  {_shape_text(out_shape)}"
            lines.append(text)
        if inputs is not None:
            for i, need in enumerate(node.needs_input_grad):
                if need and i not in edges:
                    lines.append(_passed_through(names[i], inputs[i], out_shape))
                    edges[i] = names[i]
        return lines, edges
    summary = _summary(node)
    if backward_ran:
        lines = [f"backward of {node.name}: calls no op"]
        if inputs is not None:
            for i, need in enumerate(node.needs_input_grad):
                if need:
                    lines.append(_passed_through(names[i], inputs[i], out_shape))
                    edges[i] = names[i]
        return lines, edges
    if summary:
        needed = list(range(len(summary)))
        if len(summary) == len(node.needs_input_grad):  # one line per input, in input order
            needed = [i for i in needed if node.needs_input_grad[i]] or needed
        lines = [f"backward of {node.name} will call:", *(summary[i] for i in needed)]
        if inputs is not None and len(summary) == len(inputs):
            for i in needed:
                if node.needs_input_grad[i]:
                    edges[i] = summary[i].split("->", 1)[1].strip()
        return lines, edges
    return [f"backward of {node.name}: has not run"], {}


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
        idx = self.g.node_in[n]
        if idx is None:
            return None
        prefixes = {
            param_names[id(self.g.tensors[k])].rpartition(".")[0]
            for k in idx
            if id(self.g.tensors[k]) in param_names
        }
        if len(prefixes) != 1:
            return None
        (prefix,) = prefixes
        return self._string_path(prefix) if prefix else None

    def tensor_cluster(self, k: int, t: Tensor) -> Any:
        """Cluster of a tensor: its producer's, or for a parameter the one cluster using it."""
        g = self.g
        if t._ctx is not None:
            return self.node_cluster.get(g.nid.get(id(t._ctx), -1))
        if not t.requires_grad:
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
    show_data: bool = False,
    params: Any = None,
    collapse: str | None = None,
    rankdir: str = "TB",
) -> graphviz.Digraph:
    """Draw the autograd graph that produced ``roots``.

    Args:
        *roots: the tensors to draw from (e.g. a loss; a gradient made with ``create_graph=True``
            is a graph too). A list/tuple of Tensors counts as several roots.
        show_backward: for every op, add a note listing what its backward calls (recorded by the
            engine when backward has run, else the op class's ``backward_summary``) and dashed red
            edges to the inputs labelled with the gradient each call produces.
        show_data: add a short summary of each tensor's values.
        params: ``model.named_parameters()`` (or a Module, a dict name -> Tensor, or pairs): names
            such as ``features.0.weight`` for the parameter nodes.
        collapse: ``None`` or ``'module'``: draw each module's ops (and its parameters) inside a
            cluster. Uses the module scope recorded on nodes (``ctx.scope``, see
            ``tinygrad_conv.scope``); without it, ops using one module's parameters are grouped.
        rankdir: graphviz layout direction, one of ``'TB'``, ``'LR'``, ``'BT'``, ``'RL'``.

    Returns:
        A ``graphviz.Digraph`` (renders inline in Jupyter; ``.source`` is the DOT text; write it
        with :func:`save_graph`).

    Nodes: ``t<k>`` tensors, ``op<k>`` ops, ``bw<k>`` backward notes. A node released by
    ``backward()`` (without ``retain_graph=True``) no longer knows its inputs: it is drawn dashed,
    with a note, and the graph stops there.

    Raises:
        TypeError: a root is not a Tensor, ``params`` is not name/Tensor pairs.
        ValueError: no roots, unknown ``collapse`` or ``rankdir``.
    """
    if collapse not in _COLLAPSE:
        raise ValueError(f"draw_graph: collapse must be None or 'module', got {collapse!r}")
    if not isinstance(rankdir, str) or rankdir.upper() not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    root_list = _flatten_roots(roots)
    param_names = _param_names(params)
    g = _collect(root_list)
    root_idx = {g.tid[id(r)] for r in root_list}

    dot = graphviz.Digraph(name="autograd")
    dot.attr(rankdir=rankdir.upper(), ranksep="0.3", nodesep="0.25", fontname="Helvetica")
    dot.attr("node", fontname="Helvetica", fontsize="10", margin="0.08,0.04", height="0.3")
    dot.attr("edge", fontname="Helvetica", fontsize="8", arrowsize="0.6")

    clusters = _Clusters(g, param_names) if collapse == "module" else None

    def place(node_id: str, key: Any) -> None:
        if clusters is not None and key is not None:
            clusters.members[key].append(node_id)

    labels: dict[int, str] = {}  # tensor index -> display name (for "d <name>")
    out = _Writer(dot)
    for k, t in enumerate(g.tensors):
        name = param_names.get(id(t)) or t.name
        if name:
            labels[k] = name
        if k in root_idx:
            style = _STYLE_ROOT
        elif t._ctx is not None:
            style = _STYLE_INTER
        elif t.requires_grad:
            style = _STYLE_PARAM
        else:
            style = _STYLE_CONST
        label = _tensor_label(t, param_names.get(id(t)), show_data, k in root_idx)
        node_id = f"t{k}"
        out.node(node_id, _lines(*label), style)
        place(node_id, clusters.tensor_cluster(k, t) if clusters else None)

    ran = _backward_ran(g) if show_backward else []
    for n, node in enumerate(g.nodes):
        op_id = f"op{n}"
        attrs = _attrs_text(node.attrs, node.name)
        first = "  ".join([node.name, *attrs])
        if len(first) > 60 and attrs:  # long attribute lists wrap, one per line
            lines = [node.name, *attrs]
        else:
            lines = [first]
        if g.node_in[n] is None:
            lines.append("(released by backward: pass retain_graph=True to draw its inputs)")
            out.node(op_id, _lines(*lines), _STYLE_OP_RELEASED)
        else:
            out.node(op_id, _lines(*lines), _STYLE_OP)
        key = clusters.node_cluster.get(n) if clusters else None
        place(op_id, key)
        for k in g.node_in[n] or ():
            out.edge(f"t{k}", op_id)
        out.edge(op_id, f"t{g.node_out[n]}")
        if show_backward:
            bw_id = f"bw{n}"
            bw_lines, grad_edges = _backward_lines(node, g, labels, ran[n])
            out.node(bw_id, _lines(*bw_lines, left=True), _STYLE_BW)
            place(bw_id, key)
            out.edge(op_id, bw_id, style=_EDGE_BW)
            in_idx = g.node_in[n]
            for i, text in sorted(grad_edges.items()):
                if in_idx is not None:
                    out.edge(bw_id, f"t{in_idx[i]}", _lines(text), _EDGE_GRAD)
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

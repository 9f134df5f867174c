"""Tests of tinygrad_conv.viz, the scope stack and the ``python -m tinygrad_conv`` command line.

Structure, not pixels: node / edge counts and labels of the DOT text of known graphs, rendering
with the real ``dot`` to SVG that parses as XML, bad-input errors, and explain_conv's numbers
against tinygrad_conv.derivations.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from user_ops import NumpySquare

import tinygrad_conv as tc
import tinygrad_conv.nn.functional as F
from tinygrad_conv import scope, viz
from tinygrad_conv.explain import explain_conv
from tinygrad_conv.function import Function
from tinygrad_conv.viz import GraphvizNotFoundError, draw_graph, save_graph

ROOT = Path(__file__).resolve().parents[1]
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")


# ----------------------------------------------------------------------------- DOT parsing helpers

_LABEL = re.compile(r'label=(?:"((?:[^"\\]|\\.)*)"|(<.*>)|(\S+?))(?: |\]|$)')
_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")


def _label(attrs: str) -> str:
    m = _LABEL.search(attrs)
    if m is None:
        return ""
    text = next(g for g in m.groups() if g is not None)
    return text.replace("\\l", "\n").replace("\\n", "\n").strip("\n")


def parse_dot(source: str) -> dict[str, Any]:
    """Nodes ``{id: (label, attrs)}``, edges ``[(src, dst, label)]`` and clusters
    ``{label: set of member ids}`` (members of nested clusters count for the outer ones too)."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str]] = []
    clusters: dict[str, set[str]] = {}
    stack: list[list[Any]] = []  # [label, members]
    for line in source.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            stack.append(["", set()])
            continue
        if s == "}" and stack:
            label, members = stack.pop()
            clusters[label] = members
            if stack:
                stack[-1][1].update(members)
            continue
        if stack and "[" not in s and "label=" in s:  # the cluster's attribute line
            stack[-1][0] = _label(s)
            continue
        m = _EDGE.match(line)
        if m:
            edges.append((m.group(1), m.group(2), _label(m.group(3) or "")))
            continue
        m = _NODE.match(line)
        if m and m.group(1) not in ("node", "edge", "graph"):
            nodes[m.group(1)] = (_label(m.group(2)), m.group(2))
            continue
        if stack and re.fullmatch(r"\w+", s):
            stack[-1][1].add(s)
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def kinds(parsed: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"t": [], "op": [], "bw": []}
    for node_id in parsed["nodes"]:
        out[re.match(r"[a-z]+", node_id).group(0)].append(node_id)
    return out


def labels_of(parsed: dict[str, Any], prefix: str) -> list[str]:
    return [lab for nid, (lab, _) in parsed["nodes"].items() if re.fullmatch(prefix + r"\d+", nid)]


def node_by_label(parsed: dict[str, Any], start: str) -> str:
    hits = [nid for nid, (lab, _) in parsed["nodes"].items() if lab.startswith(start)]
    assert len(hits) == 1, (start, hits)
    return hits[0]


# ----------------------------------------------------------------------------- fixtures


def mlp(rng: np.random.Generator) -> dict[str, Any]:
    """A 2-layer MLP made of raw ops: loss = mean((relu(x@w1+b1)@w2+b2)**2 via mul)."""
    x = tc.tensor(rng.standard_normal((4, 3)).astype(np.float32), name="x")
    w1 = tc.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True, name="w1")
    b1 = tc.tensor(np.zeros(5, np.float32), requires_grad=True, name="b1")
    w2 = tc.tensor(rng.standard_normal((5, 2)).astype(np.float32), requires_grad=True, name="w2")
    b2 = tc.tensor(np.zeros(2, np.float32), requires_grad=True, name="b2")
    out = tc.relu(x @ w1 + b1) @ w2 + b2
    loss = (out * out).mean()
    return {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "out": out, "loss": loss}


# 12 tensors (5 leaves, 7 op outputs), 7 ops; edges: 2 matmul x (2 in + 1 out), 2 add x 3,
# relu 2, mul 3 (its one input used twice), mean 2
MLP_TENSORS, MLP_OPS, MLP_EDGES = 12, 7, 19


# ----------------------------------------------------------------------------- draw_graph: MLP


def test_mlp_structure_and_labels(rng):
    g = mlp(rng)
    dot = draw_graph(g["loss"])
    p = parse_dot(dot.source)
    k = kinds(p)
    assert (len(k["t"]), len(k["op"]), len(k["bw"])) == (MLP_TENSORS, MLP_OPS, 0)
    assert len(p["edges"]) == MLP_EDGES
    assert viz.dot_counts(dot.source) == (MLP_TENSORS + MLP_OPS, MLP_EDGES)
    ops = sorted(labels_of(p, "op"))
    assert ops == sorted(
        ["matmul", "matmul", "add", "add", "relu", "mul", "mean  axes=(0, 1)  keepdims=False"]
    )
    tensors = labels_of(p, "t")
    for name, shape in [("x", "(4, 3)"), ("w1", "(3, 5)"), ("b1", "(5,)"), ("w2", "(5, 2)")]:
        assert f"{name}\n{shape} float32" in tensors
    assert "output of mean\n() float32" in tensors
    assert tensors.count("(4, 5) float32") == 3  # x@w1, +b1, relu
    # every op has exactly one outgoing edge, to a tensor
    for op in k["op"]:
        assert [d for s, d, _ in p["edges"] if s == op][0].startswith("t")


def test_mlp_styles_distinguish_params_constants_intermediates_root(rng):
    g = mlp(rng)
    p = parse_dot(draw_graph(g["loss"]).source)
    attrs = {lab.split("\n")[0]: a for lab, a in p["nodes"].values()}
    assert "#b9e3a8" in attrs["w1"] and "bold" in attrs["w1"]  # parameter
    assert "dashed" in attrs["x"] and "#eeeeee" in attrs["x"]  # constant
    assert "#f6b8b8" in attrs["output of mean"]  # root
    inter = [a for lab, a in p["nodes"].values() if lab.startswith("(4, 5)")]
    assert inter and all("#ffffff" in a for a in inter)
    styles = {attrs["w1"], attrs["x"], attrs["output of mean"], inter[0]}
    assert len(styles) == 4


def test_params_names_and_grad_after_backward(rng):
    g = mlp(rng)
    params = [("fc1.weight", g["w1"]), ("fc1.bias", g["b1"]), ("fc2.weight", g["w2"])]
    g["loss"].backward(retain_graph=True)
    p = parse_dot(draw_graph(g["loss"], params=iter(params)).source)
    tensors = labels_of(p, "t")
    w1 = g["w1"].grad.data.astype(np.float64)
    norm, lo, hi = np.linalg.norm(w1), w1.min(), w1.max()
    assert f"fc1.weight\n(3, 5) float32\n|grad|={norm:.4g}  min {lo:.4g}  max {hi:.4g}" in tensors
    assert any(t.startswith("fc2.weight\n(5, 2) float32\n|grad|=") for t in tensors)
    # small gradients are shown signed, element by element (Tensor.name for b2)
    b2 = ", ".join(f"{v:.4g}" for v in g["b2"].grad.data.tolist())
    assert f"b2\n(2,) float32\ngrad = [{b2}]" in tensors
    # a dict and a Module-like object work too
    p2 = parse_dot(draw_graph(g["loss"], params=dict(params)).source)
    assert labels_of(p2, "t") == tensors


def test_show_values(rng):
    g = mlp(rng)
    p = parse_dot(draw_graph(g["loss"], show_values=True).source)
    b1 = node_by_label(p, "b1")
    assert p["nodes"][b1][0] == "b1\n(5,) float32\ndata = [0, 0, 0, 0, 0]"
    w1 = node_by_label(p, "w1")
    assert "\n|data|=" in p["nodes"][w1][0] and "  min " in p["nodes"][w1][0]
    # show_data is the old name of the same switch
    assert parse_dot(draw_graph(g["loss"], show_data=True).source) == p


def test_signed_scalar_values_and_gradients():
    # micrograd's habit: b.grad = -4 is drawn as -4, not as a norm of 4
    a = tc.tensor(2.0, requires_grad=True, name="a")
    b = tc.tensor(-3.0, requires_grad=True, name="b")
    c = a * b
    c.name = "c"
    c.retain_grad()
    loss = c * -2.0 + a
    loss.backward()
    p = parse_dot(draw_graph(loss, show_values=True).source)
    assert p["nodes"][node_by_label(p, "a\n")][0] == "a\n() float32\ndata = 2\ngrad = 7"
    assert p["nodes"][node_by_label(p, "b\n")][0] == "b\n() float32\ndata = -3\ngrad = -4"
    assert p["nodes"][node_by_label(p, "c\n")][0] == "c\n() float32\ndata = -6\ngrad = -2"


def test_show_backward_before_and_after_backward(rng):
    g = mlp(rng)
    before = parse_dot(draw_graph(g["loss"], show_backward=True).source)
    k = kinds(before)
    assert len(k["bw"]) == MLP_OPS
    # before backward every op states its declared rule, with its inputs by name where named
    assert sorted(labels_of(before, "bw")) == [
        "backward of add (not run yet) will compute:\nd a = g\nd b1 = g",
        "backward of add (not run yet) will compute:\nd a = g\nd b2 = g",
        "backward of matmul (not run yet) will compute:\nd a = matmul_nt(g, w2)\n"
        "d w2 = matmul_tn(a, g)",
        "backward of matmul (not run yet) will compute:\nd w1 = matmul_tn(x, g)",
        "backward of mean (not run yet) will compute:\nd x = div(broadcast_to(reshape(g)), n)",
        "backward of mul (not run yet) will compute:\nd a = mul(g, b)\nd b = mul(g, a)\n"
        "(a and b are the same tensor)",
        "backward of relu (not run yet) will compute:\nd x = mul(g, mask)",
    ]
    g["loss"].backward(retain_graph=True)
    after = parse_dot(draw_graph(g["loss"], show_backward=True).source)
    # after backward: the calls the engine recorded, operands by source, and each expression
    assert sorted(labels_of(after, "bw")) == [
        "backward of add ran (1 pass); it called no op\nd a = g\nd b1 = g  (summed from (4, 5))",
        "backward of add ran (1 pass); it called no op\nd a = g\nd b2 = g  (summed from (4, 2))",
        "backward of matmul ran (1 pass); the last pass called:\n"
        "#0 = matmul_nt(g, w2)  transpose_b=True -> (4, 5)\n"
        "#1 = matmul_tn(a, g)  transpose_a=True -> (5, 2)\n"
        "d a = matmul_nt(g, w2)\nd w2 = matmul_tn(a, g)",
        "backward of matmul ran (1 pass); the last pass called:\n"
        "#0 = matmul_tn(x, g)  transpose_a=True -> (3, 5)\nd w1 = matmul_tn(x, g)",
        "backward of mean ran (1 pass); the last pass called:\n"
        "#0 = reshape(g)  shape=(1, 1) -> (1, 1)\n#1 = broadcast_to(#0)  shape=(4, 2) -> (4, 2)\n"
        "#2 = div(#1, 8) -> (4, 2)\n"
        "d x = div(broadcast_to(reshape(g)), 8)",
        "backward of mul ran (1 pass); the last pass called:\n#0 = mul(g, a) -> (4, 2)\n"
        "#1 = mul(g, a) -> (4, 2)\nd a = mul(g, a)\nd b = mul(g, a)\n"
        "(a and b are the same tensor)",
        "backward of relu ran (1 pass); the last pass called:\n#0 = mul(g, mask) -> (4, 5)\n"
        "d x = mul(g, mask)",
    ]
    # gradient edges: one per input that needs a gradient (x does not)
    grad_edges = [e for e in after["edges"] if e[0].startswith("bw") and e[2]]
    # add2: 2, matmul2: 2, relu: 1, add1: 2, matmul1: 1 (w1 only), mul: 2, mean: 1
    assert len(grad_edges) == 2 + 2 + 1 + 2 + 1 + 2 + 1
    x_node = node_by_label(after, "x\n")
    assert not [e for e in grad_edges if e[1] == x_node]
    w2_node = node_by_label(after, "w2\n")
    assert [e[2] for e in grad_edges if e[1] == w2_node] == ["d w2  (5, 2)"]
    b1_node = node_by_label(after, "b1\n")
    # the bias edge carries the shape that arrives, and the shape it was summed from
    assert [e[2] for e in grad_edges if e[1] == b1_node] == ["d b1  (5,)\nsummed from (4, 5)"]


def test_named_tensor_used_twice_and_name_clashes():
    x = tc.tensor([1.0, -2.0], requires_grad=True, name="x")
    y = (x * x).sum()
    p = parse_dot(draw_graph(y, show_backward=True).source)
    assert (
        "backward of mul (not run yet) will compute:\nd x (as a) = mul(g, x)\n"
        "d x (as b) = mul(g, x)"
    ) in labels_of(p, "bw")
    # two different tensors with one name: the note falls back to the op's own labels
    a = tc.tensor([1.0], requires_grad=True, name="w")
    b = tc.tensor([2.0], requires_grad=True, name="w")
    p = parse_dot(draw_graph(a / b, show_backward=True).source)
    assert labels_of(p, "bw") == [
        "backward of div (not run yet) will compute:\nd a = div(g, b)\n"
        "d b = div(neg(mul(g, a)), mul(b, b))"
    ]


def test_micrograd_expression_is_drawn_with_signed_values_and_exact_notes():
    spec = importlib.util.spec_from_file_location(
        "_micrograd_example", ROOT / "examples" / "micrograd_expression.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tensors = module.build()
    p = parse_dot(draw_graph(tensors["L"], show_backward=True, show_values=True).source)
    boxes = sorted(labels_of(p, "t"))
    assert boxes == [
        "L\n() float64\ndata = -8\ngrad = 1",
        "a\n() float64\ndata = 2\ngrad = 6",
        "b\n() float64\ndata = -3\ngrad = -4",
        "c\n() float64\ndata = 10\ngrad = -2",
        "d\n() float64\ndata = 4\ngrad = -2",
        "e\n() float64\ndata = -6\ngrad = -2",
        "f\n() float64\ndata = -2\ngrad = 4",
    ]
    assert sorted(labels_of(p, "bw")) == [
        "backward of add ran (1 pass); it called no op\nd e = g\nd c = g",
        "backward of mul ran (1 pass); the last pass called:\n#0 = mul(g, b) -> ()\n"
        "#1 = mul(g, a) -> ()\nd a = mul(g, b)\nd b = mul(g, a)",
        "backward of mul ran (1 pass); the last pass called:\n#0 = mul(g, f) -> ()\n"
        "#1 = mul(g, d) -> ()\nd d = mul(g, f)\nd f = mul(g, d)",
    ]
    assert sorted(e[2] for e in p["edges"] if e[2]) == [
        "d a  ()", "d b  ()", "d c  ()", "d d  ()", "d e  ()", "d f  ()"
    ]  # fmt: skip


def test_graph_is_drawn_whole_after_a_plain_backward(rng):
    g = mlp(rng)
    g["loss"].backward(retain_graph=True)
    retained = parse_dot(draw_graph(g["loss"], show_backward=True).source)
    h = mlp(np.random.default_rng(1234))
    h["loss"].backward()  # no retain_graph: every array of the graph is freed
    node = h["out"].grad_fn
    assert node.released and node.inputs is None
    p = parse_dot(draw_graph(h["loss"], show_backward=True).source)
    k = kinds(p)
    assert (len(k["t"]), len(k["op"]), len(k["bw"])) == (MLP_TENSORS, MLP_OPS, MLP_OPS)
    assert len(p["edges"]) == len(retained["edges"])
    # the notes read the same records (the values differ: another seed)
    strip = lambda labs: sorted(re.sub(r"\d+\.\d+", "#", x) for x in labs)  # noqa: E731
    assert strip(labels_of(p, "bw")) == strip(labels_of(retained, "bw"))
    assert all(
        not lab.startswith("backward of") or "ran (1 pass)" in lab for lab in labels_of(p, "bw")
    )


def test_drawing_is_deterministic_and_ids_are_assigned(rng):
    g = mlp(rng)
    a, b = draw_graph(g["loss"]).source, draw_graph(g["loss"]).source
    assert a == b
    ids = list(parse_dot(a)["nodes"])
    assert ids[0] == "t0" and all(re.fullmatch(r"(t|op)\d+", i) for i in ids)


def test_several_roots_share_nodes(rng):
    g = mlp(rng)
    other = g["out"].sum()
    p = parse_dot(draw_graph(g["loss"], other).source)
    k = kinds(p)
    assert (len(k["t"]), len(k["op"])) == (MLP_TENSORS + 1, MLP_OPS + 1)
    # a list of roots is accepted as well
    assert draw_graph([g["loss"], other]).source == draw_graph(g["loss"], other).source


def test_no_recursion_error_on_a_10000_node_chain():
    x = tc.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    dot = draw_graph(y, rankdir="LR")
    n_nodes, n_edges = viz.dot_counts(dot.source)
    # 5000 ops, 5001 chain tensors + 5000 scalar constants; 3 edges per op
    assert n_nodes == 5000 + 5001 + 5000
    assert n_edges == 3 * 5000


# ----------------------------------------------------------------------------- attributes


def test_attribute_text():
    a = tc.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    b = a[:, 1:3, ...]
    c = tc.transpose(b, (2, 0, 1))
    d = tc.pad(c, [(0, 0), (1, 1), (0, 2)])
    e = d.astype(np.float64)
    p = parse_dot(draw_graph(e).source)
    ops = labels_of(p, "op")
    assert "getitem  index=[:, 1:3, ...]" in ops
    assert "transpose  axes=(2, 0, 1)" in ops
    assert any(o.startswith("pad  ") and "(1, 1)" in o for o in ops)
    assert any(o.startswith("cast") and "float64" in o for o in ops)
    assert viz._value_text("v", np.zeros((3, 2), np.float32)) == "float32(3, 2)"
    assert viz._value_text("index", (slice(None, None, 2), None, 0)) == "[::2, None, 0]"
    assert viz._value_text("long", "x" * 100).endswith("...")


# ----------------------------------------------------------------------------- errors


def test_bad_roots_and_options(rng):
    g = mlp(rng)
    with pytest.raises(TypeError, match="root 0 is ndarray"):
        draw_graph(np.ones(3))
    with pytest.raises(TypeError, match="root 1 is NoneType"):
        draw_graph(g["loss"], None)
    with pytest.raises(ValueError, match="at least one Tensor"):
        draw_graph()
    with pytest.raises(ValueError, match="collapse must be None or 'module'"):
        draw_graph(g["loss"], collapse="layer")
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(g["loss"], rankdir="XY")
    with pytest.raises(TypeError, match=r"\(name, Tensor\) pairs"):
        draw_graph(g["loss"], params=[("w", np.ones(2))])
    with pytest.raises(TypeError, match="params must be"):
        draw_graph(g["loss"], params=3)


# ----------------------------------------------------------------------------- conv graphs


@pytest.fixture
def conv_graph(rng):
    x = tc.tensor(rng.standard_normal((2, 6, 6, 3)), requires_grad=True, name="x")
    w = tc.tensor(rng.standard_normal((3, 3, 3, 4)), requires_grad=True, name="w")
    y = tc.conv2d(x, w, strides=2, padding="SAME")
    loss = (y * y).sum()
    return x, w, y, loss


def test_conv_graph_labels(conv_graph):
    x, w, y, loss = conv_graph
    p = parse_dot(draw_graph(loss).source)
    k = kinds(p)
    # x, w, y, y*y, loss; conv2d, mul, sum
    assert (len(k["t"]), len(k["op"]), len(p["edges"])) == (5, 3, 3 + 3 + 2)
    assert "conv2d  strides=2  padding=SAME" in labels_of(p, "op")
    assert "x\n(2, 6, 6, 3) float64" in labels_of(p, "t")
    assert "(2, 3, 3, 4) float64" in labels_of(p, "t")


def test_conv_rule_then_recorded_calls(conv_graph):
    x, w, y, loss = conv_graph
    p = parse_dot(draw_graph(y, show_backward=True).source)
    (bw,) = kinds(p)["bw"]
    assert p["nodes"][bw][0] == (
        "backward of conv2d (not run yet) will compute:\n"
        "d x = conv2d_backprop_input(w, g)\nd w = conv2d_backprop_filter(x, g)"
    )
    loss.backward(retain_graph=True)
    p = parse_dot(draw_graph(loss, show_backward=True).source)
    conv_bw = node_by_label(p, "backward of conv2d ran")
    assert p["nodes"][conv_bw][0] == (
        "backward of conv2d ran (1 pass); the last pass called:\n"
        "#0 = conv2d_backprop_input(w, g)  input_shape=(2, 6, 6, 3)  strides=2  pads=0,1,0,1"
        " -> (2, 6, 6, 3)\n"
        "#1 = conv2d_backprop_filter(x, g)  filter_shape=(3, 3, 3, 4)  strides=2  pads=0,1,0,1"
        " -> (3, 3, 3, 4)\n"
        "d x = conv2d_backprop_input(w, g)\nd w = conv2d_backprop_filter(x, g)"
    )
    grads = {
        p["nodes"][d][0].split("\n")[0]: lab for s, d, lab in p["edges"] if s == conv_bw and lab
    }
    assert grads == {"x": "d x  (2, 6, 6, 3)", "w": "d w  (3, 3, 3, 4)"}
    assert "\n|grad|=" in p["nodes"][node_by_label(p, "x\n")][0]


def test_double_backward_graph_of_a_conv(conv_graph):
    x, w, y, loss = conv_graph
    (dx,) = tc.grad(loss, [x], create_graph=True)
    dx.name = "dx"
    p = parse_dot(draw_graph(dx, show_backward=True).source)
    ops = labels_of(p, "op")
    # dx = conv2d_backprop_input(w, dy) with dy = 2 * y * ones (mul nodes of mul's and sum's
    # backward), y = conv2d(x, w)
    assert any(
        o.startswith("conv2d_backprop_input") and "input_shape=(2, 6, 6, 3)" in o for o in ops
    )
    assert "conv2d  strides=2  padding=SAME" in ops
    assert labels_of(p, "t")[0] == "dx\n(2, 6, 6, 3) float64"
    bwi = node_by_label(p, "backward of conv2d_backprop_input")
    assert p["nodes"][bwi][0] == (
        "backward of conv2d_backprop_input (not run yet) will compute:\n"
        "d w = conv2d_backprop_filter(g, dy)\nd dy = conv2d(g, w)"
    )
    # differentiate dx again: the gradient graph's conv node records its own backward calls
    (hw,) = tc.grad((dx * dx).sum(), [w], retain_graph=True)
    p = parse_dot(draw_graph(dx, show_backward=True).source)
    bwi = node_by_label(p, "backward of conv2d_backprop_input ran")
    assert p["nodes"][bwi][0] == (
        "backward of conv2d_backprop_input ran (1 pass); the last pass called:\n"
        "#0 = conv2d_backprop_filter(g, dy)  filter_shape=(3, 3, 3, 4)  strides=2  pads=0,1,0,1"
        " -> (3, 3, 3, 4)\n#1 = conv2d(g, w)  strides=2  pads=0,1,0,1 -> (2, 3, 3, 4)\n"
        "d w = conv2d_backprop_filter(g, dy)\nd dy = conv2d(g, w)"
    )
    assert hw.shape == w.shape


def _t(values: list, name: str) -> tc.Tensor:
    return tc.tensor(np.array(values, dtype=np.float64), requires_grad=True, name=name)


NOTE_CASES = {
    "pow": (
        lambda: _t([1.5, 2.0], "a") ** _t([2.0, 3.0], "b"),
        "backward of pow (not run yet) will compute:\nd a = mul(mul(g, b), pow(a, sub(b, 1)))\n"
        "d b = mul(mul(g, out), log(a))",
        "backward of pow ran (1 pass); the last pass called:\n#0 = mul(g, b) -> (2,)\n"
        "#1 = sub(b, 1) -> (2,)\n#2 = pow(a, #1) -> (2,)\n#3 = mul(#0, #2) -> (2,)\n"
        "#4 = mul(g, out) -> (2,)\n#5 = log(a) -> (2,)\n#6 = mul(#4, #5) -> (2,)\n"
        "d a = mul(mul(g, b), pow(a, sub(b, 1)))\nd b = mul(mul(g, out), log(a))",
    ),
    "where": (
        lambda: tc.where(np.array([True, False]), _t([1.0, 2.0], "a"), _t([3.0, 4.0], "b")),
        "backward of where (not run yet) will compute:\nd a = where(cond, g, 0)\n"
        "d b = where(cond, 0, g)",
        "backward of where ran (1 pass); the last pass called:\n#0 = where(cond, g, 0) -> (2,)\n"
        "#1 = where(cond, 0, g) -> (2,)\nd a = where(cond, g, 0)\nd b = where(cond, 0, g)",
    ),
    "maximum": (
        lambda: tc.maximum(_t([1.0, 5.0], "a"), _t([3.0, 4.0], "b")),
        "backward of maximum (not run yet) will compute:\nd a = mul(g, share_a)\n"
        "d b = mul(g, share_b)",
        "backward of maximum ran (1 pass); the last pass called:\n#0 = mul(g, share_a) -> (2,)\n"
        "#1 = mul(g, share_b) -> (2,)\nd a = mul(g, share_a)\nd b = mul(g, share_b)",
    ),
    "concatenate": (
        lambda: tc.concatenate([_t([1.0], "a"), _t([2.0, 3.0], "b")], 0),
        "backward of concatenate (not run yet) will compute:\nd a = getitem(g)\nd b = getitem(g)",
        "backward of concatenate ran (1 pass); the last pass called:\n"
        "#0 = getitem(g)  index=[0:1] -> (1,)\n#1 = getitem(g)  index=[1:3] -> (2,)\n"
        "d a = getitem(g)\nd b = getitem(g)",
    ),
    "stack": (
        lambda: tc.stack([_t([1.0], "a"), _t([2.0], "b")], 0),
        "backward of stack (not run yet) will compute:\nd a = getitem(g)\nd b = getitem(g)",
        "backward of stack ran (1 pass); the last pass called:\n"
        "#0 = getitem(g)  index=[0] -> (1,)\n#1 = getitem(g)  index=[1] -> (1,)\n"
        "d a = getitem(g)\nd b = getitem(g)",
    ),
    "batch_norm": (
        lambda: F.batch_norm(
            _t([[1.0, 2.0], [3.0, 5.0]], "x"), None, None, _t([1.0, 1.0], "w"),
            _t([0.0, 0.0], "b"), training=True,
        ),
        "backward of batch_norm (not run yet) will compute:\nd x = (numpy, not recorded)\n"
        "d w = (numpy, not recorded)\nd b = (numpy, not recorded)",
        "backward of batch_norm ran (1 pass); it called no op\nd x = (numpy, not recorded)\n"
        "d w = (numpy, not recorded)\nd b = (numpy, not recorded)",
    ),
    "numpy_function": (
        lambda: NumpySquare.apply(_t([1.0, 2.0], "x")),
        "backward of numpysquare: no rule declared; has not run",
        "backward of numpysquare ran (1 pass); it called no op\nd x = (numpy, not recorded)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(NOTE_CASES))
def test_exact_backward_notes(case):
    make, before_text, after_text = NOTE_CASES[case]
    y = make()
    before = parse_dot(draw_graph(y, show_backward=True).source)
    assert labels_of(before, "bw") == [before_text]
    y.sum().backward()  # a plain backward: the drawing reads the record after the release
    after = parse_dot(draw_graph(y, show_backward=True).source)
    assert labels_of(after, "bw")[0] == after_text


# ----------------------------------------------------------------------------- collapse='module'


def _tiny_cnn():
    from tinygrad_conv import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 2, 3, strides=2, padding="same", seed=0), nn.ReLU()
            )
            self.head = nn.Linear(2 * 3 * 3, 3, seed=1)

        def forward(self, x):
            return self.head(self.features(x).reshape(x.shape[0], -1))

    return Net()


@pytest.fixture
def scope_hooks(monkeypatch):
    """Install the two proposed hooks (Module.__call__ pushes, Function.apply tags) for a test."""
    from tinygrad_conv import nn

    original = Function.apply.__func__

    def apply(cls, *inputs, **attrs):
        out = original(cls, *inputs, **attrs)
        if out._ctx is not None and "scope" not in out._ctx.__dict__:
            out._ctx.scope = scope.current_scope()
        return out

    def call(self, *args, **kwargs):
        prev = scope.push_scope(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            scope.pop_scope(prev)

    if "scope" not in original.__code__.co_names:  # the engine does not tag nodes yet
        monkeypatch.setattr(Function, "apply", classmethod(apply))
    if "push_scope" not in nn.Module.__call__.__code__.co_names:  # nn does not push yet
        monkeypatch.setattr(nn.Module, "__call__", call)


def test_collapse_module_with_scope(scope_hooks, rng):
    model = _tiny_cnn()
    x = tc.tensor(rng.standard_normal((2, 5, 5, 1)).astype(np.float32), name="x")
    loss = tc.cross_entropy(model(x), np.array([0, 2]))
    p = parse_dot(draw_graph(loss, params=model.named_parameters(), collapse="module").source)
    cl = p["clusters"]
    assert set(cl) == {
        "features: Sequential",
        "features.0: Conv2d",
        "features.1: ReLU",
        "head: Linear",
    }

    def members(name):
        return sorted(p["nodes"][m][0].split("\n")[0] for m in cl[name])

    conv = members("features.0: Conv2d")
    assert "conv2d  strides=2  padding=SAME" in conv and "add" in conv
    assert "features.0.weight" in conv and "features.0.bias" in conv
    assert "relu" in members("features.1: ReLU")
    assert set(members("features.0: Conv2d")) < set(members("features: Sequential"))
    assert {"matmul", "add", "head.weight", "head.bias"} <= set(members("head: Linear"))
    outside = set(p["nodes"]) - set().union(*cl.values())
    outside_labels = {p["nodes"][n][0].split("\n")[0] for n in outside}
    assert "x" in outside_labels
    assert any(label.startswith("cross_entropy") for label in outside_labels)
    # scope is restored after the calls; a Module works as params too
    assert scope.current_scope() == ()
    by_module = draw_graph(loss, params=model, collapse="module").source
    assert by_module == draw_graph(loss, params=model.named_parameters(), collapse="module").source


def test_collapse_module_without_scope_groups_by_parameter_names(rng):
    model = _tiny_cnn()
    x = tc.tensor(rng.standard_normal((2, 5, 5, 1)).astype(np.float32))
    loss = tc.cross_entropy(model(x), np.array([0, 2]))
    for t in [loss]:  # drop any scope the engine may have recorded
        stack = [t]
        while stack:
            u = stack.pop()
            if u._ctx is not None:
                u._ctx.__dict__.pop("scope", None)
                stack.extend(u._ctx.inputs)
    p = parse_dot(draw_graph(loss, params=model.named_parameters(), collapse="module").source)
    cl = p["clusters"]
    assert set(cl) == {"features", "features.0", "head"}
    f0 = {p["nodes"][m][0].split("\n")[0] for m in cl["features.0"]}
    assert {"conv2d  strides=2  padding=SAME", "add", "features.0.weight"} <= f0


def test_collapse_with_string_scope(rng):
    g = mlp(rng)
    g["loss"]._ctx.scope = "loss.mean"
    p = parse_dot(draw_graph(g["loss"], collapse="module").source)
    assert set(p["clusters"]) == {"loss", "loss.mean"}
    assert len(p["clusters"]["loss.mean"]) == 2  # the mean op and its output


def test_scope_stack():
    a, b = object(), object()
    assert scope.current_scope() == ()
    with scope.module_scope(a) as chain:
        assert chain == (a,)
        prev = scope.push_scope(b)
        assert scope.current_scope() == (a, b)
        scope.pop_scope(prev)
        assert scope.current_scope() == (a,)
    assert scope.current_scope() == ()
    with pytest.raises(RuntimeError), scope.module_scope(a):
        raise RuntimeError
    assert scope.current_scope() == ()


def test_module_path():
    from tinygrad_conv import nn

    model = nn.Sequential(nn.Sequential(nn.ReLU(), nn.Tanh()))
    inner = model[0]
    names = {id(m): n for n, m in model.named_modules()}
    assert scope.module_path((model, inner, inner[1]), names) == "0.1"
    assert scope.module_path((model, inner, inner[1])) == "0.1"  # from the registries

    class Plain:
        pass

    p, c = Plain(), Plain()
    p.layers = [Plain(), c]
    assert scope.module_path((p, c)) == "layers.1"
    assert scope.module_path((p,)) == ""


# ----------------------------------------------------------------------------- save_graph


@needs_dot
def test_save_svg_parses_as_xml(tmp_path, conv_graph):
    *_, loss = conv_graph
    loss.backward(retain_graph=True)
    dot = draw_graph(loss, show_backward=True, show_data=True)
    out = save_graph(dot, tmp_path / "g.svg")
    assert out == tmp_path / "g.svg"
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "op0" in titles and "t0" in titles
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "conv2d_backprop_filter" in texts
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]  # no temporary left


@needs_dot
def test_save_png_pdf_and_dot(tmp_path, rng):
    dot = draw_graph(mlp(rng)["loss"])
    assert save_graph(dot, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_graph(dot, tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    assert save_graph(dot, tmp_path / "g.dot").read_text() == dot.source
    assert save_graph(dot.source, str(tmp_path / "g.gv")).read_text() == dot.source


def test_save_errors(tmp_path, rng, monkeypatch):
    dot = draw_graph(mlp(rng)["loss"])
    with pytest.raises(ValueError, match="extension"):
        save_graph(dot, tmp_path / "g.jpeg")
    with pytest.raises(TypeError, match="graphviz.Digraph"):
        save_graph(42, tmp_path / "g.svg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_graph(dot, tmp_path / "missing" / "g.dot")
    (tmp_path / "d.dot").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_graph(dot, tmp_path / "d.dot")


def test_save_unwritable_path_leaves_nothing(tmp_path, rng, monkeypatch):
    dot = draw_graph(mlp(rng)["loss"])

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(viz.tempfile, "mkstemp", deny)
    with pytest.raises(PermissionError, match="cannot write .*Permission denied"):
        save_graph(dot, tmp_path / "g.dot")
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_save_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "g.svg"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="dot -Tsvg failed"):
        save_graph("digraph { a -> }", target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]


def test_missing_dot_says_how_to_install(tmp_path, rng, monkeypatch):
    dot = draw_graph(mlp(rng)["loss"])
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        save_graph(dot, tmp_path / "g.svg")
    save_graph(dot, tmp_path / "g.dot")  # .dot needs no Graphviz
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]


@needs_dot
def test_jupyter_renders_inline(rng):
    dot = draw_graph(mlp(rng)["loss"])
    bundle = dot._repr_mimebundle_()
    assert "image/svg+xml" in bundle and "<svg" in bundle["image/svg+xml"]


# ----------------------------------------------------------------------------- explain_conv

EXPLAIN_CASES = [
    ((1, 5, 5, 1), (3, 3, 1, 1), 2, "SAME", 1),
    ((1, 6, 6, 2), (3, 3, 2, 1), 2, "VALID", 1),
    ((1, 7, 7, 1), (2, 2, 1, 2), 1, "VALID", 2),
    ((2, 5, 6, 1), (3, 2, 1, 1), (2, 3), [[1, 0], [2, 1]], 1),
    ((1, 6, 6, 4), (3, 3, 2, 2), 2, "SAME", 1),  # groups = 2
]


def _cells(html: str) -> list[str]:
    return re.findall(r"<TD(?: BGCOLOR=\"#eeeeee\")?>(-?[\d.e+-]+)</TD>", html)


@pytest.mark.parametrize(("xs", "ws", "s", "pad", "d"), EXPLAIN_CASES)
def test_explain_conv_numbers_equal_derivations(xs, ws, s, pad, d):
    from tinygrad_conv import derivations as D

    e = explain_conv(xs, ws, s, pad, d, seed=3)
    expected = D.explain_steps(xs, ws, s, pad, d, seed=3)
    derived = [st for st in e.steps if st.name not in ("x", "w", "y")]
    assert [st.title for st in derived] == [t for t, _ in expected]
    for st, (_, arr) in zip(derived, expected, strict=True):
        np.testing.assert_array_equal(st.array, arr)
    # the four ways / three ways of derivations agree with the drawn d_x and d_w
    x, w, dy = e.step("x").array, e.step("w").array, e.step("dy").array
    for v in D.input_grad_ways(x, w, dy, s, pad, d).values():
        np.testing.assert_allclose(e.step("d_x").array, v, atol=1e-9)
    for v in D.filter_grad_ways(x, w, dy, s, pad, d).values():
        np.testing.assert_allclose(e.step("d_w").array, v, atol=1e-9)
    np.testing.assert_allclose(
        e.step("y").array, tc.conv2d(x, w, s, pad, dilations=d).data, atol=1e-12
    )
    assert e.checks and all(e.checks.values())


def test_explain_conv_drawing_and_text_show_the_numbers():
    e = explain_conv((1, 5, 5, 1), (3, 3, 1, 1), 2, "SAME", 1, seed=0)
    src = e.digraph.source
    assert {s.name for s in e.steps} == {
        "x", "w", "y", "dy", "dy_dilated", "dy_padded", "w_rot180", "d_x", "x_swapped",
        "dy_swapped", "d_w",
    }  # fmt: skip
    for step in e.steps:
        m = re.search(rf"^\t{step.name} \[label=(<.*>)\]$", src, re.M)
        assert m, step.name
        cells = [float(c) for c in _cells(m.group(1))]
        order = (2, 3, 0, 1) if step.layout == "HWIO" else (0, 3, 1, 2)  # plane by plane
        assert cells == [float(v) for v in step.array.transpose(order).ravel()], step.name
    # dilation inserted zeros, padding added a zero border
    z = e.step("dy_dilated").array[0, :, :, 0]
    assert z.shape == (5, 5) and np.all(z[1::2] == 0) and np.all(z[:, 1::2] == 0)
    assert e.step("dy_padded").array.shape == (1, 7, 7, 1)
    # text: the same grids
    assert "== d_x = conv2d(padded dy, rot180(w))  [NHWC (1, 5, 5, 1)]" in e.text
    row = " ".join(str(int(v)) for v in e.step("d_x").array[0, 0, :, 0])
    assert re.sub(r" +", " ", row) in re.sub(r" +", " ", e.text)
    assert e.text.rstrip().endswith("OK")
    assert str(e) == e.text


@needs_dot
def test_explain_conv_writes_svg_and_prints(tmp_path, capsys):
    out = tmp_path / "e.svg"
    e = explain_conv(out=out, file=sys.stdout)
    assert ET.parse(out).getroot().tag.endswith("svg")
    assert capsys.readouterr().out.strip() == e.text
    assert "image/svg+xml" in e._repr_mimebundle_()


def test_explain_conv_bad_input():
    with pytest.raises(ValueError, match="x_shape must have 4"):
        explain_conv((5, 5, 1), (3, 3, 1, 1))
    with pytest.raises(TypeError, match="w_shape must be 4 ints"):
        explain_conv((1, 5, 5, 1), 3)
    with pytest.raises(ValueError, match="explain_conv"):
        explain_conv((1, 2, 2, 1), (3, 3, 1, 1), 1, "VALID")  # filter larger than the input


# ----------------------------------------------------------------------------- command line


def run_cli(*argv: str) -> int:
    from tinygrad_conv.__main__ import main

    return main(list(argv))


@needs_dot
def test_cli_explain(tmp_path, capsys):
    out = tmp_path / "x.svg"
    code = run_cli(
        "explain", "--x-shape", "1,6,6,1", "--w-shape", "3x3x1x1", "--strides", "2",
        "--padding", "0,1,0,1", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "check d_x == conv2d_backprop_input" in text and f"wrote {out}" in text
    ET.parse(out)


def test_cli_explain_bad_shape(capsys):
    assert run_cli("explain", "--x-shape", "1,5,5", "--out", "") == 2
    assert "--x-shape must have 4 values" in capsys.readouterr().err


EXAMPLE_MODULE = """
import numpy as np
import tinygrad_conv as tc
from tinygrad_conv import nn


def build_model(seed):
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding="same", seed=seed), nn.ReLU(), nn.Flatten(),
        nn.Linear(2 * 4 * 4, 3, seed=seed),
    )


def example_batch(batch_size):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch_size, 4, 4, 1)).astype(np.float32), np.arange(batch_size) % 3


if __name__ == "__main__":
    raise SystemExit("the CLI must not run the __main__ block")
"""


@needs_dot
def test_cli_draw_contract(tmp_path, capsys):
    example = tmp_path / "ex.py"
    example.write_text(EXAMPLE_MODULE)
    out = tmp_path / "g.svg"
    assert run_cli("draw", str(example), "--out", str(out), "--batch-size", "2") == 0
    msg = capsys.readouterr().out
    assert msg.startswith(f"wrote {out} (") and "loss = " in msg
    texts = " ".join(
        t.text or "" for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")
    )
    assert "0.weight" in texts and "conv2d_backprop_filter" in texts
    dot_out = tmp_path / "g.dot"
    assert run_cli("draw", str(example), "--out", str(dot_out), "--forward-only",
                   "--no-show-backward", "--collapse", "none") == 0  # fmt: skip
    assert "backward of" not in dot_out.read_text() and "subgraph" not in dot_out.read_text()


def test_cli_draw_errors(tmp_path, capsys):
    assert run_cli("draw", str(tmp_path / "nope.py")) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("def build_model(seed):\n    return None\n")
    assert run_cli("draw", str(bad), "--out", str(tmp_path / "g.dot")) == 2
    assert (
        "example_batch(batch_size) -> (x, y); example_batch is missing" in capsys.readouterr().err
    )
    assert not (tmp_path / "g.dot").exists()


@needs_dot
def test_cli_draw_train_cnn_example(tmp_path):
    path = ROOT / "examples" / "train_cnn.py"
    if not path.exists():
        pytest.skip("examples/train_cnn.py not written yet")
    out = tmp_path / "cnn.svg"
    try:
        code = run_cli("draw", str(path), "--out", str(out))
    except AttributeError as e:  # an op the example needs is not exported yet
        pytest.skip(f"train_cnn example cannot run yet: {e}")
    assert code == 0
    texts = " ".join(
        t.text or "" for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")
    )
    assert "conv2d" in texts and "weight" in texts


def test_python_dash_m_entry_point(tmp_path):
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "tinygrad_conv", "explain", "--out", ""],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "check d_w == conv2d_backprop_filter(x, w.shape, dy): OK" in proc.stdout


# ----------------------------------------------------------------------------- the README picture


def _svg_structure(svg_text: str) -> tuple[dict[str, str], list[str]]:
    """Node id -> its text lines (gradient norms masked), and the sorted edge titles."""
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svg_text)
    nodes: dict[str, str] = {}
    edges: list[str] = []
    for g in root.iter(f"{ns}g"):
        cls = g.get("class")
        title = g.find(f"{ns}title")
        if title is None:
            continue
        texts = "\n".join((t.text or "").strip() for t in g.iter(f"{ns}text"))
        texts = re.sub(r"\|g\|=[-+\d.e]+", "|g|=*", texts)
        if cls == "node":
            nodes[title.text] = texts
        elif cls == "edge":
            edges.append(title.text)
    return nodes, sorted(edges)


@needs_dot
def test_committed_readme_picture_matches_the_example(tmp_path):
    committed = ROOT / "docs" / "cnn_graph.svg"
    if not committed.exists():
        pytest.skip("docs/cnn_graph.svg not generated yet (python examples/draw_graph.py)")
    spec = importlib.util.spec_from_file_location(
        "_draw_graph_example", ROOT / "examples" / "draw_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = save_graph(module.build_drawing(), tmp_path / "fresh.svg")
    new_nodes, new_edges = _svg_structure(fresh.read_text())
    old_nodes, old_edges = _svg_structure(committed.read_text())
    assert len(new_nodes) == len(old_nodes) and len(new_edges) == len(old_edges)
    assert new_edges == old_edges
    assert new_nodes == old_nodes, "regenerate with: python examples/draw_graph.py"


def test_save_timeout_is_a_clear_error_and_leaves_nothing(tmp_path, rng, monkeypatch):
    import subprocess

    dot = draw_graph(mlp(rng)["loss"])
    monkeypatch.setattr(viz.shutil, "which", lambda name: "/usr/bin/dot")

    def slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(viz.subprocess, "run", slow)
    with pytest.raises(TimeoutError, match=r"did not finish within 1\.5 s .*19 nodes, 19 edges"):
        save_graph(dot, tmp_path / "g.svg", timeout=1.5)
    assert list(tmp_path.iterdir()) == []


def test_scalar_constant_shows_its_value_after_backward():
    x = tc.tensor([1.0, -2.0], requires_grad=True, name="x")
    y = x * 2.5
    y.sum().backward()  # the constant's array is freed; the edge kept its number
    p = parse_dot(draw_graph(y).source)
    assert "() float32\nvalue = 2.5" in labels_of(p, "t")

"""What does backward actually do? Train the train_cnn model a few steps and look inside.

    python examples/inspect_backprop.py                  # 3 steps, batch 32
    python examples/inspect_backprop.py --steps 5 --batch-size 8

For the model of ``examples/train_cnn.py`` (conv relu pool, conv relu pool, flatten, linear) this
prints

1. the loss and, per parameter, the gradient norm ||dL/dp|| at every training step;
2. for the last step, layer by layer (module path + class, in forward order): each op the layer
   recorded in the forward pass with its shapes, and under it the ops that op's ``backward``
   *called*, with their operands named by where they came from (``g`` the upstream gradient,
   ``w`` the op's input, ``#0`` an earlier call) and shapes, and which input's gradient each
   one is -- e.g. a ``conv2d`` node's backward calls ``conv2d_backprop_input(w, g)`` (d x, a
   transposed convolution) and ``conv2d_backprop_filter(x, g)`` (d w, a correlation of the
   input with the upstream gradient).

How: after an ordinary ``loss.backward()`` the graph is walked from the loss over the nodes'
``input_edges()`` (the structure survives the freeing of the arrays), and every node's
``backward_record`` (written by the engine: the calls, their operands' sources by identity, and
the source of each input's gradient) and ``scope`` (the modules that were running when it was
recorded) are read. Nothing is inferred from shapes or names.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn, optim
from tinygrad_conv.datasets import DataLoader, load_digits
from tinygrad_conv.function import Function
from tinygrad_conv.record import BackwardRecord, expressions, source_text
from tinygrad_conv.scope import module_path

TRAIN_CNN = Path(__file__).resolve().parent / "train_cnn.py"

LOSS_GROUP = "(loss)"


def load_train_cnn() -> ModuleType:
    """``examples/train_cnn.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_cnn_example", TRAIN_CNN)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the repo
        raise SystemExit(f"cannot load {TRAIN_CNN}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


# -- what is recorded ------------------------------------------------------------------------------
@dataclass
class OpRecord:
    """One graph node: its forward shapes, and its backward record (written by the engine)."""

    node: Function
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return self.node.needs_input_grad

    @property
    def record(self) -> BackwardRecord | None:
        return self.node.backward_record


@dataclass
class LayerReport:
    """The ops one module recorded in a step, and its parameters' gradient norms."""

    path: str  # module path, e.g. "3"; LOSS_GROUP for ops outside any module
    class_name: str
    description: str  # repr of the module (one line) or a note for the loss
    ops: list[OpRecord] = field(default_factory=list)
    grad_norms: dict[str, float] = field(default_factory=dict)  # parameter name -> ||grad||

    def backward_op_names(self) -> list[str]:
        """Names of every op called by the backward of this layer's nodes, in order."""
        return [c.op for op in self.ops if op.record is not None for c in op.record.calls]


def forward_graph(root: tc.Tensor) -> list[OpRecord]:
    """Every node reachable from ``root``, in forward (topological) order, with its shapes.

    Reads ``input_edges()``, so it works before and after ``backward()`` released the arrays.
    """
    order: list[OpRecord] = []
    seen: set[int] = set()
    if root.grad_fn is None:
        return order
    stack: list[tuple[Function, bool]] = [(root.grad_fn, False)]
    while stack:
        node, inputs_done = stack.pop()
        edges = node.input_edges()
        if inputs_done:
            shape, _ = node.output_info()
            order.append(OpRecord(node, tuple(e.shape for e in edges), tuple(shape)))
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for e in reversed(edges):  # reversed: first input's subgraph comes out first
            if e.grad_fn is not None and id(e.grad_fn) not in seen:
                stack.append((e.grad_fn, False))
    return order


def group_by_module(
    model: nn.Module, ops: list[OpRecord], loss_description: str = "ops outside the model"
) -> list[LayerReport]:
    """One LayerReport per module that recorded ops (model order), plus one for the ops recorded
    outside any module (the loss)."""
    modules = dict(model.named_modules())  # path -> module
    names = {id(m): path for path, m in modules.items()}
    reports: dict[str, LayerReport] = {}
    for path, m in modules.items():
        if next(m.children(), None) is None:  # leaves: the layers, in model order
            reports[path] = LayerReport(path, type(m).__name__, repr(m).splitlines()[0])
    loss = LayerReport(LOSS_GROUP, "", loss_description)
    for op in ops:
        chain = op.node.__dict__.get("scope", ())
        if not chain:
            loss.ops.append(op)
            continue
        path = module_path(chain, names)
        if path not in reports:  # ops of a container's own forward, or of a foreign module
            inner = chain[-1]
            reports[path] = LayerReport(path, type(inner).__name__, repr(inner).splitlines()[0])
        reports[path].ops.append(op)
    for path, report in reports.items():
        if path in modules:
            for pname, p in modules[path].named_parameters(recurse=False):
                if p.grad is not None:
                    g = p.grad.data.astype(np.float64)
                    report.grad_norms[pname] = float(np.sqrt(np.sum(g * g)))
    return [r for r in reports.values() if r.ops] + ([loss] if loss.ops else [])


# -- printing --------------------------------------------------------------------------------------
def shape_text(shape: tuple[int, ...]) -> str:
    """``(32, 8, 8, 1)`` -> ``[32,8,8,1]``."""
    return "[" + ",".join(str(s) for s in shape) + "]"


def _call_text(node: Function, k: int) -> str:
    """``conv2d_backprop_input(w [3,3,24,48], g [4,4,4,48]) -> [4,4,4,24]``: call ``k`` of the
    node's last backward pass, operands named by their recorded source."""
    record = node.backward_record
    assert record is not None
    call = record.calls[k]
    labels, saved = node.input_labels(), type(node).saved_names
    args = []
    for src, shape in zip(call.args, call.arg_shapes, strict=True):
        name = f"#{src.index}" if src.kind == "call" else source_text(src, labels, saved)
        args.append(f"{name} {shape_text(shape)}")
    return f"#{k} {call.op}({', '.join(args)}) -> {shape_text(call.shape)}"


def _op_lines(op: OpRecord, layer: LayerReport, first_conv_path: str | None) -> list[str]:
    node = op.node
    labels = node.input_labels()
    ins = ", ".join(f"{a} {shape_text(s)}" for a, s in zip(labels, op.input_shapes, strict=True))
    lines = [f"    {op.name}({ins}) -> {shape_text(op.output_shape)}"]
    record = op.record
    lead = "      backward: "
    pad = " " * len(lead)
    if record is None:
        return [*lines, f"{lead}did not run (no gradient reached this op)"]
    texts = [_call_text(node, k) for k in range(len(record.calls))] or ["called no op"]
    lines += [(lead if k == 0 else pad) + text for k, text in enumerate(texts)]
    exprs = expressions(record, labels, type(node).saved_names)
    for i, ig in enumerate(record.input_grads):
        if ig is None:
            continue
        summed = f"  (summed from {shape_text(ig.summed_from)})" if ig.summed_from else ""
        cast = f"  (cast from {ig.cast_from})" if ig.cast_from else ""
        lines.append(f"{pad}d {labels[i]} = {exprs[labels[i]]}{summed}{cast}")
    if op.name == "conv2d" and not op.needs_input_grad[0]:
        what = "the batch of images" if layer.path == first_conv_path else "a constant"
        lines.append(
            f"{pad}NO conv2d_backprop_input: this conv's input {shape_text(op.input_shapes[0])} is"
        )
        lines.append(f"{pad}{what} and does not require grad, so d x is never computed.")
    return lines


def format_report(layers: list[LayerReport], step: int) -> str:
    """The per-layer text for one step."""
    first_conv = next((r.path for r in layers if any(o.name == "conv2d" for o in r.ops)), None)
    out = [
        f"What backward ran at step {step}, layer by layer, in forward order (backward visits "
        "them bottom-up).",
        "Under each forward op: the ops its backward called (operands: g = the upstream gradient,",
        "an input's name = that input, #k = call k) -> result shape, then each input's gradient.",
        "",
    ]
    for layer in layers:
        if layer.path == LOSS_GROUP:
            out.append(f"{LOSS_GROUP}  {layer.description}")
        else:
            out.append(f"layer {layer.path}  {layer.description}")
        if layer.grad_norms:
            norms = "   ".join(f"||d {k}|| = {v:.4g}" for k, v in layer.grad_norms.items())
            out.append(f"    gradients: {norms}")
        for op in layer.ops:
            out.extend(_op_lines(op, layer, first_conv))
        out.append("")
    return "\n".join(out)


def format_conv_summary(layers: list[LayerReport]) -> str:
    """Which conv layers called which conv-family op in backward: the teaching point."""
    out = ["The conv family in this backward pass:"]
    for layer in layers:
        for op in layer.ops:
            if op.name != "conv2d":
                continue
            called = [c.op for c in op.record.calls] if op.record is not None else []
            out.append(f"  layer {layer.path} ({layer.class_name}): conv2d's backward called "
                       + " and ".join(called))  # fmt: skip
    first = next((op for r in layers for op in r.ops if op.name == "conv2d"), None)
    if first is not None and not first.needs_input_grad[0]:
        out.append(
            "  The first conv reads the images, which do not require grad, so the engine\n"
            "  never asks for its input gradient: conv2d_backprop_input runs only for the\n"
            "  later conv(s), whose input (an earlier layer's output) carries the gradient\n"
            "  back towards the first conv's filter."
        )
    return "\n".join(out)


def format_norm_table(history: list[dict[str, float]], shapes: dict[str, tuple[int, ...]]) -> str:
    """Rows: parameters; columns: steps."""
    header = f"  {'parameter':<12s}{'shape':<16s}" + "".join(
        f"{'step ' + str(i + 1):>11s}" for i in range(len(history))
    )
    rows = ["Gradient norms ||dL/dp|| per step:", header]
    for name, shape in shapes.items():
        vals = "".join(f"{h.get(name, math.nan):>11.4g}" for h in history)
        rows.append(f"  {name:<12s}{shape_text(shape):<16s}{vals}")
    return "\n".join(rows)


# -- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> list[LayerReport]:
    """Train a few steps, print gradient norms and what backward called; returns the last
    step's per-layer reports."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3, help="training steps (the last is inspected)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-3, help="AdamW learning rate")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--steps and --batch-size must be >= 1 and --lr > 0")

    train_cnn = load_train_cnn()
    x_train, y_train = load_digits("train", seed=args.seed)
    model = train_cnn.build_model(args.seed, image_size=x_train.shape[1])
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    print(f"The train_cnn model ({TRAIN_CNN.name}), {model.num_parameters()} parameters:")
    print("\n".join("  " + line for line in repr(model).splitlines()))
    print(f"\n{args.steps} AdamW steps on batches of {args.batch_size} digits:")

    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    history: list[dict[str, float]] = []
    layers: list[LayerReport] = []
    batches = iter(loader)
    for step in range(1, args.steps + 1):
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        loss = tc.cross_entropy(model(tc.tensor(xb)), yb)
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"loss became {value} at step {step}; try a smaller --lr")
        opt.zero_grad()
        loss.backward()
        ops = forward_graph(loss)  # the structure and the records survive the freed arrays
        history.append(
            {
                name: float(np.sqrt(np.sum(p.grad.data.astype(np.float64) ** 2)))
                for name, p in model.named_parameters()
                if p.grad is not None
            }
        )
        print(f"  step {step}  loss {value:.4f}  ({len(ops)} graph nodes)")
        if step == args.steps:
            layers = group_by_module(
                model, ops, "tc.cross_entropy(logits, labels): no module"
            )  # grads are still those of this step
        opt.step()

    print()
    print(format_norm_table(history, shapes))
    print()
    print(format_report(layers, args.steps))
    print(format_conv_summary(layers))
    return layers


if __name__ == "__main__":
    main(sys.argv[1:])

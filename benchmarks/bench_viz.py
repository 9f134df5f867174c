"""Graph-drawing benchmark: how long ``tc.draw_graph`` and ``dot`` take on big graphs.

    python benchmarks/bench_viz.py                 # chain of ~10,000 nodes + a CNN, DOT and SVG
    python benchmarks/bench_viz.py --nodes 50000   # a bigger chain
    python benchmarks/bench_viz.py --no-render     # time the DOT construction only

Workloads:

* ``chain``: ``y = y * 1.0`` repeated, so that the graph has ``--nodes`` nodes (each op adds an op
  node, its output and its scalar constant: 3 nodes, 3 edges), drawn without and with
  ``show_backward`` (after ``backward(retain_graph=True)``).
* ``cnn``: the tiny CNN of examples/draw_graph.py with ``collapse='module'`` and
  ``show_backward=True``, repeated ``--cnn-copies`` times as separate roots of one drawing.

Reported per workload: nodes, edges, median seconds of ``draw_graph`` over ``--reps`` runs, and
(unless ``--no-render``) seconds of one ``dot -Tsvg`` render through ``save_graph`` (stopped after
``--render-timeout``: Graphviz's own layout is superlinear; Debian's graphviz 2.43 needs about a
minute for a 10,000-node chain). No targets are asserted; the test suite only checks that a
10,000-node chain draws without a RecursionError.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402

import tinygrad_conv as tc  # noqa: E402
from tinygrad_conv.viz import dot_counts, draw_graph, save_graph  # noqa: E402


def chain(n_nodes: int) -> tc.Tensor:
    """A chain of mul ops with about ``n_nodes`` nodes in its drawing."""
    y = x = tc.tensor(np.ones(4, np.float32), requires_grad=True, name="x")
    for _ in range(max(1, (n_nodes - 1) // 3)):
        y = y * 1.0
    assert x.requires_grad
    return y.sum()


def cnn_losses(copies: int) -> tuple[list[tc.Tensor], list]:
    """``copies`` independent losses of the example's tiny CNN (separate models and batches)."""
    spec = importlib.util.spec_from_file_location(
        "_bench_draw_graph", ROOT / "examples" / "draw_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    losses, params = [], []
    for i in range(copies):
        model = module.TinyCNN(seed=i)
        x, y = module.example_inputs(seed=i)
        loss = tc.cross_entropy(model(x), y)
        loss.backward(retain_graph=True)
        losses.append(loss)
        params += [(f"m{i}.{name}", p) for name, p in model.named_parameters()]
    return losses, params


def timed(fn, reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(name: str, make, reps: int, render: bool, tmp: Path, render_timeout: float) -> None:
    seconds, dot = timed(make, reps)
    nodes, edges = dot_counts(dot.source)
    line = f"{name:<28} {nodes:>7} nodes {edges:>7} edges   draw_graph {seconds:7.3f} s"
    if render:
        t0 = time.perf_counter()
        try:
            save_graph(dot, tmp / f"{name}.svg", timeout=render_timeout)
            line += f"   dot -Tsvg {time.perf_counter() - t0:7.2f} s"
        except TimeoutError:
            line += f"   dot -Tsvg > {render_timeout:.0f} s (stopped)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="size of the chain drawing")
    parser.add_argument("--cnn-copies", type=int, default=20, help="CNN graphs in one drawing")
    parser.add_argument("--reps", type=int, default=3, help="draw_graph repetitions (median)")
    parser.add_argument("--no-render", action="store_true", help="skip the dot renders")
    parser.add_argument(
        "--render-timeout", type=float, default=120.0, help="seconds allowed per dot render"
    )
    args = parser.parse_args()

    loss = chain(args.nodes)
    losses, params = cnn_losses(args.cnn_copies)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        render = not args.no_render
        rt = args.render_timeout
        run("chain", lambda: draw_graph(loss, rankdir="LR"), args.reps, render, tmp, rt)
        loss.backward(retain_graph=True)
        run(
            "chain show_backward",
            lambda: draw_graph(loss, show_backward=True, rankdir="LR"),
            args.reps,
            render,
            tmp,
            rt,
        )
        run(
            f"cnn x{args.cnn_copies} collapse+backward",
            lambda: draw_graph(*losses, params=params, collapse="module", show_backward=True),
            args.reps,
            render,
            tmp,
            rt,
        )


if __name__ == "__main__":
    main()

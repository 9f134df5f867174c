"""micrograd's classic expression, drawn from what the engine recorded (docs/micrograd_graph.svg).

    python examples/micrograd_expression.py                 # writes docs/micrograd_graph.svg
    python examples/micrograd_expression.py --out expr.png  # any of .svg .png .pdf .dot

L = (a * b + c) * f with a = 2, b = -3, c = 10, f = -2, as in micrograd's README. After
``L.backward()`` every box shows its value and its gradient, signed (b.grad = -4, not a norm of
4), and every op's note shows what its backward called, e.g. for ``e = a * b``:
``#0 = mul(g, b)``, ``#1 = mul(g, a)``, ``d a = mul(g, b)``, ``d b = mul(g, a)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import graphviz

import tinygrad_conv as tc

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "micrograd_graph.svg"


def build() -> dict[str, tc.Tensor]:
    """The expression's tensors (float64 scalars), after ``L.backward()``."""
    a = tc.tensor(2.0, dtype="float64", requires_grad=True, name="a")
    b = tc.tensor(-3.0, dtype="float64", requires_grad=True, name="b")
    c = tc.tensor(10.0, dtype="float64", requires_grad=True, name="c")
    f = tc.tensor(-2.0, dtype="float64", requires_grad=True, name="f")
    e = a * b
    e.name = "e"
    d = e + c
    d.name = "d"
    loss = d * f
    loss.name = "L"
    for t in (e, d, loss):
        t.retain_grad()  # micrograd keeps every node's grad; here intermediates ask for it
    loss.backward()
    return {"a": a, "b": b, "c": c, "f": f, "e": e, "d": d, "L": loss}


def build_drawing() -> graphviz.Digraph:
    """The drawing of the expression with values, gradients and backward notes."""
    tensors = build()  # held while drawing: values show for tensors that are alive
    return tc.draw_graph(tensors["L"], show_backward=True, show_values=True, rankdir="LR")


def main() -> None:
    """Write the drawing (default docs/micrograd_graph.svg)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output: .svg .png .pdf .dot")
    args = parser.parse_args()
    print(f"wrote {tc.save_graph(build_drawing(), args.out)}")


if __name__ == "__main__":
    main()

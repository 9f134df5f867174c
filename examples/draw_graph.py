"""Draw a tiny CNN's forward and backward graph (the picture in the README: docs/cnn_graph.svg).

    python examples/draw_graph.py                        # writes docs/cnn_graph.svg
    python examples/draw_graph.py --out cnn.png          # any of .svg .png .pdf .dot
    python examples/draw_graph.py --double-backward      # also the graph of d(loss)/dx itself

The model (NHWC): conv 3x3 stride 2 (1->4) + relu -> conv 3x3 stride 2 (4->8) + relu -> flatten ->
linear (-> 3 classes), on a batch of 2 random 8x8 images. One forward pass and one plain
``backward()`` run (no training; the graph's structure and the engine's backward records survive
the freeing of its arrays); the drawing then shows

* every tensor with its shape and dtype, parameters by their module path (``features.0.weight``)
  with their gradient's norm, min and max;
* every op with its attributes (``conv2d  strides=2  padding=SAME``);
* for every op, a note with what its backward did, as the engine recorded it: the calls with
  their operands (Conv2D's: ``#0 = conv2d_backprop_input(w, g)``, ``#1 =
  conv2d_backprop_filter(x, g)``) and the expression of each input's gradient;
* each module's ops grouped in a cluster.

``build_drawing()`` is what the test suite regenerates and compares (structure, not pixels) with
the committed docs/cnn_graph.svg.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import graphviz
import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn
from tinygrad_conv.viz import draw_graph, save_graph

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "cnn_graph.svg"


class TinyCNN(nn.Module):
    """conv(s2) relu conv(s2) relu flatten linear; input [N, 8, 8, 1] -> logits [N, 3]."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, strides=2, padding="same", seed=rng),
            nn.ReLU(),
            nn.Conv2d(4, 8, 3, strides=2, padding="same", seed=rng),
            nn.ReLU(),
        )
        self.flatten = nn.Flatten()
        self.head = nn.Linear(2 * 2 * 8, 3, seed=rng)

    def forward(self, x: tc.Tensor) -> tc.Tensor:
        """[N, 8, 8, 1] -> [N, 3]."""
        return self.head(self.flatten(self.features(x)))


def example_inputs(seed: int = 0) -> tuple[tc.Tensor, np.ndarray]:
    """A fixed batch: x [2, 8, 8, 1] float32 (named "x") and integer labels [2]."""
    rng = np.random.default_rng(seed)
    x = tc.tensor(rng.standard_normal((2, 8, 8, 1)).astype(np.float32), name="x")
    return x, np.array([0, 2])


def build_drawing(double_backward: bool = False) -> graphviz.Digraph:
    """The forward + backward drawing of the tiny CNN (deterministic: seeded model and data).

    With ``double_backward``, the input gradient is computed with ``create_graph=True`` and its own
    graph (made of conv2d_backprop_input nodes and friends) is drawn next to the loss.
    """
    model = TinyCNN(seed=0)
    x, y = example_inputs(seed=0)
    if double_backward:
        x.requires_grad_(True)
    loss = tc.cross_entropy(model(x), y)
    loss.name = "loss"
    roots = [loss]
    if double_backward:
        (dx,) = tc.grad(loss, [x], create_graph=True)
        dx.name = "d loss / d x"
        roots.append(dx)
    loss.backward()
    return draw_graph(
        *roots, params=model.named_parameters(), show_backward=True, collapse="module"
    )


def main() -> None:
    """Write the drawing (default docs/cnn_graph.svg)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output: .svg .png .pdf .dot")
    parser.add_argument("--double-backward", action="store_true", help="also draw d loss/d x")
    args = parser.parse_args()
    dot = build_drawing(args.double_backward)
    path = save_graph(dot, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""examples/inspect_backprop.py says when the engine cast a gradient to its input's dtype, as the
drawings and the explorer do (the record's cast_from)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

import tinygrad_conv as tc

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inspect_backprop.py"


def _load():
    spec = importlib.util.spec_from_file_location("example_inspect_backprop_cast", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_op_lines_name_the_cast_and_the_sum():
    ib = _load()
    x = tc.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = tc.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * b).sum()
    y.backward()
    (mul,) = [op for op in ib.forward_graph(y) if op.name == "mul"]
    layer = ib.LayerReport("", "", "")
    assert ib._op_lines(mul, layer, None) == [
        "    mul(a [2,3], b [3]) -> [2,3]",
        "      backward: #0 mul(g [2,3], b [3]) -> [2,3]",
        "                #1 mul(g [2,3], a [2,3]) -> [2,3]",
        "                d a = mul(g, b)  (cast from float64)",
        "                d b = mul(g, a)  (summed from [2,3])",
    ]

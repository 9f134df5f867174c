"""Drawings never show values that an in-place op wrote after the forward as if the forward had
used them (an SGD step after backward, a constant filled after use)."""

from __future__ import annotations

import numpy as np

import tinygrad_conv as tc


def _labels(graph) -> list[str]:
    return [line.strip() for line in graph.source.splitlines() if "label=" in line]


def test_leaf_updated_after_backward_is_drawn_as_changed():
    w = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w.name = "w"
    y = w * 3
    y.sum().backward(retain_graph=True)
    with tc.no_grad():
        w -= 0.5 * w.grad  # the SGD step: w is now [-0.5, 0.5]; y was computed from [1, 2]
    labels = _labels(tc.draw_graph(y, show_values=True))
    assert any(
        'label="w\\n(2,) float64\\ndata now = [-0.5, 0.5]\\n(changed in place after the forward '
        'used it)\\ngrad = [3, 3]"' in line
        for line in labels
    ), labels
    assert any('data = [3, 6]"' in line for line in labels), labels  # y as computed


def test_unchanged_tensor_keeps_plain_data_line():
    w = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w.name = "w"
    labels = _labels(tc.draw_graph(w * 3, show_values=True))
    assert any('label="w\\n(2,) float64\\ndata = [1, 2]"' in line for line in labels), labels


def test_scalar_constant_filled_after_use_keeps_no_value():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = tc.tensor(np.array(2.0))
    y = x + c
    c.fill_(5.0)  # y used 2; nothing may say 5 was its input
    y.sum().backward()
    assert [e.value for e in y.grad_fn.input_edges()] == [None, None]
    assert not any("value = 5" in line for line in _labels(tc.draw_graph(y)))
    d = tc.tensor(np.array(2.0))
    z = x * d
    z.sum().backward()
    assert [e.value for e in z.grad_fn.input_edges()] == [None, 2.0]
    assert any("value = 2" in line for line in _labels(tc.draw_graph(z)))


def test_explorer_drops_the_value_of_a_constant_changed_after_use():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = tc.tensor(np.array(2.0))
    y = (x + c).sum()
    c.fill_(5.0)
    consts = [r for r in tc.explore(y).data["tensors"] if r["kind"] == "const"]
    assert consts == [
        {
            "name": "",
            "shape": [],
            "dtype": "float64",
            "kind": "const",
            "producer": -1,
            "cluster": -1,
        }
    ]
    d = tc.tensor(np.array(2.0))
    x2 = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    consts = [r for r in tc.explore((x2 + d).sum()).data["tensors"] if r["kind"] == "const"]
    assert [r.get("value") for r in consts] == [2.0]

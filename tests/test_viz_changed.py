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


def test_input_replaced_by_inplace_op_with_grad_is_drawn_as_the_state_the_node_used():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.name = "x"
    a = x * 2
    a.name = "a"
    b = a * 3  # uses a = [2, 4]
    a += 1  # a's object now holds add(a_old, 1) = [3, 5]
    b_node = b.grad_fn
    edge = b_node.input_edges()[0]
    assert edge.grad_fn.name == "mul" and edge.grad_fn is not a.grad_fn  # x * 2, not the add
    np.testing.assert_array_equal(edge.tensor.data, [2.0, 4.0])
    loss = (a + b).sum()
    labels = _labels(tc.draw_graph(loss, show_values=True))
    assert not any("data now" in line for line in labels), labels
    assert sum('label="a\\n(2,) float64\\ndata = [2, 4]"' in line for line in labels) == 1
    assert sum('label="a\\n(2,) float64\\ndata = [3, 5]"' in line for line in labels) == 1
    loss.backward()
    np.testing.assert_array_equal(x.grad.data, [8.0, 8.0])  # d/dx (2x + 1 + 6x)
    assert b_node.input_edges()[0].grad_fn is edge.grad_fn  # the same after release

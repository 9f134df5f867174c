"""A hook that replaces a gradient (register_hook) is visible in the trace and on the explorer
page: the upstream a node's backward received is then not the sum of what arrived."""

from __future__ import annotations

import numpy as np

import tinygrad_conv as tc


def test_trace_marks_the_step_whose_upstream_a_hook_replaced():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    z = y.sum()
    with tc.record_backward(values=True) as trace:
        z.backward()
    np.testing.assert_array_equal(x.grad.data, [30.0, 30.0])
    assert [(s.node.name, s.hooked) for s in trace.steps] == [("sum", False), ("mul", True)]
    np.testing.assert_array_equal(trace.steps[0].input_grad_values[0], [1.0, 1.0])  # arrived
    np.testing.assert_array_equal(trace.steps[1].upstream, [10.0, 10.0])  # what the hook gave


def test_a_hook_that_returns_none_replaces_nothing():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    seen = []
    y.register_hook(seen.append)
    with tc.record_backward() as trace:
        y.sum().backward()
    assert len(seen) == 1
    assert [s.hooked for s in trace.steps] == [False, False]


def test_explorer_page_says_which_step_a_hook_changed():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 10)
    ex = tc.explore(y.sum())
    assert ex.data["notes"] == [
        "A hook (register_hook) replaced the gradient flowing into mul (step 2): its upstream "
        "gradient is what the hook returned, not the sum of the contributions that arrived."
    ]
    x2 = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert tc.explore((x2 * 3).sum()).data["notes"] == []

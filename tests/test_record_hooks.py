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


def test_explorer_page_step_text_says_the_hook_replaced_g(browser, tmp_path):
    from browser import console_errors
    from test_explore_browser import load

    a = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = a * 3
    c = b + b  # b receives two contributions, then its hook replaces their sum
    b.register_hook(lambda g: g * 10)
    d = a * 5
    d.register_hook(lambda g: g * 2)  # one contribution, replaced
    ex = tc.explore((c + d).sum(), path=tmp_path / "hooks.html")
    load(browser, tmp_path / "hooks.html")
    texts = {}
    for i in range(len(ex.trace.steps)):
        browser.execute_script(f"window.tcExplorer.goto({i})")
        up = browser.find_element("css selector", "#upstream")
        texts[i] = [p.text for p in up.find_elements("css selector", "p.acc")]
    hooked = {i for i, s in enumerate(ex.trace.steps) if s.hooked}
    assert len(hooked) == 2
    for i, lines in texts.items():
        if i not in hooked:
            assert not any("hook" in t for t in lines)
    lines = sorted(t.split(",")[0] for i in hooked for t in texts[i])
    assert lines == [
        "g is what a hook (register_hook) returned for the gradient that arrived",
        "g is what a hook (register_hook) returned for the sum of 2 contributions",
    ]
    assert console_errors(browser) == []

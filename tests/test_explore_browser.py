"""The backprop explorer in headless Chromium: pages written by tc.explore, keys pressed, the DOM
checked against the Python trace (tests/browser.py, fixture ``browser`` in conftest.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser import console_errors, open_page, open_ready, outside_requests, wait_ready
from test_explore import conv_model, diamond

import tinygrad_conv as tc


def js_num(v: float) -> str:
    """The page's number format (explorer.js ``num``) for values in [1e-4, 1e6): four significant
    digits, no trailing zeros, integers without a point."""
    r = float(f"{v:.4g}")
    return str(int(r)) if r.is_integer() else repr(r)


def load(browser, path) -> None:
    open_ready(browser, path)


def press(browser, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(browser).send_keys(getattr(Keys, key)).perform()


def current(browser):
    """The graph element carrying the CSS class ``current`` (exactly one)."""
    found = browser.find_elements("css selector", "#graph .current")
    assert len(found) == 1
    return found[0]


@pytest.fixture
def diamond_page(tmp_path):
    a, loss = diamond()
    ex = tc.explore(loss, path=tmp_path / "diamond.html")
    return ex, tmp_path / "diamond.html"


def test_arrow_keys_step_in_trace_order(browser, diamond_page):
    ex, page = diamond_page
    load(browser, page)
    ops = [s.node.name for s in ex.trace.steps]
    state = browser.execute_script("return window.tcExplorer.state()")
    assert (state["step"], state["nsteps"], state["op"]) == (0, len(ops), ops[0])
    for i, op in enumerate(ops):
        if i:
            press(browser, "ARROW_RIGHT")
        state = browser.execute_script("return window.tcExplorer.state()")
        assert (state["step"], state["op"]) == (i, op)
        assert current(browser).get_attribute("data-op") == op
        title = browser.find_element("id", "step-title").text
        assert title == f"step {i + 1} of {len(ops)}: backward of {op}"
    press(browser, "ARROW_RIGHT")  # past the end: stays on the last step
    assert browser.execute_script("return window.tcExplorer.state().step") == len(ops) - 1
    press(browser, "ARROW_LEFT")
    assert browser.execute_script("return window.tcExplorer.state().step") == len(ops) - 2
    assert current(browser).get_attribute("data-op") == ops[-2]
    browser.find_element("id", "btn-back").click()
    browser.find_element("id", "btn-step").click()
    browser.find_element("id", "btn-step").click()
    assert browser.execute_script("return window.tcExplorer.state().op") == ops[-1]
    for i in (2, 0, 1):
        assert browser.execute_script(f"return window.tcExplorer.goto({i}).op") == ops[i]
        assert current(browser).get_attribute("data-op") == ops[i]
    assert browser.execute_script("return window.tcExplorer.step().step") == 2
    assert browser.execute_script("return window.tcExplorer.back().step") == 1
    assert console_errors(browser) == []
    assert outside_requests(browser, page) == []


def test_diamond_shows_two_contributions_and_the_numbers(browser, diamond_page):
    ex, page = diamond_page
    load(browser, page)
    add = [s.index for s in ex.trace.steps if s.node.name == "add"][0]
    browser.execute_script(f"window.tcExplorer.goto({add})")
    boxes = browser.find_elements("css selector", "#grads .acc")
    assert [(b.get_attribute("data-count"), b.get_attribute("data-arrival")) for b in boxes] == [
        ("2", "1"),
        ("2", "2"),
    ]
    assert (
        boxes[0]
        .find_element("tag name", "p")
        .text.startswith("contribution 1 of 2 arriving at a (3, 3)")
    )
    # the numbers of a 3x3 gradient: d a as sent by the add step, cell by cell
    sent = ex.trace.steps[add].input_grad_values[0]
    cells = browser.find_elements(
        "css selector", '#grads .grad[data-input="a"] > .value table.numbers td'
    )
    assert [c.text for c in cells] == [js_num(v) for v in sent.ravel()]
    # the running sum after the second contribution is the total that reaches a.grad
    total = boxes[1].find_elements("css selector", "table.numbers td")
    (event,) = ex.trace.accumulations
    assert [c.text for c in total] == [js_num(v) for v in event.total.ravel()]
    assert [js_num(v) for v in event.total.ravel()] != [js_num(v) for v in sent.ravel()]
    stats = browser.find_element("css selector", '#grads .grad[data-input="a"] .stats')
    stats = stats.get_attribute("textContent")
    assert stats == (
        f"(3, 3) float64   min {js_num(sent.min())}   max {js_num(sent.max())}   "
        f"norm {js_num(float(np.linalg.norm(sent)))}"
    )
    assert outside_requests(browser, page) == []


def test_modules_collapse_and_conv_step(browser, tmp_path):
    model, loss = conv_model()
    page = tmp_path / "cnn.html"
    ex = tc.explore(loss, params=model.named_parameters(), path=page, labs=True)
    load(browser, page)
    boxes = browser.find_elements("css selector", "#graph .node.box")
    assert sorted(b.get_attribute("data-label") for b in boxes) == [
        "0: Conv2d",
        "1: ReLU",
        "2: Flatten",
        "3: Linear",
    ]
    assert browser.find_elements("css selector", '#graph .node[data-op="conv2d"]') == []
    # clicking a box opens it: its ops are drawn inside a group
    [b for b in boxes if b.get_attribute("data-label") == "0: Conv2d"][0].click()
    assert len(browser.find_elements("css selector", '#graph .node[data-op="conv2d"]')) == 1
    assert len(browser.find_elements("css selector", "#graph .group")) == 1
    browser.find_element("css selector", "#graph .group-title").click()
    assert browser.find_elements("css selector", "#graph .group") == []
    # stepping to the conv opens its box and names the backprop op with its geometry
    conv = [s.index for s in ex.trace.steps if s.node.name == "conv2d"][0]
    browser.execute_script(f"window.tcExplorer.goto({conv})")
    assert current(browser).get_attribute("data-op") == "conv2d"
    rows = browser.find_elements("css selector", "#calls tr.call")
    assert [r.get_attribute("data-op") for r in rows] == ["conv2d_backprop_filter"]
    assert rows[0].find_element("css selector", ".attrs").get_attribute("textContent") == (
        "filter_shape=(3, 3, 1, 8)   strides=2,2 pads 1,1,1,1 dilations=1,1"
    )
    assert browser.find_element("css selector", "#step-pane > .attrs").get_attribute(
        "textContent"
    ) == ("strides=2,2 padding=SAME (pads 1,1,1,1) dilations=1,1")
    link = browser.find_element("css selector", "#lab a.lablink")
    assert link.get_attribute("href").endswith("/conv_lab_5x5_k3x3_s2x2_pSAME_d1x1.html")
    # the filter gradient (3, 3, 1, 8) is a heatmap of kh x kw for one (in, out) pair
    grad = browser.find_element("css selector", '#grads .grad[data-input="w"]')
    labels = [e.text for e in grad.find_elements("css selector", ".slice label")]
    assert labels == ["out of 8"]
    canvas = grad.find_element("tag name", "canvas")
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("66", "66")
    # the upstream gradient (2, 3, 3, 8) is NHWC: H x W for one image and one channel
    up = browser.find_element("id", "upstream")
    labels = [e.text for e in up.find_elements("css selector", ".slice label")]
    assert labels == ["n of 2", "c of 8"]
    # choosing another channel repaints; hovering a cell shows its index and value
    g = ex.trace.steps[conv].upstream
    inp = up.find_element("css selector", '.slice input[data-axis="3"]')
    inp.clear()
    inp.send_keys("5")
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = up.find_element("tag name", "canvas")
    ActionChains(browser).move_to_element_with_offset(canvas, -22, 0).perform()  # cell (1, 0)
    assert (
        up.find_element("css selector", ".hover").text == f"[0, 1, 0, 5] = {js_num(g[0, 1, 0, 5])}"
    )
    assert console_errors(browser) == []
    assert outside_requests(browser, page) == []


def test_numbers_dropped_note_and_no_steps(browser, tmp_path):
    model, loss = conv_model()
    page = tmp_path / "small.html"
    tc.explore(loss, path=page, max_values=10)
    load(browser, page)
    note = browser.find_element("css selector", "#notes .note").text
    assert note.startswith("This trace holds ") and "the numbers were dropped" in note
    assert browser.find_elements("css selector", "table.numbers") == []
    assert browser.find_elements("css selector", "canvas") == []
    # a loss that is itself a leaf: backward runs no node, the page says so
    leaf = tc.tensor(np.ones(1), requires_grad=True)
    page2 = tmp_path / "leaf.html"
    tc.explore(leaf, path=page2)
    load(browser, page2)
    state = browser.execute_script("return window.tcExplorer.state()")
    assert (state["step"], state["nsteps"], state["op"]) == (-1, 0, None)
    assert browser.find_element("id", "step-pane").text.startswith("The loss is a leaf")
    assert browser.execute_script("return window.tcExplorer.step().step") == -1
    assert console_errors(browser) == []


def test_benchmark_script_runs_small(capsys):
    """benchmarks/bench_explore.py on 3 modules x 4 ops (the 10,000-op figure is its default)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_explore.py"
    spec = importlib.util.spec_from_file_location("_bench_explore", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--modules", "3", "--ops", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graph: 13 ops, ")
    assert "13 steps, 3 module boxes" in out
    assert re.search(r"chromium: first render [0-9.]+ s after the navigation started", out)
    assert out.rstrip().endswith("requests leaving the page: 0")


def test_inline_iframe_renders_and_steps(browser, tmp_path, diamond_page):
    """``_repr_html_`` (Jupyter) is an iframe holding the same page: it renders and steps."""
    ex, _ = diamond_page
    host = tmp_path / "notebook.html"
    host.write_text("<!DOCTYPE html><html><body>" + ex._repr_html_() + "</body></html>")
    open_page(browser, host)
    browser.switch_to.frame(browser.find_element("tag name", "iframe"))
    try:
        wait_ready(browser)
        state = browser.execute_script("return window.tcExplorer.goto(2)")
        assert (state["step"], state["op"]) == (2, ex.trace.steps[2].node.name)
        assert current(browser).get_attribute("data-op") == "add"
    finally:
        browser.switch_to.default_content()
    assert outside_requests(browser, host) == []


def test_large_flat_graph_draws_a_window_that_follows_the_step(browser, tmp_path):
    """1,000 ops and no modules: too many to lay out at once; a window of DRAW_LIMIT = 600
    items around the current step is drawn and moves with it."""
    x = tc.tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(1000):
        y = y * 1.001
    page = tmp_path / "chain.html"
    ex = tc.explore(y.sum(), path=page)
    load(browser, page)
    state = browser.execute_script("return window.tcExplorer.state()")
    assert state["nsteps"] == 1001 and state["drawnNodes"] == 600
    note = browser.find_element("id", "window-note").text
    assert note.startswith("The graph has 1002 items at this level: drawn are the 600 around")
    assert browser.find_elements("css selector", '#graph [data-id="op900"]') == []
    for i in (900, 1000, 0, 450):
        state = browser.execute_script(f"return window.tcExplorer.goto({i})")
        assert state["op"] == ex.trace.steps[i].node.name
        assert current(browser).get_attribute("data-id") == state["node"]
    assert console_errors(browser) == []

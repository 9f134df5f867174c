"""The conv lab page in headless Chromium: it loads offline, steps, plays, and hovering a cell
highlights exactly the contributors that the lab's frame data names (in every view)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from browser import console_errors, open_ready, outside_requests
from lab_dom import cells as _cells
from lab_dom import keys as _keys
from lab_dom import texts as _texts
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import tinygrad_conv as tc


def _key(name: str, idx) -> str:
    return name + ":" + ",".join(str(int(v)) for v in idx)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(float(f"{v:.3g}"))


@pytest.fixture(scope="module")
def page(tmp_path_factory, browser):
    lab = tc.conv_lab((1, 5, 5, 2), (3, 3, 1, 2), 2, "SAME", seed=0)  # groups = 2
    path = lab.save_html(tmp_path_factory.mktemp("lab") / "lab.html")
    open_ready(browser, path)
    return browser, lab, path


def test_page_is_offline_and_error_free(page):
    driver, lab, path = page
    assert driver.execute_script("return document.body.dataset.ready") == "1"
    assert outside_requests(driver, path) == []
    assert console_errors(driver) == []
    assert "groups 2" in driver.find_element(By.ID, "summary").text
    titles = [e.text for e in _cells(driver, "#anim-forward .grid[data-grid='x'] .plane-title")]
    assert titles == ["n=0 c=0 (group 0)", "n=0 c=1 (group 1)"]
    assert "input heights giving output 3: 5, 6" in driver.find_element(By.ID, "oracle-text").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#overlap tr")
    shown = [[int(td.text) for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    assert shown == lab.oracle.overlap.astype(int).tolist()


def test_step_shows_the_frame_and_the_running_sums(page):
    driver, lab, _ = page
    sec = "#anim-forward"
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.reset").click()
    for _ in range(3):
        driver.find_element(By.CSS_SELECTOR, f"{sec} button.step").click()
    assert driver.find_element(By.CSS_SELECTOR, f"{sec} .frame-label").text == (
        f"frame 3 / {len(lab.forward.frames)}"
    )
    f = lab.forward.frames[2]
    assert _keys(_cells(driver, f"{sec} td.cur-src")) == {_key("x", s) for s in f.sources}
    assert _keys(_cells(driver, f"{sec} td.cur-tap")) == {_key("w", t) for t in f.taps}
    assert _keys(_cells(driver, f"{sec} td.cur-tgt")) == {_key("y", f.index)}
    # y holds the sums of frames 0..2, other cells are still empty
    part = lab.forward.partial(2)
    done = {_key("y", fr.index) for fr in lab.forward.frames[:3]}
    for key, text in _texts(driver, "forward", "y").items():
        idx = tuple(int(v) for v in key.split(":")[1].split(","))
        assert text == (_fmt(part[idx]) if key in done else ""), key
    eq = driver.find_element(By.CSS_SELECTOR, f"{sec} .eq").text
    assert eq.startswith(f"y[{','.join(map(str, f.index))}] = ") and eq.endswith(
        f"= {_fmt(f.partial[-1])}"
    )
    run = driver.find_element(By.CSS_SELECTOR, f"{sec} .running").text
    assert run == "running sum: " + " \u2192 ".join(_fmt(v) for v in f.partial)
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.back").click()
    assert driver.find_element(By.CSS_SELECTOR, sec).get_attribute("data-frame") == "1"
    # the keyboard steps the animation last pointed at
    driver.find_element(By.CSS_SELECTOR, f"{sec} .eq").click()
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert driver.find_element(By.CSS_SELECTOR, sec).get_attribute("data-frame") == "3"
    body.send_keys(Keys.ARROW_LEFT)
    assert driver.find_element(By.CSS_SELECTOR, sec).get_attribute("data-frame") == "2"


def test_input_grad_views_step_together(page):
    driver, lab, _ = page
    sec = "#anim-input_grad"
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.reset").click()
    for _ in range(4):
        driver.find_element(By.CSS_SELECTOR, f"{sec} button.step").click()
    scat, gath = _texts(driver, "input_grad", "dx"), _texts(driver, "input_grad", "dxg")
    assert scat == gath and any(scat.values())
    part = lab.input_grad.partial(3, "scatter")
    touched = {_key("dx", t) for f in lab.input_grad.frames[:4] for t in f.targets[f.kept]}
    for key, text in scat.items():
        idx = tuple(int(v) for v in key.split(":")[1].split(","))
        assert text == (_fmt(part[idx]) if key in touched else ""), key
    g = lab.input_grad.view("gather").frames[3]
    src = _keys(_cells(driver, f"{sec} .view[data-view='gather'] td.cur-src"))
    assert src == {_key("zfull", s) for s in g.sources}


def test_play_runs_to_the_end_and_shows_the_result(page):
    driver, lab, _ = page
    sec = "#anim-filter_grad"
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.reset").click()
    driver.execute_script(
        "const s = document.querySelector(arguments[0]); s.value = '150'; s.onchange();",
        f"{sec} select.speed",
    )
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.play").click()
    assert driver.find_element(By.CSS_SELECTOR, sec).get_attribute("data-playing") == "1"
    n = len(lab.filter_grad.frames)
    deadline = time.time() + 30
    el = driver.find_element(By.CSS_SELECTOR, sec)
    while time.time() < deadline and el.get_attribute("data-playing") == "1":
        time.sleep(0.2)
    assert el.get_attribute("data-frame") == str(n - 1)
    texts = _texts(driver, "filter_grad", "dw")
    for key, text in texts.items():
        idx = tuple(int(v) for v in key.split(":")[1].split(","))
        assert text == _fmt(lab.filter_grad.result[idx])


def _hover(driver, css: str) -> set[str]:
    el = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    ActionChains(driver).move_to_element(el).perform()
    return _keys(_cells(driver, "td.cell.hl"))


def test_hover_highlights_the_contributors_the_frames_name(page):
    driver, lab, _ = page
    # a y cell: its frame's x cells and w taps
    f = lab.forward.frames[5]
    got = _hover(driver, f"#anim-forward td[data-key='{_key('y', f.index)}']")
    assert got == {_key("x", s) for s in f.sources} | {_key("w", t) for t in f.taps}
    # a d_x cell (hovered in the scatter view): the dy elements and w taps that stamp it, and in
    # the gather view the zfull cells and rot180(w) taps of its window that hold dy values
    target = (0, 2, 1, 1)
    want: set[str] = set()
    for vkey, sname, tname in (("scatter", "dy", "w"), ("gather", "zfull", "wrot")):
        for fr in lab.input_grad.view(vkey).frames:
            for t, s, p in zip(fr.targets, fr.sources, fr.taps, strict=True):
                if tuple(t) == target:
                    want |= {_key(sname, s), _key(tname, p)}
    assert len(want) > 2
    css = f"#anim-input_grad .view[data-view='scatter'] td[data-key='{_key('dx', target)}']"
    got = _hover(driver, css)
    assert got == want
    # both d_x grids mark the hovered cell
    assert len(_cells(driver, "#anim-input_grad td.hover")) == 2
    # a dw cell: the x cells and dy elements its correlation reads
    fg = lab.filter_grad.frames[7]
    got = _hover(driver, f"#anim-filter_grad td[data-key='{_key('dw', fg.index)}']")
    assert got == {_key("x", s) for s in fg.sources} | {_key("dy", t) for t in fg.taps}
    assert np.isclose(fg.partial[-1], lab.filter_grad.result[fg.index])

"""The 1-D and 3-D conv lab pages in headless Chromium: they load offline without errors, draw
1-D grids as one row and 3-D grids as one panel per depth slice (titled with the depth index),
step, play to the end, and hovering a cell highlights exactly the contributors the frame data
names (in every view)."""

from __future__ import annotations

import time

import pytest
from browser import console_errors, open_ready, outside_requests
from lab_dom import cells as _cells
from lab_dom import keys as _keys
from lab_dom import texts as _texts
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

import tinygrad_conv as tc

LABS = {
    # 1-D: stride 2 with dilation 2, SAME, groups = 2
    "1d": ((1, 7, 2), (2, 1, 2), 2, "SAME", 2),
    # 3-D: explicit pads (a front depth pad), stride 2 along depth, dilation 2 along width
    "3d": ((1, 3, 3, 4, 1), (2, 2, 2, 1, 1), (2, 1, 1), [[1, 0], [0, 0], [1, 1]], (1, 1, 2)),
}


def _key(name: str, idx) -> str:
    return name + ":" + ",".join(str(int(v)) for v in idx)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(float(f"{v:.3g}"))


@pytest.fixture(scope="module", params=sorted(LABS))
def page(request, tmp_path_factory, browser):
    xs, ws, s, p, d = LABS[request.param]
    lab = tc.conv_lab(xs, ws, s, p, d, seed=4)
    path = lab.save_html(tmp_path_factory.mktemp("lab") / f"lab{request.param}.html")
    open_ready(browser, path)
    return browser, lab, path


def test_page_loads_and_draws_every_cell_once(page):
    driver, lab, path = page
    assert driver.execute_script("return document.body.dataset.ready") == "1"
    assert outside_requests(driver, path) == []
    assert console_errors(driver) == []
    # every cell of every grid is drawn once, keyed by its full index
    for a in lab.animations:
        for gk, g in a.grids.items():
            if gk in ("dxg",):
                continue
            keys = _keys(_cells(driver, f"#anim-{a.name} .grid[data-grid='{gk}'] td.cell"))
            assert len(keys) == g.values.size, (a.name, gk)
    xgrid = lab.forward.grids["x"]
    if lab.rank == 1:
        # one row per plane, planes (n, c) with their group
        tables = _cells(driver, "#anim-forward .grid[data-grid='x'] table")
        assert len(tables) == 2 and all(
            len(t.find_elements(By.TAG_NAME, "tr")) == 1 for t in tables
        )
        titles = [e.text for e in _cells(driver, "#anim-forward .grid[data-grid='x'] .plane-title")]
        assert titles == ["n=0 c=0 (group 0)", "n=0 c=1 (group 1)"]
        first = _cells(driver, "#anim-forward .grid[data-grid='x'] td.cell")[0]
        assert first.get_attribute("data-key") == _key("x", (0, xgrid.offset[0], 0))
        assert "pad" in first.get_attribute("class")
    else:
        # one panel per depth slice, titled with the depth in x's own coordinates (front pad -1)
        titles = [e.text for e in _cells(driver, "#anim-forward .grid[data-grid='x'] .slice-title")]
        assert titles == ["d=-1", "d=0", "d=1", "d=2"]
        pad_slice = _cells(driver, "#anim-forward .grid[data-grid='x'] .slice[data-depth='-1'] td")
        assert pad_slice and all("pad" in td.get_attribute("class") for td in pad_slice)
        assert {td.get_attribute("data-key").split(",")[1] for td in pad_slice} == {"-1"}
        wt = [e.text for e in _cells(driver, "#anim-forward .grid[data-grid='w'] .slice-title")]
        assert wt == ["kd=0", "kd=1"]
        ov = [e.text for e in _cells(driver, "#overlap .slice-title")]
        assert ov == [f"d={i}" for i in range(3)]
        shown = [
            [[int(td.text) for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in t.find_elements(By.TAG_NAME, "tr")]
            for t in _cells(driver, "#overlap table")
        ]  # fmt: skip
        assert shown == lab.oracle.overlap.astype(int).tolist()


def test_step_marks_the_frame_and_fills_the_running_sums(page):
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
    part = lab.forward.partial(2)
    done = {_key("y", fr.index) for fr in lab.forward.frames[:3]}
    for key, text in _texts(driver, "forward", "y").items():
        idx = tuple(int(v) for v in key.split(":")[1].split(","))
        assert text == (_fmt(part[idx]) if key in done else ""), key
    eq = driver.find_element(By.CSS_SELECTOR, f"{sec} .eq").text
    assert eq.startswith(f"y[{','.join(map(str, f.index))}] = ")
    assert eq.endswith(f"= {_fmt(f.partial[-1])}")
    # input gradient: both views step together and name the same dy element
    sec = "#anim-input_grad"
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.reset").click()
    for _ in range(2):
        driver.find_element(By.CSS_SELECTOR, f"{sec} button.step").click()
    scat, gath = _texts(driver, "input_grad", "dx"), _texts(driver, "input_grad", "dxg")
    assert scat == gath
    g = lab.input_grad.view("gather").frames[1]
    src = _keys(_cells(driver, f"{sec} .view[data-view='gather'] td.cur-src"))
    assert src == {_key("zfull", s) for s in g.sources}


def test_play_runs_to_the_end(page):
    driver, lab, _ = page
    sec = "#anim-filter_grad"
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.reset").click()
    driver.execute_script(
        "const s = document.querySelector(arguments[0]); s.value = '150'; s.onchange();",
        f"{sec} select.speed",
    )
    driver.find_element(By.CSS_SELECTOR, f"{sec} button.play").click()
    el = driver.find_element(By.CSS_SELECTOR, sec)
    assert el.get_attribute("data-playing") == "1"
    deadline = time.time() + 30
    while time.time() < deadline and el.get_attribute("data-playing") == "1":
        time.sleep(0.2)
    assert el.get_attribute("data-frame") == str(len(lab.filter_grad.frames) - 1)
    for key, text in _texts(driver, "filter_grad", "dw").items():
        idx = tuple(int(v) for v in key.split(":")[1].split(","))
        assert text == _fmt(lab.filter_grad.result[idx])


def _hover(driver, css: str) -> set[str]:
    el = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    ActionChains(driver).move_to_element(el).perform()
    return _keys(_cells(driver, "td.cell.hl"))


def test_hover_highlights_the_contributors_the_frames_name(page):
    driver, lab, _ = page
    f = lab.forward.frames[len(lab.forward.frames) // 2]
    got = _hover(driver, f"#anim-forward td[data-key='{_key('y', f.index)}']")
    assert got == {_key("x", s) for s in f.sources} | {_key("w", t) for t in f.taps}
    # a d_x cell stamped by the most dy elements: the dy elements and w taps that stamp it (scatter)
    # and the zfull cells and rot180(w) taps its gather window multiplies
    counts: dict[tuple[int, ...], int] = {}
    for fr in lab.input_grad.view("scatter").frames:
        for t in fr.targets[fr.kept]:
            counts[tuple(int(v) for v in t)] = counts.get(tuple(int(v) for v in t), 0) + 1
    target = max(counts, key=counts.get)
    want: set[str] = set()
    for vkey, sname, tname in (("scatter", "dy", "w"), ("gather", "zfull", "wrot")):
        for fr in lab.input_grad.view(vkey).frames:
            for t, s, p in zip(fr.targets, fr.sources, fr.taps, strict=True):
                if tuple(int(v) for v in t) == target:
                    want |= {_key(sname, s), _key(tname, p)}
    assert len(want) > 2
    css = f"#anim-input_grad .view[data-view='scatter'] td[data-key='{_key('dx', target)}']"
    assert _hover(driver, css) == want
    assert len(_cells(driver, "#anim-input_grad td.hover")) == 2  # both d_x grids
    fg = lab.filter_grad.frames[-1]
    got = _hover(driver, f"#anim-filter_grad td[data-key='{_key('dw', fg.index)}']")
    assert got == {_key("x", s) for s in fg.sources} | {_key("dy", t) for t in fg.taps}

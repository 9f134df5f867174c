"""The backprop explorer's data (tc.explore): the page's JSON against the recorded trace, limits,
bad input and the CLI. No browser here (tests/test_explore_browser.py opens the pages)."""

from __future__ import annotations

import html
import importlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import nn
from tinygrad_conv.__main__ import main as run_main
from tinygrad_conv.explore import MAX_TENSOR_VALUES, MAX_VALUES, lab_file_name

ROOT = Path(__file__).resolve().parents[1]
# the module (tc.explore, the attribute, is the function of the same name)
explore_mod = importlib.import_module("tinygrad_conv.explore")

# ----------------------------------------------------------------------------- graphs (shared
# with test_explore_browser.py)

#: a 3x3 leaf whose values have at most 4 significant digits (the page shows 4)
A33 = np.array([[1.5, -2.25, 3.0], [0.5, 4.0, -1.0], [2.0, 0.25, -3.5]])


def diamond() -> tuple[tc.Tensor, tc.Tensor]:
    """``b = a + a``, ``loss = (b * c).sum()``: a receives two contributions in one step."""
    a = tc.tensor(A33.copy(), requires_grad=True, name="a")
    b = a + a
    c = tc.tensor(np.array([[1.0, 2.0, -1.0], [0.5, -2.0, 3.0], [1.0, 1.0, 0.25]]), name="c")
    return a, (b * c).sum()


def conv_model(seed: int = 0) -> tuple[nn.Module, tc.Tensor]:
    """A tiny Sequential CNN (stride-2 SAME conv) and its loss on a fixed batch."""
    tc.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, strides=2, padding="same", dtype=np.float64),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 3 * 8, 4, dtype=np.float64),
    )
    rng = np.random.default_rng(seed)
    x = tc.tensor(rng.normal(size=(2, 5, 5, 1)))
    y = np.array([1, 3])
    return model, tc.cross_entropy(model(x), y)


def page_data(path: Path) -> dict:
    """The JSON a written page embeds in <script type="application/json" id="tc-trace">."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="tc-trace">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


def value_array(data: dict, ref: int) -> np.ndarray:
    item = data["values"][ref]
    return np.array(item["data"], dtype=np.float64).reshape(item["shape"])


# ----------------------------------------------------------------------------- structure


def test_steps_follow_the_trace_and_name_its_nodes(tmp_path):
    a, loss = diamond()
    ex = tc.explore(loss, path=tmp_path / "d.html")
    data = page_data(tmp_path / "d.html")
    assert data == json.loads(json.dumps(ex.data))  # the page carries exactly ex.data
    steps = ex.trace.steps
    assert [s["op"] for s in data["steps"]] == [s.node.name for s in steps] == ["sum", "mul", "add"]
    for s, st in zip(data["steps"], steps, strict=True):
        assert data["ops"][s["node"]]["op"] == st.node.name
        assert s["upstream"]["shape"] == list(st.upstream_shape)
        np.testing.assert_array_equal(value_array(data, s["upstream"]["value"]), st.upstream)
        assert len(s["calls"]) == len(st.record.calls)
    mul = data["steps"][1]
    # c needs no gradient: one call (operand names are mul's inputs a = a + a, b = c)
    assert [(c["op"], c["args"], c["shape"]) for c in mul["calls"]] == [("mul", ["g", "b"], [3, 3])]
    assert [(g["label"], g["expr"]) for g in mul["grads"]] == [("a", "mul(g, b)")]
    # the forward graph: three ops, leaves a (param) and c (constant), the root
    assert [o["op"] for o in data["ops"]] == ["sum", "mul", "add"]
    kinds = {t["name"]: t["kind"] for t in data["tensors"] if t["name"]}
    assert kinds == {"a": "param", "c": "const"}
    assert [t["kind"] for t in data["tensors"]].count("root") == 1
    assert data["loss"] == pytest.approx(float(loss.item()))


def test_diamond_accumulation_two_contributions_with_running_sum(tmp_path):
    a, loss = diamond()
    ex = tc.explore(loss)
    data = ex.data
    (ev_a,) = data["accumulations"]  # b gets one contribution (c needs no gradient)
    assert ev_a["name"] == "a" and ev_a["count"] == 2 and ev_a["shape"] == [3, 3]
    add_step = [s.index for s in ex.trace.steps if s.node.name == "add"][0]
    assert ev_a["steps"] == [add_step, add_step]
    add = data["steps"][add_step]
    acc = data["accumulations"].index(ev_a)
    assert [(g["label"], g["expr"], g["acc"]) for g in add["grads"]] == [
        ("a", "g", [acc, 0]),
        ("b", "g", [acc, 1]),
    ]
    assert add["same"] == ["(a and b are the same tensor)"]
    trace_ev = [e for e in ex.trace.accumulations if e.target is a][0]
    for k in range(2):
        np.testing.assert_array_equal(
            value_array(data, ev_a["contributions"][k]), trace_ev.contributions[k]
        )
    np.testing.assert_array_equal(value_array(data, ev_a["running"][0]), trace_ev.contributions[0])
    np.testing.assert_array_equal(value_array(data, ev_a["running"][1]), trace_ev.total)
    np.testing.assert_array_equal(value_array(data, ev_a["total"]), a.grad.numpy())
    assert add["upstream"]["acc"] is None
    # b * b: b (the add's output) gets two contributions from mul's backward; add's g says so
    a = tc.tensor(A33.copy(), requires_grad=True)
    b = a + a
    data = tc.explore((b * b).sum()).data
    ev_b = [e for e in data["accumulations"] if e["count"] == 2 and e["name"] == ""][0]
    assert data["steps"][2]["upstream"]["acc"] == data["accumulations"].index(ev_b)
    assert ev_b["steps"] == [1, 1]


def test_conv_step_names_backprop_ops_with_geometry_and_lab(tmp_path):
    model, loss = conv_model()
    ex = tc.explore(loss, params=model.named_parameters())
    data = ex.data
    conv = [s for s in data["steps"] if s["op"] == "conv2d"][0]
    geometry = "strides=2,2 padding=SAME (pads 1,1,1,1) dilations=1,1"
    assert data["ops"][conv["node"]]["attrs"] == [geometry]
    assert [
        (c["op"], c["args"], c["argShapes"], c["shape"], c["attrs"]) for c in conv["calls"]
    ] == [
        (
            "conv2d_backprop_filter",
            ["x", "g"],
            [[2, 5, 5, 1], [2, 3, 3, 8]],
            [3, 3, 1, 8],
            # the backward passes the resolved geometry only (no padding string) to its calls
            ["filter_shape=(3, 3, 1, 8)", "strides=2,2 pads 1,1,1,1 dilations=1,1"],
        ),
    ]
    assert [(g["label"], g["expr"]) for g in conv["grads"]] == [
        ("w", "conv2d_backprop_filter(x, g)")
    ]
    # the filter's gradient is drawn as kh x kw per channel pair
    assert data["values"][conv["grads"][0]["value"]]["layout"] == "HWIO"
    names = {t["name"] for t in data["tensors"]}
    assert {"0.weight", "0.bias", "3.weight", "3.bias"} <= names
    lab = data["ops"][conv["node"]]["lab"]
    assert lab["file"] == "conv_lab_5x5_k3x3_s2x2_pSAME_d1x1.html"
    assert lab["command"] == (
        "python -m tinygrad_conv lab --x-shape 1,5,5,1 --w-shape 3,3,1,1 --strides 2,2 "
        "--padding SAME --dilations 1,1 --out conv_lab_5x5_k3x3_s2x2_pSAME_d1x1.html"
    )
    assert lab["exists"] is False
    # modules: the Sequential's children are the top-level clusters
    labels = [c["label"] for c in data["clusters"]]
    assert labels == ["0: Conv2d", "1: ReLU", "2: Flatten", "3: Linear"]
    assert data["ops"][conv["node"]]["cluster"] == labels.index("0: Conv2d")


def test_lab_pages_written_and_linked(tmp_path):
    model, loss = conv_model()
    page = tmp_path / "cnn.html"
    tc.explore(loss, params=model.named_parameters(), path=page, labs=True)
    lab_page = tmp_path / "conv_lab_5x5_k3x3_s2x2_pSAME_d1x1.html"
    assert lab_page.is_file() and "conv lab" in lab_page.read_text()
    conv = [o for o in page_data(page)["ops"] if o["op"] == "conv2d"][0]
    assert conv["lab"]["exists"] is True
    # a later page saved next to an existing lab links it without labs=True
    model, loss = conv_model()
    ex = tc.explore(loss, path=tmp_path / "again.html")
    assert [o["lab"]["exists"] for o in ex.data["ops"] if o["op"] == "conv2d"] == [True]
    assert lab_file_name((4, 6), (2, 3), (1, 2), [[0, 1], [2, 0]], (2, 1)) == (
        "conv_lab_4x6_k2x3_s1x2_p0-1-2-0_d2x1.html"
    )


def test_page_is_self_contained(tmp_path):
    a, loss = diamond()
    page = tmp_path / "d.html"
    ex = tc.explore(loss, path=page)
    text = page.read_text()
    assert "default-src 'none'" in text  # the CSP of tinygrad_conv.web
    assert "sourceMappingURL" not in text and "dagre" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    vendor = ROOT / "tinygrad_conv" / "web" / "vendor"
    assert "Chris Pettitt" in (vendor / "dagre.LICENSE").read_text()
    frame = ex._repr_html_()
    assert frame.startswith("<iframe ") and html.unescape(frame.split('srcdoc="')[1][:-11]) == (
        ex.html()
    )


def test_nonfinite_values_are_valid_json(tmp_path):
    x = tc.tensor(np.array([1.0, 0.0, 2.0]), requires_grad=True)
    with np.errstate(all="ignore"):  # log(0) = -inf forward; its gradient 1/0 = inf
        loss = (x.log() * 0.0 + x).sum()
        ex = tc.explore(loss, path=tmp_path / "nf.html")
    data = page_data(tmp_path / "nf.html")
    flat = [v for item in data["values"] for v in (item["data"] or [])]
    assert "Infinity" in flat or "-Infinity" in flat or "NaN" in flat
    assert any(item.get("nonfinite") for item in data["values"])
    assert ex.nsteps == len(ex.trace.steps)


# ----------------------------------------------------------------------------- limits


def test_values_dropped_above_max_values_with_a_note(tmp_path):
    model, loss = conv_model()
    ex = tc.explore(loss, params=model.named_parameters(), max_values=50)
    data = ex.data
    assert data["embedded"] == 0
    assert all(item["data"] is None for item in data["values"])
    assert data["notes"][0].startswith("This trace holds ")
    assert (
        f"more than max_values = 50 (tc.explore's limit, default MAX_VALUES = {MAX_VALUES}): "
        "the numbers were dropped" in data["notes"][0]
    )
    # shape, min, max and norm remain, from the recorded values
    step = ex.trace.steps[0]
    item = data["values"][data["steps"][0]["grads"][0]["value"]]
    g = step.input_grad_values[0]
    assert item["shape"] == list(g.shape)
    assert item["min"] == pytest.approx(g.min()) and item["max"] == pytest.approx(g.max())
    assert item["norm"] == pytest.approx(np.linalg.norm(g))
    # under the limit every number is there
    model, loss = conv_model()
    full = tc.explore(loss, max_values=MAX_VALUES)
    assert full.data["notes"] == [] and full.data["embedded"] > 50


def test_large_array_is_summarised(monkeypatch):
    monkeypatch.setattr(explore_mod, "MAX_TENSOR_VALUES", 8)
    a, loss = diamond()
    ex = tc.explore(loss)
    big = [v for v in ex.data["values"] if v["shape"] == [3, 3]]
    assert big and all(v["data"] is None for v in big)
    assert big[0]["note"] == "9 elements: more than MAX_TENSOR_VALUES = 8, numbers not embedded"
    assert any("more than MAX_TENSOR_VALUES = 8 elements" in n for n in ex.data["notes"])
    assert MAX_TENSOR_VALUES == 65_536


# ----------------------------------------------------------------------------- bad input


def test_bad_roots():
    with pytest.raises(TypeError, match=r"^explore: loss must be a Tensor, got list$"):
        tc.explore([1.0])
    with pytest.raises(ValueError, match=r"^explore: the loss \(shape \(2,\)\) does not require"):
        tc.explore(tc.tensor([1.0, 2.0]))
    x = tc.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match=r"^explore: the loss must have one element, got shape"):
        tc.explore(x * 2)
    with pytest.raises(TypeError, match=r"^explore: params must yield \(name, Tensor\) pairs"):
        tc.explore((x * 2).sum(), params=[1, 2])
    with pytest.raises(TypeError, match=r"^explore: max_values must be an int, got float$"):
        tc.explore((x * 2).sum(), max_values=1.5)
    with pytest.raises(ValueError, match=r"^explore: max_values must be >= 0, got -1$"):
        tc.explore((x * 2).sum(), max_values=-1)
    loss = (x * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        tc.explore(loss)


def test_bad_path_changes_nothing(tmp_path):
    a, loss = diamond()
    missing = tmp_path / "nope" / "d.html"
    with pytest.raises(FileNotFoundError) as e:
        tc.explore(loss, path=missing)
    assert str(e.value) == (
        f"explore: cannot write {str(missing)!r}: directory {str(missing.parent)!r} does not exist"
    )
    assert a.grad is None  # checked before backward ran: the graph is intact
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        tc.explore(loss, path=tmp_path)
    with pytest.raises(TypeError, match=r"^explore: path must be a str or os.PathLike, got int$"):
        tc.explore(loss, path=3)
    assert a.grad is None
    assert tc.explore(loss).nsteps == 3 and a.grad is not None  # the same loss still works


def test_unwritable_directory(tmp_path, monkeypatch):
    a, loss = diamond()
    real_access = os.access
    monkeypatch.setattr(
        explore_mod.os, "access", lambda p, m: False if Path(p) == tmp_path else real_access(p, m)
    )
    with pytest.raises(PermissionError, match=r"is not writable$"):
        tc.explore(loss, path=tmp_path / "d.html")
    assert a.grad is None and list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    a, loss = diamond()
    ex = tc.explore(loss)
    page = tmp_path / "d.html"
    page.write_text("old page")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        ex.save(page)
    assert page.read_text() == "old page"
    assert [p.name for p in tmp_path.iterdir()] == ["d.html"]  # no temporary file left


# ----------------------------------------------------------------------------- CLI


def test_cli_explore_train_cnn(tmp_path, capsys):
    out = tmp_path / "backprop.html"
    code = run_main(
        ["explore", str(ROOT / "examples" / "train_cnn.py"), "--out", str(out), "--labs"]
    )
    assert code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"wrote {out} (12 steps, 12 ops, ")
    assert "wrote conv_lab_8x8_k3x3_s1x1_pSAME_d1x1.html (conv lab)" in printed
    assert "wrote conv_lab_4x4_k3x3_s1x1_pSAME_d1x1.html (conv lab)" in printed
    data = page_data(out)
    assert [s["op"] for s in data["steps"]][:3] == ["cross_entropy", "add", "matmul"]
    assert sorted(o["lab"]["exists"] for o in data["ops"] if o["lab"]) == [True, True]
    assert run_main(["explore", str(tmp_path / "nope.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run_main(["explore", str(ROOT / "examples" / "train_cnn.py"), "--out",
                     str(tmp_path / "no" / "x.html")]) == 2  # fmt: skip
    assert "explore: cannot write" in capsys.readouterr().err
    assert run_main(["explore", "x.py", "--max-values", "-3"]) == 2
    assert "--max-values must be >= 0, got -3" in capsys.readouterr().err


def test_lab_refused_geometry_is_reported(tmp_path, monkeypatch):
    lab_mod = importlib.import_module("tinygrad_conv.lab")
    monkeypatch.setattr(lab_mod, "MAX_FRAMES", 4)  # the 3x3 output of conv_model has 9 frames
    model, loss = conv_model()
    page = tmp_path / "cnn.html"
    tc.explore(loss, path=page, labs=True)
    (lab,) = [o["lab"] for o in page_data(page)["ops"] if o["lab"]]
    assert lab["exists"] is False
    assert lab["refused"].startswith("conv_lab: the forward animation would have 9 frames")
    assert [p.name for p in tmp_path.iterdir()] == ["cnn.html"]

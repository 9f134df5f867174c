"""The examples run, with tiny settings, and report sensible values.

Each example is imported from its file (examples/ is not a package) and its ``main`` is called
in-process, so the whole file takes a few seconds.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import optim
from tinygrad_conv.datasets import load_digits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: these GEMMs are tiny, and with other processes on the cores a threaded
    BLAS runs them several times slower. Skipped when threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@cache
def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (loaded once per test session)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def run_main(module: ModuleType, argv: list[str], monkeypatch: pytest.MonkeyPatch):
    """Call ``module.main`` with ``argv``: as an argument if it takes one, else via sys.argv."""
    if inspect.signature(module.main).parameters:
        return module.main(argv)
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    return module.main()


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


# -- train_cnn ------------------------------------------------------------------------------------
def test_train_cnn_returns_accuracy_prints_it_last_and_saves_loadable_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_cnn = load_example("train_cnn")
    weights = tmp_path / "cnn.npz"
    acc = train_cnn.main(["--epochs", "1", "--no-progress", "--save", str(weights)])

    assert isinstance(acc, float)
    assert 0.0 <= acc <= 1.0
    assert acc > 0.5  # one epoch on the digits gets well past chance (0.1)
    lines = output_lines(capsys)
    assert lines[-1] == f"final test accuracy: {100 * acc:.1f}%"
    assert sum(line.startswith("epoch ") for line in lines) == 1

    # the npz holds exactly the model's state, and load() restores it: a differently initialised
    # model gives the trained model's logits after loading, and so its test accuracy
    with np.load(weights) as f:
        saved = {k: f[k] for k in f.files}
    fresh = train_cnn.build_model(seed=123)
    assert set(saved) == set(fresh.state_dict())
    x_test, y_test = load_digits("test", seed=0)
    with tc.no_grad():
        before = fresh(tc.tensor(x_test[:64])).data.copy()
    fresh.load(weights)
    again = train_cnn.build_model(seed=7)
    again.load(weights)
    with tc.no_grad():
        logits = fresh(tc.tensor(x_test[:64])).data
        logits_again = again(tc.tensor(x_test[:64])).data
    np.testing.assert_array_equal(logits, logits_again)
    assert not np.allclose(logits, before)
    assert train_cnn.evaluate(fresh, x_test, y_test) == acc


PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG, path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_train_cnn_fashion_report_writes_the_five_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_cnn = load_example("train_cnn")
    report = tmp_path / "report" / "nested"  # created, parents included
    curves = tmp_path / "curves.png"
    argv = ["--dataset", "fashion-mnist", "--train-size", "320", "--test-size", "200"]
    argv += ["--epochs", "2", "--no-progress", "--report", str(report), "--plot", str(curves)]
    acc = train_cnn.main(argv)
    lines = output_lines(capsys)
    assert lines[0] == (
        "training on 320 fashion-mnist images (28, 28, 1), testing on 200; 34186 parameters"
    )
    assert sum(line.startswith("epoch ") for line in lines) == 2
    names = ["curves.png", "confusion.png", "misclassified.png", "filters.png", "health.png"]
    assert sorted(p.name for p in report.iterdir()) == sorted(names)
    assert f"wrote {', '.join(str(report / n) for n in names)}" in lines
    assert lines[-1] == f"final test accuracy: {100 * acc:.1f}%"
    assert 0.3 < acc < 1.0  # 320 images, 2 epochs: well above chance (0.1)
    for name in names:
        w, h = _png_size(report / name)
        assert 500 <= w <= 1400 and 250 <= h <= 1000, (name, w, h)
    assert _png_size(curves) == _png_size(report / "curves.png")


def test_train_cnn_health_probe_and_confusion_matrix_values() -> None:
    train_cnn = load_example("train_cnn")
    model = train_cnn.build_model(seed=1)
    history = train_cnn.History()
    probe = train_cnn.HealthProbe(model, history)
    assert [label for label, _ in probe.weights] == [
        "0.weight Conv2d [3,3,1,24]",
        "3.weight Conv2d [3,3,24,48]",
        "7.weight Linear [192,10]",
    ]
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = load_digits("train")
    loss = tc.cross_entropy(model(tc.tensor(x[:16])), y[:16])
    opt.zero_grad()
    loss.backward()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    grads = {n: p.grad.data.copy() for n, p in model.named_parameters()}
    probe.before_step()
    opt.step()
    probe.after_step()
    for label, _ in probe.weights:
        name = label.split()[0]
        # plain SGD: the step is exactly lr * grad
        assert history.grad_norm[label] == [pytest.approx(float(np.linalg.norm(grads[name])))]
        ratio = 0.1 * np.linalg.norm(grads[name]) / np.linalg.norm(before[name])
        assert history.update_ratio[label] == [pytest.approx(float(ratio), rel=1e-5)]
    cm = train_cnn.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


@pytest.mark.parametrize(
    "flag,value,message",
    [
        (
            "--save",
            "{tmp}/missing/w.npz",
            "--save {tmp}/missing/w.npz: folder {tmp}/missing does not exist",
        ),
        ("--save", "{tmp}", "--save {tmp}: is a folder, expected a file name"),
        ("--plot", "{tmp}/no/c.png", "--plot {tmp}/no/c.png: folder {tmp}/no does not exist"),
        ("--report", "{tmp}/file.txt", "--report {tmp}/file.txt: exists and is not a folder"),
    ],
)
def test_train_cnn_output_paths_are_checked_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    train_cnn = load_example("train_cnn")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        train_cnn.main(["--epochs", "1", "--no-progress", flag, value.format(tmp=tmp_path)])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing loaded, nothing trained
    assert err.rstrip().endswith(f"error: {message.format(tmp=tmp_path)}")


def test_train_cnn_report_without_matplotlib_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train_cnn = load_example("train_cnn")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(SystemExit):
        train_cnn.main(["--no-progress", "--report", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert out == ""
    assert err.rstrip().endswith(
        "error: --report and --plot need matplotlib: pip install -e '.[examples]'"
    )
    assert not (tmp_path / "r").exists()


def test_train_cnn_missing_dataset_is_a_clear_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_cnn = load_example("train_cnn")
    monkeypatch.setenv("TINYGRAD_CONV_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        train_cnn.main(["--dataset", "mnist", "--no-progress"])
    assert str(exc.value) == (
        "train_cnn: load_mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz not found "
        f"in {tmp_path / 'mnist'}; pass download=True, or put the four IDX files there by hand "
        f"(downloads to {tmp_path / 'mnist'}) (--download fetches it)"
    )


def test_train_cnn_progress_bar_moves_with_loss_and_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train_cnn = load_example("train_cnn")
    monkeypatch.setattr(train_cnn, "PROGRESS_SECONDS", 0.0)  # draw every step: the test sees each
    train_cnn.main(["--epochs", "1", "--batch-size", "200", "--train-size", "1000"])
    err = capsys.readouterr().err
    frames = re.findall(
        r"epoch 1/1: +\d+%\|[^|]*\| (\d)/5 \[[^\]]*, loss ([\d.]+), ([\d,]+) images/s\]", err
    )
    assert [int(f[0]) for f in frames] == [1, 2, 3, 4, 5]
    assert all(float(f[1]) > 0 and int(f[2].replace(",", "")) > 0 for f in frames)


def test_train_cnn_fused_forward_is_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    train_cnn = load_example("train_cnn")
    model = train_cnn.build_model(seed=2, image_size=28)
    x = tc.tensor(np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32))
    plain, fused = model(x), train_cnn.fused_forward(model, x)
    np.testing.assert_array_equal(fused.data, plain.data)  # the reorder is exact
    # two conv blocks -> two fused nodes, and no separate relu/add/max_pool2d nodes
    names, stack, seen = [], [fused], set()
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            names.append(node.name)
            stack.extend(node.inputs)
    assert sorted(names) == sorted(["conv2d_pool_bias_relu"] * 2 + ["reshape", "matmul", "add"])
    params = list(model.parameters())
    y = np.arange(5) % 10
    g_plain = tc.grad(tc.cross_entropy(plain, y), params)
    g_fused = tc.grad(tc.cross_entropy(fused, y), params)
    for a, b in zip(g_plain, g_fused, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-7)
    # --no-fuse trains the layer-by-layer graph: the same first-epoch result on the digits
    # up to float rounding of the bias gradients' sums
    acc_fused = train_cnn.main(["--epochs", "1", "--no-progress"])
    acc_plain = train_cnn.main(["--epochs", "1", "--no-progress", "--no-fuse"])
    assert abs(acc_fused - acc_plain) <= 0.01
    capsys.readouterr()


def test_train_cnn_full_fashion_mnist_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    """The main job for real: one epoch over all 60,000 Fashion-MNIST images (~20-30 s)."""
    train_cnn = load_example("train_cnn")
    acc = train_cnn.main(["--dataset", "fashion-mnist", "--epochs", "1", "--no-progress"])
    lines = output_lines(capsys)
    assert lines[0] == (
        "training on 60000 fashion-mnist images (28, 28, 1), testing on 10000; 34186 parameters"
    )
    assert 0.87 <= acc <= 0.95  # measured 88.9 % (seed 0, batch 32, AdamW lr 2e-3, fused blocks)
    assert lines[-1] == f"final test accuracy: {100 * acc:.1f}%"


# -- conv_autoencoder -----------------------------------------------------------------------------
_AE_EPOCH = re.compile(
    r"epoch\s+(\d+)\s+(\w+) loss ([\d.]+)\s+train MSE ([\d.]+)\s+test MSE ([\d.]+)"
)


def test_autoencoder_loss_and_mse_fall_and_last_line_is_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ae = load_example("conv_autoencoder")
    mse = ae.main(["--epochs", "3", "--seed", "0"])
    lines = output_lines(capsys)
    epochs = [m.groups() for m in map(_AE_EPOCH.match, lines) if m]
    assert [int(e[0]) for e in epochs] == [1, 2, 3]
    losses = [float(e[2]) for e in epochs]
    train_mse = [float(e[3]) for e in epochs]
    test_mse = [float(e[4]) for e in epochs]
    assert losses[-1] < losses[0]
    assert train_mse[-1] < train_mse[0]
    assert test_mse[-1] < test_mse[0]
    assert isinstance(mse, float) and 0.0 < mse < 0.05  # untrained: ~0.16, mean image: ~0.07
    assert lines[-1] == f"final test reconstruction MSE: {mse:.4f}"
    assert float(lines[-1].rsplit(" ", 1)[1]) == test_mse[-1]


def test_autoencoder_is_deterministic_for_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    ae = load_example("conv_autoencoder")
    a = ae.main(["--epochs", "1", "--seed", "3", "--batch-size", "64", "--loss", "mse"])
    b = ae.main(["--epochs", "1", "--seed", "3", "--batch-size", "64", "--loss", "mse"])
    c = ae.main(["--epochs", "1", "--seed", "4", "--batch-size", "64", "--loss", "mse"])
    assert a == b
    assert a != c


def test_autoencoder_decoder_upsamples_with_conv2d_transpose() -> None:
    ae = load_example("conv_autoencoder")
    model = ae.ConvAutoencoder(seed=0)
    x = tc.tensor(load_digits("test")[0][:2])
    code = model.encoder(x)
    assert code.shape[1:3] == (2, 2)
    logits = model(x)
    assert logits.shape == x.shape
    # upsampling is the conv2d_backprop_input node (conv2d_transpose is that op)
    assert logits.grad_fn is not None
    names = set()
    stack = [logits]
    while stack:
        t = stack.pop()
        if t.grad_fn is not None and t.grad_fn.inputs is not None:
            names.add(t.grad_fn.name)
            stack.extend(t.grad_fn.inputs)
    assert "conv2d_backprop_input" in names and "conv2d" in names


def test_autoencoder_nan_loss_stops_naming_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    ae = load_example("conv_autoencoder")
    real_loss = ae._loss
    calls = {"n": 0}

    def nan_on_third_step(model, xb, kind):
        calls["n"] += 1
        loss = real_loss(model, xb, kind)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(ae, "_loss", nan_on_third_step)
    with pytest.raises(SystemExit) as exc:
        ae.main(["--epochs", "1"])
    assert "loss became nan at step 3 (epoch 1)" in str(exc.value)


def test_autoencoder_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ae = load_example("conv_autoencoder")
    out = tmp_path / "grid.png"
    ae.main(["--epochs", "1", "--plot", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_autoencoder_plot_without_matplotlib_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ae = load_example("conv_autoencoder")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(SystemExit, match="--plot needs matplotlib"):
        ae.main(["--epochs", "1", "--plot", str(tmp_path / "grid.png")])
    assert not (tmp_path / "grid.png").exists()


# -- inspect_backprop -----------------------------------------------------------------------------
def _blocks(text: str) -> dict[str, str]:
    """The report's paragraphs keyed by their first word, or two for layers ("layer 3")."""
    out = {}
    for block in text.split("\n\n"):
        words = block.strip().split()
        if words:
            out[" ".join(words[:2]) if words[0] == "layer" else words[0]] = block
    return out


def test_inspect_backprop_shows_which_conv_backprops_ran(
    capsys: pytest.CaptureFixture[str],
) -> None:
    inspect_backprop = load_example("inspect_backprop")
    layers = inspect_backprop.main(["--steps", "2", "--batch-size", "4"])
    text = capsys.readouterr().out
    by_path = {layer.path: layer for layer in layers}

    # the model's first conv (layer 0) reads the images: only its filter gradient is computed
    first, second = by_path["0"], by_path["3"]
    assert first.class_name == second.class_name == "Conv2d"
    assert "conv2d_backprop_filter" in first.backward_op_names()
    assert "conv2d_backprop_input" not in first.backward_op_names()
    assert second.backward_op_names()[:2] == ["conv2d_backprop_input", "conv2d_backprop_filter"]

    blocks = _blocks(text)
    layer0, layer3 = blocks["layer 0"], blocks["layer 3"]
    assert (
        "    conv2d(x [4,8,8,1], w [3,3,1,24]) -> [4,8,8,24]\n"
        "      backward: #0 conv2d_backprop_filter(x [4,8,8,1], g [4,8,8,24]) -> [3,3,1,24]\n"
        "                d w = conv2d_backprop_filter(x, g)\n"
        "                NO conv2d_backprop_input: this conv's input [4,8,8,1] is\n"
        "                the batch of images and does not require grad, so d x is never computed."
    ) in layer0
    assert "conv2d_backprop_input(" not in layer0
    assert (
        "      backward: #0 conv2d_backprop_input(w [3,3,24,48], g [4,4,4,48]) -> [4,4,4,24]\n"
        "                #1 conv2d_backprop_filter(x [4,4,4,24], g [4,4,4,48]) -> [3,3,24,48]\n"
        "                d x = conv2d_backprop_input(w, g)\n"
        "                d w = conv2d_backprop_filter(x, g)"
    ) in layer3
    assert "d b = g  (summed from [4,4,4,48])" in layer3
    assert "d x = max_pool2d_backprop(g, argmax)" in blocks["layer 2"]

    # gradient norms: every parameter, every step, finite and positive
    for path in ("0", "3", "7"):
        norms = by_path[path].grad_norms
        assert set(norms) == {"weight", "bias"}
        assert all(np.isfinite(v) and v > 0 for v in norms.values())
    table = text.split("Gradient norms")[1].split("\n\n")[0]
    assert re.search(r"3\.weight\s+\[3,3,24,48\]\s+[\d.e+-]+\s+[\d.e+-]+$", table, re.M)
    assert "cross_entropy" in blocks["(loss)"]


# -- the other examples ---------------------------------------------------------------------------
def test_four_ways_runs_and_agrees(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    four_ways = load_example("four_ways")
    assert run_main(four_ways, ["--no-tf"], monkeypatch) == 0
    last = output_lines(capsys)[-1]
    assert last.startswith("largest difference overall:")
    assert float(last.rsplit(" ", 1)[1]) < 1e-9


def test_draw_graph_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    draw_graph = load_example("draw_graph")
    out = tmp_path / "cnn.dot"  # DOT text: no need for graphviz's `dot` binary
    run_main(draw_graph, ["--out", str(out)], monkeypatch)
    dot = out.read_text()
    assert dot.lstrip().startswith("digraph")
    assert "conv2d_backprop_input" in dot and "conv2d_backprop_filter" in dot

"""End to end: the example CNN learns the digits, deterministically, and stops cleanly on NaN.

Trains examples/train_cnn.py's model through its ``main`` (the real script, not a copy).
Four epochs take a few seconds on 2 cores; the time is not asserted.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

TRAIN_CNN = Path(__file__).resolve().parents[1] / "examples" / "train_cnn.py"
EPOCHS = "4"  # seed 0 reaches ~95% test accuracy; 2 epochs ~91%


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


@pytest.fixture(scope="module")
def train_cnn() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_cnn_for_tests", TRAIN_CNN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(train_cnn: ModuleType, tmp_path_factory: pytest.TempPathFactory, _one_blas_thread):
    """(test accuracy, path of the saved weights) of one run with seed 0."""
    path = tmp_path_factory.mktemp("run1") / "weights.npz"
    acc = train_cnn.main(["--epochs", EPOCHS, "--seed", "0", "--no-progress", "--save", str(path)])
    return acc, path


def _weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_cnn_reaches_90_percent_test_accuracy(trained) -> None:
    acc, _ = trained
    assert acc >= 0.90


def test_same_seed_gives_identical_weights(train_cnn: ModuleType, trained, tmp_path: Path) -> None:
    _, first = trained
    second = tmp_path / "weights.npz"
    acc = train_cnn.main(
        ["--epochs", EPOCHS, "--seed", "0", "--no-progress", "--save", str(second)]
    )
    assert acc == trained[0]
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_another_seed_gives_other_weights(train_cnn: ModuleType, tmp_path: Path) -> None:
    paths = [tmp_path / "s0.npz", tmp_path / "s1.npz"]
    for seed, path in enumerate(paths):
        train_cnn.main(["--epochs", "1", "--seed", str(seed), "--no-progress", "--save", str(path)])
    a, b = (_weights(p) for p in paths)
    assert not np.array_equal(a["0.weight"], b["0.weight"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way
def test_nan_loss_exits_with_a_message_naming_the_step(train_cnn: ModuleType) -> None:
    with pytest.raises(SystemExit) as exc:
        train_cnn.main(["--epochs", "1", "--lr", "1e6", "--no-progress"])
    message = str(exc.value)
    assert "try a smaller --lr" in message
    match = re.search(r"loss became (nan|inf|-inf) at step (\d+) \(epoch 1\)", message)
    assert match, message
    assert int(match.group(2)) >= 2  # step 1 runs on the initial weights: finite loss

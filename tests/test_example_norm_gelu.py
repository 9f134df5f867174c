"""examples/train_norm_gelu.py: GroupNorm/LayerNorm, GELU/SiLU and label smoothing on the digits
train to a good accuracy in two epochs, the loss stays above the smoothing floor, and the floor is
the minimum of PyTorch's label-smoothed cross-entropy."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tinygrad_conv as tc
from tinygrad_conv import nn

PATH = Path(__file__).resolve().parents[1] / "examples" / "train_norm_gelu.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("example_train_norm_gelu", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_trains_on_digits_with_label_smoothing(example, capsys):
    acc = example.main(["--epochs", "2", "--seed", "0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"test accuracy: {acc:.4f}"
    assert acc > 0.85  # two epochs; chance is 0.1 (12 epochs: 0.989, measured)
    floor = float(re.search(r"loss floor ([0-9.]+)", lines[0]).group(1))
    losses = [
        float(m.group(1)) for m in map(re.compile(r"epoch +\d+: loss ([0-9.]+)").search, lines) if m
    ]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert all(v > floor for v in losses)


def test_model_uses_the_new_layers(example):
    model = example.build_model(0)
    kinds = {type(m) for m in model.modules()}
    assert {nn.GroupNorm, nn.LayerNorm, nn.GELU, nn.SiLU, nn.AdaptiveAvgPool2d} <= kinds
    x = tc.tensor(np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32))
    assert model(x).shape == (3, 10)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smoothing_floor_is_the_minimum_of_the_loss(example, eps):
    floor = example.smoothing_floor(eps)
    target = np.full(10, eps / 10)
    target[3] += 1 - eps
    # the loss is least when softmax(logits) equals the smoothed target
    logits = np.log(np.maximum(target, 1e-300))[None]
    got = tc.softmax_cross_entropy(tc.tensor(logits), np.array([3]), label_smoothing=eps).item()
    ref = F.cross_entropy(torch.tensor(logits), torch.tensor([3]), label_smoothing=eps).item()
    assert got == pytest.approx(floor, abs=1e-12) and ref == pytest.approx(floor, abs=1e-9)


def test_bad_arguments_exit(example):
    with pytest.raises(SystemExit):
        example.main(["--label-smoothing", "1.5"])
    with pytest.raises(SystemExit):
        example.main(["--epochs", "0"])

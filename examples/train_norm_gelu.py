"""A tiny CNN with GroupNorm, LayerNorm, GELU and SiLU, trained on the bundled digits with a
label-smoothed cross-entropy.

    python examples/train_norm_gelu.py                         # ~95-98 % test accuracy, seconds
    python examples/train_norm_gelu.py --label-smoothing 0 --epochs 20

Model (NHWC, 8x8x1 digits):
    conv 3x3 (1->16) -> GroupNorm(4 groups) -> GELU -> maxpool 2
    conv 3x3 (16->32) -> GroupNorm(8 groups) -> SiLU -> adaptive average pool to 2x2
    flatten -> LayerNorm(128) -> linear (128->10)
Loss: ``tc.softmax_cross_entropy(logits, labels, label_smoothing=0.1)``: PyTorch's
``F.cross_entropy(..., label_smoothing=0.1)``, the target (1 - 0.1) onehot + 0.1 / 10. Because the
smoothed target is never one-hot, the loss cannot reach 0: its floor is the entropy of that target
(about 0.50 nats for 10 classes at 0.1), which ``smoothing_floor`` computes and the run prints.
Optimiser: AdamW with a cosine schedule.

Unlike BatchNorm, GroupNorm and LayerNorm normalise each sample on its own, so training and
evaluation compute the same function and a batch of one is fine.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn, optim
from tinygrad_conv.datasets import DataLoader, load_digits


def build_model(seed: int = 0) -> nn.Module:
    """The model above. Input [N, 8, 8, 1] -> logits [N, 10]."""
    tc.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same"),
        nn.GroupNorm(4, 16),
        nn.GELU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding="same"),
        nn.GroupNorm(8, 32),
        nn.SiLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.LayerNorm(128),
        nn.Linear(128, 10),
    )


def smoothing_floor(label_smoothing: float, num_classes: int = 10) -> float:
    """The least value of the label-smoothed cross-entropy: the entropy of the smoothed target."""
    eps = label_smoothing
    hi = 1 - eps + eps / num_classes
    lo = eps / num_classes
    terms = [hi * math.log(hi)] + [lo * math.log(lo)] * (num_classes - 1) if lo > 0 else [0.0]
    return -sum(terms)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``model`` on (x [N, 8, 8, 1], y [N])."""
    model.eval()
    with tc.no_grad():
        pred = model(tc.tensor(x)).numpy().argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def main(argv: list[str] | None = None) -> float:
    """Train, print one line per epoch and the test accuracy last; return the test accuracy."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0.0 <= args.label_smoothing <= 1.0:
        p.error(f"--label-smoothing must be in [0, 1], got {args.label_smoothing}")
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")

    x_train, y_train = load_digits("train", seed=args.seed)
    x_test, y_test = load_digits("test", seed=args.seed)
    model = build_model(args.seed)
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    floor = smoothing_floor(args.label_smoothing)
    print(
        f"digits: {len(x_train)} train / {len(x_test)} test; label smoothing "
        f"{args.label_smoothing} (loss floor {floor:.4f})"
    )
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total, seen = 0.0, 0
        for xb, yb in loader:
            logits = model(tc.tensor(xb))
            loss = tc.softmax_cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"loss became {value} in epoch {epoch}; try a smaller --lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += value * len(xb)
            seen += len(xb)
        sched.step()
        print(
            f"epoch {epoch:2d}: loss {total / seen:.4f}, "
            f"train acc {evaluate(model, x_train, y_train):.3f}"
        )
    acc = evaluate(model, x_test, y_test)
    print(f"{time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main(sys.argv[1:])

"""Train a tiny CNN on the bundled handwritten digits (or on MNIST IDX files with --data DIR).

    python examples/train_cnn.py                 # ~97-99% test accuracy in a few seconds
    python examples/train_cnn.py --epochs 5 --plot curves.png --save weights.npz
    python examples/train_cnn.py --data ~/mnist  # train-images-idx3-ubyte etc. (28x28)

Model (NHWC): conv 3x3 (1->24) relu maxpool2 -> conv 3x3 (24->48) relu maxpool2 -> flatten -> linear,
trained with AdamW (lr 5e-3, weight decay 1e-2) and a cosine learning-rate schedule.
Every gradient in it flows through the conv family: Conv2D's backward calls conv2d_backprop_input
(a transposed convolution) and conv2d_backprop_filter (a correlation of the input with dy).

This file also defines ``build_model(seed)`` and ``example_batch(batch_size)``, which
``python -m tinygrad_conv draw examples/train_cnn.py`` uses to draw the training graph.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn, optim
from tinygrad_conv.datasets import DataLoader, load_digits, load_mnist_idx


def build_model(seed: int = 0, image_size: int = 8, num_classes: int = 10) -> nn.Module:
    """The tiny CNN. Input [N, image_size, image_size, 1] -> logits [N, num_classes]."""
    tc.manual_seed(seed)
    side = image_size // 4  # two 2x2 max-pools
    return nn.Sequential(
        nn.Conv2d(1, 24, 3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(24, 48, 3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(side * side * 48, num_classes),
    )


def example_batch(batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A batch of real digits (x: [batch_size, 8, 8, 1] float32, y: [batch_size] int64)."""
    x, y = load_digits("train")
    return x[:batch_size], y[:batch_size]


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of ``model`` on (x, y), in eval mode and without recording a graph."""
    model.eval()
    correct = 0
    with tc.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(tc.tensor(x[start : start + batch_size]))
            correct += int((logits.data.argmax(axis=1) == y[start : start + batch_size]).sum())
    model.train()
    return correct / len(x)


def _progress(iterable, total: int, desc: str, enabled: bool):
    """A tqdm bar when tqdm is installed and wanted, else the plain iterable."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, unit="batch", file=sys.stderr)


def _plot(history: dict[str, list[float]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[examples]'") from None
    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, history["loss"], marker="o")
    ax1.set(xlabel="epoch", ylabel="mean training loss", title="loss")
    ax2.plot(epochs, [100 * a for a in history["test_acc"]], marker="o", color="tab:green")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> float:
    """Parse arguments, train, print per-epoch metrics; returns the final test accuracy."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=str, default=None, help="directory with MNIST IDX files")
    p.add_argument("--save", type=str, default=None, help="write the trained weights (.npz)")
    p.add_argument("--plot", type=str, default=None, help="write loss/accuracy curves (.png)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    tc.tune_for_speed()  # the documented default: malloc tuning + adaptive BLAS threads
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--epochs and --batch-size must be >= 1 and --lr > 0")

    if args.data:
        x_train, y_train = load_mnist_idx(args.data, "train")
        x_test, y_test = load_mnist_idx(args.data, "test")
    else:
        x_train, y_train = load_digits("train", seed=args.seed)
        x_test, y_test = load_digits("test", seed=args.seed)
    model = build_model(args.seed, image_size=x_train.shape[1])
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    print(
        f"training on {len(x_train)} images {x_train.shape[1:]} , testing on {len(x_test)}; "
        f"{model.num_parameters()} parameters"
    )
    history: dict[str, list[float]] = {"loss": [], "test_acc": []}
    step, t_start = 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0, total, seen = time.perf_counter(), 0.0, 0
        bar = _progress(loader, len(loader), f"epoch {epoch}", not args.no_progress)
        for xb, yb in bar:
            loss = tc.cross_entropy(model(tc.tensor(xb)), yb)
            value = loss.item()
            step += 1
            if not math.isfinite(value):
                raise SystemExit(
                    f"loss became {value} at step {step} (epoch {epoch}); try a smaller --lr"
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += value * len(xb)
            seen += len(xb)
            if hasattr(bar, "set_postfix"):
                rate = seen / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{total / seen:.4f}", img_per_s=f"{rate:,.0f}")
        sched.step()
        acc = evaluate(model, x_test, y_test)
        history["loss"].append(total / seen)
        history["test_acc"].append(acc)
        dt = time.perf_counter() - t0
        print(
            f"epoch {epoch:2d}  loss {total / seen:.4f}  test accuracy {100 * acc:5.1f}%  "
            f"({seen / dt:,.0f} images/s)",
            flush=True,
        )
    print(f"trained in {time.perf_counter() - t_start:.1f} s")
    if args.save:
        model.save(args.save)
        print(f"wrote {args.save}")
    if args.plot:
        _plot(history, args.plot)
    print(f"final test accuracy: {100 * history['test_acc'][-1]:.1f}%")
    return history["test_acc"][-1]


if __name__ == "__main__":
    main()

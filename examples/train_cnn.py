"""Train a tiny CNN on the bundled digits, on Fashion-MNIST or on MNIST, with a training report.

    python examples/train_cnn.py                              # digits: ~97-99% in a few seconds
    python examples/train_cnn.py --dataset fashion-mnist      # 3 epochs, >= 90% test accuracy
    python examples/train_cnn.py --dataset mnist --download   # fetches MNIST into the cache
    python examples/train_cnn.py --dataset fashion-mnist --report report/ --save w.npz

Model (NHWC): conv 3x3 (1->24) relu maxpool2 -> conv 3x3 (24->48) relu maxpool2 -> flatten -> linear,
trained with AdamW (weight decay 1e-2) and a cosine learning-rate schedule over the epochs. The same
model serves every dataset: on 28x28 images the linear layer reads 7x7x48 features instead of
2x2x48. Defaults: digits 15 epochs at lr 5e-3; Fashion-MNIST and MNIST 3 epochs at lr 2e-3 (the
recipe: 91.0 % Fashion-MNIST test accuracy, measured; 1,875 steps per epoch want smaller steps than
the digits' 45).
Every gradient in it flows through the conv family: Conv2D's backward calls conv2d_backprop_input
(a transposed convolution) and conv2d_backprop_filter (a correlation of the input with dy).

``--report DIR`` writes five PNGs (matplotlib): curves.png (loss and accuracy), confusion.png (the
test confusion matrix with class names), misclassified.png (test images the model gets wrong,
predicted / true), filters.png (the first layer's 3x3 filters) and health.png (per layer, the
gradient norm and the update:weight ratio ||lr-step|| / ||w|| at every step: the numbers that say
whether a layer learns, stalls or explodes).

This file also defines ``build_model(seed)`` and ``example_batch(batch_size)``, which
``python -m tinygrad_conv draw examples/train_cnn.py`` uses to draw the training graph.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn, optim
from tinygrad_conv.datasets import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    DataLoader,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_mnist_idx,
)
from tinygrad_conv.ops.fused import conv2d_pool_bias_relu

DATASETS = ("digits", "fashion-mnist", "mnist")
DEFAULT_EPOCHS = {"digits": 15, "fashion-mnist": 3, "mnist": 3}
# AdamW learning rate: 45 steps per digits epoch want big steps; the 1,875 steps of a 28x28 epoch
# do better with smaller ones (Fashion-MNIST, 3 epochs: 91.0 % at 2e-3, 90.0 % at 5e-3)
DEFAULT_LR = {"digits": 5e-3, "fashion-mnist": 2e-3, "mnist": 2e-3}
PROGRESS_SECONDS = 0.1  # least time between two redraws of the progress bar


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


def fused_forward(model: nn.Sequential, x: tc.Tensor) -> tc.Tensor:
    """``model(x)`` with every Conv2d -> ReLU -> MaxPool2d run as ONE ``conv2d_pool_bias_relu``
    node: the same parameters and the same values (bias and relu applied after the pool, which
    is exact), one graph node instead of four and a 4x smaller bias/relu pass
    (tinygrad_conv/ops/fused.py). Other layers run as they are. x: [N,H,W,1] -> logits [N,K]."""
    layers = list(model.children())
    i = 0
    while i < len(layers):
        conv = layers[i]
        block = layers[i : i + 3]
        if (
            len(block) == 3
            and isinstance(conv, nn.Conv2d)
            and conv.bias is not None
            and isinstance(block[1], nn.ReLU)
            and isinstance(block[2], nn.MaxPool2d)
        ):
            pool = block[2]
            x = conv2d_pool_bias_relu(
                x,
                conv.weight,
                conv.bias,
                conv.strides,
                conv.padding,
                conv.dilations,
                pool.kernel_size,
                pool.strides,
                pool.padding,
            )
            i += 3
        else:
            x = conv(x)
            i += 1
    return x


def predict(
    model: nn.Module, x: np.ndarray, batch_size: int = 500, fused: bool = False
) -> np.ndarray:
    """Predicted classes [N] for images x [N,H,W,1], in eval mode and without recording a graph
    (``fused``: through ``fused_forward``)."""
    model.eval()
    out = []
    run = (lambda t: fused_forward(model, t)) if fused else model
    with tc.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(run(tc.tensor(x[start : start + batch_size])).data.argmax(axis=1))
    model.train()
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate(
    model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 500, fused: bool = False
) -> float:
    """Accuracy of ``model`` on (x [N,H,W,1], y [N])."""
    return int((predict(model, x, batch_size, fused) == y).sum()) / len(x)


def load_data(
    dataset: str, seed: int, data_dir: str | None, download: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, class names) of ``dataset``; ``data_dir`` is an IDX
    folder read instead (any MNIST-format set)."""
    if data_dir:
        return (
            *load_mnist_idx(data_dir, "train"),
            *load_mnist_idx(data_dir, "test"),
            MNIST_CLASSES,
        )
    if dataset == "digits":
        return (
            *load_digits("train", seed=seed),
            *load_digits("test", seed=seed),
            MNIST_CLASSES,
        )
    loader, classes = (
        (load_fashion_mnist, FASHION_MNIST_CLASSES)
        if dataset == "fashion-mnist"
        else (load_mnist, MNIST_CLASSES)
    )
    return (*loader("train", download=download), *loader("test", download=download), classes)


# -- training health: per-layer gradient norms and update:weight ratios ---------------------------


@dataclass
class History:
    """What the report draws: per-step losses and health, per-epoch metrics."""

    step_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    steps_per_epoch: int = 0
    # per weight (the layers' kernels/matrices, by parameter name): one value per step
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    update_ratio: dict[str, list[float]] = field(default_factory=dict)


class HealthProbe:
    """Records, for each weight w, ||grad w|| before the optimizer step and the update:weight
    ratio ||w_after - w_before|| / ||w_before|| that the step made (~1e-3 is healthy; far below:
    the layer barely learns, far above: it is being thrown around)."""

    def __init__(self, model: nn.Module, history: History) -> None:
        # biases are left out: they start at zero, so their ratio says little
        kinds = {path: type(m).__name__ for path, m in model.named_modules()}
        self.weights = []  # (label, parameter), e.g. ("3.weight Conv2d [3,3,24,48]", p)
        for name, p in model.named_parameters():
            if name.endswith("weight"):
                kind = kinds.get(name.rpartition(".")[0], "")
                shape = ",".join(map(str, p.shape))
                self.weights.append((f"{name} {kind} [{shape}]", p))
        self.history = history
        self.before: list[np.ndarray] = []
        for label, _ in self.weights:
            history.grad_norm.setdefault(label, [])
            history.update_ratio.setdefault(label, [])

    def before_step(self) -> None:
        """Call after backward(), before opt.step(): notes gradient norms and current weights."""
        self.before = [p.data.copy() for _, p in self.weights]
        for name, p in self.weights:
            g = p.grad
            value = float(np.linalg.norm(g.data)) if g is not None else 0.0
            self.history.grad_norm[name].append(value)

    def after_step(self) -> None:
        """Call after opt.step(): notes how far the step moved each weight, relative to its size."""
        for (name, p), old in zip(self.weights, self.before, strict=True):
            scale = float(np.linalg.norm(old))
            moved = float(np.linalg.norm(p.data - old))
            self.history.update_ratio[name].append(moved / scale if scale > 0 else math.nan)


# -- the report ------------------------------------------------------------------------------------

REPORT_FILES = ("curves.png", "confusion.png", "misclassified.png", "filters.png", "health.png")


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only), or a clear exit."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--report and --plot need matplotlib: pip install -e '.[examples]'"
        ) from None
    return plt


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start), so the curve starts at step 1."""
    v = np.asarray(values, dtype=np.float64)
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_curves(history: History, path: Path) -> None:
    """Loss per step (raw and smoothed) with epoch means; train/test accuracy per epoch."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = np.arange(1, len(history.step_loss) + 1)
    spe = max(history.steps_per_epoch, 1)
    ax1.plot(steps, history.step_loss, color="tab:blue", alpha=0.25, lw=0.6, label="per step")
    window = max(1, min(100, len(steps) // 20))
    ax1.plot(steps, _smooth(history.step_loss, window), color="tab:blue", label=f"mean of {window}")
    epochs = np.arange(1, len(history.epoch_loss) + 1)
    ax1.plot(epochs * spe, history.epoch_loss, "o", color="tab:red", label="epoch mean")
    ax1.set(xlabel="step", ylabel="training loss (cross-entropy)", title="loss", yscale="log")
    ax1.legend(fontsize=8)
    ax2.plot(epochs, [100 * a for a in history.train_acc], "o-", label="train (during the epoch)")
    ax2.plot(epochs, [100 * a for a in history.test_acc], "o-", label="test", color="tab:green")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy", xticks=epochs)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts [n, n]: row = true class, column = predicted class."""
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def plot_confusion(cm: np.ndarray, classes: tuple[str, ...], path: Path) -> None:
    """The confusion matrix (rows true, columns predicted), counts written in the cells."""
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # colour = fraction of the true class
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rows[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set(
        xlabel="predicted", ylabel="true", title=f"test confusion matrix ({100 * acc:.1f}% correct)"
    )
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_misclassified(
    x: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    classes: tuple[str, ...],
    path: Path,
    count: int = 32,
) -> None:
    """A grid of the first ``count`` misclassified test images, titled 'pred / true'."""
    plt = _pyplot()
    wrong = np.flatnonzero(pred != y)[:count]
    cols = 8
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.35, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(x[i, ..., 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{classes[pred[i]]}\n/ {classes[y[i]]}", fontsize=7, color="tab:red")
    n_wrong = int((pred != y).sum())
    fig.suptitle(
        f"misclassified test images, predicted / true ({len(wrong)} of {n_wrong} shown)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_filters(weight: np.ndarray, path: Path) -> None:
    """First-layer filters w [kh,kw,1,Cout], one tile each, on a shared symmetric colour scale."""
    plt = _pyplot()
    k = weight[:, :, 0, :]
    cout = k.shape[-1]
    cols = min(8, cout)
    rows = -(-cout // cols)
    lim = float(np.abs(k).max()) or 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0, rows * 1.05 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for c, ax in enumerate(axes.flat[:cout]):
        ax.imshow(k[:, :, c], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(str(c), fontsize=7)
    fig.suptitle(
        f"first-layer filters {weight.shape[0]}x{weight.shape[1]} (red +, blue -, |max| {lim:.2f})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_health(history: History, path: Path) -> None:
    """Per weight over steps: gradient norm and update:weight ratio (log scale, smoothed)."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    n = len(history.step_loss)
    window = max(1, min(50, n // 20))
    for name, values in history.grad_norm.items():
        ax1.plot(np.arange(1, len(values) + 1), _smooth(values, window), label=name)
    for name, values in history.update_ratio.items():
        ax2.plot(np.arange(1, len(values) + 1), _smooth(values, window), label=name)
    ax2.axhline(1e-3, color="gray", ls="--", lw=0.8)
    ax2.text(1, 1.1e-3, "1e-3 (rule of thumb)", fontsize=7, color="gray")
    ax1.set(xlabel="step", ylabel="||grad||", title="gradient norm per layer", yscale="log")
    ax2.set(
        xlabel="step",
        ylabel="||update|| / ||weight||",
        title="update:weight ratio per layer",
        yscale="log",
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    folder: Path,
    history: History,
    model: nn.Module,
    x_test: np.ndarray,
    y_test: np.ndarray,
    pred: np.ndarray,
    classes: tuple[str, ...],
) -> list[Path]:
    """The five report PNGs (see the module docstring) in ``folder``; returns their paths."""
    paths = [folder / name for name in REPORT_FILES]
    plot_curves(history, paths[0])
    plot_confusion(confusion_matrix(y_test, pred, len(classes)), classes, paths[1])
    plot_misclassified(x_test, y_test, pred, classes, paths[2])
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    plot_filters(first_conv.weight.data, paths[3])
    plot_health(history, paths[4])
    return paths


# -- command line ----------------------------------------------------------------------------------


def _check_outputs(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fail at once (not after the run) when --save, --plot or --report cannot be written."""
    for flag, value in (("--save", args.save), ("--plot", args.plot)):
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            p.error(f"{flag} {value}: is a folder, expected a file name")
        parent = path.parent
        if not parent.is_dir():
            p.error(f"{flag} {value}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            p.error(f"{flag} {value}: folder {parent} is not writable")
    if args.report is not None or args.plot is not None:
        try:
            import matplotlib  # noqa: F401 - only asking whether the pictures can be drawn
        except ImportError:
            p.error("--report and --plot need matplotlib: pip install -e '.[examples]'")
    if args.report is not None:
        folder = Path(args.report)
        if folder.exists() and not folder.is_dir():
            p.error(f"--report {args.report}: exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            p.error(f"--report {args.report}: cannot create the folder: {e.strerror or e}")
        if not os.access(folder, os.W_OK | os.X_OK):
            p.error(f"--report {args.report}: folder is not writable")


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr advanced by hand after each step, or None (disabled / no tqdm)."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # miniters=1: redraw on any step once PROGRESS_SECONDS have passed (tqdm's dynamic miniters
    # can freeze the bar after a slow first step)
    return tqdm(
        total=total,
        desc=desc,
        leave=False,
        unit="batch",
        file=sys.stderr,
        miniters=1,
        mininterval=PROGRESS_SECONDS,
        dynamic_ncols=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see ``--help``), validated; output paths checked before any training."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits (bundled 8x8, default), fashion-mnist (Debian package or cache), mnist",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="download fashion-mnist/mnist into the cache folder when missing",
    )
    p.add_argument(
        "--data",
        type=str,
        default=None,
        help="a folder of MNIST-format IDX files to read instead of --dataset",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="default: 15 for digits, 3 for fashion-mnist and mnist",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--lr", type=float, default=None, help="AdamW learning rate (5e-3 digits, 2e-3 28x28)"
    )
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--train-size", type=int, default=None, help="use only the first N training images"
    )
    p.add_argument("--test-size", type=int, default=None, help="use only the first N test images")
    p.add_argument("--save", type=str, default=None, help="write the trained weights (.npz)")
    p.add_argument("--plot", type=str, default=None, help="write loss/accuracy curves (.png)")
    p.add_argument(
        "--report",
        type=str,
        default=None,
        metavar="DIR",
        help="write the training report PNGs into DIR (created if missing)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-fuse",
        action="store_true",
        help="run conv, bias, relu and pool as separate graph nodes (default: one fused node)",
    )
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = DEFAULT_EPOCHS[args.dataset]
    if args.lr is None:
        args.lr = DEFAULT_LR[args.dataset]
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--epochs and --batch-size must be >= 1 and --lr > 0")
    for flag, value in (("--train-size", args.train_size), ("--test-size", args.test_size)):
        if value is not None and value < 1:
            p.error(f"{flag} must be >= 1, got {value}")
    _check_outputs(p, args)
    return args


def main(argv: list[str] | None = None) -> float:
    """Parse arguments, train, print per-epoch metrics; returns the final test accuracy."""
    args = parse_args(argv)
    tc.tune_for_speed()  # the documented default: malloc tuning + adaptive BLAS threads
    try:
        x_train, y_train, x_test, y_test, classes = load_data(
            args.dataset, args.seed, args.data, args.download
        )
    except (OSError, ValueError) as e:  # missing/corrupted files, no network: say so, no traceback
        hint = "" if args.download or args.dataset == "digits" else " (--download fetches it)"
        raise SystemExit(f"train_cnn: {e}{hint}") from e
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]
    model = build_model(args.seed, image_size=x_train.shape[1], num_classes=len(classes))
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed)
    name = args.data or args.dataset
    print(
        f"training on {len(x_train)} {name} images {x_train.shape[1:]}, testing on {len(x_test)}; "
        f"{model.num_parameters()} parameters"
    )
    history = History(steps_per_epoch=len(loader))
    probe = HealthProbe(model, history) if args.report else None
    step, t_start = 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0, total, seen, correct = time.perf_counter(), 0.0, 0, 0
        bar = _progress(len(loader), f"epoch {epoch}/{args.epochs}", not args.no_progress)
        for xb, yb in loader:
            logits = model(tc.tensor(xb)) if args.no_fuse else fused_forward(model, tc.tensor(xb))
            loss = tc.cross_entropy(logits, yb)
            value = loss.item()
            step += 1
            if not math.isfinite(value):
                raise SystemExit(
                    f"loss became {value} at step {step} (epoch {epoch}); try a smaller --lr"
                )
            opt.zero_grad()
            loss.backward()
            if probe is not None:
                probe.before_step()
            opt.step()
            if probe is not None:
                probe.after_step()
            correct += int((logits.data.argmax(axis=1) == yb).sum())
            total += value * len(xb)
            seen += len(xb)
            history.step_loss.append(value)
            if bar is not None:
                rate = seen / (time.perf_counter() - t0)
                bar.set_postfix_str(f"loss {total / seen:.4f}, {rate:,.0f} images/s", refresh=False)
                bar.update(1)
        if bar is not None:
            bar.close()
        sched.step()
        train_time = time.perf_counter() - t0
        acc = evaluate(model, x_test, y_test, fused=not args.no_fuse)
        history.epoch_loss.append(total / seen)
        history.train_acc.append(correct / seen)
        history.test_acc.append(acc)
        print(
            f"epoch {epoch:2d}  loss {total / seen:.4f}  test accuracy {100 * acc:5.1f}%  "
            f"({seen / train_time:,.0f} images/s)",
            flush=True,
        )
    print(f"trained in {time.perf_counter() - t_start:.1f} s")
    if args.save:
        model.save(args.save)
        print(f"wrote {args.save}")
    if args.plot:
        plot_curves(history, Path(args.plot))
        print(f"wrote {args.plot}")
    if args.report:
        pred = predict(model, x_test, fused=not args.no_fuse)
        paths = write_report(Path(args.report), history, model, x_test, y_test, pred, classes)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    print(f"final test accuracy: {100 * history.test_acc[-1]:.1f}%")
    return history.test_acc[-1]


if __name__ == "__main__":
    main()

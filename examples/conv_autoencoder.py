"""A convolutional autoencoder on the bundled handwritten digits: conv down, transposed conv up.

    python examples/conv_autoencoder.py                   # a few seconds; reconstruction MSE
    python examples/conv_autoencoder.py --epochs 40 --loss mse --plot grid.png

Model (NHWC), 8x8x1 image -> 2x2x8 code (32 numbers, half the pixels) -> 8x8x1 image:

    encoder: conv 3x3 stride 2 (1->16) relu           -> [N,4,4,16]
             conv 3x3 stride 2 (16->8) relu           -> [N,2,2,8]   the code
    decoder: conv_transpose 3x3 stride 2 (8->16) relu -> [N,4,4,16]
             conv_transpose 3x3 stride 2 (16->1)      -> [N,8,8,1]   logits; sigmoid -> image

Upsampling is ``tc.conv2d_transpose`` (``nn.ConvTranspose2d``), which *is* the node
``conv2d_backprop_input``: the decoder runs, forwards, the op that a conv's backward runs for the
input gradient. Its own backward, in turn, calls ``conv2d`` (for d input) and
``conv2d_backprop_filter`` (for d filter) -- the conv family is closed under differentiation.

Loss: binary cross-entropy with logits against the pixel intensities in [0, 1] (default), or
``--loss mse`` on the sigmoid output. Optimizer: AdamW. Every epoch prints the reconstruction
mean squared error (of the sigmoid output, in [0, 1] pixel units) on the train and test images.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv import nn, optim
from tinygrad_conv.datasets import DataLoader, load_digits


class ConvAutoencoder(nn.Module):
    """[N, 8, 8, 1] images in [0, 1] -> [N, 8, 8, 1] logits (apply a sigmoid for the image)."""

    def __init__(self, seed: int = 0, width: int = 16, code_channels: int = 8) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)  # one stream for every layer: deterministic init
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, strides=2, padding="same", seed=rng),
            nn.ReLU(),
            nn.Conv2d(width, code_channels, 3, strides=2, padding="same", seed=rng),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(code_channels, width, 3, strides=2, padding="same", seed=rng),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 3, strides=2, padding="same", seed=rng),
        )

    def forward(self, x: tc.Tensor) -> tc.Tensor:
        """Logits of the reconstruction, same shape as ``x``."""
        return self.decoder(self.encoder(x))

    def reconstruct(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Sigmoid output for a batch of images, in eval mode and without a graph."""
        was_training = self.training
        self.eval()
        outs = []
        with tc.no_grad():
            for start in range(0, len(x), batch_size):
                outs.append(tc.sigmoid(self(tc.tensor(x[start : start + batch_size]))).data)
        self.train(was_training)
        return np.concatenate(outs, axis=0)


def reconstruction_mse(model: ConvAutoencoder, x: np.ndarray) -> float:
    """Mean squared error between the images and their reconstructions (pixels in [0, 1])."""
    diff = model.reconstruct(x).astype(np.float64) - x
    return float(np.mean(diff * diff))


def _loss(model: ConvAutoencoder, xb: np.ndarray, kind: str) -> tc.Tensor:
    logits = model(tc.tensor(xb))
    if kind == "bce":
        return tc.binary_cross_entropy_with_logits(logits, xb)
    return tc.mse_loss(tc.sigmoid(logits), xb)


def _pick_examples(x: np.ndarray, y: np.ndarray, per_class: int = 1) -> np.ndarray:
    """Indices of the first ``per_class`` test images of each digit 0..9."""
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)])


def _plot(originals: np.ndarray, recons: np.ndarray, path: str, title: str) -> None:
    """Two rows of images: originals on top, reconstructions below."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib, which is not installed: pip install -e '.[examples]'"
        ) from None
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.0 * n, 2.4), squeeze=False)
    for row, (label, images) in enumerate((("original", originals), ("reconstructed", recons))):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(images[col, :, :, 0], cmap="gray_r", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> float:
    """Parse arguments, train, print per-epoch MSEs; returns the final test reconstruction MSE."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--loss", choices=("bce", "mse"), default="bce", help="training loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=str, default=None, help="write originals vs reconstructions")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--epochs and --batch-size must be >= 1 and --lr > 0")

    x_train, _ = load_digits("train", seed=args.seed)
    x_test, y_test = load_digits("test", seed=args.seed)
    model = ConvAutoencoder(seed=args.seed)
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(x_train, None, args.batch_size, shuffle=True, seed=args.seed)
    print(
        f"training on {len(x_train)} images {x_train.shape[1:]}, testing on {len(x_test)}; "
        f"{model.num_parameters()} parameters; loss {args.loss}"
    )
    baseline = float(np.mean(np.square(x_test - x_train.mean(axis=0))))
    print(
        f"before training: train MSE {reconstruction_mse(model, x_train):.4f}  "
        f"test MSE {reconstruction_mse(model, x_test):.4f}  "
        f"(the mean training image as every reconstruction: test MSE {baseline:.4f})"
    )

    step, t_start, test_mse = 0, time.perf_counter(), math.nan
    for epoch in range(1, args.epochs + 1):
        total, seen = 0.0, 0
        for xb, _ in loader:
            loss = _loss(model, xb, args.loss)
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
        sched.step()
        train_mse = reconstruction_mse(model, x_train)
        test_mse = reconstruction_mse(model, x_test)
        print(
            f"epoch {epoch:2d}  {args.loss} loss {total / seen:.4f}  "
            f"train MSE {train_mse:.4f}  test MSE {test_mse:.4f}",
            flush=True,
        )
    print(f"trained in {time.perf_counter() - t_start:.1f} s")
    if args.plot:
        idx = _pick_examples(x_test, y_test)
        title = f"test digits (top) and their reconstructions (bottom), MSE {test_mse:.4f}"
        _plot(x_test[idx], model.reconstruct(x_test[idx]), args.plot, title)
    print(f"final test reconstruction MSE: {test_mse:.4f}")
    return test_mse


if __name__ == "__main__":
    main()

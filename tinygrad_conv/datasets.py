"""Small real data that ships with the package, an MNIST IDX reader, and minibatching.

Everything here is plain numpy (no Tensor, no graph): loaders return ndarrays and the training loop
wraps batches in Tensors itself. Images come out NHWC by default, the layout of the conv ops.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_digits", "load_mnist_idx", "batches", "DataLoader", "DIGITS_PATH"]

#: The bundled UCI handwritten digits (see ``data/README.md`` for provenance and licence).
DIGITS_PATH = Path(__file__).resolve().parent / "data" / "digits.npz"

_SPLITS = ("train", "test", "all")
_LAYOUTS = ("NHWC", "NCHW")


def _check_float_dtype(dtype: Any, fn: str) -> np.dtype:
    """Resolve ``dtype`` and insist on a floating type (images are scaled to [0, 1])."""
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"{fn}: dtype must be a floating-point type, got {dt}")
    return dt


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """The bundled arrays, read once: images uint8 [1797,8,8] in 0..16, labels uint8 [1797]."""
    if not DIGITS_PATH.exists():
        raise FileNotFoundError(
            f"load_digits: bundled data file {DIGITS_PATH} is missing (broken install?)"
        )
    with np.load(DIGITS_PATH) as f:
        images, labels = f["images"], f["labels"]
    # Read-only so the cached copy can never be changed through a caller's reference.
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _stratified_test_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask [N] of the test samples: round(n_c * test_fraction) of each class c.

    Classes are visited in sorted order with one Generator, so the split depends only on the
    labels, the fraction and the seed.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_test = int(round(idx.size * test_fraction))
        mask[rng.permutation(idx)[:n_test]] = True
    return mask


def load_digits(
    split: str = "train",
    seed: int = 0,
    test_fraction: float = 0.2,
    dtype: Any = np.float32,
    layout: str = "NHWC",
) -> tuple[np.ndarray, np.ndarray]:
    """The UCI handwritten digits (1797 8x8 images, 10 classes), bundled with the package.

    The split is stratified and fixed: for a given ``seed`` and ``test_fraction`` the test set is
    always the same ``round(n_c * test_fraction)`` samples of each class c, and ``'train'`` is the
    rest, so train and test are disjoint and together cover all 1797 samples. Samples keep the
    file's order within each split.

    Args:
        split: ``'train'``, ``'test'`` or ``'all'`` (all 1797, in file order; seed is ignored).
        seed: seed of the split.
        test_fraction: fraction of each class put in the test set, in (0, 1).
        dtype: floating dtype of the images.
        layout: ``'NHWC'`` -> images [N, 8, 8, 1]; ``'NCHW'`` -> images [N, 1, 8, 8].

    Returns:
        ``(images, labels)``: images of ``dtype`` in [0, 1] (source values 0..16 divided by 16),
        labels int64 [N] in 0..9.
    """
    if split not in _SPLITS:
        raise ValueError(f"load_digits: split must be one of {_SPLITS}, got {split!r}")
    if layout not in _LAYOUTS:
        raise ValueError(f"load_digits: layout must be one of {_LAYOUTS}, got {layout!r}")
    try:
        fraction = float(test_fraction)
    except (TypeError, ValueError):
        fraction = math.nan  # reported below like any other out-of-range value
    if isinstance(test_fraction, bool) or not 0.0 < fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    dt = _check_float_dtype(dtype, "load_digits")

    images, labels = _digits_raw()
    if split != "all":
        test = _stratified_test_mask(labels, fraction, seed)
        keep = test if split == "test" else ~test
        images, labels = images[keep], labels[keep]

    x = images.astype(dt) / dt.type(16)  # exact in binary floating point: 16 is a power of two
    x = x[:, None, :, :] if layout == "NCHW" else x[..., None]
    return np.ascontiguousarray(x), labels.astype(np.int64)


# -- MNIST-style IDX files ------------------------------------------------------------------------

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08  # the only element type MNIST uses


def _find_idx_file(directory: Path, name: str) -> Path:
    """The first of ``name``, ``name.gz`` and the common dotted spelling that exists."""
    dotted = name.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
    candidates = [directory / n for n in (name, name + ".gz", dotted, dotted + ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(p.name for p in candidates)
    raise FileNotFoundError(f"load_mnist_idx: none of [{tried}] found in {directory}")


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions; validate the header.

    Header: two zero bytes, type code 0x08 (ubyte), number of dimensions, then one big-endian
    uint32 per dimension. Magic 2049 = labels (1-d), 2051 = images (3-d).
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # e.g. a .gz that is not gzip or is cut short
        raise ValueError(f"load_mnist_idx: cannot read {path}: {e}") from e
    if len(raw) < 4:
        raise ValueError(
            f"load_mnist_idx: {path} is too short ({len(raw)} bytes) for an IDX header"
        )
    magic = int.from_bytes(raw[:4], "big")
    expected = (_IDX_UBYTE << 8) | ndim
    if magic != expected:
        raise ValueError(
            f"load_mnist_idx: bad magic number in {path}: got {magic} (0x{magic:08x}), "
            f"expected {expected} (0x{expected:08x}) for a {ndim}-d unsigned-byte IDX file"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"load_mnist_idx: {path} is truncated inside its header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = math.prod(dims)
    if len(raw) - header != count:
        raise ValueError(
            f"load_mnist_idx: {path} declares dims {dims} ({count} bytes of data) but holds "
            f"{len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist_idx(
    directory: str | os.PathLike[str], split: str = "train", dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST (or Fashion-MNIST, or any same-format set) from its standard IDX files.

    Looks in ``directory`` for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (split
    ``'train'``) or ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (split ``'test'``),
    each optionally gzipped (``.gz``). Nothing is downloaded.

    Returns:
        ``(images, labels)``: images of ``dtype`` [N, H, W, 1] (28x28 for MNIST) scaled to [0, 1]
        by dividing by 255, labels int64 [N].

    Raises:
        FileNotFoundError: a file is missing (the message lists the names tried).
        ValueError: unknown split, bad magic number, truncated file, or image/label count
            mismatch; the message names the file.
    """
    if split not in _IDX_NAMES:
        raise ValueError(f"load_mnist_idx: split must be 'train' or 'test', got {split!r}")
    dt = _check_float_dtype(dtype, "load_mnist_idx")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"load_mnist_idx: {directory} is not a directory")
    image_name, label_name = _IDX_NAMES[split]
    image_path = _find_idx_file(directory, image_name)
    label_path = _find_idx_file(directory, label_name)
    images = _read_idx(image_path, ndim=3)
    labels = _read_idx(label_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"load_mnist_idx: {image_path} has {images.shape[0]} images but {label_path} has "
            f"{labels.shape[0]} labels"
        )
    x = (images.astype(dt) / dt.type(255))[..., None]
    return x, labels.astype(np.int64)


# -- batching -------------------------------------------------------------------------------------


def _check_batch_args(x: np.ndarray, y: np.ndarray | None, batch_size: int) -> int:
    """Validate the arrays and batch size; return the number of samples."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batches: batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("batches: x must have a leading sample axis, got a 0-d array")
    if y is not None and np.shape(y)[:1] != x.shape[:1]:
        raise ValueError(
            f"batches: x and y must have the same number of samples, got x {x.shape} and "
            f"y {np.shape(y)}"
        )
    return int(x.shape[0])


def _iterate(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    order: np.ndarray | None,
    drop_last: bool,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield batches in ``order`` (a permutation) or, when it is None, in storage order."""
    n = x.shape[0]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:  # contiguous slices: views, no copy
            sl = slice(start, start + batch_size)
            yield x[sl], (None if y is None else y[sl])
        else:
            idx = order[start : start + batch_size]
            yield x[idx], (None if y is None else y[idx])


def batches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = 0,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Iterate once over ``(x, y)`` in minibatches along axis 0.

    Args:
        x: inputs [N, ...].
        y: targets [N, ...], or None (then every ``yb`` is None, e.g. for an autoencoder).
        batch_size: samples per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: visit the samples in a random order drawn from ``np.random.default_rng(seed)``,
            so the same seed always gives the same batches; ``seed=None`` draws fresh entropy.
        drop_last: skip the final partial batch.

    Yields:
        ``(xb, yb)`` with ``xb`` [B, ...] and ``yb`` [B, ...]. Shuffled batches are copies;
        unshuffled batches are views of ``x`` and ``y``.
    """
    x = np.asarray(x)
    y = None if y is None else np.asarray(y)
    n = _check_batch_args(x, y, batch_size)
    # Permutation drawn now (not lazily) so argument errors and seeding happen at call time.
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    return _iterate(x, y, batch_size, order, drop_last)


class DataLoader:
    """A re-iterable minibatch loader over in-memory arrays.

    Each ``iter()`` is one epoch. With ``shuffle`` and an integer ``seed``, epoch k (counting from
    0) uses ``np.random.default_rng(seed + k)``, so a run is reproducible while every epoch gets a
    different order; ``set_epoch`` jumps to an epoch (e.g. when resuming).

    Args:
        x: inputs [N, ...].
        y: targets [N, ...] or None.
        batch_size: samples per batch.
        shuffle: reshuffle every epoch.
        seed: base seed (None: fresh entropy every epoch).
        drop_last: skip each epoch's final partial batch.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray | None,
        batch_size: int,
        shuffle: bool = True,
        seed: int | None = 0,
        drop_last: bool = False,
    ) -> None:
        self.x = np.asarray(x)
        self.y = None if y is None else np.asarray(y)
        self.n = _check_batch_args(self.x, self.y, batch_size)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.epoch = 0  # the epoch the next iter() will produce

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch`` (shuffled with seed + epoch)."""
        if epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """One epoch of ``(xb, yb)`` batches; advances the epoch counter."""
        order = None
        if self.shuffle:
            seed = None if self.seed is None else self.seed + self.epoch
            order = np.random.default_rng(seed).permutation(self.n)
        self.epoch += 1
        return _iterate(self.x, self.y, self.batch_size, order, self.drop_last)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={self.n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})"
        )

"""Real data: the bundled digits, Fashion-MNIST and MNIST (found or downloaded), minibatching.

Everything here is plain numpy (no Tensor, no graph): loaders return ndarrays and the training loop
wraps batches in Tensors itself. Images come out NHWC by default, the layout of the conv ops.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_idx",
    "download_dataset",
    "data_home",
    "batches",
    "DataLoader",
    "DIGITS_PATH",
    "DATA_ENV",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
]

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
_NUM_CLASSES = 10
_SIDE = 28


def _find_idx_file(directory: Path, name: str) -> Path:
    """The first of ``name``, ``name.gz`` and the common dotted spelling that exists."""
    dotted = name.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
    candidates = [directory / n for n in (name, name + ".gz", dotted, dotted + ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(p.name for p in candidates)
    raise FileNotFoundError(f"load_mnist_idx: none of [{tried}] found in {directory}")


def _read_idx(path: Path, ndim: int, fn: str = "load_mnist_idx") -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions; validate the header.

    Header: two zero bytes, type code 0x08 (ubyte), number of dimensions, then one big-endian
    uint32 per dimension. Magic 2049 = labels (1-d), 2051 = images (3-d). ``fn`` names the
    public function in error messages.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # a .gz that is not gzip, is cut short, bad CRC
        raise ValueError(f"{fn}: cannot read {path}: {e}") from e
    if len(raw) < 4:
        raise ValueError(f"{fn}: {path} is too short ({len(raw)} bytes) for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    expected = (_IDX_UBYTE << 8) | ndim
    if magic != expected:
        raise ValueError(
            f"{fn}: bad magic number in {path}: got {magic} (0x{magic:08x}), "
            f"expected {expected} (0x{expected:08x}) for a {ndim}-d unsigned-byte IDX file"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{fn}: {path} is truncated inside its header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = math.prod(dims)
    if len(raw) - header != count:
        raise ValueError(
            f"{fn}: {path} declares dims {dims} ({count} bytes of data) but holds "
            f"{len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _images_and_labels(
    image_path: Path, label_path: Path, fn: str, strict: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one split's pair of IDX files: images uint8 [N,H,W], labels [N].

    ``strict`` (the named datasets) also insists on 28x28 images and labels in 0..9.
    """
    images = _read_idx(image_path, ndim=3, fn=fn)
    labels = _read_idx(label_path, ndim=1, fn=fn)
    if strict and images.shape[1:] != (_SIDE, _SIDE):
        raise ValueError(
            f"{fn}: {image_path} holds images of shape {images.shape[1:]}, expected "
            f"({_SIDE}, {_SIDE}) (all {images.shape[0]} images: dims {images.shape})"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{fn}: {image_path} has {images.shape[0]} images but {label_path} has "
            f"{labels.shape[0]} labels"
        )
    if strict and labels.size and int(labels.max()) >= _NUM_CLASSES:
        bad = int(np.flatnonzero(labels >= _NUM_CLASSES)[0])
        raise ValueError(
            f"{fn}: {label_path} has label {int(labels[bad])} at index {bad}; labels must be "
            f"in 0..{_NUM_CLASSES - 1}"
        )
    return images, labels


def _to_float_images(images: np.ndarray, dt: np.dtype, layout: str) -> np.ndarray:
    """uint8 [N,H,W] -> ``dt`` in [0, 1], [N,H,W,1] (NHWC) or [N,1,H,W] (NCHW), contiguous."""
    # one multiply by the reciprocal would differ from /255 in the last bit: keep the division
    x = images.astype(dt)
    x /= dt.type(255)
    return x[:, None, :, :] if layout == "NCHW" else x[..., None]


def load_mnist_idx(
    directory: str | os.PathLike[str], split: str = "train", dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST (or Fashion-MNIST, or any same-format set) from its standard IDX files.

    Looks in ``directory`` for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (split
    ``'train'``) or ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (split ``'test'``),
    each optionally gzipped (``.gz``). Nothing is downloaded (see ``load_mnist`` and
    ``load_fashion_mnist`` for the named datasets, their usual places and their download).

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
    images, labels = _images_and_labels(image_path, label_path, "load_mnist_idx", strict=False)
    return _to_float_images(images, dt, "NHWC"), labels.astype(np.int64)


# -- the named 28x28 datasets: where they are looked for, and their verified download ------------

#: Class names of Fashion-MNIST, by label (from the dataset's README).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Class names of MNIST, by label.
MNIST_CLASSES = tuple(str(d) for d in range(10))

#: Environment variable naming the cache folder (default ``~/.cache/tinygrad_conv``).
DATA_ENV = "TINYGRAD_CONV_DATA"


@dataclass(frozen=True)
class _Digest:
    """A pinned digest of one file: ``algorithm`` over the ``of`` bytes.

    ``of='content'``: the decompressed IDX bytes (what the loader reads; unchanged when a
    distribution recompresses the ``.gz``). ``of='file'``: the ``.gz`` exactly as served.
    """

    algorithm: str
    hexdigest: str
    of: str


@dataclass(frozen=True)
class _Dataset:
    """Where a named dataset lives: system folders, its cache subfolder, its download."""

    key: str  # cache subfolder and the name download_dataset() takes
    fn: str  # the loader's name, for messages
    base_url: str
    url_env: str  # environment variable that overrides base_url
    system_dirs: tuple[Path, ...]
    digests: dict[str, _Digest]  # by file name (the .gz names)
    classes: tuple[str, ...]
    hint: str  # how to get the files without download=True


# Fashion-MNIST: SHA-256 of the decompressed IDX bytes, computed from Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1. Debian recompressed the .gz files (gzip header
# time 2020-06-05), so their compressed bytes differ from the ones upstream serves (upstream
# publishes MD5s of its .gz files only); the decompressed bytes are the dataset, so pinning those
# accepts both Debian's and upstream's files and nothing else.
_FASHION = _Dataset(
    key="fashion-mnist",
    fn="load_fashion_mnist",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    url_env="TINYGRAD_CONV_FASHION_MNIST_URL",
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    digests={
        "train-images-idx3-ubyte.gz": _Digest(
            "sha256", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", "content"
        ),
        "train-labels-idx1-ubyte.gz": _Digest(
            "sha256", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", "content"
        ),
        "t10k-images-idx3-ubyte.gz": _Digest(
            "sha256", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", "content"
        ),
        "t10k-labels-idx1-ubyte.gz": _Digest(
            "sha256", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", "content"
        ),
    },
    classes=FASHION_MNIST_CLASSES,
    hint="apt-get install dataset-fashion-mnist, or pass download=True",
)

# MNIST: no copy of MNIST is packaged here to compute a SHA-256 from, so these are the MD5s of the
# .gz files that are published with the data, checked against torchvision 0.29.1's
# torchvision/datasets/mnist.py; the base URL is that file's first mirror. MD5 detects corrupted
# and truncated downloads; it is not a defence against a forged file.
_MNIST = _Dataset(
    key="mnist",
    fn="load_mnist",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    url_env="TINYGRAD_CONV_MNIST_URL",
    system_dirs=(),
    digests={
        "train-images-idx3-ubyte.gz": _Digest("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "file"),
        "train-labels-idx1-ubyte.gz": _Digest("md5", "d53e105ee54ea40749a09fcbcd1e9432", "file"),
        "t10k-images-idx3-ubyte.gz": _Digest("md5", "9fb629c4189551a2d022fa330f9573f3", "file"),
        "t10k-labels-idx1-ubyte.gz": _Digest("md5", "ec29112dd5afa0611ce80d1b7f02629c", "file"),
    },
    classes=MNIST_CLASSES,
    hint="pass download=True, or put the four IDX files there by hand",
)
_DATASETS = {d.key: d for d in (_FASHION, _MNIST)}
_CHUNK = 1 << 16  # download read size


def data_home(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``data_dir`` if given, else ``$TINYGRAD_CONV_DATA``, else
    ``~/.cache/tinygrad_conv``. Each dataset uses a subfolder (``fashion-mnist``, ``mnist``)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tinygrad_conv"


def _dataset(name: str, fn: str) -> _Dataset:
    """The spec of ``name`` ('fashion-mnist' or 'mnist'), or a clear error."""
    if name not in _DATASETS:
        raise ValueError(f"{fn}: unknown dataset {name!r}; known: {sorted(_DATASETS)}")
    return _DATASETS[name]


def _base_url(ds: _Dataset, base_url: str | None) -> str:
    """The argument, else the dataset's environment variable, else its canonical location."""
    url = base_url or os.environ.get(ds.url_env) or ds.base_url
    return url if url.endswith("/") else url + "/"


class _Verifier:
    """Streams a ``.gz`` through its digest and a gzip decoder (which checks CRC and length)."""

    def __init__(self, digest: _Digest) -> None:
        self.digest = digest
        self.hasher = hashlib.new(digest.algorithm)
        self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip container
        self.nbytes = 0

    def update(self, chunk: bytes) -> None:
        """Feed the next bytes of the ``.gz`` file (raises zlib.error when they are not gzip)."""
        self.nbytes += len(chunk)
        if self.digest.of == "file":
            self.hasher.update(chunk)
        content = self.inflater.decompress(chunk)
        if self.digest.of == "content":
            self.hasher.update(content)

    def problem(self) -> str | None:
        """None when the whole file was a complete gzip stream with the pinned digest, else why."""
        if not self.inflater.eof:
            return f"the gzip stream ends early (truncated after {self.nbytes} bytes)"
        if self.inflater.unused_data:
            return f"{len(self.inflater.unused_data)} stray bytes follow the gzip stream"
        got = self.hasher.hexdigest()
        if got != self.digest.hexdigest:
            what = "decompressed content" if self.digest.of == "content" else "file"
            return (
                f"{self.digest.algorithm} of the {what} is {got}, expected {self.digest.hexdigest}"
            )
        return None


def _verify_file(path: Path, digest: _Digest) -> str | None:
    """None when ``path`` has the pinned digest and is a whole gzip stream, else why not."""
    verifier = _Verifier(digest)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                verifier.update(chunk)
    except zlib.error as e:
        return f"not a valid gzip file ({e})"
    return verifier.problem()


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    """A tqdm byte counter on stderr when wanted and installed, else None."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is an optional extra: downloading works without a bar
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def _fetch(
    url: str, dest: Path, digest: _Digest, fn: str, progress: bool = True, timeout: float = 30.0
) -> None:
    """Download ``url`` to ``dest``: into a temporary file beside it, verified, then renamed.

    The temporary file (``.<name>.*.part`` in ``dest``'s folder, so the rename is atomic on one
    file system) is removed on every failure: the cache never holds a half-written or unverified
    file under the real name.

    Raises:
        ConnectionError: the server cannot be reached, answers with an error, or the transfer
            stops early (the message names the URL).
        ValueError: the bytes are not a whole gzip stream or their digest is not the pinned one.
        OSError: the folder cannot be written.
    """
    # imported here: http.client and urllib.request cost ~18 ms, paid only by a download
    import http.client
    import urllib.error
    import urllib.request

    try:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as e:
        raise OSError(
            f"{fn}: cannot write to the cache folder {dest.parent}: {e.strerror or e}; set "
            f"{DATA_ENV} or pass data_dir= to use another folder"
        ) from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as e:
                raise ConnectionError(
                    f"{fn}: downloading {url} failed: HTTP {e.code} {e.reason}"
                ) from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise ConnectionError(
                    f"{fn}: cannot download {url}: {reason} (no network? the file can also be "
                    f"copied by hand to {dest})"
                ) from e
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                verifier = _Verifier(digest)
                bar = _progress_bar(total, dest.name, progress)
                try:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (http.client.HTTPException, OSError) as e:
                            raise ConnectionError(
                                f"{fn}: downloading {url} stopped after {verifier.nbytes} of "
                                f"{total if total is not None else 'unknown'} bytes: {e!r}"
                            ) from e
                        if not chunk:
                            break
                        out.write(chunk)
                        try:
                            verifier.update(chunk)
                        except zlib.error as e:
                            raise ValueError(
                                f"{fn}: {url} is not a valid gzip file ({e}); nothing was "
                                f"written to {dest.parent}"
                            ) from e
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
            if total is not None and verifier.nbytes != total:
                raise ConnectionError(
                    f"{fn}: downloading {url} stopped after {verifier.nbytes} of {total} bytes"
                )
            problem = verifier.problem()
            if problem is not None:
                raise ValueError(
                    f"{fn}: checksum or format check failed for {url}: {problem}; the download "
                    f"was discarded, nothing was written to {dest.parent}"
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)  # atomic: readers see the old state or the whole verified file
    finally:
        tmp.unlink(missing_ok=True)


def download_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download and verify the four ``.gz`` IDX files of ``name`` into the cache folder.

    Files already in the cache that pass verification are kept; a cached file that fails it is
    downloaded again and replaced. Each download goes to a temporary file in the same folder, is
    checked (whole gzip stream, pinned digest) and only then renamed to its real name.

    Args:
        name: ``'fashion-mnist'`` or ``'mnist'``.
        data_dir: cache folder (default: see ``data_home``); files go to ``data_dir/name/``.
        base_url: where the files are fetched from (default: ``$TINYGRAD_CONV_FASHION_MNIST_URL``
            / ``$TINYGRAD_CONV_MNIST_URL``, else the dataset's canonical location).
        progress: show a tqdm progress bar per file (when tqdm is installed).
        timeout: seconds to wait for the server on each connection or read.

    Returns:
        The folder that now holds the four verified files.

    Raises:
        ValueError: unknown name, or a download failed verification (nothing is left behind).
        ConnectionError: no network, server error, or a transfer cut short (names the URL).
        OSError: the cache folder cannot be created or written (names the folder).
    """
    fn = "download_dataset"
    ds = _dataset(name, fn)
    folder = data_home(data_dir) / ds.key
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(
            f"{fn}: cannot create the cache folder {folder}: {e.strerror or e}; set {DATA_ENV} "
            "or pass data_dir= to use another folder"
        ) from e
    url = _base_url(ds, base_url)
    for file_name, digest in ds.digests.items():
        dest = folder / file_name
        if dest.is_file() and _verify_file(dest, digest) is None:
            continue
        _fetch(url + file_name, dest, digest, fn, progress=progress, timeout=timeout)
    return folder


def _locate(ds: _Dataset, file_name: str, data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The first existing copy of ``file_name``: system folders, then the cache subfolder."""
    for folder in (*ds.system_dirs, data_home(data_dir) / ds.key):
        path = folder / file_name
        if path.is_file():
            return path
    return None


def _load_named(
    ds: _Dataset,
    split: str,
    dtype: Any,
    layout: str,
    download: bool,
    data_dir: str | os.PathLike[str] | None,
    base_url: str | None,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Shared body of load_fashion_mnist / load_mnist."""
    fn = ds.fn
    if split not in _IDX_NAMES:
        raise ValueError(f"{fn}: split must be 'train' or 'test', got {split!r}")
    if layout not in _LAYOUTS:
        raise ValueError(f"{fn}: layout must be one of {_LAYOUTS}, got {layout!r}")
    dt = _check_float_dtype(dtype, fn)
    names = [n + ".gz" for n in _IDX_NAMES[split]]
    paths = [_locate(ds, n, data_dir) for n in names]
    if any(p is None for p in paths) and download:
        download_dataset(ds.key, data_dir=data_dir, base_url=base_url, progress=progress)
        paths = [_locate(ds, n, data_dir) for n in names]
    missing = [n for n, p in zip(names, paths, strict=True) if p is None]
    if missing:
        places = ", ".join(str(p) for p in (*ds.system_dirs, data_home(data_dir) / ds.key))
        raise FileNotFoundError(
            f"{fn}: {', '.join(missing)} not found in {places}; {ds.hint} (downloads to "
            f"{data_home(data_dir) / ds.key})"
        )
    images, labels = _images_and_labels(paths[0], paths[1], fn, strict=True)
    return _to_float_images(images, dt, layout), labels.astype(np.int64)


def load_fashion_mnist(
    split: str = "train",
    *,
    dtype: Any = np.float32,
    layout: str = "NHWC",
    download: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando, MIT licence): 60,000 train / 10,000 test 28x28 images, 10 classes.

    The files are looked for in ``/usr/share/datasets/fashion-mnist/`` (Debian's
    ``dataset-fashion-mnist`` package) and then in the cache folder's ``fashion-mnist/``
    (``data_dir``, else ``$TINYGRAD_CONV_DATA``, else ``~/.cache/tinygrad_conv``). With
    ``download=True`` missing files are fetched and verified first (see ``download_dataset``).
    Class names: ``FASHION_MNIST_CLASSES``.

    Args:
        split: ``'train'`` or ``'test'``.
        dtype: floating dtype of the images.
        layout: ``'NHWC'`` -> images [N, 28, 28, 1]; ``'NCHW'`` -> [N, 1, 28, 28].
        download: fetch missing files into the cache folder.
        data_dir: cache folder to use instead of the default.
        base_url: download location (default: ``$TINYGRAD_CONV_FASHION_MNIST_URL`` or upstream).
        progress: progress bar while downloading.

    Returns:
        ``(images, labels)``: images of ``dtype`` in [0, 1] (bytes / 255), labels int64 [N] in 0..9.

    Raises:
        FileNotFoundError: files missing and ``download`` is False (names the folders looked in).
        ValueError: a corrupted, truncated or wrongly-shaped IDX file, labels out of range, or
            image/label count mismatch (names the file); a download that fails verification.
        ConnectionError / OSError: see ``download_dataset``.
    """
    return _load_named(_FASHION, split, dtype, layout, download, data_dir, base_url, progress)


def load_mnist(
    split: str = "train",
    *,
    dtype: Any = np.float32,
    layout: str = "NHWC",
    download: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits: 60,000 train / 10,000 test 28x28 images, 10 classes.

    The files are looked for in the cache folder's ``mnist/`` (``data_dir``, else
    ``$TINYGRAD_CONV_DATA``, else ``~/.cache/tinygrad_conv``); Debian packages no MNIST. With
    ``download=True`` missing files are fetched and verified against the published MD5s (see
    ``download_dataset``). Arguments, returns and errors as ``load_fashion_mnist``.

    Returns:
        ``(images, labels)``: images of ``dtype`` [N, 28, 28, 1] (or NCHW) in [0, 1], labels int64
        [N] in 0..9.
    """
    return _load_named(_MNIST, split, dtype, layout, download, data_dir, base_url, progress)


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

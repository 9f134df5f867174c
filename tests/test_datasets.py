"""Tests for tinygrad_conv.datasets: bundled digits, the IDX reader, and batching."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_conv import datasets
from tinygrad_conv.datasets import DataLoader, batches, load_digits, load_mnist_idx

N_DIGITS = 1797
CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
# SHA-256 of images.tobytes() + labels.tobytes(), as recorded in tinygrad_conv/data/README.md.
CONTENT_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


# -- bundled digits -------------------------------------------------------------------------------


def test_bundled_file_content_and_provenance() -> None:
    with np.load(datasets.DIGITS_PATH) as f:
        assert sorted(f.files) == ["images", "labels"]
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.uint8 and images.shape == (N_DIGITS, 8, 8)
    assert labels.dtype == np.uint8 and labels.shape == (N_DIGITS,)
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == CLASS_COUNTS
    h = hashlib.sha256()
    h.update(images.tobytes())
    h.update(labels.tobytes())
    assert h.hexdigest() == CONTENT_SHA256
    readme = (datasets.DIGITS_PATH.parent / "README.md").read_text()
    assert "CC BY 4.0" in readme and CONTENT_SHA256 in readme
    file_sha = hashlib.sha256(datasets.DIGITS_PATH.read_bytes()).hexdigest()
    assert file_sha in readme


def test_no_sklearn_at_runtime() -> None:
    before = "sklearn" in sys.modules
    load_digits("all")
    assert ("sklearn" in sys.modules) == before
    assert "sklearn" not in Path(datasets.__file__).read_text().replace("scikit-learn", "")


@pytest.mark.parametrize("split,n", [("train", 1438), ("test", 359), ("all", N_DIGITS)])
def test_digits_shapes_dtypes_range(split: str, n: int) -> None:
    x, y = load_digits(split)
    assert x.shape == (n, 8, 8, 1) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y).tolist()) == set(range(10))
    # values are exactly k/16
    assert np.array_equal(x * 16, np.round(x * 16))


def test_digits_nchw_and_float64() -> None:
    x_nhwc, y1 = load_digits("test", dtype=np.float64)
    x_nchw, y2 = load_digits("test", dtype=np.float64, layout="NCHW")
    assert x_nhwc.dtype == np.float64 and x_nchw.shape == (359, 1, 8, 8)
    np.testing.assert_array_equal(x_nchw[:, 0], x_nhwc[..., 0])
    np.testing.assert_array_equal(y1, y2)


def test_digits_all_matches_file_order() -> None:
    x, y = load_digits("all")
    with np.load(datasets.DIGITS_PATH) as f:
        np.testing.assert_array_equal(x[..., 0] * 16, f["images"])
        np.testing.assert_array_equal(y, f["labels"])


@pytest.mark.parametrize("fraction", [0.2, 0.1, 0.5, 0.33])
def test_digits_stratified_disjoint_covering(fraction: float) -> None:
    xa, ya = load_digits("all")
    xtr, ytr = load_digits("train", test_fraction=fraction)
    xte, yte = load_digits("test", test_fraction=fraction)
    assert len(ytr) + len(yte) == N_DIGITS
    # each class split in the same proportion, within 1 sample of the ideal
    for c, n_c in enumerate(CLASS_COUNTS):
        assert abs(np.sum(yte == c) - n_c * fraction) <= 1
        assert abs(np.sum(ytr == c) - n_c * (1 - fraction)) <= 1
    # disjoint and covering: the rows of train and test are a permutation of all rows
    key = lambda x, y: [x[i].tobytes() + bytes([y[i]]) for i in range(len(y))]  # noqa: E731
    assert sorted(key(xtr, ytr) + key(xte, yte)) == sorted(key(xa, ya))


def test_digits_split_indices_disjoint() -> None:
    labels = np.repeat(np.arange(10), CLASS_COUNTS)
    mask = datasets._stratified_test_mask(labels, 0.2, seed=3)
    assert mask.sum() == sum(round(n * 0.2) for n in CLASS_COUNTS)


def test_digits_deterministic_and_seed_dependent() -> None:
    a = load_digits("test", seed=0)
    b = load_digits("test", seed=0)
    c = load_digits("test", seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == c[0].shape  # same sizes per class ...
    assert not np.array_equal(a[0], c[0])  # ... but different samples


def test_digits_returns_fresh_arrays() -> None:
    x, y = load_digits("all")
    x[:] = -1
    y[:] = -1
    x2, y2 = load_digits("all")
    assert x2.min() == 0.0 and y2.min() == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"split": "val"}, "split"),
        ({"layout": "HWC"}, "layout"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": -0.5}, "test_fraction"),
        ({"test_fraction": float("nan")}, "test_fraction"),
        ({"test_fraction": "0.2x"}, "test_fraction"),
        ({"dtype": np.int32}, "dtype"),
    ],
)
def test_digits_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)


# -- IDX reader -----------------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """Encode a uint8 array as an IDX file (big-endian header)."""
    if magic is None:
        magic = 0x0800 | arr.ndim
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _write(path: Path, data: bytes, gz: bool = False) -> None:
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    imgs_tr, labs_tr = _fake_mnist(7, 0)
    imgs_te, labs_te = _fake_mnist(3, 1)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(imgs_tr), gz)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs_tr), gz)
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(imgs_te), gz)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(labs_te), gz)

    x, y = load_mnist_idx(tmp_path, "train")
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(x[..., 0] * 255, imgs_tr, atol=1e-4)
    np.testing.assert_array_equal(y, labs_tr)
    assert 0.0 <= x.min() and x.max() <= 1.0

    x, y = load_mnist_idx(str(tmp_path), "test", dtype=np.float64)
    assert x.shape == (3, 28, 28, 1) and x.dtype == np.float64
    np.testing.assert_array_equal(x[..., 0] * 255, imgs_te)
    np.testing.assert_array_equal(y, labs_te)


def test_idx_dotted_names(tmp_path: Path) -> None:
    imgs, labs = _fake_mnist(2, 0)
    _write(tmp_path / "t10k-images.idx3-ubyte", _idx_bytes(imgs))
    _write(tmp_path / "t10k-labels.idx1-ubyte", _idx_bytes(labs))
    x, y = load_mnist_idx(tmp_path, "test")
    np.testing.assert_array_equal(y, labs)


def test_idx_bad_magic_names_file(tmp_path: Path) -> None:
    imgs, labs = _fake_mnist(2, 0)
    # label magic (2049) on the images file: the classic mix-up
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(imgs, magic=2049))
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs))
    with pytest.raises(ValueError, match=r"bad magic number in .*train-images-idx3-ubyte.*2049"):
        load_mnist_idx(tmp_path, "train")


def test_idx_bad_magic_gz(tmp_path: Path) -> None:
    imgs, labs = _fake_mnist(2, 0)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(imgs), gz=True)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs, magic=0x0C01), gz=True)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz"):
        load_mnist_idx(tmp_path, "train")


def test_idx_truncated_and_mismatch(tmp_path: Path) -> None:
    imgs, labs = _fake_mnist(4, 0)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(imgs)[:-5])
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*bytes after the header"):
        load_mnist_idx(tmp_path)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(imgs))
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs[:3]))
    with pytest.raises(ValueError, match="4 images but .*3 labels"):
        load_mnist_idx(tmp_path)


def test_idx_not_gzip(tmp_path: Path) -> None:
    imgs, labs = _fake_mnist(2, 0)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(_idx_bytes(imgs))  # not compressed
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labs))
    with pytest.raises(ValueError, match=r"cannot read .*train-images-idx3-ubyte\.gz"):
        load_mnist_idx(tmp_path)


def test_idx_missing_files_and_bad_split(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist_idx(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_mnist_idx(tmp_path / "nope")
    with pytest.raises(ValueError, match="split"):
        load_mnist_idx(tmp_path, "val")


# -- batching -------------------------------------------------------------------------------------


def _xy(n: int = 23) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    return x, np.arange(n)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 5, 23, 100])
def test_batches_cover_every_sample_once(shuffle: bool, batch_size: int) -> None:
    x, y = _xy()
    got = list(batches(x, y, batch_size, shuffle=shuffle, seed=4))
    assert len(got) == -(-23 // batch_size)
    assert all(len(xb) == len(yb) <= batch_size for xb, yb in got)
    ys = np.concatenate([yb for _, yb in got])
    assert sorted(ys.tolist()) == list(range(23))
    for xb, yb in got:  # pairs stay aligned
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)
    if not shuffle:
        np.testing.assert_array_equal(ys, np.arange(23))


def test_batches_drop_last() -> None:
    x, y = _xy()
    got = list(batches(x, y, 5, drop_last=True))
    assert [len(yb) for _, yb in got] == [5, 5, 5, 5]
    assert len(set(np.concatenate([yb for _, yb in got]).tolist())) == 20


def test_batches_seeded() -> None:
    x, y = _xy()
    a = [yb for _, yb in batches(x, y, 4, seed=7)]
    b = [yb for _, yb in batches(x, y, 4, seed=7)]
    c = [yb for _, yb in batches(x, y, 4, seed=8)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert not np.array_equal(np.concatenate(a), np.arange(23))


def test_batches_without_targets() -> None:
    x, _ = _xy()
    got = list(batches(x, None, 10))
    assert all(yb is None for _, yb in got)
    assert sum(len(xb) for xb, _ in got) == 23


@pytest.mark.parametrize(
    "args,exc",
    [
        ((np.zeros((3, 2)), np.zeros(4), 2), ValueError),
        ((np.zeros((3, 2)), np.zeros(3), 0), ValueError),
        ((np.zeros((3, 2)), np.zeros(3), 2.0), TypeError),
        ((np.float32(1.0), None, 2), ValueError),
    ],
)
def test_batches_errors(args: tuple, exc: type) -> None:
    with pytest.raises(exc):
        batches(*args)
    with pytest.raises(exc):
        DataLoader(*args)


@pytest.mark.parametrize("drop_last", [False, True])
def test_dataloader_epochs(drop_last: bool) -> None:
    x, y = _xy()
    dl = DataLoader(x, y, 5, seed=3, drop_last=drop_last)
    assert len(dl) == (4 if drop_last else 5)
    epochs = []
    for _ in range(3):
        got = list(dl)
        assert len(got) == len(dl)
        ys = np.concatenate([yb for _, yb in got])
        if not drop_last:
            assert sorted(ys.tolist()) == list(range(23))
        else:
            assert len(set(ys.tolist())) == 20
        epochs.append(ys)
    # every epoch reshuffles
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    # epoch k uses seed + k: a fresh loader reproduces the run, and matches batches(seed=seed+k)
    dl2 = DataLoader(x, y, 5, seed=3, drop_last=drop_last)
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in dl2]), epochs[k])
        ref = batches(x, y, 5, seed=3 + k, drop_last=drop_last)
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in ref]), epochs[k])
    dl2.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in dl2]), epochs[1])


def test_dataloader_no_shuffle_and_digits() -> None:
    x, y = load_digits("train")
    dl = DataLoader(x, y, batch_size=64, shuffle=False)
    assert len(dl) == 23
    xs = np.concatenate([xb for xb, _ in dl])
    np.testing.assert_array_equal(xs, x)
    xb, yb = next(iter(DataLoader(x, y, 64)))
    assert xb.shape == (64, 8, 8, 1) and yb.shape == (64,) and yb.dtype == np.int64
    with pytest.raises(ValueError):
        dl.set_epoch(-1)
    assert "batch_size=64" in repr(dl)


# -- Fashion-MNIST and MNIST: the named loaders -----------------------------------------------------

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _require_fashion() -> None:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():  # CI installs it: not a skip
        pytest.fail(f"{FASHION_DIR} is missing: apt-get install dataset-fashion-mnist")


@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_fashion_mnist_from_debian(split: str, n: int) -> None:
    _require_fashion()
    x, y = datasets.load_fashion_mnist(split)
    assert x.shape == (n, 28, 28, 1) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [n // 10] * 10  # balanced classes
    assert x.min() == 0.0 and x.max() == 1.0
    raw = np.frombuffer(
        gzip.open(
            FASHION_DIR / f"{'t10k' if split == 'test' else 'train'}-images-idx3-ubyte.gz"
        ).read()[16:],
        np.uint8,
    ).reshape(n, 28, 28)
    np.testing.assert_array_equal(x[..., 0], raw.astype(np.float32) / np.float32(255))
    first = {"train": [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], "test": [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]}
    assert y[:10].tolist() == first[split]
    assert datasets.FASHION_MNIST_CLASSES[9] == "Ankle boot"


def test_fashion_mnist_nchw_float64() -> None:
    _require_fashion()
    x, y = datasets.load_fashion_mnist("test", layout="NCHW", dtype=np.float64)
    x2, y2 = datasets.load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float64
    np.testing.assert_allclose(x[:, 0], x2[..., 0], rtol=1e-7)
    np.testing.assert_array_equal(y, y2)


def _write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "t10k" if split == "test" else "train"
    _write(folder / f"{prefix}-images-idx3-ubyte", _idx_bytes(images), gz=True)
    _write(folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), gz=True)


def test_mnist_from_cache_folder_argument_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imgs, labs = _fake_mnist(5, 0)
    _write_split(tmp_path / "mnist", "test", imgs, labs)
    x, y = datasets.load_mnist("test", data_dir=tmp_path)
    assert x.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(x[..., 0], imgs.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labs)
    monkeypatch.setenv("TINYGRAD_CONV_DATA", str(tmp_path))
    assert datasets.data_home() == tmp_path
    np.testing.assert_array_equal(datasets.load_mnist("test")[1], labs)
    monkeypatch.delenv("TINYGRAD_CONV_DATA")
    assert datasets.data_home() == Path.home() / ".cache" / "tinygrad_conv"


def test_mnist_missing_files_say_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as exc:
        datasets.load_mnist("train", data_dir=tmp_path)
    assert str(exc.value) == (
        "load_mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz not found in "
        f"{tmp_path / 'mnist'}; pass download=True, or put the four IDX files there by hand "
        f"(downloads to {tmp_path / 'mnist'})"
    )


def test_named_loader_errors_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    imgs, labs = _fake_mnist(4, 0)

    # labels out of range
    bad = labs.copy()
    bad[2] = 10
    _write_split(folder, "train", imgs, bad)
    with pytest.raises(ValueError) as exc:
        datasets.load_mnist("train", data_dir=tmp_path)
    assert str(exc.value) == (
        f"load_mnist: {labels} has label 10 at index 2; labels must be in 0..9"
    )

    # wrongly shaped images
    _write_split(folder, "train", imgs[:, :27, :], labs)
    with pytest.raises(ValueError) as exc:
        datasets.load_mnist("train", data_dir=tmp_path)
    assert str(exc.value) == (
        f"load_mnist: {images} holds images of shape (27, 28), expected (28, 28) "
        "(all 4 images: dims (4, 27, 28))"
    )

    # truncated gzip
    _write_split(folder, "train", imgs, labs)
    images.write_bytes(images.read_bytes()[:-40])
    with pytest.raises(
        ValueError, match=rf"^load_mnist: cannot read {images}: Compressed file ended"
    ):
        datasets.load_mnist("train", data_dir=tmp_path)

    # corrupted gzip (CRC no longer matches)
    _write_split(folder, "train", imgs, labs)
    data = bytearray(images.read_bytes())
    data[-6] ^= 0xFF  # inside the CRC-32 trailer
    images.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"^load_mnist: cannot read {images}: CRC check failed"):
        datasets.load_mnist("train", data_dir=tmp_path)

    # truncated IDX inside an intact gzip
    _write(folder / "train-images-idx3-ubyte", _idx_bytes(imgs)[:-28], gz=True)
    with pytest.raises(ValueError) as exc:
        datasets.load_mnist("train", data_dir=tmp_path)
    assert str(exc.value) == (
        f"load_mnist: {images} declares dims (4, 28, 28) (3136 bytes of data) but holds 3108 "
        "bytes after the header"
    )

    # image/label count mismatch
    _write_split(folder, "train", imgs, labs[:3])
    with pytest.raises(ValueError) as exc:
        datasets.load_mnist("train", data_dir=tmp_path)
    assert str(exc.value) == f"load_mnist: {images} has 4 images but {labels} has 3 labels"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"split": "all"}, "load_fashion_mnist: split must be 'train' or 'test', got 'all'"),
        (
            {"layout": "HWC"},
            "load_fashion_mnist: layout must be one of ('NHWC', 'NCHW'), got 'HWC'",
        ),
        ({"dtype": np.uint8}, "load_fashion_mnist: dtype must be a floating-point type, got uint8"),
    ],
)
def test_fashion_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        datasets.load_fashion_mnist(**kwargs)
    assert str(exc.value) == message


def test_package_exposes_datasets() -> None:
    # a fresh interpreter: in this one the test module has imported the submodule already
    code = "import tinygrad_conv as tc; print(tc.datasets.load_fashion_mnist.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "load_fashion_mnist"

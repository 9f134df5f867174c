"""The dataset downloader, run for real against an HTTP server on 127.0.0.1 (a thread here).

The server serves Debian's Fashion-MNIST files, a corrupted and a truncated copy, a transfer that
stops early and a 404. Every failure must name the URL and leave the cache folder without the
file and without temporary files. No mocks: urllib, the gzip check and the rename all run.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinygrad_conv import datasets
from tinygrad_conv.datasets import download_dataset, load_fashion_mnist, load_mnist

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
SMALL = "t10k-labels-idx1-ubyte.gz"  # 5 KB: the file the failure cases corrupt


def _require_debian_files() -> None:
    missing = [f for f in FILES if not (DEBIAN / f).is_file()]
    if missing:  # not a skip: CI and scripts/test.sh install the package
        pytest.fail(f"{missing} missing in {DEBIAN}: apt-get install dataset-fashion-mnist")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site folder; /cut/<name> declares the full length and sends only half."""

    requests: list[str] = []  # paths asked for, in order (one server per test module)

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.path.startswith("/cut/"):
            data = (DEBIAN / self.path.removeprefix("/cut/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a local server with folders good/, corrupt/, truncated/ (see module doc)."""
    _require_debian_files()
    site = tmp_path_factory.mktemp("site")
    for folder in ("good", "corrupt", "truncated"):
        (site / folder).mkdir()
        for name in FILES:
            shutil.copyfile(DEBIAN / name, site / folder / name)
    data = bytearray((DEBIAN / SMALL).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the compressed stream
    (site / "corrupt" / SMALL).write_bytes(bytes(data))
    (site / "truncated" / SMALL).write_bytes(bytes(data[: len(data) - 100]))
    # a well-formed gzip file of the wrong content: only the digest can catch it
    (site / "good" / "wrong-content.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(8)))

    handler = lambda *a, **k: _Handler(*a, directory=str(site), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _leftovers(folder: Path) -> list[str]:
    """Every file in ``folder`` (temporary files start with a dot)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_fetches_verifies_and_keeps_verified_files(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _Handler.requests.clear()
    folder = download_dataset("fashion-mnist", data_dir=tmp_path, base_url=server + "/good")
    assert folder == tmp_path / "fashion-mnist"
    assert _leftovers(folder) == sorted(FILES)  # no temporary files
    for name in FILES:
        assert (folder / name).read_bytes() == (DEBIAN / name).read_bytes()
    assert sorted(_Handler.requests) == sorted(f"/good/{n}" for n in FILES)
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "MB" in err  # tqdm byte counter

    # a second call finds verified files and asks the server nothing
    _Handler.requests.clear()
    download_dataset("fashion-mnist", data_dir=tmp_path, base_url=server + "/good", progress=False)
    assert _Handler.requests == []

    # a damaged cached file is noticed, fetched again and replaced
    (folder / SMALL).write_bytes(b"garbage")
    download_dataset("fashion-mnist", data_dir=tmp_path, base_url=server + "/good", progress=False)
    assert _Handler.requests == [f"/good/{SMALL}"]
    assert (folder / SMALL).read_bytes() == (DEBIAN / SMALL).read_bytes()
    assert capsys.readouterr().err == ""  # progress=False: no bar


def test_loader_download_uses_env_url_and_cache_folder(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MNIST is not on this machine: load_mnist must download; the local server serves the
    # Fashion-MNIST files under MNIST's names, so the published MNIST MD5s must reject them
    monkeypatch.setenv("TINYGRAD_CONV_DATA", str(tmp_path))
    monkeypatch.setenv("TINYGRAD_CONV_MNIST_URL", server + "/good/")
    _Handler.requests.clear()
    with pytest.raises(ValueError) as exc:
        load_mnist("test", download=True, progress=False)
    url = f"{server}/good/train-images-idx3-ubyte.gz"
    assert str(exc.value) == (
        f"download_dataset: checksum or format check failed for {url}: md5 of the file is "
        f"{hashlib.md5((DEBIAN / FILES[0]).read_bytes()).hexdigest()}, expected "
        f"f68b3c2dcbeaaa9fbdd348bbdeb94873; the download was discarded, nothing was written to "
        f"{tmp_path / 'mnist'}"
    )
    assert _Handler.requests == ["/good/train-images-idx3-ubyte.gz"]
    assert _leftovers(tmp_path / "mnist") == []


def test_fashion_loader_with_debian_files_makes_no_request(server: str, tmp_path: Path) -> None:
    _Handler.requests.clear()
    x, y = load_fashion_mnist("test", download=True, data_dir=tmp_path, base_url=server + "/good")
    assert x.shape == (10000, 28, 28, 1) and y.shape == (10000,)
    assert _Handler.requests == []
    assert not (tmp_path / "fashion-mnist").exists()


@pytest.mark.parametrize(
    "folder,problem",
    [
        (
            "corrupt",
            r"is not a valid gzip file \(Error -3 while decompressing data: incorrect data "
            r"check\); nothing was written to",
        ),
        ("truncated", r"the gzip stream ends early \(truncated after 5025 bytes\)"),
    ],
)
def test_corrupted_and_truncated_downloads_are_rejected_and_leave_nothing(
    server: str, tmp_path: Path, folder: str, problem: str
) -> None:
    url = f"{server}/{folder}/{SMALL}"
    with pytest.raises(ValueError, match=problem) as exc:
        download_dataset("fashion-mnist", data_dir=tmp_path, base_url=f"{server}/{folder}")
    assert url in str(exc.value)
    cache = tmp_path / "fashion-mnist"
    # the three good files are in, the bad one is not, and there is no temporary file
    assert _leftovers(cache) == sorted(f for f in FILES if f != SMALL)


def test_wrong_content_with_valid_gzip_fails_the_digest(server: str, tmp_path: Path) -> None:
    digest = datasets._FASHION.digests[SMALL]
    dest = tmp_path / SMALL
    with pytest.raises(
        ValueError, match="sha256 of the decompressed content is [0-9a-f]{64}, expected"
    ):
        datasets._fetch(f"{server}/good/wrong-content.gz", dest, digest, "download_dataset")
    assert _leftovers(tmp_path) == []


def test_md5_file_digest_accepts_the_right_file(server: str, tmp_path: Path) -> None:
    md5 = hashlib.md5((DEBIAN / SMALL).read_bytes()).hexdigest()
    dest = tmp_path / SMALL
    datasets._fetch(f"{server}/good/{SMALL}", dest, datasets._Digest("md5", md5, "file"), "f")
    assert dest.read_bytes() == (DEBIAN / SMALL).read_bytes()
    assert _leftovers(tmp_path) == [SMALL]


def test_transfer_cut_short_is_a_connection_error(server: str, tmp_path: Path) -> None:
    digest = datasets._FASHION.digests[SMALL]
    url = f"{server}/cut/{SMALL}"
    size = (DEBIAN / SMALL).stat().st_size
    with pytest.raises(
        ConnectionError, match=rf"downloading {url} stopped after \d+ of {size} bytes"
    ):
        datasets._fetch(url, tmp_path / SMALL, digest, "download_dataset", progress=False)
    assert _leftovers(tmp_path) == []


def test_http_error_names_the_url(server: str, tmp_path: Path) -> None:
    with pytest.raises(ConnectionError) as exc:
        download_dataset("fashion-mnist", data_dir=tmp_path, base_url=server + "/nowhere")
    assert str(exc.value) == (
        f"download_dataset: downloading {server}/nowhere/train-images-idx3-ubyte.gz failed: "
        "HTTP 404 File not found"
    )
    assert _leftovers(tmp_path / "fashion-mnist") == []


def test_offline_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/"
    with pytest.raises(ConnectionError) as exc:
        load_mnist("train", download=True, data_dir=tmp_path, base_url=base, progress=False)
    msg = str(exc.value)
    assert msg.startswith(f"download_dataset: cannot download {base}train-images-idx3-ubyte.gz: ")
    assert "Connection refused" in msg
    assert msg.endswith(
        f"(no network? the file can also be copied by hand to "
        f"{tmp_path / 'mnist' / 'train-images-idx3-ubyte.gz'})"
    )
    assert _leftovers(tmp_path / "mnist") == []


def test_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # a file in the way works even for root
    with pytest.raises(OSError) as exc:
        download_dataset("mnist", data_dir=blocker, base_url="http://127.0.0.1:9/")
    assert str(exc.value).startswith(
        f"download_dataset: cannot create the cache folder {blocker / 'mnist'}: "
    )
    assert str(exc.value).endswith("set TINYGRAD_CONV_DATA or pass data_dir= to use another folder")
    # a folder that exists but where no temporary file can be made: a file named like it
    with pytest.raises(OSError, match=f"cannot write to the cache folder {blocker}"):
        datasets._fetch(
            "http://127.0.0.1:9/x", blocker / "x.gz", datasets._MNIST.digests[SMALL], "f"
        )


def test_unknown_dataset_name() -> None:
    with pytest.raises(
        ValueError,
        match=r"download_dataset: unknown dataset 'cifar'; known: \['fashion-mnist', 'mnist'\]",
    ):
        download_dataset("cifar")


def test_downloaded_fashion_files_load_like_debian(server: str, tmp_path: Path) -> None:
    # the loader reads the cache copy when it is the only copy: load through load_mnist_idx on the
    # cache folder (the named loader prefers Debian's folder) and compare with Debian's
    folder = download_dataset(
        "fashion-mnist", data_dir=tmp_path, base_url=server + "/good", progress=False
    )
    x1, y1 = datasets.load_mnist_idx(folder, "test")
    x2, y2 = load_fashion_mnist("test")
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_train_cnn_download_flag_reports_a_failed_download(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the example's --download goes through the same verified download; a bad file ends the
    # run with the loader's message, before any training and with nothing left in the cache
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "train_cnn.py"
    spec = importlib.util.spec_from_file_location("train_cnn_download_test", path)
    train_cnn = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, train_cnn)  # dataclasses look the module up
    spec.loader.exec_module(train_cnn)
    monkeypatch.setenv("TINYGRAD_CONV_DATA", str(tmp_path))
    monkeypatch.setenv("TINYGRAD_CONV_MNIST_URL", server + "/good")
    with pytest.raises(SystemExit) as exc:
        train_cnn.main(["--dataset", "mnist", "--download", "--no-progress"])
    assert str(exc.value).startswith(
        f"train_cnn: download_dataset: checksum or format check failed for "
        f"{server}/good/train-images-idx3-ubyte.gz: md5 of the file is "
    )
    assert _leftovers(tmp_path / "mnist") == []

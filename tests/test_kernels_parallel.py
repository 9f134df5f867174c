"""Big convolutions split the batch across threads (kernels/parallel.py): same results, every
code path, any part count, errors propagate, and the BLAS thread count is restored."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_conv.kernels import blas, parallel
from tinygrad_conv.kernels import conv as conv_mod
from tinygrad_conv.kernels.conv import (
    conv2d,
    conv2d_backprop_filter,
    conv2d_backprop_input,
    conv2d_windows,
)

pytest.importorskip("threadpoolctl")

from test_kernels_conv import (  # noqa: E402 - after the importorskip
    CASES,
    assert_close,
    ref_backprop_filter,
    ref_backprop_input,
    ref_conv2d,
)


@pytest.fixture
def split(monkeypatch):
    """Make every product count as big, and let the test choose the thread count."""
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 1)
    before = blas.get_num_threads()

    def use(threads: int) -> None:
        blas.set_num_threads(threads)

    yield use
    if before is not None:
        blas.set_num_threads(before)


def test_batch_parts_rules(split, monkeypatch):
    split(2)
    assert parallel.batch_parts(64, 10) == [(0, 32), (32, 64)]
    assert parallel.batch_parts(5, 10) == [(0, 2), (2, 5)]
    assert parallel.batch_parts(1, 10) is None  # one image: nothing to split
    split(3)
    assert parallel.batch_parts(2, 10) == [(0, 1), (1, 2)]  # at most one part per image
    assert parallel.batch_parts(7, 10) == [(0, 2), (2, 4), (4, 7)]
    split(1)
    assert parallel.batch_parts(64, 10) is None
    split(2)
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 100)
    assert parallel.batch_parts(64, 99) is None  # small products stay whole
    assert parallel.batch_parts(64, 100) == [(0, 32), (32, 64)]
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 0)  # policy off: OpenBLAS threads everything
    assert parallel.batch_parts(64, 10**9) is None


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("block_bytes", [300, 1 << 21])
@pytest.mark.parametrize("max_run", [0, 10**6], ids=["nhwc-windows", "channel-major-windows"])
def test_split_batch_matches_reference(split, monkeypatch, threads, block_bytes, max_run):
    """Every kernel path (blocks, row bands, phases, channel-major, pointwise, groups, kept
    windows) run on 2 or 3 batch parts equals the naive loops."""
    split(threads)
    monkeypatch.setattr(conv_mod, "_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_mod, "_KMAJOR_MAX_RUN", max_run)
    monkeypatch.setattr(conv_mod, "_KMAJOR_MAX_RUN_BACKPROP_INPUT", max_run)
    cases = [c for c in CASES if c["x"].shape[0] >= 2][:30]
    assert len(cases) >= 20
    for case in cases:
        x, w, dy, geom = case["x"], case["w"], case["dy"], case["geom"]
        groups = case["groups"]
        assert_close(conv2d(x, w, geom), ref_conv2d(x, w, geom))
        assert_close(
            conv2d_backprop_input(x.shape, w, dy, geom), ref_backprop_input(x.shape, w, dy, geom)
        )
        expected_dw = ref_backprop_filter(x, w.shape, dy, geom)
        assert_close(conv2d_backprop_filter(x, w.shape, dy, geom), expected_dw)
        cols = conv2d_windows(x, geom, groups)
        assert_close(conv2d(x, w, geom, cols=cols), ref_conv2d(x, w, geom))
        assert_close(conv2d_backprop_filter(x, w.shape, dy, geom, cols=cols), expected_dw)


def test_split_results_are_reproducible_and_close_to_whole(split, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 12, 12, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    geom = conv_mod.conv_geometry if hasattr(conv_mod, "conv_geometry") else None
    from tinygrad_conv.kernels.padding import conv_geometry

    geom = conv_geometry("conv2d", x.shape, w.shape, 1, "SAME")
    dy = rng.standard_normal((6, 12, 12, 16)).astype(np.float32)
    split(2)
    runs = [
        (
            conv2d(x, w, geom),
            conv2d_backprop_input(x.shape, w, dy, geom),
            conv2d_backprop_filter(x, w.shape, dy, geom),
        )
        for _ in range(3)
    ]
    for later in runs[1:]:
        for a, b in zip(runs[0], later, strict=True):
            np.testing.assert_array_equal(a, b)  # same thread count: bit-identical
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 1 << 60)  # everything whole
    whole = (
        conv2d(x, w, geom),
        conv2d_backprop_input(x.shape, w, dy, geom),
        conv2d_backprop_filter(x, w.shape, dy, geom),
    )
    for a, b in zip(runs[0], whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_worker_errors_propagate_after_every_part_finished(split):
    split(3)
    finished: list[int] = []

    def part(n0: int, n1: int) -> int:
        if n0 == 2:
            raise ValueError(f"part {n0}:{n1} failed")
        finished.append(n0)
        return n0

    with pytest.raises(ValueError, match="part 2:4 failed"):
        parallel.run_parts(part, [(0, 2), (2, 4), (4, 6)])
    assert sorted(finished) == [0, 4]
    assert blas.get_num_threads() == 3  # the single-thread section was left
    assert parallel.run_parts(lambda a, b: (a, b), [(0, 1), (1, 2), (2, 3)]) == [
        (0, 1),
        (1, 2),
        (2, 3),
    ]


def test_blas_threads_are_single_inside_parts_and_restored(split):
    split(2)
    seen = parallel.run_parts(lambda a, b: blas.get_num_threads(), [(0, 1), (1, 2)])
    assert seen == [1, 1]
    assert blas.get_num_threads() == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_works_in_a_forked_child():
    """A child forked after the pool started has no worker threads: it must start new ones."""
    code = """
import os, numpy as np
from tinygrad_conv.kernels import blas, parallel
blas.SMALL_GEMM_MNK = 1
blas.set_num_threads(2)
parallel.run_parts(lambda a, b: a, [(0, 1), (1, 2)])  # starts the pool in the parent
pid = os.fork()
if pid == 0:
    out = parallel.run_parts(lambda a, b: a + b, [(0, 1), (1, 2)])
    os._exit(0 if out == [1, 3] else 1)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "child 0", out.stderr

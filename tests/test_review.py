"""Regression tests for bugs found in review of the graph machinery, the ops and the BLAS policy."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv.kernels import blas


def _arrays_in(value: object) -> list[np.ndarray]:
    """Every ndarray reachable through tuples, lists and dicts."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays_in(v)]
    return []


def test_release_frees_index_arrays_nested_in_attrs() -> None:
    # x[idx, :] stores the index as a tuple holding an activation-sized array: release() must
    # free it like a top-level array attribute, not keep it alive through the tuple
    x = tc.tensor(np.random.randn(1000, 3), requires_grad=True)
    idx = np.arange(1000)[::-1]
    y = x[idx, :]
    y.sum().backward()
    node = y.grad_fn
    assert node.released
    assert _arrays_in(node.attrs) == []
    np.testing.assert_array_equal(x.grad.data, np.ones((1000, 3)))


class _FakeBlas:
    """A process-wide BLAS pool, like OpenBLAS's pthreads build: one thread count for everyone."""

    def __init__(self, n: int) -> None:
        self.n = n

    def get_num_threads(self) -> int:
        return self.n

    def set_num_threads(self, n: int) -> None:
        self.n = n


# a product the policy runs single-threaded (above OpenBLAS's own single-thread limit)
_SMALL_MNK = blas.BLAS_SINGLE_THREAD_MNK + 1


def test_blas_pool_restored_when_threads_interleave(monkeypatch) -> None:
    lib = _FakeBlas(4)
    monkeypatch.setattr(blas, "_switches", [(lib.get_num_threads, lib.set_num_threads)])
    monkeypatch.setattr(blas, "POLICY", "single")
    a_entered, b_entered, a_exited = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        try:
            with blas.gemm_threads(_SMALL_MNK):
                a_entered.set()
                b_entered.wait(5)
        finally:
            a_exited.set()

    def second() -> None:
        a_entered.wait(5)
        with blas.gemm_threads(_SMALL_MNK):
            b_entered.set()
            a_exited.wait(5)
            assert lib.n == 1  # still inside a small GEMM: stays single-threaded

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # A enters (saves 4), B enters (saves 1), A exits (sets 4), B exits (sets 1): stuck at 1
    assert lib.n == 4


def test_blas_pool_restored_after_exception(monkeypatch) -> None:
    pytest.importorskip("threadpoolctl")
    if blas.get_num_threads() is None:
        pytest.skip("threadpoolctl cannot see numpy's BLAS")
    tc.set_num_threads(2)
    monkeypatch.setattr(blas, "POLICY", "single")
    with pytest.raises(ZeroDivisionError), blas.gemm_threads(_SMALL_MNK):
        assert tc.get_num_threads() == 1
        1 / 0  # noqa: B018
    assert tc.get_num_threads() == 2

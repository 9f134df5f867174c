"""Run a big kernel on the batch split into one part per core (used by the input gradient).

Why: inside a conv kernel only the GEMM is multi-threaded (by OpenBLAS); the tap adds of the
input gradient (col2im) run on one core. Splitting the batch into W parts, each run on its own
thread with a single-threaded GEMM, puts the adds on every core too. numpy releases the GIL in
copies, ufunc loops and matmul, so Python threads really run in parallel here. Measured on the
2-core benchmark machine, input gradient whole -> split: case (b) 3.7 -> 3.2 ms, (c) 37 -> 34 ms,
(d) 24.8 -> 24.5 ms. The forward and the filter gradient stay whole: single-threaded OpenBLAS
runs their GEMM shapes slowly enough that the split lost (forward of case (c): 33 -> 53 ms).

It also degrades gracefully when another process holds a core: a part that waits for its core
waits in a blocking ``Future.result()``, not in OpenBLAS's spin loop (kernels/blas.py).

Rules:
* Only products of at least ``blas.SMALL_GEMM_MNK`` multiply-adds are split (smaller ones are
  single-threaded anyway, and a thread hand-off costs about 40 us).
* W = the BLAS thread count (``tc.set_num_threads`` / ``OPENBLAS_NUM_THREADS``), at most the
  batch size; during the parallel section BLAS runs single-threaded.
* The parts are contiguous, equal ranges of images, fixed by (N, W): a given thread setting
  gives bit-identical results whatever the load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from . import blas

__all__ = ["batch_parts", "run_parts"]

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_workers = 0
_executor_lock = threading.Lock()


def _reset_after_fork() -> None:
    # a forked child has no worker threads: start a fresh pool on first use
    global _executor, _executor_workers
    _executor, _executor_workers = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _pool(workers: int) -> ThreadPoolExecutor:
    global _executor, _executor_workers
    with _executor_lock:
        if _executor is None or _executor_workers < workers:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="tinygrad_conv")
            _executor_workers = workers
        return _executor


def batch_parts(n: int, mnk: int) -> list[tuple[int, int]] | None:
    """Equal contiguous image ranges [(n0, n1), ...], one per BLAS thread, or None to run whole.

    None when the product is small (``mnk`` < ``blas.SMALL_GEMM_MNK``), the batch has one image,
    BLAS has one thread, or threadpoolctl cannot switch BLAS to one thread for the parts.
    """
    if n < 2 or mnk < blas.SMALL_GEMM_MNK or blas.SMALL_GEMM_MNK <= 0:
        return None
    threads = blas.get_num_threads()
    if threads is None or threads < 2:
        return None
    w = min(threads, n)
    bounds = [n * k // w for k in range(w + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(w)]


def run_parts(fn: Callable[[int, int], T], parts: list[tuple[int, int]]) -> list[T]:
    """``[fn(n0, n1) for (n0, n1) in parts]``, the first part on the calling thread and the others
    on worker threads, with BLAS single-threaded meanwhile. Exceptions propagate to the caller
    (after every part has finished, so no part still writes into shared outputs)."""
    if len(parts) == 1:
        return [fn(*parts[0])]
    pool = _pool(len(parts) - 1)
    with blas.gemm_threads(0, single=True):
        futures: list[Future[T]] = [pool.submit(fn, *p) for p in parts[1:]]
        try:
            first = fn(*parts[0])
        finally:
            errors = [f.exception() for f in futures]  # waits for every worker part
    for err in errors:
        if err is not None:
            raise err
    return [first, *(f.result() for f in futures)]

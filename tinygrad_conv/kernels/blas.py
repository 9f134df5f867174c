"""How many BLAS threads a GEMM gets: small products run on the calling thread only.

Why: numpy's OpenBLAS splits every GEMM above a tiny size (2**18 multiply-adds; 9,216 elements
for a matrix-vector product) across all cores. On an idle machine
that halves the time of even a 1 ms product, but as soon as another process keeps one core busy,
each multi-threaded GEMM waits for its worker thread to be scheduled, and a small one becomes
10-20x slower (measured here: the digits CNN trained at 6,400 images/s on an idle 2-core machine
and at 355 images/s with one core busy elsewhere). A single-threaded small GEMM cannot stall
that way and costs at most about 2x on an idle machine, i.e. a few hundred microseconds. So
products with M*N*K below ``SMALL_GEMM_MNK`` run single-threaded; large ones keep every thread,
where threading pays and a stall is small relative to the work.

``threadpoolctl`` finds the BLAS libraries; the switch itself then calls OpenBLAS's
``openblas_set_num_threads`` directly through ctypes (0.5 us, against 5 us through
threadpoolctl's wrappers, which matters on a training step with a dozen switches). Other BLAS
libraries are switched through threadpoolctl. Without threadpoolctl this module does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Below this many multiply-adds (M*N*K) a GEMM runs on one thread. 0 disables the policy.
SMALL_GEMM_MNK = 1 << 23

#: OpenBLAS runs GEMMs of at most this many multiply-adds on the calling thread by itself
#: (65536 * its GEMM_MULTITHREAD_THRESHOLD of 4). Verified on the benchmark machine: up to 2**18
#: the results are bit-identical and the times equal with 1 or 2 threads, above it they differ.
#: For those tiny products the thread switch (about 9 us) is skipped.
BLAS_SINGLE_THREAD_MNK = 1 << 18
#: The same limit for matrix-vector products (OpenBLAS's interface/gemv.c: 2304 * 4 elements).
BLAS_SINGLE_THREAD_GEMV = 2304 * 4

_blas_libs: list[Any] | None = None
_switches: list[tuple[Callable[[], int], Callable[[int], Any]]] | None = None

# The pool size is process-wide, so overlapping small GEMMs (from several threads) share one
# switch: the first to enter saves the sizes and goes to 1 thread, the last to leave restores them.
# Saving per context would let the last one out restore the "1" that another one had set.
_lock = threading.Lock()
_active = 0
_saved: list[int] = []


def _libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (found once)."""
    global _blas_libs
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController()
            _blas_libs = [lib for lib in ctl.lib_controllers if lib.user_api == "blas"]
        except Exception:  # threadpoolctl missing or unable to inspect: leave BLAS alone
            _blas_libs = []
    return _blas_libs


def _direct_switch(lib: Any) -> tuple[Callable[[], int], Callable[[int], Any]]:
    """(get, set) of one library's thread count: OpenBLAS's own C functions when it runs its
    own thread pool (not the OpenMP layer, where the count is per calling thread), else
    threadpoolctl's methods."""
    if getattr(lib, "internal_api", "") == "openblas" and lib.threading_layer != "openmp":
        dynlib = getattr(lib, "dynlib", None)
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return lib.get_num_threads, lib.set_num_threads


def _thread_switches() -> list[tuple[Callable[[], int], Callable[[int], Any]]]:
    """(get, set) thread-count functions of every BLAS library (found once)."""
    global _switches
    if _switches is None:
        found = []
        for lib in _libraries():
            try:
                found.append(_direct_switch(lib))
            except Exception:  # an unexpected controller: leave that library alone
                continue
        _switches = found
    return _switches


class gemm_threads:  # noqa: N801 - used like a function in ``with`` statements
    """Context manager: run the GEMMs inside on one thread when ``mnk`` < ``SMALL_GEMM_MNK``.

    Products OpenBLAS already keeps on one thread (``mnk`` <= ``BLAS_SINGLE_THREAD_MNK``, or
    ``BLAS_SINGLE_THREAD_GEMV`` for matrix-vector products) skip the switch.

    Args:
        mnk: multiply-adds of the largest product inside (M*N*K, times the batch for batched ones).
        gemv: the product is a matrix-vector one (OpenBLAS threads those from a lower size).
    """

    __slots__ = ("_libs", "_entered")

    def __init__(self, mnk: int, gemv: bool = False) -> None:
        floor = BLAS_SINGLE_THREAD_GEMV if gemv else BLAS_SINGLE_THREAD_MNK
        self._libs = _thread_switches() if floor < mnk < SMALL_GEMM_MNK else ()
        self._entered = False

    def __enter__(self) -> None:
        global _active, _saved
        if not self._libs:
            return
        with _lock:
            if _active == 0:
                previous = [get() for get, _ in self._libs]
                try:
                    for _, put in self._libs:
                        put(1)
                except BaseException:
                    for (_, put), n in zip(self._libs, previous, strict=True):
                        put(n)
                    raise
                _saved = previous
            _active += 1
            self._entered = True

    def __exit__(self, *exc: object) -> None:
        global _active
        if not self._entered:
            return
        self._entered = False
        with _lock:
            _active -= 1
            if _active == 0:
                for (_, put), n in zip(self._libs, _saved, strict=True):
                    put(n)


def set_num_threads(n: int) -> None:
    """Set the number of threads of numpy's BLAS for this process (like torch.set_num_threads)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    for lib in _libraries():
        lib.set_num_threads(n)


def get_num_threads() -> int | None:
    """Threads of numpy's BLAS (None when threadpoolctl cannot see it)."""
    libs = _libraries()
    return libs[0].get_num_threads() if libs else None

"""Elementwise and reduction kernels that beat numpy's obvious one-liner by a wide margin.

* ``relu(a)``: ``np.maximum(a, 0)`` with a *scalar* 0 misses numpy's SIMD loop (measured with
  numpy 2.4 on a float32 [64,8,8,16]: 66 us, against 14 us for ``np.maximum`` of two arrays). So
  the zero operand is a read-only view of a cached zero buffer. On Unix that buffer is a
  read-only anonymous ``mmap``: every page of it is the kernel's one shared zero page, so it
  costs no RAM and reading it hits the cache ([64,28,28,32]: 0.99 ms, against 1.24 ms with a
  zero array in RAM and 1.90 ms with the scalar).
* ``sum_to_shape(a, shape)``: the bias gradient sums a [N,H,W,C] gradient over N, H, W. numpy's
  ``sum(axis=(0, 1, 2))`` walks it in C-long runs (132 us for [64,8,8,16]); the same sum as a
  GEMV, ``ones(N*H*W) @ a.reshape(-1, C)``, takes 12 us (plus ~9 us to switch BLAS to one
  thread from 9,216 elements on, see kernels/blas.py).
"""

from __future__ import annotations

import math
import mmap

import numpy as np

from .blas import gemm_threads

__all__ = ["relu", "sum_to_shape"]

_zero_buffers: dict[np.dtype, np.ndarray] = {}
_ones_buffers: dict[np.dtype, np.ndarray] = {}


def _zero_pages(dtype: np.dtype, size: int) -> np.ndarray:
    """``size`` zeros backed by the OS's shared zero page (read-only mmap), or ``np.zeros``."""
    try:
        mm = mmap.mmap(
            -1,
            size * dtype.itemsize,
            flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
            prot=mmap.PROT_READ,
        )
    except (AttributeError, TypeError, OSError, ValueError):  # Windows' mmap has no flags/prot
        return np.zeros(size, dtype=dtype)
    return np.frombuffer(mm, dtype=dtype, count=size)


def _cached(cache: dict[np.dtype, np.ndarray], fill: int, dtype: np.dtype, size: int) -> np.ndarray:
    """A read-only 1-D view of ``size`` elements all equal to ``fill`` (a buffer grown on demand)."""
    buf = cache.get(dtype)
    if buf is None or buf.size < size:
        size_new = max(size, 1024)
        buf = _zero_pages(dtype, size_new) if fill == 0 else np.ones(size_new, dtype=dtype)
        buf.flags.writeable = False
        cache[dtype] = buf
    return buf[:size]


def relu(a: np.ndarray) -> np.ndarray:
    """max(a, 0) elementwise, any shape; float arrays via numpy's array-array SIMD loop."""
    if a.dtype.kind != "f" or a.ndim == 0:
        return np.maximum(a, 0)
    return np.maximum(a, _cached(_zero_buffers, 0, a.dtype, a.size).reshape(a.shape))


# float types BLAS multiplies (not float16 / longdouble / non-native byte order)
_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def sum_to_shape(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``a`` over the axes along which ``shape`` was broadcast to ``a.shape``.

    a: [*lead, *mid] with ``shape`` broadcastable to a.shape -> array of ``shape``. When the
    summed axes are exactly the leading ones (a bias [C] against [N,H,W,C]) and a is a
    contiguous float array, the sum is one GEMV ``ones(M) @ a.reshape(M, -1)``.
    """
    lead = a.ndim - len(shape)
    if (  # fast path for the common case (a bias gradient): only leading axes are summed
        lead > 0
        and a.shape[lead:] == shape
        and a.dtype in _BLAS_FLOATS
        and a.flags.c_contiguous
        and a.size
    ):
        return _sum_leading(a, a.size // math.prod(shape), shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1
    )
    if not axes:
        return a.reshape(shape)
    k = len(axes)
    if axes == tuple(range(k)) and a.dtype in _BLAS_FLOATS and a.flags.c_contiguous and a.size:
        return _sum_leading(a, math.prod(a.shape[:k]), shape)
    return np.sum(a, axis=axes, keepdims=True).reshape(shape)


def _sum_leading(a: np.ndarray, m: int, shape: tuple[int, ...]) -> np.ndarray:
    """Sum of the C-contiguous float32/64 ``a`` over its leading axes (``m`` rows in all), as
    the GEMV ones(m) @ a.reshape(m, -1)."""
    rows, ones = a.reshape(m, a.size // m), _cached(_ones_buffers, 1, a.dtype, m)
    with gemm_threads(rows.size, gemv=True):  # small ones on one thread, as every GEMM
        return (ones @ rows).reshape(shape)

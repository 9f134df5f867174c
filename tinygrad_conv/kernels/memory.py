"""Keep freed array memory in the process instead of handing it back to the OS after every op.

Why: a training step allocates and frees the same activation-sized arrays every time. glibc's
malloc returns large freed blocks to the OS (``munmap``, or trimming the heap top once more than
``M_TRIM_THRESHOLD`` is free), so the next step's arrays start as fresh pages, and each first
touch of a 4 KiB page is a page fault. Measured on the digits CNN training step (batch 64, 2-core
VM): 320 page faults per step with glibc's defaults, 0 with the settings below, and the step went
from about 4.8 ms to 4.1 ms. Bigger convolutions gain more: every new 6 MB array is 1,500 faults.

What changes: blocks below ``MMAP_THRESHOLD`` come from the heap, and up to ``TRIM_THRESHOLD``
bytes of free heap stay mapped for reuse. So resident memory stays at its high-water mark (plus
at most ``TRIM_THRESHOLD``) instead of shrinking between steps; blocks of ``MMAP_THRESHOLD`` and
more are still returned at once. Nothing happens on import: a program opts in by calling
``tc.tune_malloc()`` (the examples and the benchmark do, as their documented default); the
environment variable ``TINYGRAD_CONV_MALLOC=default`` makes that call a no-op. Only glibc is tuned; elsewhere (musl, macOS,
Windows) nothing happens.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc"]

#: Allocations at least this large are mmapped and returned to the OS as soon as they are freed.
MMAP_THRESHOLD = 32 << 20
#: At most this much free heap memory stays mapped for reuse.
TRIM_THRESHOLD = 128 << 20

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_tuned: bool | None = None


def tune_malloc() -> bool:
    """Apply the settings above once per process; return whether glibc accepted them."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("TINYGRAD_CONV_MALLOC", "").lower() == "default":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc's; musl's is a stub that returns 0
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting either value also turns off glibc's dynamic threshold, which would otherwise move
    # the mmap threshold up to the largest block freed so far (and the trim threshold with it).
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned

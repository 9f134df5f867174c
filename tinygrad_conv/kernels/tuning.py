"""The process-wide speed settings, applied only when a program asks for them.

Importing tinygrad_conv changes nothing outside the package. A program that wants the measured
speed-ups (the examples and the benchmark do, as their documented default) calls
:func:`tune_for_speed`, which applies both:

* ``memory.tune_malloc()``: glibc keeps freed activation memory for the next step (the digits
  step: 320 page faults -> 0, about 4.8 -> 4.1 ms);
* ``blas.set_policy("adaptive")``: small GEMMs keep BLAS's threads on an idle machine and go
  single-threaded only while other processes keep the cores busy (digits step 4.5 -> 4.1 ms
  idle), at the price of last-bit differences between runs under changing load. The library's
  default, "single", is bit-reproducible.
"""

from __future__ import annotations

from . import blas, memory

__all__ = ["tune_for_speed"]


def tune_for_speed() -> dict[str, object]:
    """Apply the malloc tuning and the adaptive BLAS policy; return what is now in effect.

    Returns:
        ``{"malloc_tuned": bool, "blas_policy": str}`` (malloc tuning is False off glibc or
        with ``TINYGRAD_CONV_MALLOC=default``).
    """
    tuned = memory.tune_malloc()
    blas.set_policy("adaptive")
    return {"malloc_tuned": tuned, "blas_policy": blas.get_policy()}

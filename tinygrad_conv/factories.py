"""Tensor factories beyond tensor.py's: eye, linspace, logspace, full_like, empty, empty_like,
randint, rand_like, randn_like (PyTorch's names and defaults; float32 unless ``dtype`` is given,
as the other factories; the random ones draw from the generator ``tc.manual_seed`` seeds, or from
``generator``: a numpy Generator or a seed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.tensor import DEFAULT_FLOAT, Tensor, _rng, _shape, _to_array


def _size(op: str, value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{op}: {name} must be a non-negative int, got {value!r}")
    return int(value)


def eye(
    n: int,
    m: int | None = None,
    k: int = 0,
    dtype: Any = DEFAULT_FLOAT,
    requires_grad: bool = False,
) -> Tensor:
    """``[n, m]`` (m defaults to n) with ones on the k-th diagonal, zeros elsewhere."""
    n = _size("eye", n, "n")
    m = n if m is None else _size("eye", m, "m")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"eye: k must be an int, got {k!r}")
    return Tensor(np.eye(n, m, int(k), dtype=dtype), requires_grad=requires_grad)


def linspace(
    start: float,
    stop: float,
    num: int,
    dtype: Any = DEFAULT_FLOAT,
    requires_grad: bool = False,
) -> Tensor:
    """``[num]`` evenly spaced values from ``start`` to ``stop`` inclusive (torch.linspace's
    ``steps`` is ``num``); computed in float64, then converted."""
    num = _size("linspace", num, "num")
    data = np.linspace(start, stop, num, dtype=np.float64).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def logspace(
    start: float,
    stop: float,
    num: int,
    base: float = 10.0,
    dtype: Any = DEFAULT_FLOAT,
    requires_grad: bool = False,
) -> Tensor:
    """``[num]`` values base ** linspace(start, stop, num)."""
    num = _size("logspace", num, "num")
    data = np.logspace(start, stop, num, base=base, dtype=np.float64).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def full_like(t: Any, value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor with ``t``'s shape (and dtype unless ``dtype``) filled with ``value``."""
    a = _to_array(t)
    return Tensor(np.full(a.shape, value, dtype=dtype or a.dtype), requires_grad=requires_grad)


def empty(*shape: int, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``shape`` (its values are whatever the memory held)."""
    return Tensor(np.empty(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def empty_like(t: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor with ``t``'s shape and dtype."""
    a = _to_array(t)
    return Tensor(np.empty(a.shape, dtype=dtype or a.dtype), requires_grad=requires_grad)


def randint(
    low: int,
    high: int | None = None,
    size: Sequence[int] | int = (),
    dtype: Any = np.int64,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Uniform integers in [low, high) (``randint(high, size=...)`` means [0, high)), int64."""
    if high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"randint: {name} must be an int, got {v!r}")
    if low >= high:
        raise ValueError(f"randint: low={low} must be less than high={high}")
    shape = _shape((size,) if isinstance(size, (int, np.integer)) else tuple(size))
    return Tensor(_rng(generator).integers(low, high, shape, dtype=np.dtype(dtype)))


def rand_like(
    t: Any, dtype: Any = None, generator: np.random.Generator | int | None = None
) -> Tensor:
    """Uniform [0, 1) samples with ``t``'s shape (and float dtype)."""
    a = _to_array(t)
    dt = np.dtype(dtype or (a.dtype if a.dtype.kind == "f" else DEFAULT_FLOAT))
    return Tensor(_rng(generator).random(a.shape).astype(dt))


def randn_like(
    t: Any, dtype: Any = None, generator: np.random.Generator | int | None = None
) -> Tensor:
    """Standard normal samples with ``t``'s shape (and float dtype)."""
    a = _to_array(t)
    dt = np.dtype(dtype or (a.dtype if a.dtype.kind == "f" else DEFAULT_FLOAT))
    return Tensor(_rng(generator).standard_normal(a.shape).astype(dt))


__all__ = [
    "empty",
    "empty_like",
    "eye",
    "full_like",
    "linspace",
    "logspace",
    "rand_like",
    "randint",
    "randn_like",
]

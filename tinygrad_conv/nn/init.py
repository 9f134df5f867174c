"""Weight initialisers (PyTorch's ``torch.nn.init`` names and formulas) for this library's layouts.

Every function fills a Tensor (or ndarray) *in place*, keeps its dtype, returns it, and draws from
``generator``: a ``np.random.Generator``, an int seed, or ``None`` for the generator that
``tc.manual_seed`` seeds. Samples are drawn in float64 and then cast, so a given seed gives the same
values (up to rounding) in float32 and float64.

Fans follow the layouts used here (which differ from PyTorch's ``[out, in, kh, kw]``):

* Linear weight ``[in, out]``:                 fan_in = in,          fan_out = out
* conv weight HWIO ``[kh, kw, in/groups, out]``: fan_in = kh*kw*in,    fan_out = kh*kw*out
  (any rank >= 3: all leading axes are the receptive field, like Keras' ``_compute_fans``)
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_conv.tensor import Tensor, _rng

__all__ = [
    "calculate_gain",
    "constant_",
    "fans",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

Generator = np.random.Generator | int | None


def _array(t: Tensor | np.ndarray, fn: str) -> np.ndarray:
    arr = t.data if isinstance(t, Tensor) else t
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fn}: expected a Tensor or ndarray, got {type(t).__name__}")
    return arr


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: ``[in, out]`` linear or ``[*kernel, in, out]`` conv."""
    if len(shape) < 2:
        raise ValueError(f"fans: need a weight with at least 2 dims ([in, out]), got shape {shape}")
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table).

    linear/conv/sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu(slope): sqrt(2 / (1 + slope^2));
    selu: 3/4.
    """
    if nonlinearity in ("linear", "conv2d", "conv_transpose2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fill(t: Tensor | np.ndarray, values: np.ndarray | float) -> Tensor | np.ndarray:
    arr = _array(t, "init")
    arr[...] = values  # in place: the Parameter object and any optimizer references stay valid
    return t


def uniform_(
    t: Tensor | np.ndarray, a: float = 0.0, b: float = 1.0, generator: Generator = None
) -> Tensor | np.ndarray:
    """Fill with U(a, b)."""
    arr = _array(t, "uniform_")
    return _fill(t, _rng(generator).uniform(a, b, arr.shape))


def normal_(
    t: Tensor | np.ndarray, mean: float = 0.0, std: float = 1.0, generator: Generator = None
) -> Tensor | np.ndarray:
    """Fill with N(mean, std^2)."""
    arr = _array(t, "normal_")
    return _fill(t, _rng(generator).normal(mean, std, arr.shape))


def constant_(t: Tensor | np.ndarray, value: float) -> Tensor | np.ndarray:
    """Fill with ``value``."""
    return _fill(t, value)


def zeros_(t: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Fill with 0."""
    return _fill(t, 0)


def ones_(t: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Fill with 1."""
    return _fill(t, 1)


def _fan(shape: tuple[int, ...], mode: str) -> int:
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def kaiming_uniform_(
    t: Tensor | np.ndarray,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
) -> Tensor | np.ndarray:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    Defaults (a=0, leaky_relu) give gain sqrt(2), i.e. b = sqrt(6 / fan_in).
    """
    arr = _array(t, "kaiming_uniform_")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(arr.shape, mode))
    return _fill(t, _rng(generator).uniform(-bound, bound, arr.shape))


def kaiming_normal_(
    t: Tensor | np.ndarray,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator = None,
) -> Tensor | np.ndarray:
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    arr = _array(t, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(arr.shape, mode))
    return _fill(t, _rng(generator).normal(0.0, std, arr.shape))


def xavier_uniform_(
    t: Tensor | np.ndarray, gain: float = 1.0, generator: Generator = None
) -> Tensor | np.ndarray:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    arr = _array(t, "xavier_uniform_")
    fan_in, fan_out = fans(arr.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(t, _rng(generator).uniform(-bound, bound, arr.shape))


def xavier_normal_(
    t: Tensor | np.ndarray, gain: float = 1.0, generator: Generator = None
) -> Tensor | np.ndarray:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    arr = _array(t, "xavier_normal_")
    fan_in, fan_out = fans(arr.shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(t, _rng(generator).normal(0.0, std, arr.shape))


def default_init_(
    weight: Tensor, bias: Tensor | None, generator: Generator = None, fan_in: int | None = None
) -> None:
    """PyTorch's default for Linear/Conv: kaiming_uniform_(a=sqrt(5)) on the weight, which is
    U(+-1/sqrt(fan_in)), and U(+-1/sqrt(fan_in)) on the bias (both from one generator)."""
    rng = _rng(generator)
    kaiming_uniform_(weight, a=math.sqrt(5.0), generator=rng)
    if bias is not None:
        fi = fans(weight.shape)[0] if fan_in is None else fan_in
        bound = 1.0 / math.sqrt(fi) if fi > 0 else 0.0
        uniform_(bias, -bound, bound, generator=rng)

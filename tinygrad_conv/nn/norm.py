"""Normalisation layers beyond BatchNorm, channels last (NHWC) like the rest of ``tc.nn``:
LayerNorm, GroupNorm, InstanceNorm2d, and their functional forms.

All three compute ``(x - mean) / sqrt(var + eps)`` with the *biased* variance over their axes,
then an optional per-feature affine map, as compositions of differentiable ops (mean, sub, mul,
rsqrt), so double backward works. Axes, for ``x: [N, H, W, C]``:

* LayerNorm(normalized_shape): the last ``len(normalized_shape)`` axes (e.g. ``[C]`` or
  ``[H, W, C]``), affine of shape ``normalized_shape``;
* GroupNorm(G, C): (H, W, the C/G channels of each group), per sample; affine per channel;
* InstanceNorm2d(C): (H, W) per sample and channel; affine per channel (off by default), running
  statistics optional (off by default), as PyTorch.

Compared with PyTorch (NCHW) by transposing; the results are the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv.nn.module import Module, Parameter
from tinygrad_conv.ops import mean, reshape, rsqrt
from tinygrad_conv.tensor import Tensor

__all__ = [
    "GroupNorm", "InstanceNorm2d", "LayerNorm", "group_norm", "instance_norm", "layer_norm",
]  # fmt: skip


def _normalize(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    mu = mean(x, axes, keepdims=True)
    d = x - mu
    var = mean(d * d, axes, keepdims=True)
    return d * rsqrt(var + eps)


def _affine(y: Tensor, weight: Any, bias: Any) -> Tensor:
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _as_shape(op: str, shape: int | Sequence[int]) -> tuple[int, ...]:
    s = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not s or any(not isinstance(n, (int, np.integer)) or n <= 0 for n in s):
        raise ValueError(f"{op}: normalized_shape must be positive ints, got {shape!r}")
    return tuple(int(n) for n in s)


def layer_norm(
    x: Any,
    normalized_shape: int | Sequence[int],
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` axes, which must equal it.

    ``x: [*, *normalized_shape] -> same``; ``weight``, ``bias``: ``normalized_shape`` or None.
    """
    t = x if isinstance(x, Tensor) else Tensor(x)
    shape = _as_shape("layer_norm", normalized_shape)
    k = len(shape)
    if t.ndim < k or t.shape[-k:] != shape:
        raise ValueError(
            f"layer_norm: input of shape {t.shape} does not end with normalized_shape {shape}"
        )
    y = _normalize(t, tuple(range(t.ndim - k, t.ndim)), eps)
    return _affine(y, weight, bias)


def group_norm(
    x: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Tensor:
    """Normalise each sample over its spatial axes and the channels of each of ``num_groups``
    groups of consecutive channels. ``x: [N, ..., C] -> same``; weight/bias: ``[C]``."""
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim < 2:
        raise ValueError(f"group_norm: input must be [N, ..., C], got shape {t.shape}")
    c = t.shape[-1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(
            f"group_norm: {c} channels (shape {t.shape}) do not split into {num_groups} groups"
        )
    grouped = reshape(t, t.shape[:-1] + (num_groups, c // num_groups))
    # stats per (sample, group): every axis but the batch (0) and the group (-2)
    axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
    y = reshape(_normalize(grouped, axes, eps), t.shape)
    return _affine(y, weight, bias)


def instance_norm(
    x: Any,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: Any = None,
    bias: Any = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each (sample, channel) over the spatial axes: ``x: [N, ..., C] -> same``.

    With ``use_input_stats`` the instance statistics normalise and, when given, ``running_mean`` /
    ``running_var`` (``[C]`` arrays) are updated in place with ``momentum`` from the batch average
    of the instance means and *unbiased* variances (PyTorch's rule); otherwise the running
    statistics normalise.
    """
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim < 3:
        raise ValueError(f"instance_norm: input must be [N, ..., C], got shape {t.shape}")
    axes = tuple(range(1, t.ndim - 1))
    if use_input_stats:
        if running_mean is not None and running_var is not None:
            n = math.prod(t.shape[1:-1])
            if n < 2:
                raise ValueError(
                    f"instance_norm: running statistics need more than 1 value per channel, "
                    f"got input shape {t.shape}"
                )
            data = t.data
            m = data.mean(axis=axes)
            v = data.var(axis=axes, ddof=1)
            running_mean *= 1 - momentum
            running_mean += momentum * m.mean(axis=0)
            running_var *= 1 - momentum
            running_var += momentum * v.mean(axis=0)
        y = _normalize(t, axes, eps)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean/running_var")
        scale = 1.0 / np.sqrt(running_var.astype(t.dtype) + eps)
        y = (t - running_mean.astype(t.dtype)) * scale.astype(t.dtype)
    return _affine(y, weight, bias)


class _Norm(Module):
    def _check(self, ok: bool, expected: str, x: Any) -> None:
        if not ok:
            shape = tuple(getattr(x, "shape", np.shape(x)))
            raise ValueError(f"{self._where()}: expected input {expected}, got shape {shape}")


class LayerNorm(_Norm):
    """Layer normalisation over the trailing ``normalized_shape`` axes (PyTorch's LayerNorm).

    Args:
        normalized_shape: int or tuple, the trailing shape of the input.
        eps: added to the variance.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros) of ``normalized_shape``.
        bias: with elementwise_affine, whether to learn the bias.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape("LayerNorm", normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        affine = self.elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        """``[*, *normalized_shape] -> same``."""
        k = len(self.normalized_shape)
        ok = len(x.shape) >= k and tuple(x.shape[-k:]) == self.normalized_shape
        self._check(ok, f"[..., {', '.join(map(str, self.normalized_shape))}]", x)
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class GroupNorm(_Norm):
    """Group normalisation of NHWC input (PyTorch's GroupNorm with channels last).

    Args:
        num_groups: G, dividing num_channels.
        num_channels: C.
        eps: added to the variance.
        affine: learn per-channel ``weight`` (ones) and ``bias`` (zeros).
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels={num_channels} is not divisible by "
                f"num_groups={num_groups}"
            )
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        self.weight = Parameter(np.ones(num_channels, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        """``[N, ..., C] -> same``."""
        ok = len(x.shape) >= 2 and x.shape[-1] == self.num_channels
        self._check(ok, f"[N, ..., {self.num_channels}]", x)
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(_Norm):
    """Instance normalisation of ``[N, H, W, C]`` (PyTorch's InstanceNorm2d, channels last).

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: running-statistics update rate.
        affine: learn per-channel ``weight``/``bias`` (default False, as PyTorch).
        track_running_stats: keep running mean/var (default False); eval mode then uses them.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        c = self.num_features = int(num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(c, dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype))
            self.register_buffer("running_var", np.ones(c, dtype))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        """``[N, H, W, C] -> same``."""
        ok = len(x.shape) == 4 and x.shape[-1] == self.num_features
        self._check(ok, f"[N, H, W, {self.num_features}]", x)
        if self.training or not self.track_running_stats:
            # running statistics (if any) are updated in training only
            rm, rv = (self.running_mean, self.running_var) if self.training else (None, None)
            return instance_norm(x, rm, rv, self.weight, self.bias, True, self.momentum, self.eps)
        return instance_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, eps=self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )

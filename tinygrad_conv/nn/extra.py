"""More layers, channels last (NHWC): Embedding, Dropout2d, Upsample / interpolate (nearest,
bilinear), AdaptiveAvgPool2d / adaptive_avg_pool2d, Unflatten, PReLU, and module forms of the
activations of ops/activation.py (GELU, SiLU, ELU, CELU, SELU, Softplus, Mish, Softsign,
LogSigmoid, Hardtanh, ReLU6, Hardsigmoid, Hardswish, Softshrink, Hardshrink, Tanhshrink, Softmin).

(Identity, Flatten and GlobalAvgPool2d are in nn/layers.py.)

interpolate and adaptive pooling are linear maps along H and W, built from differentiable ops:
nearest is an integer-array getitem per axis (its adjoint adds the copies back), bilinear is two
getitems blended with constant weights per axis, adaptive average pooling is an einsum with two
constant averaging matrices. Index and weight formulas are PyTorch's
(``area_pixel_compute_source_index`` and the adaptive bins floor(i n / o) .. ceil((i + 1) n / o)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv import ops
from tinygrad_conv.nn.module import Module, Parameter
from tinygrad_conv.ops._util import constant
from tinygrad_conv.tensor import Tensor, _rng

__all__ = [
    "AdaptiveAvgPool2d", "CELU", "Dropout2d", "ELU", "Embedding", "GELU", "Hardshrink",
    "Hardsigmoid", "Hardswish", "Hardtanh", "LogSigmoid", "Mish", "PReLU", "ReLU6", "SELU", "SiLU",
    "Softmin", "Softplus", "Softshrink", "Softsign", "Tanhshrink", "Unflatten", "Upsample",
    "adaptive_avg_pool2d", "dropout2d", "embedding", "interpolate",
]  # fmt: skip


def _bad(module: Module, expected: str, x: Any) -> ValueError:
    shape = tuple(getattr(x, "shape", np.shape(x)))
    return ValueError(f"{module._where()}: expected input {expected}, got shape {shape}")


# -- embedding ------------------------------------------------------------------------------------
def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight [num, dim]`` at integer ``indices [*S]`` -> ``[*S, dim]``.

    The gradient of each row is the sum over its occurrences (getitem's scatter-add); the row
    ``padding_idx`` gets none (PyTorch's rule).
    """
    idx = np.array(indices.data if isinstance(indices, Tensor) else indices)
    num = weight.shape[0]
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num):
        bad = idx[(idx < 0) | (idx >= num)].ravel()[0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for {num} embeddings")
    rows = ops.getitem(weight, idx)
    if padding_idx is None or not (idx == padding_idx).any():
        return rows
    pad = np.broadcast_to((idx == padding_idx)[..., None], rows.shape)
    # the padding rows' values as a constant: same output, no gradient to that row
    return ops.where(pad, constant(np.ascontiguousarray(rows.data)), rows)


class Embedding(Module):
    """A lookup table ``weight [num_embeddings, embedding_dim]``, initialised N(0, 1) (PyTorch's);
    the row ``padding_idx`` starts at zero and receives no gradient."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(
                f"Embedding: sizes must be positive, got {num_embeddings} x {embedding_dim}"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} embeddings"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        w = _rng(seed).standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def forward(self, indices: Any) -> Tensor:
        """``[*S]`` integer indices -> ``[*S, embedding_dim]``."""
        try:
            return embedding(indices, self.weight, self.padding_idx)
        except (IndexError, TypeError) as e:
            raise type(e)(f"{self._where()}: {e}") from None

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


# -- dropout of whole channels --------------------------------------------------------------------
def dropout2d(
    x: Any,
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Zero whole channels of ``x [N, H, W, C]`` with probability ``p`` (one draw per sample and
    channel), scaling the kept ones by 1/(1-p); identity when not ``training``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim != 4:
        raise ValueError(f"dropout2d: input must be [N, H, W, C], got shape {t.shape}")
    if not training or p == 0.0:
        return t
    shape = (t.shape[0], 1, 1, t.shape[3])
    if p == 1.0:
        mask = np.zeros(shape, t.dtype)
    else:
        keep = _rng(generator).random(shape) >= p
        mask = keep.astype(t.dtype) * t.dtype.type(1.0 / (1.0 - p))
    return t * constant(mask)


class Dropout2d(Module):
    """Channel dropout for NHWC feature maps (PyTorch's Dropout2d, channels last)."""

    def __init__(self, p: float = 0.5, seed: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = (
            seed
            if isinstance(seed, np.random.Generator) or seed is None
            else (np.random.default_rng(seed))
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[N, H, W, C] -> same``."""
        if len(x.shape) != 4:
            raise _bad(self, "[N, H, W, C]", x)
        return dropout2d(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# -- resizing -------------------------------------------------------------------------------------
def _pair(op: str, name: str, value: Any, kind: type) -> tuple[Any, Any] | None:
    if value is None:
        return None
    pair = (value, value) if isinstance(value, (int, float, np.number)) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, (int, float, np.number)) or v <= 0 for v in pair):
        raise ValueError(f"{op}: {name} must be a positive number or a pair, got {value!r}")
    return tuple(kind(v) for v in pair)  # type: ignore[return-value]


def _nearest_index(n_in: int, n_out: int, scale: float) -> np.ndarray:
    return np.minimum(np.floor(np.arange(n_out) * scale).astype(np.int64), n_in - 1)


def _linear_weights(
    n_in: int, n_out: int, scale: float, align_corners: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(n_out, dtype=np.float64)
    src = i * scale if align_corners else np.maximum((i + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    return i0, i1, lam


def interpolate(
    x: Any,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Resize ``x [N, H, W, C]`` to ``[N, H', W', C]`` (F.interpolate on channels-last maps).

    ``size`` gives (H', W'); or ``scale_factor`` gives H' = floor(H * s) (and the source positions
    use 1/s, as PyTorch without ``recompute_scale_factor``). ``mode``: 'nearest' or 'bilinear';
    ``align_corners`` (bilinear only, default False) maps corner pixels onto corner pixels.
    """
    op = "interpolate"
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim != 4:
        raise ValueError(f"{op}: input must be [N, H, W, C], got shape {t.shape}")
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"{op}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners only applies to mode='bilinear'")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    hw_in = t.shape[1:3]
    sizes = _pair(op, "size", size, int)
    factors = _pair(op, "scale_factor", scale_factor, float)
    if sizes is None:
        sizes = tuple(int(np.floor(n * f)) for n, f in zip(hw_in, factors, strict=True))
        if min(sizes) <= 0:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} gives output size {sizes}")
    ac = bool(align_corners)
    out = t
    for k, (n_in, n_out) in enumerate(zip(hw_in, sizes, strict=True)):
        axis = 1 + k
        if ac:
            scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            scale = 1.0 / factors[k] if factors is not None else n_in / n_out
        lead = (slice(None),) * axis
        if mode == "nearest":
            out = ops.getitem(out, lead + (_nearest_index(n_in, n_out, scale),))
            continue
        i0, i1, lam = _linear_weights(n_in, n_out, scale, ac)
        shape = [1] * 4
        shape[axis] = n_out
        w1 = constant(lam.reshape(shape).astype(t.dtype))
        w0 = constant((1.0 - lam).reshape(shape).astype(t.dtype))
        out = ops.getitem(out, lead + (i0,)) * w0 + ops.getitem(out, lead + (i1,)) * w1
    return out


class Upsample(Module):
    """Resize NHWC maps by ``size`` or ``scale_factor`` with 'nearest' or 'bilinear' (PyTorch's
    Upsample, channels last)."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners
        # validate now, not at the first forward
        interpolate(np.zeros((1, 2, 2, 1), np.float32), size, scale_factor, mode, align_corners)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, H, W, C] -> [N, H', W', C]``."""
        if len(x.shape) != 4:
            raise _bad(self, "[N, H, W, C]", x)
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


def _adaptive_matrix(n_in: int, n_out: int, dtype: np.dtype) -> np.ndarray:
    i = np.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)  # ceil
    j = np.arange(n_in)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(x: Any, output_size: int | Sequence[int | None]) -> Tensor:
    """Average ``x [N, H, W, C]`` over PyTorch's adaptive bins to ``[N, oh, ow, C]`` (an einsum
    with two constant averaging matrices; None in output_size keeps that size)."""
    op = "adaptive_avg_pool2d"
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim != 4:
        raise ValueError(f"{op}: input must be [N, H, W, C], got shape {t.shape}")
    size = (
        (output_size, output_size)
        if isinstance(output_size, (int, np.integer))
        else tuple(output_size)
    )
    if len(size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    oh, ow = (t.shape[1 + k] if s is None else s for k, s in enumerate(size))
    if any(not isinstance(s, (int, np.integer)) or s <= 0 for s in (oh, ow)):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    ph = constant(_adaptive_matrix(t.shape[1], int(oh), t.dtype))
    pw = constant(_adaptive_matrix(t.shape[2], int(ow), t.dtype))
    return ops.einsum("nhwc,ph,qw->npqc", t, ph, pw)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (PyTorch's AdaptiveAvgPool2d, channels last)."""

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        """``[N, H, W, C] -> [N, oh, ow, C]``."""
        if len(x.shape) != 4:
            raise _bad(self, "[N, H, W, C]", x)
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Unflatten(Module):
    """Split axis ``axis`` into ``sizes`` (inverse of Flatten): e.g. [N, 784] -> [N, 28, 28, 1]."""

    def __init__(self, axis: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.axis, self.sizes = int(axis), tuple(int(s) for s in sizes)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., prod(sizes), ...] -> [..., *sizes, ...]``."""
        nd = len(x.shape)
        if not -nd <= self.axis < nd or x.shape[self.axis] != int(np.prod(self.sizes)):
            raise _bad(self, f"with axis {self.axis} of length {int(np.prod(self.sizes))}", x)
        ax = self.axis % nd
        return ops.reshape(x, tuple(x.shape[:ax]) + self.sizes + tuple(x.shape[ax + 1 :]))

    def extra_repr(self) -> str:
        return f"axis={self.axis}, sizes={self.sizes}"


# -- activations as modules -----------------------------------------------------------------------
class PReLU(Module):
    """x for x > 0, weight * x otherwise; ``weight [num_parameters]`` (1 or C, channels last)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = np.float32):
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.weight = Parameter(np.full(self.num_parameters, init, dtype))

    def forward(self, x: Tensor) -> Tensor:
        """Same shape; the weight runs along the last axis."""
        try:
            return ops.prelu(x, self.weight)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from None

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _Activation(Module):
    """A stateless activation: ``forward`` applies ``fn`` with the stored keyword arguments."""

    fn: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x: Tensor) -> Tensor:
        """Same shape as ``x``."""
        return type(self).fn(x, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class GELU(_Activation):
    """GELU, exact (``approximate='none'``) or tanh form."""

    fn = staticmethod(ops.gelu)

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        super().__init__(approximate=approximate)


class SiLU(_Activation):
    """x * sigmoid(x)."""

    fn = staticmethod(ops.silu)


class ELU(_Activation):
    """ELU with ``alpha``."""

    fn = staticmethod(ops.elu)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)


class CELU(_Activation):
    """CELU with ``alpha``."""

    fn = staticmethod(ops.celu)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)


class SELU(_Activation):
    """SELU."""

    fn = staticmethod(ops.selu)


class Softplus(_Activation):
    """log(1 + e^(beta x)) / beta, linear past ``threshold``."""

    fn = staticmethod(ops.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__(beta=beta, threshold=threshold)


class Mish(_Activation):
    """x * tanh(softplus(x))."""

    fn = staticmethod(ops.mish)


class Softsign(_Activation):
    """x / (1 + |x|)."""

    fn = staticmethod(ops.softsign)


class LogSigmoid(_Activation):
    """log(sigmoid(x))."""

    fn = staticmethod(ops.logsigmoid)


class Hardtanh(_Activation):
    """clip(x, min_val, max_val)."""

    fn = staticmethod(ops.hardtanh)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__(min_val=min_val, max_val=max_val)


class ReLU6(_Activation):
    """min(max(x, 0), 6)."""

    fn = staticmethod(ops.relu6)


class Hardsigmoid(_Activation):
    """relu6(x + 3) / 6."""

    fn = staticmethod(ops.hardsigmoid)


class Hardswish(_Activation):
    """x * relu6(x + 3) / 6."""

    fn = staticmethod(ops.hardswish)


class Softshrink(_Activation):
    """Shrink toward 0 by ``lambd``."""

    fn = staticmethod(ops.softshrink)

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__(lambd=lambd)


class Hardshrink(_Activation):
    """Zero where |x| <= ``lambd``."""

    fn = staticmethod(ops.hardshrink)

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__(lambd=lambd)


class Tanhshrink(_Activation):
    """x - tanh(x)."""

    fn = staticmethod(ops.tanhshrink)


class Softmin(_Activation):
    """softmax(-x) along ``axis``."""

    fn = staticmethod(ops.softmin)

    def __init__(self, axis: int = -1) -> None:
        super().__init__(axis=axis)

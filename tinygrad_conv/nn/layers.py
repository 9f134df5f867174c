"""Layers, NHWC like Keras/TensorFlow: conv weights are HWIO, linear weights ``[in, out]``.

Each ``forward`` is a shape check plus a few op calls (the per-op overhead is what a training step
pays). A bad input raises a ValueError that names the layer's place in the model, e.g.
``features.0 (Conv2d): expected input [N,H,W,3], got shape (8, 28, 28, 1)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv.nn import functional as F
from tinygrad_conv.nn import init
from tinygrad_conv.nn.module import Module, Parameter
from tinygrad_conv.ops import flatten, leaky_relu, matmul, mean, relu, sigmoid, softmax, tanh
from tinygrad_conv.tensor import Tensor

__all__ = [
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d",
    "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "DepthwiseConv2d",
    "Dropout", "Flatten", "GlobalAvgPool2d", "Identity", "LeakyReLU", "Linear", "MaxPool1d",
    "MaxPool2d", "MaxPool3d", "ReLU", "Sigmoid", "Softmax", "Tanh",
]  # fmt: skip

IntOrPair = int | Sequence[int]
PaddingArg = str | int | Sequence[int] | Sequence[Sequence[int]]


# -- argument normalisation (construction time only) ----------------------------------------------
def _pair(layer: str, name: str, value: IntOrPair, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (h, w), each >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(
                f"{layer}: {name} must be an int or a pair of ints, got {value!r}"
            ) from None
        ints = all(isinstance(v, numbers.Integral) for v in value)  # type: ignore[union-attr]
        if len(pair) != 2 or not ints:
            raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _padding(layer: str, padding: PaddingArg) -> str | tuple[tuple[int, int], tuple[int, int]]:
    """Normalise a padding argument.

    'valid'/'same' (any case) -> 'VALID'/'SAME'; p -> ((p,p),(p,p)); (ph,pw) -> ((ph,ph),(pw,pw));
    ((top,bottom),(left,right)) is kept.
    """
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("VALID", "SAME"):
            raise ValueError(
                f"{layer}: padding must be 'valid', 'same', an int or pairs, got {padding!r}"
            )
        return mode
    if isinstance(padding, numbers.Integral):
        p = _pair(layer, "padding", padding, minimum=0)
        return ((p[0], p[0]), (p[1], p[1]))
    items = list(padding)
    if len(items) == 2 and all(isinstance(v, numbers.Integral) for v in items):
        ph, pw = _pair(layer, "padding", items, minimum=0)
        return ((ph, ph), (pw, pw))
    if len(items) == 2:
        return (_pair(layer, "padding", items[0], 0), _pair(layer, "padding", items[1], 0))
    raise ValueError(
        f"{layer}: padding must be 'valid', 'same', an int, (ph, pw) or "
        f"((top, bottom), (left, right)), got {padding!r}"
    )


def _generator(seed: np.random.Generator | int | None) -> np.random.Generator | int | None:
    # one Generator per layer so its weight and bias come from one stream
    return np.random.default_rng(seed) if isinstance(seed, numbers.Integral) else seed


class _Layer(Module):
    """Module with the shared input-error helper."""

    def _bad_input(self, expected: str, x: Any) -> ValueError:
        shape = tuple(getattr(x, "shape", np.shape(x)))
        hint = ""
        last = expected.rstrip("]").rsplit(",", 1)[-1]
        # channels where PyTorch keeps them (axis 1) and not last: say how to convert
        if last.isdigit() and len(shape) >= 3 and shape[1] == int(last) != shape[-1]:
            perm = (0, *range(2, len(shape)), 1)
            hint = (
                f". Hint: the input looks channels-first (PyTorch's layout); layers take "
                f"channels last: convert it with x.permute{perm}"
            )
        return ValueError(f"{self._where()}: expected input {expected}, got shape {shape}{hint}")


# -- convolution -----------------------------------------------------------------------------------
class Conv2d(_Layer):
    """2-D convolution on NHWC input with an HWIO weight (``tf.nn.conv2d`` + bias).

    Args:
        in_channels, out_channels: C_in and C_out.
        kernel_size: int or (kh, kw).
        strides: int or (sh, sw).
        padding: 'valid', 'same' (TF: output ceil(in/stride)), int p (p on every side),
            (ph, pw), or ((top, bottom), (left, right)).
        dilations: int or (dh, dw).
        groups: split channels into ``groups`` independent convolutions (both channel counts must
            be divisible by it); the weight then has ``in_channels / groups`` input channels.
        bias: add a learned [C_out] bias.
        dtype: parameter dtype.
        seed: int or np.random.Generator for the initialiser (default: the ``tc.manual_seed`` one).

    Shapes: input [N, H, W, C_in] -> output [N, H_out, W_out, C_out];
    weight [kh, kw, C_in/groups, C_out]; bias [C_out].
    Initialisation: PyTorch's default, U(+-1/sqrt(fan_in)) with fan_in = kh*kw*C_in/groups
    (``kaiming_uniform_(a=sqrt(5))``), bias likewise.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        strides: IntOrPair = 1,
        padding: PaddingArg = "valid",
        dilations: IntOrPair = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"{name}: channel counts must be positive, got {in_channels}, {out_channels}"
            )
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                f"be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.groups = int(groups)
        self.kernel_size = _pair(name, "kernel_size", kernel_size)
        self.strides = _pair(name, "strides", strides)
        self.dilations = _pair(name, "dilations", dilations)
        self.padding = _padding(name, padding)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((kh, kw, in_channels // groups, out_channels), dtype))
        self.bias = Parameter(np.empty((out_channels,), dtype)) if bias else None
        init.default_init_(self.weight, self.bias, _generator(seed))

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C_in] -> [N, H_out, W_out, C_out]."""
        shape = x.shape
        if len(shape) != 4 or shape[3] != self.in_channels:
            raise self._bad_input(f"[N,H,W,{self.in_channels}]", x)
        try:
            y = tc.conv2d(x, self.weight, self.strides, self.padding, "NHWC", self.dilations)
        except ValueError as e:  # e.g. a 'valid' kernel larger than the input: say which layer
            raise ValueError(f"{self._where()}: {e}") from e
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", strides={self.strides}, padding={self.padding!r}"
        if self.dilations != (1, 1):
            s += f", dilations={self.dilations}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _deconv_length(n: int, k: int, s: int, d: int, padding: str, output_padding: int | None) -> int:
    """Output length of a transposed conv, Keras' ``deconv_output_length``."""
    k = k + (k - 1) * (d - 1)
    if output_padding is None:
        return n * s if padding == "SAME" else n * s + max(k - s, 0)
    pad = k // 2 if padding == "SAME" else 0
    return (n - 1) * s + k - 2 * pad + output_padding


class ConvTranspose2d(_Layer):
    """Transposed ("de-") convolution on NHWC input (``tf.nn.conv2d_transpose`` + bias).

    Output size per axis as Keras' ``Conv2DTranspose``: 'same' -> in*stride;
    'valid' -> in*stride + max(k_eff - stride, 0), i.e. (in - 1)*stride + k_eff when k >= stride;
    with ``output_padding`` op: (in - 1)*stride + k_eff - 2*pad + op (pad = k_eff//2 for 'same').

    Args:
        in_channels, out_channels: C_in and C_out.
        kernel_size, strides, dilations: int or pair.
        padding: 'same' or 'valid'.
        output_padding: None, int or pair (each < its stride): extra rows/cols at the bottom/right.
        bias, dtype, seed: as Conv2d.

    Shapes: input [N, H, W, C_in] -> output [N, H_out, W_out, C_out];
    weight [kh, kw, C_out, C_in] (TF's layout: the filter of the conv this one transposes);
    bias [C_out].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        strides: IntOrPair = 1,
        padding: str = "same",
        output_padding: IntOrPair | None = None,
        dilations: IntOrPair = 1,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"{name}: channel counts must be positive, got {in_channels}, {out_channels}"
            )
        if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{name}: padding must be 'same' or 'valid', got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(name, "kernel_size", kernel_size)
        self.strides = _pair(name, "strides", strides)
        self.dilations = _pair(name, "dilations", dilations)
        self.padding = padding.upper()
        self.output_padding = (
            None if output_padding is None else _pair(name, "output_padding", output_padding, 0)
        )
        if self.output_padding is not None and any(
            op >= s for op, s in zip(self.output_padding, self.strides, strict=True)
        ):
            raise ValueError(
                f"{name}: output_padding {self.output_padding} must be smaller than strides "
                f"{self.strides}"
            )
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((kh, kw, out_channels, in_channels), dtype))
        self.bias = Parameter(np.empty((out_channels,), dtype)) if bias else None
        # PyTorch's fan_in for a transposed conv is kh*kw*C_out, which is fans() of this layout
        init.default_init_(self.weight, self.bias, _generator(seed))

    def output_hw(self, h: int, w: int) -> tuple[int, int]:
        """(H_out, W_out) for an input of spatial size (h, w)."""
        ops = self.output_padding or (None, None)
        return tuple(  # type: ignore[return-value]
            _deconv_length(n, k, s, d, self.padding, op)
            for n, k, s, d, op in zip(
                (h, w), self.kernel_size, self.strides, self.dilations, ops, strict=True
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C_in] -> [N, H_out, W_out, C_out]."""
        shape = x.shape
        if len(shape) != 4 or shape[3] != self.in_channels:
            raise self._bad_input(f"[N,H,W,{self.in_channels}]", x)
        ho, wo = self.output_hw(shape[1], shape[2])
        out_shape = (shape[0], ho, wo, self.out_channels)
        try:
            y = tc.conv2d_transpose(
                x, self.weight, out_shape, self.strides, self.padding, "NHWC", self.dilations
            )
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", strides={self.strides}, padding={self.padding!r}"
        if self.output_padding is not None:
            s += f", output_padding={self.output_padding}"
        if self.dilations != (1, 1):
            s += f", dilations={self.dilations}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Linear(_Layer):
    """Fully connected layer: ``y = x @ W + b`` with W of shape [in, out] (Keras' layout; the
    transpose of PyTorch's [out, in]).

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: add a learned [out] bias.
        dtype, seed: as Conv2d.

    Shapes: input [..., in] -> output [..., out]; weight [in, out]; bias [out].
    Initialisation: PyTorch's default, U(+-1/sqrt(in)) for weight and bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: sizes must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((in_features, out_features), dtype))
        self.bias = Parameter(np.empty((out_features,), dtype)) if bias else None
        init.default_init_(self.weight, self.bias, _generator(seed))

    def forward(self, x: Tensor) -> Tensor:
        """[..., in] -> [..., out]."""
        shape = x.shape
        if not shape or shape[-1] != self.in_features:
            raise self._bad_input(f"[..., {self.in_features}]", x)
        y = matmul(x, self.weight)
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        return s if self.bias is not None else s + ", bias=False"


# -- pooling ---------------------------------------------------------------------------------------
class _Pool2d(_Layer):
    def __init__(
        self,
        kernel_size: IntOrPair,
        strides: IntOrPair | None = None,
        padding: PaddingArg = "valid",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(name, "kernel_size", kernel_size)
        self.strides = self.kernel_size if strides is None else _pair(name, "strides", strides)
        self.padding = _padding(name, padding)

    def _check(self, x: Any) -> None:
        if len(x.shape) != 4:
            raise self._bad_input("[N,H,W,C]", x)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}"


class MaxPool2d(_Pool2d):
    """Max pooling on NHWC input (``tf.nn.max_pool2d``).

    Args:
        kernel_size: int or (kh, kw).
        strides: int or pair; defaults to ``kernel_size`` (non-overlapping windows).
        padding: 'valid', 'same' (pads with -inf), int or pairs.

    Shapes: [N, H, W, C] -> [N, H_out, W_out, C].
    """

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C] -> [N, H_out, W_out, C]."""
        self._check(x)
        try:
            return tc.max_pool2d(x, self.kernel_size, self.strides, self.padding)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e


class AvgPool2d(_Pool2d):
    """Average pooling on NHWC input (``tf.nn.avg_pool2d``). With 'same' or explicit padding each
    window divides by its number of in-bounds elements (PyTorch's ``count_include_pad=False``).

    Args: as MaxPool2d. Shapes: [N, H, W, C] -> [N, H_out, W_out, C].
    """

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C] -> [N, H_out, W_out, C]."""
        self._check(x)
        try:
            return tc.avg_pool2d(x, self.kernel_size, self.strides, self.padding)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e


class GlobalAvgPool2d(_Layer):
    """Mean over H and W: [N, H, W, C] -> [N, C] (or [N, 1, 1, C] with ``keepdims``)."""

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = bool(keepdims)

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C] -> [N, C]."""
        if len(x.shape) != 4:
            raise self._bad_input("[N,H,W,C]", x)
        return mean(x, (1, 2), self.keepdims)

    def extra_repr(self) -> str:
        return "keepdims=True" if self.keepdims else ""


# -- activations and reshaping ---------------------------------------------------------------------
class ReLU(Module):
    """max(x, 0), elementwise. Shape: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        """Elementwise ReLU."""
        return relu(x)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x (PyTorch's default slope 0.01). Shape: any -> same."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        """Elementwise leaky ReLU."""
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """Hyperbolic tangent, elementwise. Shape: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        """Elementwise tanh."""
        return tanh(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise and overflow-free. Shape: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        """Elementwise sigmoid."""
        return sigmoid(x)


class Softmax(Module):
    """Softmax along ``axis`` (default last). Shape: any -> same."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Tensor) -> Tensor:
        """Softmax along ``axis``."""
        return softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Identity(Module):
    """Returns its input unchanged."""

    def forward(self, x: Any) -> Any:
        """x."""
        return x


class Flatten(_Layer):
    """Merge axes ``start_axis..end_axis``: [N, H, W, C] -> [N, H*W*C] by default (NHWC order,
    so it differs from PyTorch's NCHW flatten of the same image)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis, self.end_axis = int(start_axis), int(end_axis)

    def forward(self, x: Tensor) -> Tensor:
        """[N, ...] -> [N, prod(...)]."""
        if len(x.shape) <= max(self.start_axis, 0):
            raise self._bad_input(f"with more than {self.start_axis} axes", x)
        return flatten(x, self.start_axis, self.end_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    others by 1/(1-p); the identity in eval mode. A constant-mask multiply, so differentiable.

    Args:
        p: drop probability in [0, 1].
        seed: int or np.random.Generator for the masks (default: the ``tc.manual_seed`` one).

    Shape: any -> same.
    """

    def __init__(self, p: float = 0.5, seed: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = _generator(seed)

    def forward(self, x: Tensor) -> Tensor:
        """x * mask (training) or x (eval)."""
        if not self.training or self.p == 0.0:
            return x
        return F.dropout(x, self.p, True, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# -- normalisation ---------------------------------------------------------------------------------
class _BatchNorm(_Layer):
    _ranks: tuple[int, ...] = ()
    _layout: str = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype))
            self.register_buffer("running_var", np.ones(c, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, counter 0."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        """Normalise over every axis but the channel (last) one."""
        shape = x.shape
        if len(shape) not in self._ranks or shape[-1] != self.num_features:
            raise self._bad_input(self._layout.replace("C", str(self.num_features)), x)
        try:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                self.training, self.momentum, self.eps, self.num_batches_tracked,
            )  # fmt: skip
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e

    def extra_repr(self) -> str:
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        if not self.track_running_stats:
            s += ", track_running_stats=False"
        return s


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of NHWC feature maps over (N, H, W), per channel.

    Training: batch mean and biased variance normalise; the running statistics are updated with
    ``momentum`` and the *unbiased* variance (as PyTorch). Eval: the running statistics normalise.
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: running-stat update factor (None: cumulative average).
        affine: learn weight [C] (init 1) and bias [C] (init 0).
        track_running_stats: keep running_mean / running_var buffers (else batch stats always).
        dtype: dtype of parameters and buffers.

    Shapes: [N, H, W, C] -> [N, H, W, C]. Buffers: running_mean [C], running_var [C],
    num_batches_tracked [].
    """

    _ranks = (4,)
    _layout = "[N,H,W,C]"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of [N, C] (or channels-last [N, L, C]) over every axis but C.

    Args and behaviour as BatchNorm2d. Shapes: [N, C] -> [N, C]; [N, L, C] -> [N, L, C].
    """

    _ranks = (2, 3)
    _layout = "[N,C] or [N,L,C]"


# -- 1-D and 3-D convolution and pooling, and depthwise 2-D -----------------------------------------
# One implementation per kind for both ranks: the classes below only fix the rank and the
# layout names. Inputs are channels-last ([N, W, C] or [N, D, H, W, C]); weights [*kernel, in, out].
_LAYOUT = {1: "[N,W,{}]", 3: "[N,D,H,W,{}]"}


def _ints(layer: str, name: str, value: Any, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or ``rank`` ints -> a ``rank``-tuple, each >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        out = (int(value),) * rank
    else:
        try:
            items = tuple(value)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"{layer}: {name} must be an int or {rank} ints, got {value!r}"
            ) from None
        if len(items) != rank or not all(isinstance(v, numbers.Integral) for v in items):
            raise ValueError(f"{layer}: {name} must be an int or {rank} ints, got {value!r}")
        out = tuple(int(v) for v in items)
    if min(out) < minimum:
        raise ValueError(f"{layer}: {name} must be >= {minimum}, got {value!r}")
    return out


def _padding_nd(layer: str, padding: Any, rank: int) -> str | tuple[tuple[int, int], ...]:
    """'valid'/'same' -> 'VALID'/'SAME'; p or ``rank`` ints -> symmetric pairs; ``rank`` pairs kept."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("VALID", "SAME"):
            raise ValueError(
                f"{layer}: padding must be 'valid', 'same', an int or pairs, got {padding!r}"
            )
        return mode
    if isinstance(padding, numbers.Integral) or all(
        isinstance(v, numbers.Integral) for v in padding
    ):
        return tuple((p, p) for p in _ints(layer, "padding", padding, rank, 0))
    items = list(padding)
    if len(items) != rank:
        raise ValueError(
            f"{layer}: padding must be 'valid', 'same', an int, {rank} ints or {rank} "
            f"(before, after) pairs, got {padding!r}"
        )
    return tuple(_ints(layer, "padding", p, 2, 0) for p in items)  # type: ignore[misc]


class _ConvNd(_Layer):
    """Convolution with ``rank`` spatial axes, channels-last (the shared body of Conv1d/Conv3d).

    Shapes: input [N, *S, C_in] -> [N, *S_out, C_out]; weight [*kernel, C_in/groups, C_out];
    bias [C_out]. Arguments and initialisation as :class:`Conv2d` (fan_in = prod(kernel) *
    C_in/groups), with ints or ``rank``-tuples.
    """

    rank: int

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: Any = "valid",
        dilations: Any = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name, r = type(self).__name__, self.rank
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"{name}: channel counts must be positive, got {in_channels}, {out_channels}"
            )
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                f"be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = (
            int(in_channels),
            int(out_channels),
            int(groups),
        )
        self.kernel_size = _ints(name, "kernel_size", kernel_size, r)
        self.strides = _ints(name, "strides", strides, r)
        self.dilations = _ints(name, "dilations", dilations, r)
        self.padding = _padding_nd(name, padding, r)
        shape = (*self.kernel_size, in_channels // groups, out_channels)
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty((out_channels,), dtype)) if bias else None
        init.default_init_(self.weight, self.bias, _generator(seed))

    def forward(self, x: Tensor) -> Tensor:
        """[N, *S, C_in] -> [N, *S_out, C_out]."""
        r = self.rank
        if len(x.shape) != r + 2 or x.shape[-1] != self.in_channels:
            raise self._bad_input(_LAYOUT[r].format(self.in_channels), x)
        conv = tc.conv1d if r == 1 else tc.conv3d
        try:
            y = conv(x, self.weight, self.strides, self.padding, dilations=self.dilations)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", strides={self.strides}, padding={self.padding!r}"
        if set(self.dilations) != {1}:
            s += f", dilations={self.dilations}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s if self.bias is not None else s + ", bias=False"


class Conv1d(_ConvNd):
    """1-D convolution on NWC input with a WIO weight (``tf.nn.conv1d`` + bias).

    Shapes: [N, W, C_in] -> [N, W_out, C_out]; weight [k, C_in/groups, C_out]. See _ConvNd.
    """

    rank = 1


class Conv3d(_ConvNd):
    """3-D convolution on NDHWC input with a DHWIO weight (``tf.nn.conv3d`` + bias).

    Shapes: [N, D, H, W, C_in] -> [N, D_out, H_out, W_out, C_out];
    weight [kd, kh, kw, C_in/groups, C_out]. See _ConvNd.
    """

    rank = 3


class _ConvTransposeNd(_Layer):
    """Transposed convolution with ``rank`` spatial axes (shared body of ConvTranspose1d/3d).

    Output size per axis as :class:`ConvTranspose2d` (Keras' rule). Shapes: input
    [N, *S, C_in] -> [N, *S_out, C_out]; weight [*kernel, C_out, C_in] (TF's layout); bias [C_out].
    """

    rank: int

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "same",
        output_padding: Any = None,
        dilations: Any = 1,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name, r = type(self).__name__, self.rank
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"{name}: channel counts must be positive, got {in_channels}, {out_channels}"
            )
        if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{name}: padding must be 'same' or 'valid', got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _ints(name, "kernel_size", kernel_size, r)
        self.strides = _ints(name, "strides", strides, r)
        self.dilations = _ints(name, "dilations", dilations, r)
        self.padding = padding.upper()
        self.output_padding = (
            None if output_padding is None else _ints(name, "output_padding", output_padding, r, 0)
        )
        if self.output_padding is not None and any(
            op >= s for op, s in zip(self.output_padding, self.strides, strict=True)
        ):
            raise ValueError(
                f"{name}: output_padding {self.output_padding} must be smaller than strides "
                f"{self.strides}"
            )
        self.weight = Parameter(np.empty((*self.kernel_size, out_channels, in_channels), dtype))
        self.bias = Parameter(np.empty((out_channels,), dtype)) if bias else None
        init.default_init_(self.weight, self.bias, _generator(seed))

    def output_size(self, size: Sequence[int]) -> tuple[int, ...]:
        """The output's spatial size for an input of spatial size ``size``."""
        ops = self.output_padding or (None,) * self.rank
        return tuple(
            _deconv_length(n, k, s, d, self.padding, op)
            for n, k, s, d, op in zip(
                size, self.kernel_size, self.strides, self.dilations, ops, strict=True
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        """[N, *S, C_in] -> [N, *S_out, C_out]."""
        r = self.rank
        if len(x.shape) != r + 2 or x.shape[-1] != self.in_channels:
            raise self._bad_input(_LAYOUT[r].format(self.in_channels), x)
        out = (x.shape[0], *self.output_size(x.shape[1:-1]), self.out_channels)
        transpose = tc.conv1d_transpose if r == 1 else tc.conv3d_transpose
        try:
            y = transpose(x, self.weight, out, self.strides, self.padding, dilations=self.dilations)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", strides={self.strides}, padding={self.padding!r}"
        if self.output_padding is not None:
            s += f", output_padding={self.output_padding}"
        if set(self.dilations) != {1}:
            s += f", dilations={self.dilations}"
        return s if self.bias is not None else s + ", bias=False"


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution (``tf.nn.conv1d_transpose`` + bias); weight [k, C_out, C_in]."""

    rank = 1


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution (``tf.nn.conv3d_transpose`` + bias);
    weight [kd, kh, kw, C_out, C_in]."""

    rank = 3


class _PoolNd(_Layer):
    """Pooling with ``rank`` spatial axes, channels-last. kernel_size / strides: int or ``rank``
    ints (strides default to kernel_size); padding: 'valid', 'same', int, ints or pairs.
    Shapes: [N, *S, C] -> [N, *S_out, C]."""

    rank: int
    kind: str

    def __init__(self, kernel_size: Any, strides: Any = None, padding: Any = "valid") -> None:
        super().__init__()
        name, r = type(self).__name__, self.rank
        self.kernel_size = _ints(name, "kernel_size", kernel_size, r)
        self.strides = self.kernel_size if strides is None else _ints(name, "strides", strides, r)
        self.padding = _padding_nd(name, padding, r)

    def forward(self, x: Tensor) -> Tensor:
        """[N, *S, C] -> [N, *S_out, C]."""
        r = self.rank
        if len(x.shape) != r + 2:
            raise self._bad_input(_LAYOUT[r].format("C"), x)
        fn = {
            ("max", 1): tc.max_pool1d,
            ("avg", 1): tc.avg_pool1d,
            ("max", 3): tc.max_pool3d,
            ("avg", 3): tc.avg_pool3d,
        }[self.kind, r]
        pad = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        try:
            return fn(x, self.kernel_size, self.strides, pad)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}"


class MaxPool1d(_PoolNd):
    """Max pooling on NWC input (``tf.nn.max_pool1d``): [N, W, C] -> [N, W_out, C]."""

    rank, kind = 1, "max"


class AvgPool1d(_PoolNd):
    """Average pooling on NWC input (``tf.nn.avg_pool1d``; 'same' divides by the in-bounds
    count, PyTorch's ``count_include_pad=False``): [N, W, C] -> [N, W_out, C]."""

    rank, kind = 1, "avg"


class MaxPool3d(_PoolNd):
    """Max pooling on NDHWC input (``tf.nn.max_pool3d``): [N, D, H, W, C] -> [N, D', H', W', C]."""

    rank, kind = 3, "max"


class AvgPool3d(_PoolNd):
    """Average pooling on NDHWC input (``tf.nn.avg_pool3d``, in-bounds divisor):
    [N, D, H, W, C] -> [N, D', H', W', C]."""

    rank, kind = 3, "avg"


class DepthwiseConv2d(_Layer):
    """Depthwise 2-D convolution on NHWC input (``tf.nn.depthwise_conv2d`` + bias): each input
    channel c is convolved with its own ``depth_multiplier`` filters.

    Args:
        in_channels: C_in. depth_multiplier: M (output channels C_in*M, channel c*M + m).
        kernel_size, strides, dilations: int or pair. padding: as Conv2d.
        bias, dtype, seed: as Conv2d.

    Shapes: [N, H, W, C_in] -> [N, H_out, W_out, C_in*M]; weight [kh, kw, C_in, M]; bias [C_in*M].
    Initialisation: PyTorch's for ``Conv2d(C_in, C_in*M, groups=C_in)``: U(+-1/sqrt(kh*kw)).
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: IntOrPair,
        depth_multiplier: int = 1,
        strides: IntOrPair = 1,
        padding: PaddingArg = "valid",
        dilations: IntOrPair = 1,
        bias: bool = True,
        dtype: Any = np.float32,
        seed: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if in_channels < 1 or depth_multiplier < 1:
            raise ValueError(
                f"{name}: in_channels and depth_multiplier must be positive, got {in_channels}, "
                f"{depth_multiplier}"
            )
        self.in_channels, self.depth_multiplier = int(in_channels), int(depth_multiplier)
        self.kernel_size = _pair(name, "kernel_size", kernel_size)
        self.strides = _pair(name, "strides", strides)
        self.dilations = _pair(name, "dilations", dilations)
        self.padding = _padding(name, padding)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((kh, kw, in_channels, depth_multiplier), dtype))
        out = in_channels * depth_multiplier
        self.bias = Parameter(np.empty((out,), dtype)) if bias else None
        # fan_in of each output channel is one input channel's window, kh*kw
        rng = _generator(seed)
        bound = 1.0 / np.sqrt(kh * kw)
        init.uniform_(self.weight, -bound, bound, generator=rng)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator=rng)

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C_in] -> [N, H_out, W_out, C_in*M]."""
        if len(x.shape) != 4 or x.shape[3] != self.in_channels:
            raise self._bad_input(f"[N,H,W,{self.in_channels}]", x)
        pad = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        try:
            y = tc.depthwise_conv2d(x, self.weight, self.strides, pad, dilations=self.dilations)
        except ValueError as e:
            raise ValueError(f"{self._where()}: {e}") from e
        b = self.bias
        return y if b is None else y + b

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, kernel_size={self.kernel_size}"
        s += f", depth_multiplier={self.depth_multiplier}, strides={self.strides}"
        s += f", padding={self.padding!r}"
        if self.dilations != (1, 1):
            s += f", dilations={self.dilations}"
        return s if self.bias is not None else s + ", bias=False"

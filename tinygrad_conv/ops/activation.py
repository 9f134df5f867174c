"""Activation functions: gelu (exact and tanh), elu, celu, selu, silu, mish, softplus, softsign,
logsigmoid, hardtanh, relu6, hardsigmoid, hardswish, softshrink, hardshrink, tanhshrink, prelu,
softmin, and the normal CDF ``ndtr`` that exact gelu is made of.

Shapes: elementwise, ``a: [*S] -> [*S]`` (prelu's weight and softmin's axis are described on the
functions). dtype follows the input (float32 stays float32).

Stable forms: softplus and logsigmoid go through ``np.logaddexp`` (finite at +-1e4), elu/celu/
selu through ``np.expm1`` of the non-positive part only (no overflow warning for large inputs,
exact near 0), gelu through ``ndtr`` (relatively accurate in the negative tail, where the
textbook ``(1 + erf(x/sqrt 2)) / 2`` cancels to 0) and the tanh form as ``x * sigmoid(2u)``
(``1 + tanh(u)`` cancels for u << 0, ``2 sigmoid(2u)`` does not).

Piecewise functions keep the masks they need as saved arrays (named in ``saved_names``); every
smooth piece of a derivative is written with Tensor ops on the input or the output, so second
derivatives are right. ``vjp`` spells out the calls each backward makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import special
from tinygrad_conv.ops._util import as_tensor, constant, normalize_axes
from tinygrad_conv.ops.elementwise import (
    abs,
    exp,
    sigmoid,
    tanh,
    where,
)
from tinygrad_conv.ops.loss import softmax
from tinygrad_conv.tensor import Tensor

_INV_SQRT_2PI = 0.3989422804014327
_TWO_K = 1.5957691216057308  # 2 sqrt(2/pi): gelu-tanh's u = sqrt(2/pi)(x + 0.044715 x^3), times 2
_C = 0.044715
_SELU_SCALE = 1.0507009873554805
_SELU_ALPHA = 1.6732632423543772


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(e.dtype, copy=False)


def _masks(cond: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``cond`` and its complement as 0/1 arrays of ``dtype``: a piecewise derivative is
    ``mask * piece_1 + other * piece_2`` with each piece a Tensor expression (so it differentiates
    again) and the masks saved constants."""
    return cond.astype(dtype), (~cond).astype(dtype)


class _Unary(Function):
    input_names = ("x",)
    saved_names = ()


class Ndtr(_Unary):
    """z = Phi(a), the standard normal CDF;  dz/da = phi(a) = e^{-a^2/2} / sqrt(2 pi)."""

    op_name = "ndtr"
    vjp = {"x": f"mul(g, mul({_INV_SQRT_2PI!r}, exp(mul(-0.5, mul(x, x)))))"}

    @staticmethod
    def forward(ctx, a):
        return special.ndtr(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g * (_INV_SQRT_2PI * exp(-0.5 * (a * a)))


class Gelu(_Unary):
    """z = a Phi(a);  dz/da = Phi(a) + a phi(a)."""

    op_name = "gelu"
    vjp = {"x": f"mul(g, add(ndtr(x), mul(x, mul({_INV_SQRT_2PI!r}, exp(mul(-0.5, mul(x, x)))))))"}

    @staticmethod
    def forward(ctx, a):
        return a * special.ndtr(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g * (ndtr(a) + a * (_INV_SQRT_2PI * exp(-0.5 * (a * a))))


def _gelu_tanh_s(a: Tensor) -> Tensor:
    """sigmoid(2u) with u = sqrt(2/pi)(a + 0.044715 a^3), as Tensor ops."""
    return sigmoid(_TWO_K * (a + _C * (a * (a * a))))


_S_RULE = f"sigmoid(mul({_TWO_K!r}, add(x, mul({_C!r}, mul(x, mul(x, x))))))"
_DU_RULE = f"mul({_TWO_K!r}, add(1, mul({3 * _C!r}, mul(x, x))))"


class GeluTanh(_Unary):
    """z = a sigmoid(2u) (= a (1 + tanh u) / 2);  dz/da = s + z (1 - s) 2u' with s = sigmoid(2u).

    s is recomputed for each of its two uses, so that the declared rule is a tree of calls.
    """

    op_name = "gelu_tanh"
    vjp = {"x": f"mul(g, add({_S_RULE}, mul(mul(out, sub(1, {_S_RULE})), {_DU_RULE})))"}

    @staticmethod
    def forward(ctx, a):
        u2 = _TWO_K * (a + _C * (a * a * a))  # weak Python floats: float32 stays float32
        return a * _stable_sigmoid(u2)

    @staticmethod
    def backward(ctx, g):
        a, z = ctx.inputs[0], ctx.output
        return g * (
            _gelu_tanh_s(a) + (z * (1 - _gelu_tanh_s(a))) * (_TWO_K * (1 + (3 * _C) * (a * a)))
        )


class Elu(_Unary):
    """z = a (a > 0) or alpha (e^a - 1);  dz/da = 1 or alpha e^a."""

    op_name = "elu"
    saved_names = ("positive", "negative")
    vjp = {"x": "mul(g, add(positive, mul(negative, mul(alpha, exp(mul(negative, x))))))"}

    @staticmethod
    def forward(ctx, a, *, alpha):
        ctx.save_for_backward(*_masks(a > 0, a.dtype))
        return np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0))).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        pos, neg = ctx.saved_tensors
        x = ctx.inputs[0]
        # alpha e^x from the input: (z + alpha) from the output cancels for x << 0
        return g * (constant(pos) + constant(neg) * (ctx.attrs["alpha"] * exp(constant(neg) * x)))


class Celu(_Unary):
    """z = a (a > 0) or alpha (e^{a/alpha} - 1);  dz/da = 1 or e^{a/alpha}."""

    op_name = "celu"
    saved_names = ("positive", "negative")
    vjp = {"x": "mul(g, add(positive, mul(negative, exp(div(mul(negative, x), alpha)))))"}

    @staticmethod
    def forward(ctx, a, *, alpha):
        ctx.save_for_backward(*_masks(a > 0, a.dtype))
        neg = alpha * np.expm1(np.minimum(a, 0) / alpha)
        return np.where(a > 0, a, neg).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        pos, neg = ctx.saved_tensors
        x = ctx.inputs[0]
        # e^{x/alpha} on the negative side only (0 elsewhere: no overflow for large x)
        return g * (constant(pos) + constant(neg) * exp((constant(neg) * x) / ctx.attrs["alpha"]))


class Selu(_Unary):
    """z = scale (a (a > 0) or alpha (e^a - 1));  dz/da = scale or scale alpha e^a."""

    op_name = "selu"
    saved_names = ("scaled_positive", "negative")
    vjp = {
        "x": f"mul(g, add(scaled_positive, mul(negative, mul({_SELU_SCALE * _SELU_ALPHA!r}, "
        "exp(mul(negative, x))))))"
    }

    @staticmethod
    def forward(ctx, a):
        pos, neg = _masks(a > 0, a.dtype)
        ctx.save_for_backward(pos * a.dtype.type(_SELU_SCALE), neg)
        neg = _SELU_ALPHA * np.expm1(np.minimum(a, 0))
        return (_SELU_SCALE * np.where(a > 0, a, neg)).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        pos, neg = ctx.saved_tensors
        x = ctx.inputs[0]
        return g * (
            constant(pos) + constant(neg) * ((_SELU_SCALE * _SELU_ALPHA) * exp(constant(neg) * x))
        )


class Silu(_Unary):
    """z = a sigmoid(a);  dz/da = s + a s (1 - s) = s (1 - z) + z."""

    op_name = "silu"
    vjp = {"x": "mul(g, add(mul(sigmoid(x), sub(1, out)), out))"}

    @staticmethod
    def forward(ctx, a):
        return a * _stable_sigmoid(a)

    @staticmethod
    def backward(ctx, g):
        a, z = ctx.inputs[0], ctx.output
        return g * (sigmoid(a) * (1 - z) + z)


class Softplus(_Unary):
    """z = log(1 + e^{beta a}) / beta, and z = a where beta a > threshold (PyTorch's cut-off);
    dz/da = sigmoid(beta a), and 1 past the cut-off."""

    op_name = "softplus"
    saved_names = ("linear", "curved")
    vjp = {"x": "mul(g, add(linear, mul(curved, sigmoid(mul(x, beta)))))"}

    @staticmethod
    def forward(ctx, a, *, beta, threshold):
        ba = a * beta
        lin = ba > threshold
        ctx.save_for_backward(*_masks(lin, a.dtype))
        return np.where(lin, a, np.logaddexp(0, ba) / beta).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        lin, curved = ctx.saved_tensors
        x = ctx.inputs[0]
        return g * (constant(lin) + constant(curved) * sigmoid(x * ctx.attrs["beta"]))


class LogSigmoid(_Unary):
    """z = log sigmoid(a) = -log(1 + e^{-a}) (via logaddexp: finite at -1e4);  dz/da = sigmoid(-a)."""

    op_name = "logsigmoid"
    vjp = {"x": "mul(g, sigmoid(neg(x)))"}

    @staticmethod
    def forward(ctx, a):
        return -np.logaddexp(0, -a)

    @staticmethod
    def backward(ctx, g):
        return g * sigmoid(-ctx.inputs[0])


class _Masked(_Unary):
    """Piecewise-linear activations: dz/da is a saved constant array (``factor``)."""

    saved_names = ("factor",)
    vjp = {"x": "mul(g, factor)"}

    @staticmethod
    def backward(ctx, g):
        (factor,) = ctx.saved_tensors
        return g * constant(factor)


class Hardtanh(_Masked):
    """z = clip(a, min_val, max_val);  dz/da = 1 strictly inside, else 0 (as PyTorch)."""

    op_name = "hardtanh"

    @staticmethod
    def forward(ctx, a, *, min_val, max_val):
        ctx.save_for_backward(((a > min_val) & (a < max_val)).astype(a.dtype))
        return np.clip(a, min_val, max_val).astype(a.dtype, copy=False)


class Hardsigmoid(_Masked):
    """z = clip(a / 6 + 1/2, 0, 1);  dz/da = 1/6 for -3 < a < 3, else 0."""

    op_name = "hardsigmoid"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward((((a > -3) & (a < 3)) / 6).astype(a.dtype))
        return np.clip(a / 6 + 0.5, 0, 1).astype(a.dtype, copy=False)


class Softshrink(_Masked):
    """z = a - l (a > l), a + l (a < -l), else 0;  dz/da = 1 outside [-l, l]."""

    op_name = "softshrink"

    @staticmethod
    def forward(ctx, a, *, lambd):
        out = np.abs(a) > lambd
        ctx.save_for_backward(out.astype(a.dtype))
        return np.where(out, a - np.sign(a) * lambd, 0).astype(a.dtype, copy=False)


class Hardshrink(_Masked):
    """z = a where |a| > l, else 0;  dz/da = 1 where |a| > l."""

    op_name = "hardshrink"

    @staticmethod
    def forward(ctx, a, *, lambd):
        keep = np.abs(a) > lambd
        ctx.save_for_backward(keep.astype(a.dtype))
        return np.where(keep, a, 0).astype(a.dtype, copy=False)


class Hardswish(_Unary):
    """z = a relu6(a + 3) / 6;  dz/da = 0 (a < -3), a/3 + 1/2 (-3 <= a <= 3), 1 (a > 3), as PyTorch."""

    op_name = "hardswish"
    saved_names = ("middle", "above")
    vjp = {"x": "mul(g, add(mul(middle, add(div(x, 3), 0.5)), above))"}

    @staticmethod
    def forward(ctx, a):
        mid = ((a >= -3) & (a <= 3)).astype(a.dtype)
        ctx.save_for_backward(mid, (a > 3).astype(a.dtype))
        return (a * np.clip(a + 3, 0, 6) / 6).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        mid, above = ctx.saved_tensors
        a = ctx.inputs[0]
        return g * (constant(mid) * (a / 3 + 0.5) + constant(above))


# -- public functions -----------------------------------------------------------------------------
def _float_input(op: str, a: Any) -> Tensor:
    t = as_tensor(a)
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {t.dtype}")
    return t


def ndtr(a: Any) -> Tensor:
    """Standard normal CDF Phi(a) (torch.special.ndtr), accurate in both tails. ``[*S] -> [*S]``."""
    return Ndtr.apply(as_tensor(a))


def gelu(a: Any, approximate: str = "none") -> Tensor:
    """GELU: a * Phi(a) (``approximate='none'``) or PyTorch's tanh form (``'tanh'``).

    ``a: [*S] -> [*S]``.
    """
    t = _float_input("gelu", a)
    if approximate == "none":
        return Gelu.apply(t)
    if approximate == "tanh":
        return GeluTanh.apply(t)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _alpha(op: str, alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"{op}: alpha must be a number, got {alpha!r}")
    return float(alpha)


def elu(a: Any, alpha: float = 1.0) -> Tensor:
    """ELU: a for a > 0, alpha (e^a - 1) otherwise. ``a: [*S] -> [*S]``."""
    return Elu.apply(_float_input("elu", a), alpha=_alpha("elu", alpha))


def celu(a: Any, alpha: float = 1.0) -> Tensor:
    """CELU: a for a > 0, alpha (e^{a/alpha} - 1) otherwise (alpha != 0). ``a: [*S] -> [*S]``."""
    alpha = _alpha("celu", alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must be non-zero, got 0.0")
    return Celu.apply(_float_input("celu", a), alpha=alpha)


def selu(a: Any) -> Tensor:
    """SELU: scale * elu(a, alpha) with the self-normalising constants. ``a: [*S] -> [*S]``."""
    return Selu.apply(_float_input("selu", a))


def silu(a: Any) -> Tensor:
    """SiLU / swish: a * sigmoid(a). ``a: [*S] -> [*S]``."""
    return Silu.apply(_float_input("silu", a))


def mish(a: Any) -> Tensor:
    """Mish: a * tanh(softplus(a)) (composite of stable ops). ``a: [*S] -> [*S]``."""
    t = _float_input("mish", a)
    return t * tanh(softplus(t))


def softplus(a: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^{beta a}) / beta, linear where beta a > threshold (PyTorch's). ``[*S] -> [*S]``."""
    t = _float_input("softplus", a)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
        raise ValueError(f"softplus: beta must be a positive number, got {beta!r}")
    return Softplus.apply(t, beta=float(beta), threshold=float(threshold))


def softsign(a: Any) -> Tensor:
    """a / (1 + |a|) (composite). ``a: [*S] -> [*S]``."""
    t = _float_input("softsign", a)
    return t / (1 + abs(t))


def logsigmoid(a: Any) -> Tensor:
    """log(sigmoid(a)), finite for a = -1e4. ``a: [*S] -> [*S]``."""
    return LogSigmoid.apply(_float_input("logsigmoid", a))


def hardtanh(a: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """clip(a, min_val, max_val); gradient 1 strictly inside. ``a: [*S] -> [*S]``."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val={min_val} is greater than max_val={max_val}")
    return Hardtanh.apply(
        _float_input("hardtanh", a), min_val=float(min_val), max_val=float(max_val)
    )


def relu6(a: Any) -> Tensor:
    """min(max(a, 0), 6) (hardtanh(a, 0, 6)). ``a: [*S] -> [*S]``."""
    return hardtanh(a, 0.0, 6.0)


def hardsigmoid(a: Any) -> Tensor:
    """relu6(a + 3) / 6. ``a: [*S] -> [*S]``."""
    return Hardsigmoid.apply(_float_input("hardsigmoid", a))


def hardswish(a: Any) -> Tensor:
    """a * relu6(a + 3) / 6. ``a: [*S] -> [*S]``."""
    return Hardswish.apply(_float_input("hardswish", a))


def _lambd(op: str, lambd: Any) -> float:
    if isinstance(lambd, bool) or not isinstance(lambd, (int, float)) or lambd < 0:
        raise ValueError(f"{op}: lambd must be a non-negative number, got {lambd!r}")
    return float(lambd)


def softshrink(a: Any, lambd: float = 0.5) -> Tensor:
    """a - lambd above lambd, a + lambd below -lambd, 0 between. ``a: [*S] -> [*S]``."""
    return Softshrink.apply(_float_input("softshrink", a), lambd=_lambd("softshrink", lambd))


def hardshrink(a: Any, lambd: float = 0.5) -> Tensor:
    """a where |a| > lambd, else 0. ``a: [*S] -> [*S]``."""
    return Hardshrink.apply(_float_input("hardshrink", a), lambd=_lambd("hardshrink", lambd))


def tanhshrink(a: Any) -> Tensor:
    """a - tanh(a) (composite). ``a: [*S] -> [*S]``."""
    t = _float_input("tanhshrink", a)
    return t - tanh(t)


def prelu(a: Any, weight: Any) -> Tensor:
    """a for a > 0, weight * a otherwise; differentiable in ``weight`` too (composite).

    Shapes: ``a: [N, ..., C]`` (channels last), ``weight: [C]`` or ``[1]``.
    """
    t = _float_input("prelu", a)
    w = as_tensor(weight)
    if w.ndim != 1 or (w.shape[0] != 1 and (t.ndim == 0 or w.shape[0] != t.shape[-1])):
        raise ValueError(
            f"prelu: weight must have shape [1] or [C] = [{t.shape[-1] if t.ndim else 1}] for "
            f"input of shape {t.shape}, got {w.shape}"
        )
    return where(t.data > 0, t, w * t)


def softmin(a: Any, axis: int = -1) -> Tensor:
    """softmax(-a) along ``axis`` (composite). ``a: [*S] -> [*S]``, rows along ``axis`` sum to 1."""
    t = _float_input("softmin", a)
    normalize_axes("softmin", axis, t.ndim)
    return softmax(-t, axis)


__all__ = [
    "celu",
    "elu",
    "gelu",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "logsigmoid",
    "mish",
    "ndtr",
    "prelu",
    "relu6",
    "selu",
    "silu",
    "softmin",
    "softplus",
    "softshrink",
    "softsign",
    "tanhshrink",
]

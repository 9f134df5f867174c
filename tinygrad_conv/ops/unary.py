"""Elementwise math beyond the basics: trigonometric and hyperbolic functions and their inverses,
exp2/log2/log10/expm1/log1p, rsqrt/square/reciprocal, erf/erfc, logaddexp, lerp, mod, and the
non-differentiable elementwise ops (sign, rounding, floor division, isnan/isinf/isfinite, logical
ops, comparisons).

Shapes: every op maps ``a: [*S]`` (and ``b: [*T]``) to ``[*broadcast(S, T)]`` with NumPy's
broadcasting and dtype rules (integer inputs to a float function give float64, as NumPy does).

Each differentiable op's backward is written with Tensor ops, so it can be differentiated again;
its ``vjp`` attribute spells out exactly the calls its backward makes (the grammar is in the
project's notes: ``g`` upstream gradient, input names, ``out`` the node's output, saved names,
numbers, ``op(args)``). Where the derivative is a function of the output (tan, exp2, expm1, rsqrt,
reciprocal) it reuses ``out`` instead of recomputing. Non-differentiable ops return tensors that
do not require grad, whatever their inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import special
from tinygrad_conv.ops._util import as_tensor, binary_operands, constant
from tinygrad_conv.ops.elementwise import exp
from tinygrad_conv.tensor import Tensor

_LN2 = 0.6931471805599453
_LN10 = 2.302585092994046
_TWO_OVER_SQRT_PI = 1.1283791670955126


class _Unary(Function):
    """Shared shape of the one-input ops below."""

    input_names = ("x",)
    saved_names = ()


class Sin(_Unary):
    """z = sin a;  dz/da = cos a."""

    op_name = "sin"
    vjp = {"x": "mul(g, cos(x))"}

    @staticmethod
    def forward(ctx, a):
        return np.sin(a)

    @staticmethod
    def backward(ctx, g):
        return g * cos(ctx.inputs[0])


class Cos(_Unary):
    """z = cos a;  dz/da = -sin a."""

    op_name = "cos"
    vjp = {"x": "mul(g, neg(sin(x)))"}

    @staticmethod
    def forward(ctx, a):
        return np.cos(a)

    @staticmethod
    def backward(ctx, g):
        return g * -sin(ctx.inputs[0])


class Tan(_Unary):
    """z = tan a;  dz/da = 1 + z^2."""

    op_name = "tan"
    vjp = {"x": "mul(g, add(1, mul(out, out)))"}

    @staticmethod
    def forward(ctx, a):
        return np.tan(a)

    @staticmethod
    def backward(ctx, g):
        z = ctx.output
        return g * (1 + z * z)


class Asin(_Unary):
    """z = arcsin a (|a| <= 1);  dz/da = 1 / sqrt(1 - a^2)."""

    op_name = "asin"
    vjp = {"x": "div(g, sqrt(sub(1, mul(x, x))))"}

    @staticmethod
    def forward(ctx, a):
        return np.arcsin(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g / (1 - a * a).sqrt()


class Acos(_Unary):
    """z = arccos a (|a| <= 1);  dz/da = -1 / sqrt(1 - a^2)."""

    op_name = "acos"
    vjp = {"x": "neg(div(g, sqrt(sub(1, mul(x, x)))))"}

    @staticmethod
    def forward(ctx, a):
        return np.arccos(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return -(g / (1 - a * a).sqrt())


class Atan(_Unary):
    """z = arctan a;  dz/da = 1 / (1 + a^2)."""

    op_name = "atan"
    vjp = {"x": "div(g, add(1, mul(x, x)))"}

    @staticmethod
    def forward(ctx, a):
        return np.arctan(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g / (1 + a * a)


class Sinh(_Unary):
    """z = sinh a;  dz/da = cosh a."""

    op_name = "sinh"
    vjp = {"x": "mul(g, cosh(x))"}

    @staticmethod
    def forward(ctx, a):
        return np.sinh(a)

    @staticmethod
    def backward(ctx, g):
        return g * cosh(ctx.inputs[0])


class Cosh(_Unary):
    """z = cosh a;  dz/da = sinh a."""

    op_name = "cosh"
    vjp = {"x": "mul(g, sinh(x))"}

    @staticmethod
    def forward(ctx, a):
        return np.cosh(a)

    @staticmethod
    def backward(ctx, g):
        return g * sinh(ctx.inputs[0])


class Asinh(_Unary):
    """z = arsinh a;  dz/da = 1 / sqrt(a^2 + 1)."""

    op_name = "asinh"
    vjp = {"x": "div(g, sqrt(add(mul(x, x), 1)))"}

    @staticmethod
    def forward(ctx, a):
        return np.arcsinh(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g / (a * a + 1).sqrt()


class Acosh(_Unary):
    """z = arcosh a (a >= 1);  dz/da = 1 / sqrt(a^2 - 1)."""

    op_name = "acosh"
    vjp = {"x": "div(g, sqrt(sub(mul(x, x), 1)))"}

    @staticmethod
    def forward(ctx, a):
        return np.arccosh(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g / (a * a - 1).sqrt()


class Atanh(_Unary):
    """z = artanh a (|a| < 1);  dz/da = 1 / (1 - a^2)."""

    op_name = "atanh"
    vjp = {"x": "div(g, sub(1, mul(x, x)))"}

    @staticmethod
    def forward(ctx, a):
        return np.arctanh(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g / (1 - a * a)


class Exp2(_Unary):
    """z = 2^a;  dz/da = z ln 2."""

    op_name = "exp2"
    vjp = {"x": f"mul(g, mul(out, {_LN2!r}))"}

    @staticmethod
    def forward(ctx, a):
        return np.exp2(a)

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.output * _LN2)


class Log2(_Unary):
    """z = log2 a;  dz/da = 1 / (a ln 2)."""

    op_name = "log2"
    vjp = {"x": f"div(g, mul(x, {_LN2!r}))"}

    @staticmethod
    def forward(ctx, a):
        return np.log2(a)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.inputs[0] * _LN2)


class Log10(_Unary):
    """z = log10 a;  dz/da = 1 / (a ln 10)."""

    op_name = "log10"
    vjp = {"x": f"div(g, mul(x, {_LN10!r}))"}

    @staticmethod
    def forward(ctx, a):
        return np.log10(a)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.inputs[0] * _LN10)


class Expm1(_Unary):
    """z = e^a - 1, exact near 0 (np.expm1);  dz/da = z + 1."""

    op_name = "expm1"
    vjp = {"x": "mul(g, add(out, 1))"}

    @staticmethod
    def forward(ctx, a):
        return np.expm1(a)

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.output + 1)


class Log1p(_Unary):
    """z = ln(1 + a), exact near 0 (np.log1p);  dz/da = 1 / (a + 1)."""

    op_name = "log1p"
    vjp = {"x": "div(g, add(x, 1))"}

    @staticmethod
    def forward(ctx, a):
        return np.log1p(a)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.inputs[0] + 1)


class Rsqrt(_Unary):
    """z = 1 / sqrt(a);  dz/da = -z / (2a)."""

    op_name = "rsqrt"
    vjp = {"x": "div(mul(g, out), mul(-2, x))"}

    @staticmethod
    def forward(ctx, a):
        with np.errstate(divide="ignore"):  # rsqrt(0) = inf, as in PyTorch
            return 1 / np.sqrt(a)

    @staticmethod
    def backward(ctx, g):
        return (g * ctx.output) / (-2 * ctx.inputs[0])


class Square(_Unary):
    """z = a^2;  dz/da = 2a."""

    op_name = "square"
    vjp = {"x": "mul(g, mul(2, x))"}

    @staticmethod
    def forward(ctx, a):
        return np.square(a)

    @staticmethod
    def backward(ctx, g):
        return g * (2 * ctx.inputs[0])


class Reciprocal(_Unary):
    """z = 1 / a;  dz/da = -z^2."""

    op_name = "reciprocal"
    vjp = {"x": "neg(mul(g, mul(out, out)))"}

    @staticmethod
    def forward(ctx, a):
        with np.errstate(divide="ignore"):  # 1/0 = inf, as in PyTorch
            return np.reciprocal(a if a.dtype.kind == "f" else a.astype(np.float64))

    @staticmethod
    def backward(ctx, g):
        z = ctx.output
        return -(g * (z * z))


class Erf(_Unary):
    """z = erf a;  dz/da = 2/sqrt(pi) e^{-a^2}."""

    op_name = "erf"
    vjp = {"x": f"mul(g, mul({_TWO_OVER_SQRT_PI!r}, exp(neg(mul(x, x)))))"}

    @staticmethod
    def forward(ctx, a):
        return special.erf(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g * (_TWO_OVER_SQRT_PI * exp(-(a * a)))


class Erfc(_Unary):
    """z = erfc a = 1 - erf a (relatively accurate for large a);  dz/da = -2/sqrt(pi) e^{-a^2}."""

    op_name = "erfc"
    vjp = {"x": f"mul(g, mul({-_TWO_OVER_SQRT_PI!r}, exp(neg(mul(x, x)))))"}

    @staticmethod
    def forward(ctx, a):
        return special.erfc(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        return g * (-_TWO_OVER_SQRT_PI * exp(-(a * a)))


class LogAddExp(Function):
    """z = log(e^a + e^b) without overflow (np.logaddexp);  dz/da = e^{a-z},  dz/db = e^{b-z}."""

    op_name = "logaddexp"
    input_names = ("a", "b")
    saved_names = ()
    vjp = {"a": "mul(g, exp(sub(a, out)))", "b": "mul(g, exp(sub(b, out)))"}

    @staticmethod
    def forward(ctx, a, b):
        return np.logaddexp(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        z = ctx.output
        return (
            g * exp(a - z) if ctx.needs_input_grad[0] else None,
            g * exp(b - z) if ctx.needs_input_grad[1] else None,
        )


class _Mod(Function):
    """z = a - q b with q = floor(a/b) (remainder) or trunc(a/b) (fmod);  dz/da = 1,  dz/db = -q.

    q is piecewise constant, so it is saved as an array (its own derivative is 0 almost everywhere).
    """

    input_names = ("a", "b")
    saved_names = ("q",)
    vjp = {"a": "g", "b": "neg(mul(g, q))"}
    rounding: Any = None
    numpy_op: Any = None

    @classmethod
    def forward(cls, ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # x mod 0 is NaN, as in PyTorch
            z = cls.numpy_op(a, b)
            ctx.save_for_backward(cls.rounding(np.true_divide(a, b)).astype(z.dtype, copy=False))
        return z

    @staticmethod
    def backward(ctx, g):
        (q,) = ctx.saved_tensors
        return (
            g if ctx.needs_input_grad[0] else None,
            -(g * constant(q)) if ctx.needs_input_grad[1] else None,
        )


class Remainder(_Mod):
    """Python's / PyTorch's remainder (the sign of the divisor): np.mod."""

    op_name = "remainder"
    rounding = staticmethod(np.floor)
    numpy_op = staticmethod(np.mod)


class Fmod(_Mod):
    """C's fmod (the sign of the dividend): np.fmod."""

    op_name = "fmod"
    rounding = staticmethod(np.trunc)
    numpy_op = staticmethod(np.fmod)


# -- public functions: differentiable -------------------------------------------------------------
def sin(a: Any) -> Tensor:
    """Sine, elementwise. ``a: [*S] -> [*S]``."""
    return Sin.apply(as_tensor(a))


def cos(a: Any) -> Tensor:
    """Cosine, elementwise. ``a: [*S] -> [*S]``."""
    return Cos.apply(as_tensor(a))


def tan(a: Any) -> Tensor:
    """Tangent, elementwise. ``a: [*S] -> [*S]``."""
    return Tan.apply(as_tensor(a))


def asin(a: Any) -> Tensor:
    """Inverse sine (NaN outside [-1, 1]). ``a: [*S] -> [*S]``."""
    return Asin.apply(as_tensor(a))


def acos(a: Any) -> Tensor:
    """Inverse cosine (NaN outside [-1, 1]). ``a: [*S] -> [*S]``."""
    return Acos.apply(as_tensor(a))


def atan(a: Any) -> Tensor:
    """Inverse tangent. ``a: [*S] -> [*S]``."""
    return Atan.apply(as_tensor(a))


def sinh(a: Any) -> Tensor:
    """Hyperbolic sine. ``a: [*S] -> [*S]``."""
    return Sinh.apply(as_tensor(a))


def cosh(a: Any) -> Tensor:
    """Hyperbolic cosine. ``a: [*S] -> [*S]``."""
    return Cosh.apply(as_tensor(a))


def asinh(a: Any) -> Tensor:
    """Inverse hyperbolic sine. ``a: [*S] -> [*S]``."""
    return Asinh.apply(as_tensor(a))


def acosh(a: Any) -> Tensor:
    """Inverse hyperbolic cosine (NaN below 1). ``a: [*S] -> [*S]``."""
    return Acosh.apply(as_tensor(a))


def atanh(a: Any) -> Tensor:
    """Inverse hyperbolic tangent (+-inf at +-1, NaN beyond). ``a: [*S] -> [*S]``."""
    return Atanh.apply(as_tensor(a))


def exp2(a: Any) -> Tensor:
    """2 ** a. ``a: [*S] -> [*S]``."""
    return Exp2.apply(as_tensor(a))


def log2(a: Any) -> Tensor:
    """Base-2 logarithm. ``a: [*S] -> [*S]``."""
    return Log2.apply(as_tensor(a))


def log10(a: Any) -> Tensor:
    """Base-10 logarithm. ``a: [*S] -> [*S]``."""
    return Log10.apply(as_tensor(a))


def expm1(a: Any) -> Tensor:
    """e ** a - 1, without cancellation for small a. ``a: [*S] -> [*S]``."""
    return Expm1.apply(as_tensor(a))


def log1p(a: Any) -> Tensor:
    """ln(1 + a), without cancellation for small a. ``a: [*S] -> [*S]``."""
    return Log1p.apply(as_tensor(a))


def rsqrt(a: Any) -> Tensor:
    """1 / sqrt(a). ``a: [*S] -> [*S]``."""
    return Rsqrt.apply(as_tensor(a))


def square(a: Any) -> Tensor:
    """a * a. ``a: [*S] -> [*S]``."""
    return Square.apply(as_tensor(a))


def reciprocal(a: Any) -> Tensor:
    """1 / a (float result also for integer a). ``a: [*S] -> [*S]``."""
    return Reciprocal.apply(as_tensor(a))


def erf(a: Any) -> Tensor:
    """The error function, 2/sqrt(pi) * integral_0^a e^{-t^2} dt. ``a: [*S] -> [*S]``."""
    return Erf.apply(as_tensor(a))


def erfc(a: Any) -> Tensor:
    """The complementary error function 1 - erf(a), accurate in the tail. ``a: [*S] -> [*S]``."""
    return Erfc.apply(as_tensor(a))


def logaddexp(a: Any, b: Any) -> Tensor:
    """log(e^a + e^b) without overflow. ``a: [*S], b: [*T] -> [*broadcast(S, T)]``."""
    return LogAddExp.apply(*binary_operands("logaddexp", a, b))


def lerp(start: Any, end: Any, weight: Any) -> Tensor:
    """start + weight * (end - start), differentiable in all three (composite of sub, mul, add).

    Shapes: the three operands broadcast together, ``-> [*broadcast(S, E, W)]``.
    """
    s, e = binary_operands("lerp", start, end)
    w = weight if isinstance(weight, (int, float)) else as_tensor(weight)
    if not isinstance(w, (int, float)):
        try:
            np.broadcast_shapes(s.shape, e.shape, w.shape)
        except ValueError:
            raise ValueError(
                f"lerp: start {s.shape}, end {e.shape} and weight {w.shape} cannot be broadcast "
                "together"
            ) from None
    return s + w * (e - s)


def remainder(a: Any, b: Any) -> Tensor:
    """a mod b with the sign of b (Python's %, torch.remainder, np.mod).

    ``a: [*S], b: [*T] -> [*broadcast(S, T)]``; differentiable in both (d/db = -floor(a/b)).
    """
    ta, tb = binary_operands("remainder", a, b)
    if not _is_float(ta, tb):
        return Tensor(np.mod(ta.data, tb.data))
    return Remainder.apply(ta, tb)


def fmod(a: Any, b: Any) -> Tensor:
    """C's fmod: a - trunc(a/b) * b, the sign of a (torch.fmod, np.fmod).

    ``a: [*S], b: [*T] -> [*broadcast(S, T)]``; differentiable in both (d/db = -trunc(a/b)).
    """
    ta, tb = binary_operands("fmod", a, b)
    if not _is_float(ta, tb):
        return Tensor(np.fmod(ta.data, tb.data))
    return Fmod.apply(ta, tb)


def _is_float(*ts: Tensor) -> bool:
    return any(t.data.dtype.kind == "f" for t in ts)


# -- public functions: not differentiable (results never require grad) ----------------------------
def _const(op: str, fn: Any, *args: Any) -> Tensor:
    arrays = [x.data if isinstance(x, Tensor) else np.asarray(x) for x in args]
    if len(arrays) == 2:
        try:
            np.broadcast_shapes(arrays[0].shape, arrays[1].shape)
        except ValueError:
            raise ValueError(
                f"{op}: operands of shapes {arrays[0].shape} and {arrays[1].shape} cannot be "
                "broadcast together"
            ) from None
    return constant(np.asarray(fn(*arrays)))


def sign(a: Any) -> Tensor:
    """-1, 0 or 1 by the sign of each element (no gradient). ``a: [*S] -> [*S]``."""
    return _const("sign", np.sign, a)


def floor(a: Any) -> Tensor:
    """Round down (no gradient: the derivative is 0 almost everywhere). ``a: [*S] -> [*S]``."""
    return _const("floor", np.floor, a)


def ceil(a: Any) -> Tensor:
    """Round up (no gradient). ``a: [*S] -> [*S]``."""
    return _const("ceil", np.ceil, a)


def round(a: Any, decimals: int = 0) -> Tensor:  # noqa: A001 - NumPy/PyTorch name
    """Round half to even, like np.round and torch.round (no gradient). ``a: [*S] -> [*S]``."""
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    return _const("round", lambda x: np.round(x, int(decimals)), a)


def trunc(a: Any) -> Tensor:
    """Round toward zero (no gradient). ``a: [*S] -> [*S]``."""
    return _const("trunc", np.trunc, a)


def floor_divide(a: Any, b: Any) -> Tensor:
    """floor(a / b) (Python's //, torch.floor_divide; no gradient). Broadcasts a and b."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _const("floor_divide", np.floor_divide, a, b)


def isnan(a: Any) -> Tensor:
    """Boolean mask of NaN elements. ``a: [*S] -> bool [*S]``."""
    return _const("isnan", np.isnan, a)


def isinf(a: Any) -> Tensor:
    """Boolean mask of +-inf elements. ``a: [*S] -> bool [*S]``."""
    return _const("isinf", np.isinf, a)


def isfinite(a: Any) -> Tensor:
    """Boolean mask of finite elements. ``a: [*S] -> bool [*S]``."""
    return _const("isfinite", np.isfinite, a)


def logical_and(a: Any, b: Any) -> Tensor:
    """Elementwise AND of truth values (nonzero is true). Broadcasts; ``-> bool``."""
    return _const("logical_and", np.logical_and, a, b)


def logical_or(a: Any, b: Any) -> Tensor:
    """Elementwise OR of truth values. Broadcasts; ``-> bool``."""
    return _const("logical_or", np.logical_or, a, b)


def logical_xor(a: Any, b: Any) -> Tensor:
    """Elementwise XOR of truth values. Broadcasts; ``-> bool``."""
    return _const("logical_xor", np.logical_xor, a, b)


def logical_not(a: Any) -> Tensor:
    """Elementwise NOT of truth values. ``a: [*S] -> bool [*S]``."""
    return _const("logical_not", np.logical_not, a)


def eq(a: Any, b: Any) -> Tensor:
    """a == b elementwise (broadcasting; no gradient) ``-> bool``."""
    return _const("eq", np.equal, a, b)


def ne(a: Any, b: Any) -> Tensor:
    """a != b elementwise ``-> bool``."""
    return _const("ne", np.not_equal, a, b)


def lt(a: Any, b: Any) -> Tensor:
    """a < b elementwise ``-> bool``."""
    return _const("lt", np.less, a, b)


def le(a: Any, b: Any) -> Tensor:
    """a <= b elementwise ``-> bool``."""
    return _const("le", np.less_equal, a, b)


def gt(a: Any, b: Any) -> Tensor:
    """a > b elementwise ``-> bool``."""
    return _const("gt", np.greater, a, b)


def ge(a: Any, b: Any) -> Tensor:
    """a >= b elementwise ``-> bool``."""
    return _const("ge", np.greater_equal, a, b)


__all__ = [
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "ceil",
    "cos",
    "cosh",
    "eq",
    "erf",
    "erfc",
    "exp2",
    "expm1",
    "floor",
    "floor_divide",
    "fmod",
    "ge",
    "gt",
    "isfinite",
    "isinf",
    "isnan",
    "le",
    "lerp",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "lt",
    "ne",
    "reciprocal",
    "remainder",
    "round",
    "rsqrt",
    "sign",
    "sin",
    "sinh",
    "square",
    "tan",
    "trunc",
]

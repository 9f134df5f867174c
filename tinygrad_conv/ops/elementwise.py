"""Elementwise ops with NumPy broadcasting. The engine sums gradients back to the input shapes.

Each backward uses Tensor ops only, so it can itself be differentiated (``create_graph=True``).
Where the derivative is a function of the output (exp, sqrt, sigmoid, tanh) it reuses ``ctx.output``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import elementwise as K
from tinygrad_conv.ops._util import _scalar_like, as_tensor, binary_operands, constant
from tinygrad_conv.tensor import Tensor


class Add(Function):
    """z = a + b."""

    vjp = {"a": "g", "b": "g"}

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """z = a - b."""

    vjp = {"a": "g", "b": "neg(g)"}

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = a * b."""

    vjp = {"a": "mul(g, b)", "b": "mul(g, a)"}

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        # Mul.apply directly: the operands are Tensors already, broadcasting is known to work
        return (
            Mul.apply(g, b) if ctx.needs_input_grad[0] else None,
            Mul.apply(g, a) if ctx.needs_input_grad[1] else None,
        )


class Div(Function):
    """z = a / b;  dz/da = 1/b,  dz/db = -a/b^2."""

    vjp = {"a": "div(g, b)", "b": "div(neg(mul(g, a)), mul(b, b))"}

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        ga = g / b if ctx.needs_input_grad[0] else None
        gb = -(g * a) / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """z = -a."""

    vjp = {"x": "neg(g)"}

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """z = a ** b;  dz/da = b a^(b-1),  dz/db = z log(a).

    PyTorch's conventions where the formulas are 0 * inf: d/da a^0 = 0 also at a = 0, and
    d/db a^b = 0 at a = 0, b >= 0. Forward saves where they apply (``None`` when nowhere, the common
    case) and backward then wraps the gradient in ``where(mask, 0, ...)``.
    """

    saved_names = ("b_is_0", "a_is_0")
    vjp = {"a": "mul(mul(g, b), pow(a, sub(b, 1)))", "b": "mul(mul(g, out), log(a))"}

    @staticmethod
    def forward(ctx, a, b):
        z = np.power(a, b)
        need_a, need_b = ctx.needs_input_grad
        b_is_0 = a_is_0 = None
        if need_a and (b == 0).any():
            b_is_0 = np.broadcast_to(b == 0, z.shape)
        if need_b and ((a == 0) & (b >= 0)).any():
            a_is_0 = np.broadcast_to((a == 0) & (b >= 0), z.shape)
        if b_is_0 is not None or a_is_0 is not None:
            ctx.save_for_backward(b_is_0, a_is_0)
        return z

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        b_is_0, a_is_0 = ctx.saved_tensors or (None, None)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0^-1 and log(0): masked below
            if ctx.needs_input_grad[0]:
                ga = _zero_where(b_is_0, g * b * a ** (b - 1))
            if ctx.needs_input_grad[1]:
                gb = _zero_where(a_is_0, g * ctx.output * log(a))
        return ga, gb


def _zero_where(mask: np.ndarray | None, t: Tensor) -> Tensor:
    """``t`` with the elements under ``mask`` (of t's shape) replaced by exact zeros."""
    if mask is None:
        return t
    return Where.apply(constant(mask), _scalar_like(t, 0), t)


class Exp(Function):
    """z = e^a;  dz/da = z."""

    vjp = {"x": "mul(g, out)"}

    @staticmethod
    def forward(ctx, a):
        return np.exp(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.output


class Log(Function):
    """z = ln a;  dz/da = 1/a."""

    vjp = {"x": "div(g, x)"}

    @staticmethod
    def forward(ctx, a):
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.inputs[0]


class Sqrt(Function):
    """z = sqrt(a);  dz/da = 1/(2z)."""

    vjp = {"x": "div(g, mul(2, out))"}

    @staticmethod
    def forward(ctx, a):
        return np.sqrt(a)

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.output)


class Abs(Function):
    """z = |a|;  dz/da = sign(a) (0 at 0, like PyTorch)."""

    saved_names = ("sign",)
    vjp = {"x": "mul(g, sign)"}

    @staticmethod
    def forward(ctx, a):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(np.sign(a))
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * constant(ctx.saved_tensors[0])


class Maximum(Function):
    """z = max(a, b) elementwise; at ties each side gets half of the gradient (as PyTorch)."""

    op_name = "maximum"
    saved_names = ("share_a", "share_b")
    vjp = {"a": "mul(g, share_a)", "b": "mul(g, share_b)"}

    @staticmethod
    def forward(ctx, a, b):
        z = np.maximum(a, b)
        if True in ctx.needs_input_grad:
            # the fraction of the gradient each side gets: 1 where it wins, 1/2 at ties
            share = ((a > b) + 0.5 * (a == b)).astype(z.dtype, copy=False)
            ctx.save_for_backward(np.broadcast_to(share, z.shape), 1 - share)
        return z

    @staticmethod
    def backward(ctx, g):
        share_a, share_b = ctx.saved_tensors
        return g * constant(share_a), g * constant(share_b)


class Minimum(Function):
    """z = min(a, b) elementwise; ties split the gradient equally."""

    op_name = "minimum"
    saved_names = ("share_a", "share_b")
    vjp = {"a": "mul(g, share_a)", "b": "mul(g, share_b)"}

    @staticmethod
    def forward(ctx, a, b):
        z = np.minimum(a, b)
        if True in ctx.needs_input_grad:
            # the fraction of the gradient each side gets: 1 where it wins, 1/2 at ties
            share = ((a < b) + 0.5 * (a == b)).astype(z.dtype, copy=False)
            ctx.save_for_backward(np.broadcast_to(share, z.shape), 1 - share)
        return z

    @staticmethod
    def backward(ctx, g):
        share_a, share_b = ctx.saved_tensors
        return g * constant(share_a), g * constant(share_b)


class Where(Function):
    """z = a where cond else b; cond is a boolean input (no gradient), all three of one shape."""

    input_names = ("cond", "a", "b")
    vjp = {"a": "where(cond, g, 0)", "b": "where(cond, 0, g)"}

    @staticmethod
    def forward(ctx, cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.inputs[0]
        need_a, need_b = ctx.needs_input_grad[1:]
        zero = _scalar_like(g, 0)
        return (
            None,
            Where.apply(cond, g, zero) if need_a else None,
            Where.apply(cond, zero, g) if need_b else None,
        )


class Clip(Function):
    """z = clip(a, lo, hi); the gradient passes where lo <= a <= hi."""

    saved_names = ("mask",)
    vjp = {"x": "mul(g, mask)"}

    @staticmethod
    def forward(ctx, a, *, lo, hi):
        if ctx.needs_input_grad[0]:
            mask = np.ones(a.shape, dtype=bool)
            if lo is not None:
                mask &= a >= lo
            if hi is not None:
                mask &= a <= hi
            ctx.save_for_backward(mask)
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        return Mul.apply(g, constant(ctx.saved_tensors[0]))


class ReLU(Function):
    """z = max(a, 0);  dz/da = 1[a > 0]."""

    op_name = "relu"
    saved_names = ("mask",)
    vjp = {"x": "mul(g, mask)"}

    @staticmethod
    def forward(ctx, a):
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(a > 0)  # bool: numpy casts it in backward's multiply
        return K.relu(a)

    @staticmethod
    def backward(ctx, g):
        return Mul.apply(g, constant(ctx.saved_tensors[0]))


class LeakyReLU(Function):
    """z = a if a > 0 else slope * a."""

    op_name = "leaky_relu"
    saved_names = ("slope_mask",)
    vjp = {"x": "mul(g, slope_mask)"}

    @staticmethod
    def forward(ctx, a, *, negative_slope):
        z = np.where(a > 0, a, a * negative_slope)  # weak Python float: float32 stays float32
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(np.where(a > 0, 1.0, negative_slope).astype(z.dtype))
        return z

    @staticmethod
    def backward(ctx, g):
        return g * constant(ctx.saved_tensors[0])


class Sigmoid(Function):
    """z = 1/(1+e^-a), computed without overflow;  dz/da = z (1 - z)."""

    vjp = {"x": "mul(mul(g, out), sub(1, out))"}

    @staticmethod
    def forward(ctx, a):
        # exp of a non-positive number only: e^-|a| never overflows (and is float for int a)
        e = np.exp(-np.abs(a))
        return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(e.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        z = ctx.output
        return g * z * (1 - z)


class Tanh(Function):
    """z = tanh(a);  dz/da = 1 - z^2."""

    vjp = {"x": "mul(g, sub(1, mul(out, out)))"}

    @staticmethod
    def forward(ctx, a):
        return np.tanh(a)

    @staticmethod
    def backward(ctx, g):
        z = ctx.output
        return g * (1 - z * z)


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    op_name = "cast"
    vjp = {"x": "cast(g)"}

    @staticmethod
    def forward(ctx, a, *, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.inputs[0].dtype)


# -- public functions -----------------------------------------------------------------------------
def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return Add.apply(*binary_operands("add", a, b))


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return Sub.apply(*binary_operands("sub", a, b))


def mul(a: Any, b: Any) -> Tensor:
    """a * b with broadcasting."""
    return Mul.apply(*binary_operands("mul", a, b))


def div(a: Any, b: Any) -> Tensor:
    """a / b with broadcasting (true division)."""
    return Div.apply(*binary_operands("div", a, b))


def neg(a: Any) -> Tensor:
    """-a."""
    return Neg.apply(as_tensor(a))


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - NumPy/PyTorch name
    """a ** b with broadcasting."""
    return Pow.apply(*binary_operands("pow", a, b))


def exp(a: Any) -> Tensor:
    """e ** a."""
    return Exp.apply(as_tensor(a))


def log(a: Any) -> Tensor:
    """Natural logarithm."""
    return Log.apply(as_tensor(a))


def sqrt(a: Any) -> Tensor:
    """Square root."""
    return Sqrt.apply(as_tensor(a))


def abs(a: Any) -> Tensor:  # noqa: A001
    """|a|."""
    return Abs.apply(as_tensor(a))


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum with broadcasting."""
    return Maximum.apply(*binary_operands("maximum", a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum with broadcasting."""
    return Minimum.apply(*binary_operands("minimum", a, b))


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``cond`` is true, else ``b`` (broadcast together); differentiable in a and b.

    Shapes: cond, a, b broadcast to one shape, the output's.
    """
    c = np.array(cond.data if isinstance(cond, Tensor) else cond)  # own copy, read by backward
    if c.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}")
    ta, tb = binary_operands("where", a, b)
    try:
        shape = np.broadcast_shapes(c.shape, ta.shape, tb.shape)
    except ValueError:
        raise ValueError(
            f"where: cond {c.shape}, a {ta.shape} and b {tb.shape} cannot be broadcast together"
        ) from None
    return Where.apply(constant(np.broadcast_to(c, shape)), ta, tb)


def clip(a: Any, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Clamp to [min, max] (either bound may be None)."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min={min} is greater than max={max}")
    return Clip.apply(as_tensor(a), lo=min, hi=max)


def relu(a: Any) -> Tensor:
    """max(a, 0)."""
    return ReLU.apply(as_tensor(a))


def leaky_relu(a: Any, negative_slope: float = 0.01) -> Tensor:
    """a if a > 0 else negative_slope * a."""
    return LeakyReLU.apply(as_tensor(a), negative_slope=float(negative_slope))


def sigmoid(a: Any) -> Tensor:
    """Logistic function 1 / (1 + e^-a), stable for large |a|."""
    return Sigmoid.apply(as_tensor(a))


def tanh(a: Any) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(as_tensor(a))


def cast(a: Any, dtype: Any) -> Tensor:
    """Convert to ``dtype`` (differentiable between float dtypes)."""
    t = as_tensor(a)
    dtype = np.dtype(dtype)
    if t.dtype == dtype:
        return t
    if not np.issubdtype(dtype, np.floating):
        return Tensor(t.data.astype(dtype))  # integer/bool results carry no gradient
    return Cast.apply(t, dtype=dtype)

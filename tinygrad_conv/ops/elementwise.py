"""Elementwise ops with NumPy broadcasting. The engine sums gradients back to the input shapes.

Each backward uses Tensor ops only, so it can itself be differentiated (``create_graph=True``).
Where the derivative is a function of the output (exp, sqrt, sigmoid, tanh) it reuses ``ctx.output``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_conv.function import Function
from tinygrad_conv.kernels import elementwise as K
from tinygrad_conv.ops._util import as_tensor, binary_operands, constant
from tinygrad_conv.tensor import Tensor


class Add(Function):
    """z = a + b."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """z = a - b."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = a * b."""

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
    """z = a / b;  dz/da = 1/b,  dz/db = -a/b^2 = -z/b."""

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

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """z = a ** b;  dz/da = b a^(b-1),  dz/db = z log(a)."""

    @staticmethod
    def forward(ctx, a, b):
        return np.power(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):  # 0^-1 and log(0): masked below
            if ctx.needs_input_grad[0]:
                # d/da a^0 = 0, also at a = 0 where a^-1 is inf (PyTorch's convention)
                ga = _zero_where(b.data == 0, g * b * a ** (b - 1))
            if ctx.needs_input_grad[1]:
                # a = 0, b >= 0: z is flat in b, so dz/db = 0 rather than 0 * log(0) (PyTorch's)
                gb = _zero_where((a.data == 0) & (b.data >= 0), g * ctx.output * log(a))
        return ga, gb


def _zero_where(mask: np.ndarray, t: Tensor) -> Tensor:
    """``t`` with the elements under ``mask`` (broadcast to t's shape) replaced by exact zeros."""
    if not mask.any():
        return t
    return where(np.broadcast_to(mask, t.shape), 0.0, t)


class Exp(Function):
    """z = e^a;  dz/da = z."""

    @staticmethod
    def forward(ctx, a):
        return np.exp(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.output


class Log(Function):
    """z = ln a;  dz/da = 1/a."""

    @staticmethod
    def forward(ctx, a):
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.inputs[0]


class Sqrt(Function):
    """z = sqrt(a);  dz/da = 1/(2z)."""

    @staticmethod
    def forward(ctx, a):
        return np.sqrt(a)

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.output)


class Abs(Function):
    """z = |a|;  dz/da = sign(a) (0 at 0, like PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * constant(np.sign(ctx.inputs[0].data))


class Maximum(Function):
    """z = max(a, b) elementwise; at ties each side gets half of the gradient (as PyTorch)."""

    op_name = "maximum"

    @staticmethod
    def forward(ctx, a, b):
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        share = (a.data > b.data) + 0.5 * (a.data == b.data)
        return g * constant(share.astype(g.dtype)), g * constant((1 - share).astype(g.dtype))


class Minimum(Function):
    """z = min(a, b) elementwise; ties split the gradient equally."""

    op_name = "minimum"

    @staticmethod
    def forward(ctx, a, b):
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        share = (a.data < b.data) + 0.5 * (a.data == b.data)
        return g * constant(share.astype(g.dtype)), g * constant((1 - share).astype(g.dtype))


class Where(Function):
    """z = a where cond else b (cond is a constant boolean array)."""

    @staticmethod
    def forward(ctx, a, b, *, cond):
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.attrs["cond"]
        mask = constant(cond.astype(g.dtype))
        return g * mask, g * (1 - mask)


class Clip(Function):
    """z = clip(a, lo, hi); the gradient passes where lo <= a <= hi."""

    @staticmethod
    def forward(ctx, a, *, lo, hi):
        return np.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0].data
        lo, hi = ctx.attrs["lo"], ctx.attrs["hi"]
        mask = np.ones(a.shape, dtype=bool)
        if lo is not None:
            mask &= a >= lo
        if hi is not None:
            mask &= a <= hi
        return g * constant(mask.astype(g.dtype))


class ReLU(Function):
    """z = max(a, 0);  dz/da = 1[a > 0]."""

    op_name = "relu"

    @staticmethod
    def forward(ctx, a):
        return K.relu(a)

    @staticmethod
    def backward(ctx, g):
        # bool mask: numpy casts it in the multiply
        return Mul.apply(g, constant(ctx.inputs[0].data > 0))


class LeakyReLU(Function):
    """z = a if a > 0 else slope * a."""

    op_name = "leaky_relu"

    @staticmethod
    def forward(ctx, a, *, negative_slope):
        return np.where(a > 0, a, a * negative_slope)  # weak Python float: float32 stays float32

    @staticmethod
    def backward(ctx, g):
        slope = ctx.attrs["negative_slope"]
        factor = np.where(ctx.inputs[0].data > 0, 1.0, slope).astype(g.dtype)
        return g * constant(factor)


class Sigmoid(Function):
    """z = 1/(1+e^-a), computed without overflow;  dz/da = z (1 - z)."""

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
    """``a`` where ``cond`` is true, else ``b`` (broadcast together); differentiable in a and b."""
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
    return Where.apply(ta, tb, cond=np.broadcast_to(c, shape))


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

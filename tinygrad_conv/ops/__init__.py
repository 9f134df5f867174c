"""Differentiable ops, one module per family. Each public function takes Tensors (or arrays,
taken as constants) and returns a Tensor; see each module for the math of its backward pass."""

from tinygrad_conv.ops.conv import (
    conv2d,
    conv2d_backprop_filter,
    conv2d_backprop_input,
    conv2d_transpose,
)
from tinygrad_conv.ops.elementwise import (
    abs,
    add,
    cast,
    clip,
    div,
    exp,
    leaky_relu,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from tinygrad_conv.ops.loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_softmax,
    mse_loss,
    softmax,
)
from tinygrad_conv.ops.matmul import matmul
from tinygrad_conv.ops.movement import (
    broadcast_to,
    concatenate,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    sum_to_shape,
    swapaxes,
    transpose,
    unsqueeze,
)
from tinygrad_conv.ops.pool import avg_pool2d, max_pool2d
from tinygrad_conv.ops.reduce import logsumexp, max, mean, min, sum, var

__all__ = [
    "abs",
    "add",
    "avg_pool2d",
    "binary_cross_entropy_with_logits",
    "broadcast_to",
    "cast",
    "clip",
    "concatenate",
    "conv2d",
    "conv2d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_transpose",
    "cross_entropy",
    "div",
    "exp",
    "flatten",
    "getitem",
    "leaky_relu",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "max_pool2d",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mse_loss",
    "mul",
    "neg",
    "pad",
    "permute",
    "pow",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "sum_to_shape",
    "swapaxes",
    "tanh",
    "transpose",
    "unsqueeze",
    "var",
    "where",
]

# -- op breadth (issue 17): each module lists its public ops in its own __all__ ------------------
from tinygrad_conv.ops import activation as _activation  # noqa: E402
from tinygrad_conv.ops import unary as _unary  # noqa: E402
from tinygrad_conv.ops.activation import *  # noqa: E402,F403
from tinygrad_conv.ops.unary import *  # noqa: E402,F403

__all__ += [*_unary.__all__, *_activation.__all__]

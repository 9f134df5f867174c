"""Differentiable ops, one module per family. Each public function takes Tensors (or arrays,
taken as constants) and returns a Tensor; see each module for the math of its backward pass."""

from tinygrad_conv.ops.clone import clone
from tinygrad_conv.ops.conv import (
    conv1d,
    conv1d_backprop_filter,
    conv1d_backprop_input,
    conv1d_transpose,
    conv2d,
    conv2d_backprop_filter,
    conv2d_backprop_input,
    conv2d_transpose,
    conv3d,
    conv3d_backprop_filter_v2,
    conv3d_backprop_input_v2,
    conv3d_transpose,
    depthwise_conv2d,
    depthwise_conv2d_backprop_filter,
    depthwise_conv2d_backprop_input,
    separable_conv2d,
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
from tinygrad_conv.ops.pool import (
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
)
from tinygrad_conv.ops.reduce import logsumexp, max, mean, min, sum, var

__all__ = [
    "clone",
    "abs",
    "add",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "binary_cross_entropy_with_logits",
    "broadcast_to",
    "cast",
    "clip",
    "concatenate",
    "conv1d",
    "conv1d_backprop_filter",
    "conv1d_backprop_input",
    "conv1d_transpose",
    "conv2d",
    "conv2d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_transpose",
    "conv3d",
    "conv3d_backprop_filter_v2",
    "conv3d_backprop_input_v2",
    "conv3d_transpose",
    "cross_entropy",
    "depthwise_conv2d",
    "depthwise_conv2d_backprop_filter",
    "depthwise_conv2d_backprop_input",
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
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
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
    "separable_conv2d",
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
from tinygrad_conv.ops import indexing as _indexing  # noqa: E402
from tinygrad_conv.ops import losses_extra as _losses_extra  # noqa: E402
from tinygrad_conv.ops import scan as _scan  # noqa: E402
from tinygrad_conv.ops import unary as _unary  # noqa: E402
from tinygrad_conv.ops.activation import *  # noqa: E402,F403
from tinygrad_conv.ops.indexing import *  # noqa: E402,F403
from tinygrad_conv.ops.losses_extra import *  # noqa: E402,F403
from tinygrad_conv.ops.scan import *  # noqa: E402,F403
from tinygrad_conv.ops.unary import *  # noqa: E402,F403

__all__ += [*_unary.__all__, *_activation.__all__, *_scan.__all__, *_indexing.__all__]
__all__ += _losses_extra.__all__

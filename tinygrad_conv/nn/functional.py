"""Stateless forms of the layers (``import tinygrad_conv.nn.functional as F``), all NHWC.

Activations, losses and the conv/pool ops are the engine's own functions re-exported under their
usual names; ``linear``, ``dropout``, ``batch_norm`` and ``global_avg_pool2d`` are composed here
from differentiable ops, so their gradients (and gradients of gradients) come for free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv.function import Function
from tinygrad_conv.grad_mode import is_grad_enabled
from tinygrad_conv.ops import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    flatten,
    leaky_relu,
    log_softmax,
    matmul,
    mean,
    mse_loss,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from tinygrad_conv.ops import sum as sum_
from tinygrad_conv.ops._util import constant
from tinygrad_conv.tensor import Tensor, _rng

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "conv2d", "conv2d_transpose",
    "cross_entropy", "dropout", "flatten", "global_avg_pool2d", "leaky_relu", "linear",
    "log_softmax", "max_pool2d", "mse_loss", "relu", "sigmoid", "softmax", "tanh",
]  # fmt: skip


# The conv/pool ops are looked up on ``tc`` at call time: nn may be imported while the package is
# still initialising, and this keeps one source of truth for their signatures.
def conv2d(
    input: Any,  # noqa: A002 - TensorFlow's argument name
    filters: Any,
    strides: int | Sequence[int] = 1,
    padding: Any = "VALID",
    data_format: str = "NHWC",
    dilations: int | Sequence[int] = 1,
) -> Tensor:
    """``tc.conv2d``: input [N,H,W,Cin], filters HWIO [kh,kw,Cin/groups,Cout] -> [N,Ho,Wo,Cout]."""
    return tc.conv2d(input, filters, strides, padding, data_format, dilations)


def conv2d_transpose(
    input: Any,  # noqa: A002
    filters: Any,
    output_shape: Sequence[int],
    strides: int | Sequence[int],
    padding: Any = "SAME",
    data_format: str = "NHWC",
    dilations: int | Sequence[int] = 1,
) -> Tensor:
    """``tc.conv2d_transpose``: input [N,H,W,in], filters [kh,kw,out,in] -> ``output_shape``."""
    return tc.conv2d_transpose(
        input, filters, output_shape, strides, padding, data_format, dilations
    )


def max_pool2d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Any = "VALID",
) -> Tensor:
    """``tc.max_pool2d`` on [N,H,W,C]; ``strides`` defaults to ``ksize``."""
    return tc.max_pool2d(input, ksize, ksize if strides is None else strides, padding)


def avg_pool2d(
    input: Any,  # noqa: A002
    ksize: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: Any = "VALID",
) -> Tensor:
    """``tc.avg_pool2d`` on [N,H,W,C]; ``strides`` defaults to ``ksize``."""
    return tc.avg_pool2d(input, ksize, ksize if strides is None else strides, padding)


def global_avg_pool2d(x: Any, keepdims: bool = False) -> Tensor:
    """Mean over H and W: [N,H,W,C] -> [N,C] (or [N,1,1,C] with ``keepdims``)."""
    return mean(x, (1, 2), keepdims)


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """y = x @ weight + bias with weight [in, out] (PyTorch's is [out, in]).

    Shapes: x [..., in], weight [in, out], bias [out] -> [..., out].
    """
    y = matmul(x, weight)
    return y if bias is None else y + bias


def dropout(
    x: Any,
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p).

    A constant mask multiply, so the gradient is that same mask. Identity when not ``training``
    or ``p == 0``. ``generator``: np.random.Generator, seed, or None (the ``tc.manual_seed`` one).
    Shape: any; output has the shape of ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    t = x if isinstance(x, Tensor) else Tensor(x)
    dtype = t.dtype if np.issubdtype(t.dtype, np.floating) else np.dtype(np.float32)
    if p == 1.0:
        mask = np.zeros(t.shape, dtype)
    else:
        keep = _rng(generator).random(t.shape) >= p
        mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return t * constant(mask)


class _BatchNormTrain(Function):
    """y = xhat * w + b, xhat = (x - mean) / sqrt(var + eps) with the batch statistics over every
    axis but the last (passed in as constants, computed once by the caller).

    One fused node instead of ~9 elementwise/reduce nodes: this runs every training step.
    With xhat and g' = g * w, and means over the normalised axes:
        dx = (g' - mean(g') - xhat * mean(g' * xhat)) / sqrt(var + eps)
        dw = sum(g * xhat),  db = sum(g)
    Without ``create_graph`` that is evaluated in numpy from the saved xhat; with it, xhat is
    rebuilt from x with differentiable ops, so the gradient can be differentiated again.
    """

    op_name = "batch_norm"
    input_names = ("x", "weight", "bias", "mean", "var")
    saved_names = ("xhat", "inv_std")
    # the plain backward (the rule drawn) is numpy on the saved arrays; with create_graph it is
    # the formulas above in Tensor ops, and the record then names every op
    vjp = {
        "x": "(numpy, not recorded)",
        "weight": "(numpy, not recorded)",
        "bias": "(numpy, not recorded)",
    }

    @staticmethod
    def forward(ctx, x, w, b, mu, var, *, eps):
        inv = 1.0 / np.sqrt(var + eps)
        xhat = (x - mu) * inv
        ctx.save_for_backward(xhat, inv)
        return xhat * w + b

    @staticmethod
    def backward(ctx, g):
        x, w, _, _, _ = ctx.inputs
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        axes = tuple(range(x.ndim - 1))
        if not is_grad_enabled():  # plain backward: numpy on the saved arrays
            xhat, inv = ctx.saved_tensors
            gd = g.data
            gx = gw = gb = None
            if need_w:
                gw = constant(np.sum(gd * xhat, axes))
            if need_b:
                gb = constant(np.sum(gd, axes))
            if need_x:
                gh = gd * w.data
                gx = (gh - gh.mean(axes) - xhat * (gh * xhat).mean(axes)) * inv
                gx = constant(gx.astype(np.result_type(gd, xhat), copy=False))
            return gx, gw, gb, None, None
        # create_graph: the same formulas as differentiable ops of x, w and g
        mu = mean(x, axes)
        xc = x - mu
        inv_t = (mean(xc * xc, axes) + ctx.attrs["eps"]) ** -0.5
        xhat_t = xc * inv_t
        gx = gw = gb = None
        if need_w:
            gw = sum_(g * xhat_t, axes)
        if need_b:
            gb = sum_(g, axes)
        if need_x:
            gh = g * w
            gx = (gh - mean(gh, axes) - xhat_t * mean(gh * xhat_t, axes)) * inv_t
        return gx, gw, gb, None, None


def batch_norm(
    x: Any,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: np.ndarray | None = None,
) -> Tensor:
    """Batch normalisation over every axis but the last (channels-last: [N,C], [N,L,C], [N,H,W,C]).

    Training (or no running statistics): normalise with the batch mean and *biased* variance and,
    if running arrays are given, update them in place with the *unbiased* variance, as PyTorch:
    ``running = (1 - momentum) * running + momentum * batch`` (``momentum=None``: cumulative
    average over ``num_batches_tracked``). Evaluation: normalise with the running statistics.
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; weight/bias [C] are optional.
    """
    t = x if isinstance(x, Tensor) else Tensor(x)
    axes = tuple(range(t.ndim - 1))
    use_batch = training or running_mean is None or running_var is None
    if use_batch:
        n = math.prod(t.shape[:-1])
        if training and n <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel in training, got input "
                f"shape {t.shape}"
            )
        xd = t.data
        mu, var = xd.mean(axes), xd.var(axes)  # biased: the normaliser
        c = t.shape[-1]
        w = weight if weight is not None else constant(np.ones(c, xd.dtype))
        b = bias if bias is not None else constant(np.zeros(c, xd.dtype))
        y = _BatchNormTrain.apply(t, w, b, constant(mu), constant(var), eps=eps)
        if training and running_mean is not None and running_var is not None:
            if num_batches_tracked is not None:
                num_batches_tracked += 1
            if momentum is None:
                if num_batches_tracked is None:
                    raise ValueError("batch_norm: momentum=None needs num_batches_tracked")
                m = 1.0 / float(num_batches_tracked)
            else:
                m = momentum
            running_mean *= 1.0 - m
            running_mean += m * mu
            running_var *= 1.0 - m
            running_var += (m * n / (n - 1)) * var  # unbiased, as PyTorch feeds it
        return y
    inv = 1.0 / np.sqrt(running_var + eps)
    scale = inv if weight is None else weight * constant(inv.astype(running_var.dtype, copy=False))
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return t * scale + shift


# PyTorch's dim= wherever axis= is (issue 16): F.softmax(x, dim=1)
def _accept_dim_all() -> None:
    from tinygrad_conv.tensor import accept_dim

    for name in __all__:
        globals()[name] = accept_dim(globals()[name])


_accept_dim_all()

# PyTorch's F. names for the functional forms of the layers in nn/norm.py and nn/extra.py
from tinygrad_conv.nn.extra import (  # noqa: E402, F401 - re-exported
    adaptive_avg_pool2d,
    dropout2d,
    embedding,
    interpolate,
)
from tinygrad_conv.nn.norm import group_norm, instance_norm, layer_norm  # noqa: E402, F401

"""tinygrad_conv: a small, exact reverse-mode autodiff engine on numpy whose conv ops form a
closed family (conv2d's gradients are conv2d_backprop_input / conv2d_backprop_filter, whose own
gradients are conv2d and each other), so gradients of gradients work with no extra code.

Import as ``import tinygrad_conv as tc``.
"""

from tinygrad_conv import datasets  # noqa: F401 - tc.datasets.load_fashion_mnist(...)
from tinygrad_conv.anomaly import detect_anomaly, is_anomaly_enabled
from tinygrad_conv.autograd import grad
from tinygrad_conv.explain import explain_conv
from tinygrad_conv.explore import Explorer, explore
from tinygrad_conv.function import Function
from tinygrad_conv.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tinygrad_conv.gradcheck import GradcheckError, gradcheck, gradgradcheck
from tinygrad_conv.kernels.blas import get_num_threads, set_num_threads
from tinygrad_conv.kernels.blas import get_policy as get_blas_policy
from tinygrad_conv.kernels.blas import set_policy as set_blas_policy
from tinygrad_conv.kernels.memory import tune_malloc
from tinygrad_conv.kernels.tuning import tune_for_speed
from tinygrad_conv.lab import ConvLab, conv_lab, shape_oracle
from tinygrad_conv.ops import *  # noqa: F403 - the op functions are the public API
from tinygrad_conv.ops import __all__ as _ops_all
from tinygrad_conv.record import BackwardRecord, BackwardTrace, Source, record_backward
from tinygrad_conv.tensor import (
    Tensor,
    arange,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from tinygrad_conv.viz import GraphvizNotFoundError, draw_graph, save_graph

__version__ = "0.1.0"

# Importing changes no process-wide setting: the malloc tuning (kernels/memory.py) and the
# adaptive BLAS thread policy (kernels/blas.py) are explicit: ``tc.tune_for_speed()`` applies
# both (kernels/tuning.py); the examples and the benchmark call it as their documented default.

__all__ = [
    "BackwardRecord",
    "detect_anomaly",
    "is_anomaly_enabled",
    "BackwardTrace",
    "Function",
    "Source",
    "record_backward",
    "get_blas_policy",
    "get_num_threads",
    "set_blas_policy",
    "set_num_threads",
    "tune_for_speed",
    "tune_malloc",
    "GradcheckError",
    "GraphvizNotFoundError",
    "draw_graph",
    "explain_conv",
    "Explorer",
    "explore",
    "ConvLab",
    "conv_lab",
    "shape_oracle",
    "save_graph",
    "Tensor",
    "arange",
    "enable_grad",
    "full",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "set_grad_enabled",
    "tensor",
    "zeros",
    "zeros_like",
    *_ops_all,
]

# -- op breadth (issue 17): tensor factories (eye, linspace, full_like, randint, empty, ...) -------
from tinygrad_conv import factories as _factories  # noqa: E402
from tinygrad_conv.factories import *  # noqa: E402,F403

__all__ += _factories.__all__

# -- PyTorch's dim= wherever axis= is (issue 16): tc.sum(x, dim=1); the ops modules stay unwrapped
from tinygrad_conv.tensor import accept_dim as _accept_dim  # noqa: E402

for _n in __all__:
    _f = globals()[_n]
    if callable(_f) and not isinstance(_f, type):
        globals()[_n] = _accept_dim(_f)
del _n, _f

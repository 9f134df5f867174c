"""Neural-network building blocks, NHWC like Keras/TensorFlow, with PyTorch's Module API.

``Module`` / ``Parameter`` / ``Sequential`` / ``ModuleList`` (module.py), layers (layers.py),
losses (loss.py), initialisers (``nn.init``) and the stateless forms (``nn.functional``).
Conv weights are HWIO ``[kh, kw, in/groups, out]``; Linear weights are ``[in, out]``.
"""

from tinygrad_conv.nn import functional, init
from tinygrad_conv.nn.layers import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    DepthwiseConv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from tinygrad_conv.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from tinygrad_conv.nn.module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential

__all__ = [
    "AvgPool1d", "AvgPool3d", "Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose3d",
    "DepthwiseConv2d", "MaxPool1d", "MaxPool3d",
    "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
    "CrossEntropyLoss", "Dropout", "Flatten", "GlobalAvgPool2d", "Identity", "IncompatibleKeys",
    "LeakyReLU", "Linear", "MSELoss", "MaxPool2d", "Module", "ModuleList", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "Tanh", "functional", "init",
]  # fmt: skip

# -- op breadth (issue 17): more losses, normalisation layers, layers and activations ------------
from tinygrad_conv.nn import extra as _extra  # noqa: E402
from tinygrad_conv.nn import losses_extra as _losses_extra  # noqa: E402
from tinygrad_conv.nn import norm as _norm  # noqa: E402
from tinygrad_conv.nn.extra import *  # noqa: E402,F403
from tinygrad_conv.nn.losses_extra import *  # noqa: E402,F403
from tinygrad_conv.nn.norm import *  # noqa: E402,F403

__all__ += [*_losses_extra.__all__, *_norm.__all__, *_extra.__all__]

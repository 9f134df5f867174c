"""Pure-numpy kernels: ndarrays in, ndarrays out. No Tensor, no graph, no autograd.

* ``padding``: TF's padding / stride / dilation arithmetic, resolved once into a frozen
  ``ConvGeometry`` that every conv and pooling kernel shares (``conv_geometry``,
  ``pool_geometry``, ``check_out_backprop``, ``groups_of``).
* ``conv``: ``conv2d`` and its two adjoints ``conv2d_backprop_input`` /
  ``conv2d_backprop_filter`` (NHWC / HWIO, groups, strides, dilations, explicit pads), plus the
  reusable window matrix ``conv2d_windows``.
* ``pool``: ``max_pool2d`` (with the window-local argmax), ``max_pool2d_values`` (no argmax),
  ``max_pool2d_flat_argmax``, ``max_pool2d_backprop``, ``max_pool2d_gather``,
  ``avg_pool2d``, ``avg_pool2d_backprop``.
* ``memory``: ``tune_malloc`` (glibc keeps freed activation memory for reuse: no page faults).
* ``tuning``: ``tune_for_speed`` (malloc tuning + adaptive BLAS policy, only when called).
* ``elementwise``: ``relu`` and ``sum_to_shape`` where numpy's one-liner is several times slower.

Layouts are NHWC for activations and HWIO for filters; NCHW is handled by the layer above
(``conv_geometry`` understands NCHW shapes and TF's 4-element argument forms).
"""

from . import conv, elementwise, memory, padding, pool, tuning

__all__ = ["conv", "elementwise", "memory", "padding", "pool", "tuning"]

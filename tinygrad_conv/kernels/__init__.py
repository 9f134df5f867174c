"""Pure-numpy kernels: ndarrays in, ndarrays out. No Tensor, no graph, no autograd.

* ``padding``: TF's padding / stride / dilation arithmetic, resolved once into a frozen
  ``ConvGeometry`` that every conv and pooling kernel shares (``conv_geometry``,
  ``pool_geometry``, ``check_out_backprop``, ``groups_of``).
* ``conv_ref``: the reference N-d convolution and its adjoints, written for reading (loops over
  taps, the definition in the docstring): the oracle every fast strategy is tested against.
* ``conv``: ``conv2d`` and its two adjoints ``conv2d_backprop_input`` /
  ``conv2d_backprop_filter`` (NHWC / HWIO, groups, strides, dilations, explicit pads), plus the
  reusable window matrix ``conv2d_windows``; ONE planner (``conv.plan``, thresholds in the
  immutable ``conv.Tuning``) picks a strategy per op from ``conv_im2col`` (window matrix + GEMM,
  pointwise, tap adds), ``conv_kmajor`` (few channels) and ``conv_phases`` (strided input
  gradient), sharing ``conv_layout`` (blocks, strided views, grouped GEMM operands).
* ``conv_nd``: the same three products for 1, 2 or 3 spatial axes (1-D and 2-D on the tuned 2-D
  strategies, any rank on a rank-generic window matrix), planned by ``conv_nd.plan``.
* ``pool``: ``max_pool2d`` (with the window-local argmax), ``max_pool2d_values`` (no argmax),
  ``max_pool2d_flat_argmax``, ``max_pool2d_backprop``, ``max_pool2d_gather``,
  ``avg_pool2d``, ``avg_pool2d_backprop``.
* ``memory``: ``tune_malloc`` (glibc keeps freed activation memory for reuse: no page faults).
* ``tuning``: ``tune_for_speed`` (malloc tuning + adaptive BLAS policy, only when called).
* ``elementwise``: ``relu`` and ``sum_to_shape`` where numpy's one-liner is several times slower.

Layouts are NHWC for activations and HWIO for filters; NCHW is handled by the layer above
(``conv_geometry`` understands NCHW shapes and TF's 4-element argument forms).
"""

from . import conv, conv_nd, conv_ref, elementwise, memory, padding, pool, tuning

__all__ = [
    "conv",
    "conv_nd",
    "conv_ref",
    "elementwise",
    "memory",
    "padding",
    "pool",
    "tuning",
]

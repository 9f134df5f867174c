"""Shared helpers for comparing tinygrad_conv with live TensorFlow (CPU, float64).

* :func:`import_tensorflow` -- ``pytest.importorskip`` locally, but under ``CI=true`` a missing
  TensorFlow is an *error* (a CI job must not go green by skipping every comparison).
* CPU-safe TF references for the conv family. TF 2.21's CPU kernels refuse two things we test:
  gradients of grouped convs (so each group is computed on its channel slices and the results
  concatenated) and any dilation > 1 in the backprop kernels (so a dilated filter is replaced by the
  equivalent zero-inserted filter with ``e = d(k-1)+1`` taps and dilation 1; a filter gradient is
  then the ``[::d, ::d]`` subsample of the zero-inserted filter's gradient). Both rewrites are
  built from differentiable TF ops, so GradientTape (also nested) works through them.
* :func:`rel_err` -- max |ours - ref| / max |ref|.

All TF references take and return NHWC / HWIO arrays; NCHW is compared by transposing.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

Padding = Any  # 'VALID' | 'SAME' | ((top, bottom), (left, right))


def import_tensorflow() -> Any:
    """Import TensorFlow quietly; skip if missing, unless CI=true (then fail loudly)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("CI") == "true":
        import tensorflow as tf  # a missing TF must be an error in CI
    else:
        tf = pytest.importorskip("tensorflow")
    tf.get_logger().setLevel("ERROR")
    return tf


def rel_err(ours: Any, ref: Any) -> float:
    """Max absolute difference divided by the max absolute value of the reference.

    An all-zero reference (e.g. a gradient that is exactly zero) falls back to the absolute error.
    """
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        raise AssertionError(f"shape mismatch: ours {ours.shape} vs reference {ref.shape}")
    diff = float(np.max(np.abs(ours - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def tf_padding(padding: Padding) -> Any:
    """Our padding forms -> TF's: strings as is, [[t, b], [l, r]] -> TF's NHWC 4-pair form."""
    if isinstance(padding, str):
        return padding
    (t, b), (l, r) = padding
    return [[0, 0], [int(t), int(b)], [int(l), int(r)], [0, 0]]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _strides4(v: Any) -> list[int]:
    sh, sw = _pair(v)
    return [1, sh, sw, 1]


class TFConv:
    """CPU-safe TF versions of the conv family for one geometry (NHWC / HWIO, float64).

    ``groups`` is Cin // filter_in_channels (TF's inference). Each method splits into groups and
    rewrites dilations as zero-inserted filters as described in the module docstring.
    """

    def __init__(self, tf: Any, strides: Any, padding: Padding, dilations: Any, groups: int):
        self.tf = tf
        self.strides = _strides4(strides)
        self.padding = tf_padding(padding)
        self.dil = _pair(dilations)
        self.groups = groups

    # -- building blocks -----------------------------------------------------------------------
    def dilate_filter(self, w: Any) -> Any:
        """HWIO filter with d-1 zeros between taps along kh and kw (differentiable)."""
        tf = self.tf
        dh, dw = self.dil
        if (dh, dw) == (1, 1):
            return w
        kh, kw, ci, co = (int(s) for s in w.shape)
        z = tf.reshape(w, [kh, 1, kw, 1, ci, co])
        z = tf.pad(z, [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]])
        z = tf.reshape(z, [kh * dh, kw * dw, ci, co])
        return z[: (kh - 1) * dh + 1, : (kw - 1) * dw + 1]

    def _split(self, t: Any, axis: int) -> list[Any]:
        return self.tf.split(t, self.groups, axis=axis) if self.groups > 1 else [t]

    def _cat(self, ts: list[Any], axis: int) -> Any:
        return self.tf.concat(ts, axis=axis) if len(ts) > 1 else ts[0]

    # -- the family ------------------------------------------------------------------------------
    def conv2d_native(self, x: Any, w: Any) -> Any:
        """tf.nn.conv2d as is (grouped and dilated forwards run on CPU, even with strides)."""
        return self.tf.nn.conv2d(
            x, w, strides=self.strides, padding=self.padding, dilations=[1, *self.dil, 1]
        )

    def conv2d(self, x: Any, w: Any) -> Any:
        """Differentiable on CPU: per group, zero-inserted filter, dilation 1."""
        tf = self.tf
        ys = [
            tf.nn.conv2d(xg, self.dilate_filter(wg), strides=self.strides, padding=self.padding)
            for xg, wg in zip(self._split(x, 3), self._split(w, 3), strict=True)
        ]
        return self._cat(ys, 3)

    def backprop_input(self, input_sizes: Any, w: Any, dy: Any) -> Any:
        """tf.compat.v1.nn.conv2d_backprop_input, per group, zero-inserted filter."""
        tf = self.tf
        n, h, wd, c = (int(s) for s in input_sizes)
        sizes = [n, h, wd, c // self.groups]
        outs = [
            tf.compat.v1.nn.conv2d_backprop_input(
                sizes, self.dilate_filter(wg), dyg, strides=self.strides, padding=self.padding
            )
            for wg, dyg in zip(self._split(w, 3), self._split(dy, 3), strict=True)
        ]
        return self._cat(outs, 3)

    def backprop_filter(self, x: Any, filter_sizes: Any, dy: Any) -> Any:
        """tf.compat.v1.nn.conv2d_backprop_filter, per group; a dilated filter's gradient is the
        [::d, ::d] subsample of the zero-inserted filter's gradient."""
        tf = self.tf
        kh, kw, cg, cout = (int(s) for s in filter_sizes)
        dh, dw = self.dil
        sizes = [(kh - 1) * dh + 1, (kw - 1) * dw + 1, cg, cout // self.groups]
        outs = []
        for xg, dyg in zip(self._split(x, 3), self._split(dy, 3), strict=True):
            g = tf.compat.v1.nn.conv2d_backprop_filter(
                xg, sizes, dyg, strides=self.strides, padding=self.padding
            )
            outs.append(g[::dh, ::dw])
        return self._cat(outs, 3)

    def conv2d_transpose(self, y: Any, w: Any, output_shape: Any) -> Any:
        """tf.nn.conv2d_transpose, per group, zero-inserted filter."""
        tf = self.tf
        n, h, wd, c = (int(s) for s in output_shape)
        shape = [n, h, wd, c // self.groups]
        outs = [
            tf.nn.conv2d_transpose(
                yg, self.dilate_filter(wg), shape, strides=self.strides, padding=self.padding
            )
            for yg, wg in zip(self._split(y, 3), self._split(w, 3), strict=True)
        ]
        return self._cat(outs, 3)

    # -- gradients with GradientTape -------------------------------------------------------------
    def grads(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray) -> tuple[Any, Any]:
        """d<dy, conv2d(x, w)>/dx and /dw from tf.GradientTape."""
        tf = self.tf
        xt, wt = tf.constant(x), tf.constant(w)
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            y = self.conv2d(xt, wt)
        gx, gw = tape.gradient(y, [xt, wt], output_gradients=tf.constant(dy))
        return gx.numpy(), gw.numpy()

    def second_order_input(
        self, x: np.ndarray, w: np.ndarray, dy: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients w.r.t. w and dy of sum(dx * v), dx = d<dy, conv2d(x, w)>/dx (nested tapes)."""
        tf = self.tf
        xt, wt, dyt = tf.constant(x), tf.constant(w), tf.constant(dy)
        with tf.GradientTape() as outer:
            outer.watch([wt, dyt])
            with tf.GradientTape() as inner:
                inner.watch(xt)
                y = self.conv2d(xt, wt)
            dx = inner.gradient(y, xt, output_gradients=dyt)
            loss = tf.reduce_sum(dx * v)
        gw, gdy = outer.gradient(loss, [wt, dyt])
        return gw.numpy(), gdy.numpy()

    def second_order_filter(
        self, x: np.ndarray, w: np.ndarray, dy: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients w.r.t. x and dy of sum(dw * v), dw = d<dy, conv2d(x, w)>/dw (nested tapes)."""
        tf = self.tf
        xt, wt, dyt = tf.constant(x), tf.constant(w), tf.constant(dy)
        with tf.GradientTape() as outer:
            outer.watch([xt, dyt])
            with tf.GradientTape() as inner:
                inner.watch(wt)
                y = self.conv2d(xt, wt)
            dw = inner.gradient(y, wt, output_gradients=dyt)
            loss = tf.reduce_sum(dw * v)
        gx, gdy = outer.gradient(loss, [xt, dyt])
        return gx.numpy(), gdy.numpy()

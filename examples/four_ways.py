"""All four conv functions are one convolution: d_x four ways, d_w three ways, checked against TF.

For a few geometries this prints every way ``tinygrad_conv.derivations`` computes the input
gradient d_x and the filter gradient d_w of ``<dy, conv2d(x, w)>``, and each one's max absolute
difference from TensorFlow's GradientTape (or, when TensorFlow is not installed or ``--no-tf`` is
given, from our own autodiff).

    python examples/four_ways.py [--no-tf]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from tinygrad_conv import derivations as D
from tinygrad_conv.kernels.padding import conv_geometry

CONFIGS = [
    # title, x shape (NHWC), w shape (HWIO), strides, padding, dilations
    ("1 channel, 3x3 kernel, VALID", (1, 5, 5, 1), (3, 3, 1, 1), 1, "VALID", 1),
    ("stride 2, SAME with uneven padding", (2, 6, 8, 2), (3, 3, 2, 3), 2, "SAME", 1),
    ("dilation 2, explicit asymmetric padding", (1, 8, 7, 2), (3, 2, 2, 2), 1, [[2, 1], [0, 3]], 2),
    ("stride 3 leaves rows unread (leftover r)", (1, 8, 9, 1), (2, 2, 1, 2), 3, "VALID", 1),
    (
        "2 groups (2 -> 3 channels each), stride 2, dilation 2",
        (2, 9, 9, 4),
        (3, 3, 2, 6),
        2,
        "SAME",
        2,
    ),
]


def load_tensorflow(disabled: bool) -> Any | None:
    """TensorFlow if installed (imported lazily: it takes a few seconds), else None."""
    if disabled:
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError:
        return None
    tf.get_logger().setLevel("ERROR")
    return tf


def tf_gradients(tf: Any, x, w, dy, strides, padding, dilations) -> tuple[np.ndarray, np.ndarray]:
    """d_x, d_w from tf.GradientTape, working around TF's CPU kernels.

    TF on CPU has no gradients for grouped convs (so each group is done on its channel slice)
    and no dilated backprop kernels (so w is replaced by its zero-inserted, dilation-1
    equivalent -- made with our own ``derivations.dilate`` -- and d_w is that filter's gradient
    at the real taps, ``[::d, ::d]``).
    """
    groups = x.shape[3] // w.shape[2]
    s = [strides] * 2 if np.isscalar(strides) else list(strides)
    d = [dilations] * 2 if np.isscalar(dilations) else list(dilations)
    pad = padding if isinstance(padding, str) else [[0, 0], *padding, [0, 0]]
    w_dil = D.dilate(w, d, axes=(0, 1)).data
    dxs, dws = [], []
    for xg, wg, dyg in zip(
        np.split(x, groups, axis=3),
        np.split(w_dil, groups, axis=3),
        np.split(dy, groups, axis=3),
        strict=True,
    ):
        xt, wt = tf.constant(xg), tf.constant(wg)
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            y = tf.nn.conv2d(xt, wt, strides=[1, *s, 1], padding=pad)
        gx, gw = tape.gradient(y, [xt, wt], output_gradients=tf.constant(dyg))
        dxs.append(gx.numpy())
        dws.append(gw.numpy()[:: d[0], :: d[1]])
    return np.concatenate(dxs, axis=3), np.concatenate(dws, axis=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tf", action="store_true", help="compare with autodiff, not TF")
    args = parser.parse_args(argv)
    tf = load_tensorflow(args.no_tf)
    ref_name = f"TensorFlow {tf.__version__}" if tf is not None else "our autodiff"
    print(f"Each way's max |difference| from {ref_name} (float64).\n")
    rng = np.random.default_rng(0)
    worst = 0.0
    for title, x_shape, w_shape, strides, padding, dilations in CONFIGS:
        geom = conv_geometry("four_ways", x_shape, w_shape, strides, padding, dilations)
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        dy = rng.standard_normal((x_shape[0], *geom.output_hw, w_shape[3]))
        dxs = D.input_grad_ways(x, w, dy, strides, padding, dilations)
        dws = D.filter_grad_ways(x, w, dy, strides, padding, dilations)
        if tf is not None:
            ref_dx, ref_dw = tf_gradients(tf, x, w, dy, strides, padding, dilations)
        else:
            ref_dx, ref_dw = dxs["autodiff"], dws["autodiff"]

        print(f"== {title} ==")
        print(f"   x {x_shape} (NHWC), w {w_shape} (HWIO), groups {x_shape[3] // w_shape[2]}")
        print(f"   {geom}, leftover r {geom.leftover}")
        print(
            f"   d_x as conv2d: dy dilated by {geom.strides}, padded/cropped by "
            f"{D.full_padding(geom)}, rot180(w) at dilation {geom.dilations}"
        )
        pads = tuple((lo, hi - r) for (lo, hi), r in zip(geom.pads, geom.leftover, strict=True))
        print(
            f"   d_w as conv2d: stride {geom.dilations} (forward dilation), dilation "
            f"{geom.strides} (forward stride), padding {pads}"
        )
        for label, ways, ref in (("d_x", dxs, ref_dx), ("d_w", dws, ref_dw)):
            print(f"   {label} {ref.shape}:")
            for name, val in ways.items():
                diff = float(np.max(np.abs(val - ref)))
                worst = max(worst, diff)
                print(f"     {name:34s} {diff:.1e}")
        print()
    print(f"largest difference overall: {worst:.1e}")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())

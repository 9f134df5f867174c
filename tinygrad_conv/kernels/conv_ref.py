"""The reference N-d convolution and its two adjoints, written to be read, not to be fast.

Definition (channels-last, any number r of spatial axes, TF's semantics). With x of shape
[N, *S, Cin], a filter w of shape [*K, Cg, Cout] (Cg = Cin / G input channels per group,
G = Cin // Cg groups as TF infers them, Og = Cout / G), strides s, dilations d, pads
(lo, hi) per axis and xpad the zero-padded input:

    y[n, o, co] = sum over taps t in K, c in [0, Cg) of
                  xpad[n, o*s + t*d, g*Cg + c] * w[t, c, co],     g = co // Og

where o and t are r-tuples and o*s + t*d is taken per axis. The output size per axis is
floor((i + lo + hi - e) / s) + 1 with e = d(k - 1) + 1 (kernels/padding.py resolves it once
into a ConvGeometry).

The two adjoints follow from the definition read the other way round (<y, dy> = <x, dx> =
<w, dw>):

    dx = crop(sum over taps t of  scatter of  dy[n, o, co] * w[t, c, co]  to  xpad[n, o*s + t*d])
    dw[t, c, co] = sum over n, o of  xpad[n, o*s + t*d, g*Cg + c] * dy[n, o, co]

Each function loops over the prod(K) taps explicitly; each tap is one strided slice of xpad and
one einsum over the batch, the output pixels and the channels of a group. This module is the
oracle the fast strategies (kernels/conv_nd.py) are tested against.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .padding import ConvGeometry

__all__ = ["conv_ref", "conv_backprop_input_ref", "conv_backprop_filter_ref"]


def _tap_slices(geom: ConvGeometry, tap: tuple[int, ...]) -> tuple[slice, ...]:
    """The strided slice of xpad that tap ``tap`` reads for all outputs: o*s + t*d per axis."""
    return tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, s, o in zip(tap, geom.dilations, geom.strides, geom.output_hw, strict=True)
    )


def _padded_shape(geom: ConvGeometry, n: int, c: int) -> tuple[int, ...]:
    return (n, *(i + lo + hi for i, (lo, hi) in zip(geom.input_hw, geom.pads, strict=True)), c)


def _interior(geom: ConvGeometry) -> tuple[slice, ...]:
    """Where the real input sits inside xpad."""
    return tuple(slice(lo, lo + i) for i, (lo, _) in zip(geom.input_hw, geom.pads, strict=True))


def _pad(x: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    xpad = np.zeros(_padded_shape(geom, x.shape[0], x.shape[-1]), dtype=x.dtype)
    xpad[(slice(None), *_interior(geom))] = x
    return xpad


def conv_ref(x: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> np.ndarray:
    """y = conv(x, w) by the definition above.

    Args:
        x: [N, *S, Cin]; w: [*K, Cin/G, Cout]; geom: the resolved geometry (rank r = len(S)).

    Returns:
        y [N, *O, Cout] in np.result_type(x, w).
    """
    dt = np.result_type(x, w)
    xpad = _pad(np.asarray(x, dtype=dt), geom)
    *ks, cg, cout = w.shape
    groups = x.shape[-1] // cg
    y = np.zeros((x.shape[0], *geom.output_hw, groups, cout // groups), dtype=dt)
    for tap in itertools.product(*(range(k) for k in ks)):
        window = xpad[(slice(None), *_tap_slices(geom, tap))]  # [N, *O, Cin]
        window = window.reshape(*window.shape[:-1], groups, cg)
        wt = w[tap].reshape(cg, groups, cout // groups)  # [Cg, G, Og]
        y += np.einsum("...gc,cgo->...go", window, wt)
    return y.reshape(x.shape[0], *geom.output_hw, cout)


def conv_backprop_input_ref(
    input_shape: Sequence[int], w: np.ndarray, dy: np.ndarray, geom: ConvGeometry
) -> np.ndarray:
    """dx: the adjoint of x -> conv_ref(x, w); input_shape is [N, *S, Cin]."""
    dt = np.result_type(w, dy)
    n, cin = int(input_shape[0]), int(input_shape[-1])
    *ks, cg, cout = w.shape
    groups = cin // cg
    dyg = np.asarray(dy, dtype=dt).reshape(*dy.shape[:-1], groups, cout // groups)
    dxpad = np.zeros(_padded_shape(geom, n, cin), dtype=dt)
    for tap in itertools.product(*(range(k) for k in ks)):
        wt = w[tap].reshape(cg, groups, cout // groups)
        contrib = np.einsum("...go,cgo->...gc", dyg, wt)  # [N, *O, G, Cg]
        dxpad[(slice(None), *_tap_slices(geom, tap))] += contrib.reshape(*dy.shape[:-1], cin)
    return dxpad[(slice(None), *_interior(geom))].copy()


def conv_backprop_filter_ref(
    x: np.ndarray, filter_shape: Sequence[int], dy: np.ndarray, geom: ConvGeometry
) -> np.ndarray:
    """dw: the adjoint of w -> conv_ref(x, w); filter_shape is [*K, Cin/G, Cout]."""
    dt = np.result_type(x, dy)
    *ks, cg, cout = (int(v) for v in filter_shape)
    groups = x.shape[-1] // cg
    xpad = _pad(np.asarray(x, dtype=dt), geom)
    dyg = np.asarray(dy, dtype=dt).reshape(*dy.shape[:-1], groups, cout // groups)
    dw = np.zeros((*ks, cg, groups, cout // groups), dtype=dt)
    spatial = "pqrstu"[: len(ks)]  # n, g, c, o are taken
    for tap in itertools.product(*(range(k) for k in ks)):
        window = xpad[(slice(None), *_tap_slices(geom, tap))]
        window = window.reshape(*window.shape[:-1], groups, cg)
        dw[tap] = np.einsum(f"n{spatial}gc,n{spatial}go->cgo", window, dyg)
    return dw.reshape(*ks, cg, cout)

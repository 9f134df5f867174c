"""depthwise_conv2d (+ its two backprops) and separable_conv2d against live TensorFlow (CPU,
float64) on >= 150 configurations, relative error <= 1e-10.

TF's own ops are the reference where its CPU kernels compute them right: equal strides, and no
dilation with a stride > 1 (see ../shared/FIELD_NOTES.md: ``depthwise_conv2d_backprop_input /
_filter`` silently ignore ``dilations``; dilation with stride > 1 returns wrong shapes/values;
unequal strides are refused). Every configuration is also compared with the rearrangement TF
does accept for all of them: one conv2d per input channel (channel c with its M filters, outputs
concatenated in TF's c*M + m order) with the dilated filter written out as its zero-inserted
filter (``tf_helpers.TFConv`` with groups = Cin), differentiated by GradientTape (nested for the
second order).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tf_helpers import TFConv, import_tensorflow, rel_err

import tinygrad_conv as tc
from tinygrad_conv.kernels.padding import conv_geometry

TOL = 1e-10


@dataclasses.dataclass(frozen=True)
class Cfg:
    n: int
    h: int
    w: int
    cin: int
    mult: int
    kh: int
    kw: int
    strides: tuple[int, int]
    dilations: tuple[int, int]
    padding: str | tuple[tuple[int, int], tuple[int, int]]
    nchw: bool = False
    cout_pw: int = 2  # separable: pointwise output channels

    @property
    def x_shape(self):
        return (self.n, self.h, self.w, self.cin)

    @property
    def w_shape(self):
        return (self.kh, self.kw, self.cin, self.mult)

    def geometry(self):
        return conv_geometry(
            "cfg",
            self.x_shape,
            (self.kh, self.kw, 1, self.cin * self.mult),
            self.strides,
            self.padding,
            self.dilations,
        )

    @property
    def native_ok(self) -> bool:
        """Whether TF's own depthwise ops compute this case right on CPU."""
        s, d = self.strides, self.dilations
        return isinstance(self.padding, str) and s[0] == s[1] and (d == (1, 1) or s == (1, 1))

    def kwargs(self) -> dict:
        pad = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        return {
            "strides": list(self.strides),
            "padding": pad,
            "data_format": "NCHW" if self.nchw else "NHWC",
            "dilations": list(self.dilations),
        }

    def __str__(self) -> str:
        pad = (
            self.padding
            if isinstance(self.padding, str)
            else "E" + "".join(str(v) for p in self.padding for v in p)
        )
        return (
            f"n{self.n}_{self.h}x{self.w}_c{self.cin}m{self.mult}_k{self.kh}x{self.kw}"
            f"_s{self.strides[0]}{self.strides[1]}_d{self.dilations[0]}{self.dilations[1]}_{pad}"
            f"{'_NCHW' if self.nchw else ''}"
        )


def _configs(count: int, seed: int = 7) -> list[Cfg]:
    rng = np.random.default_rng(seed)
    out: list[Cfg] = []
    while len(out) < count:
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        if rng.random() < 0.5:
            s = (s[0], s[0])
        d = tuple(int(v) if rng.random() < 0.4 else 1 for v in rng.integers(2, 4, 2))
        mode = int(rng.integers(0, 3))
        padding = (
            ("VALID", "SAME")[mode]
            if mode < 2
            else tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(2))
        )
        cfg = Cfg(
            int(rng.integers(1, 3)),
            int(rng.integers(max(1, d[0] * (kh - 1) - 1), 11)),
            int(rng.integers(max(1, d[1] * (kw - 1) - 1), 11)),
            int(rng.integers(1, 5)),
            int(rng.integers(1, 4)),
            kh,
            kw,
            s,
            d,
            padding,
            bool(rng.random() < 0.2),
            int(rng.integers(1, 4)),
        )
        try:
            cfg.geometry()
        except ValueError:
            continue
        out.append(cfg)
    return out


CONFIGS = [
    Cfg(2, 7, 6, 3, 2, 3, 3, (2, 2), (1, 1), "SAME"),
    Cfg(1, 9, 9, 2, 1, 3, 2, (1, 1), (2, 3), "SAME"),  # dilated, stride 1: native ops would
    Cfg(1, 11, 10, 2, 3, 3, 3, (2, 1), (2, 2), "VALID"),  # ignore d / refuse unequal strides
    Cfg(2, 8, 5, 4, 1, 2, 4, (3, 3), (2, 1), ((1, 2), (0, 1)), True),
] + _configs(160)
WORST: dict[str, tuple[float, str]] = {}


@pytest.fixture(scope="module")
def tf():
    return import_tensorflow()


def _grouped(tf, w):
    kh, kw, c, m = (int(v) for v in w.shape)
    return tf.reshape(w, [kh, kw, 1, c * m])


def _reference(tf, cfg: Cfg, x, w, dy, vx, vw, pw, dys):
    t = TFConv(tf, cfg.strides, cfg.padding, cfg.dilations, cfg.cin)
    r: dict[str, np.ndarray] = {}
    xt, wt, dyt, pwt = tf.constant(x), tf.constant(w), tf.constant(dy), tf.constant(pw)
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([xt, wt, dyt])
        with tf.GradientTape(persistent=True) as inner:
            inner.watch([xt, wt, pwt])
            y = t.conv2d(xt, _grouped(tf, wt))
            sep = tf.nn.conv2d(y, pwt, 1, "VALID")
        gx, gw = inner.gradient(y, [xt, wt], output_gradients=dyt)
        li, lf = tf.reduce_sum(gx * vx), tf.reduce_sum(gw * vw)
    r["forward"] = y.numpy()
    r["grad_x"], r["grad_w"] = gx.numpy(), gw.numpy()
    r["backprop_input"], r["backprop_filter"] = r["grad_x"], r["grad_w"]
    gi_w, gi_dy = outer.gradient(li, [wt, dyt])
    gf_x, gf_dy = outer.gradient(lf, [xt, dyt])
    r["gg_input_w"], r["gg_input_dy"] = gi_w.numpy(), gi_dy.numpy()
    r["gg_filter_x"], r["gg_filter_dy"] = gf_x.numpy(), gf_dy.numpy()
    r["separable"] = sep.numpy()
    sx, sw, spw = inner.gradient(sep, [xt, wt, pwt], output_gradients=tf.constant(dys))
    r["separable_grad_x"], r["separable_grad_dw"], r["separable_grad_pw"] = (
        sx.numpy(),
        sw.numpy(),
        spw.numpy(),
    )
    if cfg.native_ok:  # TF's own ops (strides as its 4-form, dilation as `dilations`)
        s4 = [1, cfg.strides[0], cfg.strides[1], 1]
        r["forward(native)"] = tf.nn.depthwise_conv2d(
            x, w, s4, cfg.padding, dilations=list(cfg.dilations)
        ).numpy()
        r["separable(native)"] = tf.nn.separable_conv2d(
            x, w, pw, s4, cfg.padding, dilations=list(cfg.dilations)
        ).numpy()
        if cfg.dilations == (1, 1):
            r["backprop_input(native)"] = tf.nn.depthwise_conv2d_backprop_input(
                list(x.shape), w, dy, s4, cfg.padding
            ).numpy()
            r["backprop_filter(native)"] = tf.nn.depthwise_conv2d_backprop_filter(
                x, list(w.shape), dy, s4, cfg.padding
            ).numpy()
    return r


def _ours(cfg: Cfg, x, w, dy, vx, vw, pw, dys):
    kw = cfg.kwargs()
    to = (lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))) if cfg.nchw else (lambda a: a)
    back = (lambda t: t.data.transpose(0, 2, 3, 1)) if cfg.nchw else (lambda t: t.data)
    xo, dyo, vxo, dyso = to(x), to(dy), to(vx), to(dys)
    xs = np.array(xo.shape)
    r: dict[str, np.ndarray] = {}
    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt = tc.Tensor(dyo, requires_grad=True)
    y = tc.depthwise_conv2d(xt, wt, **kw)
    r["forward"] = r["forward(native)"] = back(y)
    gx, gw = tc.grad(y, [xt, wt], grad_outputs=dyt, create_graph=True)
    r["grad_x"], r["grad_w"] = back(gx), gw.data
    gi_w, gi_dy = tc.grad((gx * vxo).sum(), [wt, dyt], retain_graph=True)
    gf_x, gf_dy = tc.grad((gw * vw).sum(), [xt, dyt])
    r["gg_input_w"], r["gg_input_dy"] = gi_w.data, back(gi_dy)
    r["gg_filter_x"], r["gg_filter_dy"] = back(gf_x), back(gf_dy)
    bi = tc.depthwise_conv2d_backprop_input(xs, w, dyo, **kw)
    bf = tc.depthwise_conv2d_backprop_filter(xo, np.array(w.shape), dyo, **kw)
    r["backprop_input"] = r["backprop_input(native)"] = back(bi)
    r["backprop_filter"] = r["backprop_filter(native)"] = bf.data
    xt, wt, pwt = (tc.Tensor(a, requires_grad=True) for a in (xo, w, pw))
    sep = tc.separable_conv2d(xt, wt, pwt, **kw)
    r["separable"] = r["separable(native)"] = back(sep)
    sep.backward(dyso)
    r["separable_grad_x"], r["separable_grad_dw"] = back(xt.grad), wt.grad.data
    r["separable_grad_pw"] = pwt.grad.data
    return r


@pytest.mark.parametrize(
    ("seed", "cfg"), [pytest.param(i, c, id=str(c)) for i, c in enumerate(CONFIGS)]
)
def test_depthwise_family_matches_tensorflow(tf, seed, cfg):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(cfg.x_shape), rng.standard_normal(cfg.w_shape)
    oh, ow = cfg.geometry().output_hw
    dy = rng.standard_normal((cfg.n, oh, ow, cfg.cin * cfg.mult))
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    pw = rng.standard_normal((1, 1, cfg.cin * cfg.mult, cfg.cout_pw))
    dys = rng.standard_normal((cfg.n, oh, ow, cfg.cout_pw))
    ref = _reference(tf, cfg, x, w, dy, vx, vw, pw, dys)
    ours = _ours(cfg, x, w, dy, vx, vw, pw, dys)
    bad = []
    for name, want in ref.items():
        err = rel_err(ours[name], want)
        if err > WORST.get(name, (-1.0, ""))[0]:
            WORST[name] = (err, str(cfg))
        if not err <= TOL:
            bad.append(f"{name}: rel err {err:.3e}")
    assert not bad, f"{cfg}: " + "; ".join(bad)


def test_configuration_set_covers_the_hard_cases():
    assert len({str(c) for c in CONFIGS}) >= 150
    assert sum(c.native_ok for c in CONFIGS) >= 50
    assert any(c.strides[0] != c.strides[1] for c in CONFIGS)
    assert any(max(c.strides) > 1 and max(c.dilations) > 1 for c in CONFIGS)
    assert any(not isinstance(c.padding, str) for c in CONFIGS)
    assert any(
        c.padding == "SAME" and c.geometry().pads[0][0] != c.geometry().pads[0][1] for c in CONFIGS
    )
    assert any(c.mult > 1 for c in CONFIGS) and any(c.nchw for c in CONFIGS)


def test_bad_depthwise_input_names_the_op():
    x = np.zeros((1, 5, 5, 3))
    with pytest.raises(
        ValueError,
        match=r"depthwise_conv2d: filter has shape \(3, 3, 2, 1\) \(\[kh,kw,in_channels,channel_multiplier\]\) but the input has 3 channels",
    ):
        tc.depthwise_conv2d(x, np.zeros((3, 3, 2, 1)), 1, "SAME")
    with pytest.raises(
        ValueError,
        match=r"depthwise_conv2d: filter must have rank 4 \[kh,kw,Cin,M\], got shape \(3, 3, 3\)",
    ):
        tc.depthwise_conv2d(x, np.zeros((3, 3, 3)), 1, "SAME")
    with pytest.raises(
        ValueError, match=r"separable_conv2d: pointwise_filter must be \[1,1,Cin\*M,Cout\]"
    ):
        tc.separable_conv2d(x, np.zeros((3, 3, 3, 2)), np.zeros((1, 1, 3, 4)), 1, "SAME")
    with pytest.raises(
        ValueError,
        match=r"depthwise_conv2d: data_format must be one of \('NHWC', 'NCHW'\), got 'NWC'",
    ):
        tc.depthwise_conv2d(x, np.zeros((3, 3, 3, 1)), 1, "SAME", "NWC")


def test_zz_worst_errors_summary(capsys):
    if not WORST:
        pytest.skip("no TF comparison ran in this session")
    lines = [f"{len(CONFIGS)} depthwise configurations; worst relative error vs TF:"]
    lines += [f"  {k:26s} {e:.2e}  ({c})" for k, (e, c) in sorted(WORST.items())]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert max(e for e, _ in WORST.values()) <= TOL

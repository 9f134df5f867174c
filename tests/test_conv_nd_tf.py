"""conv1d / conv3d families against live TensorFlow (CPU, float64), >= 150 configurations per rank.

For every configuration (kernels 1..5 (1-D) or 1..3 (3-D) per axis, strides 1..3 with dilations
1..3, VALID / SAME with odd totals (the extra row at the end) / explicit asymmetric pairs,
groups with unequal in/out channels per group, channels-last and channels-first, TF's argument
spellings) it compares, with max|ours - tf| / max|tf| <= 1e-10:

* the forward conv with TF's own op where its CPU kernel runs it (``tf.nn.conv1d`` for string
  padding; ``tf.nn.conv3d`` for ungrouped, undilated, string-padded cases), else with the
  rearrangement below;
* d/dx and d/dw of <dy, conv(x, w)> from ``.backward`` with ``tf.GradientTape``;
* our backprop ops: 3-D with ``tf.raw_ops.Conv3DBackpropInputV2`` /
  ``tf.compat.v1.nn.conv3d_backprop_filter_v2`` (string padding), 1-D (TF has no public ops)
  and explicit pads with TF's tape gradients; the transposes with ``tf.nn.conv1d_transpose`` /
  ``tf.nn.conv3d_transpose`` (string padding) or the tape;
* second order: nested tapes against ours through ``create_graph=True`` and through our backprop
  nodes differentiated directly.

Where TF's CPU kernels refuse a case (see ../shared/FIELD_NOTES.md: dilated conv1d backprops, any
3-D dilation, explicit pads, grouped gradients / grouped 3-D), the reference is the same
convolution in a form TF accepts: per group (channel slices, concatenated), with the dilated
filter replaced by its zero-inserted filter (e = d(k-1)+1 taps, dilation 1; a filter gradient is
then the [::d] subsample), and explicit pads applied by ``tf.pad`` before a VALID conv.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tf_helpers import import_tensorflow, rel_err

import tinygrad_conv as tc
from tinygrad_conv.kernels.padding import conv_geometry_nd

TOL = 1e-10
N_RANDOM = 160


@dataclasses.dataclass(frozen=True)
class Cfg:
    """One geometry; shapes channels-last ([N,*S,C], [*K,Cg,Cout]); ``data_format`` is what our
    ops are fed (channels-first inputs are transposed for TF)."""

    rank: int
    n: int
    size: tuple[int, ...]
    groups: int
    cg: int
    og: int
    k: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    padding: str | tuple[tuple[int, int], ...]
    channels_first: bool = False
    arg_form: int = 0  # 0: int or r ints, 1: r ints, 2: TF's r+2 form

    @property
    def x_shape(self):
        return (self.n, *self.size, self.groups * self.cg)

    @property
    def w_shape(self):
        return (*self.k, self.cg, self.groups * self.og)

    @property
    def data_format(self) -> str:
        return {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}[self.rank][self.channels_first]

    def geometry(self):
        return conv_geometry_nd(
            "cfg", self.rank, self.x_shape, self.k, self.strides, self.padding, self.dilations
        )

    def __str__(self) -> str:
        j = lambda v: "x".join(map(str, v))  # noqa: E731
        pad = self.padding if isinstance(self.padding, str) else "E" + j(sum(self.padding, ()))
        return (
            f"r{self.rank}_n{self.n}_{j(self.size)}_g{self.groups}c{self.cg}o{self.og}_k{j(self.k)}"
            f"_s{j(self.strides)}_d{j(self.dilations)}_{pad}_{self.data_format}{self.arg_form}"
        )

    def _spell(self, v: tuple[int, ...]):
        if self.arg_form == 0:
            return v[0] if len(set(v)) == 1 else list(v)
        if self.arg_form == 1:
            return list(v)
        return [1, 1, *v] if self.channels_first else [1, *v, 1]

    def kwargs(self) -> dict:
        pad = self.padding
        if not isinstance(pad, str):
            pairs = [list(p) for p in pad]
            if self.arg_form == 2:
                pad = [[0, 0], [0, 0], *pairs] if self.channels_first else [[0, 0], *pairs, [0, 0]]
            else:
                pad = pairs
        return {
            "strides": self._spell(self.strides),
            "padding": pad,
            "data_format": self.data_format,
            "dilations": self._spell(self.dilations),
        }


def _random_configs(rank: int, count: int, seed: int) -> list[Cfg]:
    rng = np.random.default_rng(seed)
    kmax, smax = (5, 12) if rank == 1 else (3, 6)
    out: list[Cfg] = []
    while len(out) < count:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        k = tuple(int(v) for v in rng.integers(1, kmax + 1, rank))
        s = tuple(int(v) for v in rng.integers(1, 4, rank))
        d = tuple(int(v) if rng.random() < 0.45 else 1 for v in rng.integers(2, 4, rank))
        mode = int(rng.integers(0, 3))
        padding: str | tuple = (
            ("VALID", "SAME")[mode]
            if mode < 2
            else tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(rank))
        )
        size = tuple(int(v) for v in rng.integers(1, smax + 1, rank))
        if mode != 1:  # make most VALID / explicit cases fit
            pads = ((0, 0),) * rank if mode == 0 else padding
            size = tuple(
                max(sz, dd * (kk - 1) + 1 - sum(p))
                for sz, dd, kk, p in zip(size, d, k, pads, strict=True)
            )
        cfg = Cfg(
            rank,
            int(rng.integers(1, 3)),
            size,
            groups,
            cg,
            og,
            k,
            s,
            d,
            padding,
            bool(rng.random() < 0.2),
            int(rng.integers(0, 3)),
        )
        try:
            cfg.geometry()
        except ValueError:
            continue
        out.append(cfg)
    return out


EDGE = [
    # 1-D: stride 3 leaves inputs unread; the only window in the padding; dilation 3 with stride 2
    Cfg(1, 1, (7,), 1, 2, 3, (1,), (3,), (1,), "VALID"),
    Cfg(1, 2, (1,), 1, 1, 2, (1,), (3,), (1,), ((2, 0),)),
    Cfg(1, 1, (11,), 1, 2, 2, (3,), (2,), (3,), "SAME"),
    Cfg(1, 2, (8,), 2, 3, 1, (3,), (2,), (2,), "SAME", True, 2),
    Cfg(1, 1, (6,), 1, 1, 1, (4,), (1,), (1,), "SAME"),  # even kernel: extra column at the end
    # 3-D: depthwise-like groups, everything unequal, explicit pads larger than d(k-1)
    Cfg(3, 2, (4, 5, 3), 3, 1, 2, (2, 3, 1), (1, 2, 1), (1, 1, 2), "SAME"),
    Cfg(3, 1, (5, 4, 6), 1, 2, 2, (3, 2, 3), (3, 1, 2), (2, 1, 1), ((1, 0), (0, 2), (2, 1))),
    Cfg(3, 1, (3, 4, 5), 1, 2, 2, (2, 2, 2), (1, 2, 1), (1, 1, 1), ((3, 2), (2, 3), (0, 3))),
    Cfg(3, 2, (5, 5, 5), 2, 2, 1, (3, 3, 3), (2, 2, 2), (1, 1, 1), "SAME", True, 2),
    Cfg(3, 1, (6, 3, 4), 1, 1, 3, (4, 2, 2), (1, 1, 1), (1, 1, 1), "SAME"),
]

CONFIGS = {
    r: [c for c in EDGE if c.rank == r] + _random_configs(r, N_RANDOM, 31 + r) for r in (1, 3)
}
WORST: dict[str, tuple[float, str]] = {}


@pytest.fixture(scope="module")
def tf():
    return import_tensorflow()


# ----------------------------------------------------------------------------- TF references


class TFConvND:
    """A rank-r convolution in the forms TF's CPU kernels accept (channels-last, float64)."""

    def __init__(self, tf, cfg: Cfg):
        self.tf, self.cfg, self.r = tf, cfg, cfg.rank

    def zero_insert(self, w):
        """[*K, ci, co] -> [*E, ci, co] with d-1 zeros between the taps of each axis."""
        tf = self.tf
        for a, d in enumerate(self.cfg.dilations):
            if d == 1:
                continue
            shape = [int(v) for v in w.shape]
            k = shape[a]
            z = tf.reshape(w, [*shape[: a + 1], 1, *shape[a + 1 :]])
            pads = [[0, 0]] * (len(shape) + 1)
            pads[a + 1] = [0, d - 1]
            z = tf.pad(z, pads)
            z = tf.reshape(z, [*shape[:a], k * d, *shape[a + 1 :]])
            w = tf.gather(z, list(range((k - 1) * d + 1)), axis=a)
        return w

    def _split(self, t, axis):
        g = self.cfg.groups
        return self.tf.split(t, g, axis=axis) if g > 1 else [t]

    def _cat(self, ts, axis):
        return self.tf.concat(ts, axis=axis) if len(ts) > 1 else ts[0]

    def _padded(self, x):
        """Explicit pads applied by tf.pad (TF's 1-D/3-D convs take strings only).

        Also 3-D 'SAME' with unequal strides: TF 2.21's CPU Conv3D forward returns wrong values
        there (float64, with or without oneDNN; e.g. [2,5,6,2,1] * [2,1,3,1,2], strides 2,3,1:
        max error 7.0 against the same conv padded by tf.pad then VALID, while its backprop ops
        agree). Those cases are padded by TF's documented SAME rule, written out below.
        """
        c = self.cfg
        if c.padding == "SAME" and self.r == 3 and len(set(c.strides)) > 1:
            pads = []
            for i, k, d, s in zip(x.shape[1:-1], c.k, c.dilations, c.strides, strict=True):
                total = max((-(-int(i) // s) - 1) * s + d * (k - 1) + 1 - int(i), 0)
                pads.append([total // 2, total - total // 2])
            return self.tf.pad(x, [[0, 0], *pads, [0, 0]]), "VALID"
        if isinstance(c.padding, str):
            return x, c.padding
        return self.tf.pad(x, [[0, 0], *[list(p) for p in c.padding], [0, 0]]), "VALID"

    def conv(self, x, w):
        """Differentiable on CPU: per group, zero-inserted filter, dilation 1, tf.pad."""
        tf = self.tf
        x, pad = self._padded(x)
        s = list(self.cfg.strides)
        ys = []
        for xg, wg in zip(self._split(x, -1), self._split(w, -1), strict=True):
            wz = self.zero_insert(wg)
            if self.r == 1:
                ys.append(tf.nn.conv1d(xg, wz, s[0], pad))
            else:
                ys.append(tf.nn.conv3d(xg, wz, [1, *s, 1], pad))
        return self._cat(ys, -1)

    def native_forward(self, x, w):
        """TF's own op where the CPU runs it, else None."""
        tf, c = self.tf, self.cfg
        if not isinstance(c.padding, str):
            return None
        if self.r == 1:  # conv1d runs grouped and dilated forwards (it is conv2d inside)
            return tf.nn.conv1d(x, w, c.strides[0], c.padding, dilations=c.dilations[0])
        if c.groups == 1 and set(c.dilations) == {1} and len(set(c.strides)) == 1:
            return tf.nn.conv3d(x, w, [1, *c.strides, 1], c.padding)
        return None

    def grads(self, x, w, dy):
        tf = self.tf
        xt, wt = tf.constant(x), tf.constant(w)
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            y = self.conv(xt, wt)
        gx, gw = tape.gradient(y, [xt, wt], output_gradients=tf.constant(dy))
        return gx.numpy(), gw.numpy()

    def native_backprops(self, x_shape, x, w, dy):
        """(input grad, filter grad, transpose) from TF's backprop / transpose ops, per group."""
        tf, c = self.tf, self.cfg
        if not isinstance(c.padding, str):
            return None
        s = [1, *c.strides, 1]
        sizes = [*x_shape[:-1], x_shape[-1] // c.groups]
        dxs, dws, tps = [], [], []
        for xg, wg, dyg in zip(
            self._split(x, -1), self._split(w, -1), self._split(dy, -1), strict=True
        ):
            wz = self.zero_insert(wg)
            if self.r == 3:
                dxs.append(
                    tf.raw_ops.Conv3DBackpropInputV2(
                        input_sizes=sizes,
                        filter=wz,
                        out_backprop=dyg,
                        strides=s,
                        padding=c.padding,
                    )
                )
                gw = tf.compat.v1.nn.conv3d_backprop_filter_v2(
                    xg, [int(v) for v in wz.shape], dyg, s, c.padding
                )
                d0, d1, d2 = c.dilations
                dws.append(gw[::d0, ::d1, ::d2])
                tps.append(tf.nn.conv3d_transpose(dyg, wz, sizes, s, c.padding))
            else:
                tps.append(tf.nn.conv1d_transpose(dyg, wz, sizes, c.strides[0], c.padding))
        if self.r == 1:
            return None, None, self._cat(tps, -1).numpy()
        return self._cat(dxs, -1).numpy(), self._cat(dws, -1).numpy(), self._cat(tps, -1).numpy()

    def second_order(self, x, w, dy, vx, vw):
        tf = self.tf
        xt, wt, dyt = tf.constant(x), tf.constant(w), tf.constant(dy)
        with tf.GradientTape(persistent=True) as outer:
            outer.watch([xt, wt, dyt])
            with tf.GradientTape() as inner:
                inner.watch([xt, wt])
                y = self.conv(xt, wt)
            dx, dw = inner.gradient(y, [xt, wt], output_gradients=dyt)
            li = tf.reduce_sum(dx * vx)
            lf = tf.reduce_sum(dw * vw)
        gi_w, gi_dy = outer.gradient(li, [wt, dyt])
        gf_x, gf_dy = outer.gradient(lf, [xt, dyt])
        return gi_w.numpy(), gi_dy.numpy(), gf_x.numpy(), gf_dy.numpy()


def _tf_reference(tf, cfg, x, w, dy, vx, vw) -> dict[str, np.ndarray]:
    t = TFConvND(tf, cfg)
    r: dict[str, np.ndarray] = {}
    r["forward"] = t.conv(x, w).numpy()
    native = t.native_forward(x, w)
    if native is not None:
        r["forward(native)"] = native.numpy()
    r["grad_x"], r["grad_w"] = t.grads(x, w, dy)
    r["backprop_input"], r["backprop_filter"], r["transpose"] = (
        r["grad_x"],
        r["grad_w"],
        r["grad_x"],
    )
    nat = t.native_backprops(x.shape, x, w, dy)
    if nat is not None:
        for name, v in zip(("backprop_input", "backprop_filter", "transpose"), nat, strict=True):
            if v is not None:
                r[name + "(native)"] = v
    q = t.second_order(x, w, dy, vx, vw)
    for name, v in zip(
        ("gg_input_w", "gg_input_dy", "gg_filter_x", "gg_filter_dy"), q, strict=True
    ):
        r[name] = r[name + "(node)"] = v
    return r


# ----------------------------------------------------------------------------- ours


_OPS = {
    1: (tc.conv1d, tc.conv1d_backprop_input, tc.conv1d_backprop_filter, tc.conv1d_transpose),
    3: (tc.conv3d, tc.conv3d_backprop_input_v2, tc.conv3d_backprop_filter_v2, tc.conv3d_transpose),
}


def _ours(cfg: Cfg, x, w, dy, vx, vw) -> dict[str, np.ndarray]:
    conv, bp_in, bp_f, transp = _OPS[cfg.rank]
    kw = cfg.kwargs()
    r_ = cfg.rank
    first, last = (0, r_ + 1, *range(1, r_ + 1)), (0, *range(2, r_ + 2), 1)
    to = (
        (lambda a: np.ascontiguousarray(a.transpose(first)))
        if cfg.channels_first
        else (lambda a: a)
    )
    back = (lambda t: t.data.transpose(last)) if cfg.channels_first else (lambda t: t.data)
    xo, dyo, vxo = to(x), to(dy), to(vx)
    xs = np.array(xo.shape, dtype=np.int64)
    ws = np.array(w.shape, dtype=np.int64)
    kw1 = dict(kw)
    if r_ == 1:  # tf.nn.conv1d spells it `stride`
        kw1["stride"] = kw1.pop("strides")
    r: dict[str, np.ndarray] = {}
    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    y = conv(xt, wt, **kw1)
    r["forward"] = r["forward(native)"] = back(y)
    y.backward(dyo)
    r["grad_x"], r["grad_w"] = back(xt.grad), wt.grad.data
    r["backprop_input"] = r["backprop_input(native)"] = back(bp_in(xs, w, dyo, **kw))
    r["backprop_filter"] = r["backprop_filter(native)"] = bp_f(xo, ws, dyo, **kw).data
    r["transpose"] = r["transpose(native)"] = back(transp(dyo, w, xs, **kw))

    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt = tc.Tensor(dyo, requires_grad=True)
    gx, gw = tc.grad(conv(xt, wt, **kw1), [xt, wt], grad_outputs=dyt, create_graph=True)
    gi_w, gi_dy = tc.grad((gx * vxo).sum(), [wt, dyt], retain_graph=True)
    gf_x, gf_dy = tc.grad((gw * vw).sum(), [xt, dyt])
    r["gg_input_w"], r["gg_input_dy"] = gi_w.data, back(gi_dy)
    r["gg_filter_x"], r["gg_filter_dy"] = back(gf_x), back(gf_dy)

    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt = tc.Tensor(dyo, requires_grad=True)
    gi_w, gi_dy = tc.grad((bp_in(xs, wt, dyt, **kw) * vxo).sum(), [wt, dyt])
    gf_x, gf_dy = tc.grad((bp_f(xt, ws, dyt, **kw) * vw).sum(), [xt, dyt])
    r["gg_input_w(node)"], r["gg_input_dy(node)"] = gi_w.data, back(gi_dy)
    r["gg_filter_x(node)"], r["gg_filter_dy(node)"] = back(gf_x), back(gf_dy)
    return r


@pytest.mark.parametrize(
    ("seed", "cfg"),
    [pytest.param(i, c, id=str(c)) for i, c in enumerate(CONFIGS[1] + CONFIGS[3])],
)
def test_conv_nd_family_matches_tensorflow(tf, seed: int, cfg: Cfg) -> None:
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(cfg.x_shape), rng.standard_normal(cfg.w_shape)
    dy = rng.standard_normal((cfg.n, *cfg.geometry().output_hw, cfg.groups * cfg.og))
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    ref = _tf_reference(tf, cfg, x, w, dy, vx, vw)
    assert ref["forward"].shape == dy.shape, "TF's output size differs from our geometry"
    ours = _ours(cfg, x, w, dy, vx, vw)
    bad = []
    for name, want in ref.items():
        err = rel_err(ours[name], want)
        key = f"r{cfg.rank} {name}"
        if err > WORST.get(key, (-1.0, ""))[0]:
            WORST[key] = (err, str(cfg))
        if not err <= TOL:
            bad.append(f"{name}: rel err {err:.3e}")
    assert not bad, f"{cfg}: " + "; ".join(bad)


def test_configuration_sets_cover_the_hard_cases() -> None:
    for r, cfgs in CONFIGS.items():
        assert len({str(c) for c in cfgs}) >= 150, r
        assert any(max(c.strides) > 1 and max(c.dilations) > 1 for c in cfgs), r
        assert any(c.groups > 1 and c.cg != c.og for c in cfgs), r
        assert any(
            not isinstance(c.padding, str) and c.padding[0][0] != c.padding[0][1] for c in cfgs
        )
        # SAME with an odd total somewhere: the extra row at the end
        assert any(
            c.padding == "SAME" and any(lo != hi for lo, hi in c.geometry().pads) for c in cfgs
        ), r
        assert any(c.channels_first for c in cfgs) and {c.arg_form for c in cfgs} == {0, 1, 2}


def test_zz_worst_errors_summary(capsys) -> None:
    """Runs last: the worst relative error per quantity (visible with ``-s``)."""
    if not WORST:
        pytest.skip("no TF comparison ran in this session")
    lines = [f"{sum(map(len, CONFIGS.values()))} configurations; worst relative error vs TF:"]
    for name, (err, cid) in sorted(WORST.items()):
        lines.append(f"  {name:28s} {err:.2e}  ({cid})")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert max(e for e, _ in WORST.values()) <= TOL


def test_tf_cpu_conv3d_same_with_unequal_strides_is_why_the_reference_pads_itself(tf) -> None:
    """Documents the TF 2.21 CPU defect that TFConvND._padded works around: if this starts to
    fail, TF fixed it and the native op can serve as the reference again."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 6, 2, 1)), rng.standard_normal((2, 1, 3, 1, 2))
    native = tf.nn.conv3d(x, w, [1, 2, 3, 1, 1], "SAME").numpy()
    padded = tf.nn.conv3d(
        np.pad(x, [(0, 0), (0, 1), (0, 0), (1, 1), (0, 0)]), w, [1, 2, 3, 1, 1], "VALID"
    )
    ours = tc.conv3d(x, w, [2, 3, 1], "SAME").data
    assert rel_err(ours, padded.numpy()) <= TOL
    assert rel_err(native, padded.numpy()) > 0.1

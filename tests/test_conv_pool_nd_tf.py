"""max/avg pooling in 1-D and 3-D against live TensorFlow, 150 configurations per rank.

1-D: ``tf.nn.max_pool1d`` / ``avg_pool1d`` in float64 (forward, the input gradient and the
second order, d/d(dy) of <v, dx>, through nested tapes), rel err <= 1e-10. Explicit pads (TF's
1-D pools take strings) are compared for max pooling through ``tf.pad`` with -inf then VALID.

3-D: TF 2.21 has no float64 CPU kernels for MaxPool3D / AvgPool3D, so two references:
TF's own ``max_pool3d`` / ``avg_pool3d`` in float32 (forward and input gradient, rel err <= 1e-5:
an independent check of the windows, SAME's split and the in-bounds divisor), and in float64 the
rearrangement FIELD_NOTES describes (a TF 2-D pool over (H, W), then one over (D, 1); exact,
including the divisor) for forward, gradient and second order to round-off.
Inputs are permutations scaled by 0.37: no ties, so the max's gradient is unambiguous.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tf_helpers import import_tensorflow, rel_err

import tinygrad_conv as tc
from tinygrad_conv.kernels.padding import pool_geometry_nd

TOL = 1e-10


@dataclasses.dataclass(frozen=True)
class Cfg:
    rank: int
    kind: str  # "max" or "avg"
    n: int
    size: tuple[int, ...]
    c: int
    k: tuple[int, ...]
    s: tuple[int, ...]
    padding: str | tuple[tuple[int, int], ...]
    channels_first: bool = False

    @property
    def x_shape(self):
        return (self.n, *self.size, self.c)

    @property
    def data_format(self):
        return {1: ("NWC", "NCW"), 3: ("NDHWC", "NCDHW")}[self.rank][self.channels_first]

    def geometry(self):
        return pool_geometry_nd("cfg", self.rank, self.x_shape, self.k, self.s, self.padding)

    def __str__(self):
        j = lambda v: "x".join(map(str, v))  # noqa: E731
        pad = self.padding if isinstance(self.padding, str) else "E" + j(sum(self.padding, ()))
        return f"{self.kind}{self.rank}_n{self.n}_{j(self.size)}c{self.c}_k{j(self.k)}_s{j(self.s)}_{pad}_{self.data_format}"


def _configs(rank: int, count: int, seed: int) -> list[Cfg]:
    rng = np.random.default_rng(seed)
    out: list[Cfg] = []
    while len(out) < count:
        k = tuple(int(v) for v in rng.integers(1, 4, rank))
        s = tuple(int(v) for v in rng.integers(1, 4, rank))
        kind = ("max", "avg")[len(out) % 2]
        mode = int(rng.integers(0, 3 if (kind == "max" and rank == 1) else 2))
        if mode < 2:
            padding: str | tuple = ("VALID", "SAME")[mode]
        else:  # explicit pads smaller than the window
            padding = tuple((int(rng.integers(0, kk)), int(rng.integers(0, kk))) for kk in k)
        size = tuple(int(v) for v in rng.integers(1, 10 if rank == 1 else 6, rank))
        cfg = Cfg(
            rank,
            kind,
            int(rng.integers(1, 3)),
            size,
            int(rng.integers(1, 4)),
            k,
            s,
            padding,
            bool(rng.random() < 0.2),
        )
        try:
            cfg.geometry()
        except ValueError:
            continue
        if cfg not in out:
            out.append(cfg)
    return out


CONFIGS = _configs(1, 150, 5) + _configs(3, 150, 6)


@pytest.fixture(scope="module")
def tf():
    return import_tensorflow()


def _inputs(cfg: Cfg, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(cfg.x_shape))).reshape(cfg.x_shape) * 0.37
    out = (cfg.n, *cfg.geometry().output_hw, cfg.c)
    return x, rng.standard_normal(out), rng.standard_normal(cfg.x_shape)


def _ours(cfg: Cfg, x, dy, v):
    fn = {
        ("max", 1): tc.max_pool1d,
        ("avg", 1): tc.avg_pool1d,
        ("max", 3): tc.max_pool3d,
        ("avg", 3): tc.avg_pool3d,
    }[cfg.kind, cfg.rank]
    r = cfg.rank
    first, last = (0, r + 1, *range(1, r + 1)), (0, *range(2, r + 2), 1)
    to = (
        (lambda a: np.ascontiguousarray(a.transpose(first)))
        if cfg.channels_first
        else (lambda a: a)
    )
    back = (lambda t: t.data.transpose(last)) if cfg.channels_first else (lambda t: t.data)
    pad = cfg.padding if isinstance(cfg.padding, str) else [list(p) for p in cfg.padding]
    xt, dyt = tc.Tensor(to(x), requires_grad=True), tc.Tensor(to(dy), requires_grad=True)
    y = fn(xt, list(cfg.k), list(cfg.s), pad, cfg.data_format)
    (gx,) = tc.grad(y, [xt], grad_outputs=dyt, create_graph=True)
    (gg,) = tc.grad((gx * to(v)).sum(), [dyt])
    return {"forward": back(y), "grad_x": back(gx), "gg_dy": back(gg)}


def _tape(tf, pool, x, dy, v):
    xt, dyt = tf.constant(x), tf.constant(dy)
    with tf.GradientTape() as outer:
        outer.watch(dyt)
        with tf.GradientTape() as inner:
            inner.watch(xt)
            y = pool(xt)
        gx = inner.gradient(y, xt, output_gradients=dyt)
        loss = tf.reduce_sum(gx * v)
    gg = outer.gradient(loss, dyt)
    return {"forward": y.numpy(), "grad_x": gx.numpy(), "gg_dy": gg.numpy()}


def _tf1d(tf, cfg: Cfg):
    if isinstance(cfg.padding, str):
        op = tf.nn.max_pool1d if cfg.kind == "max" else tf.nn.avg_pool1d
        return lambda x: op(x, list(cfg.k), list(cfg.s), cfg.padding)
    pads = [[0, 0], list(cfg.padding[0]), [0, 0]]  # max only: -inf pads never win
    return lambda x: tf.nn.max_pool1d(
        tf.pad(x, pads, constant_values=-np.inf), list(cfg.k), list(cfg.s), "VALID"
    )


def _tf3d_native(tf, cfg: Cfg):
    op = tf.nn.max_pool3d if cfg.kind == "max" else tf.nn.avg_pool3d
    return lambda x: op(x, list(cfg.k), list(cfg.s), cfg.padding)


def _tf3d_float64(tf, cfg: Cfg):
    op = tf.nn.max_pool2d if cfg.kind == "max" else tf.nn.avg_pool2d
    (kd, kh, kw), (sd, sh, sw) = cfg.k, cfg.s

    def pool(x):
        n, d, h, w, c = (int(v) for v in x.shape)
        y = op(tf.reshape(x, [n * d, h, w, c]), [kh, kw], [sh, sw], cfg.padding)
        ho, wo = int(y.shape[1]), int(y.shape[2])
        y = op(tf.reshape(y, [n, d, ho * wo, c]), [kd, 1], [sd, 1], cfg.padding)
        return tf.reshape(y, [n, int(y.shape[1]), ho, wo, c])

    return pool


@pytest.mark.parametrize(
    ("seed", "cfg"), [pytest.param(i, c, id=str(c)) for i, c in enumerate(CONFIGS)]
)
def test_pool_nd_matches_tensorflow(tf, seed, cfg):
    x, dy, v = _inputs(cfg, seed)
    ours = _ours(cfg, x, dy, v)
    refs = []
    if cfg.rank == 1:
        refs.append(("float64", _tape(tf, _tf1d(tf, cfg), x, dy, v), TOL))
    else:
        refs.append(("float64 (H,W) then (D,1)", _tape(tf, _tf3d_float64(tf, cfg), x, dy, v), TOL))
        native = _tape(tf, _tf3d_native(tf, cfg), *(a.astype(np.float32) for a in (x, dy, v)))
        native.pop("gg_dy")  # TF's float32 second order is checked through the float64 route
        refs.append(("float32 native", native, 1e-5))
    bad = []
    for label, ref, tol in refs:
        for name, want in ref.items():
            err = rel_err(ours[name], want)
            if not err <= tol:
                bad.append(f"{label} {name}: rel err {err:.3e}")
    assert not bad, f"{cfg}: " + "; ".join(bad)


def test_configuration_set_covers_the_hard_cases():
    for r in (1, 3):
        cfgs = [c for c in CONFIGS if c.rank == r]
        assert len({str(c) for c in cfgs}) >= 150
        assert {c.kind for c in cfgs} == {"max", "avg"}
        assert any(
            c.padding == "SAME" and any(lo != hi for lo, hi in c.geometry().pads) for c in cfgs
        )
        assert any(c.channels_first for c in cfgs) and any(max(c.s) > max(c.k) for c in cfgs)
    assert any(not isinstance(c.padding, str) for c in CONFIGS)

"""The conv family against live TensorFlow (CPU, float64), on >= 300 deterministic configurations.

For every configuration (kernels 1..5 square or not, strides 1..3 and dilations 1..3 per axis,
VALID / SAME / explicit asymmetric padding, odd sizes where SAME pads unevenly, strides that leave
rows unread, batch 1..3, channels 1..6, groups with unequal in/out channels per group, NHWC and
NCHW) it compares, with relative error max|ours - tf| / max|tf| <= 1e-10:

* forward ``conv2d`` with ``tf.nn.conv2d`` (TF's own grouped / dilated forward);
* d/dx and d/dw of <dy, conv2d(x, w)> from ``.backward`` with those of ``tf.GradientTape``;
* ``conv2d_backprop_input`` / ``conv2d_backprop_filter`` with ``tf.compat.v1.nn``'s and
  ``conv2d_transpose`` with ``tf.nn.conv2d_transpose``;
* second order: d/dw and d/ddy of sum(dx * v) with dx the input gradient, and d/dx and d/ddy of
  sum(dw * v) with dw the filter gradient -- nested GradientTapes in TF; ours both through
  ``create_graph=True`` and by differentiating our backprop nodes directly.

TF's CPU kernels refuse grouped gradients and dilated backprops; ``tf_helpers.TFConv`` computes
those references per group and with zero-inserted filters. NCHW is compared by transposing (TF's
NCHW conv does not run on CPU).
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest
from tf_helpers import TFConv, import_tensorflow, rel_err

import tinygrad_conv as tc
from tinygrad_conv.kernels.padding import conv_geometry

TOL = 1e-10
N_RANDOM = 320


@dataclasses.dataclass(frozen=True)
class Cfg:
    """One conv geometry. Shapes are NHWC / HWIO; ``data_format`` is what *our* ops are fed."""

    n: int
    h: int
    w: int
    groups: int
    cg: int  # input channels per group
    og: int  # output channels per group
    kh: int
    kw: int
    strides: tuple[int, int]
    dilations: tuple[int, int]
    padding: str | tuple[tuple[int, int], tuple[int, int]]
    data_format: str = "NHWC"
    arg_form: int = 0  # how strides/dilations/padding are spelled for our ops (0, 1, 2)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.h, self.w, self.groups * self.cg)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.kh, self.kw, self.cg, self.groups * self.og)

    def geometry(self):
        return conv_geometry(
            "cfg", self.x_shape, self.w_shape, self.strides, self.padding, self.dilations
        )

    def __str__(self) -> str:
        pad = (
            self.padding
            if isinstance(self.padding, str)
            else "E" + "".join(str(v) for p in self.padding for v in p)
        )
        return (
            f"n{self.n}_{self.h}x{self.w}_g{self.groups}c{self.cg}o{self.og}_k{self.kh}x{self.kw}"
            f"_s{self.strides[0]}{self.strides[1]}_d{self.dilations[0]}{self.dilations[1]}_{pad}"
            f"_{self.data_format}{self.arg_form}"
        )

    # -- our ops' arguments, spelled in one of TF's accepted forms ------------------------------
    def _hw(self, v: tuple[int, int]):
        if self.arg_form == 0:
            return v[0] if v[0] == v[1] else list(v)
        if self.arg_form == 1:
            return list(v)
        return [1, 1, *v] if self.data_format == "NCHW" else [1, *v, 1]

    def kwargs(self) -> dict:
        pad = self.padding
        if not isinstance(pad, str):
            if self.arg_form == 2:  # TF's 4-pair form in data_format order
                zero = [0, 0]
                pad = (
                    [zero, zero, list(pad[0]), list(pad[1])]
                    if self.data_format == "NCHW"
                    else [zero, list(pad[0]), list(pad[1]), zero]
                )
            else:
                pad = [list(p) for p in pad]
        return {
            "strides": self._hw(self.strides),
            "padding": pad,
            "data_format": self.data_format,
            "dilations": self._hw(self.dilations),
        }


def _valid(cfg: Cfg) -> bool:
    try:
        cfg.geometry()
    except ValueError:
        return False
    return True


def _random_configs(count: int, seed: int = 20240601) -> list[Cfg]:
    rng = np.random.default_rng(seed)
    out: list[Cfg] = []
    while len(out) < count:
        groups = int(rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 3]))
        cmax = max(1, 6 // groups)
        cg, og = int(rng.integers(1, cmax + 1)), int(rng.integers(1, cmax + 1))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) if rng.random() < 0.45 else 1 for v in rng.integers(2, 4, 2))
        mode = int(rng.integers(0, 3))
        eh, ew = d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1
        if mode == 1:
            padding = "SAME"
            h, w = (int(v) for v in rng.integers(1, 10, 2))
        else:
            if mode == 0:
                padding, pt = "VALID", ((0, 0), (0, 0))
            else:
                pt = tuple(tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(2))
                padding = pt
            h = max(1, eh - sum(pt[0])) + int(rng.integers(0, 2 * s[0] + 2))
            w = max(1, ew - sum(pt[1])) + int(rng.integers(0, 2 * s[1] + 2))
        cfg = Cfg(
            n=int(rng.integers(1, 4)),
            h=h,
            w=w,
            groups=groups,
            cg=cg,
            og=og,
            kh=kh,
            kw=kw,
            strides=s,  # type: ignore[arg-type]
            dilations=d,  # type: ignore[arg-type]
            padding=padding,  # type: ignore[arg-type]
            data_format="NCHW" if rng.random() < 0.15 else "NHWC",
            arg_form=int(rng.integers(0, 3)),
        )
        if _valid(cfg):
            out.append(cfg)
    return out


# Hand-picked corners that random sampling might miss.
EDGE_CONFIGS = [
    # 1x1 kernel, stride 3: leftover rows, the last input row is never read
    Cfg(1, 7, 8, 1, 2, 3, 1, 1, (3, 3), (1, 1), "VALID"),
    # every input row unread: H=1, pad (2, 0), stride 3 -> the only window sits in the padding
    Cfg(2, 1, 1, 1, 1, 2, 1, 1, (3, 3), (1, 1), ((2, 0), (2, 0))),
    # explicit padding larger than d(k-1): the input-gradient conv crops instead of padding
    Cfg(1, 4, 5, 1, 2, 2, 2, 2, (1, 2), (1, 1), ((4, 3), (3, 4))),
    # SAME on a 1x1 input with a 5-tap kernel dilated by 3: effective kernel 13, all padding
    Cfg(1, 1, 1, 1, 1, 1, 5, 5, (1, 1), (3, 3), "SAME"),
    # filter exactly the size of the input
    Cfg(2, 5, 4, 1, 3, 2, 5, 4, (2, 3), (1, 1), "VALID"),
    # depthwise with channel multiplier 2 (groups = Cin)
    Cfg(2, 6, 7, 5, 1, 2, 3, 3, (2, 2), (1, 1), "SAME"),
    # stride 3 and dilation 3 together, odd SAME sizes
    Cfg(1, 11, 9, 1, 2, 2, 3, 2, (3, 3), (3, 3), "SAME"),
    # everything non-square
    Cfg(3, 9, 7, 1, 2, 3, 1, 5, (3, 1), (1, 2), ((1, 0), (0, 3))),
    # NCHW + groups + stride + dilation, unequal in/out per group
    Cfg(2, 8, 9, 2, 3, 1, 3, 2, (2, 3), (2, 1), "SAME", "NCHW", 2),
    Cfg(1, 10, 6, 3, 1, 2, 2, 3, (3, 2), (2, 2), ((2, 1), (0, 2)), "NCHW", 1),
    # SAME with even kernels: the extra row goes to the bottom/right
    Cfg(2, 6, 6, 1, 1, 1, 4, 2, (1, 1), (1, 1), "SAME"),
    Cfg(1, 7, 5, 1, 3, 2, 2, 4, (2, 2), (1, 1), "SAME"),
    # stride larger than the kernel: gaps between windows
    Cfg(2, 9, 10, 2, 2, 3, 2, 2, (3, 3), (1, 1), "VALID"),
]

CONFIGS: list[Cfg] = EDGE_CONFIGS + _random_configs(N_RANDOM)

#: worst relative error seen per quantity: name -> (error, config id); printed by the summary test
WORST: dict[str, tuple[float, str]] = {}


@pytest.fixture(scope="module")
def tf():
    return import_tensorflow()


def _to_ours(a: np.ndarray, cfg: Cfg) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if cfg.data_format == "NCHW" else a


def _from_ours(a: np.ndarray, cfg: Cfg) -> np.ndarray:
    return a.transpose(0, 2, 3, 1) if cfg.data_format == "NCHW" else a


def _sizes(shape: tuple[int, ...], cfg: Cfg) -> np.ndarray:
    if cfg.data_format == "NCHW":
        shape = (shape[0], shape[3], shape[1], shape[2])
    return np.array(shape, dtype=np.int64)


def _ours(cfg: Cfg, x, w, dy, vx, vw) -> dict[str, np.ndarray]:
    """Every quantity from our ops, returned in NHWC / HWIO."""
    kw = cfg.kwargs()
    xo, dyo, vxo = _to_ours(x, cfg), _to_ours(dy, cfg), _to_ours(vx, cfg)
    xs, ws = _sizes(x.shape, cfg), np.array(w.shape, dtype=np.int64)
    back = lambda t: _from_ours(t.data, cfg)  # noqa: E731
    r: dict[str, np.ndarray] = {}

    # forward, and first order through .backward()
    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    y = tc.conv2d(xt, wt, **kw)
    r["forward"] = back(y)
    y.backward(dyo)
    r["grad_x"], r["grad_w"] = back(xt.grad), wt.grad.data

    # the three other public functions
    r["backprop_input"] = back(tc.conv2d_backprop_input(xs, w, dyo, **kw))
    r["backprop_filter"] = tc.conv2d_backprop_filter(xo, ws, dyo, **kw).data
    r["transpose"] = back(tc.conv2d_transpose(dyo, w, xs, **kw))

    # second order via create_graph
    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt = tc.Tensor(dyo, requires_grad=True)
    y = tc.conv2d(xt, wt, **kw)
    gx, gw = tc.grad(y, [xt, wt], grad_outputs=dyt, create_graph=True)
    gi_w, gi_dy = tc.grad((gx * vxo).sum(), [wt, dyt], retain_graph=True)
    gf_x, gf_dy = tc.grad((gw * vw).sum(), [xt, dyt])
    r["gg_input_w"], r["gg_input_dy"] = gi_w.data, back(gi_dy)
    r["gg_filter_x"], r["gg_filter_dy"] = back(gf_x), back(gf_dy)

    # second order by differentiating the backprop nodes directly
    xt, wt = tc.Tensor(xo, requires_grad=True), tc.Tensor(w, requires_grad=True)
    dyt = tc.Tensor(dyo, requires_grad=True)
    dx = tc.conv2d_backprop_input(xs, wt, dyt, **kw)
    gi_w, gi_dy = tc.grad((dx * vxo).sum(), [wt, dyt])
    dw = tc.conv2d_backprop_filter(xt, ws, dyt, **kw)
    gf_x, gf_dy = tc.grad((dw * vw).sum(), [xt, dyt])
    r["gg_input_w(node)"], r["gg_input_dy(node)"] = gi_w.data, back(gi_dy)
    r["gg_filter_x(node)"], r["gg_filter_dy(node)"] = back(gf_x), back(gf_dy)
    return r


def _tf_reference(tf, cfg: Cfg, x, w, dy, vx, vw) -> dict[str, np.ndarray]:
    t = TFConv(tf, cfg.strides, cfg.padding, cfg.dilations, cfg.groups)
    r: dict[str, np.ndarray] = {}
    r["forward"] = t.conv2d_native(x, w).numpy()
    r["grad_x"], r["grad_w"] = t.grads(x, w, dy)
    r["backprop_input"] = t.backprop_input(x.shape, w, dy).numpy()
    r["backprop_filter"] = t.backprop_filter(x, w.shape, dy).numpy()
    r["transpose"] = t.conv2d_transpose(dy, w, x.shape).numpy()
    r["gg_input_w"], r["gg_input_dy"] = t.second_order_input(x, w, dy, vx)
    r["gg_filter_x"], r["gg_filter_dy"] = t.second_order_filter(x, w, dy, vw)
    for k in ("gg_input_w", "gg_input_dy", "gg_filter_x", "gg_filter_dy"):
        r[k + "(node)"] = r[k]
    return r


@pytest.mark.parametrize(
    ("seed", "cfg"), [pytest.param(i, c, id=str(c)) for i, c in enumerate(CONFIGS)]
)
def test_conv_family_matches_tensorflow(tf, seed: int, cfg: Cfg) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cfg.x_shape)
    w = rng.standard_normal(cfg.w_shape)
    oh, ow = cfg.geometry().output_hw
    dy = rng.standard_normal((cfg.n, oh, ow, cfg.groups * cfg.og))
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    ref = _tf_reference(tf, cfg, x, w, dy, vx, vw)
    assert ref["forward"].shape == dy.shape, "TF's output size differs from our geometry"
    ours = _ours(cfg, x, w, dy, vx, vw)
    bad = []
    for name, want in ref.items():
        err = rel_err(ours[name], want)
        if err > WORST.get(name, (-1.0, ""))[0]:
            WORST[name] = (err, str(cfg))
        if not err <= TOL:
            bad.append(f"{name}: rel err {err:.3e}")
    assert not bad, f"{cfg}: " + "; ".join(bad)


# ----------------------------------------------------------------------------- meta tests


def test_configuration_set_covers_the_hard_cases() -> None:
    """The generated set is large and hits every feature the brief lists."""
    assert len(CONFIGS) >= 300
    assert len({str(c) for c in CONFIGS}) >= 300

    def count(pred) -> int:
        return sum(1 for c in CONFIGS if pred(c))

    def uneven_same(c: Cfg) -> bool:
        return c.padding == "SAME" and any(lo != hi for lo, hi in c.geometry().pads)

    assert count(lambda c: max(c.geometry().leftover) > 0) >= 50  # unread rows
    assert count(uneven_same) >= 30
    assert (
        count(lambda c: not isinstance(c.padding, str) and any(lo != hi for lo, hi in c.padding))
        >= 50
    )  # explicit asymmetric
    assert count(lambda c: c.padding == "VALID") >= 50
    assert count(lambda c: max(c.strides) > 1 and max(c.dilations) > 1) >= 30
    assert count(lambda c: c.groups > 1 and c.cg != c.og) >= 20
    assert count(lambda c: c.data_format == "NCHW") >= 30
    assert count(lambda c: c.kh != c.kw) >= 100
    assert {c.n for c in CONFIGS} == {1, 2, 3}
    assert {c.strides[0] for c in CONFIGS} == {1, 2, 3}
    assert {c.dilations[1] for c in CONFIGS} == {1, 2, 3}
    assert {c.kh for c in CONFIGS} == {1, 2, 3, 4, 5}


def test_missing_tensorflow_skips_locally_but_fails_under_ci(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        import_tensorflow()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError):
        import_tensorflow()


def test_zz_worst_errors_summary(capsys) -> None:
    """Runs last: prints the worst relative error per quantity (visible with ``-s``)."""
    if not WORST:
        pytest.skip("no TF comparison ran in this session")
    lines = [f"{len(CONFIGS)} configurations; worst relative error vs TensorFlow:"]
    for name, (err, cid) in sorted(WORST.items()):
        lines.append(f"  {name:22s} {err:.2e}  ({cid})")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if os.environ.get("TC_WORST_FILE"):
        with open(os.environ["TC_WORST_FILE"], "w") as fh:
            fh.write("\n".join(lines) + "\n")
    assert max(e for e, _ in WORST.values()) <= TOL

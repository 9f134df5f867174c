"""Tests for tinygrad_conv.optim: PyTorch's update rules, checked by hand and against torch."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pytest

from tinygrad_conv.optim import SGD, Adam, AdamW, CosineAnnealingLR, Optimizer, StepLR


def _require_torch():
    """torch, or a skip when it is missing locally; under CI=true a missing torch fails."""
    if os.environ.get("CI") == "true":
        import torch

        return torch
    return pytest.importorskip("torch")


try:  # the real engine's Tensor once it imports; until then a stand-in with the same contract
    from tinygrad_conv.tensor import Tensor

    def make_param(a: np.ndarray) -> Any:
        return Tensor(a, requires_grad=True)

    def make_grad(g: np.ndarray) -> Any:
        return Tensor(g)

except ImportError:

    class _Param:
        """Minimal stand-in: ``.data`` ndarray, ``.grad`` None or an object with ``.data``."""

        def __init__(self, data: np.ndarray, requires_grad: bool = False) -> None:
            self.data = data
            self.grad: Any = None
            self.requires_grad = requires_grad

    def make_param(a: np.ndarray) -> Any:
        return _Param(a, requires_grad=True)

    def make_grad(g: np.ndarray) -> Any:
        return _Param(g)


# -- hand-computed trajectories -------------------------------------------------------------------
# Three steps from P0 with the fixed gradients G (GA for the AMSGrad cases, where v must shrink
# after the first step so that max(v) differs from v). float64 throughout.
P0 = [1.0, -2.0, 0.5]
G = [[0.5, -1.0, 2.0], [-0.25, 0.5, 1.0], [1.0, 1.0, -1.0]]
GA = [[2.0, -1.0, 0.5], [0.1, 0.1, 0.1], [0.1, -0.1, 0.1]]

# SGD, worked out by hand (lr = 0.1):
#   plain:     p3 = P0 - 0.1 * (g1 + g2 + g3) = [1 - 0.125, -2 - 0.05, 0.5 - 0.2]
#   momentum:  b1 = g1 = [0.5, -1, 2]          p1 = [0.95, -1.9, 0.3]
#              b2 = 0.9 b1 + g2 = [0.2, -0.4, 2.8]        p2 = [0.93, -1.86, 0.02]
#              b3 = 0.9 b2 + g3 = [1.18, 0.64, 1.52]      p3 = [0.812, -1.924, -0.132]
#   dampening 0.5: b_t = 0.9 b_{t-1} + 0.5 g_t (but b1 = g1)
#              b2 = [0.325, -0.65, 2.3], b3 = [0.7925, -0.085, 1.57]
#              p3 = P0 - 0.1 (b1 + b2 + b3) = [0.83825, -1.8265, -0.087]
#   nesterov:  step uses g_t + 0.9 b_t (b_t as for momentum):
#              [0.95, -1.9, 3.8], [-0.07, 0.14, 3.52], [2.062, 1.576, 0.368]
#              p3 = P0 - 0.1 * sum = [0.7058, -1.9816, -0.2688]
#   wd 0.5:    g'_t = g_t + 0.5 p_{t-1}: p1 = [0.9, -1.8, 0.275], p2 = [0.88, -1.76, 0.16125],
#              p3 = [0.736, -1.772, 0.2531875]
# Adam (lr = 0.1): at t = 1, m_hat = g1 and v_hat = g1^2, so p1 = P0 - 0.1 * g1 / (|g1| + eps),
# i.e. about P0 - 0.1 * sign(g1); the 3-step values below follow the scalar recurrences of the
# Adam docstring, evaluated in float64 with Python's math module (torch agrees to 0 ulp).
EXPECTED: dict[str, tuple[type, dict, list[list[float]], list[float]]] = {
    "sgd": (SGD, dict(lr=0.1), G, [0.875, -2.05, 0.3]),
    "sgd_momentum": (SGD, dict(lr=0.1, momentum=0.9), G, [0.812, -1.924, -0.132]),
    "sgd_dampening": (
        SGD,
        dict(lr=0.1, momentum=0.9, dampening=0.5),
        G,
        [0.83825, -1.8265, -0.087],
    ),
    "sgd_nesterov": (
        SGD,
        dict(lr=0.1, momentum=0.9, nesterov=True),
        G,
        [0.7058, -1.9816, -0.2688],
    ),
    "sgd_weight_decay": (SGD, dict(lr=0.1, weight_decay=0.5), G, [0.736, -1.772, 0.2531875]),
    "sgd_all_options": (
        SGD,
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.5, maximize=True),
        G,
        [0.9052875, -1.240575, 0.9669308125],
    ),
    "adam": (Adam, dict(lr=0.1), G, [0.8075551396770898, -1.9006359761506924, 0.2671115135621866]),
    "adam_weight_decay": (
        Adam,
        dict(lr=0.1, weight_decay=0.5),
        G,
        [0.7315606208124961, -1.758016864964697, 0.25694680537501186],
    ),
    "adam_maximize": (
        Adam,
        dict(lr=0.1, maximize=True),
        G,
        [1.19244486032291, -2.0993640238493074, 0.7328884864378135],
    ),
    "adam_betas_eps": (
        Adam,
        dict(lr=0.1, betas=(0.5, 0.75), eps=1e-3),
        G,
        [0.8205689279322788, -1.9657121375749735, 0.31191655941863805],
    ),
    "adam_amsgrad": (
        Adam,
        dict(lr=0.1, betas=(0.5, 0.75), amsgrad=True),
        GA,
        [0.8232531628706157, -1.8386543354428608, 0.29047267366210194],
    ),
    "adam_no_amsgrad_same_data": (
        Adam,
        dict(lr=0.1, betas=(0.5, 0.75)),
        GA,
        [0.8065742503935189, -1.8253046196812825, 0.27044903593504926],
    ),
    "adamw": (
        AdamW,
        dict(lr=0.1, weight_decay=0.5),
        G,
        [0.6760118246466974, -1.626467661234647, 0.21020991167801106],
    ),
    "adamw_amsgrad": (
        AdamW,
        dict(lr=0.1, weight_decay=0.5, betas=(0.5, 0.75), amsgrad=True),
        GA,
        [0.6928034348409665, -1.5649181695294037, 0.23199688324834397],
    ),
}


def _run(opt_cls: type, kwargs: dict, grads: list[list[float]], dtype: Any = np.float64) -> Any:
    p = make_param(np.array(P0, dtype=dtype))
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = make_grad(np.array(g, dtype=dtype))
        opt.step()
    return p


@pytest.mark.parametrize("name", list(EXPECTED))
def test_hand_computed(name: str) -> None:
    opt_cls, kwargs, grads, expected = EXPECTED[name]
    p = _run(opt_cls, kwargs, grads)
    np.testing.assert_allclose(p.data, expected, rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_sign_step() -> None:
    p = _run(Adam, dict(lr=0.1), G[:1])
    np.testing.assert_allclose(p.data, np.array(P0) - 0.1 * np.sign(G[0]), rtol=1e-7)


def test_adamw_zero_decay_equals_adam() -> None:
    a = _run(Adam, dict(lr=0.1), G)
    w = _run(AdamW, dict(lr=0.1, weight_decay=0.0), G)
    np.testing.assert_array_equal(a.data, w.data)


def test_adamw_default_weight_decay() -> None:
    assert AdamW([make_param(np.zeros(2))]).param_groups[0]["weight_decay"] == 1e-2
    assert Adam([make_param(np.zeros(2))]).param_groups[0]["weight_decay"] == 0.0


# -- engine contract: in place, dtype, skipping, zero_grad ---------------------------------------


@pytest.mark.parametrize("opt_cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_and_dtype(opt_cls: type, dtype: Any) -> None:
    p = make_param(np.arange(6, dtype=dtype).reshape(2, 3))
    ref = p.data
    kwargs = dict(lr=0.1, weight_decay=0.1)
    if opt_cls is SGD:
        kwargs["momentum"] = 0.9
    opt = opt_cls([p], **kwargs)
    for _ in range(3):
        # float64 gradient on a float32 parameter: the arithmetic still stays in float32
        p.grad = make_grad(np.ones((2, 3), dtype=np.float64))
        opt.step()
    assert p.data is ref and p.data.dtype == dtype
    assert not np.array_equal(ref, np.arange(6).reshape(2, 3))
    for buf in opt.state[p].values():
        if isinstance(buf, np.ndarray):
            assert buf.dtype == dtype


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_gradient_not_modified(opt_cls: type) -> None:
    p = make_param(np.ones(3))
    g = np.array([1.0, 2.0, 3.0])
    p.grad = make_grad(g.copy())
    opt = opt_cls([p], lr=0.1, weight_decay=0.5, maximize=True)
    opt.step()
    opt.step()
    gd = p.grad.data
    np.testing.assert_array_equal(gd, g)


def test_scalar_parameter() -> None:
    for opt_cls in (SGD, Adam):
        p = make_param(np.array(2.0))
        opt = opt_cls([p], lr=0.5, momentum=0.9) if opt_cls is SGD else opt_cls([p], lr=0.5)
        p.grad = make_grad(np.array(1.0))
        opt.step()
        assert p.data.shape == () and p.data < 2.0


def test_params_without_grad_are_skipped() -> None:
    a, b = make_param(np.ones(2)), make_param(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad = make_grad(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert b not in opt.state and opt.state[a]["step"] == 1
    assert a.data[0] < 1.0


def test_zero_grad() -> None:
    p = make_param(np.ones(2))
    opt = SGD([p], lr=0.1)
    p.grad = make_grad(np.ones(2))
    g = p.grad.data
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad.data is g and not g.any()
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad()  # no-op on None grads
    opt.step()  # nothing to do
    np.testing.assert_array_equal(p.data, [1.0, 1.0])


def test_bare_ndarray_grad_accepted() -> None:
    p = make_param(np.ones(2))
    p.grad = np.array([1.0, -1.0])  # duck typing: an ndarray is taken as the gradient itself
    SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.data, [0.5, 1.5])


def test_param_groups_and_closure() -> None:
    a, b = make_param(np.ones(2)), make_param(np.ones(2))
    opt = SGD([{"params": [a]}, {"params": b, "lr": 1.0, "momentum": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["momentum"] == 0.5
    a.grad, b.grad = make_grad(np.ones(2)), make_grad(np.ones(2))
    assert opt.step(lambda: 3.5) == 3.5
    np.testing.assert_allclose(a.data, [0.9, 0.9])
    np.testing.assert_allclose(b.data, [0.0, 0.0])
    c = make_param(np.ones(1))
    opt.add_param_group({"params": [c], "lr": 0.01})
    assert opt.param_groups[2]["lr"] == 0.01 and "group 2" in repr(opt)


def test_generator_params() -> None:
    ps = [make_param(np.ones(2)) for _ in range(3)]
    opt = SGD((p for p in ps), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 3


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda p: SGD([p], lr=-0.1), "lr"),
        (lambda p: SGD([p], lr=0.1, momentum=-1), "momentum"),
        (lambda p: SGD([p], lr=0.1, weight_decay=-1), "weight_decay"),
        (lambda p: SGD([p], lr=0.1, nesterov=True), "nesterov"),
        (lambda p: SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda p: SGD([{"params": [p], "lr": -1.0}], lr=0.1), "lr"),
        (lambda p: Adam([p], lr=-1e-3), "lr"),
        (lambda p: Adam([p], betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: Adam([p], betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: Adam([p], betas=(0.9,)), "pair"),
        (lambda p: AdamW([p], eps=-1e-8), "eps"),
        (lambda p: AdamW([p], weight_decay=-0.01), "weight_decay"),
        (lambda p: Adam([p], lr=float("nan")), "lr"),
        (lambda p: SGD([], lr=0.1), "empty"),
        (lambda p: SGD([{"params": []}], lr=0.1), "empty"),
        (lambda p: SGD([p, p], lr=0.1), "more than once"),
        (lambda p: SGD([make_param(np.ones(2))] + [_int_param()], lr=0.1), "floating"),
    ],
)
def test_errors(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(make_param(np.ones(2)))


def _int_param() -> Any:
    p = make_param(np.ones(2))
    p.data = np.ones(2, dtype=np.int64)  # bypass the Tensor's own requires_grad check
    return p


def test_type_errors() -> None:
    p = make_param(np.ones(2))
    with pytest.raises(TypeError, match="iterable"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="params"):
        SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR(object(), 1)  # type: ignore[arg-type]


def test_grad_shape_mismatch() -> None:
    p = make_param(np.ones(2))
    p.grad = make_grad(np.ones(3))
    with pytest.raises(ValueError, match=r"gradient shape \(3,\).*\(2,\)"):
        SGD([p], lr=0.1).step()


# -- state dicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opt_cls,kwargs",
    [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.1, amsgrad=True)), (AdamW, {})],
)
def test_state_dict_round_trip(opt_cls: type, kwargs: dict) -> None:
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((2, 3)) for _ in range(6)]
    init = rng.standard_normal((2, 3))

    p = make_param(init.copy())
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = make_grad(g)
        opt.step()

    q = make_param(init.copy())
    opt_q = opt_cls([q], **kwargs)
    for g in grads[:3]:
        q.grad = make_grad(g)
        opt_q.step()
    sd = opt_q.state_dict()
    for g in grads[:3]:  # mutating the live optimizer must not change the saved copy
        q.grad = make_grad(g * 100)
        opt_q.step()
    # rebuild the parameter at its step-3 value by replaying, then load the optimizer state
    r = make_param(init.copy())
    replay = opt_cls([r], **kwargs)
    for g in grads[:3]:
        r.grad = make_grad(g)
        replay.step()
    fresh = opt_cls([r], lr=123.0)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for g in grads[3:]:
        r.grad = make_grad(g)
        fresh.step()
    np.testing.assert_array_equal(r.data, p.data)


def test_load_state_dict_errors() -> None:
    a, b = make_param(np.ones(2)), make_param(np.ones(3))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = make_grad(np.ones(2)), make_grad(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and set(sd["state"]) == {0, 1}
    with pytest.raises(ValueError, match="group sizes"):
        SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="param groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        SGD([b, a], lr=0.1).load_state_dict(sd)


# -- schedules ------------------------------------------------------------------------------------


def _opt(lrs: list[float]) -> Optimizer:
    return SGD([{"params": [make_param(np.ones(1))], "lr": lr} for lr in lrs], lr=0.0)


def test_step_lr_closed_form() -> None:
    opt = _opt([1.0, 0.5])
    sched = StepLR(opt, step_size=3, gamma=0.1)
    got = []
    for _ in range(10):
        got.append(sched.get_last_lr())
        opt.step()
        sched.step()
    expected = [[0.1 ** (e // 3), 0.5 * 0.1 ** (e // 3)] for e in range(10)]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    assert opt.param_groups[0]["initial_lr"] == 1.0


def test_cosine_closed_form() -> None:
    opt = _opt([0.1])
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    got = [sched.get_last_lr()[0]]
    for _ in range(8):
        sched.step()
        got.append(opt.param_groups[0]["lr"])
    # eta_min + (0.1 - eta_min) * (1 + cos(pi * e / 4)) / 2, written out:
    c = math.sqrt(2) / 2
    half = 0.09 / 2
    expected = [0.1, 0.01 + half * (1 + c), 0.055, 0.01 + half * (1 - c), 0.01]
    expected += expected[-2::-1][:4]  # past T_max the cosine rises again (period 2 * T_max)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_schedule_resume_and_state() -> None:
    opt = _opt([1.0])
    sched = StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        sched.step()
    sd = sched.state_dict()
    assert sd["last_epoch"] == 5 and "optimizer" not in sd
    resumed = StepLR(opt, step_size=2, gamma=0.5, last_epoch=4)  # initial_lr already set
    assert resumed.get_last_lr() == [0.25] == sched.get_last_lr()
    other = StepLR(_opt([1.0]), step_size=2, gamma=0.5)
    other.load_state_dict(sd)
    assert other.last_epoch == 5 and other.get_last_lr() == [0.25]
    with pytest.raises(ValueError, match="initial_lr"):
        StepLR(_opt([1.0]), step_size=2, last_epoch=3)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda o: StepLR(o, step_size=0), "step_size"),
        (lambda o: StepLR(o, step_size=1.5), "step_size"),
        (lambda o: StepLR(o, step_size=1, gamma=-0.1), "gamma"),
        (lambda o: CosineAnnealingLR(o, T_max=0), "T_max"),
        (lambda o: CosineAnnealingLR(o, T_max=3, eta_min=-1.0), "eta_min"),
    ],
)
def test_schedule_errors(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(_opt([0.1]))


# -- against PyTorch (extra check, skipped without torch) -----------------------------------------

TORCH_CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", TORCH_CASES)
def test_matches_torch(name: str, kwargs: dict, dtype: Any) -> None:
    torch = _require_torch()
    ours_cls = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name]
    theirs_cls = getattr(torch.optim, name)
    rng = np.random.default_rng(42)
    inits = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    ours = [make_param(a.copy()) for a in inits]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    # two groups: the second overrides lr, to exercise per-group hyperparameters too
    opt_o = ours_cls([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.02}], **kwargs)
    opt_t = theirs_cls([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.02}], **kwargs)
    for _ in range(10):
        for po, pt in zip(ours, theirs, strict=True):
            g = rng.standard_normal(po.data.shape).astype(dtype)
            po.grad = make_grad(g)
            pt.grad = torch.from_numpy(g.copy())
        opt_o.step()
        opt_t.step()
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-7)
    for po, pt in zip(ours, theirs, strict=True):
        assert po.data.dtype == dtype
        np.testing.assert_allclose(po.data, pt.detach().numpy(), **tol)


@pytest.mark.parametrize("which", ["step", "cosine"])
def test_schedules_match_torch(which: str) -> None:
    torch = _require_torch()
    opt_o = _opt([0.1, 0.03])
    params_t = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    opt_t = torch.optim.SGD(
        [{"params": [params_t[0]], "lr": 0.1}, {"params": [params_t[1]], "lr": 0.03}]
    )
    if which == "step":
        s_o, s_t = StepLR(opt_o, 4, gamma=0.5), torch.optim.lr_scheduler.StepLR(opt_t, 4, gamma=0.5)
    else:
        s_o = CosineAnnealingLR(opt_o, T_max=7, eta_min=0.001)
        s_t = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, T_max=7, eta_min=0.001)
    for _ in range(20):  # past T_max too
        np.testing.assert_allclose(s_o.get_last_lr(), s_t.get_last_lr(), rtol=1e-10, atol=1e-15)
        opt_t.step()
        s_o.step()
        s_t.step()

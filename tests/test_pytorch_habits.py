"""PyTorch and micrograd habits (issue 16): in-place updates and the version counter compared with
PyTorch on the same sequences, the names users reach for, dim=, the non-leaf .grad warning and
detect_anomaly() on a small CNN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import tinygrad_conv as tc
import tinygrad_conv.nn.functional as F

RNG = np.random.default_rng(16)


def arr(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape)


def both(a: np.ndarray, requires_grad: bool = True) -> tuple[tc.Tensor, torch.Tensor]:
    return (
        tc.tensor(a.copy(), requires_grad=requires_grad),
        torch.tensor(a.copy(), requires_grad=requires_grad),
    )


def np_of(t: tc.Tensor | torch.Tensor) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.data


# -- in-place semantics vs PyTorch ----------------------------------------------------------------
def test_manual_sgd_under_no_grad_updates_the_same_leaf_like_torch() -> None:
    a, xa = arr(3, 2), arr(4, 3)
    w, wt = both(a)
    x, xt = tc.tensor(xa), torch.tensor(xa)
    for _ in range(3):
        (x @ w).sum().backward()
        (xt @ wt).sum().backward()
        ident = id(w)
        with tc.no_grad():
            w -= 0.1 * w.grad
        with torch.no_grad():
            wt -= 0.1 * wt.grad
        assert id(w) == ident and w.is_leaf and w.requires_grad
        w.grad = None
        wt.grad = None
    np.testing.assert_allclose(w.data, np_of(wt), rtol=1e-12)


@pytest.mark.parametrize("method", ["add_", "sub_", "mul_", "div_"])
def test_inplace_methods_under_no_grad_match_torch(method: str) -> None:
    a, b = arr(2, 3), arr(3) + 3.0
    w, wt = both(a)
    with tc.no_grad():
        out = getattr(w, method)(tc.tensor(b))
    with torch.no_grad():
        getattr(wt, method)(torch.tensor(b))
    assert out is w and w.is_leaf
    np.testing.assert_allclose(w.data, np_of(wt), rtol=1e-12)


def test_zero_fill_copy_clamp_in_place_match_torch() -> None:
    a = arr(2, 3)
    t, tt = tc.tensor(a.copy()), torch.tensor(a.copy())
    t.clamp_(-0.5, 0.5)
    tt.clamp_(-0.5, 0.5)
    np.testing.assert_allclose(t.data, tt.numpy())
    t.copy_(np.arange(3.0))
    tt.copy_(torch.arange(3.0))
    np.testing.assert_allclose(t.data, tt.numpy())
    t.fill_(2.5)
    tt.fill_(2.5)
    np.testing.assert_allclose(t.data, tt.numpy())
    assert t.zero_() is t and not t.data.any()


def test_inplace_on_leaf_with_grad_on_raises_like_torch() -> None:
    w, wt = both(arr(3))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in"):
        wt += 1
    with pytest.raises(RuntimeError) as info:
        w += 1
    assert str(info.value).startswith(
        "add_: a leaf Variable that requires grad is being used in an in-place operation "
        "(tensor of shape (3,)). To update a parameter, do it under `with tc.no_grad():`"
    )
    for call in (lambda: w.mul_(2), lambda: w.zero_(), lambda: w.copy_(np.ones(3))):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            call()


def test_modified_saved_input_raises_like_torch() -> None:
    (a, at), (b, bt) = both(arr(3)), both(arr(3))
    y, yt = a * b, at * bt
    with tc.no_grad():
        b.mul_(2)
    with torch.no_grad():
        bt.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert str(info.value) == (
        "mul: one of the variables needed for gradient computation has been modified by an "
        "inplace operation: its input 'b' (shape (3,), dtype float64) was changed after mul used "
        "it in the forward. Hint: do the in-place update after backward(), write it out of place "
        "(x = x + y), or modify a clone() of the tensor."
    )


def test_modification_through_data_is_counted() -> None:
    a, b = tc.tensor(arr(3), requires_grad=True), tc.tensor(arr(3), requires_grad=True, name="b")
    y = a * b
    b.data -= 1.0  # micrograd-style update of the values between forward and backward
    with pytest.raises(
        RuntimeError, match=r"its input 'b' \(shape \(3,\), dtype float64, name 'b'\)"
    ):
        y.sum().backward()


def test_only_inputs_the_backward_reads_are_checked_like_torch() -> None:
    # y = a + b reads neither input in backward: modifying b is harmless, in both engines
    (a, at), (b, bt) = both(arr(3)), both(arr(3))
    y, yt = a + b, at + bt
    with tc.no_grad():
        b += 1
    with torch.no_grad():
        bt += 1
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(a.grad.data, np_of(at.grad))
    # a * c with c a constant: the gradient for c is not needed, so a is not read
    (a, at), c = both(arr(3)), arr(3)
    y, yt = a * tc.tensor(c), at * torch.tensor(c)
    with tc.no_grad():
        a += 1
    with torch.no_grad():
        at += 1
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(a.grad.data, np_of(at.grad))


def test_modified_output_read_by_backward_raises_like_torch() -> None:
    w, wt = both(arr(3))
    y, yt = w.exp(), wt.exp()
    with tc.no_grad():
        y += 1
    with torch.no_grad():
        yt += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        yt.sum().backward()
    with pytest.raises(RuntimeError, match="exp: .* its output 'out' \\(shape \\(3,\\)"):
        y.sum().backward()


def test_modified_saved_tensor_raises() -> None:
    class Scale(tc.Function):
        saved_names = ("s",)
        vjp = {"x": "mul(g, s)"}

        @staticmethod
        def forward(ctx, x, s):
            ctx.save_for_backward(tc.tensor(s))
            return x * s

        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return g * s, None

    x = tc.tensor(arr(3), requires_grad=True)
    s = np.full(3, 2.0)
    y = Scale.apply(x, s)
    saved = y.grad_fn.saved_tensors[0]
    saved += 1  # no grad needed: written in place
    with pytest.raises(RuntimeError, match="scale: .* its saved value 's'"):
        y.sum().backward()


def test_resnet_style_inplace_on_non_leaf_matches_torch() -> None:
    xa, w1, w2 = arr(2, 5, 5, 3), arr(3, 3, 3, 3), arr(3, 3, 3, 3)
    x = tc.tensor(xa, requires_grad=True)
    k1, k2 = tc.tensor(w1, requires_grad=True), tc.tensor(w2, requires_grad=True)
    out = tc.relu(tc.conv2d(x, k1, 1, "SAME"))
    ident = id(out)
    out = tc.conv2d(out, k2, 1, "SAME")
    out += x  # the skip connection, in place on a non-leaf
    out *= 0.5
    assert out.grad_fn.name == "mul" and not out.is_leaf
    (out * out).sum().backward()
    assert ident != id(out)

    xt = torch.tensor(xa.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    k1t = torch.tensor(w1.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    k2t = torch.tensor(w2.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    ot = torch.relu(torch.nn.functional.conv2d(xt, k1t, padding=1))
    ot = torch.nn.functional.conv2d(ot, k2t, padding=1)
    ot += xt
    ot *= 0.5
    (ot * ot).sum().backward()
    np.testing.assert_allclose(out.data, np_of(ot).transpose(0, 2, 3, 1), rtol=1e-10)
    np.testing.assert_allclose(x.grad.data, np_of(xt.grad).transpose(0, 2, 3, 1), rtol=1e-10)
    np.testing.assert_allclose(k1.grad.data, np_of(k1t.grad).transpose(2, 3, 1, 0), rtol=1e-10)


def test_earlier_consumer_keeps_the_old_value_like_torch() -> None:
    # y used `out` before `out *= 3`: its gradient must reach the old out, not pass through *3
    w, wt = both(arr(3))
    out, ot = w * 1.5, wt * 1.5
    y, yt = out * 2, ot * 2
    out *= 3
    ot *= 3
    out += w
    ot += wt
    (y.sum() + (out * out).sum()).backward()
    (yt.sum() + (ot * ot).sum()).backward()
    np.testing.assert_allclose(w.grad.data, np_of(wt.grad), rtol=1e-12)


def test_inplace_with_grad_operand_on_constant_builds_a_graph_like_torch() -> None:
    w, wt = both(arr(3))
    z, zt = tc.zeros(3, dtype=np.float64), torch.zeros(3, dtype=torch.float64)
    z += w * w
    zt += wt * wt
    assert z.requires_grad and not z.is_leaf
    z.sum().backward()
    zt.sum().backward()
    np.testing.assert_allclose(w.grad.data, np_of(wt.grad))


def test_inplace_errors_name_shapes_and_dtypes() -> None:
    t = tc.zeros(3)
    with pytest.raises(ValueError, match=r"add_: output with shape \(3,\) doesn't match the broad"):
        t += np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"sub_: operand of shape \(4,\) cannot be broadcast"):
        t -= np.zeros(4)
    i = tc.tensor(np.arange(3))
    with pytest.raises(TypeError) as info:
        i /= 2
    assert str(info.value).startswith(
        "div_: result type float64 can't be cast to the desired output type int64"
    )
    with pytest.raises(TypeError, match="fill_: the value must be a number, got str"):
        t.fill_("x")
    with pytest.raises(ValueError, match=r"copy_: source of shape \(2,\) cannot be broadcast"):
        t.copy_(np.zeros(2))
    i += 2  # int += int stays int
    assert i.dtype == np.int64 and i.tolist() == [2, 3, 4]


def test_micrograd_data_update_works_and_bumps_the_version() -> None:
    w = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    before = tc.grad_mode._version_clock
    w.data += -0.1 * w.grad  # ndarray += Tensor: written into the array
    assert type(w.data) is np.ndarray and w.is_leaf
    np.testing.assert_allclose(w.data, [0.8, 1.6])
    assert tc.grad_mode._version_clock == before + 1 and w._version == before + 1


def test_ndarray_operators_with_tensors_stay_tensors() -> None:
    t = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = np.array([3.0, 4.0])
    for r in (a + t, a - t, a * t, a / t, a**t, np.float64(2.0) * t):
        assert isinstance(r, tc.Tensor) and r.requires_grad
    assert (a > t).tolist() == [True, True]
    with pytest.raises(TypeError, match="numpy's exp .* call the tinygrad_conv op"):
        np.exp(t)


def test_version_check_costs_nothing_when_nothing_was_modified() -> None:
    w = tc.tensor(arr(3), requires_grad=True)
    y = w * w
    assert y.grad_fn.__dict__["_v"] == tc.grad_mode._version_clock
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, 2 * w.data)


# -- names ------------------------------------------------------------------------------------------
def test_transpose_two_axes_swaps_like_torch() -> None:
    a = arr(2, 3, 4)
    t, tt = tc.tensor(a), torch.tensor(a)
    assert tc.tensor(arr(2, 3)).transpose(0, 1).shape == (3, 2)
    np.testing.assert_array_equal(t.transpose(0, 2).data, tt.transpose(0, 2).numpy())
    np.testing.assert_array_equal(t.transpose(-1, 0).data, tt.transpose(-1, 0).numpy())
    np.testing.assert_array_equal(t.transpose(1, 2, 0).data, a.transpose(1, 2, 0))  # NumPy's
    np.testing.assert_array_equal(t.transpose((1, 0, 2)).data, a.transpose(1, 0, 2))
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, tt.permute(2, 0, 1).numpy())
    m = tc.tensor(arr(2, 3))
    np.testing.assert_array_equal(m.permute(0, 1).data, m.data)  # a permutation, not a swap
    with pytest.raises(ValueError, match="swapaxes: axis 3 is out of range for a tensor with 3"):
        t.transpose(0, 3)


def test_conversions_and_pytorch_names() -> None:
    t = tc.tensor(np.array([[1.5, -2.0, 3.0]]), requires_grad=True)
    assert float(t.sum()) == 2.5 and int(t[0, 2]) == 3 and t.dim() == 2 and t.numel() == 3
    assert t.view(3).shape == (3,) and t.view(-1, 1).shape == (3, 1)
    assert t.to(np.float32).dtype == np.float32 and t.to("cpu") is t and t.to(t) is t
    assert t.argmax(1).tolist() == [2] and t.argmin(axis=1).tolist() == [1]
    c = t.clone()
    assert c is not t and c.grad_fn.name == "clone" and not np.shares_memory(c.data, t.data)
    (c * 2).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.full((1, 3), 2.0))
    assert [0, 1, 2][tc.tensor(np.int64(1))] == 1
    with pytest.raises(TypeError, match=r"float\(\): only a one-element tensor .* shape \(1, 3\)"):
        float(t)
    with pytest.raises(TypeError, match="to\\(\\): expected a dtype"):
        t.to(object())


def test_dim_is_accepted_wherever_axis_is() -> None:
    a = arr(2, 3, 4)
    t, tt = tc.tensor(a), torch.tensor(a)
    np.testing.assert_allclose(t.sum(dim=1).data, tt.sum(dim=1).numpy())
    np.testing.assert_allclose(tc.mean(t, dim=2).data, torch.mean(tt, dim=2).numpy())
    np.testing.assert_allclose(t.softmax(dim=0).data, torch.softmax(tt, dim=0).numpy())
    np.testing.assert_allclose(F.softmax(t, dim=1).data, torch.softmax(tt, dim=1).numpy())
    np.testing.assert_allclose(
        tc.log_softmax(t, dim=-1).data, torch.log_softmax(tt, dim=-1).numpy()
    )
    assert t.argmax(dim=2).tolist() == tt.argmax(dim=2).tolist()
    assert tc.concatenate([t, t], dim=1).shape == (2, 6, 4)
    assert t.flatten(start_dim=1).shape == (2, 12)
    assert t.max(dim=0).shape == (3, 4) and t.unsqueeze(dim=0).shape == (1, 2, 3, 4)
    with pytest.raises(TypeError) as info:
        t.sum(axis=1, dim=1)
    assert str(info.value) == (
        "sum(): got both axis= and dim= (NumPy's and PyTorch's names of the same argument); "
        "pass one of them"
    )
    with pytest.raises(TypeError, match="mean\\(\\): got both axis= and dim="):
        tc.mean(t, axis=0, dim=0)


def test_reading_grad_of_a_non_leaf_warns_like_torch() -> None:
    w = tc.tensor(arr(3), requires_grad=True)
    h = w * 2
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf"):
        assert h.grad is None
    h.retain_grad()
    h.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(h.grad.data, np.ones(3))  # retained: no warning
        assert w.grad is not None  # a leaf: no warning


# -- detect_anomaly ----------------------------------------------------------------------------------
def _cnn(x: tc.Tensor, w1: tc.Tensor, w2: tc.Tensor) -> tc.Tensor:
    h = tc.relu(tc.conv2d(x, w1, 1, "SAME"))
    h = tc.max_pool2d(h, 2, 2, "VALID")
    return tc.conv2d(h, w2, 1, "SAME")


def _cnn_inputs() -> tuple[tc.Tensor, tc.Tensor, tc.Tensor]:
    x = tc.tensor(arr(2, 6, 6, 1))
    w1 = tc.tensor(arr(3, 3, 1, 4), requires_grad=True)
    w2 = tc.tensor(arr(3, 3, 4, 2), requires_grad=True)
    return x, w1, w2


def test_detect_anomaly_names_log_of_zero_and_its_line() -> None:
    x, w1, w2 = _cnn_inputs()
    with tc.detect_anomaly(), np.errstate(all="ignore"):
        h = tc.relu(_cnn(x, w1, w2))  # relu makes exact zeros
        loss = tc.log(h).sum()  # LOG-LINE
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    msg = str(info.value)
    assert msg.startswith("log: backward produced inf in the gradient for its input 'x' (shape ")
    assert "test_pytorch_habits.py" in msg and "loss = tc.log(h).sum()  # LOG-LINE" in msg
    assert w1.grad is None  # raised before anything reached the leaves


def test_detect_anomaly_names_sqrt_of_negative() -> None:
    x, w1, w2 = _cnn_inputs()
    with tc.detect_anomaly(), np.errstate(all="ignore"):
        y = _cnn(x, w1, w2)
        loss = y.sqrt().mean()  # SQRT-LINE
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    msg = str(info.value)
    assert msg.startswith("sqrt: backward produced nan in the gradient for its input 'x' (shape ")
    assert "loss = y.sqrt().mean()  # SQRT-LINE" in msg


def test_without_detect_anomaly_nothing_is_captured_or_checked() -> None:
    x, w1, w2 = _cnn_inputs()
    with np.errstate(all="ignore"):
        loss = tc.log(tc.relu(_cnn(x, w1, w2))).sum()
        assert "_where" not in loss.grad_fn.__dict__
        loss.backward()
    assert not np.isfinite(w1.grad.data).all()
    assert not tc.is_anomaly_enabled()


def test_detect_anomaly_check_inf_false_only_stops_nan() -> None:
    x, w1, w2 = _cnn_inputs()
    with tc.detect_anomaly(check_inf=False), np.errstate(all="ignore"):
        assert tc.is_anomaly_enabled()
        loss = tc.log(tc.relu(_cnn(x, w1, w2))).sum()
        with pytest.raises(RuntimeError, match="backward produced nan"):
            loss.backward()  # inf * 0 downstream turns into nan in a later node


def test_copy_fill_clamp_on_non_leaves_with_grad_match_torch() -> None:
    a = arr(3)
    w, wt = both(a)
    s, st = w * 2, wt * 2
    t, tt = w * 1, wt * 1
    t.copy_(s)  # t must not take over s's node
    tt.copy_(st)
    assert s.grad_fn.output is s and t.grad_fn.name == "clone"
    u, ut = w * 3, wt * 3
    u.clamp_(-1.0, 1.0)
    ut.clamp_(-1.0, 1.0)
    v, vt = w * 4, wt * 4
    v.fill_(2.0)
    vt.fill_(2.0)
    ((t * s).sum() + (u * u).sum() + (v * w).sum()).backward()
    ((tt * st).sum() + (ut * ut).sum() + (vt * wt).sum()).backward()
    np.testing.assert_allclose(w.grad.data, np_of(wt.grad), rtol=1e-12)

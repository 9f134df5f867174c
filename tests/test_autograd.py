"""Tests for the reverse pass: backward(), grad(), accumulation, graph release, no_grad, hooks,
higher-order gradients, memory freeing, and very deep graphs."""

from __future__ import annotations

import gc
import time
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_conv as tc
from tinygrad_conv import Function, Tensor


def leaf(values, dtype=np.float64) -> Tensor:
    return tc.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# -- basic backward --------------------------------------------------------------------------------


def test_backward_scalar_output() -> None:
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0, 6.0])
    assert isinstance(x.grad, Tensor)
    assert not x.grad.requires_grad
    assert x.grad.dtype == np.float64


def test_backward_one_element_non_scalar_output() -> None:
    x = leaf([[2.0]])
    (x * 3).backward()
    np.testing.assert_allclose(x.grad.data, [[3.0]])


def test_backward_non_scalar_without_gradient_is_clear_error() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"one-element.*\(2,\)"):
        (x * 2).backward()


def test_backward_with_explicit_gradient() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    g = np.array([[1.0, -1.0], [0.5, 2.0]])
    (x * x).backward(g)
    np.testing.assert_allclose(x.grad.data, 2 * x.data * g)
    x.grad = None
    (x * x).backward(tc.tensor(g))
    np.testing.assert_allclose(x.grad.data, 2 * x.data * g)


def test_backward_gradient_of_wrong_shape_names_both_shapes() -> None:
    x = leaf(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(ValueError, match=r"backward.*\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"backward.*\(6,\).*\(2, 3\)"):
        y.backward(tc.tensor(np.ones(6)))


def test_grad_outputs_of_wrong_shape() -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        tc.grad(x * 2, x, grad_outputs=tc.tensor(np.ones(3)))


def test_backward_on_tensor_without_grad_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        tc.tensor([1.0]).backward()
    x = leaf([1.0])
    with tc.no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_backward_on_a_leaf() -> None:
    x = leaf(5.0)
    x.backward()
    assert x.grad.item() == 1.0


def test_gradient_dtype_follows_leaf_float32() -> None:
    x = leaf([1.0, 2.0], dtype=np.float32)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float32
    x.grad = None
    (x * x).backward(np.ones(2))  # a float64 seed is cast to the output's dtype
    assert x.grad.dtype == np.float32


def test_leaves_not_requiring_grad_get_no_grad() -> None:
    x = leaf([1.0, 2.0])
    c = tc.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])


def test_intermediate_tensors_get_no_grad_by_default() -> None:
    x = leaf([1.0, 2.0])
    h = x * 2
    (h * h).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor is being accessed"):  # as PyTorch
        assert h.grad is None
    assert not h.is_leaf and h.grad_fn is not None


# -- accumulation, diamonds, reuse -----------------------------------------------------------------


def test_gradients_accumulate_across_backward_calls() -> None:
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 11.0])


def test_accumulated_grad_does_not_alias_upstream_arrays() -> None:
    x = leaf([1.0, 2.0])
    g = np.array([1.0, 1.0])
    (x + 0).backward(g)
    x.grad.data[0] = 100.0
    assert g[0] == 1.0  # the seed array is untouched
    y = leaf([1.0, 2.0])
    z = leaf([1.0, 2.0])
    (y + z).sum().backward()  # add's backward hands the same tensor to both inputs
    y.grad.data[0] = 50.0
    assert z.grad.data[0] == 1.0


def test_diamond_gets_exactly_one_accumulated_gradient() -> None:
    a = leaf(3.0)
    b = a + a
    c = b * b
    c.backward()
    # c = 4 a^2 -> 8a
    assert a.grad.item() == pytest.approx(24.0)


def test_reused_non_leaf_node() -> None:
    x = leaf([1.0, -2.0])
    h = x.exp()  # used three times
    y = (h * h + h * 3 + h).sum()
    y.backward()
    e = np.exp(x.data)
    np.testing.assert_allclose(x.grad.data, (2 * e + 4) * e)


def test_deep_diamond_ladder() -> None:
    # each rung doubles the number of paths: 2^30 paths, still linear-time traversal
    x = leaf(1.0)
    y = x
    for _ in range(30):
        y = y * 0.5 + y * 0.5
    t0 = time.perf_counter()
    y.backward()
    assert time.perf_counter() - t0 < 2.0
    assert x.grad.item() == pytest.approx(1.0)


def test_multiple_uses_of_leaf_in_one_op() -> None:
    x = leaf([2.0, 3.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)


def test_backward_twice_on_different_outputs_with_shared_leaf() -> None:
    x = leaf([1.0, 2.0])
    y1 = (x * 2).sum()
    y2 = (x * x).sum()
    y1.backward()
    y2.backward()
    np.testing.assert_allclose(x.grad.data, 2 + 2 * x.data)


# -- graph release ---------------------------------------------------------------------------------


def test_second_backward_through_released_graph_raises() -> None:
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_second_backward_through_partially_released_graph_raises() -> None:
    x = leaf([1.0, 2.0])
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2).sum().backward()


def test_retain_graph_allows_second_backward_and_accumulates() -> None:
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    e = np.exp(x.data)
    np.testing.assert_allclose(x.grad.data, 3 * (e * x.data + e))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_grad_releases_graph_unless_retained() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    tc.grad(y, x, retain_graph=True)
    (g,) = tc.grad(y, x)
    np.testing.assert_allclose(g.data, 2 * x.data)
    with pytest.raises(RuntimeError, match="second time"):
        tc.grad(y, x)


def test_released_node_reports_state_and_saved_tensors_raise() -> None:
    x = leaf([1.0])
    y = x * 2
    node = y.grad_fn
    assert "live" in repr(node)
    y.backward()
    assert node.released and "released" in repr(node)
    assert node.inputs is None
    with pytest.raises(RuntimeError, match="retain_graph"):
        _ = node.saved_tensors


def test_intermediates_are_freed_after_backward_while_output_alive() -> None:
    x = leaf(np.linspace(-1, 1, 1000))
    h1 = x * 2.0
    h2 = h1.exp()
    h3 = h2 * h1
    refs = [weakref.ref(t) for t in (h1, h2, h3)]
    arefs = [weakref.ref(t.data) for t in (h1, h2, h3)]
    y = h3.sum()
    del h1, h2, h3
    gc.collect()
    # before backward the graph keeps the activations alive (they are needed)
    assert all(r() is not None for r in refs)
    assert all(r() is not None for r in arefs)
    y.backward()
    gc.collect()
    assert y.data is not None  # the output itself is still referenced...
    assert all(r() is None for r in refs), "intermediate Tensors survived backward"
    assert all(r() is None for r in arefs), "intermediate arrays survived backward"
    assert x.grad is not None


def test_intermediates_are_freed_by_refcounting_alone() -> None:
    # no reference cycles (node -> output is a weak reference): memory returns without gc
    gc.disable()
    try:
        x = leaf(np.ones(100))
        h = x.exp()
        r = weakref.ref(h)
        y = (h * h).sum()
        del h
        y.backward()
        assert r() is None
        z = x * 2
        rz = weakref.ref(z)
        del z  # an unused graph is freed immediately too
        assert rz() is None
    finally:
        gc.enable()


def test_retain_graph_keeps_intermediates_alive() -> None:
    x = leaf([1.0, 2.0])
    h = x.exp()
    r = weakref.ref(h)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    gc.collect()
    assert r() is not None
    y.backward()
    gc.collect()
    assert r() is None


def test_saved_values_freed_after_backward() -> None:
    class Square(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            ctx.scratch = a * 1.0
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * tc.tensor(2 * a)

    x = leaf([1.0, 2.0, 3.0])
    y = Square.apply(x)
    node = y.grad_fn
    scratch = weakref.ref(node.scratch)
    y.sum().backward()
    gc.collect()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0, 6.0])
    assert scratch() is None
    assert not hasattr(node, "scratch")


def test_graph_nodes_hold_output_weakly() -> None:
    x = leaf([1.0])
    y = x * 2
    node = y.grad_fn
    assert node.output is y
    del y
    gc.collect()
    assert node.output is None


# -- no_grad ---------------------------------------------------------------------------------------


def test_no_grad_context_records_nothing() -> None:
    x = leaf([1.0, 2.0])
    with tc.no_grad():
        assert not tc.is_grad_enabled()
        y = x * 2 + x.exp()
        z = y.sum()
    assert tc.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert not z.requires_grad
    np.testing.assert_allclose(y.data, 2 * x.data + np.exp(x.data))


def test_no_grad_as_decorator() -> None:
    @tc.no_grad()
    def f(t):
        assert not tc.is_grad_enabled()
        return t * 2

    x = leaf([1.0])
    y = f(x)
    assert not y.requires_grad and y.grad_fn is None
    assert tc.is_grad_enabled()
    assert f.__name__ == "f"


def test_no_grad_restores_mode_on_exception() -> None:
    with pytest.raises(ZeroDivisionError):
        with tc.no_grad():
            1 / 0  # noqa: B018
    assert tc.is_grad_enabled()


def test_nested_enable_grad_and_set_grad_enabled() -> None:
    x = leaf([1.0])
    with tc.no_grad():
        with tc.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
        with tc.set_grad_enabled(True):
            assert (x * 2).requires_grad
    with tc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tc.is_grad_enabled()


def test_no_grad_output_can_be_used_as_constant() -> None:
    x = leaf([1.0, 2.0])
    with tc.no_grad():
        c = x * 10
    (c * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [10.0, 20.0])


# -- tc.grad ---------------------------------------------------------------------------------------


def test_grad_does_not_touch_dot_grad() -> None:
    x = leaf([1.0, 2.0])
    (g,) = tc.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.data, [2.0, 4.0])
    assert x.grad is None
    assert not g.requires_grad


def test_grad_multiple_inputs_and_outputs() -> None:
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0])
    y1 = (x * w).sum()
    y2 = (x * x).sum()
    gx, gw = tc.grad([y1, y2], [x, w])
    np.testing.assert_allclose(gx.data, w.data + 2 * x.data)
    np.testing.assert_allclose(gw.data, x.data)


def test_grad_with_grad_outputs() -> None:
    x = leaf([1.0, 2.0, 3.0])
    v = np.array([1.0, -2.0, 0.5])
    (g,) = tc.grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(g.data, 2 * x.data * v)
    (g,) = tc.grad([x * 3], [x], grad_outputs=[tc.tensor(v)])
    np.testing.assert_allclose(g.data, 3 * v)


def test_grad_single_tensor_input_returns_tuple() -> None:
    x = leaf([1.0])
    out = tc.grad((x * 2).sum(), x)
    assert isinstance(out, tuple) and len(out) == 1


def test_grad_wrt_non_leaf() -> None:
    x = leaf([1.0, 2.0])
    h = x * 3
    y = (h * h).sum()
    gh, gx = tc.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, 2 * h.data)
    np.testing.assert_allclose(gx.data, 18 * x.data)


def test_grad_allow_unused() -> None:
    x = leaf([1.0])
    w = leaf([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"input 1.*allow_unused"):
        tc.grad(y, [x, w], retain_graph=True)
    gx, gw = tc.grad(y, [x, w], allow_unused=True)
    assert gw is None
    np.testing.assert_allclose(gx.data, [2.0])


def test_grad_inputs_must_require_grad() -> None:
    x = leaf([1.0])
    c = tc.tensor([1.0])
    with pytest.raises(RuntimeError, match="requires_grad"):
        tc.grad((x * c).sum(), [c])
    with pytest.raises(RuntimeError, match="does not require grad"):
        tc.grad(c * 2, [x])


# -- higher order ----------------------------------------------------------------------------------


def test_second_derivative_of_cube_is_6x() -> None:
    x = leaf([1.0, -2.0, 0.5, 3.0])
    (g1,) = tc.grad((x**3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g1.data, 3 * x.data**2)
    assert g1.requires_grad
    (g2,) = tc.grad(g1.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.data, 6 * x.data)
    (g3,) = tc.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, 6.0)


def test_second_derivative_scalar_and_float32() -> None:
    x = leaf(1.5, dtype=np.float32)
    (g1,) = tc.grad(x * x * x, x, create_graph=True)
    (g2,) = tc.grad(g1, x)
    assert g2.dtype == np.float32
    assert g2.item() == pytest.approx(9.0)


def test_backward_create_graph_gives_differentiable_grad() -> None:
    x = leaf([1.0, 2.0])
    (x**3).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_hessian_vector_product() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    A = a + a.T
    x = leaf(rng.standard_normal(3))
    v = rng.standard_normal(3)
    f = (x @ (tc.tensor(A) @ x)) * 0.5 + (x**3).sum()  # Hessian = A + diag(6x)
    (g,) = tc.grad(f, x, create_graph=True)
    (hv,) = tc.grad(g, x, grad_outputs=v)
    np.testing.assert_allclose(hv.data, A @ v + 6 * x.data * v, rtol=1e-12)


def test_gradient_penalty_style_double_backward() -> None:
    w = leaf([0.5, -1.0])
    x = leaf([2.0, 3.0])
    y = (w * x).tanh().sum()
    (gx,) = tc.grad(y, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    # analytic: gx = w (1 - t^2), t = tanh(w x)
    t = np.tanh(w.data * x.data)
    dpen_dw = (
        2 * w.data * (1 - t**2) ** 2 + 2 * w.data**2 * (1 - t**2) * (-2 * t) * (1 - t**2) * x.data
    )
    np.testing.assert_allclose(w.grad.data, dpen_dw, rtol=1e-10)


def test_create_graph_false_grads_are_constants() -> None:
    x = leaf([1.0, 2.0])
    (g,) = tc.grad((x**3).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


# -- retain_grad and hooks -------------------------------------------------------------------------


def test_retain_grad_on_non_leaf() -> None:
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * h.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data)


def test_retain_grad_accumulates() -> None:
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(h.grad.data, 4 * h.data)


def test_retain_grad_on_leaf_is_harmless() -> None:
    x = leaf([1.0])
    x.retain_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0])


def test_hook_sees_and_replaces_gradient_of_non_leaf() -> None:
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []

    def hook(g):
        seen.append(g.data.copy())
        return g * 10

    h.register_hook(hook)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(x.grad.data, 3 * 10 * 2 * h.data)


def test_hook_on_leaf_and_removal() -> None:
    x = leaf([1.0, 2.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(g.data.copy()))  # returns None: no change
    (x * 2).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])
    handle.remove()
    handle.remove()  # idempotent
    (x * 2).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.data, [4.0, 4.0])


def test_hook_replacing_leaf_gradient() -> None:
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 0)
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0])


def test_hook_on_tensor_without_grad_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        tc.tensor([1.0]).register_hook(lambda g: g)


def test_hook_returning_wrong_shape_raises() -> None:
    x = leaf([1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: tc.tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"hook.*\(2,\)"):
        h.sum().backward()


def test_hook_called_once_for_diamond() -> None:
    x = leaf([1.0])
    h = x * 2
    calls = []
    h.register_hook(lambda g: calls.append(g.item()))
    (h + h * h).sum().backward()
    assert calls == [1 + 2 * 2.0]


# -- custom Functions and engine checks ------------------------------------------------------------


def test_custom_function_and_needs_input_grad() -> None:
    seen = {}

    class ScaledAdd(Function):
        @staticmethod
        def forward(ctx, a, b, *, scale):
            return scale * (a + b)

        @staticmethod
        def backward(ctx, g):
            seen["needs"] = ctx.needs_input_grad
            s = ctx.attrs["scale"]
            return g * s, (g * s if ctx.needs_input_grad[1] else None)

    x = leaf([1.0, 2.0])
    c = tc.tensor([5.0, 5.0])
    y = ScaledAdd.apply(x, c, scale=3.0)
    np.testing.assert_allclose(y.data, [18.0, 21.0])
    assert y.grad_fn.name == "scaledadd"
    y.sum().backward()
    assert seen["needs"] == (True, False)
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_custom_function_constants_from_arrays() -> None:
    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.inputs
            return g * b, g * a

    x = leaf([2.0])
    y = Mul.apply(x, np.array([4.0]))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [4.0])


def test_custom_function_wrong_number_of_gradients() -> None:
    class Bad(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    x = leaf([1.0])
    with pytest.raises(RuntimeError, match=r"bad.backward returned 1 gradients for 2 inputs"):
        Bad.apply(x, x).sum().backward()


def test_custom_function_wrong_gradient_shape() -> None:
    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return tc.tensor(np.ones(5))

    x = leaf(np.ones(3))
    with pytest.raises(RuntimeError, match=r"badshape.backward.*\(5,\).*\(3,\)"):
        BadShape.apply(x).sum().backward()


def test_custom_function_gradient_that_would_broadcast_up_is_rejected() -> None:
    class TooSmall(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return g  # shape () for an input of shape (3,): forgot to expand

    x = leaf(np.ones(3))
    with pytest.raises(RuntimeError, match=r"toosmall.backward.*\(\).*\(3,\)"):
        TooSmall.apply(x).backward()


def test_no_node_recorded_when_no_input_requires_grad() -> None:
    y = tc.tensor([1.0]) * 2
    assert y.grad_fn is None and not y.requires_grad


def test_backward_calls_are_recorded() -> None:
    x = leaf(np.ones((2, 3)))
    w = leaf(np.ones((3, 4)))
    y = x @ w
    node = y.grad_fn
    y.sum().backward()
    # d x = g @ w^T and d w = x^T @ g: one matmul each, reading the transposed operand in place
    rec = node.backward_record
    up, a, b = tc.Source("upstream"), tc.Source("input", 0), tc.Source("input", 1)
    assert [(c.op, c.shape, c.args) for c in rec.calls] == [
        ("matmul_nt", (2, 3), (up, b)),
        ("matmul_tn", (3, 4), (a, up)),
    ]
    assert rec.passes == 1
    assert [ig.source for ig in rec.input_grads] == [tc.Source("call", 0), tc.Source("call", 1)]


# -- very deep graphs ------------------------------------------------------------------------------


def test_chain_of_100000_ops_backprops_without_recursion_error() -> None:
    t0 = time.process_time()  # CPU time: robust to other processes sharing the machine
    x = leaf(0.5)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 1e-6
    y.backward()
    assert x.grad.item() == pytest.approx(1.0)
    del y
    gc.collect()
    assert time.process_time() - t0 < 15.0


def test_deep_chain_can_be_dropped_without_backward() -> None:
    x = leaf(0.5)
    y = x
    for _ in range(50_000):
        y = y + 1.0
    del y  # deallocating a 50,000-deep graph must not overflow the C stack
    gc.collect()
    assert x.grad is None


def test_deep_chain_higher_order() -> None:
    x = leaf(1.1)
    y = x
    for _ in range(2000):
        y = y * 1.0
    y = y * y * y
    (g,) = tc.grad(y, x, create_graph=True)
    (g2,) = tc.grad(g, x)
    assert g2.item() == pytest.approx(6 * 1.1)


# -- robustness ------------------------------------------------------------------------------------


def test_exception_in_backward_restores_engine_state() -> None:
    from tinygrad_conv import function as function_module

    class Boom(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, g):
            raise ArithmeticError("boom")

    x = leaf([1.0])
    with pytest.raises(ArithmeticError, match="boom"):
        Boom.apply(x).sum().backward(create_graph=True)
    assert tc.is_grad_enabled()
    assert function_module._pass_log is None
    y = Boom.apply(x).sum()
    with tc.no_grad():
        with pytest.raises(ArithmeticError):
            y.backward(create_graph=True)
        assert not tc.is_grad_enabled()  # the mode of the enclosing block, not the pass's
    assert tc.is_grad_enabled()


def test_backward_inside_no_grad() -> None:
    x = leaf([1.0, 2.0])
    y = (x**3).sum()
    with tc.no_grad():
        y.backward(create_graph=True)  # create_graph records the backward pass regardless
        assert not tc.is_grad_enabled()
    assert x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)
    x2 = leaf([1.0, 2.0])
    y2 = (x2**3).sum()
    with tc.no_grad():
        y2.backward()
    assert not x2.grad.requires_grad


def test_grad_of_grad_with_respect_to_two_inputs() -> None:
    x = leaf(2.0)
    y = leaf(3.0)
    f = x * x * y  # d2f/dxdy = 2x
    (gx,) = tc.grad(f, x, create_graph=True)
    (gxy,) = tc.grad(gx, y)
    assert gxy.item() == pytest.approx(4.0)


# -- random graphs (hypothesis) --------------------------------------------------------------------

# smooth ops on any real input (values stay moderate), so gradcheck and gradgradcheck both apply
_UNARY_STEPS = [
    lambda t: t.tanh(),
    lambda t: t.sigmoid(),
    lambda t: t * t,
    lambda t: (t * 0.5).exp(),
    lambda t: (t * t + 1.0).log(),
    lambda t: (t * t + 0.5).sqrt(),
    lambda t: t.softmax(-1),
    lambda t: t - t.logsumexp(-1, keepdims=True),
    lambda t: t - t.mean(0, keepdims=True),
    lambda t: t.T.reshape(t.shape) * 0.5,
    lambda t: t[::-1] + t,
    lambda t: tc.concatenate([t[1:], t[:1]], axis=0),
]
_BINARY_STEPS = [
    lambda a, b: a + b,
    lambda a, b: a - b * 0.3,
    lambda a, b: a * b,
    lambda a, b: a / (b * b + 1.0),
    lambda a, b: (a @ b.T) @ b * 0.1,
    lambda a, b: tc.stack([a, b]).sum(0),
]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    program=st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 11),
            st.integers(0, 100),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_random_graphs_with_reuse(program, seed) -> None:
    rng = np.random.default_rng(seed)
    x, w = leaf(rng.standard_normal((3, 3))), leaf(rng.standard_normal((3, 3)))

    def fn(a, b):
        values = [a, b]  # every step may reuse any earlier value: diamonds and fan-out
        for binary, op, i, j in program:
            u, v = values[i % len(values)], values[j % len(values)]
            if binary:
                values.append(_BINARY_STEPS[op % len(_BINARY_STEPS)](u, v))
            else:
                values.append(_UNARY_STEPS[op](u))
        return values[-1] + values[len(values) // 2] * 0.5

    assert tc.gradcheck(fn, [x, w], atol=1e-5, rtol=1e-3)
    assert tc.gradgradcheck(fn, [x, w], atol=1e-4, rtol=1e-3)

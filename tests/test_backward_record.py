"""The engine's backward record: every source it names holds the value the engine delivered, and
every op's declared rule names the ops a real backward calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from user_ops import NumpySquare

import tinygrad_conv as tc
import tinygrad_conv.nn.functional as F
from tinygrad_conv.function import Function
from tinygrad_conv.record import expressions, rule_matches

RNG = np.random.default_rng(7)


def leaf(shape: tuple[int, ...], low: float = -2.0, high: float = 2.0, name: str = "") -> tc.Tensor:
    """A float64 leaf that requires grad, away from 0 and ties (values in +-[0.5, 2])."""
    v = RNG.uniform(0.5, max(high, 0.6), size=shape) * RNG.choice([-1.0, 1.0], size=shape)
    if low >= 0:
        v = np.abs(v)
    return tc.tensor(v, requires_grad=True, name=name or None)


def pos(shape: tuple[int, ...]) -> tc.Tensor:
    return leaf(shape, low=0.0)


def _bn_train(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
    return F.batch_norm(x, np.zeros(3), np.ones(3), w, b, training=True)


def _bn_eval(x: tc.Tensor, w: tc.Tensor, b: tc.Tensor) -> tc.Tensor:
    return F.batch_norm(x, np.full(3, 0.1), np.full(3, 2.0), w, b, training=False)


_LABELS = np.array([0, 2, 1, 2])
_GEOM = {"strides": 2, "padding": "SAME"}

#: name -> (function of the inputs, input makers). Covers every op of tc and nn.functional.
CASES: dict[str, tuple[Callable[..., tc.Tensor], list[Callable[[], tc.Tensor]]]] = {
    "add": (lambda a, b: a + b, [lambda: leaf((2, 3)), lambda: leaf((3,))]),
    "sub": (lambda a, b: a - b, [lambda: leaf((2, 3)), lambda: leaf((2, 1))]),
    "mul": (lambda a, b: a * b, [lambda: leaf((2, 3)), lambda: leaf((2, 3))]),
    "mul_self": (lambda a: a * a, [lambda: leaf((3,))]),
    "div": (lambda a, b: a / b, [lambda: leaf((2, 3)), lambda: leaf((3,))]),
    "neg": (lambda a: -a, [lambda: leaf((4,))]),
    "pow": (lambda a, b: a**b, [lambda: pos((2, 3)), lambda: leaf((3,))]),
    "pow_scalar": (lambda a: a**3, [lambda: leaf((2, 2))]),
    "pow_zero_exponent": (
        lambda a, b: a**b,
        [lambda: leaf((3,)), lambda: tc.tensor(np.array([0.0, 1.0, 2.0]), requires_grad=True)],
    ),
    "exp": (tc.exp, [lambda: leaf((3,))]),
    "log": (tc.log, [lambda: pos((3,))]),
    "sqrt": (tc.sqrt, [lambda: pos((3,))]),
    "abs": (tc.abs, [lambda: leaf((5,))]),
    "maximum": (tc.maximum, [lambda: leaf((2, 3)), lambda: leaf((3,))]),
    "minimum": (tc.minimum, [lambda: leaf((2, 3)), lambda: leaf((2, 3))]),
    "where": (
        lambda a, b: tc.where(np.array([True, False, True]), a, b),
        [lambda: leaf((2, 3)), lambda: leaf((3,))],
    ),
    "clip": (lambda a: tc.clip(a, -1.0, 1.0), [lambda: leaf((6,))]),
    "relu": (tc.relu, [lambda: leaf((6,))]),
    "leaky_relu": (lambda a: tc.leaky_relu(a, 0.1), [lambda: leaf((6,))]),
    "sigmoid": (tc.sigmoid, [lambda: leaf((4,))]),
    "tanh": (tc.tanh, [lambda: leaf((4,))]),
    "cast": (lambda a: tc.cast(a, np.float32), [lambda: leaf((3,))]),
    "reshape": (lambda a: a.reshape(3, 2), [lambda: leaf((2, 3))]),
    "transpose": (lambda a: tc.transpose(a, (1, 0)), [lambda: leaf((2, 3))]),
    "permute": (lambda a: tc.permute(a, (2, 0, 1)), [lambda: leaf((2, 3, 4))]),
    "swapaxes": (lambda a: tc.swapaxes(a, 0, 2), [lambda: leaf((2, 3, 4))]),
    "broadcast_to": (lambda a: tc.broadcast_to(a, (2, 3)), [lambda: leaf((3,))]),
    "sum_to_shape": (lambda a: tc.sum_to_shape(a, (3,)), [lambda: leaf((2, 3))]),
    "getitem": (lambda a: a[1:, ::2], [lambda: leaf((3, 4))]),
    "getitem_fancy": (lambda a: a[np.array([0, 2, 0])], [lambda: leaf((3, 2))]),
    "pad": (lambda a: tc.pad(a, ((1, 0), (0, 2))), [lambda: leaf((2, 2))]),
    "concatenate": (
        lambda a, b: tc.concatenate([a, b], 1),
        [lambda: leaf((2, 2)), lambda: leaf((2, 3))],
    ),
    "stack": (lambda a, b: tc.stack([a, b], 0), [lambda: leaf((2, 2)), lambda: leaf((2, 2))]),
    "squeeze": (lambda a: tc.squeeze(a, 1), [lambda: leaf((2, 1, 3))]),
    "unsqueeze": (lambda a: tc.unsqueeze(a, 0), [lambda: leaf((2, 3))]),
    "flatten": (lambda a: tc.flatten(a, 1), [lambda: leaf((2, 3, 2))]),
    "sum": (lambda a: tc.sum(a, 1), [lambda: leaf((2, 3))]),
    "mean": (lambda a: tc.mean(a, 0), [lambda: leaf((2, 3))]),
    "max": (lambda a: tc.max(a, 1), [lambda: leaf((2, 3))]),
    "min": (lambda a: tc.min(a), [lambda: leaf((2, 3))]),
    "logsumexp": (lambda a: tc.logsumexp(a, 1), [lambda: leaf((2, 3))]),
    "var": (lambda a: tc.var(a, 0), [lambda: leaf((3, 2))]),
    "matmul": (tc.matmul, [lambda: leaf((2, 3)), lambda: leaf((3, 4))]),
    "matmul_batched_vector": (tc.matmul, [lambda: leaf((2, 2, 3)), lambda: leaf((3,))]),
    "softmax": (lambda a: tc.softmax(a, 1), [lambda: leaf((2, 3))]),
    "log_softmax": (lambda a: tc.log_softmax(a, 1), [lambda: leaf((2, 3))]),
    "cross_entropy": (lambda z: tc.cross_entropy(z, _LABELS), [lambda: leaf((4, 3))]),
    "cross_entropy_none": (lambda z: tc.cross_entropy(z, _LABELS, "none"), [lambda: leaf((4, 3))]),
    "mse_loss": (lambda a, b: tc.mse_loss(a, b), [lambda: leaf((2, 3)), lambda: leaf((2, 3))]),
    "bce_with_logits": (
        lambda a, b: tc.binary_cross_entropy_with_logits(a, b),
        [lambda: leaf((4,)), lambda: pos((4,))],
    ),
    "conv2d": (
        lambda x, w: tc.conv2d(x, w, **_GEOM),
        [lambda: leaf((1, 5, 5, 2)), lambda: leaf((3, 3, 2, 3))],
    ),
    "conv2d_backprop_input": (
        lambda w, dy: tc.conv2d_backprop_input(np.array([1, 5, 5, 2]), w, dy, **_GEOM),
        [lambda: leaf((3, 3, 2, 3)), lambda: leaf((1, 3, 3, 3))],
    ),
    "conv2d_backprop_filter": (
        lambda x, dy: tc.conv2d_backprop_filter(x, np.array([3, 3, 2, 3]), dy, **_GEOM),
        [lambda: leaf((1, 5, 5, 2)), lambda: leaf((1, 3, 3, 3))],
    ),
    "conv2d_transpose": (
        lambda y, w: tc.conv2d_transpose(y, w, (1, 5, 5, 2), **_GEOM),
        [lambda: leaf((1, 3, 3, 3)), lambda: leaf((3, 3, 2, 3))],
    ),
    "max_pool2d": (lambda x: tc.max_pool2d(x, 2, 2, "VALID"), [lambda: leaf((1, 4, 4, 2))]),
    "avg_pool2d": (lambda x: tc.avg_pool2d(x, 3, 2, "SAME"), [lambda: leaf((1, 5, 5, 2))]),
    "linear": (
        lambda x, w, b: F.linear(x, w, b),
        [lambda: leaf((2, 3)), lambda: leaf((3, 4)), lambda: leaf((4,))],
    ),
    "dropout": (lambda x: F.dropout(x, 0.5, training=True, generator=0), [lambda: leaf((8,))]),
    "batch_norm_train": (_bn_train, [lambda: leaf((4, 3)), lambda: leaf((3,)), lambda: leaf((3,))]),
    "batch_norm_eval": (_bn_eval, [lambda: leaf((4, 3)), lambda: leaf((3,)), lambda: leaf((3,))]),
    "numpy_function": (lambda a: NumpySquare.apply(a), [lambda: leaf((3,))]),
}


def _run_case(name: str) -> tuple[list[tc.Tensor], tc.Tensor, Any]:
    fn, makers = CASES[name]
    inputs = [m() for m in makers]
    out = fn(*inputs)
    upstream = RNG.standard_normal(out.shape).astype(out.dtype)
    with tc.record_backward(values=True) as trace:
        out.backward(upstream, retain_graph=True)  # retained: inputs stay readable for the checks
    return inputs, out, trace


def _source_value(src: Any, step: Any, inputs_data: list[np.ndarray]) -> np.ndarray | None:
    """The value the record says a gradient came from (None for 'untracked')."""
    if src.kind == "upstream":
        return step.upstream
    if src.kind == "call":
        return step.call_values[src.index]
    if src.kind == "input":
        return inputs_data[src.index]
    if src.kind == "constant":
        return np.asarray(src.value)
    assert src.kind == "untracked", src
    return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_sources_hold_the_delivered_gradients(name: str) -> None:
    inputs, out, trace = _run_case(name)
    assert trace.steps, "the pass recorded no step"
    # every leaf's .grad is the sum of what the steps delivered to it
    delivered: dict[int, np.ndarray] = {}
    kinds = set()
    for step in trace.steps:
        rec = step.record
        assert rec.passes == 1
        assert step.node.backward_record is rec
        assert len(rec.input_grads) == len(step.node.input_edges())
        edges = step.node.input_edges()
        for i, ig in enumerate(rec.input_grads):
            got = step.input_grad_values[i]
            if ig is None:
                assert got is None
                continue
            kinds.add(ig.source.kind)
            assert ig.shape == edges[i].shape == got.shape
            value = _source_value(ig.source, step, [e.tensor.data for e in edges])
            if value is not None:
                if ig.summed_from is not None:
                    assert value.shape == ig.summed_from
                    value = tc.sum_to_shape(tc.tensor(value), ig.shape).data
                np.testing.assert_allclose(value, got, rtol=1e-6, atol=1e-12)
            leaf_t = edges[i].leaf
            if leaf_t is not None:
                delivered[id(leaf_t)] = delivered.get(id(leaf_t), 0) + got
    for t in inputs:
        if t.requires_grad:
            np.testing.assert_allclose(t.grad.data, delivered[id(t)], rtol=1e-6, atol=1e-12)
    if name in ("batch_norm_train", "numpy_function"):
        assert kinds == {"untracked"}  # computed in numpy: the record says so, not "passed through"


@pytest.mark.parametrize("name", sorted(CASES))
def test_declared_rules_name_the_recorded_ops(name: str) -> None:
    _, _, trace = _run_case(name)
    for step in trace.steps:
        node = step.node
        declared = node.declared_vjp()
        if isinstance(node, NumpySquare):
            assert declared is None
            continue
        assert declared is not None, f"{node.name} declares no vjp rule"
        labels = node.input_labels()
        recorded = expressions(step.record, labels, type(node).saved_names)
        names = [*labels, *type(node).saved_names]
        edges = node.input_edges()
        for label, text in recorded.items():
            # one tensor in several input positions (x * x): the record names its first position
            for i, e in enumerate(edges):
                first = next(j for j, f in enumerate(edges) if f.tensor is e.tensor)
                if first != i:
                    declared = {
                        k: _rename(v, labels[i], labels[first]) for k, v in declared.items()
                    }
            assert (
                rule_matches(declared[label], text, names)
                or (name == "pow_zero_exponent" and text.startswith("where(b_is_0, 0, "))
                or (name == "matmul_batched_vector")
            ), (node.name, label, declared[label], text)


def _rename(rule: str, old: str, new: str) -> str:
    import re

    return re.sub(rf"\b{old}\b", new, rule)


def _all_functions() -> list[type[Function]]:
    seen, stack = [], list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    # private bases that only share code with their subclasses are not ops themselves
    return [
        c
        for c in seen
        if c.__module__.startswith("tinygrad_conv.")
        and not (c.__name__.startswith("_") and c.__subclasses__())
    ]


def test_every_op_class_declares_its_rule() -> None:
    missing = [
        c.__name__
        for c in _all_functions()
        if c.vjp is None and c.declared_vjp is Function.declared_vjp
    ]
    assert missing == []


def test_passes_count_retained_backwards() -> None:
    a, b = leaf((3,)), leaf((3,))
    y = (a * b).sum()
    node = y.grad_fn
    y.backward(retain_graph=True)
    assert node.backward_record.passes == 1
    y.backward()
    assert node.backward_record.passes == 2
    np.testing.assert_allclose(a.grad.data, 2 * b.data)


def test_mul_record_names_both_operands() -> None:
    a, b = leaf((2, 3), name="a"), leaf((2, 3), name="b")
    y = a * b
    node = y.grad_fn
    y.sum().backward()
    rec = node.backward_record
    up = tc.Source("upstream")
    assert [(c.op, c.args) for c in rec.calls] == [
        ("mul", (up, tc.Source("input", 1))),
        ("mul", (up, tc.Source("input", 0))),
    ]
    assert expressions(rec, node.input_labels()) == {"a": "mul(g, b)", "b": "mul(g, a)"}


def test_div_records_the_quotient_rule() -> None:
    a, b = leaf((2, 3)), leaf((3,))
    y = a / b
    node = y.grad_fn
    y.sum().backward()
    rec = node.backward_record
    assert expressions(rec, node.input_labels()) == {
        "a": "div(g, b)",
        "b": "div(neg(mul(g, a)), mul(b, b))",
    }
    assert rec.input_grads[1].summed_from == (2, 3)
    assert rec.input_grads[1].shape == (3,)
    assert rec.input_grads[0].summed_from is None


def test_saved_and_constant_sources() -> None:
    x = leaf((4,))
    r = tc.relu(x)
    s = tc.sqrt(tc.abs(x) + 1.0)
    (r.sum() + s.sum()).backward()
    assert expressions(r.grad_fn.backward_record, ("x",), ("mask",)) == {"x": "mul(g, mask)"}
    assert expressions(s.grad_fn.backward_record, ("x",)) == {"x": "div(g, mul(2, out))"}


def test_accumulations_of_a_diamond() -> None:
    a = tc.tensor(1.0, requires_grad=True)
    b = a + a
    c = b + b
    with tc.record_backward(values=True) as trace:
        c.backward()
    assert a.grad.item() == 4.0
    assert [s.node.name for s in trace.steps] == ["add", "add"]
    events = trace.accumulations
    assert [(e.target is b.grad_fn, e.steps, e.count) for e in events[:1]] == [(True, [0, 0], 2)]
    assert events[1].target is a and events[1].steps == [1, 1] and events[1].count == 2
    assert [float(v) for v in events[1].contributions] == [2.0, 2.0]
    assert float(events[1].total) == 4.0
    # each step says where its contributions stand in their target's arrival order
    assert [s.arrivals for s in trace.steps] == [[0, 1], [0, 1]]


def test_scalar_constants_keep_their_value_on_the_edge() -> None:
    x = leaf((3,))
    y = x * 2.5
    y.sum().backward()  # released: the constant's array is gone, its value stays
    edge = y.grad_fn.input_edges()[1]
    assert (edge.value, edge.requires_grad, edge.shape) == (2.5, False, ())
    assert y.grad_fn.input_edges()[0].value is None


def test_trace_without_values_copies_nothing() -> None:
    x = leaf((3,))
    with tc.record_backward() as trace:
        (x * 2).sum().backward()
    assert [s.upstream for s in trace.steps] == [None, None]
    assert [s.upstream_shape for s in trace.steps] == [(), (3,)]


def test_trace_around_grad() -> None:
    x = leaf((3,))
    y = (x * x).sum()
    with tc.record_backward() as trace:
        (gx,) = tc.grad(y, [x])
    assert [s.node.name for s in trace.steps] == ["sum", "mul"]
    np.testing.assert_allclose(gx.data, 2 * x.data)


def test_nested_record_backward_raises() -> None:
    with tc.record_backward():
        with pytest.raises(RuntimeError, match="nested record_backward"):
            with tc.record_backward():
                pass


def test_record_backward_from_another_thread_raises() -> None:
    errors: list[BaseException] = []
    x = leaf((2,))
    y = (x * 3).sum()
    with tc.record_backward():

        def other() -> None:
            try:
                y.backward()
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
    assert len(errors) == 1 and "another thread" in str(errors[0])


def test_backward_returning_wrong_count_or_type_names_the_op() -> None:
    class TwoForOne(Function):
        @staticmethod
        def forward(ctx, a):
            return a + 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    class ReturnsArray(Function):
        @staticmethod
        def forward(ctx, a):
            return a + 1

        @staticmethod
        def backward(ctx, g):
            return g.data

    x = leaf((2,))
    with pytest.raises(
        RuntimeError, match=r"^twoforone.backward returned 2 gradients for 1 inputs"
    ):
        TwoForOne.apply(x).sum().backward()
    with pytest.raises(TypeError, match=r"^returnsarray.backward returned ndarray for input 0"):
        ReturnsArray.apply(x).sum().backward()


def test_structure_survives_release_but_arrays_are_freed() -> None:
    a, b = leaf((2, 3)), leaf((3,))
    y = a * b
    loss = y.sum()
    node = y.grad_fn
    loss.backward()
    assert node.released and node.inputs is None
    edges = node.input_edges()
    assert [e.leaf is t for e, t in zip(edges, (a, b), strict=True)] == [True, True]
    assert [e.shape for e in edges] == [(2, 3), (3,)]
    assert loss.grad_fn.input_edges()[0].grad_fn is node
    assert node.backward_record.calls[0].op == "mul"

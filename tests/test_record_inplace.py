"""The backward record when a backward writes into an array in place (no graph, e.g. ``r += 1``
in a backward run without create_graph): the record and the trace must say what was computed."""

from __future__ import annotations

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv.function import Function
from tinygrad_conv.ops import broadcast_to
from tinygrad_conv.record import expressions


class AddOneInPlace(Function):
    """d x = 2 g + 1, the + 1 written in place into the result of mul."""

    @staticmethod
    def forward(ctx, a):
        return 2 * a

    @staticmethod
    def backward(ctx, g):
        r = g * 2
        r += 1
        return r


class ScaleUpstreamInPlace(Function):
    """d x = 3 g, written into the upstream gradient itself, then clamped and filled."""

    @staticmethod
    def forward(ctx, a):
        return 3 * a

    @staticmethod
    def backward(ctx, g):
        g.mul_(3)
        h = g * 1
        h.clamp_(0.0, 5.0)
        return h


def test_inplace_op_in_backward_is_a_call_of_the_record():
    x = tc.tensor(np.ones(3), requires_grad=True)
    y = AddOneInPlace.apply(x)
    with tc.record_backward(values=True) as trace:
        y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0, 3.0])
    rec = y.grad_fn.backward_record
    assert [c.op for c in rec.calls] == ["mul", "add_"]
    assert expressions(rec, ("x",)) == {"x": "add_(mul(g, 2), 1)"}
    (step,) = trace.steps
    # each call's value as it was made: mul's result before add_ wrote into it
    np.testing.assert_array_equal(step.call_values[0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(step.call_values[1], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(step.input_grad_values[0], [3.0, 3.0, 3.0])


def test_inplace_write_into_upstream_keeps_the_upstream_value_and_names_the_op():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = ScaleUpstreamInPlace.apply(x)
    with tc.record_backward(values=True) as trace:
        y.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 5.0])
    rec = y.grad_fn.backward_record
    assert expressions(rec, ("x",)) == {"x": "clamp_(mul(mul_(g, 3), 1))"}
    assert rec.calls[2].attrs == {"min": 0.0, "max": 5.0}
    (step,) = trace.steps
    np.testing.assert_array_equal(step.upstream, [1.0, 2.0])  # as it flowed in
    np.testing.assert_array_equal(step.call_values[0], [3.0, 6.0])
    np.testing.assert_array_equal(step.call_values[1], [3.0, 6.0])
    np.testing.assert_array_equal(step.call_values[2], [3.0, 5.0])


def test_inplace_outside_backward_records_nothing():
    t = tc.tensor(np.ones(2))
    t += 1
    t.fill_(0.5)
    np.testing.assert_array_equal(t.data, [0.5, 0.5])


class SumPlusOne(Function):
    """y = sum(x); d x = broadcast g (a read-only view, so += writes into a private copy) + 1."""

    @staticmethod
    def forward(ctx, a):
        return a.sum()

    @staticmethod
    def backward(ctx, g):
        r = broadcast_to(g, ctx.inputs[0].shape)
        r += 1
        return r


def test_inplace_op_on_a_read_only_view_names_the_copy_it_writes():
    x = tc.tensor(np.ones(3), requires_grad=True)
    y = SumPlusOne.apply(x)
    with tc.record_backward(values=True) as trace:
        y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 2.0])
    rec = y.grad_fn.backward_record
    assert expressions(rec, ("x",)) == {"x": "add_(broadcast_to(g), 1)"}
    (step,) = trace.steps
    np.testing.assert_array_equal(step.call_values[0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(step.call_values[1], [2.0, 2.0, 2.0])


class RebindData(Function):
    """A backward that assigns .data: the record must not take the new array for the old one."""

    @staticmethod
    def forward(ctx, a):
        return 2 * a

    @staticmethod
    def backward(ctx, g):
        r = g * 2
        r.data = np.full(r.shape, 7.0)  # r now holds a numpy array, not mul's result
        return r


class RebindUpstream(Function):
    @staticmethod
    def forward(ctx, a):
        return 3 * a

    @staticmethod
    def backward(ctx, g):
        g.data = g.data * 3  # no longer the gradient that flowed in
        return g * 1


def test_assigning_data_in_backward_is_not_taken_for_the_call_or_the_upstream():
    x = tc.tensor(np.ones(3), requires_grad=True)
    y = RebindData.apply(x)
    with tc.record_backward(values=True) as trace:
        y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad.data, [7.0, 7.0, 7.0])
    assert expressions(y.grad_fn.backward_record, ("x",)) == {"x": "(numpy, not recorded)"}
    np.testing.assert_array_equal(trace.steps[0].call_values[0], [2.0, 2.0, 2.0])  # as made
    x = tc.tensor(np.ones(2), requires_grad=True)
    y = RebindUpstream.apply(x)
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert expressions(y.grad_fn.backward_record, ("x",)) == {"x": "mul((numpy, not recorded), 1)"}

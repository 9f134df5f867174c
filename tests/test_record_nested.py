"""A backward that runs grad() itself: the inner pass's ops (its nodes' backwards and the engine's
sums) are calls of the outer backward's record, not '(numpy, not recorded)'."""

from __future__ import annotations

import numpy as np

import tinygrad_conv as tc
from tinygrad_conv.function import Function
from tinygrad_conv.record import expressions


class SquareViaGrad(Function):
    """d x = g * d(sum(x * x))/dx, the derivative taken by an inner tc.grad."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, g):
        with tc.enable_grad():
            x = tc.tensor(ctx.inputs[0].data.copy(), requires_grad=True)
            (d,) = tc.grad((x * x).sum(), [x])
        return g * d


def test_nested_grad_ops_are_calls_of_the_outer_record():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = SquareViaGrad.apply(x)
    y.backward(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(x.grad.data, [2.0, 12.0])
    rec = y.grad_fn.backward_record
    assert [c.op for c in rec.calls] == [
        "mul",  # x * x (forward of the inner graph)
        "sum",
        "reshape",  # sum's backward in the inner pass
        "broadcast_to",
        "mul",  # mul's backward in the inner pass, one per input
        "mul",
        "add",  # the inner engine adding the two contributions to x
        "mul",  # g * d
    ]
    inner = "broadcast_to(reshape((numpy, not recorded)))"  # the inner seed: np.ones_like
    assert expressions(rec, ("x",)) == {
        "x": f"mul(g, add(mul({inner}, (numpy, not recorded)), "
        f"mul({inner}, (numpy, not recorded))))"
    }

"""User-written ops shared by the tests of the backward record and of the drawings."""

from __future__ import annotations

import tinygrad_conv as tc
from tinygrad_conv.function import Function


class NumpySquare(Function):
    """A user op whose backward is plain numpy: the record must say so, not 'passed through'."""

    @staticmethod
    def forward(ctx, a):
        return a * a

    @staticmethod
    def backward(ctx, g):
        return tc.tensor(2 * ctx.inputs[0].data * g.data)

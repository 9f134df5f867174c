"""The op-breadth tests' helper (tests/vjp_rules.py) can fail: a saved source is compared with
the value delivered, and a declared rule the backward does not follow fails."""

from __future__ import annotations

import numpy as np
import pytest
from vjp_rules import check_rule, check_source_values

import tinygrad_conv as tc
from tinygrad_conv.function import Function


class SavedSlope(Function):
    """y = 3 x; d x = the saved slope array itself (times nothing: the upstream is ones here)."""

    input_names = ("x",)
    saved_names = ("slope",)
    vjp = {"x": "slope"}

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.full_like(x, 3.0))
        return 3 * x

    @staticmethod
    def backward(ctx, g):
        (slope,) = ctx.saved_tensors
        return tc.tensor(slope)


def test_saved_source_is_compared_and_can_fail():
    x = tc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = SavedSlope.apply(x)
    with tc.record_backward(values=True) as trace:
        y.backward(np.ones(2), retain_graph=True)
    assert y.grad_fn.backward_record.input_grads[0].source.kind == "saved"
    check_source_values(trace)  # the saved slope is what x received
    y.grad_fn.saved_tensors[0][...] = 5.0  # now the recorded source no longer holds that value
    with pytest.raises(AssertionError, match="savedslope: input 0"):
        check_source_values(trace)


class WrongRule(SavedSlope):
    vjp = {"x": "mul(g, slope)"}  # what the backward does not do


def test_check_rule_passes_the_true_rule_and_fails_a_wrong_one():
    check_rule(SavedSlope.apply(tc.tensor(np.array([1.0, 2.0]), requires_grad=True)), SavedSlope)
    y = WrongRule.apply(tc.tensor(np.array([1.0, 2.0]), requires_grad=True))
    with pytest.raises(AssertionError, match="WrongRule"):
        check_rule(y, WrongRule)

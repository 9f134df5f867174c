"""The ops layer remembers conv/pool geometries by value; errors must never be memoised away."""

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv.ops import _util


def test_same_arguments_reuse_one_geometry_object() -> None:
    x = tc.tensor(np.ones((1, 5, 5, 2)))
    w = tc.tensor(np.ones((3, 3, 2, 4)))
    a = tc.conv2d(x, w, 2, [[1, 0], [0, 1]])
    b = tc.conv2d(x, w, 2, [[1, 0], [0, 1]])
    assert a.grad_fn is None and b.grad_fn is None  # constants: nothing recorded
    key_geoms = [g for k, g in _util._MEMO.items() if k[0].__name__ == "conv_geometry"]
    assert any(g.pads == ((1, 0), (0, 1)) for g in key_geoms)
    np.testing.assert_array_equal(a.data, b.data)


def test_bad_arguments_raise_every_time_and_types_are_part_of_the_key() -> None:
    x = tc.tensor(np.ones((1, 5, 5, 2)))
    w = tc.tensor(np.ones((3, 3, 2, 4)))
    assert tc.conv2d(x, w, strides=1).shape == (1, 3, 3, 4)
    for _ in range(2):
        with pytest.raises(TypeError, match="strides"):
            tc.conv2d(x, w, strides=True)  # equal to 1 as a dict key, but an error
        with pytest.raises(ValueError, match="padding"):
            tc.conv2d(x, w, padding="FULL")


def test_memo_is_bounded() -> None:
    _util._MEMO.clear()
    for i in range(_util._MEMO_LIMIT + 10):
        _util.memoized(lambda v: v, i)  # a new function object each time: a new key
    assert len(_util._MEMO) <= _util._MEMO_LIMIT

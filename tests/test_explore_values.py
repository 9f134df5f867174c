"""The explorer's value table: equal numbers shown as a conv filter (HWIO) and as an activation
(NHWC) are two items, so neither heatmap is drawn in the other's layout."""

from __future__ import annotations

import numpy as np

from tinygrad_conv.explore import _Values


def test_equal_arrays_with_different_layouts_are_separate_items():
    values = _Values(10_000)
    z = np.zeros((3, 3, 3, 3))
    act = values.add(z)  # an activation's zero gradient
    filt = values.add(z.copy(), "HWIO")  # a filter's zero gradient of the same shape
    assert act != filt
    assert values.add(np.zeros((3, 3, 3, 3))) == act  # equal and same layout: stored once
    assert values.add(np.zeros((3, 3, 3, 3)), "HWIO") == filt
    items, note = values.finish()
    assert note is None
    assert "layout" not in items[act] and items[filt]["layout"] == "HWIO"
    assert values.add(np.zeros((2, 2)), "HWIO") == 2  # not 4-D: no layout, a plain item
    assert "layout" not in values.items[2]

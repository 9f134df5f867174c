"""Tests for tinygrad_conv.kernels.elementwise / memory and the argmax-free max pooling."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_conv.kernels import memory
from tinygrad_conv.kernels.elementwise import relu, sum_to_shape
from tinygrad_conv.kernels.padding import pool_geometry
from tinygrad_conv.kernels.pool import max_pool2d, max_pool2d_values


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5, 2), (64, 8, 8, 16)])
def test_relu_matches_numpy(dtype, shape):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    out = relu(a)
    expected = np.maximum(a, 0)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    assert out is not a and (out.ndim == 0 or not np.shares_memory(out, a))


def test_relu_keeps_nan_and_signed_zero_rule_and_does_not_write_the_cache():
    a = np.array([np.nan, -0.0, 0.0, -np.inf, np.inf, -2.0, 3.0], np.float32)
    np.testing.assert_array_equal(relu(a), np.maximum(a, 0))
    big = relu(-np.ones(5000, np.float64))
    assert (big == 0).all()
    big[:] = 7  # the result is a fresh array: writing it leaves the cached zeros alone
    assert (relu(-np.ones(5000, np.float64)) == 0).all()
    from tinygrad_conv.kernels import elementwise

    zeros = elementwise._zero_buffers[np.dtype(np.float64)]
    assert not zeros.flags.writeable and zeros.size >= 5000 and not zeros.any()
    with pytest.raises(ValueError):
        zeros[0] = 1.0


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
)
def test_sum_to_shape_matches_numpy_sum(shape, data, dtype):
    """Every way of broadcasting `target` to `shape`: leading axes, size-1 axes, both."""
    a = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    lead = data.draw(st.integers(0, len(shape)))
    target = tuple(s if data.draw(st.booleans()) else 1 for s in shape[lead:])
    out = sum_to_shape(a, target)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(target) if s == 1 and shape[lead + i] != 1
    )
    expected = np.sum(a, axis=axes, keepdims=True).reshape(target)
    assert out.shape == target and out.dtype == a.dtype
    # a float32 sum in another order may differ by a few ulps of the summed magnitudes (the
    # result itself can be much smaller when the terms cancel)
    atol = (1e-6 if dtype == np.float32 else 1e-13) * float(np.abs(a).sum())
    np.testing.assert_allclose(
        out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=atol
    )


def test_sum_to_shape_gemv_path_agrees_in_float64_and_handles_views():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((64, 8, 8, 16))
    np.testing.assert_allclose(sum_to_shape(g, (16,)), g.sum(axis=(0, 1, 2)), atol=1e-11)
    np.testing.assert_allclose(sum_to_shape(g, (8, 16)), g.sum(axis=(0, 1)), atol=1e-11)
    view = g[:, ::2]  # not contiguous: numpy's sum path
    np.testing.assert_allclose(sum_to_shape(view, (16,)), view.sum(axis=(0, 1, 2)), atol=1e-11)
    np.testing.assert_array_equal(sum_to_shape(np.zeros((0, 3)), (3,)), np.zeros(3))
    half = g.astype(np.float16)
    assert sum_to_shape(half, (16,)).dtype == np.float16


@pytest.mark.parametrize(
    "shape,ksize,strides,padding",
    [
        ((2, 8, 8, 3), 2, 2, "VALID"),
        ((2, 7, 9, 3), 3, 2, "SAME"),  # padded: the first tap misses the border outputs
        ((1, 5, 5, 2), 3, 1, [[2, 0], [1, 1]]),
        ((2, 6, 6, 4), (1, 3), (2, 1), "SAME"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_max_pool_values_equal_the_argmax_version(shape, ksize, strides, padding, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    if dtype != np.int16:
        x.flat[::7] = np.nan
    geom = pool_geometry("max_pool2d", shape, ksize, strides, padding)
    np.testing.assert_array_equal(max_pool2d_values(x, geom), max_pool2d(x, geom)[0])


def test_max_pool_values_errors_name_the_argument():
    geom = pool_geometry("max_pool2d", (2, 6, 6, 3), 2, 2, "VALID")
    with pytest.raises(ValueError, match=r"max_pool2d: x has shape \(2, 5, 6, 3\)"):
        max_pool2d_values(np.zeros((2, 5, 6, 3)), geom)
    with pytest.raises(ValueError, match=r"max_pool2d: x must be 4-D"):
        max_pool2d_values(np.zeros((6, 6, 3)), geom)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_importing_changes_no_process_setting():
    # neither the malloc tuning nor the BLAS policy is changed by an import
    code = (
        "import tinygrad_conv as tc, tinygrad_conv.kernels.memory as m, "
        "tinygrad_conv.kernels.blas as b; print(m._tuned, b.POLICY)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_CONV_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "None single", out.stderr


def test_blas_policy_is_explicit():
    import tinygrad_conv as tc

    previous = tc.set_blas_policy("adaptive")
    try:
        assert tc.get_blas_policy() == "adaptive"
        with pytest.raises(ValueError, match=r"set_blas_policy: policy must be one of"):
            tc.set_blas_policy("fast")
    finally:
        tc.set_blas_policy(previous)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_malloc_tuning_is_explicit_and_can_be_turned_off():
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    if libc and libc.startswith("glibc"):
        assert memory.tune_malloc() is True
    code = "import tinygrad_conv.kernels.memory as m; print(m.tune_malloc())"
    env = {**os.environ, "TINYGRAD_CONV_MALLOC": "default"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_no_page_faults_in_a_steady_training_loop():
    """The point of the malloc tuning: a repeated step reuses its memory (Linux/glibc only)."""
    resource = pytest.importorskip("resource")
    if not memory.tune_malloc():
        pytest.skip("malloc tuning unavailable on this platform")
    import tinygrad_conv as tc

    rng = np.random.default_rng(0)
    x = tc.Tensor(rng.standard_normal((64, 8, 8, 16)).astype(np.float32))
    w = tc.Tensor(rng.standard_normal((3, 3, 16, 32)).astype(np.float32), requires_grad=True)

    def step():
        w.grad = None
        y = tc.max_pool2d(tc.relu(tc.conv2d(x, w, 1, "SAME")), 2)
        (y * y).sum().backward()

    for _ in range(5):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 20 * 10, f"{faults} page faults in 20 identical steps"

"""Small GEMMs run on one BLAS thread; large ones keep the pool; the pool size is restored."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv.kernels import blas

pytest.importorskip("threadpoolctl")


def _seen_threads(monkeypatch: pytest.MonkeyPatch, mnk_limit: int) -> list[int]:
    """Run one conv2d and record the BLAS thread count inside its forward kernel."""
    seen: list[int] = []
    from tinygrad_conv.kernels import conv as K

    real = K.conv2d

    def spy(*args, **kwargs):
        seen.append(blas.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(K, "conv2d", spy)
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", mnk_limit)
    # 8*16*16 * 3*3*8 * 16 = 2.4M multiply-adds: above OpenBLAS's own single-thread limit (2**18)
    tc.conv2d(np.ones((8, 16, 16, 8), np.float32), np.ones((3, 3, 8, 16), np.float32), 1, "SAME")
    return seen


@pytest.fixture(autouse=True)
def _single_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the switch itself: pin the policy that always switches."""
    monkeypatch.setattr(blas, "POLICY", "single")


def test_small_gemm_runs_single_threaded_and_restores_the_pool(monkeypatch) -> None:
    tc.set_num_threads(2)
    assert _seen_threads(monkeypatch, 1 << 23) == [1]
    assert tc.get_num_threads() == 2


def test_large_gemm_keeps_the_pool(monkeypatch) -> None:
    tc.set_num_threads(2)
    assert _seen_threads(monkeypatch, 1 << 20) == [2]  # limit below this conv's 2.4M MNK


def test_single_threaded_tells_where_gemms_run() -> None:
    """single_threaded(): True inside a section that switched to one thread and with a pool of
    one; False with two threads outside any section."""
    tc.set_num_threads(2)
    try:
        assert not blas.single_threaded()
        with blas.gemm_threads(1 << 20):  # "single" policy: switches
            assert blas.single_threaded()
        assert not blas.single_threaded()
        with blas.gemm_threads(1 << 30):  # large: keeps the pool
            assert not blas.single_threaded()
        tc.set_num_threads(1)
        assert blas.single_threaded()
    finally:
        tc.set_num_threads(2)


def test_tiny_gemm_skips_the_switch(monkeypatch) -> None:
    """OpenBLAS keeps products up to 2**18 multiply-adds on one thread by itself."""
    tc.set_num_threads(2)
    calls: list[int] = []
    monkeypatch.setattr(blas, "_thread_switches", lambda: calls.append(1) or [])
    with blas.gemm_threads(blas.BLAS_SINGLE_THREAD_MNK):
        pass
    assert calls == []
    with blas.gemm_threads(blas.BLAS_SINGLE_THREAD_MNK + 1):
        pass
    assert calls == [1]


def test_switch_calls_openblas_directly() -> None:
    """The switch uses OpenBLAS's C functions (not threadpoolctl's wrappers) and restores."""
    libs = blas._libraries()
    if not any(getattr(lib, "internal_api", "") == "openblas" for lib in libs):
        pytest.skip("numpy's BLAS is not OpenBLAS")
    tc.set_num_threads(2)
    get, put = blas._thread_switches()[0]
    assert type(get).__name__ == "_FuncPtr" and type(put).__name__ == "_FuncPtr"
    with blas.gemm_threads(blas.BLAS_SINGLE_THREAD_MNK + 1):
        assert get() == 1 and tc.get_num_threads() == 1
    assert get() == 2 and tc.get_num_threads() == 2


def test_set_num_threads_validates() -> None:
    with pytest.raises(ValueError, match="positive int"):
        tc.set_num_threads(0)


def test_results_do_not_depend_on_the_policy(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 9, 9, 8)), rng.standard_normal((3, 3, 8, 16))
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 0)
    a = tc.conv2d(x, w, padding="SAME").data
    monkeypatch.setattr(blas, "SMALL_GEMM_MNK", 1 << 40)
    b = tc.conv2d(x, w, padding="SAME").data
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gemv_switches_from_openblas_gemv_threshold(monkeypatch) -> None:
    """OpenBLAS threads matrix-vector products from 9,216 elements, GEMMs from 2**18 MACs."""
    calls: list[int] = []
    monkeypatch.setattr(blas, "_thread_switches", lambda: calls.append(1) or [])
    blas.gemm_threads(blas.BLAS_SINGLE_THREAD_GEMV)  # OpenBLAS keeps it on one thread
    blas.gemm_threads(65536)  # a GEMM this small too
    assert calls == []
    blas.gemm_threads(65536, gemv=True)  # the [64,8,8,16] bias gradient's GEMV
    assert calls == [1]


def test_bias_gradient_gemv_runs_single_threaded(monkeypatch) -> None:
    from tinygrad_conv.kernels import elementwise

    tc.set_num_threads(2)
    seen: list[int | None] = []
    real = blas.gemm_threads.__enter__

    def spy(self):
        real(self)
        seen.append(blas.get_num_threads())

    monkeypatch.setattr(blas.gemm_threads, "__enter__", spy)
    g = np.ones((64, 8, 8, 16), np.float32)
    np.testing.assert_array_equal(elementwise.sum_to_shape(g, (16,)), np.full(16, 4096.0))
    assert seen == [1] and tc.get_num_threads() == 2


# -- the adaptive policy ----------------------------------------------------------------------
class _FakeClock:
    """Samples (wall, own CPU, busy CPU of our cores) for _LoadWatch, advanced by hand."""

    def __init__(self) -> None:
        self.wall = self.own = self.busy = 0.0

    def step(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.wall += seconds
        self.own += seconds * own_cores
        self.busy += seconds * (own_cores + other_cores)

    def sample(self) -> tuple[float, float, float]:
        return self.wall, self.own, self.busy


def _watch(monkeypatch: pytest.MonkeyPatch, clock: _FakeClock, cpus: int) -> blas._LoadWatch:
    watch = blas._LoadWatch()
    watch._cpus = set(range(cpus))
    monkeypatch.setattr(watch, "_sample", clock.sample)
    monkeypatch.setattr(blas, "LOAD_CHECK_SECONDS", 0.0)
    return watch


def test_load_watch_sees_other_processes_not_its_own(monkeypatch) -> None:
    clock = _FakeClock()
    watch = _watch(monkeypatch, clock, cpus=2)
    assert not watch.busy(lambda: 2)  # no interval measured yet: optimistic
    clock.step(0.2, own_cores=2.0, other_cores=0.0)  # our own two BLAS threads: idle machine
    assert not watch.busy(lambda: 2)
    clock.step(0.2, own_cores=1.0, other_cores=1.0)  # another process holds a core
    assert watch.busy(lambda: 2)
    clock.step(0.2, own_cores=1.0, other_cores=0.1)  # background noise only
    assert not watch.busy(lambda: 2)
    clock.step(0.2, own_cores=1.0, other_cores=1.0)
    assert not watch.busy(lambda: 1)  # one BLAS thread on two cores: a busy core does not matter


def test_load_watch_is_busy_when_proc_stat_is_unreadable(monkeypatch) -> None:
    watch = blas._LoadWatch()
    monkeypatch.setattr(watch, "_sample", lambda: None)
    monkeypatch.setattr(blas, "LOAD_CHECK_SECONDS", 0.0)
    assert watch.busy(lambda: 2) and watch.busy(lambda: 2) and not watch.readable


def test_adaptive_policy_switches_only_when_busy(monkeypatch) -> None:
    if not blas._thread_switches():
        pytest.skip("threadpoolctl sees no BLAS library")
    clock = _FakeClock()
    monkeypatch.setattr(blas, "_load", _watch(monkeypatch, clock, cpus=2))
    monkeypatch.setattr(blas, "POLICY", "adaptive")
    tc.set_num_threads(2)
    mid = blas.BLAS_SINGLE_THREAD_MNK + 1
    clock.step(0.2, own_cores=1.0, other_cores=0.0)
    blas._load.busy(lambda: 2)
    clock.step(0.2, own_cores=1.0, other_cores=0.0)
    with blas.gemm_threads(mid):
        assert tc.get_num_threads() == 2  # idle: BLAS keeps its threads, no switch
    with blas.gemm_threads(mid, cols=blas.NARROW_GEMM_COLS):
        assert tc.get_num_threads() == 2
    with blas.gemm_threads(mid, cols=blas.NARROW_GEMM_COLS - 1):
        assert tc.get_num_threads() == 1  # narrow, memory-bound products: one thread even idle
    clock.step(0.2, own_cores=1.0, other_cores=1.5)
    with blas.gemm_threads(mid):
        assert tc.get_num_threads() == 1  # busy: small products on one thread
    with blas.gemm_threads(blas.SMALL_GEMM_MNK):
        assert tc.get_num_threads() == 2  # large ones always keep the pool
    monkeypatch.setattr(blas, "POLICY", "threads")
    with blas.gemm_threads(mid):
        assert tc.get_num_threads() == 2
    assert tc.get_num_threads() == 2


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux CPU counters only")
def test_load_watch_detects_a_real_busy_process(monkeypatch) -> None:
    """A busy loop in another process on every CPU we may use is seen within one interval."""
    cpus = sorted(os.sched_getaffinity(0))
    watch = blas._LoadWatch()
    monkeypatch.setattr(blas, "LOAD_CHECK_SECONDS", 0.0)
    code = "import time\nt = time.time()\nwhile time.time() - t < 3: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in cpus]
    try:
        time.sleep(0.3)  # the hogs are running
        watch.busy(lambda: len(cpus))
        time.sleep(0.5)
        assert watch.busy(lambda: len(cpus))
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def test_conv_passes_its_output_columns_to_the_policy(monkeypatch) -> None:
    """A 1 -> 6 channel conv (case (a)) is narrow: single-threaded under the adaptive policy."""
    seen: list[int | None] = []
    real = blas.gemm_threads.__init__

    def spy(self, mnk, gemv=False, cols=None):
        seen.append(cols)
        real(self, mnk, gemv, cols)

    monkeypatch.setattr(blas.gemm_threads, "__init__", spy)
    x = tc.tensor(np.ones((2, 8, 8, 4)), requires_grad=True)
    w = tc.tensor(np.ones((3, 3, 2, 6)), requires_grad=True)  # 2 groups of 3 output channels
    tc.conv2d(x, w, 1, "SAME").sum().backward()
    assert seen[:3] == [3, 3, 3]  # conv2d, then both gradients: Cout per group


def _fake_proc_stat(monkeypatch: pytest.MonkeyPatch, text: bytes, cpus: set[int]) -> None:
    import io

    monkeypatch.setattr(blas, "open", lambda *a, **k: io.BytesIO(text), raising=False)
    monkeypatch.setattr(blas.os, "sched_getaffinity", lambda pid: cpus)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        (b"cpu  1 2 3 4\ncpu0 1 2 3\n", {0}),  # a cpu line with too few fields
        (b"cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\ncpu1 1 2 3 4 5 6 7 8\n", {6, 7}),
        (b"cpu  1 2 3 4 5 6 7 8\ncpuX 1 2 3 4 5 6 7 8\n", {0}),
    ],
    ids=["short-line", "renumbered-cpus", "garbage"],
)
def test_load_watch_falls_back_to_single_on_odd_counters(monkeypatch, text, cpus) -> None:
    """Counters it cannot trust make the watch answer busy (the "single" policy), never raise."""
    _fake_proc_stat(monkeypatch, text, cpus)
    monkeypatch.setattr(blas, "LOAD_CHECK_SECONDS", 0.0)
    watch = blas._LoadWatch()
    assert watch.busy(lambda: 2) and not watch.readable


def test_load_watch_reads_wellformed_counters(monkeypatch) -> None:
    text = b"cpu  9 9 9 9 9 9 9 9\ncpu0 100 0 50 900 0 0 0 0\ncpu1 100 0 50 900 0 0 0 0\nintr 1\n"
    _fake_proc_stat(monkeypatch, text, {0, 1})
    watch = blas._LoadWatch()
    wall, own, busy = watch._sample()
    assert busy == pytest.approx(300 / watch._tick) and watch.readable


def test_invalid_policy_environment_warns_and_uses_the_default() -> None:
    code = "import tinygrad_conv.kernels.blas as b; print(b.POLICY)"
    env = {**os.environ, "TINYGRAD_CONV_BLAS_POLICY": "off"}
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "single"
    assert "TINYGRAD_CONV_BLAS_POLICY must be one of" in out.stderr

"""How many BLAS threads a GEMM gets: small products avoid the other cores when they are busy.

Why: numpy's OpenBLAS splits every GEMM above a tiny size (2**18 multiply-adds; 9,216 elements
for a matrix-vector product) across all cores. On an idle machine that roughly halves the time
of even a 0.2 ms product (the digits CNN's step: 4.5 ms with its convs on one thread, 4.0 ms
on two). But as soon as another process keeps a core busy, each multi-threaded GEMM waits for
its worker thread to be scheduled, and a small one becomes 10-20x slower (measured: the digits
CNN trained at 6,400 images/s on an idle 2-core machine and at 355 images/s with one core busy
elsewhere). A single-threaded small GEMM cannot stall that way.

So the policy (``POLICY``: :func:`set_policy`, or the environment variable
``TINYGRAD_CONV_BLAS_POLICY`` read at import) is one of:

* ``"adaptive"`` (the examples' and benchmark's documented default, chosen by an explicit
  ``tc.set_blas_policy("adaptive")``): products with M*N*K below ``SMALL_GEMM_MNK`` run single-threaded
  only while *other processes* keep the cores this process may use busy, as read from the
  kernel's CPU counters (Linux ``/proc/stat``, at most every ``LOAD_CHECK_SECONDS``, minus this
  process's own CPU time). On an idle machine every GEMM keeps all of BLAS's threads and no
  switch happens at all, except for narrow products (``NARROW_GEMM_COLS``), which are faster
  on one thread anyway. Where the counters cannot be read, it behaves as ``"single"``.
* ``"single"`` (the library's default): products below ``SMALL_GEMM_MNK`` always run
  single-threaded. OpenBLAS's 1- and 2-thread GEMMs round differently in the last bit, so this
  is the setting for results that are bit-for-bit identical whatever else the machine is doing:
  a library must not give different last bits depending on the load of other processes. It
  also never stalls behind a busy core; on an idle machine it costs about 10 % of the digits
  CNN's step (4.5 against 4.1 ms), which the examples win back with ``"adaptive"``.
* ``"threads"``: never switch (BLAS's own choice everywhere).

Large products always keep every thread: there threading pays and a stall is small relative to
the work.

``threadpoolctl`` finds the BLAS libraries; the switch itself then calls OpenBLAS's
``openblas_set_num_threads`` directly through ctypes (a switch to one thread and back costs
6.6 us this way, 11 us through threadpoolctl's wrappers). Other BLAS libraries are switched
through threadpoolctl. Without threadpoolctl this module does nothing.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

_POLICIES = ("adaptive", "single", "threads")
#: "adaptive", "single" or "threads" (see the module docstring).
#: The default is bit-reproducible ("single"); ``set_policy`` changes it.
DEFAULT_POLICY = "single"
POLICY = os.environ.get("TINYGRAD_CONV_BLAS_POLICY", DEFAULT_POLICY).strip().lower()
if POLICY not in _POLICIES:  # a typo must not make the package unimportable
    warnings.warn(
        f"TINYGRAD_CONV_BLAS_POLICY must be one of {_POLICIES}, got {POLICY!r}: "
        f"using {DEFAULT_POLICY!r}",
        RuntimeWarning,
        stacklevel=2,
    )
    POLICY = DEFAULT_POLICY

#: Below this many multiply-adds (M*N*K) a GEMM may run on one thread. 0 disables the policy.
SMALL_GEMM_MNK = 1 << 23
#: Products writing fewer output columns than this (a conv's Cout per group) stay on one thread
#: under the adaptive policy even when the machine is idle: they are memory-bound, and a second
#: thread only adds its hand-off (case (a) of benchmarks/README.md, 1 -> 6 channels: forward
#: 1.1 ms on one thread, 1.5-1.8 ms on two; the digits CNN's conv1, 1 -> 16 channels, is faster
#: on two: 344 against 383 us forward and backward).
NARROW_GEMM_COLS = 8
#: How often the adaptive policy re-reads the machine's load, in seconds.
LOAD_CHECK_SECONDS = 0.2
#: Other processes keeping more than this many cores busy (beyond the cores BLAS does not
#: need) make the adaptive policy go single-threaded.
BUSY_CORES = 0.25

#: OpenBLAS runs GEMMs of at most this many multiply-adds on the calling thread by itself
#: (65536 * its GEMM_MULTITHREAD_THRESHOLD of 4). Verified on the benchmark machine: up to 2**18
#: the results are bit-identical and the times equal with 1 or 2 threads, above it they differ.
#: For those tiny products the thread switch (about 9 us) is skipped.
BLAS_SINGLE_THREAD_MNK = 1 << 18
#: The same limit for matrix-vector products (OpenBLAS's interface/gemv.c: 2304 * 4 elements).
BLAS_SINGLE_THREAD_GEMV = 2304 * 4

_blas_libs: list[Any] | None = None
_switches: list[tuple[Callable[[], int], Callable[[int], Any]]] | None = None

# The pool size is process-wide, so overlapping small GEMMs (from several threads) share one
# switch: the first to enter saves the sizes and goes to 1 thread, the last to leave restores them.
# Saving per context would let the last one out restore the "1" that another one had set.
_lock = threading.Lock()
_active = 0
_saved: list[int] = []


def _libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (found once)."""
    global _blas_libs
    if _blas_libs is None:
        try:
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController()
            _blas_libs = [lib for lib in ctl.lib_controllers if lib.user_api == "blas"]
        except Exception:  # threadpoolctl missing or unable to inspect: leave BLAS alone
            _blas_libs = []
    return _blas_libs


def _direct_switch(lib: Any) -> tuple[Callable[[], int], Callable[[int], Any]]:
    """(get, set) of one library's thread count: OpenBLAS's own C functions when it runs its
    own thread pool (not the OpenMP layer, where the count is per calling thread), else
    threadpoolctl's methods."""
    if getattr(lib, "internal_api", "") == "openblas" and lib.threading_layer != "openmp":
        dynlib = getattr(lib, "dynlib", None)
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    return get, put
    return lib.get_num_threads, lib.set_num_threads


def _thread_switches() -> list[tuple[Callable[[], int], Callable[[int], Any]]]:
    """(get, set) thread-count functions of every BLAS library (found once)."""
    global _switches
    if _switches is None:
        found = []
        for lib in _libraries():
            try:
                found.append(_direct_switch(lib))
            except Exception:  # an unexpected controller: leave that library alone
                continue
        _switches = found
    return _switches


class _LoadWatch:
    """Whether other processes keep the CPUs this process may run on busy (Linux only).

    Every ``LOAD_CHECK_SECONDS`` at most: the busy time of our CPUs from ``/proc/stat`` over
    the last interval, minus this process's own CPU time (all its threads, BLAS's included),
    is the work of other processes (and of the hypervisor: "steal" counts as busy). More than
    ``BUSY_CORES`` cores of it, beyond the cores our BLAS threads do not need, means a
    multi-threaded GEMM would wait for a core. Threads of this process (a data loader, say)
    count as its own time, so they are not seen as competition. Counters that cannot be read
    or do not match (a virtualised ``/proc/stat`` whose CPU numbers are not our affinity's)
    make it answer "busy" for good, i.e. the "single" policy.
    """

    def __init__(self) -> None:
        self._cpus: set[int] | None = None
        self._last: tuple[float, float, float] | None = None  # (wall, our CPU, busy CPU) seconds
        # Until the first interval has been measured: idle. A short script (a benchmark, a few
        # steps) then gets the threads, and a wrong guess on a busy machine costs one interval.
        self._busy = False
        self._checked = -1e9
        self._tick = 100.0
        self.readable = True
        self._sampling = threading.Lock()  # one sampler at a time (others use the last answer)

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall, own CPU, busy CPU of our cores) in seconds, or None if unreadable."""
        try:
            if self._cpus is None:
                self._cpus = set(os.sched_getaffinity(0))
                self._tick = float(os.sysconf("SC_CLK_TCK"))
            with open("/proc/stat", "rb") as f:
                text = f.read()
            busy, matched = 0, 0
            for line in text.split(b"\n")[1:]:
                if not line.startswith(b"cpu"):
                    break
                name, *fields = line.split()
                if int(name[3:]) in self._cpus:
                    # user nice system idle iowait irq softirq steal (guest is inside user)
                    v = [int(x) for x in fields[:8]]
                    busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
                    matched += 1
        except (OSError, AttributeError, ValueError, IndexError):
            return None
        if matched != len(self._cpus):  # renumbered or partial counters: cannot tell
            return None
        return time.monotonic(), time.process_time(), busy / self._tick

    def busy(self, blas_threads: Callable[[], int]) -> bool:
        """True while other processes keep our cores busy (re-read at most every interval).

        ``blas_threads()`` gives BLAS's thread count; it is only called when a new interval is
        measured (not on every GEMM)."""
        now = time.monotonic()
        if now - self._checked < LOAD_CHECK_SECONDS or not self.readable:
            return self._busy
        if not self._sampling.acquire(blocking=False):
            return self._busy  # another thread is sampling right now
        try:
            self._checked = now
            sample = self._sample()
            if sample is None:
                self.readable, self._busy = False, True
                return True
            if self._last is not None and sample[0] > self._last[0]:
                wall = sample[0] - self._last[0]
                others = (sample[2] - self._last[2]) - (sample[1] - self._last[1])
                spare = max(len(self._cpus or ()) - blas_threads(), 0)
                self._busy = others / wall > spare + BUSY_CORES
            self._last = sample
            return self._busy
        finally:
            self._sampling.release()


_load = _LoadWatch()


def _go_single(mnk: int, floor: int, cols: int | None) -> bool:
    """Whether a product of ``mnk`` multiply-adds (``cols`` output columns, if known) should
    run on one thread under ``POLICY``."""
    if not floor < mnk < SMALL_GEMM_MNK or POLICY == "threads":
        return False
    if POLICY == "single" or (cols is not None and cols < NARROW_GEMM_COLS):
        return True
    return bool(_thread_switches()) and _load.busy(_saved_threads)


def _saved_threads() -> int:
    """BLAS's thread count outside any single-threaded section (under the switch's lock, so
    never the 1 of a section being entered or left by another thread)."""
    with _lock:
        return _saved[0] if _active and _saved else _thread_switches()[0][0]()


class gemm_threads:  # noqa: N801 - used like a function in ``with`` statements
    """Context manager: run the GEMMs inside on one thread when ``mnk`` < ``SMALL_GEMM_MNK``
    and ``POLICY`` asks for it ("single"; "adaptive" while other processes keep the cores busy).

    Products OpenBLAS already keeps on one thread (``mnk`` <= ``BLAS_SINGLE_THREAD_MNK``, or
    ``BLAS_SINGLE_THREAD_GEMV`` for matrix-vector products) skip the switch.

    Args:
        mnk: multiply-adds of the largest product inside (M*N*K, times the batch for batched ones).
        gemv: the product is a matrix-vector one (OpenBLAS threads those from a lower size).
        cols: output columns of the product (a conv's Cout per group), when known: narrow
            products (< ``NARROW_GEMM_COLS``) stay single-threaded under "adaptive" too.
    """

    __slots__ = ("_libs", "_entered")

    def __init__(self, mnk: int, gemv: bool = False, cols: int | None = None) -> None:
        floor = BLAS_SINGLE_THREAD_GEMV if gemv else BLAS_SINGLE_THREAD_MNK
        self._libs = _thread_switches() if _go_single(mnk, floor, cols) else ()
        self._entered = False

    def __enter__(self) -> None:
        global _active, _saved
        if not self._libs:
            return
        with _lock:
            if _active == 0:
                previous = [get() for get, _ in self._libs]
                try:
                    for _, put in self._libs:
                        put(1)
                except BaseException:
                    for (_, put), n in zip(self._libs, previous, strict=True):
                        put(n)
                    raise
                _saved = previous
            _active += 1
            self._entered = True

    def __exit__(self, *exc: object) -> None:
        global _active
        if not self._entered:
            return
        self._entered = False
        with _lock:
            _active -= 1
            if _active == 0:
                for (_, put), n in zip(self._libs, _saved, strict=True):
                    put(n)


def single_threaded() -> bool:
    """Whether a GEMM called now runs on one BLAS thread: inside a :class:`gemm_threads` section
    that switched to one thread, or with BLAS's pool set to one thread. False when the thread
    count cannot be read (no threadpoolctl): numpy's BLAS then keeps its own, threaded default."""
    if _active:
        return True
    switches = _thread_switches()
    return bool(switches) and switches[0][0]() == 1


def set_num_threads(n: int) -> None:
    """Set the number of threads of numpy's BLAS for this process (like torch.set_num_threads)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    for lib in _libraries():
        lib.set_num_threads(n)


def get_num_threads() -> int | None:
    """Threads of numpy's BLAS (None when threadpoolctl cannot see it)."""
    libs = _libraries()
    return libs[0].get_num_threads() if libs else None


def set_policy(policy: str) -> str:
    """Choose the small-GEMM thread policy for this process; returns the previous one.

    ``policy`` is "single" (default: bit-reproducible whatever the load), "adaptive" (one thread
    only while other processes keep the cores busy: fastest, last bits may vary with the load)
    or "threads" (BLAS's own choice, never switched). See the module docstring for measurements.
    """
    global POLICY
    if not isinstance(policy, str) or policy.strip().lower() not in _POLICIES:
        raise ValueError(f"set_blas_policy: policy must be one of {_POLICIES}, got {policy!r}")
    previous, POLICY = POLICY, policy.strip().lower()
    return previous


def get_policy() -> str:
    """The current small-GEMM thread policy ("single", "adaptive" or "threads")."""
    return POLICY

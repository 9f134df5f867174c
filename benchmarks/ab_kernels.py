"""In-process A/B of the 2-D conv kernel room: another version of ``kernels/conv.py`` against the
current one, on the benchmark's cases (a)-(f).

    git show 4131615:tinygrad_conv/kernels/conv.py > /tmp/conv_before.py
    python benchmarks/ab_kernels.py --before /tmp/conv_before.py --cases a,b,c,d,e,f --pairs 15

The old file is loaded as a sibling module of ``tinygrad_conv.kernels`` (its relative imports
resolve to the current ``padding`` / ``blas``), and the engine's conv nodes are switched between
the two modules (``ops.conv.K``) on every call pair, the order alternating. Both versions thus run
in the same process, with the same engine, allocator state and outside load: what differs is the
kernel room only. Prints per mode the minimum and median (ms) of each version and the median of
the per-pair ratios after/before. Runs ``tc.tune_for_speed()`` first, as the benchmark does.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import _workloads as W  # noqa: E402

import tinygrad_conv as tc  # noqa: E402
import tinygrad_conv.ops.conv as ops_conv  # noqa: E402
from tinygrad_conv.kernels import conv as current  # noqa: E402


def load_before(path: str):
    """The other conv.py as module ``tinygrad_conv.kernels._conv_before``."""
    spec = importlib.util.spec_from_file_location("tinygrad_conv.kernels._conv_before", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run the paired timings, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", required=True, help="path of the other kernels/conv.py")
    p.add_argument("--cases", default="a,b,c,d,e,f")
    p.add_argument("--pairs", type=int, default=15)
    args = p.parse_args(argv)
    before = load_before(args.before)
    tc.tune_for_speed()
    print(f"{'case':5s} {'mode':7s} {'before min':>10s} {'after min':>10s} {'before med':>10s} "
          f"{'after med':>10s} {'ratio med':>9s}  (ms)")  # fmt: skip
    try:
        for case in args.cases.split(","):
            fns = W.build("tc", case, "maxpool")
            for mode in ("fwd", "fwdbwd"):
                fn = fns[mode]
                times: dict[str, list[float]] = {"before": [], "after": []}
                for module in (before, current, before, current):  # warm-up both
                    ops_conv.K = module
                    fn()
                for i in range(args.pairs):
                    order = [("before", before), ("after", current)]
                    for name, module in order if i % 2 == 0 else order[::-1]:
                        ops_conv.K = module
                        t0 = time.perf_counter()
                        fn()
                        times[name].append(time.perf_counter() - t0)
                b, a = np.array(times["before"]) * 1e3, np.array(times["after"]) * 1e3
                print(
                    f"{case:5s} {mode:7s} {b.min():10.3f} {a.min():10.3f} {np.median(b):10.3f} "
                    f"{np.median(a):10.3f} {np.median(a / b):9.3f}",
                    flush=True,
                )
    finally:
        ops_conv.K = current


if __name__ == "__main__":
    main()

"""What the backward record costs on the digits training step (benchmark case (f)).

    python benchmarks/ab_record.py              # 60 rounds of 10 steps per arm
    python benchmarks/ab_record.py --rounds 200

Same process, arms alternating round by round (their order flipped every round), median time per
step per arm: wall clock by default; ``--clock cpu`` takes the process's CPU time instead, robust
to other processes taking the cores but inflated by BLAS's second thread on an idle machine:

* ``none``: backward logs nothing at all: no per-call log in ``apply`` (the engine's pass log is
  switched off) and no per-node record. This is cheaper than the engine before the record
  existed, which kept ``(name, input shapes, output shape)`` per call, so the difference is an
  upper bound of what the record costs;
* ``calls_only``: the per-call log in ``apply``, no per-node record (``_write_record`` skipped);
* ``record``: the engine as it is.

The percentages are each arm's median against ``none``. Only the pass log and ``_write_record``
are switched, so everything else (kernels, the version counter, the graph) is the same.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _workloads as W  # noqa: E402

import tinygrad_conv as tc  # noqa: E402
from tinygrad_conv import autograd, function  # noqa: E402


def _no_write(*args) -> None:  # noqa: ANN002 - stands in for autograd._write_record
    return None


def _no_log(parent: object = None) -> None:
    """Stands in for the pass log's class: the engine then runs backward with no log."""
    return None


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the A/B; returns each arm's median seconds per step."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=60, help="rounds (10 steps per arm per round)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = p.parse_args(argv)
    tc.tune_for_speed()  # the benchmark's documented default, as bench_conv's tc worker
    real_log, real_write = function._PassLog, autograd._write_record
    arms = {
        "none": (_no_log, _no_write),
        "calls_only": (real_log, _no_write),
        "record": (real_log, real_write),
    }
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    step = W.tc_train("maxpool")["fwdbwd"]
    for _ in range(50):
        step()
    times: dict[str, list[float]] = {k: [] for k in arms}
    try:
        for rnd in range(args.rounds):
            for name in list(arms) if rnd % 2 else list(reversed(arms)):
                function._PassLog, autograd._write_record = arms[name]
                t0 = clock()
                for _ in range(10):
                    step()
                times[name].append((clock() - t0) / 10)
    finally:
        function._PassLog, autograd._write_record = real_log, real_write
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = medians["none"]
    print(f"digits training step (case f), {args.rounds} rounds x 10 steps per arm, {args.clock}")
    for name, m in medians.items():
        print(f"  {name:<11s} {m * 1e3:7.3f} ms  {100 * (m / base - 1):+5.1f} %")
    return medians


if __name__ == "__main__":
    main()

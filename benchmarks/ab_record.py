"""What the backward record costs on the digits training step (benchmark case (f)).

    python benchmarks/ab_record.py              # 60 rounds of 10 steps per arm
    python benchmarks/ab_record.py --rounds 200

Same process, arms alternating round by round (their order flipped every round), median time per
step per arm: wall clock by default; ``--clock cpu`` takes the process's CPU time instead, robust
to other processes taking the cores but inflated by BLAS's second thread on an idle machine:

* ``none``: backward logs nothing at all: no per-call log in ``apply`` (the engine's pass log is
  switched off) and no per-node record;
* ``before``: what the engine did before the record existed: per call, ``(name, input shapes,
  output shape)`` appended to a list, and no per-node record (``Function.apply`` is rebuilt
  from its own source with that logging in place of the record's, so nothing else differs);
* ``calls_only``: the per-call log in ``apply``, no per-node record (``_write_record`` skipped);
* ``record``: the engine as it is.

The percentages are each arm's median against ``none``; ``record`` against ``before`` is what
the record costs over the engine it replaced. Only the pass log and ``_write_record``
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


def _apply_before() -> classmethod:
    """``Function.apply`` with, instead of the record's per-call capture, the per-call list the
    engine kept before the record existed: ``(name, input shapes, output shape)``."""
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(function.Function.apply.__func__))
    start = source.index("    log = _pass_log")
    end = source.index("    return out", start)
    before = (
        "    log = _pass_log\n"
        "    if log is not None:\n"
        "        log.calls.append((ctx.name, tuple([a.shape for a in arrays]), out_data.shape))\n"
    )
    source = source[:start] + before + source[end:]
    source = source.replace("@classmethod\n", "", 1)
    space: dict = {}
    exec(compile(source, "<apply before the record>", "exec"), vars(function), space)  # noqa: S102
    return classmethod(space["apply"])


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
    real_apply, before_apply = function.Function.__dict__["apply"], _apply_before()
    arms = {
        "none": (_no_log, _no_write, real_apply),
        "before": (real_log, _no_write, before_apply),
        "calls_only": (real_log, _no_write, real_apply),
        "record": (real_log, real_write, real_apply),
    }
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    step = W.tc_train("maxpool")["fwdbwd"]
    for _ in range(50):
        step()
    times: dict[str, list[float]] = {k: [] for k in arms}
    try:
        for rnd in range(args.rounds):
            for name in list(arms) if rnd % 2 else list(reversed(arms)):
                function._PassLog, autograd._write_record, apply = arms[name]
                function.Function.apply = apply
                t0 = clock()
                for _ in range(10):
                    step()
                times[name].append((clock() - t0) / 10)
    finally:
        function._PassLog, autograd._write_record = real_log, real_write
        function.Function.apply = real_apply
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = medians["none"]
    print(f"digits training step (case f), {args.rounds} rounds x 10 steps per arm, {args.clock}")
    for name, m in medians.items():
        print(f"  {name:<11s} {m * 1e3:7.3f} ms  {100 * (m / base - 1):+5.1f} %")
    print(f"  record vs before: {100 * (medians['record'] / medians['before'] - 1):+.1f} %")
    return medians


if __name__ == "__main__":
    main()

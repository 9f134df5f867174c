"""benchmarks/bench_train.py runs both frameworks on the same model, batches and optimizer.

A tiny run (320 training images, 200 test images) in a subprocess, as a user would start it: the
two frameworks must start from the same loss (same initial weights, same first batch) and end at
nearly the same mean loss and accuracy (same batches, same optimizer).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def test_bench_train_same_job_in_both_frameworks() -> None:
    cmd = [sys.executable, str(BENCH), "--rounds", "2", "--train-size", "320", "--test-size", "200"]
    cmd.append("--one-thread")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    lines = out.splitlines()
    assert lines[0] == (
        "one Fashion-MNIST epoch: 320 train images, batch 32, AdamW; eval on 200; "
        "tc fused conv blocks"
    )
    rounds = re.findall(
        r"^\s+(\d)\s+(tc|torch)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)%"
        r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
        out,
        re.M,
    )
    assert [(r[0], r[1]) for r in rounds] == [("1", "tc"), ("2", "torch")]  # alternating order
    for r in rounds:
        tc_s, torch_s, ratio = float(r[2]), float(r[3]), float(r[4])
        # the times are printed rounded to 0.01 s: the ratio lies within what they allow
        lo, hi = (tc_s - 0.005) / (torch_s + 0.005), (tc_s + 0.005) / (torch_s - 0.005)
        assert lo - 0.005 <= ratio <= hi + 0.005
        assert abs(float(r[5]) - float(r[6])) <= 3.0  # accuracy on 200 images: within 6 images
        assert r[7] == r[8]  # first-batch loss identical to 4 decimals: same weights, same batch
        assert 0.05 < float(r[9]) < 20  # CPU-time ratio of the two processes
    assert re.search(
        r"^median tc/torch over 2 rounds: [\d.]+ \(min [\d.]+, max [\d.]+\); torch threads: 1$",
        out,
        re.M,
    )
    assert re.search(r"^median CPU-time ratio \(tc process / torch process\): [\d.]+$", out, re.M)
    phases = {
        m[0]: m[1:] for m in re.findall(r"^  (\w+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    }
    assert set(phases) == {"data", "forward", "backward", "optimizer", "evaluation", "total"}
    # the instrumented run names the conv kernels among the kernels by kind
    kinds = re.findall(r"^    (\w+)\s+[\d.]+ s\s+(\d+) calls", out, re.M)
    names = {k for k, _ in kinds}
    assert {"conv2d_pool_bias_relu", "conv2d_backprop_filter", "conv2d_backprop_input"} <= names
    calls = dict(kinds)
    assert calls["conv2d_backprop_input"] == "10"  # once per step (the second conv), 10 steps
    assert "engine (nodes, graph walk, accumulation)" in out

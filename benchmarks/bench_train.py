"""The whole job against PyTorch: one Fashion-MNIST epoch of the example CNN, same everything.

    python benchmarks/bench_train.py                      # 3 rounds, full epoch + evaluation
    python benchmarks/bench_train.py --rounds 1 --train-size 6400   # a quick look

Both frameworks train ``examples/train_cnn.py``'s model (conv 3x3 1->24, relu, maxpool 2, conv 3x3
24->48, relu, maxpool 2, linear 7*7*48->10) from the SAME initial weights (tinygrad_conv's seed-0
init, copied into torch), on the SAME batches in the SAME order (batch 32, one permutation from
seed 0), with the same optimizer (AdamW lr 5e-3, weight decay 1e-2, betas 0.9/0.999, eps 1e-8),
then evaluate on the 10,000 test images (batch 500). Each run is a separate process (fresh
allocator, BLAS and thread state); rounds alternate which framework goes first, so a burst of
outside load on this shared 2-core machine tends to hit both. torch keeps its default threads;
tinygrad_conv runs with ``tc.tune_for_speed()`` and, like the example, each conv -> relu -> pool
block as one fused ``conv2d_pool_bias_relu`` node (``--no-fuse``: layer by layer).

Printed: per round the epoch times (training loop + evaluation), the tc/torch ratio and the
ratio of the two processes' CPU times (robust to being descheduled by other processes; with
``--one-thread`` both run on one thread, so it compares the work each does), the medians, then where tinygrad_conv's time goes, from one extra instrumented run: per phase (data
pipeline: gather the batch and wrap it; forward; backward; optimizer; evaluation), the kernels by
kind (exclusive time inside each op's numpy ``forward``, whether called in the forward or the
backward pass), the backward rules (exclusive time in the ops' ``backward`` methods) and the
engine (the rest of forward+backward: node creation, graph walk, gradient accumulation). The
instrumented run is slower than the plain ones (a timer around every op call); its shares are
what it is for, the plain rounds give the times. It runs BLAS on one thread and reads the
thread's CPU clock (``time.thread_time``), so time spent descheduled while other processes hold
the cores is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

BATCH = 32
_clock = time.perf_counter  # the instrumented run switches to time.thread_time
EVAL_BATCH = 500
LR, WEIGHT_DECAY = 5e-3, 1e-2


def _data(train_size: int | None, seed: int, test_size: int | None = None):
    """Fashion-MNIST NHWC float32 (cut to the first ``train_size`` / ``test_size`` images) and
    the epoch's batch order."""
    from tinygrad_conv.datasets import load_fashion_mnist

    x, y = load_fashion_mnist("train")
    xt, yt = load_fashion_mnist("test")
    x, y = x[:train_size], y[:train_size]
    xt, yt = xt[:test_size], yt[:test_size]
    order = np.random.default_rng(seed).permutation(len(x))
    return x, y, xt, yt, order


def _initial_state(seed: int) -> dict[str, np.ndarray]:
    """The example model's initial weights (tinygrad_conv init, NHWC/HWIO, Linear [in, out])."""
    import train_cnn

    return {k: v.copy() for k, v in train_cnn.build_model(seed, image_size=28).state_dict().items()}


class _OpTimer:
    """Exclusive wall time inside every op's ``forward`` (kernels) and ``backward`` (rules).

    Wraps the methods of every Function subclass in this process; nested calls (a backward that
    calls ops) are subtracted from the caller, so the totals add up without double counting.
    """

    def __init__(self) -> None:
        self.kernel: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.rules = 0.0
        self._stack: list[float] = []  # child time accumulated per open call

    def _wrap(self, fn, kind: str):
        timer = self

        def wrapped(ctx, *args, **kwargs):
            timer._stack.append(0.0)
            t0 = _clock()
            try:
                return fn(ctx, *args, **kwargs)
            finally:
                total = _clock() - t0
                child = timer._stack.pop()
                if timer._stack:
                    timer._stack[-1] += total
                if kind == "forward":
                    name = getattr(ctx, "name", type(ctx).__name__)
                    timer.kernel[name] += total - child
                    timer.calls[name] += 1
                else:
                    timer.rules += total - child

        return staticmethod(wrapped)

    def install(self) -> None:
        from tinygrad_conv.function import Function

        seen, todo = set(), [Function]
        while todo:
            cls = todo.pop()
            for sub in cls.__subclasses__():
                if sub not in seen:
                    seen.add(sub)
                    todo.append(sub)
        for cls in seen:
            for kind in ("forward", "backward"):
                if kind in cls.__dict__:
                    setattr(cls, kind, self._wrap(getattr(cls, kind), kind))


def _train_epoch(
    order: np.ndarray,
    batch_of: Any,
    loss_of: Any,
    opt: Any,
    pc: Any,
) -> tuple[dict[str, float], list[float]]:
    """One epoch over ``order`` in batches of BATCH, the same loop for both frameworks: time per
    phase (data, forward, backward, optimizer) with the clock ``pc``, and every batch's loss."""
    phases = dict.fromkeys(("data", "forward", "backward", "optimizer"), 0.0)
    losses = []
    for start in range(0, len(order), BATCH):
        t0 = pc()
        xb, yb = batch_of(order[start : start + BATCH])
        t1 = pc()
        loss = loss_of(xb, yb)
        losses.append(loss.item())
        t2 = pc()
        opt.zero_grad()
        loss.backward()
        t3 = pc()
        opt.step()
        t4 = pc()
        phases["data"] += t1 - t0
        phases["forward"] += t2 - t1
        phases["backward"] += t3 - t2
        phases["optimizer"] += t4 - t3
    return phases, losses


def worker_tc(args: argparse.Namespace) -> dict:
    """One epoch + evaluation in tinygrad_conv; per-phase seconds (and op times with --profile)."""
    import train_cnn

    import tinygrad_conv as tc
    from tinygrad_conv import optim

    tc.tune_for_speed()
    if args.one_thread:
        # one BLAS thread for every GEMM (the 'single' policy alone keeps threads for big ones)
        tc.set_blas_policy("single")
        tc.set_num_threads(1)
    if args.profile:
        # every GEMM on this thread, timed by this thread's CPU clock: the shares stay meaningful
        # while other processes take the cores (wall time would count our descheduled waits)
        global _clock
        tc.set_blas_policy("single")
        _clock = time.thread_time
    x, y, xt, yt, order = _data(args.train_size, args.seed, args.test_size)
    model = train_cnn.build_model(args.seed, image_size=28)
    model.load_state_dict(_initial_state(args.seed))
    opt = optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    # the example's default: each conv->relu->pool block as one fused node (--no-fuse: layer by
    # layer, as before the fused node existed)
    forward = model if args.no_fuse else (lambda t: train_cnn.fused_forward(model, t))
    timer = _OpTimer() if args.profile else None
    if timer is not None:
        timer.install()
    pc = _clock
    cpu_start = time.process_time()
    t_start = pc()
    phases, losses = _train_epoch(
        order,
        lambda idx: (tc.tensor(x[idx]), y[idx]),
        lambda xb, yb: tc.cross_entropy(forward(xb), yb),
        opt,
        pc,
    )
    t_train = pc() - t_start
    kernels_train = dict(timer.kernel) if timer else {}
    t0 = pc()
    acc = train_cnn.evaluate(model, xt, yt, batch_size=EVAL_BATCH, fused=not args.no_fuse)
    phases["evaluation"] = pc() - t0
    out = {"train": t_train, "total": t_train + phases["evaluation"], "acc": acc}
    out["cpu"] = time.process_time() - cpu_start
    out |= {"phases": phases, "first_loss": losses[0], "mean_loss": float(np.mean(losses))}
    if timer is not None:
        out["kernels"] = kernels_train
        out["calls"] = dict(timer.calls)
        out["rules"] = timer.rules
    return out


def worker_torch(args: argparse.Namespace) -> dict:
    """The same epoch + evaluation in PyTorch (CPU, default threads, NCHW)."""
    import torch
    from torch import nn as tnn

    x, y, xt, yt, order = _data(args.train_size, args.seed, args.test_size)
    state = _initial_state(args.seed)
    # NCHW once, before the clock starts: what a torch user's dataset hands the loop
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    xt = np.ascontiguousarray(xt.transpose(0, 3, 1, 2))

    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = tnn.Conv2d(1, 24, 3, padding=1)
            self.c2 = tnn.Conv2d(24, 48, 3, padding=1)
            self.fc = tnn.Linear(7 * 7 * 48, 10)

        def forward(self, v):
            v = torch.max_pool2d(torch.relu(self.c1(v)), 2)
            v = torch.max_pool2d(torch.relu(self.c2(v)), 2)
            # flatten in (h, w, c) order, as the NHWC model does, so the same linear weights fit
            return self.fc(v.permute(0, 2, 3, 1).reshape(v.shape[0], -1))

    torch.manual_seed(args.seed)
    if args.one_thread:
        torch.set_num_threads(1)
    net = Net()
    with torch.no_grad():
        for conv, key in ((net.c1, "0"), (net.c2, "3")):
            conv.weight.copy_(torch.from_numpy(state[f"{key}.weight"].transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(state[f"{key}.bias"]))
        net.fc.weight.copy_(torch.from_numpy(state["7.weight"].T.copy()))
        net.fc.bias.copy_(torch.from_numpy(state["7.bias"]))
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = tnn.CrossEntropyLoss()
    pc = time.perf_counter
    cpu_start = time.process_time()
    t_start = pc()
    phases, losses = _train_epoch(
        order,
        lambda idx: (torch.from_numpy(x[idx]), torch.from_numpy(y[idx])),
        lambda xb, yb: loss_fn(net(xb), yb),
        opt,
        pc,
    )
    t_train = pc() - t_start
    t0 = pc()
    net.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(xt), EVAL_BATCH):
            pred = net(torch.from_numpy(xt[s : s + EVAL_BATCH])).argmax(1).numpy()
            correct += int((pred == yt[s : s + EVAL_BATCH]).sum())
    phases["evaluation"] = pc() - t0
    out = {"train": t_train, "total": t_train + phases["evaluation"], "acc": correct / len(xt)}
    out["cpu"] = time.process_time() - cpu_start
    out |= {"phases": phases, "first_loss": losses[0], "mean_loss": float(np.mean(losses))}
    out["threads"] = torch.get_num_threads()
    return out


def _spawn(args: argparse.Namespace, framework: str, profile: bool = False) -> dict:
    """Run one worker in a fresh process; its last stdout line is the JSON result."""
    cmd = [sys.executable, __file__, "--worker", framework, "--seed", str(args.seed)]
    if args.train_size:
        cmd += ["--train-size", str(args.train_size)]
    if args.test_size:
        cmd += ["--test-size", str(args.test_size)]
    if profile:
        cmd.append("--profile")
    if args.no_fuse:
        cmd.append("--no-fuse")
    if args.one_thread:
        cmd.append("--one-thread")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_train: the {framework} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _print_phases(tc_run: dict, torch_run: dict) -> None:
    print("\nper phase, one epoch (s), from the last plain round of each:")
    print(f"  {'phase':<12}{'tc':>9}{'torch':>9}{'tc/torch':>10}")
    for k in ("data", "forward", "backward", "optimizer", "evaluation"):
        a, b = tc_run["phases"][k], torch_run["phases"][k]
        print(f"  {k:<12}{a:9.2f}{b:9.2f}{a / b if b else float('nan'):10.2f}")
    print(
        f"  {'total':<12}{tc_run['total']:9.2f}{torch_run['total']:9.2f}"
        f"{tc_run['total'] / torch_run['total']:10.2f}"
    )


def _print_profile(prof: dict) -> None:
    ph = prof["phases"]
    fwd_bwd = ph["forward"] + ph["backward"]
    kernels = prof["kernels"]
    k_total = sum(kernels.values())
    engine = fwd_bwd - k_total - prof["rules"]
    total = prof["total"]
    print(
        f"\nwhere tinygrad_conv's time goes (instrumented run, BLAS single-threaded, this "
        f"thread's CPU time: {total:.1f} s, timers included):"
    )
    rows = [
        ("kernels (op forwards)", k_total),
        ("backward rules", prof["rules"]),
        ("engine (nodes, graph walk, accumulation)", engine),
        ("data pipeline", ph["data"]),
        ("optimizer", ph["optimizer"]),
        ("evaluation", ph["evaluation"]),
    ]
    for name, v in rows:
        print(f"  {name:<42}{v:8.2f} s  {100 * v / total:5.1f} %")
    print("  kernels by kind (training loop, exclusive):")
    for name, v in sorted(kernels.items(), key=lambda kv: -kv[1]):
        if v < 0.005 * k_total:
            continue
        calls = prof["calls"][name]
        print(f"    {name:<30}{v:8.2f} s  {calls:7d} calls  {1e6 * v / calls:8.1f} us/call")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-size", type=int, default=None, help="first N training images")
    p.add_argument("--test-size", type=int, default=None, help="first N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-profile", action="store_true", help="skip the instrumented tc run")
    p.add_argument(
        "--no-fuse", action="store_true", help="tc runs conv, bias, relu, pool as separate nodes"
    )
    p.add_argument(
        "--one-thread",
        action="store_true",
        help="torch.set_num_threads(1), tc.set_num_threads(1): compares the work each does",
    )
    p.add_argument("--worker", choices=("tc", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = (worker_tc if args.worker == "tc" else worker_torch)(args)
        print(json.dumps(result))
        return

    n = args.train_size or 60000
    n_test = args.test_size or 10000
    how = "layer by layer (--no-fuse)" if args.no_fuse else "fused conv blocks"
    print(
        f"one Fashion-MNIST epoch: {n} train images, batch {BATCH}, AdamW; eval on {n_test}; "
        f"tc {how}"
    )
    print(
        f"{'round':>5}  {'first':<6}{'tc s':>8}{'torch s':>9}{'tc/torch':>10}"
        f"{'tc acc':>9}{'torch acc':>11}{'tc loss1':>10}{'torch loss1':>12}{'cpu ratio':>10}"
    )
    ratios, cpu_ratios, last = [], [], {}
    for r in range(1, args.rounds + 1):
        order = ("tc", "torch") if r % 2 else ("torch", "tc")
        runs = {fw: _spawn(args, fw) for fw in order}
        last = runs
        ratio = runs["tc"]["total"] / runs["torch"]["total"]
        ratios.append(ratio)
        cpu_ratios.append(runs["tc"]["cpu"] / runs["torch"]["cpu"])
        print(
            f"{r:5d}  {order[0]:<6}{runs['tc']['total']:8.2f}{runs['torch']['total']:9.2f}"
            f"{ratio:10.2f}{100 * runs['tc']['acc']:8.1f}%{100 * runs['torch']['acc']:10.1f}%"
            f"{runs['tc']['first_loss']:10.4f}{runs['torch']['first_loss']:12.4f}"
            f"{cpu_ratios[-1]:10.2f}",
            flush=True,
        )
    print(
        f"median tc/torch over {len(ratios)} rounds: {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); torch threads: "
        f"{last['torch']['threads']}"
    )
    print(
        f"median CPU-time ratio (tc process / torch process): {statistics.median(cpu_ratios):.2f}"
    )
    _print_phases(last["tc"], last["torch"])
    if not args.no_profile:
        _print_profile(_spawn(args, "tc", profile=True))


if __name__ == "__main__":
    main()

"""Convolution benchmark: tinygrad_conv vs PyTorch CPU vs TensorFlow CPU on the same machine.

    pip install -e '.[bench]'
    python benchmarks/bench_conv.py                  # full run (~8 min on a quiet 2-core machine)
    python benchmarks/bench_conv.py --quick          # smoke run
    python benchmarks/bench_conv.py --cases c,d,f --rounds 3

Each framework runs in its own process (``--worker tc|torch|tf|gemm``), because numpy's and
torch's thread pools slow each other down in one process. The main process only spawns workers,
interleaved per case and round (tc torch tf, tc torch tf, ...), and collects their JSON. A worker
warms each callable up, then times ``--reps`` single calls with ``time.perf_counter``. Reported:
the median over rounds of each round's median; ratios are the median over rounds of the per-round
ratio (tc/torch, tc/tf), so a slow round of one framework is paired with its neighbours.

GFLOP/s counts 2*N*Ho*Wo*kh*kw*Cin*Cout per conv (x3 for forward+backward: the input and filter
gradients cost one forward each), and is compared with numpy's own float32 GEMM rate measured in
a separate worker in the same run (a 1024^3 matmul and the conv-shaped GEMMs of (c) and (d)).

OpenBLAS environment variables (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, ...) are reported and passed
on unchanged; ``--unset-openblas-env`` removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the
workers' environment only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _workloads as W  # noqa: E402

FRAMEWORKS = ("tc", "torch", "tf")
MODES = ("fwd", "fwdbwd")
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REPORTED_ENV = (
    *OPENBLAS_ENV,
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_VERBOSE",
)
# Targets on tc/torch forward+backward medians, and on the share of numpy's GEMM rate.
RATIO_TARGET = {"a": 1.0, "e": 1.0, "f": 1.0, "b": 1.4, "c": 1.4, "d": 1.4}
GEMM_SHARE_TARGET = {"c": 0.5, "d": 0.5}
RSS_REPORT = (100, 500, 1000)


# =============================================================================== worker side


def _time_calls(fn, reps: int, warmup: int, max_seconds: float) -> list[float]:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return times


def _framework_info(framework: str) -> dict[str, object]:
    import numpy as np

    info: dict[str, object] = {"numpy": np.__version__, "python": platform.python_version()}
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    if framework == "torch":
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    elif framework == "tf":
        tf = W._quiet_tf()
        info["tensorflow"] = tf.__version__
        info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    return info


def _gemm_rates(reps: int) -> dict[str, float]:
    """numpy float32 GEMM GFLOP/s: 1024^3, and the (M,K)@(K,Cout) GEMMs of cases (c), (d)."""
    import numpy as np

    rng = np.random.default_rng(0)
    shapes = {"gemm_1024": (1024, 1024, 1024)}
    for key in ("c", "d"):
        c = W.CONV_CASES[key]
        ho, wo = c.out_hw
        shapes[f"gemm_conv_{key}"] = (c.n * ho * wo, c.k * c.k * c.cin, c.cout)
    rates = {}
    for name, (m, k, n) in shapes.items():
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        t = _time_calls(lambda a=a, b=b, out=out: np.matmul(a, b, out=out), reps, 2, 5.0)
        rates[name] = 2.0 * m * k * n / statistics.median(t) / 1e9
    return rates


def tc_source_fingerprint() -> str:
    """git HEAD of the repo + a hash of tinygrad_conv's .py files as they are on disk, so a run
    shows whether the code under test changed between rounds (others may be editing it)."""
    import hashlib

    h = hashlib.sha1()
    for f in sorted((ROOT / "tinygrad_conv").rglob("*.py")):
        h.update(f.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        head = "?"
    return f"{head or '?'}+src:{h.hexdigest()[:10]}"


def worker_main(args: argparse.Namespace) -> None:
    out: dict[str, object] = {"framework": args.worker, "pid": os.getpid()}
    if args.worker == "tc":
        out["source"] = tc_source_fingerprint()
        import tinygrad_conv as tc

        out["tuning"] = tc.tune_for_speed()  # the benchmark's documented default (README)
    if args.info:
        out["info"] = _framework_info(args.worker)
    if args.worker == "gemm":
        out["gemm"] = _gemm_rates(args.reps)
    elif args.case is None:
        pass  # --info only
    elif args.case == "rss":
        steps = args.rss_steps
        report = tuple(s for s in RSS_REPORT if s <= steps) or (steps,)
        out["rss"] = W.tc_rss_loop(_resolve_pool(args.pool), steps, report)
    else:
        fns = W.build(args.worker, args.case, _resolve_pool(args.pool))
        for mode in MODES:
            out[mode] = _time_calls(fns[mode], args.reps, args.warmup, args.max_seconds)
    print("@@RESULT " + json.dumps(out))


# =============================================================================== main side


def _worker_env(unset_openblas: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if unset_openblas:
        for k in OPENBLAS_ENV:
            env.pop(k, None)
    return env


def _busy_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine so far (all processes, all cores)."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)  # incl. steal
    return busy / os.sysconf("SC_CLK_TCK")


def _spawn_once(args: argparse.Namespace, env: dict[str, str], *extra: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *extra]
    cmd += ["--pool", args.pool, "--reps", str(args.reps), "--warmup", str(args.warmup)]
    cmd += ["--max-seconds", str(args.max_seconds), "--rss-steps", str(args.rss_steps)]
    busy0, t0 = _busy_seconds(), time.perf_counter()
    own0 = sum(os.times()[:4])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    own = sum(os.times()[:4]) - own0  # this process + the (waited) worker
    busy1 = _busy_seconds()
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT "):
            out = json.loads(line[len("@@RESULT ") :])
            if busy0 is not None and busy1 is not None and wall > 0:
                # cores kept busy by OTHER processes while the worker ran (noise indicator)
                out["other_load"] = max(0.0, (busy1 - busy0 - own) / wall)
            return out
    raise RuntimeError(
        f"worker {' '.join(extra)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def _wait_quiet(threshold: float, timeout: float, window: float = 0.5) -> float | None:
    """Wait (up to ``timeout`` s) until other processes keep <= ``threshold`` cores busy.

    The main process is idle meanwhile, so the machine's busy time is the others'. Returns the
    last measured load (None without /proc/stat)."""
    deadline = time.perf_counter() + timeout
    while True:
        b0 = _busy_seconds()
        if b0 is None:
            return None
        time.sleep(window)
        load = (_busy_seconds() - b0) / window
        if load <= threshold or time.perf_counter() >= deadline:
            return load


def _spawn(args: argparse.Namespace, env: dict[str, str], *extra: str) -> dict:
    """Run a worker; re-run it (up to --retries times) while other processes load the machine."""
    best = None
    for attempt in range(args.retries + 1):
        if args.quiet_timeout > 0:
            _wait_quiet(args.max_other_load, args.quiet_timeout)
        out = _spawn_once(args, env, *extra)
        load = out.get("other_load", 0.0)
        if best is None or load < best.get("other_load", 0.0):
            best = out
        if load <= args.max_other_load:
            break
        if attempt < args.retries:
            print(f"  (other processes kept {load:.2f} cores busy during {' '.join(extra)}: rerun)")
            time.sleep(args.retry_pause)
    return best


def _resolve_pool(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import numpy as np

        import tinygrad_conv as tc

        if not hasattr(tc, "max_pool2d"):
            return "stride2"
        tc.max_pool2d(tc.Tensor(np.zeros((1, 4, 4, 1), np.float32)), 2, 2, "VALID")
        return "maxpool"
    except Exception as exc:  # an unfinished pool kernel must not stop the benchmark
        print(f"note: tc.max_pool2d unusable ({type(exc).__name__}: {exc}); using stride2")
        return "stride2"


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    keep = (
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Core(s) per socket",
        "L2 cache",
        "L3 cache",
    )
    info = {}
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() in keep and key.strip() not in info:
            info[key.strip()] = val.strip()
    return info


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _flops(key: str, pool: str, mode: str) -> float:
    base = W.train_flops(pool) if key == W.TRAIN else W.CONV_CASES[key].flops
    return base * (3 if mode == "fwdbwd" else 1)


def _fmt(v, spec: str, missing: str = "-") -> str:
    return missing if v is None else format(v, spec)


def summarise(res: dict, cases: list[str], frameworks: list[str], pool: str) -> dict:
    """Median-of-round-medians per (case, mode, framework), per-round ratio medians, GFLOP/s."""
    gemm = {
        k: _median([r[k] for r in res["gemm"]]) for k in (res["gemm"][0] if res["gemm"] else {})
    }
    rows = []
    for key in cases:
        for mode in MODES:
            per_fw = {
                fw: [statistics.median(r[mode]) for r in res["runs"][key][fw]] for fw in frameworks
            }
            med = {fw: _median(v) for fw, v in per_fw.items()}
            row = {"case": key, "mode": mode, "ms": {fw: m * 1e3 for fw, m in med.items()}}
            for other in ("torch", "tf"):
                if "tc" in per_fw and other in per_fw:
                    pairs = zip(per_fw["tc"], per_fw[other], strict=False)
                    ratios = [a / b for a, b in pairs]
                    row[f"tc/{other}"] = _median(ratios)
                    row[f"tc/{other}_range"] = (min(ratios), max(ratios))
            best = {fw: min(min(r[mode]) for r in res["runs"][key][fw]) for fw in frameworks}
            row["best_ms"] = {fw: b * 1e3 for fw, b in best.items()}
            fl = _flops(key, pool, mode)
            row["gflops"] = {fw: fl / m / 1e9 for fw, m in med.items()}
            gk = f"gemm_conv_{key}"
            if gk in gemm and "tc" in med:
                row["tc_share_conv_gemm"] = row["gflops"]["tc"] / gemm[gk]
            if "gemm_1024" in gemm and "tc" in med:
                row["tc_share_gemm_1024"] = row["gflops"]["tc"] / gemm["gemm_1024"]
            rows.append(row)
    loads = [r["load"] for c in cases for fw in frameworks for r in res["runs"][c][fw]]
    loads = [x for x in loads if x is not None]
    noise = {"median": _median(loads), "max": max(loads)} if loads else None
    return {"gemm": gemm, "rows": rows, "other_load": noise}


def print_report(summary: dict, meta: dict, frameworks: list[str], pool: str) -> None:
    print()
    print("## Machine")
    for k, v in meta["machine"].items():
        print(f"- {k}: {v}")
    print()
    print("## Timings (float32; medians in ms; ratio = median over rounds of the per-round ratio)")
    print()
    head = ["case", "pass"] + [f"{fw} ms" for fw in frameworks]
    if "tc" in frameworks and "torch" in frameworks:
        head.append("tc/torch")
    if "tc" in frameworks and "tf" in frameworks:
        head.append("tc/tf")
    head += [f"{fw} GF/s" for fw in frameworks] + ["target (tc/torch)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in summary["rows"]:
        key, mode = row["case"], row["mode"]
        cells = [key, "fwd" if mode == "fwd" else "fwd+bwd"]
        cells += [_fmt(row["ms"].get(fw), ".2f") for fw in frameworks]
        if "tc/torch" in row:
            cells.append(_fmt(row["tc/torch"], ".2f"))
        if "tc/tf" in row:
            cells.append(_fmt(row["tc/tf"], ".2f"))
        cells += [_fmt(row["gflops"].get(fw), ".1f") for fw in frameworks]
        tgt = RATIO_TARGET.get(key)
        if mode == "fwdbwd" and tgt is not None and "tc/torch" in row:
            ok = row["tc/torch"] <= tgt
            cells.append(f"<= {tgt:.1f}: {'MET' if ok else 'MISSED'}")
        else:
            cells.append("")
        print("| " + " | ".join(cells) + " |")
    print()
    if summary.get("other_load"):
        nz = summary["other_load"]
        print(
            f"Noise: other processes kept {nz['median']:.2f} cores busy during the median worker "
            f"(max {nz['max']:.2f}) of {meta['machine'].get('CPU(s)', '?')} CPUs."
        )
        print()
    print("Best of all reps (ms; less sensitive to other processes on a shared machine):")
    print()
    head = ["case", "pass"] + [f"{fw} best ms" for fw in frameworks]
    pairs = [o for o in ("torch", "tf") if "tc" in frameworks and o in frameworks]
    head += [f"tc/{o} (best)" for o in pairs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in summary["rows"]:
        b = row["best_ms"]
        cells = [row["case"], "fwd" if row["mode"] == "fwd" else "fwd+bwd"]
        cells += [f"{b[fw]:.2f}" for fw in frameworks]
        cells += [f"{b['tc'] / b[o]:.2f}" for o in pairs]
        print("| " + " | ".join(cells) + " |")
    print()
    print("Cases:")
    for row in summary["rows"][::2]:
        print(f"- ({row['case']}) {W.case_label(row['case'], pool)}")
    gemm = summary["gemm"]
    if gemm:
        print()
        print("## numpy float32 GEMM rate (same run, own process)")
        for k, v in gemm.items():
            print(f"- {k}: {v:.1f} GFLOP/s")
        print()
        print("tc forward+backward GFLOP/s as a share of numpy's GEMM rate:")
        for row in summary["rows"]:
            if row["mode"] != "fwdbwd" or "tc_share_gemm_1024" not in row:
                continue
            line = f"- ({row['case']}) {row['gflops']['tc']:.1f} GF/s = "
            line += f"{row['tc_share_gemm_1024']:.0%} of the 1024^3 GEMM"
            if "tc_share_conv_gemm" in row:
                share = row["tc_share_conv_gemm"]
                tgt = GEMM_SHARE_TARGET.get(row["case"])
                verdict = f" (target >= {tgt:.0%}: {'MET' if share >= tgt else 'MISSED'})"
                line += f", {share:.0%} of the conv-shaped GEMM{verdict if tgt else ''}"
            print(line)
    if meta.get("rss"):
        print()
        print(f"## tc memory: digits CNN training loop ({meta['rss']['pool']})")
        print()
        print("| step | RSS MiB | loss |")
        print("|---|---|---|")
        for r in meta["rss"]["rows"]:
            print(f"| {r['step']} | {r['rss_mb']:.1f} | {_fmt(r['loss'], '.3f', '')} |")


def main_run(args: argparse.Namespace) -> None:
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in W.ALL_CASES]
    if bad:
        sys.exit(f"unknown case(s) {bad}; choose from {','.join(W.ALL_CASES)}")
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    args.pool = _resolve_pool(args.pool)
    env = _worker_env(args.unset_openblas_env)
    env_report = {k: os.environ.get(k, "(unset)") for k in REPORTED_ENV}
    print(f"pool in (f): {args.pool}; rounds {args.rounds}, reps {args.reps}, warmup {args.warmup}")
    print("environment:", env_report, "(unset for workers)" if args.unset_openblas_env else "")

    infos = {}
    for fw in frameworks:
        infos[fw] = _spawn(args, env, "--worker", fw, "--info")["info"]
    res: dict = {"runs": {c: {fw: [] for fw in frameworks} for c in cases}, "gemm": []}
    t_start = time.perf_counter()
    for rnd in range(args.rounds):
        if not args.no_gemm:
            res["gemm"].append(_spawn(args, env, "--worker", "gemm")["gemm"])
        for key in cases:
            for fw in frameworks:  # interleaved: tc torch tf, tc torch tf, ...
                r = _spawn(args, env, "--worker", fw, "--case", key)
                res["runs"][key][fw].append(
                    {m: r[m] for m in MODES} | {"load": r.get("other_load")}
                )
                if "source" in r:
                    res.setdefault("sources", []).append(r["source"])
            meds = " ".join(
                f"{fw}={statistics.median(res['runs'][key][fw][-1]['fwdbwd']) * 1e3:.1f}ms"
                f"(load {_fmt(res['runs'][key][fw][-1]['load'], '.2f')})"
                for fw in frameworks
            )
            print(f"round {rnd + 1}/{args.rounds} case {key}: fwd+bwd {meds}", flush=True)
    rss = None
    if not args.no_rss and "tc" in frameworks:
        rss = _spawn(args, env, "--worker", "tc", "--case", "rss")["rss"]
    tc_info = infos.get("tc", {})
    machine = {**_lscpu(), "python": platform.python_version(), "numpy": tc_info.get("numpy")}
    machine["torch"] = infos.get("torch", {}).get("torch")
    machine["torch threads"] = infos.get("torch", {}).get("torch_threads")
    machine["tensorflow"] = infos.get("tf", {}).get("tensorflow")
    machine["numpy BLAS (threadpoolctl)"] = tc_info.get("threadpools")
    machine["env"] = env_report | (
        {"workers": "OpenBLAS vars unset"} if args.unset_openblas_env else {}
    )
    sources = sorted(set(res.get("sources", [])))
    machine["tc source (git HEAD + hash of the .py files)"] = ", ".join(sources) or "?"
    if len(sources) > 1:
        print(f"WARNING: tinygrad_conv's source changed during the run: {sources}")
    meta = {"machine": machine, "rss": rss, "seconds": time.perf_counter() - t_start}
    summary = summarise(res, cases, frameworks, args.pool)
    print_report(summary, meta, frameworks, args.pool)
    print(f"\n(total {meta['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"raw": res, "summary": summary, "meta": meta}, indent=1)
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cases", default=",".join(W.ALL_CASES), help="comma list of a,b,c,d,e,f")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma list of tc,torch,tf")
    p.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 5; quick 1)"
    )
    p.add_argument("--reps", type=int, default=None, help="timed calls per worker (default 15)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 3)")
    p.add_argument("--max-seconds", type=float, default=None, help="time cap per pass per worker")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, 3 reps, 100 RSS steps")
    p.add_argument(
        "--pool",
        default="auto",
        choices=("auto", "maxpool", "stride2"),
        help="(f): MaxPool 2x2 (needs tc.max_pool2d) or stride-2 convs in its place",
    )
    p.add_argument("--rss-steps", type=int, default=None, help="training steps of the RSS loop")
    p.add_argument("--no-rss", action="store_true", help="skip the tc memory loop")
    p.add_argument("--no-gemm", action="store_true", help="skip numpy's GEMM reference")
    p.add_argument(
        "--unset-openblas-env",
        action="store_true",
        help="drop OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the workers' environment",
    )
    p.add_argument(
        "--max-other-load",
        type=float,
        default=0.3,
        help="re-run a worker if other processes kept more cores than this busy",
    )
    p.add_argument(
        "--retries", type=int, default=None, help="re-runs per worker (default 3; quick 0)"
    )
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=None,
        help="wait up to this many seconds for a quiet machine before each worker "
        "(default 30; quick 0)",
    )
    p.add_argument("--retry-pause", type=float, default=2.0, help="seconds before a re-run")
    p.add_argument("--json", help="also write raw times and the summary to this file")
    # worker-only flags
    p.add_argument("--worker", choices=(*FRAMEWORKS, "gemm"), help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--info", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    defaults = {
        "rounds": 1 if q else 5,
        "reps": 3 if q else 15,
        "warmup": 1 if q else 3,
        "max_seconds": 2.0 if q else 6.0,
        "retries": 0 if q else 3,
        "quiet_timeout": 0.0 if q else 30.0,
        "rss_steps": 100 if q else 1000,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return args


if __name__ == "__main__":
    a = parse_args()
    if a.worker:
        worker_main(a)
    else:
        main_run(a)

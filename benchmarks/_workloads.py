"""Workloads of ``bench_conv.py``: the same convolutions and training step in three frameworks.

Every builder returns ``{"fwd": fn, "fwdbwd": fn}``: zero-argument callables that run one
repetition and leave every result materialised (no lazy work left behind). All numbers are built
once with numpy from a fixed seed, so the three frameworks see the same data (transposed to NCHW /
OIHW for PyTorch).

* ``fwd``: inference forward (``tc.no_grad()``, ``torch.no_grad()``, TF without a tape).
* ``fwdbwd``: forward, then the gradients with respect to the input AND the filter for a fixed
  upstream gradient (conv cases); forward, loss, backward and the SGD update (training step).

Only the module of the framework being measured is imported (each framework runs in its own
process: numpy's and torch's thread pools slow each other down in one process).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Fn = Callable[[], object]

TRAIN = "f"
LR, MOMENTUM = 0.05, 0.9


@dataclass(frozen=True)
class ConvCase:
    key: str
    label: str
    n: int
    h: int
    w: int
    cin: int
    cout: int
    k: int
    stride: int
    padding: str  # "SAME" or "VALID" (TF semantics)

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.padding == "SAME":
            return -(-self.h // self.stride), -(-self.w // self.stride)
        return (self.h - self.k) // self.stride + 1, (self.w - self.k) // self.stride + 1

    @property
    def flops(self) -> float:
        """Forward multiply-adds x 2: 2*N*Ho*Wo*kh*kw*Cin*Cout."""
        ho, wo = self.out_hw
        return 2.0 * self.n * ho * wo * self.k * self.k * self.cin * self.cout

    def tf_pads(self, size: int) -> tuple[int, int]:
        """TF's (lo, hi) padding split on one axis of length ``size``."""
        if self.padding == "VALID":
            return 0, 0
        o = -(-size // self.stride)
        total = max((o - 1) * self.stride + self.k - size, 0)
        return total // 2, total - total // 2


CONV_CASES: dict[str, ConvCase] = {
    c.key: c
    for c in (
        ConvCase("a", "1->6 5x5 VALID 28x28, N=64", 64, 28, 28, 1, 6, 5, 1, "VALID"),
        ConvCase("b", "16->32 3x3 SAME 14x14, N=64", 64, 14, 14, 16, 32, 3, 1, "SAME"),
        ConvCase("c", "32->64 3x3 SAME 28x28, N=64", 64, 28, 28, 32, 64, 3, 1, "SAME"),
        ConvCase("d", "64->64 3x3 s2 SAME 32x32, N=64", 64, 32, 32, 64, 64, 3, 2, "SAME"),
        ConvCase("e", "3->64 7x7 s2 SAME 224x224, N=1", 1, 224, 224, 3, 64, 7, 2, "SAME"),
    )
}
ALL_CASES = (*CONV_CASES, TRAIN)


def case_label(key: str, pool: str = "maxpool") -> str:
    if key == TRAIN:
        how = "MaxPool 2x2" if pool == "maxpool" else "stride-2 convs instead of MaxPool"
        return f"digits CNN train step, N=64 ({how})"
    return CONV_CASES[key].label


# ------------------------------------------------------------------------------------- data


def conv_arrays(case: ConvCase, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [N,H,W,Cin], w [k,k,Cin,Cout], upstream gradient g [N,Ho,Wo,Cout]; float32."""
    rng = np.random.default_rng(seed)
    ho, wo = case.out_hw
    x = rng.standard_normal((case.n, case.h, case.w, case.cin), dtype=np.float32)
    w = rng.standard_normal((case.k, case.k, case.cin, case.cout), dtype=np.float32)
    w *= np.float32(1.0 / np.sqrt(case.k * case.k * case.cin))
    g = rng.standard_normal((case.n, ho, wo, case.cout), dtype=np.float32)
    return x, w, g


# The digits CNN: [64,8,8,1] -> conv 1->16 3x3 SAME, ReLU, pool 2x2 -> conv 16->32 3x3 SAME,
# ReLU, pool 2x2 -> flatten (2*2*32) -> linear 128->10 -> cross-entropy. With pool="stride2" each
# conv+pool is a stride-2 SAME conv instead (the stand-in while tc has no max_pool2d).
TRAIN_N = 64
TRAIN_CONVS = ((1, 16), (16, 32))


def train_flops(pool: str) -> float:
    """Conv + linear multiply-adds x 2 of one forward pass (x3 for forward+backward)."""
    total, hw = 0.0, 8
    for cin, cout in TRAIN_CONVS:
        out = hw if pool == "maxpool" else hw // 2
        total += 2.0 * TRAIN_N * out * out * 9 * cin * cout
        hw //= 2
    return total + 2.0 * TRAIN_N * 128 * 10


def train_params(seed: int = 0) -> dict[str, np.ndarray]:
    """HWIO conv filters, conv biases, linear weight [in, out] (NHWC flatten order), bias."""
    rng = np.random.default_rng(seed)
    p: dict[str, np.ndarray] = {}
    for i, (cin, cout) in enumerate(TRAIN_CONVS, 1):
        bound = np.sqrt(6.0 / (9 * cin))
        p[f"w{i}"] = rng.uniform(-bound, bound, (3, 3, cin, cout)).astype(np.float32)
        p[f"b{i}"] = np.zeros(cout, np.float32)
    bound = np.sqrt(6.0 / 128)
    p["w3"] = rng.uniform(-bound, bound, (128, 10)).astype(np.float32)
    p["b3"] = np.zeros(10, np.float32)
    return p


def train_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One batch of 64 real digits (NHWC float32 in [0,1], int64 labels)."""
    import tinygrad_conv.datasets as ds  # numpy only: no engine import needed for the data

    x, y = ds.load_digits("train", dtype=np.float32, layout="NHWC")
    idx = np.random.default_rng(seed).permutation(x.shape[0])[:TRAIN_N]
    return np.ascontiguousarray(x[idx]), y[idx].astype(np.int64)


# ------------------------------------------------------------------------------------- tc


def tc_conv(case: ConvCase) -> dict[str, Fn]:
    import tinygrad_conv as tc

    xa, wa, ga = conv_arrays(case)
    x = tc.Tensor(xa, requires_grad=True)
    w = tc.Tensor(wa, requires_grad=True)
    s, p = case.stride, case.padding

    def fwd():
        with tc.no_grad():
            return tc.conv2d(x, w, s, p).data

    def fwdbwd():
        x.grad = w.grad = None
        tc.conv2d(x, w, s, p).backward(ga)
        return x.grad.data, w.grad.data

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def tc_train_model(pool: str, seed: int = 0):
    """(params, loss_fn, step_fn) of the digits CNN with raw tc ops and a hand-written SGD."""
    import tinygrad_conv as tc

    if pool == "maxpool" and not hasattr(tc, "max_pool2d"):
        raise RuntimeError("tc has no max_pool2d yet: run the training case with pool='stride2'")
    params = {k: tc.Tensor(v.copy(), requires_grad=True) for k, v in train_params(seed).items()}
    order = list(params.values())
    velocity = [np.zeros_like(t.data) for t in order]
    s = 1 if pool == "maxpool" else 2
    lr = np.float32(LR)

    def loss_fn(x, y):
        h = x
        for i in (1, 2):
            h = tc.relu(tc.conv2d(h, params[f"w{i}"], s, "SAME") + params[f"b{i}"])
            if pool == "maxpool":
                h = tc.max_pool2d(h, 2, 2, "VALID")
        logits = tc.matmul(tc.reshape(h, (h.shape[0], -1)), params["w3"]) + params["b3"]
        return tc.cross_entropy(logits, y)

    def step(x, y):
        for t in order:
            t.grad = None
        loss = loss_fn(x, y)
        loss.backward()
        for t, v in zip(order, velocity, strict=True):  # SGD with momentum (torch's form)
            v *= MOMENTUM
            v += t.grad.data
            t.data -= lr * v
        return loss

    return params, loss_fn, step


def tc_train(pool: str) -> dict[str, Fn]:
    import tinygrad_conv as tc

    _, loss_fn, step = tc_train_model(pool)
    xa, ya = train_batch()
    x = tc.Tensor(xa)

    def fwd():
        with tc.no_grad():
            return loss_fn(x, ya).data

    def fwdbwd():
        return step(x, ya).data

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def rss_mb() -> float:
    """Resident set size of this process in MiB (psutil if installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/status") as f:
            m = re.search(r"VmRSS:\s+(\d+)\s+kB", f.read())
        return int(m.group(1)) / 1024 if m else float("nan")


def tc_rss_loop(pool: str, steps: int, report: tuple[int, ...]) -> dict[str, object]:
    """Train the digits CNN ``steps`` minibatches; RSS (MiB) and loss at the ``report`` steps."""
    import tinygrad_conv as tc
    import tinygrad_conv.datasets as ds

    _, _, step = tc_train_model(pool)
    x, y = ds.load_digits("train", dtype=np.float32, layout="NHWC")
    y = y.astype(np.int64)
    rng = np.random.default_rng(0)
    rows: list[dict[str, float]] = [{"step": 0, "rss_mb": rss_mb(), "loss": float("nan")}]
    order = rng.permutation(x.shape[0])
    pos = 0
    for i in range(1, steps + 1):
        if pos + TRAIN_N > order.size:
            order, pos = rng.permutation(x.shape[0]), 0
        idx = order[pos : pos + TRAIN_N]
        pos += TRAIN_N
        loss = step(tc.Tensor(x[idx]), y[idx])
        if i in report:
            rows.append({"step": i, "rss_mb": rss_mb(), "loss": float(loss.data)})
    return {"pool": pool, "rows": rows}


# ------------------------------------------------------------------------------------- torch


def torch_conv(case: ConvCase) -> dict[str, Fn]:
    import torch
    import torch.nn.functional as F

    xa, wa, ga = conv_arrays(case)
    x = torch.from_numpy(xa.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    w = torch.from_numpy(wa.transpose(3, 2, 0, 1).copy()).requires_grad_(True)
    g = torch.from_numpy(ga.transpose(0, 3, 1, 2).copy())
    # torch pads symmetrically. TF's SAME split (lo, hi) with lo < hi ((d): 0/1, (e): 2/3) is
    # stood in for by padding hi on both sides: the same output size and the same multiply-adds,
    # the window grid shifted by one row/column, and no extra F.pad copy charged to torch.
    pad = (case.tf_pads(case.h)[1], case.tf_pads(case.w)[1])
    s = case.stride
    with torch.no_grad():
        shape = tuple(F.conv2d(x, w, stride=s, padding=pad).shape)
    assert shape == (case.n, case.cout, *case.out_hw), (shape, case)

    def fwd():
        with torch.no_grad():
            return F.conv2d(x, w, stride=s, padding=pad)

    def fwdbwd():
        x.grad = w.grad = None
        F.conv2d(x, w, stride=s, padding=pad).backward(g)
        return x.grad, w.grad

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def torch_train(pool: str) -> dict[str, Fn]:
    import torch
    import torch.nn.functional as F

    p = train_params()
    params = {}
    for i in (1, 2):
        params[f"w{i}"] = torch.from_numpy(p[f"w{i}"].transpose(3, 2, 0, 1).copy())
        params[f"b{i}"] = torch.from_numpy(p[f"b{i}"])
    params["w3"] = torch.from_numpy(p["w3"].T.copy())  # F.linear takes [out, in]
    params["b3"] = torch.from_numpy(p["b3"])
    for t in params.values():
        t.requires_grad_(True)
    opt = torch.optim.SGD(list(params.values()), lr=LR, momentum=MOMENTUM)
    xa, ya = train_batch()
    x = torch.from_numpy(xa.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(ya)
    s = 1 if pool == "maxpool" else 2

    def loss_fn():
        h = x
        for i in (1, 2):
            h = F.relu(F.conv2d(h, params[f"w{i}"], params[f"b{i}"], stride=s, padding=1))
            if pool == "maxpool":
                h = F.max_pool2d(h, 2, 2)
        logits = F.linear(h.flatten(1), params["w3"], params["b3"])
        return F.cross_entropy(logits, y)

    def fwd():
        with torch.no_grad():
            return loss_fn()

    def fwdbwd():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    return {"fwd": fwd, "fwdbwd": fwdbwd}


# ------------------------------------------------------------------------------------- tf


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def tf_conv(case: ConvCase) -> dict[str, Fn]:
    tf = _quiet_tf()
    xa, wa, ga = conv_arrays(case)
    x, w, g = tf.constant(xa), tf.constant(wa), tf.constant(ga)
    s, p = case.stride, case.padding

    def fwd():
        return tf.nn.conv2d(x, w, s, p).numpy()

    def fwdbwd():
        with tf.GradientTape() as tape:
            tape.watch(x)
            tape.watch(w)
            y = tf.nn.conv2d(x, w, s, p)
        dx, dw = tape.gradient(y, [x, w], output_gradients=g)
        return dx.numpy(), dw.numpy()

    return {"fwd": fwd, "fwdbwd": fwdbwd}


def tf_train(pool: str) -> dict[str, Fn]:
    """Eager TF (tf.nn ops + GradientTape + a hand-written momentum SGD on tf.Variables)."""
    tf = _quiet_tf()
    params = {k: tf.Variable(v) for k, v in train_params().items()}
    order = list(params.values())
    velocity = [tf.Variable(tf.zeros_like(v)) for v in order]
    xa, ya = train_batch()
    x, y = tf.constant(xa), tf.constant(ya)
    s = 1 if pool == "maxpool" else 2

    def loss_fn():
        h = x
        for i in (1, 2):
            h = tf.nn.relu(tf.nn.conv2d(h, params[f"w{i}"], s, "SAME") + params[f"b{i}"])
            if pool == "maxpool":
                h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        logits = tf.matmul(tf.reshape(h, (TRAIN_N, -1)), params["w3"]) + params["b3"]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    def fwd():
        return loss_fn().numpy()

    def fwdbwd():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, order)
        for t, v, gr in zip(order, velocity, grads, strict=True):
            v.assign(MOMENTUM * v + gr)
            t.assign_sub(LR * v)
        return loss.numpy()

    return {"fwd": fwd, "fwdbwd": fwdbwd}


BUILDERS = {
    "tc": (tc_conv, tc_train),
    "torch": (torch_conv, torch_train),
    "tf": (tf_conv, tf_train),
}


def build(framework: str, key: str, pool: str) -> dict[str, Fn]:
    conv_builder, train_builder = BUILDERS[framework]
    return train_builder(pool) if key == TRAIN else conv_builder(CONV_CASES[key])

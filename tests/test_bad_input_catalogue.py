"""Bad input everywhere (issue 16): each bad call raises TypeError/ValueError/IndexError/
RuntimeError (FileNotFoundError for a missing file or folder) whose message names the op and the
offending shapes or values, and never a numpy-internal message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_conv as tc
import tinygrad_conv.datasets as ds
import tinygrad_conv.nn as nn
import tinygrad_conv.nn.functional as F
import tinygrad_conv.optim as optim

RNG = np.random.default_rng(0)
X4 = tc.tensor(RNG.normal(size=(2, 8, 8, 3)).astype(np.float32))
W4 = tc.tensor(RNG.normal(size=(3, 3, 3, 4)).astype(np.float32))
X3 = tc.tensor(RNG.normal(size=(2, 8, 3)).astype(np.float32))
W3 = tc.tensor(RNG.normal(size=(3, 3, 4)).astype(np.float32))
X5 = tc.tensor(RNG.normal(size=(1, 4, 4, 4, 2)).astype(np.float32))
W5 = tc.tensor(RNG.normal(size=(2, 2, 2, 2, 3)).astype(np.float32))
LOGITS = tc.tensor(RNG.normal(size=(4, 3)).astype(np.float32))

#: phrases of numpy's own messages that must never reach the user unexplained
NUMPY_PHRASES = (
    "non-broadcastable output operand",
    "operands could not be broadcast",
    "setting an array element with a sequence",
    "inhomogeneous",
    "zero-dimensional arrays cannot be concatenated",
    "Cannot cast ufunc",
    "does not support ufuncs",
    "Object arrays cannot be loaded",
    "cannot reshape array of size",
    "object of type",
    "could not convert string",
    "NoneType",
)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)


def _graph() -> Any:
    return tc.draw_graph((tc.zeros(2, requires_grad=True) * 2).sum())


def _leaf() -> tc.Tensor:
    return tc.tensor(np.ones(3), requires_grad=True)


def _grad_leaf() -> tc.Tensor:
    t = _leaf()
    (t * t).sum().backward()
    return t


def _released() -> None:
    t = _leaf()
    y = (t * t).sum()
    y.backward()
    y.backward()


Case = tuple[Callable[[Path], Any], type[BaseException], tuple[str, ...]]

# id -> (call, exception type, texts the message must contain (the first names the op))
CASES: dict[str, Case] = {
    # -- tc.tensor and the Tensor API --
    "tensor of a string": (lambda p: tc.tensor("abc"), TypeError, ("tensor():", "'abc'")),
    "tensor of strings": (
        lambda p: tc.tensor(["a", "b"]),
        TypeError,
        ("tensor():", "list of strings", "<U1"),
    ),
    "tensor of a str ndarray": (
        lambda p: tc.tensor(np.array(["x", "y"])),
        TypeError,
        ("tensor():", "dtype <U1", "shape (2,)"),
    ),
    "tensor of an object": (lambda p: tc.tensor(object()), TypeError, ("tensor():", "object")),
    "tensor of None": (lambda p: tc.tensor(None), TypeError, ("tensor():", "from None")),
    "tensor of a dict": (lambda p: tc.tensor({"a": 1}), TypeError, ("tensor():", "dict")),
    "tensor of a ragged list": (
        lambda p: tc.tensor([[1, 2], [3]]),
        ValueError,
        ("tensor():", "ragged"),
    ),
    "tensor with None inside": (
        lambda p: tc.tensor([1.0, None]),
        TypeError,
        ("tensor():", "dtype object"),
    ),
    "int tensor requiring grad": (
        lambda p: tc.tensor([1, 2], requires_grad=True),
        TypeError,
        ("requires_grad:", "int64", "(2,)"),
    ),
    "reshape to another size": (
        lambda p: tc.zeros(2, 3).reshape(2, 4),
        ValueError,
        ("reshape:", "(2, 3)", "(2, 4)", "6 elements vs 8"),
    ),
    "reshape with two -1": (
        lambda p: tc.zeros(2, 3).reshape(-1, -1),
        ValueError,
        ("reshape:", "only one size may be -1"),
    ),
    "view to another size": (
        lambda p: tc.zeros(2, 3).view(4),
        ValueError,
        ("reshape:", "6 elements vs 4"),
    ),
    "concatenate 0-d": (
        lambda p: tc.concatenate([tc.tensor(1.0), tc.tensor(2.0)]),
        ValueError,
        ("concatenate:", "zero-dimensional", "tc.stack"),
    ),
    "concatenate shapes": (
        lambda p: tc.concatenate([tc.zeros(2, 3), tc.zeros(2, 4)], axis=0),
        ValueError,
        ("concatenate:", "(2, 4)", "(2, 3)"),
    ),
    "concatenate nothing": (lambda p: tc.concatenate([]), ValueError, ("concatenate:",)),
    "stack shapes": (
        lambda p: tc.stack([tc.zeros(2, 3), tc.zeros(3, 3)]),
        ValueError,
        ("stack:", "(3, 3)", "(2, 3)"),
    ),
    "add shapes": (
        lambda p: tc.zeros(2, 3) + tc.zeros(4),
        ValueError,
        ("add:", "(2, 3)", "(4,)"),
    ),
    "matmul shapes": (
        lambda p: tc.zeros(2, 3) @ tc.zeros(4, 5),
        ValueError,
        ("matmul:", "(2, 3)", "(4, 5)"),
    ),
    "matmul 0-d": (
        lambda p: tc.matmul(tc.tensor(1.0), tc.zeros(3)),
        ValueError,
        ("matmul:", "()", "(3,)"),
    ),
    "sum axis out of range": (
        lambda p: tc.zeros(2, 3).sum(axis=2),
        ValueError,
        ("sum:", "axis 2", "2 dims"),
    ),
    "mean dim out of range": (
        lambda p: tc.zeros(2, 3).mean(dim=-3),
        ValueError,
        ("mean:", "axis -3"),
    ),
    "axis and dim": (
        lambda p: tc.zeros(2, 3).sum(axis=0, dim=0),
        TypeError,
        ("sum():", "axis=", "dim="),
    ),
    "softmax axis": (lambda p: tc.softmax(tc.zeros(2, 3), 5), ValueError, ("softmax:", "axis 5")),
    "transpose not a permutation": (
        lambda p: tc.zeros(2, 3, 4).transpose(0, 1, 1),
        ValueError,
        ("transpose:", "(0, 1, 1)", "3-d"),
    ),
    "transpose axis out of range": (
        lambda p: tc.zeros(2, 3).transpose(0, 2),
        ValueError,
        ("swapaxes:", "axis 2", "2 dims"),
    ),
    "index out of range": (
        lambda p: tc.zeros(2, 3)[5],
        IndexError,
        ("getitem:", "index 5", "(2, 3)"),
    ),
    "too many indices": (
        lambda p: tc.zeros(2, 3)[0, 0, 0],
        IndexError,
        ("getitem:", "(0, 0, 0)", "(2, 3)"),
    ),
    "item of many": (lambda p: tc.zeros(2).item(), ValueError, ("item():", "(2,)")),
    "float of many": (lambda p: float(tc.zeros(2)), TypeError, ("float():", "(2,)")),
    "int of many": (lambda p: int(tc.zeros(2, 2)), TypeError, ("int():", "(2, 2)")),
    "squeeze a long axis": (
        lambda p: tc.zeros(2, 3).squeeze(0),
        ValueError,
        ("squeeze:", "axis 0", "(2, 3)"),
    ),
    "broadcast_to": (
        lambda p: tc.zeros(2, 3).broadcast_to((4, 3)),
        ValueError,
        ("broadcast_to:", "(2, 3)", "(4, 3)"),
    ),
    "to an unknown dtype": (lambda p: tc.zeros(2).to(object()), TypeError, ("to():", "object")),
    # -- in place and autograd --
    "in-place shape": (
        lambda p: tc.zeros(3).__iadd__(tc.zeros(2, 3)),
        ValueError,
        ("add_:", "(3,)", "(2, 3)"),
    ),
    "in-place dtype": (
        lambda p: tc.tensor(np.arange(3)).__itruediv__(2),
        TypeError,
        ("div_:", "float64", "int64"),
    ),
    "in-place on a leaf with grad": (
        lambda p: _leaf().__iadd__(1.0),
        RuntimeError,
        ("add_:", "leaf Variable", "(3,)", "no_grad"),
    ),
    "numpy ufunc on a tensor": (
        lambda p: np.exp(tc.zeros(2)),
        TypeError,
        ("numpy's exp", "tc.exp"),
    ),
    "ndarray += tensor result shape": (
        lambda p: np.zeros(3).__iadd__(tc.zeros(2, 3)),
        ValueError,
        ("add into an ndarray of shape (3,)", "(3,) and (2, 3)", "w.data += x"),
    ),
    "backward of a non-scalar": (
        lambda p: (_leaf() * 2).backward(),
        RuntimeError,
        ("backward:", "(3,)", "gradient="),
    ),
    "backward without grad": (
        lambda p: tc.zeros(2).sum().backward(),
        RuntimeError,
        ("backward:", "does not require grad"),
    ),
    "backward twice": (lambda p: _released(), RuntimeError, ("sum:", "retain_graph=True")),
    "grad of an unused input": (
        lambda p: tc.grad((_leaf() * 2).sum(), [_leaf()]),
        RuntimeError,
        ("grad:", "input 0", "(3,)", "allow_unused"),
    ),
    # -- conv family --
    "conv2d input rank": (
        lambda p: tc.conv2d(X3, W4, 1, "SAME"),
        ValueError,
        ("conv2d:", "input", "rank 4", "(2, 8, 3)"),
    ),
    "conv2d filter rank": (
        lambda p: tc.conv2d(X4, W3, 1, "SAME"),
        ValueError,
        ("conv2d:", "filters", "(3, 3, 4)"),
    ),
    "conv2d int input": (
        lambda p: tc.conv2d(tc.tensor(np.ones((1, 4, 4, 3), np.int64)), W4, 1, "SAME"),
        TypeError,
        ("conv2d:", "int64"),
    ),
    "conv2d string filter": (
        lambda p: tc.conv2d(X4, np.full((3, 3, 3, 4), "a"), 1, "SAME"),
        TypeError,
        ("tensor():", "<U1", "(3, 3, 3, 4)"),
    ),
    "conv2d stride 0": (
        lambda p: tc.conv2d(X4, W4, 0, "SAME"),
        ValueError,
        ("conv2d:", "strides", "got 0"),
    ),
    "conv2d stride -1": (
        lambda p: tc.conv2d(X4, W4, -1, "SAME"),
        ValueError,
        ("conv2d:", "strides", "got -1"),
    ),
    "conv2d dilation 0": (
        lambda p: tc.conv2d(X4, W4, 1, "SAME", dilations=0),
        ValueError,
        ("conv2d:", "dilations", "got 0"),
    ),
    "conv2d unknown padding": (
        lambda p: tc.conv2d(X4, W4, 1, "same!"),
        ValueError,
        ("conv2d:", "'same!'", "'VALID', 'SAME'"),
    ),
    "conv2d negative padding": (
        lambda p: tc.conv2d(X4, W4, 1, [[-1, 0], [0, 0]]),
        ValueError,
        ("conv2d:", "non-negative", "-1"),
    ),
    "conv2d OIHW filter": (
        lambda p: tc.conv2d(X4, tc.zeros(16, 3, 5, 5), 1, "SAME"),
        ValueError,
        (
            "conv2d:",
            "(16, 3, 5, 5)",
            "input channels 3",
            "[out, in, kh, kw]",
            "permute(2, 3, 1, 0)",
        ),
    ),
    "conv2d NCHW input": (
        lambda p: tc.conv2d(tc.zeros(2, 3, 8, 8), W4, 1, "SAME"),
        ValueError,
        ("conv2d:", "(2, 3, 8, 8)", "channels-first", "permute(0, 2, 3, 1)"),
    ),
    "conv2d groups do not divide": (
        lambda p: tc.conv2d(tc.zeros(2, 8, 8, 6), tc.zeros(3, 3, 4, 4), 1, "SAME"),
        ValueError,
        ("conv2d:", "input channels 6", "in-channels 4"),
    ),
    "conv2d groups vs out-channels": (
        lambda p: tc.conv2d(tc.zeros(2, 8, 8, 6), tc.zeros(3, 3, 3, 5), 1, "SAME"),
        ValueError,
        ("conv2d:", "out-channels 5", "groups = 6 // 3 = 2"),
    ),
    "conv2d kernel larger than input": (
        lambda p: tc.conv2d(tc.zeros(1, 2, 2, 3), W4, 1, "VALID"),
        ValueError,
        ("conv2d:", "(3, 3, 3, 4)", "height 2"),
    ),
    "conv2d empty kernel": (
        lambda p: tc.conv2d(X4, tc.zeros(0, 3, 3, 4), 1, "SAME"),
        ValueError,
        ("conv2d:", "(0, 3, 3, 4)", "positive"),
    ),
    "conv1d input rank": (
        lambda p: tc.conv1d(X4, W3, 1, "SAME"),
        ValueError,
        ("conv1d:", "rank 3", "(2, 8, 8, 3)"),
    ),
    "conv1d stride 0": (
        lambda p: tc.conv1d(X3, W3, 0, "SAME"),
        ValueError,
        ("conv1d:", "strides", "got 0"),
    ),
    "conv1d NCW input": (
        lambda p: tc.conv1d(tc.zeros(2, 3, 8), W3, 1, "SAME"),
        ValueError,
        ("conv1d:", "(2, 3, 8)", "NCW", "permute(0, 2, 1)"),
    ),
    "conv3d input rank": (
        lambda p: tc.conv3d(X4, W5, 1, "SAME"),
        ValueError,
        ("conv3d:", "rank 5", "(2, 8, 8, 3)"),
    ),
    "conv3d channels": (
        lambda p: tc.conv3d(X5, tc.zeros(2, 2, 2, 3, 3), 1, "SAME"),
        ValueError,
        ("conv3d:", "input channels 2", "(2, 2, 2, 3, 3)"),
    ),
    "conv2d_transpose output_shape": (
        lambda p: tc.conv2d_transpose(X4, tc.zeros(3, 3, 5, 3), (2, 8, 8), 1, "SAME"),
        ValueError,
        ("conv2d_transpose:", "output_shape", "(2, 8, 8)"),
    ),
    "depthwise channels": (
        lambda p: tc.depthwise_conv2d(X4, tc.zeros(3, 3, 4, 1), 1, "SAME"),
        ValueError,
        ("depthwise_conv2d:", "(3, 3, 4, 1)", "3 channels"),
    ),
    # -- pooling --
    "max_pool2d rank": (
        lambda p: tc.max_pool2d(X3, 2, 2, "VALID"),
        ValueError,
        ("max_pool2d:", "rank 4", "(2, 8, 3)"),
    ),
    "max_pool2d ksize 0": (
        lambda p: tc.max_pool2d(X4, 0, 2, "VALID"),
        ValueError,
        ("max_pool2d:", "ksize", "got 0"),
    ),
    "max_pool2d stride 0": (
        lambda p: tc.max_pool2d(X4, 2, 0, "VALID"),
        ValueError,
        ("max_pool2d:", "strides", "got 0"),
    ),
    "max_pool2d unknown padding": (
        lambda p: tc.max_pool2d(X4, 2, 2, "FULL"),
        ValueError,
        ("max_pool2d:", "'FULL'"),
    ),
    "max_pool2d int input": (
        lambda p: tc.max_pool2d(tc.tensor(np.ones((1, 4, 4, 1), np.int32)), 2, 2, "VALID"),
        TypeError,
        ("max_pool2d:", "int32"),
    ),
    "avg_pool2d negative ksize": (
        lambda p: tc.avg_pool2d(X4, -2, 2, "VALID"),
        ValueError,
        ("avg_pool2d:", "ksize", "-2"),
    ),
    "avg_pool2d window too big": (
        lambda p: tc.avg_pool2d(X4, 9, 1, "VALID"),
        ValueError,
        ("avg_pool2d:", "(9, 9)", "height 8"),
    ),
    "max_pool1d rank": (
        lambda p: tc.max_pool1d(X4, 2, 2, "VALID"),
        ValueError,
        ("max_pool1d:", "rank 3", "(2, 8, 8, 3)"),
    ),
    "max_pool3d rank": (
        lambda p: tc.max_pool3d(X4, 2, 2, "VALID"),
        ValueError,
        ("max_pool3d:", "rank 5", "(2, 8, 8, 3)"),
    ),
    # -- losses --
    "label too large": (
        lambda p: tc.cross_entropy(LOGITS, np.array([0, 1, 2, 3])),
        ValueError,
        ("cross_entropy:", "label 3", "3 classes"),
    ),
    "negative label": (
        lambda p: tc.cross_entropy(LOGITS, np.array([0, 1, 2, -1])),
        ValueError,
        ("cross_entropy:", "label -1", "3 classes"),
    ),
    "label count": (
        lambda p: tc.cross_entropy(LOGITS, np.array([0, 1])),
        ValueError,
        ("cross_entropy:", "(2,)", "(4,)", "(4, 3)"),
    ),
    "F.cross_entropy label": (
        lambda p: F.cross_entropy(LOGITS, np.array([0, 1, 2, 7])),
        ValueError,
        ("cross_entropy:", "label 7", "3 classes"),
    ),
    "mse shapes": (
        lambda p: tc.mse_loss(tc.zeros(2, 3), tc.zeros(3, 2)),
        ValueError,
        ("mse_loss:", "(2, 3)", "(3, 2)"),
    ),
    # -- nn --
    "Conv2d kernel 0": (lambda p: nn.Conv2d(3, 4, 0), ValueError, ("Conv2d:", "kernel_size", "0")),
    "Conv2d groups": (
        lambda p: nn.Conv2d(3, 4, 3, groups=2),
        ValueError,
        ("Conv2d:", "(3)", "(4)", "groups (2)"),
    ),
    "Conv2d stride 0": (
        lambda p: nn.Conv2d(3, 4, 3, strides=0),
        ValueError,
        ("Conv2d", "strides", "0"),
    ),
    "Conv2d padding": (
        lambda p: nn.Conv2d(3, 4, 3, padding="bogus"),
        ValueError,
        ("Conv2d:", "'bogus'"),
    ),
    "Conv2d input channels": (
        lambda p: nn.Conv2d(5, 4, 3)(X4),
        ValueError,
        ("Conv2d:", "[N,H,W,5]", "(2, 8, 8, 3)"),
    ),
    "Conv2d NCHW input": (
        lambda p: nn.Conv2d(3, 4, 3)(tc.zeros(2, 3, 8, 8)),
        ValueError,
        ("Conv2d:", "[N,H,W,3]", "(2, 3, 8, 8)", "channels-first", "permute(0, 2, 3, 1)"),
    ),
    "Linear input": (
        lambda p: nn.Linear(5, 2)(tc.zeros(2, 3)),
        ValueError,
        ("Linear:", "[..., 5]", "(2, 3)"),
    ),
    "Linear size": (lambda p: nn.Linear(-1, 2), ValueError, ("Linear:", "-1")),
    "MaxPool2d 0": (lambda p: nn.MaxPool2d(0), ValueError, ("MaxPool2d:", "kernel_size", "0")),
    "BatchNorm2d channels": (
        lambda p: nn.BatchNorm2d(5)(X4),
        ValueError,
        ("BatchNorm2d:", "[N,H,W,5]", "(2, 8, 8, 3)"),
    ),
    "Dropout p": (lambda p: nn.Dropout(1.5), ValueError, ("Dropout:", "1.5")),
    # -- optim --
    "SGD negative lr": (
        lambda p: optim.SGD(Small().parameters(), lr=-1),
        ValueError,
        ("SGD:", "lr", "-1"),
    ),
    "SGD no params": (lambda p: optim.SGD([], lr=0.1), ValueError, ("SGD:", "empty")),
    "SGD non-tensor params": (
        lambda p: optim.SGD([1, 2], lr=0.1),
        TypeError,
        ("SGD:", "params[0]", "int"),
    ),
    "SGD negative momentum": (
        lambda p: optim.SGD(Small().parameters(), lr=0.1, momentum=-0.5),
        ValueError,
        ("SGD:", "momentum", "-0.5"),
    ),
    "Adam betas": (
        lambda p: optim.Adam(Small().parameters(), lr=0.1, betas=(1.5, 0.9)),
        ValueError,
        ("Adam:", "betas[0]", "1.5"),
    ),
    # -- checkpoints --
    "state dict missing key": (
        lambda p: Small().load_state_dict({"fc.weight": np.zeros((3, 2))}),
        ValueError,
        ("load_state_dict:", "missing keys", "'fc.bias'"),
    ),
    "state dict extra key": (
        lambda p: Small().load_state_dict({**Small().state_dict(), "zzz": np.zeros(1)}),
        ValueError,
        ("load_state_dict:", "unexpected keys", "'zzz'"),
    ),
    "state dict misshaped": (
        lambda p: Small().load_state_dict({"fc.weight": np.zeros((2, 3)), "fc.bias": np.zeros(2)}),
        ValueError,
        ("load_state_dict:", "fc.weight", "(3, 2)", "(2, 3)"),
    ),
    "checkpoint with pickles": (
        lambda p: (
            np.savez(p / "pk.npz", a=np.array([{"x": 1}], dtype=object)),
            Small().load(p / "pk.npz"),
        ),
        ValueError,
        ("load:", "pk.npz", "pickled"),
    ),
    "checkpoint not an npz": (
        lambda p: ((p / "bad.npz").write_text("hello"), Small().load(p / "bad.npz")),
        ValueError,
        ("load:", "bad.npz", "not an .npz"),
    ),
    "checkpoint missing": (
        lambda p: Small().load(p / "nope.npz"),
        FileNotFoundError,
        ("load:", "nope.npz"),
    ),
    "save into a missing folder": (
        lambda p: Small().save(p / "missing" / "dir" / "w.npz"),
        FileNotFoundError,
        ("save:", "w.npz", "directory", "missing/dir' does not exist"),
    ),
    # -- drawing --
    "save_graph into a missing folder": (
        lambda p: tc.save_graph(_graph(), p / "nodir" / "g.dot"),
        FileNotFoundError,
        ("save_graph:", "g.dot", "nodir' does not exist"),
    ),
    "save_graph extension": (
        lambda p: tc.save_graph(_graph(), p / "g.xyz"),
        ValueError,
        ("save_graph:", "g.xyz", ".svg"),
    ),
    "draw_graph of a number": (lambda p: tc.draw_graph(3), TypeError, ("draw_graph:", "int")),
    # -- datasets --
    "digits split": (
        lambda p: ds.load_digits("validation"),
        ValueError,
        ("load_digits:", "'validation'"),
    ),
    "digits layout": (
        lambda p: ds.load_digits("train", layout="CHWN"),
        ValueError,
        ("load_digits:", "'CHWN'"),
    ),
    "digits dtype": (
        lambda p: ds.load_digits("train", dtype=np.int32),
        ValueError,
        ("load_digits:", "int32"),
    ),
    "batches size 0": (
        lambda p: list(ds.batches(np.zeros((4, 2)), np.zeros(4), 0)),
        ValueError,
        ("batches:", "batch_size", "0"),
    ),
    "batches lengths": (
        lambda p: list(ds.batches(np.zeros((4, 2)), np.zeros(3), 2)),
        ValueError,
        ("batches:", "(4, 2)", "(3,)"),
    ),
}


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_loudly(name: str, tmp_path: Path) -> None:
    call, kind, texts = CASES[name]
    with pytest.raises(kind) as info, np.errstate(all="ignore"):
        call(tmp_path)
    assert type(info.value) is kind or (kind is RuntimeError and isinstance(info.value, kind))
    msg = str(info.value)
    for text in texts:
        assert text in msg, f"{name}: {text!r} not in {msg!r}"
    for phrase in NUMPY_PHRASES:
        assert phrase not in msg, f"{name}: numpy's own message {phrase!r} in {msg!r}"

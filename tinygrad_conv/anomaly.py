"""``detect_anomaly()``: find where a NaN or an infinity in a gradient was born.

Inside ``with tc.detect_anomaly():`` every graph node remembers the line of the user's code that
created it (the innermost stack frame outside this package), and backward checks each gradient a
node's backward returns: the first one holding a NaN (or, with ``check_inf=True``, an infinity)
raises a ``RuntimeError`` naming the op, the input whose gradient it was computing and that line.
Outside the block nothing is captured or checked (one flag test per node).
"""

from __future__ import annotations

import functools
import linecache
import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from tinygrad_conv import grad_mode

F = TypeVar("F", bound=Callable[..., Any])

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Where(NamedTuple):
    """The place in the user's code where a node's forward ran."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        line = linecache.getline(self.filename, self.lineno).strip()
        text = f'File "{self.filename}", line {self.lineno}, in {self.function}'
        return f"{text}: {line}" if line else text


def where() -> Where | None:
    """The innermost frame of the caller's stack that is not inside tinygrad_conv."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    return Where(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


class detect_anomaly:  # noqa: N801 - lower-case like PyTorch's, used like a function
    """Context manager (and decorator): raise at the first NaN/Inf a backward produces.

    Args:
        check_nan: check gradients at all (``False`` turns the block into a no-op, like PyTorch).
        check_inf: also treat +-inf as an anomaly (default True: an infinite gradient is the usual
            first sign, e.g. the gradient of ``log`` at 0).

    Example::

        with tc.detect_anomaly():
            loss = model(x).log().sum()
            loss.backward()   # RuntimeError: log: backward produced inf in the gradient for its
                              # input 'x' (shape ...); the log ran at File "train.py", line 12 ...
    """

    def __init__(self, check_nan: bool = True, check_inf: bool = True) -> None:
        self.mode = (bool(check_nan), bool(check_inf)) if check_nan else None
        self.prev: tuple[bool, bool] | None = None

    def __enter__(self) -> detect_anomaly:
        self.prev = grad_mode._anomaly
        grad_mode._anomaly = self.mode
        return self

    def __exit__(self, *exc: object) -> None:
        grad_mode._anomaly = self.prev

    def __call__(self, func: F) -> F:
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(*(mode or (False, False))):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``."""
    return grad_mode._anomaly is not None


def check_gradients(node: Any, grads: tuple[Any, ...]) -> None:
    """Raise if a gradient ``node``'s backward returned holds a NaN (or an inf when asked)."""
    mode = grad_mode._anomaly
    if mode is None:
        return
    check_inf = mode[1]
    labels = node.input_labels()
    for i, gi in enumerate(grads):
        if gi is None:
            continue
        data = gi._data
        if data.dtype.kind not in "fc":
            continue
        nan = np.isnan(data)
        bad = nan if not check_inf else ~np.isfinite(data)
        if not bad.any():
            continue
        count = int(bad.sum())
        kind = "nan" if nan.any() else "inf"
        first = tuple(int(v) for v in np.argwhere(bad)[0])
        place = node.__dict__.get("_where")
        ran = (
            f"the {node.name} ran in the forward at {place}"
            if place is not None
            else f"the {node.name} was created outside detect_anomaly(), so its place is unknown"
        )
        raise RuntimeError(
            f"{node.name}: backward produced {kind} in the gradient for its input {labels[i]!r} "
            f"(shape {data.shape}; {count} non-finite value(s), first at index {first}); {ran}. "
            "Look for a value outside the op's domain there (log/sqrt/div at 0 or below)."
        )

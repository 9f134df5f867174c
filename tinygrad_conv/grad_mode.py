"""Global switch for graph recording: ``no_grad()``, ``enable_grad()``, ``set_grad_enabled()``.

Kept in its own tiny module because both the Tensor and the Function machinery read it on every op;
the in-place clock (version counter) and the ``detect_anomaly()`` flag live here for the same reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_grad_enabled: bool = True

#: The in-place clock: how many in-place modifications of tensors have happened in this process
#: (``t += x``, ``t.add_(...)``, ``t.data = ...``). Each graph node stamps it when created and each
#: modified tensor stamps it in ``Tensor._version``; a backward checks a node's tensors only when
#: the clock has moved since the node's stamp (autograd._check_versions), so the common case
#: costs one comparison per node.
_version_clock: int = 0

#: ``None`` outside ``detect_anomaly()``; inside, ``(check_nan, check_inf)`` (tinygrad_conv.anomaly).
_anomaly: tuple[bool, bool] | None = None


def is_grad_enabled() -> bool:
    """Return True when new ops are recorded into the autograd graph."""
    return _grad_enabled


class set_grad_enabled:  # noqa: N801 - lower-case like PyTorch, it is used as a function
    """Context manager (and decorator) that turns graph recording on or off.

    Under ``set_grad_enabled(False)`` ops run their numpy forward only: no node, no saved arrays.
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = _grad_enabled

    def __enter__(self) -> None:
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self.prev

    def __call__(self, func: F) -> F:
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(set_grad_enabled):  # noqa: N801
    """Disable graph recording: ``with tc.no_grad(): ...`` or ``@tc.no_grad()``."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):  # noqa: N801
    """Re-enable graph recording inside a ``no_grad`` block."""

    def __init__(self) -> None:
        super().__init__(True)

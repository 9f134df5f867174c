"""Global switch for graph recording: ``no_grad()``, ``enable_grad()``, ``set_grad_enabled()``.

Kept in its own tiny module because both the Tensor and the Function machinery read it on every op.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_grad_enabled: bool = True


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

"""Which module is running: a tiny scope stack for graph drawings (no dependency on nn or viz).

``nn.Module.__call__`` enters the module's scope around ``forward``; ``Function.apply`` reads
:func:`current_scope` and stores it on the node it records as ``ctx.scope``. The drawing code
(``tinygrad_conv.viz``) then groups ops by module (``draw_graph(..., collapse='module')``).

The scope is the chain of module *objects* from the outermost module being called to the innermost
one (``(model, model.features, model.features[0])``); names are resolved only when drawing, with
:func:`module_path`. The chain is an immutable tuple shared by all the nodes recorded inside the
same module call, so tagging a node costs one global read.

Hooks::

    # nn/module.py, Module.__call__
    prev = _scope.push_scope(self)
    try:
        return self.forward(*args, **kwargs)
    finally:
        _scope.pop_scope(prev)

    # function.py, Function.apply, inside ``if record:``
    ctx.scope = _scope._current      # and add "scope" to the keys that release() keeps
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["current_scope", "module_path", "module_scope", "pop_scope", "push_scope"]

#: The chain of modules being called, outermost first. A plain global read by ``Function.apply``
#: on every recorded op (like ``grad_mode._grad_enabled``): the engine is single-threaded.
_current: tuple[Any, ...] = ()


def current_scope() -> tuple[Any, ...]:
    """The chain of modules being called, outermost first (``()`` outside any module)."""
    return _current


def push_scope(module: Any) -> tuple[Any, ...]:
    """Enter ``module``'s scope; returns the previous chain, to give to :func:`pop_scope`."""
    global _current
    prev = _current
    _current = prev + (module,)
    return prev


def pop_scope(prev: tuple[Any, ...]) -> None:
    """Leave the scope entered by :func:`push_scope` (restores the chain it returned)."""
    global _current
    _current = prev


@contextmanager
def module_scope(module: Any) -> Iterator[tuple[Any, ...]]:
    """Context manager form of :func:`push_scope` / :func:`pop_scope`; yields the new chain."""
    prev = push_scope(module)
    try:
        yield _current
    finally:
        pop_scope(prev)


def _child_name(parent: Any, child: Any) -> str | None:
    """The attribute path under which ``parent`` holds ``child`` (``features``, ``layers.0``)."""
    modules = getattr(parent, "_modules", None)
    if isinstance(modules, dict):
        for name, m in modules.items():
            if m is child:
                return str(name)
    try:
        items = list(vars(parent).items())
    except TypeError:
        return None
    for name, value in items:
        if value is child:
            return name
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if v is child:
                    return f"{name}.{i}"
        elif isinstance(value, dict):
            for k, v in value.items():
                if v is child:
                    return f"{name}.{k}"
    return None


def module_path(chain: tuple[Any, ...], names: dict[int, str] | None = None) -> str:
    """Dotted name of ``chain[-1]`` relative to ``chain[0]`` (``''`` for the outermost module).

    Args:
        chain: a scope chain as returned by :func:`current_scope`.
        names: optional ``{id(module): path}`` map (from ``root.named_modules()``), tried first.

    Falls back to the attribute under which each parent holds its child, then to the class name.
    """
    if names is not None and chain and id(chain[-1]) in names:
        return names[id(chain[-1])]
    parts: list[str] = []
    for parent, child in zip(chain, chain[1:], strict=False):
        parts.append(_child_name(parent, child) or type(child).__name__)
    return ".".join(parts)

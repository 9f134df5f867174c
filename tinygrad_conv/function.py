"""The ``Function`` base class: one node of the autograd graph.

A Function subclass defines

* ``forward(ctx, *arrays, **attrs) -> ndarray`` on plain numpy arrays (no graph, pure numpy), and
* ``backward(ctx, grad_output: Tensor) -> Tensor | tuple[Tensor | None, ...]`` written with
  *differentiable* Tensor ops (DeZero's rule).

Because backward is made of ordinary ops, running it with recording on (``create_graph=True``) builds
the graph of the gradient itself, so second derivatives need no extra code.

The instance passed as ``ctx`` *is* the graph node. It keeps the input Tensors (the graph edges), the
keyword attributes (for drawing), whatever ``save_for_backward`` stored, and a weak reference to its
output (a strong one would form a cycle output -> node -> output). ``release()`` drops all arrays once
backward has used them, like PyTorch's freeing of saved tensors.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tinygrad_conv import grad_mode
from tinygrad_conv import scope as _scope

if TYPE_CHECKING:
    from tinygrad_conv.tensor import Tensor

# The node whose backward is running (set by the engine), so that every op called inside it can be
# recorded in ``node.backward_calls``: this is how the drawings and examples show "what backward calls".
_running_backward: Function | None = None


class Function:
    """Base class of differentiable ops; see the module docstring for the contract.

    Attributes available on ``ctx``:
        inputs: the input Tensors (constants are wrapped as Tensors that do not require grad).
        needs_input_grad: one bool per input, like PyTorch.
        attrs: the keyword arguments given to ``apply`` (non-differentiable op attributes).
        output: the output Tensor while it is alive (``None`` otherwise).
        backward_calls: list of ``(op_name, input_shapes, output_shape)`` recorded while backward ran.
    """

    #: Name shown in drawings and error messages; defaults to the class name in lower case.
    op_name: ClassVar[str] = ""

    inputs: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]
    attrs: dict[str, Any]
    backward_calls: list[tuple[str, tuple[tuple[int, ...], ...], tuple[int, ...]]]
    released: bool

    # -- the two methods subclasses write ---------------------------------------------------------
    @staticmethod
    def forward(ctx: Function, *arrays: np.ndarray, **attrs: Any) -> np.ndarray:
        """Compute the output array from input arrays (pure numpy)."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, grad_output: Tensor) -> Tensor | None | tuple[Tensor | None, ...]:
        """Return one gradient per input (``None`` where not needed), as Tensor ops."""
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------------------
    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays or Tensors for backward; released after backward unless ``retain_graph``."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What ``save_for_backward`` stored (raises once the graph has been released)."""
        if self.released:
            raise RuntimeError(_released_message(self))
        return self._saved

    @property
    def output(self) -> Tensor | None:
        """The output Tensor of this node, if still alive (the engine keeps it alive in backward)."""
        ref = self.__dict__.get("_output_ref")
        return None if ref is None else ref()

    @property
    def name(self) -> str:
        """Display name of the op (``op_name`` or the class name in lower case)."""
        return type(self).op_name or type(self).__name__.lower()

    def release(self) -> None:
        """Free the inputs, saved values and any arrays stored on ``ctx`` (after backward)."""
        d = self.__dict__
        attrs = d["attrs"]
        # array-valued attributes (masks, argmax, window matrices, index arrays inside a getitem
        # tuple) can be activation-sized: keep only a description of them, for drawings
        for value in attrs.values():
            if type(value) not in _PLAIN_ATTR_TYPES and _holds_array(value):
                attrs = {k: _describe_arrays(v) for k, v in attrs.items()}
                break
        keep = {
            "attrs": attrs,
            "needs_input_grad": d["needs_input_grad"],
            "backward_calls": d["backward_calls"],
            "inputs": None,
            "released": True,
        }
        if "scope" in d:
            keep["scope"] = d["scope"]
        d.clear()
        d.update(keep)

    # -- graph construction ------------------------------------------------------------------------
    @classmethod
    def apply(cls, *inputs: Any, **attrs: Any) -> Tensor:
        """Run the op on Tensors (or arrays/scalars, taken as constants) and record a graph node.

        A node is recorded only when grad mode is on and at least one input requires grad.
        """
        tensors = tuple([x if isinstance(x, _Tensor) else _Tensor(x) for x in inputs])
        needs = tuple([t.requires_grad for t in tensors])
        record = grad_mode._grad_enabled and True in needs
        ctx = cls.__new__(cls)
        # one dict instead of six attribute writes: apply runs for every op of every step
        ctx.__dict__ = {
            "attrs": attrs,
            "needs_input_grad": needs if record else (False,) * len(tensors),
            "backward_calls": [],
            "released": False,
            "_saved": (),
        }
        out_data = cls.forward(ctx, *[t.data for t in tensors], **attrs)
        if type(out_data) is not np.ndarray:
            out_data = np.asarray(out_data)
        out = _Tensor._from_op(out_data, record)
        if record:
            d = ctx.__dict__
            d["inputs"] = tensors
            d["_output_ref"] = weakref.ref(out)
            d["scope"] = _scope._current  # the modules being called, for drawings by module
            out._ctx = ctx
        if _running_backward is not None:
            _running_backward.backward_calls.append(
                (ctx.name, tuple([t.data.shape for t in tensors]), out_data.shape)
            )
        return out

    def __repr__(self) -> str:
        state = "released" if self.released else "live"
        return f"<{self.name} node ({state})>"


# attribute types that can hold no array (release() keeps them as they are)
_PLAIN_ATTR_TYPES = frozenset({int, float, bool, str, type(None)})


def _holds_array(value: Any) -> bool:
    """Whether ``value`` is an ndarray or a tuple/list with one inside (shapes, geometries and
    other small attributes are not, and release() keeps them untouched)."""
    if isinstance(value, np.ndarray):
        return True
    # the same containers as _describe_arrays walks; shapes (ints) are skipped without a call
    if type(value) in (tuple, list):
        return any(_holds_array(v) for v in value if type(v) not in _PLAIN_ATTR_TYPES)
    return False


def _describe_arrays(value: Any) -> Any:
    """``value`` with every ndarray (also inside tuples and lists) replaced by a short description."""
    if isinstance(value, np.ndarray):
        return f"<array {value.shape} {value.dtype}>"
    if type(value) in (tuple, list):
        return type(value)(_describe_arrays(v) for v in value)
    return value


def _released_message(node: Function) -> str:
    return (
        f"{node.name}: trying to backward through the graph a second time (or to read values that "
        "backward already freed). Pass retain_graph=True to the first backward() or grad() call."
    )


from tinygrad_conv.tensor import Tensor as _Tensor  # noqa: E402  (tensor.py imports this module's users)

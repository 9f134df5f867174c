"""The ``Tensor``: a numpy array plus the autograd bookkeeping (PyTorch's surface, NumPy's semantics).

Only the data structure and the user-facing API live here. The differentiable operations are in
``tinygrad_conv.ops`` and the reverse pass in ``tinygrad_conv.autograd``; the methods below are thin
forwards to them (imported at the bottom of this module, because ops build Tensors).
"""

from __future__ import annotations

import functools
import inspect
import operator
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_conv import grad_mode

if TYPE_CHECKING:
    from tinygrad_conv.function import Function

ArrayLike = Any  # anything np.asarray accepts, or a Tensor

#: dtype for floating data built from Python numbers and for the random/constant factories,
#: as in PyTorch and TensorFlow; numpy arrays always keep their own dtype.
DEFAULT_FLOAT = np.dtype(np.float32)


def _to_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    """Convert ``data`` to an ndarray without copying an existing array of the right dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "OUSVM":
            raise TypeError(
                f"tensor(): cannot build a numeric tensor from an ndarray of dtype {data.dtype} "
                f"(shape {data.shape}); convert it to numbers first"
            )
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    if data is None:
        raise TypeError("tensor(): cannot build a tensor from None (give numbers or an array)")
    if isinstance(data, (str, bytes)):
        raise TypeError(f"tensor(): cannot build a numeric tensor from a string ({data!r:.40})")
    try:
        arr = np.asarray(data, dtype=dtype)
    except ValueError as e:
        if "inhomogeneous" in str(e) or "sequence" in str(e):
            raise ValueError(
                "tensor(): the nested lists have different lengths (a ragged list); every row "
                "must have the same length to make a rectangular tensor"
            ) from None
        raise ValueError(f"tensor(): cannot convert the data to dtype {dtype}: {e}") from None
    except TypeError as e:
        raise TypeError(f"tensor(): cannot build a tensor of dtype {dtype}: {e}") from None
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(DEFAULT_FLOAT)  # Python floats -> float32 like torch.tensor / tf.constant
    if arr.dtype.kind in "OUSVM":  # objects, strings, records, datetimes: not numbers
        what = type(data).__name__
        if arr.dtype.kind in "US":
            what += " of strings"
        raise TypeError(
            f"tensor(): cannot build a numeric tensor from {what} (numpy dtype {arr.dtype}); "
            "give numbers (bool, int, float), nested lists of numbers or a numeric ndarray"
        )
    return arr


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like; an ndarray is wrapped without a copy (like ``torch.from_numpy``).
        requires_grad: record ops on this tensor so gradients can flow to it (float dtypes only).
        dtype: optional numpy dtype to convert to.
        name: optional label used by error messages and graph drawings.
    """

    # ``data`` and ``grad`` are properties over the ``_data``/``_grad`` slots (defined after the
    # class): assigning ``t.data`` (also ``t.data -= x``) bumps the version counter, and reading
    # ``.grad`` of a non-leaf warns. The engine reads the slots directly (no property cost).
    # ``_version`` (the in-place clock when this tensor was last modified in place) and
    # ``_history`` (the states an in-place op with grad on replaced) stay unset until an in-place
    # op: creating a tensor costs nothing more.
    __slots__ = (
        "_data",
        "requires_grad",
        "_grad",
        "_ctx",
        "name",
        "_retains_grad",
        "_hooks",
        "_version",
        "_history",
        "__weakref__",
    )

    def __init__(
        self,
        data: ArrayLike,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        self._data: np.ndarray = _to_array(data, dtype)
        self._grad: Tensor | None = None
        self._ctx: Function | None = None
        self.name = name
        self._retains_grad = False
        self._hooks: list[Callable[[Tensor], Tensor | None]] | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: np.ndarray, requires_grad: bool) -> Tensor:
        """Fast constructor used by ``Function.apply`` (no conversion, no checks)."""
        t = cls.__new__(cls)
        t._data = data
        t._grad = None
        t._ctx = None
        t.name = None
        t._retains_grad = False
        t._hooks = None
        t.requires_grad = requires_grad
        return t

    # -- basic properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``."""
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of ``data``."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """Number of elements (an int, NumPy's meaning; PyTorch's ``size()`` is ``shape``)."""
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (parameters, inputs, constants)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Function | None:
        """The graph node that produced this tensor (``None`` for leaves)."""
        return self._ctx

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        """All axes reversed, like ``ndarray.T``."""
        return _ops.transpose(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only float tensors can require grad); returns self."""
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, "
                f"got dtype {self.data.dtype} (shape {self.data.shape})"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    # -- conversions ------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying ndarray (no copy)."""
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements (shape {self.shape})")
        return self.data.item()

    def tolist(self) -> Any:
        """Nested Python lists of the values."""
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing the same data, cut from the graph."""
        return Tensor._from_op(self.data, False)

    def astype(self, dtype: Any) -> Tensor:
        """Differentiable dtype conversion (gradient converted back to this tensor's dtype)."""
        return _ops.cast(self, dtype)

    def float(self) -> Tensor:
        """Convert to float32."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """Convert to float64."""
        return self.astype(np.float64)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data)

    __hash__ = object.__hash__  # identity, although == is elementwise (as in PyTorch)

    # -- autograd ---------------------------------------------------------------------------------
    def backward(
        self,
        gradient: ArrayLike | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        Args:
            gradient: the upstream gradient (same shape as self); optional for one-element tensors.
            retain_graph: keep saved arrays so backward can run again (default: ``create_graph``).
            create_graph: record the backward pass itself, so gradients can be differentiated again.
        """
        _autograd.backward([self], [gradient], retain_graph, create_graph)

    def retain_grad(self) -> None:
        """Ask a non-leaf tensor to keep its ``.grad`` after backward."""
        if self._ctx is not None:
            self._retains_grad = True

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _HookHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    # -- operators (NumPy broadcasting) -----------------------------------------------------------
    def __add__(self, other: ArrayLike) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: ArrayLike) -> Tensor:
        return _ops.pow(self, other)

    def __rpow__(self, other: ArrayLike) -> Tensor:
        return _ops.pow(other, self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # comparisons give boolean constant tensors (not differentiable), as in PyTorch
    def __lt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data < _to_array(other))

    def __le__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data <= _to_array(other))

    def __gt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data > _to_array(other))

    def __ge__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data >= _to_array(other))

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor(self.data == _to_array(other))

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        return Tensor(self.data != _to_array(other))

    # -- method forms of the ops ------------------------------------------------------------------
    def add(self, other: ArrayLike) -> Tensor:
        """self + other with broadcasting."""
        return _ops.add(self, other)

    def sub(self, other: ArrayLike) -> Tensor:
        """self - other with broadcasting."""
        return _ops.sub(self, other)

    def mul(self, other: ArrayLike) -> Tensor:
        """self * other with broadcasting."""
        return _ops.mul(self, other)

    def div(self, other: ArrayLike) -> Tensor:
        """self / other with broadcasting (true division)."""
        return _ops.div(self, other)

    def neg(self) -> Tensor:
        """-self."""
        return _ops.neg(self)

    def pow(self, exponent: ArrayLike) -> Tensor:
        """self ** exponent with broadcasting."""
        return _ops.pow(self, exponent)

    def where(self, condition: ArrayLike, other: ArrayLike) -> Tensor:
        """self where ``condition`` is true, else ``other`` (PyTorch's ``Tensor.where``)."""
        return _ops.where(condition, self, other)

    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return _ops.exp(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        """Elementwise absolute value."""
        return _ops.abs(self)

    def relu(self) -> Tensor:
        """max(x, 0)."""
        return _ops.relu(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        """x if x > 0 else negative_slope * x."""
        return _ops.leaky_relu(self, negative_slope)

    def sigmoid(self) -> Tensor:
        """1 / (1 + e**-x)."""
        return _ops.sigmoid(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return _ops.tanh(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Clamp values to [min, max]."""
        return _ops.clip(self, min, max)

    def maximum(self, other: ArrayLike) -> Tensor:
        """Elementwise maximum with broadcasting."""
        return _ops.maximum(self, other)

    def minimum(self, other: ArrayLike) -> Tensor:
        """Elementwise minimum with broadcasting."""
        return _ops.minimum(self, other)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes by default)."""
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes by default)."""
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; ties share the gradient equally."""
        return _ops.max(self, axis, keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; ties share the gradient equally."""
        return _ops.min(self, axis, keepdims)

    def var(
        self, axis: int | Sequence[int] | None = None, ddof: int = 0, keepdims: bool = False
    ) -> Tensor:
        """Variance over ``axis`` with NumPy's ``ddof`` (0: population variance)."""
        return _ops.var(self, axis, ddof, keepdims)

    def logsumexp(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """log(sum(exp(x))) computed without overflow."""
        return _ops.logsumexp(self, axis, keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(x) / sum(exp(x)) along ``axis``, without overflow."""
        return _ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """x - logsumexp(x) along ``axis``."""
        return _ops.log_softmax(self, axis)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """Same data, new shape (one entry may be -1)."""
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)  # type: ignore[arg-type]

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Two axes: swap them (PyTorch's ``transpose(0, 1)``); three or more, or one sequence:
        permute them (NumPy's); no argument reverses all axes."""
        if len(axes) == 2 and isinstance(axes[0], _INTS) and isinstance(axes[1], _INTS):
            # NumPy's two-axis call is a permutation of a 2-d array (the identity for (0, 1)),
            # which nobody means: PyTorch's meaning
            return _ops.swapaxes(self, axes[0], axes[1])
        if len(axes) == 1 and not isinstance(axes[0], _INTS):
            axes = tuple(axes[0])  # type: ignore[arg-type]
        return _ops.transpose(self, axes or None)  # type: ignore[arg-type]

    def permute(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (PyTorch's name for NumPy's transpose with axes), e.g. ``permute(0, 3, 1, 2)``."""
        if len(axes) == 1 and not isinstance(axes[0], _INTS):
            axes = tuple(axes[0])  # type: ignore[arg-type]
        return _ops.transpose(self, axes)  # type: ignore[arg-type]

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        """PyTorch's name for ``reshape`` (same data, new shape; one entry may be -1)."""
        return self.reshape(*shape)

    def dim(self) -> int:
        """Number of dimensions (PyTorch's name for ``ndim``)."""
        return self._data.ndim

    def numel(self) -> int:
        """Number of elements (PyTorch's name for ``size``)."""
        return self._data.size

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (the gradient flows back unchanged)."""
        return _ops.clone(self)

    def to(self, dtype: Any) -> Tensor:
        """Convert to ``dtype`` (a numpy dtype, its name, or a Tensor whose dtype to take);
        ``'cpu'`` returns self (numpy is the only device)."""
        if isinstance(dtype, Tensor):
            dtype = dtype._data.dtype
        if isinstance(dtype, str) and dtype.lower() == "cpu":
            return self
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"to(): expected a dtype (np.float32, 'float64', ...) or 'cpu', got {dtype!r}"
            ) from None
        return self if dt == self._data.dtype else _ops.cast(self, dt)

    def __float__(self) -> float:
        if self._data.size != 1:
            raise TypeError(
                f"float(): only a one-element tensor can be converted to a Python float; "
                f"this one has shape {self.shape}"
            )
        return float(self._data.reshape(()))

    def __int__(self) -> int:
        if self._data.size != 1:
            raise TypeError(
                f"int(): only a one-element tensor can be converted to a Python int; "
                f"this one has shape {self.shape}"
            )
        return int(self._data.reshape(()))

    def __index__(self) -> int:
        if self._data.size != 1 or self._data.dtype.kind not in "iub":
            raise TypeError(
                f"only a one-element integer tensor can be used as an index; got dtype "
                f"{self.dtype} and shape {self.shape}"
            )
        return int(self._data.reshape(()))

    # -- in-place ops (PyTorch's semantics; see _inplace_binary) ------------------------------------
    def __iadd__(self, other: ArrayLike) -> Tensor:
        return _inplace_binary(self, "add_", np.add, _ops.add, other)

    def __isub__(self, other: ArrayLike) -> Tensor:
        return _inplace_binary(self, "sub_", np.subtract, _ops.sub, other)

    def __imul__(self, other: ArrayLike) -> Tensor:
        return _inplace_binary(self, "mul_", np.multiply, _ops.mul, other)

    def __itruediv__(self, other: ArrayLike) -> Tensor:
        return _inplace_binary(self, "div_", np.true_divide, _ops.div, other)

    def add_(self, other: ArrayLike, alpha: float | None = None) -> Tensor:
        """self += alpha * other in place (PyTorch's ``add_``); returns self."""
        if alpha is not None:
            other = _scaled(other, alpha)
        return _inplace_binary(self, "add_", np.add, _ops.add, other)

    def sub_(self, other: ArrayLike, alpha: float | None = None) -> Tensor:
        """self -= alpha * other in place; returns self."""
        if alpha is not None:
            other = _scaled(other, alpha)
        return _inplace_binary(self, "sub_", np.subtract, _ops.sub, other)

    def mul_(self, other: ArrayLike) -> Tensor:
        """self *= other in place; returns self."""
        return _inplace_binary(self, "mul_", np.multiply, _ops.mul, other)

    def div_(self, other: ArrayLike) -> Tensor:
        """self /= other in place (true division); returns self."""
        return _inplace_binary(self, "div_", np.true_divide, _ops.div, other)

    def zero_(self) -> Tensor:
        """Fill with zeros in place; returns self."""
        return self.fill_(0)

    def fill_(self, value: float | int | bool | ArrayLike) -> Tensor:
        """Fill with one value in place (a Python number or a one-element tensor); returns self."""
        if isinstance(value, Tensor):
            if value._data.size != 1:
                raise ValueError(
                    f"fill_: the value must be a number or a one-element tensor, got shape "
                    f"{value.shape}"
                )
            value = value._data.reshape(())[()]
        if not isinstance(value, (bool, int, float, np.generic)):
            raise TypeError(f"fill_: the value must be a number, got {type(value).__name__}")
        # with a graph: where(all False, old, value) has exactly ``value`` and a zero gradient
        # for the old values (0 * old would turn an inf into nan)
        return _inplace_unary(
            self,
            "fill_",
            lambda t: _ops.where(np.zeros(t.shape, bool), t, np.full(t.shape, value, t.dtype)),
            value,
        )

    def copy_(self, src: ArrayLike) -> Tensor:
        """Copy ``src`` (broadcast to self's shape, cast to self's dtype) into self in place;
        gradients flow to ``src``; returns self."""
        return _inplace_copy(self, src)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Clamp to [min, max] in place; returns self."""
        if min is None and max is None:
            raise ValueError("clamp_: at least one of min and max must be given")
        return _inplace_unary(self, "clamp_", lambda t: _ops.clip(t, min, max), (min, max))

    # ndarray OP Tensor and numpy ufuncs on Tensors: see _tensor_array_ufunc
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _tensor_array_ufunc(ufunc, method, inputs, kwargs)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes."""
        return _ops.swapaxes(self, axis1, axis2)

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge axes ``start_axis..end_axis`` into one."""
        return _ops.flatten(self, start_axis, end_axis)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """Broadcast to ``shape`` with NumPy's rules."""
        return _ops.broadcast_to(self, shape)

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        """Remove length-1 axes (all of them, or those in ``axis``)."""
        return _ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert a length-1 axis at ``axis``."""
        return _ops.unsqueeze(self, axis)

    def matmul(self, other: ArrayLike) -> Tensor:
        """Matrix product with NumPy's rules (1-D, 2-D, batched)."""
        return _ops.matmul(self, other)

    # -- op breadth (issue 17): thin forwards to tinygrad_conv.ops.unary / .activation -------------
    def sin(self) -> Tensor:
        """Elementwise ``tc.sin``; see ``tinygrad_conv.sin``."""
        return _ops.sin(self)

    def cos(self) -> Tensor:
        """Elementwise ``tc.cos``; see ``tinygrad_conv.cos``."""
        return _ops.cos(self)

    def tan(self) -> Tensor:
        """Elementwise ``tc.tan``; see ``tinygrad_conv.tan``."""
        return _ops.tan(self)

    def asin(self) -> Tensor:
        """Elementwise ``tc.asin``; see ``tinygrad_conv.asin``."""
        return _ops.asin(self)

    def acos(self) -> Tensor:
        """Elementwise ``tc.acos``; see ``tinygrad_conv.acos``."""
        return _ops.acos(self)

    def atan(self) -> Tensor:
        """Elementwise ``tc.atan``; see ``tinygrad_conv.atan``."""
        return _ops.atan(self)

    def sinh(self) -> Tensor:
        """Elementwise ``tc.sinh``; see ``tinygrad_conv.sinh``."""
        return _ops.sinh(self)

    def cosh(self) -> Tensor:
        """Elementwise ``tc.cosh``; see ``tinygrad_conv.cosh``."""
        return _ops.cosh(self)

    def asinh(self) -> Tensor:
        """Elementwise ``tc.asinh``; see ``tinygrad_conv.asinh``."""
        return _ops.asinh(self)

    def acosh(self) -> Tensor:
        """Elementwise ``tc.acosh``; see ``tinygrad_conv.acosh``."""
        return _ops.acosh(self)

    def atanh(self) -> Tensor:
        """Elementwise ``tc.atanh``; see ``tinygrad_conv.atanh``."""
        return _ops.atanh(self)

    def exp2(self) -> Tensor:
        """Elementwise ``tc.exp2``; see ``tinygrad_conv.exp2``."""
        return _ops.exp2(self)

    def log2(self) -> Tensor:
        """Elementwise ``tc.log2``; see ``tinygrad_conv.log2``."""
        return _ops.log2(self)

    def log10(self) -> Tensor:
        """Elementwise ``tc.log10``; see ``tinygrad_conv.log10``."""
        return _ops.log10(self)

    def expm1(self) -> Tensor:
        """Elementwise ``tc.expm1``; see ``tinygrad_conv.expm1``."""
        return _ops.expm1(self)

    def log1p(self) -> Tensor:
        """Elementwise ``tc.log1p``; see ``tinygrad_conv.log1p``."""
        return _ops.log1p(self)

    def rsqrt(self) -> Tensor:
        """Elementwise ``tc.rsqrt``; see ``tinygrad_conv.rsqrt``."""
        return _ops.rsqrt(self)

    def square(self) -> Tensor:
        """Elementwise ``tc.square``; see ``tinygrad_conv.square``."""
        return _ops.square(self)

    def reciprocal(self) -> Tensor:
        """Elementwise ``tc.reciprocal``; see ``tinygrad_conv.reciprocal``."""
        return _ops.reciprocal(self)

    def erf(self) -> Tensor:
        """Elementwise ``tc.erf``; see ``tinygrad_conv.erf``."""
        return _ops.erf(self)

    def erfc(self) -> Tensor:
        """Elementwise ``tc.erfc``; see ``tinygrad_conv.erfc``."""
        return _ops.erfc(self)

    def sign(self) -> Tensor:
        """-1, 0 or 1 (no gradient); see ``tinygrad_conv.sign``."""
        return _ops.sign(self)

    def floor(self) -> Tensor:
        """Round down (no gradient); see ``tinygrad_conv.floor``."""
        return _ops.floor(self)

    def ceil(self) -> Tensor:
        """Round up (no gradient); see ``tinygrad_conv.ceil``."""
        return _ops.ceil(self)

    def trunc(self) -> Tensor:
        """Round toward zero (no gradient); see ``tinygrad_conv.trunc``."""
        return _ops.trunc(self)

    def isnan(self) -> Tensor:
        """Boolean mask of NaNs; see ``tinygrad_conv.isnan``."""
        return _ops.isnan(self)

    def isinf(self) -> Tensor:
        """Boolean mask of infinities; see ``tinygrad_conv.isinf``."""
        return _ops.isinf(self)

    def isfinite(self) -> Tensor:
        """Boolean mask of finite values; see ``tinygrad_conv.isfinite``."""
        return _ops.isfinite(self)

    def logical_not(self) -> Tensor:
        """Elementwise NOT; see ``tinygrad_conv.logical_not``."""
        return _ops.logical_not(self)

    def selu(self) -> Tensor:
        """Elementwise ``tc.selu``; see ``tinygrad_conv.selu``."""
        return _ops.selu(self)

    def silu(self) -> Tensor:
        """Elementwise ``tc.silu``; see ``tinygrad_conv.silu``."""
        return _ops.silu(self)

    def mish(self) -> Tensor:
        """Elementwise ``tc.mish``; see ``tinygrad_conv.mish``."""
        return _ops.mish(self)

    def softsign(self) -> Tensor:
        """Elementwise ``tc.softsign``; see ``tinygrad_conv.softsign``."""
        return _ops.softsign(self)

    def logsigmoid(self) -> Tensor:
        """Elementwise ``tc.logsigmoid``; see ``tinygrad_conv.logsigmoid``."""
        return _ops.logsigmoid(self)

    def hardsigmoid(self) -> Tensor:
        """Elementwise ``tc.hardsigmoid``; see ``tinygrad_conv.hardsigmoid``."""
        return _ops.hardsigmoid(self)

    def hardswish(self) -> Tensor:
        """Elementwise ``tc.hardswish``; see ``tinygrad_conv.hardswish``."""
        return _ops.hardswish(self)

    def relu6(self) -> Tensor:
        """Elementwise ``tc.relu6``; see ``tinygrad_conv.relu6``."""
        return _ops.relu6(self)

    def tanhshrink(self) -> Tensor:
        """Elementwise ``tc.tanhshrink``; see ``tinygrad_conv.tanhshrink``."""
        return _ops.tanhshrink(self)

    def round(self, decimals: int = 0) -> Tensor:
        """Round half to even (no gradient)."""
        return _ops.round(self, decimals)

    def gelu(self, approximate: str = "none") -> Tensor:
        """GELU, exact or ``approximate='tanh'``."""
        return _ops.gelu(self, approximate)

    def elu(self, alpha: float = 1.0) -> Tensor:
        """ELU with ``alpha``."""
        return _ops.elu(self, alpha)

    def celu(self, alpha: float = 1.0) -> Tensor:
        """CELU with ``alpha``."""
        return _ops.celu(self, alpha)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
        """log(1 + e^(beta x)) / beta, linear past ``threshold``."""
        return _ops.softplus(self, beta, threshold)

    def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
        """Clamp to [min_val, max_val] with PyTorch's gradient."""
        return _ops.hardtanh(self, min_val, max_val)

    def softmin(self, axis: int = -1) -> Tensor:
        """softmax(-x) along ``axis``."""
        return _ops.softmin(self, axis)

    def logaddexp(self, other: ArrayLike) -> Tensor:
        """log(e^self + e^other) without overflow."""
        return _ops.logaddexp(self, other)

    def lerp(self, end: ArrayLike, weight: ArrayLike) -> Tensor:
        """self + weight * (end - self)."""
        return _ops.lerp(self, end, weight)

    def remainder(self, other: ArrayLike) -> Tensor:
        """self mod other with the sign of other (Python's %)."""
        return _ops.remainder(self, other)

    def fmod(self, other: ArrayLike) -> Tensor:
        """C's fmod (the sign of self)."""
        return _ops.fmod(self, other)

    def __mod__(self, other: ArrayLike) -> Tensor:
        return _ops.remainder(self, other)

    def __rmod__(self, other: ArrayLike) -> Tensor:
        return _ops.remainder(other, self)

    def __floordiv__(self, other: ArrayLike) -> Tensor:
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other: ArrayLike) -> Tensor:
        return _ops.floor_divide(other, self)

    def floor_divide(self, other: ArrayLike) -> Tensor:
        """floor(self / other) (no gradient)."""
        return _ops.floor_divide(self, other)

    # reductions and scans (tinygrad_conv.ops.scan)
    def prod(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Product over ``axis``."""
        return _ops.prod(self, axis, keepdims)

    def cumsum(self, axis: int = 0) -> Tensor:
        """Cumulative sum along ``axis``."""
        return _ops.cumsum(self, axis)

    def cumprod(self, axis: int = 0) -> Tensor:
        """Cumulative product along ``axis``."""
        return _ops.cumprod(self, axis)

    def std(
        self, axis: int | Sequence[int] | None = None, ddof: int = 0, keepdims: bool = False
    ) -> Tensor:
        """Standard deviation with NumPy's ``ddof``."""
        return _ops.std(self, axis, ddof, keepdims)

    def any(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Whether any element is nonzero (no gradient)."""
        return _ops.any(self, axis, keepdims)

    def all(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Whether every element is nonzero (no gradient)."""
        return _ops.all(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the maximum (int64, no gradient)."""
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the minimum (int64, no gradient)."""
        return _ops.argmin(self, axis, keepdims)

    def sort(self, axis: int = -1, descending: bool = False) -> tuple[Tensor, Tensor]:
        """(values, indices) sorted along ``axis``."""
        return _ops.sort(self, axis, descending)

    def topk(
        self, k: int, axis: int = -1, largest: bool = True, sorted: bool = True
    ) -> tuple[Tensor, Tensor]:  # noqa: A002
        """The k largest (or smallest) values and their indices."""
        return _ops.topk(self, k, axis, largest, sorted)

    # movement and indexing (tinygrad_conv.ops.indexing)
    def flip(self, axis: int | Sequence[int] | None = None) -> Tensor:
        """Reverse along ``axis`` (all axes by default)."""
        return _ops.flip(self, axis)

    def roll(self, shifts: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
        """Cyclic shift along ``axis``."""
        return _ops.roll(self, shifts, axis)

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        """PyTorch's repeat (np.tile)."""
        return _ops.repeat(self, *sizes)

    def tile(self, reps: int | Sequence[int]) -> Tensor:
        """np.tile."""
        return _ops.tile(self, reps)

    def repeat_interleave(self, repeats: Any, axis: int | None = None) -> Tensor:
        """np.repeat: each element ``repeats`` times."""
        return _ops.repeat_interleave(self, repeats, axis)

    def split(self, split_size_or_sections: int | Sequence[int], axis: int = 0) -> tuple:
        """torch.split along ``axis``."""
        return _ops.split(self, split_size_or_sections, axis)

    def chunk(self, chunks: int, axis: int = 0) -> tuple:
        """torch.chunk along ``axis``."""
        return _ops.chunk(self, chunks, axis)

    def tril(self, k: int = 0) -> Tensor:
        """Lower triangle of the last two axes."""
        return _ops.tril(self, k)

    def triu(self, k: int = 0) -> Tensor:
        """Upper triangle of the last two axes."""
        return _ops.triu(self, k)

    def moveaxis(self, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
        """np.moveaxis."""
        return _ops.moveaxis(self, source, destination)

    def gather(self, axis: int, index: ArrayLike) -> Tensor:
        """torch.gather along ``axis``."""
        return _ops.gather(self, axis, index)

    def scatter_add(self, axis: int, index: ArrayLike, src: ArrayLike) -> Tensor:
        """torch.scatter_add (out of place)."""
        return _ops.scatter_add(self, axis, index, src)

    def masked_fill(self, mask: ArrayLike, value: float) -> Tensor:
        """``value`` where ``mask`` is true."""
        return _ops.masked_fill(self, mask, value)


_INTS = (int, np.integer)


# -- data and grad: properties over slots ----------------------------------------------------------
def _set_data(self: Tensor, value: Any) -> None:
    """``t.data = array`` (also the store of ``t.data -= x``): the tensor's values change, so its
    version moves and a backward that needs the old values raises instead of using new ones."""
    if type(value) is not np.ndarray:
        if isinstance(value, Tensor):
            value = value._data
        else:
            value = _to_array(value)
    self._data = value
    _bump(self)


def _get_grad(self: Tensor) -> Tensor | None:
    if self._ctx is not None and not self._retains_grad:
        warnings.warn(
            "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
            ".grad attribute won't be populated during backward(). If you want the gradient of "
            "a non-leaf Tensor, call .retain_grad() on it before backward(), or use "
            "tc.grad(loss, [tensor]).",
            UserWarning,
            stacklevel=2,
        )
    return self._grad


def _set_grad(self: Tensor, value: Tensor | None) -> None:
    self._grad = value


# the getter is C-level (operator.attrgetter): reading .data costs ~60 ns more than a slot, and the
# engine's hot paths read the slot itself
Tensor.data = property(  # type: ignore[assignment,method-assign]
    operator.attrgetter("_data"),
    _set_data,
    doc="The values (an ndarray, no copy). Assigning to it (also ``t.data -= x``) counts as an "
    "in-place modification.",
)
Tensor.grad = property(  # type: ignore[assignment,method-assign]
    _get_grad,
    _set_grad,
    doc="The accumulated gradient of a leaf (or of a non-leaf after ``retain_grad()``).",
)


# -- in-place ops ---------------------------------------------------------------------------------
def _bump(t: Tensor) -> None:
    """Count one in-place modification of ``t`` on the global clock and stamp ``t`` with it.

    Every graph node stamps the clock when it is created (``Function.apply``); at backward, a node
    whose stamp is behind the clock checks the tensors its backward reads (autograd).
    """
    clock = grad_mode._version_clock + 1
    grad_mode._version_clock = clock
    t._version = clock


def _leaf_error(op: str, t: Tensor) -> RuntimeError:
    return RuntimeError(
        f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
        f"(tensor of shape {t.shape}). To update a parameter, do it under `with tc.no_grad():` "
        "(e.g. `w -= lr * w.grad`); to start a new computation, use an out-of-place op "
        "(`y = w + x`) or `w.detach()`."
    )


def _scaled(other: ArrayLike, alpha: float) -> ArrayLike:
    if isinstance(other, Tensor):
        return _ops.mul(other, alpha)
    return np.multiply(_to_array(other), alpha)


def _result_dtype(ufunc: np.ufunc, data: np.ndarray, other: Any) -> np.dtype:
    """The dtype ``ufunc(data, other)`` has (NumPy's rules, Python scalars weak), on one element."""
    one = other if not isinstance(other, np.ndarray) else other.reshape(-1)[:1]
    return ufunc(np.zeros(1, data.dtype), one).dtype


def _check_result(op: str, t: Tensor, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """An in-place result must keep ``t``'s shape and be castable to its dtype (PyTorch's rules)."""
    if shape != t._data.shape:
        raise ValueError(
            f"{op}: output with shape {t.shape} doesn't match the broadcast shape {shape} "
            "(an in-place op cannot change the shape of the tensor it writes into)"
        )
    if not np.can_cast(dtype, t._data.dtype, casting="same_kind"):
        raise TypeError(
            f"{op}: result type {dtype} can't be cast to the desired output type "
            f"{t._data.dtype} (convert first: `t = t.astype({dtype.name!r})`, or write the result "
            "out of place)"
        )


def _writable(t: Tensor) -> np.ndarray:
    """``t``'s array, replaced by a private copy when numpy marks it read-only (a broadcast view)."""
    data = t._data
    if not data.flags.writeable:
        data = t._data = data.copy()
    return data


def _needs_graph(t: Tensor, other: Any) -> bool:
    return grad_mode._grad_enabled and (
        t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
    )


def _rebase(t: Tensor, op: str, compute: Callable[[Tensor], Tensor]) -> Tensor:
    """In-place op with grad mode on, on a non-leaf (``out += identity``) or with an operand that
    requires grad: compute the result out of place from a shallow copy of ``t`` that keeps the old
    node, then let the same Tensor object take the new value and node (no cycle in the graph).

    Nodes that used ``t`` before keep seeing its old state: the copy is kept in ``t._history`` and
    the engine puts it back into their inputs at backward (autograd._check_versions).
    """
    if t._ctx is None and t.requires_grad:
        raise _leaf_error(op, t)
    old = Tensor._from_op(t._data, t.requires_grad)
    old.name = t.name
    node = t._ctx
    if node is not None:
        old._ctx = node
        node.__dict__["_output_ref"] = weakref.ref(old)
    version = getattr(t, "_version", None)
    if version is not None:
        old._version = version
    history = getattr(t, "_history", None)
    if history is not None:
        old._history = history
    new = compute(old)
    if new is old:  # an op that returned its input (nothing to compute): keep the old state
        t._ctx, t.requires_grad = old._ctx, old.requires_grad
        if node is not None:
            node.__dict__["_output_ref"] = weakref.ref(t)
        return t
    _check_result(op, t, new._data.shape, new._data.dtype)
    if new._data.dtype != t._data.dtype:
        new = _ops.cast(new, t._data.dtype)
    t._data = new._data
    t._ctx = new._ctx
    t.requires_grad = new.requires_grad
    if new._ctx is not None:
        new._ctx.__dict__["_output_ref"] = weakref.ref(t)
    _bump(t)
    t._history = (*(history or ()), (t._version, old))
    return t


def _inplace_binary(
    t: Tensor, op: str, ufunc: np.ufunc, out_of_place: Callable[..., Tensor], other: Any
) -> Tensor:
    """``t op= other`` on the same Tensor object, as PyTorch does it.

    No graph to record (grad mode off, or nothing requires grad): numpy writes into ``t``'s array
    (``other`` broadcast to ``t``'s shape; the result must be castable to ``t``'s dtype). With a
    graph: an error on a leaf that requires grad, else :func:`_rebase`.
    """
    if _needs_graph(t, other):
        return _rebase(t, op, lambda old: out_of_place(old, other))
    arr = other._data if isinstance(other, Tensor) else other
    if not isinstance(arr, (np.ndarray, np.generic, bool, int, float)):
        try:
            arr = _to_array(arr)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{op}: cannot use {type(other).__name__} as an operand: {e}") from None
    data = t._data
    shape = np.shape(arr)
    try:
        full = np.broadcast_shapes(data.shape, shape)
    except ValueError:
        raise ValueError(
            f"{op}: operand of shape {shape} cannot be broadcast to the tensor's shape {data.shape}"
        ) from None
    _check_result(op, t, full, _result_dtype(ufunc, data, arr))
    target = _writable(t)  # first: the record names the array that is written
    if _function._pass_log is not None:  # inside a backward: the record shows this op
        _function.note_inplace(t, op, data, other if isinstance(other, Tensor) else arr)
    ufunc(target, arr, out=target, casting="same_kind")
    _bump(t)
    return t


def _inplace_unary(t: Tensor, op: str, compute: Callable[[Tensor], Tensor], arg: Any) -> Tensor:
    """fill_/clamp_: numpy in place without a graph, :func:`_rebase` with one."""
    if _needs_graph(t, None):
        return _rebase(t, op, compute)
    before = t._data
    data = _writable(t)  # first: the record names the array that is written
    if _function._pass_log is not None:  # inside a backward: the record shows this op
        if op == "fill_":
            _function.note_inplace(t, op, before, arg)
        else:
            _function.note_inplace(t, op, before, attrs={"min": arg[0], "max": arg[1]})
    if op == "fill_":
        if not np.can_cast(np.result_type(data, arg), data.dtype, casting="same_kind"):
            raise TypeError(
                f"fill_: value {arg!r} can't be cast to the tensor's dtype {data.dtype}"
            )
        data[...] = arg
    else:
        lo, hi = arg
        np.clip(data, lo, hi, out=data, casting="same_kind")
    _bump(t)
    return t


def _inplace_copy(t: Tensor, src: Any) -> Tensor:
    """copy_: values of ``src`` (broadcast, cast) into ``t``; with a graph the gradient goes to src."""
    s = src if isinstance(src, Tensor) else Tensor(_to_array(src))
    try:
        full = np.broadcast_shapes(t._data.shape, s._data.shape)
    except ValueError:
        full = None
    if full != t._data.shape:
        raise ValueError(
            f"copy_: source of shape {s.shape} cannot be broadcast to the tensor's shape {t.shape}"
        )
    if _needs_graph(t, s):
        if t._ctx is None and t.requires_grad:
            raise _leaf_error("copy_", t)
        dtype = t._data.dtype
        # clone: a node of its own even when broadcast/cast are no-ops (t must not take over
        # src's node, which would then have two outputs)
        return _rebase(
            t, "copy_", lambda old: _ops.clone(_ops.cast(_ops.broadcast_to(s, old.shape), dtype))
        )
    before = t._data
    target = _writable(t)  # first: the record names the array that is written
    if _function._pass_log is not None:  # inside a backward: the record shows this op
        _function.note_inplace(t, "copy_", before, s)
    np.copyto(target, s._data, casting="unsafe")  # copy_ casts like PyTorch's
    _bump(t)
    return t


_UFUNC_OPS: dict[np.ufunc, str] = {}


def _tensor_array_ufunc(
    ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """numpy calls this for ``ndarray OP Tensor`` and for ufuncs given a Tensor.

    * an ndarray output (``w.data += -lr * w.grad``, micrograd's habit): plain numpy on the
      Tensors' values, written into that array (no graph: it is an update of values);
    * the operators (``ndarray + Tensor``, ``np.float32(2) * t``, comparisons): the Tensor op,
      differentiable as with the operands swapped;
    * anything else: an error naming what to call instead.
    """
    out = kwargs.get("out")
    if out is not None:
        if method == "__call__" and all(type(o) is np.ndarray for o in out):
            arrays = [x._data if isinstance(x, Tensor) else x for x in inputs]
            try:
                shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])
            except ValueError:
                shape = None
            if shape is None or shape != out[0].shape:
                shapes = " and ".join(str(np.shape(a)) for a in arrays)
                raise ValueError(
                    f"{ufunc.__name__} into an ndarray of shape {out[0].shape} (e.g. "
                    f"`w.data += x`): operands of shapes {shapes} do not broadcast to it"
                )
            return ufunc(*arrays, **kwargs)
        raise TypeError(
            f"numpy {ufunc.__name__}(..., out=Tensor): write into a Tensor with its in-place "
            "methods (t += x, t.add_(x), t.copy_(x)) or into t.data"
        )
    if method == "__call__" and not kwargs:
        name = _UFUNC_OPS.get(ufunc)
        if name is not None:
            return getattr(_ops, name)(*inputs) if name[0] != "_" else _COMPARE[name](*inputs)
    raise TypeError(
        f"numpy's {ufunc.__name__} ({method}) was given a Tensor: call the tinygrad_conv op "
        f"(e.g. tc.{ufunc.__name__}(t) or a Tensor method) to stay in the graph, or pass "
        "t.numpy() to numpy for plain values"
    )


def _compare(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., Tensor]:
    return lambda a, b: Tensor(fn(_to_array(a), _to_array(b)))


_COMPARE: dict[str, Callable[..., Tensor]] = {
    "_less": _compare(np.less),
    "_less_equal": _compare(np.less_equal),
    "_greater": _compare(np.greater),
    "_greater_equal": _compare(np.greater_equal),
    "_equal": _compare(np.equal),
    "_not_equal": _compare(np.not_equal),
}
_UFUNC_OPS.update(
    {
        np.add: "add",
        np.subtract: "sub",
        np.multiply: "mul",
        np.true_divide: "div",
        np.power: "pow",
        np.matmul: "matmul",
        np.remainder: "remainder",
        np.floor_divide: "floor_divide",
        np.less: "_less",
        np.less_equal: "_less_equal",
        np.greater: "_greater",
        np.greater_equal: "_greater_equal",
        np.equal: "_equal",
        np.not_equal: "_not_equal",
    }
)


# -- dim= wherever axis= is ----------------------------------------------------------------------
#: NumPy's argument name -> PyTorch's
_DIM_ALIASES = {"axis": "dim", "start_axis": "start_dim", "end_axis": "end_dim"}


def accept_dim(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` also accepting PyTorch's ``dim=`` (``start_dim=``/``end_dim=``) for its ``axis=``
    (``start_axis=``/``end_axis=``) argument; both at once is a TypeError. ``fn`` itself when it
    has no axis argument."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    aliases = {alias: name for name, alias in _DIM_ALIASES.items() if name in params}
    if not aliases or any(alias in params for alias in aliases):
        return fn
    op = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            for alias, name in aliases.items():
                if alias in kwargs:
                    if name in kwargs:
                        raise TypeError(
                            f"{op}(): got both {name}= and {alias}= (NumPy's and PyTorch's names "
                            "of the same argument); pass one of them"
                        )
                    kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    return wrapper


for _name, _value in list(vars(Tensor).items()):
    if callable(_value) and not _name.startswith("__") and not isinstance(_value, type):
        _wrapped = accept_dim(_value)
        if _wrapped is not _value:
            setattr(Tensor, _name, _wrapped)
del _name, _value


class _HookHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        """Unregister the hook (no-op if already removed)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


# -- factories ------------------------------------------------------------------------------------
_global_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator used by ``randn``/``rand`` (and by layers' initialisers by default)."""
    global _global_rng
    _global_rng = np.random.default_rng(seed)


def _rng(generator: np.random.Generator | int | None) -> np.random.Generator:
    if generator is None:
        return _global_rng
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"shape must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def tensor(
    data: ArrayLike, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Build a Tensor (ndarrays keep their dtype; Python floats become float32 unless ``dtype``)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def zeros(*shape: int, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros, shape ``shape``."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: int, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """A tensor of ones, shape ``shape``."""
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(
    shape: Sequence[int], value: float, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False
) -> Tensor:
    """A tensor filled with ``value``."""
    return Tensor(np.full(_shape(tuple(shape)), value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: ArrayLike, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape and dtype of ``t``."""
    return Tensor(np.zeros_like(_to_array(t)), requires_grad=requires_grad)


def ones_like(t: ArrayLike, requires_grad: bool = False) -> Tensor:
    """Ones with the shape and dtype of ``t``."""
    return Tensor(np.ones_like(_to_array(t)), requires_grad=requires_grad)


def randn(
    *shape: int,
    dtype: Any = DEFAULT_FLOAT,
    requires_grad: bool = False,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Standard normal samples; ``generator`` is a numpy Generator or a seed."""
    data = _rng(generator).standard_normal(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(
    *shape: int,
    dtype: Any = DEFAULT_FLOAT,
    requires_grad: bool = False,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Uniform samples in [0, 1); ``generator`` is a numpy Generator or a seed."""
    data = _rng(generator).random(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values like ``np.arange`` (integer dtype for integer arguments)."""
    data = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and data.dtype == np.float64:
        dtype = DEFAULT_FLOAT
    return Tensor(data, dtype=dtype)


def is_grad_enabled() -> bool:
    """True when ops are being recorded."""
    return grad_mode._grad_enabled


from tinygrad_conv import autograd as _autograd  # noqa: E402  (needs Tensor defined)
from tinygrad_conv import function as _function  # noqa: E402
from tinygrad_conv import ops as _ops  # noqa: E402

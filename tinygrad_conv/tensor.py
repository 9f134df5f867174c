"""The ``Tensor``: a numpy array plus the autograd bookkeeping (PyTorch's surface, NumPy's semantics).

Only the data structure and the user-facing API live here. The differentiable operations are in
``tinygrad_conv.ops`` and the reverse pass in ``tinygrad_conv.autograd``; the methods below are thin
forwards to them (imported at the bottom of this module, because ops build Tensors).
"""

from __future__ import annotations

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
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(DEFAULT_FLOAT)  # Python floats -> float32 like torch.tensor / tf.constant
    if arr.dtype == object:
        raise TypeError(f"tensor(): cannot build a numeric tensor from {type(data).__name__}")
    return arr


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like; an ndarray is wrapped without a copy (like ``torch.from_numpy``).
        requires_grad: record ops on this tensor so gradients can flow to it (float dtypes only).
        dtype: optional numpy dtype to convert to.
        name: optional label used by error messages and graph drawings.
    """

    __slots__ = (
        "data",
        "requires_grad",
        "grad",
        "_ctx",
        "name",
        "_retains_grad",
        "_hooks",
        "__weakref__",
    )
    # Make numpy defer to our reflected operators: ndarray + Tensor -> Tensor.__radd__.
    __array_ufunc__ = None

    def __init__(
        self,
        data: ArrayLike,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        self.data: np.ndarray = _to_array(data, dtype)
        self.grad: Tensor | None = None
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
        t.data = data
        t.grad = None
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
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of ``data``."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

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
        """Permute axes NumPy-style (no argument reverses them)."""
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])  # type: ignore[arg-type]
        return _ops.transpose(self, axes or None)  # type: ignore[arg-type]

    def permute(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes (PyTorch's name for NumPy's transpose with axes)."""
        return self.transpose(*axes)

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
from tinygrad_conv import ops as _ops  # noqa: E402

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

    def roll(
        self, shifts: int | Sequence[int], axis: int | Sequence[int] | None = None
    ) -> Tensor:
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

"""The ``Function`` base class: one node of the autograd graph.

A Function subclass defines

* ``forward(ctx, *arrays, **attrs) -> ndarray`` on plain numpy arrays (no graph, pure numpy), and
* ``backward(ctx, grad_output: Tensor) -> Tensor | tuple[Tensor | None, ...]`` written with
  *differentiable* Tensor ops (DeZero's rule),

and declares, for the drawings, the names of its inputs (``input_names``), of what it saves
(``saved_names``) and its vector-Jacobian product per input (``vjp``, e.g. ``{"a": "mul(g, b)"}``):
the text a drawing shows before backward has run, checked by the tests against what a real
backward records (:mod:`tinygrad_conv.record`).

Because backward is made of ordinary ops, running it with recording on (``create_graph=True``) builds
the graph of the gradient itself, so second derivatives need no extra code.

The instance passed as ``ctx`` *is* the graph node. It keeps the input Tensors (the graph edges), the
keyword attributes (the op's arguments), whatever ``save_for_backward`` stored, and a weak reference
to its output (a strong one would form a cycle output -> node -> output). ``release()`` drops every
array once backward has used them, like PyTorch's freeing of saved tensors, but keeps the graph's
structure (:class:`Edge` per input) and the ``backward_record``, so a graph can be drawn after a
plain ``backward()``.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from tinygrad_conv import anomaly as _anomaly
from tinygrad_conv import grad_mode
from tinygrad_conv import record as _record_module
from tinygrad_conv import scope as _scope
from tinygrad_conv.record import BackwardRecord

if TYPE_CHECKING:
    from tinygrad_conv.tensor import Tensor


class Edge(NamedTuple):
    """What a node knows of one of its inputs, also after backward has freed the arrays.

    ``grad_fn`` is the node that produced the input (``None`` for a leaf); ``leaf`` the input itself
    when it is a leaf that requires grad (kept alive, like PyTorch's AccumulateGrad keeps its
    variable); ``ref`` a weak reference to any other input (constants, data), alive or not;
    ``value`` the number of a one-element constant (the 2 of ``x * 2``), else ``None``.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str | None
    requires_grad: bool
    grad_fn: Function | None
    leaf: Tensor | None
    ref: weakref.ref | None
    value: bool | int | float | None = None

    @property
    def tensor(self) -> Tensor | None:
        """The input Tensor if it is still alive (non-leaf inputs: only before release)."""
        if self.leaf is not None:
            return self.leaf
        return None if self.ref is None else self.ref()


_new_tuple = tuple.__new__  # NamedTuple's own __new__ is a Python function: this runs per edge


def _edge(t: Tensor, stamp: int | None = None) -> Edge:
    data = t._data
    if t._ctx is not None:
        return _new_tuple(Edge, (data.shape, data.dtype, t.name, True, t._ctx, None, _ref(t), None))
    if t.requires_grad:
        return _new_tuple(Edge, (data.shape, data.dtype, t.name, True, None, t, None, None))
    # a scalar constant: small, kept as a number, unless an in-place op changed it after the node
    # ``stamp`` used it (its number now is not the one the forward used)
    changed = stamp is not None and getattr(t, "_version", 0) > stamp
    value = data.item() if data.size == 1 and not changed else None
    return _new_tuple(Edge, (data.shape, data.dtype, t.name, False, None, None, _ref(t), value))


_ref = weakref.ref


def _moved_stamp(d: dict[str, Any]) -> int | None:
    """A node's in-place stamp if something was modified in place since it ran, else ``None``
    (nothing to look up: the common case costs one comparison)."""
    stamp = d.get("_v")
    return None if stamp == grad_mode._version_clock else stamp


def state_at(t: Tensor, stamp: int | None) -> Tensor:
    """``t`` as a node stamped ``stamp`` (the in-place clock when it ran) used it: the state an
    in-place op with grad on replaced after that (kept in ``t._history``), else ``t`` itself."""
    if stamp is None or getattr(t, "_version", 0) <= stamp:
        return t
    for clock, old in getattr(t, "_history", ()):
        if clock > stamp:  # the first rebase after the node ran replaced the state it used
            return old
    return t


class _PassLog:
    """What the backward of one node does while it runs: every op it calls (with its operand
    arrays and result array, held until the engine has turned them into a record, so that no id
    in the record can be reused by a new array while the pass runs) and the scalar constants it
    creates."""

    __slots__ = ("calls", "raw", "constants", "keep", "snapshots", "parent")

    def __init__(self, parent: _PassLog | None = None) -> None:
        # the log of the backward that ran this pass (a backward calling grad()): every op of the
        # inner pass is also one of the outer backward's calls
        self.parent = parent
        # (node, operand arrays, result array); node is None for an in-place op (note_inplace)
        self.calls: list[tuple[Function | None, list[np.ndarray], np.ndarray]] = []
        # per call, what the record keeps (no array; written by Function.apply): the op's class,
        # plain arguments, result shape, ids and shapes of the operands' arrays, id of the result
        self.raw: list[tuple[Any, ...]] = []
        self.constants: dict[int, Any] | None = None  # id of a constant's array -> its value
        self.keep: list[Any] | None = None  # the constants, alive while their ids are keys
        # call index -> copy of its result taken before an in-place op wrote into it (only while
        # record_backward(values=True) traces: the trace shows each call's value as it was made)
        self.snapshots: dict[int, np.ndarray] | None = None


def call_name(cls: type[Function], attrs: dict[str, Any]) -> str:
    """The ``name`` of a node of class ``cls`` with arguments ``attrs`` (a class may derive its
    name from its arguments, as matmul's transpose flags give ``matmul_nt``)."""
    if type(cls) is str:  # an in-place op (note_inplace)
        return cls
    if cls.name is Function.name:
        return cls.op_name or cls.__name__.lower()
    stand_in = cls.__new__(cls)
    stand_in.__dict__["attrs"] = attrs
    return stand_in.name


_shape = operator.attrgetter("shape")
_MAY_HOLD_ARRAYS = frozenset({np.ndarray, tuple, list})


def plain_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """An op's arguments with any array replaced by an ArrayNote of its shape and dtype
    (records hold no arrays; with no array, the dict itself)."""
    out = None
    for key, value in attrs.items():
        kind = type(value)
        if kind is np.ndarray:
            note: Any = ArrayNote(value)
        elif (kind is tuple or kind is list) and _holds_array(value):
            note = _describe_arrays(value)
        else:
            continue
        if out is None:
            out = dict(attrs)
        out[key] = note
    return attrs if out is None else out


# The log of the node whose backward is running (set by the engine), so that every op called
# inside it is recorded; None outside backward, where apply records nothing.
_pass_log: _PassLog | None = None


def note_constant(t: Tensor, value: Any) -> None:
    """Mark ``t`` as the scalar constant ``value`` if a backward is running (ops call this where
    they turn a Python scalar into a Tensor, so the record can say ``2`` instead of 'untracked')."""
    log = _pass_log
    while log is not None:  # keyed by its array (the record identifies arrays); the log keeps t
        if log.constants is None:
            log.constants, log.keep = {}, []
        log.constants[id(t._data)] = value
        log.keep.append(t)  # type: ignore[union-attr]
        log = log.parent


def note_inplace(
    t: Tensor, op: str, before: np.ndarray, operand: Any = None, attrs: dict[str, Any] | None = None
) -> None:
    """Record an in-place op that writes into ``t``'s array without a graph (``r += 1`` inside a
    backward run without ``create_graph``), if a backward is running: it becomes a call ``op(t,
    operand)`` of the record whose result is the written array, so the array's later uses read as
    that call and not as what the array held before. Call it before writing; ``before`` is ``t``'s
    array before the op (``t._data`` may be a private copy of it already)."""
    if _pass_log is None:
        return
    arrays = [before]
    constant = None
    if isinstance(operand, _Tensor):
        arrays.append(operand._data)
    elif operand is not None:
        value = np.asarray(operand)
        if value.ndim == 0 and value.dtype.kind in "biuf":
            constant = value.item()
        arrays.append(value)
    data = t._data
    trace = _record_module.active_trace()
    entry = (
        op,
        attrs or {},
        data.shape,
        tuple(map(id, arrays)),
        tuple(map(_shape, arrays)),
        id(data),
    )
    log: _PassLog | None = _pass_log
    while log is not None:  # this pass and the backwards it runs inside (see _PassLog.parent)
        if log.keep is None:
            log.constants, log.keep = {}, []
        if constant is not None:
            log.constants[id(arrays[1])] = constant  # type: ignore[index]
        log.keep.extend(arrays)  # alive while their ids are in the record
        if trace is not None and trace.values:
            snaps = log.snapshots if log.snapshots is not None else {}
            for k, raw in enumerate(log.raw):
                if raw[5] == id(before) and k not in snaps:
                    snaps[k] = np.array(before, copy=True)
            log.snapshots = snaps
        log.calls.append((None, arrays, data))
        log.raw.append(entry)
        log = log.parent


class Function:
    """Base class of differentiable ops; see the module docstring for the contract.

    Attributes available on ``ctx``:
        inputs: the input Tensors (constants are wrapped as Tensors that do not require grad);
            ``None`` once released (``input_edges()`` still describes them).
        needs_input_grad: one bool per input, like PyTorch.
        attrs: the keyword arguments given to ``apply`` (the op's non-Tensor arguments).
        output: the output Tensor while it is alive (``None`` otherwise).
        backward_record: what the last backward pass through this node did
            (:class:`tinygrad_conv.record.BackwardRecord`), ``None`` before the first.
    """

    #: Name shown in drawings and error messages; defaults to the class name in lower case.
    op_name: ClassVar[str] = ""
    #: Names of the inputs in rules and drawings (one per input; ``("x*",)`` for a variable count,
    #: named x0, x1, ...). Default: ``x`` for one input, ``a, b`` for two, ``input<i>`` otherwise.
    input_names: ClassVar[tuple[str, ...]] = ()
    #: Names of the values ``save_for_backward`` stores, in order.
    saved_names: ClassVar[tuple[str, ...]] = ()
    #: The vector-Jacobian product per input name, in the record's expression grammar
    #: (``g``, input names, ``out``, saved names, numbers, ``op(args)``); ``"*"`` stands for every
    #: input of a variable-count op. ``None``: not declared.
    vjp: ClassVar[Mapping[str, str] | None] = None

    inputs: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]
    attrs: dict[str, Any]
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

    # -- what views read -----------------------------------------------------------------------------
    @property
    def backward_record(self) -> BackwardRecord | None:
        """What the last backward pass through this node did (``None`` before the first).

        The engine stores a compact raw form while backward runs; it is decoded here once.
        """
        d = self.__dict__
        raw = d.get("_raw")
        if raw is None:
            return None
        record = d.get("_record")
        if record is None or record[0] is not raw:  # decoded once per pass
            record = d["_record"] = (raw, _record_module.materialize(raw))
        return record[1]

    def input_edges(self) -> tuple[Edge, ...]:
        """One :class:`Edge` per input: the graph's structure, also after ``release()``."""
        edges = self.__dict__.get("_edges")
        if edges is None:
            stamp = _moved_stamp(self.__dict__)
            # an input an in-place op replaced later is drawn as the state this node used
            edges = tuple([_edge(state_at(t, stamp), stamp) for t in self.inputs or ()])
        return edges

    def output_info(self) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype of the output (kept after release, when the output may be gone)."""
        info = self.__dict__.get("_out_info")
        if info is None:
            out = self.output
            info = (out._data.shape, out._data.dtype) if out is not None else ((), np.dtype("f8"))
        return info

    def input_labels(self) -> tuple[str, ...]:
        """The name of each input in rules and drawings (see ``input_names``)."""
        n = len(self.needs_input_grad)
        declared = type(self).input_names
        if len(declared) == 1 and declared[0].endswith("*"):
            stem = declared[0][:-1]
            return tuple(f"{stem}{i}" for i in range(n))
        if len(declared) == n:
            return declared
        if n == 1:
            return ("x",)
        if n == 2:
            return ("a", "b")
        return tuple(f"input{i}" for i in range(n))

    def declared_vjp(self) -> dict[str, str] | None:
        """``{input label: rule}`` from the class's ``vjp`` (``None`` when not declared).

        Ops whose backward depends on their arguments (e.g. matmul's transpose flags) override
        this to give the rule of this node.
        """
        vjp = type(self).vjp
        if vjp is None:
            return None
        labels = self.input_labels()
        if "*" in vjp:
            return {name: vjp["*"] for name in labels}
        return {name: vjp[name] for name in labels if name in vjp}

    def release(self) -> None:
        """Free the inputs, saved values and any arrays stored on ``ctx`` (after backward).

        What stays: the op's name and arguments, ``needs_input_grad``, the module scope, the
        ``backward_record``, one :class:`Edge` per input and the output's shape and dtype.
        """
        d = self.__dict__
        attrs = d["attrs"]
        # an argument that is an array (getitem's index arrays) can be activation-sized: keep only
        # a description of it
        for value in attrs.values():
            if type(value) not in _PLAIN_ATTR_TYPES and _holds_array(value):
                attrs = {k: _describe_arrays(v) for k, v in attrs.items()}
                break
        inputs = d["inputs"]
        stamp = _moved_stamp(d)
        edges = (
            d.get("_edges")
            if inputs is None
            else tuple([_edge(state_at(t, stamp), stamp) for t in inputs])
        )
        ref = d.get("_output_ref")
        out = None if ref is None else ref()
        info = d.get("_out_info") if out is None else (out._data.shape, out._data.dtype)
        keep = {
            "attrs": attrs,
            "needs_input_grad": d["needs_input_grad"],
            "_raw": d.get("_raw"),
            "_record": d.get("_record"),
            "inputs": None,
            "released": True,
            "_edges": edges,
            "_out_info": info,
            "_output_ref": ref,
            "scope": d.get("scope"),
            "_v": d.get("_v"),  # the in-place clock when the node ran (drawings compare it)
        }
        d.clear()  # also whatever a forward stored on ctx itself
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
            "released": False,
            "_saved": (),
            # the in-place clock now: backward checks this node's tensors only if it has moved
            "_v": grad_mode._version_clock,
        }
        arrays = [t._data for t in tensors]
        out_data = cls.forward(ctx, *arrays, **attrs)
        if type(out_data) is not np.ndarray:
            out_data = np.asarray(out_data)
        out = _Tensor._from_op(out_data, record)
        if record:
            d = ctx.__dict__
            d["inputs"] = tensors
            d["_output_ref"] = weakref.ref(out)
            d["scope"] = _scope._current  # the modules being called, for drawings by module
            if grad_mode._anomaly is not None:  # only inside detect_anomaly(): the user's line
                d["_where"] = _anomaly.where()
            out._ctx = ctx
        log = _pass_log
        if log is not None:  # inside a backward: the call goes into the node's record
            if attrs and not _MAY_HOLD_ARRAYS.isdisjoint(map(type, attrs.values())):
                attrs = plain_attrs(attrs)
            # taken here, while the objects are in use: the same reads after the next kernels
            # cost several times more (the caches have been flushed)
            entry = (
                cls,  # the name is read from the class when the record is decoded
                attrs,
                out_data.shape,
                tuple(map(id, arrays)),
                tuple(map(_shape, arrays)),
                id(out_data),
            )
            while log is not None:  # this pass and the backwards it runs inside (a nested grad)
                # the arrays themselves (a Tensor's array can be replaced): alive until the pass
                # ends, so the ids stay unique
                log.calls.append((ctx, arrays, out_data))
                log.raw.append(entry)
                log = log.parent
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
        for v in value:  # a plain loop: a generator costs more than the check, on every node
            if type(v) not in _PLAIN_ATTR_TYPES and _holds_array(v):
                return True
    return False


class ArrayNote:
    """What a record or a released node keeps of an array argument: its shape and dtype only."""

    __slots__ = ("shape", "dtype")

    def __init__(self, a: np.ndarray) -> None:
        self.shape, self.dtype = a.shape, a.dtype

    def __repr__(self) -> str:
        return f"<array {self.shape} {self.dtype}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ArrayNote) and self.shape == other.shape and self.dtype == other.dtype
        )

    __hash__ = None  # type: ignore[assignment]


def _describe_arrays(value: Any) -> Any:
    """``value`` with every ndarray (also inside tuples and lists) replaced by an ArrayNote."""
    if isinstance(value, np.ndarray):
        return ArrayNote(value)
    if type(value) in (tuple, list):
        return type(value)(_describe_arrays(v) for v in value)
    return value


def _released_message(node: Function) -> str:
    return (
        f"{node.name}: trying to backward through the graph a second time (or to read values that "
        "backward already freed). Pass retain_graph=True to the first backward() or grad() call."
    )


from tinygrad_conv.tensor import Tensor as _Tensor  # noqa: E402  (tensor.py imports this module's users)

"""What a backward pass did, as the engine recorded it: the facts every view renders.

After each backward pass through a node, ``node.backward_record`` is a :class:`BackwardRecord`:

* ``passes``: how many backward passes have run through the node;
* ``calls``: the ops its backward called in the last pass, in order (:class:`Call`: ``op``, output
  ``shape``, ``args`` = one :class:`Source` per argument, ``attrs`` = the op's arguments);
* ``input_grads``: per forward input, ``None`` where no gradient was needed, else an
  :class:`InputGrad`: the :class:`Source` of the gradient, the shape that arrived at the input and
  ``summed_from`` = the shape before the engine summed it back to the input (broadcasting undone).

A :class:`Source` says where a value came from, decided by object identity at the moment the op
was called (never by shape): ``'upstream'`` (the gradient flowing in), ``'input'`` (forward input
``index``), ``'output'`` (the node's own forward output), ``'call'`` (result of call ``index`` of
the same pass), ``'saved'`` (value ``index`` of ``save_for_backward``), ``'constant'`` (a Python
scalar, ``value``) or ``'untracked'`` (computed inside backward without recorded ops, e.g. numpy).

:func:`record_backward` additionally traces one whole pass: the steps in execution order (with
array copies when ``values=True``) and the accumulation events (a tensor receiving more than one
gradient contribution). Records hold no arrays, so they survive ``backward()`` releasing the graph.

:func:`expressions` turns a record into one expression per input gradient, e.g.
``{'a': 'mul(g, b)', 'b': 'mul(g, a)'}``: the text the drawings and the explorer show, and what an
op's declared rule (``Function.vjp``) is checked against.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from tinygrad_conv.function import Function

__all__ = [
    "Accumulation",
    "BackwardRecord",
    "BackwardTrace",
    "Call",
    "InputGrad",
    "Source",
    "Step",
    "expressions",
    "record_backward",
    "source_text",
]

SOURCE_KINDS = ("upstream", "input", "output", "call", "saved", "constant", "untracked")


class Source(NamedTuple):
    """Where a value used or produced by backward came from.

    ``kind`` is one of ``SOURCE_KINDS``; ``index`` is the input / call / saved position (``None``
    for the other kinds); ``value`` is a constant's scalar value.
    """

    kind: str
    index: int | None = None
    value: bool | int | float | None = None


class Call(NamedTuple):
    """One op called by a backward pass: its name, output shape, one source per argument, the
    op's arguments (arrays described, never kept) and the shape of each argument."""

    op: str
    shape: tuple[int, ...]
    args: tuple[Source, ...]
    attrs: Mapping[str, Any]
    arg_shapes: tuple[tuple[int, ...], ...] = ()


class InputGrad(NamedTuple):
    """The gradient backward produced for one forward input.

    ``shape`` is the shape that arrived at the input; ``summed_from`` the shape backward returned
    when the engine summed it down to ``shape`` (undoing broadcasting), else ``None``;
    ``cast_from`` the dtype name when the engine cast it to the input's dtype, else ``None``.
    """

    source: Source
    shape: tuple[int, ...]
    summed_from: tuple[int, ...] | None = None
    cast_from: str | None = None


class BackwardRecord(NamedTuple):
    """What the last backward pass through a node did (see the module docstring)."""

    passes: int
    calls: tuple[Call, ...]
    input_grads: tuple[InputGrad | None, ...]


UPSTREAM = Source("upstream")
OUTPUT = Source("output")
UNTRACKED = Source("untracked")
_INPUT = tuple(Source("input", i) for i in range(64))
_CALL = tuple(Source("call", i) for i in range(256))
_SAVED = tuple(Source("saved", i) for i in range(16))


def input_source(i: int) -> Source:
    """``Source('input', i)`` (shared instances for the common positions)."""
    return _INPUT[i] if i < len(_INPUT) else Source("input", i)


def call_source(k: int) -> Source:
    """``Source('call', k)``."""
    return _CALL[k] if k < len(_CALL) else Source("call", k)


def saved_source(k: int) -> Source:
    """``Source('saved', k)``."""
    return _SAVED[k] if k < len(_SAVED) else Source("saved", k)


# ----------------------------------------------------------------------------- expressions


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else f"{f:.6g}"
    return str(v)


def source_text(
    src: Source,
    input_names: Sequence[str],
    saved_names: Sequence[str] = (),
    calls: Sequence[Call] = (),
) -> str:
    """The text of a source inside an expression: ``g``, an input's name, ``out``, a saved
    value's name, a constant's value, ``(numpy, not recorded)`` or a call's expression."""
    kind = src.kind
    if kind == "upstream":
        return "g"
    if kind == "input":
        i = src.index or 0
        return input_names[i] if i < len(input_names) else f"input{i}"
    if kind == "output":
        return "out"
    if kind == "saved":
        k = src.index or 0
        return saved_names[k] if k < len(saved_names) else f"saved{k}"
    if kind == "constant":
        return _value_text(src.value)
    if kind == "call":
        return _call_text(src.index or 0, input_names, saved_names, calls)
    return UNTRACKED_TEXT


def _call_text(
    k: int, input_names: Sequence[str], saved_names: Sequence[str], calls: Sequence[Call]
) -> str:
    # iterative post-order: a long chain of calls must not hit the recursion limit
    done: dict[int, str] = {}
    stack = [k]
    while stack:
        j = stack[-1]
        pending = [
            a.index
            for a in calls[j].args
            if a.kind == "call" and a.index is not None and a.index not in done
        ]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        parts = [
            done[a.index] if a.kind == "call" else source_text(a, input_names, saved_names)
            for a in calls[j].args
        ]
        done[j] = f"{calls[j].op}({', '.join(parts)})"
    return done[k]


def expressions(
    record: BackwardRecord, input_names: Sequence[str], saved_names: Sequence[str] = ()
) -> dict[str, str]:
    """``{input name: expression of its gradient}`` for the inputs that received one.

    Example: the record of ``a / b`` gives ``{'a': 'div(g, b)', 'b': 'div(neg(mul(g, a)),
    mul(b, b))'}``; a gradient computed in numpy gives ``'(numpy, not recorded)'``.
    """
    out: dict[str, str] = {}
    for i, ig in enumerate(record.input_grads):
        if ig is None:
            continue
        name = input_names[i] if i < len(input_names) else f"input{i}"
        out[name] = source_text(ig.source, input_names, saved_names, record.calls)
    return out


# ----------------------------------------------------------------------------- the trace


@dataclass
class Step:
    """One node's backward in a traced pass.

    ``node`` is the graph node; ``upstream_shape`` the shape of the gradient that flowed in;
    ``record`` what this pass through the node did. With ``values=True``: ``upstream`` (copy of
    the incoming gradient), ``call_values`` (copy of each call's result, in call order) and
    ``input_grad_values`` (copy of what each input received, ``None`` where nothing was sent).
    ``arrivals``: per input, the place of this step's contribution in the order of all the
    contributions that input's tensor received in the pass (0 = first; see ``Accumulation``),
    ``None`` where nothing was sent. ``hooked``: the upstream is what the output tensor's hooks
    (``register_hook``) returned, not the sum of the contributions it received.
    """

    index: int
    node: Function
    upstream_shape: tuple[int, ...]
    record: BackwardRecord
    upstream: np.ndarray | None = None
    call_values: list[np.ndarray] | None = None
    input_grad_values: list[np.ndarray | None] | None = None
    arrivals: list[int | None] | None = None
    hooked: bool = False


@dataclass
class Accumulation:
    """A tensor that received more than one gradient contribution in the traced pass.

    ``target`` is the producing node (for a non-leaf) or the leaf Tensor; ``steps`` the index of
    the step that sent each contribution, in arrival order (``None`` for the seed of a root);
    ``count`` = ``len(steps)``. With ``values=True``, ``contributions`` holds a copy of each and
    ``total`` the sum that flowed on.
    """

    target: Any
    shape: tuple[int, ...]
    name: str | None
    steps: list[int | None]
    count: int
    contributions: list[np.ndarray] | None = None
    total: np.ndarray | None = None


@dataclass
class BackwardTrace:
    """Everything one or more backward passes did inside :func:`record_backward`."""

    values: bool = False
    steps: list[Step] = field(default_factory=list)
    accumulations: list[Accumulation] = field(default_factory=list)
    thread: int = 0


_lock = threading.Lock()
_active: BackwardTrace | None = None


def active_trace() -> BackwardTrace | None:
    """The trace being recorded, if any (read by the engine for every pass)."""
    return _active


class record_backward:  # noqa: N801 - a context manager used like a function, as no_grad
    """Trace the backward passes run inside the block::

        with tc.record_backward(values=True) as trace:
            loss.backward()
        for step in trace.steps: ...

    ``values=True`` keeps copies of the upstream gradient, every call's result and every input
    gradient (memory grows with the graph); with ``values=False`` only shapes and records are kept.
    Outside this block the engine copies nothing.

    Raises:
        RuntimeError: when nested, or when a trace is already being recorded by another thread
            (one trace at a time; a backward run by another thread while it records also raises).
    """

    def __init__(self, values: bool = False) -> None:
        if not isinstance(values, bool):
            raise TypeError(f"record_backward: values must be True or False, got {values!r}")
        self.trace = BackwardTrace(values=values)

    def __enter__(self) -> BackwardTrace:
        global _active
        with _lock:
            if _active is not None:
                where = (
                    "in this thread (nested record_backward)"
                    if _active.thread == threading.get_ident()
                    else f"by another thread (id {_active.thread})"
                )
                raise RuntimeError(
                    f"record_backward: a trace is already being recorded {where}; "
                    "one trace at a time"
                )
            self.trace.thread = threading.get_ident()
            _active = self.trace
        return self.trace

    def __exit__(self, *exc: object) -> None:
        global _active
        with _lock:
            if _active is self.trace:
                _active = None


# ----------------------------------------------------------------------------- declared rules

UNTRACKED_TEXT = "(numpy, not recorded)"
_TOKEN = re.compile(
    r"\s*(\(numpy, not recorded\)|[A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+(?:e-?[0-9]+)?|[(),])"
)


def parse_rule(text: str) -> Any:
    """Parse an expression of the record grammar into nested tuples.

    A call is ``(op, (arg, ...))``; a leaf is a string (a name, a number, or ``UNTRACKED_TEXT``).
    Example: ``parse_rule("mul(g, b)") == ("mul", ("g", "b"))``.

    Raises:
        ValueError: the text is not an expression of the grammar.
    """
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"parse_rule: cannot read {text[pos:]!r} in {text!r}")
        tokens.append(m.group(1))
        pos = m.end()
    # iterative: a frame per open call, [op, args]
    stack: list[list[Any]] = [["", []]]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == ",":
            i += 1
            continue
        if tok == ")":
            if len(stack) < 2:
                raise ValueError(f"parse_rule: unbalanced ')' in {text!r}")
            op, args = stack.pop()
            stack[-1][1].append((op, tuple(args)))
            i += 1
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "(" and tok != UNTRACKED_TEXT:
            stack.append([tok, []])
            i += 2
            continue
        stack[-1][1].append(tok)
        i += 1
    if len(stack) != 1 or len(stack[0][1]) != 1:
        raise ValueError(f"parse_rule: {text!r} is not one expression")
    return stack[0][1][0]


def rule_matches(declared: str, recorded: str, names: Sequence[str]) -> bool:
    """Whether a recorded expression is an instance of a declared rule.

    Calls must name the same ops with the same arity, in the same nesting. A leaf in ``names``
    (``g``, ``out``, the input and saved names) or ``UNTRACKED_TEXT`` must match exactly; any other
    leaf of the rule (a number, or a name such as ``n``) stands for a constant, and matches a
    number of the record.
    """
    reserved = set(names) | {"g", "out", UNTRACKED_TEXT}
    stack = [(parse_rule(declared), parse_rule(recorded))]
    while stack:
        d, r = stack.pop()
        if isinstance(d, tuple) or isinstance(r, tuple):
            if not (isinstance(d, tuple) and isinstance(r, tuple)):
                return False
            if d[0] != r[0] or len(d[1]) != len(r[1]):
                return False
            stack.extend(zip(d[1], r[1], strict=True))
            continue
        if d in reserved or r in reserved:
            if d != r:
                return False
            continue
        try:
            float(r)
        except ValueError:
            return False
    return True


# ----------------------------------------------------------------------------- the engine's raw form

#: Where a raw record keeps each part (see ``autograd._write_record``, which packs them).
(
    RAW_PASSES,
    RAW_G,
    RAW_OUT,
    RAW_INPUTS,
    RAW_SAVED,
    RAW_CONSTANTS,
    RAW_CALLS,
    RAW_GRADS,
) = range(8)


def materialize(raw: tuple[Any, ...]) -> BackwardRecord:
    """Build the :class:`BackwardRecord` from the engine's raw form.

    The engine records, for speed, only the ``id()`` of the array behind every Tensor a pass
    touched (all alive together while it ran, so equal ids mean the same array) and decodes them
    here, on the first read. Sources are decided in this order: the upstream gradient, an earlier
    call's result (the latest first), an input (its first position), the output, a scalar
    constant, a saved value, else 'untracked'.
    """
    known: dict[int, Source] = {raw[RAW_OUT]: OUTPUT}
    saved_ids = raw[RAW_SAVED]
    for k in range(len(saved_ids) - 1, -1, -1):
        known.setdefault(saved_ids[k], saved_source(k))
    constants = raw[RAW_CONSTANTS] or {}
    for data_id, value in constants.items():
        known[data_id] = Source("constant", None, value)
    known[raw[RAW_OUT]] = OUTPUT
    in_ids = raw[RAW_INPUTS]
    for i in range(len(in_ids) - 1, -1, -1):
        known[in_ids[i]] = input_source(i)
    known[raw[RAW_G]] = UPSTREAM
    calls = []
    from tinygrad_conv.function import call_name

    for k, (cls, attrs, shape, arg_ids, arg_shapes, result_id) in enumerate(raw[RAW_CALLS]):
        args = tuple(known.get(a, UNTRACKED) for a in arg_ids)
        calls.append(Call(call_name(cls, attrs), shape, args, attrs, arg_shapes))
        known[result_id] = call_source(k)
    grads: list[InputGrad | None] = []
    for entry in raw[RAW_GRADS]:
        if entry is None:
            grads.append(None)
            continue
        data_id, gi_shape, shape, gi_dtype, dtype = entry
        summed = gi_shape if gi_shape != shape else None
        cast = gi_dtype.name if gi_dtype != dtype else None
        grads.append(InputGrad(known.get(data_id, UNTRACKED), shape, summed, cast))
    return BackwardRecord(raw[RAW_PASSES], tuple(calls), tuple(grads))

"""The reverse pass: topological order, gradient accumulation, ``backward()`` and ``grad()``.

Algorithm (iterative, so a 100,000-op chain needs no recursion):

1. Collect the non-leaf tensors reachable from the roots in topological order with an explicit stack.
2. Walk them from the roots back: pop the tensor's accumulated gradient, run its hooks, call its
   node's ``backward`` (recording it too when ``create_graph``), sum each input gradient back to the
   input's shape (this undoes broadcasting once, here, for every op) and add it to the input's
   accumulated gradient. Each tensor is visited once, so diamonds get exactly one, complete gradient.
3. Hand the gradients of leaves to ``.grad`` (``backward``) or to the caller (``grad``).
4. Unless ``retain_graph``, release each node after use: its inputs and saved arrays are freed.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from tinygrad_conv import function as _function
from tinygrad_conv import grad_mode
from tinygrad_conv import record as _record
from tinygrad_conv.anomaly import check_gradients as _anomaly_check
from tinygrad_conv.function import _released_message
from tinygrad_conv.tensor import Tensor


def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Non-leaf tensors reachable from ``roots``, every tensor after all of its inputs."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in roots]
    clock = grad_mode._version_clock
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        node = t._ctx
        if node.released:
            raise RuntimeError(_released_message(node))
        # something was modified in place since this node ran
        if node.__dict__.get("_v", clock) != clock:
            _check_versions(node, t)
        stack.append((t, True))
        for inp in node.inputs:  # type: ignore[union-attr]
            if inp._ctx is not None and id(inp) not in seen:
                stack.append((inp, False))
    return order


def _check_versions(node: Any, out: Tensor) -> None:
    """Before backward runs ``node``: the tensors it reads must be as they were in the forward.

    An input replaced by an in-place op with grad on (``out += identity``) is put back to its state
    at the time the node ran (``Tensor._history``), so the graph and the values stay those of the
    forward. A tensor the node's backward reads (the inputs its declared ``vjp`` rules name for the
    gradients it must produce, every input if undeclared, ``out`` if named, its saved Tensors)
    that was modified in place after the node ran raises PyTorch's error instead of a silently
    wrong gradient.
    """
    stamp = node.__dict__["_v"]
    inputs = node.inputs
    needed, reads_out = _reads(node)
    labels = node.input_labels()
    fixed: list[Tensor] | None = None
    for i, inp in enumerate(inputs):
        version = getattr(inp, "_version", 0)
        if version <= stamp:
            continue
        old = _function.state_at(inp, stamp)
        if old is not inp:  # an in-place op with grad on replaced the state this node used
            if fixed is None:
                fixed = list(inputs)
            fixed[i] = inp = old
            version = getattr(old, "_version", 0)
        if version > stamp and i in needed:
            raise RuntimeError(_modified_message(node, f"its input {labels[i]!r}", inp))
    if fixed is not None:
        node.inputs = tuple(fixed)
    saved_names = type(node).saved_names
    for k, value in enumerate(node.__dict__["_saved"]):
        if isinstance(value, Tensor) and getattr(value, "_version", 0) > stamp:
            what = (
                f"its saved value {saved_names[k]!r}" if k < len(saved_names) else "a saved value"
            )
            raise RuntimeError(_modified_message(node, what, value))
    if reads_out and getattr(out, "_version", 0) > stamp:
        raise RuntimeError(_modified_message(node, "its output 'out'", out))


def _reads(node: Any) -> tuple[set[int], bool]:
    """Indices of the inputs ``node``'s backward reads, and whether it reads its output, from its
    declared ``vjp`` rules for the inputs that need a gradient (undeclared: everything)."""
    rules = node.declared_vjp()
    n = len(node.needs_input_grad)
    if rules is None:
        return set(range(n)), True
    labels = node.input_labels()
    names: set[str] = set()
    for label, need in zip(labels, node.needs_input_grad, strict=True):
        rule = rules.get(label)
        if not need:
            continue
        if rule is None:  # an input without a rule: assume the backward reads everything
            return set(range(n)), True
        stack = [_record.parse_rule(rule)]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                stack.extend(item[1])
            else:
                names.add(item)
    return {i for i, label in enumerate(labels) if label in names}, "out" in names


def _modified_message(node: Any, what: str, t: Tensor) -> str:
    return (
        f"{node.name}: one of the variables needed for gradient computation has been modified "
        f"by an inplace operation: {what} (shape {t.shape}, dtype {t.dtype}{_named(t)}) was "
        f"changed after {node.name} used it in the forward. Hint: do the in-place update after "
        "backward(), write it out of place (x = x + y), or modify a clone() of the tensor."
    )


def _named(t: Tensor) -> str:
    return f", name {t.name!r}" if t.name else ""


def _as_gradient(root: Tensor, gradient: Any) -> Tensor:
    """The seed gradient for ``root``: ones for a one-element tensor, else the given one."""
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: gradient can be implicitly created only for one-element outputs; "
                f"this output has shape {root.shape}: pass gradient= of that shape"
            )
        return Tensor._from_op(np.ones_like(root.data), False)
    g = gradient if isinstance(gradient, Tensor) else Tensor(np.asarray(gradient, root.dtype))
    if g.shape != root.shape:
        raise ValueError(
            f"backward: gradient has shape {g.shape} but the output has shape {root.shape}"
        )
    return g


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether NumPy broadcasting stretches ``shape`` to exactly ``target``."""
    lead = len(target) - len(shape)
    if lead < 0:
        return False
    for s, t in zip(shape, target[lead:], strict=True):
        if s != t and s != 1:
            return False
    return True


def _fit_to_input(g: Tensor, inp: Tensor, node: Any) -> Tensor:
    """Sum a gradient back to ``inp``'s shape (undo broadcasting) and cast to its dtype."""
    if g.shape != inp.shape:
        # only a gradient of the broadcast output shape can be summed back to the input
        if not _broadcasts_to(inp.shape, g.shape):
            raise RuntimeError(
                f"{node.name}.backward returned a gradient of shape {g.shape} for an input of "
                f"shape {inp.shape}"
            )
        g = _ops.sum_to_shape(g, inp.shape)
    if g.dtype != inp.dtype:
        g = _ops.cast(g, inp.dtype)
    return g


def _run(
    roots: Sequence[Tensor],
    seeds: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: dict[int, Tensor] | None,
) -> dict[int, tuple[Tensor, Tensor]]:
    """Run the reverse pass. Returns ``{id(leaf): (leaf, gradient)}`` for the leaves reached.

    ``capture`` maps ids of non-leaf tensors whose gradient the caller wants (``grad()``).
    Every node visited gets its ``backward_record``; inside ``record_backward`` the pass is also
    traced (steps, value copies, accumulations).
    """
    trace = _record.active_trace()
    if trace is not None and trace.thread != threading.get_ident():
        raise RuntimeError(
            "record_backward: a trace opened in another thread is active; record a backward "
            "pass in the thread that opened record_backward (one trace at a time)"
        )
    order = _topological_order(roots)
    grads: dict[int, Tensor] = {}
    keep: dict[int, Tensor] = {}  # keeps leaves alive while their id is a key
    # with a trace: id(tensor) -> the step index of each contribution (None: a root's seed)
    arrivals: dict[int, list[int | None]] | None = {} if trace is not None else None
    contributions: dict[int, list[np.ndarray]] | None = (
        {} if trace is not None and trace.values else None
    )
    for r, s in zip(roots, seeds, strict=True):
        grads[id(r)] = grads[id(r)] + s if id(r) in grads else s
        keep[id(r)] = r
        if arrivals is not None:
            _note_arrival(arrivals, contributions, id(r), None, s)
    captured: dict[int, tuple[Tensor, Tensor]] = {}
    with grad_mode.set_grad_enabled(create_graph):
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue  # no gradient flows into this tensor from the roots
            hooked = False
            if t._hooks:
                arrived = g
                g = _apply_hooks(t, g)
                hooked = g is not arrived
            if t._retains_grad and capture is None:
                t._grad = _accumulate(t._grad, g, create_graph)
            if capture is not None and id(t) in capture:
                captured[id(t)] = (t, g)
            node = t._ctx
            # copied before backward runs: a backward may write into g in place (g += x)
            upstream = np.array(g._data, copy=True) if trace is not None and trace.values else None
            outer = _function._pass_log  # a backward may itself run grad() (nested passes)
            log = _function._PassLog(outer)
            g_data = g._data  # the array that flowed in (backward could rebind g.data)
            _function._pass_log = log
            try:
                in_grads = type(node).backward(node, g)
            finally:
                _function._pass_log = outer
            in_grads = _check_grads(node, in_grads)
            if grad_mode._anomaly is not None:
                _anomaly_check(node, in_grads)
            inputs = node.inputs
            fitted: list[Tensor | None] = []
            sent: list[tuple[Any, ...] | None] = []  # for the record: what each input got
            for inp, gi, need in zip(inputs, in_grads, node.needs_input_grad, strict=True):
                if not need or gi is None:
                    fitted.append(None)
                    sent.append(None)
                    continue
                gd, xd = gi._data, inp._data
                sent.append((id(gd), gd.shape, xd.shape, gd.dtype, xd.dtype))
                if gd.shape != xd.shape or gd.dtype != xd.dtype:  # (fast path: nothing to fit)
                    gi = _fit_to_input(gi, inp, node)
                fitted.append(gi)
                key = id(inp)
                grads[key] = grads[key] + gi if key in grads else gi
                if inp._ctx is None:
                    keep[key] = inp
            _write_record(node, g_data, t, log, sent)
            if trace is not None:
                record = node.backward_record
                step = len(trace.steps)
                traced = _step(trace, step, node, g, upstream, log, record, fitted)
                traced.hooked = hooked
                trace.steps.append(traced)
                traced.arrivals = [
                    None
                    if gi is None
                    else _note_arrival(arrivals, contributions, id(inp), step, gi)  # type: ignore[arg-type]
                    for inp, gi in zip(inputs, fitted, strict=True)
                ]
            del log
            if not retain_graph:
                node.release()
        leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}
        for key, g in grads.items():
            leaf = keep[key]
            if not leaf.requires_grad or leaf._ctx is not None:
                continue
            if leaf._hooks:
                g = _apply_hooks(leaf, g)
            leaf_grads[key] = (leaf, g)
    if trace is not None:
        _write_accumulations(trace, arrivals, contributions, order, keep, roots)  # type: ignore[arg-type]
    leaf_grads.update(captured)
    return leaf_grads


def _check_grads(node: Any, in_grads: Any) -> tuple[Tensor | None, ...]:
    """``backward``'s result as a tuple with one Tensor or None per input, or a clear error."""
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    n = len(node.inputs)
    if len(in_grads) != n:
        raise RuntimeError(
            f"{node.name}.backward returned {len(in_grads)} gradients for {n} inputs "
            "(return one Tensor or None per input of forward)"
        )
    for i, gi in enumerate(in_grads):
        if gi is not None and not isinstance(gi, Tensor):
            raise TypeError(
                f"{node.name}.backward returned {type(gi).__name__} for input {i}; expected a "
                "Tensor or None (wrap an ndarray with tc.tensor(...) or compute it with Tensor ops)"
            )
    return in_grads


def _write_record(
    node: Any, g_data: np.ndarray, out: Tensor, log: _function._PassLog, sent: list[Any]
) -> None:
    """Record what the pass did as ``node.backward_record`` (decoded on its first read).

    This runs for every node of every backward, so it keeps only what identifies the arrays the
    pass touched: the ``id()`` of each Tensor's array (all of them alive together now, so equal
    ids mean the same array), shapes and dtypes, and the calls' plain arguments (``log.raw``,
    taken in ``apply``); ``sent`` is, per input, ``(id, shape, input shape, dtype, input dtype)``
    of the gradient backward returned, or ``None``. No array is kept. ``record.materialize``
    turns it into Sources.
    """
    d = node.__dict__
    saved_values = d["_saved"]
    prev = d.get("_raw")
    d["_raw"] = (  # one dict entry: growing a node's small dict costs a resize
        1 if prev is None else prev[0] + 1,
        id(g_data),
        id(out._data),
        tuple(map(id, map(_data, node.inputs))),
        tuple(map(id, map(_array_of, saved_values))) if saved_values else (),
        log.constants,
        log.raw,
        sent,
    )


def _array_of(value: Any) -> Any:
    """The array a saved value stands for (a saved Tensor: its array)."""
    return value._data if isinstance(value, Tensor) else value


_data = operator.attrgetter("_data")


def _step(
    trace: _record.BackwardTrace,
    index: int,
    node: Any,
    g: Tensor,
    upstream: np.ndarray | None,
    log: _function._PassLog,
    record: _record.BackwardRecord,
    fitted: Sequence[Tensor | None],
) -> _record.Step:
    step = _record.Step(index, node, g.data.shape, record)
    if trace.values:
        step.upstream = upstream
        snaps = log.snapshots or {}  # results an in-place op wrote into later: as they were made
        step.call_values = [
            snaps[k] if k in snaps else np.array(r, copy=True)
            for k, (_, _, r) in enumerate(log.calls)
        ]
        step.input_grad_values = [
            None if f is None else np.array(f.data, copy=True) for f in fitted
        ]
    return step


def _note_arrival(
    arrivals: dict[int, list[int | None]],
    contributions: dict[int, list[np.ndarray]] | None,
    key: int,
    step: int | None,
    g: Tensor,
) -> int:
    """Note one gradient contribution to the tensor ``key``; returns its place in the arrival
    order (0 for the first)."""
    steps = arrivals.setdefault(key, [])
    steps.append(step)
    if contributions is not None:
        contributions.setdefault(key, []).append(np.array(g.data, copy=True))
    return len(steps) - 1


def _write_accumulations(
    trace: _record.BackwardTrace,
    arrivals: dict[int, list[int | None]],
    contributions: dict[int, list[np.ndarray]] | None,
    order: Sequence[Tensor],
    keep: dict[int, Tensor],
    roots: Sequence[Tensor],
) -> None:
    """One event per tensor that received more than one gradient contribution."""
    tensors = {id(t): t for t in order}
    tensors.update(keep)
    for r in roots:
        tensors[id(r)] = r
    for key, steps in arrivals.items():
        if len(steps) < 2:
            continue
        t = tensors[key]
        event = _record.Accumulation(
            target=t._ctx if t._ctx is not None else t,
            shape=t.data.shape,
            name=t.name,
            steps=list(steps),
            count=len(steps),
        )
        if contributions is not None:
            parts = contributions[key]
            event.contributions = parts
            total = parts[0].copy()
            for p in parts[1:]:
                total = total + p
            event.total = total
        trace.accumulations.append(event)


def _apply_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in list(t._hooks or ()):
        new = hook(g)
        if new is not None:
            if not isinstance(new, Tensor) or new.shape != g.shape:
                raise ValueError(
                    f"hook returned {type(new).__name__} "
                    f"{getattr(new, 'shape', '')}; expected a Tensor of shape {g.shape}"
                )
            g = new
    return g


def _accumulate(old: Tensor | None, g: Tensor, create_graph: bool) -> Tensor:
    if not create_graph:
        # own the memory: upstream gradients are often views shared between several tensors
        g = Tensor._from_op(np.array(g.data, copy=True), False)
    return g if old is None else old + g


def backward(
    roots: Sequence[Tensor],
    gradients: Sequence[Any],
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate gradients of ``roots`` into ``.grad`` of every leaf that requires grad."""
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"backward: expected Tensors, got {type(r).__name__}")
        if not r.requires_grad:
            raise RuntimeError(
                "backward: the tensor does not require grad and has no grad_fn (was it computed "
                "under no_grad(), or from inputs without requires_grad=True?)"
            )
    seeds = [_as_gradient(r, g) for r, g in zip(roots, gradients, strict=True)]
    retain = create_graph if retain_graph is None else retain_graph
    leaf_grads = _run(roots, seeds, retain, create_graph, capture=None)
    for leaf, g in leaf_grads.values():
        leaf._grad = _accumulate(leaf._grad, g, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return d(outputs)/d(inputs) without touching any ``.grad``, like ``torch.autograd.grad``.

    Args:
        outputs: tensor(s) to differentiate.
        inputs: tensor(s) (leaves or not) to differentiate with respect to.
        grad_outputs: upstream gradient(s), one per output (optional for one-element outputs).
        retain_graph: keep the graph for another pass (default: ``create_graph``).
        create_graph: record the gradients' own graph (for higher-order derivatives).
        allow_unused: return ``None`` for an input the outputs do not depend on (else an error).
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outs) if len(outs) == 1 else grad_outputs
    if grad_outputs is None:
        grad_outputs = [None] * len(outs)
    for t in ins:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError("grad: every input must be a Tensor with requires_grad=True")
    for o in outs:
        if not isinstance(o, Tensor) or not o.requires_grad:
            raise RuntimeError("grad: an output does not require grad (no path to the inputs)")
    seeds = [_as_gradient(o, g) for o, g in zip(outs, grad_outputs, strict=True)]
    retain = create_graph if retain_graph is None else retain_graph
    capture = {id(t): t for t in ins if t._ctx is not None}
    found = _run(outs, seeds, retain, create_graph, capture=capture)
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = found[id(t)][1] if id(t) in found else None
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


from tinygrad_conv import ops as _ops  # noqa: E402

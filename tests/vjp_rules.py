"""Check an op's declared ``vjp`` rules against what its backward really did.

A rule is ``g``, an input name, ``out``, a saved name, a number, or ``op(arg, ...)``.
``check_rule`` runs one traced backward through the node and requires, for every input that needs
a gradient, that the expression the engine recorded (``node.backward_record``: ops, nesting and
argument sources, decided by identity) is an instance of the declared rule, and that the recorded
source of each gradient holds the value the engine delivered (``check_source_values``).
"""

from __future__ import annotations

import re

import numpy as np

from tinygrad_conv import Function, Tensor, record_backward
from tinygrad_conv.ops import sum_to_shape
from tinygrad_conv.record import expressions, rule_matches

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<p>[(),]))"
)


def parse(rule: str) -> tuple:
    """Parse a rule into ``("num", value)``, ``("name", id)`` or ``("call", op, [args])``."""
    tokens = []
    pos = 0
    while pos < len(rule):
        m = _TOKEN.match(rule, pos)
        if not m or m.end() == pos:
            if rule[pos:].strip() == "":
                break
            raise ValueError(f"bad token in rule {rule!r} at {pos}")
        tokens.append(m)
        pos = m.end()
    i = 0

    def expr() -> tuple:
        nonlocal i
        tok = tokens[i]
        i += 1
        if tok.group("num") is not None:
            return ("num", float(tok.group("num")))
        if tok.group("name") is None:
            raise ValueError(f"rule {rule!r}: unexpected {tok.group(0)!r}")
        name = tok.group("name")
        if i < len(tokens) and tokens[i].group("p") == "(":
            i += 1
            args = [expr()]
            while tokens[i].group("p") == ",":
                i += 1
                args.append(expr())
            if tokens[i].group("p") != ")":
                raise ValueError(f"rule {rule!r}: expected ')'")
            i += 1
            return ("call", name, args)
        return ("name", name)

    tree = expr()
    if i != len(tokens):
        raise ValueError(f"rule {rule!r}: trailing tokens")
    return tree


def calls(tree: tuple, allowed: set[str]) -> list[str]:
    """The op names in the order evaluation calls them."""
    if tree[0] == "num":
        return []
    if tree[0] == "name":  # g, out, an input or saved name, or a constant's placeholder (alpha)
        return []
    out: list[str] = []
    for arg in tree[2]:
        out += calls(arg, allowed)
    return out + [tree[1]]


def expected_calls(cls: type[Function], needs: tuple[bool, ...]) -> list[str]:
    """The calls the rules of ``cls`` declare for the inputs flagged in ``needs``."""
    allowed = {"g", "out", *cls.input_names, *cls.saved_names}
    assert set(cls.vjp) <= set(cls.input_names), f"{cls.__name__}: vjp names unknown inputs"
    seq: list[str] = []
    for name, need in zip(cls.input_names, needs, strict=True):
        if need and name in cls.vjp:
            seq += calls(parse(cls.vjp[name]), allowed)
    return seq


def check_rule(out: Tensor, cls: type[Function], seed: int = 0) -> None:
    """Run backward from ``out`` (made by one ``cls`` node) and compare what it did with the rule.

    The whole expression of each input's gradient in the engine's record is compared with the
    declared rule (ops, nesting, argument sources); a node backward did not reach fails.
    """
    node = out.grad_fn
    assert type(node) is cls, f"expected a {cls.__name__} node, got {type(node).__name__}"
    needs = node.needs_input_grad
    if not cls.input_names[0].endswith("*"):
        assert len(needs) == len(cls.input_names), (cls.__name__, needs, cls.input_names)
    saved = node._saved
    assert len(saved) == len(cls.saved_names), (cls.__name__, len(saved), cls.saved_names)
    if "*" not in cls.vjp:
        expected_calls(cls, needs)  # parses every rule
    v = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    with record_backward(values=True) as trace:
        out.backward(Tensor(v), retain_graph=True)
    check_source_values(trace)
    record = node.backward_record
    assert record is not None, f"{cls.__name__}: backward did not reach the node"
    labels = node.input_labels()
    rules = node.declared_vjp()  # the class rule, or this node's (einsum, prod ...)
    names = [*labels, *cls.saved_names]
    got = expressions(record, labels, cls.saved_names)
    want = {n for n, need in zip(labels, needs, strict=True) if need}
    assert set(got) == want, (cls.__name__, got)
    for name, text in got.items():
        assert rule_matches(rules[name], text, names), (cls.__name__, name, rules[name], text)


def check_source_values(trace) -> None:
    """For every step of a traced pass (values=True): the value of each input gradient's recorded
    source (summed to the input's shape where the record says it was) equals the gradient the
    engine delivered. 'untracked' sources, and 'saved' ones once the node is released, have no
    value to compare and are skipped.
    """
    for step in trace.steps:
        edges = step.node.input_edges()
        for i, ig in enumerate(step.record.input_grads):
            got = step.input_grad_values[i]
            if ig is None:
                assert got is None
                continue
            assert ig.shape == edges[i].shape == got.shape, (step.node.name, i)
            src = ig.source
            if src.kind == "upstream":
                value = step.upstream
            elif src.kind == "call":
                value = step.call_values[src.index]
            elif src.kind == "input" and edges[src.index].tensor is not None:
                value = edges[src.index].tensor.data
            elif src.kind == "constant":
                value = np.asarray(src.value)
            elif src.kind == "saved" and not step.node.released:
                value = step.node.saved_tensors[src.index]
                value = value.data if isinstance(value, Tensor) else np.asarray(value)
            else:
                continue
            if ig.summed_from is not None:
                assert value.shape == ig.summed_from, (step.node.name, i)
                value = sum_to_shape(Tensor(value), ig.shape).data
            np.testing.assert_allclose(
                np.asarray(value, dtype=got.dtype),
                got,
                rtol=1e-6,
                atol=1e-12,
                err_msg=f"{step.node.name}: input {i}",
            )

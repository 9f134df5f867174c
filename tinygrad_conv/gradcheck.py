"""Finite-difference checks of analytic gradients (float64 only, central differences).

``gradcheck`` compares d<v, f(x)>/dx from autodiff with (L(x+eps e_i) - L(x-eps e_i)) / 2eps for
every element of every input that requires grad, where v is a fixed *non-uniform* random upstream
gradient (a uniform one hides transposition bugs). ``gradgradcheck`` runs gradcheck on the gradient
itself, as a function of the inputs and of v, so it checks backward's own backward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tinygrad_conv import autograd
from tinygrad_conv.grad_mode import enable_grad, no_grad
from tinygrad_conv.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree; the message has the details."""


def _checked(inputs: Sequence[Tensor], op: str) -> list[int]:
    idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not idx:
        raise ValueError(f"{op}: no input requires grad, nothing to check")
    for i in idx:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"{op}: input {i} is {inputs[i].dtype}; finite differences need float64 inputs"
            )
    return idx


def _label(t: Tensor, i: int) -> str:
    return f"input {i}" + (f" ({t.name})" if t.name else "") + f" of shape {t.shape}"


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s gradients w.r.t. every input with ``requires_grad`` by central differences.

    Args:
        fn: maps ``*inputs`` to one Tensor (any shape).
        inputs: Tensors (float64 where checked) and other arguments, passed to ``fn`` as given.
        eps: finite-difference step; atol/rtol: pass when |analytic - numeric| <= atol + rtol*|numeric|.
        seed: seed of the random upstream gradient v.
    Returns True, or raises ``GradcheckError`` naming the input, the worst index and both values.
    """
    inputs = list(inputs)
    idx = _checked(inputs, "gradcheck")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).standard_normal(out.shape)
    v = v + 0.5 * np.sign(v)  # keep |v| away from 0 so every output element matters
    if out.requires_grad:
        analytic = autograd.grad(
            out, [inputs[i] for i in idx], grad_outputs=Tensor(v), allow_unused=True
        )
    else:
        analytic = (None,) * len(idx)

    def objective() -> float:
        with no_grad():
            return float(np.sum(fn(*inputs).data * v))

    for i, a in zip(idx, analytic, strict=True):
        x = inputs[i].data
        numeric = np.zeros(x.shape)
        flat = x.reshape(-1)  # a view: perturbing it perturbs the input in place
        if not np.shares_memory(flat, x):
            raise ValueError(f"gradcheck: {_label(inputs[i], i)} must be contiguous")
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            hi = objective()
            flat[k] = orig - eps
            lo = objective()
            flat[k] = orig
            numeric.reshape(-1)[k] = (hi - lo) / (2 * eps)
        got = np.zeros(x.shape) if a is None else a.data
        err = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            worst = np.unravel_index(int(np.argmax(err)), x.shape)
            raise GradcheckError(
                f"gradcheck failed for {_label(inputs[i], i)} at index {tuple(map(int, worst))}: "
                f"analytic {float(got[worst])!r} vs numeric {float(numeric[worst])!r} "
                f"(max abs diff {np.abs(got - numeric).max():.3e}, atol={atol}, rtol={rtol})"
            )
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck of x, v -> sum_i <u_i, d<v, fn(x)>/dx_i>.

    The upstream gradient v is itself an input of the checked function, so both backward's
    dependence on x (curvature) and on v (linearity of backward) are verified.
    """
    inputs = list(inputs)
    idx = _checked(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        out_shape = fn(*inputs).shape
    v = Tensor(rng.standard_normal(out_shape) + 0.5, requires_grad=True, name="upstream v")
    us = [rng.standard_normal(inputs[i].shape) for i in idx]

    def first_derivative(*args: Any) -> Tensor:
        *xs, vv = args
        with enable_grad():  # the finite differences call this under no_grad
            out = fn(*xs)
            grads = autograd.grad(
                out, [xs[i] for i in idx], grad_outputs=vv, create_graph=True, allow_unused=True
            )
            total = Tensor(np.zeros(()))
            for g, u in zip(grads, us, strict=True):
                if g is not None:
                    total = total + (g * Tensor(u)).sum()
        return total

    return gradcheck(first_derivative, [*inputs, v], eps=eps, atol=atol, rtol=rtol, seed=seed)

"""Optimizers and learning-rate schedules with PyTorch's exact update rules.

Optimizers only touch ``p.data`` and ``p.grad.data`` (ndarrays), never the graph: a parameter is
anything with a floating ``.data`` ndarray and a ``.grad`` that is None or has a ``.data`` ndarray
of the same shape (a bare ndarray is accepted too). Updates are in place (``p.data -= ...``) so
every reference to ``p.data`` stays valid, and the arithmetic stays in the parameter's dtype.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tinygrad_conv.tensor import Tensor  # noqa: F401  (documentation only)

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
]

Param = Any  # duck-typed: .data (float ndarray), .grad (None or .data ndarray)


class _IdentityDict(MutableMapping):
    """A dict keyed by object identity, so params need not be hashable (or have a sane ==)."""

    def __init__(self) -> None:
        self._d: dict[int, tuple[Any, Any]] = {}

    def __getitem__(self, key: Any) -> Any:
        try:
            return self._d[id(key)][1]
        except KeyError:
            raise KeyError(f"no state for parameter of shape {_shape_of(key)}") from None

    def __setitem__(self, key: Any, value: Any) -> None:
        self._d[id(key)] = (key, value)  # keep key alive so its id cannot be reused

    def __delitem__(self, key: Any) -> None:
        del self._d[id(key)]

    def __contains__(self, key: object) -> bool:
        return id(key) in self._d

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self._d.values())

    def __len__(self) -> int:
        return len(self._d)


def _shape_of(p: Any) -> Any:
    return getattr(getattr(p, "data", None), "shape", "?")


def _grad_array(p: Param) -> np.ndarray | None:
    """The gradient of ``p`` as an ndarray of p's dtype, or None when there is none."""
    g = p.grad
    if g is None:
        return None
    # ndarray has its own (buffer) ``.data`` attribute, so test for it before unwrapping.
    if not isinstance(g, np.ndarray):
        g = g.data
    if g.shape != p.data.shape:
        raise ValueError(
            f"optimizer step: gradient shape {g.shape} does not match parameter shape "
            f"{p.data.shape}"
        )
    return g if g.dtype == p.data.dtype else g.astype(p.data.dtype)


def _check_nonneg(name: str, value: Any, opt: str) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0.0:
        raise ValueError(f"{opt}: {name} must be a number >= 0, got {value!r}")


def _check_betas(betas: Any, opt: str) -> None:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"{opt}: betas must be a pair (beta1, beta2), got {betas!r}") from None
    for i, b in enumerate((b1, b2)):
        if not (isinstance(b, numbers.Real) and not isinstance(b, bool) and 0.0 <= b < 1.0):
            raise ValueError(f"{opt}: betas[{i}] must be in [0, 1), got {b!r}")


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, and state dicts.

    Args:
        params: an iterable of parameters, or of dicts ``{'params': [...], **hyperparameters}``
            (parameter groups; a group's missing hyperparameters come from ``defaults``).
        defaults: the hyperparameters of this optimizer and their default values.

    Attributes:
        param_groups: list of dicts, each with ``'params'`` (a list) and every hyperparameter.
        state: per-parameter dict (``state[p]``) of buffers such as ``'momentum_buffer'``.
    """

    def __init__(self, params: Iterable[Param] | Iterable[dict[str, Any]], defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.state: MutableMapping[Any, dict[str, Any]] = _IdentityDict()
        self.param_groups: list[dict[str, Any]] = []
        name = type(self).__name__
        if hasattr(params, "data") or isinstance(params, np.ndarray | dict):
            raise TypeError(
                f"{name}: params must be an iterable of parameters or of param-group dicts, "
                f"got a single {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check a group's hyperparameters (subclasses add their own checks)."""
        _check_nonneg("lr", group["lr"], type(self).__name__)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group ``{'params': [...], **overrides}``; unset hyperparameters take defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, got {type(param_group)}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{name}: a param group needs a 'params' entry")
        params = [params] if hasattr(params, "data") and not isinstance(params, list) else params
        params = list(params)
        if not params:
            raise ValueError(f"{name}: a param group has an empty 'params' list")
        for i, p in enumerate(params):
            data = getattr(p, "data", None)
            if not isinstance(data, np.ndarray) or isinstance(p, np.ndarray):
                raise TypeError(
                    f"{name}: params[{i}] must be a tensor with an ndarray .data, got "
                    f"{type(p).__name__}"
                )
            if not np.issubdtype(data.dtype, np.floating):
                raise ValueError(
                    f"{name}: params[{i}] has dtype {data.dtype} (shape {data.shape}); only "
                    f"floating-point parameters can be optimized"
                )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear more than once")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate_group(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: set ``p.grad = None`` (default) or zero ``p.grad.data`` in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad if isinstance(p.grad, np.ndarray) else p.grad.data
                    g[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                g = _grad_array(p)
                if g is not None:
                    self._update(p, g, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Param, g: np.ndarray, group: dict[str, Any], state: dict) -> None:
        """Apply one step to ``p.data`` in place given its gradient ``g`` (same shape/dtype)."""
        raise NotImplementedError

    # -- checkpointing ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A copy of the state: ``{'state': {index: {...}}, 'param_groups': [...]}``.

        Parameters are replaced by their position across all groups (as in PyTorch), so the dict
        can be loaded into a new optimizer built over the same parameters in the same order.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": copy.deepcopy(groups)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by ``state_dict`` (arrays are copied)."""
        name = type(self).__name__
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: saved state has {len(saved_groups)} param groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        lengths = [
            (len(s["params"]), len(g["params"]))
            for s, g in zip(saved_groups, self.param_groups, strict=True)
        ]
        if any(a != b for a, b in lengths):
            raise ValueError(
                f"{name}.load_state_dict: group sizes {[a for a, _ in lengths]} in the saved "
                f"state do not match {[b for _, b in lengths]}"
            )
        by_index: dict[int, Param] = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            by_index.update(zip(saved["params"], group["params"], strict=True))
        new_state: _IdentityDict = _IdentityDict()
        for i, s in state_dict["state"].items():
            p = by_index[int(i)]
            restored = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state {k!r} of param {i} has shape "
                            f"{v.shape}, the parameter has shape {p.data.shape}"
                        )
                    v = v.astype(p.data.dtype, copy=True)  # buffers live in the param's dtype
                else:
                    v = copy.deepcopy(v)
                restored[k] = v
            new_state[p] = restored
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            for k, v in saved.items():
                if k != "params":
                    group[k] = copy.deepcopy(v)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {hyper}")
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    For each parameter p with gradient g (all arrays of p's shape), per step::

        g = -g                              if maximize
        g = g + weight_decay * p            if weight_decay != 0
        if momentum != 0:
            b = g                           on the first step, else
            b = momentum * b + (1 - dampening) * g
            g = g + momentum * b            if nesterov, else g = b
        p = p - lr * g

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        momentum: momentum factor (>= 0).
        dampening: dampening of the momentum (must be 0 with nesterov).
        nesterov: Nesterov momentum (needs momentum > 0).
        weight_decay: L2 penalty coefficient added to the gradient (>= 0).
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable[Param] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        _check_nonneg("momentum", group["momentum"], "SGD")
        _check_nonneg("weight_decay", group["weight_decay"], "SGD")
        if not isinstance(group["dampening"], numbers.Real):
            raise ValueError(f"SGD: dampening must be a number, got {group['dampening']!r}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov momentum requires momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, p: Param, g: np.ndarray, group: dict[str, Any], state: dict) -> None:
        # Python floats, so a numpy-scalar hyperparameter cannot promote float32 math to float64.
        lr, momentum, wd = (
            float(group["lr"]),
            float(group["momentum"]),
            float(group["weight_decay"]),
        )
        if group["maximize"]:
            g = -g  # new array: never modify the caller's gradient
        if wd != 0:
            g = g + wd * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # PyTorch starts the buffer at the gradient itself (no dampening on step 1).
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), optionally AMSGrad, as ``torch.optim.Adam``.

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g = -g                                  if maximize
        g = g + weight_decay * p                if weight_decay != 0   (L2, coupled)
        m = m + (1 - beta1) * (g - m)           (= beta1 * m + (1 - beta1) * g)
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                     if amsgrad (and v := vmax below)
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps
        p = p - lr / (1 - beta1**t) * m / denom

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: L2 penalty coefficient added to the gradient (>= 0).
        amsgrad: use the running maximum of v.
        maximize: ascend instead of descend.
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Param] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, list) else betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        super()._validate_group(group)
        _check_betas(group["betas"], name)
        _check_nonneg("eps", group["eps"], name)
        _check_nonneg("weight_decay", group["weight_decay"], name)

    def _update(self, p: Param, g: np.ndarray, group: dict[str, Any], state: dict) -> None:
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if group["maximize"]:
            g = -g
        if wd != 0:
            if self._decoupled:
                p.data *= 1 - lr * wd  # AdamW: decay the weights, not the gradient
            else:
                g = g + wd * p.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # torch's lerp_ form (m + w * (g - m)), which rounds differently from beta1*m + (1-beta1)*g.
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data))
            np.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = lr / (1 - beta1**t)  # Python floats: float64 scalars, as in PyTorch
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - beta2**t)
        denom += eps
        upd = m / denom
        upd *= step_size
        p.data -= upd


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Same as :class:`Adam` except that weight decay shrinks the parameter directly,
    ``p = p * (1 - lr * weight_decay)``, before the Adam step, instead of adding
    ``weight_decay * p`` to the gradient.

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: decoupled decay coefficient (>= 0), default 1e-2.
        amsgrad: use the running maximum of v.
        maximize: ascend instead of descend.
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Param] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


# -- learning-rate schedules ----------------------------------------------------------------------


class LRScheduler:
    """Base class: sets each group's ``'lr'`` from a closed form in ``last_epoch``.

    Construction records ``'initial_lr'`` in every group (the base rate) and applies epoch 0, like
    PyTorch; each ``step()`` then advances one epoch. Subclasses implement ``_lr_at(base, epoch)``.

    Args:
        optimizer: the optimizer whose learning rates are set.
        last_epoch: the index of the last epoch when resuming (-1 starts afresh; otherwise every
            group must already hold ``'initial_lr'``).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer)}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(
                    f"{type(self).__name__}: resuming with last_epoch={last_epoch} needs "
                    f"'initial_lr' in param group {i}"
                )
        self.base_lrs: list[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rate of each group at ``last_epoch`` (closed form)."""
        return [self._lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        """The rates last written to the groups, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (which has its own state dict)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore from ``state_dict()`` (does not touch the optimizer's current rates)."""
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` epochs: ``base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: the optimizer.
        step_size: period of the decay in epochs (a positive int).
        gamma: multiplicative factor (>= 0).
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        _check_nonneg("gamma", gamma, "StepLR")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base rate to ``eta_min`` over ``T_max`` epochs (SGDR, no restarts).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``, PyTorch's closed
    form; past ``T_max`` the cosine continues (it rises again with period ``2 * T_max``).

    Args:
        optimizer: the optimizer.
        T_max: number of epochs of the half cosine (a positive int).
        eta_min: final learning rate (>= 0).
        last_epoch: see :class:`LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,  # noqa: N803 - PyTorch's name
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        _check_nonneg("eta_min", eta_min, "CosineAnnealingLR")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int) -> float:
        cos = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cos / 2

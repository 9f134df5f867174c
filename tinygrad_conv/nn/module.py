"""``Module``, ``Parameter`` and the containers ``Sequential`` / ``ModuleList``.

A Module keeps its Parameters, buffers and sub-Modules as ordinary attributes (so reading
``self.weight`` in ``forward`` costs a plain attribute lookup) and, alongside, in three ordered
registries that ``__setattr__`` maintains. Everything that walks the model (``named_parameters``,
``state_dict``, ``train``/``eval``, ``__repr__``) reads the registries.

Each sub-Module remembers the first parent it was registered in and its attribute name there, so a
layer can name its own place in the model (``features.0``) in error messages without any work on the
hot path.
"""

from __future__ import annotations

import os
import uuid
import weakref
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tinygrad_conv import scope as _scope
from tinygrad_conv.tensor import Tensor

__all__ = ["IncompatibleKeys", "Module", "ModuleList", "Parameter", "Sequential"]


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default).

    Args:
        data: array-like or Tensor (an ndarray is wrapped without a copy; a Tensor's array is
            shared).
        requires_grad: set False for a frozen parameter.

    Shape: whatever ``data`` has, e.g. HWIO ``[kh, kw, Cin/groups, Cout]`` for a conv weight.
    """

    # No __slots__: the subclass gets a __dict__, which is harmless and keeps Parameter open.

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None) -> None:
        arr = data.data if isinstance(data, Tensor) else data
        super().__init__(arr, requires_grad=requires_grad, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models (PyTorch's ``nn.Module`` surface, NHWC layouts).

    Subclasses call ``super().__init__()`` first, assign Parameters / sub-Modules as attributes, and
    define ``forward``. Calling the module calls ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_parent"] = None  # weakref to the first parent this module was registered in
        d["_name"] = ""
        d["training"] = True

    # -- attribute registration -----------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(
                    f"{type(self).__name__}: call super().__init__() before assigning "
                    f"parameters or sub-modules (while setting {name!r})"
                )
            object.__setattr__(self, name, value)
            return
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            old = modules.get(name)
            if old is not None and old is not value and old._parent_module() is self:
                old.__dict__["_parent"] = None
            modules[name] = value
            if value._parent_module() is None and value is not self:
                value.__dict__["_parent"] = weakref.ref(self)
                value.__dict__["_name"] = name
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}.{name} is a buffer: assign an ndarray or None, "
                    f"got {type(value).__name__}"
                )
            buffers[name] = value
        elif name in params or name in modules:
            if value is not None:  # as PyTorch: silently un-registering would hide a bug
                kind = "parameter" if name in params else "child module"
                want = "Parameter" if name in params else "Module"
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} as {kind} "
                    f"{name!r} ({want} or None expected)"
                )
            params.pop(name, None)  # ``self.bias = None`` un-registers
            old = modules.pop(name, None)
            if old is not None and old._parent_module() is self:
                old.__dict__["_parent"] = None
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        d["_parameters"].pop(name, None)
        d["_buffers"].pop(name, None)
        d["_non_persistent"].discard(name)
        old = d["_modules"].pop(name, None)
        if old is not None and old._parent_module() is self:
            old.__dict__["_parent"] = None
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or ``None``, i.e. absent) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None")
        setattr(self, name, param)

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """Register non-trainable state (an ndarray, e.g. BatchNorm's running mean).

        Buffers appear in ``state_dict`` (unless ``persistent=False``) and are restored in place by
        ``load_state_dict``; they never receive gradients.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("call super().__init__() before register_buffer()")
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(
                f"register_buffer({name!r}): expected an ndarray or None, "
                f"got {type(array).__name__}"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = array
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (same as ``setattr``)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # -- copying and pickling: weakrefs to parents cannot be pickled; rebuild them instead --------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_parent"] = None  # a copy is a new root until a copied parent claims it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name, m in self._modules.items():  # children are restored before their parent
            if m is not None and m.__dict__.get("_parent") is None:
                m.__dict__["_parent"] = weakref.ref(self)
                m.__dict__["_name"] = name

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output; subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Only the module scope (so recorded ops know their module, for drawings): this runs
        # once per layer per step, so no hooks or other machinery here.
        prev = _scope.push_scope(self)
        try:
            return self.forward(*args, **kwargs)
        finally:
            _scope.pop_scope(prev)

    # -- where am I ------------------------------------------------------------------------------
    def _parent_module(self) -> Module | None:
        ref = self.__dict__.get("_parent")
        return None if ref is None else ref()

    @property
    def _path(self) -> str:
        """Dotted path from the outermost parent, e.g. ``features.0`` ("" for a root module)."""
        names = []
        m: Module | None = self
        seen = set()
        while m is not None and id(m) not in seen:
            seen.add(id(m))
            parent = m._parent_module()
            if parent is None:
                break
            names.append(m.__dict__["_name"])
            m = parent
        return ".".join(reversed(names))

    def _where(self) -> str:
        """``features.0 (Conv2d)`` or just ``Conv2d`` for a root: the prefix of error messages."""
        path = self._path
        cls = type(self).__name__
        return f"{path} ({cls})" if path else cls

    # -- traversal -------------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Immediate sub-modules as ``(name, module)``, in registration order."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """Immediate sub-modules, in registration order."""
        for _, m in self.named_children():
            yield m

    def named_modules(
        self, prefix: str = "", memo: set[int] | None = None
    ) -> Iterator[tuple[str, Module]]:
        """This module (name ``prefix``) and all descendants with dotted names, each once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        """This module and all descendants, each once."""
        for _, m in self.named_modules():
            yield m

    def _named_members(
        self, registry: str, prefix: str, recurse: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_prefix, m in mods:
            for name, v in m.__dict__[registry].items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))  # a shared parameter is listed once, under its first name
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs, e.g. ``("features.0.weight", p)``; shared once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """All Parameters (each once), in registration order: pass to an optimizer."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(dotted name, ndarray)`` pairs of the registered buffers."""
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """All buffers (ndarrays)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every descendant, then on this module (children first, like PyTorch)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients -----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``training`` flag) on this module and every descendant."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: Dropout is the identity, BatchNorm uses running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (``.grad = None``, or zeros if not set_to_none)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor(np.zeros_like(p.data))

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def astype(self, dtype: Any) -> Module:
        """Convert every parameter and floating buffer to ``dtype`` (the Parameter objects stay)."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for name, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    setattr(m, name, b.astype(dtype))
        return self

    def double(self) -> Module:
        """Convert to float64 (needed for ``tc.gradcheck`` through a whole model)."""
        return self.astype(np.float64)

    def float(self) -> Module:
        """Convert to float32."""
        return self.astype(np.float32)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Total number of scalar parameters."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- state -----------------------------------------------------------------------------------
    def _state_items(self) -> Iterator[tuple[str, Any, bool]]:
        """``(key, holder, is_param)`` in PyTorch's order: own params, own buffers, children."""
        for prefix, m in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield dot + name, p, True
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield dot + name, (m, name), False

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Name -> ndarray *copy* of every parameter and persistent buffer (dotted names)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for key, holder, is_param in self._state_items():
            arr = holder.data if is_param else holder[0]._buffers[holder[1]]
            out[key] = np.array(arr, copy=True)
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy values into the parameters and buffers *in place* (optimizers keep valid refs).

        Every key is checked before anything is written, so a failed load changes nothing.

        Args:
            state_dict: name -> ndarray (or Tensor / array-like), as from ``state_dict()``.
            strict: raise on missing or unexpected keys (shape mismatches always raise).
        Raises:
            ValueError listing the missing and unexpected keys and each shape mismatch
            (name, expected shape vs got shape).
        """
        targets: dict[str, np.ndarray] = {}
        for key, holder, is_param in self._state_items():
            targets[key] = holder.data if is_param else holder[0]._buffers[holder[1]]
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        values: dict[str, np.ndarray] = {}
        problems = []
        for key, dst in targets.items():
            if key not in state_dict:
                continue
            src = state_dict[key]
            src = src.data if isinstance(src, Tensor) else np.asarray(src)
            if src.shape != dst.shape:
                problems.append(f"{key}: expected shape {dst.shape}, got {src.shape}")
            elif not np.can_cast(src.dtype, dst.dtype, casting="same_kind"):
                problems.append(f"{key}: cannot load dtype {src.dtype} into {dst.dtype}")
            else:
                values[key] = src
        if problems or (strict and (missing or unexpected)):
            lines = [f"load_state_dict: the state dict does not fit {type(self).__name__}:"]
            if missing and strict:
                lines.append(f"  missing keys: {missing}")
            if unexpected and strict:
                lines.append(f"  unexpected keys: {unexpected}")
            lines += [f"  shape/dtype mismatch: {p}" for p in problems]
            raise ValueError("\n".join(lines))
        for key, src in values.items():
            np.copyto(targets[key], src, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to an ``.npz`` file at exactly ``path``, atomically.

        The archive goes to a temporary file in the same directory, is flushed to disk, and is
        then renamed over ``path`` (``os.replace``, atomic on POSIX and Windows), so a crash or an
        error mid-write leaves any previous checkpoint untouched and no partial file behind.
        """
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"save: cannot write {path!r}: directory {directory!r} does not exist "
                "(create it first, e.g. os.makedirs(directory, exist_ok=True))"
            )
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        # os.open with mode 0o666 lets the umask decide permissions, as for a normally created file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **self.state_dict())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except FileNotFoundError:
                pass
            raise

    def load(self, path: str | os.PathLike, strict: bool = True) -> IncompatibleKeys:
        """Load an ``.npz`` written by ``save``; pickles are refused (weights never run code)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"load: no checkpoint file at {path!r}")
        try:
            with np.load(path, allow_pickle=False) as f:
                if not hasattr(f, "files"):
                    raise ValueError("a single array, not an archive of named arrays")
                state = {k: f[k] for k in f.files}
        except ValueError as e:
            why = (
                "it holds pickled Python objects (object arrays); a checkpoint must hold plain "
                "numeric arrays, and load() reads with allow_pickle=False because loading a "
                "pickle can run code"
                if "allow_pickle" in str(e) and zipfile.is_zipfile(path)
                else f"it is not an .npz archive written by save() ({e})"
                if "allow_pickle" not in str(e)
                else "it is not an .npz archive written by save()"
            )
            raise ValueError(f"load: cannot load {path!r}: {why}") from None
        return self.load_state_dict(state, strict=strict)

    # -- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's line in ``repr``."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        lines = [extra] if extra else []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        inner = "\n  ".join(lines)
        return f"{type(self).__name__}(\n  {inner}\n)"


class Sequential(Module):
    """Apply modules one after another: ``Sequential(Conv2d(...), ReLU(), ...)``.

    Children are named "0", "1", ... (or by the keys of a single ``dict`` argument). Supports
    ``len``, iteration, integer indexing (negative too) and slicing (a new Sequential sharing the
    same layers).
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(
                        f"Sequential: argument {i} is a {type(m).__name__}, not a Module"
                    )
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through every module in order."""
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position)."""
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        try:
            return mods[index]
        except IndexError:
            raise IndexError(
                f"Sequential index {index} out of range for length {len(mods)}"
            ) from None


class ModuleList(Module):
    """A list of sub-Modules (registered as "0", "1", ...); no ``forward`` of its own."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add several modules at the end."""
        for m in modules:
            self.append(m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

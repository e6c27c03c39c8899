"""`Parameter` and `Module`: the base of every layer, with train/eval modes and hooks.

refquant.nn is layer-level, in the spirit of micrograd and the CMU 10-414 "needle"
library but without a general autograd graph: every layer implements

* ``forward(x) -> y``, which caches what the backward pass needs, and
* ``backward(grad_y) -> grad_x``, which returns $\\partial L/\\partial x$ and *adds*
  $\\partial L/\\partial \\theta$ into each ``Parameter.grad``.

Containers (:class:`~refquant.nn.container.Sequential`,
:class:`~refquant.nn.container.Residual`) chain these calls, so a model's backward is
the layers' backwards in reverse order.

Hooks (for calibration and per-layer error analysis):

* ``module.register_forward_hook(fn)``: ``fn(module, inputs, output)`` runs after
  ``forward``; ``inputs`` is the tuple of positional inputs. If it returns a value,
  that value replaces the output and the gradient passes through it unchanged
  (straight-through).
* ``module.register_forward_pre_hook(fn)``: ``fn(module, inputs)`` runs before
  ``forward``; a returned value (an array or a tuple) replaces the inputs.
* ``named_modules()`` walks every module with a dotted name (``"2.body.0"``).

Both return a :class:`HookHandle` whose ``remove()`` detaches the hook. Hooks run only
when a module is *called* (``module(x)``), not when ``module.forward(x)`` is used
directly. The outermost call also checks its inputs for NaN/Inf.

Weights can be replaced by a function of themselves for the forward pass (fake
quantization, pruning masks) through ``layer.weight_transform``; see
:mod:`refquant.nn.transforms`.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from .._validate import as_flag, asarray, describe, native
from ..errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ._checks import as_float_dtype, check_finite

__all__ = ["Parameter", "Module", "HookHandle", "module_registry"]

_REGISTRY: dict[str, type] = {}
_STATE = threading.local()
_HOOK_IDS = itertools.count()


def module_registry() -> dict[str, type]:
    """Every Module subclass by class name (used by :func:`refquant.nn.load`).

    Subclasses register themselves when defined; a later class with the same name
    replaces an earlier one.
    """
    return dict(_REGISTRY)


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        value: the array (float32 by default), updated in place by the optimizers.
        grad: $\\partial L / \\partial \\mathrm{value}$, same shape and dtype,
            accumulated by ``backward`` and cleared by ``zero_grad``.
        requires_grad: if False, layers skip this gradient and optimizers skip the
            parameter (frozen layers in fine-tuning).
    """

    def __init__(self, value, requires_grad: bool = True):
        self.value = np.array(asarray(value, "value", kinds="biuf", what="a real array"), copy=True)
        if self.value.dtype.kind != "f":
            self.value = self.value.astype(np.float32)
        self.grad = np.zeros_like(self.value)
        self.requires_grad = as_flag(requires_grad, "requires_grad")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def zero_grad(self) -> None:
        """Set ``grad`` to zeros."""
        self.grad[...] = 0

    def accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` to ``grad`` (no-op when ``requires_grad`` is False)."""
        if self.requires_grad:
            self.grad += g

    def __repr__(self) -> str:
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


class HookHandle:
    """Returned by ``register_forward_hook``; ``remove()`` detaches the hook."""

    def __init__(self, hooks: dict, key: int):
        if not isinstance(hooks, dict):
            raise QuantizationTypeError(f"hooks must be the dict of a module's hooks, got {describe(hooks)}")
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> "HookHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _input_names(module, n: int) -> list[str]:
    """Names of ``forward``'s first ``n`` arguments for messages (``x``; ``a``, ``b`` for ``Add``)."""
    if n == 1:
        return ["x"]
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = []
    return [params[i] if i < len(params) else f"input {i}" for i in range(n)]


class Module:
    """Base class of every layer and container.

    Subclasses set ``Parameter`` and ``Module`` attributes in ``__init__`` (they are
    registered in order of assignment), implement ``forward`` and ``backward``, and, to
    be saved with :func:`refquant.nn.save`, ``get_config`` (constructor arguments).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_params" not in self.__dict__:
            raise UnsupportedError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                   f"before setting attribute {name!r}")
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        elif value is None and (name in self._params or name in self._modules):
            self._params.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Register a non-trainable array saved with the weights (e.g. BatchNorm statistics)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # ---- computation -------------------------------------------------------------
    def forward(self, *inputs):
        raise UnsupportedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        raise UnsupportedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs):
        depth = getattr(_STATE, "depth", 0)
        if depth == 0:  # the model's boundary: native byte order, and NaN/Inf rejected once, not in every layer
            names = _input_names(self, len(inputs))
            inputs = tuple(native(x) if isinstance(x, np.ndarray) else x for x in inputs)
            for name, x in zip(names, inputs):
                if isinstance(x, np.ndarray):
                    check_finite(x, name)
        _STATE.depth = depth + 1
        try:
            for hook in list(self._forward_pre_hooks.values()):
                r = hook(self, inputs)
                if r is not None:
                    inputs = r if isinstance(r, tuple) else (r,)
            out = self.forward(*inputs)
            for hook in list(self._forward_hooks.values()):
                r = hook(self, inputs, out)
                if r is not None:
                    out = r
        finally:
            _STATE.depth = depth
        return out

    # ---- hooks -------------------------------------------------------------------
    def register_forward_hook(self, fn: Callable) -> HookHandle:
        """Run ``fn(module, inputs, output)`` after each call; a non-None result replaces
        the output (its gradient passes straight through)."""
        key = next(_HOOK_IDS)
        self._forward_hooks[key] = fn
        return HookHandle(self._forward_hooks, key)

    def register_forward_pre_hook(self, fn: Callable) -> HookHandle:
        """Run ``fn(module, inputs)`` before each call; a non-None result replaces the inputs."""
        key = next(_HOOK_IDS)
        self._forward_pre_hooks[key] = fn
        return HookHandle(self._forward_pre_hooks, key)

    # ---- traversal ---------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yield ``(dotted_name, module)`` for this module (name ``prefix``) and every descendant."""
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                yield (f"{mname}.{bname}" if mname else bname), b

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for m in self.modules():
            fn(m)
        return self

    def num_parameters(self) -> int:
        return int(sum(p.value.size for p in self.parameters()))

    # ---- modes and state ---------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics in BatchNorm, dropout active) for the whole tree."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (running statistics, no dropout)."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def reseed(self, rng: np.random.Generator) -> None:
        """Give stochastic layers a new generator (no-op here; Dropout overrides)."""

    def to(self, dtype) -> "Module":
        """Convert every parameter and floating buffer to ``dtype`` (float32 or float64), in place."""
        d = as_float_dtype(dtype)
        for m in self.modules():
            for p in m._params.values():
                p.value = p.value.astype(d)
                p.grad = p.grad.astype(d)
            for name, b in list(m._buffers.items()):
                if isinstance(b, np.ndarray) and b.dtype.kind == "f":
                    setattr(m, name, b.astype(d))
        return self

    def copy(self) -> "Module":
        """A deep copy (weights, buffers, hooks and transforms)."""
        return copy.deepcopy(self)

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter value and buffer, keyed by dotted name."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.value.copy()
        for name, b in self.named_buffers():
            out[name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters and buffers, in place.

        Raises:
            FormatVersionError: a key is missing (or, with ``strict``, unexpected).
            ShapeError: an array has another shape than the parameter.
        """
        targets = dict(self.named_parameters())
        buffers = {name: None for name, _ in self.named_buffers()}
        missing = [k for k in list(targets) + list(buffers) if k not in state]
        if missing:
            raise FormatVersionError(f"state is missing key(s) {missing}; expected keys: "
                                     f"{list(targets) + list(buffers)}")
        extra = [k for k in state if k not in targets and k not in buffers]
        if strict and extra:
            raise FormatVersionError(f"state has unexpected key(s) {extra} for {type(self).__name__}")
        for k, p in targets.items():
            a = np.asarray(state[k])
            if a.shape != p.value.shape:
                raise ShapeError(f"state[{k!r}] must have shape {p.value.shape}, got {a.shape}")
            p.value[...] = a
        for mname, m in self.named_modules():
            for bname, b in list(m._buffers.items()):
                k = f"{mname}.{bname}" if mname else bname
                a = np.asarray(state[k])
                if isinstance(b, np.ndarray):
                    if a.shape != b.shape:
                        raise ShapeError(f"state[{k!r}] must have shape {b.shape}, got {a.shape}")
                    a = a.astype(b.dtype)
                setattr(m, bname, np.array(a, copy=True))

    # ---- architecture (for save/load) ----------------------------------------------
    def get_config(self) -> dict:
        """Constructor keyword arguments (JSON-serialisable) that rebuild this module."""
        return {}

    @classmethod
    def from_config(cls, config: dict, children: "OrderedDict[str, Module]") -> "Module":
        """Rebuild from ``get_config()`` and the rebuilt children (leaf layers have none)."""
        return cls(**config)

    # ---- helpers for subclasses --------------------------------------------------
    def _cached(self, name: str = "_cache"):
        c = self.__dict__.get(name)
        if c is None:
            raise QuantizationValueError(f"{type(self).__name__}.backward() called before forward()")
        return c

    @staticmethod
    def _check_grad(grad_out, shape: tuple, layer: str) -> np.ndarray:
        g = asarray(grad_out, f"{layer}.backward: grad_out", kinds=None, what="an array")
        if g.shape != tuple(shape):
            raise ShapeError(f"{layer}.backward: grad_out must have the output's shape {tuple(shape)}, got {g.shape}")
        return g

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"

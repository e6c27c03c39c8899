"""From a float ``refquant.nn`` model to a list of steps: the graph a quantizer works on.

:func:`trace` walks the model (``Sequential``, ``Residual``, layers) and returns :class:`Step`
records in execution order. Each step is one future node of the integer model: its op, its
input tensors, its output tensor (named after the layer's path), the float layer it comes from,
and the activation fused into it. A ReLU or ReLU6 right after a Linear, Conv2d or residual add is
fused into that step (its clamp becomes the layer's output clamp, and the step's output is the
activation's output) when ``fuse`` lists it; otherwise it is a ``clamp`` step of its own.

:func:`observe` runs the float model on batches with forward hooks and streams every step's
output (and the model input) into observers: calibration. :func:`float_outputs` returns the
float value of every step's output tensor for one batch (the reference of a layer-by-layer
comparison).

Dropout and Identity are skipped (a quantizer runs the model in eval mode); a BatchNorm must be
folded first (:func:`refquant.passes.fold_batch_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..errors import QuantizationTypeError, UnsupportedError

__all__ = ["Step", "trace", "observe", "float_outputs", "INPUT"]

#: Name of the model's input tensor.
INPUT = "input"

_ACTIVATIONS = {nn.ReLU: "RELU", nn.ReLU6: "RELU6"}
_FUSES_INTO = ("linear", "conv2d", "add")


@dataclass
class Step:
    """One op of the traced model.

    Attributes:
        name: The layer's dotted path (also the output tensor's name).
        op: A :data:`refquant.qmodel.graph.OPS` name.
        inputs: Input tensor names.
        layer: The float layer (Linear, Conv2d, a pool), or ``None``.
        activation: Fused activation name (``"RELU"``, ``"RELU6"``) or ``None``.
        hook: The module whose output is this step's output (the activation when fused).
    """

    name: str
    op: str
    inputs: list
    layer: object = None
    activation: str | None = None
    hook: object = None
    extra: dict = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.name


def _is_activation(m) -> str | None:
    return _ACTIVATIONS.get(type(m))


class _Tracer:
    def __init__(self, fuse):
        self.steps: list[Step] = []
        self.fuse = tuple(fuse)

    def _emit(self, step: Step) -> str:
        self.steps.append(step)
        return step.output

    def _activation(self, module, name: str, x: str) -> str:
        act = _is_activation(module)
        last = self.steps[-1] if self.steps else None
        if (last is not None and last.output == x and last.op in _FUSES_INTO and last.activation is None
                and act in self.fuse):
            last.activation, last.hook = act, module
            return x
        return self._emit(Step(name, "clamp", [x], activation=act, hook=module))

    def module(self, m, name: str, x: str) -> str:
        if isinstance(m, nn.Sequential):
            for child_name, child in m.named_children():
                x = self.module(child, f"{name}.{child_name}" if name else child_name, x)
            return x
        if isinstance(m, nn.Residual):
            body = self.module(m.body, f"{name}.body", x)
            skip = x if m.shortcut is None else self.module(m.shortcut, f"{name}.shortcut", x)
            y = self._emit(Step(f"{name}.add", "add", [body, skip], hook=m.add))
            return y if m.activation is None else self.module(m.activation, f"{name}.activation", y)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return x
        if _is_activation(m):
            return self._activation(m, name, x)
        if isinstance(m, nn.Linear):
            return self._emit(Step(name, "linear", [x], layer=m, hook=m))
        if isinstance(m, nn.Conv2d):
            return self._emit(Step(name, "conv2d", [x], layer=m, hook=m))
        if isinstance(m, nn.MaxPool2d):
            return self._emit(Step(name, "max_pool2d", [x], layer=m, hook=m))
        if isinstance(m, nn.AvgPool2d):
            return self._emit(Step(name, "average_pool2d", [x], layer=m, hook=m))
        if isinstance(m, nn.GlobalAvgPool2d):
            if m.keepdims:
                raise UnsupportedError(f"layer {name!r}: GlobalAvgPool2d(keepdims=True) is not supported; "
                                       f"use keepdims=False")
            return self._emit(Step(name, "global_average_pool", [x], layer=m, hook=m))
        if isinstance(m, nn.Flatten):
            return self._emit(Step(name, "flatten", [x], layer=m, hook=m))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise UnsupportedError(f"layer {name!r} ({type(m).__name__}) must be folded into the layer before it "
                                   f"(refquant.passes.fold_batch_norm) before quantization; a BatchNorm that "
                                   f"follows no Linear or Conv2d cannot be quantized")
        raise UnsupportedError(f"layer {name!r} ({type(m).__name__}) has no integer node in refquant's integer "
                               f"model")


def trace(model, *, fuse=("RELU", "RELU6")) -> list[Step]:
    """The steps of ``model`` in execution order (see the module docstring).

    Args:
        model: A float :class:`refquant.nn.Module` (BatchNorm folded).
        fuse: Activation names to fuse into the preceding Linear, Conv2d or add.

    Raises:
        QuantizationTypeError: ``model`` is not a ``refquant.nn.Module``.
        UnsupportedError: A layer with no integer node, naming it.
    """
    if not isinstance(model, nn.Module):
        raise QuantizationTypeError(f"model must be a refquant.nn Module, got {type(model).__name__}")
    tracer = _Tracer(fuse)
    tracer.module(model, "", INPUT)
    return tracer.steps


def _hooked(model, steps, fn):
    """Run ``fn`` with a forward hook on each step's ``hook`` module reporting (tensor, output)."""
    handles = []
    by_module: dict[int, list[str]] = {}
    for s in steps:
        by_module.setdefault(id(s.hook), []).append(s.output)

    def make(names):
        def hook(module, inputs, output):
            for name in names:
                fn(name, output)
        return hook

    seen = set()
    for s in steps:
        if id(s.hook) not in seen:
            seen.add(id(s.hook))
            handles.append(s.hook.register_forward_hook(make(by_module[id(s.hook)])))
    return handles


def observe(model, steps, batches, make_observer) -> dict:
    """Stream every batch through ``model`` (eval mode) and each step's output into an observer.

    Args:
        model: The traced float model.
        steps: Its :func:`trace`.
        batches: Iterable of float32 input batches.
        make_observer: ``f(tensor_name) -> observer`` with ``update(x)``.

    Returns:
        ``{tensor name: observer}``, the model input (:data:`INPUT`) included.
    """
    observers = {INPUT: make_observer(INPUT)}
    for s in steps:
        observers[s.output] = make_observer(s.output)
    handles = _hooked(model, steps, lambda name, y: observers[name].update(np.asarray(y)))
    try:
        model.eval()
        for batch in batches:
            observers[INPUT].update(batch)
            model(batch)
    finally:
        for h in handles:
            h.remove()
    return observers


def float_outputs(model, steps, x) -> dict:
    """``{tensor name: float array}`` of every step's output on input ``x`` (and :data:`INPUT`)."""
    out = {INPUT: np.asarray(x, np.float32)}
    handles = _hooked(model, steps, lambda name, y: out.__setitem__(name, np.asarray(y)))
    try:
        model.eval()
        out["__output__"] = model(x)
    finally:
        for h in handles:
            h.remove()
    return out

"""PyTorch twins of float ``refquant.nn`` models, quantized by PyTorch's own eager-mode flow.

:func:`torch_twin` mirrors a (BatchNorm-folded) ``refquant.nn`` model module for module, under
the same dotted names, so that a node of refquant's integer model (``"2.body.0"``, ``"3.add"``)
and the torch module that computes the same tensor share one name:

| refquant.nn | torch twin | after ``convert`` |
|---|---|---|
| ``Linear`` (+ ``ReLU``) | ``nn.Linear`` (fused with the ReLU: ``LinearReLU``) | ``nnq.Linear`` / ``nniq.LinearReLU`` |
| ``Conv2d`` (+ ``ReLU``) | ``nn.Conv2d`` (fused: ``ConvReLU2d``) | ``nnq.Conv2d`` / ``nniq.ConvReLU2d`` |
| ``ReLU6`` | ``nn.ReLU6`` | ``nnq.ReLU6`` (clamp, the input's parameters) |
| ``Residual`` | body, shortcut, ``FloatFunctional`` named ``add`` | ``QFunctional.add`` / ``.add_relu`` |
| ``MaxPool2d``, ``Flatten`` | the same | unchanged (run on quantized tensors) |
| ``GlobalAvgPool2d`` | ``AdaptiveAvgPool2d(1)`` + ``Flatten`` | unchanged (keeps the input's parameters) |
| ``Identity`` (a folded BatchNorm), ``Dropout`` | ``nn.Identity`` | unchanged |

The whole model is wrapped as ``quant`` (``QuantStub``) → ``net`` (the twin) → ``dequant``
(``DeQuantStub``). :func:`quantize_eager` runs ``fuse_modules`` → ``prepare`` → calibration →
``convert`` with a qconfig whose activation observer is ``MinMaxObserver`` (quint8, the engine's
``reduce_range``), so torch's observers compute every parameter (from the float ranges they saw, or
from the ranges passed as ``ranges=``), and torch's ``from_float`` quantizes the weights.

Imports torch at import time: import after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import torch
from torch import nn as tnn
from torch.ao import quantization as tq

from refquant import nn

__all__ = [
    "ENGINE_REDUCE_RANGE",
    "QOut",
    "fuse_groups",
    "observed_ranges",
    "qconfig",
    "quantize_eager",
    "quantized_outputs",
    "torch_twin",
]

#: ``reduce_range`` of each engine's default activation observer (torch's ``get_default_qconfig``).
ENGINE_REDUCE_RANGE = {"fbgemm": True, "x86": True, "qnnpack": False}


class TwinResidual(tnn.Module):
    """``y = add(body(x), shortcut(x))`` through a ``FloatFunctional`` named ``add`` (``add_relu``
    when the refquant block ends in a ReLU)."""

    def __init__(self, body, shortcut, relu: bool):
        super().__init__()
        self.body = body
        self.shortcut = shortcut
        self.add = tnn.quantized.FloatFunctional()
        self.relu = relu

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        y = self.body(x)
        return self.add.add_relu(y, skip) if self.relu else self.add.add(y, skip)


class Wrapped(tnn.Module):
    def __init__(self, net):
        super().__init__()
        self.quant = tq.QuantStub()
        self.net = net
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.net(self.quant(x)))


def _param(p) -> tnn.Parameter:
    return tnn.Parameter(torch.from_numpy(np.array(p.value, np.float32, copy=True)), requires_grad=False)


def _twin(m):
    if isinstance(m, nn.Sequential):
        return tnn.Sequential(*[_twin(c) for _, c in m.named_children()])
    if isinstance(m, nn.Residual):
        if m.activation is not None and not isinstance(m.activation, nn.ReLU):
            raise NotImplementedError(f"Residual activation {type(m.activation).__name__}")
        shortcut = None if m.shortcut is None else _twin(m.shortcut)
        return TwinResidual(_twin(m.body), shortcut, m.activation is not None)
    if isinstance(m, nn.Linear):
        t = tnn.Linear(m.weight.value.shape[1], m.weight.value.shape[0], bias=m.bias is not None)
    elif isinstance(m, nn.Conv2d):
        top, bottom, left, right = m.padding
        if (top, left) != (bottom, right):
            raise NotImplementedError(f"asymmetric padding {m.padding}: torch Conv2d pads symmetrically")
        t = tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, (top, left), m.dilation, m.groups,
                       bias=m.bias is not None)
    elif isinstance(m, (nn.Identity, nn.Dropout)):
        return tnn.Identity()  # a folded BatchNorm keeps its name as an Identity (keep_names=True)
    elif isinstance(m, nn.ReLU):
        return tnn.ReLU()
    elif isinstance(m, nn.ReLU6):
        return tnn.ReLU6()
    elif isinstance(m, nn.Flatten):
        return tnn.Flatten()
    elif isinstance(m, nn.MaxPool2d):
        if any(m.padding) or tuple(m.dilation) != (1, 1):
            raise NotImplementedError("padded or dilated MaxPool2d")
        return tnn.MaxPool2d(m.kernel_size, m.stride)
    elif isinstance(m, nn.GlobalAvgPool2d):
        if m.keepdims:
            raise NotImplementedError("GlobalAvgPool2d(keepdims=True)")
        return tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten())
    else:
        raise NotImplementedError(f"no torch twin for {type(m).__name__}")
    t.weight = _param(m.weight)
    if m.bias is not None:
        t.bias = _param(m.bias)
    return t


def _contiguous_input(module, args):
    return (args[0].contiguous(),)


def torch_twin(model, *, contiguous_relu6: bool = False) -> Wrapped:
    """``QuantStub → twin of model → DeQuantStub``, in eval mode, float32 weights copied bit for bit.

    ``contiguous_relu6``: give every ReLU6 a forward pre-hook that makes its input contiguous
    (``convert`` keeps pre-hooks on the quantized module). A memory-layout change only: it works
    around torch 2.13's qnnpack ``quantized::relu6`` on channels-last inputs (see
    ``tests/test_conformance_ptq.py``).

    ``model`` must be BatchNorm-free: run :func:`refquant.passes.prepare_for_quantization` with
    ``keep_names=True`` first (what the flows do), so that the twin's names are the nodes' names.
    """
    twin = Wrapped(_twin(model)).eval()
    if contiguous_relu6:
        for mod in twin.modules():
            if isinstance(mod, tnn.ReLU6):
                mod.register_forward_pre_hook(_contiguous_input)
    return twin


def fuse_groups(model, prefix: str = "net") -> list[list[str]]:
    """Module-name pairs ``[layer, relu]`` to give ``fuse_modules``: every Linear or Conv2d followed
    by a ReLU inside one Sequential, Identity layers (folded BatchNorms) between them skipped: what
    refquant's PyTorch recipe fuses. ``fuse_modules`` leaves the ReLU's slot an Identity."""
    groups = []

    def walk(m, name):
        if isinstance(m, nn.Sequential):
            children = [(n, c) for n, c in m.named_children() if not isinstance(c, (nn.Identity, nn.Dropout))]
            for (n0, c0), (n1, c1) in itertools.pairwise(children):
                if isinstance(c0, (nn.Linear, nn.Conv2d)) and isinstance(c1, nn.ReLU):
                    groups.append([f"{name}.{n0}", f"{name}.{n1}"])
            for n, c in children:
                walk(c, f"{name}.{n}")
        elif isinstance(m, nn.Residual):
            walk(m.body, f"{name}.body")
            if m.shortcut is not None:
                walk(m.shortcut, f"{name}.shortcut")

    walk(model, prefix)
    return groups


def qconfig(engine: str, per_channel: bool) -> tq.QConfig:
    """MinMax activations (quint8, the engine's ``reduce_range``); symmetric qint8 weights."""
    act = tq.MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=ENGINE_REDUCE_RANGE[engine])
    weight = tq.default_per_channel_weight_observer if per_channel else tq.default_weight_observer
    return tq.QConfig(activation=act, weight=weight)


def observed_ranges(prepared) -> dict:
    """``{refquant tensor name: (min, max)}`` of every activation observer of a prepared twin
    (the ``QuantStub``'s observer is the model input, ``"input"``)."""
    out = {}
    for name, obs in _observers(prepared):
        out[name] = (np.float32(obs.min_val.item()), np.float32(obs.max_val.item()))
    return out


def _observers(prepared):
    for name, mod in prepared.named_modules():
        obs = getattr(mod, "activation_post_process", None)
        if isinstance(obs, tq.ObserverBase):
            yield ("input" if name == "quant" else name.removeprefix("net.")), obs


def quantize_eager(model, batches, *, engine: str, per_channel: bool = True, ranges=None,
                   contiguous_relu6: bool = False):
    """PyTorch's eager-mode static quantization of ``model``'s twin: fuse, prepare, calibrate on
    ``batches`` (float32 arrays), convert. Call inside ``quantized_engine(engine)``.

    ``ranges`` (``{tensor name: (min, max)}``, e.g. refquant's calibration): after calibration,
    each observer's ``min_val`` / ``max_val`` is overwritten with the range of the tensor of the
    same name before ``convert``, so that both sides choose parameters from the same float range
    (their float forward passes sum in different orders and see ranges a few ulps apart).

    Returns:
        ``(converted model, ranges torch's own observers saw)``.
    """
    twin = torch_twin(model, contiguous_relu6=contiguous_relu6)
    groups = fuse_groups(model)
    if groups:
        twin = tq.fuse_modules(twin, groups)
    twin.qconfig = qconfig(engine, per_channel)
    prepared = tq.prepare(twin)
    with torch.no_grad():
        for b in batches:
            prepared(torch.from_numpy(np.ascontiguousarray(b, np.float32)))
    seen = observed_ranges(prepared)
    if ranges is not None:
        for name, obs in _observers(prepared):
            lo, hi = ranges[name]
            obs.min_val.copy_(torch.tensor(np.float32(lo)))
            obs.max_val.copy_(torch.tensor(np.float32(hi)))
    return tq.convert(prepared).eval(), seen


class QOut(NamedTuple):
    """One quantized tensor a module of the converted twin returned."""

    codes: np.ndarray
    scale: float  # q_scale(): float64 holding torch's float32 scale
    zero_point: int


def quantized_outputs(qtwin: Wrapped, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Run the converted twin on ``x``.

    Returns:
        ``(float32 output, {module name: QOut})`` for every module whose output is a per-tensor
        quantized tensor, named as refquant names tensors (``"input"`` for the ``QuantStub``,
        the ``"net."`` prefix dropped).
    """
    out, handles = {}, []

    def make(name):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.is_quantized:
                out[name] = QOut(output.int_repr().numpy().copy(), output.q_scale(), output.q_zero_point())
        return hook

    for name, mod in qtwin.named_modules():
        if name.startswith("net.") or name == "quant":
            key = "input" if name == "quant" else name.removeprefix("net.")
            # QFunctional.add / add_relu are methods, not forward: they pass the sum through their
            # activation_post_process (an Identity after convert), which the hook sees
            key = key.removesuffix(".activation_post_process")
            handles.append(mod.register_forward_hook(make(key)))
    try:
        with torch.no_grad():
            y = qtwin(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
    finally:
        for h in handles:
            h.remove()
    return y, out

"""Lowering: traced steps + calibration ranges + a recipe → a :class:`~refquant.qmodel.QuantizedModel`.

Each step becomes one node. An integer step's output tensor gets the recipe's parameters for its
observed range, except where the op keeps its input's parameters (pools, flatten, a standalone
clamp, and a global average pool whose profile kernel keeps them). Weights and biases are
quantized as the recipe's tool does; the bias dtype is what the profile's layer takes (int32 for
an ``int32`` bias mode, float32 otherwise).

A step listed in ``float_steps`` stays float32, and so does a pool, flatten or clamp of a float
step's output: ``quantize`` / ``dequantize`` nodes are inserted where the graph crosses between float
and integer tensors, so a partially quantized model is one graph too. The model quantizes its input and dequantizes its output.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..modes import GLOBAL_POOL_KEEPS_PARAMS
from ..profiles import Profile
from ..qmodel import Node, QuantizedModel, TensorInfo
from .recipes import Recipe, activation_params, quantize_bias, quantize_weight
from .trace import INPUT, Step

__all__ = ["lower", "KEEPS_PARAMS", "keeps_params"]

_F32 = np.float32
#: Ops whose output has their input's parameters.
KEEPS_PARAMS = ("max_pool2d", "average_pool2d", "flatten", "clamp")


def keeps_params(op: str, profile: Profile) -> bool:
    """Whether a step's output has its input's parameters under ``profile``: pools, flatten and
    a standalone clamp always; a global average pool when the profile's kernel keeps them
    (:data:`refquant.modes.GLOBAL_POOL_KEEPS_PARAMS`)."""
    if op == "global_average_pool":
        return profile.pointwise.global_average_pool in GLOBAL_POOL_KEEPS_PARAMS
    return op in KEEPS_PARAMS


def _padding(conv) -> list[int]:
    top, bottom, left, right = conv.padding  # refquant.nn order
    return [int(top), int(left), int(bottom), int(right)]


class _Builder:
    def __init__(self, profile: Profile, recipe: Recipe, ranges: dict, per_channel: bool):
        self.profile, self.recipe, self.ranges, self.per_channel = profile, recipe, ranges, per_channel
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.domain: dict[str, dict[bool, str]] = {}  # tensor → {is_integer: name of that version}

    def _params_of(self, name: str) -> tuple[float, int]:
        lo, hi = self.ranges[name]
        return activation_params(self.recipe, lo, hi)

    def add_tensor(self, name: str, integer: bool, params=None) -> str:
        if integer:
            s, z = params
            self.tensors[name] = TensorInfo(name, self.recipe.activation_dtype, s, z)
        else:
            self.tensors[name] = TensorInfo(name, "float32")
        self.domain.setdefault(name.split(":")[0], {})[integer] = name
        return name

    def version(self, tensor: str, integer: bool) -> str:
        """The name of ``tensor`` in the wanted domain, inserting a quantize/dequantize node once."""
        have = self.domain[tensor]
        if integer in have:
            return have[integer]
        src = have[not integer]
        if integer:
            name = self.add_tensor(f"{tensor}:q", True, self._params_of(tensor))
            self.nodes.append(Node(f"{tensor}:quantize", "quantize", (src,), name))
        else:
            name = self.add_tensor(f"{tensor}:f", False)
            self.nodes.append(Node(f"{tensor}:dequantize", "dequantize", (src,), name))
        return name

    def step(self, s: Step, integer: bool) -> None:
        inputs = tuple(self.version(t, integer) for t in s.inputs)
        attrs, params = {}, {}
        if s.activation is not None and s.op != "clamp" and (self.recipe.clamp_in_kernel or not integer):
            attrs["activation"] = s.activation
        if s.op in ("linear", "conv2d"):
            params = self._layer_params(s, inputs[0], integer)
            if s.op == "conv2d":
                c = s.layer
                attrs.update(stride=list(c.stride), padding=_padding(c), dilation=list(c.dilation), groups=c.groups)
        elif s.op in ("max_pool2d", "average_pool2d"):
            p = s.layer
            if any(p.padding) or tuple(p.dilation) != (1, 1) or (s.op == "average_pool2d" and not p.count_include_pad
                                                                  and any(p.padding)):
                raise UnsupportedError(f"layer {s.name!r}: pooling with padding or dilation has no integer node")
            attrs.update(kernel=list(p.kernel_size), stride=list(p.stride))
        elif s.op == "clamp":
            attrs["activation"] = s.activation
        if not integer:
            out = self.add_tensor(s.output, False)
        elif keeps_params(s.op, self.profile):
            src = self.tensors[inputs[0]]
            out = self.add_tensor(s.output, True, (src.scale, src.zero_point))
        else:
            out = self.add_tensor(s.output, True, self._params_of(s.output))
            if s.activation is not None and s.op != "clamp" and not self.recipe.clamp_in_kernel:
                self._check_range_covers(s, self.tensors[out])
        self.nodes.append(Node(s.name, s.op, inputs, out, attrs, params))

    def _check_range_covers(self, s: Step, t: TensorInfo) -> None:
        """The runtime drops the activation only when the output's codes cannot leave its range."""
        info = np.iinfo(np.dtype(t.dtype))
        lo = t.scale * (info.min - t.zero_point)
        hi = t.scale * (info.max - t.zero_point)
        top = {"RELU": np.inf, "RELU6": 6.0}[s.activation]
        if lo < 0 or hi > top * (1 + 1e-6):
            raise UnsupportedError(f"layer {s.name!r}: its {s.activation} is removed by the runtime only when the "
                                   f"output range lies inside it, got [{lo!r}, {hi!r}]")

    def _layer_params(self, s: Step, x: str, integer: bool) -> dict:
        layer = s.layer
        w = layer.weight.value.astype(_F32)
        b = None if layer.bias is None else layer.bias.value.astype(_F32)
        if not integer:
            return {"weight": w} | ({} if b is None else {"bias": b})
        q, ws, wz = quantize_weight(self.recipe, w, per_channel=self.per_channel, profile=self.profile)
        family = "linear" if s.op == "linear" else "conv"
        int_bias = self.profile.layer(family).bias == "int32"
        params = {"weight": q, "weight_scale": ws, "weight_zero_point": wz}
        bq = quantize_bias(self.recipe, b, self.tensors[x].scale, ws, integer=int_bias)
        if bq is not None:
            params["bias"] = bq
        return params


def lower(steps, ranges: dict, *, profile: Profile, recipe: Recipe, per_channel: bool = True,
          float_steps=(), metadata=None) -> QuantizedModel:
    """Build the integer model (see the module docstring).

    Args:
        steps: :func:`refquant.ptq.trace.trace` of the float model.
        ranges: ``{tensor name: (lo, hi)}`` for the input and every step output.
        profile: The resolved profile the model runs under.
        recipe: The tool whose parameter choices to reproduce.
        per_channel: Per-channel weights (else per tensor).
        float_steps: Names of steps kept in float32.
        metadata: Recorded in the model.
    """
    b = _Builder(profile, recipe, ranges, per_channel)
    b.add_tensor(INPUT, False)
    float_steps = set(float_steps)
    for s in steps:
        integer = s.name not in float_steps
        if s.op in KEEPS_PARAMS and s.inputs[0] != INPUT and True not in b.domain[s.inputs[0]]:
            integer = False  # a pool, flatten or clamp of a float layer's output stays float
        b.step(s, integer)
    last = steps[-1].output if steps else INPUT
    out = b.version(last, False)
    return QuantizedModel(b.nodes, b.tensors, [INPUT], [out], profile=profile.name, isa=profile.isa,
                          metadata=metadata)

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

__all__ = ["lower", "KEEPS_PARAMS", "keeps_params", "bias_dtype"]

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
        self.domain: dict[str, dict[str, str]] = {}  # tensor → {dtype: name of that version}, the producer's first

    def _params_of(self, name: str, dtype: str) -> tuple[float, int]:
        lo, hi = self.ranges[name]
        return activation_params(self.recipe, lo, hi, dtype=dtype)

    def add_tensor(self, name: str, dtype: str, params=None) -> str:
        if dtype != "float32":
            s, z = params
            self.tensors[name] = TensorInfo(name, dtype, s, z)
        else:
            self.tensors[name] = TensorInfo(name, "float32")
        self.domain.setdefault(name.split(":")[0], {})[dtype] = name
        return name

    def primary_dtype(self, tensor: str) -> str:
        """The dtype ``tensor``'s producer wrote it in."""
        return next(iter(self.domain[tensor]))

    def version(self, tensor: str, dtype: str) -> str:
        """The name of ``tensor`` in ``dtype``, inserting a quantize, dequantize or requantize node once.

        An integer version is made from another integer version when there is one (a ``requantize``
        node: integer arithmetic only), else from the float version.
        """
        have = self.domain[tensor]
        if dtype in have:
            return have[dtype]
        integer_sources = [d for d in have if d != "float32"]
        if dtype == "float32":
            src = have[integer_sources[0]]
            name = self.add_tensor(f"{tensor}:f", "float32")
            self.nodes.append(Node(f"{tensor}:dequantize", "dequantize", (src,), name))
            return name
        suffix = "q" if dtype == self.recipe.activation_dtype else f"q_{dtype}"
        name = self.add_tensor(f"{tensor}:{suffix}", dtype, self._params_of(tensor, dtype))
        if integer_sources:
            self.nodes.append(Node(f"{tensor}:requantize_{dtype}", "requantize", (have[integer_sources[0]],), name))
        else:
            self.nodes.append(Node(f"{tensor}:{'quantize' if suffix == 'q' else 'quantize_' + dtype}", "quantize",
                                   (have["float32"],), name))
        return name

    def step(self, s: Step, dtype: str) -> None:
        integer = dtype != "float32"
        inputs = tuple(self.version(t, dtype) for t in s.inputs)
        attrs, params = {}, {}
        if s.activation is not None and s.op != "clamp" and (self.recipe.clamp_in_kernel or not integer):
            attrs["activation"] = s.activation
        if s.op in ("linear", "conv2d"):
            params = self._layer_params(s, inputs[0], dtype)
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
            out = self.add_tensor(s.output, "float32")
        elif keeps_params(s.op, self.profile):
            src = self.tensors[inputs[0]]
            out = self.add_tensor(s.output, dtype, (src.scale, src.zero_point))
        else:
            out = self.add_tensor(s.output, dtype, self._params_of(s.output, dtype))
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

    def _layer_params(self, s: Step, x: str, dtype: str) -> dict:
        layer = s.layer
        w = layer.weight.value.astype(_F32)
        b = None if layer.bias is None else layer.bias.value.astype(_F32)
        if dtype == "float32":
            return {"weight": w} | ({} if b is None else {"bias": b})
        q, ws, wz = quantize_weight(self.recipe, w, per_channel=self.per_channel, profile=self.profile)
        family = "linear" if s.op == "linear" else "conv"
        params = {"weight": q, "weight_scale": ws, "weight_zero_point": wz}
        bq = quantize_bias(self.recipe, b, self.tensors[x].scale, ws, dtype=bias_dtype(self.profile, family, dtype))
        if bq is not None:
            params["bias"] = bq
        return params


def bias_dtype(profile: Profile, family: str, activation_dtype: str) -> str:
    """The bias dtype a layer of ``family`` takes under ``profile`` with ``activation_dtype`` activations:
    ``"int64"`` for a 16x8 layer (int16 activations; what the TFLite converter writes), ``"int32"`` for
    an ``int32`` bias mode, ``"float32"`` for a bias the kernel adds in float.

    Raises:
        UnsupportedError: int16 activations under a profile without 16x8 layers.
    """
    if activation_dtype == "int16":
        profile.layer_16x8(family, "int64")  # refuses a profile without 16x8 layers
        return "int64"
    return "int32" if profile.layer(family).bias == "int32" else "float32"


def lower(steps, ranges: dict, *, profile: Profile, recipe: Recipe, per_channel: bool = True,
          float_steps=(), int16_steps=(), metadata=None) -> QuantizedModel:
    """Build the integer model (see the module docstring).

    Args:
        steps: :func:`refquant.ptq.trace.trace` of the float model.
        ranges: ``{tensor name: (lo, hi)}`` for the input and every step output.
        profile: The resolved profile the model runs under.
        recipe: The tool whose parameter choices to reproduce.
        per_channel: Per-channel weights (else per tensor).
        float_steps: Names of steps kept in float32.
        int16_steps: Names of steps whose inputs and output are int16 (TFLite's 16x8 kernels);
            a pool, flatten or clamp follows its input's dtype.
        metadata: Recorded in the model.
    """
    b = _Builder(profile, recipe, ranges, per_channel)
    b.add_tensor(INPUT, "float32")
    float_steps, int16_steps = set(float_steps), set(int16_steps)
    for s in steps:
        if s.name in float_steps:
            dtype = "float32"
        elif s.op in KEEPS_PARAMS and s.inputs[0] != INPUT:
            dtype = b.primary_dtype(s.inputs[0])  # a pool, flatten or clamp computes in its input's dtype
        else:
            dtype = "int16" if s.name in int16_steps else recipe.activation_dtype
        b.step(s, dtype)
    last = steps[-1].output if steps else INPUT
    out = b.version(last, "float32")
    return QuantizedModel(b.nodes, b.tensors, [INPUT], [out], profile=profile.name, isa=profile.isa,
                          metadata=metadata)

"""The integer model's graph: named tensors and the nodes that compute them.

A graph is a list of :class:`Node` in execution order (every input of a node is a graph input
or the output of an earlier node), plus a table of :class:`TensorInfo`: each tensor's dtype and,
for integer tensors, its per-tensor scale and zero point. Branches, shared inputs and several
outputs fit (a residual block's skip tensor is read by two nodes); nothing nests.

Node ops (``Node.op``) and what they compute (:mod:`refquant.qmodel.nodes` runs them):

| op | inputs → output | params | attrs |
|---|---|---|---|
| ``quantize`` | float32 → codes | | |
| ``dequantize`` | codes → float32 | | |
| ``requantize`` | codes → codes of other parameters | | |
| ``linear`` | ``(M, K)`` → ``(M, N)`` | ``weight``, ``weight_scale``, ``weight_zero_point``, ``bias`` | ``activation`` |
| ``conv2d`` | ``(N, C, H, W)`` → ``(N, O, OH, OW)`` | as ``linear`` | ``stride``, ``padding``, ``dilation``, ``groups``, ``activation`` |
| ``add`` | two tensors → their sum | | ``activation`` |
| ``max_pool2d``, ``average_pool2d`` | NCHW → NCHW | | ``kernel``, ``stride`` |
| ``global_average_pool`` | ``(N, C, H, W)`` → ``(N, C)`` | | |
| ``flatten`` | ``(N, ...)`` → ``(N, -1)`` | | |
| ``clamp`` | → same parameters | | ``activation`` |
| ``dynamic_linear`` | float32 → float32, activations quantized per call or per row (the profile's ``dynamic_input``) | as ``linear`` (float bias) | ``reduce_range`` |
| ``mul`` | two tensors → their product (NumPy broadcasting) | | ``activation`` |
| ``mean`` | → the mean over ``axis``, with the output's own parameters | | ``axis``, ``keep_dims`` |
| ``softmax`` | → softmax over the last axis | | ``beta`` |
| ``logistic``, ``tanh`` | → sigmoid / tanh | | |
| ``reshape`` | → the same codes in ``shape`` (one entry may be ``-1``) | | ``shape`` |
| ``transpose`` | → the same codes with axes permuted | | ``perm`` |
| ``pad`` | → padded with the output's zero point | | ``pads`` (``[before, after]`` per axis) |
| ``concatenation`` | several tensors of one parameter set → joined along ``axis`` | | ``axis``, ``activation`` |
| ``constant`` | no input → ``value`` (codes of the output tensor's dtype) | ``value`` | |
| ``qlinear_softmax``, ``qlinear_leaky_relu``, ``qlinear_average_pool``, ``qlinear_concat``, ``qgemm`` | ONNX Runtime's contrib ops (:mod:`refquant.qmodel.nodes_onnx`) | | as ONNX |
| ``onnx_max_pool``, ``onnx_shape``, ``float_elementwise`` | ONNX's MaxPool and shape ops, order-free float ops | | as ONNX |

Layouts: ``conv2d`` and the pools take ``attrs["layout"]`` ``"NCHW"`` (the default, the float
models' layout) or ``"NHWC"`` (TFLite's); ``conv2d`` also ``w_layout`` (``"OIHW"``, ``"OHWI"``,
``"1HWO"`` for a depthwise kernel), ``family`` (the profile's layer spec, as a TFLite op type
chooses it) and ``padding`` as ``(top, left, bottom, right)`` or ``"SAME_UPPER"`` / ``"VALID"``;
the pools ``padding`` ``"SAME"`` / ``"VALID"`` and a fused ``activation``. ``linear`` flattens
leading dimensions of a rank > 2 input (TFLite's FULLY_CONNECTED) unless ``keep_num_dims``.

An op runs on codes when its input tensor is an integer tensor and in float32 otherwise (a layer
left in float in a partially quantized model); ``linear`` and ``conv2d`` with float inputs take
integer weights and dequantize them (weight-only quantization) or float weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError
from ..qparams import QParams, make_qparams

__all__ = ["TensorInfo", "Node", "OPS", "check_graph", "as_names"]

#: Node op names (see the module table).
OPS = ("quantize", "dequantize", "requantize", "linear", "conv2d", "add", "max_pool2d", "average_pool2d",
       "global_average_pool", "flatten", "clamp", "dynamic_linear", "mul", "mean", "softmax", "logistic", "tanh",
       "reshape", "transpose", "pad", "concatenation", "constant", "qlinear_softmax", "qlinear_leaky_relu",
       "qlinear_average_pool", "qlinear_concat", "qgemm", "onnx_max_pool", "onnx_shape", "float_elementwise")

_DTYPES = ("float32", "int8", "uint8", "int16")
#: op -> (params, attrs) its node cannot run without (see the module table)
_REQUIRED = {"linear": (("weight",), ()), "conv2d": (("weight",), ()),
             "dynamic_linear": (("weight", "weight_scale"), ()), "max_pool2d": ((), ("kernel",)),
             "average_pool2d": ((), ("kernel",)), "clamp": ((), ("activation",)), "mean": ((), ("axis",)),
             "reshape": ((), ("shape",)), "transpose": ((), ("perm",)), "pad": ((), ("pads",)), "concatenation": ((), ("axis",)),
             "constant": (("value",), ()), "onnx_shape": ((), ("kind",)), "float_elementwise": ((), ("fn",)),
             "qlinear_concat": ((), ("axis",)), "onnx_max_pool": ((), ("kernel_shape",)),
             "qlinear_average_pool": ((), ("kernel_shape",)), "qgemm": (("B", "b_scale"), ())}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the graph.

    Attributes:
        name: Unique name.
        dtype: ``"float32"``, ``"int8"``, ``"uint8"`` or ``"int16"``.
        scale: float32 scale of an integer tensor (``None`` for float32).
        zero_point: Its zero point (``None`` for float32).
    """

    name: str
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    def __post_init__(self):
        _check_name(self.name, "name")
        if not isinstance(self.dtype, str) or self.dtype not in _DTYPES:
            raise QuantizationValueError(f"tensor {self.name!r}: dtype must be one of {list(_DTYPES)}, "
                                         f"got {V.describe(self.dtype)}")
        integer = self.dtype != "float32"
        if integer != (self.scale is not None) or integer != (self.zero_point is not None):
            raise QuantizationValueError(f"tensor {self.name!r}: an integer tensor has a scale and a zero point, "
                                         f"a float32 one has neither; got dtype {self.dtype}, "
                                         f"scale {V.describe(self.scale)}, zero_point {V.describe(self.zero_point)}")
        if integer:
            object.__setattr__(self, "scale", float(V.as_scalar_scale(self.scale, "scale", max_ndim=0)))
            object.__setattr__(self, "zero_point", V.as_int_scalar(self.zero_point, "zero_point"))
            self.qparams  # validates the zero point's range

    @property
    def is_integer(self) -> bool:
        return self.dtype != "float32"

    @property
    def qparams(self) -> QParams:
        """The tensor's :class:`~refquant.qparams.QParams` (integer tensors only)."""
        if not self.is_integer:
            raise QuantizationValueError(f"tensor {self.name!r} is float32: it has no quantization parameters")
        return make_qparams(np.float32(self.scale), self.zero_point, self.dtype)

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}


@dataclass
class Node:
    """One operation.

    Attributes:
        name: Unique name (the float layer's path, e.g. ``"3.body.0"``).
        op: One of :data:`OPS`.
        inputs: Names of the input tensors.
        output: Name of the output tensor.
        attrs: JSON-able attributes (strides, fused activation, ...).
        params: Constant arrays (weights, their scales and zero points, bias).
    """

    name: str
    op: str
    inputs: tuple
    output: str
    attrs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        _check_name(self.name, "name")
        if not isinstance(self.op, str) or self.op not in OPS:
            raise QuantizationValueError(f"node {self.name!r}: op must be one of {list(OPS)}, "
                                         f"got {V.describe(self.op)}")
        self.inputs = as_names(self.inputs, "inputs", f"node {self.name!r}: ")
        _check_name(self.output, "output")
        for what in ("attrs", "params"):
            if not isinstance(getattr(self, what), dict):
                raise QuantizationTypeError(f"node {self.name!r}: {what} must be a dict, "
                                            f"got {V.describe(getattr(self, what))}")
        self.params = {_check_name(k, "params key"): V.asarray(v, f"params[{k!r}]", kinds="iuf",
                                                               what="a numeric array")
                       for k, v in self.params.items()}
        params, attrs = _REQUIRED.get(self.op, ((), ()))
        for what, keys, given in (("params", params, self.params), ("attrs", attrs, self.attrs)):
            missing = [k for k in keys if k not in given]
            if missing:
                raise QuantizationValueError(f"node {self.name!r}: a {self.op} node's {what} must have the keys "
                                             f"{list(keys)}, got {sorted(map(str, given))}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.params.items())
        return (f"Node({self.name!r}, {self.op}, {list(self.inputs)} -> {self.output!r}"
                + (f", {self.attrs}" if self.attrs else "") + (f", {{{params}}}" if params else "") + ")")


def _check_name(v, name: str) -> str:
    if not isinstance(v, str):
        raise QuantizationTypeError(f"{name} must be a str (a name), got {V.describe(v)}")
    return v


def as_names(v, name: str, where: str = "") -> tuple:
    """A list or tuple of names (a bare str, which iterates by character, is refused) as a tuple."""
    if not isinstance(v, (list, tuple)) or not all(isinstance(n, str) for n in v):
        raise QuantizationTypeError(f"{where}{name} must be a list of tensor names (str), got {V.describe(v)}")
    return tuple(v)


def check_graph(inputs, outputs, tensors: dict, nodes) -> None:
    """Every name known, every node's inputs computed before it, every tensor written once.

    Raises:
        QuantizationValueError: Naming the node and tensor that break the rule.
    """
    known = set()
    for name in inputs:
        if name not in tensors:
            raise QuantizationValueError(f"inputs: graph input {name!r} has no TensorInfo in tensors")
        known.add(name)
    seen_nodes = set()
    for node in nodes:
        if node.name in seen_nodes:
            raise QuantizationValueError(f"nodes: node name {node.name!r} is used twice")
        seen_nodes.add(node.name)
        for t in node.inputs:
            if t not in known:
                raise QuantizationValueError(f"nodes: node {node.name!r} reads tensor {t!r} before any node writes "
                                             f"it (and it is not one of the inputs)")
        if node.output in known:
            raise QuantizationValueError(f"nodes: node {node.name!r} writes tensor {node.output!r}, which is "
                                         f"already written")
        if node.output not in tensors:
            raise QuantizationValueError(f"nodes: node {node.name!r}: output tensor {node.output!r} has no "
                                         f"TensorInfo in tensors")
        known.add(node.output)
    for name in outputs:
        if name not in known:
            raise QuantizationValueError(f"outputs: graph output {name!r} is not computed by any node")

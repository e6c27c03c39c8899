"""A ``.tflite`` subgraph as :class:`~refquant.qmodel.QuantizedModel` nodes (internal to
:mod:`refquant.interop.tflite`).

One node per operator, NHWC as LiteRT holds tensors, each tensor's own flatbuffer parameters;
the nodes run through :mod:`refquant.ops` under the kernel set's profile, so the model is the
TFLite face's ops composed. The shape operators of a Keras ``Flatten`` are resolved to a
``reshape`` (:mod:`refquant.interop._tflite_shapes`). Every refusal names the operator (index,
name) and what it lacks.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationValueError, UnsupportedError
from ..qmodel import Node, QuantizedModel, TensorInfo
from ._tflite_shapes import SHAPE_OPS, ShapeValues, reshape_target

__all__ = ["SUPPORTED_OPS", "build_model"]

#: The builtin operators the importer reads (plus the shape operators of a Flatten).
SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                 "MEAN", "RESHAPE", "TRANSPOSE", "SOFTMAX", "LOGISTIC", "TANH", "CONCATENATION", "PAD", "QUANTIZE",
                 "DEQUANTIZE")
_ACTIVATION_DTYPES = ("int8", "int16")
_NONE = (None, "NONE")


class _Builder:
    def __init__(self, model):
        self.m = model
        self.names = self._tensor_names()
        self.infos: dict = {}  # tensor index -> TensorInfo
        self.nodes: list = []
        self.shapes = ShapeValues(model)

    # ------------------------------------------------------------------ tensors
    def _tensor_names(self) -> dict:
        seen, names = set(), {}
        for t in self.m.tensors:
            name = t.name if t.name and t.name not in seen else f"t{t.index}"
            while name in seen:
                name = f"{name}_{t.index}"
            seen.add(name)
            names[t.index] = name
        return names

    def where(self, op) -> str:
        return f"operator {op.index} ({op.op})"

    def info(self, i: int, op=None) -> TensorInfo:
        """The TensorInfo of tensor ``i`` (float32, or int8/int16/uint8 with one scale and zero point)."""
        if i in self.infos:
            return self.infos[i]
        t = self.m.tensors[i]
        where = f"{self.where(op)}: " if op is not None else ""
        if t.type_name == "FLOAT32":
            info = TensorInfo(self.names[i], "float32")
        elif t.type_name in ("INT8", "INT16", "UINT8"):
            if t.scale is None:
                raise UnsupportedError(f"{where}tensor {t.name!r} ({t.type_name}) has no quantization parameters")
            if t.scale.size != 1 or t.zero_point.size != 1:
                raise UnsupportedError(f"{where}tensor {t.name!r} is an activation with per-channel parameters "
                                       f"({t.scale.size} scales): only per-tensor activations are modelled")
            info = TensorInfo(self.names[i], t.dtype, float(t.scale[0]), int(t.zero_point[0]))
        else:
            raise UnsupportedError(f"{where}tensor {t.name!r} has type {t.type_name}: activations must be int8, "
                                   f"int16 (16x8) or float32 at the model's ends")
        self.infos[i] = info
        return info

    def activation_in(self, op, i: int) -> str:
        """The name of input tensor ``i`` of ``op``: computed, a graph input, or a constant node."""
        t = self.m.tensors[i]
        info = self.info(i, op)
        if t.data is not None and not any(n.output == info.name for n in self.nodes):
            self.nodes.append(Node(f"const{i}", "constant", (), info.name, params={"value": t.data}))
        return info.name

    def add(self, op, kind: str, inputs, attrs=None, params=None) -> None:
        out = self.info(op.outputs[0], op)
        self.nodes.append(Node(f"op{op.index}_{op.op.lower()}", kind, tuple(inputs), out.name, attrs or {},
                               params or {}))

    # ------------------------------------------------------------------ checks
    def integer_activation(self, op, i: int) -> TensorInfo:
        info = self.info(i, op)
        if info.dtype not in _ACTIVATION_DTYPES:
            raise UnsupportedError(f"{self.where(op)}: tensor {info.name!r} has dtype {info.dtype}; import_quantized "
                                   f"reads fully integer models (int8, or int16 activations with int8 weights), so "
                                   f"this operator must take {' or '.join(_ACTIVATION_DTYPES)}")
        if info.dtype == "int16" and info.zero_point != 0 and op.op not in ("QUANTIZE", "DEQUANTIZE"):
            raise QuantizationValueError(f"{self.where(op)}: tensor {info.name!r}: an int16 zero point must be 0 "
                                         f"(TFLite 16x8), got {info.zero_point}")
        return info

    def same_params(self, op, i: int, o: int) -> None:
        a, b = self.info(i, op), self.info(o, op)
        if (a.dtype, a.scale, a.zero_point) != (b.dtype, b.scale, b.zero_point):
            raise UnsupportedError(f"{self.where(op)}: the output's parameters ({b.scale!r}, {b.zero_point}) differ "
                                   f"from the input's ({a.scale!r}, {a.zero_point}); LiteRT requires them equal")

    def constant(self, op, i: int, what: str) -> np.ndarray:
        t = self.m.tensors[i]
        if t.data is None:
            raise UnsupportedError(f"{self.where(op)}: its {what} {t.name!r} is computed at run time; only a constant "
                                   f"{what} is modelled")
        return t.data

    # ------------------------------------------------------------------ operators
    def weights(self, op, x: TensorInfo, channel_axis: int):
        """(weight codes, scale () or (O,), bias or None) of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D."""
        wt = self.m.tensors[op.inputs[1]]
        if wt.type_name != "INT8" or wt.scale is None:
            raise UnsupportedError(f"{self.where(op)}: weights {wt.name!r} are {wt.type_name}"
                                   f"{'' if wt.scale is not None else ' without quantization'}: import_quantized "
                                   f"reads fully integer models (int8 weights); a float or dynamic-range model has "
                                   f"float weights")
        w = self.constant(op, op.inputs[1], "weights")
        if np.any(wt.zero_point != 0):
            raise UnsupportedError(f"{self.where(op)}: weights {wt.name!r} have nonzero zero points; TFLite's int8 "
                                   f"weights are symmetric")
        o = w.shape[channel_axis]
        scale = wt.scale.reshape(()) if wt.scale.size == 1 else wt.scale
        if scale.ndim and (scale.size != o or wt.quantized_dimension != channel_axis):
            raise UnsupportedError(f"{self.where(op)}: per-channel weight scales must run along axis {channel_axis} "
                                   f"({o} channels), got {scale.size} along axis {wt.quantized_dimension}")
        bias = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = self.constant(op, op.inputs[2], "bias")
            want = ("int32",) if x.dtype == "int8" else ("int64", "int32")
            if bias.dtype.name not in want or bias.shape != (o,):
                raise UnsupportedError(f"{self.where(op)}: bias must be {' or '.join(want)} of shape ({o},), got "
                                       f"{bias.dtype} {list(bias.shape)}")
        return w, scale, bias

    def fully_connected(self, op):
        o = op.options
        if o.get("weights_format", 0) != 0 or o.get("asymmetric_quantize_inputs"):
            raise UnsupportedError(f"{self.where(op)}: options {o} (shuffled weights or hybrid inputs) are not modelled")
        x = self.integer_activation(op, op.inputs[0])
        w, scale, bias = self.weights(op, x, 0)
        if bias is None and x.dtype == "int8":
            bias = np.zeros(w.shape[0], np.int32)  # no bias: the same arithmetic as zeros
        params = {"weight": w, "weight_scale": scale, **({"bias": bias} if bias is not None else {})}
        self.add(op, "linear", [self.activation_in(op, op.inputs[0])],
                 {"activation": o.get("activation"), "keep_num_dims": bool(o.get("keep_num_dims"))}, params)

    def conv(self, op):
        o = op.options
        depthwise = op.op == "DEPTHWISE_CONV_2D"
        x = self.integer_activation(op, op.inputs[0])
        w, scale, bias = self.weights(op, x, 3 if depthwise else 0)
        if bias is None:  # a zero bias of the kernel's type
            bias = np.zeros(w.shape[3 if depthwise else 0], np.int32 if x.dtype == "int8" else np.int64)
        c = self.m.tensors[op.inputs[0]].shape[3]
        attrs = {"stride": [o.get("stride_h", 1), o.get("stride_w", 1)], "layout": "NHWC",
                 "dilation": [o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)],
                 "padding": "SAME_UPPER" if o.get("padding") == "SAME" else "VALID", "activation": o.get("activation")}
        if depthwise:
            if w.shape[3] != c * int(o.get("depth_multiplier", 1)) and w.shape[3] % c:
                raise UnsupportedError(f"{self.where(op)}: {w.shape[3]} output channels for {c} input channels")
            attrs.update(w_layout="1HWO", family="depthwise")
        else:
            groups = c // w.shape[3]
            attrs.update(w_layout="OHWI", groups=groups, family="conv" if groups == 1 else "grouped_conv")
        self.add(op, "conv2d", [self.activation_in(op, op.inputs[0])], attrs,
                 {"weight": w, "weight_scale": scale, "bias": bias})

    def binary(self, op):
        for i in op.inputs:
            self.integer_activation(op, i)
        self.add(op, op.op.lower(), [self.activation_in(op, i) for i in op.inputs],
                 {"activation": op.options.get("activation")})

    def pool(self, op):
        o = op.options
        self.integer_activation(op, op.inputs[0])
        self.same_params(op, op.inputs[0], op.outputs[0])
        self.add(op, "average_pool2d" if op.op == "AVERAGE_POOL_2D" else "max_pool2d",
                 [self.activation_in(op, op.inputs[0])],
                 {"kernel": [o["filter_height"], o["filter_width"]], "stride": [o["stride_h"], o["stride_w"]],
                  "padding": o.get("padding", "VALID"), "activation": o.get("activation"), "layout": "NHWC"})

    def mean(self, op):
        self.integer_activation(op, op.inputs[0])
        self.integer_activation(op, op.outputs[0])
        axis = [int(a) for a in np.ravel(self.constant(op, op.inputs[1], "axis"))]
        self.add(op, "mean", [self.activation_in(op, op.inputs[0])],
                 {"axis": axis, "keep_dims": bool(op.options.get("keep_dims"))})

    def reshape(self, op):
        self.same_params(op, op.inputs[0], op.outputs[0])
        if len(op.inputs) > 1 and op.inputs[1] >= 0:
            target = reshape_target(self.shapes.value(op, op.inputs[1]), self.where(op))
        elif op.options.get("new_shape"):
            target = reshape_target(list(op.options["new_shape"]), self.where(op))
        else:
            t = self.m.tensors[op.outputs[0]]
            target = reshape_target(["N" if s < 0 else d for d, s in zip(t.shape, t.signature)], self.where(op))
        self.add(op, "reshape", [self.activation_in(op, op.inputs[0])], {"shape": list(target)})

    def transpose(self, op):
        self.same_params(op, op.inputs[0], op.outputs[0])
        perm = [int(d) for d in np.ravel(self.constant(op, op.inputs[1], "permutation"))]
        self.add(op, "transpose", [self.activation_in(op, op.inputs[0])], {"perm": perm})

    def activation_fn(self, op):
        x = self.integer_activation(op, op.inputs[0])
        y = self.info(op.outputs[0], op)
        fixed = {"int8": (1 / 256, -128), "int16": (1 / 32768, 0)}[x.dtype]
        if op.op in ("SOFTMAX", "LOGISTIC") and (y.scale, y.zero_point) != (float(np.float32(fixed[0])), fixed[1]):
            raise UnsupportedError(f"{self.where(op)}: its output parameters must be scale {fixed[0]!r}, zero point "
                                   f"{fixed[1]} (what LiteRT requires and refquant models), got ({y.scale!r}, "
                                   f"{y.zero_point})")
        attrs = {"beta": float(op.options.get("beta", 1.0))} if op.op == "SOFTMAX" else {}
        self.add(op, op.op.lower(), [self.activation_in(op, op.inputs[0])], attrs)

    def concatenation(self, op):
        for i in op.inputs:
            self.integer_activation(op, i)
            self.same_params(op, i, op.outputs[0])
        self.add(op, "concatenation", [self.activation_in(op, i) for i in op.inputs],
                 {"axis": int(op.options.get("axis", 0)), "activation": op.options.get("activation")})

    def pad(self, op):
        self.same_params(op, op.inputs[0], op.outputs[0])
        pads = np.asarray(self.constant(op, op.inputs[1], "paddings")).astype(np.int64)
        self.add(op, "pad", [self.activation_in(op, op.inputs[0])], {"pads": pads.tolist()})

    def quantize(self, op):
        x, y = self.info(op.inputs[0], op), self.info(op.outputs[0], op)
        if not y.is_integer:
            raise UnsupportedError(f"{self.where(op)}: QUANTIZE to {y.dtype} is not modelled")
        self.add(op, "quantize" if not x.is_integer else "requantize", [self.activation_in(op, op.inputs[0])])

    def dequantize(self, op):
        if self.m.tensors[op.inputs[0]].data is not None:
            raise UnsupportedError(f"{self.where(op)}: DEQUANTIZE of a constant (float weights stored as int8 or "
                                   f"float16): import_quantized reads fully integer models")
        self.integer_activation(op, op.inputs[0])
        self.add(op, "dequantize", [self.activation_in(op, op.inputs[0])])

    def operator(self, op):
        handlers = {"FULLY_CONNECTED": self.fully_connected, "CONV_2D": self.conv, "DEPTHWISE_CONV_2D": self.conv,
                    "ADD": self.binary, "MUL": self.binary, "AVERAGE_POOL_2D": self.pool, "MAX_POOL_2D": self.pool,
                    "MEAN": self.mean, "RESHAPE": self.reshape, "TRANSPOSE": self.transpose, "SOFTMAX": self.activation_fn,
                    "LOGISTIC": self.activation_fn, "TANH": self.activation_fn, "CONCATENATION": self.concatenation,
                    "PAD": self.pad, "QUANTIZE": self.quantize, "DEQUANTIZE": self.dequantize}
        if op.op in SHAPE_OPS:
            return self.shapes.evaluate(op)
        if op.op not in handlers:
            raise UnsupportedError(f"{self.where(op)}: operator {op.op} is not modelled; import_quantized reads "
                                   f"{', '.join(SUPPORTED_OPS)} (and the SHAPE, STRIDED_SLICE, PACK of a Flatten)")
        if len(op.outputs) != 1:
            raise UnsupportedError(f"{self.where(op)}: {len(op.outputs)} outputs; one is modelled")
        handlers[op.op](op)


def build_model(model, profile: str, metadata: dict) -> QuantizedModel:
    """The :class:`QuantizedModel` of a read ``.tflite`` subgraph (:func:`refquant.interop._tflite_read.read_model`)."""
    b = _Builder(model)
    for op in model.ops:
        b.operator(op)
    for i in model.inputs + model.outputs:
        b.info(i)
    for i in model.outputs:
        if i in b.shapes.values:
            raise UnsupportedError(f"graph output {model.tensors[i].name!r} is a shape tensor: not modelled")
    inputs = [b.names[i] for i in model.inputs]
    outputs = [b.names[i] for i in model.outputs]
    return QuantizedModel(b.nodes, list(b.infos.values()), inputs, outputs, profile=profile, metadata=metadata)

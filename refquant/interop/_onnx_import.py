"""An ONNX graph after ONNX Runtime's rewrites as :class:`~refquant.qmodel.QuantizedModel` nodes
(internal to :mod:`refquant.interop.onnx`).

One integer-model node per ONNX Runtime kernel, NCHW as in the file, each tensor's parameters
those of the node that writes it (a QuantizeLinear, or a QLinear op's ``y_scale`` and
``y_zero_point``; data movement keeps its input's). QLinearConv, QLinearMatMul / QGemm with
constant weights, QLinearAdd, QLinearMul, QLinearSigmoid and QLinearGlobalAveragePool become the
profile-neutral ``conv2d``, ``linear``, ``add``, ``mul``, ``logistic`` and
``global_average_pool`` nodes (their arithmetic under the ``onnxruntime`` profile is the kernel's);
the other contrib ops, MaxPool and the shape ops become the nodes of
:mod:`refquant.qmodel.nodes_onnx`. Every refusal names the node and its op.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..qmodel import Node, QuantizedModel, TensorInfo
from ._onnx_graph import OGraph

__all__ = ["SUPPORTED_OPS", "build_model"]

_F32 = np.float32
#: Ops ONNX Runtime runs in float32 with a result that depends on summation order or its math library.
ORDER_DEPENDENT = ("Conv", "ConvTranspose", "Gemm", "MatMul", "AveragePool", "GlobalAveragePool", "Softmax",
                   "LogSoftmax", "Sigmoid", "Tanh", "Exp", "Log", "ReduceMean", "ReduceSum", "LeakyRelu", "Erf",
                   "Gelu", "BatchNormalization", "LRN", "InstanceNormalization", "LayerNormalization", "Div",
                   "Sqrt", "Pow", "HardSigmoid", "HardSwish")
_FLOAT_ELEMENTWISE = ("Add", "Sub", "Mul", "Max", "Min", "Relu", "Clip")
_SHAPE = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
_MS = "com.microsoft::"
#: What :func:`build_model` reads, after ONNX Runtime's fusion of QDQ groups.
SUPPORTED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
                 "QLinearMul", "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool",
                 "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax", "MaxPool", "Reshape", "Flatten",
                 "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout") + tuple(
                     f for f in _FLOAT_ELEMENTWISE if f not in ("Add", "Mul")) + ("Add", "Mul")


class _Builder:
    def __init__(self, g: OGraph):
        self.g = g
        self.nodes: list = []
        self.tensors: dict = {}
        self.alias: dict = {}

    # ---------------------------------------------------------------- tensors
    def name(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def where(self, n) -> str:
        return f"node {n.name!r} ({n.op.replace(_MS, '')})"

    def const(self, n, name: str, what: str) -> np.ndarray:
        v = self.g.const(name)
        if v is None:
            raise UnsupportedError(f"{self.where(n)}: its {what} {name!r} must be a constant (an initializer)")
        return v

    def scalar_params(self, n, s_name: str, z_name: str, what: str):
        s = self.const(n, s_name, f"{what} scale")
        z = self.g.const(z_name) if z_name else None
        if z_name and z is None:
            raise UnsupportedError(f"{self.where(n)}: its {what} zero point {z_name!r} must be a constant")
        if s.size != 1 or (z is not None and z.size != 1):
            raise UnsupportedError(f"{self.where(n)}: the {what} must be quantized per tensor (one scale and zero "
                                   f"point), got {s.size} scales")
        dt = z.dtype if z is not None else np.dtype(np.uint8)
        if dt not in (np.dtype(np.uint8), np.dtype(np.int8)):
            raise UnsupportedError(f"{self.where(n)}: the {what} has type {dt}; int8 and uint8 are modelled")
        return float(np.float32(s.reshape(()))), (0 if z is None else int(z.reshape(()))), str(dt)

    def define(self, name: str, dtype: str, scale=None, zero_point=None) -> str:
        self.tensors[name] = TensorInfo(name, dtype, scale, zero_point)
        return name

    def computed_or_const(self, n, name: str):
        """``(name, None)`` for a tensor a node computes, ``(name, value)`` for a constant, else an error."""
        name = self.name(name)
        if name in self.tensors:
            return name, None
        v = self.g.const(name)
        if v is None:
            raise UnsupportedError(f"{self.where(n)}: input {name!r} is not computed by any node")
        return name, v

    def activation(self, n, name: str, s_name: str, z_name: str, what: str) -> str:
        """Input ``name`` of ``n``: a computed tensor, or a constant of codes made a ``constant`` node."""
        name, v = self.computed_or_const(n, name)
        if v is None:
            return name
        s, z, dt = self.scalar_params(n, s_name, z_name, what)
        cname = f"{name}@{n.name}"
        self.define(cname, dt, s, z)
        self.nodes.append(Node(f"const:{cname}", "constant", (), cname, params={"value": v.astype(dt)}))
        return cname

    def float_in(self, n, name: str) -> str:
        name, v = self.computed_or_const(n, name)
        if v is None:
            return name
        self.define(name, "float32")
        self.nodes.append(Node(f"const:{name}", "constant", (), name, params={"value": np.asarray(v, _F32)}))
        return name

    def emit(self, n, op: str, inputs, out_info, attrs=None, params=None, out=None) -> None:
        out = out or n.outputs[0]
        self.define(out, *out_info)
        self.nodes.append(Node(n.name, op, tuple(inputs), out, attrs or {}, params or {}))

    # ---------------------------------------------------------------- ops
    def weights(self, n, w_name, s_name, z_name, transpose: bool):
        w = self.const(n, w_name, "weights")
        if w.dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
            raise UnsupportedError(f"{self.where(n)}: weights {w_name!r} have type {w.dtype}; int8 and uint8 are modelled")
        s = np.asarray(self.const(n, s_name, "weight scale"), _F32)
        z = self.g.const(z_name) if z_name else np.zeros((), w.dtype)
        if z is None:
            raise UnsupportedError(f"{self.where(n)}: its weight zero point {z_name!r} must be a constant")
        if transpose:
            w = np.ascontiguousarray(w.T)
        o = w.shape[0]
        for v, what in ((s, "weight scale"), (z, "weight zero point")):
            if v.size not in (1, o):
                raise UnsupportedError(f"{self.where(n)}: the {what} must be per tensor or one per output channel "
                                       f"({o}), got shape {v.shape}")
        s = s.reshape(()) if s.size == 1 else s.reshape(o)
        z = z.astype(np.int64).reshape(()) if z.size == 1 else z.astype(np.int64).reshape(o)
        return {"weight": w, "weight_scale": s, "weight_zero_point": z}

    def bias(self, n, name: str, o: int):
        if not name:
            return {}
        b = self.const(n, name, "bias")
        if b.dtype != np.int32 or b.size != o:
            raise UnsupportedError(f"{self.where(n)}: the bias must be int32 with one value per output channel ({o}), "
                                   f"got {b.dtype} of shape {b.shape}")
        return {"bias": b.reshape(o)}

    def out_params(self, n, s_name, z_name):
        return self.scalar_params(n, s_name, z_name, "output")

    def qlinear_conv(self, n):
        i = n.inputs + [""] * (9 - len(n.inputs))
        x = self.activation(n, i[0], i[1], i[2], "input")
        a = n.attrs
        if len(a.get("kernel_shape", [1, 1])) != 2 or self.const(n, i[3], "weights").ndim != 4:
            raise UnsupportedError(f"{self.where(n)}: only 2-D convolutions are modelled")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise UnsupportedError(f"{self.where(n)}: auto_pad {a['auto_pad']!r} is not modelled")
        p = self.weights(n, i[3], i[4], i[5], transpose=False)
        p.update(self.bias(n, i[8], p["weight"].shape[0]))
        s, z, dt = self.out_params(n, i[6], i[7])
        pads = a.get("auto_pad", "NOTSET")
        padding = list(a.get("pads", [0, 0, 0, 0])) if pads == "NOTSET" else pads
        attrs = {"stride": list(a.get("strides", [1, 1])), "dilation": list(a.get("dilations", [1, 1])),
                 "groups": int(a.get("group", 1)), "padding": padding}
        self.emit(n, "conv2d", [x], (dt, s, z), attrs, p)

    def linear(self, n, a_in, w_in, bias_name, y_in, transpose: bool, keep_num_dims: bool):
        x = self.activation(n, *a_in, "input")
        p = self.weights(n, *w_in, transpose=transpose)
        p.update(self.bias(n, bias_name, p["weight"].shape[0]))
        s, z, dt = self.out_params(n, *y_in)
        self.emit(n, "linear", [x], (dt, s, z), {"keep_num_dims": True} if keep_num_dims else {}, p)

    def qlinear_matmul(self, n):
        i = n.inputs
        b = self.const(n, i[3], "B (the weights; QLinearMatMul of two activations is not modelled)")
        if b.ndim != 2:
            raise UnsupportedError(f"{self.where(n)}: B must be 2-D, got shape {b.shape}")
        self.linear(n, i[0:3], i[3:6], "", i[6:8], transpose=True, keep_num_dims=True)

    def qgemm(self, n):
        i = n.inputs + [""] * (9 - len(n.inputs))
        a = n.attrs
        c = self.g.const(i[6]) if i[6] else None
        b = self.const(n, i[3], "B (the weights; a QGemm of two activations is not modelled)")
        n_out = b.shape[0] if int(a.get("transB", 0)) else b.shape[1]
        simple = (float(a.get("alpha", 1.0)) == 1.0 and int(a.get("transA", 0)) == 0 and i[7]
                  and (c is None or (c.dtype == np.int32 and c.size == n_out)))
        if simple:
            self.linear(n, i[0:3], i[3:6], i[6], i[7:9], transpose=not int(a.get("transB", 0)), keep_num_dims=False)
            return
        x = self.activation(n, i[0], i[1], i[2], "input")
        if i[6] and c is None:
            raise UnsupportedError(f"{self.where(n)}: its C {i[6]!r} must be a constant")
        params = {"B": b, "b_scale": np.asarray(self.const(n, i[4], "B scale"), np.float32)}
        if i[5]:
            params["b_zero_point"] = self.const(n, i[5], "B zero point")
        if c is not None:
            params["C"] = c
        attrs = {k: (float(a[k]) if k == "alpha" else int(a[k])) for k in ("alpha", "transA", "transB") if k in a}
        if i[7]:
            s, z, dt = self.out_params(n, i[7], i[8])
            out = (dt, s, z)
        else:
            out = ("float32",)
        self.emit(n, "qgemm", [x], out, attrs, params)

    def binary(self, n, op: str):
        i = n.inputs + [""] * (8 - len(n.inputs))
        a = self.activation(n, i[0], i[1], i[2], "input A")
        b = self.activation(n, i[3], i[4], i[5], "input B")
        s, z, dt = self.out_params(n, i[6], i[7])
        self.emit(n, op, [a, b], (dt, s, z))

    def unary(self, n, op: str, attrs=None):
        i = n.inputs + [""] * (5 - len(n.inputs))
        x = self.activation(n, i[0], i[1], i[2], "input")
        s, z, dt = self.out_params(n, i[3], i[4])
        self.emit(n, op, [x], (dt, s, z), attrs)

    def global_average_pool(self, n):
        if int(n.attrs.get("channels_last", 0)):
            raise UnsupportedError(f"{self.where(n)}: channels_last=1 is not modelled")
        i = n.inputs + [""] * (5 - len(n.inputs))
        x = self.activation(n, i[0], i[1], i[2], "input")
        s, z, dt = self.out_params(n, i[3], i[4])
        pooled = f"{n.outputs[0]}/pooled"
        self.emit(n, "global_average_pool", [x], (dt, s, z), out=pooled)
        self.define(n.outputs[0], dt, s, z)
        self.nodes.append(Node(f"{n.name}/unsqueeze", "onnx_shape", (pooled,), n.outputs[0],
                               {"kind": "unsqueeze", "axes": [2, 3]}))

    def concat(self, n):
        s, z, dt = self.out_params(n, n.inputs[0], n.inputs[1])
        ins = [self.activation(n, *n.inputs[k:k + 3], f"input {(k - 2) // 3}") for k in range(2, len(n.inputs), 3)]
        self.emit(n, "qlinear_concat", ins, (dt, s, z), {"axis": int(n.attrs["axis"])})

    def same(self, n, op: str, attrs) -> None:
        """A node that keeps its input's type and parameters."""
        x = self.name(n.inputs[0])
        if x not in self.tensors:
            x = self.float_in(n, x)
        t = self.tensors[x]
        self.emit(n, op, [x], (t.dtype, t.scale, t.zero_point), attrs)

    def shape_op(self, n):
        op, a = n.op, n.attrs
        if op == "Reshape":
            shape = self.const(n, n.inputs[1], "shape")
            self.same(n, "onnx_shape", {"kind": "reshape", "shape": [int(d) for d in shape.reshape(-1)],
                                        "allowzero": int(a.get("allowzero", 0))})
        elif op == "Flatten":
            self.same(n, "onnx_shape", {"kind": "flatten", "axis": int(a.get("axis", 1))})
        else:
            axes = a.get("axes")
            if axes is None and len(n.inputs) > 1 and n.inputs[1]:
                axes = self.const(n, n.inputs[1], "axes").reshape(-1).tolist()
            if op == "Unsqueeze" and axes is None:
                raise UnsupportedError(f"{self.where(n)}: Unsqueeze needs axes")
            self.same(n, "onnx_shape", {"kind": op.lower(), "axes": None if axes is None else [int(v) for v in axes]})

    def float_op(self, n):
        fn = n.op
        attrs = {"fn": fn}
        ins = n.inputs
        if fn == "Clip":
            lo, hi = _clip_consts(self, n)
            attrs.update({"min": lo, "max": hi})
            ins = n.inputs[:1]
        args = [self.float_in(n, i) for i in ins]
        if any(self.tensors[a].is_integer for a in args):
            raise UnsupportedError(f"{self.where(n)}: {fn} on integer codes is not modelled (ONNX Runtime runs it "
                                   f"on float32 here)")
        self.emit(n, "float_elementwise", args, ("float32",), attrs)

    def quantize(self, n):
        x = self.float_in(n, n.inputs[0])
        if self.tensors[x].is_integer:
            raise UnsupportedError(f"{self.where(n)}: its input must be float32, got {self.tensors[x].dtype} codes")
        s, z, dt = self.scalar_params(n, n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else "", "output")
        self.emit(n, "quantize", [x], (dt, s, z))

    def dequantize(self, n):
        x = self.name(n.inputs[0])
        if x not in self.tensors:
            v = self.g.const(x)
            if v is None:
                raise UnsupportedError(f"{self.where(n)}: input {x!r} is not computed by any node")
            self.define(n.outputs[0], "float32")  # a constant: dequantized once, as ORT folds it
            from ..backends import onnxruntime as ort

            s = self.const(n, n.inputs[1], "scale")
            z = self.g.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
            value = ort.dequantize_linear(v, s, z, axis=int(n.attrs.get("axis", 1)))
            self.nodes.append(Node(n.name, "constant", (), n.outputs[0], params={"value": np.asarray(value, _F32)}))
            return
        t = self.tensors[x]
        s, z, dt = self.scalar_params(n, n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else "", "input")
        if (t.dtype, t.scale, t.zero_point) != (dt, s, z):
            raise UnsupportedError(f"{self.where(n)}: it dequantizes {x!r} ({t.dtype}) with parameters ({s}, {z}, {dt}) "
                                   f"other than those its writer gave ({t.scale}, {t.zero_point})")
        self.emit(n, "dequantize", [x], ("float32",))


def _clip_consts(b: _Builder, n):
    from ._onnx_graph import _clip_bounds

    lo, hi = _clip_bounds(b.g, n)
    if lo is None:
        raise UnsupportedError(f"{b.where(n)}: its min and max must be constants")
    return (None if np.isinf(lo) else lo), (None if np.isinf(hi) else hi)


def build_model(g: OGraph, *, profile: str, isa: str, metadata: dict) -> QuantizedModel:
    """The :class:`QuantizedModel` of ``g`` (already rewritten as ONNX Runtime rewrites it)."""
    b = _Builder(g)
    inputs = []
    for name, (dt, shape) in g.inputs.items():
        if dt != np.dtype(np.float32):
            raise UnsupportedError(f"graph input {name!r} has type {dt}: import_quantized reads models with float32 "
                                   f"inputs (a QuantizeLinear inside the model)")
        b.define(name, "float32")
        inputs.append(name)
    table = {
        "QuantizeLinear": b.quantize, "DequantizeLinear": b.dequantize, "QLinearConv": b.qlinear_conv,
        "QLinearMatMul": b.qlinear_matmul, _MS + "QGemm": b.qgemm,
        _MS + "QLinearAdd": lambda n: b.binary(n, "add"), _MS + "QLinearMul": lambda n: b.binary(n, "mul"),
        _MS + "QLinearSigmoid": lambda n: b.unary(n, "logistic"),
        _MS + "QLinearLeakyRelu": lambda n: b.unary(n, "qlinear_leaky_relu", {"alpha": float(n.attrs.get("alpha", 0.01))}),
        _MS + "QLinearSoftmax": lambda n: b.unary(n, "qlinear_softmax", {"axis": int(n.attrs.get("axis", -1)),
                                                                         "opset": int(n.attrs.get("opset", g.opset))}),
        _MS + "QLinearAveragePool": lambda n: b.unary(n, "qlinear_average_pool", _pool_attrs(n, False)),
        _MS + "QLinearGlobalAveragePool": b.global_average_pool, _MS + "QLinearConcat": b.concat,
        "MaxPool": lambda n: b.same(n, "onnx_max_pool", _pool_attrs(n, True)),
        "Transpose": lambda n: b.same(n, "transpose", {"perm": list(n.attrs["perm"]) if "perm" in n.attrs else None}),
    }
    for n in g.nodes:  # ONNX Runtime's choice to run these in float32 is the root reason: say it first
        if n.op in ORDER_DEPENDENT:
            raise UnsupportedError(f"{b.where(n)}: ONNX Runtime runs this {n.op} in float32 (its QDQ group is not fused "
                                   f"into an integer kernel), and its result depends on summation order or on ONNX "
                                   f"Runtime's math library, so it cannot be reproduced bit for bit")
    for n in g.nodes:
        if n.op in ("Identity", "Dropout") and len([o for o in n.outputs if o]) == 1:
            b.alias[n.outputs[0]] = b.name(n.inputs[0])
            continue
        if n.op in table:
            if n.op == "Transpose" and "perm" not in n.attrs:
                raise UnsupportedError(f"{b.where(n)}: a Transpose without perm is not modelled")
            table[n.op](n)
        elif n.op in _SHAPE:
            b.shape_op(n)
        elif n.op in _FLOAT_ELEMENTWISE:
            b.float_op(n)
        else:
            raise UnsupportedError(f"{b.where(n)}: op {n.op.replace(_MS, 'com.microsoft.')} is not supported; "
                                   f"import_quantized reads {', '.join(SUPPORTED_OPS)}")
    outputs = [b.name(o) for o in g.outputs]
    if not any(t.is_integer for t in b.tensors.values()):
        raise UnsupportedError("the model has no quantized tensor (no QuantizeLinear or QLinear op): it is a float "
                               "model; use import_float")
    return QuantizedModel(b.nodes, b.tensors, inputs, outputs, profile=profile, isa=isa, metadata=metadata)


def _pool_attrs(n, with_dilations: bool) -> dict:
    a = n.attrs
    keys = ["kernel_shape", "strides", "pads", "ceil_mode", "auto_pad"]
    keys += ["dilations"] if with_dilations else ["count_include_pad"]
    if int(a.get("channels_last", 0)):
        raise UnsupportedError(f"node {n.name!r} ({n.op}): channels_last=1 is not modelled")
    if "kernel_shape" not in a:
        raise UnsupportedError(f"node {n.name!r} ({n.op}): kernel_shape is required")
    if with_dilations and len(n.outputs) > 1 and n.outputs[1]:
        raise UnsupportedError(f"node {n.name!r} (MaxPool): the Indices output is not modelled")
    return {k: (list(a[k]) if isinstance(a[k], (list, tuple)) else a[k]) for k in keys if k in a}

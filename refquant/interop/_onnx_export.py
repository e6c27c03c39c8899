"""Write a :class:`~refquant.qmodel.QuantizedModel` of the ``onnxruntime`` profile as an ONNX graph.

Two spellings of one integer model (the public module's table):

* **QOperator**: each integer node becomes the ONNX Runtime op whose arithmetic the node models
  under the ``onnxruntime`` profile (``QLinearConv``, ``com.microsoft.QGemm``, ``QLinearAdd``, ...).
* **QDQ**: the float op between ``DequantizeLinear`` and ``QuantizeLinear`` nodes, the form ORT's
  ``quantize_static`` writes; ORT's graph optimizer fuses each group into the QOperator op above.

Integer tensors keep their names from the integer model; the exporter adds ``<name>#...``
tensors for constants and float intermediates. The only float arithmetic left unfused in a
QDQ graph is a ``DequantizeLinear`` followed by a ``QuantizeLinear`` with the same parameters
around an order-free op (``MaxPool``, ``Flatten``): exact, since $|q - Z| \\le 255$ makes
$\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}((q - Z) S) / S)) = q - Z$.
"""

from __future__ import annotations


import numpy as np

from ..qmodel import storage
from ..errors import ShapeError, UnsupportedError

__all__ = ["IR_VERSION", "MS_DOMAIN_VERSION", "OPSET", "build_proto", "require_onnx", "write_atomic"]

OPSET = 21  # ai.onnx: per-axis QuantizeLinear / DequantizeLinear (13+), everything here runs on ORT 1.32
MS_DOMAIN_VERSION = 1  # com.microsoft: QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool
IR_VERSION = 10  # the IR version of opset 21
_INSTALL = "pip install onnx"
_MS = "com.microsoft"


def require_onnx():
    """The ``onnx`` module (imported on first use), or :class:`UnsupportedError` with the pip command."""
    try:
        import onnx
    except ImportError as err:
        raise UnsupportedError(f"exporting ONNX models needs the optional package onnx ({err}); install it with "
                               f"`{_INSTALL}`") from None
    return onnx


def _no_activation(node) -> None:
    act = node.attrs.get("activation")
    if act not in (None, "NONE"):
        raise UnsupportedError(f"node {node.name!r} ({node.op}) has a fused activation {act!r}: ONNX Runtime's "
                               f"QLinear ops have none (its quantizer drops a ReLU the output range covers, as "
                               f"the onnxruntime recipe does with clamp_in_kernel=False)")


def _valid_pool(node) -> tuple:
    a = node.attrs
    _no_activation(node)
    if a.get("layout", "NCHW") != "NCHW" or a.get("padding", "VALID") != "VALID":
        raise UnsupportedError(f"node {node.name!r} ({node.op}): only NCHW pools with VALID padding are exported, "
                               f"got layout {a.get('layout', 'NCHW')!r} and padding {a.get('padding')!r}")
    kernel = [int(k) for k in a["kernel"]]
    return kernel, [int(s) for s in a.get("stride", kernel)]


class Builder:
    """Collects nodes and initializers; one ``op_<name>`` method per integer-model op."""

    def __init__(self, qmodel, fmt: str):
        self.onnx = require_onnx()
        self.h = self.onnx.helper
        self.qm, self.fmt = qmodel, fmt
        self.nodes, self.inits, self._n = [], [], 0

    # ----------------------------------------------------------------- small helpers
    def const(self, base: str, value) -> str:
        name = f"{base}#{len(self.inits)}"
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs, output: str, domain: str = "", **attrs) -> str:
        self._n += 1
        self.nodes.append(self.h.make_node(op, list(inputs), [output], name=f"{op}_{self._n}", domain=domain,
                                           **attrs))
        return output

    def info(self, name: str):
        return self.qm.tensors[name]

    def qparams(self, name: str) -> list:
        """``[scale, zero_point]`` initializers of an integer tensor (per tensor, the tensor's dtype)."""
        t = self.info(name)
        if not t.is_integer:
            raise UnsupportedError(f"tensor {name!r} is {t.dtype}: the exported ops take integer tensors")
        return [self.const(f"{name}:scale", np.float32(t.scale)), self.const(f"{name}:zero_point",
                                                                             np.array(t.zero_point, t.dtype))]

    def dq(self, name: str) -> str:
        """A DequantizeLinear of ``name`` for one consumer (each group gets its own, as ORT fuses them)."""
        return self.add("DequantizeLinear", [name] + self.qparams(name), f"{name}#dq{self._n + 1}")

    def q(self, float_name: str, name: str, out: str | None = None) -> str:
        """QuantizeLinear with tensor ``name``'s parameters, into ``out`` (default ``name``)."""
        return self.add("QuantizeLinear", [float_name] + self.qparams(name), out or name)

    def weight(self, node, shape=None) -> list:
        """``[w, w_scale, w_zero_point]`` initializers: int8 codes, per channel (axis 0) or per tensor."""
        p = node.params
        if p["weight"].dtype not in (np.int8, np.uint8) or np.ndim(p["weight_scale"]) > 1:
            raise UnsupportedError(f"node {node.name!r} ({node.op}): weights must be 8-bit per tensor or per output "
                                   f"channel, got {p['weight'].dtype} with scale shape {np.shape(p['weight_scale'])}")
        w = p["weight"] if shape is None else p["weight"].reshape(shape)
        ws = np.asarray(p["weight_scale"], np.float32)
        wz = np.asarray(p.get("weight_zero_point", np.zeros(ws.shape, w.dtype)), w.dtype).reshape(ws.shape)
        return [self.const(f"{node.name}:weight", w), self.const(f"{node.name}:weight_scale", ws),
                self.const(f"{node.name}:weight_zero_point", wz)]

    def bias(self, node) -> str | None:
        b = node.params.get("bias")
        if b is None:
            return None
        if b.dtype != np.int32:
            raise UnsupportedError(f"node {node.name!r} ({node.op}): ONNX Runtime takes an int32 bias, got {b.dtype}")
        return self.const(f"{node.name}:bias", b)

    def dq_weight(self, node, w: list) -> str:
        axis = {"axis": 0} if np.ndim(node.params["weight_scale"]) == 1 else {}
        return self.add("DequantizeLinear", w, f"{node.name}#weight#dq", **axis)

    def dq_bias(self, node, b: str, x: str) -> str:
        """The int32 bias dequantized with $S_x S_w$ (float32), zero point 0: ORT's fusion reads the int32."""
        ws = np.asarray(node.params["weight_scale"], np.float32)
        s = (np.float32(self.info(x).scale) * ws).astype(np.float32)
        axis = {"axis": 0} if s.ndim == 1 else {}
        return self.add("DequantizeLinear", [b, self.const(f"{node.name}:bias_scale", s),
                                             self.const(f"{node.name}:bias_zero_point", np.zeros(s.shape, np.int32))],
                        f"{node.name}#bias#dq", **axis)

    # ----------------------------------------------------------------- one method per op
    def op_quantize(self, node):
        self.q(node.inputs[0], node.output)

    def op_dequantize(self, node):
        x = node.inputs[0]
        self.add("DequantizeLinear", [x] + self.qparams(x), node.output)

    def op_conv2d(self, node):
        _no_activation(node)
        a, x = node.attrs, node.inputs[0]
        if a.get("layout", "NCHW") != "NCHW" or a.get("w_layout") not in (None, "OIHW") or \
                isinstance(a.get("padding"), str):
            raise UnsupportedError(f"node {node.name!r} (conv2d): only NCHW / OIHW convolutions with explicit "
                                   f"padding are exported")
        top, left, bottom, right = (int(v) for v in a.get("padding", (0, 0, 0, 0)))
        geo = {"strides": [int(s) for s in a.get("stride", (1, 1))], "pads": [top, left, bottom, right],
               "dilations": [int(d) for d in a.get("dilation", (1, 1))], "group": int(a.get("groups", 1)),
               "kernel_shape": list(node.params["weight"].shape[2:])}
        w, b = self.weight(node), self.bias(node)
        if self.fmt == "qoperator":
            ins = [x] + self.qparams(x) + w + self.qparams(node.output) + ([b] if b else [])
            self.add("QLinearConv", ins, node.output, **geo)
            return
        ins = [self.dq(x), self.dq_weight(node, w)] + ([self.dq_bias(node, b, x)] if b else [])
        self.q(self.add("Conv", ins, f"{node.name}#float", **geo), node.output)

    def op_linear(self, node):
        """QGemm ``transB=1``: the int32 accumulator plus the int32 bias, times
        $\\mathrm{fl}(\\mathrm{fl}(S_x S_w) / S_y)$ in float32, RNE, $+ Z_y$, the ``linear`` node's arithmetic."""
        _no_activation(node)
        x = node.inputs[0]
        if node.attrs.get("keep_num_dims"):
            raise UnsupportedError(f"node {node.name!r} (linear): keep_num_dims is TFLite's; not exported")
        w, b = self.weight(node), self.bias(node)
        if self.fmt == "qoperator":
            ins = [x] + self.qparams(x) + w + [b or ""] + self.qparams(node.output)
            self.add("QGemm", ins, node.output, domain=_MS, transB=1, alpha=1.0)
            return
        ins = [self.dq(x), self.dq_weight(node, w)] + ([self.dq_bias(node, b, x)] if b else [])
        self.q(self.add("Gemm", ins, f"{node.name}#float", transB=1), node.output)

    def op_add(self, node):
        _no_activation(node)
        a, b = node.inputs
        if self.fmt == "qoperator":
            ins = [a] + self.qparams(a) + [b] + self.qparams(b) + self.qparams(node.output)
            self.add("QLinearAdd", ins, node.output, domain=_MS)
            return
        self.q(self.add("Add", [self.dq(a), self.dq(b)], f"{node.name}#float"), node.output)

    def op_max_pool2d(self, node):
        kernel, stride = _valid_pool(node)
        x = node.inputs[0]
        if self.fmt == "qoperator":  # MaxPool takes 8-bit codes (opset 12+): order-free
            self.add("MaxPool", [x], node.output, kernel_shape=kernel, strides=stride)
            return
        self.q(self.add("MaxPool", [self.dq(x)], f"{node.name}#float", kernel_shape=kernel, strides=stride),
               node.output)

    def op_global_average_pool(self, node):
        """QLinearGlobalAveragePool (N, C, 1, 1), then Flatten on the codes: the node's (N, C)."""
        x = node.inputs[0]
        pooled = f"{node.name}#nc11"
        if self.fmt == "qoperator":
            ins = [x] + self.qparams(x) + self.qparams(node.output)
            self.add("QLinearGlobalAveragePool", ins, pooled, domain=_MS, channels_last=0)
        else:
            self.q(self.add("GlobalAveragePool", [self.dq(x)], f"{node.name}#float"), node.output, pooled)
        self.add("Flatten", [pooled], node.output, axis=1)

    def op_flatten(self, node):
        x = node.inputs[0]
        if self.fmt == "qoperator" or not self.info(x).is_integer:
            self.add("Flatten", [x], node.output, axis=1)
            return
        self.q(self.add("Flatten", [self.dq(x)], f"{node.name}#float", axis=1), node.output)

    def node(self, node):
        fn = getattr(self, f"op_{node.op}", None)
        if fn is None:
            raise UnsupportedError(f"node {node.name!r}: op {node.op!r} is not exported to ONNX (exported: "
                                   f"{', '.join(EXPORTED_OPS)})")
        fn(node)


EXPORTED_OPS = ("quantize", "dequantize", "linear", "conv2d", "add", "max_pool2d", "global_average_pool", "flatten")


def _value_info(h, tp, t, shape):
    elem = {"float32": tp.FLOAT, "uint8": tp.UINT8, "int8": tp.INT8}
    if t.dtype not in elem:
        raise UnsupportedError(f"tensor {t.name!r}: dtype {t.dtype} at the model boundary is not exported")
    return h.make_tensor_value_info(t.name, elem[t.dtype], shape)


def build_proto(qmodel, fmt: str, input_shape: tuple, metadata: dict):
    """The ``onnx.ModelProto`` of ``qmodel`` (profile checked by the caller); refuses before building."""
    onnx = require_onnx()
    for node in qmodel.nodes:  # refuse a node by name before writing anything
        if node.op not in EXPORTED_OPS:
            raise UnsupportedError(f"node {node.name!r}: op {node.op!r} is not exported to ONNX (exported: "
                                   f"{', '.join(EXPORTED_OPS)})")
    b = Builder(qmodel, fmt)
    for node in qmodel.nodes:
        b.node(node)
    h, tp = onnx.helper, onnx.TensorProto
    inputs = [_value_info(h, tp, qmodel.tensors[n], ["N", *input_shape]) for n in qmodel.inputs]
    sample = {n: np.zeros((1, *input_shape), qmodel.tensors[n].dtype) for n in qmodel.inputs}
    try:
        env = qmodel.trace(sample if len(sample) > 1 else sample[qmodel.inputs[0]])  # one sample: the output shapes
    except ShapeError as err:
        raise ShapeError(f"input_shape {tuple(input_shape)} does not fit the model: {err}") from None
    outputs = [_value_info(h, tp, qmodel.tensors[n], ["N", *np.shape(env[n])[1:]]) for n in qmodel.outputs]
    graph = h.make_graph(b.nodes, "refquant", inputs, outputs, b.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET), h.make_opsetid(_MS, MS_DOMAIN_VERSION)],
                         producer_name="refquant", ir_version=IR_VERSION)
    h.set_model_props(model, {k: str(v) for k, v in metadata.items()})
    return model


def write_atomic(content: bytes, path) -> None:
    """Write ``content`` to ``path`` atomically (:func:`refquant.qmodel.storage.write_atomic`)."""
    storage.write_atomic(path, lambda f: f.write(content))

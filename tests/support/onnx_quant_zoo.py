"""Float ONNX models, ONNX Runtime's ``quantize_static`` of them, and ONNX Runtime running the result.

The model zoo of the ``import_quantized`` conformance tests:

* :data:`BUNDLED`: refquant's four bundled digits models as float ONNX, BatchNorm folded
  (``support.onnx_float_export``: their torch twins exported by torch), input ``"input"`` ``(N, 1, 8, 8)``;
* :data:`SMALL`: small ``onnx.helper`` graphs, each exercising the ops ONNX Runtime fuses into one
  integer op (Conv with groups / depthwise / pads / strides / dilations, Gemm, MatMul with a constant
  B on 2-D and 3-D inputs, Add / Mul of two activations and with a broadcast constant, Concat,
  AveragePool variants, GlobalAveragePool, MaxPool, Sigmoid, Softmax, LeakyRelu, Relu / Clip after
  Conv, shape ops between quantized ops, a tensor with two consumers);
* :func:`ort_quantize`: ``onnxruntime.quantization.quantize_static`` around bytes; :data:`COMBOS` the
  combinations it offers (QDQ / QOperator × u8 / s8 activations × s8 / u8 weights × per-tensor /
  per-channel × reduce_range; s8 activations with u8 weights is refused by ORT) and :data:`EXTRAS`
  (``extra_options``, calibrators, 16-bit activations);
* :func:`ort_run` (CPU EP, one intra-op thread, default optimization level ``ORT_ENABLE_ALL``), and
  what ORT ran: :func:`optimized_ops` and :func:`float_nodes` read its optimized graph
  (``SessionOptions.optimized_model_filepath``).

Imports onnx, onnxruntime and torch (through ``support.onnx_float_export``) at import time: import
after ``pytest.importorskip``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import tempfile
import zlib
from collections import Counter
from typing import NamedTuple

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization as oq

from refquant.data import load_digits
from support.onnx_float_export import bundled_float_onnx

__all__ = ["BUNDLED", "COMBOS", "EXTRAS", "ORDER_DEPENDENT_FLOAT_OPS", "SMALL", "Combo", "adversarial_inputs",
           "calibration_batches", "case_inputs", "first_divergence", "float_model", "float_nodes",
           "in_range_inputs", "input_qparams", "named_float_node",
           "optimized_graph", "optimized_ops", "ort_intermediates", "ort_quantize", "ort_run", "quantized",
           "sample_shape"]

BUNDLED = ("mlp", "cnn", "resnet", "mobilenet")
ort.set_default_logger_severity(3)  # the calibration sessions' warnings (unused initializers, ...)


# ----------------------------------------------------------------------------- the combinations
class Combo(NamedTuple):
    """One call of ``quantize_static``; ``name`` reads like ``qdq-u8s8-pc-rr``."""

    quant_format: str = "QDQ"  # "QDQ" | "QOperator"
    activation_type: str = "QUInt8"  # oq.QuantType member name
    weight_type: str = "QInt8"
    per_channel: bool = False
    reduce_range: bool = False
    calibrate_method: str = "MinMax"
    extra_options: tuple = ()  # ((key, value), ...): hashable
    tag: str = ""

    @property
    def name(self) -> str:
        t = {"QUInt8": "u8", "QInt8": "s8", "QUInt16": "u16", "QInt16": "s16"}
        s = f"{self.quant_format.lower()}-{t[self.activation_type]}{t[self.weight_type]}-"
        s += ("pc" if self.per_channel else "pt") + ("-rr" if self.reduce_range else "")
        return s + (f"-{self.tag}" if self.tag else "")


_TYPES = (("QUInt8", "QInt8"), ("QUInt8", "QUInt8"), ("QInt8", "QInt8"))  # (QInt8, QUInt8) refused by ORT
COMBOS = tuple(Combo(f, a, w, pc, rr) for f in ("QDQ", "QOperator") for a, w in _TYPES
               for pc in (False, True) for rr in (False, True))
EXTRAS = (
    Combo("QDQ", per_channel=True, extra_options=(("ActivationSymmetric", True),), tag="asym"),
    Combo("QDQ", "QInt8", "QInt8", extra_options=(("ActivationSymmetric", True),), tag="asym"),
    Combo("QOperator", "QInt8", "QInt8", extra_options=(("ActivationSymmetric", True),), tag="asym"),
    Combo("QDQ", extra_options=(("QDQKeepRemovableActivations", True),), tag="keepact"),
    Combo("QDQ", per_channel=True, extra_options=(("DedicatedQDQPair", True),), tag="dedicated"),
    Combo("QDQ", extra_options=(("UseQDQContribOps", True),), tag="msqdq"),
    Combo("QDQ", extra_options=(("AddQDQPairToWeight", True),), tag="qdqweight"),
    Combo("QDQ", "QInt8", "QInt8", extra_options=(("WeightSymmetric", False),), tag="wasym"),
    Combo("QDQ", per_channel=True, calibrate_method="Percentile", tag="percentile"),
    Combo("QDQ", "QUInt16", "QInt8", tag="a16"),
)


# ----------------------------------------------------------------------------- float models
def _rng_array(seed, shape, scale=0.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


class _G:
    """A small graph under construction: nodes and float32 initializers, one input ``"input"``."""

    def __init__(self, name: str, shape: tuple, seed: int):
        self.name, self.shape, self.nodes, self.inits, self._seed, self._n = name, shape, [], [], seed, 0

    def const(self, shape, scale=0.5, value=None, dtype=np.float32) -> str:
        self._n += 1
        name = f"c{self._n}"
        v = _rng_array(self._seed * 1000 + self._n, shape, scale) if value is None else value
        self.inits.append(numpy_helper.from_array(np.asarray(v, dtype), name))
        return name

    def node(self, op, inputs, *, out=None, **attrs) -> str:
        out = out or f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{len(self.nodes)}", **attrs))
        return out

    def conv(self, x, cin, cout, k=3, *, group=1, bias=True, **attrs) -> str:
        w = self.const((cout, cin // group, k, k), scale=1.0 / np.sqrt(cin // group * k * k))
        ins = [x, w] + ([self.const((cout,), 0.1)] if bias else [])
        return self.node("Conv", ins, group=group, **attrs)

    def build(self, last: str, opset: int = 17) -> bytes:
        self.node("Identity", [last], out="output")
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *self.shape])
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, self.name, [x], [y], initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8 if opset <= 17 else 10
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # gives the output its shape
        onnx.checker.check_model(model, full_check=True)
        return model.SerializeToString()


def _conv_groups(g):
    y = g.node("Relu", [g.conv("input", 4, 6, group=2, strides=[2, 2], pads=[1, 0, 2, 1])])
    return g.conv(y, 6, 5, k=1, bias=False)


def _conv_clip(g):
    y = g.node("Clip", [g.conv("input", 3, 5, pads=[1, 1, 1, 1]), g.const((), value=-1.0), g.const((), value=1.0)])
    return g.conv(y, 5, 2)


def _conv_depthwise(g):
    y = g.node("Clip", [g.conv("input", 8, 8, group=8, pads=[1, 1, 1, 1]), g.const((), value=0.0),
                        g.const((), value=6.0)])
    y = g.conv(y, 8, 16, group=8, strides=[2, 2])  # depth multiplier 2
    return g.conv(y, 16, 4, k=1)


def _conv_dilated(g):
    y = g.node("Relu", [g.conv("input", 3, 6, bias=False, dilations=[2, 2], strides=[1, 2], pads=[2, 2, 2, 2])])
    return g.conv(y, 6, 4, auto_pad="SAME_UPPER", strides=[2, 2])


def _gemm(g):
    y = g.node("Relu", [g.node("Gemm", ["input", g.const((16, 20), 0.3), g.const((16,), 0.1)], transB=1)])
    return g.node("Gemm", [y, g.const((16, 10), 0.3), g.const((10,), 0.1)])


def _gemm_nobias(g):
    y = g.node("Gemm", ["input", g.const((20, 12), 0.3)])
    return g.node("Gemm", [y, g.const((8, 12), 0.3)], transB=1)


def _gemm_alpha(g):
    return g.node("Gemm", ["input", g.const((20, 12), 0.3), g.const((12,), 0.1)], alpha=0.5, beta=2.0)


def _matmul_2d(g):
    y = g.node("Relu", [g.node("Add", [g.node("MatMul", ["input", g.const((16, 12), 0.3)]), g.const((12,), 0.2)])])
    return g.node("MatMul", [y, g.const((12, 6), 0.3)])


def _matmul_3d(g):
    y = g.node("Mul", [g.node("MatMul", ["input", g.const((16, 8), 0.3)]), g.const((1, 1, 8), 1.0)])
    return g.node("MatMul", [y, g.const((8, 4), 0.3)])


def _add_mul(g):
    a, b = g.conv("input", 3, 4, pads=[1, 1, 1, 1]), g.conv("input", 3, 4, pads=[1, 1, 1, 1])
    y = g.node("Mul", [g.node("Add", [a, b]), a])  # two activations, same shape
    y = g.node("Mul", [y, g.const((1, 4, 1, 1), 1.0)])  # broadcast constants
    return g.node("Add", [y, g.const((4, 1, 1), 0.5)])


def _square(g):
    y = g.conv("input", 3, 4, pads=[1, 1, 1, 1])
    return g.node("Mul", [y, y])  # one tensor read twice by one node


def _concat(g):
    a = g.node("Relu", [g.conv("input", 3, 4, pads=[1, 1, 1, 1])])
    y = g.node("Concat", [a, g.conv("input", 3, 5, pads=[1, 1, 1, 1]), "input"], axis=1)
    return g.conv(y, 12, 2)


def _pool(op, **attrs):
    def build(g):
        y = g.node(op, [g.conv("input", 4, 4, pads=[1, 1, 1, 1])], **attrs)
        return g.conv(y, 4, 3, k=1)
    return build


def _global_avgpool(g):
    y = g.node("GlobalAveragePool", [g.node("Relu", [g.conv("input", 3, 8)])])
    return g.node("Gemm", [g.node("Flatten", [y]), g.const((5, 8), 0.4), g.const((5,), 0.1)], transB=1)


def _activation(op, **attrs):
    def build(g):
        return g.conv(g.node(op, [g.conv("input", 4, 6, pads=[1, 1, 1, 1])], **attrs), 6, 3, k=1)
    return build


def _softmax_axis1(g):
    return g.node("Softmax", [g.conv("input", 4, 6, pads=[1, 1, 1, 1])], axis=1)


def _softmax(g):
    return g.node("Softmax", [g.node("Gemm", ["input", g.const((10, 20), 0.5), g.const((10,), 0.1)], transB=1)],
                  axis=-1)


def _shape_ops(g):
    y = g.node("Reshape", [g.conv("input", 2, 4, pads=[1, 1, 1, 1]), g.const((3,), value=[0, 4, 16], dtype=np.int64)])
    y = g.node("Transpose", [y], perm=[0, 2, 1])
    y = g.node("Unsqueeze", [y, g.const((1,), value=[1], dtype=np.int64)])
    y = g.node("Squeeze", [y, g.const((1,), value=[1], dtype=np.int64)])
    return g.node("Gemm", [g.node("Flatten", [y]), g.const((6, 64), 0.2), g.const((6,), 0.1)], transB=1)


def _fanout(g):
    c = g.conv("input", 3, 4, pads=[1, 1, 1, 1])
    y = g.node("Add", [g.conv(c, 4, 4, pads=[1, 1, 1, 1]), g.conv(c, 4, 4, k=1)])
    return g.node("Add", [y, c])


#: name -> (builder, sample shape, opset)
_SMALL = {
    "conv_groups": (_conv_groups, (4, 9, 9), 17),
    "conv_clip": (_conv_clip, (3, 6, 6), 17),
    "conv_depthwise": (_conv_depthwise, (8, 7, 7), 17),
    "conv_dilated": (_conv_dilated, (3, 9, 10), 17),
    "gemm": (_gemm, (20,), 17),
    "gemm_nobias": (_gemm_nobias, (20,), 17),
    "gemm_alpha": (_gemm_alpha, (20,), 17),
    "matmul_2d": (_matmul_2d, (16,), 17),
    "matmul_3d": (_matmul_3d, (5, 16), 21),
    "add_mul": (_add_mul, (3, 6, 6), 17),
    "square": (_square, (3, 6, 6), 17),
    "concat": (_concat, (3, 6, 6), 17),
    "avgpool_exclude_pad": (_pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), (4, 9, 9), 17),
    "avgpool_include_pad": (_pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                  count_include_pad=1), (4, 9, 9), 17),
    "avgpool_ceil": (_pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), (4, 8, 8), 17),
    "avgpool_ceil_pads": (_pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                                count_include_pad=1), (4, 8, 8), 17),
    "global_avgpool": (_global_avgpool, (3, 7, 7), 17),
    "maxpool": (_pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), (4, 8, 8), 17),
    "sigmoid": (_activation("Sigmoid"), (4, 6, 6), 17),
    "leaky_relu": (_activation("LeakyRelu", alpha=0.1), (4, 6, 6), 17),
    "softmax": (_softmax, (20,), 17),
    "softmax_axis1": (_softmax_axis1, (4, 5, 5), 17),
    "shape_ops": (_shape_ops, (2, 4, 4), 17),
    "fanout": (_fanout, (3, 6, 6), 21),
}
SMALL = tuple(_SMALL)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def sample_shape(name: str) -> tuple:
    """The shape of one sample (without the batch) of model ``name``."""
    return (1, 8, 8) if name in BUNDLED else _SMALL[name][1]


@functools.cache
def float_model(name: str) -> bytes:
    """The float ONNX model ``name`` (one of :data:`BUNDLED` or :data:`SMALL`), serialized."""
    if name in BUNDLED:
        return bundled_float_onnx(name, fold=True)
    build, shape, opset = _SMALL[name]
    g = _G(name, shape, seed=_seed(name) % 1000 + 1)
    return g.build(build(g), opset)


def calibration_batches(name: str) -> list:
    """Four float32 batches: the first 64 digits training images, or 32 synthetic samples."""
    if name in BUNDLED:
        x = load_digits("train")[0][:64]  # (64, 1, 8, 8) float32
    else:
        x = _rng_array(_seed(name), (32, *sample_shape(name)), 1.0) + 0.25
    return [x[i:i + len(x) // 4] for i in range(0, len(x), len(x) // 4)]


def in_range_inputs(name: str) -> np.ndarray:
    """The digits test split (359 images), or 40 fresh samples of the small graph's calibration distribution
    (a few may fall just outside the calibrated range)."""
    if name in BUNDLED:
        return load_digits("test")[0]
    return _rng_array(_seed(name) + 1, (40, *sample_shape(name)), 1.0) + 0.25


# ----------------------------------------------------------------------------- ORT's quantizer
class _Reader(oq.CalibrationDataReader):
    def __init__(self, name: str, batches):
        self._name, self._it = name, iter(list(batches))

    def get_next(self):
        b = next(self._it, None)
        return None if b is None else {self._name: np.ascontiguousarray(b, np.float32)}


def _enum(cls, v):
    return getattr(cls, v) if isinstance(v, str) else v


@contextlib.contextmanager
def _root_log_level(level: int):
    root = logging.getLogger()
    old = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(old)


def ort_quantize(float_bytes: bytes, calib_batches, *, quant_format, activation_type, weight_type, per_channel,
                 reduce_range, calibrate_method="MinMax", extra_options=None) -> bytes:
    """``onnxruntime.quantization.quantize_static`` of a serialized float model; returns the quantized bytes.

    Enum arguments are ``oq`` members or their names (``"QDQ"``, ``"QUInt8"``, ``"MinMax"``); the
    calibration reader feeds ``calib_batches`` to the model's first input.
    """
    model = onnx.load_from_string(float_bytes)
    name = model.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="refquant_zoo_") as d:
        fp, qp = os.path.join(d, "float.onnx"), os.path.join(d, "quant.onnx")
        with open(fp, "wb") as f:
            f.write(float_bytes)
        with contextlib.redirect_stdout(io.StringIO()), _root_log_level(logging.ERROR):
            # the histogram calibrators print their progress; quantize_static logs "consider pre-processing"
            oq.quantize_static(fp, qp, _Reader(name, calib_batches),
                               quant_format=_enum(oq.QuantFormat, quant_format),
                               activation_type=_enum(oq.QuantType, activation_type),
                               weight_type=_enum(oq.QuantType, weight_type), per_channel=per_channel,
                               reduce_range=reduce_range,
                               calibrate_method=_enum(oq.CalibrationMethod, calibrate_method),
                               extra_options=dict(extra_options or {}))
        with open(qp, "rb") as f:
            return f.read()


@functools.cache
def quantized(name: str, combo: Combo) -> bytes:
    """ORT's ``quantize_static`` of model ``name`` with ``combo``, calibrated on :func:`calibration_batches`."""
    return ort_quantize(float_model(name), calibration_batches(name), quant_format=combo.quant_format,
                        activation_type=combo.activation_type, weight_type=combo.weight_type,
                        per_channel=combo.per_channel, reduce_range=combo.reduce_range,
                        calibrate_method=combo.calibrate_method, extra_options=dict(combo.extra_options))


# ----------------------------------------------------------------------------- ORT's session
def _options(optimized_path=None) -> ort.SessionOptions:
    so = ort.SessionOptions()  # default graph optimization level: ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return so


@functools.lru_cache(maxsize=64)
def _session(model_bytes: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model_bytes, _options(), providers=["CPUExecutionProvider"])


def ort_run(model_bytes: bytes, x, *, optimized_path=None) -> np.ndarray:
    """ONNX Runtime's first output for ``x`` fed to the first input (CPU EP, one thread, ORT_ENABLE_ALL).
    With ``optimized_path``, the session also writes its optimized graph there."""
    if optimized_path is None:
        sess = _session(model_bytes)
    else:
        sess = ort.InferenceSession(model_bytes, _options(optimized_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@functools.cache
def optimized_graph(model_bytes: bytes) -> onnx.ModelProto:
    """The graph ONNX Runtime runs after its default optimizations (its NCHWc/NHWC layout rewrites included)."""
    with tempfile.TemporaryDirectory(prefix="refquant_zoo_") as d:
        path = os.path.join(d, "optimized.onnx")
        ort.InferenceSession(model_bytes, _options(path), providers=["CPUExecutionProvider"])
        return onnx.load(path)


def optimized_ops(model_bytes: bytes) -> Counter:
    """``Counter`` of ``(domain, op_type)`` over ORT's optimized graph."""
    return Counter((n.domain, n.op_type) for n in optimized_graph(model_bytes).graph.node)


#: Float ops whose result depends on the library's summation order or approximation (ORT's MLAS).
ORDER_DEPENDENT_FLOAT_OPS = frozenset({
    "Conv", "ConvTranspose", "FusedConv", "NhwcFusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul",
    "MatMulNBits", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "AveragePool", "GlobalAveragePool",
    "Softmax", "LogSoftmax", "Sigmoid", "Tanh", "ReduceMean", "ReduceSum", "LayerNormalization",
    "InstanceNormalization", "BatchNormalization"})
_INT_OUT = {"QuantizeLinear", "DynamicQuantizeLinear"}  # output integer; QLinear* / QGemm: by name
_FLOAT_OUT = {"DequantizeLinear"}


def _dtypes(graph) -> dict:
    """``{tensor: "int" | "float"}`` over a graph, propagated from inputs and initializers by op type."""
    kind = {i.name: ("float" if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16) else "int")
            for i in graph.initializer}
    kind.update({i.name: ("float" if i.type.tensor_type.elem_type == TensorProto.FLOAT else "int")
                 for i in graph.input})
    for n in graph.node:
        if n.op_type in _INT_OUT or n.op_type.startswith("QLinear") or n.op_type == "QGemm":
            k = "int"
        elif n.op_type in _FLOAT_OUT:
            k = "float"
        else:
            k = kind.get(n.input[0], "float") if n.input else "float"
        for o in n.output:
            kind[o] = k
    return kind


def float_nodes(model_bytes: bytes, *, order_dependent: bool = False) -> list:
    """``[(node name, domain, op_type)]`` of the nodes of ORT's optimized graph that compute on float32
    (DequantizeLinear excluded); with ``order_dependent``, only :data:`ORDER_DEPENDENT_FLOAT_OPS`."""
    graph = optimized_graph(model_bytes).graph
    kind = _dtypes(graph)
    out = []
    for n in graph.node:
        if n.op_type in _FLOAT_OUT or kind.get(n.output[0]) != "float":
            continue
        if not order_dependent or n.op_type in ORDER_DEPENDENT_FLOAT_OPS:
            out.append((n.name, n.domain, n.op_type))
    return out


def named_float_node(message: str, model_bytes: bytes):
    """``(node name, op)`` of the first order-dependent float node of ORT's optimized graph that ``message``
    names (quoted, as ``'name'``) together with its op type, else ``None``: a refusal's justification."""
    file_ops = {n.name: n.op_type for n in onnx.load_from_string(model_bytes).graph.node}
    for name, _, op in float_nodes(model_bytes, order_dependent=True):
        # ORT may rename the op it runs (a DQ -> MatMul/Gemm becomes MatMulNBits): the file's op counts too
        if repr(name) in message and (op in message or f"({file_ops.get(name, op)})" in message):
            return name, op
    return None


def ort_intermediates(model_bytes: bytes, x) -> dict:
    """ORT's value of every integer tensor of the *quantized file* (QuantizeLinear / QLinear* outputs), made
    graph outputs (which does not stop ORT fusing their producers), for locating a first mismatching node."""
    model = onnx.load_from_string(model_bytes)
    kind = _dtypes(model.graph)
    have = {o.name for o in model.graph.output}
    for n in model.graph.node:
        for o in n.output:
            if kind.get(o) == "int" and o not in have and o:
                model.graph.output.append(helper.make_empty_tensor_value_info(o))
    sess = ort.InferenceSession(model.SerializeToString(), _options(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))


# ----------------------------------------------------------------------------- inputs on the input grid
def input_qparams(model_bytes: bytes) -> tuple:
    """``(scale float32, zero_point, dtype name)`` of the QuantizeLinear that reads the graph input
    (directly, or through data movement: Flatten, Reshape, Transpose, ...)."""
    model = onnx.load_from_string(model_bytes)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    tensor = model.graph.input[0].name
    for n in model.graph.node:  # the file's nodes are in topological order
        if n.input and n.input[0] == tensor:
            if n.op_type == "QuantizeLinear":
                zp = inits[n.input[2]]
                return np.float32(inits[n.input[1]]), int(zp), zp.dtype.name
            if n.op_type in ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"):
                tensor = n.output[0]
    raise LookupError(f"no QuantizeLinear reads the graph input {model.graph.input[0].name!r}")


def adversarial_inputs(model_bytes: bytes, shape: tuple, n: int = 17, seed: int = 0) -> np.ndarray:
    """``(n, *shape)`` float32: ties ``(k + 1/2)·scale`` on the input quantizer's grid (exact ties and
    float32-division ties, every code of the range and past both ends) and their float32 neighbours;
    the last quarter of the samples mixes in huge finite values (±1e10, ±1e30, ±FLT_MAX) that saturate."""
    from support.edge_values import tie_values

    scale, zp, dtype = input_qparams(model_bytes)
    ties = np.concatenate([tie_values(scale, zp, dtype), tie_values(scale, zp, dtype, kind="float32_divide")])
    ties = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    rng = np.random.default_rng(seed)
    x = rng.choice(ties, size=(n, *shape)).astype(np.float32)
    huge = np.array([1e10, -1e10, 1e30, -1e30, 3.4028235e38, -3.4028235e38], np.float32)
    tail = x[3 * n // 4:]
    mask = rng.random(tail.shape) < 0.5
    tail[mask] = rng.choice(huge, size=int(mask.sum()))
    return x


def case_inputs(name: str, model_bytes: bytes) -> dict:
    """The input sets of one case, by kind: in range (:func:`in_range_inputs`), its first 17 and first
    sample, past the calibrated range (its first 17 scaled by 3, and shifted by the range's width), and
    :func:`adversarial_inputs` on the quantized model's input grid."""
    x = in_range_inputs(name)  # (N, ...) float32
    lo, hi = float(x.min()), float(x.max())
    past = np.concatenate([3 * x[:17], x[:17] + (hi - lo)]).astype(np.float32)
    return {"in range": x, "batch 17": x[:17], "batch 1": x[:1], "past range": past,
            "ties + huge": adversarial_inputs(model_bytes, sample_shape(name), 17, seed=_seed(name) % 1000)}


def first_divergence(qm, model_bytes: bytes, x) -> str:
    """Where ``qm.trace(x)`` first departs from ORT: the first integer tensor, in the file's node order,
    that both compute and on which they differ (a sentence, for failure messages and the sweep)."""
    try:
        ours, theirs = qm.trace(x), ort_intermediates(model_bytes, x)
    except Exception as err:  # noqa: BLE001 (diagnostics only)
        return f"(intermediates unavailable: {type(err).__name__}: {err})"
    for n in onnx.load_from_string(model_bytes).graph.node:
        for t in n.output:
            if t in ours and t in theirs and np.shape(ours[t]) == np.shape(theirs[t]):
                bad = np.asarray(ours[t]) != np.asarray(theirs[t])
                if bad.any():
                    i = tuple(int(v) for v in np.argwhere(bad)[0])
                    return (f"first differing tensor {t!r} (written by node {n.name!r}, {n.op_type}): {int(bad.sum())} "
                            f"of {bad.size} differ, at {i} ours {ours[t][i]!r} ORT {theirs[t][i]!r}")
    return "no integer tensor named alike in both differs (the divergence is in a tensor only one side names)"

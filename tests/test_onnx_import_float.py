"""Float ONNX models read as ``refquant.nn`` models (``refquant.interop._onnx_float.build_float_model``).

Three parts:

* graphs written with ``onnx.helper``, one per supported op and op combination, run by the imported
  model and by ONNX Runtime (CPU execution provider, one intra-op thread);
* refquant's four bundled models exported by PyTorch (BatchNorm folded, and kept as
  BatchNormalization nodes), imported, and run on the digits test split: equal bit for bit to the
  refquant model that was exported (same layers, same float32 weights, same NumPy code), close to
  ONNX Runtime, same top-1; refquant's PTQ on the imported model gives the original's integer model;
* every refusal, each message naming the node (name and index) and its op.

Tolerance: these are float32 models. ONNX Runtime (MLAS blocked GEMM, direct and NCHWc
convolutions) and refquant.nn (NumPy matmul on im2col) add the same products in different
orders, so outputs differ by a few float32 ulps of the partial sums; ``==`` is the rule for
integer paths only. Here outputs are compared with ``np.testing.assert_allclose(rtol=1e-5,
atol=1e-5)`` (the largest difference seen is about 6e-6 on logits of magnitude < 30), and
the top-1 predictions must be equal. Weights, by contrast, must equal the file's initializers
bit for bit.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from refquant import nn
from refquant.errors import QuantizationTypeError, UnsupportedError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper

from refquant.interop._onnx_float import SUPPORTED_OPS, build_float_model

pytestmark = pytest.mark.conformance

RTOL = ATOL = 1e-5  # float summation order differs (module docstring)
F32 = np.float32


# ------------------------------------------------------------------------------------------
# Graph building and running
# ------------------------------------------------------------------------------------------

def _w(name: str, shape, seed: int = 0, scale: float = 0.5) -> onnx.TensorProto:
    """A float32 initializer of normal values."""
    rng = np.random.default_rng(abs(hash((name, tuple(shape), seed))) % 2**32)
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(F32), name)


def _c(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype), name)


def _model(nodes, inits, in_shape, *, opset: int = 17, out: str = "y", in_dtype=TensorProto.FLOAT,
           inputs=None, outputs=None) -> onnx.ModelProto:
    """One input ``x`` of ``in_shape`` (``"N"`` a free batch), output ``out`` of unknown shape."""
    inputs = inputs or [helper.make_tensor_value_info("x", in_dtype, in_shape)]
    outputs = outputs or [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", opset)] if opset else [helper.make_opsetid("com.microsoft", 1)]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = 8
    return proto


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _arrays(model) -> list[np.ndarray]:
    return [p.value for _, p in model.named_parameters()] + [b for _, b in model.named_buffers()]


def _check(proto: onnx.ModelProto, x: np.ndarray):
    """Import ``proto``, run both, compare (shape, dtype, values); weights equal the file's. Returns the model."""
    model = build_float_model(proto)
    assert not model.training
    got, want = model(x), _ort(proto, x)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"imported model vs ONNX Runtime\n{model}")
    arrays = _arrays(model)
    for init in proto.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == F32 and a.size > 1:  # weights, biases, statistics: the file's values, bit for bit
            assert any(v.size == a.size and (np.array_equal(v.ravel(), a.ravel()) or
                                             (a.ndim == 2 and np.array_equal(v, a.T))) for v in arrays), init.name
    return model


def _x(*shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


def _types(model) -> list[str]:
    return [type(m).__name__ for m in model]


def _conv(x, w, y, name="conv", b=None, **attrs):
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name=name, **attrs)


# ------------------------------------------------------------------------------------------
# (a) One op and op combinations, against ONNX Runtime
# ------------------------------------------------------------------------------------------

def _gemm(trans_b: int, c_shape):
    b_shape = (5, 6) if trans_b else (6, 5)
    inits = [_w("B", b_shape)] + ([_w("C", c_shape)] if c_shape is not None else [])
    node = helper.make_node("Gemm", ["x", "B"] + (["C"] if c_shape is not None else []), ["y"], name="gemm",
                            transB=trans_b)
    return _model([node], inits, ["N", 6]), _x(4, 6), ["Linear"]


def _matmul(add: str | None):
    nodes = [helper.make_node("MatMul", ["x", "B"], ["h" if add else "y"], name="mm")]
    inits = [_w("B", (6, 5))]
    if add:
        nodes.append(helper.make_node("Add", ["h", "bias"] if add == "after" else ["bias", "h"], ["y"], name="add"))
        inits.append(_w("bias", (5,)))
    return _model(nodes, inits, ["N", 6]), _x(4, 6), ["Linear"]


def _conv_case(w_shape, *, x_shape=(2, 4, 9, 9), with_bias=True, **attrs):
    inits = [_w("W", w_shape)] + ([_w("B", (w_shape[0],))] if with_bias else [])
    node = _conv("x", "W", "y", b="B" if with_bias else None, **attrs)
    return _model([node], inits, ["N", x_shape[1], x_shape[2], x_shape[3]]), _x(*x_shape), ["Conv2d"]


def _conv_bn_relu():
    nodes = [_conv("x", "W", "c", name="conv"),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    rng = np.random.default_rng(3)
    inits = [_w("W", (6, 3, 3, 3)), _w("s", (6,)), _w("b", (6,)), _w("m", (6,)),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, 6).astype(F32), "v")]
    return _model(nodes, inits, ["N", 3, 7, 7]), _x(2, 3, 7, 7), ["Conv2d", "BatchNorm2d", "ReLU"]


def _gemm_bn1d():
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc", transB=1),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], name="bn")]
    inits = [_w("W", (5, 6)), _w("B", (5,)), _w("s", (5,)), _w("b", (5,)), _w("m", (5,)),
             numpy_helper.from_array(np.linspace(0.5, 2.0, 5).astype(F32), "v")]
    return _model(nodes, inits, ["N", 6]), _x(4, 6), ["Linear", "BatchNorm1d"]


def _unary(op: str, opset: int = 17, **attrs):
    return _model([helper.make_node(op, ["x"], ["y"], name=op.lower(), **attrs)], [], ["N", 3, 4, 4],
                  opset=opset), _x(2, 3, 4, 4) * 4, None


def _clip(lo, hi, *, opset: int = 17):
    if opset >= 11:
        ins = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        inits = ([numpy_helper.from_array(F32(lo), "lo")] if lo is not None else []) + \
                ([numpy_helper.from_array(F32(hi), "hi")] if hi is not None else [])
        node = helper.make_node("Clip", [n for n in ins if n] if hi is None else ins, ["y"], name="clip")
    else:
        inits = []
        node = helper.make_node("Clip", ["x"], ["y"], name="clip", **({} if lo is None else {"min": lo}),
                                **({} if hi is None else {"max": hi}))
    return _model([node], inits, ["N", 3, 4, 4], opset=opset), _x(2, 3, 4, 4) * 5, None


def _pool(op: str, x_shape=(2, 3, 9, 9), **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    return _model([node], [], ["N", x_shape[1], x_shape[2], x_shape[3]]), _x(*x_shape), None


def _gap(after: str | None):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g" if after else "y"], name="gap")]
    inits, types = [], ["GlobalAvgPool2d"]
    if after == "flatten":
        nodes.append(helper.make_node("Flatten", ["g"], ["y"], name="flat", axis=1))
    elif after == "reshape":
        nodes.append(helper.make_node("Reshape", ["g", "shape"], ["y"], name="reshape"))
        inits.append(_c("shape", [0, -1]))
    elif after == "torch_chain":  # x.view(x.size(0), -1), as torch exports it
        nodes += _torch_view_chain("g", "y")
        inits.append(_c("minus1", [-1]))
    elif after == "conv":  # (N, C, 1, 1) kept for a 1x1 convolution
        nodes.append(_conv("g", "W", "y", name="conv1x1"))
        inits.append(_w("W", (5, 3, 1, 1)))
        types.append("Conv2d")
    return _model(nodes, inits, ["N", 3, 5, 5]), _x(2, 3, 5, 5), types


def _torch_view_chain(src: str, dst: str) -> list:
    """``Shape → Gather(0) → Unsqueeze → Concat(·, [-1]) → Reshape``: torch's ``x.view(x.size(0), -1)``."""
    return [helper.make_node("Shape", [src], ["shp"], name="shape"),
            helper.make_node("Constant", [], ["zero"], name="const0", value=numpy_helper.from_array(np.int64(0))),
            helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
            helper.make_node("Constant", [], ["axes0"], name="const_axes", value_ints=[0]),
            helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
            helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
            helper.make_node("Reshape", [src, "target"], [dst], name="reshape")]


def _flatten_after_conv(kind: str):
    nodes = [_conv("x", "W", "c", pads=[1, 1, 1, 1])]
    inits = [_w("W", (4, 2, 3, 3))]
    if kind == "flatten":
        nodes.append(helper.make_node("Flatten", ["c"], ["y"], name="flat"))
    elif kind == "reshape_minus1_k":
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["y"], name="reshape"))
        inits.append(_c("shape", [-1, 4 * 5 * 5]))
    elif kind == "torch_chain":
        nodes += _torch_view_chain("c", "y")
        inits.append(_c("minus1", [-1]))
    else:  # Shape → Slice [0:1] → Squeeze → Unsqueeze → Cast → Concat(·, [-1]) → Reshape
        nodes += [helper.make_node("Shape", ["c"], ["shp"], name="shape"),
                  helper.make_node("Slice", ["shp", "zero", "one"], ["n1"], name="slice"),
                  helper.make_node("Squeeze", ["n1", "zero"], ["n"], name="squeeze"),
                  helper.make_node("Unsqueeze", ["n", "zero"], ["n2"], name="unsqueeze"),
                  helper.make_node("Cast", ["n2"], ["n3"], name="cast", to=TensorProto.INT64),
                  helper.make_node("Concat", ["n3", "minus1"], ["target"], name="concat", axis=0),
                  helper.make_node("Reshape", ["c", "target"], ["y"], name="reshape")]
        inits += [_c("zero", [0]), _c("one", [1]), _c("minus1", [-1])]
    return _model(nodes, inits, ["N", 2, 5, 5]), _x(3, 2, 5, 5), ["Conv2d", "Flatten"]


def _softmax(opset: int, axis, rank4: bool = False):
    attrs = {} if axis is None else {"axis": axis}
    if rank4:
        return _model([helper.make_node("Softmax", ["x"], ["y"], name="sm", **attrs)], [], ["N", 3, 4, 4],
                      opset=opset), _x(2, 3, 4, 4), ["Softmax"]
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
             helper.make_node("Softmax", ["h"], ["y"], name="sm", **attrs)]
    return _model(nodes, [_w("W", (5, 6))], ["N", 6], opset=opset), _x(4, 6) * 3, ["Linear", "Softmax"]


def _identity_dropout(opset: int):
    nodes = [helper.make_node("Identity", ["x"], ["i"], name="id")]
    inits = []
    if opset >= 12:
        nodes.append(helper.make_node("Dropout", ["i", "ratio"], ["y"], name="drop"))
        inits.append(numpy_helper.from_array(F32(0.25), "ratio"))
    else:
        nodes.append(helper.make_node("Dropout", ["i"], ["y", "mask"], name="drop", ratio=0.25))
    return _model(nodes, inits, ["N", 3], opset=opset), _x(4, 3), ["Identity", "Dropout"]


def _constant_weight():
    w = numpy_helper.from_array(_x(3, 2, 3, 3, seed=7), "Wc")
    nodes = [helper.make_node("Constant", [], ["W"], name="weight", value=w), _conv("x", "W", "y")]
    return _model(nodes, [], ["N", 2, 5, 5]), _x(2, 2, 5, 5), ["Conv2d"]


def _residual(shortcut: bool, *, activation: str | None = "Relu", swap: bool = False):
    """conv-relu-conv body; identity or strided 1x1 shortcut; Add; optional activation."""
    stride = 2 if shortcut else 1
    nodes = [_conv("x", "W1", "a", name="body0", pads=[1, 1, 1, 1], strides=[stride, stride]),
             helper.make_node("Relu", ["a"], ["ar"], name="body1"),
             _conv("ar", "W2", "b", name="body2", b="B2", pads=[1, 1, 1, 1])]
    inits = [_w("W1", (4, 4, 3, 3)), _w("W2", (4, 4, 3, 3)), _w("B2", (4,))]
    skip = "x"
    if shortcut:
        nodes.append(_conv("x", "Ws", "s", name="short0", strides=[2, 2]))
        inits.append(_w("Ws", (4, 4, 1, 1)))
        skip = "s"
    out = "y" if activation is None else "sum"
    nodes.append(helper.make_node("Add", [skip, "b"] if swap else ["b", skip], [out], name="join"))
    if activation is not None:
        nodes.append(helper.make_node(activation, ["sum"], ["y"], name="act"))
    return _model(nodes, inits, ["N", 4, 6, 6]), _x(2, 4, 6, 6), ["Residual"]


def _two_residuals_nested():
    """conv → [Residual whose body holds a Residual] → [Residual with identity shortcut] → GAP + Flatten → Gemm."""
    nodes = [_conv("x", "W0", "t0", name="stem", pads=[1, 1, 1, 1]),
             _conv("t0", "W1", "t1", name="outer.body0", pads=[1, 1, 1, 1]),
             _conv("t1", "W2", "t2", name="inner.body0", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["t2", "t1"], ["t3"], name="inner.join"),
             helper.make_node("Add", ["t3", "t0"], ["t4"], name="outer.join"),
             helper.make_node("Sigmoid", ["t4"], ["t5"], name="outer.act"),
             _conv("t5", "W3", "t6", name="next.body0", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["t6", "t5"], ["t7"], name="next.join"),
             helper.make_node("GlobalAveragePool", ["t7"], ["t8"], name="gap"),
             helper.make_node("Flatten", ["t8"], ["t9"], name="flat"),
             helper.make_node("Gemm", ["t9", "Wf", "Bf"], ["y"], name="fc", transB=1)]
    inits = [_w("W0", (4, 2, 3, 3)), _w("W1", (4, 4, 3, 3)), _w("W2", (4, 4, 3, 3)), _w("W3", (4, 4, 3, 3)),
             _w("Wf", (3, 4)), _w("Bf", (3,))]
    return _model(nodes, inits, ["N", 2, 5, 5]), _x(3, 2, 5, 5), ["Conv2d", "Residual", "Residual",
                                                                   "GlobalAvgPool2d", "Linear"]


def _with_dead_constant_node(proto, x, types):
    """A Mul of two constants whose result nothing reads: dead code, as for ONNX Runtime."""
    proto.graph.initializer.append(_c("k", [2.0], F32))
    proto.graph.node.append(helper.make_node("Mul", ["k", "k"], ["unused"], name="dead"))
    return proto, x, types


CASES = {
    "gemm transB=1, bias (out,)": lambda: _gemm(1, (5,)),
    "gemm transB=0, bias (1, out)": lambda: _gemm(0, (1, 5)),
    "gemm transB=0, scalar bias": lambda: _gemm(0, (1,)),
    "gemm no bias": lambda: _gemm(1, None),
    "matmul": lambda: _matmul(None),
    "matmul + add": lambda: _matmul("after"),
    "matmul + add, bias first": lambda: _matmul("before"),
    "conv 3x3 pads 1": lambda: _conv_case((5, 4, 3, 3), pads=[1, 1, 1, 1]),
    "conv no bias, rectangular kernel": lambda: _conv_case((5, 4, 3, 2), with_bias=False, pads=[1, 0, 1, 1]),
    "conv stride 2, dilation 2, asymmetric pads": lambda: _conv_case((5, 4, 3, 3), strides=[2, 2], dilations=[2, 2],
                                                                   pads=[0, 1, 2, 1]),
    "conv groups 2": lambda: _conv_case((6, 2, 3, 3), group=2, pads=[1, 1, 1, 1]),
    "conv depthwise": lambda: _conv_case((4, 1, 3, 3), group=4, pads=[1, 1, 1, 1]),
    "conv depthwise, multiplier 2, stride 2": lambda: _conv_case((8, 1, 3, 3), group=4, strides=[2, 2],
                                                                 pads=[1, 1, 1, 1]),
    "conv auto_pad SAME_UPPER stride 2": lambda: _conv_case((5, 4, 4, 4), auto_pad="SAME_UPPER", strides=[2, 2],
                                                            x_shape=(2, 4, 8, 8)),
    "conv auto_pad SAME_LOWER": lambda: _conv_case((5, 4, 2, 2), auto_pad="SAME_LOWER"),
    "conv auto_pad VALID": lambda: _conv_case((5, 4, 3, 3), auto_pad="VALID"),
    "conv + bn + relu": _conv_bn_relu,
    "gemm + bn (BatchNorm1d)": _gemm_bn1d,
    "relu": lambda: _unary("Relu"),
    "sigmoid": lambda: _unary("Sigmoid"),
    "tanh": lambda: _unary("Tanh"),
    "clip (0, 6) = ReLU6": lambda: _clip(0.0, 6.0),
    "clip (0, 6) opset 6 attributes": lambda: _clip(0.0, 6.0, opset=6),
    "clip (-1, 2) = Hardtanh": lambda: _clip(-1.0, 2.0),
    "clip (-1.5, 0.5) opset 10 = Hardtanh": lambda: _clip(-1.5, 0.5, opset=10),
    "clip min 0 only = ReLU": lambda: _clip(0.0, None),
    "maxpool 2x2 stride 2": lambda: _pool("MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool 3x3 stride 2 pads 1": lambda: _pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool 3x3 stride 1 (ONNX default stride)": lambda: _pool("MaxPool", kernel_shape=[3, 3]),
    "maxpool dilation 2": lambda: _pool("MaxPool", kernel_shape=[2, 2], dilations=[2, 2], strides=[1, 1]),
    "maxpool ceil_mode, no partial window": lambda: _pool("MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                                                          ceil_mode=1),
    "maxpool auto_pad SAME_UPPER": lambda: _pool("MaxPool", kernel_shape=[3, 3], auto_pad="SAME_UPPER"),
    "avgpool 2x2 stride 2": lambda: _pool("AveragePool", kernel_shape=[2, 2], strides=[2, 2], x_shape=(2, 3, 8, 8)),
    "avgpool pads, count_include_pad=0": lambda: _pool("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "avgpool pads, count_include_pad=1": lambda: _pool("AveragePool", kernel_shape=[3, 3], strides=[2, 2],
                                                       pads=[1, 1, 1, 1], count_include_pad=1),
    "avgpool rectangular, pads (1, 0)": lambda: _pool("AveragePool", kernel_shape=[3, 2], strides=[2, 1],
                                                      pads=[1, 0, 1, 0]),
    "global average pool (keepdims)": lambda: _gap(None),
    "global average pool + flatten": lambda: _gap("flatten"),
    "global average pool + reshape (0, -1)": lambda: _gap("reshape"),
    "global average pool + torch view chain": lambda: _gap("torch_chain"),
    "global average pool + 1x1 conv": lambda: _gap("conv"),
    "conv + flatten": lambda: _flatten_after_conv("flatten"),
    "conv + reshape (-1, C*H*W)": lambda: _flatten_after_conv("reshape_minus1_k"),
    "conv + torch view chain": lambda: _flatten_after_conv("torch_chain"),
    "conv + Slice/Squeeze/Cast shape chain": lambda: _flatten_after_conv("slice_chain"),
    "softmax opset 13, default axis": lambda: _softmax(13, None),
    "softmax opset 11, axis 1 of rank 2": lambda: _softmax(11, 1),
    "softmax opset 13, channel axis of NCHW": lambda: _softmax(13, 1, rank4=True),
    "identity + dropout (ratio input)": lambda: _identity_dropout(13),
    "identity + dropout opset 10 (mask unused)": lambda: _identity_dropout(10),
    "constant node as weight": _constant_weight,
    "residual, identity shortcut, relu": lambda: _residual(False),
    "residual, 1x1 strided shortcut, no activation": lambda: _residual(True, activation=None),
    "residual, shortcut first in Add": lambda: _residual(True, swap=True),
    "residual, Sigmoid activation": lambda: _residual(False, activation="Sigmoid"),
    "nested and consecutive residuals": _two_residuals_nested,
    "dead constant computation ignored": lambda: _with_dead_constant_node(*_gemm(1, (5,))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_graph_matches_onnxruntime(case):
    proto, x, types = CASES[case]()
    model = _check(proto, x)
    if types is not None:
        assert _types(model) == types, model


def test_supported_ops_are_all_covered():
    """Every op the importer lists appears in a case above."""
    seen = {n.op_type for build in CASES.values() for n in build()[0].graph.node}
    assert {op.split(" ")[0] for op in SUPPORTED_OPS} <= seen


def test_structure_reads_like_the_source():
    model = build_float_model(_residual(True)[0])
    block = model[0]
    assert isinstance(block, nn.Residual)
    assert _types(block.body) == ["Conv2d", "ReLU", "Conv2d"]
    assert _types(block.shortcut) == ["Conv2d"]
    assert isinstance(block.activation, nn.ReLU)
    ident = build_float_model(_residual(False, activation=None)[0])[0]
    assert ident.shortcut is None and ident.activation is None
    gap = build_float_model(_gap(None)[0])[0]
    assert gap.keepdims  # alone: ONNX's (N, C, 1, 1)
    assert not build_float_model(_gap("flatten")[0])[0].keepdims  # with its flatten: (N, C)
    assert isinstance(build_float_model(_clip(0.0, 6.0)[0])[0], nn.ReLU6)
    hard = build_float_model(_clip(-1.0, 2.0)[0])[0]
    assert type(hard) is nn.Hardtanh and (hard.min_val, hard.max_val) == (-1.0, 2.0)
    bn = build_float_model(_conv_bn_relu()[0])[1]
    assert bn.eps == float(F32(1e-3))  # the file's float32 attribute, as ONNX Runtime reads it
    drop = build_float_model(_identity_dropout(13)[0])[1]
    assert drop.p == 0.25


def test_weights_are_copies_and_the_model_trains():
    """The model owns its arrays (editing it leaves the proto alone) and can be fine-tuned with nn.fit."""
    proto, x, _ = _conv_bn_relu()
    model = build_float_model(proto)
    w0 = numpy_helper.to_array(proto.graph.initializer[0]).copy()
    model.train()
    nn.fit(nn.Sequential(model, nn.GlobalAvgPool2d()), x, np.array([0, 1]), epochs=1, batch_size=2, progress=False)
    assert not np.array_equal(model[0].weight.value, w0)
    np.testing.assert_array_equal(numpy_helper.to_array(proto.graph.initializer[0]), w0)


# ------------------------------------------------------------------------------------------
# (b) The bundled models, exported by PyTorch
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from refquant.data import load_digits
    return load_digits("test")


def _leaf_types(model) -> collections.Counter:
    return collections.Counter(type(m).__name__ for _, m in model.named_modules()
                               if not isinstance(m, (nn.Sequential, nn.Identity)))


@pytest.mark.parametrize("fold", [True, False], ids=["bn-folded", "bn-kept"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "mobilenet"])
def test_bundled_model_exported_by_torch(name, fold, digits):
    pytest.importorskip("torch")
    from support.onnx_float_export import bundled_float_onnx

    from refquant import passes
    from refquant.models import load_reference_model

    x, labels = digits
    data = bundled_float_onnx(name, fold=fold)
    proto = onnx.load_from_string(data)
    ops = {n.op_type for n in proto.graph.node}
    assert ("BatchNormalization" in ops) == (not fold and name != "mlp")
    model = build_float_model(proto)
    ref = load_reference_model(name)
    ref.eval()
    exported = passes.fold_batch_norm(ref) if fold else ref  # the model torch's twin copied
    assert _leaf_types(model) == _leaf_types(exported)
    got, want, onnx_out = model(x), ref(x), _ort(proto, x)
    assert got.shape == want.shape == (len(x), 10) and got.dtype == np.float32
    # the same layers with the same float32 weights run by the same NumPy code: the same bits
    np.testing.assert_array_equal(got, exported(x), err_msg="imported vs the model that was exported")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg="imported vs the refquant model")
    np.testing.assert_allclose(got, onnx_out, rtol=RTOL, atol=ATOL, err_msg="imported vs ONNX Runtime")
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    np.testing.assert_array_equal(got.argmax(1), onnx_out.argmax(1))
    assert (got.argmax(1) == labels).mean() > 0.9


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_imported_model_quantizes_like_the_original(name, digits):
    """refquant's PTQ flow on the imported model gives the integer model it gives on the original."""
    pytest.importorskip("torch")
    from support.onnx_float_export import bundled_float_onnx

    from refquant import ptq
    from refquant.models import load_reference_model

    x, _ = digits
    imported = build_float_model(onnx.load_from_string(bundled_float_onnx(name, fold=False)))
    original = load_reference_model(name)
    got, want = (ptq.quantize_static(m, x[:64], profile="onnxruntime").run(x) for m in (imported, original))
    assert got.shape == want.shape == (len(x), 10)
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------------
# (c) Refusals: each names the node and its op
# ------------------------------------------------------------------------------------------

def _one(op, inputs=("x",), inits=(), in_shape=("N", 3, 4, 4), opset=17, outputs=("y",), **attrs):
    node = helper.make_node(op, list(inputs), list(outputs), name="bad", **attrs)
    return _model([node], list(inits), list(in_shape), opset=opset)


def _after_relu(op, inputs=("r",), inits=(), in_shape=("N", 3, 4, 4), opset=17, **attrs):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node(op, list(inputs), ["y"], name="bad", **attrs)]
    return _model(nodes, list(inits), list(in_shape), opset=opset)


def _fork(join_op, **attrs):
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], name="gate"),
             helper.make_node(join_op, ["x", "s"], ["y"], name="bad", **attrs)]
    return _model(nodes, [], ["N", 3, 4, 4])


def _dropout_mask_read():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="bad"),
             helper.make_node("Cast", ["mask"], ["mf"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["d", "mf"], ["y"], name="join")]
    return _model(nodes, [], ["N", 3])


def _reshape(target, in_shape=("N", 3, 4, 4)):
    return _one("Reshape", ["x", "t"], [_c("t", target)], in_shape=in_shape)


def _shape_by_mul():
    nodes = [helper.make_node("Shape", ["x"], ["shp"], name="shape"),
             helper.make_node("Mul", ["two", "two"], ["t"], name="mul"),
             helper.make_node("Reshape", ["x", "t"], ["y"], name="bad")]
    return _model(nodes, [_c("two", [2, -1])], ["N", 3, 4, 4])


def _dead_branch():
    nodes = [helper.make_node("Sigmoid", ["x"], ["dead"], name="bad"),
             helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return _model(nodes, [], ["N", 3])


def _three_readers():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="bad"), helper.make_node("Tanh", ["x"], ["b"], name="t"),
             helper.make_node("Sigmoid", ["x"], ["c"], name="s"), helper.make_node("Add", ["a", "b"], ["ab"], name="j1"),
             helper.make_node("Add", ["ab", "c"], ["y"], name="j2")]
    return _model(nodes, [], ["N", 3])


def _not_rejoined():
    """Branches from x meet in two different Adds."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Sigmoid", ["x"], ["s"], name="s"),
             helper.make_node("Add", ["r", "s"], ["a"], name="bad"), helper.make_node("Add", ["a", "r"], ["y"], name="j2")]
    return _model(nodes, [], ["N", 3])


def _broadcast_residual():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Add", ["x", "g"], ["y"], name="bad")]
    return _model(nodes, [], ["N", 3, 4, 4])


def _output_also_read():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu"), helper.make_node("Relu", ["y"], ["z"], name="bad")]
    return _model(nodes, [], ["N", 3])


def _two_inputs():
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("x", "x2")]
    return _model([helper.make_node("Add", ["x", "x2"], ["y"], name="bad")], [], None, inputs=ins)


def _two_outputs():
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "y2")]
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="bad"), helper.make_node("Tanh", ["x"], ["y2"], name="t")]
    return _model(nodes, [], ["N", 3], outputs=outs)


def _unknown_rank_bn():
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
    inits = [_w(n, (3,)) for n in ("s", "b", "m")] + [numpy_helper.from_array(np.ones(3, F32), "v")]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bad")
    return _model([node], inits, None, inputs=inputs)


def _shape_chain(bad_node, inits=(), in_shape=("N", 3, 4, 4)):
    """``bad_node`` (named ``bad``) computes the target ``t`` of ``Reshape(x, t)``."""
    return _model([bad_node, helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape")], list(inits),
                  None if in_shape is None else list(in_shape),
                  inputs=None if in_shape else [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)])


REFUSALS = {
    # name: (model builder, words the message must contain besides the node's name)
    "unsupported op": (lambda: _one("LeakyRelu"), ["LeakyRelu", "supported ops", "Conv", "Softmax"]),
    "contrib domain": (lambda: _model([helper.make_node("Gelu", ["x"], ["y"], name="bad", domain="com.microsoft")],
                                      [], ["N", 3]), ["Gelu", "com.microsoft"]),
    "gemm alpha": (lambda: _one("Gemm", ["x", "B"], [_w("B", (3, 2))], ["N", 3], alpha=2.0), ["Gemm", "alpha"]),
    "gemm transA": (lambda: _one("Gemm", ["x", "B"], [_w("B", (3, 2))], ["N", 3], transA=1), ["Gemm", "transA"]),
    "gemm beta": (lambda: _one("Gemm", ["x", "B", "C"], [_w("B", (3, 2)), _w("C", (2,))], ["N", 3], beta=0.5),
                  ["Gemm", "beta"]),
    "gemm bias per row": (lambda: _one("Gemm", ["x", "B", "C"], [_w("B", (3, 2)), _w("C", (4, 2))], ["N", 3]),
                          ["Gemm", "C", "(4, 2)"]),
    "gemm weight from the input": (lambda: _fork("Gemm"), ["Gemm", "joins two branches"]),
    "matmul rank 3": (lambda: _one("MatMul", ["x", "B"], [_w("B", (4, 2))], ["N", 3, 4]), ["MatMul", "rank-3"]),
    "matmul float16 weight": (lambda: _one("MatMul", ["x", "B"], [numpy_helper.from_array(
        np.ones((3, 2), np.float16), "B")], ["N", 3]), ["MatMul", "float32", "float16"]),
    "conv 1-D": (lambda: _one("Conv", ["x", "W"], [_w("W", (2, 3, 3))], ["N", 3, 8]), ["Conv", "2-D"]),
    "conv 3-D": (lambda: _one("Conv", ["x", "W"], [_w("W", (2, 3, 1, 1, 1))], ["N", 3, 2, 2, 2]), ["Conv", "2-D"]),
    "conv weight not evaluated": (lambda: _model(
        [helper.make_node("Relu", ["W0"], ["W"], name="weight_relu"), _conv("x", "W", "y", name="bad")],
        [_w("W0", (2, 3, 1, 1))], ["N", 3, 4, 4]), ["Conv", "weight_relu", "not evaluated"]),
    "conv SAME with unknown size": (lambda: _one("Conv", ["x", "W"], [_w("W", (2, 3, 3, 3))], ["N", 3, "H", "W"],
                                                 auto_pad="SAME_UPPER"), ["Conv", "SAME_UPPER"]),
    "bn training mode": (lambda: _one("BatchNormalization", ["x", "s", "b", "m", "v"],
                                      [_w(n, (3,)) for n in "sbmv"], training_mode=1),
                         ["BatchNormalization", "training_mode"]),
    "bn unknown rank": (_unknown_rank_bn, ["BatchNormalization", "unknown rank"]),
    "clip max only": (lambda: _one("Clip", ["x", "", "hi"], [numpy_helper.from_array(F32(6), "hi")]),
                      ["Clip", "one side"]),
    "clip min > max": (lambda: _one("Clip", ["x", "lo", "hi"], [numpy_helper.from_array(F32(2), "lo"),
                                                                 numpy_helper.from_array(F32(1), "hi")]),
                       ["Clip", "Hardtanh"]),
    "clip bound from the input": (lambda: _model(
        [helper.make_node("Relu", ["x"], ["m"], name="relu"),
         helper.make_node("Clip", ["x", "", "m"], ["y"], name="bad")], [], ["N", 3]), ["Clip", "joins two branches"]),
    "maxpool asymmetric pads": (lambda: _one("MaxPool", kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
                                ["MaxPool", "both sides"]),
    "maxpool pads over half the kernel": (lambda: _one("MaxPool", kernel_shape=[4, 4], pads=[3, 3, 3, 3],
                                                       in_shape=("N", 3, 8, 8)), ["MaxPool", "MaxPool2d", "padding"]),
    "maxpool partial ceil window": (lambda: _one("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
                                                 in_shape=("N", 3, 5, 5)), ["MaxPool", "ceil_mode"]),
    "maxpool indices": (lambda: _one("MaxPool", outputs=("y", "idx"), kernel_shape=[2, 2]), ["MaxPool", "Indices"]),
    "maxpool 1-D": (lambda: _one("MaxPool", kernel_shape=[2], in_shape=("N", 3, 8)), ["MaxPool", "2-D"]),
    "avgpool dilation": (lambda: _one("AveragePool", kernel_shape=[2, 2], dilations=[2, 2], opset=19),
                         ["AveragePool", "dilation"]),
    "global pool rank 3": (lambda: _one("GlobalAveragePool", in_shape=("N", 3, 8)), ["GlobalAveragePool", "rank 3"]),
    "flatten axis 2": (lambda: _one("Flatten", axis=2), ["Flatten", "axis"]),
    "flatten axis 0": (lambda: _one("Flatten", axis=0), ["Flatten", "axis"]),
    "reshape to rank 3": (lambda: _reshape([0, 3, 16]), ["Reshape", "(N, -1)"]),
    "reshape fixed batch": (lambda: _reshape([1, -1]), ["Reshape", "(N, -1)"]),
    "reshape wrong K": (lambda: _reshape([-1, 12]), ["Reshape", "(-1, C·H·W)"]),
    "reshape shape not evaluated": (_shape_by_mul, ["Reshape", "mul", "not evaluated"]),
    "shape of a tensor of unknown rank": (lambda: _shape_chain(helper.make_node("Shape", ["x"], ["t"], name="bad"),
                                                                in_shape=None), ["Shape", "rank", "unknown"]),
    "gather out of range": (lambda: _shape_chain(helper.make_node("Gather", ["c", "i"], ["t"], name="bad"),
                                                 [_c("c", [2, -1]), _c("i", [0, 5])]), ["Gather", "evaluated"]),
    "negative slice step": (lambda: _shape_chain(helper.make_node("Slice", ["c", "s", "e", "a", "st"], ["t"],
                                                                  name="bad"),
                                                 [_c("c", [-1, 48, 2]), _c("s", [1]), _c("e", [-9]), _c("a", [0]),
                                                  _c("st", [-1])]), ["Slice", "step"]),
    "shape cast to float": (lambda: _model(
        [helper.make_node("Shape", ["x"], ["shp"], name="shape"),
         helper.make_node("Cast", ["shp"], ["t"], name="bad", to=TensorProto.FLOAT),
         helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape")], [], ["N", 3]), ["Cast", "integer"]),
    "string constant": (lambda: _shape_chain(helper.make_node("Constant", [], ["t"], name="bad",
                                                              value_string="2")), ["Constant", "numeric"]),
    "softmax opset 11 on NCHW": (lambda: _one("Softmax", opset=11, axis=1), ["Softmax", "opset 13"]),
    "dropout training": (lambda: _one("Dropout", ["x", "r", "t"], [numpy_helper.from_array(F32(0.5), "r"),
                                                                   numpy_helper.from_array(np.array(True), "t")]),
                         ["Dropout", "training_mode"]),
    "dropout mask read": (_dropout_mask_read, ["Dropout", "mask"]),
    "add of a constant": (lambda: _after_relu("Add", ["r", "c"], [_w("c", (3, 4, 4))]), ["Add", "constant"]),
    "mul by a constant": (lambda: _after_relu("Mul", ["r", "c"], [_w("c", (3, 4, 4))]), ["Mul", "no elementwise"]),
    "mul gate x*sigmoid(x)": (lambda: _fork("Mul"), ["Mul", "multiplies two tensors"]),
    "concat of branches": (lambda: _fork("Concat", axis=1), ["Concat", "concatenates"]),
    "concat with a constant": (lambda: _after_relu("Concat", ["r", "c"], [_w("c", (1, 3, 4, 4))], axis=1),
                               ["Concat", "concatenation"]),
    "add of x with itself": (lambda: _one("Add", ["x", "x"]), ["Add", "twice"]),
    "branch to nowhere": (_dead_branch, ["Sigmoid", "dead-end"]),
    "tensor read by three nodes": (_three_readers, ["Relu", "3 nodes"]),
    "branches not rejoined": (_not_rejoined, ["Add", "do not rejoin"]),
    "broadcasting residual": (_broadcast_residual, ["Add", "broadcasts"]),
    "output read by a node": (_output_also_read, ["Relu", "also read"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal_names_node_and_op(case):
    build, words = REFUSALS[case]
    with pytest.raises(UnsupportedError) as info:
        build_float_model(build())
    msg = str(info.value)
    assert "'bad'" in msg or "bad" in words, msg
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"


@pytest.mark.parametrize("build, words", [
    (_two_inputs, ["one input", "x2"]),
    (_two_outputs, ["one output", "y2"]),
    (lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [], ["N", 3], in_dtype=TensorProto.DOUBLE),
     ["input", "float32", "DOUBLE"]),
    (lambda: _model([], [_w("c", (2, 3))], ["N", 3], out="c"), ["output 'c' is a constant"]),
    (lambda: _model([], [], ["N", 3], out="x", opset=None), ["no opset of the default ONNX domain"]),
    (lambda: _model([], [], ["N", 3], out="x"), None),  # no node: the identity, accepted
], ids=["two inputs", "two outputs", "float64 input", "constant output", "no default opset", "empty graph"])
def test_graph_level_checks(build, words):
    if words is None:
        model = build_float_model(build())
        assert len(model) == 0
        return
    with pytest.raises(UnsupportedError) as info:
        build_float_model(build())
    for w in words:
        assert w in str(info.value), str(info.value)


def test_not_a_model_proto():
    with pytest.raises(QuantizationTypeError, match="proto must be an onnx.ModelProto"):
        build_float_model(b"\x08\x07")

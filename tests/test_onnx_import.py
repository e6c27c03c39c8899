"""``refquant.interop.onnx.import_quantized``: ONNX Runtime's graph rewrites, round trips, bad input.

The rewrite rules (which QDQ groups ONNX Runtime fuses into integer kernels, which int8 pairs it
turns into uint8, which Relu/Clip it drops) are checked on small hand-written QDQ graphs, each run
by ONNX Runtime (CPU EP, 1 thread, default optimization level) and by refquant with ``==``; where
ONNX Runtime leaves a Conv in float, refquant must refuse and name it. Models written by ONNX
Runtime's own quantizer are in ``test_conformance_onnx_import.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models, ptq
from refquant.errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, UnsupportedError
from refquant.qmodel import QuantizedModel

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from refquant.interop import onnx as rio  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.normal(0, 1.5, (5, 3, 6, 6)).astype(np.float32)
CAL = models.load_reference_model  # noqa: F841 (keeps the import used where torch-free)


def _model(nodes, inits, out_shape=("N", 4, 6, 6), opset=17, in_dtype=TensorProto.FLOAT) -> bytes:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_dtype, ["N", 3, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def _qdq(name, src, scale, zp, dtype):
    """Q then DQ of ``src`` with scalar parameters: returns (nodes, inits, output name)."""
    z = np.asarray(zp, dtype)
    inits = {f"{name}_s": np.float32(scale), f"{name}_z": z}
    return ([helper.make_node("QuantizeLinear", [src, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
             helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"])],
            inits, f"{name}_dq")


def _conv_group(x_dq, out, w_dtype=np.int8, relu=None):
    w = RNG.integers(-127, 128, (4, 3, 3, 3)).astype(w_dtype) if w_dtype == np.int8 else \
        RNG.integers(0, 256, (4, 3, 3, 3)).astype(w_dtype)
    inits = {"w": w, "w_s": np.full(4, 0.01, np.float32), "w_z": np.zeros(4, w_dtype) + (0 if w_dtype == np.int8 else 128),
             "b": RNG.integers(-500, 500, 4).astype(np.int32), "b_s": np.full(4, 0.0002, np.float32),
             "b_z": np.zeros(4, np.int32)}
    nodes = [helper.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["w_dq"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "b_s", "b_z"], ["b_dq"], axis=0),
             helper.make_node("Conv", [x_dq, "w_dq", "b_dq"], [out if relu is None else f"{out}_pre"], pads=[1, 1, 1, 1])]
    if relu == "Relu":
        nodes.append(helper.make_node("Relu", [f"{out}_pre"], [out]))
    elif relu == "Clip6":
        inits.update({"lo": np.float32(0), "hi": np.float32(6)})
        nodes.append(helper.make_node("Clip", [f"{out}_pre", "lo", "hi"], [out]))
    return nodes, inits


def _chain(act_dtype, out_zp, relu=None, second_reader=False, out_scale=0.05):
    """x -> Q/DQ -> Conv (+relu) -> Q/DQ -> y (+ a second reader of the conv's Q: an Add)."""
    zin = 0 if act_dtype == np.int8 else 128
    n1, i1, xdq = _qdq("in", "x", 0.02, zin, act_dtype)
    n2, i2 = _conv_group(xdq, "c", relu=relu)
    n3, i3, cdq = _qdq("out", "c", out_scale, out_zp, act_dtype)
    nodes, inits = n1 + n2 + n3, {**i1, **i2, **i3}
    if second_reader:
        nodes.append(helper.make_node("DequantizeLinear", ["out_q", "out_s", "out_z"], ["out_dq2"]))
        nodes.append(helper.make_node("Add", [cdq, "out_dq2"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [cdq], ["y"]))
    return _model(nodes, inits)


def _ort(model: bytes, x, optimized=None):
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if optimized:
        so.optimized_model_filepath = str(optimized)
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _ort_float_ops(model: bytes, tmp_path) -> list:
    _ort(model, X[:1], tmp_path / "opt.onnx")
    float_ops = {"Conv": "Conv", "FusedConv": "Conv", "Conv_nchwc": "Conv", "Add": "Add"}  # Conv+Relu -> FusedConv
    return [float_ops[n.op_type] for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node if n.op_type in float_ops]


CASES = [  # (id, act dtype, output zero point, relu, second reader, ORT fuses the Conv, output scale)
    ("u8", np.uint8, 128, None, False, True),
    ("s8-single-reader-becomes-u8", np.int8, 0, None, False, True),
    ("s8-two-readers-stays-float", np.int8, 0, None, True, False),
    ("u8-two-readers", np.uint8, 128, None, True, True),
    ("u8-relu-redundant", np.uint8, 0, "Relu", False, True),
    ("u8-relu-not-redundant", np.uint8, 10, "Relu", False, False),
    ("u8-clip6-redundant", np.uint8, 0, "Clip6", False, True, 6 / 255),
    ("u8-clip6-range-past-6", np.uint8, 0, "Clip6", False, False, 0.05),
    ("s8-relu-redundant", np.int8, -128, "Relu", False, True),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rewrite_rules_match_onnxruntime(case, tmp_path):
    _, dt, zp, relu, second, fused, *scale = case
    m = _chain(dt, zp, relu, second, *scale)
    assert ("Conv" not in _ort_float_ops(m, tmp_path)) == fused, "the test's expectation of ORT's fusion is wrong"
    if not fused:
        with pytest.raises(UnsupportedError, match=r"node .*\(Conv\).*float32"):
            rio.import_quantized(m)
        return
    qm = rio.import_quantized(m)
    assert "conv2d" in [n.op for n in qm]
    for x in (X, X * 4, X[:1], np.round(X / 0.02) * 0.02 + 0.01):  # in range, saturating, batch 1, ties
        x = np.ascontiguousarray(x, np.float32)
        np.testing.assert_array_equal(qm.run(x), _ort(m, x))


def test_unfused_float_add_runs_in_float():
    """An Add whose inputs differ in type (one int8 pair became uint8) stays float in ORT: exact IEEE adds."""
    m = _chain(np.uint8, 128, None, True)
    qm = rio.import_quantized(m)
    np.testing.assert_array_equal(qm.run(X), _ort(m, X))


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "mobilenet"])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_round_trip_of_exported_models(name, fmt, tmp_path):
    from refquant.data import load_digits
    x, _ = load_digits("test")
    qm = ptq.quantize_static(models.load_reference_model(name), x[:32], profile="onnxruntime")
    rio.export(qm, tmp_path / "m.onnx", format=fmt)
    back = rio.import_quantized(tmp_path / "m.onnx")
    np.testing.assert_array_equal(back.run(x), qm.run(x))
    assert back.metadata["input_shape"] == [1, 8, 8]
    back.save(tmp_path / "back.npz")
    np.testing.assert_array_equal(QuantizedModel.load(tmp_path / "back.npz").run(x[:3]), qm.run(x[:3]))


# ------------------------------------------------------------------------------------------- bad input


def test_bad_files(tmp_path):
    good = _chain(np.uint8, 128)
    with pytest.raises(FormatVersionError, match="not an ONNX model"):
        rio.import_quantized(good[: len(good) // 3])
    with pytest.raises(FormatVersionError, match="not an ONNX model"):
        rio.import_quantized(b"TFL3 this is not onnx" * 10)
    with pytest.raises(FileNotFoundError, match="no_such.onnx"):
        rio.import_quantized(tmp_path / "no_such.onnx")
    with pytest.raises(QuantizationTypeError, match="path_or_bytes"):
        rio.import_quantized(3)
    with pytest.raises(QuantizationValueError, match="profile"):
        rio.import_quantized(good, profile="tflite_reference")
    with pytest.raises(QuantizationValueError, match="isa"):
        rio.import_quantized(good, isa="neon")


def test_float_model_is_refused():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], {}, out_shape=("N", 3, 6, 6))
    with pytest.raises(UnsupportedError, match="float model; use import_float"):
        rio.import_quantized(m)


def test_unsupported_op_and_missing_initializer_are_named():
    n1, i1, xdq = _qdq("in", "x", 0.02, 128, np.uint8)
    m = _model(n1 + [helper.make_node("Erf", [xdq], ["e"], name="my_erf"),
                     helper.make_node("QuantizeLinear", ["e", "in_s", "in_z"], ["y"])], i1)
    with pytest.raises(UnsupportedError, match=r"node 'my_erf' \(Erf\)"):
        rio.import_quantized(m)
    m = _model(n1 + [helper.make_node("TopK", [xdq, "k"], ["y", "idx"], name="topk")], {**i1, "k": np.array([2])})
    with pytest.raises(UnsupportedError, match=r"node 'topk' \(TopK\).*QLinearConv"):
        rio.import_quantized(m)
    n1, i1, _ = _qdq("in", "x", 0.02, 128, np.uint8)
    del i1["in_s"]
    with pytest.raises(UnsupportedError, match="in_s"):
        rio.import_quantized(_model(n1 + [helper.make_node("Identity", ["in_dq"], ["y"])], i1))


def test_per_channel_activation_is_refused():
    inits = {"s": np.full(3, 0.02, np.float32), "z": np.full(3, 128, np.uint8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1)]
    with pytest.raises(UnsupportedError, match="per tensor"):
        rio.import_quantized(_model(nodes, inits, out_shape=("N", 3, 6, 6)))


def test_integer_input_is_refused():
    m = _model([helper.make_node("Identity", ["x"], ["y"])], {}, out_shape=("N", 3, 6, 6), in_dtype=TensorProto.UINT8)
    with pytest.raises(UnsupportedError, match="graph input 'x' has type uint8"):
        rio.import_quantized(m)

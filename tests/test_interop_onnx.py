"""``refquant.interop.onnx.export``: refquant's ``onnxruntime``-profile models written as ONNX, run in ONNX Runtime
1.32 (CPU execution provider, one intra-op thread, default optimization level ``ORT_ENABLE_ALL``), equal
``qmodel.run`` bit for bit (float32 outputs compared by their bits, ``==``).

* the four bundled models (``quantize_static(..., profile="onnxruntime")`` on the digits training set), both formats,
  on the 359 digits test images and at batch 1;
* what ORT ran: its optimized graph (``SessionOptions.optimized_model_filepath``) holds only QuantizeLinear,
  DequantizeLinear, the QLinear / com.microsoft integer ops and order-free data movement: every QDQ group fused, no
  float Conv / Gemm / Add / pool left;
* the file: opset and com.microsoft version recorded, atomic write;
* bad input: clear ``refquant.errors``.

Rerun: ``pytest tests/test_interop_onnx.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import copy
import functools
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from refquant import models, ptq
from refquant.data import load_digits
from refquant.errors import (
    QuantizationTypeError,
    QuantizationValueError,
    UnsupportedError,
)
from refquant.interop import onnx as rx
from refquant.qmodel import Node, QuantizedModel, TensorInfo

pytestmark = pytest.mark.conformance

MODELS = ("mlp", "cnn", "resnet", "mobilenet")
FORMATS = ("qoperator", "qdq")
_X_TRAIN, _ = load_digits("train")
X_TEST, _ = load_digits("test")  # (359, 1, 8, 8) float32

# What ORT's optimizer may leave in the graph: integer ops, the boundary Q/DQ, and data movement (its NCHW -> NHWC
# layout transform adds Transposes and turns MaxPool on codes into com.microsoft.NhwcMaxPool).
INTEGER_OPS = {("", "QuantizeLinear"), ("", "DequantizeLinear"), ("", "Flatten"), ("", "Transpose"),
               ("", "MaxPool"), ("", "QLinearConv"), ("com.microsoft", "QLinearConv"), ("com.microsoft", "QGemm"),
               ("com.microsoft", "QLinearAdd"), ("com.microsoft", "QLinearGlobalAveragePool"),
               ("com.microsoft", "NhwcMaxPool")}


@functools.cache
def _qmodel(name: str) -> QuantizedModel:
    return ptq.quantize_static(models.load_reference_model(name), _X_TRAIN, profile="onnxruntime")


def _session(path, optimized):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(optimized)
    so.log_severity_level = 3  # ORT warns that an NCHWc-optimized file is CPU-specific
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def assert_same_bits(ref: np.ndarray, got: np.ndarray, what: str) -> None:
    assert (got.shape, got.dtype) == (ref.shape, ref.dtype), f"{what}: shape/dtype {got.shape} {got.dtype}"
    bad = np.flatnonzero(ref.view(np.uint32) != got.view(np.uint32))
    assert bad.size == 0, (f"{what}: {bad.size} of {ref.size} outputs differ; first at flat index {bad[:5]}: "
                           f"refquant {ref.reshape(-1)[bad[:5]]}, ORT {got.reshape(-1)[bad[:5]]}")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_export_runs_bit_exact_in_onnxruntime(name, fmt, tmp_path):
    qm = _qmodel(name)
    path = tmp_path / f"{name}.onnx"
    rx.export(qm, path, format=fmt)
    sess = _session(path, tmp_path / "optimized.onnx")
    ran = [(n.domain if n.domain != "ai.onnx" else "", n.op_type)
           for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert set(ran) <= INTEGER_OPS, f"{name} {fmt}: ORT left {sorted(set(ran) - INTEGER_OPS)} unfused: {ran}"
    convs = sum(n.op == "conv2d" for n in qm.nodes)
    assert sum(op.endswith("QLinearConv") for _, op in ran) == convs
    assert sum(op == "QGemm" for _, op in ran) == sum(n.op == "linear" for n in qm.nodes)
    for x in (X_TEST, X_TEST[:1]):
        assert_same_bits(qm.run(x), sess.run(None, {qm.inputs[0]: x})[0], f"{name} {fmt} batch {len(x)}")


def test_file_records_opset_domain_and_profile(tmp_path):
    path = tmp_path / "mlp.onnx"
    rx.export(_qmodel("mlp"), path, format="qoperator")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {o.domain: o.version for o in proto.opset_import} == {"": rx.OPSET, "com.microsoft": rx.MS_DOMAIN_VERSION}
    assert (rx.OPSET, rx.MS_DOMAIN_VERSION) == (21, 1)
    props = {p.key: p.value for p in proto.metadata_props}
    assert (props["refquant_profile"], props["refquant_format"]) == ("onnxruntime", "qoperator")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_qdq_graph_is_float_ops_between_q_and_dq(tmp_path):
    path = tmp_path / "cnn.onnx"
    rx.export(_qmodel("cnn"), path)  # the default format is QDQ
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Conv", "Gemm", "MaxPool", "GlobalAveragePool"} <= set(ops)
    assert not any(op.startswith("QLinear") or op == "QGemm" for op in ops)


def test_another_profile_is_refused_by_name(tmp_path):
    qm = ptq.quantize_static(models.load_reference_model("mlp"), _X_TRAIN[:64], profile="tflite_reference")
    with pytest.raises(UnsupportedError, match="'onnxruntime'.*got 'tflite_reference'"):
        rx.export(qm, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_fused_activation_is_refused_naming_the_node(tmp_path):
    qm = copy.deepcopy(_qmodel("mlp"))
    qm.nodes[2].attrs["activation"] = "RELU"
    with pytest.raises(UnsupportedError, match=f"node '{qm.nodes[2].name}' \\(linear\\).*'RELU'"):
        rx.export(qm, tmp_path / "m.onnx", format="qoperator")
    assert list(tmp_path.iterdir()) == []


def test_node_not_exported_is_refused_naming_the_node(tmp_path):
    t = {"x": TensorInfo("x", "float32"), "q": TensorInfo("q", "uint8", 0.1, 3),
         "c": TensorInfo("c", "uint8", 0.1, 3), "y": TensorInfo("y", "float32")}
    nodes = [Node("quant", "quantize", ("x",), "q"), Node("relu6", "clamp", ("q",), "c", {"activation": "RELU6"}),
             Node("deq", "dequantize", ("c",), "y")]
    qm = QuantizedModel(nodes, t, ["x"], ["y"], profile="onnxruntime")
    with pytest.raises(UnsupportedError, match="node 'relu6': op 'clamp' is not exported"):
        rx.export(qm, tmp_path / "m.onnx", input_shape=(4,))
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path):
    qm = _qmodel("mlp")
    with pytest.raises(QuantizationValueError, match="format"):
        rx.export(qm, tmp_path / "m.onnx", format="qlinear")
    with pytest.raises(QuantizationTypeError, match="qmodel must be a QuantizedModel"):
        rx.export("model", tmp_path / "m.onnx")
    with pytest.raises(QuantizationValueError, match="path must name a file"):
        rx.export(qm, tmp_path)
    with pytest.raises(QuantizationTypeError, match="path must be a str or an os.PathLike"):
        rx.export(qm, 3)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import refquant.qmodel.storage as S  # the one atomic writer every exporter uses

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(S.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        rx.export(_qmodel("mlp"), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(UnsupportedError, match="pip install onnx"):
        rx.export(_qmodel("mlp"), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []

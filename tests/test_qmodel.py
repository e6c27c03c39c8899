"""The integer model: running, integer in/out, inspection, size, files, and bad input."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import refquant

from refquant.errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.ops import layers
from refquant.qmodel import Node, QuantizedModel, TensorInfo
from refquant.quantization import dequantize, quantize

RNG = np.random.default_rng(7)


def _linear_model(profile="tflite_reference", bits=None, bias=True):
    """input (float) -> quantize -> linear (int8, per-channel, RELU) -> dequantize."""
    w = RNG.integers(-127, 128, size=(5, 7)).astype(np.int8)
    params = {"weight": w, "weight_scale": RNG.uniform(0.001, 0.01, 5).astype(np.float32),
              "weight_zero_point": np.zeros(5, np.int8)}
    if bias:
        params["bias"] = RNG.integers(-1000, 1000, 5).astype(np.int32)
    attrs = {"activation": "RELU"} | ({"bits": bits} if bits else {})
    tensors = [TensorInfo("x", "float32"), TensorInfo("xq", "int8", 0.02, -3), TensorInfo("yq", "int8", 0.05, -128),
               TensorInfo("y", "float32")]
    nodes = [Node("q", "quantize", ["x"], "xq"), Node("fc", "linear", ["xq"], "yq", attrs, params),
             Node("dq", "dequantize", ["yq"], "y")]
    return QuantizedModel(nodes, tensors, ["x"], ["y"], profile=profile)


def test_run_is_quantize_ops_dequantize():
    qm = _linear_model()
    x = RNG.normal(size=(4, 7)).astype(np.float32)
    fc = qm.node("fc")
    xq = quantize(x, qm.qparams("xq"), "tflite_reference")
    yq = layers.linear(xq, np.float32(0.02), -3, fc.params["weight"], fc.params["weight_scale"], 0,
                       fc.params["bias"], np.float32(0.05), -128, profile="tflite_reference", activation="RELU")
    y = qm.run(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, dequantize(yq, qm.qparams("yq"), "tflite_reference"))
    np.testing.assert_array_equal(qm.run_codes(xq), yq)
    t = qm.trace(x)
    np.testing.assert_array_equal(t["yq"], yq)
    assert set(t) == {"x", "xq", "yq", "y"}


def test_repeated_calls_same_answer_and_iteration():
    qm = _linear_model()
    x = RNG.normal(size=(3, 7)).astype(np.float32)
    np.testing.assert_array_equal(qm.run(x), qm.run(x))
    assert [n.op for n in qm] == ["quantize", "linear", "dequantize"]
    assert len(qm) == 3 and "linear" in qm.summary() and "profile='tflite_reference'" in repr(qm)


def test_nbytes_exact():
    qm = _linear_model()
    # weight 35 int8 + 5 float32 scales + 5 int8 zero points + 5 int32 bias + tensors (4 + 1) * 2
    assert qm.nbytes == 35 + 20 + 5 + 20 + 2 * 5
    q4 = _linear_model(bits=4)
    assert q4.nbytes == 18 + 20 + 5 + 20 + 2 * 5  # 35 int4 codes packed in 18 bytes


@pytest.mark.parametrize("bits", [None, 4])
def test_save_load_roundtrip(tmp_path, bits):
    qm = _linear_model(bits=bits)
    if bits == 4:  # int4 codes must fit the nibble
        qm.node("fc").params["weight"] = np.clip(qm.node("fc").params["weight"], -8, 7).astype(np.int8)
    path = tmp_path / "m.npz"
    qm.save(path)
    back = QuantizedModel.load(path)
    x = RNG.normal(size=(6, 7)).astype(np.float32)
    np.testing.assert_array_equal(back.run(x), qm.run(x))
    assert back.nbytes == qm.nbytes and back.profile == qm.profile
    for a, b in zip(qm, back):
        assert a.name == b.name and a.op == b.op
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
            assert a.params[k].dtype == b.params[k].dtype


def _rewrite(path, out, edit_header=None, drop=None, replace=None):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]).decode())
    if edit_header:
        edit_header(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    if drop:
        del arrays[drop]
    if replace:
        arrays.update(replace)
    np.savez(out, **arrays)


def test_load_rejects_other_versions_and_disagreeing_arrays(tmp_path):
    qm = _linear_model()
    path = tmp_path / "m.npz"
    qm.save(path)
    bad = tmp_path / "bad.npz"
    _rewrite(path, bad, edit_header=lambda h: h.update(format_version=99))
    with pytest.raises(FormatVersionError, match="format_version must be 1"):
        QuantizedModel.load(bad)
    _rewrite(path, bad, replace={"p0": np.zeros((5, 6), np.int8)})
    with pytest.raises(FormatVersionError, match="header says int8 \\[5, 7\\]"):
        QuantizedModel.load(bad)
    _rewrite(path, bad, drop="p1")
    with pytest.raises(FormatVersionError, match="missing"):
        QuantizedModel.load(bad)
    _rewrite(path, bad, edit_header=lambda h: h.update(format="something"))
    with pytest.raises(FormatVersionError, match="format must be"):
        QuantizedModel.load(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatVersionError):
        QuantizedModel.load(tmp_path / "junk.npz")


def test_pickled_arrays_are_refused(tmp_path):
    qm = _linear_model()
    path = tmp_path / "m.npz"
    qm.save(path)
    bad = tmp_path / "obj.npz"
    _rewrite(path, bad, replace={"p0": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(FormatVersionError):
        QuantizedModel.load(bad)


def test_failed_save_leaves_nothing(tmp_path):
    qm = _linear_model()
    qm.node("fc").params["weight"] = np.zeros((5, 7), np.complex64)  # not storable
    path = tmp_path / "m.npz"
    with pytest.raises(QuantizationValueError, match="dtype must be one of"):
        qm.save(path)
    assert list(tmp_path.iterdir()) == []


def test_saved_file_is_plain_npz(tmp_path):
    qm = _linear_model()
    qm.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert sorted(z.namelist()) == ["header.npy", "p0.npy", "p1.npy", "p2.npy", "p3.npy"]


def test_bad_inputs_are_named():
    qm = _linear_model()
    # an input read only by quantize nodes: NaN / Inf are quantized as the runtime quantizes them
    x = np.array([[np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, 1.0]], np.float32)
    want = refquant.quantize(x, qm.tensors["xq"].qparams, qm.resolved_profile)
    np.testing.assert_array_equal(qm.trace(x)["xq"], want)
    # any other reader needs finite values (a float layer)
    w = RNG.normal(size=(5, 7)).astype(np.float32)
    float_qm = QuantizedModel([Node("fc", "linear", ["x"], "y", {}, {"weight": w})],
                              [TensorInfo("x", "float32"), TensorInfo("y", "float32")], ["x"], ["y"],
                              profile="tflite_reference")
    with pytest.raises(QuantizationValueError, match="'x' must be finite"):
        float_qm.run(np.full((1, 7), np.nan, np.float32))
    with pytest.raises(QuantizationTypeError):
        qm.run(np.array([["a"] * 7]))
    with pytest.raises(ShapeError, match="batch dimension"):
        qm.run(np.float32(1.0))
    with pytest.raises(QuantizationValueError, match="keys"):
        qm.run({"nope": np.zeros((1, 7), np.float32)})
    with pytest.raises(QuantizationTypeError):
        qm.run_codes(np.zeros((1, 7), np.uint8))  # the integer input is int8
    with pytest.raises(QuantizationValueError, match="node names"):
        qm.node("nope")


def test_empty_batch_runs():
    qm = _linear_model()
    assert qm.run(np.zeros((0, 7), np.float32)).shape == (0, 5)


def test_graph_checks():
    t = [TensorInfo("x", "float32"), TensorInfo("y", "float32")]
    with pytest.raises(QuantizationValueError, match="reads tensor 'z'"):
        QuantizedModel([Node("a", "flatten", ["z"], "y")], t, ["x"], ["y"], profile="onnx")
    with pytest.raises(QuantizationValueError, match="op must be one of"):
        Node("a", "nope", ["x"], "y")
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        QuantizedModel([Node("a", "flatten", ["x"], "y")], t, ["x"], ["y"], profile="nope")
    with pytest.raises(QuantizationValueError, match="integer tensor has a scale"):
        TensorInfo("q", "int8")
    with pytest.raises(QuantizationValueError, match="zero_point"):
        TensorInfo("q", "int8", 0.1, 300)
    with pytest.raises(QuantizationValueError, match="not computed"):
        QuantizedModel([Node("a", "flatten", ["x"], "y")], t, ["x"], ["w"], profile="onnx")


def test_node_errors_name_the_node():
    qm = _linear_model(profile="tflite_optimized")
    tensors = dict(qm.tensors)
    a = TensorInfo("a", "uint8", 0.1, 0)  # the optimized uint8 ADD is not modelled: the node raises
    tensors["a"] = a
    tensors["s"] = TensorInfo("s", "uint8", 0.1, 0)
    m = QuantizedModel([Node("sum", "add", ["a", "a"], "s")], tensors, ["a"], ["s"], profile="tflite_optimized")
    with pytest.raises(Exception, match="node 'sum' \\(add\\)") as info:
        m.run(np.zeros((1, 4), np.uint8))
    assert info.value.node == "sum"


def test_saved_file_has_an_ordinary_files_mode(tmp_path):
    """The temporary file (mode 0600) is given the mode a plain open() would give before the rename."""
    import os
    qm = _linear_model()
    qm.save(tmp_path / "m.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o666 & ~mask

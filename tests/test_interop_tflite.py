"""``refquant.interop.tflite``: ``.tflite`` models imported and run as LiteRT runs them, and refquant's models exported
to ``.tflite``, compared with LiteRT 2.3.0 bit for bit (``==``; float32 outputs by their bits).

* the TFLite converter's fixtures (``tests/fixtures/tflite/``: int8 mlp / cnn / resnet / mobilenet, their 16x8 twins
  and ``cnn_16x8_int16io``) imported with each ``kernel`` equal LiteRT's interpreter with the matching resolver
  (``reference``: BUILTIN_REF, ``xnnpack``: BUILTIN, ``optimized``: BUILTIN_WITHOUT_DEFAULT_DELEGATES) on 359
  digits test images;
* multi-operator int8 graphs written here through the schema (:mod:`support.tflite_multi`: MUL, CONCATENATION,
  SOFTMAX, LOGISTIC, TANH, AVERAGE_POOL_2D, PAD, a broadcast ADD with a constant operand, two inputs, two outputs);
* ``export`` of ``quantize_static`` models (the four bundled models, int8 and ``int16_layers="all"``) run in LiteRT
  equal ``qmodel.run``;
* bad input: clear ``refquant.errors``.

Rerun: ``pytest tests/test_interop_tflite.py -p no:cacheprovider -q``
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from support.tflite_builder import Graph  # noqa: E402
from support.tflite_graph import read_graph, run_graph  # noqa: E402
from support.tflite_multi import mixed_graph, pack  # noqa: E402

from refquant import models, ptq  # noqa: E402
from refquant.backends import tflite as face  # noqa: E402
from refquant.data import load_digits  # noqa: E402
from refquant.errors import FormatVersionError, QuantizationTypeError, QuantizationValueError, UnsupportedError  # noqa: E402
from refquant.interop import tflite  # noqa: E402

pytestmark = [pytest.mark.conformance,
              pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")]

FIXTURES = Path(__file__).parent / "fixtures" / "tflite"
NAMES = ("mlp", "cnn", "resnet", "mobilenet", "mlp_16x8", "cnn_16x8", "resnet_16x8", "mobilenet_16x8",
         "cnn_16x8_int16io")
RESOLVER = {"reference": "ref", "xnnpack": "xnnpack", "optimized": "builtin"}
X_TEST = load_digits("test")[0][:359]  # (359, 1, 8, 8) float32
X_NHWC = np.ascontiguousarray(X_TEST.transpose(0, 2, 3, 1))
X_CAL = load_digits("train")[0][:256]


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == np.float32 else a


def assert_same(got, want, what: str):
    """Shape, dtype, then values (float32 by bits); the first differences shown side by side."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != LiteRT {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != LiteRT {want.dtype}"
    bad = np.argwhere(_bits(got) != _bits(want))
    rows = ", ".join(f"{tuple(map(int, i))}: {got[tuple(i)]!r} vs {want[tuple(i)]!r}" for i in bad[:4])
    assert not bad.size, f"{what}: NOT OK, {len(bad)} of {got.size} differ (refquant vs LiteRT: {rows})"


@functools.cache
def _content(name: str) -> bytes:
    return (FIXTURES / f"{name}.tflite").read_bytes()


def _fixture_input(name: str) -> np.ndarray:
    g = read_graph(_content(name))
    t = g.tensors[g.inputs[0]]
    if t.dtype == np.float32:
        return X_NHWC
    return face.quantize(X_NHWC, t.scale[0], int(t.zero_point[0]), dtype="int16")


# ----------------------------------------------------------------------------------------- converter fixtures


@pytest.mark.parametrize("kernel", list(RESOLVER))
@pytest.mark.parametrize("name", NAMES)
def test_converter_fixture_equals_litert(name, kernel):
    """The converter's model imported with ``kernel`` runs to LiteRT's output with the matching resolver."""
    x = _fixture_input(name)
    g = read_graph(_content(name))
    want = run_graph(_content(name), [x], RESOLVER[kernel], every_tensor=False)[g.outputs[0]]
    qm = tflite.import_quantized(_content(name), kernel=kernel)
    assert qm.profile == f"tflite_{kernel}"
    assert_same(qm.run(x), want, f"{name}/{kernel}")
    assert np.unique(want, axis=0).shape[0] > 300  # the images give distinct outputs: the comparison can fail


def test_fixture_from_a_path_and_its_nodes(tmp_path):
    """A file name works as the bytes do; the Flatten's SHAPE/STRIDED_SLICE/PACK become one reshape with a free batch."""
    qm = tflite.import_quantized(FIXTURES / "mlp.tflite")
    ops = [n.op for n in qm]
    assert ops == ["quantize", "reshape", "linear", "linear", "linear", "dequantize"], ops
    assert qm.node("op4_reshape").attrs["shape"] == [-1, 64]
    assert qm.run(X_NHWC[:3]).shape == (3, 10)
    qm.save(tmp_path / "mlp.npz")  # the imported model saves and loads like any other
    back = type(qm).load(tmp_path / "mlp.npz")
    np.testing.assert_array_equal(back.run(X_NHWC[:20]), qm.run(X_NHWC[:20]))


# ----------------------------------------------------------------------------------------- self-written graphs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kernel", list(RESOLVER))
def test_multi_op_graph_equals_litert(kernel, seed):
    """Two inputs (float32, int8), two outputs (int8 SOFTMAX, float32 DEQUANTIZE of a MEAN): a dict in, a dict out."""
    rng = np.random.default_rng(seed)
    content = mixed_graph(rng)
    a = rng.normal(0, 1.5, (23, 6, 6, 4)).astype(np.float32)
    b = rng.integers(-128, 128, (23, 6, 6, 4), dtype=np.int8)
    g = read_graph(content)
    want = run_graph(content, [a, b], RESOLVER[kernel], every_tensor=False)
    qm = tflite.import_quantized(content, kernel=kernel)
    assert {n.op for n in qm} >= {"pad", "average_pool2d", "add", "mul", "concatenation", "logistic", "tanh",
                                  "softmax", "mean", "constant"}
    got = qm.run({"a": a, "b": b})
    assert set(got) == {"probs", "mean_f"}
    for index, name in zip(g.outputs, ("probs", "mean_f")):
        assert_same(got[name], want[index], f"seed {seed}/{kernel}: {name}")
        assert np.unique(want[index]).size > 8


# ----------------------------------------------------------------------------------------- export

EXPORT_CASES = [(n, i16, p) for n in models.REFERENCE_MODELS for i16 in ((), "all")
                for p in ("tflite_reference", "tflite_xnnpack")]


@functools.cache
def _static(name: str, int16, profile: str):
    return ptq.quantize_static(models.load_reference_model(name), X_CAL, profile=profile, int16_layers=int16)


@pytest.mark.parametrize("name,int16,profile", EXPORT_CASES,
                         ids=[f"{n}-{'16x8' if i else 'int8'}-{p}" for n, i, p in EXPORT_CASES])
def test_export_runs_in_litert_equal_to_run(name, int16, profile, tmp_path):
    """``export(qm)`` runs in LiteRT (reference kernels for ``tflite_reference``, XNNPACK for ``tflite_xnnpack``) to
    ``qm.run(x)`` bit for bit; importing the file back gives the same too."""
    qm = _static(name, int16, profile)
    path = tmp_path / f"{name}.tflite"
    tflite.export(qm, path)
    content = path.read_bytes()
    resolver = RESOLVER[profile.split("_")[1]]
    got = run_graph(content, [X_TEST], resolver, every_tensor=False)
    (got,) = got.values()
    want = qm.run(X_TEST)
    assert_same(want, got, f"export {name} {profile}")
    assert_same(tflite.import_quantized(content, kernel=profile.split("_")[1]).run(X_TEST), got, "re-imported")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.tflite"]  # no temporary file left


def test_export_refuses_other_profiles_and_leaves_nothing(tmp_path):
    qm = ptq.quantize_static(models.load_reference_model("mlp"), X_CAL, profile="onnxruntime")
    with pytest.raises(QuantizationValueError, match="qmodel.profile must be one of .*'onnxruntime'"):
        tflite.export(qm, tmp_path / "m.tflite")
    qm = tflite.import_quantized(mixed_graph(np.random.default_rng(0)))  # NHWC nodes: not written
    with pytest.raises(UnsupportedError, match="not written"):
        tflite.export(qm, tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(QuantizationTypeError, match="qmodel must be a QuantizedModel"):
        tflite.export("model", tmp_path / "m.tflite")


# ----------------------------------------------------------------------------------------- bad input


def _one_op(op: str, x_type=np.int8, w_type=np.int8, signature=None) -> bytes:
    """``op`` (``"FULLY_CONNECTED"``, ``"HARD_SWISH"``, ``"SHAPE"``) on an int8 ``(1, 4)`` input (float32 weights
    when ``w_type`` is float32)."""
    g = Graph()
    q = dict(scale=0.1, zero_point=0) if x_type != np.float32 else {}
    x = g.tensor("x", (1, 4), x_type, **q)
    if signature:
        g.tensors[x].shapeSignature = signature
    if op == "FULLY_CONNECTED":
        wq = dict(scale=0.02, zero_point=0) if w_type != np.float32 else {}
        w = g.tensor("w", (3, 4), w_type, data=np.ones((3, 4), w_type), **wq)
        y = g.tensor("y", (1, 3), x_type, **q)
        ops = [(op, [x, w, -1], [y], "FullyConnectedOptions", {})]
    elif op == "SHAPE":
        s = g.tensor("s", (2,), np.int32)
        y = g.tensor("y", (1, 4), x_type, **q)
        ops = [(op, [x], [s], None, {}), ("RESHAPE", [x, s], [y], None, {})]
    else:
        y = g.tensor("y", (1, 4), x_type, **q)
        ops = [(op, [x], [y], None, {})]
    return pack(g, ops, [x], [y])


@pytest.mark.parametrize("data, err, match", [
    (b"not a tflite model", FormatVersionError, "TFL3"),
    (b"", FormatVersionError, "TFL3"),
    (123, QuantizationTypeError, "path_or_bytes must be a file name"),
])
def test_not_a_model(data, err, match):
    with pytest.raises(err, match=match):
        tflite.import_quantized(data)


def test_truncated_model():
    content = _content("cnn")
    for cut in (12, 100, len(content) // 3, len(content) - 9000):
        with pytest.raises(FormatVersionError, match="truncated or corrupt|TFL3"):
            tflite.import_quantized(content[:cut])


def test_missing_file_and_bad_kernel(tmp_path):
    with pytest.raises(FileNotFoundError, match="existing .tflite file"):
        tflite.import_quantized(tmp_path / "none.tflite")
    with pytest.raises(QuantizationValueError, match="kernel"):
        tflite.import_quantized(_content("mlp"), kernel="gpu")


def test_unsupported_op_names_the_supported_list():
    with pytest.raises(UnsupportedError, match=r"operator 0 \(HARD_SWISH\).*reads CONV_2D, DEPTHWISE_CONV_2D"):
        tflite.import_quantized(_one_op("HARD_SWISH"))


def test_float_weights_are_refused():
    with pytest.raises(UnsupportedError, match="FLOAT32.*fully integer"):
        tflite.import_quantized(_one_op("FULLY_CONNECTED", w_type=np.float32))
    with pytest.raises(UnsupportedError, match="fully integer"):
        tflite.import_quantized(_one_op("FULLY_CONNECTED", x_type=np.float32, w_type=np.float32))


def test_unresolvable_dynamic_shape():
    with pytest.raises(UnsupportedError, match="dynamic dimension 1"):
        tflite.import_quantized(_one_op("SHAPE", signature=[-1, -1]))
    assert tflite.import_quantized(_one_op("SHAPE", signature=[-1, 4])).node("op1_reshape").attrs["shape"] == [-1, 4]


def test_missing_optional_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    with pytest.raises(UnsupportedError, match="pip install ai-edge-litert flatbuffers"):
        tflite.import_quantized(_content("mlp"))

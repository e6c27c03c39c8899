"""The mismatch explainer (refquant.testing.explain): the call records reproduce their faces bit for
bit, the verdicts name the arithmetic that made an output (checked by hand on small cases), bad input
gets named errors, and ``refquant explain`` reads golden files.

The scored set of labelled mismatches is in ``test_testing_explain_labelled.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import errors, models, ptq
from refquant.backends import onnxruntime, pytorch, tflite
from refquant.cli import main
from refquant.data import load_digits
from refquant.qmodel import QuantizedModel
from refquant.testing.explain import (
    FACE_OPS,
    explain_mismatch,
    explain_model,
    resolve_profile,
)
from refquant.testing._variants import expected_variant, variants_for
from refquant.testing._variants_faces import bind

F32, I8, U8, I32 = np.float32, np.int8, np.uint8, np.int32
RNG = np.random.default_rng(0)


def _i8(*shape, lo=-20, hi=20):
    return RNG.integers(lo, hi + 1, shape).astype(I8)


def _u8(*shape):
    return RNG.integers(100, 160, shape).astype(U8)


def _ort_mm(**kw):
    return dict(a=_u8(3, 8), a_scale=F32(0.02), a_zero_point=U8(128), b=_i8(8, 5), b_scale=F32(0.01),
                b_zero_point=I8(0), y_scale=F32(0.05), y_zero_point=U8(120), **kw)


def _ort_conv(**kw):
    return dict(x=_u8(1, 3, 5, 5), x_scale=F32(0.02), x_zero_point=U8(128), w=_i8(4, 3, 3, 3),
                w_scale=np.full(4, 0.01, F32), w_zero_point=np.zeros(4, I8), y_scale=F32(0.05),
                y_zero_point=U8(120), B=RNG.integers(-50, 50, 4).astype(I32), pads=[1, 1, 1, 1], **kw)


def _torch_layer(conv, **kw):
    x, w = (_u8(1, 3, 5, 5), _i8(4, 3, 3, 3)) if conv else (_u8(2, 3, 8), _i8(4, 8))
    return dict(x=x, x_scale=0.03, x_zero_point=128, w=w, w_scale=np.full(4, 0.01, F32), w_zero_point=0,
                bias=RNG.normal(0, 0.1, 4).astype(F32), y_scale=0.05, y_zero_point=120, **kw)


def _add(names, dtype=I8, **kw):
    a, b, y = names
    v = RNG.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, (2, 10)).astype(dtype)
    return {a: v, b: v[::-1].copy(), f"{a}_scale": F32(0.05), f"{a}_zero_point": dtype(3), f"{b}_scale": F32(0.03),
            f"{b}_zero_point": dtype(5), f"{y}_scale": F32(0.1), f"{y}_zero_point": dtype(7), **kw}


TIES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.2, 7.0, -9.75, 100.0, 0.25, 11.5], F32)

#: one valid call of every face op, each selector value of a face that has one
SAMPLES = [
    *(("tflite.quantize", dict(x=TIES * F32(0.1), scale=0.1, zero_point=3, kernel=k)) for k in tflite.KERNELS),
    ("tflite.quantize", dict(x=RNG.normal(0, 1, (4, 3)).astype(F32), scale=np.array([0.1, 0.2, 0.05], F32),
                             zero_point=0, axis=1)),
    *(("tflite.dequantize", dict(q=_i8(17), scale=0.1, zero_point=3, kernel=k)) for k in tflite.KERNELS),
    *(("tflite.fully_connected", dict(x=_i8(2, 8), x_scale=0.5, x_zero_point=1, w=_i8(4, 8), w_scale=0.25,
                                      b=RNG.integers(-9, 9, 4).astype(I32), y_scale=4.0, y_zero_point=-3,
                                      activation="RELU", kernel=k)) for k in tflite.KERNELS),
    *(("tflite.conv2d", dict(x=_i8(1, 5, 5, 4), x_scale=0.5, x_zero_point=1, w=_i8(6, 3, 3, 2),
                             w_scale=np.full(6, 0.25, F32), b=None, y_scale=8.0, y_zero_point=2, padding="SAME",
                             stride=2, kernel=k)) for k in tflite.KERNELS),
    *(("tflite.depthwise_conv2d", dict(x=_i8(1, 5, 5, 10), x_scale=0.5, x_zero_point=1, w=_i8(1, 3, 3, 10),
                                       w_scale=0.25, b=None, y_scale=2.0, y_zero_point=0, kernel=k))
      for k in tflite.KERNELS),
    *(("tflite.add", _add("aby", activation="RELU", kernel=k)) for k in tflite.KERNELS),
    ("onnx.quantize_linear", dict(x=TIES, y_scale=F32(0.5), y_zero_point=I8(3))),
    ("onnx.dequantize_linear", dict(x=_i8(9), x_scale=F32(0.5), x_zero_point=I8(3))),
    ("onnx.qlinear_matmul", _ort_mm()),
    ("onnx.qlinear_conv", _ort_conv()),
    ("onnxruntime.quantize_linear", dict(x=TIES, y_scale=F32(0.5), y_zero_point=U8(30))),
    ("onnxruntime.dequantize_linear", dict(x=_u8(9), x_scale=F32(0.5), x_zero_point=U8(130))),
    *(("onnxruntime.qlinear_matmul", _ort_mm(isa=i)) for i in ("avx2", "vnni")),
    *(("onnxruntime.qlinear_conv", _ort_conv(isa=i)) for i in ("avx2", "vnni")),
    ("onnxruntime.qlinear_add", _add("abc")),
    *(("pytorch.quantize_per_tensor", dict(x=TIES, scale=1.0, zero_point=1, dtype="quint8", zero_point_order=o))
      for o in ("before", "after")),
    ("pytorch.quantize_per_channel", dict(x=RNG.normal(0, 1, (3, 4)).astype(F32), scales=np.array([0.1, 0.2, 0.3]),
                                          zero_points=np.array([1, 2, 3]), axis=0, dtype="qint8")),
    ("pytorch.dequantize", dict(q=_u8(6), scale=0.1, zero_point=128)),
    ("pytorch.fake_quantize_per_tensor_affine", dict(x=TIES, scale=1.0, zero_point=1, quant_min=0, quant_max=255)),
    ("pytorch.fake_quantize_per_channel_affine", dict(x=RNG.normal(0, 1, (2, 3)).astype(F32),
                                                      scale=np.array([0.1, 0.2], F32),
                                                      zero_point=np.array([0, 1], I32), axis=0, quant_min=-128,
                                                      quant_max=127)),
    *(("pytorch.linear", _torch_layer(False, engine=e, isa="avx2")) for e in ("fbgemm", "qnnpack")),
    *(("pytorch.conv2d", _torch_layer(True, engine=e, padding=1, isa="vnni")) for e in ("fbgemm", "x86", "qnnpack")),
    *(("pytorch.add", _add("aby", U8, engine=e, relu=True)) for e in ("fbgemm", "qnnpack")),
]


def test_every_face_op_has_a_sample():
    assert {op for op, _ in SAMPLES} == set(FACE_OPS)


@pytest.mark.parametrize("op,inputs", SAMPLES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(SAMPLES)])
def test_call_record_reproduces_the_face(op, inputs):
    """The record run under the face's own profile is the face's output, bit for bit; the explainer
    then finds no mismatch."""
    entry = FACE_OPS[op]
    args = bind(entry, inputs)
    y = np.asarray(entry.function(**inputs))
    call = entry.call(args, y)
    mine = call.run(expected_variant(entry.profile(args), call.kind))
    assert mine.shape == y.shape and mine.dtype == y.dtype
    np.testing.assert_array_equal(mine, y, err_msg=f"{op}: the call record disagrees with the face")
    e = explain_mismatch(op, inputs, y)
    assert e.expected.exact and "no mismatch" in e.verdict() and e.best.exact


def test_tflite_reference_vs_xnnpack_by_hand():
    """M = 1/4: accumulators 2, 6, -2, 5 are 0.5, 1.5, -0.5, 1.25. Reference: std::round (1, 2, -1, 1);
    XNNPACK: lrintf (0, 2, 0, 1); optimized: two half-up roundings, SRDHM(5, 2^30) = round(2.5) = 3,
    then 3 / 2 = 1.5 -> 2, so 1.25 becomes 2 (1, 2, 0, 2)."""
    inputs = dict(x=np.array([[1, 2, 3, 4]], I8), x_scale=0.5, x_zero_point=0,
                  w=np.array([[2, 0, 0, 0], [0, 0, 2, 0], [-2, 0, 0, 0], [0, 1, 1, 0]], I8), w_scale=0.5,
                  b=np.zeros(4, I32), y_scale=1.0, y_zero_point=0)
    outs = {k: tflite.fully_connected(**inputs, kernel=k).ravel().tolist() for k in tflite.KERNELS}
    assert outs == {"reference": [1, 2, -1, 1], "xnnpack": [0, 2, 0, 1], "optimized": [1, 2, 0, 2]}
    e = explain_mismatch("tflite.fully_connected", inputs, np.array([[1, 2, 0, 2]], I8), profile="tflite_xnnpack")
    assert e.best.label == "tflite_optimized" and e.expected.n_diff == 2
    assert e.expected.first == (((0, 0), 0, 1), ((0, 3), 1, 2))
    assert any("both half up" in d for d in e.differences)
    assert "Verdict: reproduced exactly by tflite_optimized" in str(e)


def test_hand_written_half_up_is_named():
    """A kernel that rounds fl(acc * M) half up where ONNX Runtime rounds half to even."""
    case = _ort_mm(isa="vnni")
    case.update(a_scale=F32(2.0 ** -3), b_scale=F32(2.0 ** -4), y_scale=F32(2.0 ** -2))  # M = 2^-5: ties
    case["a"][:2] = 128
    case["a"][0, 0], case["b"][0, 0] = 144, 1  # acc[0, 0] = 16: 16 * 2^-5 = 0.5, RNE 0, half up 1
    case["a"][1, 0] = 143  # acc[1, 0] = 15: 0.47 -> 0, where ruy's two half-up roundings give 7.5 -> 8, 0.5 -> 1
    acc = (case["a"].astype(I32) - 128) @ case["b"].astype(I32)
    mine = np.clip(np.floor(acc * 2.0 ** -5 + 0.5) + 120, 0, 255).astype(U8)
    want = onnxruntime.qlinear_matmul(**case)
    assert not np.array_equal(mine, want), "the sample must contain a tie that rounds differently"
    e = explain_mismatch("onnxruntime.qlinear_matmul", case, mine)
    assert e.best.label == "round=half_up/float32"
    assert e.differences == ["rounding: expected round half to even (lrintf / cvtps2dq); actual round half up"]


def test_pair_saturation_on_avx2():
    x = np.full((1, 4), 255, U8)
    w = np.array([[127], [127], [-100], [-100]], I8)
    case = dict(a=x, a_scale=F32(1), a_zero_point=U8(0), b=w, b_scale=F32(1), b_zero_point=I8(0),
                y_scale=F32(256), y_zero_point=U8(128))
    # pairs 2 * 255 * 127 = 64770 -> 32767 and -51000 -> -32768: acc -1, not 13770 (13770 / 256 -> 54)
    avx2 = onnxruntime.qlinear_matmul(**case, isa="avx2")
    e = explain_mismatch("onnxruntime.qlinear_matmul", {**case, "isa": "vnni"}, avx2)
    assert avx2.item() == 128 and e.best.label == "onnxruntime@avx2" and e.expected.max_lsb == 54
    assert [d.split(":")[0] for d in e.differences] == ["accumulation"]


def test_pytorch_quantize_vs_fake_quantize():
    x = np.array([0.5, 1.5, 2.5, -0.5], F32)
    fake = pytorch.fake_quantize_per_tensor_affine(x, 1.0, 1, 0, 255)
    codes = (fake + 1).astype(U8)  # scale 1, zero point 1: the codes fake-quantize rounded to
    assert codes.tolist() == [1, 3, 3, 1]
    e = explain_mismatch("pytorch.quantize_per_tensor", dict(x=x, scale=1.0, zero_point=1, dtype="quint8"), codes)
    assert e.expected.n_diff == 4 and e.reproduces("pytorch_fbgemm:fake_quantize")
    assert e.reproduces("pytorch_fbgemm_zp_after")  # torch 1.6 - 2.12 quantize: the same rule
    assert any(d.startswith("zero point:") for d in e.differences)


def test_ties_are_reported_and_ranking_is_sorted():
    e = explain_mismatch("tflite.quantize", dict(x=TIES * F32(0.1), scale=0.1, zero_point=3, kernel="xnnpack"),
                         tflite.quantize(TIES * F32(0.1), 0.1, 3))
    keys = [(m.n_diff, m.max_lsb) for m in e.ranking]
    assert keys == sorted(keys) and len(e.exact) >= 2 and e.best.exact
    assert e.exact[0].origin == "backend" and e.reproduces("tflite_reference")


def test_profile_labels_round_trip():
    for v in variants_for(FACE_OPS["onnxruntime.qlinear_matmul"].call(bind(FACE_OPS["onnxruntime.qlinear_matmul"],
                                                                            _ort_mm()), np.zeros((3, 5), U8)),
                          expected_variant(resolve_profile("onnxruntime@avx2"), "layer")):
        if v.origin == "backend":
            assert resolve_profile(v.label) == v.profile, v.label


def test_bad_input_is_named():
    ok = dict(x=TIES, scale=0.1, zero_point=3)
    y = tflite.quantize(**ok)
    cases = [("op", lambda: explain_mismatch("tflite.nope", ok, y), errors.QuantizationValueError),
             ("op", lambda: explain_mismatch(None, ok, y), errors.QuantizationValueError),
             ("inputs", lambda: explain_mismatch("tflite.quantize", [1, 2], y), errors.QuantizationTypeError),
             ("inputs", lambda: explain_mismatch("tflite.quantize", {"x": TIES}, y), errors.QuantizationTypeError),
             ("scale", lambda: explain_mismatch("tflite.quantize", {**ok, "scale": np.nan}, y),
              errors.QuantizationValueError),
             ("actual", lambda: explain_mismatch("tflite.quantize", ok, y[:3]), errors.ShapeError),
             ("actual", lambda: explain_mismatch("tflite.quantize", ok, y.astype(F32)), errors.QuantizationTypeError),
             ("actual", lambda: explain_mismatch("tflite.quantize", ok, "abc"), errors.QuantizationTypeError),
             ("profile", lambda: explain_mismatch("tflite.quantize", ok, y, profile="nope"),
              errors.QuantizationValueError),
             ("int16", lambda: explain_mismatch("tflite.fully_connected", dict(
                 x=np.zeros((1, 2), np.int16), x_scale=1.0, x_zero_point=0, w=np.zeros((1, 2), I8), w_scale=1.0,
                 b=None, y_scale=1.0, y_zero_point=0), np.zeros((1, 1), np.int16)), errors.UnsupportedError),
             ("2-D", lambda: explain_mismatch("onnx.qlinear_matmul", {**_ort_mm(), "a": _u8(2, 3, 8)},
                                              np.zeros((2, 3, 5), U8)), errors.UnsupportedError)]
    for name, call, kind in cases:
        with pytest.raises(kind, match=name):
            call()


def test_edge_inputs():
    """Empty tensors, NaN and byte-swapped arrays."""
    e = explain_mismatch("tflite.quantize", dict(x=np.zeros(0, F32), scale=0.1, zero_point=0), np.zeros(0, I8))
    assert e.expected.exact and e.expected.n_total == 0
    x = np.array([np.nan, 1.0, -np.inf], F32)
    y = tflite.quantize(x, 0.1, 0, kernel="xnnpack")
    e = explain_mismatch("tflite.quantize", dict(x=x, scale=0.1, zero_point=0), y)
    assert e.reproduces("tflite_xnnpack") and e.expected.max_lsb == 255  # NaN: qmin (reference) vs qmax
    fq = dict(x=np.array([np.nan, 0.5], F32), scale=1.0, zero_point=0, quant_min=0, quant_max=255)
    assert explain_mismatch("pytorch.fake_quantize_per_tensor_affine", fq,
                            pytorch.fake_quantize_per_tensor_affine(**fq)).expected.exact  # NaN == NaN
    swapped = y.astype(y.dtype.newbyteorder(">"))
    assert explain_mismatch("tflite.quantize", dict(x=x, scale=0.1, zero_point=0), swapped).best.label == \
        e.best.label


@pytest.fixture(scope="module")
def mlp():
    x, _ = load_digits("test")
    qm = ptq.quantize_static(models.load_reference_model("mlp"), x[:64], profile="tflite_reference")
    other = QuantizedModel(qm.nodes, qm.tensors, qm.inputs, qm.outputs, profile="tflite_optimized")
    return qm, other, x[:100]


def test_explain_model_finds_the_first_diverging_node(mlp):
    qm, other, x = mlp
    trace = other.trace(x)
    e = explain_model(qm, x, trace)
    assert e.node == "1" and e.explanation.best.label == "tflite_optimized"
    assert [n for n, d, _ in e.compared] == ["input:q", "0", "1"] and e.compared[-1][1] > 0
    by_node = explain_model(qm, x, {"1": trace["1"]})  # keyed by node name: the same node
    assert by_node.node == "1" and by_node.explanation.best.label == "tflite_optimized"
    assert explain_model(qm, x, qm.trace(x)).explanation is None
    out = explain_model(qm, x, other.run(x))
    assert out.node is None and out.explanation.best.label == "tflite_optimized"
    assert "no mismatch" in str(explain_model(qm, x, qm.run(x)))


def test_explain_model_bad_input(mlp):
    qm, _, x = mlp
    with pytest.raises(errors.QuantizationTypeError, match="qmodel"):
        explain_model("model", x, {})
    with pytest.raises(errors.QuantizationValueError, match="actual"):
        explain_model(qm, x, {"no such tensor": np.zeros(1)})
    with pytest.raises(errors.ShapeError, match="actual"):
        explain_model(qm, x, {"1": np.zeros((2, 2), I8)})


def test_cli_explain(tmp_path, capsys):
    golden = tmp_path / "q.npz"
    assert main(["golden", "--op", "tflite.quantize", "--cases", "3", "--seed", "0", "--out", str(golden)]) == 0
    from refquant.testing.golden import load_golden

    g = load_golden(golden)
    outs = {f"case{c.index}": tflite.quantize(**c.arguments, **c.attrs, kernel="xnnpack") for c in g}
    np.savez(tmp_path / "mine.npz", **outs)
    capsys.readouterr()
    assert main(["explain", str(golden), str(tmp_path / "mine.npz")]) == 0
    out = capsys.readouterr().out
    assert "case 1 (ties): " in out and "reproduced exactly by tflite_xnnpack" in out
    assert out.strip().splitlines()[-1].startswith("3 of 3 cases differ from tflite_reference")
    assert main(["explain", str(golden), str(tmp_path / "mine.npz"), "--full", "--profile", "tflite_xnnpack"]) == 0
    assert "case 1 (ties): matches tflite_xnnpack exactly" in capsys.readouterr().out
    np.save(tmp_path / "one.npy", outs["case0"])
    for argv, what in ([str(golden), str(tmp_path / "none.npz")], "does not exist"), \
            ([str(golden), str(tmp_path / "one.npy")], "stack"), \
            ([str(golden), str(tmp_path / "mine.npz"), "--profile", "nope"], "--profile"), \
            ([str(tmp_path / "mine.npz"), str(tmp_path / "mine.npz")], "GOLDEN_FILE"):
        assert main(["explain", *argv]) == 2
        assert what in capsys.readouterr().err


def test_labelled_cases_arguments():
    from refquant.testing._variants_cases import labelled_cases

    few = labelled_cases(seed=3, per_pair=1, attempts=3)
    assert few and all(c.actual.shape == np.asarray(FACE_OPS[c.op].function(**c.inputs)).shape for c in few)
    for kw, name, kind in ((dict(per_pair=0), "per_pair", errors.QuantizationValueError),
                           (dict(attempts=10**6), "attempts", errors.QuantizationValueError),
                           (dict(seed=-1), "seed", errors.QuantizationValueError),
                           (dict(seed="0"), "seed", errors.QuantizationTypeError)):
        with pytest.raises(kind, match=name):
            labelled_cases(**kw)

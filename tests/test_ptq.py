"""Post-training quantization flows on the bundled models: accuracy targets, structure, bad input.

Accuracy targets (digits test split, 359 images; one image is 0.28 points): static int8
per-channel within 1.0 point of float for every model under every profile that runs it, dynamic
within 0.5 point. The full model × flow × profile × calibrator table is produced by
``benchmarks/ptq_table.py``; here a sweep that fits the CI time.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models
from refquant.calibration import CALIBRATORS
from refquant.data import load_digits
from refquant.errors import (QuantizationTypeError, QuantizationValueError, ShapeError,
                             UnsupportedError)
from refquant.ptq import quantize_dynamic, quantize_static, quantize_weights
from refquant.ptq.debug import accuracy, format_report, layer_report, mixed_precision_plan, sensitivity
from refquant.ptq.flows import calibrate_model
from refquant.qmodel import QuantizedModel

X_TEST, Y_TEST = load_digits("test")
X_CAL, _ = load_digits("train")
X_CAL = X_CAL[:512]
MODELS = {name: models.load_reference_model(name) for name in models.REFERENCE_MODELS}
FLOAT_ACC = {name: accuracy(m, X_TEST, Y_TEST) for name, m in MODELS.items()}

# profile -> models it cannot run (the layer it refuses), measured on an AVX-512 VNNI host
REFUSED: dict = {}  # none since the optimized int8 ADD is modelled


@pytest.mark.parametrize("profile", ["tflite_reference", "tflite_xnnpack", "tflite_optimized", "onnxruntime",
                                     "gemmlowp"])
@pytest.mark.parametrize("name", models.REFERENCE_MODELS)
def test_static_int8_within_one_point(name, profile):
    refused = REFUSED.get(profile, {}).get(name)
    if refused:
        with pytest.raises(UnsupportedError, match=f"\\({refused}\\)"):
            quantize_static(MODELS[name], X_CAL, profile=profile)
        qm = quantize_static(MODELS[name], X_CAL, profile=profile, allow_float=True)
        assert qm.metadata["float_layers"], "allow_float keeps the refused layers in float"
    else:
        qm = quantize_static(MODELS[name], X_CAL, profile=profile)
        assert qm.metadata["float_layers"] == []
    assert qm.profile == profile
    assert FLOAT_ACC[name] - accuracy(qm, X_TEST, Y_TEST) <= 0.010 + 1e-9


@pytest.mark.parametrize("profile", ["pytorch_fbgemm", "pytorch_qnnpack"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_static_int8_pytorch(name, profile):
    qm = quantize_static(MODELS[name], X_CAL, profile=profile)
    assert FLOAT_ACC[name] - accuracy(qm, X_TEST, Y_TEST) <= 0.010 + 1e-9


@pytest.mark.parametrize("calibrator", CALIBRATORS)
def test_each_calibrator_within_one_point(calibrator):
    for name in ("mlp", "cnn"):
        qm = quantize_static(MODELS[name], X_CAL, profile="tflite_reference", calibrator=calibrator)
        assert qm.metadata["calibrator"] == calibrator
        assert FLOAT_ACC[name] - accuracy(qm, X_TEST, Y_TEST) <= 0.010 + 1e-9


def test_recipe_parameters_per_profile():
    qm = quantize_static(MODELS["mlp"], X_CAL, profile="tflite_reference")
    fc = qm.node("1")
    assert fc.params["weight"].dtype == np.int8 and fc.params["weight"].min() >= -127
    assert fc.params["bias"].dtype == np.int32 and fc.attrs["activation"] == "RELU"
    assert qm.tensors["1"].dtype == "int8" and qm.tensors["1"].zero_point == -128  # ReLU output: [0, max]
    qm = quantize_static(MODELS["mlp"], X_CAL, profile="onnxruntime")
    assert qm.tensors["1"].dtype == "uint8" and qm.tensors["1"].zero_point == 0
    assert "activation" not in qm.node("1").attrs  # ONNX Runtime drops the ReLU: the range covers it
    qm = quantize_static(MODELS["mlp"], X_CAL, profile="pytorch_fbgemm")
    assert qm.node("1").params["bias"].dtype == np.float32
    assert qm.tensors["1"].dtype == "uint8"
    s, z = qm.tensors["3"].scale, qm.tensors["3"].zero_point
    assert z == 0 and np.isclose(s * 127, float(np.max(MODELS["mlp"][:5](X_CAL))), rtol=1e-6)  # reduce_range


def test_per_tensor_weights():
    qm = quantize_static(MODELS["cnn"], X_CAL, profile="tflite_reference", per_channel=False)
    assert all(np.ndim(n.params["weight_scale"]) == 0 for n in qm if n.op in ("conv2d", "linear"))
    assert qm.metadata["per_channel"] is False


def test_pytorch_relu6_is_a_clamp_with_input_parameters():
    qm = quantize_static(MODELS["mobilenet"], X_CAL[:128], profile="pytorch_qnnpack")
    clamps = [n for n in qm if n.op == "clamp"]
    assert clamps and all(n.attrs["activation"] == "RELU6" for n in clamps)
    for n in clamps:
        a, b = qm.tensors[n.inputs[0]], qm.tensors[n.output]
        assert (a.scale, a.zero_point) == (b.scale, b.zero_point)


def test_model_roundtrip_and_integer_io(tmp_path):
    qm = quantize_static(MODELS["resnet"], X_CAL, profile="tflite_xnnpack")
    x = X_TEST[:32]
    qm.save(tmp_path / "r.npz")
    back = QuantizedModel.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.run(x), qm.run(x))
    t = qm.trace(x)
    q_in = t["input:q"]
    np.testing.assert_array_equal(qm.run_codes(q_in), t[qm.node(qm.outputs[0].replace(":f", ":dequantize")).inputs[0]])


def test_partial_quantization_by_name():
    qm = quantize_static(MODELS["cnn"], X_CAL, profile="tflite_reference", float_layers=("0",))
    ops = {n.name: n.op for n in qm}
    assert qm.tensors["0"].dtype == "float32" and "0:quantize" in ops
    assert FLOAT_ACC["cnn"] - accuracy(qm, X_TEST, Y_TEST) <= 0.010


def test_dynamic_pytorch_within_half_point():
    for name in ("mlp", "cnn"):
        qm = quantize_dynamic(MODELS[name], profile="pytorch_fbgemm")
        assert {n.op for n in qm} >= {"dynamic_linear"}
        assert all(qm.tensors[t].dtype == "float32" for t in qm.tensors)
        assert FLOAT_ACC[name] - accuracy(qm, X_TEST, Y_TEST) <= 0.005 + 1e-9
        w = [n for n in qm if n.op == "dynamic_linear"][-1].params
        assert np.ndim(w["weight_scale"]) == 0 and w["weight"].dtype == np.int8  # per-tensor symmetric qint8


def test_dynamic_refused_where_not_modelled():
    with pytest.raises(UnsupportedError, match="gemmlowp"):
        quantize_dynamic(MODELS["mlp"], profile="gemmlowp")


@pytest.mark.parametrize("bits,group_size", [(8, None), (4, None), (4, 16), (2, None)])
def test_weight_only(bits, group_size):
    qm = quantize_weights(MODELS["mlp"], bits=bits, group_size=group_size)
    n_weights = 64 * 128 + 128 * 64 + 64 * 10
    codes = n_weights if bits == 8 else 1 + n_weights // 2  # int4 packed (each layer padded to a byte)
    assert qm.nbytes < 4 * n_weights
    w_bytes = sum((p["weight"].size + 1) // 2 if bits <= 4 else p["weight"].size
                  for p in (n.params for n in qm if "weight" in n.params))
    assert abs(w_bytes - codes) <= 3
    acc = accuracy(qm, X_TEST, Y_TEST)
    if bits >= 4:
        assert FLOAT_ACC["mlp"] - acc <= 0.03
    qmax = 2 ** (bits - 1) - 1
    assert all(np.abs(n.params["weight"]).max() <= qmax for n in qm if "weight" in n.params)


def test_weight_only_bad_arguments():
    with pytest.raises(QuantizationValueError, match="bits must be in \\[2, 8\\], got 9"):
        quantize_weights(MODELS["mlp"], bits=9)
    with pytest.raises(QuantizationValueError, match="bits must be in \\[2, 8\\], got 1"):
        quantize_weights(MODELS["mlp"], bits=1)
    with pytest.raises(QuantizationValueError, match="group_size must divide"):
        quantize_weights(MODELS["mlp"], bits=4, group_size=24)


def test_bad_calibration_data():
    m = MODELS["mlp"]
    with pytest.raises(QuantizationValueError, match="at least one sample"):
        quantize_static(m, np.zeros((0, 1, 8, 8), np.float32), profile="tflite_reference")
    bad = X_CAL[:16].copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(QuantizationValueError, match="finite"):
        quantize_static(m, bad, profile="tflite_reference")
    with pytest.raises(ShapeError, match="shape the model takes"):
        quantize_static(m, np.zeros((4, 3, 5), np.float32), profile="tflite_reference")
    with pytest.raises(QuantizationValueError, match="at least one batch"):
        quantize_static(m, iter([]), profile="tflite_reference")
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        quantize_static(m, X_CAL, profile="tflite")
    with pytest.raises(QuantizationValueError, match="calibrator must be one of"):
        quantize_static(m, X_CAL, profile="tflite_reference", calibrator="kl")
    with pytest.raises(QuantizationTypeError, match="model must be a refquant.nn Module"):
        quantize_static("mlp", X_CAL, profile="tflite_reference")
    with pytest.raises(QuantizationValueError, match="float_layers must name layers"):
        quantize_static(m, X_CAL, profile="tflite_reference", float_layers=("nope",))


def test_calibration_batches_iterable_equals_array():
    a = quantize_static(MODELS["cnn"], X_CAL, profile="tflite_reference")
    b = quantize_static(MODELS["cnn"], (X_CAL[i:i + 100] for i in range(0, 512, 100)), profile="tflite_reference")
    for t in a.tensors:  # min-max does not depend on how the data is batched
        assert a.tensors[t] == b.tensors[t]


def test_layer_report_and_sensitivity():
    cal = calibrate_model(MODELS["cnn"], X_CAL, profile="tflite_reference")
    qm = cal.lower()
    rows = layer_report(cal, qm, X_TEST[:100])
    assert [r["tensor"] for r in rows][0] == "input:q"
    assert all(r["sqnr_db"] > 20 for r in rows)
    assert all(0 <= r["saturated"] <= 1 and r["max_error_lsb"] >= 0 for r in rows)
    assert "| tensor | op | SQNR (dB)" in format_report(rows)
    x_val, y_val = load_digits("val")
    ranking = sensitivity(cal, x_val[:150], y_val[:150])
    assert {r["layer"] for r in ranking} == {n.name for n in qm if n.op in ("conv2d", "linear",
                                                                             "global_average_pool")}


def test_mixed_precision_plan():
    x_val, y_val = load_digits("val")
    plan = mixed_precision_plan(MODELS["mlp"], X_CAL, x_val, y_val, profile="pytorch_fbgemm", max_drop=0.0)
    assert plan.trade_off[0]["float_layers"] == []
    last = plan.trade_off[-1]
    assert last["float_layers"] == plan.float_layers
    assert plan.float_accuracy - last["accuracy"] <= 0.0 or len(plan.float_layers) == 3
    qm = plan.apply()
    assert qm.metadata["float_layers"] == sorted(plan.float_layers)
    assert "| float layers | top-1 | bytes |" in plan.table()

"""``quantize_dynamic`` under the TFLite and ONNX Runtime profiles: accuracy, each tool's weights, refusals.

Accuracy target as in ``tests/test_ptq.py``: dynamic within 0.5 point of float on the digits test
split (359 images). Bit-exactness against the runtimes is ``tests/test_conformance_dynamic.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import models
from refquant.data import load_digits
from refquant.errors import UnsupportedError
from refquant.ptq import quantize_dynamic
from refquant.ptq.debug import accuracy

X_TEST, Y_TEST = load_digits("test")
MLP = models.load_reference_model("mlp")
FLOAT_ACC = accuracy(MLP, X_TEST, Y_TEST)


@pytest.mark.parametrize("profile", ["tflite_reference", "tflite_optimized", "tflite_xnnpack", "onnxruntime"])
def test_dynamic_within_half_point(profile):
    qm = quantize_dynamic(MLP, profile=profile)
    assert qm.profile == profile and qm.metadata["flow"] == "dynamic"
    assert all(qm.tensors[t].dtype == "float32" for t in qm.tensors)
    assert FLOAT_ACC - accuracy(qm, X_TEST, Y_TEST) <= 0.005 + 1e-9


def test_each_tools_weights():
    tfl = [n for n in quantize_dynamic(MLP, profile="tflite_reference") if "linear" in n.op]
    # the converter: per-channel symmetric int8 in [-127, 127]; the 64 x 10 layer (640 < 1024 weights) stays float
    assert [n.op for n in tfl] == ["dynamic_linear", "dynamic_linear", "linear"]
    for n in tfl[:2]:
        w = n.params["weight"]
        assert w.dtype == np.int8 and n.params["weight_scale"].shape == (w.shape[0],)
        assert np.abs(w).max() == 127 and w.min() >= -127 and not np.any(n.params["weight_zero_point"])
    assert tfl[2].params["weight"].dtype == np.float32
    ort = [n for n in quantize_dynamic(MLP, profile="onnxruntime") if "linear" in n.op]
    assert [n.op for n in ort] == ["dynamic_linear"] * 3  # no size threshold
    assert all(np.ndim(n.params["weight_scale"]) == 0 for n in ort)  # per tensor (quantize_dynamic's default)


@pytest.mark.parametrize("profile", ["gemmlowp", "onnx", "onnx_reference"])
def test_refused_where_no_dynamic_kernel_is_modelled(profile):
    with pytest.raises(UnsupportedError, match=f"profile '{profile}'"):
        quantize_dynamic(MLP, profile=profile)

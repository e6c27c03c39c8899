"""refquant's ``quantize_static(..., profile="onnxruntime")`` against ONNX Runtime's own
``onnxruntime.quantization.quantize_static`` on the same float model and calibration data.

The four bundled models are exported by ``torch.onnx.export`` (BatchNorm folded), quantized by ORT
(QDQ, uint8 activations, int8 weights, MinMax, per tensor and per channel, ``reduce_range`` as
refquant's recipe says for this CPU) and read back with ``refquant.interop.onnx.import_quantized``.

**The one intended difference: the observed ranges.** Each tool computes the float model with its
own kernels, and a float convolution's or average's value depends on summation order, so a tensor's
observed min/max can differ in the last bits (measured: at most ~2e-7 relative, on tensors written by
a convolution or an average; tensors written by a Gemm chain (mlp) agree exactly). A range one ulp
apart gives a scale one ulp apart, and then other outputs. So the test checks the two halves
separately:

1. the ranges themselves agree to 1e-6 relative, tensor by tensor (matched by value);
2. given ORT's ranges, refquant chooses exactly ORT's parameters: every activation's scale and zero
   point, every weight code, weight scale and zero point, every int32 bias, and therefore the model
   runs to ORT's session output bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile

import numpy as np
import pytest

from refquant import models
from refquant.data import load_digits
from refquant.ptq.flows import calibrate_model
from refquant.ptq.recipes import recipe_for

pytestmark = [pytest.mark.conformance, pytest.mark.filterwarnings("ignore")]
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("torch")
from onnxruntime import quantization as oq  # noqa: E402
from support.onnx_float_export import bundled_float_onnx  # noqa: E402

from refquant.interop import onnx as rio  # noqa: E402

_X_TRAIN, _ = load_digits("train")
CAL = np.ascontiguousarray(_X_TRAIN[:512])
BATCHES = [CAL[:256], CAL[256:]]
X_EVAL, _ = load_digits("test")


class _Reader(oq.CalibrationDataReader):
    def __init__(self):
        self._it = iter(BATCHES)

    def get_next(self):
        b = next(self._it, None)
        return None if b is None else {"input": b}


@functools.cache
def _float_path(name: str) -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="refquant_ortq_"), f"{name}.onnx")
    with open(path, "wb") as f:
        f.write(bundled_float_onnx(name, fold=True))
    return path


@functools.cache
def _ort_ranges(name: str) -> dict:
    """ORT's MinMax calibrator's ``{tensor: (lo, hi)}`` on the float model."""
    d = tempfile.mkdtemp(prefix="refquant_ortcal_")
    cal = oq.create_calibrator(_float_path(name), None, augmented_model_path=os.path.join(d, "aug.onnx"),
                               calibrate_method=oq.CalibrationMethod.MinMax)
    cal.collect_data(_Reader())
    return {k: tuple(np.asarray(v.range_value, np.float32).reshape(-1)) for k, v in cal.compute_data().data.items()}


@functools.cache
def _calibrated(name: str):
    return calibrate_model(models.load_reference_model(name), CAL, profile="onnxruntime")


def _matched_ranges(name: str) -> dict:
    """refquant tensor -> (ORT tensor, ORT's (lo, hi)): the ORT tensor of the nearest range."""
    theirs, out = _ort_ranges(name), {}
    for k, (lo, hi) in _calibrated(name).ranges.items():
        best = min(theirs.items(), key=lambda kv: abs(float(kv[1][0]) - lo) + abs(float(kv[1][1]) - hi))
        out[k] = best
    return out


@functools.cache
def _ort_quantized(name: str, per_channel: bool):
    path = os.path.join(tempfile.mkdtemp(prefix="refquant_ortq_"), "q.onnx")
    prof = _calibrated(name).profile
    oq.quantize_static(_float_path(name), path, _Reader(), quant_format=oq.QuantFormat.QDQ,
                       activation_type=oq.QuantType.QUInt8, weight_type=oq.QuantType.QInt8, per_channel=per_channel,
                       reduce_range=prof.isa in recipe_for(prof).weight_reduce_range_isas,
                       calibrate_method=oq.CalibrationMethod.MinMax)
    return path


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "mobilenet"])
def test_observed_ranges_agree_to_float_rounding(name):
    worst = 0.0
    for k, (lo, hi) in _calibrated(name).ranges.items():
        onnx_name, (olo, ohi) = _matched_ranges(name)[k]
        span = max(float(hi) - float(lo), 1e-12)
        rel = (abs(float(olo) - float(lo)) + abs(float(ohi) - float(hi))) / span
        assert rel <= 1e-6, f"{name}: refquant tensor {k!r} range ({lo}, {hi}) vs ORT {onnx_name!r} ({olo}, {ohi})"
        worst = max(worst, rel)
    if name == "mlp":
        assert worst == 0.0, "the mlp's tensors come from Gemms and elementwise ops: their ranges agree exactly"


def _param_sets(qm):
    acts = sorted((t.dtype, t.scale, t.zero_point) for t in qm.tensors.values() if t.is_integer)
    layers = sorted((tuple(n.params["weight"].shape), n.params["weight"].tobytes(), n.params["weight_scale"].tobytes(),
                     np.asarray(n.params["weight_zero_point"], np.int64).tobytes(), n.params["bias"].tobytes())
                    for n in qm if n.op in ("conv2d", "linear"))
    return sorted(set(acts)), layers


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "mobilenet"])
def test_same_ranges_give_ort_parameters_and_outputs(name, per_channel):
    c = _calibrated(name)
    transplanted = {k: tuple(np.float32(v) for v in r) for k, (_, r) in _matched_ranges(name).items()}
    ours = dataclasses.replace(c, ranges=transplanted).lower(per_channel=per_channel)
    theirs = rio.import_quantized(_ort_quantized(name, per_channel))
    acts_ours, layers_ours = _param_sets(ours)
    acts_theirs, layers_theirs = _param_sets(theirs)
    assert acts_ours == acts_theirs, f"{name}: activation (dtype, scale, zero point) sets differ"
    assert len(layers_ours) == len(layers_theirs) and layers_ours == layers_theirs, \
        f"{name}: weight codes / scales / zero points / int32 biases differ"
    sess_opts = ort.SessionOptions()
    sess_opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(_ort_quantized(name, per_channel), sess_opts, providers=["CPUExecutionProvider"])
    for x in (X_EVAL, X_EVAL[:1], X_EVAL * 3 - 1):
        y_ort = sess.run(None, {"input": np.ascontiguousarray(x, np.float32)})[0]
        np.testing.assert_array_equal(ours.run(x), y_ort)
        np.testing.assert_array_equal(theirs.run(x), y_ort)

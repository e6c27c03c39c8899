"""Choosing scale and zero point: each backend's formula against an independent oracle.

* ``onnxruntime_qparams`` against the real ONNX Runtime tool functions
  (``compute_scale_zp`` + ``get_qmin_qmax_for_qType``) on thousands of ranges;
* ``tflite_activation_qparams`` against the C++ of ``GetAsymmetricQuantizationParams``
  transcribed here one float32 operation at a time;
* ``onnx_dynamic_qparams`` against backends.md §2.3 and the real operator;
* ``choose_qparams`` (textbook / PyTorch observer formula) against hand values (§3.3).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refquant.backends._onnx_params import dynamic_qparams as onnx_dynamic_qparams
from refquant.backends._onnx_params import tool_qparams as onnxruntime_qparams
from refquant.backends.tflite import activation_qparams as tflite_activation_qparams
from refquant.backends.tflite import bias_quantize as tflite_bias_quantize
from refquant.backends.tflite import symmetric_weight_quantize as tflite_symmetric_weight_quantize
from refquant.qparams import choose_qparams
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.qparams import QParams

F32 = np.float32


def _ranges(seed: int, n: int, *, f32_span: bool = False):
    """(min, max) pairs as float32: random magnitudes over 12 decades, and degenerate ones.

    ``f32_span``: drop the ranges whose width overflows float32 (-max..max), for the
    formulas that subtract in float32 (they would give an infinite scale).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        e = rng.uniform(-6, 6)
        a, b = rng.standard_normal(2) * 10 ** e
        kind = rng.integers(0, 4)
        if kind == 0:
            lo, hi = -abs(a), abs(b)
        elif kind == 1:
            lo, hi = sorted((a, b))
        elif kind == 2:   # one-sided
            lo, hi = (0.0, abs(a)) if a > 0 else (a, 0.0)
        else:             # tie-friendly: values on a coarse grid
            lo, hi = -float(rng.integers(0, 300)) / 8, float(rng.integers(0, 300)) / 8
        out.append((F32(lo), F32(hi)))
    tiny, sub = np.finfo(F32).tiny, np.finfo(F32).smallest_subnormal
    mx = np.finfo(F32).max
    degenerate = [(0.0, 0.0), (-0.0, 0.0), (0.0, sub), (-sub, 0.0), (0.0, tiny), (-tiny, tiny),
                  (0.0, 1e-36), (0.0, 2.9e-36), (0.0, 3.0e-36), (-1e-35, 1e-35), (0.0, 1e-30),
                  (1.0, 1.0), (-2.5, -2.5), (3.0, 7.0), (-7.0, -3.0), (-mx, mx), (-mx, 0.0), (0.0, mx),
                  (-1.0, 1.0), (-1.0, 254.0), (-128.0, 127.0), (-0.5, 0.5), (-1.3, 5.1),
                  (-1e-7, 1e-7), (-65504.0, 65504.0)]
    out += [(F32(a), F32(b)) for a, b in degenerate]
    if f32_span:
        out = [(a, b) for a, b in out if np.isfinite(np.float64(b) - np.float64(a)) and
               abs(np.float64(b) - np.float64(a)) < np.finfo(F32).max]
    return out


# ---------------------------------------------------------------- ONNX Runtime tool

ORT_TYPES = ["uint8", "int8", "uint16", "int16"]


@pytest.mark.conformance
@pytest.mark.parametrize("fmt", ORT_TYPES)
def test_onnxruntime_qparams_matches_the_tool(fmt):
    qu = pytest.importorskip("onnxruntime.quantization.quant_utils")
    from onnx import TensorProto
    qtype = getattr(TensorProto, fmt.upper())
    count = 0
    for k, (symmetric, reduce_range) in enumerate([(False, False), (False, True), (True, False), (True, True)]):
        qmin, qmax = qu.get_qmin_qmax_for_qType(qtype, reduce_range=reduce_range, symmetric=symmetric)
        for lo, hi in _ranges(10 * ORT_TYPES.index(fmt) + k, 260):
            zp, scale = qu.compute_scale_zp(np.array(lo), np.array(hi), qmin, qmax, symmetric=symmetric)
            qp = onnxruntime_qparams(lo, hi, fmt, symmetric=symmetric, reduce_range=reduce_range)
            where = f"{fmt} sym={symmetric} rr={reduce_range} range=({lo!r}, {hi!r})"
            assert np.asarray(scale).dtype == F32, where
            assert qp.scale.view(np.uint32) == np.asarray(scale, F32).view(np.uint32), \
                f"{where}: scale {float(qp.scale)!r} != ORT {float(scale)!r}"
            assert int(qp.zero_point) == int(zp), f"{where}: zp {int(qp.zero_point)} != ORT {int(zp)}"
            assert (qp.qmin, qp.qmax) == (int(qmin), int(qmax)), where
            count += 1
    assert count >= 1000


@pytest.mark.conformance
def test_onnxruntime_qparams_min_real_range():
    qu = pytest.importorskip("onnxruntime.quantization.quant_utils")
    from onnx import TensorProto
    qmin, qmax = qu.get_qmin_qmax_for_qType(TensorProto.UINT8)
    for lo, hi in _ranges(99, 150):
        for mrr in (1e-4, 0.01, 1.0):
            zp, scale = qu.compute_scale_zp(np.array(lo), np.array(hi), qmin, qmax, min_real_range=mrr)
            qp = onnxruntime_qparams(lo, hi, "uint8", min_real_range=mrr)
            assert float(qp.scale) == float(scale) and int(qp.zero_point) == int(zp), (lo, hi, mrr)


@pytest.mark.kernels
def test_onnxruntime_qparams_hand_values():
    qp = onnxruntime_qparams(-1.0, 1.0, "int8", symmetric=True)
    assert (qp.qmin, qp.qmax, int(qp.zero_point)) == (-127, 127, 0)
    assert qp.scale == F32(2.0 / 254)
    qp = onnxruntime_qparams(-1.0, 1.0, "uint8", symmetric=True)
    assert int(qp.zero_point) == 128 and qp.scale == F32(2.0 / 255)
    qp = onnxruntime_qparams(0.0, 0.0, "uint8")  # scale below float32 tiny -> (1, 0)
    assert float(qp.scale) == 1.0 and int(qp.zero_point) == 0
    qp = onnxruntime_qparams(-1.0, 1.0, "int8", reduce_range=True)
    assert (qp.qmin, qp.qmax) == (-64, 64)
    qp = onnxruntime_qparams(np.array([-1.0, 0.0], F32), np.array([1.0, 2.0], F32), "uint8")
    assert qp.granularity == "per_axis" and qp.scale.shape == (2,)
    np.testing.assert_array_equal(qp.zero_point, [128, 0])


@pytest.mark.kernels
def test_onnxruntime_qparams_errors():
    with pytest.raises(QuantizationValueError, match="rmin must be <= rmax"):  # the arguments' own names
        onnxruntime_qparams(1.0, -1.0)
    with pytest.raises(QuantizationValueError, match="NaN"):
        onnxruntime_qparams(np.nan, 1.0)
    with pytest.raises(QuantizationValueError, match="fmt"):
        onnxruntime_qparams(0.0, 1.0, "int7")


# ---------------------------------------------------------------- TFLite converter

def _std_round_f32(v: F32) -> int:
    """C std::round on a float: half away from zero, exact."""
    f = Fraction(float(v))
    return int(math.copysign(math.floor(abs(f) + Fraction(1, 2)), float(v)))


def _tflite_asymmetric_transcription(mn, mx, quant_min, quant_max):
    """LiteRT tools/optimize/quantization_utils.cc GetAsymmetricQuantizationParams, float by float."""
    quant_min_float = F32(quant_min)
    quant_max_float = F32(quant_max)
    mn = min(F32(mn), F32(0.0))
    mx = max(F32(mx), F32(0.0))
    scale = F32(F32(mx - mn) / F32(quant_max_float - quant_min_float))
    zero_point_from_min = quant_min_float
    if scale != 0:
        zero_point_from_min = F32(quant_min_float - F32(mn / scale))
    if zero_point_from_min < quant_min_float:
        zero_point = quant_min
    elif zero_point_from_min > quant_max_float:
        zero_point = quant_max
    else:
        zero_point = _std_round_f32(zero_point_from_min)
    return scale, zero_point


@pytest.mark.kernels
@pytest.mark.parametrize("fmt,qmin,qmax", [("int8", -128, 127), ("uint8", 0, 255)])
def test_tflite_activation_qparams_transcription(fmt, qmin, qmax):
    n = 0
    for lo, hi in _ranges(5 + qmax, 700, f32_span=True):
        if lo == 0 and hi == 0:
            continue
        s, z = _tflite_asymmetric_transcription(lo, hi, qmin, qmax)
        if s == 0:  # a subnormal range so small that the float32 scale underflows
            with pytest.raises(QuantizationValueError):
                tflite_activation_qparams(lo, hi, fmt)
            continue
        qp = tflite_activation_qparams(lo, hi, fmt)
        assert qp.scale.view(np.uint32) == np.asarray(s, F32).view(np.uint32), (lo, hi)
        assert int(qp.zero_point) == z, (lo, hi, int(qp.zero_point), z)
        n += 1
    assert n > 600


@pytest.mark.kernels
def test_tflite_zero_point_rounds_half_away():
    # zero_point_from_min = -128 - (-1.5) = -126.5 -> std::round -> -127 (RNE would give -126)
    lo, hi = F32(-1.5), F32(253.5)  # scale = 255 / 255 = 1
    qp = tflite_activation_qparams(lo, hi, "int8")
    assert float(qp.scale) == 1.0 and int(qp.zero_point) == -127
    assert int(choose_qparams(lo, hi, "int8").zero_point) == -126  # RNE


@pytest.mark.kernels
def test_tflite_int16_symmetric():
    for lo, hi in _ranges(17, 300):
        if max(abs(float(lo)), abs(float(hi))) == 0:
            continue
        want = F32(max(abs(min(lo, F32(0))), abs(max(hi, F32(0)))) / F32(32767))
        if want == 0:
            continue
        qp = tflite_activation_qparams(lo, hi, "int16")
        assert qp.scale == want and int(qp.zero_point) == 0, (lo, hi)


@pytest.mark.kernels
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_float32_span_overflow_is_an_error():
    """max - min overflows float32: TFLite and PyTorch would store an infinite scale; refquant refuses."""
    mx = np.finfo(F32).max
    with pytest.raises(QuantizationValueError, match="scale must be finite"):
        tflite_activation_qparams(-mx, mx)
    with pytest.raises(QuantizationValueError, match="scale must be finite"):
        choose_qparams(-mx, mx)
    qp = onnxruntime_qparams(-mx, mx)  # ORT subtracts in float64: finite
    assert np.isfinite(qp.scale)


@pytest.mark.kernels
def test_tflite_activation_errors():
    with pytest.raises(QuantizationValueError, match="must not both be 0"):
        tflite_activation_qparams(0.0, 0.0)
    with pytest.raises(QuantizationValueError, match="int8, uint8 or int16"):
        tflite_activation_qparams(-1.0, 1.0, "int4")


@pytest.mark.kernels
def test_tflite_symmetric_weight_quantize_transcription():
    rng = np.random.default_rng(21)
    w = (rng.standard_normal((4, 3, 3, 5)) * rng.uniform(0.01, 2, (4, 1, 1, 1))).astype(F32)
    w[2] = 0.0  # an all-zero channel: scale 0, q 0
    q, scale = tflite_symmetric_weight_quantize(w, axis=0)
    assert q.dtype == np.int8 and q.shape == w.shape and scale.dtype == F32 and scale.shape == (4,)
    for c in range(4):
        half = F32(max(abs(float(w[c].min())), abs(float(w[c].max()))))
        assert scale[c] == F32(half / F32(127))
        inv = F32(0) if half == 0 else F32(F32(127) / half)  # 127 / half, not 1 / scale
        want = [max(-127, min(127, _std_round_f32(F32(v * inv)))) for v in w[c].ravel()]
        np.testing.assert_array_equal(q[c].ravel(), want)
    assert scale[2] == 0 and not q[2].any()
    qt, st = tflite_symmetric_weight_quantize(w, axis=None)
    assert st.shape == () and st == F32(F32(np.abs(w).max()) / F32(127))
    q3, s3 = tflite_symmetric_weight_quantize(np.moveaxis(w, 0, 3), axis=-1)
    np.testing.assert_array_equal(s3, scale)
    np.testing.assert_array_equal(np.moveaxis(q3, 3, 0), q)


@pytest.mark.kernels
def test_tflite_bias_quantize():
    b = np.array([0.5, -0.5, 1e9, -1e9, 0.0, 0.25], F32)
    q = tflite_bias_quantize(b, 0.5, np.array([0.5, 0.5, 1e-6, 1e-6, 0.0, 1.0], F32))
    # inv = (float)(1.0 / (0.5 * w)); std::round; clamp to [-INT32_MAX, INT32_MAX]; scale 0 -> inv 0
    assert q.dtype == np.int32
    assert q.tolist() == [2, -2, 2 ** 31 - 1, -(2 ** 31 - 1), 0, 1]
    q = tflite_bias_quantize(np.array([0.375, -0.375], F32), 1.0, 0.25)  # 1.5 -> 2, -1.5 -> -2 (RHAZ)
    assert q.tolist() == [2, -2]


@pytest.mark.kernels
@pytest.mark.parametrize("call, exc, match", [
    (lambda: tflite_symmetric_weight_quantize(np.ones((2, 3), np.int8)), QuantizationTypeError,
     "w must be a float array, got integer dtype int8"),
    (lambda: tflite_symmetric_weight_quantize(np.ones((2, 3), F32), axis=2), QuantizationValueError,
     r"axis must be in \[-2, 1\] for a rank-2 input, got 2"),
    (lambda: tflite_bias_quantize(np.ones(2, np.int32), 1.0, 1.0), QuantizationTypeError, "bias must be a float"),
    (lambda: tflite_bias_quantize(np.ones(2, F32), -1.0, 1.0), QuantizationValueError,
     "input_scale must be finite and >= 0, got -1.0"),
    (lambda: tflite_bias_quantize(np.ones(2, F32), 1.0, [0.5, np.nan]), QuantizationValueError, "weight_scale"),
    (lambda: tflite_bias_quantize(np.ones(2, F32), 1.0, "0.5"), QuantizationTypeError, "weight_scale"),
    (lambda: tflite_bias_quantize(np.ones(2, F32), 1.0, [0.5, 0.5, 0.5]), ShapeError,
     r"weight_scale must be a scalar or have bias' shape \(2,\), got \(3,\)"),
    (lambda: tflite_bias_quantize(np.ones(2, F32), [1.0, 1.0], 0.5), ShapeError, "input_scale must be a scalar"),
])
def test_tflite_weight_and_bias_quantize_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------- ONNX DynamicQuantizeLinear

@pytest.mark.kernels
def test_dynamic_qparams_examples():
    """backends.md §2.3 (ORT == onnx.reference)."""
    s, z = onnx_dynamic_qparams(np.array([-1, 0, 1, 2, 3, 4, 5, 6.5], F32))
    assert s.dtype == F32 and s == F32(7.5) / F32(255) and abs(float(s) - 0.02941176) < 1e-8
    assert int(z) == 34
    s, z = onnx_dynamic_qparams(np.array([-1, 1.5499999], F32))
    assert abs(float(s) - 0.01) < 1e-9 and int(z) == 100
    s, z = onnx_dynamic_qparams(np.array([2.0, 4.0], F32))  # all positive: min widened to 0
    assert s == F32(4.0) / F32(255) and int(z) == 0
    s, z = onnx_dynamic_qparams(np.array([-2.0, -4.0], F32))
    assert s == F32(4.0) / F32(255) and int(z) == 255


@pytest.mark.kernels
def test_dynamic_qparams_all_zero_variants():
    x = np.zeros(5, F32)
    for variant, want in (("spec", 1.0), ("onnxruntime", 1.0), ("reference", F32(1.0 / 255.0))):
        s, z = onnx_dynamic_qparams(x, variant=variant)
        assert s == F32(want) and s.dtype == F32 and int(z) == 0, variant
    s, z = onnx_dynamic_qparams(np.zeros(0, F32))
    assert float(s) == 1.0 and int(z) == 0


@pytest.mark.kernels
def test_dynamic_qparams_errors():
    with pytest.raises(QuantizationValueError, match="variant"):
        onnx_dynamic_qparams(np.ones(2, F32), variant="tflite")
    with pytest.raises(QuantizationValueError, match="NaN"):
        onnx_dynamic_qparams(np.array([np.nan, 1.0], F32))
    with pytest.raises(QuantizationTypeError):
        onnx_dynamic_qparams(np.array(["a"]))


@pytest.mark.conformance
@pytest.mark.parametrize("engine", ["ort", "reference"])
def test_dynamic_qparams_against_the_operator(engine):
    pytest.importorskip("onnxruntime")
    from support.onnx_runner import run_dynamic_quantize_linear
    rng = np.random.default_rng(31)
    variant = "onnxruntime" if engine == "ort" else "reference"
    for i in range(150):
        n = int(rng.integers(1, 40))
        x = (rng.standard_normal(n) * 10 ** rng.uniform(-3, 3) + rng.uniform(-2, 2)).astype(F32)
        if i % 10 == 0:
            x = np.round(x)  # tie-friendly
        if i % 25 == 0:
            x[:] = 0
        _, y_scale, y_zp = run_dynamic_quantize_linear(x, engine=engine)
        s, z = onnx_dynamic_qparams(x, variant=variant)
        assert s.view(np.uint32) == np.asarray(y_scale, F32).view(np.uint32), (engine, x)
        assert int(z) == int(y_zp), (engine, x)


# ---------------------------------------------------------------- textbook / PyTorch observer formula

DATA = np.array([-1.3, 0.2, 2.7, 5.1], F32)


@pytest.mark.kernels
@pytest.mark.parametrize("fmt,symmetric,rr,scale,zp", [
    ("uint8", False, None, 0.02509804, 52),
    ("uint8", False, True, 0.05039370, 26),
    ("int8", False, None, 0.02509804, -76),
    ("int8", True, None, 0.04, 0),
    ("int8", True, True, 0.08031496, 0),
    ("uint8", True, None, 0.04, 128),
])
def test_choose_qparams_hand_values(fmt, symmetric, rr, scale, zp):
    """backends.md §3.3: data [-1.3, 0.2, 2.7, 5.1] (PyTorch observers, measured)."""
    qp = choose_qparams(DATA.min(), DATA.max(), fmt, symmetric=symmetric, reduce_range=rr)
    assert isinstance(qp, QParams)
    assert abs(float(qp.scale) - scale) < 5e-9 and int(qp.zero_point) == zp


@pytest.mark.kernels
def test_choose_qparams_by_hand_float32():
    """Affine: S = 6.4f / 255, Z = qmin - RNE(-1.3f / S)."""
    qp = choose_qparams(F32(-1.3), F32(5.1), "uint8")
    s = F32(F32(F32(5.1) - F32(-1.3)) / F32(255))
    assert qp.scale == s
    assert int(qp.zero_point) == 0 - int(np.rint(F32(F32(-1.3) / s)))  # RNE


@pytest.mark.kernels
def test_choose_qparams_degenerate():
    eps = F32(np.finfo(F32).eps)
    qp = choose_qparams(0.0, 0.0, "uint8")
    assert qp.scale == eps and int(qp.zero_point) == 0
    qp = choose_qparams(0.0, 0.0, "int8", symmetric=True)
    assert qp.scale == eps and int(qp.zero_point) == 0
    qp = choose_qparams(2.0, 2.0, "uint8")  # range widened to [0, 2]
    assert qp.scale == F32(2.0) / F32(255) and int(qp.zero_point) == 0
    qp = choose_qparams(-1e-12, 1e-12, "int8")  # tiny range: the eps floor
    assert qp.scale == eps
    qp = choose_qparams(0.0, 1.0, "int8", eps=1e-3)
    assert qp.scale == F32(1.0) / F32(255)
    qp = choose_qparams(-3.0, -1.0, "int8")  # all negative: zp at qmax
    assert int(qp.zero_point) == 127


@pytest.mark.kernels
def test_choose_qparams_per_axis_and_rounding_choice():
    lo = np.array([-1.0, 0.0, -1.5], F32)
    hi = np.array([1.0, 2.0, 253.5], F32)
    qp = choose_qparams(lo, hi, "int8", axis=0)
    assert qp.granularity == "per_axis" and qp.scale.shape == (3,)
    for c in range(3):
        one = choose_qparams(lo[c], hi[c], "int8")
        assert qp.scale[c] == one.scale and qp.zero_point[c] == one.zero_point
    assert int(qp.zero_point[2]) == -126  # -128 + RNE(1.5) = -128 + 2
    qa = choose_qparams(lo, hi, "int8", axis=0, zero_point_rounding="half_away_from_zero")
    assert int(qa.zero_point[2]) == -126  # -128 - RHAZ(-1.5) = -128 + 2 as well
    qp = choose_qparams(F32(-1.5), F32(253.5), "int8", zero_point_rounding="half_away_from_zero")
    assert int(qp.zero_point) == -126
    qp = choose_qparams(F32(-2.5), F32(252.5), "int8")  # RNE(-2.5) = -2 -> zp -126
    assert int(qp.zero_point) == -126
    qp = choose_qparams(F32(-2.5), F32(252.5), "int8", zero_point_rounding="half_away_from_zero")
    assert int(qp.zero_point) == -125


@pytest.mark.kernels
def test_choose_qparams_narrow_symmetric():
    qp = choose_qparams(-1.0, 2.54, "int8", symmetric=True, narrow=True)
    assert (qp.qmin, qp.qmax) == (-127, 127) and qp.scale == F32(F32(2.54) / F32(127))


@pytest.mark.kernels
def test_choose_qparams_errors():
    with pytest.raises(QuantizationValueError, match=r"min_val must be <= max_val, got min_val=2\.0 > max_val=1\.0"):
        choose_qparams(2.0, 1.0)
    with pytest.raises(QuantizationValueError, match="NaN"):
        choose_qparams(0.0, np.nan)
    with pytest.raises(ShapeError, match="same shape"):
        choose_qparams(np.zeros(2), np.ones(3), axis=0)
    with pytest.raises(ShapeError, match="need axis="):
        choose_qparams(np.zeros(2), np.ones(2))
    with pytest.raises(QuantizationTypeError, match="min_val must be a real number"):
        choose_qparams("a", 1.0)
    with pytest.raises(QuantizationTypeError, match="max_val"):
        choose_qparams(0.0, None)
    with pytest.raises(QuantizationValueError, match="rounding"):
        choose_qparams(-1.0, 1.0, zero_point_rounding="nearest")


@pytest.mark.conformance
@pytest.mark.parametrize("dtype,qscheme", [("quint8", "per_tensor_affine"), ("qint8", "per_tensor_affine"),
                                           ("qint8", "per_tensor_symmetric"), ("quint8", "per_tensor_symmetric")])
@pytest.mark.parametrize("reduce_range", [False, True])
@pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max:UserWarning")
def test_choose_qparams_matches_torch_minmax_observer(dtype, qscheme, reduce_range):
    torch = pytest.importorskip("torch")
    tdtype, tq = getattr(torch, dtype), getattr(torch, qscheme)
    if reduce_range and dtype == "quint8" and qscheme == "per_tensor_symmetric":
        # PyTorch refuses this combination (the PyTorch face raises UnsupportedError); the textbook
        # function is defined there: the midpoint of [0, 127].
        with pytest.raises(NotImplementedError, match="Cannot reduce range for symmetric"):
            torch.ao.quantization.MinMaxObserver(dtype=tdtype, qscheme=tq, reduce_range=True)
        assert int(choose_qparams(-1.0, 1.0, "uint8", symmetric=True, reduce_range=True).zero_point) == 64
        return
    fmt = {"quint8": "uint8", "qint8": "int8"}[dtype]
    for lo, hi in _ranges(3, 200, f32_span=True):
        obs = torch.ao.quantization.MinMaxObserver(dtype=tdtype, qscheme=tq, reduce_range=reduce_range)
        obs(torch.tensor([float(lo), float(hi)], dtype=torch.float32))
        s_t, z_t = obs.calculate_qparams()
        qp = choose_qparams(lo, hi, fmt, symmetric=qscheme.endswith("symmetric"),
                            reduce_range=True if reduce_range else None)
        assert qp.scale.view(np.uint32) == s_t.numpy().astype(F32).view(np.uint32)[0], (lo, hi)
        assert int(qp.zero_point) == int(z_t[0]), (lo, hi)


def test_tflite_converter_widens_tiny_and_empty_weight_channels():
    """TFLiteConverter (MLIR, TensorFlow 2.21), measured on a Dense layer whose channels hold only
    0, 1e-7, 4e-7 and 6e-7: scales 5e-7/127 for the first three, 6e-7/127 for the last (never 0,
    so a pruned channel quantizes); the legacy rule (min_half=0) writes 0 for an all-zero channel."""
    from refquant.backends import tflite

    w = np.zeros((4, 6), np.float32)
    w[0, 0], w[1, 0], w[3, 0] = 1e-7, 4e-7, 6e-7
    _, s = tflite.symmetric_weight_quantize(w, axis=0, min_half=5e-7)
    np.testing.assert_array_equal(s, np.array([3.9370081e-09, 3.9370081e-09, 3.9370081e-09, 4.7244098e-09], np.float32))
    _, s0 = tflite.symmetric_weight_quantize(w, axis=0)
    assert s0[2] == 0
    from refquant.errors import QuantizationValueError

    with pytest.raises(QuantizationValueError, match="min_half"):
        tflite.symmetric_weight_quantize(w, axis=0, min_half=-1.0)


def test_a_pruned_channel_quantizes_under_the_tflite_profiles():
    from refquant import models, ptq
    from refquant.data import load_digits

    m = models.load_reference_model("mlp")
    m[3].weight.value[5] = 0
    for profile in ("tflite_reference", "tflite_xnnpack"):
        qm = ptq.quantize_static(m, load_digits("train")[0][:64], profile=profile)
        assert qm.node("3").params["weight_scale"][5] == np.float32(5e-7) / np.float32(127)
        assert np.all(qm.node("3").params["weight"][5] == 0)

"""Dynamic-range kernels (:mod:`refquant.kernels.dynamic`) and the op (:mod:`refquant.ops.dynamic`):
hand-worked values, the other implementations of the same rules in the faces, and bad input.

The backends themselves are compared in ``tests/test_conformance_dynamic.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refquant.backends import pytorch as torch_face
from refquant.backends._onnx_params import dynamic_qparams
from refquant.backends._tflite_dynamic_params import dynamic_range_weight_quantize
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.kernels import dynamic as kd
from refquant.ops.dynamic import dynamic_linear
from refquant.profiles import PROFILES, get_profile
from refquant.specs import LayerSpec

pytestmark = pytest.mark.kernels

F32 = np.float32
TRAP = np.nextafter(F32(0.5), F32(0))  # 0.49999997


# ---------------------------------------------------------------- per-row rules, by hand


def test_symmetric_rows_by_hand():
    """max|x| = 127, so 127 / r = 1 and the codes are the rounded inputs; 9 columns: 8 in the vector body."""
    x = np.array([[127, 2.5, -2.5, TRAP, -TRAP, 0.5, 126.6, -127, TRAP]], F32)
    q, s = kd.quantize_rows_symmetric_s8(x)
    assert q.dtype == np.int8 and s.dtype == F32 and s.shape == (1,)
    # body: trunc(fl(v +- 0.5)): ties away, and the float32 trap 0.49999997 + 0.5 = 1.0; tail: std::round
    np.testing.assert_array_equal(q[0], [127, 3, -3, 1, -1, 1, 127, -127, 0])
    assert s[0] == F32(1)
    q, s = kd.quantize_rows_symmetric_s8(np.zeros((2, 3), F32))  # a row of zeros: q 0, scale 1
    assert not q.any() and np.all(s == 1)


def test_asymmetric_rows_by_hand():
    """[-1, 0, 3]: S_d = 4/255; Z = -128 + 63.75 = -64.25 (smaller error) -> -64; q = [-128, -64, 127]."""
    q, s, z = kd.quantize_rows_asymmetric_s8(np.array([[-1, 0, 3]], F32))
    np.testing.assert_array_equal(q, [[-128, -64, 127]])
    assert (s[0], z[0], z.dtype) == (F32(4 / 255), -64, np.int32)
    # the difference M - m is a float32 one: 1 - (-2^-24 * 3) rounds before the division by 255
    x = np.array([[1.0, -3 * 2.0 ** -25]], F32)
    _, s, _ = kd.quantize_rows_asymmetric_s8(x)
    assert s[0] == F32(float(F32(1 + 3 * 2.0 ** -25)) / 255) != F32((1 + 3 * 2.0 ** -25) / 255)


def test_qd8_rows_by_hand():
    """[-1, 0, 3]: s = 255 / 4 = 63.75; Z = lrintf(-128 + 63.75) = -64; q = [-128, -64, 127]; S = fl(1/63.75)."""
    q, s, z = kd.quantize_rows_qd8(np.array([[-1, 0, 3], [0, 0, 0]], F32))
    np.testing.assert_array_equal(q[0], [-128, -64, 127])
    assert (s[0], z[0]) == (F32(1) / F32(63.75), -64)
    assert s[1] == 1 and z[1] == 127 and np.all(q[1] == 127)  # m = M: s = 1, Z from the max side


# ---------------------------------------------------------------- per-tensor rules == the faces' versions


def _ranges():
    rng = np.random.default_rng(9)
    pairs = [(0, 0), (0, 1), (-1, 0), (-1, 1), (-3, 1e-9), (-1e-9, 1e-9), (1e-30, 2e-30), (-5e-5, 3e-3),
             (-1e6, 1e6), (2, 5), (-5, -2), (-0.0, 0.0), (-1e-38, 1e-38)]
    pairs += [tuple(sorted(rng.standard_normal(2) * 10 ** rng.uniform(-8, 4))) for _ in range(200)]
    return [(F32(a), F32(b)) for a, b in pairs]


@pytest.mark.parametrize("reduce_range", [False, True])
def test_choose_u8_nudged_equals_the_pytorch_face(reduce_range):
    for lo, hi in _ranges():
        s, z = kd.choose_u8_nudged(lo, hi, reduce_range=reduce_range)
        fs, fz = torch_face.choose_qparams_dynamic(lo, hi, qmin=0, qmax=255, reduce_range=reduce_range)
        assert (s.tobytes(), z) == (fs.tobytes(), fz), (lo, hi)


def test_choose_u8_dql_equals_the_onnxruntime_face():
    for lo, hi in _ranges():
        s, z = kd.choose_u8_dql(lo, hi)
        fs, fz = dynamic_qparams(np.array([lo, hi], F32), variant="onnxruntime")
        assert (s.tobytes(), z) == (fs.tobytes(), int(fz)), (lo, hi)


# ---------------------------------------------------------------- accumulation and output


def test_sign_transfer_dot():
    q = np.array([[-1] * 16 + [-1]], np.int8)  # 16 columns in the SSE block, one in the tail
    w = np.full((1, 17), -128, np.int8)
    # block: -1 * -128 counts as -128 (psignb of -128 wraps); tail: exact +128
    assert kd.dot_s8_sign_transfer(q, w)[0, 0] == 16 * -128 + 128
    rng = np.random.default_rng(1)
    q, w = rng.integers(-128, 128, (5, 40)).astype(np.int8), rng.integers(-127, 128, (7, 40)).astype(np.int8)
    np.testing.assert_array_equal(kd.dot_s8_sign_transfer(q, w), q.astype(np.int64) @ w.astype(np.int64).T)


def test_row_sums_int16_lanes():
    w = np.full((1, 16 * 129), 127, np.int8)  # each lane: 129 pairs of 254 = 32766, still int16
    assert kd.row_sums_int16_lanes(w)[0] == 127 * w.size
    w = np.full((1, 16 * 130 + 8 + 5), 127, np.int8)  # 130 pairs + 127 = 33147: wraps to -32389
    lane = (130 * 254 + 127 + 2 ** 15) % 2 ** 16 - 2 ** 15
    assert kd.row_sums_int16_lanes(w)[0] == 8 * lane + 5 * 127


def test_dynamic_output_modes():
    acc = np.array([[16777217, -3]], np.int32)  # 2^24 + 1: fl(acc) rounds (cvtdq2ps)
    sx, sw, b = F32(0.1), np.array([0.3, 0.7], F32), np.array([1.0, -0.0], F32)
    a = acc.astype(F32)
    m = (sx * sw).astype(F32)
    want = {"mul_then_add": ((a * m).astype(F32) + b).astype(F32),
            "fma": (a.astype(np.float64) * m + b).astype(F32),  # exact product + b, one rounding (exact here)
            "scale_then_fma": ((a * sx).astype(F32).astype(np.float64) * sw + b).astype(F32)}
    for mode, y in want.items():
        got = kd.dynamic_output(acc, sx, sw, b, mode=mode)
        assert got.dtype == F32 and got.shape == (1, 2)
        np.testing.assert_array_equal(got, y, err_msg=mode)
    zero = kd.dynamic_output(np.zeros((1, 2), np.int32), sx, sw, None, mode="fma")
    assert not np.signbit(zero).any()  # no bias: +0


# ---------------------------------------------------------------- the op


def test_op_equals_pytorch_face():
    rng = np.random.default_rng(3)
    for engine, name in (("fbgemm", "pytorch_fbgemm"), ("qnnpack", "pytorch_qnnpack")):
        for t in range(20):
            m, k, n = int(rng.integers(1, 9)), int(rng.integers(1, 40)), int(rng.integers(1, 9))
            x = (rng.standard_normal((m, k)) * rng.choice([1e-6, 1, 1e3])).astype(F32)
            w = rng.integers(-128, 128, (n, k)).astype(np.int8)
            ws = rng.uniform(1e-3, 1e-2, n).astype(F32) if t % 2 else F32(0.004)
            b = rng.standard_normal(n).astype(F32) if t % 3 else None
            rr = bool(t % 4)
            want = torch_face.dynamic_linear(x, w, ws, 0, b, reduce_range=rr, engine=engine, isa="exact")
            got = dynamic_linear(x, w, ws, 0, b, profile=get_profile(name, isa="exact"), reduce_range=rr)
            assert got.tobytes() == want.tobytes(), (engine, t)


def test_op_zero_input_and_empty():
    w, b = np.ones((2, 3), np.int8), np.array([-0.0, 2], F32)
    for name, keeps_minus_zero in (("tflite_reference", True), ("tflite_xnnpack", False), ("onnxruntime", False)):
        y = dynamic_linear(np.zeros((2, 3), F32), w, F32(0.5), 0, b, profile=name)
        np.testing.assert_array_equal(y, [[0, 2], [0, 2]])
        assert bool(np.signbit(y[:, 0]).all()) == keeps_minus_zero, name  # EvalHybridDense returns the bias
    assert dynamic_linear(np.zeros((0, 3), F32), w, F32(0.5), 0, b, profile="tflite_reference").shape == (0, 2)


def test_dynamic_range_weights():
    w = np.array([[0.5, -1.0, 0.25], [0, 0, 0], [3e-7, 0, -1e-7]], F32)
    q, s = dynamic_range_weight_quantize(w)
    np.testing.assert_array_equal(q[0], [64, -127, 32])  # 0.5 / (1/127) = 63.5 -> RHAZ 64
    assert s[0] == F32(1 / 127) and s[1] == F32(1e-6 / 254) and not q[1].any()
    np.testing.assert_array_equal(q[2], [76, 0, -25])  # widened to h = 5e-7: 3e-7 / (1e-6/254) = 76.2


# ---------------------------------------------------------------- bad input


def test_bad_input():
    x, w, b = np.ones((2, 3), F32), np.ones((4, 3), np.int8), np.zeros(4, F32)
    with pytest.raises(QuantizationTypeError, match="x must be a float32 array, got dtype float64"):
        dynamic_linear(np.ones((2, 3)), w, F32(1), 0, b, profile="onnxruntime")
    with pytest.raises(ShapeError, match=r"x must have shape \(M, K\) with K = w.shape\[1\] = 3, got shape \(2, 4\)"):
        dynamic_linear(np.ones((2, 4), F32), w, F32(1), 0, b, profile="onnxruntime")
    with pytest.raises(QuantizationValueError, match="x must be finite"):
        dynamic_linear(np.array([[1, np.nan, 0]], F32), w, F32(1), 0, b, profile="tflite_reference")
    with pytest.raises(QuantizationTypeError, match="w must have dtype int8, got uint8"):
        dynamic_linear(x, w.astype(np.uint8), F32(1), 0, b, profile="onnxruntime")
    with pytest.raises(ShapeError, match=r"w_scale must be float32 of shape \(\) or \(4,\)"):
        dynamic_linear(x, w, np.ones(3, F32), 0, b, profile="onnxruntime")
    with pytest.raises(QuantizationValueError, match="w_scale must be positive and finite, got -1.0"):
        dynamic_linear(x, w, F32(-1), 0, b, profile="onnxruntime")
    with pytest.raises(ShapeError, match=r"bias must be float32 of shape \(4,\)"):
        dynamic_linear(x, w, F32(1), 0, np.zeros(3, F32), profile="onnxruntime")
    with pytest.raises(UnsupportedError, match="ignores the weight zero point"):
        dynamic_linear(x, w, F32(1), 3, b, profile="tflite_reference")
    for name in ("onnx", "gemmlowp"):
        with pytest.raises(UnsupportedError, match=f"profile '{name}' has no dynamic-range kernel"):
            dynamic_linear(x, w, F32(1), 0, b, profile=name)
    with pytest.raises(QuantizationValueError, match="dynamic_input must be one of"):
        LayerSpec(dynamic_input="per_row")
    with pytest.raises(QuantizationValueError, match="dynamic_output must be one of"):
        dataclasses.replace(PROFILES["onnxruntime"].linear, dynamic_output="fused")


def test_kernel_bad_input():
    with pytest.raises(QuantizationTypeError, match="x must be a float32 array, got dtype int64"):
        kd.quantize_rows_symmetric_s8(np.ones((2, 3), np.int64))
    with pytest.raises(ShapeError, match=r"x must have shape \(M, K\) with K >= 1, got shape \(3,\)"):
        kd.quantize_rows_asymmetric_s8(np.ones(3, F32))
    with pytest.raises(ShapeError, match=r"got shape \(2, 0\)"):
        kd.quantize_rows_qd8(np.ones((2, 0), F32))
    with pytest.raises(QuantizationValueError, match="x must be finite"):
        kd.quantize_rows_qd8(np.array([[np.inf]], F32))
    with pytest.raises(QuantizationValueError, match="x_min must be <= x_max, got 1.0 and 0.0"):
        kd.choose_u8_dql(1.0, 0.0)
    with pytest.raises(QuantizationValueError, match="x_min must be finite"):
        kd.choose_u8_nudged(float("nan"), 0.0)
    with pytest.raises(ShapeError, match=r"w must have K = q.shape\[1\] = 3 columns"):
        kd.dot_s8_sign_transfer(np.ones((1, 3), np.int8), np.ones((2, 4), np.int8))
    with pytest.raises(QuantizationValueError, match="mode must be one of"):
        kd.dynamic_output(np.zeros((1, 1), np.int32), F32(1), F32(1), None, mode="fused")
    with pytest.raises(ShapeError, match=r"x_scale must have shape \(\) or \(2,\), got \(3,\)"):
        kd.dynamic_output(np.zeros((2, 1), np.int32), np.ones(3, F32), F32(1), None, mode="fma")
    with pytest.raises(QuantizationTypeError, match="acc must have dtype int32"):
        kd.dynamic_output(np.zeros((2, 1), np.int64), F32(1), F32(1), None, mode="fma")

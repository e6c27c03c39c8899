"""Tests for exercise 02. DO NOT EDIT: edit quantize.py, then run ``python -m exercises 02``.

First the visible cases you can check by hand, then fresh inputs compared with refquant.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import dequantize, make_qparams, quantize
from refquant.dtypes import FORMATS

ex = load_exercise(__file__, "quantize.py")

# The worked example of Learn 2, section 3: int2 codes [-2, 1], S = 1/3, Z = -1.
X = np.array([[-0.90, -0.50, -0.40, -0.20, -0.10],
              [0.00, 0.05, 0.10, 0.20, 0.25],
              [0.30, 0.35, 0.40, 0.45, 0.50],
              [0.55, 0.60, 0.65, 0.70, 0.75],
              [0.80, 0.85, 0.90, 1.00, 1.50]], dtype=np.float32)
Q = np.array([[-2, -2, -2, -2, -1],
              [-1, -1, -1, 0, 0],
              [0, 0, 0, 0, 1],
              [1, 1, 1, 1, 1],
              [1, 1, 1, 1, 1]])


def _diagnose(x, scale, zp, got, qmin, qmax):
    """Name the common mistake whose results equal ``got`` (for failure messages)."""
    x32, s32 = np.asarray(x, np.float32), np.float32(scale)
    with np.errstate(all="ignore"):
        v32 = x32 / s32
        candidates = {
            "you divided in float64; divide in float32 (x.astype(np.float32) / np.float32(scale))":
                np.rint(x32.astype(np.float64) / np.float64(s32)) + zp,
            "you multiplied by 1/scale; ONNX divides by the scale":
                np.rint(x32 * (np.float32(1) / s32)) + zp,
            "you added the zero point before rounding; ONNX adds it after (it flips ties when Z is odd)":
                np.rint(v32 + np.float32(zp)),
            "ties go away from zero in your code; ONNX rounds half to even (np.rint)":
                np.copysign(np.floor(np.abs(v32) + np.float32(0.5)), v32) + zp,
            "you rounded with floor(v + 0.5) (ties up); ONNX rounds half to even (np.rint)":
                np.floor(v32 + np.float32(0.5)) + zp,
            "you truncated (astype(int) without rounding); round half to even first":
                np.trunc(v32) + zp,
        }
    for why, cand in candidates.items():
        if np.array_equal(np.clip(cand, qmin, qmax), got):
            return why
    return "see Learn 2, eq. (2)"


def _check_quantize(x, scale, zp, fmt):
    f = FORMATS[fmt]
    got = np.asarray(ex.quantize(x, scale, zp, f.qmin, f.qmax))
    want = quantize(x, make_qparams(scale, zp, fmt)).astype(np.int64)
    assert got.shape == x.shape, f"shape {got.shape}, expected {x.shape}"
    assert got.dtype == np.int64, f"return int64 codes, got {got.dtype}"
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)[:4]
        pytest.fail(f"{fmt}, scale={np.float32(scale)!r}, zero_point={zp}: {(got != want).sum()} of {x.size} codes differ; "
                    f"{_diagnose(x, scale, zp, got, f.qmin, f.qmax)}. First: "
                    + ", ".join(f"x={x.flat[i]!r}: got {got.flat[i]}, expected {want.flat[i]}" for i in bad))


# ----------------------------------------------------------------------------- visible cases
def test_worked_example_by_hand():
    got = np.asarray(ex.quantize(X, 1 / 3, -1, -2, 1))
    if not np.array_equal(got, Q):
        pytest.fail(f"Learn 2, section 3: x / S = 3x, round half to even, -1, clamp [-2, 1]. Got\n{got}\n"
                    f"expected\n{Q}\n{_diagnose(X, 1 / 3, -1, got, -2, 1)}")


def test_worked_example_dequantize_by_hand():
    r = np.asarray(ex.dequantize(Q, 1 / 3, -1))
    assert r.dtype == np.float32, f"dequantize must return float32, got {r.dtype}"
    np.testing.assert_array_equal(np.rint(3 * r), Q + 1)  # r = (q + 1) / 3  # RNE of near-integers


def test_odd_zero_point_ties_by_hand():
    x = np.array([0.5, 1.5, 2.5, -0.5], np.float32)  # x / S = x: all ties
    got = np.asarray(ex.quantize(x, 1.0, 1, -128, 127)).tolist()
    assert got == [1, 3, 3, 1], (f"got {got}: RNE(x) + 1 = [0+1, 2+1, 2+1, -0+1]. [2, 2, 4, 0] means the zero point "
                                 f"was added before rounding (PyTorch 2.13 does that; ONNX does not)")


def test_saturation_by_hand():
    got = np.asarray(ex.quantize(np.array([-10.0, 10.0, 0.0], np.float32), 0.05, 0, -128, 127)).tolist()
    assert got == [-128, 127, 0], f"got {got}: -10 / 0.05 = -200 saturates to -128"


def test_float32_division_by_hand():
    # x / s is exactly 117.5 in float32 (-> 118) but 117.49999740 in float64 (-> 117).
    got = np.asarray(ex.quantize(np.array([5.392814], np.float32), 0.04589629, 0, -128, 127)).tolist()
    assert got == [118], f"got {got}: divide in float32, x.astype(np.float32) / np.float32(scale)"
    # x / s is 127.49999 but x * (1/s) is 127.5 (-> 128): ONNX divides.
    got = np.asarray(ex.quantize(np.array([0.273939937], np.float32), 0.00214854861, 0, 0, 255)).tolist()
    assert got == [127], f"got {got}: ONNX divides by the scale; multiplying by 1/scale gives 128"


def test_per_channel_by_hand():
    x = np.array([[0.5, 1.0, -1.0],
                  [0.5, 1.0, -1.0]], np.float32)
    want = [[1, 2, -2],          # row 0: S = 0.5, Z = 0
            [12, 14, 6]]         # row 1: S = 0.25, Z = 10
    for axis in (0, -2):
        got = np.asarray(ex.quantize_per_channel(x, np.array([0.5, 0.25]), np.array([0, 10]), axis, -128, 127))
        assert got.tolist() == want, f"axis={axis}: got {got.tolist()}, expected {want}"


def test_fake_quantize_by_hand():
    y = np.asarray(ex.fake_quantize(X, 1 / 3, -1, -2, 1))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.rint(3 * y), Q + 1)  # RNE of near-integers


# ----------------------------------------------------------------------------- fresh inputs
CASES = [("int8", 0), ("uint8", 1), ("int4", 2), ("uint4", 3), ("int16", 4), ("int2", 5)]


def _fresh(fmt, seed):
    f = FORMATS[fmt]
    rng = np.random.default_rng(seed)
    scale = float(np.float32(10 ** rng.uniform(-3, 0)))
    zp = int(rng.integers(f.qmin, f.qmax + 1))
    lo, hi = (f.qmin - zp) * scale, (f.qmax - zp) * scale
    span = hi - lo
    k = rng.integers(f.qmin - zp, f.qmax - zp, 300)
    x = np.concatenate([
        rng.uniform(lo - 0.1 * span, hi + 0.1 * span, 1500),   # some values saturate
        (k + 0.5) * scale,                                      # near ties
        k * scale, [0.0],                                       # on the grid, and zero
    ]).astype(np.float32)
    return rng.permutation(x), scale, zp


@pytest.mark.parametrize("fmt,seed", CASES)
def test_quantize_fresh_against_refquant(fmt, seed):
    x, scale, zp = _fresh(fmt, 9000 + seed)
    _check_quantize(x, scale, zp, fmt)


@pytest.mark.parametrize("fmt,seed", CASES)
def test_dequantize_fresh_against_refquant(fmt, seed):
    f = FORMATS[fmt]
    rng = np.random.default_rng(9100 + seed)
    scale = float(np.float32(10 ** rng.uniform(-3, 0)))
    zp = int(rng.integers(f.qmin, f.qmax + 1))
    q = rng.integers(f.qmin, f.qmax + 1, 1000).astype(f.dtype)
    got = np.asarray(ex.dequantize(q, scale, zp))
    want = dequantize(q, make_qparams(scale, zp, fmt))
    assert got.dtype == np.float32, f"dequantize must return float32, got {got.dtype}"
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32),
                                  err_msg="subtract in int64, then float32(q - Z) * float32(scale)")


def test_per_channel_fresh_against_refquant():
    rng = np.random.default_rng(9200)
    x = rng.normal(0, 1, (3, 5, 4)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        c = x.shape[axis]
        scales = (10 ** rng.uniform(-2, -0.5, c)).astype(np.float32)
        zps = rng.integers(-20, 20, c)
        got = np.asarray(ex.quantize_per_channel(x, scales, zps, axis, -128, 127))
        want = quantize(x, make_qparams(scales, zps.astype(np.int8), "int8", axis=axis))
        np.testing.assert_array_equal(got, want, err_msg=f"axis={axis}")


def test_fake_quantize_fresh_against_refquant():
    x, scale, zp = _fresh("int8", 9300)
    got = np.asarray(ex.fake_quantize(x, scale, zp, -128, 127))
    qp = make_qparams(scale, zp, "int8")
    want = dequantize(quantize(x, qp), qp)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_error_at_most_half_a_step_inside_the_range():
    x, scale, zp = _fresh("uint8", 9400)
    y = np.asarray(ex.fake_quantize(x, scale, zp, 0, 255)).astype(np.float64)
    lo, hi = (0 - zp) * scale, (255 - zp) * scale
    inside = (x >= lo) & (x <= hi)
    ulp = float(np.spacing(np.float32(np.abs(x).max())))  # float32 rounding of x and of S (q - Z)
    err = np.abs(y - x)[inside].max()
    assert err <= scale / 2 + 2 * ulp, f"Learn 2, eq. (3): |r_hat - r| <= S/2 inside the range, got {err} > {scale / 2}"

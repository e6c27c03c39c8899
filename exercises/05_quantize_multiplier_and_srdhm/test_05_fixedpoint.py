"""Tests for exercise 05. DO NOT EDIT: edit fixedpoint.py, then run ``python -m exercises 05``.

First the cases of Learn 4 you can check by hand and TensorFlow's own test vectors, then fresh
values compared with ``refquant.fixedpoint``, bit for bit.
"""

import math

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import fixedpoint as fp

ex = load_exercise(__file__, "fixedpoint.py")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _arr(v):
    out = np.asarray(v)
    assert out.dtype == np.int32, f"return int32, got {out.dtype}"
    return out


# ----------------------------------------------------------------------------- quantize_multiplier
def test_quantize_multiplier_by_hand():
    # 0.25 = 0.5 * 2^-1 -> q = 2^30; 0.375 = 0.75 * 2^-1 -> q = 0.75 * 2^31; 1.5 = 0.75 * 2^1
    for m, want in ((0.25, (1073741824, -1)), (0.375, (1610612736, -1)), (1.5, (1610612736, 1)), (0.0, (0, 0))):
        got = ex.quantize_multiplier(m)
        assert tuple(got) == want, f"quantize_multiplier({m}): expected {want}, got {got}"
        assert all(isinstance(v, int) for v in got), f"return Python ints, got {[type(v).__name__ for v in got]}"


def test_quantize_multiplier_rounds_ties_away_from_zero():
    # f * 2^31 = 2^30 + 2.5 exactly: half away from zero gives 2^30 + 3, half to even 2^30 + 2.
    m = (2**31 + 5) / 2**32
    got = ex.quantize_multiplier(m)
    if tuple(got) == (2**30 + 2, 0):
        pytest.fail("a tie went to even: TFLite rounds f * 2^31 half away from zero (std::round), not round()/np.rint")
    assert tuple(got) == (2**30 + 3, 0), f"expected {(2**30 + 3, 0)}, got {got}"


def test_quantize_multiplier_tensorflow_vectors():
    # tensorflow/lite/kernels/internal/quantization_util_test.cc
    vectors = [(0.5 - 5e-9, (2147483627, -1)), (0.5 - 1e-10, (1073741824, 0)), (0.5, (1073741824, 0)),
               (0.75, (1610612736, 0)), (1 - 1e-9, (2147483646, 0)), (1 + 1e-11, (1073741824, 1)),
               (1.25, (1342177280, 1)), (2 - 1e-9, (2147483647, 1)), (2 - 1e-11, (1073741824, 2)),
               (2.0, (1073741824, 2)), (math.ldexp(1, -31), (1073741824, -30)),
               (math.ldexp(1, -32), (1073741824, -31)), (math.ldexp(0.99, -32), (0, 0)), (math.ldexp(1, -33), (0, 0))]
    for m, want in vectors:
        got = tuple(ex.quantize_multiplier(m))
        hint = ""
        if m == 0.5 - 1e-10 and got == (2**31, -1):
            hint = " (q rounded up to 2^31, which does not fit int32: use q = 2^30 and shift + 1, eq. (5))"
        if m < 2.0**-32 and got != (0, 0):
            hint = " (shift < -31: TFLite flushes the multiplier to (0, 0))"
        assert got == want, f"quantize_multiplier({m!r}): expected {want}, got {got}{hint}"


def test_quantize_multiplier_fresh_values():
    rng = np.random.default_rng(505)
    for m in np.concatenate([10.0 ** rng.uniform(-9, 2, 400), rng.uniform(0.49, 0.51, 50)]):
        got, want = tuple(ex.quantize_multiplier(float(m))), fp.quantize_multiplier(float(m))
        assert got == want, f"quantize_multiplier({float(m)!r}): expected {want}, got {got}"


# ----------------------------------------------------------------------------- SRDHM and RDBPOT
def test_srdhm_by_hand():
    # q = 2^30 is one half in Q31: SRDHM(a, 2^30) = RHU(a / 2): ties go up, for both signs.
    got = _arr(ex.saturating_rounding_doubling_high_mul(np.array([5, -5, 3, -3, 4], np.int32), 2**30))
    if got.tolist() == [3, -3, 2, -2, 2]:
        pytest.fail("ties went away from zero: SRDHM rounds half UP, floor((a*b + 2^30) / 2^31)")
    if got.tolist() == [2, -3, 1, -2, 2]:
        pytest.fail("you floored without the rounding term: add 2^30 before the shift by 31")
    assert got.tolist() == [3, -2, 2, -1, 2], f"SRDHM([5, -5, 3, -3, 4], 2^30): expected [3, -2, 2, -1, 2], got {got}"


def test_srdhm_saturation_by_hand():
    got = _arr(ex.saturating_rounding_doubling_high_mul(np.array([INT32_MIN, INT32_MIN, INT32_MAX], np.int32),
                                                        np.array([INT32_MIN, INT32_MAX, INT32_MAX], np.int32)))
    assert got.tolist() == [INT32_MAX, -INT32_MAX, INT32_MAX - 1], (
        f"expected [INT32_MAX, -INT32_MAX, INT32_MAX - 1], got {got.tolist()} (INT32_MIN * INT32_MIN saturates; "
        "multiply in int64)")


def test_rdbpot_by_hand():
    got = _arr(ex.rounding_divide_by_pot(np.array([5, -5, 3, -3, 4, -4, 7], np.int32), 1))
    if got.tolist() == [3, -2, 2, -1, 2, -2, 4]:
        pytest.fail("ties went up: RDBPOT rounds half AWAY FROM ZERO (the threshold is one larger for x < 0)")
    assert got.tolist() == [3, -3, 2, -2, 2, -2, 4], f"RDBPOT(x, 1): expected [3, -3, 2, -2, 2, -2, 4], got {got}"
    assert _arr(ex.rounding_divide_by_pot(np.array([-7, 7, 123], np.int32), 0)).tolist() == [-7, 7, 123], \
        "exponent 0 divides by 1"


def test_srdhm_and_rdbpot_fresh_values():
    rng = np.random.default_rng(5050)
    edges = np.array([INT32_MIN, INT32_MIN + 1, -(2**30), -3, -1, 0, 1, 3, 2**30, INT32_MAX - 1, INT32_MAX], np.int64)
    a = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True), np.repeat(edges, len(edges))])
    b = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 3000, endpoint=True), np.tile(edges, len(edges))])
    a, b = a.astype(np.int32), b.astype(np.int32)
    np.testing.assert_array_equal(_arr(ex.saturating_rounding_doubling_high_mul(a, b)),
                                  fp.saturating_rounding_doubling_high_mul(a, b), err_msg="SRDHM")
    for e in (0, 1, 2, 5, 13, 30, 31):
        np.testing.assert_array_equal(_arr(ex.rounding_divide_by_pot(a, e)), fp.rounding_divide_by_pot(a, e),
                                      err_msg=f"RDBPOT(x, {e})")


# ----------------------------------------------------------------------------- MBQM
def test_mbqm_issue_25087_by_hand():
    # Learn 4, section 5: SRDHM(7984, 1583594044) = 5888; RDBPOT(5888, 9) = RHAZ(11.5) = 12.
    got = int(_arr(ex.multiply_by_quantized_multiplier(np.array([7984], np.int32), 1583594044, -9))[0])
    if got == 11:
        pytest.fail("11 is single rounding; TFLite's default build rounds twice: RDBPOT(SRDHM(x, q), 9) = 12")
    assert got == 12, f"expected 12, got {got}"


def test_mbqm_golden_table():
    # backends.md section 1.5 (double rounding), M = 0.25 (q = 2^30, shift = -1) and M = 1.5 (shift = +1)
    x = np.array([-10, -6, -3, -2, 1, 2, 5, 10, 123457], np.int32)
    got = _arr(ex.multiply_by_quantized_multiplier(x, 1073741824, -1))
    assert got.tolist() == [-3, -2, -1, -1, 1, 1, 2, 3, 30865], f"M = 0.25: got {got.tolist()}"
    got = _arr(ex.multiply_by_quantized_multiplier(np.array([-3, 3], np.int32), 1610612736, 1))
    assert got.tolist() == [-4, 5], f"M = 1.5 (a left shift of 1, then SRDHM): expected [-4, 5], got {got.tolist()}"


def test_mbqm_fresh_values():
    rng = np.random.default_rng(50505)
    x = rng.integers(-(2**20), 2**20, 500).astype(np.int32)
    for m in 10.0 ** rng.uniform(-6, 0.5, 60):
        q, shift = fp.quantize_multiplier(float(m))
        np.testing.assert_array_equal(_arr(ex.multiply_by_quantized_multiplier(x, q, shift)),
                                      fp.multiply_by_quantized_multiplier(x, q, shift),
                                      err_msg=f"M = {m!r}: q = {q}, shift = {shift}")

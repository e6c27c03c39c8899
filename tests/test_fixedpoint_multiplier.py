"""Tests of refquant.fixedpoint_multiplier (offline: a real multiplier to TFLite's (q, shift)).

Oracles: (1) the test vectors of TF ``quantization_util_test.cc`` and backends.md §1.1,
copied verbatim; (2) ``fractions.Fraction`` arithmetic written from the definitions
(:func:`ref_quantize_multiplier`), not from the implementation. The C transcription of
``QuantizeMultiplier`` is checked in ``test_fixedpoint.py`` beside the MBQM one (one C helper).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refquant import fixedpoint as fp
from refquant import fixedpoint_multiplier as fpmul
from refquant.errors import QuantizationTypeError, QuantizationValueError

pytestmark = pytest.mark.kernels

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------- oracle


def ref_quantize_multiplier(m: float, single: bool = False, emulate: bool = False):
    if m == 0:
        return 0, 0
    a = abs(Fraction(m))
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while a / Fraction(2) ** e >= 1:
        e += 1
    while a / Fraction(2) ** e < Fraction(1, 2):
        e -= 1
    v = a * Fraction(2) ** (31 - e)  # in [2^30, 2^31)
    n = math.floor(v)
    frac = v - n
    q = n + (frac > Fraction(1, 2) if emulate else frac >= Fraction(1, 2))
    q = -q if m < 0 else q
    if q == 2**31:
        q, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    if single and e > 30:
        return I32_MAX, 30
    return q, e


# --------------------------------------------------------------------------- TF quantization_util_test.cc


@pytest.mark.parametrize("m, expected", [
    (0.25, (1073741824, -1)),
    (0.50 - 5e-9, (2147483627, -1)),
    (0.50 - 1e-10, (1073741824, 0)),
    (0.50, (1073741824, 0)),
    (0.75, (1610612736, 0)),
    (1 - 1e-9, (2147483646, 0)),
])
def test_tf_smaller_than_one_exp(m, expected):
    assert fpmul.quantize_multiplier_smaller_than_one_exp(m) == expected


@pytest.mark.parametrize("m", [-0.1, 0.0, 1 - 1e-15, 1 - 1e-17, 1.0])
def test_tf_smaller_than_one_exp_death(m):
    with pytest.raises(QuantizationValueError):
        fpmul.quantize_multiplier_smaller_than_one_exp(m)


@pytest.mark.parametrize("m, expected", [
    (1 + 1e-11, (1073741824, 1)),
    (1.25, (1342177280, 1)),
    (1.50, (1610612736, 1)),
    (1.75, (1879048192, 1)),
    (2 - 1e-9, (2147483647, 1)),
    (2 - 1e-11, (1073741824, 2)),
    (2, (1073741824, 2)),
])
def test_tf_greater_than_one(m, expected):
    assert fpmul.quantize_multiplier_greater_than_one(m) == expected


def test_tf_greater_than_one_death():
    with pytest.raises(QuantizationValueError):
        fpmul.quantize_multiplier_greater_than_one(1 + 1e-16)


@pytest.mark.parametrize("emulate", [False, True])
def test_tf_underflow(emulate):
    f32 = lambda v: float(np.float32(v))  # std::ldexp(1.0f, ...) takes a float
    cases = [(math.ldexp(f32(1.0), -31), (1073741824, -30)),
             (math.ldexp(f32(1.0), -32), (1073741824, -31)),
             (math.ldexp(f32(0.99), -32), (0, 0)),
             (math.ldexp(f32(1.0), -33), (0, 0))]
    for m, expected in cases:
        assert fpmul.quantize_multiplier(m, emulate_float=emulate) == expected, m


def test_tf_integer_frexp():
    assert fpmul.integer_frexp(0.0) == (0, 0)
    assert fpmul.integer_frexp(1.0) == (0x40000000, 1)
    assert fpmul.integer_frexp(0.25) == (0x40000000, -1)
    assert fpmul.integer_frexp(-1.0) == (-(1 << 30), 1)
    frac, shift = fpmul.integer_frexp(123.45)
    assert abs(frac - 2071147315) <= 1 and shift == 7
    assert abs(frac - 0.964453 * 2**31) <= 1000
    assert fpmul.integer_frexp(float("nan")) == (0, 0x7FFFFFFF)
    assert fpmul.integer_frexp(float("inf")) == (2**63 - 1, 0x7FFFFFFF)
    assert fpmul.integer_frexp(float("-inf")) == (-(2**63), 0x7FFFFFFF)


def test_tf_preprocess_softmax_scaling():
    pss = fpmul.preprocess_softmax_scaling
    assert pss(1.0, 16.0, 4) == (2147483647, 31)
    assert pss(1.0, 8.0, 4) == (1073741824, 31)
    assert pss(2.0, 16.0, 5) == (2147483647, 31)
    assert pss(2.0, 8.0, 5) == (1073741824, 31)
    assert pss(1.0, 8.0, 4, single_rounding=True) == (2147483646, 30)
    assert pss(1.0, 4.0, 4, single_rounding=True) == (1073741824, 30)
    assert pss(2.0, 8.0, 5, single_rounding=True) == (2147483646, 30)
    assert pss(2.0, 4.0, 5, single_rounding=True) == (1073741824, 30)


def test_tf_calculate_input_radius():
    assert fpmul.calculate_input_radius(4, 27) == 15
    assert fpmul.calculate_input_radius(3, 27) == 14
    assert fpmul.calculate_input_radius(3, 28) == 7
    assert fpmul.calculate_input_radius(4, 2) == 503316480


def test_tf_quantize_multiplier_array():
    weights = np.array([-4, -2, -1, -0.5, -0.25, -0.125, 0, 0.125, 0.25, 0.5, 1, 2, 4])
    q, s = fpmul.quantize_multiplier_array(weights)
    assert q.dtype == np.int32 and s.dtype == np.int32 and q.shape == weights.shape
    np.testing.assert_array_equal(q, [-1073741824] * 6 + [0] + [1073741824] * 6)
    np.testing.assert_array_equal(s, [3, 2, 1, 0, -1, -2, 0, -2, -1, 0, 1, 2, 3])


def test_quantize_multiplier_corner_cases():
    assert fpmul.quantize_multiplier(0.0) == (0, 0)
    assert fpmul.quantize_multiplier(-(1 - 1e-12)) == (I32_MIN, 0)  # negative edge is not folded
    assert fpmul.quantize_multiplier(2.0**40, single_rounding=True) == (I32_MAX, 30)
    assert fpmul.quantize_multiplier(-(2.0**40), single_rounding=True) == (I32_MAX, 30)
    assert fpmul.quantize_multiplier(2.0**40) == (2**30, 41)
    assert fpmul.quantize_multiplier(np.float32(0.1)) == fpmul.quantize_multiplier(float(np.float32(0.1)))


def test_quantize_multiplier_vs_oracle():
    rng = np.random.default_rng(11)
    ms = np.ldexp(rng.uniform(0.5, 1.0, 3000), rng.integers(-40, 40, 3000)) * rng.choice([-1, 1], 3000)
    k = rng.integers(2**30, 2**31, 1000)  # exact ties: f * 2^31 = k + 1/2
    ties = np.ldexp((k + 0.5) / 2**31, rng.integers(-33, 33, 1000))
    near_edge = 1.0 - np.ldexp(rng.uniform(0, 1, 200), -30)  # rounds to 2^31 -> folded
    specials = [2.0**-32, 2.0**-33, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2**31 - 1.0]
    for m in [*ms, *ties, *near_edge, *(-near_edge), *specials]:
        for single in (False, True):
            for emulate in (False, True):
                got = fpmul.quantize_multiplier(float(m), single_rounding=single, emulate_float=emulate)
                assert got == ref_quantize_multiplier(float(m), single, emulate), (m, single, emulate)
    # frexp+round (RHAZ) and IntegerFrExp (strictly greater) differ exactly on ties
    t = float(ties[0])
    assert fpmul.quantize_multiplier(t)[0] == fpmul.quantize_multiplier(t, emulate_float=True)[0] + 1


def test_calculate_input_radius_vs_float_formula():
    for ib in range(0, 8):
        for ls in range(0, 40, 3):
            if (((1 << ib) - 1) << (31 - ib)) >> ls <= I32_MAX:
                want = math.floor(1.0 * ((1 << ib) - 1) * (1 << (31 - ib)) / (1 << ls))
                assert fpmul.calculate_input_radius(ib, ls) == want


def test_reexported_from_fixedpoint():
    """``from refquant.fixedpoint import quantize_multiplier`` keeps working (same objects)."""
    for name in fpmul.__all__:
        assert getattr(fp, name) is getattr(fpmul, name), name
        assert name in fp.__all__, name


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, exc, text", [
    (lambda: fpmul.quantize_multiplier(float("nan")), QuantizationValueError, "finite"),
    (lambda: fpmul.quantize_multiplier(float("inf")), QuantizationValueError, "finite"),
    (lambda: fpmul.quantize_multiplier("0.5"), QuantizationTypeError, "real number"),
    (lambda: fpmul.quantize_multiplier(10**400), QuantizationValueError, "finite"),
    (lambda: fpmul.quantize_multiplier_array(["a"]), QuantizationTypeError, "reals"),
    (lambda: fpmul.quantize_multiplier_array([0.5, float("nan")]), QuantizationValueError, "finite"),
    (lambda: fpmul.preprocess_softmax_scaling(1.0, 1.0, 0), QuantizationValueError, "input_integer_bits"),
    (lambda: fpmul.preprocess_softmax_scaling(1.0, 1e-12, 5), QuantizationValueError, "must be > 1"),
    (lambda: fpmul.calculate_input_radius(32, 0), QuantizationValueError, "input_integer_bits"),
    (lambda: fpmul.calculate_input_radius(4, -1), QuantizationValueError, "input_left_shift"),
    (lambda: fpmul.calculate_input_radius(31, 0, 62), QuantizationValueError, "does not fit int32"),
    (lambda: fpmul.integer_frexp("x"), QuantizationTypeError, "real number"),
])
def test_bad_inputs(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)

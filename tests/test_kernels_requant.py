"""Tests of refquant.kernels.requant, .multiplier and .bias.

Oracles: backends.md §1.5 golden vectors (each port verified against a real build there),
``fractions.Fraction`` arithmetic written from the definitions, and hand-worked values. The
Numba kernel is compared with the NumPy reference bit for bit on random and edge inputs.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numpy as np
import pytest
from support.edge_values import accumulator_edge_values

from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.fixedpoint_multiplier import quantize_multiplier
from refquant.kernels import bias as bias_
from refquant.kernels import multiplier as mult
from refquant.kernels import requant as rq

pytestmark = pytest.mark.kernels

I32 = (-(2 ** 31), 2 ** 31 - 1)
FIXED = ("fixed_double", "fixed_single", "fixed_double_up", "fixed_double_up_wrap")


def both(*args, **kw):
    """Run the reference and the Numba kernel, assert equal (shape, dtype, values); return one."""
    ref = rq.requantize_reference(*args, **kw)
    fast = rq.requantize(*args, **kw)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    if not np.array_equal(fast, ref):
        i = np.flatnonzero(fast.ravel() != ref.ravel())[:5]
        acc = np.asarray(args[0]).ravel()
        pytest.fail(f"Numba != reference for {kw.get('mode')}: acc {acc[i % acc.size]} ref {ref.ravel()[i]} "
                    f"numba {fast.ravel()[i]}")
    return ref


# --------------------------------------------------------------------------- golden vectors (backends.md §1.5)

GOLD_ACC = np.array([-10, -6, -3, -2, 1, 2, 5, 10, 123457], np.int32)
GOLD = {  # M = 0.25, q = 2^30, shift = -1
    "fixed_double": [-3, -2, -1, -1, 1, 1, 2, 3, 30865],
    "fixed_single": [-2, -1, -1, 0, 0, 1, 1, 3, 30864],
    "fixed_double_up_wrap": [-2, -1, 0, 0, 1, 1, 2, 3, 30865],
    "float64_rhaz": [-3, -2, -1, -1, 0, 1, 1, 3, 30864],
    "float32_rne": [-2, -2, -1, 0, 0, 0, 1, 2, 30864],
    "exact_rne": [-2, -2, -1, 0, 0, 0, 1, 2, 30864],
}


@pytest.mark.parametrize("mode", sorted(GOLD))
def test_golden_quarter(mode):
    kind = mult.REQUANT_MODES[mode]
    m = {"fixed": 1073741824, "float32": 0.25, "float64": 0.25, "exact": Fraction(1, 4)}[kind]
    y = both(GOLD_ACC, m, 0, *I32, mode=mode, shift=-1 if kind == "fixed" else None)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, GOLD[mode], err_msg=f"{mode}: backends.md §1.5 row M=0.25")


def test_golden_issue_25087():
    # x=7984, q=1583594044, shift=-9: double rounding gives 12, single 11, ruy 12 / -11
    acc = np.array([7984, -7984], np.int32)
    np.testing.assert_array_equal(both(acc, 1583594044, 0, *I32, mode="fixed_double", shift=-9), [12, -12])
    np.testing.assert_array_equal(both(acc, 1583594044, 0, *I32, mode="fixed_single", shift=-9), [11, -11])
    np.testing.assert_array_equal(both(acc, 1583594044, 0, *I32, mode="fixed_double_up_wrap", shift=-9), [12, -11])


def test_float32_rounds_acc_to_float():
    # (float)acc rounds when |acc| > 2^24: 2^24 + 1 -> 2^24 (RNE), then * 1.0
    acc = np.array([2 ** 24 + 1, 2 ** 24 + 3, -(2 ** 24) - 1], np.int32)
    np.testing.assert_array_equal(both(acc, 1.0, 0, *I32, mode="float32_rne"), [2 ** 24, 2 ** 24 + 4, -(2 ** 24)])
    np.testing.assert_array_equal(both(acc, 1.0, 0, *I32, mode="exact_rne"), acc)


def test_float64_rhaz_int32_cast_overflow():
    # round(double) beyond int32 -> (int32_t) gives INT32_MIN, then + zp wraps (TFLite reference FC)
    acc = np.array([2 ** 31 - 1], np.int32)
    assert both(acc, 2.0, -5, -128, 127, mode="float64_rhaz")[0] == 127  # INT32_MIN - 5 wraps to +2^31 - 5
    assert both(acc, 2.0, 5, -128, 127, mode="float64_rhaz")[0] == -128
    assert both(acc, 2.0, 5, -128, 127, mode="exact_rne")[0] == 127


def test_fixed_zero_point_add_wraps():
    # SRDHM(INT32_MIN, INT32_MIN) saturates to INT32_MAX; + zp 1 wraps to INT32_MIN (C int32 add)
    acc = np.array([-(2 ** 31)], np.int32)
    assert both(acc, -(2 ** 31), 1, -128, 127, mode="fixed_double", shift=0)[0] == -128
    assert both(acc, -(2 ** 31), 0, -128, 127, mode="fixed_double", shift=0)[0] == 127


def test_float64_rne_zero_point_before_round():
    acc = np.array([1, 3, -1], np.int32)  # acc * 0.5 = 0.5, 1.5, -0.5
    np.testing.assert_array_equal(both(acc, 0.5, 1, -128, 127, mode="float64_rne"), [2, 2, 0])
    np.testing.assert_array_equal(both(acc, 0.5, 1, -128, 127, mode="float64_rne", zero_point_before_round=False),
                                  [1, 3, 1])
    np.testing.assert_array_equal(both(acc, Fraction(1, 2), 1, -128, 127, mode="exact_rne"), [1, 3, 1])


# --------------------------------------------------------------------------- reference == Numba, all modes


def _params(mode, rng, c):
    kind = mult.REQUANT_MODES[mode]
    reals = rng.uniform(1e-4, 0.9, c) * np.where(rng.random(c) < 0.2, 100.0, 1.0)
    if kind == "fixed":
        qs = [quantize_multiplier(float(r), single_rounding=mode == "fixed_single") for r in reals]
        return np.array([q for q, _ in qs], np.int32), np.array([s for _, s in qs], np.int32)
    if kind == "exact":
        return np.array([Fraction(float(np.float32(r))) for r in reals], object), None
    return reals.astype(np.float32 if kind == "float32" else np.float64), None


@pytest.mark.parametrize("mode", [m for m in mult.REQUANT_MODES if m not in ("fixed_int64_reduced16", "float32_scale_chain")])
def test_reference_equals_numba(mode):
    rng = np.random.default_rng(zlib.crc32(mode.encode()))  # not hash(): str hashes change per process
    edge = accumulator_edge_values(seed=1, n_random=200).astype(np.int32)
    for c, dtype, (lo, hi) in ((1, np.int8, (-128, 127)), (7, np.uint8, (0, 255)), (3, np.int16, (-32768, 32767)),
                               (5, np.int8, (-3, 40))):
        m, s = _params(mode, rng, c)
        acc = np.concatenate([edge, rng.integers(-(2 ** 20), 2 ** 20, 700).astype(np.int32)])
        acc = acc[: (acc.size // c) * c].reshape(-1, c)
        zp = rng.integers(lo, hi + 1, c) if c > 1 else int(rng.integers(lo, hi + 1))
        both(acc, m if c > 1 else m[0], zp, lo, hi, mode=mode, shift=None if s is None else (s if c > 1 else s[0]),
             dtype=dtype)
        # channel axis first (NCHW-like)
        both(np.ascontiguousarray(acc.T), m, 0, lo, hi, mode=mode, shift=s, axis=0, dtype=dtype)


def test_int64_reduced16_reference_equals_numba():
    rng = np.random.default_rng(3)
    acc = np.concatenate([rng.integers(-(2 ** 47), 2 ** 47, 500), [-(2 ** 47), 2 ** 47 - 1, 0, 1, -1]])
    for _ in range(5):
        q, s = quantize_multiplier(float(rng.uniform(1e-6, 1e-2)))
        both(acc, q, 0, -32768, 32767, mode="fixed_int64_reduced16", shift=s)
    # TF vector: raw (x = 2^47 - 1, q = INT32_MAX, shift = -31) -> 65534
    assert both(np.array([2 ** 47 - 1]), 2 ** 31 - 1, 0, *I32, mode="fixed_int64_reduced16", shift=-31)[0] == 65534


def test_fixed_modes_agree_for_nonnegative_shift():
    rng = np.random.default_rng(4)
    acc = rng.integers(-2000, 2000, 4000).astype(np.int32)
    for m in (1.0 + 1e-7, 1.5, 3.25, 7.9):
        q, s = quantize_multiplier(m)
        outs = [both(acc, q, 0, *I32, mode=mode, shift=s) for mode in FIXED]
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])


# --------------------------------------------------------------------------- exact_rne


def _exact_oracle(acc, m, zp, lo, hi):
    out = []
    for a in np.asarray(acc).ravel():
        v = Fraction(int(a)) * m
        f = math.floor(v)
        r = f + (1 if v - f > Fraction(1, 2) else 0) + (1 if v - f == Fraction(1, 2) and f % 2 else 0)
        out.append(min(max(r + zp, lo), hi))
    return np.array(out)


def test_exact_rne_ties_and_shifts():
    # multipliers k / 2^n (E < 0, all k), 2^n (E > 0), float32 ratios, odd denominators
    acc = np.concatenate([accumulator_edge_values(seed=5, n_random=300), np.arange(-40, 41)]).astype(np.int32)
    ms = [Fraction(k, 2 ** n) for k in (1, 3, 5, 255) for n in (1, 2, 8, 31, 33, 40, 60)]
    ms += [Fraction(2 ** n) for n in (0, 3, 20, 40)] + [Fraction(1, 3), Fraction(7, 3 * 2 ** 35)]
    ms += [Fraction(3, 2 ** 100), Fraction(255, 2 ** 95), Fraction(1, 2 ** 64), Fraction(2 ** 48 - 1, 2 ** 80)]
    rng = np.random.default_rng(6)
    for _ in range(20):
        a, b, c = (np.float32(v) for v in rng.uniform(1e-3, 1.0, 3))
        ms.append(Fraction(float(a)) * Fraction(float(b)) / Fraction(float(c)))
    for m in ms:
        for zp, lo, hi in ((0, -(2 ** 31), 2 ** 31 - 1), (3, -128, 127), (-7, -32768, 32767)):
            y = both(acc, m, zp, lo, hi, mode="exact_rne")
            np.testing.assert_array_equal(y, _exact_oracle(acc, m, zp, lo, hi), err_msg=f"M = {m}")


def test_exact_rne_unsupported_fraction_in_numba():
    m = Fraction(1, 3 ** 20)  # odd denominator >= 2^24
    acc = np.array([5, 10], np.int32)
    rq.requantize_reference(acc, m, 0, -128, 127, mode="exact_rne")
    with pytest.raises(UnsupportedError, match="requantize_reference"):
        rq.requantize(acc, m, 0, -128, 127, mode="exact_rne")


# --------------------------------------------------------------------------- multiplier derivation


def test_real_multiplier_derivations():
    a, b, c = np.float32(0.1), np.float32(0.3), np.float32(0.7)
    f32 = mult.real_multiplier(a, b, c, derivation="f32_ab_div_c")
    assert f32.dtype == np.float32 and f32 == np.float32(np.float32(a * b) / c)
    f64 = mult.real_multiplier(a, b, c, derivation="f64_ab_div_c")
    assert f64.dtype == np.float64 and f64 == float(a) * float(b) / float(c)
    qn = mult.real_multiplier(a, b, c, derivation="f32_ba_times_recip_c")
    assert qn == np.float32(np.float32(b * a) * np.float32(np.float32(1) / c))
    leg = mult.real_multiplier(a, b, c, derivation="f32_ab_then_f64_div")
    assert leg == float(np.float32(a * b)) / float(c)
    ex = mult.real_multiplier(a, b, c, derivation="exact")
    assert ex[()] == Fraction(float(a)) * Fraction(float(b)) / Fraction(float(c))
    per_ch = mult.real_multiplier(a, [0.3, 0.5], c, derivation="f64_ab_div_c")
    assert per_ch.shape == (2,)
    # the derivations really differ somewhere in the last bit
    rng = np.random.default_rng(7)
    s = rng.uniform(1e-3, 1, (500, 3)).astype(np.float32)
    d32 = [float(mult.real_multiplier(*r, derivation="f32_ab_div_c")) for r in s]
    dqn = [float(mult.real_multiplier(*r, derivation="f32_ba_times_recip_c")) for r in s]
    assert d32 != dqn


def test_requant_params_from_profiles():
    """A profile's layer spec names the mode and derivation; requant_params derives the multiplier."""
    from refquant.profiles import get_profile

    def from_profile(name, ws):
        spec = get_profile(name).layer("conv")
        return mult.requant_params(0.02, ws, 0.05, mode=spec.requant, derivation=spec.derivation(np.ndim(ws) > 0))

    p = from_profile("tflite_reference", [0.001, 0.002])
    assert p.mode == "fixed_double" and p.multiplier.dtype == np.int32 and p.shift.shape == (2,)
    m = 0.02 * float(np.float32(0.001)) / 0.05
    assert (int(p.multiplier[0]), int(p.shift[0])) == quantize_multiplier(
        float(np.float32(0.02)) * float(np.float32(0.001)) / float(np.float32(0.05)))
    assert abs(p.multiplier[0] * 2.0 ** (p.shift[0] - 31) - m) < 1e-9
    p = from_profile("onnxruntime", 0.001)
    assert p.mode == "float32_rne" and p.multiplier.dtype == np.float32 and p.shift is None
    p = from_profile("onnx", 0.001)
    assert p.mode == "exact_rne" and isinstance(p.multiplier[()], Fraction)
    p = mult.requant_params(0.02, 0.001, 0.05, mode="float64_rhaz", derivation="f64_ab_div_c")
    assert p.multiplier.dtype == np.float64
    p = mult.requant_params(1.0, 1.0, 2.0 ** -40, mode="fixed_single", derivation="f64_ab_div_c")
    assert (int(p.multiplier), int(p.shift)) == (2 ** 31 - 1, 30)  # single-rounding shift saturation
    with pytest.raises(TypeError, match="mode"):
        mult.requant_params(0.1, 0.1, 0.1)  # mode and derivation are required keywords
    with pytest.raises(QuantizationValueError, match="derivation must be one of"):
        mult.requant_params(0.1, 0.1, 0.1, mode="float32_rne", derivation="f16")


def test_activation_range():
    assert mult.activation_range(None, 0.1, -5, -128, 127) == (-128, 127)
    assert mult.activation_range("RELU", 0.1, -5, -128, 127) == (-5, 127)
    assert mult.activation_range("RELU6", 0.1, -5, -128, 127) == (-5, 55)
    assert mult.activation_range("RELU_N1_TO_1", 0.1, -5, -128, 127) == (-15, 5)
    # std::round is half away from zero: -1/2 -> -1, 1/2 -> 1 (RNE would give 0, 0)
    assert mult.activation_range("RELU_N1_TO_1", 2.0, 0, -128, 127) == (-1, 1)
    assert mult.activation_range("RELU6", 4.0, 10, 0, 255) == (10, 12)  # 6/4 = 1.5 -> 2
    assert mult.activation_range("RELU6", 1e-3, 100, 0, 255) == (100, 255)
    with pytest.raises(QuantizationValueError, match="activation must be one of"):
        mult.activation_range("TANH", 0.1, 0, -128, 127)
    with pytest.raises(QuantizationValueError, match="int32 range"):
        mult.activation_range("RELU6", 1e-30, 0, -128, 127)


# --------------------------------------------------------------------------- bias helpers


def test_add_bias():
    acc = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    np.testing.assert_array_equal(bias_.add_bias(acc, np.array([10, 20, 30], np.int32)), [[11, 22, 33], [14, 25, 36]])
    np.testing.assert_array_equal(bias_.add_bias(acc, np.array([10, 20], np.int32), axis=0), [[11, 12, 13], [24, 25, 26]])
    with pytest.warns(Warning, match="outside"):
        out = bias_.add_bias(np.array([2 ** 31 - 1], np.int32), np.int32(1))
    assert out[0] == -(2 ** 31)
    with pytest.raises(ShapeError, match="acc.shape"):
        bias_.add_bias(acc, np.array([1, 2], np.int32))


def test_float_bias_accumulator():
    acc = np.array([[3, 2 ** 24 + 1]], np.int32)
    out = bias_.float_bias_accumulator(acc, np.float32(0.5), np.float32(0.25))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[5.0, 2.0 ** 24 + 2]])  # 2^24 + 1 -> 2^24, + 2
    s = np.float32(0.1)
    r = bias_.float_bias_accumulator(np.array([0], np.int32), np.float32(1.0), s, reciprocal=True)
    assert r[0] == np.float32(np.float32(1.0) * np.float32(1.0 / float(s)))
    # per-tensor AVX2: fma(bias, rcp, acc) rounds once; the unfused form rounds the product first
    acc, b, s = np.array([-1034], np.int32), np.float32(float.fromhex("-0x1.16ddf6p+0")), \
        np.float32(float.fromhex("0x1.20fe5cp-14"))
    fused = bias_.float_bias_accumulator(acc, b, s, reciprocal=True)
    plain = bias_.float_bias_accumulator(acc, b, s, reciprocal=True, fused=False)
    assert fused[0] != plain[0]
    rcp = Fraction(float(np.float32(1.0 / float(s))))
    exact = Fraction(float(b)) * rcp + Fraction(-1034)
    assert abs(Fraction(float(fused[0])) - exact) <= abs(Fraction(float(plain[0])) - exact)
    y = rq.requantize(np.array([1.5, 2.5, np.nan], np.float32), 1.0, 0, 0, 255, mode="float32_rne")
    np.testing.assert_array_equal(y, [2, 2, 0])  # RNE on the float path; NaN -> qmin


def test_add_zero_point_sat16_equals_clamp():
    r = np.arange(-70000, 70000, 7, dtype=np.int64)
    for dtype, zps in (("uint8", (0, 1, 128, 255)), ("int8", (-128, -1, 0, 5, 127))):
        lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
        for zp in zps:
            got = bias_.add_zero_point_sat16(r, zp, dtype, lo + 3, hi)
            np.testing.assert_array_equal(got, np.clip(r + zp, lo + 3, hi))


def test_quantize_bias_runtime():
    b = np.array([0.5, -0.5, 1e-3, 1e30, np.nan], np.float32)
    q = bias_.quantize_bias_runtime(b, 0.5, 1.0)  # inv = 2: 1, -1, 0 (RNE of 0.002), saturate, NaN
    np.testing.assert_array_equal(q, [1, -1, 0, 2 ** 31 - 1, -(2 ** 31)])
    assert bias_.quantize_bias_runtime([0.25], 1.0, 1.0)[0] == 0  # RNE: 0.25 -> 0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, exc, match", [
    (lambda: rq.requantize([1], 1, 0, 0, 255, mode="nope"), QuantizationValueError, "mode must be one of"),
    (lambda: rq.requantize([1], 2 ** 30, 0, 0, 255, mode="fixed_double"), QuantizationValueError, "needs shift"),
    (lambda: rq.requantize([1], 0.5, 0, 0, 255, mode="float32_rne", shift=1), QuantizationValueError, "shift"),
    (lambda: rq.requantize([1.0], 2 ** 30, 0, 0, 255, mode="fixed_double", shift=0), QuantizationTypeError,
     "acc must be an integer"),
    (lambda: rq.requantize([1], 0.5, 0, 5, 4, mode="float32_rne"), QuantizationValueError, "qmin must be <= qmax"),
    (lambda: rq.requantize([1], 0.5, 300, 0, 255, mode="float32_rne"), QuantizationValueError, "output_zero_point"),
    (lambda: rq.requantize([1], -0.5, 0, 0, 255, mode="float32_rne"), QuantizationValueError, "finite and > 0"),
    (lambda: rq.requantize(np.zeros((2, 3), np.int32), [0.5, 0.5], 0, 0, 255, mode="float32_rne"), ShapeError,
     "1 or 3 elements"),
    (lambda: rq.requantize([2 ** 31], 0.5, 0, 0, 255, mode="float32_rne"), QuantizationValueError, "acc must be in"),
    (lambda: rq.requantize([1], 2 ** 30, 0, 0, 255, mode="fixed_single", shift=31), QuantizationValueError,
     "shift must be in"),
    (lambda: rq.requantize([1], 0.5, 0, -1, 255, mode="float32_rne", dtype="uint8"), QuantizationValueError,
     "must lie in"),
    (lambda: rq.requantize([1], 0.5, 0, 0, 255, mode="exact_rne", zero_point_before_round=True),
     QuantizationValueError, "applies to mode"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()

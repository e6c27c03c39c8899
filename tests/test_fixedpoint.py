"""Tests of refquant.fixedpoint (runtime: SRDHM, RDBPOT, MBQM) against upstream vectors and oracles.

The offline multiplier choice has its own file, ``test_fixedpoint_multiplier.py``; its C
cross-check stays here, beside the MBQM one, because both use one compiled helper.

Oracles: (1) the test vectors of TF ``quantization_util_test.cc`` and backends.md
§1.1/§1.5, copied verbatim; (2) Python-int / ``fractions.Fraction`` arithmetic written
from the definitions, not from the implementation; (3) optionally a small C program
restating TFLite's ``common.cc`` / ``quantization_util.cc`` arithmetic and the ruy AVX2
requantization with real AVX2 intrinsics, compiled with gcc when available.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from fractions import Fraction

import numba
import numpy as np
import pytest

from refquant import fixedpoint as fp
from refquant import fixedpoint_multiplier as fpmul
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from support.exact_oracle import round_exact

pytestmark = pytest.mark.kernels

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
MBQM = fp.multiply_by_quantized_multiplier


# --------------------------------------------------------------------------- oracles


def ref_wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def ref_floor_half_up(num: Fraction) -> int:
    """RHU: floor(num + 1/2)."""
    return round_exact(num, "half_up")


def ref_rhaz(num: Fraction) -> int:
    return round_exact(num, "half_away_from_zero")


def ref_srdhm(a: int, b: int) -> int:
    """gemmlowp form: sign-dependent nudge, C truncating division."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    v = ab + (2**30 if ab >= 0 else 1 - 2**30)
    return (abs(v) // 2**31) * (1 if v >= 0 else -1)


def ref_mbqm(variant: str, x: int, q: int, s: int) -> int:
    ls, rs = max(s, 0), max(-s, 0)
    if variant == "double":
        return ref_rhaz(Fraction(ref_srdhm(ref_wrap32(x * 2**ls), q), 2**rs))
    if variant == "single":
        return ref_wrap32(ref_floor_half_up(Fraction(x * q, 2 ** (31 - s))))
    if variant == "int64_reduced16":
        red = ref_floor_half_up(Fraction(q, 2**16)) if q < 0x7FFF0000 else 0x7FFF
        return ref_wrap32(ref_floor_half_up(Fraction(x * red, 2 ** (15 - s))))
    if variant == "double_up":
        return ref_floor_half_up(Fraction(ref_srdhm(ref_wrap32(x * 2**ls), q), 2**rs))
    if variant == "double_up_wrap":  # the kernel's steps on 64-bit unsigned lanes
        u = (ref_wrap32(x * 2**ls) * q + 2**30 + 2**63) % 2**64
        r = ref_wrap32(u >> 31)
        nudge = 2 ** (rs - 1) if rs > 0 else 0
        if r > I32_MAX - nudge:  # the kernel's overflow branch
            return 2 ** (31 - rs)
        return ref_wrap32(r + nudge) >> rs
    raise AssertionError(variant)


def edge_int32() -> np.ndarray:
    """gemmlowp-style edge set: ±2^k + {-2..2}, the int32 ends, 0, ±1."""
    vals = {0, 1, -1, I32_MIN, I32_MIN + 1, I32_MIN + 2, I32_MAX, I32_MAX - 1, I32_MAX - 2}
    for k in range(32):
        for d in range(-2, 3):
            for v in (2**k + d, -(2**k) + d):
                if I32_MIN <= v <= I32_MAX:
                    vals.add(v)
    return np.array(sorted(vals), dtype=np.int64)


def assert_matches(got, xs, qs, ss, variant):
    want = np.array([ref_mbqm(variant, int(x), int(q), int(s)) for x, q, s in zip(xs, qs, ss)])
    bad = np.flatnonzero(np.asarray(got) != want)
    assert bad.size == 0, (
        f"{variant}: {bad.size} mismatches; first x={xs[bad[0]]} q={qs[bad[0]]} "
        f"shift={ss[bad[0]]}: got {got[bad[0]]}, oracle {want[bad[0]]}"
    )


# --------------------------------------------------------------------------- TF quantization_util_test.cc


def quant_and_multiply(x, m, variant, single=False):
    q, s = fpmul.quantize_multiplier(m, single_rounding=single)
    return int(MBQM(x, q, s, variant=variant))


@pytest.mark.parametrize("variant", ["double", "single"])
def test_tf_mbqm_int32(variant):
    single = variant == "single"
    for x, m, want in [(0, 0.1, 0), (1, 0, 0), (10000, 0.00097656, 10), (-10000, 0.00097656, -10),
                       (I32_MIN, 0.00001, -21475), (I32_MAX, 0.00001, 21475)]:
        assert quant_and_multiply(x, m, variant, single) == want, (x, m)
    if variant == "double":  # negative multipliers: double rounding only
        for x, m, want in [(10000, -0.00097656, -10), (-10000, -0.00097656, 10),
                           (I32_MIN, -0.00001, 21475), (I32_MAX, -0.00001, -21475)]:
            assert quant_and_multiply(x, m, variant) == want, (x, m)
    expected = int(round(I32_MAX * I32_MAX / float(1 << 34)))  # TfLiteRound(x*q / 2^(31-shift))
    assert expected == 268435456
    assert MBQM(I32_MAX, I32_MAX, -3, variant=variant) == expected
    assert MBQM(-I32_MAX, I32_MAX, -3, variant=variant) == -expected


def test_tf_mbqm_int64():
    v = "int64_reduced16"
    for x, m, want in [(0, 0.1, 0), (1, 0, 0), (10000, 0.00097656, 10), (-10000, 0.00097656, -10),
                       (-(2**47), 0.00001, -1407385600), (2**47 - 1, 0.00001, 1407385600)]:
        assert quant_and_multiply(x, m, v) == want, (x, m)
    assert MBQM(2**47 - 1, I32_MAX, -31, variant=v) == 65534
    assert MBQM(-(2**47 - 1), I32_MAX, -31, variant=v) == -65534


# --------------------------------------------------------------------------- backends.md §1.1, §1.5


GOLDEN = [  # (q, shift, acc, double, single, ruy-AVX2), backends.md §1.5
    *[(1073741824, -1, a, d, s, r) for a, d, s, r in [
        (-10, -3, -2, -2), (-6, -2, -1, -1), (-3, -1, -1, 0), (-2, -1, 0, 0), (1, 1, 0, 1),
        (2, 1, 1, 1), (5, 2, 1, 2), (10, 3, 3, 3), (123457, 30865, 30864, 30865)]],
    *[(1073741824, 0, a, d, d, d) for a, d in [(-3, -1), (-1, 0), (1, 1), (5, 3)]],
    (1583594044, -9, 7984, 12, 11, 12), (1583594044, -9, -7984, -12, -11, -11),
    (1431655765, -1, -10, -4, -3, -3), (1431655765, -1, 10, 4, 3, 4),
    (1431655765, -1, 7984, 2662, 2661, 2662),
    *[(1610612736, 0, a, d, d, d) for a, d in [(-10, -7), (-6, -4), (6, 5)]],
    *[(1610612736, 1, a, d, d, d) for a, d in [(-3, -4), (3, 5)]],
]


@pytest.mark.parametrize("q, shift, acc, want_double, want_single, want_ruy", GOLDEN)
def test_backends_golden_vectors(q, shift, acc, want_double, want_single, want_ruy):
    assert MBQM(acc, q, shift, variant="double") == want_double
    assert MBQM(acc, q, shift, variant="single") == want_single
    assert MBQM(acc, q, shift, variant="double_up_wrap") == want_ruy
    assert fp.mbqm_double_scalar(acc, q, shift) == want_double
    assert fp.mbqm_single_scalar(acc, q, shift) == want_single
    assert fp.mbqm_double_up_wrap_scalar(acc, q, shift) == want_ruy


def test_golden_multipliers_and_issue_25087():
    # backends.md prints M = 0.00144027039 rounded; q * 2^(shift - 31) round-trips exactly
    assert fpmul.quantize_multiplier(1583594044 * 2.0**-40) == (1583594044, -9)
    q, s = fpmul.quantize_multiplier(0.00144027039)
    assert s == -9 and abs(q - 1583594044) < 8
    assert fpmul.quantize_multiplier(1 / 3) == (1431655765, -1)
    assert fpmul.quantize_multiplier(1.5) == (1610612736, 1)
    # tensorflow/tensorflow#25087: exact 11.4991, double rounding gives 12
    assert MBQM(7984, 1583594044, -9, variant="double") == 12
    assert MBQM(7984, 1583594044, -9, variant="single") == 11


def test_srdhm_and_rdbpot_ties():
    srdhm = fp.saturating_rounding_doubling_high_mul
    # products ab = -2^30, -3*2^30, 2^30, 3*2^30 are exact ties of ab / 2^31: RHU
    np.testing.assert_array_equal(srdhm([-(2**30), -3 * 2**29, 2**30, 3 * 2**29], [1, 2, 1, 2]), [0, -1, 1, 2])
    assert srdhm(I32_MIN, I32_MIN) == I32_MAX and srdhm(I32_MIN, I32_MAX) == -I32_MAX
    np.testing.assert_array_equal(fp.rounding_divide_by_pot([-3, -1, 1, 3], 1), [-2, -1, 1, 2])
    assert fp.saturating_rounding_doubling_high_mul_int16(-32768, -32768) == 32767
    np.testing.assert_array_equal(
        fp.saturating_rounding_doubling_high_mul_int16([-(2**14), 2**14, -3 * 2**13], [1, 1, 2]), [0, 1, -1])


def test_output_types_and_broadcasting():
    r = MBQM(np.arange(-4, 4, dtype=np.int32).reshape(2, 4, 1), [2**30, 2**30 + 1, I32_MAX], [-1, 0, 3])
    assert r.dtype == np.int32 and r.shape == (2, 4, 3)
    assert isinstance(MBQM(5, 2**30, -1), np.int32)
    assert isinstance(fp.rounding_divide_by_pot(np.int8(5), 1), np.int32)
    assert fp.saturating_rounding_doubling_high_mul_int16(3, 4).dtype == np.int16
    assert MBQM(np.zeros(0, np.int32), 2**30, -1).shape == (0,)


# --------------------------------------------------------------------------- oracles on edge and random inputs


def test_srdhm_edges_vs_oracles():
    e = edge_int32()
    a, b = np.meshgrid(e, e)
    a, b = a.ravel(), b.ravel()
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    want = np.array([ref_srdhm(int(x), int(y)) for x, y in zip(a, b)])
    np.testing.assert_array_equal(got, want)
    for x, y, g in zip(a[::97], b[::97], got[::97]):  # the closed form of backends.md §1.2
        if not x == y == I32_MIN:
            assert g == math.floor(Fraction(2 * int(x) * int(y) + 2**31, 2**32))


def test_srdhm_int16_exhaustive_rows():
    rng = np.random.default_rng(16)
    a = np.concatenate([np.arange(-32768, 32768, 7), [-32768, 32767]])
    b = rng.integers(-32768, 32768, a.size)
    b[:4] = [-32768, 32767, 0, -1]
    got = fp.saturating_rounding_doubling_high_mul_int16(a, b)
    want = [32767 if x == y == -32768 else math.floor(Fraction(2 * int(x) * int(y) + 2**15, 2**16))
            for x, y in zip(a, b)]
    np.testing.assert_array_equal(got, want)


def test_rdbpot_edges_vs_oracle():
    x = np.repeat(edge_int32(), 32)
    e = np.tile(np.arange(32), x.size // 32)
    got = fp.rounding_divide_by_pot(x, e)
    want = [ref_rhaz(Fraction(int(v), 2 ** int(k))) for v, k in zip(x, e)]
    np.testing.assert_array_equal(got, want)


Q_EDGES = [0, 1, 2, 2**30 - 1, 2**30, 2**30 + 1, 1431655765, 1583594044, I32_MAX - 1, I32_MAX]
Q_NEG = [-1, -(2**30), I32_MIN + 1, I32_MIN]
SHIFTS = [-31, -30, -17, -9, -3, -2, -1, 0, 1, 2, 7]


def grid(variant):
    (q_lo, q_hi), (s_lo, s_hi), _ = fp.MBQM_VARIANTS[variant]
    qs = [q for q in Q_EDGES + Q_NEG if q_lo <= q <= q_hi]
    ss = [s for s in SHIFTS + [30, 31] if s_lo <= s <= s_hi]
    x = edge_int32()
    if variant == "int64_reduced16":
        x = np.concatenate([x, [-(2**47), 2**47 - 1, -(2**47) + 1, 2**40 + 3, -(2**40) - 3]])
    X, Q, S = np.meshgrid(x, qs, ss, indexing="ij")
    return X.ravel(), Q.ravel(), S.ravel()


def random_inputs(variant, n, seed):
    rng = np.random.default_rng(seed)
    (q_lo, q_hi), (s_lo, s_hi), (x_lo, x_hi) = fp.MBQM_VARIANTS[variant]
    bits = rng.integers(0, 48 if variant == "int64_reduced16" else 32, n)
    x = rng.integers(-(2**47), 2**47, n, dtype=np.int64) >> (47 - bits)  # all magnitudes
    x = np.clip(x, x_lo, x_hi)
    q = rng.integers(max(q_lo, 2**29), q_hi, n, endpoint=True)
    q[: n // 4] = rng.integers(q_lo, q_hi, n // 4, endpoint=True)
    s = rng.integers(s_lo, min(s_hi, 4), n, endpoint=True)
    return x, q, s


@pytest.mark.parametrize("variant", sorted(fp.MBQM_VARIANTS))
def test_mbqm_edges_vs_oracle(variant):
    x, q, s = grid(variant)
    assert_matches(MBQM(x, q, s, variant=variant), x, q, s, variant)


@pytest.mark.parametrize("variant", sorted(fp.MBQM_VARIANTS))
def test_mbqm_random_vs_oracle(variant):
    x, q, s = random_inputs(variant, 6000, seed=sum(map(ord, variant)))  # stable per variant
    assert_matches(MBQM(x, q, s, variant=variant), x, q, s, variant)


def test_mbqm_exact_ties():
    # x * q / 2^(31 - shift) = k + 1/2 exactly: q = 2^30, shift = -e gives x / 2^(e+1)
    x = np.array([(2 * k + 1) for k in range(-40, 40)], dtype=np.int64)
    for e in (0, 1, 5, 20):
        want_rhu = [ref_floor_half_up(Fraction(int(v), 2 ** (e + 1))) for v in x]
        np.testing.assert_array_equal(MBQM(x, 2**30, -e, variant="single"), want_rhu)
        if e > 0:  # SRDHM is exact here (x * 2^30 / 2^31 = x/2 with x odd -> RHU), then RDBPOT
            d = MBQM(x, 2**30, -e, variant="double")
            want = [ref_rhaz(Fraction(ref_floor_half_up(Fraction(int(v), 2)), 2**e)) for v in x]
            np.testing.assert_array_equal(d, want)
        else:
            np.testing.assert_array_equal(MBQM(x, 2**30, 0, variant="double"), want_rhu)


def test_single_double_differ_by_at_most_one():
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**20), 2**20, 20000)
    q, s = fpmul.quantize_multiplier_array(rng.uniform(1e-4, 0.9, 20000))
    d = MBQM(x, q, s, variant="double").astype(np.int64)
    si = MBQM(x, q, s, variant="single").astype(np.int64)
    assert np.abs(d - si).max() == 1 and 0.01 < np.mean(d != si) < 0.3


def test_ruy_avx2_overflow_branch_and_double_up_relation():
    # r1 = 2147483646 and nudge 2 overflow int32: the kernel returns 1 << 29, the exact value
    assert MBQM(I32_MAX, I32_MAX, -2, variant="double_up_wrap") == 2**29
    assert ref_mbqm("double_up_wrap", I32_MAX, I32_MAX, -2) == 2**29
    assert MBQM(I32_MIN, I32_MIN, 0, variant="double_up_wrap") == I32_MIN  # low 32 bits of 2^31
    assert MBQM(I32_MIN, I32_MIN, 0, variant="double_up") == I32_MAX  # SRDHM saturates
    x, q, s = grid("double_up_wrap")
    keep = ~((np.where(s > 0, ((x << np.maximum(s, 0)) + 2**31) % 2**32 - 2**31, x) == I32_MIN)
             & (q == I32_MIN))
    np.testing.assert_array_equal(MBQM(x[keep], q[keep], s[keep], variant="double_up_wrap"),
                                  MBQM(x[keep], q[keep], s[keep], variant="double_up"))


# --------------------------------------------------------------------------- Numba scalar twins


def _make_loop(fn):
    @numba.njit
    def loop(x, q, s):
        out = np.empty(x.size, np.int32)
        for i in range(x.size):
            out[i] = fn(x[i], q[i], s[i])
        return out

    return loop


TWINS = {
    "double": fp.mbqm_double_scalar,
    "single": fp.mbqm_single_scalar,
    "double_up_wrap": fp.mbqm_double_up_wrap_scalar,
    "double_up": fp.mbqm_double_up_scalar,
    "int64_reduced16": fp.mbqm_int64_reduced16_scalar,
}


@pytest.mark.parametrize("variant", sorted(TWINS))
def test_numba_twin_equals_numpy(variant):
    x1, q1, s1 = grid(variant)
    x2, q2, s2 = random_inputs(variant, 5000, seed=3)
    x, q, s = np.concatenate([x1, x2]), np.concatenate([q1, q2]), np.concatenate([s1, s2])
    got = _make_loop(TWINS[variant])(x, q, s)
    np.testing.assert_array_equal(got, MBQM(x, q, s, variant=variant))
    assert got.dtype == np.int32


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, exc, text", [
    (lambda: MBQM(1.0, 2**30, -1), QuantizationTypeError, "x must be an integer"),
    (lambda: MBQM(1, 2**30, -1, variant="triple"), QuantizationValueError, "variant must be one of"),
    (lambda: MBQM(2**31, 2**30, -1), QuantizationValueError, "x must be in"),
    (lambda: MBQM(1, -1, -1, variant="single"), QuantizationValueError, "quantized_multiplier must be in [0,"),
    (lambda: MBQM(1, 2**31, -1), QuantizationValueError, "quantized_multiplier must be in"),
    (lambda: MBQM(1, 2**30, 31, variant="single"), QuantizationValueError, "shift must be in [-31, 30]"),
    (lambda: MBQM(1, 2**30, 8, variant="int64_reduced16"), QuantizationValueError, "shift must be in [-31, 7]"),
    (lambda: MBQM(2**47, 2**30, -1, variant="int64_reduced16"), QuantizationValueError, "x must be in"),
    (lambda: MBQM(1, 2**30, -32), QuantizationValueError, "shift must be in [-31, 31], got -32"),
    (lambda: MBQM(np.array([2**64 - 1], np.uint64), 2**30, -1), QuantizationValueError, "x must be in"),
    (lambda: MBQM(2**70, 2**30, -1), QuantizationValueError, "x must be in"),
    (lambda: MBQM([1, 2, 3], [2**30, 2**30], -1), ShapeError, "must broadcast"),
    (lambda: MBQM(True, 2**30, -1), QuantizationTypeError, "dtype bool"),
    (lambda: fp.rounding_divide_by_pot(5, 32), QuantizationValueError, "exponent must be in [0, 31]"),
    (lambda: fp.rounding_divide_by_pot(5, -1), QuantizationValueError, "exponent must be in [0, 31]"),
    (lambda: fp.saturating_rounding_doubling_high_mul(2**31, 1), QuantizationValueError, "a must be in"),
    (lambda: fp.saturating_rounding_doubling_high_mul_int16(1, 40000), QuantizationValueError, "b must be in"),
])
def test_bad_inputs(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)


# --------------------------------------------------------------------------- optional C cross-check

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
/* A restatement of TFLite common.cc / quantization_util.cc arithmetic (default
   double-rounding build, the single-rounding branch and the int64 overload), gemmlowp
   fixedpoint.h, and the rounding_right_shift requantization of ruy kernel_avx2_fma.cc
   written with the same AVX2 intrinsics. Test-only. */
static int32_t srdhm(int32_t a, int32_t b) {
  int overflow = a == b && a == INT32_MIN;
  int64_t ab = (int64_t)a * (int64_t)b;
  int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  int32_t r = (int32_t)((ab + nudge) / (1LL << 31));
  return overflow ? INT32_MAX : r;
}
static int32_t rdbpot(int32_t x, int e) {
  int32_t mask = (int32_t)((1LL << e) - 1), rem = x & mask;
  int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (rem > thr ? 1 : 0);
}
static int32_t lsh(int32_t x, int ls) { return (int32_t)((uint32_t)x << ls); } /* int32 wrap */
static int32_t mbqm_double(int32_t x, int32_t q, int s) {
  int ls = s > 0 ? s : 0, rs = s > 0 ? 0 : -s;
  return rdbpot(srdhm(lsh(x, ls), q), rs);
}
static int32_t mbqm_single(int32_t x, int32_t q, int s) {
  int64_t t = 31 - s, r = (int64_t)x * q + ((int64_t)1 << (t - 1));
  return (int32_t)(r >> t);
}
static int32_t mbqm_i64(int64_t x, int32_t q, int s) {
  int32_t red = q < 0x7FFF0000 ? ((q + (1 << 15)) >> 16) : 0x7FFF;
  int t = 15 - s;
  x = x * (int64_t)red + ((int64_t)1 << (t - 1));
  return (int32_t)(x >> t);
}
static int32_t mbqm_up(int32_t x, int32_t q, int s) {
  int ls = s > 0 ? s : 0, rs = s > 0 ? 0 : -s;
  int64_t off = rs > 0 ? (1LL << (rs - 1)) : 0;
  return (int32_t)(((int64_t)srdhm(lsh(x, ls), q) + off) >> rs);
}
static int64_t int_frexp(double d, int* shift) {
  uint64_t u; memcpy(&u, &d, 8);
  if ((u & ~0x8000000000000000ULL) == 0) { *shift = 0; return 0; }
  uint32_t ex = (uint32_t)((u & 0x7ff0000000000000ULL) >> 52);
  if (ex == 0x7ff) { *shift = 0x7fffffff; return 0; }
  *shift = (int)ex - 1023 + 1;
  int64_t f = 0x40000000 + (int64_t)((u & 0x000fffffffc00000ULL) >> 22);
  if ((u & 0x003fffff) > 0x00200000) f += 1;
  return (u & 0x8000000000000000ULL) ? -f : f;
}
static void qm(double d, int single, int emulate, int32_t* q, int* shift) {
  if (d == 0.) { *q = 0; *shift = 0; return; }
  int64_t qf;
  if (emulate) qf = int_frexp(d, shift);
  else { double f = frexp(d, shift); qf = (int64_t)round(f * (1LL << 31)); }
  if (qf == (1LL << 31)) { qf /= 2; ++*shift; }
  if (*shift < -31) { *shift = 0; qf = 0; }
  if (single && *shift > 30) { *shift = 30; qf = (1LL << 31) - 1; }
  *q = (int32_t)qf;
}
#ifdef __AVX2__
static int32_t ruy_avx2(int32_t x, int32_t q, int32_t e) {
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
  const __m256i m = _mm256_set1_epi32(q), ev = _mm256_set1_epi32(e);
  const __m256i m_lo = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 0));
  const __m256i m_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1));
  const __m256i left = _mm256_max_epi32(ev, zero);
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, ev), zero);
  const __m256i sh = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(_mm256_set1_epi32(31), 0));
  const __m256i offset = _mm256_add_epi64(_mm256_slli_epi64(_mm256_set1_epi64x(1), 30),
                                          _mm256_set1_epi64x((long long)0x8000000000000000ULL));
  const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  __m256i acc = _mm256_sllv_epi32(_mm256_set1_epi32(x), left);
  __m256i lo = _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 0)), m_lo);
  __m256i hi = _mm256_mul_epi32(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1)), m_hi);
  lo = _mm256_srlv_epi64(_mm256_add_epi64(lo, offset), sh);
  hi = _mm256_srlv_epi64(_mm256_add_epi64(hi, offset), sh);
  __m256i r = _mm256_blend_epi32(lo, _mm256_slli_epi64(hi, 32), 0xaa);
  r = _mm256_permutevar8x32_epi32(r, perm);
  __m256i nudge = _mm256_blendv_epi8(zero, _mm256_sllv_epi32(one, _mm256_sub_epi32(right, one)),
                                     _mm256_cmpgt_epi32(right, zero));
  __m256i sum = _mm256_srav_epi32(_mm256_add_epi32(r, nudge), right);
  __m256i big = _mm256_sllv_epi32(one, _mm256_sub_epi32(_mm256_set1_epi32(31), right));
  __m256i ovf = _mm256_cmpgt_epi32(r, _mm256_sub_epi32(_mm256_set1_epi32(0x7fffffff), nudge));
  return _mm256_extract_epi32(_mm256_blendv_epi8(sum, big, ovf), 0);
}
#endif
int main(void) {
  char op[16];
  while (scanf("%15s", op) == 1) {
    if (op[0] == 'Q') {
      char buf[64]; int single, emulate, shift; int32_t q;
      if (scanf("%63s %d %d", buf, &single, &emulate) != 3) return 2;
      qm(strtod(buf, NULL), single, emulate, &q, &shift);
      printf("%d %d\n", q, shift);
      continue;
    }
    long long x, q, s;
    if (scanf("%lld %lld %lld", &x, &q, &s) != 3) return 2;
    switch (op[0]) {
      case 'd': printf("%d\n", mbqm_double((int32_t)x, (int32_t)q, (int)s)); break;
      case 's': printf("%d\n", mbqm_single((int32_t)x, (int32_t)q, (int)s)); break;
      case 'i': printf("%d\n", mbqm_i64((int64_t)x, (int32_t)q, (int)s)); break;
      case 'u': printf("%d\n", mbqm_up((int32_t)x, (int32_t)q, (int)s)); break;
#ifdef __AVX2__
      case 'r': printf("%d\n", ruy_avx2((int32_t)x, (int32_t)q, (int32_t)s)); break;
#endif
      default: return 3;
    }
  }
  return 0;
}
"""

C_OPS = {"double": "d", "single": "s", "int64_reduced16": "i", "double_up": "u", "double_up_wrap": "r"}


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


@pytest.fixture(scope="module")
def c_helper(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("fixedpoint_c")
    (d / "fp.c").write_text(C_SOURCE)
    avx2 = _has_avx2()
    cmd = [cc, "-O1", "-std=c99", *(["-mavx2"] if avx2 else []), "-o", str(d / "fp"), str(d / "fp.c"), "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"C compile failed: {res.stderr[:300]}")

    def run(lines):
        out = subprocess.run([str(d / "fp")], input="\n".join(lines) + "\n", capture_output=True,
                             text=True, check=True, env={**os.environ, "LC_ALL": "C"})
        return out.stdout.split("\n")[: len(lines)]

    run.avx2 = avx2
    return run


@pytest.mark.parametrize("variant", sorted(C_OPS))
def test_mbqm_vs_c_transcription(c_helper, variant):
    if variant == "double_up_wrap" and not c_helper.avx2:
        pytest.skip("CPU without AVX2")
    x1, q1, s1 = grid(variant)
    x2, q2, s2 = random_inputs(variant, 4000, seed=5)
    x, q, s = np.concatenate([x1, x2]), np.concatenate([q1, q2]), np.concatenate([s1, s2])
    out = c_helper([f"{C_OPS[variant]} {a} {b} {c}" for a, b, c in zip(x, q, s)])
    np.testing.assert_array_equal(MBQM(x, q, s, variant=variant), np.array(out, dtype=np.int64))


def test_quantize_multiplier_vs_c_frexp_round(c_helper):
    rng = np.random.default_rng(21)
    ms = np.ldexp(rng.uniform(0.5, 1.0, 1500), rng.integers(-40, 40, 1500)) * rng.choice([-1, 1], 1500)
    ties = np.ldexp((rng.integers(2**30, 2**31, 300) + 0.5) / 2**31, rng.integers(-33, 33, 300))
    values = [float(m) for m in [*ms, *ties, 0.0, 1 - 1e-12, -(1 - 1e-12), 2.0**40]]
    lines = [f"Q {m.hex()} {single} {emu}" for m in values for single in (0, 1) for emu in (0, 1)]
    out = iter(c_helper(lines))
    for m in values:
        for single in (False, True):
            for emu in (False, True):
                q, s = map(int, next(out).split())
                assert fpmul.quantize_multiplier(m, single_rounding=single, emulate_float=emu) == (q, s), m

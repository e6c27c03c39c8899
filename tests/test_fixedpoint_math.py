"""Tests of refquant.fixedpoint_math (gemmlowp exp / logistic / tanh / reciprocal).

Oracles: gemmlowp ``test/test_fixedpoint.cc`` (its input set and its error bounds
against double math), TF ``quantization_util_test.cc`` (GetInvSqrtQuantizedMultiplierExp
vectors, verbatim), hand-checked values, and an optional scalar C restatement of the
gemmlowp algorithms compiled with gcc (checks the NumPy vectorization bit for bit).
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from refquant import fixedpoint_math as fm
from refquant.errors import QuantizationTypeError, QuantizationValueError

pytestmark = pytest.mark.kernels

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def gemmlowp_testvals() -> np.ndarray:
    """The input set of gemmlowp test_fixedpoint.cc: ±2^i + {-2..2}, the ends, 1000 LCG values."""
    vals = []
    for i in range(31):
        for d in (-2, -1, 0, 1, 2):
            vals += [(1 << i) + d, -(1 << i) + d]
    vals += [I32_MIN, I32_MIN + 1, I32_MIN + 2, I32_MAX - 2, I32_MAX - 1, I32_MAX]
    r = 1
    for _ in range(1000):
        r = (r * 1664525 + 1013904223) % 2**32
        vals.append(r - 2**32 if r >= 2**31 else r)
    return np.array(sorted(vals), dtype=np.int64)


VALS = gemmlowp_testvals()


def to_double(raw, integer_bits):
    return np.asarray(raw, dtype=np.float64) / 2.0 ** (31 - integer_bits)


def test_exp_on_interval_bound():
    a = fm.saturating_rounding_multiply_by_pot(VALS, -3).astype(np.int64) - (1 << 28)
    err = np.exp(to_double(a, 0)) - to_double(fm.exp_on_interval_between_negative_one_quarter_and_0_excl(a), 0)
    assert np.abs(err).max() < 3e-7


@pytest.mark.parametrize("integer_bits", [1, 2, 3, 4, 5, 6])
def test_exp_on_negative_values_bound(integer_bits):
    a = VALS[VALS < 0]
    out = fm.exp_on_negative_values(a, integer_bits)
    assert out.dtype == np.int32
    assert np.abs(np.exp(to_double(a, integer_bits)) - to_double(out, 0)).max() < 3e-7


@pytest.mark.parametrize("integer_bits", [1, 2, 3, 4, 5, 6])
def test_tanh_and_logistic_bounds(integer_bits):
    x = to_double(VALS, integer_bits)
    assert np.abs(np.tanh(x) - to_double(fm.tanh(VALS, integer_bits), 0)).max() < 1.5e-7
    assert np.abs(1 / (1 + np.exp(-x)) - to_double(fm.logistic(VALS, integer_bits), 0)).max() < 1.5e-7


def test_reciprocal_helpers_bounds():
    a = VALS[VALS > 0]
    x = to_double(a, 0)
    assert np.abs((1 - x) / (1 + x) - to_double(fm.one_minus_x_over_one_plus_x_for_x_in_0_1(a), 0)).max() < 6e-9
    assert np.abs(1 / (1 + x) - to_double(fm.one_over_one_plus_x_for_x_in_0_1(a), 0)).max() < 6e-9
    raw, bits = fm.get_reciprocal(a, 12)
    np.testing.assert_allclose(to_double(raw, 0) * 2.0 ** -bits.astype(np.float64),
                               1 / to_double(a, 12), rtol=1e-8)


def test_hand_checked_values():
    assert fm.exp_on_negative_values(0, 5) == I32_MAX  # exp(0) = One
    assert fm.logistic(0, 4) == 1 << 30 and fm.tanh(0, 4) == 0
    assert abs(fm.exp_on_negative_values(-(1 << 30), 5) - math.exp(-16) * 2**31) < 1  # -16 in Q5.26
    assert fm.exp_on_negative_values(-(33 << 25), 6) == 0  # -33 in Q6.25: below the -32 clamp
    assert abs(fm.exp_on_negative_values(-(20 << 25), 6) - math.exp(-20) * 2**31) < 1  # not clamped
    assert fm.get_reciprocal(1 << 19, 12) == (I32_MAX, 0)  # 1.0 in Q12.19
    assert fm.rounding_half_sum(-3, 0) == -2 and fm.rounding_half_sum(3, 0) == 2
    assert fm.rounding_half_sum(I32_MAX, I32_MAX) == I32_MAX
    np.testing.assert_array_equal(
        fm.saturating_rounding_multiply_by_pot([2**28, 2**28 - 1, -(2**28) + 1, -(2**28)], 3),
        [I32_MAX, 2**31 - 8, -(2**31) + 8, I32_MIN])
    assert fm.rescale(3, 4, 6) == 1  # Q4 -> Q6 divides the raw value by 4: RHAZ(0.75) = 1


@pytest.mark.parametrize("x, want", [
    (0, (I32_MAX, 0)), (1, (I32_MAX, 0)), (2, (1518498372, 0)), (3, (1239850284, 0)),
    (4, (1073741828, 0)), (100, (214748363, 0)), (10000, (343597361, 4)),
    (1000000, (274877901, 7)), (100000000, (219902323, 10)), (1 << 30, (268435457, 12)),
    (I32_MAX, (189812531, 12)),
])
def test_tf_inv_sqrt_vectors(x, want):
    assert fm.get_inv_sqrt_quantized_multiplier_exp(x, 1) == want
    assert fm.get_inv_sqrt_quantized_multiplier_exp(x, -1) == (want[0], -want[1])


@pytest.mark.parametrize("call, exc", [
    (lambda: fm.exp_on_negative_values(-5, 30), QuantizationValueError),
    (lambda: fm.tanh(5, 29), QuantizationValueError),
    (lambda: fm.logistic(5.0, 4), QuantizationTypeError),
    (lambda: fm.logistic(2**31, 4), QuantizationValueError),
    (lambda: fm.get_reciprocal(0, 12), QuantizationValueError),
    (lambda: fm.get_inv_sqrt_quantized_multiplier_exp(-1, 1), QuantizationValueError),
    (lambda: fm.saturating_rounding_multiply_by_pot(1, 31), QuantizationValueError),
    (lambda: fm.rescale(1, "4", 0), QuantizationTypeError),
])
def test_bad_inputs(call, exc):
    with pytest.raises(exc):
        call()


C_SOURCE = r"""
#include <stdint.h>
#include <stdio.h>
/* Scalar restatement of gemmlowp fixedpoint.h math and TFLite GetReciprocal (test-only). */
static int32_t wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wsub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }
static int32_t mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * b;
  return (int32_t)((ab + (ab >= 0 ? (1 << 30) : (1 - (1 << 30)))) / (1LL << 31));
}
static int32_t rdbpot(int32_t x, int e) {
  int32_t mask = (int32_t)((1LL << e) - 1), rem = x & mask, thr = (mask >> 1) + (x < 0);
  return (x >> e) + (rem > thr);
}
static int32_t pot(int32_t x, int e) {
  if (e == 0) return x;
  if (e < 0) return rdbpot(x, -e);
  int32_t thr = (int32_t)((1LL << (31 - e)) - 1);
  if (x > thr) return INT32_MAX;
  if (x < -thr) return INT32_MIN;
  return (int32_t)((uint32_t)x << e);
}
static int32_t half_sum(int32_t a, int32_t b) {
  int64_t s = (int64_t)a + b; return (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
}
static int32_t exp_quarter(int32_t a) {
  const int32_t c = 1895147668, third = 715827883;
  int32_t x = wadd(a, 1 << 28), x2 = mul(x, x), x3 = mul(x2, x), x4 = mul(x2, x2);
  int32_t p = pot(wadd(mul(wadd(pot(x4, -2), x3), third), x2), -1);
  return wadd(c, mul(c, wadd(x, p)));
}
static int32_t exp_neg(int32_t a, int ib) {
  static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  int fb = 31 - ib; int32_t q = 1 << (fb - 2);
  int32_t b = wsub(a & (q - 1), q), r = exp_quarter(pot(b, ib)), rem = wsub(b, a);
  for (int j = -2; j <= 4; j++)
    if (ib > j && (rem & (1 << (fb + j)))) r = mul(r, mult[j + 2]);
  if (ib > 5 && a < -(1 << (36 - ib))) r = 0;
  return a == 0 ? INT32_MAX : r;
}
static int32_t newton(int32_t a) {
  int32_t d = half_sum(a, INT32_MAX), x = wadd(1515870810, mul(d, -1010580540));
  for (int i = 0; i < 3; i++) x = wadd(x, pot(mul(x, wsub(1 << 29, mul(d, x))), 2));
  return x;
}
static int32_t logistic(int32_t a, int ib) {
  int32_t ab = a > 0 ? a : wsub(0, a);
  int32_t pos = pot(newton(exp_neg(wsub(0, ab), ib)), 1);
  return a == 0 ? (1 << 30) : (a > 0 ? pos : wsub(INT32_MAX, pos));
}
static int32_t tanh_(int32_t a, int ib) {
  int32_t n = a < 0 ? a : wsub(0, a);
  int32_t t = pot(wsub(newton(exp_neg(n, ib + 1)), 1 << 29), 2);
  return a == 0 ? 0 : (a < 0 ? wsub(0, t) : t);
}
int main(void) {
  char op; long long a; int ib;
  while (scanf(" %c %lld %d", &op, &a, &ib) == 3) {
    int32_t x = (int32_t)a;
    switch (op) {
      case 'e': printf("%d\n", exp_neg(x, ib)); break;
      case 'l': printf("%d\n", logistic(x, ib)); break;
      case 't': printf("%d\n", tanh_(x, ib)); break;
      case 'o': printf("%d\n", pot(newton(x), 1)); break;
      case 'm': printf("%d\n", pot(wsub(newton(x), 1 << 29), 2)); break;
      case 'r': { int h = __builtin_clz((uint32_t)x);
                  int32_t s = (int32_t)(((uint32_t)x << h) - (1u << 31));
                  printf("%d %d\n", pot(newton(s), 1), ib - h); break; }
      default: return 3;
    }
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def c_math(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("fixedpoint_math_c")
    (d / "fpm.c").write_text(C_SOURCE)
    res = subprocess.run([cc, "-O1", "-std=gnu99", "-o", str(d / "fpm"), str(d / "fpm.c")],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"C compile failed: {res.stderr[:300]}")

    def run(op, xs, ib):
        lines = "".join(f"{op} {int(x)} {ib}\n" for x in xs)
        out = subprocess.run([str(d / "fpm")], input=lines, capture_output=True, text=True, check=True)
        return out.stdout.split()

    return run


@pytest.mark.parametrize("integer_bits", [0, 1, 3, 4, 5, 6, 12, 28])
def test_bit_exact_vs_c(c_math, integer_bits):
    rng = np.random.default_rng(integer_bits)
    xs = np.concatenate([VALS, rng.integers(I32_MIN, I32_MAX, 3000, endpoint=True)])
    neg = xs[xs <= 0]
    np.testing.assert_array_equal(fm.exp_on_negative_values(neg, integer_bits),
                                  np.array(c_math("e", neg, integer_bits), np.int64))
    np.testing.assert_array_equal(fm.logistic(xs, integer_bits), np.array(c_math("l", xs, integer_bits), np.int64))
    np.testing.assert_array_equal(fm.tanh(xs, integer_bits), np.array(c_math("t", xs, integer_bits), np.int64))
    if integer_bits == 0:
        np.testing.assert_array_equal(fm.one_over_one_plus_x_for_x_in_0_1(xs),
                                      np.array(c_math("o", xs, 0), np.int64))
        np.testing.assert_array_equal(fm.one_minus_x_over_one_plus_x_for_x_in_0_1(xs),
                                      np.array(c_math("m", xs, 0), np.int64))
    nz = xs[xs != 0]
    raw, bits = fm.get_reciprocal(nz, integer_bits)
    want = np.array(c_math("r", nz, integer_bits), np.int64).reshape(-1, 2)
    np.testing.assert_array_equal(raw, want[:, 0])
    np.testing.assert_array_equal(bits, want[:, 1])

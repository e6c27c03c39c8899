"""Tests of refquant.kernels.lut and .softmax: correctly rounded expf/tanhf against a Decimal oracle, tables
against float64 formulas (1 LSB) and hand values, the Numba kernels (lookup, both softmaxes,
the gemmlowp scalar twins) against the NumPy references, and bad input."""

from __future__ import annotations

import ctypes.util
from decimal import Decimal, localcontext

import numpy as np
import pytest
from support.edge_values import accumulator_edge_values

from refquant import fixedpoint_math as fpm
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.kernels import _fixedpoint_nb as nb
from refquant.kernels import lut
from refquant.kernels import softmax as smx

pytestmark = pytest.mark.kernels
F32 = np.float32


def both(fn_ref, fn_fast, *args, **kw):
    ref, fast = fn_ref(*args, **kw), fn_fast(*args, **kw)
    assert ref.shape == fast.shape and ref.dtype == fast.dtype
    np.testing.assert_array_equal(fast, ref, err_msg=f"{fn_fast.__name__}: Numba != reference")
    return ref


def decimal_round_f32(fn, x):
    """Oracle: the float32 nearest to the 60-digit value (ties to even)."""
    with localcontext() as ctx:
        ctx.prec = 60
        d = Decimal(float(x))
        v = d.exp() if fn == "exp" else ((2 * d).exp() - 1) / ((2 * d).exp() + 1)
    r = F32(float(v))
    best = r
    for c in (np.nextafter(r, F32(np.inf)), np.nextafter(r, F32(-np.inf))):
        if abs(Decimal(float(c)) - v) < abs(Decimal(float(best)) - v):
            best = c
    return best


@pytest.mark.parametrize("fn", ["exp", "tanh"])
def test_correctly_rounded_transcendentals(fn):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-20, 20, 1500), rng.uniform(-1e-3, 1e-3, 300),
                        [0.0, 1e-30, -1e-30, 88.7, -103.0]]).astype(F32)
    x = x if fn == "exp" else x[np.abs(x) < 20]
    got = lut.expf(x) if fn == "exp" else lut.tanhf(x)
    want = np.array([decimal_round_f32(fn, v) for v in x], F32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # a glibc 2.36 expf mismatch found by the exhaustive scan (0x1.fefe02p-16 -> 0x1.0002p+0 in glibc)
    assert lut.expf(np.array([float.fromhex("0x1.fefe02p-16")], F32))[0] == F32(float.fromhex("0x1.0001fep+0"))


@pytest.mark.skipif(ctypes.util.find_library("m") is None, reason="no C math library")
def test_libm_is_within_two_ulp():
    # glibc documents expf within 1 ulp and tanhf within 2 ulp (seen: 2 here on glibc 2.36)
    x = np.random.default_rng(2).uniform(-10, 10, 500).astype(F32)
    for fn, bound in ((lut.expf, 1), (lut.tanhf, 2)):
        a, b = fn(x), fn(x, math="libm")
        assert np.all(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64)) <= bound)


def test_logistic_and_tanh_tables_vs_float64():
    rng = np.random.default_rng(3)
    for trial in range(40):
        dt = np.int8 if trial % 2 == 0 else np.uint8
        info = np.iinfo(dt)
        xs, xz = F32(rng.uniform(0.005, 0.3)), int(rng.integers(info.min, info.max + 1))
        d = lut.lut_inputs(xs, xz, dt).astype(np.float64)
        t = lut.logistic_lut(xs, xz, dtype=dt)
        zy = -128 if dt == np.int8 else 0
        want = np.clip(np.round(256 / (1 + np.exp(-d))) + zy, info.min, info.max)
        assert np.max(np.abs(t.astype(np.int64) - want)) <= 1
        zt = 0 if dt == np.int8 else 128
        t = lut.tanh_lut(xs, xz, 1 / 128, zt, dtype=dt)
        want = np.clip(np.round(128 * np.tanh(d)) + zt, info.min, info.max)
        assert np.max(np.abs(t.astype(np.int64) - want)) <= 1


def test_logistic_table_hand_values():
    t = lut.logistic_lut(0.1, 5)  # code 5 -> d = 0 -> 0.5 * 256 = 128 -> 128 - 128 = 0
    assert t[5] == 0 and t.dtype == np.int8
    assert t[127] == 127 and t[128] == -128  # code 127: 255.998 -> 256 -> 128, clamped; byte 128 is code -128
    # huge rescaled values: (int32)(inf) is INT32_MIN on x86, so TFLite's table holds qmin
    t = lut.populate_lut(np.full(256, 1.0, F32), 1e-38, -128)
    assert np.all(t == -128)
    t = lut.populate_lut(np.full(256, 2.5, F32), 1.0, 0)
    assert np.all(t == 3)  # std::round: 2.5 -> 3


def test_rational_logistic():
    x = np.linspace(-20, 20, 4001, dtype=F32)
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    for fused in (True, False):
        y = lut.rational_logistic(x, fused=fused)
        assert y.dtype == np.float32 and np.max(np.abs(y - exact)) < 2e-7
    assert not np.array_equal(lut.rational_logistic(x), lut.rational_logistic(x, fused=False))
    t = lut.rational_logistic_lut(0.05, np.uint8(128), 1 / 256, np.uint8(0), dtype="uint8")
    assert t[128] == 128  # d = 0 -> 0.5 -> 128


def test_apply_lut_reference_equals_numba():
    rng = np.random.default_rng(4)
    table = rng.integers(-128, 128, 256).astype(np.int8)
    for dt in (np.int8, np.uint8):
        x = rng.integers(0, 256, (3, 5, 7)).astype(np.uint8).view(dt)
        y = both(lut.apply_lut_reference, lut.apply_lut, x, table)
        assert y[0, 0, 0] == table[x.view(np.uint8)[0, 0, 0]]


@pytest.mark.parametrize("dt", [np.int8, np.uint8])
def test_softmax_lut_reference_equals_numba(dt):
    rng = np.random.default_rng(5)
    info = np.iinfo(dt)
    for trial in range(40):
        n = int(rng.integers(1, 40)) if trial % 5 else 1500
        x = rng.integers(info.min, info.max + 1, (3, n)).astype(dt)
        if trial % 7 == 0:
            x[:] = info.max  # all equal: 1/n each
        table = smx.softmax_exp_table(F32(rng.uniform(0.01, 0.5)), F32(rng.choice([1.0, 0.5, 2.7])))
        both(smx.softmax_lut_reference, smx.softmax_lut, x, table)
    y = smx.softmax_lut(np.zeros((1, 4), dt), smx.softmax_exp_table(0.1))  # 0.25 * 256 = 64
    assert np.all(y.astype(np.int64) == 64 + (-128 if dt == np.int8 else 0))


def test_softmax_exp_table():
    t = smx.softmax_exp_table(0.5, 1.0)
    assert t.dtype == np.float32 and t[255] == 1.0 and t[254] == lut.expf(np.array([-0.5], F32))[0]


@pytest.mark.parametrize("single", [False, True])
@pytest.mark.parametrize("dt", [np.int8, np.uint8])
def test_softmax_fixed_point_reference_equals_numba(dt, single):
    rng = np.random.default_rng(6 + single)
    info = np.iinfo(dt)
    for trial in range(30):
        n = int(rng.integers(1, 60)) if trial % 6 else 400
        x = rng.integers(info.min, info.max + 1, (4, n)).astype(dt)
        p = smx.softmax_fixed_point_params(F32(rng.uniform(0.005, 1.0)), F32(rng.choice([1.0, 0.3, 3.0])),
                                           single_rounding=single)
        both(smx.softmax_fixed_point_reference, smx.softmax_fixed_point, x, p, single_rounding=single)


def test_softmax_fixed_point_aborts_like_tflite():
    x = np.zeros((1, 600), np.int8)  # 600 equal maxima: the Q12.19 sum reaches 2^28
    p = smx.softmax_fixed_point_params(0.1, 1.0)
    for fn in (smx.softmax_fixed_point_reference, smx.softmax_fixed_point):
        with pytest.raises(UnsupportedError, match="exponent <= 31"):
            fn(x, p)


def test_softmax_fixed_point_params():
    # PreprocessSoftmaxScaling(1, 1/16 -> beta*scale*2^26 = 2^22 -> (2^30, 23)); radius from TF tests
    p = smx.softmax_fixed_point_params(2.0 ** -4, 1.0)
    assert p[0] == 2 ** 30 and p[1] == 23
    assert p[2] == -((31 << 26) >> 23)


def test_gemmlowp_numba_twins_equal_numpy():
    v = accumulator_edge_values(seed=7, n_random=400).astype(np.int64)
    neg = np.concatenate([-np.abs(v), [0, -1, -(2 ** 31)]])
    pos = v[(v > 0)]
    for ib in (0, 1, 5, 12, 29):
        want = np.asarray(fpm.exp_on_negative_values(neg, ib), np.int64)
        got = np.array([nb.exp_on_negative_values(a, ib) for a in neg])
        np.testing.assert_array_equal(got, want, err_msg=f"exp_on_negative_values, integer_bits={ib}")
    a01 = np.abs(v) % (2 ** 31)
    np.testing.assert_array_equal([nb.one_over_one_plus_x_for_x_in_0_1(a) for a in a01],
                                  fpm.one_over_one_plus_x_for_x_in_0_1(a01))
    for digits in (0, 12, 31):
        want_r, want_n = fpm.get_reciprocal(pos, digits)
        got = [nb.get_reciprocal(a, digits) for a in pos]
        np.testing.assert_array_equal([g[0] for g in got], want_r)
        np.testing.assert_array_equal([g[1] for g in got], want_n)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: lut.logistic_lut(0.1, 300), QuantizationValueError, "x_zero_point"),
    (lambda: lut.logistic_lut(0.1, 0, dtype="int16"), QuantizationTypeError, "int8"),
    (lambda: lut.expf([1.0], math="fast"), QuantizationValueError, "math must be"),
    (lambda: lut.populate_lut(np.zeros(10, F32), 1.0, 0), ShapeError, "256"),
    (lambda: lut.apply_lut(np.zeros(3, np.int16), np.zeros(256, np.int8)), QuantizationTypeError, "int8"),
    (lambda: lut.apply_lut(np.zeros(3, np.int8), np.zeros(255, np.int8)), ShapeError, "256"),
    (lambda: smx.softmax_lut(np.int8(3), smx.softmax_exp_table(0.1)), QuantizationTypeError, "NumPy array"),
    (lambda: smx.softmax_exp_table(0.1, float("nan")), QuantizationValueError, "beta"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()

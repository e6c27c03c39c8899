"""Tests of refquant.kernels.elementwise and .elementwise_float: Numba kernels against NumPy references on random,
tie-heavy and saturating inputs (with broadcasting), offline parameters against hand-worked
values, the float32 FMA against an exact ``Fraction`` oracle, and bad input."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.kernels import elementwise as ew
from refquant.kernels import elementwise_float as ewf
from refquant.quantization import fma_f32

pytestmark = pytest.mark.kernels
F32 = np.float32
SHAPES = [((7,), (7,)), ((3, 5), (5,)), ((3, 1), (3, 4)), ((2, 3, 4), (1,)), ((1,), (2, 6)), ((), (5,)),
          ((4, 1, 3), (2, 1)), ((1, 1), (1, 1))]


def both(fn_ref, fn_fast, *args, **kw):
    ref, fast = fn_ref(*args, **kw), fn_fast(*args, **kw)
    assert ref.shape == fast.shape and ref.dtype == fast.dtype
    if not np.array_equal(fast, ref):
        i = np.flatnonzero(fast.ravel() != ref.ravel())[:5]
        pytest.fail(f"{fn_fast.__name__}: Numba != reference at {i}: {ref.ravel()[i]} vs {fast.ravel()[i]}")
    return ref


def scales(rng, tie):
    if tie:
        return [F32(2.0 ** -int(rng.integers(1, 8))) for _ in range(3)]
    return [F32(rng.uniform(0.002, 0.2)) for _ in range(3)]


def operands(rng, dtype, sa, sb):
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, sa, endpoint=True).astype(dtype)
    b = rng.integers(info.min, info.max, sb, endpoint=True).astype(dtype)
    z = [dtype(rng.integers(info.min, info.max, endpoint=True)) for _ in range(3)]
    return a, b, z


def test_fixed_point_add_params_hand_values():
    p = ew.fixed_point_add_params(0.5, 0.5, 0.25)  # M_a = M_b = 1/2; M_y = 1 / (2^20 * 0.25) = 2^-18
    assert (p.a_multiplier, p.a_shift) == (2 ** 30, 0) and (p.b_multiplier, p.b_shift) == (2 ** 30, 0)
    assert (p.output_multiplier, p.output_shift) == (2 ** 30, -17) and p.left_shift == 20
    with pytest.raises(QuantizationValueError):
        ew.fixed_point_add_params(1.0, 1.0, 2.0 ** -30)  # M_y >= 1


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_fixed_point_add_reference_equals_numba(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    for trial, (sa_shape, sb_shape) in enumerate(SHAPES * 6):
        a, b, (za, zb, zy) = operands(rng, dtype, sa_shape, sb_shape)
        sa, sb, sy = scales(rng, trial % 2)
        ls = 15 if dtype == np.int16 else 20
        for variant in ("double", "single"):
            p = ew.fixed_point_add_params(sa, sb, sy, left_shift=ls, single_rounding=variant == "single")
            both(ew.fixed_point_add_reference, ew.fixed_point_add, a, za, b, zb, zy, p, variant=variant)
            both(ew.fixed_point_add_reference, ew.fixed_point_add, a, za, b, zb, zy, p, act_min=int(zy),
                 variant=variant)


def test_fixed_point_add_hand_example():
    # equal scales 0.5, output 0.25 (exact multipliers): y = 2 (a - za) + 2 (b - zb) + zy
    a = np.array([1, -3, 60, -128], np.int8)
    b = np.array([2, 5, 60, -128], np.int8)
    p = ew.fixed_point_add_params(0.5, 0.5, 0.25)
    y = ew.fixed_point_add(a, np.int8(0), b, np.int8(1), np.int8(-1), p)
    np.testing.assert_array_equal(y, [3, 1, 127, -128])  # 2 + 2 - 1, -6 + 8 - 1, saturated, saturated


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_fixed_point_mul_reference_equals_numba(dtype):
    rng = np.random.default_rng(5)
    for trial, (sa_shape, sb_shape) in enumerate(SHAPES * 6):
        a, b, (za, zb, zy) = operands(rng, dtype, sa_shape, sb_shape)
        q, s = ew.fixed_point_mul_params(*scales(rng, trial % 2))
        both(ew.fixed_point_mul_reference, ew.fixed_point_mul, a, za, b, zb, zy, q, s)


def test_fixed_point_mul_params_float32_product():
    a, b, c = F32(0.1), F32(0.3), F32(0.07)
    from refquant.fixedpoint_multiplier import quantize_multiplier
    assert ew.fixed_point_mul_params(a, b, c) == quantize_multiplier(float(F32(F32(a * b) / c)))


def test_rescale_add_params_and_kernel():
    p = ew.rescale_add_params(0.5, 0.25, 0.25)  # ratios 2 and 1: exponent 1 -> shift 19
    assert p == ew.RescaleAddParams(2 ** 20, 2 ** 19, 19)
    with pytest.raises(QuantizationValueError, match="2\\^-10"):
        ew.rescale_add_params(1e-4, 1.0, 1.0)
    rng = np.random.default_rng(6)
    for dtype in (np.int8, np.uint8):
        for trial, (sa_shape, sb_shape) in enumerate(SHAPES * 6):
            a, b, (za, zb, zy) = operands(rng, dtype, sa_shape, sb_shape)
            p = ew.rescale_add_params(*scales(rng, trial % 2))
            both(ew.rescale_add_reference, ew.rescale_add, a, za, b, zb, zy, p)


def test_rescale_add_rounds_half_up():
    # multipliers 2^19, shift 20: y = floor((a + b + 1) / 2): ties go up for both signs
    p = ew.RescaleAddParams(2 ** 19, 2 ** 19, 20)
    a = np.array([1, -1, 3, -3], np.int8)
    y = ew.rescale_add(a, np.int8(0), np.zeros(4, np.int8), np.int8(0), np.int8(0), p)
    np.testing.assert_array_equal(y, [1, 0, 2, -1])


def test_float_add_mode():
    assert ewf.float_add_mode((7,), (7,)) == "vector"
    assert ewf.float_add_mode((3, 1), (3, 4)) == "a_scalar"
    assert ewf.float_add_mode((3, 4), (1,)) == "b_scalar"
    assert ewf.float_add_mode((2, 3, 4), (3, 1)) == "b_scalar"
    assert ewf.float_add_mode((4, 1), (1, 1)) == "b_scalar"  # innermost dims of size 1 are skipped
    assert ewf.float_add_mode((1, 1), (1, 1)) == "a_scalar"
    assert ewf.float_add_mode((), ()) == "a_scalar"


@pytest.mark.parametrize("fused", [True, False])
def test_float_add_reference_equals_numba(fused):
    rng = np.random.default_rng(7 + fused)
    for dtype in (np.int8, np.uint8):
        for trial, (sa_shape, sb_shape) in enumerate(SHAPES * 8):
            a, b, (za, zb, zy) = operands(rng, dtype, sa_shape, sb_shape)
            sa, sb, sy = scales(rng, trial % 2)
            both(ewf.float_add_reference, ewf.float_add, a, sa, za, b, sb, zb, sy, zy, fused=fused)
            # order of operands matters for the scalar paths: swap them too
            both(ewf.float_add_reference, ewf.float_add, b, sb, zb, a, sa, za, sy, zy, fused=fused)


def test_float_add_saturates_and_huge_ratio():
    a = np.array([127, -128, 0], np.int8)
    y = ewf.float_add(a, 1.0, np.int8(0), a, 1.0, np.int8(0), 1.0, np.int8(0))
    np.testing.assert_array_equal(y, [127, -128, 0])
    # |y| >= 2^31: cvtps2dq returns INT32_MIN, which saturates to qmin (not qmax)
    y = ewf.float_add(np.array([100], np.int8), 1e8, np.int8(0), np.array([0], np.int8), 1.0, np.int8(0), 1e-3,
                     np.int8(0))
    assert y[0] == -128


def test_float_mul_reference_equals_numba_and_hand_value():
    rng = np.random.default_rng(9)
    for dtype in (np.int8, np.uint8):
        for trial, (sa_shape, sb_shape) in enumerate(SHAPES * 6):
            a, b, (za, zb, zy) = operands(rng, dtype, sa_shape, sb_shape)
            sa, sb, sy = scales(rng, trial % 2)
            both(ewf.float_mul_reference, ewf.float_mul, a, sa, za, b, sb, zb, sy * 100, zy)
    # zero point added before rounding: p * m = 0.5, zy = 1 -> rint(1.5) = 2 (round-then-add: 1)
    y = ewf.float_mul(np.array([1], np.int8), 0.5, np.int8(0), np.array([1], np.int8), 1.0, np.int8(0), 1.0,
                     np.int8(1))
    assert y[0] == 2


def test_fma32_numba_equals_exact():
    rng = np.random.default_rng(10)
    n = 20000
    p = rng.integers(-300, 300, n).astype(F32)
    q = (rng.uniform(-2, 2, n) * 2.0 ** rng.integers(-30, 10, n)).astype(F32)
    r = (rng.uniform(-300, 300, n) * 2.0 ** rng.integers(-30, 5, n)).astype(F32)
    # force midpoints: r = -p*q + (a float32) + half an ulp pattern
    r[:2000] = (-(p[:2000].astype(np.float64) * q[:2000]) + 1.5 * 2.0 ** -20).astype(F32)
    fast = np.array([ewf._fma32(p[i], q[i], r[i]) for i in range(n)], F32)
    np.testing.assert_array_equal(fast.view(np.uint32), fma_f32(p, q, r).view(np.uint32))
    for i in range(0, n, 97):  # independent oracle on a subset: correctly rounded exact sum
        v = Fraction(float(p[i])) * Fraction(float(q[i])) + Fraction(float(r[i]))
        lo = F32(float(v))
        cands = [lo, np.nextafter(lo, F32(np.inf)), np.nextafter(lo, F32(-np.inf))]
        best = min(cands, key=lambda c: (abs(Fraction(float(c)) - v), int(np.asarray(c).view(np.uint32)) & 1))
        assert fast[i] == best, (p[i], q[i], r[i])


def test_clamp():
    x = np.array([-128, -5, 0, 7, 127], np.int8)
    np.testing.assert_array_equal(both(ew.clamp_reference, ew.clamp, x, -5, 6), [-5, -5, 0, 6, 6])
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (3, 4, 5)).astype(np.uint8)
    both(ew.clamp_reference, ew.clamp, x, 10, 200)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ewf.float_add(np.zeros(2, np.int8), 1.0, 0, np.zeros(2, np.uint8), 1.0, 0, 1.0, 0),
     QuantizationTypeError, "share one dtype"),
    (lambda: ewf.float_add(np.zeros(2, np.int8), 1.0, 0, np.zeros(3, np.int8), 1.0, 0, 1.0, 0), ShapeError,
     "broadcast"),
    (lambda: ewf.float_mul(np.zeros(2, np.int8), 1.0, 200, np.zeros(2, np.int8), 1.0, 0, 1.0, 0),
     QuantizationValueError, "a_zero_point"),
    (lambda: ewf.float_mul(np.zeros(2, np.int8), 0.0, 0, np.zeros(2, np.int8), 1.0, 0, 1.0, 0),
     QuantizationValueError, "a_scale"),
    (lambda: ew.fixed_point_add(np.zeros(2, np.int8), 0, np.zeros(2, np.int8), 0, 0,
                                ew.fixed_point_add_params(1, 1, 1), variant="triple"), QuantizationValueError,
     "variant"),
    (lambda: ew.fixed_point_add_params(1, 1, 1, left_shift=16), QuantizationValueError, "left_shift"),
    (lambda: ew.rescale_add(np.zeros(2, np.int16), 0, np.zeros(2, np.int16), 0, 0, ew.RescaleAddParams(1, 1, 12)),
     QuantizationTypeError, "dtype"),
    (lambda: ew.clamp(np.zeros(2, np.int8), 5, 300), QuantizationValueError, "lo <= hi"),
    (lambda: ew.clamp(np.zeros(2, np.float32), 0, 1), QuantizationTypeError, "integer"),
    (lambda: ew.clamp(np.zeros(2, np.int8), True, 1), QuantizationTypeError, "lo must be an integer scalar, got True"),
    (lambda: ew.clamp(np.zeros(2, np.int8), 0, 1.0), QuantizationTypeError, "hi must be an integer scalar, got 1.0"),
    (lambda: ew.rescale_add(np.zeros(2, np.uint8), 300, np.zeros(2, np.uint8), 0, 0, ew.RescaleAddParams(1, 1, 12)),
     QuantizationValueError, r"a_zero_point must be in \[0, 255\] for uint8, got 300"),
    (lambda: ew.rescale_add(np.zeros(2, np.int8), 0, np.zeros(2, np.int8), 0, 0, ew.RescaleAddParams(1, 1, 12),
                            act_min=5, act_max=4), QuantizationValueError,
     r"act_min <= act_max must lie in \[-128, 127\] for int8, got \[5, 4\]"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()

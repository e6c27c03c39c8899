"""Numba scalar twins of the gemmlowp fixed-point math in :mod:`refquant.fixedpoint_math` (internal).

Used by the fixed-point softmax kernel of :mod:`.softmax`. Each function mirrors the NumPy
function of the same name operation by operation (int64 holding int32 values; ``_w32`` is the
C int32 wrap; ``srdhm``, ``rdbpot`` and ``_w32`` are :mod:`refquant.fixedpoint`'s scalar twins);
``tests/test_kernels_lut.py`` proves them equal on exhaustive/edge inputs.
"""

from __future__ import annotations

import numba
import numpy as np

from ..dtypes import INT32_MAX as _I32_MAX
from ..dtypes import INT32_MIN as _I32_MIN
from ..fixedpoint import _rdbpot_scalar as rdbpot  # one definition each, in refquant.fixedpoint
from ..fixedpoint import _srdhm_scalar as srdhm
from ..fixedpoint import _wrap32_scalar as _w32


@numba.njit(cache=True)
def sat_mul_pot(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>."""
    if exponent == 0:
        return np.int64(x)
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (np.int64(1) << (31 - exponent)) - np.int64(1)
    if x > threshold:
        return np.int64(_I32_MAX)
    if x < -threshold:
        return np.int64(_I32_MIN)
    return np.int64(x) << np.int64(exponent)


@numba.njit(cache=True)
def _half_sum(a, b):
    s = np.int64(a) + np.int64(b)
    v = s + (np.int64(1) if s >= 0 else np.int64(-1))
    return v // 2 if v >= 0 else -((-v) // 2)


@numba.njit(cache=True)
def _exp_quarter(a):
    constant_term = np.int64(1895147668)
    x = _w32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(_w32(srdhm(_w32(x4_over_4 + x3), np.int64(715827883)) + x2), -1)
    return _w32(constant_term + srdhm(constant_term, _w32(x + poly)))


_BARREL_EXP = np.array([-2, -1, 0, 1, 2, 3, 4], np.int64)
_BARREL_MUL = np.array([1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242], np.int64)


@numba.njit(cache=True)
def exp_on_negative_values(a, integer_bits):
    """gemmlowp exp_on_negative_values: Q(integer_bits) in, Q0.31 out."""
    fractional_bits = 31 - integer_bits
    one_quarter = np.int64(1) << (fractional_bits - 2)
    amq = _w32((np.int64(a) & (one_quarter - np.int64(1))) - one_quarter)
    result = _exp_quarter(sat_mul_pot(amq, integer_bits))
    remainder = _w32(amq - a)
    for k in range(7):
        e = _BARREL_EXP[k]
        if integer_bits > e:
            if remainder & (np.int64(1) << (fractional_bits + e)):
                result = srdhm(result, _BARREL_MUL[k])
    if integer_bits > 5 and a < -(np.int64(1) << (36 - integer_bits)):
        result = np.int64(0)
    if a == 0:
        result = np.int64(_I32_MAX)
    return result


@numba.njit(cache=True)
def one_over_one_plus_x_for_x_in_0_1(a):
    half_denominator = _half_sum(a, _I32_MAX)
    x = _w32(np.int64(1515870810) + srdhm(half_denominator, np.int64(-1010580540)))
    for _ in range(3):
        one_minus = _w32(np.int64(1 << 29) - srdhm(half_denominator, x))
        x = _w32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return sat_mul_pot(x, 1)


@numba.njit(cache=True)
def get_reciprocal(x, x_integer_digits):
    """tflite::GetReciprocal: returns (raw Q0.31, num_bits_over_unit); x != 0."""
    u = np.int64(x) & np.int64(0xFFFFFFFF)
    headroom_plus_one = np.int64(32)
    while u >= (np.int64(1) << (32 - headroom_plus_one)) and headroom_plus_one > 0:
        headroom_plus_one -= 1
    shifted = _w32(((u << headroom_plus_one) & np.int64(0xFFFFFFFF)) - np.int64(2147483648))
    return one_over_one_plus_x_for_x_in_0_1(shifted), np.int64(x_integer_digits) - headroom_plus_one

r"""gemmlowp fixed-point logistic and tanh on int16 raw values, as TFLite's optimized int16 kernels run them.

For an int16 input whose scale is exactly $2^{-12}$ (LOGISTIC, TANH) or $2^{-11}$ (TANH),
LiteRT's builtin optimized kernels (``optimized_ops::Logistic`` / ``Tanh``, int16 overloads)
read the codes as gemmlowp ``FixedPoint<int16, 3>`` (Q3.12) and return
``gemmlowp::logistic`` / ``gemmlowp::tanh`` as ``FixedPoint<int16, 0>`` (Q0.15); TANH with scale
$2^{-11}$ first doubles the code with saturation (``SaturatingRoundingMultiplyByPOT<1>``).
The algorithms are those of :mod:`refquant.fixedpoint_math` on 16-bit raw values: ``+``/``-``
wrap modulo $2^{16}$, a product is SRDHM on int16, and each 32-bit constant $c$ becomes
$\mathrm{RDBPOT}(c, 16)$ (``RescaleConstantInitializer``).

**Lanes and tail.** The kernels run blocks of 8 codes through the SSE4.1 types
(``int16x8_m128i``) and the last $n \bmod 8$ codes of the flattened tensor through the scalar
code, and two primitives round differently there:

| primitive | scalar (tail) | SSE lanes (``lanes=True``) |
|---|---|---|
| SRDHM $ab/2^{15}$ | half away from zero (``(ab + nudge) / 2^15``, C division) | half up (``_mm_mulhrs_epi16``) |
| ``RoundingHalfSum`` $(a + b)/2$ | half away from zero | half up (``_mm_avg_epu16``) |

Both saturate $(-2^{15})^2$ to $2^{15} - 1$. For these two functions the difference never
reaches the output: both roundings give the same result on all 65,536 codes (a test checks it
exhaustively), so the result does not depend on a code's position. Measured against LiteRT
2.3.0 on x86-64, every code, tensor lengths 1 to 65,536.

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V

__all__ = ["logistic_q3_reference", "logistic_q3", "tanh_q3_reference", "tanh_q3"]

def _rdbpot_int(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def _c16(v: int) -> int:
    """``RescaleConstantInitializer<int16>``: a Q0.31 constant rounded (RDBPOT) to Q0.15."""
    return _rdbpot_int(v, 16)


_EXP_M1_8 = _c16(1895147668)  # exp(-1/8)
_ONE_THIRD = _c16(715827883)
_C48_17 = _c16(1515870810)  # 48/17 in Q2.13
_CN32_17 = _c16(-1010580540)  # -32/17 in Q2.13
_HALF = _c16(1 << 30)
_BARREL = tuple((e, _c16(c)) for e, c in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                          (2, 39332535), (3, 720401), (4, 242)))
_BARREL_E = np.array([e for e, _ in _BARREL], np.int64)
_BARREL_C = np.array([c for _, c in _BARREL], np.int64)


# --------------------------------------------------------------------------- NumPy primitives (int64 arrays of int16 values)


def _w16(v):
    return ((v + 32768) & 0xFFFF) - 32768


def _srdhm(a, b, lanes):
    ab = a * b
    scalar = np.where(ab >= 0, (ab + 16384) // 32768, -((16383 - ab) // 32768))  # (ab + nudge) / 2^15, C truncation
    vector = (ab + 16384) >> 15
    r = vector if lanes else scalar
    return np.where(r == 32768, 32767, r)  # only (-2^15)^2 reaches 2^15


def _half_sum(a, b, lanes):
    s = a + b
    scalar = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))  # (s + sign) / 2, C truncation
    return ((s + 1) >> 1) if lanes else scalar


def _rdbpot(x, e: int):
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)


def _sat_mul_pot(x, e: int):
    if e == 0:
        return x
    if e < 0:
        return _rdbpot(x, -e)
    threshold = (1 << (15 - e)) - 1
    return np.where(x > threshold, 32767, np.where(x < -threshold, -32768, x << e))


def _exp_quarter(a, lanes):
    x = _w16(a + 4096)  # + 1/8 (ConstantPOT<-3>)
    x2 = _srdhm(x, x, lanes)
    x3 = _srdhm(x2, x, lanes)
    x4 = _srdhm(x2, x2, lanes)
    poly = _rdbpot(_w16(_srdhm(_w16(_rdbpot(x4, 2) + x3), _ONE_THIRD, lanes) + x2), 1)
    return np.clip(_EXP_M1_8 + _srdhm(np.int64(_EXP_M1_8), _w16(x + poly), lanes), -32768, 32767)  # SaturatingAdd


def _exp_neg(a, m: int, lanes):
    fractional_bits = 15 - m
    one_quarter = 1 << (fractional_bits - 2)
    a_mod = _w16((a & (one_quarter - 1)) - one_quarter)
    result = _exp_quarter(_sat_mul_pot(a_mod, m), lanes)
    remainder = _w16(a_mod - a)
    for exponent, multiplier in _BARREL:
        if m > exponent:
            bit = remainder & (1 << (fractional_bits + exponent))
            result = np.where(bit != 0, _srdhm(result, np.int64(multiplier), lanes), result)
    return np.where(a == 0, 32767, result)


def _newton(a, lanes):
    """x ~ 1/(1 + a) in Q2.13 for a in Q0.15 (three Newton-Raphson steps on d = (1 + a)/2)."""
    half_denominator = _half_sum(a, np.int64(32767), lanes)
    x = _w16(_C48_17 + _srdhm(half_denominator, np.int64(_CN32_17), lanes))
    for _ in range(3):
        one_minus = _w16(8192 - _srdhm(half_denominator, x, lanes))
        x = _w16(x + _sat_mul_pot(_srdhm(x, one_minus, lanes), 2))
    return x


def _check(x, lanes):
    x = V.as_typed_array(x, "x", ("int16",), array_only=True)  # native byte order
    return x, V.as_flag(lanes, "lanes")


def logistic_q3_reference(x, *, lanes=False) -> np.ndarray:
    """``gemmlowp::logistic(FixedPoint<int16, 3>)``: Q3.12 codes in, Q0.15 out. NumPy spec.

    Args:
        x: int16 array (any shape), read as Q3.12 ($x / 2^{12}$).
        lanes: ``True`` for the SSE lanes' rounding, ``False`` (default) for the scalar code's.

    Returns:
        int16 array of ``x``'s shape: $\\approx 2^{15} \\sigma(x / 2^{12})$ (0.5 gives 16384).
    """
    x, ln = _check(x, lanes)
    a = x.ravel().astype(np.int64)
    positive = a > 0
    abs_input = np.where(positive, a, _w16(-a))
    if_positive = _sat_mul_pot(_newton(_exp_neg(_w16(-abs_input), 3, ln), ln), 1)
    r = np.where(a == 0, _HALF, np.where(positive, if_positive, _w16(32767 - if_positive)))
    return r.astype(np.int16).reshape(x.shape)


def tanh_q3_reference(x, *, lanes=False, double_input=False) -> np.ndarray:
    """``gemmlowp::tanh(FixedPoint<int16, 3>)``: Q3.12 codes in, Q0.15 out. NumPy spec.

    With ``double_input=True`` the codes are first doubled with saturation
    (``SaturatingRoundingMultiplyByPOT<1>``: the optimized TANH for input scale $2^{-11}$).
    ``lanes`` as in :func:`logistic_q3_reference`.
    """
    x, ln = _check(x, lanes)
    double_input = V.as_flag(double_input, "double_input")
    a = _sat_mul_pot(x.ravel().astype(np.int64), 1 if double_input else 0)
    negative = a < 0
    n = np.where(negative, a, _w16(-a))
    t = _sat_mul_pot(_w16(_newton(_exp_neg(n, 4, ln), ln) - 8192), 2)
    r = np.where(a == 0, 0, np.where(negative, _w16(-t), t))
    return r.astype(np.int16).reshape(x.shape)


# --------------------------------------------------------------------------- Numba twins


@numba.njit(cache=True)
def _w16_nb(v):
    return ((np.int64(v) + 32768) & 0xFFFF) - 32768


@numba.njit(cache=True)
def _srdhm_nb(a, b, lanes):
    ab = np.int64(a) * np.int64(b)
    if lanes:
        r = (ab + 16384) >> 15
    elif ab >= 0:
        r = (ab + 16384) // 32768
    else:
        r = -((16383 - ab) // 32768)
    return np.int64(32767) if r == 32768 else r


@numba.njit(cache=True)
def _rdbpot_nb(x, e):
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (np.int64(1) if x < 0 else np.int64(0))
    return (x >> e) + (np.int64(1) if (x & mask) > threshold else np.int64(0))


@numba.njit(cache=True)
def _sat_shl_nb(x, e):
    threshold = (np.int64(1) << (15 - e)) - 1
    if x > threshold:
        return np.int64(32767)
    if x < -threshold:
        return np.int64(-32768)
    return x << e


@numba.njit(cache=True)
def _exp_neg_nb(a, m, lanes, barrel_e, barrel_c):
    fractional_bits = 15 - m
    one_quarter = np.int64(1) << (fractional_bits - 2)
    a_mod = _w16_nb((a & (one_quarter - 1)) - one_quarter)
    x = _w16_nb(_sat_shl_nb(a_mod, m) + 4096)
    x2 = _srdhm_nb(x, x, lanes)
    x3 = _srdhm_nb(x2, x, lanes)
    x4 = _srdhm_nb(x2, x2, lanes)
    poly = _rdbpot_nb(_w16_nb(_srdhm_nb(_w16_nb(_rdbpot_nb(x4, 2) + x3), _ONE_THIRD, lanes) + x2), 1)
    result = min(max(_EXP_M1_8 + _srdhm_nb(_EXP_M1_8, _w16_nb(x + poly), lanes), -32768), 32767)
    remainder = _w16_nb(a_mod - a)
    for k in range(barrel_e.shape[0]):
        if m > barrel_e[k] and (remainder & (np.int64(1) << (fractional_bits + barrel_e[k]))) != 0:
            result = _srdhm_nb(result, barrel_c[k], lanes)
    return np.int64(32767) if a == 0 else result


@numba.njit(cache=True)
def _newton_nb(a, lanes):
    s = a + 32767
    if lanes:
        half_denominator = (s + 1) >> 1
    else:
        half_denominator = (s + 1) // 2 if s >= 0 else -((1 - s) // 2)
    x = _w16_nb(_C48_17 + _srdhm_nb(half_denominator, _CN32_17, lanes))
    for _ in range(3):
        one_minus = _w16_nb(8192 - _srdhm_nb(half_denominator, x, lanes))
        x = _w16_nb(x + _sat_shl_nb(_srdhm_nb(x, one_minus, lanes), 2))
    return x


@numba.njit(cache=True)
def _q3_kernel(flat, ln, tanh, double_input, barrel_e, barrel_c):
    out = np.empty(flat.shape[0], np.int16)
    for i in range(flat.shape[0]):
        a = np.int64(flat[i])
        if tanh:
            if double_input:
                a = _sat_shl_nb(a, 1)
            n = a if a < 0 else _w16_nb(-a)
            t = _sat_shl_nb(_w16_nb(_newton_nb(_exp_neg_nb(n, 4, ln, barrel_e, barrel_c), ln) - 8192), 2)
            r = np.int64(0) if a == 0 else (_w16_nb(-t) if a < 0 else t)
        else:
            abs_input = a if a > 0 else _w16_nb(-a)
            p = _sat_shl_nb(_newton_nb(_exp_neg_nb(_w16_nb(-abs_input), 3, ln, barrel_e, barrel_c), ln), 1)
            r = np.int64(_HALF) if a == 0 else (p if a > 0 else _w16_nb(32767 - p))
        out[i] = np.int16(r)
    return out


def logistic_q3(x, *, lanes=False) -> np.ndarray:
    """The Numba kernel of :func:`logistic_q3_reference` (equal bit for bit)."""
    x, ln = _check(x, lanes)
    return _q3_kernel(np.ascontiguousarray(x).ravel(), ln, False, False, _BARREL_E, _BARREL_C).reshape(x.shape)


def tanh_q3(x, *, lanes=False, double_input=False) -> np.ndarray:
    """The Numba kernel of :func:`tanh_q3_reference` (equal bit for bit)."""
    x, ln = _check(x, lanes)
    double_input = V.as_flag(double_input, "double_input")
    return _q3_kernel(np.ascontiguousarray(x).ravel(), ln, True, double_input, _BARREL_E,
                      _BARREL_C).reshape(x.shape)

"""gemmlowp fixed-point math on int32 raw values: exp, 1/(1+x), logistic, tanh, reciprocal.

TFLite's fixed-point kernels (reference int8 SOFTMAX, TFLite-Micro LOGISTIC/TANH, L2
normalization) call gemmlowp's ``FixedPoint<int32_t, IntegerBits>`` math. A value in
format Q$m$.$(31-m)$ ("``integer_bits`` = $m$") is stored as a raw int32 $r$ and means

$$ v = r \\cdot 2^{-(31 - m)}, \\qquad v \\in [-2^{m}, 2^{m}). \\tag{1} $$

Every function here takes and returns raw int32 values (NumPy arrays or scalars),
with the integer bits passed explicitly where gemmlowp has them as a template
argument. The arithmetic is gemmlowp's, operation by operation: ``a * b`` is
:func:`~refquant.fixedpoint.saturating_rounding_doubling_high_mul` (integer bits add up),
``+``/``-`` wrap modulo $2^{32}$ like the compiled C++ (formally undefined; the
algorithms keep them in range), ``Rescale`` and ``SaturatingRoundingMultiplyByPOT``
saturate when shifting left and round half away from zero when shifting right.

Sources: google/gemmlowp ``fixedpoint/fixedpoint.h`` (exp_on_negative_values,
one_over_one_plus_x_for_x_in_0_1, logistic, tanh); tensorflow/tflite-micro
``tensorflow/lite/kernels/internal/common.h`` (GetReciprocal,
GetInvSqrtQuantizedMultiplierExp, SaturatingRoundingMultiplyByPOTParam).

Added in 0.1.0.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import QuantizationTypeError, QuantizationValueError
from .fixedpoint import INT32_MAX, INT32_MIN, _as_int64, _broadcast, _out, _rdbpot, _srdhm, _wrap32

__all__ = [
    "rounding_half_sum",
    "saturating_rounding_multiply_by_pot",
    "rescale",
    "exp_on_interval_between_negative_one_quarter_and_0_excl",
    "exp_on_negative_values",
    "one_over_one_plus_x_for_x_in_0_1",
    "one_minus_x_over_one_plus_x_for_x_in_0_1",
    "logistic",
    "tanh",
    "get_reciprocal",
    "get_inv_sqrt_quantized_multiplier_exp",
]


def _check_bits(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise QuantizationTypeError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise QuantizationValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _raw(x, name: str = "x") -> np.ndarray:
    return _as_int64(x, name, INT32_MIN, INT32_MAX)


# --------------------------------------------------------------------------- primitives on int64 arrays


def _sat_mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> (no validation)."""
    if exponent == 0:
        return x
    if exponent < 0:
        return _rdbpot(x, np.int64(-exponent))
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _half_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    v = s + np.where(s >= 0, 1, -1)
    return np.where(v >= 0, v // 2, -((-v) // 2))  # C '/' truncates toward zero


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))  # change of variable x = a + 1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _sat_mul_pot(x4, -2)
    poly = _sat_mul_pot(_wrap32(_srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return _wrap32(constant_term + _srdhm(constant_term, _wrap32(x + poly)))


# (exponent, exp(-2^exponent) in Q0.31) for the barrel shifter of exp_on_negative_values
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def _exp_neg(a: np.ndarray, integer_bits: int) -> np.ndarray:
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = _wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_quarter(_sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = remainder & (1 << (fractional_bits + exponent))
            result = np.where(bit != 0, _srdhm(result, np.int64(multiplier)), result)
    if integer_bits > 5:  # below -32, exp underflows to 0
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal(a: np.ndarray) -> np.ndarray:
    """The shared Newton-Raphson part: returns x ~ 1/(1+a) in Q2.29 for a in Q0.31."""
    half_denominator = _half_sum(a, np.int64(INT32_MAX))
    x = _wrap32(1515870810 + _srdhm(half_denominator, np.int64(-1010580540)))  # 48/17 - 32/17 d
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - _srdhm(half_denominator, x))
        x = _wrap32(x + _sat_mul_pot(_srdhm(x, one_minus), 2))  # Rescale<2> from Q4.27
    return x


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    return _sat_mul_pot(_newton_reciprocal(a), 1)  # ExactMulByPot<-1> then Rescale<0> from Q1.30


def _one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    return _sat_mul_pot(_wrap32(_newton_reciprocal(a) - (1 << 29)), 2)


# --------------------------------------------------------------------------- public functions


def rounding_half_sum(a, b):
    """$(a + b) / 2$ rounded half away from zero, ``gemmlowp::RoundingHalfSum`` (int32).

    Computed as upstream in 64 bits: ``(a + b + sign(a + b)) / 2`` with C truncation,
    ``sign(0) = +1``. Never overflows. Returns int32.
    """
    a64, b64 = _broadcast(_raw(a, "a"), _raw(b, "b"), names="a and b")
    return _out(_half_sum(a64, b64))


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """$x \\cdot 2^{\\text{exponent}}$: saturating left shift or RHAZ right shift.

    Mirrors ``gemmlowp::SaturatingRoundingMultiplyByPOT<exponent>`` (and TFLite's
    ``SaturatingRoundingMultiplyByPOTParam``). For ``exponent > 0``, values above
    $2^{31-e}-1$ go to INT32_MAX and values below $-(2^{31-e}-1)$ to INT32_MIN; for
    ``exponent < 0`` it is :func:`~refquant.fixedpoint.rounding_divide_by_pot`.

    Args:
        x: int32 raw values (array or scalar).
        exponent: int in [-31, 30].

    Returns:
        int32 array (NumPy scalar for a scalar input).
    """
    e = _check_bits(exponent, "exponent", -31, 30)
    return _out(_sat_mul_pot(_raw(x), e))


def rescale(x, src_integer_bits: int, dst_integer_bits: int):
    """Change a raw value's format from Q$m$ to Q$n$, ``gemmlowp::Rescale<n>``.

    Equals :func:`saturating_rounding_multiply_by_pot` with exponent $m - n$.
    Both integer-bit counts are in [0, 30].
    """
    m = _check_bits(src_integer_bits, "src_integer_bits", 0, 30)
    n = _check_bits(dst_integer_bits, "dst_integer_bits", 0, 30)
    return _out(_sat_mul_pot(_raw(x), m - n))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """$e^{a}$ for $a \\in [-1/4, 0)$, Q0.31 in and out (gemmlowp, same name).

    Fourth-order Taylor expansion around $-1/8$:
    $e^{-1/8}(1 + x + x^2/2 + x^3/6 + x^4/24)$, $x = a + 1/8$, each product an SRDHM.
    """
    return _out(_exp_quarter(_raw(a, "a")))


def exp_on_negative_values(a, integer_bits: int):
    """$e^{a}$ for $a \\le 0$; input Q$m$.$(31-m)$, output Q0.31 (``gemmlowp::exp_on_negative_values``).

    Writes $a = b - c$ with $b = (a \\bmod 1/4) - 1/4 \\in [-1/4, 0)$ and $c \\ge 0$ a
    multiple of $1/4$: $e^{b}$ comes from
    :func:`exp_on_interval_between_negative_one_quarter_and_0_excl`, then for each set
    bit $2^{j}$ of $c$ ($j = -2..4$, only $j < m$) the result is multiplied (SRDHM) by
    the constant $e^{-2^{j}}$ in Q0.31. For $m > 5$ inputs below $-32$ give 0; $a = 0$ gives
    INT32_MAX ($\\approx 1$). gemmlowp's test bound: $|e^{a} - \\text{out}| < 3 \\cdot 10^{-7}$.

    Args:
        a: int32 raw values in Q$m$ (positive inputs are outside the contract).
        integer_bits: $m \\in [0, 29]$ (gemmlowp's ``ConstantPOT<-2>`` needs $31-m \\ge 2$).

    Returns:
        int32 raw values in Q0.31.
    """
    m = _check_bits(integer_bits, "integer_bits", 0, 29)
    return _out(_exp_neg(_raw(a, "a"), m))


def one_over_one_plus_x_for_x_in_0_1(a):
    """$1/(1+a)$ for $a \\in (0, 1)$, Q0.31 in and out (gemmlowp, same name).

    Newton-Raphson division on $d = (a + 1)/2$ (``RoundingHalfSum``) in Q2.29, starting
    from $48/17 - 32/17\\,d$, three iterations $x \\leftarrow x + x(1 - d x)$; the result
    $x/2$ is rescaled to Q0.31 with saturation.
    """
    return _out(_one_over_one_plus_x(_raw(a, "a")))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a):
    """$(1-a)/(1+a)$ for $a \\in (0, 1)$, Q0.31 in and out (gemmlowp, same name).

    Same Newton-Raphson as :func:`one_over_one_plus_x_for_x_in_0_1`, returning
    $x - 1$ rescaled from Q2.29. gemmlowp's test bound: error $< 6 \\cdot 10^{-9}$.
    """
    return _out(_one_minus_x_over_one_plus_x(_raw(a, "a")))


def logistic(a, integer_bits: int):
    """$1/(1 + e^{-a})$; input Q$m$, output Q0.31 (``gemmlowp::logistic``).

    $a > 0$: ``one_over_one_plus_x(exp_on_negative_values(-a))``; $a < 0$: one minus
    that of $|a|$ (``One`` is INT32_MAX in Q0.31); $a = 0$: exactly $2^{30}$ (0.5).
    $|a|$ and $-|a|$ wrap for INT32_MIN as in C.

    Args:
        a: int32 raw values in Q$m$.
        integer_bits: $m \\in [0, 29]$.
    """
    m = _check_bits(integer_bits, "integer_bits", 0, 29)
    a64 = _raw(a, "a")
    positive = a64 > 0
    abs_input = np.where(positive, a64, _wrap32(-a64))
    if_positive = _one_over_one_plus_x(_exp_neg(_wrap32(-abs_input), m))
    if_negative = _wrap32(INT32_MAX - if_positive)
    r = np.where(a64 == 0, 1 << 30, np.where(positive, if_positive, if_negative))
    return _out(r)


def tanh(a, integer_bits: int):
    """$\\tanh(a)$; input Q$m$, output Q0.31 (``gemmlowp::tanh``).

    $\\tanh(-|a|) = -(1 - e^{-2|a|})/(1 + e^{-2|a|})$ via
    ``one_minus_x_over_one_plus_x(exp_on_negative_values(2 n))`` with $2n$ read in
    Q$(m{+}1)$ (``ExactMulByPot<1>``, same raw bits); sign restored; $a = 0$ gives 0.
    gemmlowp's test bound: error $< 1.5 \\cdot 10^{-7}$.

    Args:
        a: int32 raw values in Q$m$.
        integer_bits: $m \\in [0, 28]$.
    """
    m = _check_bits(integer_bits, "integer_bits", 0, 28)
    a64 = _raw(a, "a")
    negative = a64 < 0
    n = np.where(negative, a64, _wrap32(-a64))
    t = _one_minus_x_over_one_plus_x(_exp_neg(n, m + 1))
    r = np.where(a64 == 0, 0, np.where(negative, _wrap32(-t), t))
    return _out(r)


def _count_leading_zeros32(u: np.ndarray) -> np.ndarray:
    """clz of uint32 values held in int64 (32 for 0)."""
    bit_length = np.zeros(u.shape, np.int64)
    for k in range(32):
        bit_length += u >= (1 << k)
    return 32 - bit_length


def get_reciprocal(x, x_integer_digits: int):
    """$1/x$ as a Q0.31 mantissa and a power of two, ``tflite::GetReciprocal``.

    With $h$ = count-leading-zeros of ``(uint32)x``: returns
    ``one_over_one_plus_x_for_x_in_0_1((uint32)x << h - 2^31)`` (wrapped to int32) and
    ``num_bits_over_unit`` $= \\text{x\\_integer\\_digits} - h$, so that
    $1/v \\approx \\text{raw} \\cdot 2^{-31} \\cdot 2^{-\\text{num\\_bits\\_over\\_unit}}$
    for $v$ = ``x`` read in Q(``x_integer_digits``). The softmax reference uses it on the
    sum of exponentials (Q12.19).

    Args:
        x: int32 raw values, nonzero (``x = 0`` would shift by 32 in C).
        x_integer_digits: int in [0, 31].

    Returns:
        ``(raw, num_bits_over_unit)``: two int32 arrays (NumPy scalars for scalar x).
    """
    digits = _check_bits(x_integer_digits, "x_integer_digits", 0, 31)
    x64 = _raw(x)
    if np.any(x64 == 0):
        raise QuantizationValueError("x must be nonzero (its reciprocal is taken), got 0")
    u = x64 & 0xFFFFFFFF  # static_cast<uint32_t>
    headroom_plus_one = _count_leading_zeros32(u)
    shifted_sum_minus_one = _wrap32(((u << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return _out(_one_over_one_plus_x(shifted_sum_minus_one)), _out(digits - headroom_plus_one)


def get_inv_sqrt_quantized_multiplier_exp(input_value: int, reverse_shift: int) -> tuple[int, int]:
    """$1/\\sqrt{x}$ as ``(multiplier, shift)``, ``tflite::GetInvSqrtQuantizedMultiplierExp``.

    Normalizes $x$ into $[2^{27}, 2^{29})$ by pairs of bits, runs five Newton-Raphson
    steps $y \\leftarrow 1.5y - (x/2) y^3$ in Q3.28 from $y = 1$, multiplies by
    $\\sqrt{2}/2$, and folds a negative shift into the multiplier. ``x <= 1`` returns
    ``(INT32_MAX, 0)`` as upstream (0 is invalid but tolerated). The returned shift is
    multiplied by ``reverse_shift`` (TFLite passes ``kReverseShift = -1`` or 1). Scalar,
    offline code (used to prepare L2 normalization).

    Returns:
        ``(multiplier, shift)`` as Python ints.
    """
    x = _check_bits(input_value, "input_value", 0, INT32_MAX)
    reverse = _check_bits(reverse_shift, "reverse_shift", -1, 1)
    if x <= 1:
        return INT32_MAX, 0
    shift = 11
    while x >= (1 << 29):
        x //= 4
        shift += 1
    left_shift_bit_pairs = (31 - x.bit_length()) // 2 - 1  # (clz - 1) / 2 - 1
    shift -= left_shift_bit_pairs
    x <<= 2 * left_shift_bit_pairs
    half_input = _rdbpot(np.int64(x >> 1), np.int64(1))  # SaturatingRoundingMultiplyByPOT<-1>
    half_three = np.int64((1 << 28) + (1 << 27))  # 1.5 in Q3.28
    y = np.int64(1 << 28)  # F3::One()
    for _ in range(5):
        y3 = _sat_mul_pot(_srdhm(_srdhm(y, y), y), 6)  # Rescale<3> from Q9.22
        y = _sat_mul_pot(_wrap32(_srdhm(half_three, y) - _srdhm(half_input, y3)), 3)
    inv = int(_srdhm(y, np.int64(1518500250)))  # times sqrt(2)/2 in Q0.31
    if shift < 0:
        inv = int(_wrap32(np.int64(inv) << -shift))
        shift = 0
    return inv, shift * reverse

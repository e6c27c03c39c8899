"""Exercise 05: a real multiplier as Q31 and a shift; SRDHM, RDBPOT.  <- the file you edit.

Read first: docs "Learn 4: Fixed-point requantization", sections 2-5
(docs/learn/fixed-point-requantization.md).
Check your work: ``python -m exercises 05`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with Python
integers, ``math`` and NumPy only (the tests compare with ``refquant.fixedpoint``). The runtime
functions take int32 values (NumPy arrays or scalars) and return int32 arrays. Products of two
int32 need 63 bits: cast to ``np.int64`` before multiplying; ``>>`` on int64 is an arithmetic
shift (it floors), and ``&`` works on negative int64 as on two's complement.
"""

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier`` for a real multiplier M >= 0 (Learn 4, eqs. (3)-(5)).

    Return ``(q, shift)`` as Python ints with M ~= q * 2**(shift - 31):

    1. M == 0 -> (0, 0);
    2. ``f, shift = math.frexp(M)`` (M = f * 2**shift, f in [0.5, 1));
    3. ``q = round_half_away_from_zero(f * 2**31)`` -- not Python's ``round`` (half to even);
    4. if q == 2**31: q = 2**30 and shift += 1 (eq. (5));
    5. if shift < -31: return (0, 0) (the multiplier is flushed to zero).
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("quantize_multiplier")
    # END YOUR SOLUTION


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's SRDHM (Learn 4, eq. (6)): ``floor((a*b + 2**30) / 2**31)``, i.e. a*b / 2**31
    rounded half up, for int32 ``a`` and ``b`` (broadcast). Its one overflow: a == b == INT32_MIN
    gives INT32_MAX. Return int32."""
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("saturating_rounding_doubling_high_mul")
    # END YOUR SOLUTION


def rounding_divide_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp's RDBPOT (Learn 4, eqs. (7)-(8)): x / 2**exponent rounded half away from zero,
    for int32 ``x`` and an int ``exponent`` in [0, 31], in integers only:

        mask = 2**exponent - 1;  remainder = x & mask;  threshold = (mask >> 1) + (x < 0)
        result = (x >> exponent) + (remainder > threshold)

    Return int32."""
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("rounding_divide_by_pot")
    # END YOUR SOLUTION


def multiply_by_quantized_multiplier(x, quantized_multiplier: int, shift: int) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier``, double rounding (Learn 4, eq. (9)):

        RDBPOT(SRDHM(x * 2**left, q), right),   left = max(shift, 0), right = max(-shift, 0)

    for int32 ``x`` (the tests keep ``x * 2**left`` inside int32). Return int32.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("multiply_by_quantized_multiplier")
    # END YOUR SOLUTION

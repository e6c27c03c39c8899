"""SRDHM rounds half up, RDBPOT rounds half away from zero (Learn 4, eqs. (6)-(8))."""
import numpy as np

from refquant.fixedpoint import rounding_divide_by_pot, saturating_rounding_doubling_high_mul

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# SRDHM(a, q) = RHU(a * q / 2^31). With q = 2^30 (the Q31 value 0.5) it halves a, rounding half up.
a = np.array([5, -5, 3, -3, 4], dtype=np.int32)
half = saturating_rounding_doubling_high_mul(a, 2**30)
print("a              :", a.tolist())
print("SRDHM(a, 2^30) :", half.tolist(), "  (a / 2 = 2.5 -2.5 1.5 -1.5 2: ties go up)")
assert half.tolist() == [3, -2, 2, -1, 2]

# Its only saturation: INT32_MIN * INT32_MIN / 2^31 = 2^31 does not fit; it returns INT32_MAX.
assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX

# RDBPOT(x, e) = RHAZ(x / 2^e): ties go away from zero, symmetric in the sign.
x = np.array([5, -5, 3, -3, 4], dtype=np.int32)
away = rounding_divide_by_pot(x, 1)
print("RDBPOT(x, 1)   :", away.tolist(), "  (ties away from zero)")
assert away.tolist() == [3, -3, 2, -2, 2]

# By hand, eq. (8) on x = -5, e = 1: mask = 1, remainder = -5 & 1 = 1, threshold = 0 + 1 = 1,
# (-5 >> 1) = -3, and 1 > 1 is false: the result is -3 = RHAZ(-2.5).
mask, e, v = 1, 1, -5
assert (v >> e) + int((v & mask) > (mask >> 1) + (v < 0)) == -3

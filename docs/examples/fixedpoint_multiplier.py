"""A real multiplier as a Q31 integer and a power-of-two shift (Learn 4, eqs. (3)-(5))."""
import math

from refquant.fixedpoint_multiplier import quantize_multiplier

# By hand, eq. (4): M = M0 * 2^shift with M0 in [0.5, 1), then q = round(M0 * 2^31).
#   0.25  = 0.5  * 2^-1  -> q = 2^30                  = 1073741824
#   0.375 = 0.75 * 2^-1  -> q = 0.75 * 2^31           = 1610612736
#   1.5   = 0.75 * 2^1   -> q = 1610612736, shift = +1 (a left shift)
cases = {0.25: (1073741824, -1), 0.375: (1610612736, -1), 1.5: (1610612736, 1)}
for m, want in cases.items():
    q, shift = quantize_multiplier(m)
    print(f"M = {m:<8} frexp = {math.frexp(m)}  ->  q = {q}, shift = {shift}")
    assert (q, shift) == want

# The 2^31 edge, eq. (5): M = 0.5 - 1e-10 = (1 - 2e-10) * 2^-1, and (1 - 2e-10) * 2^31 rounds up to
# 2^31, which does not fit int32; q becomes 2^30 and the shift one larger (TensorFlow's test vector).
q, shift = quantize_multiplier(0.5 - 1e-10)
print("M = 0.5 - 1e-10 ->", (q, shift))
assert (q, shift) == (1073741824, 0)

# Precision: q >= 2^30, and q is M0 * 2^31 rounded, so the relative error is at most 2^-31.
worst = 0.0
for m in (0.1, 0.003, 1 / 3, 0.00144027039, 0.73, 5e-7):
    q, shift = quantize_multiplier(m)
    rel = abs(q * 2.0 ** (shift - 31) - m) / m
    worst = max(worst, rel)
    assert 2**30 <= q < 2**31 and rel <= 2.0**-31
print(f"largest relative error of q * 2^(shift-31): {worst:.2e} <= 2^-31 = {2.0**-31:.2e}")

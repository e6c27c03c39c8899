"""TensorFlow issue #25087: double rounding gives 12 where the exact answer rounds to 11 (Learn 4, §5)."""
from fractions import Fraction

from refquant.fixedpoint import (
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from refquant.fixedpoint_multiplier import quantize_multiplier

x, q, shift = 7984, 1583594044, -9        # the accumulator, the Q31 multiplier, a right shift of 9
assert quantize_multiplier(0.0014402703931141053) == (q, shift)   # eq. (4) on this M
exact = Fraction(x * q, 2 ** (31 + 9))     # x * M exactly, with M = q * 2^(shift - 31)
print("exact x*M        =", float(exact))  # 11.4991...: rounds to 11
assert round(exact) == 11

# Double rounding, eq. (9): first SRDHM rounds x*q / 2^31 = 5887.5488... to an integer ...
high = saturating_rounding_doubling_high_mul(x, q)
print("SRDHM(x, q)      =", int(high), "  from", float(Fraction(x * q, 2**31)))
assert int(high) == 5888
# ... which is exactly 11.5 * 2^9: the second rounding sees a tie that the exact value was not.
assert Fraction(int(high), 2**9) == Fraction(23, 2)
double = rounding_divide_by_pot(high, 9)
print("RDBPOT(5888, 9)  =", int(double), "  (5888 / 512 = 11.5, half away from zero)")
assert int(double) == 12

# Single rounding, eq. (10): one RHU of the 64-bit product, (x*q + 2^39) >> 40.
single = (x * q + 2**39) >> 40
print("single rounding  =", single)
assert single == 11

assert multiply_by_quantized_multiplier(x, q, shift) == 12                      # TFLite default build
assert multiply_by_quantized_multiplier(x, q, shift, variant="single") == 11    # TFLITE_SINGLE_ROUNDING

# The smallest case (Learn 4, §4): x = 1, M = 0.25 (q = 2^30, shift = -1). Exactly 0.25 -> 0;
# double rounding: RHU(0.5) = 1, then RHAZ(1 / 2) = 1.
assert multiply_by_quantized_multiplier(1, 2**30, -1) == 1
assert multiply_by_quantized_multiplier(1, 2**30, -1, variant="single") == 0
print("x = 1, M = 0.25: double", int(multiply_by_quantized_multiplier(1, 2**30, -1)),
      " single", int(multiply_by_quantized_multiplier(1, 2**30, -1, variant="single")))

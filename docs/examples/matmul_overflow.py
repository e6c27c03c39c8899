"""When an int32 accumulator overflows, and what refquant does then (Learn 3, eqs. (6)-(8))."""
import warnings

import numpy as np

from refquant.errors import AccumulatorOverflowError, AccumulatorOverflowWarning
from refquant.kernels.gemm import gemm_reference

# eq. (7): int8 x int8, no zero points: every product is at most (-128)(-128) = 2^14,
# so K products sum to at most K * 2^14. That reaches 2^31 (one past INT32_MAX) at K = 2^17.
K = 2**17
a = np.full((1, K), -128, dtype=np.int8)  # (1, K)
b = np.full((K, 1), -128, dtype=np.int8)  # (K, 1)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    acc = gemm_reference(a, b)             # default on_overflow="warn": warn, return the int32 wrap
assert any(issubclass(w.category, AccumulatorOverflowWarning) for w in caught)
print("exact value 2^31 =", 2**31, "-> int32 holds", int(acc[0, 0]))
assert int(acc[0, 0]) == -(2**31)          # 2^31 wraps to -2^31

try:
    gemm_reference(a, b, on_overflow="raise")
    raise AssertionError("expected an AccumulatorOverflowError")
except AccumulatorOverflowError as err:
    print("on_overflow='raise':", str(err)[:60], "...")

with warnings.catch_warnings():
    warnings.simplefilter("error")         # acc_model="wrap" says the backend wraps: no warning
    assert int(gemm_reference(a, b, acc_model="wrap")[0, 0]) == -(2**31)

# One product fewer fits: K = 2^17 - 1 gives 2^31 - 2^14, well inside int32.
assert int(gemm_reference(a[:, 1:], b[1:])[0, 0]) == 2**31 - 2**14

# eq. (8): the largest K that can never overflow, for a few operand ranges |a - za| <= A, |b - zb| <= B.
for what, A, B in (("int8 x int8, zero points 0", 128, 128),
                   ("uint8 (any za) x int8 (zb = 0)", 255, 128),
                   ("uint8 x uint8, any zero points", 255, 255)):
    k_max = (2**31 - 1) // (A * B)
    print(f"  {what:32s} K <= {k_max}")
    assert k_max * A * B <= 2**31 - 1 < (k_max + 1) * A * B

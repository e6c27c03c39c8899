"""Rounding an integer division by 2^k in integer arithmetic (Learn 1, eqs. (6)-(8))."""
import numpy as np

from refquant.fixedpoint import rounding_divide_by_pot

v = np.array([5, -5, 3, -3, 7, -7], dtype=np.int32)  # v / 2 = 2.5 -2.5 1.5 -1.5 3.5 -3.5: all ties
k = 1

floor_ = v >> k                                   # arithmetic shift: floor           eq. (6)
half_up = (v + (1 << (k - 1))) >> k              # add half, then floor: RHU         eq. (7)
half_away = rounding_divide_by_pot(v, k)         # gemmlowp RoundingDivideByPOT: RHAZ eq. (8)
toward_zero = np.fix(v / 2 ** k).astype(np.int32)  # C integer division truncates

print("v / 2      :", (v / 2).tolist())
print("floor      :", floor_.tolist())
print("half_up    :", half_up.tolist())
print("half_away  :", half_away.tolist())
print("toward_zero:", toward_zero.tolist())

assert floor_.tolist() == [2, -3, 1, -2, 3, -4]
assert half_up.tolist() == [3, -2, 2, -1, 4, -3]
assert half_away.tolist() == [3, -3, 2, -2, 4, -4]
assert toward_zero.tolist() == [2, -2, 1, -1, 3, -3]

"""Why refquant never writes floor(x + 0.5) in float32 (Learn 1, §2)."""
import numpy as np

from refquant.rounding import round_half_away_from_zero, round_half_up

x = np.float32(0.49999997)          # the float32 just below 0.5
naive = np.floor(x + np.float32(0.5))  # x + 0.5 = 0.99999997 is not a float32: it rounds to 1.0
print("x + 0.5 in float32 :", float(x + np.float32(0.5)))
print("floor(x + 0.5)     :", float(naive))
print("round_half_up(x)   :", float(round_half_up(x)))
print("round_half_away    :", float(round_half_away_from_zero(x)))

assert naive == 1.0                      # wrong: x < 0.5 must round to 0
assert round_half_up(x) == 0.0           # exact: compares the fraction x - floor(x) with 0.5
assert round_half_away_from_zero(x) == 0.0

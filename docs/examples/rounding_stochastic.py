"""Stochastic rounding is unbiased and, with a seed, reproducible (Learn 1, eq. (9))."""
import numpy as np

from refquant.rounding import round_stochastic

x = np.full(10_000, 0.3)                       # (10000,) float64
r = round_stochastic(x, seed=0)                # each element: 1 with probability 0.3, else 0
print("values:", sorted(set(r.tolist())), " mean:", float(r.mean()))

assert set(r.tolist()) == {0.0, 1.0}
assert abs(r.mean() - 0.3) < 0.02             # E[round(x)] = x; about 4.6 standard errors
np.testing.assert_array_equal(r, round_stochastic(x, seed=0))  # same seed, same draws

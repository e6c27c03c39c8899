"""Every rounding mode on the six ties -2.5 ... 2.5 (Learn 1, §1)."""
import numpy as np

from refquant.rounding import RoundingMode, round_by_mode

x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)

table = {}
for mode in RoundingMode:
    if mode is RoundingMode.STOCHASTIC:
        continue  # seeded and random: shown separately
    r = round_by_mode(x, mode)  # same dtype as x (float32), integer values
    table[mode.value] = [int(v) for v in r]
    print(f"{mode.value:20s} {table[mode.value]}")

assert table["half_to_even"] == [-2, -2, 0, 0, 2, 2]         # RNE: ONNX, PyTorch
assert table["half_away_from_zero"] == [-3, -2, -1, 1, 2, 3]  # RHAZ: std::round
assert table["half_up"] == [-2, -1, 0, 1, 2, 3]              # RHU: gemmlowp SRDHM
assert table["floor"] == [-3, -2, -1, 0, 1, 2]               # C >> on signed ints
assert table["toward_zero"] == [-2, -1, 0, 0, 1, 2]          # C casts, integer /

"""Saturate or wrap: two ways to force an integer into int8 (Learn 1, eq. (11))."""
import numpy as np

v = np.array([200, -200, 300, 100], dtype=np.int64)

saturated = np.clip(v, -128, 127).astype(np.int8)  # what every quantizer does
wrapped = v.astype(np.int8)                        # two's complement: v mod 256, in [-128, 127]
print("saturate:", saturated.tolist())
print("wrap    :", wrapped.tolist())

assert saturated.tolist() == [127, -128, 127, 100]
assert wrapped.tolist() == [-56, 56, 44, 100]       # 200 - 256, -200 + 256, 300 - 256

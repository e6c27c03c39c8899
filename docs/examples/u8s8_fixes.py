"""Four ways to make u8 x s8 GEMMs exact on AVX2, checked with refquant's accumulation models (how-to)."""
import numpy as np

from refquant import get_profile
from refquant.cpu import detect_isa
from refquant.kernels.gemm import gemm_reference

print("this CPU:", detect_isa(), "-> ONNX Runtime profile accumulates with",
      get_profile("onnxruntime", isa="auto").accumulation("linear"))

rng = np.random.default_rng(87)
M, K, N = 64, 256, 64
a = rng.integers(0, 256, (M, K)).astype(np.uint8)          # full-range uint8 activations
a[:, :2] = 255                                              # make sure the extreme occurs
za = 128


def mismatches(a, b, za, zb=0):
    """Accumulators where the AVX2 pair-saturating model differs from the exact result."""
    exact = gemm_reference(a, b, za, zb)
    avx2 = gemm_reference(a, b, za, zb, acc_model="pairwise_sat16_u8s8")
    return int(np.count_nonzero(exact != avx2))


# The problem: full-range int8 weights. A pair reaches 2 * 255 * 127 = 64770 > 32767.
b_full = rng.integers(-128, 128, (K, N)).astype(np.int8)
bad = mismatches(a, b_full, za)
print(f"full-range weights:       {bad:5d} of {M * N} accumulators differ")
assert bad > 0

# Fix 1: weights in [-64, 63] (or ONNX Runtime's 7-bit [-64, 64]): |pair| <= 2 * 255 * 64 = 32640.
for lo, hi in ((-64, 63), (-64, 64)):
    b7 = rng.integers(lo, hi + 1, (K, N)).astype(np.int8)
    b7[:2] = np.array([lo, hi], dtype=np.int8)[:, None]     # make sure the extremes occur
    assert 2 * 255 * max(-lo, hi) <= 32767 and mismatches(a, b7, za) == 0
    print(f"weights in [{lo}, {hi}]:        0 differ (|pair| <= {2 * 255 * max(-lo, hi)})")

# Fix 2: 7-bit activations [0, 127] (PyTorch's reduce_range): |pair| <= 2 * 127 * 128 = 32512.
a7 = rng.integers(0, 128, (M, K)).astype(np.uint8)
a7[:, :2] = 127
assert mismatches(a7, b_full, 64) == 0
print("activations in [0, 127]:      0 differ (|pair| <= 32512)")

# Fix 3: uint8 weights. The same real weights, stored as b + 128 with zero point 128, give the
# same exact accumulators, and u8 x u8 runs on an exact kernel (measured on ONNX Runtime 1.32).
b_u8 = (b_full.astype(np.int16) + 128).astype(np.uint8)
np.testing.assert_array_equal(gemm_reference(a, b_u8, za, 128), gemm_reference(a, b_full, za, 0))
print("uint8 weights (zero point 128): same exact accumulators as int8 weights")

# Fix 4: a CPU with VNNI (vpdpbusd adds four u8 x s8 products into int32, no int16 step):
# the profile then uses the exact model.
assert get_profile("onnxruntime", isa="vnni").accumulation("linear") == "exact_int32"
assert get_profile("onnxruntime", isa="avx2").accumulation("linear") == "pairwise_sat16_u8s8"

"""x86 AVX2 u8 x s8: adjacent products are added with int16 saturation (Learn 3, eqs. (9)-(10))."""
import numpy as np

from refquant.kernels.gemm import gemm_reference

# The smallest example: K = 2, one pair. a is uint8 with zero point 128, b is int8 with zero point 0.
a = np.array([[255, 255]], dtype=np.uint8)    # a - za = [127, 127]
b = np.array([[127], [127]], dtype=np.int8)
za, zb = 128, 0

exact = gemm_reference(a, b, za, zb)                                    # 127*127 + 127*127
avx2 = gemm_reference(a, b, za, zb, acc_model="pairwise_sat16_u8s8")

# By hand, eq. (10): the raw pair 255*127 + 255*127 = 64770 saturates to 32767;
# then the zero-point terms are added exactly: - za * (127 + 127) = -32512.
pair = 255 * 127 + 255 * 127
sat = min(max(pair, -32768), 32767)
by_hand = sat - zb * (255 + 255) - za * (127 + 127) + 2 * za * zb
print("exact:", int(exact[0, 0]), "  AVX2 model:", int(avx2[0, 0]), "  by hand:", sat, "-", za * 254, "=", by_hand)
assert int(exact[0, 0]) == 2 * 127 * 127 == 32258
assert (pair, sat, by_hand) == (64770, 32767, 255)
assert int(avx2[0, 0]) == by_hand

# The values measured on ONNX Runtime 1.32 MatMulInteger (AVX2, no VNNI), K = 64, a = 255, zero points 0:
a64 = np.full((1, 64), 255, dtype=np.uint8)
for w, ort_measured in ((127, 1048544), (-128, -1048576)):
    b64 = np.full((64, 1), w, dtype=np.int8)
    model = int(gemm_reference(a64, b64, acc_model="pairwise_sat16_u8s8")[0, 0])
    print(f"b = {w:4d}: exact {64 * 255 * w:9d}, 32 saturated pairs {model:9d} (ORT measured {ort_measured})")
    assert model == 32 * min(max(2 * 255 * w, -32768), 32767) == ort_measured

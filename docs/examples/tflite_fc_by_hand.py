"""TFLite int8 FULLY_CONNECTED by hand for the three LiteRT kernels (how-to, §3).

From the parameters a .tflite stores, plain NumPy computes what each kernel returns, and
refquant.backends.tflite.fully_connected(..., kernel=...) returns the same integers."""
import numpy as np

from refquant.backends.tflite import fully_connected
from refquant.fixedpoint_multiplier import quantize_multiplier

F32 = np.float32
# --- what the flatbuffer stores: float32 scales, integer zero points, int8 weights, int32 bias
x_scale, x_zp = F32(0.0235294122), -128                  # input: [0, 6] over 256 codes
w_scale = np.array([0.00105, 0.00078, 0.00131], F32)     # per output channel, zp 0
y_scale, y_zp = F32(0.0235294122), -128                   # output: [0, 6] again
activation = "RELU6"
rng = np.random.default_rng(2024)
x = rng.integers(-128, 128, (2000, 40)).astype(np.int8)   # 2000 rows, K = 40
w = rng.integers(-127, 128, (3, 40)).astype(np.int8)      # (N, K), symmetric int8
b = rng.integers(-3000, 3000, 3).astype(np.int32)         # scale x_scale * w_scale[c], zp 0

# --- step 1, the same in every kernel: an exact int32 accumulator
acc = (x.astype(np.int64) - x_zp) @ w.astype(np.int64).T + b          # (2000, 3)
assert np.abs(acc).max() < 2**31


def rhaz(v):
    """std::round on doubles: half away from zero (v - trunc(v) is exact)."""
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


def tflite_clamp(f):
    """TFLite's activation bound: Z_y + RHAZ(float32(f / S_y))."""
    return y_zp + int(rhaz(np.float64(F32(F32(f) / y_scale))))


lo, hi = max(-128, tflite_clamp(0.0)), min(127, tflite_clamp(6.0))    # RELU6 -> [Q(0), Q(6)]

# --- reference kernel: double(acc) * (double(S_x) * double(S_w) / double(S_y)), RHAZ
m64 = np.float64(x_scale) * w_scale.astype(np.float64) / np.float64(y_scale)
y_reference = np.clip(rhaz(acc * m64) + y_zp, lo, hi).astype(np.int8)

# --- optimized kernel on x86 (ruy AVX2): the multiplier as (q, shift), then two half-up roundings
qs = [quantize_multiplier(m) for m in m64]                 # per-channel: the same double multiplier


def ruy_avx2(a, q, shift):
    left, right = max(shift, 0), max(-shift, 0)
    wrap32 = lambda v: (v + 2**31) % 2**32 - 2**31                 # noqa: E731
    r1 = wrap32((wrap32(a << left) * q + 2**30) >> 31)             # round half up, no saturation
    return (r1 + (1 << (right - 1))) >> right if right else r1     # round half up again


opt = np.stack([ruy_avx2(acc[:, c], q, s) for c, (q, s) in enumerate(qs)], axis=1)
y_optimized = np.clip(opt + y_zp, lo, hi).astype(np.int8)

# --- XNNPACK: float32 multiplier fl(fl(S_x S_w) / S_y), lrintf(float(acc) * m), zero point after
m32 = (x_scale * w_scale).astype(F32) / y_scale            # float32 throughout
xlo, xhi = (int(np.rint(np.clip(F32(F32(f) / y_scale) + F32(y_zp), -128, 127))) for f in (0.0, 6.0))  # RNE
v = np.clip(acc.astype(F32) * m32, F32(xlo - y_zp), F32(xhi - y_zp))    # float32 product, clamp in float
y_xnnpack = (np.rint(v).astype(np.int64) + y_zp).astype(np.int8)        # RNE, as lrintf

for kernel, mine in (("reference", y_reference), ("optimized", y_optimized), ("xnnpack", y_xnnpack)):
    theirs = fully_connected(x, x_scale, x_zp, w, w_scale, b, y_scale, y_zp, activation=activation, kernel=kernel)
    np.testing.assert_array_equal(mine, theirs)
print("by hand == refquant for every kernel; outputs in", (lo, hi), "(RELU6)")
print("reference != optimized:", int((y_reference != y_optimized).sum()), "of", y_reference.size,
      "  reference != xnnpack:", int((y_reference != y_xnnpack).sum()))

# The fused clamp itself can differ: RELU6 with S_y = 4, Z_y = 1. TFLite: 1 + RHAZ(6/4) = 3;
# XNNPACK: RNE(6/4 + 1) = RNE(2.5) = 2 (the zero point is added before rounding).
x1, w1 = np.array([[100]], np.int8), np.array([[100]], np.int8)          # acc = 10000: far above 6
top = {k: int(fully_connected(x1, 1.0, 0, w1, 1.0, None, 4.0, 1, activation="RELU6", kernel=k)[0, 0])
       for k in ("reference", "optimized", "xnnpack")}
print("RELU6 upper bound, S_y = 4, Z_y = 1:", top)
assert top == {"reference": 3, "optimized": 3, "xnnpack": 2}

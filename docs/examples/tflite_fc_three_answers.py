"""Where the three LiteRT FULLY_CONNECTED kernels disagree, for the same accumulator (how-to, §4)."""
from fractions import Fraction

import numpy as np

from refquant.backends.tflite import fully_connected
from refquant.kernels.multiplier import requant_params
from refquant.kernels.requant import requantize

F32 = np.float32
KERNELS = {  # kernel: (requantization mode, multiplier derivation for a per-tensor weight scale)
    "reference": ("float64_rhaz", "f64_ab_div_c"),           # double(acc) * double multiplier, RHAZ
    "optimized": ("fixed_double_up_wrap", "f32_ab_then_f64_div"),  # ruy AVX2: (q, shift), two half-up roundings
    "xnnpack": ("float32_rne", "f32_ab_div_c"),              # lrintf(float(acc) * float32 multiplier)
}


def three(acc, x_scale, w_scale, y_scale, y_zp):
    """The three kernels' int8 outputs for int32 accumulators ``acc``, via requantize."""
    out = {}
    for kernel, (mode, derivation) in KERNELS.items():
        p = requant_params(x_scale, w_scale, y_scale, mode=mode, derivation=derivation)
        out[kernel] = requantize(np.asarray(acc, np.int32), p.multiplier, y_zp, -128, 127, mode=mode,
                                 shift=p.shift, dtype=np.int8).tolist()
    return out


# A. Near ties. S_x = 6/255, S_w = 1/255, S_y = 12/255 (float32): M = S_x S_w / S_y is just above
# 1/510, so accumulators that are multiples of 255 land a hair beyond a half-integer.
xs, ws, ys = F32(0.0235294122), F32(0.00392156886), F32(0.0470588244)
acc = [100, 255, -255, -765]
m_exact = Fraction(float(xs)) * Fraction(float(ws)) / Fraction(float(ys))   # the stored floats' exact M
got = three(acc, xs, ws, ys, 0)
print(" acc   exact acc*M     reference optimized xnnpack")
for a, r, o, xn in zip(acc, got["reference"], got["optimized"], got["xnnpack"]):
    print(f"{a:5d}  {float(a * m_exact):+.10f}  {r:6d} {o:9d} {xn:7d}")
assert got == {"reference": [0, 1, -1, -2], "optimized": [0, 1, 0, -1], "xnnpack": [0, 0, 0, -2]}
# 255: float32(255) * float32(M) rounds to exactly 0.5 and lrintf takes the even 0.
assert float(F32(F32(255) * ((xs * ws) / ys))) == 0.5
# -765: the first half-up rounding gives -384 = -1.5 * 2^8 exactly; the second one goes up, to -1.

# The same accumulators through the op: x = Z_x (so x - Z_x = 0), w = 1, and the bias is acc.
x, w = np.array([[-128]], np.int8), np.ones((4, 1), np.int8)
for kernel in KERNELS:
    y = fully_connected(x, xs, -128, w, ws, np.array(acc, np.int32), ys, 0, kernel=kernel)
    assert y.ravel().tolist() == got[kernel]

# B. Three answers for one accumulator: only past the int32 range of acc * M. With M = 200
# (a far too small output scale) and acc = 2^24: acc * M = 3.4e9 >= 2^31.
#   reference: (int32) of a double past int32 is INT32_MIN; + Z_y, clamp -> -128
#   optimized: acc << 8 wraps to 0 in int32 before the multiply -> 0 + Z_y = 5
#   xnnpack:   the float product is clamped in float -> 127
big = three([2**24], F32(1.0), F32(1.0), F32(1 / 200), 5)
print("acc = 2^24, M = 200, Z_y = 5:", {k: v[0] for k, v in big.items()})
assert big == {"reference": [-128], "optimized": [5], "xnnpack": [127]}
for kernel in KERNELS:
    y = fully_connected(x, 1.0, -128, w[:1], 1.0, np.array([2**24], np.int32), 1 / 200, 5, kernel=kernel)
    assert y.item() == big[kernel][0]

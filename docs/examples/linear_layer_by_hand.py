"""An integer-only linear layer small enough to check by hand (Learn 5, §2)."""
import numpy as np

from refquant import dequantize, make_qparams, quantize
from refquant.backends.tflite import bias_quantize as tflite_bias_quantize
from refquant.kernels.gemm import gemm
from refquant.kernels.multiplier import activation_range, requant_params
from refquant.kernels.bias import add_bias
from refquant.kernels.requant import requantize

# The float layer: y = W x + b, K = 3 inputs, 2 outputs.
x = np.array([[0.5, -0.25, 1.0]], dtype=np.float32)   # (1, K)
W = np.array([[0.5, -1.0, 0.25],
              [1.5, 0.5, -0.5]], dtype=np.float32)     # (N, K)
b = np.array([0.125, -0.25], dtype=np.float32)         # (N,)
y_float = x @ W.T + b                                  # [[0.875, -0.125]]

# Offline: parameters (chosen by hand here; powers of two keep every step exact).
Sx, Zx = 0.25, -1        # input:   int8, r = 0.25 (q + 1)
Sw = 0.25                # weights: int8 symmetric, zero point 0
Sy, Zy = 0.1875, 2       # output:  int8, r = 0.1875 (q - 2); M = Sx Sw / Sy = 1/3
qx = quantize(x, make_qparams(Sx, Zx, "int8"), "tflite_reference")   # x/Sx + Zx = [1, -2, 3]
qw = quantize(W, make_qparams(Sw, 0, "int8"), "tflite_reference")    # W/Sw      = [[2, -4, 1], [6, 2, -2]]
qb = tflite_bias_quantize(b, Sx, Sw)                                 # b/(Sx Sw) = [2, -4], int32
p = requant_params(Sx, Sw, Sy, mode="fixed_double", derivation="f64_ab_div_c")  # M = 1/3
assert qx.tolist() == [[1, -2, 3]] and qw.tolist() == [[2, -4, 1], [6, 2, -2]] and qb.tolist() == [2, -4]
assert (int(p.multiplier), int(p.shift)) == (1431655765, -1)       # 1/3 = (2/3) 2^-1; q = RHAZ(2/3 2^31)

# Runtime, integers only.
acc = gemm(qx, qw.T, Zx, 0)        # qx - Zx = [2, -1, 4]: 2*2 + (-1)(-4) + 4*1 = 12, 2*6 + (-1)*2 + 4*(-2) = 2
acc = add_bias(acc, qb)            # [14, -2]
y_q = requantize(acc, p.multiplier, Zy, -128, 127, mode="fixed_double", shift=p.shift)
# 14/3 = 4.67 -> 5, -2/3 = -0.67 -> -1, plus Zy = 2
print("acc =", acc.tolist(), " y_q =", y_q.tolist(), " y_float =", y_float.tolist())
assert acc.tolist() == [[12 + 2, 2 - 4]] and y_q.tolist() == [[7, 1]] and y_q.dtype == np.int8

y_hat = dequantize(y_q, make_qparams(Sy, Zy, "int8"))            # 0.1875 [5, -1] = [0.9375, -0.1875]
print("dequantized:", y_hat.tolist(), " error:", (y_hat - y_float).tolist())
assert y_hat.tolist() == [[0.9375, -0.1875]]
assert np.abs(y_hat - y_float).max() <= Sy / 2                   # one output rounding, at most S_y / 2

# A fused ReLU is only a tighter clamp: Q(0) = Zy, so codes below 2 become 2 (the real 0).
lo, hi = activation_range("RELU", Sy, Zy, -128, 127)
y_relu = requantize(acc, p.multiplier, Zy, lo, hi, mode="fixed_double", shift=p.shift)
print("ReLU range:", (lo, hi), " y_q:", y_relu.tolist())
assert (lo, hi) == (2, 127) and y_relu.tolist() == [[7, 2]]

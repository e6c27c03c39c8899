"""A float linear layer, made integer-only the TFLite way, and compared with float (Learn 5, §3-4)."""
import numpy as np

from refquant import dequantize, quantize
from refquant.backends.tflite import activation_qparams as tflite_activation_qparams
from refquant.backends.tflite import bias_quantize as tflite_bias_quantize
from refquant.backends.tflite import symmetric_weight_quantize as tflite_symmetric_weight_quantize
from refquant.kernels.gemm import gemm
from refquant.kernels.multiplier import requant_params
from refquant.kernels.bias import add_bias
from refquant.kernels.requant import requantize

rng = np.random.default_rng(5)
B, K, N = 64, 32, 16
x = rng.normal(0.3, 1.0, (B, K)).astype(np.float32)               # (B, K) activations
W = rng.normal(0.0, 0.2, (N, K)).astype(np.float32)               # (N, K) weights, one row per output
b = rng.normal(0.0, 0.1, N).astype(np.float32)                    # (N,) bias
y = x.astype(np.float64) @ W.T.astype(np.float64) + b             # (B, N) the float layer

# Offline (float allowed): calibrate ranges, quantize weights and bias, derive the multipliers.
in_qp = tflite_activation_qparams(x.min(), x.max())               # int8 affine, eq. (1)
out_qp = tflite_activation_qparams(y.min(), y.max())
Sx, Zx = float(in_qp.scale), int(in_qp.zero_point)
Sy, Zy = float(out_qp.scale), int(out_qp.zero_point)
qw, Sw = tflite_symmetric_weight_quantize(W, axis=0)              # (N, K) int8 in [-127, 127], (N,) float32
qb = tflite_bias_quantize(b, Sx, Sw)                              # (N,) int32, scale Sx Sw[n], eq. (3)
p = requant_params(Sx, Sw, Sy, mode="fixed_double", derivation="f64_ab_div_c")  # (N,) q and shift, eq. (5)

# Runtime (integers only): quantize the input, accumulate, add the bias, requantize, clamp.
qx = quantize(x, in_qp, "tflite_reference")                       # (B, K) int8
acc = add_bias(gemm(qx, qw.T, Zx, 0), qb)                         # (B, N) int32, eq. (4)
y_q = requantize(acc, p.multiplier, Zy, -128, 127, mode="fixed_double", shift=p.shift)  # (B, N) int8, eq. (6)
y_hat = dequantize(y_q, out_qp).astype(np.float64)

# Compare with float. Eq. (8): the output rounding (at most 3/4 of S_y with double rounding),
# plus what quantizing x, W and b moved the exact sum. Codes at -128 or 127 may be clipped.
x_hat = dequantize(qx, in_qp).astype(np.float64)
Sw64 = Sw.astype(np.float64)
bound = (0.75 * Sy                                                   # output rounding, eq. (7)
         + 0.5 * np.abs(x_hat).sum(axis=1)[:, None] * Sw64[None, :]  # sum_k S_w[n] |x_hat_k| / 2
         + 0.5 * Sx * np.abs(W.astype(np.float64)).sum(axis=1)        # sum_k S_x |W_nk| / 2
         + 0.5 * Sx * Sw64) * (1 + 1e-6)                              # bias; slack for float32 steps
err = np.abs(y_hat - y)
inside = (y_q > -128) & (y_q < 127)
print(f"S_y = {Sy:.5f}; |y_hat - y|: max {err.max() / Sy:.2f} S_y, mean {err.mean() / Sy:.2f} S_y;"
      f" bound of eq. (8): {bound.min() / Sy:.2f}..{bound.max() / Sy:.2f} S_y; {inside.mean():.1%} unclipped")
assert np.all(err[inside] <= bound[inside])

# The integer result is the real computation on the *quantized* operands, rounded once more (eq. (7)).
y_star = x_hat @ (qw.astype(np.float64) * Sw64[:, None]).T + qb * (Sx * Sw64)   # (B, N)
assert np.all(np.abs(y_hat - y_star)[inside] <= 0.75 * Sy * (1 + 1e-6))
print(f"|y_hat - y*| <= {np.abs(y_hat - y_star)[inside].max() / Sy:.3f} S_y (eq. (7): <= 0.75)")

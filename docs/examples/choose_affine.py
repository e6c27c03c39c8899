"""Choosing S and Z from a range, by hand and with refquant (Learn 2, eqs. (7)-(9))."""
import numpy as np

from refquant import dequantize, quantize
from refquant.qparams import choose_qparams

x = np.array([[-0.90, -0.50, -0.40, -0.20, -0.10],
              [ 0.00,  0.05,  0.10,  0.20,  0.25],
              [ 0.30,  0.35,  0.40,  0.45,  0.50],
              [ 0.55,  0.60,  0.65,  0.70,  0.75],
              [ 0.80,  0.85,  0.90,  1.00,  1.50]], dtype=np.float32)  # the 5x5 input of §3

# By hand, int2 (qmin, qmax) = (-2, 1):
#   S = (1.5 - (-0.9)) / (1 - (-2)) = 2.4 / 3 = 0.8                     eq. (7)
#   Z = qmin - round(r_min / S) = -2 - round(-1.125) = -2 + 1 = -1       eq. (9)
qp = choose_qparams(x.min(), x.max(), "int2")
print(qp)
assert qp.scale == np.float32(0.8) and int(qp.zero_point) == -1

# The parameters of §3 are what eqs. (7)-(9) give for the range [-1/3, 2/3]:
qp3 = choose_qparams(-1 / 3, 2 / 3, "int2")
assert qp3.scale == np.float32(1 / 3) and int(qp3.zero_point) == -1

# min/max covers every value (no clipping) but spends codes on the two outliers;
# S = 1/3 clips them but resolves the bulk better. Mean squared error of each:
for name, p in (("min/max S=0.8", qp), ("clipped S=1/3", qp3)):
    r = dequantize(quantize(x, p), p)
    mse = float(np.mean((r.astype(np.float64) - x) ** 2))
    print(f"{name}: mse = {mse:.4f}, max |r - x| = {float(np.abs(r - x).max()):.4f}")

mse_minmax = np.mean((dequantize(quantize(x, qp), qp) - x) ** 2)
mse_clip = np.mean((dequantize(quantize(x, qp3), qp3) - x) ** 2)
assert mse_minmax < mse_clip  # here min/max wins; with more outliers the other way round

# A tie: 0.4 / 0.8 = 0.5 exactly in float32. ONNX rounds half to even (0 -> q = -1);
# TFLite's std::round goes away from zero (1 -> q = 0).
x04 = np.array([0.4], np.float32)
print("0.4 ->", quantize(x04, qp, "onnx").tolist(), "(onnx)",
      quantize(x04, qp, "tflite_reference").tolist(), "(tflite_reference)")
assert quantize(x04, qp, "onnx").tolist() == [-1]
assert quantize(x04, qp, "tflite_reference").tolist() == [0]

"""Symmetric parameters: Z fixed, S from the largest magnitude (Learn 2, eq. (10))."""
import numpy as np

from refquant import make_qparams, quantize
from refquant.backends.onnxruntime import tool_qparams as onnxruntime_qparams
from refquant.qparams import choose_qparams

lo, hi = np.float32(-1.3), np.float32(5.1)

# PyTorch (per_tensor_symmetric): S = max(|r_min|, |r_max|) / ((qmax - qmin) / 2) = 5.1 / 127.5
pt = choose_qparams(lo, hi, "int8", symmetric=True)
# ONNX Runtime's tool: narrow range [-127, 127], so (qmax - qmin) / 2 = 127: S = 5.1 / 127
ort = onnxruntime_qparams(lo, hi, "int8", symmetric=True)
# uint8 symmetric: Z is the midpoint 128
pt_u8 = choose_qparams(lo, hi, "uint8", symmetric=True)

for name, p in (("PyTorch int8", pt), ("ORT int8", ort), ("PyTorch uint8", pt_u8)):
    print(f"{name:14s} S = {float(p.scale):.8f}  Z = {int(p.zero_point):4d}  codes [{p.qmin}, {p.qmax}]")

assert pt.scale == np.float32(0.04) and int(pt.zero_point) == 0 and (pt.qmin, pt.qmax) == (-128, 127)
assert ort.scale.view(np.uint32) == 0x3D247C2B and int(ort.zero_point) == 0  # 0.04015748 = onnxruntime 1.32
assert (ort.qmin, ort.qmax) == (-127, 127)
assert pt_u8.scale == np.float32(0.04) and int(pt_u8.zero_point) == 128

# With PyTorch's divisor the largest magnitude lands half a step outside the grid:
# 5.1 / 0.04 = 127.5 rounds (half to even) to 128 and saturates at 127; -5.1 would reach -128.
x = np.array([5.1, -5.1, 0.0], np.float32)
print(quantize(x, pt).tolist(), quantize(x, make_qparams(ort.scale, 0, "int8", narrow=True)).tolist())
assert quantize(x, pt).tolist() == [127, -128, 0]
assert quantize(x, make_qparams(ort.scale, 0, "int8", narrow=True)).tolist() == [127, -127, 0]

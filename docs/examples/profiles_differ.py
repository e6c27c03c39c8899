"""Same x, same S and Z, different backends (Concepts, §1). Every value below was measured
on the real backend; refquant reproduces it by profile."""
import numpy as np

from refquant import make_qparams, quantize

qp = make_qparams(1.0, 1, "int8")  # S = 1, Z = 1 (odd): ties show every difference
x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)

rows = {}
for profile in ("onnx", "onnxruntime", "tflite_reference", "tflite_xnnpack", "pytorch_fbgemm"):
    rows[profile] = quantize(x, qp, profile).tolist()
    print(f"{profile:17s} {rows[profile]}")

assert rows["onnx"] == [1, 3, 3, 1, -1, -1]              # RNE(x / S) + Z
assert rows["onnxruntime"] == rows["onnx"]
assert rows["tflite_reference"] == [2, 3, 4, 0, -1, -2]  # RHAZ(x / S) + Z (std::round)
assert rows["tflite_xnnpack"] == rows["onnx"]            # RNE(x * (1/S)) + Z
assert rows["pytorch_fbgemm"] == [2, 2, 4, 0, 0, -2]     # RNE(x * (1/S) + Z): Z added before rounding

# Divide or multiply by the reciprocal: x / S = 127.49999 but x * (1/S) = 127.5 in float32.
u8 = make_qparams(0.00214854861, 0, "uint8")
x1 = np.array([0.273939937], np.float32)
print("divide:", quantize(x1, u8, "onnx").tolist(), " multiply:", quantize(x1, u8, "pytorch_fbgemm").tolist())
assert quantize(x1, u8, "onnx").tolist() == [127]
assert quantize(x1, u8, "pytorch_fbgemm").tolist() == [128]

# NaN and infinities are data, not errors; each backend maps them its own way.
specials = np.array([np.nan, np.inf, -np.inf], np.float32)
s8 = make_qparams(0.5, 0, "int8")
nan_inf = {p: quantize(specials, s8, p).tolist() for p in ("onnxruntime", "pytorch_fbgemm", "tflite_reference")}
print(nan_inf)
assert nan_inf["onnxruntime"] == [-128, 127, -128]       # NaN -> qmin
assert nan_inf["pytorch_fbgemm"] == [127, 127, -128]     # NaN -> qmax
assert nan_inf["tflite_reference"] == [-128, -128, -128]  # (int32) cast gives INT32_MIN, then clamp

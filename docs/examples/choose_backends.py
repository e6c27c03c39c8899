"""One range, four backends' parameter rules (Learn 2, §6). Numbers measured on the real backends
(PyTorch 2.13 observers, ONNX Runtime 1.32)."""
import numpy as np

from refquant import make_qparams, quantize
from refquant.backends.onnx import dynamic_qparams as onnx_dynamic_qparams
from refquant.backends.onnxruntime import tool_qparams as onnxruntime_qparams
from refquant.backends.tflite import activation_qparams as tflite_activation_qparams
from refquant.qparams import choose_qparams


def bits(s):
    return f"{float(s):.9g} (0x{np.float32(s).view(np.uint32):08X})"


lo, hi = np.float32(-1.3), np.float32(5.1)

# PyTorch MinMaxObserver, float32 throughout: S = (5.1 + 1.3) / 255, Z = qmin - RNE(-1.3 / S)
torch_u8 = choose_qparams(lo, hi, "uint8")   # quint8 affine
torch_s8 = choose_qparams(lo, hi, "int8")    # qint8 affine
print("PyTorch quint8:", bits(torch_u8.scale), int(torch_u8.zero_point))
print("PyTorch qint8 :", bits(torch_s8.scale), int(torch_s8.zero_point))
assert torch_u8.scale.view(np.uint32) == 0x3CCD9A66 and int(torch_u8.zero_point) == 52  # = torch 2.13
assert np.isclose(torch_s8.scale, 0.02509804) and int(torch_s8.zero_point) == -76

# TFLite converter (int8 activations): same float32 formula, zero point by std::round (RHAZ)
tfl = tflite_activation_qparams(lo, hi, "int8")
print("TFLite int8   :", bits(tfl.scale), int(tfl.zero_point))
assert tfl.scale == torch_s8.scale and int(tfl.zero_point) == -76

# ONNX Runtime's tool divides in float64 and then stores float32: one ulp away from PyTorch's scale.
ort = onnxruntime_qparams(lo, hi, "uint8")
print("ORT uint8     :", bits(ort.scale), int(ort.zero_point))
assert ort.scale.view(np.uint32) == 0x3CCD9A67 and int(ort.zero_point) == 52  # = onnxruntime 1.32
# the next float32 above PyTorch's

# ONNX DynamicQuantizeLinear (uint8), the specification's example (ORT == onnx.reference)
x = np.array([-1, 0, 1, 2, 3, 4, 5, 6.5], np.float32)
s, z = onnx_dynamic_qparams(x)
y = quantize(x, make_qparams(s, z, "uint8"), "onnx")
print("DynamicQuantizeLinear:", bits(s), int(z), y.tolist())
assert np.isclose(s, 0.02941176) and int(z) == 34
assert y.tolist() == [0, 34, 68, 102, 136, 170, 204, 255]

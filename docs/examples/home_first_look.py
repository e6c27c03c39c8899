"""Home page: one quantizer, three backends' rounding rules."""
import numpy as np

import refquant

x = np.array([0.5, 1.5, 2.5, -0.5], dtype=np.float32)
qp = refquant.make_qparams(1.0, 1, "int8")            # S = 1, Z = 1

onnx = refquant.quantize(x, qp, "onnx")               # RNE(x / S) + Z
tflite = refquant.quantize(x, qp, "tflite_reference")  # RHAZ(x / S) + Z
torch = refquant.quantize(x, qp, "pytorch_fbgemm")    # RNE(x * (1/S) + Z), PyTorch 2.13
print("onnx            ", onnx.tolist())
print("tflite_reference", tflite.tolist())
print("pytorch_fbgemm  ", torch.tolist())

assert onnx.tolist() == [1, 3, 3, 1]
assert tflite.tolist() == [2, 3, 4, 0]
assert torch.tolist() == [2, 2, 4, 0]

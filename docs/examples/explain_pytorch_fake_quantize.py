"""PyTorch: the QAT model's fake-quantize vs the converted model's quantize (how-to, §3).

Scale 1, zero point 1, values on exact halves. torch 2.13's ``quantize_per_tensor`` rounds
fma(x, 1/S, Z), with the zero point *before* rounding; ``fake_quantize_per_tensor_affine`` (what QAT
trains with) adds it *after*: Z + RNE(x / S). On a tie with an odd zero point they part by one code.
"""
import numpy as np

from refquant.backends import pytorch
from refquant.testing.explain import explain_mismatch

x = np.array([0.5, 1.5, 2.5, -0.5], np.float32)
qat = pytorch.fake_quantize_per_tensor_affine(x, 1.0, 1, 0, 255)  # the QAT forward pass
converted = pytorch.dequantize(pytorch.quantize_per_tensor(x, 1.0, 1, "quint8"), 1.0, 1)  # after convert()
print("QAT:", qat.tolist(), " converted:", converted.tolist())
assert qat.tolist() == [0.0, 2.0, 2.0, 0.0] and converted.tolist() == [1.0, 1.0, 3.0, -1.0]

inputs = dict(x=x, scale=1.0, zero_point=1, quant_min=0, quant_max=255)
e = explain_mismatch("pytorch.fake_quantize_per_tensor_affine", inputs, converted)
print(e)
assert e.best.label == "pytorch_fbgemm:quantize+dequantize"
assert e.expected.n_diff == 4 and e.expected.max_lsb == 1
assert any(d.startswith("zero point:") and "fma" in d for d in e.differences)

"""ONNX Runtime QLinearMatMul, uint8 x int8, on an AVX2 CPU without VNNI: explained (how-to, §2).

The expected outputs came from a machine with VNNI (exact accumulation); a customer's older CPU
sums each pair of u8 x s8 products in int16 with saturation (``vpmaddubsw``). Column 0 is the
worst pair there is: 255 * 127 + 255 * 127 = 64770, clipped to 32767.
"""
import numpy as np

from refquant.backends import onnxruntime
from refquant.testing.explain import explain_mismatch

inputs = dict(a=np.array([[255, 255, 10, 10]], np.uint8), a_scale=np.float32(1.0), a_zero_point=np.uint8(0),
              b=np.array([[127, 1], [127, -1], [0, 2], [0, 2]], np.int8), b_scale=np.float32(1.0),
              b_zero_point=np.int8(0), y_scale=np.float32(512.0), y_zero_point=np.uint8(0))

vnni = onnxruntime.qlinear_matmul(**inputs, isa="vnni")  # 64770 / 512 = 126.504 -> 127
avx2 = onnxruntime.qlinear_matmul(**inputs, isa="avx2")  # 32767 / 512 = 63.998 -> 64
print("VNNI:", vnni.tolist(), " AVX2:", avx2.tolist())
assert vnni.tolist() == [[127, 0]] and avx2.tolist() == [[64, 0]]

e = explain_mismatch("onnxruntime.qlinear_matmul", {**inputs, "isa": "vnni"}, avx2)
print(e)
assert e.best.label == "onnxruntime@avx2" and e.expected.max_lsb == 63
assert any(d.startswith("accumulation:") and "saturated to int16" in d for d in e.differences)

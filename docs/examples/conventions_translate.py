"""One quantizer in five notations (Conventions, translation table)."""
import numpy as np

from refquant import make_qparams, quantize
from refquant.fixedpoint_multiplier import quantize_multiplier

S, Z = np.float32(0.05), 10                      # refquant / ONNX / PyTorch: r = S (q - Z)
qp = make_qparams(S, Z, "int8")
x = np.array([-1.0, -0.26, 0.0, 0.33, 1.0, 7.0], np.float32)
q = quantize(x, qp)                              # eq. (2), half to even
print("refquant:", q.tolist())

# Distiller (q_utils.py): q = round(scale * x - zero_point), x = (q + zero_point) / scale,
# so Distiller's scale is 1/S and its zero_point is -Z.
d_scale, d_zero_point = 1 / S, -Z
q_distiller = np.clip(np.rint(d_scale * x.astype(np.float64) - d_zero_point), -128, 127)  # RNE (torch.round)
print("Distiller:", q_distiller.astype(int).tolist())
assert q_distiller.tolist() == q.tolist()

# TFLite and gemmlowp kernels take offsets, not zero points:
# input_offset = -Z_in (added to each input code), output_offset = +Z_out.
input_offset = -Z
acc_term = (q.astype(np.int32) + input_offset)   # (6,) int32: q - Z, the integer that multiplies S
np.testing.assert_array_equal(acc_term, q.astype(np.int32) - Z)

# Shift sign conventions for a real multiplier M = 0.3 = 0.6 * 2^-1:
M = 0.3
quantized_multiplier, shift = quantize_multiplier(M)  # TFLite: shift > 0 left, < 0 right
right_shift = -shift                                   # gemmlowp: right_shift >= 0
print(f"M = {M}: quantized_multiplier = {quantized_multiplier}, shift = {shift}, right_shift = {right_shift}")
assert (quantized_multiplier, shift) == (1288490189, -1)  # round(0.6 * 2^31), one right shift
assert abs(quantized_multiplier * 2.0 ** (shift - 31) - M) < 2.0 ** -31
assert quantize_multiplier(3.0) == (1610612736, 2)         # 3 = 0.75 * 2^2: a left shift

"""The hand-checkable example: int2 codes, S = 1/3, Z = -1, a 5x5 input (Learn 2, §3)."""
import numpy as np

from refquant import dequantize, make_qparams, quantize

x = np.array([[-0.90, -0.50, -0.40, -0.20, -0.10],
              [ 0.00,  0.05,  0.10,  0.20,  0.25],
              [ 0.30,  0.35,  0.40,  0.45,  0.50],
              [ 0.55,  0.60,  0.65,  0.70,  0.75],
              [ 0.80,  0.85,  0.90,  1.00,  1.50]], dtype=np.float32)  # (5, 5) float32

qp = make_qparams(1 / 3, -1, "int2")  # S stored as float32(1/3); int2 codes [-2, 1]
q = quantize(x, qp)                    # eq. (2), ONNX rules: RNE(x / S) + Z, clamp  -> (5, 5) int8
r = dequantize(q, qp)                  # eq. (1): S (q - Z)                           -> (5, 5) float32

print("q =", q.tolist())
print("3r =", np.rint(3 * r).astype(int).tolist())  # dequantized values in units of 1/3  # RNE, exact here

# By hand: x / S = 3x, round half to even, subtract 1, clamp to [-2, 1].
#   row 0:  3x = -2.7 -1.5 -1.2 -0.6 -0.3  -> round -3 -2 -1 -1  0 -> -4 -3 -2 -2 -1 -> clamp -2 -2 -2 -2 -1
#   row 4:  3x =  2.4 2.55  2.7  3.0  4.5  -> round  2  3  3  3  4 ->  1  2  2  2  3 -> clamp  1  1  1  1  1
expected_q = [[-2, -2, -2, -2, -1],
              [-1, -1, -1,  0,  0],
              [ 0,  0,  0,  0,  1],
              [ 1,  1,  1,  1,  1],
              [ 1,  1,  1,  1,  1]]
np.testing.assert_array_equal(q, expected_q)
assert q.dtype == np.int8  # int2 values are kept unpacked in int8

# Only four real values exist: S (q - Z) for q in {-2, -1, 0, 1} = {-1/3, 0, 1/3, 2/3}.
np.testing.assert_array_equal(np.rint(3 * r), np.array(expected_q) + 1)  # RNE of values within 1e-7 of integers

# Inside the representable range [-1/3 - S/2, 2/3 + S/2] the error is at most S/2 (Learn 2, eq. (3)).
inside = (x >= -0.5) & (x <= 2 / 3 + 1 / 6)
err = np.abs(r - x)
assert err[inside].max() <= np.float32(1 / 6) + 1e-7
print("max |r - x| inside the range:", round(float(err[inside].max()), 4),
      "  clipped:", round(float(err[~inside].max()), 4))

# The stored scale is float32(1/3) = 0.33333334, and ONNX divides in float32. For x = 0.5 the
# float32 quotient is exactly 1.5, as by hand (a tie, to even: 2, code 1); the float64 quotient of
# the same two float32 numbers is 1.49999996 and would round to 1 (code 0).
s32 = np.float32(1 / 3)
assert np.float32(0.5) / s32 == np.float32(1.5)
assert np.float64(np.float32(0.5)) / np.float64(s32) < 1.5
print("0.5 / S: float32", float(np.float32(0.5) / s32), " float64", np.float64(0.5) / np.float64(s32))

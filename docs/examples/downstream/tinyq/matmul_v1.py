"""First attempt at an int8 QLinearMatMul: right accumulator, wrong rounding.

    y = clamp(round(M * sum_k (a_mk - Z_a)(b_kn - Z_b)) + Z_y, -128, 127),   M = fl(fl(S_a S_b) / S_y)
"""
import numpy as np


def requantize(acc, multiplier, y_zero_point):
    """int32 accumulators to int8 codes."""
    v = acc.astype(np.float32) * np.float32(multiplier)  # float32, as ONNX Runtime computes it
    r = np.floor(v.astype(np.float64) + 0.5)  # BUG: rounds half up; ONNX Runtime rounds half to even
    return np.clip(r + int(y_zero_point), -128, 127).astype(np.int8)


def qmatmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """int8 (M, K) x int8 (K, N) -> int8 (M, N), per-tensor parameters."""
    acc = (a.astype(np.int32) - int(a_zero_point)) @ (b.astype(np.int32) - int(b_zero_point))
    m = np.float32(np.float32(a_scale) * np.float32(b_scale)) / np.float32(y_scale)
    return requantize(acc, m, y_zero_point)

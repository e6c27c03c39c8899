"""Answers to exercises/quiz_03.md (spoilers). ``check()`` recomputes every answer with refquant;
tests/test_exercises.py calls it, and so does ``python exercises/_solutions/quiz_03.py``."""

ANSWERS = {
    # 1. S = (2.984375 + 1) / 255 = 3.984375 / 255 = 1/64; Z = -128 - (-1) / (1/64) = -128 + 64.
    1: {"scale": 0.015625, "zero_point": -64},
    # 2. 0.5 * 64 = 32 -> -64 + 32 = -32;  -0.3 * 64 = -19.2 -> -19 -> -64 - 19 = -83.
    2: [-32, -83],
    # 3. max|W| per row: 0.9921875 = 127/128 and 0.49609375 = 127/256, so S_w = [1/128, 1/256];
    #    q = RHAZ(W / S_w) = [[127, -64], [127, 64]].
    3: {"scales": [0.0078125, 0.00390625], "q": [[127, -64], [127, 64]]},
    # 4. S_x S_w = [2^-13, 2^-14]; 0.1 * 8192 = 819.2 -> 819; -0.05 * 16384 = -819.2 -> -819.
    4: {"scales": [2.0**-13, 2.0**-14], "q": [819, -819]},
    # 5. q_x - Z_x = [32, -19]: 32 * 127 + (-19)(-64) + 819 = 4064 + 1216 + 819 = 6099;
    #    32 * 127 + (-19)(64) - 819 = 4064 - 1216 - 819 = 2029.
    5: [6099, 2029],
    # 6. S = (7.46875 + 0.5) / 255 = 7.96875 / 255 = 1/32; Z = -128 - (-0.5) * 32 = -128 + 16.
    6: {"scale": 0.03125, "zero_point": -112},
    # 7. M = [2^-13 / 2^-5, 2^-14 / 2^-5] = [2^-8, 2^-9] = 0.5 * [2^-7, 2^-8]: q = 0.5 * 2^31 = 2^30.
    7: {"M": [2.0**-8, 2.0**-9], "q_shift": [(2**30, -7), (2**30, -8)]},
    # 8. SRDHM(6099, 2^30) = RHU(3049.5) = 3050, RDBPOT(3050, 7) = RHAZ(23.83) = 24 -> 24 - 112 = -88;
    #    SRDHM(2029, 2^30) = RHU(1014.5) = 1015, RDBPOT(1015, 8) = RHAZ(3.96) = 4 -> 4 - 112 = -108.
    8: [-88, -108],
    # 9. y_hat = (1/32) * [24, 4] = [0.75, 0.125]; y = [0.49609375 + 0.15 + 0.1, 0.248046875 - 0.075 - 0.05]
    #    = [0.74609375, 0.123046875]; errors [0.00390625, 0.001953125], both below S_y / 2 = 0.015625.
    9: {"y_hat": [0.75, 0.125], "y": [0.74609375, 0.123046875], "error": [0.00390625, 0.001953125]},
    # 10. Q(0) = Z_y = -112; Q(6) = -112 + RHAZ(6 * 32) = -112 + 192 = 80.
    10: (-112, 80),
    # 11. S_w = 0.9921875 / 127 = 1/128 for both rows; row 1: 0.49609375 * 128 = 63.5 -> RHAZ 64 (a tie),
    #     0.25 * 128 = 32; its largest weight reaches code 64 of 127: one bit fewer than per channel.
    11: {"scale": 0.0078125, "row1": [64, 32], "codes_reached": 64},
}


def check(answers=ANSWERS) -> None:
    """Recompute every answer with refquant's TFLite face and kernels; raise AssertionError on a mismatch."""
    import numpy as np

    from refquant import dequantize, quantize
    from refquant.backends.tflite import (
        activation_qparams,
        bias_quantize,
        symmetric_weight_quantize,
    )
    from refquant.fixedpoint import (
        multiply_by_quantized_multiplier,
        quantize_multiplier,
        rounding_divide_by_pot,
        saturating_rounding_doubling_high_mul,
    )
    from refquant.kernels.bias import add_bias
    from refquant.kernels.gemm import gemm
    from refquant.kernels.multiplier import activation_range
    from refquant.kernels.requant import requantize

    a = answers
    x = np.array([[0.5, -0.3]], np.float32)                                  # (1, K)
    w = np.array([[0.9921875, -0.5], [0.49609375, 0.25]], np.float32)        # (N, K)
    b = np.array([0.1, -0.05], np.float32)

    in_qp, out_qp = activation_qparams(-1.0, 2.984375), activation_qparams(-0.5, 7.46875)
    s_x, z_x = float(in_qp.scale), int(in_qp.zero_point)
    s_y, z_y = float(out_qp.scale), int(out_qp.zero_point)
    assert (s_x, z_x) == (a[1]["scale"], a[1]["zero_point"]), (s_x, z_x)
    q_x = quantize(x, in_qp, "tflite_reference")                             # (1, K) int8
    assert q_x.ravel().tolist() == a[2], q_x
    q_w, s_w = symmetric_weight_quantize(w, axis=0)
    assert s_w.tolist() == a[3]["scales"] and q_w.tolist() == a[3]["q"], (s_w, q_w)
    q_b = bias_quantize(b, s_x, s_w)
    assert (np.float32(s_x) * s_w).tolist() == a[4]["scales"] and q_b.tolist() == a[4]["q"], q_b
    acc = add_bias(gemm(q_x, np.ascontiguousarray(q_w.T), z_x, 0), q_b)    # (1, N) int32
    assert acc.ravel().tolist() == a[5], acc
    assert (s_y, z_y) == (a[6]["scale"], a[6]["zero_point"]), (s_y, z_y)
    m = [s_x * float(s) / s_y for s in s_w]
    assert m == a[7]["M"] and [quantize_multiplier(v) for v in m] == a[7]["q_shift"], m
    q = np.array([p[0] for p in a[7]["q_shift"]])
    shift = np.array([p[1] for p in a[7]["q_shift"]])
    high = saturating_rounding_doubling_high_mul(acc.ravel(), q)
    assert high.tolist() == [3050, 1015] and rounding_divide_by_pot(high, -shift).tolist() == [24, 4]
    assert multiply_by_quantized_multiplier(acc.ravel(), q, shift).tolist() == [24, 4]
    q_y = requantize(acc, q, z_y, -128, 127, mode="fixed_double", shift=shift)
    assert q_y.ravel().tolist() == a[8], q_y
    y_hat = dequantize(q_y, out_qp).astype(np.float64).ravel()
    y = (w.astype(np.float64) @ x.astype(np.float32).astype(np.float64).ravel()) + b.astype(np.float64)
    assert y_hat.tolist() == a[9]["y_hat"], y_hat
    np.testing.assert_allclose(y, a[9]["y"], atol=1e-8)                     # 0.3 and 0.1 are not exact in float32
    np.testing.assert_allclose(np.abs(y_hat - y), a[9]["error"], atol=1e-8)
    assert all(e <= s_y / 2 for e in a[9]["error"])
    assert activation_range("RELU6", s_y, z_y, -128, 127) == a[10]
    q_t, s_t = symmetric_weight_quantize(w, axis=None)
    assert float(s_t) == a[11]["scale"] and q_t[1].tolist() == a[11]["row1"], (s_t, q_t)
    assert int(np.abs(q_t[1]).max()) == a[11]["codes_reached"]


if __name__ == "__main__":
    check()
    print("every answer of quiz 3 agrees with refquant")

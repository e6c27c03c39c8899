"""Tests for exercise 06. DO NOT EDIT: edit requantize.py, then run ``python -m exercises 06``.

First the cases of Learns 4 and 5 you can check by hand, then fresh values compared with
refquant (``activation_range``, ``requantize(mode="fixed_double")``, ``gemm`` + ``add_bias``).
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from refquant.kernels.gemm import gemm
from refquant.kernels.bias import add_bias
from refquant.kernels.multiplier import activation_range
from refquant.kernels.requant import requantize

ex = load_exercise(__file__, "requantize.py")
ACTIVATIONS = [None, "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]
Q01, S01 = quantize_multiplier(0.01)  # (1374389535, -6)


def _diagnose_requant(acc, q, shift, zp, lo, hi, got):
    r = multiply_by_quantized_multiplier(acc, q, shift).astype(np.int64)
    single = multiply_by_quantized_multiplier(acc, q, shift, variant="single").astype(np.int64)
    candidates = {
        "you clamped before adding the zero point; add it first, then clamp": np.clip(r, lo, hi) + zp,
        "you cast to int8 without clamping (it wrapped); np.clip first": (r + zp).astype(np.int8),
        "that is single rounding; use multiply_by_quantized_multiplier (double rounding)": np.clip(single + zp, lo, hi),
        "you ignored act_min/act_max and clamped to [-128, 127]": np.clip(r + zp, -128, 127),
    }
    for why, cand in candidates.items():
        if np.array_equal(np.asarray(cand).astype(np.int64), np.asarray(got).astype(np.int64)):
            return why
    return "see Learn 4, eq. (13)"


# ----------------------------------------------------------------------------- activation_range
def test_activation_range_by_hand():
    # S = 0.05, Z = -20: Q(0) = -20, Q(6) = -20 + 120 = 100, Q(-1) = -40, Q(1) = 0.
    for act, want in ((None, (-128, 127)), ("NONE", (-128, 127)), ("RELU", (-20, 127)), ("RELU6", (-20, 100)),
                      ("RELU_N1_TO_1", (-40, 0))):
        got = ex.activation_range(act, 0.05, -20, -128, 127)
        assert tuple(got) == want, f"activation_range({act!r}, 0.05, -20, -128, 127): expected {want}, got {got}"
        assert all(isinstance(v, int) for v in got), "return Python ints"


def test_activation_range_tie_in_float32():
    # float32(6) / float32(2.4) = 2.5 exactly (in float64 it is 2.4999999): half away from zero -> 3.
    got = tuple(ex.activation_range("RELU6", 2.4, 0, -128, 127))
    if got == (0, 2):
        pytest.fail("Q(6) came out 2: divide in float32 (np.float32(6) / np.float32(2.4) = 2.5) and round half "
                    "away from zero (2.5 -> 3); float64 division or round-half-to-even give 2")
    assert got == (0, 3), f"expected (0, 3), got {got}"


def test_activation_range_clips_to_the_format():
    assert tuple(ex.activation_range("RELU6", 0.01, 0, -128, 127)) == (0, 127), "min(qmax, Q(6)) with Q(6) = 600"
    assert tuple(ex.activation_range("RELU", 0.1, -128, -128, 127)) == (-128, 127)


def test_activation_range_fresh_values():
    rng = np.random.default_rng(606)
    for _ in range(300):
        scale = float(np.float32(10.0 ** rng.uniform(-3, 0)))
        zp = int(rng.integers(-128, 128))
        for act in ACTIVATIONS:
            want = activation_range(act, scale, zp, -128, 127)
            got = tuple(ex.activation_range(act, scale, zp, -128, 127))
            assert got == want, f"activation_range({act!r}, {scale!r}, {zp}, -128, 127): expected {want}, got {got}"


# ----------------------------------------------------------------------------- requantize
def test_requantize_by_hand():
    # M = 0.01: [1000, -2500, 20000] -> [10, -25, 200]; + Z = -20 -> [-10, -45, 180]
    acc = np.array([1000, -2500, 20000], np.int32)
    for (lo, hi), want in (((-128, 127), [-10, -45, 127]), ((-20, 100), [-10, -20, 100])):
        got = np.asarray(ex.requantize(acc, Q01, S01, -20, lo, hi))
        if got.tolist() != want:
            pytest.fail(f"clamp [{lo}, {hi}]: expected {want}, got {got.tolist()}; "
                        f"{_diagnose_requant(acc, Q01, S01, -20, lo, hi, got)}")
        assert got.dtype == np.int8, f"return int8, got {got.dtype}"


def test_requantize_learn5_by_hand():
    # Learn 5, section 2: M = 1/3 (q = 1431655765, shift = -1): 14 -> 5, -2 -> -1; + 2.
    got = np.asarray(ex.requantize(np.array([[14, -2]], np.int32), 1431655765, -1, 2, -128, 127))
    assert got.tolist() == [[7, 1]], f"expected [[7, 1]], got {got.tolist()}"


def test_requantize_double_rounding_by_hand():
    # x = 1, M = 0.25: double rounding gives 1 (RHU(0.5) = 1, then RHAZ(0.5) = 1), single gives 0.
    got = np.asarray(ex.requantize(np.array([1, 7984], np.int32), np.array([2**30, 1583594044]),
                                   np.array([-1, -9]), 0, -128, 127))
    assert got.tolist() == [1, 12], f"per channel, double rounding: expected [1, 12], got {got.tolist()}; " + \
        _diagnose_requant(np.array([1, 7984]), np.array([2**30, 1583594044]), np.array([-1, -9]), 0, -128, 127, got)


def test_requantize_fresh_per_tensor_and_per_channel():
    rng = np.random.default_rng(6060)
    for trial in range(40):
        C = int(rng.integers(1, 9))
        acc = rng.integers(-(2**18), 2**18, (int(rng.integers(1, 6)), C)).astype(np.int32)
        reals = 10.0 ** rng.uniform(-4, -0.5, C)
        qs = np.array([quantize_multiplier(float(m))[0] for m in reals])
        ss = np.array([quantize_multiplier(float(m))[1] for m in reals])
        zp = int(rng.integers(-128, 128))
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
        for q, s in ((int(qs[0]), int(ss[0])), (qs, ss)):
            want = requantize(acc, q, zp, lo, hi, mode="fixed_double", shift=s, dtype="int8")
            got = np.asarray(ex.requantize(acc, q, s, zp, lo, hi))
            if not np.array_equal(got, want) or got.dtype != np.int8:
                pytest.fail(f"acc {acc.tolist()}, q {q}, shift {s}, zp {zp}, clamp [{lo}, {hi}]: expected "
                            f"{want.tolist()}, got {got.tolist()} ({got.dtype}); "
                            f"{_diagnose_requant(acc, q, s, zp, lo, hi, got)}")


# ----------------------------------------------------------------------------- quantized_linear
X_Q = np.array([[1, -2, 3]], np.int8)
W_Q = np.array([[2, -4, 1], [6, 2, -2]], np.int8)
B_Q = np.array([2, -4], np.int32)


def test_quantized_linear_learn5_by_hand():
    # Learn 5, section 2: acc = [14, -2], M = 1/3, Z_y = 2 -> [7, 1]; with ReLU (clamp from 2) -> [7, 2].
    q, s = np.array([1431655765, 1431655765]), np.array([-1, -1])
    got = np.asarray(ex.quantized_linear(X_Q, W_Q, B_Q, -1, q, s, 2, -128, 127))
    if got.tolist() == [[6, 3]]:
        pytest.fail("you forgot the bias: acc = sum_k (x - Zx) w + bias = [12 + 2, 2 - 4]")
    assert got.tolist() == [[7, 1]], f"expected [[7, 1]], got {got.tolist()}"
    assert got.dtype == np.int8
    got = np.asarray(ex.quantized_linear(X_Q, W_Q, B_Q, -1, q, s, 2, 2, 127))
    assert got.tolist() == [[7, 2]], f"fused ReLU (act_min = Z_y = 2): expected [[7, 2]], got {got.tolist()}"


def test_quantized_linear_fresh_layers():
    rng = np.random.default_rng(60606)
    for trial in range(20):
        B, K, N = int(rng.integers(1, 5)), int(rng.integers(1, 40)), int(rng.integers(1, 7))
        x_q = rng.integers(-128, 128, (B, K)).astype(np.int8)
        w_q = rng.integers(-127, 128, (N, K)).astype(np.int8)
        bias = rng.integers(-5000, 5000, N).astype(np.int32)
        zx = int(rng.integers(-128, 128))
        pairs = [quantize_multiplier(float(m)) for m in 10.0 ** rng.uniform(-4, -1.5, N)]
        q, s = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        zy = int(rng.integers(-128, 128))
        acc = add_bias(gemm(x_q, np.ascontiguousarray(w_q.T), zx, 0), bias)
        want = requantize(acc, q, zy, -128, 127, mode="fixed_double", shift=s, dtype="int8")
        got = np.asarray(ex.quantized_linear(x_q, w_q, bias, zx, q, s, zy, -128, 127))
        assert got.shape == (B, N), f"shape {got.shape}, expected {(B, N)} (w_q is (N, K): use w_q.T)"
        np.testing.assert_array_equal(got, want, err_msg=f"layer {B}x{K} -> {N}, x zero point {zx}")

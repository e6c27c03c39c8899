"""Tests for exercise 09. DO NOT EDIT: edit fold.py, then run ``python -m exercises 09``.

First the example of Learn 11 you can check by hand, then fresh parameters compared with
``refquant.passes.fold_parameters``, the bundled CNN folded with your function, and the ReLU6 clamp
compared with ``refquant.kernels.multiplier.activation_range``.

Why tolerances: folding is float arithmetic. Two correct implementations of eq. (3) may round in a
different order (``gamma / sqrt(var + eps)`` or ``gamma * (1 / sqrt(var + eps))``; ``a (b - mean) +
beta`` or ``a b + (beta - a mean)``), and each rounding moves a float64 result by half an ulp, about
1e-16 of the size of the numbers involved. So the folded parameters are compared to within 1e-12 of
the size of the terms that make them (far looser than a few roundings, far tighter than any mistake,
and tight enough to catch float32 arithmetic, which errs by 1e-7). The folded *model* is compared
with the unfolded one to within 1e-5 of its largest logit: the folded layer computes
``(a W) x`` in float32 where the unfolded one computed ``a (W x)``, so their outputs agree only up to
float32 rounding, never bit for bit.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant import nn, passes
from refquant.data import load_digits
from refquant.kernels.multiplier import activation_range
from refquant.models import load_reference_model

ex = load_exercise(__file__, "fold.py")
RTOL = 1e-12


def _diagnose(w, b, gamma, beta, mean, var, eps, got_w, got_b):
    w64, o = np.asarray(w, np.float64), np.asarray(w).shape[0]
    shape = (o,) + (1,) * (w64.ndim - 1)
    b64 = np.zeros(o) if b is None else np.asarray(b, np.float64)
    candidates = {}
    a_no_eps = gamma / np.sqrt(var)
    candidates["you left out eps: a = gamma / sqrt(var + eps)"] = (w64 * a_no_eps.reshape(shape),
                                                                   a_no_eps * (b64 - mean) + beta)
    a_std = gamma / (var + eps)
    candidates["you divided by the variance; divide by its square root, sqrt(var + eps)"] = (
        w64 * a_std.reshape(shape), a_std * (b64 - mean) + beta)
    a = gamma / np.sqrt(var + eps)
    candidates["you forgot the running mean: b' = a (b - mean) + beta"] = (w64 * a.reshape(shape), a * b64 + beta)
    candidates["you forgot beta: b' = a (b - mean) + beta"] = (w64 * a.reshape(shape), a * (b64 - mean))
    a32 = (np.float32(1) * gamma.astype(np.float32) / np.sqrt(var.astype(np.float32) + np.float32(eps))).astype(np.float32)
    candidates["that looks like float32 arithmetic; fold in float64 (np.asarray(..., np.float64))"] = (
        (w64.astype(np.float32) * a32.reshape(shape)).astype(np.float64),
        (a32 * (b64.astype(np.float32) - mean.astype(np.float32)) + beta.astype(np.float32)).astype(np.float64))
    for why, (cw, cb) in candidates.items():
        if np.shape(got_w) == cw.shape and np.allclose(got_w, cw, rtol=1e-9, atol=0) and \
                np.allclose(got_b, cb, rtol=1e-9, atol=1e-12):
            return why
    if w64.ndim > 1 and w64.shape[1] == o:
        wrong_axis = w64 * a.reshape((1, o) + (1,) * (w64.ndim - 2))
        if np.allclose(got_w, wrong_axis, rtol=1e-9):
            return "you scaled the input channels (axis 1); the BatchNorm follows the OUTPUT channels, axis 0"
    return "see Learn 11, eq. (3)"


def _random_bn(rng, o):
    gamma = rng.normal(1.0, 0.5, o)
    beta = rng.normal(0.0, 0.3, o)
    mean = rng.normal(0.0, 1.0, o)
    var = 10.0 ** rng.uniform(-3, 1, o)
    return gamma, beta, mean, var


# ----------------------------------------------------------------------------- by hand
def test_bn_scale_shift_by_hand():
    # Learn 11, section 4: gamma [3, 1], beta [0.5, 0], mean [1, -2], var [3, 0], eps 1:
    # a = [3 / 2, 1 / 1] = [1.5, 1], shift = beta - a mean = [0.5 - 1.5, 0 + 2] = [-1, 2]
    a, shift = ex.bn_scale_shift(np.array([3.0, 1.0]), np.array([0.5, 0.0]), np.array([1.0, -2.0]),
                                 np.array([3.0, 0.0]), 1.0)
    if not np.all(np.isfinite(np.asarray(a, np.float64))):
        pytest.fail(f"a came out {np.asarray(a).tolist()} (var is 0 in channel 1): eps belongs under the square root, "
                    "a = gamma / sqrt(var + eps)")
    assert np.asarray(a).tolist() == [1.5, 1.0], f"a: expected [1.5, 1.0], got {np.asarray(a).tolist()}"
    assert np.asarray(shift).tolist() == [-1.0, 2.0], f"shift: expected [-1.0, 2.0], got {np.asarray(shift).tolist()}"
    assert np.asarray(a).dtype == np.float64, "compute and return float64"


def test_fold_bn_by_hand():
    # One 1x1 convolution, two output channels, no bias: W = [2, -1] -> W' = a W = [3, -1]; b' = [-1, 2]
    w = np.array([2.0, -1.0], np.float32).reshape(2, 1, 1, 1)
    gamma, beta, mean, var = (np.array(v) for v in ([3.0, 1.0], [0.5, 0.0], [1.0, -2.0], [3.0, 0.0]))
    got_w, got_b = ex.fold_bn(w, None, gamma, beta, mean, var, 1.0)
    assert np.shape(got_w) == (2, 1, 1, 1), f"W' must keep the weight's shape (2, 1, 1, 1), got {np.shape(got_w)}"
    if np.asarray(got_w).ravel().tolist() != [3.0, -1.0] or np.asarray(got_b).tolist() != [-1.0, 2.0]:
        pytest.fail(f"expected W' = [3, -1] and b' = [-1, 2], got W' = {np.asarray(got_w).ravel().tolist()} and "
                    f"b' = {np.asarray(got_b).tolist()}; {_diagnose(w, None, gamma, beta, mean, var, 1.0, got_w, got_b)}")
    assert np.asarray(got_w).dtype == np.float64 and np.asarray(got_b).dtype == np.float64, "return float64"


def test_fold_bn_with_bias_by_hand():
    # Linear 2 -> 2 with bias [1, 1], same BatchNorm: b' = a (b - mean) + beta = [1.5 * 0 + 0.5, 1 * 3 + 0]
    got_w, got_b = ex.fold_bn(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0]), np.array([3.0, 1.0]),
                              np.array([0.5, 0.0]), np.array([1.0, -2.0]), np.array([3.0, 0.0]), 1.0)
    if np.asarray(got_w).tolist() == [[1.5, 2.0], [4.5, 4.0]]:
        pytest.fail("you scaled the columns (input channels); the BatchNorm follows the OUTPUT channels: scale "
                    "row c of the weight (axis 0) by a_c")
    assert np.asarray(got_w).tolist() == [[1.5, 3.0], [3.0, 4.0]], \
        f"W': expected rows scaled by a = [1.5, 1]: [[1.5, 3], [3, 4]], got {np.asarray(got_w).tolist()}"
    assert np.asarray(got_b).tolist() == [0.5, 3.0], f"b': expected [0.5, 3.0], got {np.asarray(got_b).tolist()}"


# ----------------------------------------------------------------------------- fresh parameters
def test_fold_bn_fresh_against_refquant():
    rng = np.random.default_rng(909)
    shapes = [(4, 3), (8, 3, 3, 3), (16, 1, 3, 3), (5, 5), (6, 2, 1, 1), (3, 4, 5, 5)]
    for trial in range(60):
        shape = shapes[trial % len(shapes)]
        o = shape[0]
        w = rng.normal(0, 0.3, shape).astype(np.float32)
        b = None if trial % 3 == 0 else rng.normal(0, 0.2, o).astype(np.float32)
        gamma, beta, mean, var = _random_bn(rng, o)
        eps = float(rng.choice([1e-5, 1e-3, 0.1]))
        want_w, want_b = passes.fold_parameters(w, b, gamma, beta, mean, var, eps)
        got_w, got_b = ex.fold_bn(w, b, gamma, beta, mean, var, eps)
        got_w, got_b = np.asarray(got_w), np.asarray(got_b)
        assert got_w.shape == want_w.shape and got_b.shape == want_b.shape, \
            f"shapes: W' {got_w.shape} (expected {want_w.shape}), b' {got_b.shape} (expected {want_b.shape})"
        a = np.abs(gamma / np.sqrt(var + eps))
        b64 = np.zeros(o) if b is None else np.abs(b.astype(np.float64))
        size_b = a * (b64 + np.abs(mean)) + np.abs(beta)                          # the size of b's terms
        ok_w = np.all(np.abs(got_w - want_w) <= RTOL * np.abs(want_w))
        ok_b = np.all(np.abs(got_b - want_b) <= RTOL * size_b)
        if not (ok_w and ok_b):
            pytest.fail(f"trial {trial}, weight {shape}, bias {'None' if b is None else 'given'}, eps {eps}: "
                        f"max |W' error| {np.max(np.abs(got_w - want_w)):.3g}, max |b' error| "
                        f"{np.max(np.abs(got_b - want_b)):.3g}; {_diagnose(w, b, gamma, beta, mean, var, eps, got_w, got_b)}")


def test_fold_the_bundled_cnn():
    cnn = load_reference_model("cnn").eval()                  # 3 x (Conv2d, BatchNorm2d, ReLU), ...
    reference = passes.fold_batch_norm(cnn)                  # refquant's folded copy
    layers = list(cnn)
    pairs = [(layers[i], layers[i + 1]) for i in range(len(layers) - 1)
             if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d)]
    convs = [m for m in reference.modules() if isinstance(m, nn.Conv2d)]
    assert len(pairs) == len(convs) == 3
    mine = passes.fold_batch_norm(cnn)                       # a second copy, to overwrite with your parameters
    for (conv, bn), ref_conv, my_conv in zip(pairs, convs, [m for m in mine.modules() if isinstance(m, nn.Conv2d)]):
        w, b = ex.fold_bn(conv.weight.value, None if conv.bias is None else conv.bias.value, bn.weight.value,
                          bn.bias.value, bn.running_mean, bn.running_var, bn.eps)
        w32, b32 = np.asarray(w).astype(np.float32), np.asarray(b).astype(np.float32)
        # both are the float64 eq. (3) rounded once to float32: at most one float32 ulp apart
        np.testing.assert_array_max_ulp(w32, ref_conv.weight.value, maxulp=1)
        np.testing.assert_array_max_ulp(b32, ref_conv.bias.value, maxulp=1)
        my_conv.weight.value, my_conv.bias.value = w32, b32
    x, _ = load_digits("test")
    unfolded, folded = cnn(x), mine(x)                       # (359, 10) float32 logits each
    error = float(np.max(np.abs(folded - unfolded)))
    assert error <= 1e-5 * float(np.max(np.abs(unfolded))), \
        f"your folded CNN's logits differ from the unfolded CNN's by {error:.3g}: more than float32 rounding"
    np.testing.assert_array_equal(folded.argmax(axis=1), unfolded.argmax(axis=1))


# ----------------------------------------------------------------------------- relu6_clamp
def test_relu6_clamp_by_hand():
    s = np.float32(9) / np.float32(255)                      # Learn 11, section 4: range [-1, 8], Z = -100
    cases = [((s, -100), (-100, 70)),                        # 6 / S = 170 exactly
             ((0.05, -20), (-20, 100)),                      # Q(6) = -20 + 120
             ((0.1, 100), (100, 127)),                       # Q(6) = 160 is beyond qmax
             ((2.4, 0), (0, 3))]                             # float32(6) / float32(2.4) = 2.5: away from zero
    for (scale, zp), want in cases:
        got = tuple(ex.relu6_clamp(scale, zp))
        if (scale, zp) == (2.4, 0) and got == (0, 2):
            pytest.fail("Q(6) came out 2: divide in float32 (float32(6) / float32(2.4) = 2.5 exactly) and round "
                        "half away from zero (2.5 -> 3); float64 division or np.rint give 2")
        assert got == want, f"relu6_clamp({float(scale)!r}, {zp}): expected {want}, got {got}"
        assert all(isinstance(v, int) for v in got), "return Python ints"


def test_relu6_clamp_fresh_against_refquant():
    rng = np.random.default_rng(9090)
    for _ in range(300):
        scale = float(np.float32(10.0 ** rng.uniform(-3, 0)))
        for qmin, qmax in ((-128, 127), (0, 255)):
            zp = int(rng.integers(qmin, qmax + 1))
            want = activation_range("RELU6", scale, zp, qmin, qmax)
            got = tuple(ex.relu6_clamp(scale, zp, qmin, qmax))
            assert got == want, f"relu6_clamp({scale!r}, {zp}, {qmin}, {qmax}): expected {want}, got {got}"

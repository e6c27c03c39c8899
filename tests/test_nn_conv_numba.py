"""The Numba loops of refquant.nn.conv_numba against their NumPy twins in refquant.nn.conv.

Bit for bit (compared as uint bit patterns): im2col, col2im, the depthwise forward pass, and the
depthwise input gradient for depth multiplier 1 (same IEEE-754 operations in the same order).
Within tolerance: the depthwise weight gradient (a sum over batch and positions whose order
NumPy's einsum chooses) and, for multiplier > 1, the input gradient (einsum sums the multiplier
axis first): float64 to 1e-12 relative to the largest magnitude, float32 to 2e-6.
Marked ``kernels``: CI reruns them with NUMBA_DISABLE_JIT=1, where the loops run as Python.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant import nn
from refquant.nn import conv as C
from refquant.nn.conv_numba import col2im_numba, depthwise_backward_numba, depthwise_forward_numba, im2col_numba

pytestmark = pytest.mark.kernels

DTYPES = [np.float32, np.float64]
REL_TOL = {np.float32: 2e-6, np.float64: 1e-12}

# (N, C, H, W, kernel, stride, padding (t, b, l, r), dilation, groups)
IM2COL_CASES = [
    (2, 3, 6, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 4, 7, 7, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2),
    (1, 2, 9, 8, (3, 2), (2, 1), (0, 1, 2, 0), (2, 1), 1),
    (3, 4, 5, 5, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    (2, 6, 4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),
]

# (N, C, M, H, W, kernel, stride, padding, dilation)
DEPTHWISE_CASES = [
    (2, 3, 1, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    (2, 2, 3, 5, 7, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),   # multiplier 3 (a 1-channel stem is this)
    (1, 3, 1, 9, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    (2, 2, 2, 9, 8, (3, 3), (2, 1), (0, 1, 1, 0), (2, 2)),
    (1, 4, 1, 4, 4, (3, 2), (1, 1), (1, 1, 0, 1), (1, 2)),
]


def _pad(x, padding):
    return C.pad2d(x, padding)


def _out_hw(hp, wp, kernel, stride, dilation):
    return (C.conv2d_output_size(hp, kernel[0], stride[0], 0, 0, dilation[0]),
            C.conv2d_output_size(wp, kernel[1], stride[1], 0, 0, dilation[1]))


def assert_same_bits(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    bits = np.uint32 if got.dtype == np.float32 else np.uint64
    bad = got.view(bits) != want.view(bits)
    if bad.any():
        i = np.argwhere(bad)[0]
        pytest.fail(f"{what}: {int(bad.sum())} of {got.size} values differ in their bits; first at "
                    f"{tuple(i)}: Numba {got[tuple(i)]!r}, NumPy {want[tuple(i)]!r}")


def assert_close(got, want, dtype, what):
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= REL_TOL[dtype] * scale, f"{what}: max |Numba - NumPy| = {err:.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", IM2COL_CASES)
def test_im2col_and_col2im_match_numpy_bit_for_bit(case, dtype):
    n, c, h, w, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(1)
    xp = _pad(rng.standard_normal((n, c, h, w)).astype(dtype), padding)
    want = C.im2col(xp, kernel, stride, dilation, groups)
    assert_same_bits(im2col_numba(xp, kernel, stride, dilation, groups), want, "im2col")
    out_hw = _out_hw(xp.shape[2], xp.shape[3], kernel, stride, dilation)
    gcols = rng.standard_normal(want.shape).astype(dtype)
    assert_same_bits(col2im_numba(gcols, xp.shape, out_hw, kernel, stride, dilation, groups),
                     C.col2im(gcols, xp.shape, out_hw, kernel, stride, dilation, groups), "col2im")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_matches_numpy(case, dtype):
    n, c, m, h, w, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(2)
    xp = _pad(rng.standard_normal((n, c, h, w)).astype(dtype), padding)
    weight = rng.standard_normal((c * m, 1) + kernel).astype(dtype)
    out_hw = _out_hw(xp.shape[2], xp.shape[3], kernel, stride, dilation)
    y = depthwise_forward_numba(xp, weight, out_hw, stride, dilation)
    assert_same_bits(y, C.depthwise_forward(xp, weight, out_hw, stride, dilation), "depthwise forward")

    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw = depthwise_backward_numba(g, xp, weight, stride, dilation, True)
    gx_ref, gw_ref = C.depthwise_backward(g, xp, weight, stride, dilation, True)
    if m == 1:
        assert_same_bits(gx, gx_ref, "depthwise grad_x (multiplier 1)")
    else:
        assert_close(gx, gx_ref, dtype, "depthwise grad_x")
    assert_close(gw, gw_ref, dtype, "depthwise grad_w")
    gx2, gw2 = depthwise_backward_numba(g, xp, weight, stride, dilation, False)
    assert gw2 is None
    assert_same_bits(gx2, gx, "grad_x without grad_w")


def test_edge_values_keep_their_bits():
    """Signed zeros, subnormals, huge values: the forward pass is the same IEEE sequence."""
    xp = np.array([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, 1.0, -2.5, 7.0], np.float32).reshape(1, 1, 3, 3)
    xp = np.tile(xp, (2, 2, 2, 2))  # (2, 2, 6, 6)
    w = np.array([-0.0, 1.0, -1.0, 2.0, 1e-38, 0.5, -3.0, 1e30, 0.0], np.float32).reshape(1, 1, 3, 3)
    w = np.concatenate([w, -w], axis=0)  # (2, 1, 3, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        want = C.depthwise_forward(xp, w, (4, 4), (1, 1), (1, 1))
        got = depthwise_forward_numba(xp, w, (4, 4), (1, 1), (1, 1))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_conv2d_layer_forward_is_the_same_with_the_jit_on_or_off(monkeypatch, groups):
    """Conv2d picks the Numba loops when the JIT is on; evaluation outputs keep their bits."""
    rng = np.random.default_rng(3)
    layer = nn.Conv2d(4, 8 if groups != 4 else 4, 3, stride=1, padding=1, groups=groups, rng=4)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    monkeypatch.setattr(C, "JIT_ENABLED", True)
    y_fast = layer(x)
    g = rng.standard_normal(y_fast.shape).astype(np.float32)
    gx_fast = layer.backward(g)
    monkeypatch.setattr(C, "JIT_ENABLED", False)
    y_ref = layer(x)
    gx_ref = layer.backward(g)
    assert_same_bits(y_fast, y_ref, f"Conv2d groups={groups} forward")
    assert_same_bits(np.ascontiguousarray(gx_fast), np.ascontiguousarray(gx_ref), f"Conv2d groups={groups} grad_x")

"""refquant.kernels.gemm_int64: the float64-BLAS twins equal the int64 NumPy spec bit for bit, on
random and extreme inputs (sums past 2^31), and both equal independent oracles (Python integers,
the int8 kernels); plus the int64 pieces of the 16x8 output stage (bias, requantization)."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.errors import QuantizationTypeError, ShapeError
from refquant.kernels.bias import add_bias_wrapping
from refquant.kernels.conv import conv2d_reference as conv8_reference
from refquant.kernels.gemm import gemm_reference as gemm8_reference
from refquant.kernels.gemm_int64 import conv2d_int64, conv2d_int64_reference, gemm_int64, gemm_int64_reference
from refquant.kernels.requant import requantize, requantize_reference

I16_EDGES = np.array([-32768, -32767, -1, 0, 1, 32766, 32767], np.int16)
I8_EDGES = np.array([-128, -127, -1, 0, 1, 126, 127], np.int8)


def _python_gemm(a, b):
    """The exact sums with Python integers (an oracle that cannot overflow)."""
    return np.array([[sum(int(a[m, k]) * int(b[k, n]) for k in range(a.shape[1])) for n in range(b.shape[1])]
                     for m in range(a.shape[0])], dtype=np.int64)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (17, 255, 9), (4, 1500, 3)])
def test_gemm_random_fast_equals_reference(shape):
    rng = np.random.default_rng(sum(shape))
    m, k, n = shape
    a = rng.integers(-32768, 32767, (m, k), endpoint=True).astype(np.int16)
    b = rng.integers(-128, 127, (k, n), endpoint=True).astype(np.int8)
    ref = gemm_int64_reference(a, b)
    assert ref.dtype == np.int64 and ref.shape == (m, n)
    np.testing.assert_array_equal(gemm_int64(a, b), ref)


def test_gemm_extremes_past_int32():
    """-32768 x -128 = 2^22 summed 3000 times is 3000 * 2^22 > 2^33: exact in both, by hand."""
    k = 3000
    a = np.full((2, k), -32768, np.int16)
    a[1, ::2] = 32767
    b = np.full((k, 2), -128, np.int8)
    b[:, 1] = 127
    want = np.array([[k * 2 ** 22, -k * 32768 * 127],
                     [(k // 2) * (32767 * -128) + (k // 2) * 2 ** 22, (k // 2) * 32767 * 127 - (k // 2) * 32768 * 127]])
    for f in (gemm_int64_reference, gemm_int64):
        np.testing.assert_array_equal(f(a, b), want)
    assert want.max() > 2 ** 31


def test_gemm_edges_equal_python_integers():
    rng = np.random.default_rng(7)
    a = rng.choice(I16_EDGES, (6, 601))
    b = rng.choice(I8_EDGES, (601, 5))
    want = _python_gemm(a, b)
    np.testing.assert_array_equal(gemm_int64_reference(a, b), want)
    np.testing.assert_array_equal(gemm_int64(a, b), want)


def test_gemm_int8_activations_equal_the_int8_kernel():
    rng = np.random.default_rng(8)
    a = rng.integers(-128, 127, (9, 33), endpoint=True).astype(np.int8)
    b = rng.integers(-128, 127, (33, 4), endpoint=True).astype(np.int8)
    np.testing.assert_array_equal(gemm_int64(a, b), gemm8_reference(a, b).astype(np.int64))


CONV_CASES = [  # (x NHWC shape, w shape, w_layout, groups, strides, dilations, pads)
    ((1, 5, 5, 3), (4, 3, 3, 3), "OHWI", None, 1, 1, "VALID"),
    ((2, 7, 6, 4), (6, 3, 2, 2), "OHWI", 2, (2, 1), (1, 2), "SAME_UPPER"),
    ((1, 9, 8, 5), (5, 2, 3, 5), "OHWI", None, 2, 2, (1, 0, 2, 1)),
    ((2, 6, 7, 3), (1, 3, 3, 6), "1HWO", None, 1, 1, "SAME_UPPER"),  # depth multiplier 2
    ((1, 10, 9, 8), (1, 5, 5, 8), "1HWO", None, 2, 2, "SAME_LOWER"),
    ((1, 3, 3, 1), (2, 1, 1, 1), "OHWI", None, 1, 1, 0),
]


@pytest.mark.parametrize("case, layout", [(c, lay) for c in CONV_CASES for lay in ("NHWC", "NCHW")
                                           if lay == "NHWC" or c[2] == "OHWI"])  # 1HWO is an NHWC layout
def test_conv_fast_equals_reference_and_int8_oracle(case, layout):
    xs, wsh, w_layout, groups, st, dl, pads = case
    rng = np.random.default_rng(len(str(case)))
    x = rng.integers(-32768, 32767, xs, endpoint=True).astype(np.int16)
    w = rng.integers(-128, 127, wsh, endpoint=True).astype(np.int8)
    if layout == "NCHW":
        x, w, w_layout = x.transpose(0, 3, 1, 2).copy(), w.transpose(0, 3, 1, 2).copy(), "OIHW"
    kw = dict(strides=st, dilations=dl, pads=pads, groups=groups, layout=layout, w_layout=w_layout)
    ref = conv2d_int64_reference(x, w, **kw)
    assert ref.dtype == np.int64
    np.testing.assert_array_equal(conv2d_int64(x, w, **kw), ref)
    # oracle: the int8 convolution kernel on int8 activations (same geometry, exact sums)
    x8 = rng.integers(-128, 127, x.shape, endpoint=True).astype(np.int8)
    np.testing.assert_array_equal(conv2d_int64_reference(x8, w, **kw), conv8_reference(x8, w, **kw).astype(np.int64))


def test_conv_extremes_past_int32():
    """A 1x1 convolution over 2000 channels of -32768 x -128 sums to 2000 * 2^22 (> 2^32)."""
    x = np.full((1, 2, 2, 2000), -32768, np.int16)
    w = np.full((3, 1, 1, 2000), -128, np.int8)
    w[1] = 127
    for f in (conv2d_int64_reference, conv2d_int64):
        y = f(x, w, layout="NHWC", w_layout="OHWI")
        np.testing.assert_array_equal(y[0, 0, 0], [2000 * 2 ** 22, -2000 * 32768 * 127, 2000 * 2 ** 22])
    rng = np.random.default_rng(11)
    xe = rng.choice(I16_EDGES, (1, 6, 5, 700))
    we = rng.choice(I8_EDGES, (1, 3, 3, 700))
    kw = dict(pads="SAME_UPPER", layout="NHWC", w_layout="1HWO")
    np.testing.assert_array_equal(conv2d_int64(xe, we, **kw), conv2d_int64_reference(xe, we, **kw))
    xg = np.where(rng.random((1, 6, 5, 700)) < 0.9, 32767, -32768).astype(np.int16)  # mostly one sign
    wg = np.where(rng.random((4, 2, 2, 350)) < 0.9, 127, -128).astype(np.int8)
    kw = dict(strides=2, pads="VALID", layout="NHWC", w_layout="OHWI", groups=2)
    ref = conv2d_int64_reference(xg, wg, **kw)
    np.testing.assert_array_equal(conv2d_int64(xg, wg, **kw), ref)
    assert np.abs(ref).max() > 2 ** 31


@pytest.mark.parametrize("call, err, match", [
    (lambda: gemm_int64(np.zeros((2, 3), np.int32), np.zeros((3, 2), np.int8)), QuantizationTypeError,
     "a must have dtype int16 or int8, got int32"),
    (lambda: gemm_int64(np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int16)), QuantizationTypeError,
     "b must have dtype int8, got int16"),
    (lambda: gemm_int64_reference(np.zeros((2, 3), np.int16), np.zeros((4, 2), np.int8)), ShapeError, "share K"),
    (lambda: conv2d_int64(np.zeros((1, 3, 3, 2), np.int16), np.zeros((2, 1, 1, 2), np.uint8), layout="NHWC"),
     QuantizationTypeError, "w must have dtype int8"),
    (lambda: conv2d_int64(np.zeros((1, 3, 3, 3), np.int16), np.zeros((2, 1, 1, 2), np.int8), layout="NHWC"),
     ShapeError, "not 1 groups"),
    (lambda: conv2d_int64(np.zeros((1, 2, 2, 1), np.int16), np.zeros((1, 3, 3, 1), np.int8), layout="NHWC"),
     ShapeError, "larger than the padded input"),
])
def test_errors_name_the_argument(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_add_bias_wrapping_in_the_accumulator_width():
    acc = np.array([[2 ** 63 - 1, 5], [2 ** 31 - 1, -(2 ** 31)]], np.int64)
    np.testing.assert_array_equal(add_bias_wrapping(acc, np.array([1, -7]), bits=64),
                                  [[-(2 ** 63), -2], [2 ** 31, -(2 ** 31) - 7]])
    np.testing.assert_array_equal(add_bias_wrapping(acc[1:], np.array([1, -1], np.int32), bits=32),
                                  [[-(2 ** 31), 2 ** 31 - 1]])
    with pytest.raises(ValueError, match="acc must hold int32 values"):
        add_bias_wrapping(acc, np.zeros(2, np.int32), bits=32)


def test_requantize_takes_int64_accumulators_in_the_16x8_modes():
    """fixed_int64_reduced16 wraps its int64 products (as LiteRT does, measured); float64_rhaz rounds
    double(acc): the NumPy spec and the Numba kernel agree over the whole int64 range."""
    rng = np.random.default_rng(12)
    acc = np.concatenate([rng.integers(-(2 ** 63), 2 ** 63 - 1, 996, dtype=np.int64),
                          [-(2 ** 63), 2 ** 63 - 1, 2 ** 47, -(2 ** 47) - 1]]).reshape(-1, 4)
    q = np.array([2 ** 30, 2 ** 31 - 1, 0x7FFF0000, 1234567890], np.int32)
    s = np.array([-31, -1, 7, -10], np.int32)
    for mode, m, sh in (("fixed_int64_reduced16", q, s), ("float64_rhaz", np.array([0.1, 1e-9, 3.0, 1e-15]), None)):
        np.testing.assert_array_equal(requantize(acc, m, 0, -32768, 32767, mode=mode, shift=sh),
                                      requantize_reference(acc, m, 0, -32768, 32767, mode=mode, shift=sh))
    # by hand: 2^62 * 0x4000 wraps to 0 in int64, + 2^45 >> 46 = 0 (the C result), not the exact 2^30
    assert requantize_reference(np.array([2 ** 62]), 2 ** 30, 0, -(2 ** 31), 2 ** 31 - 1,
                                mode="fixed_int64_reduced16", shift=-31, dtype="int32")[0] == 0

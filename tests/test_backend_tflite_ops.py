"""refquant.backends.tflite op-level faces without LiteRT: hand-worked values, shapes, bad input.

The bit-exact comparison with the real interpreter is ``test_conformance_tflite_ops.py``; every
value below was measured there (LiteRT 2.3.0, x86-64 AVX2) and is small enough to check by
hand. Bad input must raise a ``refquant.errors`` exception *before any kernel runs*: the
``no_kernels`` fixture replaces the kernels with a function that fails the test if called.
"""

from __future__ import annotations

import numpy as np
import pytest

import refquant.ops.layers as ops
from refquant.backends import tflite
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.kernels import elementwise as ew
from refquant.kernels import lut as klut
from refquant.kernels import pool as kpool
from refquant.kernels import softmax as ksoftmax
from refquant.kernels.lut import logistic_lut_double_rne as xnnpack_logistic_lut
from refquant.kernels.multiplier import activation_range_rne as xnnpack_activation_range
from refquant.kernels.multiplier import quantize_bound_rne as xnnpack_quantize_bound

pytestmark = pytest.mark.kernels

KERNELS = tflite.KERNELS
I8 = np.int8


# --------------------------------------------------------------------------- hand-worked values


def test_requantization_rounding_per_kernel():
    # M = 0.5 * 0.5 / 1 = 0.25 and acc = x (w = 1): acc/4 for acc = 1, 5, -2, -6, -10, 10, 2.
    # reference FC: float64, ties away (0.25 -> 0, 1.25 -> 1, -0.5 -> -1, -1.5 -> -2, -2.5 -> -3, 2.5 -> 3)
    # reference CONV: SRDHM (half up) then RDBPOT (half away): 1 -> 0.5 -> 1
    # optimized: SRDHM then a half-up shift (-0.5 -> 0); xnnpack: float32, ties to even (2.5 -> 2, 0.5 -> 0)
    x = np.array([[1], [5], [-2], [-6], [-10], [10], [2]], I8)
    w = np.ones((1, 1), I8)
    want_fc = {"reference": [0, 1, -1, -2, -3, 3, 1], "optimized": [1, 2, 0, -1, -2, 3, 1],
               "xnnpack": [0, 1, 0, -2, -2, 2, 0]}
    want_conv = {"reference": [1, 2, -1, -2, -3, 3, 1], "optimized": [1, 2, 0, -1, -2, 3, 1],
                 "xnnpack": [0, 1, 0, -2, -2, 2, 0]}
    for kernel in KERNELS:
        np.testing.assert_array_equal(tflite.fully_connected(x, 0.5, 0, w, 0.5, None, 1.0, 0, kernel=kernel).ravel(),
                                      want_fc[kernel], err_msg=kernel)
        got = tflite.conv2d(x.reshape(1, 7, 1, 1), 0.5, 0, w.reshape(1, 1, 1, 1), 0.5, None, 1.0, 0, kernel=kernel)
        np.testing.assert_array_equal(got.ravel(), want_conv[kernel], err_msg=kernel)


def test_depthwise_optimized_rounds_the_last_channels_like_the_reference():
    # acc = -2, M = 0.25: -0.5 rounds to -1 (reference), to 0 in the 8-channel vector blocks.
    x, w = np.full((1, 1, 1, 9), -2, I8), np.ones((1, 1, 1, 9), I8)
    want = {"reference": [-1] * 9, "optimized": [0] * 8 + [-1], "xnnpack": [0] * 9}
    for kernel in KERNELS:
        got = tflite.depthwise_conv2d(x, 0.5, 0, w, 0.5, None, 1.0, 0, kernel=kernel)
        np.testing.assert_array_equal(got.ravel(), want[kernel], err_msg=kernel)


def test_xnnpack_activation_bounds_tie():
    # 100 * 100 * 1 / 4 = 2500 -> clamped by RELU6: 6 / 4 = 1.5; TFLite 1 + RHAZ(1.5) = 3,
    # XNNPACK RNE(1.5 + 1) = 2.
    x, w = np.array([[[[100]]]], I8), np.array([[[[100]]]], I8)
    for kernel, want in (("reference", 3), ("optimized", 3), ("xnnpack", 2)):
        assert tflite.conv2d(x, 1.0, 0, w, 1.0, None, 4.0, 1, activation="RELU6", kernel=kernel).item() == want
    assert xnnpack_activation_range("RELU6", 4.0, 1, -128, 127) == (1, 2)
    assert xnnpack_activation_range(None, 0.1, 5, 0, 255) == (0, 255)
    assert xnnpack_activation_range("RELU_N1_TO_1", 2.0, 0, -128, 127) == (0, 0)  # RNE(-0.5), RNE(0.5)
    assert xnnpack_quantize_bound(-np.inf, 1e-3, 3, -128, 127) == -128
    assert xnnpack_quantize_bound(6.0, 1e-38, 3, -128, 127) == 127  # 6/s overflows to inf: clamped


def test_logistic_tables():
    xl = np.array([241, 186, 0, 255], np.uint8)  # d = S_x (241 - 186) = 0.1016...; 256 sigma(d) = 134.49999...
    for kernel, want in (("reference", [135, 128, 106, 136]), ("optimized", [135, 128, 106, 136]),
                         ("xnnpack", [134, 128, 106, 136])):
        np.testing.assert_array_equal(tflite.logistic(xl, 0.0018481786, 186, kernel=kernel), want, err_msg=kernel)
    t = xnnpack_logistic_lut(1.0, 0)  # byte-indexed: code 0 -> 0.5, 127 -> d > 100 -> 1, -128 -> 0
    assert (t[0], t[127], t[128]) == (0, 127, -128)
    np.testing.assert_array_equal(xnnpack_logistic_lut(0.05, 3), klut.logistic_lut(0.05, 3))  # usually equal


def test_pooling_and_softmax_values():
    windows = np.array([[1, 2, 3, 5], [-1, -2, -3, -5], [1, 2, 1, 2], [-1, -2, -1, -2]], I8)  # 2x2 each
    x = windows.T.reshape(1, 2, 2, 4)
    for kernel in KERNELS:  # RHAZ of 11/4, -11/4, 6/4, -6/4
        np.testing.assert_array_equal(tflite.average_pool2d(x, 0.1, 0, filter_size=2, kernel=kernel).ravel(),
                                      [3, -3, 2, -2])
        np.testing.assert_array_equal(tflite.max_pool2d(x, 0.1, 0, filter_size=2, kernel=kernel).ravel(),
                                      [5, -1, 2, -1])
        got = tflite.softmax(np.array([[0, 0], [10, 0], [127, -128]], I8), 0.1, 0, kernel=kernel)
        np.testing.assert_array_equal(got, [[0, 0], [59, -59], [127, -128]])


def test_add_kernels():
    a, b = np.array([10, -20, 127], I8), np.array([3, 3, 3], I8)
    ref = tflite.add(a, 0.1, 0, b, 0.2, 1, 0.15, -2)
    p = ew.fixed_point_add_params(0.1, 0.2, 0.15)
    np.testing.assert_array_equal(ref, ew.fixed_point_add(a, I8(0), b, I8(1), I8(-2), p))
    np.testing.assert_array_equal(ref, [7, -13, 85])  # (0.1 a + 0.2 (3 - 1)) / 0.15 - 2 = 7.3, -12.7, 85.3
    np.testing.assert_array_equal(tflite.add(a, 0.1, 0, b, 0.2, 1, 0.15, -2, kernel="xnnpack"), [7, -13, 85])
    a16 = np.array([1000, -3000], np.int16)
    for kernel in KERNELS:  # int16: the reference formula everywhere
        np.testing.assert_array_equal(tflite.add(a16, 1e-3, 0, a16, 2e-3, 0, 4e-3, 0, kernel=kernel), [750, -2250])


# --------------------------------------------------------------------------- shapes and conventions


def test_output_shapes_and_dtypes():
    w = np.ones((4, 5), I8)
    for shape, out in (((5,), (1, 4)), ((3, 5), (3, 4)), ((2, 3, 5), (6, 4))):
        y = tflite.fully_connected(np.zeros(shape, I8), 0.1, 0, w, 0.01, None, 0.1, 0)
        assert y.shape == out and y.dtype == I8
    x = np.zeros((2, 5, 5, 3), I8)
    assert tflite.conv2d(x, 0.1, 0, np.ones((4, 7, 7, 3), I8), 0.01, None, 0.1, 0, padding="SAME").shape == (2, 5, 5, 4)
    assert tflite.conv2d(x, 0.1, 0, np.ones((6, 3, 3, 1), I8), 0.01, None, 0.1, 0, stride=2).shape == (2, 2, 2, 6)
    y = tflite.depthwise_conv2d(x, 0.1, 0, np.ones((1, 3, 3, 6), I8), 0.01, None, 0.1, 0, depth_multiplier=2,
                                dilation=2)
    assert y.shape == (2, 1, 1, 6)
    u8 = np.zeros((1, 5, 5, 3), np.uint8)
    assert tflite.max_pool2d(u8, 0.1, 0, filter_size=(2, 3), stride=1, padding="SAME").dtype == np.uint8
    assert tflite.add(np.zeros((2, 1), np.uint8), 0.1, 0, np.zeros(3, np.uint8), 0.1, 0, 0.2, 0).shape == (2, 3)


def test_scale_and_bias_conventions():
    rng = np.random.default_rng(7)
    x, w = rng.integers(-128, 128, (4, 9)).astype(I8), rng.integers(-127, 128, (3, 9)).astype(I8)
    b = np.array([100, -200, 300], np.int32)
    base = tflite.fully_connected(x, 0.05, 3, w, 0.02, b, 0.1, -5)
    for ws in (np.float32(0.02), np.array([0.02], np.float32), [0.02]):  # a one-element scale is per-tensor
        np.testing.assert_array_equal(tflite.fully_connected(x, 0.05, 3, w, ws, b, 0.1, -5), base)
    zero = tflite.fully_connected(x, 0.05, 3, w, 0.02, np.zeros(3, np.int32), 0.1, -5)
    np.testing.assert_array_equal(tflite.fully_connected(x, 0.05, 3, w, 0.02, None, 0.1, -5), zero)


# --------------------------------------------------------------------------- bad input, before any kernel


@pytest.fixture
def no_kernels(monkeypatch):
    def ran(*_a, **_k):
        raise AssertionError("a kernel ran before the input was validated")

    for mod, names in ((ops, ("gemm", "conv_accumulate", "add_bias", "requantize")),
                       (ew, ("fixed_point_add", "rescale_add")), (kpool, ("average_pool2d", "max_pool2d")),
                       (ksoftmax, ("softmax_fixed_point", "softmax_lut")), (klut, ("apply_lut",))):
        for name in names:
            monkeypatch.setattr(mod, name, ran)


X2, W2, B2 = np.zeros((2, 4), I8), np.zeros((3, 4), I8), np.zeros(3, np.int32)
FC = (X2, 0.1, 0, W2, 0.01, B2, 0.1, 0)


def _fc(**over):
    names = ("x", "x_scale", "x_zero_point", "w", "w_scale", "b", "y_scale", "y_zero_point")
    args = dict(zip(names, FC))
    kw = {k: over.pop(k) for k in ("activation", "kernel") if k in over}
    args.update(over)
    return tflite.fully_connected(*args.values(), **kw)


@pytest.mark.parametrize("over, err, match", [
    (dict(x=X2.astype(np.float32)), QuantizationTypeError, "x must have dtype int8"),
    (dict(x=X2.astype(np.uint8)), UnsupportedError, "uint8"),
    (dict(x=X2.astype(np.int16), w=W2.astype(np.int16)), UnsupportedError, "16x16"),  # int16 x alone is 16x8
    (dict(x=X2.astype(np.int16), x_zero_point=3), QuantizationValueError,
     "x_zero_point must be 0 for int16 activations"),
    (dict(x=X2.astype(np.int16), b=B2.astype(np.float32)), QuantizationTypeError, "b must be an int64 or int32 array"),
    (dict(w=W2.astype(np.uint8)), QuantizationTypeError, "w must have dtype int8"),
    (dict(w=W2[None]), ShapeError, "w must have rank 2"),
    (dict(x=np.zeros((2, 5), I8)), ShapeError, "K = w.shape"),
    (dict(x_zero_point=300), QuantizationValueError, r"x_zero_point must be in \[-128, 127\]"),
    (dict(y_zero_point=-129), QuantizationValueError, "y_zero_point"),
    (dict(x_zero_point=1.5), QuantizationTypeError, "x_zero_point must be an integer"),
    (dict(x_zero_point=np.array([0, 1])), ShapeError, "x_zero_point must be a scalar"),
    (dict(x_scale=0.0), QuantizationValueError, "x_scale must be finite and > 0"),
    (dict(y_scale=np.nan), QuantizationValueError, "y_scale"),
    (dict(x_scale=[0.1, 0.2]), ShapeError, "x_scale must be a scalar"),
    (dict(w_scale=np.ones(4, np.float32)), ShapeError, r"one scale per output channel \(3\), got 4"),
    (dict(w_scale=np.ones((3, 1), np.float32)), ShapeError, "w_scale must be a scalar or 1-D"),
    (dict(w_scale=[0.1, 0.0, 0.1]), QuantizationValueError, "w_scale"),
    (dict(b=B2.astype(np.int64)), QuantizationTypeError, "b must be an int32 array"),
    (dict(b=np.zeros(4, np.int32)), ShapeError, r"b must have shape \(3,\)"),
    (dict(activation="TANH"), QuantizationValueError, "activation must be one of"),
    (dict(kernel="gpu"), QuantizationValueError, "kernel must be one of"),
    (dict(y_scale=1 / 300, x_scale=1.0, w_scale=1.0, kernel="xnnpack"), UnsupportedError, "256"),
])
def test_fully_connected_bad_input(no_kernels, over, err, match):
    with pytest.raises(err, match=match):
        _fc(**over)


XC, WC = np.zeros((1, 5, 5, 4), I8), np.zeros((6, 3, 3, 2), I8)


@pytest.mark.parametrize("args, kw, err, match", [
    ((XC[0], WC), {}, ShapeError, "x must have rank 4"),
    ((XC, WC[0]), {}, ShapeError, "w must have rank 4"),
    ((np.zeros((1, 5, 5, 5), I8), WC), {}, ShapeError, "multiple of w.shape"),
    ((XC, np.zeros((5, 3, 3, 2), I8)), {}, ShapeError, "divisible by groups = 2"),
    ((XC, WC), dict(stride=0), QuantizationValueError, "stride must be >= 1"),
    ((XC, WC), dict(stride=(1, 2, 3)), QuantizationTypeError, "stride must be an int or an"),
    ((XC, WC), dict(stride=1.5), QuantizationTypeError, "stride"),
    ((XC, WC), dict(dilation=(1, 0)), QuantizationValueError, "dilation must be >= 1"),
    ((XC, WC), dict(padding="same"), QuantizationValueError, r"padding must be one of \('SAME', 'VALID'\)"),
    ((XC, WC), dict(padding=1), QuantizationTypeError, "padding"),
    ((XC, np.zeros((6, 7, 3, 2), I8)), {}, ShapeError, "larger than the input height"),
    ((XC, WC), dict(dilation=3), ShapeError, "dilated kernel height 7"),
    ((XC.astype(np.uint8), WC), {}, UnsupportedError, "uint8"),
])
def test_conv2d_bad_input(no_kernels, args, kw, err, match):
    x, w = args
    with pytest.raises(err, match=match):
        tflite.conv2d(x, 0.1, 0, w, 0.01, None, 0.1, 0, **kw)


@pytest.mark.parametrize("w, kw, err, match", [
    (np.zeros((2, 3, 3, 4), I8), {}, ShapeError, r"shape \(1, kH, kW, O\)"),
    (np.zeros((1, 3, 3, 6), I8), {}, ShapeError, "C \\* depth_multiplier = 4 \\* 1"),
    (np.zeros((1, 3, 3, 4), I8), dict(depth_multiplier=0), QuantizationValueError, "depth_multiplier"),
    (np.zeros((1, 3, 3, 4), I8), dict(depth_multiplier=1.5), QuantizationTypeError, "depth_multiplier"),
    (np.zeros((1, 6, 3, 4), I8), {}, ShapeError, "larger than the input"),
    (np.zeros((1, 3, 3, 4), I8), dict(w_scale=np.ones(3, np.float32)), ShapeError, r"\(4\), got 3"),
])
def test_depthwise_bad_input(no_kernels, w, kw, err, match):
    kw = dict(kw)
    ws = kw.pop("w_scale", 0.01)
    with pytest.raises(err, match=match):
        tflite.depthwise_conv2d(XC, 0.1, 0, w, ws, None, 0.1, 0, **kw)


A8 = np.zeros((2, 3), I8)


@pytest.mark.parametrize("args, kw, err, match", [
    ((A8, A8.astype(np.uint8)), {}, QuantizationTypeError, "same dtype"),
    ((A8, np.zeros((2, 4), I8)), {}, ShapeError, "broadcast"),
    ((A8.astype(np.float32), A8), {}, QuantizationTypeError, "a must have dtype"),
    ((A8.astype(np.int16), A8.astype(np.int16)), dict(zps=(1, 0, 0)), QuantizationValueError,
     "a_zero_point must be 0 for int16"),
    ((A8.astype(np.uint8), A8.astype(np.uint8)), dict(zps=(0, -1, 0)), QuantizationValueError,
     r"b_zero_point must be in \[0, 255\]"),
    ((A8.astype(np.uint8), A8.astype(np.uint8)), dict(kernel="optimized"), UnsupportedError, "optimized"),
    ((A8.astype(np.uint8), A8.astype(np.uint8)), dict(kernel="xnnpack", scales=(1.0, 2.0 ** -12, 0.5)),
     UnsupportedError, "declines"),
    ((A8, A8), dict(scales=(1.0, 1.0, 1e-7)), QuantizationValueError, "real_multiplier"),
])
def test_add_bad_input(no_kernels, args, kw, err, match):
    kw = dict(kw)
    (sa, sb, sy), (za, zb, zy) = kw.pop("scales", (0.1, 0.1, 0.2)), kw.pop("zps", (0, 0, 0))
    with pytest.raises(err, match=match):
        tflite.add(args[0], sa, za, args[1], sb, zb, sy, zy, **kw)


XP = np.zeros((1, 4, 4, 2), I8)


@pytest.mark.parametrize("fn", [tflite.average_pool2d, tflite.max_pool2d])
@pytest.mark.parametrize("x, kw, err, match", [
    (XP[0], {}, ShapeError, "x must have rank 4"),
    (XP.astype(np.float32), {}, QuantizationTypeError, "x must have dtype"),
    (XP.astype(np.int32), {}, QuantizationTypeError, "x must have dtype"),
    (XP, dict(filter_size=0), QuantizationValueError, "filter_size must be >= 1"),
    (XP, dict(filter_size=5), ShapeError, "empty output"),
    (XP, dict(stride=(0, 1)), QuantizationValueError, "stride must be >= 1"),
    (XP, dict(padding="FULL"), QuantizationValueError, "padding"),
    (XP.astype(np.uint8), dict(zp=256), QuantizationValueError, r"x_zero_point must be in \[0, 255\]"),
    (XP, dict(kernel="ref"), QuantizationValueError, "kernel must be one of"),
])
def test_pool_bad_input(no_kernels, fn, x, kw, err, match):
    kw = dict(kw)  # parametrize shares the dict between both functions
    zp = kw.pop("zp", 0)
    kw.setdefault("filter_size", 2)
    with pytest.raises(err, match=match):
        fn(x, 0.1, zp, **kw)


@pytest.mark.parametrize("x, kw, err, match", [
    (np.int8(3), {}, ShapeError, "rank >= 1"),
    (np.zeros(4, np.int16), dict(zp=3), QuantizationValueError, "x_zero_point"),  # 16x8: zero point 0
    (np.zeros(4, np.float32), {}, QuantizationTypeError, "x must have dtype"),
    (np.zeros(4, I8), dict(beta=0.0), QuantizationValueError, "beta must be finite and > 0"),
    (np.zeros(4, I8), dict(beta=-1.0), QuantizationValueError, "beta"),
    (np.zeros(4, I8), dict(beta=np.inf), QuantizationValueError, "beta"),
    (np.zeros(4, I8), dict(beta="1"), QuantizationTypeError, "beta must be a real number"),
    (np.zeros(4, I8), dict(beta=1e-9), QuantizationValueError, "> 1"),  # reference Prepare CHECK
    (np.zeros(4, I8), dict(zp=128), QuantizationValueError, "x_zero_point"),
])
def test_softmax_bad_input(no_kernels, x, kw, err, match):
    kw = dict(kw)
    zp = kw.pop("zp", 0)
    with pytest.raises(err, match=match):
        tflite.softmax(x, 0.1, zp, **kw)


@pytest.mark.parametrize("x, zp, err, match", [
    (np.zeros(4, np.int16), 2, QuantizationValueError, "x_zero_point"),  # 16x8: zero point 0
    (np.zeros(4, np.float64), 0, QuantizationTypeError, "x must have dtype"),
    (np.zeros(4, np.uint8), -1, QuantizationValueError, r"x_zero_point must be in \[0, 255\]"),
])
def test_logistic_bad_input(no_kernels, x, zp, err, match):
    with pytest.raises(err, match=match):
        tflite.logistic(x, 0.1, zp, kernel="xnnpack")

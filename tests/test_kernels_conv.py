"""refquant.kernels.conv: reference vs fast (bit for bit), a direct-loop oracle, layouts,
padding modes, the overflow rule, bad input, and the pairwise K order against ONNX Runtime
ConvInteger / QLinearConv on this CPU."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from refquant.errors import AccumulatorOverflowError, AccumulatorOverflowWarning, QuantizationTypeError
from refquant.errors import QuantizationValueError, ShapeError
from refquant.kernels.conv import conv2d, conv2d_reference
from refquant.profiles import get_profile
from refquant.kernels._conv_args import same_pads

PAIR_MODEL = {(np.uint8, np.int8): "pairwise_sat16_u8s8", (np.int8, np.uint8): "pairwise_sat16_s8u8"}


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _oracle(x, w, xz, wz, strides, dilations, pads, groups):
    """Independent oracle: eq. (1) as seven plain Python loops (tiny shapes only)."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    OH, OW = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1, (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    wz = np.broadcast_to(np.asarray(wz, np.int64), (O,))
    out = np.zeros((N, O, OH, OW), np.int64)
    for n, o, oh, ow in itertools.product(range(N), range(O), range(OH), range(OW)):
        g = o // (O // groups)
        s = 0
        for c, i, j in itertools.product(range(Cg), range(kh), range(kw)):
            ih, iw = oh * sh - pt + i * dh, ow * sw - pl + j * dw
            xv = int(x[n, g * Cg + c, ih, iw]) if 0 <= ih < H and 0 <= iw < W else int(xz)
            s += (xv - int(xz)) * (int(w[o, c, i, j]) - int(wz[o]))
        out[n, o, oh, ow] = s
    return out.astype(np.int32)


def _assert_same(got, want, what=""):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if not np.array_equal(got, want):
        idx = np.argwhere(got != want)[:5]
        rows = "; ".join(f"{tuple(i)}: got {got[tuple(i)]} want {want[tuple(i)]}" for i in idx)
        pytest.fail(f"{what}: {int((got != want).sum())} of {got.size} differ; first: {rows}")


# (C, O, H, W, kernel, strides, dilations, pads, groups)
CASES = {
    "3x3": (4, 6, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    "odd_C_pairs_straddle": (5, 4, 6, 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    "stride2_dil2_asym_pads": (4, 4, 9, 8, (3, 2), (2, 1), (2, 2), (1, 0, 2, 1), 2),
    "1x1": (5, 3, 4, 4, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),
    "7x7_stride2": (2, 3, 9, 8, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3), 1),
    "groups": (6, 4, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 2),
    "depthwise": (3, 3, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 3),
    "depthwise_mult2_stride2_dil2": (3, 6, 9, 9, (3, 3), (2, 2), (2, 2), (0, 2, 1, 3), 3),
    "depthwise_stride3_big_pads": (2, 2, 5, 5, (2, 3), (3, 3), (1, 1), (4, 0, 0, 5), 2),
}


@pytest.mark.kernels
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("tx,tw", [(np.uint8, np.int8), (np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)],
                         ids=["u8s8", "s8u8", "s8s8", "u8u8"])
def test_reference_fast_and_oracle_agree(name, tx, tw):
    C, O, H, W, k, st, dl, pd, G = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)) + 7 * (tx == np.uint8) + (tw == np.uint8))
    x, w = _rand(rng, tx, (2, C, H, W)), _rand(rng, tw, (O, C // G) + k)
    xz, wz = _rand(rng, tx, ()), _rand(rng, tw, (O,))
    kw = dict(strides=st, dilations=dl, pads=pd, groups=G)
    want = _oracle(x, w, xz, wz, st, dl, pd, G)
    _assert_same(conv2d_reference(x, w, xz, wz, **kw), want, f"reference {name}")
    _assert_same(conv2d(x, w, xz, wz, **kw), want, f"fast {name}")
    _assert_same(conv2d(x, w, xz, wz, acc_model="wrap", **kw), want, f"wrap {name}")
    _assert_same(conv2d(x, w, int(xz), int(wz[0]), **kw), _oracle(x, w, xz, wz[0], st, dl, pd, G), "per-tensor wz")
    model = PAIR_MODEL.get((tx, tw))
    if model:
        for order in ("chw", "hwc"):
            _assert_same(conv2d(x, w, xz, wz, acc_model=model, k_order=order, **kw),
                         conv2d_reference(x, w, xz, wz, acc_model=model, k_order=order, **kw), f"{model} {order}")


@pytest.mark.kernels
def test_extreme_values():
    """All taps at the extremes: (0 - 255)(-128 - 127) per term, with and without padding."""
    x = np.zeros((1, 8, 5, 5), np.uint8)
    w = np.full((4, 8, 3, 3), -128, np.int8)
    for fn in (conv2d, conv2d_reference):
        out = fn(x, w, 255, 127, pads=1)
        assert out[0, 0, 2, 2] == 72 * (0 - 255) * (-128 - 127)   # interior: all 72 taps
        assert out[0, 0, 0, 0] == 32 * (0 - 255) * (-128 - 127)   # corner: 2x2 taps inside, rest pads
    _assert_same(conv2d(x, w, 255, 127, pads=1), _oracle(x, w, 255, 127, (1, 1), (1, 1), (1, 1, 1, 1), 1), "oracle")


@pytest.mark.kernels
def test_layouts_nhwc_ohwi_and_1hwo():
    rng = np.random.default_rng(5)
    x, w = _rand(rng, np.int8, (2, 4, 7, 6)), _rand(rng, np.int8, (6, 2, 3, 3))
    nchw = conv2d(x, w, 3, 0, strides=2, pads=(1, 2), groups=2)
    x_nhwc, w_ohwi = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    for fn in (conv2d, conv2d_reference):
        _assert_same(fn(x_nhwc, w_ohwi, 3, 0, strides=2, pads=(1, 2), groups=2, layout="NHWC"),
                     nchw.transpose(0, 2, 3, 1), "NHWC/OHWI")
    # TFLite depthwise: w (1, kH, kW, C·mult), output channel o reads input channel o // mult.
    wd = _rand(rng, np.int8, (8, 1, 3, 3))                        # C = 4, multiplier 2
    dw_nchw = conv2d(x, wd, 3, 0, pads="SAME", groups=4)
    w_1hwo = np.ascontiguousarray(wd.transpose(1, 2, 3, 0))
    for fn in (conv2d, conv2d_reference):
        _assert_same(fn(x_nhwc, w_1hwo, 3, 0, pads="SAME", layout="NHWC", w_layout="1HWO"),
                     dw_nchw.transpose(0, 2, 3, 1), "1HWO")


@pytest.mark.kernels
def test_padding_modes():
    assert same_pads(7, 3, 2, 1, "SAME_UPPER") == (1, 1)
    assert same_pads(6, 3, 2, 1, "SAME_UPPER") == (0, 1)         # TFLite SAME: extra pixel at the end
    assert same_pads(6, 3, 2, 1, "SAME_LOWER") == (1, 0)
    rng = np.random.default_rng(6)
    x, w = _rand(rng, np.uint8, (1, 2, 6, 7)), _rand(rng, np.int8, (3, 2, 3, 3))
    _assert_same(conv2d(x, w, 9, pads="SAME_UPPER", strides=2), conv2d(x, w, 9, pads=(0, 1, 1, 1), strides=2), "SAME")
    _assert_same(conv2d(x, w, 9, pads="VALID"), conv2d(x, w, 9, pads=0), "VALID")
    assert conv2d(x, w, 9, pads="SAME").shape == (1, 3, 6, 7)


@pytest.mark.kernels
def test_overflow_rule():
    """K = C·kH·kW = 36864 taps of (0 - 255)(-128 - 127) leave int32."""
    x = np.zeros((1, 4096, 3, 3), np.uint8)
    w = np.full((1, 4096, 3, 3), -128, np.int8)
    wrapped = np.array(36864 * 255 * 255, np.int64).astype(np.int32)
    for fn in (conv2d, conv2d_reference):
        with pytest.warns(AccumulatorOverflowWarning):
            assert fn(x, w, 255, 127)[0, 0, 0, 0] == wrapped
        with pytest.raises(AccumulatorOverflowError):
            fn(x, w, 255, 127, on_overflow="raise")
        assert fn(x, w, 255, 127, acc_model="wrap")[0, 0, 0, 0] == wrapped


@pytest.mark.kernels
@pytest.mark.parametrize("fn", [conv2d, conv2d_reference])
def test_bad_input(fn):
    x, w = np.zeros((1, 4, 5, 5), np.uint8), np.zeros((6, 2, 3, 3), np.int8)
    ok = dict(groups=2)
    with pytest.raises(QuantizationTypeError, match="x must have dtype int8 or uint8, got float32"):
        fn(x.astype(np.float32), w, **ok)
    with pytest.raises(ShapeError, match="x must be 4-D"):
        fn(x[0], w, **ok)
    with pytest.raises(ShapeError, match="C = 4 must be divisible by groups = 3"):
        fn(x, np.zeros((6, 1, 3, 3), np.int8), groups=3)
    with pytest.raises(ShapeError, match="2 input channels per group, got 4"):
        fn(x, np.zeros((6, 4, 3, 3), np.int8), **ok)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        fn(x, np.zeros((6, 2, 7, 3), np.int8), **ok)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        fn(x, w, dilations=3, **ok)
    with pytest.raises(QuantizationValueError, match="strides must be >= 1"):
        fn(x, w, strides=0, **ok)
    with pytest.raises(QuantizationValueError, match="dilations must be an int or a pair"):
        fn(x, w, dilations=(1, 1, 1), **ok)
    with pytest.raises(QuantizationTypeError, match="strides must contain ints"):
        fn(x, w, strides=(1.5, 1), **ok)
    with pytest.raises(QuantizationValueError, match="pads must be >= 0"):
        fn(x, w, pads=(0, -1, 0, 0), **ok)
    with pytest.raises(QuantizationValueError, match="pads must have 1, 2"):
        fn(x, w, pads=(1, 1, 1), **ok)
    with pytest.raises(QuantizationValueError, match="pads must be one of"):
        fn(x, w, pads="FULL", **ok)
    with pytest.raises(QuantizationValueError, match="groups must be >= 1"):
        fn(x, w, groups=0)
    with pytest.raises(QuantizationValueError, match="x_zero_point must be in \\[0, 255\\]"):
        fn(x, w, 256, **ok)
    with pytest.raises(ShapeError, match="x_zero_point must be a scalar"):
        fn(x, w, np.zeros(4, np.uint8), **ok)
    with pytest.raises(ShapeError, match="w_zero_point must have 6 elements"):
        fn(x, w, 0, np.zeros(5, np.int8), **ok)
    with pytest.raises(QuantizationTypeError, match="w_zero_point must be a Python int or have the dtype"):
        fn(x, w, 0, np.zeros(6, np.int32), **ok)
    with pytest.raises(QuantizationTypeError, match="needs x int8 and w uint8"):
        fn(x, w, acc_model="pairwise_sat16_s8u8", **ok)
    with pytest.raises(QuantizationValueError, match="k_order must be"):
        fn(x, w, acc_model="pairwise_sat16_u8s8", k_order="cwh", **ok)
    with pytest.raises(QuantizationValueError, match="layout must be"):
        fn(x, w, layout="NCWH", **ok)
    with pytest.raises(QuantizationValueError, match="w_layout must be one of"):
        fn(x, w, w_layout="1HWO", **ok)


# ------------------------------------------------------------------ ONNX Runtime on this CPU

# the ort_runner fixture is in conftest.py; the accumulation model is the one the onnxruntime profile
# resolves for this CPU (pairs saturate on AVX2 without VNNI, exact with VNNI)
ORT_HOST = get_profile("onnxruntime").with_isa("auto")

ORT_CASES = ["3x3", "odd_C_pairs_straddle", "stride2_dil2_asym_pads", "1x1", "7x7_stride2", "groups",
             "depthwise", "depthwise_mult2_stride2_dil2"]


def _ort_inputs(name, tx, tw, seed):
    C, O, H, W, k, st, dl, pd, G = CASES[name]
    rng = np.random.default_rng(seed)
    x, w = _rand(rng, tx, (1, C, H, W)), _rand(rng, tw, (O, C // G) + k)
    attrs = dict(kernel_shape=k, strides=st, dilations=dl, pads=pd, group=G)
    return x, w, attrs, dict(strides=st, dilations=dl, pads=pd, groups=G)


@pytest.mark.conformance
@pytest.mark.parametrize("name", ORT_CASES)
def test_conv_integer_matches(ort_runner, name):
    """ConvInteger: u8 x / s8 w exact; s8 x / u8 w pairs in (c, kH, kW) order (W · im2col(x)) on AVX2."""
    x, w, attrs, kw = _ort_inputs(name, np.uint8, np.int8, 1)
    xz, wz = np.uint8(131), np.int8(-5)
    _assert_same(ort_runner.run_conv_integer(x, w, xz, wz, **attrs), conv2d(x, w, xz, wz, **kw), f"u8s8 {name}")
    x, w, attrs, kw = _ort_inputs(name, np.int8, np.uint8, 2)
    xz, wz = np.int8(-7), np.uint8(140)
    got = ort_runner.run_conv_integer(x, w, xz, wz, **attrs)
    model = ORT_HOST.accumulation("integer_conv", np.int8, np.uint8)
    _assert_same(got, conv2d(x, w, xz, wz, acc_model=model, k_order="chw", **kw), f"s8u8 {name} {model}")


def _qlinear_acc(ort_runner, x, w, wz, attrs, K):
    """QLinearConv with scales 1 · 2^-s / 1: y = clip(rint(acc · 2^-s) + 128), exact in float32."""
    s = int(np.ceil(np.log2(np.sqrt(K) * 74 * 74 / 40)))  # keeps most outputs inside [0, 255]
    ws = np.full(w.shape[0], 2.0**-s, np.float32) if np.ndim(wz) else np.float32(2.0**-s)
    y = ort_runner.run_qlinear_conv(x, np.float32(1), np.uint8(128), w, ws, wz, np.float32(1), np.uint8(128),
                                    const_weights=True, **attrs)
    return y, lambda acc: np.clip(np.rint(acc * 2.0**-s) + 128, 0, 255).astype(np.uint8)  # RNE, as MLAS


@pytest.mark.conformance
@pytest.mark.parametrize("name", ORT_CASES)
@pytest.mark.parametrize("wz", [0, -9], ids=["wz0", "wz-9"])
def test_qlinear_conv_u8s8_pairs_in_hwc_order(ort_runner, name, wz):
    """QLinearConv u8×s8 pairs in (kH, kW, c) order (NHWC im2col) on AVX2; depthwise multiplier 1
    is exact; everything is exact with VNNI."""
    C, O, H, W, k, st, dl, pd, G = CASES[name]
    x, w, attrs, kw = _ort_inputs(name, np.uint8, np.int8, 30 + wz)
    y, requant = _qlinear_acc(ort_runner, x, w, np.int8(wz), attrs, (C // G) * k[0] * k[1])
    depthwise_m1 = G == C and O == C
    model = ORT_HOST.accumulation("depthwise" if depthwise_m1 else "conv", np.uint8, np.int8)
    _assert_same(y, requant(conv2d(x, w, 128, wz, acc_model=model, k_order="hwc", **kw)), f"{name} {model}")
    if model != "exact_int32" and C // G > 1 and k[0] * k[1] > 1:  # else both orders coincide
        other = requant(conv2d(x, w, 128, wz, acc_model=model, k_order="chw", **kw))
        assert not np.array_equal(y, other), "the (c, kH, kW) pair order should not match QLinearConv"


@pytest.mark.parametrize("model", ["pairwise_sat16_u8s8", "pairwise_sat16_s8u8"])
def test_depthwise_pair_saturation_kernel_equals_reference(model):
    """The one-pass depthwise kernel under pair saturation equals the reference, saturating pairs included."""
    rng = np.random.default_rng(11)
    for t in range(120):
        c, mult = int(rng.integers(1, 5)), int(rng.integers(1, 3))
        h, w_ = (int(v) for v in rng.integers(3, 8, 2))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        if model == "pairwise_sat16_u8s8":
            x = rng.integers(0, 256, (2, c, h, w_)).astype(np.uint8)
            w = rng.integers(-128, 128, (c * mult, 1, kh, kw)).astype(np.int8)
            wz = rng.integers(-3, 3, c * mult).astype(np.int8)
        else:
            x = rng.integers(-128, 128, (2, c, h, w_)).astype(np.int8)
            w = rng.integers(0, 256, (c * mult, 1, kh, kw)).astype(np.uint8)
            wz = rng.integers(0, 6, c * mult).astype(np.uint8)
        if t % 3 == 0:  # every pair saturates
            x[:], w[:] = np.iinfo(x.dtype).max, np.iinfo(w.dtype).max
        xz = x.dtype.type(rng.integers(np.iinfo(x.dtype).min, np.iinfo(x.dtype).max))
        kwargs = dict(strides=int(rng.integers(1, 3)), pads=(1, 1, 1, 1) if t % 2 else 0, groups=c,
                      dilations=int(rng.integers(1, 3)), acc_model=model)
        try:
            want = conv2d_reference(x, w, xz, wz, **kwargs)
        except ShapeError:
            continue  # the dilated kernel does not fit the input
        np.testing.assert_array_equal(conv2d(x, w, xz, wz, **kwargs), want)

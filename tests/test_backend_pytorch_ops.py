"""refquant.backends.pytorch op level without torch: hand-checked vectors and bad input.

The face's conformance with torch 2.13 is tests/test_conformance_pytorch_ops.py; here every
expected value is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant.backends import pytorch as P
from refquant.errors import (
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)

F32 = np.float32
U8, I8 = np.uint8, np.int8


def lin_args(**over):
    """A valid linear call: x (2, 3) quint8, w (4, 3) qint8, per-tensor."""
    args = dict(x=np.array([[10, 20, 30], [0, 255, 7]], U8), x_scale=0.1, x_zero_point=3,
                w=np.array([[1, -2, 3], [4, 5, -6], [0, 0, 1], [-128, 127, 0]], I8), w_scale=0.05, w_zero_point=0,
                bias=np.zeros(4, F32), y_scale=0.2, y_zero_point=128)
    args.update(over)
    return args


def conv_args(**over):
    args = dict(x=np.full((1, 4, 5, 5), 9, U8), x_scale=0.1, x_zero_point=3, w=np.ones((2, 2, 3, 3), I8),
                w_scale=0.05, w_zero_point=0, bias=None, y_scale=0.2, y_zero_point=128)
    args.update(over)
    return args


# ------------------------------------------------------------------ hand-checked vectors


@pytest.mark.kernels
def test_linear_pair_saturation_by_isa():
    """x = [255, 255], w = [127, 127]: the exact sum is 64770; vpmaddubsw saturates the pair to 32767.
    With S_x = S_w = 1 and S_y = 256: 64770 / 256 = 253.01 -> 253, 32767 / 256 = 127.996 -> 128."""
    args = dict(x=np.array([[255, 255]], U8), x_scale=1.0, x_zero_point=0, w=np.array([[127, 127]], I8),
                w_scale=1.0, w_zero_point=0, bias=None, y_scale=256.0, y_zero_point=0)
    assert P.linear(**args, isa="exact").tolist() == [[253]]
    assert P.linear(**args, isa="vnni").tolist() == [[253]]
    assert P.linear(**args, isa="avx2").tolist() == [[128]]
    assert P.linear(**args, engine="qnnpack", isa="avx2").tolist() == [[253]]  # qnnpack is exact on every ISA


@pytest.mark.kernels
def test_linear_ties_and_bias():
    """acc = (5 - 3) * 1 = 2 with S_x S_w = 0.25 and S_y = 1: 2 * 0.25 = 0.5 -> RNE 0 -> Z_y = 10;
    acc 6 -> 1.5 -> 2 -> 12. A bias of 0.25 adds 1 to the accumulator (0.25 / 0.25): 0.75 -> 1 -> 11."""
    x = np.array([[5], [9]], U8)
    w = np.array([[1]], I8)
    assert P.linear(x, 0.5, 3, w, 0.5, 0, None, 1.0, 10).tolist() == [[10], [12]]
    assert P.linear(x, 0.5, 3, w, 0.5, 0, np.array([0.25], F32), 1.0, 10).tolist() == [[11], [12]]
    for engine in ("fbgemm", "qnnpack"):
        assert P.linear(x, 0.5, 3, w, 0.5, 0, None, 1.0, 10, engine=engine).tolist() == [[10], [12]]


@pytest.mark.kernels
def test_cvtps_overflow_gives_zero():
    """255 * 127 * 1e6 is past 2^31: cvtps2dq returns INT32_MIN, which packs to 0 (not 255)."""
    args = dict(x=np.array([[255], [1]], U8), x_scale=1.0, x_zero_point=0, w=np.array([[127]], I8), w_scale=1.0,
                w_zero_point=0, bias=None, y_scale=1e-6, y_zero_point=5)
    for engine in ("fbgemm", "qnnpack"):
        assert P.linear(**args, engine=engine).tolist() == [[0], [255]]  # 127e6 < 2^31 saturates to 255


@pytest.mark.kernels
def test_conv_paths_and_values():
    assert P.fbgemm_conv_path(16, 16, (3, 3), (1, 1), (1, 1), (1, 1), 16) == "depthwise"
    assert P.fbgemm_conv_path(16, 32, (5, 5), (2, 2), (2, 2), (1, 1), 16) == "depthwise"
    assert P.fbgemm_conv_path(6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6) == "im2col"  # C not a multiple of 8
    assert P.fbgemm_conv_path(16, 16, (3, 3), (1, 1), (1, 1), (1, 1), 4) == "groupwise"
    assert P.fbgemm_conv_path(9, 6, (3, 3), (1, 1), (1, 1), (1, 1), 3) == "im2col"
    assert P.fbgemm_conv_path(8, 4, (1, 1), (1, 1), (0, 0), (1, 1), 1) == "pointwise"
    assert P.fbgemm_conv_path(8, 4, (1, 1), (2, 2), (0, 0), (1, 1), 1) == "im2col"
    # 2x2 ones on a 3x3 image of code 5, Z_x = 3, pad 1: corner windows see one in-image tap
    # (the padding is Z_x, contributing 0): acc = 2; centre windows 4 taps: acc = 8. M = 1.
    x = np.full((1, 1, 3, 3), 5, U8)
    y = P.conv2d(x, 1.0, 3, np.ones((1, 1, 2, 2), I8), 1.0, 0, None, 1.0, 0, padding=1)
    assert y.shape == (1, 1, 4, 4) and y[0, 0].tolist() == [[2, 4, 4, 2], [4, 8, 8, 4], [4, 8, 8, 4], [2, 4, 4, 2]]


@pytest.mark.kernels
def test_add_vector_lanes_and_tail():
    """0.5 * 1 + 0 with S_y = 1, Z_y = 1: ATen's vector lanes round first (RNE(0.5) = 0, + 1 = 1), its
    scalar tail adds Z_y first (RNE(1.5) = 2); QNNPACK rounds half away from zero (1 + 1 = 2)."""
    a, b = np.ones(65, U8), np.zeros(65, U8)
    y = P.add(a, 0.5, 0, b, 1.0, 0, 1.0, 1)
    assert y.tolist() == [1] * 64 + [2]
    assert P.add(a, 0.5, 0, b, 1.0, 0, 1.0, 1, engine="qnnpack").tolist() == [2] * 65
    assert P.add(a.view(I8), 0.5, 0, b.view(I8), 1.0, 0, 1.0, 1, engine="qnnpack").tolist() == [1] * 64 + [2]
    # relu: (3 - 10) * 1 + 0 = -7 -> max(., 0) = 0 -> Z_y
    assert P.add(np.array([3], U8), 1.0, 10, np.array([0], U8), 1.0, 0, 1.0, 50, relu=True).tolist() == [50]


@pytest.mark.kernels
def test_add_threads_split_tails():
    """40000 = 625 * 64 elements: one thread runs only vector blocks; two threads get chunks of 20000,
    each ending in a 32-element scalar tail (20000 = 312 * 64 + 32)."""
    n = 40000
    a, b = np.ones(n, U8), np.zeros(n, U8)
    one = P.add(a, 0.5, 0, b, 1.0, 0, 1.0, 1)
    two = P.add(a, 0.5, 0, b, 1.0, 0, 1.0, 1, num_threads=2)
    assert np.flatnonzero(one == 2).tolist() == []
    assert np.flatnonzero(two == 2).tolist() == list(range(19968, 20000)) + list(range(39968, n))


@pytest.mark.kernels
def test_dynamic_linear_zero_input_returns_bias():
    """x = 0: scale 0.1 (ChooseQuantizationParams' fallback), x_q = 0, acc = 0, y = 0 * m + b = b."""
    bias = np.array([0.1, -2.5, 3e-8], F32)
    w = np.array([[1, 2], [3, 4], [-5, 6]], I8)
    for engine in ("fbgemm", "qnnpack"):
        y = P.dynamic_linear(np.zeros((2, 2), F32), w, np.array([0.1, 0.2, 0.3], F32), 0, bias, engine=engine)
        assert y.dtype == F32 and y.shape == (2, 3)
        np.testing.assert_array_equal(y.view(np.uint32), np.broadcast_to(bias, (2, 3)).view(np.uint32))
    assert P.dynamic_linear(np.zeros((0, 2), F32), w, 0.1, 0, None).shape == (0, 3)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("over, exc, words", [
    (dict(x=np.zeros((2, 4), U8)), ShapeError, "K = w.shape[1] = 3"),
    (dict(x=np.zeros(3, U8)), ShapeError, "rank >= 2"),
    (dict(x=np.zeros((2, 3), F32)), QuantizationTypeError, "x must have dtype uint8"),
    (dict(x=np.zeros((2, 3), I8)), QuantizationTypeError, "quint8"),
    (dict(x=[[1, 2, 3]]), QuantizationTypeError, "must be a NumPy uint8 (quint8) array"),
    (dict(w=np.zeros((4, 3), U8)), QuantizationTypeError, "w must have dtype int8"),
    (dict(w=np.zeros((4, 3, 1), I8)), ShapeError, "w must have rank 2"),
    (dict(x_zero_point=300), QuantizationValueError, "x_zero_point must be in [0, 255]"),
    (dict(x_zero_point=np.int16(3)), QuantizationTypeError, "dtype uint8"),
    (dict(x_zero_point=3.0), QuantizationTypeError, "x_zero_point"),
    (dict(w_zero_point=200), QuantizationValueError, "w_zero_point must be in [-128, 127]"),
    (dict(w_zero_point=np.zeros(3, I8)), ShapeError, "w_zero_point must have 4 elements"),
    (dict(y_zero_point=-1), QuantizationValueError, "y_zero_point must be in [0, 255]"),
    (dict(x_scale=0.0), QuantizationValueError, "x_scale must be finite and > 0"),
    (dict(x_scale=np.array([0.1, 0.2], F32)), ShapeError, "x_scale must be a scalar"),
    (dict(w_scale=np.full(5, 0.1, F32)), ShapeError, "w_scale must be a scalar or have 4 elements"),
    (dict(w_scale=np.full((4, 1), 0.1, F32)), ShapeError, "w_scale"),
    (dict(y_scale="1"), QuantizationTypeError, "y_scale"),
    (dict(bias=np.zeros(3, F32)), ShapeError, "bias must have shape (4,)"),
    (dict(bias=np.zeros(4, np.int32)), QuantizationTypeError, "bias must be a float array"),
    (dict(bias=np.array([0, 0, np.nan, 0], F32)), QuantizationValueError, "bias must be finite"),
])
def test_linear_bad_input(over, exc, words):
    with pytest.raises(exc, match=None) as info:
        P.linear(**lin_args(**over))
    assert words in str(info.value), str(info.value)


def test_engine_and_isa_names():
    with pytest.raises(QuantizationValueError, match="engine must be one of"):
        P.linear(**lin_args(), engine="onednn")
    with pytest.raises(QuantizationValueError, match="isa must be one of"):
        P.linear(**lin_args(), isa="sse")
    with pytest.raises(QuantizationValueError, match="engine must be one of"):
        P.add(np.zeros(2, U8), 1.0, 0, np.zeros(2, U8), 1.0, 0, 1.0, 0, engine="FBGEMM")


@pytest.mark.parametrize("over, exc, words", [
    (dict(x=np.zeros((1, 3, 5, 5), U8)), ShapeError, "divisible by groups"),
    (dict(x=np.zeros((4, 5, 5), U8)), ShapeError, "x must have rank 4"),
    (dict(w=np.ones((2, 4, 3, 3), I8)), ShapeError, "C / groups = 2 input channels per group"),
    (dict(w=np.ones((3, 2, 3, 3), I8)), ShapeError, "divisible by groups"),
    (dict(stride=0), QuantizationValueError, "stride must be >= 1"),
    (dict(dilation=(1, 0)), QuantizationValueError, "dilation must be >= 1"),
    (dict(padding=-1), QuantizationValueError, "padding must be >= 0"),
    (dict(padding=(1, 1, 1)), QuantizationTypeError, "padding must be an int or an (h, w) pair"),
    (dict(stride=1.5), QuantizationTypeError, "stride must be an int"),
    (dict(padding="same"), QuantizationTypeError, "padding"),
    (dict(groups=0), QuantizationValueError, "groups must be an integer >= 1"),
    (dict(groups=True), QuantizationTypeError, "groups must be an int"),
    (dict(w=np.ones((2, 2, 7, 7), I8)), ShapeError, "larger than the padded input"),
    (dict(bias=np.zeros(3, F32)), ShapeError, "bias must have shape (2,)"),
    (dict(w_scale=np.full(3, 0.1, F32)), ShapeError, "w_scale must be a scalar or have 2 elements"),
])
def test_conv2d_bad_input(over, exc, words):
    kwargs = {k: over.pop(k) for k in ("stride", "padding", "dilation", "groups") if k in over}
    kwargs.setdefault("groups", 2)
    with pytest.raises(exc) as info:
        P.conv2d(**conv_args(**over), **kwargs)
    assert words in str(info.value), str(info.value)


def test_conv2d_x86_vnni_is_onednn():
    """engine x86 with isa="vnni": symmetric weights take oneDNN's scale chain (Z_y added before
    rounding), asymmetric weights stay on fbgemm (Z_y after rounding): they differ on a tie with odd Z_y."""
    tie = dict(x_scale=0.5, x_zero_point=0, w_scale=1.0, y_scale=1.0, y_zero_point=3, bias=None)
    x = np.full((1, 2, 1, 1), 1, np.uint8)
    w = np.ones((2, 1, 1, 1), np.int8)  # acc = 1, v = 0.5
    one = dict(tie, x=x, w=w, groups=2)
    onednn = P.conv2d(**one, w_zero_point=0, engine="x86", isa="vnni")
    fbgemm = P.conv2d(**one, w_zero_point=0, engine="fbgemm", isa="vnni")
    assert onednn.ravel().tolist() == [4, 4]  # RNE(0.5 + 3) = RNE(3.5) = 4
    assert fbgemm.ravel().tolist() == [3, 3]  # RNE(0.5) + 3 = 0 + 3
    assert P.conv2d(**one, w_zero_point=0, engine="x86", isa="avx2").ravel().tolist() == [3, 3]  # no VNNI: fbgemm


def test_qnnpack_refuses_subnormal_requantization_scale():
    with pytest.raises(UnsupportedError, match="positive normal requantization scale"):
        P.linear(**lin_args(x_scale=1e-20, w_scale=1e-20, y_scale=1.0), engine="qnnpack")


def test_accumulator_overflow_is_reported():
    """K = 70000 codes 255 x 127: 2.27e9 leaves int32 under the exact model (a warning, wrapped value);
    vpmaddubsw pairs saturate at 32767, so the AVX2 model stays inside int32."""
    x = np.full((1, 70000), 255, U8)
    w = np.full((1, 70000), 127, I8)
    with pytest.warns(AccumulatorOverflowWarning):
        P.linear(x, 1.0, 0, w, 1.0, 0, None, 1e9, 0, isa="exact")
    P.linear(x, 1.0, 0, w, 1.0, 0, None, 1e9, 0, isa="avx2")


@pytest.mark.parametrize("call, exc, words", [
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(4, U8), 1.0, 0, 1.0, 0), ShapeError, "b must have a's shape"),
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(3, I8), 1.0, 0, 1.0, 0), QuantizationTypeError, "a's dtype"),
    (lambda: P.add(np.zeros(3, np.int16), 1.0, 0, np.zeros(3, np.int16), 1.0, 0, 1.0, 0), QuantizationTypeError,
     "uint8 (quint8) or int8"),
    (lambda: P.add(np.zeros(3, I8), 1.0, 200, np.zeros(3, I8), 1.0, 0, 1.0, 0), QuantizationValueError,
     "a_zero_point must be in [-128, 127]"),
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(3, U8), -1.0, 0, 1.0, 0), QuantizationValueError, "b_scale"),
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(3, U8), 1.0, 0, 1.0, 0, num_threads=0), QuantizationValueError,
     "num_threads must be >= 1"),
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(3, U8), 1.0, 0, 1.0, 0, relu=1), QuantizationTypeError,
     "relu must be a bool"),
    (lambda: P.add(np.zeros(3, U8), 1.0, 0, np.zeros(3, U8), 1.0, 0, 1.0, 255, relu=True, engine="qnnpack"),
     UnsupportedError, "output_min < output_max"),
    (lambda: P.add(np.zeros(3, U8), 300.0, 0, np.zeros(3, U8), 1.0, 0, 1.0, 0, engine="qnnpack"), UnsupportedError,
     "[2^-14, 2^8)"),
    (lambda: P.add(np.zeros(3, U8), 1e-4, 0, np.zeros(3, U8), 1e-4, 0, 1.0, 0, engine="qnnpack"), UnsupportedError,
     "not modelled"),
    (lambda: P.add(np.zeros((), U8), 1.0, 0, np.zeros((), U8), 1.0, 0, 1.0, 0, engine="qnnpack"), UnsupportedError,
     "rank >= 1"),
])
def test_add_bad_input(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), str(info.value)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: P.dynamic_linear(np.zeros((2, 3), np.int32), np.zeros((4, 3), I8), 0.1, 0, None),
     QuantizationTypeError, "x must be a float array"),
    (lambda: P.dynamic_linear(np.zeros(3, F32), np.zeros((4, 3), I8), 0.1, 0, None), ShapeError, "rank >= 2"),
    (lambda: P.dynamic_linear(np.array([[1, np.inf, 0]], F32), np.zeros((4, 3), I8), 0.1, 0, None),
     QuantizationValueError, "x must be finite"),
    (lambda: P.dynamic_linear(np.zeros((2, 5), F32), np.zeros((4, 3), I8), 0.1, 0, None), ShapeError, "K = w.shape[1]"),
    (lambda: P.dynamic_linear(np.zeros((2, 3), F32), np.zeros((4, 3), I8), 0.1, 0, None, reduce_range=1),
     QuantizationTypeError, "reduce_range must be a bool"),
    (lambda: P.dynamic_linear(np.zeros((2, 3), F32), np.zeros((4, 3), I8), [0.1, 0.1], 0, None), ShapeError,
     "w_scale must be a scalar or have 4 elements"),
])
def test_dynamic_linear_bad_input(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), str(info.value)


@pytest.mark.kernels
def test_conv_vnni_keeps_pairs_only_in_the_depthwise_kernel():
    """Codes 255 x 127 make every tap pair saturate (2 * 32385 > 32767). With isa="vnni" the depthwise
    fast path (AVX2-only JIT kernel) still saturates; the im2col path (no padding: not the fast path)
    is exact, as vpdpbusd is."""
    x = np.full((1, 8, 5, 5), 255, U8)
    w = np.full((8, 1, 3, 3), 127, I8)
    args = (x, 1.0, 0, w, 1.0, 0, None, 2048.0, 0)
    fast = dict(groups=8, padding=1)
    assert P.fbgemm_conv_path(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 8) == "depthwise"
    np.testing.assert_array_equal(P.conv2d(*args, **fast, isa="vnni"), P.conv2d(*args, **fast, isa="avx2"))
    assert (P.conv2d(*args, **fast, isa="vnni") != P.conv2d(*args, **fast, isa="exact")).any()
    # centre output, 9 taps: exact 9 * 32385 / 2048 = 142.3 -> 142; pairs 4 * 32767 + 32385 -> 79.8 -> 80
    assert P.conv2d(*args, **fast, isa="exact")[0, 0, 2, 2] == 142
    assert P.conv2d(*args, **fast, isa="avx2")[0, 0, 2, 2] == 80
    slow = dict(groups=8, padding=0)
    np.testing.assert_array_equal(P.conv2d(*args, **slow, isa="vnni"), P.conv2d(*args, **slow, isa="exact"))
    assert (P.conv2d(*args, **slow, isa="avx2") != P.conv2d(*args, **slow, isa="exact")).all()

"""The op-level ONNX / ONNX Runtime faces without the backends: hand-checked values, the
argument conventions, ``isa=``, what ONNX Runtime refuses, and bad input — which must raise a
:mod:`refquant.errors` exception before any kernel runs (the kernels are replaced by traps).
Comparison with the real backends: ``test_conformance_onnx_ops.py``."""

from __future__ import annotations

import warnings

import numpy as np

from refquant.ops import layers, pointwise
import pytest

from refquant.backends import _onnx_ops
from refquant.backends import onnx as O
from refquant.backends import onnxruntime as R
from refquant.errors import (
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)

pytestmark = pytest.mark.kernels

FACES = [O, R]
U8, S8, F32 = np.uint8, np.int8, np.float32


# ----------------------------------------------------------------------------- values checked by hand


@pytest.mark.parametrize("face", FACES)
def test_matmul_integer_onnx_doc_example(face):
    # ONNX Operators.md, MatMulInteger
    a = np.array([[11, 7, 3], [10, 6, 2], [9, 5, 1], [8, 4, 0]], U8)
    b = np.array([[1, 4], [2, 5], [3, 6]], U8)
    y = face.matmul_integer(a, b, U8(12), U8(0))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [[-38, -83], [-44, -98], [-50, -113], [-56, -128]])


@pytest.mark.parametrize("face", FACES)
def test_qlinear_matmul_onnx_doc_example(face):
    # ONNX Operators.md, QLinearMatMul (uint8)
    a = np.array([[208, 236, 0, 238], [3, 214, 255, 29]], U8)
    b = np.array([[152, 51, 244], [60, 26, 255], [0, 127, 246], [127, 254, 247]], U8)
    y = face.qlinear_matmul(a, F32(0.0066), U8(113), b, F32(0.00705), U8(114), F32(0.0107), U8(118))
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, [[168, 115, 255], [1, 66, 151]])


@pytest.mark.parametrize("face", FACES)
def test_qlinear_zero_point_added_after_rounding(face):
    # acc = 1, M = 1/2: RNE(0.5) = 0, then + 1 -> 1 (onnx.reference: rint(0.5 + 1) = 2)
    one = np.ones((1, 1), U8)
    assert face.qlinear_matmul(one, 1.0, U8(0), one, 0.5, U8(0), 1.0, U8(1))[0, 0] == 1
    assert face.qlinear_matmul(one, 1.0, U8(0), one * 3, 0.5, U8(0), 1.0, U8(1))[0, 0] == 3  # RNE(1.5) = 2
    x, w = np.ones((1, 1, 1, 1), U8), np.ones((1, 1, 1, 1), U8)
    assert face.qlinear_conv(x, 1.0, U8(0), w, 0.5, U8(0), 1.0, U8(1))[0, 0, 0, 0] == 1


def test_onnx_multiplier_is_exact_not_float32():
    # s_a·s_b = 1 - 2^-46 exactly, which float32 rounds to 1: the float32 multiplier is 0.5, the
    # exact one 0.5 - 2^-47. acc = 3: the spec rounds 1.5 - 3·2^-47 to 1, float32 rounds 1.5 to 2.
    s_a, s_b = F32(1 + 2.0 ** -23), F32(1 - 2.0 ** -23)
    assert F32(F32(s_a * s_b) / F32(2.0)) == F32(0.5)
    assert float(s_a) * float(s_b) / 2.0 < 0.5
    a, b = np.full((1, 1), 3, U8), np.ones((1, 1), U8)
    assert O.qlinear_matmul(a, s_a, U8(0), b, s_b, U8(0), 2.0, U8(0))[0, 0] == 1
    assert R.qlinear_matmul(a, s_a, U8(0), b, s_b, U8(0), 2.0, U8(0))[0, 0] == 2


def test_per_row_forms_agree():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (4, 6)).astype(U8), rng.integers(-128, 128, (6, 3)).astype(S8)
    za = np.array([3, 250, 0, 128], U8)
    np.testing.assert_array_equal(O.matmul_integer(a, b, za, S8(2)), O.matmul_integer(a, b, za[:, None], S8(2)))
    np.testing.assert_array_equal(O.matmul_integer(a, b, za, S8(2)),
                                  (a.astype(np.int64) - za[:, None]) @ (b.astype(np.int64) - 2))
    sa = np.array([0.01, 0.02, 0.03, 0.04], F32)
    y1 = O.qlinear_matmul(a, sa, za, b, F32(0.01), S8(2), F32(0.05), U8(128))
    y2 = O.qlinear_matmul(a, sa[:, None], za[:, None], b, F32(0.01), S8(2), F32(0.05), U8(128))
    np.testing.assert_array_equal(y1, y2)
    for m in range(4):  # per row == per-tensor on that row
        np.testing.assert_array_equal(y1[m], O.qlinear_matmul(a[m:m + 1], sa[m], za[m], b, F32(0.01), S8(2),
                                                              F32(0.05), U8(128))[0])


def test_batched_per_column_parameters():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 256, (3, 2, 5)).astype(U8), rng.integers(0, 256, (3, 5, 4)).astype(U8)
    sb, zb = rng.uniform(0.01, 0.02, (3, 1, 4)).astype(F32), rng.integers(0, 256, (3, 1, 4)).astype(U8)
    for face in FACES:
        y = face.qlinear_matmul(a, F32(0.02), U8(7), b, sb, zb, F32(0.1), U8(100))
        for i in range(3):
            np.testing.assert_array_equal(y[i], face.qlinear_matmul(a[i], F32(0.02), U8(7), b[i], sb[i, 0], zb[i, 0],
                                                                    F32(0.1), U8(100)))


@pytest.mark.parametrize("face", FACES)
def test_one_d_conv_is_two_d_with_unit_height(face):
    rng = np.random.default_rng(3)
    x, w = rng.integers(0, 256, (2, 4, 11)).astype(U8), rng.integers(0, 256, (6, 2, 3)).astype(U8)
    y1 = face.conv_integer(x, w, U8(3), U8(9), pads=[1, 2], strides=[2], group=2)
    y2 = face.conv_integer(x[:, :, None], w[:, :, None], U8(3), U8(9), pads=[0, 1, 0, 2], strides=[1, 2], group=2)
    np.testing.assert_array_equal(y1, y2[:, :, 0])
    B = np.arange(6, dtype=np.int32) * 100
    q1 = face.qlinear_conv(x, 0.1, U8(3), w, 0.01, U8(9), 0.5, U8(100), B, pads=[1, 2], strides=[2], group=2)
    q2 = face.qlinear_conv(x[:, :, None], 0.1, U8(3), w[:, :, None], 0.01, U8(9), 0.5, U8(100), B,
                           pads=[0, 1, 0, 2], strides=[1, 2], group=2)
    np.testing.assert_array_equal(q1, q2[:, :, 0])


@pytest.mark.parametrize("face", FACES)
def test_auto_pad_output_sizes(face):
    x, w = np.ones((1, 1, 7, 8), U8), np.ones((1, 1, 3, 2), U8)
    assert face.conv_integer(x, w, auto_pad="SAME_UPPER", strides=[2, 3]).shape == (1, 1, 4, 3)
    assert face.conv_integer(x, w, auto_pad="SAME_LOWER").shape == (1, 1, 7, 8)
    assert face.conv_integer(x, w, auto_pad="VALID", strides=[2, 2]).shape == (1, 1, 3, 4)
    # SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning: a 2-wide kernel sees
    # column j, j+1 (UPPER) or j-1, j (LOWER)
    xr = np.arange(8, dtype=U8).reshape(1, 1, 1, 8)
    w2 = np.array([[[[1, 0]]]], U8)
    np.testing.assert_array_equal(face.conv_integer(xr, w2, auto_pad="SAME_UPPER")[0, 0, 0], np.arange(8))
    np.testing.assert_array_equal(face.conv_integer(xr, w2, auto_pad="SAME_LOWER")[0, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6])


def test_same_padding_with_stride_larger_than_kernel():
    # n = 5, s = 5, k = 1: the spec (and onnx.reference) read row 0; ONNX Runtime reads row 1
    x = np.arange(1, 6, dtype=U8).reshape(1, 1, 5, 1)
    w = np.ones((1, 1, 1, 1), U8)
    assert O.conv_integer(x, w, auto_pad="SAME_UPPER", strides=[5, 1])[0, 0, 0, 0] == 1
    assert R.conv_integer(x, w, auto_pad="SAME_UPPER", strides=[5, 1])[0, 0, 0, 0] == 2


def test_isa_selects_the_pair_saturation():
    a, b = np.full((1, 64), 255, U8), np.full((64, 1), 127, S8)
    assert R.matmul_integer(a, b, isa="avx2")[0, 0] == 32 * 32767  # 32 saturated pairs
    assert R.matmul_integer(a, b, isa="exact")[0, 0] == 64 * 255 * 127
    assert R.matmul_integer(a, b, isa="vnni")[0, 0] == 64 * 255 * 127
    assert O.matmul_integer(a, b)[0, 0] == 64 * 255 * 127
    # int8 x uint8 is exact in MatMulInteger, pairs saturate in ConvInteger (weights unsigned)
    assert R.matmul_integer(b.T.copy(), a.T.copy(), isa="avx2")[0, 0] == 64 * 255 * 127
    x, w = np.full((1, 64, 1, 1), 127, S8), np.full((1, 64, 1, 1), 255, U8)
    assert R.conv_integer(x, w, isa="avx2")[0, 0, 0, 0] == 32 * 32767
    assert R.conv_integer(x, w, isa="exact")[0, 0, 0, 0] == 64 * 255 * 127
    xq, wq = np.full((1, 64, 1, 1), 255, U8), np.full((1, 64, 1, 1), 127, S8)
    y = {isa: R.qlinear_conv(xq, 1.0, U8(0), wq, 2.0 ** -14, S8(0), 1.0, U8(0), isa=isa)[0, 0, 0, 0]
         for isa in ("avx2", "exact")}
    assert (y["avx2"], y["exact"]) == (64, 127)  # RNE(32·32767/2^14) = 64; RNE(2072640/2^14) = 127
    # depthwise with multiplier 1 (one w zero point) is exact in MLAS even on AVX2
    xd, wd = np.full((1, 2, 1, 2), 255, U8), np.full((2, 1, 1, 2), 127, S8)
    acc = R.qlinear_conv(xd, 1.0, U8(0), wd, 2.0 ** -8, S8(0), 1.0, U8(0), group=2, isa="avx2")
    np.testing.assert_array_equal(acc, np.full((1, 2, 1, 1), 253, U8))  # RNE(64770 / 256)
    with pytest.raises(QuantizationValueError, match="isa must be one of"):
        R.matmul_integer(a, b, isa="sse")


@pytest.mark.parametrize("face", FACES)
def test_accumulator_overflow_warns(face):
    K = 33100  # 33100 · 255 · 255 > 2^31
    a, b = np.full((1, K), 255, U8), np.full((K, 1), 255, U8)
    with pytest.warns(AccumulatorOverflowWarning):
        y = face.matmul_integer(a, b)
    assert y[0, 0] == np.int32(np.int64(K * 255 * 255) - 2**32)


def test_contrib_ops_accept_python_int_zero_points():
    rng = np.random.default_rng(4)
    a, b = rng.integers(-128, 128, (3, 5)).astype(S8), rng.integers(-128, 128, (5,)).astype(S8)
    y1 = R.qlinear_add(a, 0.1, S8(-3), b, 0.2, S8(5), 0.15, S8(1))
    np.testing.assert_array_equal(y1, R.qlinear_add(a, 0.1, -3, b, 0.2, 5, 0.15, 1))
    x = rng.integers(0, 256, (2, 3, 4, 4)).astype(U8)
    assert R.qlinear_global_average_pool(x, 0.1, 7, 0.1, U8(9)).shape == (2, 3, 1, 1)
    assert R.qlinear_sigmoid(x, 0.05, 128, 1 / 256, 0).dtype == U8


# ----------------------------------------------------------------------------- bad input, before any kernel


@pytest.fixture
def no_kernels(monkeypatch):
    """Replace every kernel the faces call by a trap: bad input must be refused before."""
    def trap(*args, **kwargs):
        raise AssertionError("a kernel ran before the bad input was refused")

    for mod, names in ((_onnx_ops, ("matmul", "gemm", "conv2d", "output_stage")),
                       (layers, ("requantize", "add_bias", "requant_params")),
                       (pointwise, ("float_add",)), (pointwise.kpool, ("global_average_pool",)),
                       (pointwise.klut, ("rational_logistic_lut", "apply_lut"))):
        for name in names:
            monkeypatch.setattr(mod, name, trap)


A44, B43 = np.zeros((4, 4), U8), np.zeros((4, 3), S8)
X, W = np.zeros((1, 4, 5, 5), U8), np.zeros((6, 4, 3, 3), S8)
QMM = dict(a=A44, a_scale=F32(0.1), a_zero_point=U8(0), b=B43, b_scale=F32(0.1), b_zero_point=S8(0),
           y_scale=F32(0.1), y_zero_point=U8(0))
QC = dict(x=X, x_scale=F32(0.1), x_zero_point=U8(0), w=W, w_scale=F32(0.1), w_zero_point=S8(0), y_scale=F32(0.1),
          y_zero_point=U8(0))

BAD_MATMUL = [  # (changes, error, message fragment)
    (dict(b=np.zeros((5, 3), S8)), ShapeError, "a has K = 4 columns but b has 5 rows"),
    (dict(a=A44.astype(F32)), QuantizationTypeError, "a must have dtype int8 or uint8"),
    (dict(a=A44.tolist()), QuantizationTypeError, "a must be a NumPy int8 or uint8 array"),
    (dict(a_zero_point=np.int16(3)), QuantizationTypeError, "a_zero_point must have a's type uint8"),
    (dict(b_zero_point=U8(3)), QuantizationTypeError, "b_zero_point must have b's type int8"),
    (dict(a_zero_point=300), QuantizationValueError, "a_zero_point must be in [0, 255]"),
    (dict(b_zero_point=np.zeros(4, S8)), ShapeError, "b_zero_point must be a scalar, an (3,) vector"),
    (dict(a_zero_point=np.zeros(3, U8)), ShapeError, "a_zero_point must be a scalar, an (4,) vector"),
    (dict(a=np.zeros((2, 4, 4), U8), b=np.zeros((3, 4, 3), S8)), ShapeError, "do not broadcast"),
]
BAD_QMATMUL = BAD_MATMUL[:6] + [
    (dict(b_scale=np.full(4, 0.1, F32)), ShapeError, "b_scale must be a scalar, an (3,) vector"),
    (dict(a_scale=np.full(5, 0.1, F32)), ShapeError, "a_scale must be a scalar, an (4,) vector"),
    (dict(y_scale=np.full(2, 0.1, F32)), ShapeError, "y_scale must be a scalar"),
    (dict(y_scale=-1.0), QuantizationValueError, "y_scale must be finite and > 0"),
    (dict(a_scale=float("nan")), QuantizationValueError, "a_scale must be finite and > 0"),
    (dict(a_scale="0.1"), QuantizationTypeError, "a_scale"),
    (dict(y_zero_point=np.int16(0)), (QuantizationTypeError, UnsupportedError), "y_zero_point"),
]
BAD_CONV = [
    (dict(w=np.zeros((6, 3, 3, 3), S8)), ShapeError, "w must have C / group = 4 input channels"),
    (dict(w=np.zeros((6, 4, 3, 3), S8), group=3), ShapeError, "x's channels C = 4 must be divisible by group = 3"),
    (dict(w=np.zeros((5, 2, 3, 3), S8), group=2), ShapeError, "output channels M = 5 must be divisible by group"),
    (dict(w=np.zeros((6, 4, 7, 7), S8)), ShapeError, "larger than the padded input"),
    (dict(w=np.zeros((6, 4, 3, 3), S8), dilations=[3, 3]), ShapeError, "dilated: 7"),
    (dict(x=X.astype(F32)), QuantizationTypeError, "x must have dtype int8 or uint8"),
    (dict(x_zero_point=np.int16(0)), QuantizationTypeError, "x_zero_point must have x's type uint8"),
    (dict(x_zero_point=-1), QuantizationValueError, "x_zero_point must be in [0, 255]"),
    (dict(x_zero_point=np.zeros(4, U8)), ShapeError, "x_zero_point must be a scalar"),
    (dict(w_zero_point=np.zeros(5, S8)), ShapeError, "w_zero_point must be a scalar or have shape (6,)"),
    (dict(pads=[1, 1]), QuantizationValueError, "pads must have 4 values"),
    (dict(pads=[1, 1, -1, 1]), QuantizationValueError, "pads must be >= 0"),
    (dict(pads=[1, 1, 1.5, 1]), QuantizationTypeError, "pads must be a sequence of 4 ints"),
    (dict(strides=[0, 1]), QuantizationValueError, "strides must be >= 1"),
    (dict(strides=2), QuantizationTypeError, "strides must be a sequence of 2 ints"),
    (dict(dilations=[1, 1, 1]), QuantizationValueError, "dilations must have 2 values"),
    (dict(kernel_shape=[3, 2]), ShapeError, "kernel_shape must equal w.shape[2:] = [3, 3]"),
    (dict(auto_pad="SAME"), QuantizationValueError, "auto_pad must be one of"),
    (dict(auto_pad="SAME_UPPER", pads=[0, 0, 0, 0]), QuantizationValueError, "pads cannot be used with auto_pad"),
    (dict(group=0), QuantizationValueError, "group must be an integer >= 1"),
    (dict(x=np.zeros((1, 4, 5, 5, 5), U8), w=np.zeros((6, 4, 3, 3, 3), S8)), UnsupportedError, "1-D and 2-D"),
    (dict(x=np.zeros((1, 4), U8)), ShapeError, "at least one spatial axis"),
    (dict(w=np.zeros((6, 4, 3), S8)), ShapeError, "w must have x's rank 4"),
]
BAD_QCONV = BAD_CONV[:8] + [
    (dict(w_scale=np.full(5, 0.1, F32)), ShapeError, "w_scale must be a scalar or have shape (6,)"),
    (dict(x_scale=np.full(6, 0.1, F32)), ShapeError, "x_scale must be a scalar"),
    (dict(y_scale=0.0), QuantizationValueError, "y_scale must be finite and > 0"),
    (dict(B=np.zeros(6, np.int64)), QuantizationTypeError, "B must be an int32 array"),
    (dict(B=np.zeros(5, np.int32)), ShapeError, "B must have shape (6,)"),
    (dict(y_zero_point=np.int16(0)), (QuantizationTypeError, UnsupportedError), "y_zero_point"),
    (dict(y_zero_point=300), (QuantizationTypeError, QuantizationValueError), "y_zero_point"),
]


def _call(fn, base, changes):
    kw = {**base, **changes}
    args = [kw.pop(k) for k in list(base)]
    return fn(*args, **kw)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("changes, error, match", BAD_MATMUL)
def test_matmul_integer_bad_input(no_kernels, face, changes, error, match):
    with pytest.raises(error, match=_re(match)):
        _call(face.matmul_integer, dict(a=A44, b=B43, a_zero_point=U8(0), b_zero_point=S8(0)), changes)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("changes, error, match", BAD_QMATMUL)
def test_qlinear_matmul_bad_input(no_kernels, face, changes, error, match):
    with pytest.raises(error, match=_re(match)):
        _call(face.qlinear_matmul, QMM, changes)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("changes, error, match", BAD_CONV)
def test_conv_integer_bad_input(no_kernels, face, changes, error, match):
    with pytest.raises(error, match=_re(match)):
        _call(face.conv_integer, dict(x=X, w=W, x_zero_point=U8(0), w_zero_point=S8(0)), changes)


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("changes, error, match", BAD_QCONV)
def test_qlinear_conv_bad_input(no_kernels, face, changes, error, match):
    with pytest.raises(error, match=_re(match)):
        _call(face.qlinear_conv, QC, changes)


def test_onnx_face_needs_a_typed_output_zero_point(no_kernels):
    with pytest.raises(QuantizationTypeError, match="Python int"):
        _call(O.qlinear_matmul, QMM, dict(y_zero_point=0))
    with pytest.raises(QuantizationTypeError, match="y_zero_point is required"):
        _call(O.qlinear_conv, QC, dict(y_zero_point=None))


ORT_REFUSES = [  # valid ONNX, refused by ONNX Runtime 1.32
    (R.matmul_integer, (A44, B43, np.zeros(4, U8)), {}, "scalar or 1-element 1-D a_zero_point"),
    (R.qlinear_matmul, (A44, np.full(4, 0.1, F32), U8(0), B43, 0.1, S8(0), 0.1, U8(0)), {}, "a_scale"),
    (R.matmul_integer, (np.zeros((2, 4, 4), U8), np.zeros((2, 4, 3), S8), U8(0), np.zeros(3, S8)), {},
     "b_zero_point per-tensor or of shape (2, 1, 3)"),
    (R.conv_integer, (X, W, U8(0), np.zeros(6, S8)), {}, "per-channel w_zero_point"),
    (R.qlinear_conv, (X.view(S8), 0.1, S8(0), W.view(U8), 0.1, U8(0), 0.1, S8(0)), {}, "no QLinearConv kernel"),
    (R.qlinear_matmul, (A44, 0.1, U8(0), B43, 0.1, S8(0), 0.1, S8(0)), {}, "outputs uint8"),
    (R.qlinear_matmul, (A44.view(S8), 0.1, S8(0), B43.view(U8), 0.1, U8(0), 0.1, U8(0)), {}, "no QLinearMatMul"),
    (R.conv_integer, (X, W), dict(auto_pad="SAME_UPPER", dilations=[2, 2]), "Dilation not supported"),
]


@pytest.mark.parametrize("fn, args, kwargs, match", ORT_REFUSES)
def test_onnxruntime_refusals(no_kernels, fn, args, kwargs, match):
    with pytest.raises(UnsupportedError, match=_re(match)):
        fn(*args, **kwargs)


def test_onnx_face_accepts_what_onnxruntime_refuses():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        O.matmul_integer(A44, B43, np.zeros(4, U8))
        O.conv_integer(X, W, U8(0), np.zeros(6, S8))
        O.qlinear_conv(X.view(S8), 0.1, S8(0), W.view(U8), 0.1, U8(0), 0.1, S8(0))
        O.conv_integer(X, W, auto_pad="SAME_UPPER", dilations=[2, 2])


BAD_CONTRIB = [
    (R.qlinear_add, (A44, 0.1, U8(0), A44.view(S8), 0.1, S8(0), 0.1, U8(0)), QuantizationTypeError, "share one type"),
    (R.qlinear_add, (A44, 0.1, U8(0), np.zeros(3, U8), 0.1, U8(0), 0.1, U8(0)), ShapeError, "broadcast"),
    (R.qlinear_add, (A44, np.full(2, 0.1), U8(0), A44, 0.1, U8(0), 0.1, U8(0)), ShapeError, "a_scale must be a scalar"),
    (R.qlinear_add, (A44, 0.1, S8(0), A44, 0.1, U8(0), 0.1, U8(0)), QuantizationTypeError,
     "a_zero_point must have a's"),
    (R.qlinear_add, (A44, 0.1, 256, A44, 0.1, U8(0), 0.1, U8(0)), QuantizationValueError, "a_zero_point must be in"),
    (R.qlinear_add, (A44.astype(np.int16), 0.1, 0, A44, 0.1, 0, 0.1, 0), QuantizationTypeError, "int8 or uint8"),
    (R.qlinear_global_average_pool, (X, 0.1, U8(0), -0.1, U8(0)), QuantizationValueError, "y_scale"),
    (R.qlinear_global_average_pool, (X, 0.1, U8(0), 0.1, S8(0)), QuantizationTypeError, "y_zero_point must have x's"),
    (R.qlinear_global_average_pool, (A44, 0.1, U8(0), 0.1, U8(0)), ShapeError, "rank >= 3"),
    (R.qlinear_sigmoid, (X, 0.1, U8(0), np.full(2, 0.1), U8(0)), ShapeError, "y_scale must be a scalar"),
    (R.qlinear_sigmoid, (X.astype(F32), 0.1, U8(0), 0.1, U8(0)), QuantizationTypeError, "x must have dtype int8"),
]


@pytest.mark.parametrize("fn, args, error, match", BAD_CONTRIB)
def test_contrib_ops_bad_input(no_kernels, fn, args, error, match):
    with pytest.raises(error, match=_re(match)):
        fn(*args)


def test_global_average_pool_bad_channels_last(no_kernels):
    with pytest.raises(QuantizationValueError, match="channels_last must be 0 or 1"):
        R.qlinear_global_average_pool(X, 0.1, U8(0), 0.1, U8(0), channels_last=2)


def _re(text: str) -> str:
    import re

    return re.escape(text)

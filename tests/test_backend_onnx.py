"""refquant.backends.onnx / .onnxruntime without the backends: hand-checked values, the
argument conventions, bad input, and properties (hypothesis). The comparison with the real
ONNX Runtime and onnx.reference is in test_conformance_onnx.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.backends import onnx as O
from refquant.backends import onnxruntime as R
from refquant.dtypes import pack_int4, unpack_int4
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError

pytestmark = pytest.mark.kernels

FACES = [O, R]
RANGES = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535), "int16": (-32768, 32767),
          "uint4": (0, 15), "int4": (-8, 7), "uint2": (0, 3), "int2": (-2, 1)}
CONTAINER = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16, "uint4": np.uint8,
             "int4": np.int8, "uint2": np.uint8, "int2": np.int8}


# ----------------------------------------------------------------------------- values checked by hand


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_onnx_doc_example(face):
    # ONNX Operators.md, QuantizeLinear: x / 2 = [0, 1, 1.5, 500, -127, -500], RNE, + 128, saturate
    x = np.array([0, 2, 3, 1000, -254, -1000], np.float32)
    y = face.quantize_linear(x, np.float32(2), np.uint8(128))
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, [128, 129, 130, 255, 1, 0])
    y = face.quantize_linear(x, 2.0, np.int8(-1))
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, [-1, 0, 1, 127, -128, -128])


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_ties_to_even_then_zero_point(face):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)
    np.testing.assert_array_equal(face.quantize_linear(x, 1.0, np.int8(0)), [0, 2, 2, 0, -2, -2])
    # the zero point is added after rounding: an odd zero point does not move the tie
    np.testing.assert_array_equal(face.quantize_linear(x, 1.0, np.int8(1)), [1, 3, 3, 1, -1, -1])


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_specials(face):
    x = np.array([np.nan, np.inf, -np.inf, 1e10, -1e10, 3e9], np.float32)
    for dt, (lo, hi) in RANGES.items():
        y = face.quantize_linear(x, 1.0, output_dtype=dt)
        assert y.dtype == CONTAINER[dt]
        np.testing.assert_array_equal(y, [lo, hi, lo, hi, lo, hi], err_msg=dt)


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_default_output_is_uint8(face):
    y = face.quantize_linear(np.array([-1.0, 0.4, 300.0], np.float32), 1.0)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, [0, 0, 255])


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_int4_is_unpacked(face):
    x = np.array([-9.0, -8.0, -0.5, 0.6, 7.0, 8.0, 1.5], np.float32)
    y = face.quantize_linear(x, 1.0, output_dtype="int4")
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, [-8, -8, 0, 1, 7, 7, 2])
    packed = pack_int4(y)  # ONNX storage: first element in the low nibble
    np.testing.assert_array_equal(packed, [0x88, 0x10, 0x77, 0x02])
    np.testing.assert_array_equal(unpack_int4(packed, 7, signed=True), y)
    u = face.quantize_linear(x, 1.0, np.uint8(8), output_dtype="uint4")
    assert u.dtype == np.uint8
    np.testing.assert_array_equal(u, [0, 0, 8, 9, 15, 15, 10])


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("spec,dtype,want", [
    ("int4", np.int8, [1, -1]), (np.dtype("int8"), np.int8, [1, -1]), (np.int16, np.int16, [1, -1]),
    ("UINT2", np.uint8, [1, 0]), (22, np.int8, [1, -1]),  # 22 = TensorProto.INT4; uint2 saturates -1 to 0
])
def test_quantize_linear_output_dtype_spellings(face, spec, dtype, want):
    y = face.quantize_linear(np.array([1.0, -1.0], np.float32), 1.0, output_dtype=spec)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_per_axis_by_hand(face):
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    s = np.array([0.5, 1.0, 2.0], np.float32)
    z = np.array([0, 10, -10], np.int8)
    want = [[2, 12, -8], [8, 15, -7]]  # 3/2 = 1.5 -> 2; 6/2 = 3
    np.testing.assert_array_equal(face.quantize_linear(x, s, z, axis=1), want)
    np.testing.assert_array_equal(face.quantize_linear(x, s, z, axis=-1), want)
    # Python ints take output_dtype
    np.testing.assert_array_equal(face.quantize_linear(x, s, [0, 10, -10], axis=1, output_dtype="int8"), want)
    # rank-1 input, per-axis on axis 0
    np.testing.assert_array_equal(face.quantize_linear(x[0], s, z, axis=0), want[0])
    # a one-element 1-D scale is per-tensor, whatever the axis size
    np.testing.assert_array_equal(face.quantize_linear(x, np.array([0.5], np.float32), np.array([1], np.int8)),
                                  [[3, 5, 7], [9, 11, 13]])


@pytest.mark.parametrize("face", FACES)
def test_quantize_linear_blocked_partial_last_block(face):
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 5)  # [1, 2, 3, 4, 5], blocks [1, 2] [3, 4] [5]
    s = np.array([[1.0, 2.0, 4.0]], np.float32)
    z = np.array([[0, 1, 2]], np.uint8)
    want = [[1, 2, 3, 3, 3]]  # 3/2 = 1.5 -> 2, 4/2 = 2, 5/4 = 1.25 -> 1
    np.testing.assert_array_equal(face.quantize_linear(x, s, z, axis=1, block_size=2), want)
    # block_size 3 or 4 with two blocks: the spec's range [ceil(5/2), ceil(5/1) - 1] = [3, 4]
    for b, want in ((3, [[1, 2, 3, 3, 3]]), (4, [[1, 2, 3, 4, 3]])):  # 4/2 + 1 = 3; 5/2 = 2.5 -> 2, + 1 = 3
        np.testing.assert_array_equal(face.quantize_linear(x, s[:, :2], z[:, :2], axis=1, block_size=b), want)


@pytest.mark.parametrize("face", FACES)
def test_float64_x_is_rounded_to_float32_first(face):
    x64 = np.array([0.1, 2.5000000001, -1e300, 1e300, np.nan], np.float64)
    x32 = np.array([0.1, 2.5, -np.inf, np.inf, np.nan], np.float32)
    np.testing.assert_array_equal(face.quantize_linear(x64, 0.1, np.int8(0)),
                                  face.quantize_linear(x32, np.float32(0.1), np.int8(0)))


def test_float16_scale_divides_in_float16_onnx_and_float32_ort():
    x = np.array([-21.15625, 21.15625], np.float16)
    s = np.float16(0.3)  # 0.30004883; in float16, x / s is exactly -70.5 (a tie); in float32 -70.509
    np.testing.assert_array_equal(O.quantize_linear(x, s, np.int8(0)), [-70, 70])
    np.testing.assert_array_equal(R.quantize_linear(x, s, np.int8(0)), [-71, 71])


@pytest.mark.parametrize("face", FACES)
def test_dequantize_linear_onnx_doc_example(face):
    y = face.dequantize_linear(np.array([0, 3, 128, 255], np.uint8), np.float32(2), np.uint8(128))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [-256, -250, 0, 254])
    np.testing.assert_array_equal(face.dequantize_linear(np.array([0, 3], np.uint8), 2.0, 128), [-256, -250])


@pytest.mark.parametrize("face", FACES)
def test_dequantize_linear_float16_output_and_per_axis(face):
    y = face.dequantize_linear(np.array([[1, 2], [3, 4]], np.int8), np.array([0.5, 0.25], np.float16),
                               np.array([1, -1], np.int8), axis=0)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, [[0, 0.5], [1, 1.25]])


def test_dequantize_linear_float16_large_difference():
    """Spec: (x - zp) converted to float16 (65533 -> inf); ORT: float32 product rounded to float16."""
    q = np.array([65534], np.uint16)
    assert np.isinf(O.dequantize_linear(q, np.float16(0.3), np.uint16(1))[0])
    assert R.dequantize_linear(q, np.float16(0.3), np.uint16(1))[0] == np.float16(65533 * np.float32(np.float16(0.3)))


def test_dequantize_linear_int32():
    q = np.array([-(2**31), -5, 7, 2**31 - 1, 16777219], np.int32)
    np.testing.assert_array_equal(O.dequantize_linear(q, 1.0), q.astype(np.float32))
    got = R.dequantize_linear(q, 1.0, np.int32(5))  # ORT: x - zp in int32, wrapping
    want = np.array([2**31 - 5, -10, 2, 2**31 - 6, 16777214], np.int64).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("face", FACES)
def test_dynamic_quantize_linear_onnx_doc_example(face):
    y, s, z = face.dynamic_quantize_linear(np.array([0, 2, -3, -2.5, 1.34, 0.5], np.float32))
    assert (y.dtype, s.dtype, z.dtype, s.shape, z.shape) == (np.uint8, np.float32, np.uint8, (), ())
    assert s == np.float32(5) / np.float32(255) and z == 153
    np.testing.assert_array_equal(y, [153, 255, 0, 26, 221, 179])
    y, s, z = face.dynamic_quantize_linear(np.array([-1, 0, 1, 2, 3, 4, 5, 6.5], np.float32))  # backends.md §2.3
    assert z == 34
    np.testing.assert_array_equal(y, [0, 34, 68, 102, 136, 170, 204, 255])


@pytest.mark.parametrize("face", FACES)
def test_dynamic_quantize_linear_all_zero_scale_is_one(face):
    for x in (np.zeros((2, 3), np.float32), np.zeros(0, np.float32)):
        y, s, z = face.dynamic_quantize_linear(x)
        assert y.shape == x.shape and s == 1.0 and z == 0 and not y.any()


def test_dynamic_quantize_linear_non_finite():
    with pytest.raises(UnsupportedError, match="finite"):
        O.dynamic_quantize_linear(np.array([1.0, np.nan], np.float32))
    with pytest.raises(UnsupportedError, match="finite"):
        O.dynamic_quantize_linear(np.array([1.0, np.inf], np.float32))
    # ORT: a NaN in the scalar tail is skipped; a NaN across a whole 8-lane block sticks
    y, s, z = R.dynamic_quantize_linear(np.array([1.0, 2.0, np.nan], np.float32))
    assert s == np.float32(2) / np.float32(255) and z == 0
    np.testing.assert_array_equal(y, [127, 255, 0])  # float32(2/255) is a bit above 2/255: 1/S = 127.49998
    y, s, z = R.dynamic_quantize_linear(np.array([1.0] * 8 + [np.nan] * 8, np.float32))
    assert np.isnan(s) and z == 255 and not y.any()


# ----------------------------------------------------------------------------- bad input

X = np.arange(12, dtype=np.float32).reshape(3, 4)

BAD_QUANTIZE = [
    (dict(y_scale=0.0), QuantizationValueError, "y_scale must be finite and > 0"),
    (dict(y_scale=-1.0), QuantizationValueError, "y_scale"),
    (dict(y_scale=np.nan), QuantizationValueError, "y_scale"),
    (dict(y_scale=np.inf), QuantizationValueError, "y_scale"),
    (dict(y_scale=np.array([1, 0, 1, 1], np.float32), axis=1), QuantizationValueError, "y_scale"),
    (dict(y_scale="0.5"), QuantizationTypeError, "y_scale"),
    (dict(y_scale=None), QuantizationTypeError, "y_scale"),
    (dict(y_zero_point=np.int16(-32768), output_dtype="int16", y_scale=1e-50), QuantizationValueError, "y_scale"),
    (dict(y_zero_point=np.uint8(16), output_dtype="uint4"), QuantizationValueError,
     r"y_zero_point must be in \[0, 15\]"),
    (dict(y_zero_point=np.int8(8), output_dtype="int4"), QuantizationValueError, r"y_zero_point must be in \[-8, 7\]"),
    (dict(y_zero_point=2, output_dtype="int2"), QuantizationValueError, r"y_zero_point must be in \[-2, 1\]"),
    (dict(y_zero_point=np.float32(1.5)), QuantizationTypeError, "y_zero_point"),
    (dict(y_zero_point=1.0, output_dtype="int8"), QuantizationTypeError, "y_zero_point"),
    (dict(y_zero_point=np.int64(3)), QuantizationTypeError, "y_zero_point"),
    (dict(y_zero_point=3), QuantizationTypeError, "Python int"),
    (dict(y_zero_point=np.int8(3), output_dtype="uint8"), QuantizationTypeError, "disagrees with output_dtype"),
    (dict(y_zero_point=np.uint8(3), output_dtype="int4"), QuantizationTypeError, "disagrees with output_dtype"),
    (dict(output_dtype="int3"), QuantizationValueError, "output_dtype"),
    (dict(output_dtype="int32"), QuantizationValueError, "output_dtype"),
    (dict(output_dtype=np.float32), QuantizationValueError, "output_dtype"),
    (dict(output_dtype=99), QuantizationValueError, "output_dtype"),
    (dict(output_dtype=object()), QuantizationTypeError, "output_dtype"),
    (dict(output_dtype="float8e4m3fn"), UnsupportedError, "float8"),
    (dict(output_dtype=17), UnsupportedError, "float8"),
    (dict(y_scale=np.ones(4, np.float32), axis=2), QuantizationValueError, r"axis must be in \[-2, 1\]"),
    (dict(y_scale=np.ones(3, np.float32), axis=-3), QuantizationValueError, "axis"),
    (dict(y_scale=np.ones(4, np.float32), axis="1"), QuantizationTypeError, "axis"),
    (dict(y_scale=np.ones(4, np.float32), axis=1.0), QuantizationTypeError, "axis"),
    (dict(y_scale=np.ones(3, np.float32), axis=1), ShapeError, r"y_scale must have shape \(4,\)"),
    (dict(y_scale=np.ones((3, 2), np.float32), axis=1), ShapeError, "block_size > 0"),
    (dict(y_scale=np.ones((3, 2), np.float32), axis=1, block_size=1), ShapeError, r"block_size must be in \[2, 3\]"),
    (dict(y_scale=np.ones((3, 2), np.float32), axis=1, block_size=4), ShapeError, "block_size must be in"),
    (dict(y_scale=np.ones((3, 3), np.float32), axis=1, block_size=2), ShapeError, "no block_size splits"),
    (dict(y_scale=np.ones((3, 1), np.float32), axis=1, block_size=3), ShapeError, r"block_size must be in \[4, inf\)"),
    (dict(y_scale=np.ones((2, 2), np.float32), axis=1, block_size=2), ShapeError, "except on axis 1"),
    (dict(y_scale=np.ones(2, np.float32), axis=1, block_size=2), ShapeError, "x's rank 2"),
    (dict(y_scale=np.float32(1), block_size=2), ShapeError, "x's rank"),
    (dict(y_scale=np.ones((3, 2), np.float32), axis=1, block_size=-1), QuantizationValueError, "block_size"),
    (dict(y_scale=np.ones((3, 2), np.float32), axis=1, block_size=True), QuantizationTypeError, "block_size"),
    (dict(y_scale=np.ones(4, np.float32), y_zero_point=np.zeros(3, np.int8), axis=1), ShapeError, "y_zero_point"),
    (dict(saturate=2), QuantizationValueError, "saturate"),
    (dict(x=np.array(["a", "b"])), QuantizationTypeError, "x must be a float"),
    (dict(x=np.array([object()])), QuantizationTypeError, "x"),
    (dict(x=np.array([True])), QuantizationTypeError, "x"),
    (dict(x=np.array([1 + 2j])), QuantizationTypeError, "x"),
]


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("kwargs,exc,match", BAD_QUANTIZE)
def test_quantize_linear_bad_input(face, kwargs, exc, match):
    args = dict(x=X, y_scale=np.float32(0.5), y_zero_point=None)
    args.update(kwargs)
    x, s, z = args.pop("x"), args.pop("y_scale"), args.pop("y_zero_point")
    with pytest.raises(exc, match=match):
        face.quantize_linear(x, s, z, **args)


def test_onnxruntime_type_constraints():
    with pytest.raises(UnsupportedError, match="float32 or float16 x"):
        R.quantize_linear(np.array([1, 2], np.int32), 1.0)
    with pytest.raises(UnsupportedError, match="one float type"):
        R.quantize_linear(X, np.float16(0.5))
    with pytest.raises(UnsupportedError, match="one float type"):
        R.quantize_linear(X.astype(np.float16), np.float32(0.5))
    # Python floats and float64 take x's type
    assert R.quantize_linear(X.astype(np.float16), 0.5).dtype == np.uint8


BAD_DEQUANTIZE = [
    (dict(x_scale=0.0), QuantizationValueError, "x_scale must be finite and > 0"),
    (dict(x_scale=np.float32(np.nan)), QuantizationValueError, "x_scale"),
    (dict(x_scale=-np.inf), QuantizationValueError, "x_scale"),
    (dict(x_scale="s"), QuantizationTypeError, "x_scale"),
    (dict(x=np.array([1.5], np.float32)), QuantizationTypeError, "x must be an integer array"),
    (dict(x=np.array(["a"])), QuantizationTypeError, "x must be an integer array"),
    (dict(x=np.array([1], np.int64)), QuantizationTypeError, "x must be an integer array"),
    (dict(x_zero_point=np.uint8(3)), QuantizationTypeError, "x_zero_point must have x's type int8"),
    (dict(x_zero_point=np.float32(3)), QuantizationTypeError, "x_zero_point"),
    (dict(x_zero_point=300), QuantizationValueError, r"x_zero_point must be in \[-128, 127\]"),
    (dict(x_scale=np.ones(5, np.float32), axis=1), ShapeError, "x_scale must have shape"),
    (dict(x_scale=np.ones(4, np.float32), axis=-3), QuantizationValueError, "axis"),
    (dict(x_scale=np.ones((3, 2), np.float32), axis=1, block_size=1), ShapeError, r"block_size must be in \[2, 3\]"),
    (dict(x_scale=np.ones(4, np.float32), x_zero_point=np.zeros(2, np.int8), axis=1), ShapeError, "x_zero_point"),
]


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("kwargs,exc,match", BAD_DEQUANTIZE)
def test_dequantize_linear_bad_input(face, kwargs, exc, match):
    args = dict(x=np.arange(12, dtype=np.int8).reshape(3, 4), x_scale=np.float32(0.5), x_zero_point=None)
    args.update(kwargs)
    x, s, z = args.pop("x"), args.pop("x_scale"), args.pop("x_zero_point")
    with pytest.raises(exc, match=match):
        face.dequantize_linear(x, s, z, **args)


def test_dequantize_linear_int32_zero_point_is_zero_in_the_spec():
    with pytest.raises(QuantizationValueError, match="x_zero_point must be 0 for int32"):
        O.dequantize_linear(np.array([1], np.int32), 1.0, np.int32(5))
    assert O.dequantize_linear(np.array([1], np.int32), 1.0, np.int32(0))[0] == 1.0


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("x", [np.array([1, 2], np.int32), np.array(["a"]), [1, 2]])
def test_dynamic_quantize_linear_bad_input(face, x):
    with pytest.raises(QuantizationTypeError, match="x must be a float"):
        face.dynamic_quantize_linear(x)


# ----------------------------------------------------------------------------- properties

PROPS = settings(max_examples=150, deadline=None, derandomize=True)


@st.composite
def quantizer(draw):
    dt = draw(st.sampled_from(sorted(RANGES)))
    lo, hi = RANGES[dt]
    scale = np.float32(draw(st.floats(2.0 ** -10, 100.0, allow_nan=False, width=32)))
    zp = draw(st.integers(lo, hi))
    return dt, lo, hi, scale, zp


@pytest.mark.parametrize("face", FACES)
@PROPS
@given(q=quantizer(), u=st.lists(st.floats(0, 1), min_size=1, max_size=64))
def test_roundtrip_error_at_most_half_a_step(face, q, u):
    dt, lo, hi, s, zp = q
    x = ((lo - zp) + np.array(u) * (hi - lo)) * np.float64(s)  # inside [(qmin - Z) S, (qmax - Z) S]
    x = x.astype(np.float32)
    codes = face.quantize_linear(x, s, zp, output_dtype=dt)
    r = face.dequantize_linear(codes, s, np.array(zp, CONTAINER[dt]))
    err = np.abs(r.astype(np.float64) - x.astype(np.float64))
    bound = s / 2 + 2.0 ** -22 * (np.abs(x) + s)  # half a step, plus the float32 roundings of x/S and (q - Z)S
    assert np.all(err <= bound), (x[err > bound], r[err > bound], s, zp)


@pytest.mark.parametrize("face", FACES)
@PROPS
@given(q=quantizer())
def test_zero_is_exactly_representable(face, q):
    dt, lo, hi, s, zp = q
    code = face.quantize_linear(np.zeros(3, np.float32), s, zp, output_dtype=dt)
    np.testing.assert_array_equal(code, zp)
    back = face.dequantize_linear(code, s, np.array(zp, CONTAINER[dt]))
    np.testing.assert_array_equal(back.view(np.uint32), np.zeros(3, np.float32).view(np.uint32))


@pytest.mark.parametrize("face", FACES)
@PROPS
@given(q=quantizer(), c=st.integers(1, 5), data=st.data())
def test_per_channel_equals_per_tensor_on_each_channel(face, q, c, data):
    dt, lo, hi, _, _ = q
    scales = np.array(data.draw(st.lists(st.floats(2.0 ** -10, 100.0, width=32), min_size=c, max_size=c)), np.float32)
    zps = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=c, max_size=c)), CONTAINER[dt])
    x = np.array(data.draw(st.lists(st.floats(-1e4, 1e4, width=32), min_size=3 * c, max_size=3 * c)),
                 np.float32).reshape(3, c)
    y = face.quantize_linear(x, scales, zps, axis=1, output_dtype=dt)
    for k in range(c):
        np.testing.assert_array_equal(y[:, k], face.quantize_linear(x[:, k], scales[k], zps[k], output_dtype=dt))
    d = face.dequantize_linear(y, scales, zps, axis=1)
    for k in range(c):
        np.testing.assert_array_equal(d[:, k].view(np.uint32),
                                      face.dequantize_linear(y[:, k], scales[k], zps[k]).view(np.uint32))


@pytest.mark.parametrize("face", FACES)
@PROPS
@given(q=quantizer(), xs=st.lists(st.floats(allow_nan=False, width=32), min_size=2, max_size=64))
def test_quantize_is_monotone_in_x(face, q, xs):
    dt, lo, hi, s, zp = q
    x = np.sort(np.array(xs, np.float32))  # +-inf included
    y = face.quantize_linear(x, s, zp, output_dtype=dt).astype(np.int64)
    assert np.all(np.diff(y) >= 0)

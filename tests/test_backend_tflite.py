"""refquant.backends.tflite without LiteRT: hand-worked values, shapes, properties, bad input.

The bit-exact comparison with the real interpreter is in
``test_conformance_tflite_quantize.py``; the values below were measured there (LiteRT 2.3.0,
x86-64) and are small enough to check by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.backends import tflite
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.profiles import get_profile
from refquant.qparams import make_qparams
from refquant.quantization import QuantizeSpec
from refquant.quantization import quantize as core_quantize

pytestmark = pytest.mark.kernels

KERNELS = tflite.KERNELS
TIES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e10, -1e10], np.float32)


# --------------------------------------------------------------------------- hand-worked values


def test_ties_per_kernel():
    # reference: RHAZ(x / s) + zp; xnnpack: RNE(x * (1/s)) + zp; optimized: 6 < 8 elements, all in
    # the scalar tail, RHAZ(double(x) / double(s)) + zp (backends.md §1.7)
    np.testing.assert_array_equal(tflite.quantize(TIES, 1.0, 1), [2, 3, 4, 0, -1, -2])
    np.testing.assert_array_equal(tflite.quantize(TIES, 1.0, 1, kernel="xnnpack"), [1, 3, 3, 1, -1, -1])
    np.testing.assert_array_equal(tflite.quantize(TIES, 1.0, 1, kernel="optimized"), [2, 3, 4, 0, -1, -2])


def test_optimized_depends_on_position():
    # 8-wide SIMD block rounds half to even, the tail half away from zero
    x = np.array([0.5] * 8 + [0.5, 2.5, -0.5], np.float32)
    np.testing.assert_array_equal(tflite.quantize(x, 1.0, 0, kernel="optimized"), [0] * 8 + [1, 3, -1])
    np.testing.assert_array_equal(tflite.quantize(x, 1.0, 0, kernel="reference"), [1] * 8 + [1, 3, -1])
    # C order decides the position: a (3, 4) tensor has one block of 8 and a tail of 4
    y = tflite.quantize(np.full((3, 4), 0.5, np.float32), 1.0, 0, kernel="optimized")
    np.testing.assert_array_equal(y, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])


@pytest.mark.parametrize("dtype, zp, lo, hi", [("int8", 0, -128, 127), ("int8", -3, -128, 127),
                                               ("uint8", 200, 0, 255), ("int16", 0, -32768, 32767),
                                               ("int16", -1, -32768, 32767), ("int4", 1, -8, 7)])
def test_specials(dtype, zp, lo, hi):
    # reference: (int32) cast gives INT32_MIN for NaN/inf/huge; + zp wraps when zp < 0 (backends.md §9)
    wrapped = hi if zp < 0 else lo
    np.testing.assert_array_equal(tflite.quantize(SPECIALS, 0.5, zp, dtype=dtype), [wrapped] * 5)
    if dtype in ("int8", "uint8"):  # xnnpack: NaN and +inf saturate high, -inf low
        np.testing.assert_array_equal(tflite.quantize(SPECIALS, 0.5, zp, dtype=dtype, kernel="xnnpack"),
                                      [hi, hi, lo, hi, lo])


def test_finite_value_below_2_31_wraps():
    # x/s = 2147483520 (the largest float32 below 2^31) + 200 overflows int32: 0 for uint8
    assert tflite.quantize(np.float32(2147483520.0), 1.0, 200, dtype="uint8") == 0


def test_xnnpack_flushes_subnormals():
    x = np.array([1.1e-38, 1.17549435e-38], np.float32)  # subnormal, smallest normal
    np.testing.assert_array_equal(tflite.quantize(x, 1.2e-38, 0), [1, 1])
    np.testing.assert_array_equal(tflite.quantize(x, 1.2e-38, 0, kernel="xnnpack"), [0, 1])
    # scale > 2^126: the reciprocal is subnormal, flushed to 0; inf * 0 = NaN -> qmax
    x = np.array([3e38, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(tflite.quantize(x, 1e38, 0), [3, -128, -128])
    np.testing.assert_array_equal(tflite.quantize(x, 1e38, 0, kernel="xnnpack"), [0, 127, 127])


def test_core_denormals_option():
    qp = make_qparams(1.2e-38, 0, "int8")
    x = np.array([1.1e-38, -1.1e-38, 2.4e-38], np.float32)
    assert core_quantize(x, qp, QuantizeSpec(rounding="half_away_from_zero")).tolist() == [1, -1, 2]
    assert core_quantize(x, qp, QuantizeSpec(rounding="half_away_from_zero", denormals="flush")).tolist() == [0, 0, 2]
    from refquant.specs import select_spec
    assert select_spec(get_profile("tflite_xnnpack").quantize, qp, x.shape).denormals == "flush"
    with pytest.raises(QuantizationValueError, match="denormals"):
        QuantizeSpec(denormals="daz")


def test_int16_quantize_applies_any_zero_point():
    # QUANTIZE accepts a nonzero int16 zero point (LiteRT 2.3.0); DEQUANTIZE refuses it
    np.testing.assert_array_equal(tflite.quantize(TIES, 1.0, 1, dtype="int16"), [2, 3, 4, 0, -1, -2])


def test_float64_input_rounds_to_float32_first():
    x = np.float64(2.5) - 2.0 ** -30  # float32(x) = 2.5, a tie
    assert tflite.quantize(x, 1.0, 0) == 3


def test_dequantize_values():
    q = np.array([-128, -1, 0, 1, 127], np.int8)
    y = tflite.dequantize(q, 0.5, -2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [-63.0, 0.5, 1.0, 1.5, 64.5])
    # optimized blocks compute float32(q*s) - float32(zp*s): 127*0.1 - 3*0.1 is 1 ulp off
    q = np.full(9, 127, np.int8)
    opt = tflite.dequantize(q, 0.1, 3, kernel="optimized").view(np.uint32)
    ref = tflite.dequantize(q, 0.1, 3).view(np.uint32)
    assert (opt[:8] != ref[:8]).all() and opt[8] == ref[8]
    np.testing.assert_array_equal(tflite.dequantize(q, 0.1, 3, kernel="xnnpack").view(np.uint32), ref)


# --------------------------------------------------------------------------- dtypes, shapes, per-channel


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype, np_dtype", [("int8", np.int8), ("uint8", np.uint8), ("int16", np.int16),
                                             ("int4", np.int8), ("uint4", np.uint8), (np.int8, np.int8)])
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (7,), (2, 3, 5)])
def test_shapes_and_dtypes(kernel, dtype, np_dtype, shape):
    x = np.linspace(-4, 4, int(np.prod(shape))).astype(np.float32).reshape(shape)
    q = tflite.quantize(x, 0.25, 0, dtype=dtype, kernel=kernel)
    assert q.shape == shape and q.dtype == np_dtype
    if np_dtype != np.int8 or dtype == "int4":
        return
    y = tflite.dequantize(q, 0.25, 0, kernel=kernel)
    assert y.shape == shape and y.dtype == np.float32


def test_per_channel():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 + 0.25
    # measured on LiteRT 2.3.0 (PerChannelQuantize: RHAZ(x / s[c]) + zp[c]), every kernel
    want = [[0, 3, 3, 4], [2, 7, 11, 5], [4, 11, 19, 6]]
    for kernel in KERNELS:
        got = tflite.quantize(x, [1.0, 0.5, 0.25, 2.0], np.array([0, 1, -2, 3]), axis=1, kernel=kernel)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(
            tflite.quantize(x, [1.0, 0.5, 0.25, 2.0], [0, 1, -2, 3], axis=-1, kernel=kernel), want)
    # default axis 0; a shared zero point; a one-element scale is per-tensor
    y = tflite.quantize(x, [1.0, 0.5, 0.25], 2)
    np.testing.assert_array_equal(y[1], tflite.quantize(x[1], 0.5, 2))
    np.testing.assert_array_equal(tflite.quantize(x, np.array([0.5]), np.array([2])), tflite.quantize(x, 0.5, 2))
    q = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    np.testing.assert_array_equal(tflite.dequantize(q, [1.0, 0.5, 0.25], [0, 1, -2])[2],
                                  tflite.dequantize(q[2], 0.25, -2))


# --------------------------------------------------------------------------- properties


finite_x = st.floats(-1000, 1000, allow_nan=False, width=32)
scales = st.sampled_from([1.0, 0.5, 2.0 ** -7, 0.0123, 0.37, 3.0])


@settings(max_examples=60, deadline=None)
@given(x=st.lists(finite_x, min_size=1, max_size=24), s=scales, zp=st.integers(-128, 127),
       kernel=st.sampled_from(KERNELS))
def test_property_roundtrip_within_half_step(x, s, zp, kernel):
    x = np.asarray(x, np.float32)
    s32 = float(np.float32(s))
    inside = (x / s32 + zp >= -128) & (x / s32 + zp <= 127)
    r = tflite.dequantize(tflite.quantize(x, s, zp, kernel=kernel), s, zp, kernel=kernel)
    err = np.abs(r.astype(np.float64) - x.astype(np.float64))[inside]
    assert (err <= s32 / 2 * (1 + 1e-5) + 1e-30).all()


@settings(max_examples=40, deadline=None)
@given(x=st.lists(finite_x, min_size=1, max_size=24), s=scales, zp=st.integers(-128, 127),
       kernel=st.sampled_from(KERNELS))
def test_property_monotone_and_zero_exact(x, s, zp, kernel):
    xs = np.sort(np.asarray(x, np.float32))
    for v in (xs, xs[::-1]):
        # element-wise calls: every element takes the same path (a lone element is in the tail)
        q = np.array([int(tflite.quantize(e, s, zp, kernel=kernel)) for e in v])
        assert (np.diff(q) >= 0).all() if v is xs else (np.diff(q) <= 0).all()
    assert int(tflite.quantize(np.float32(0.0), s, zp, kernel=kernel)) == zp
    assert float(tflite.dequantize(np.int8(zp), s, zp, kernel=kernel)) == 0.0


# --------------------------------------------------------------------------- bad input


X = np.linspace(-1, 1, 5).astype(np.float32)


@pytest.mark.parametrize("scale, exc, msg", [
    (0.0, QuantizationValueError, r"scale must be finite and > 0, got 0\.0"),
    (-0.5, QuantizationValueError, r"scale must be finite and > 0, got -0\.5"),
    (np.nan, QuantizationValueError, r"scale must be finite and > 0, got nan"),
    (np.inf, QuantizationValueError, r"scale must be finite and > 0, got inf"),
    (1e-50, QuantizationValueError, r"scale must be finite and > 0 in float32"),
    ("0.5", QuantizationTypeError, r"scale must be a positive float"),
    (None, QuantizationTypeError, r"scale must be a positive float"),
    (np.array([]), ShapeError, r"scale must not be empty"),
    (np.ones((2, 2)), ShapeError, r"scale must be a scalar or 1-D"),
])
def test_bad_scale(scale, exc, msg):
    with pytest.raises(exc, match=msg):
        tflite.quantize(X, scale, 0)
    with pytest.raises(exc, match=msg):
        tflite.dequantize(np.zeros(5, np.int8), scale, 0)


@pytest.mark.parametrize("zp, dtype, exc, msg", [
    (300, "int8", QuantizationValueError, r"zero_point must be in \[-128, 127\] for int8, got 300"),
    (-1, "uint8", QuantizationValueError, r"zero_point must be in \[0, 255\] for uint8, got -1"),
    (40000, "int16", QuantizationValueError, r"zero_point must be in \[-32768, 32767\] for int16, got 40000"),
    (8, "int4", QuantizationValueError, r"zero_point must be in \[-8, 7\] for int4, got 8"),
    (2.5, "int8", QuantizationTypeError, r"zero_point must be an integer, got 2\.5"),
    (np.nan, "int8", QuantizationTypeError, r"zero_point must be an integer"),
    ("1", "int8", QuantizationTypeError, r"zero_point must be an integer"),
])
def test_bad_zero_point(zp, dtype, exc, msg):
    with pytest.raises(exc, match=msg):
        tflite.quantize(X, 0.5, zp, dtype=dtype)


def test_bad_zero_point_dequantize():
    with pytest.raises(QuantizationValueError, match=r"zero_point must be in \[0, 255\] for uint8, got 256"):
        tflite.dequantize(np.zeros(3, np.uint8), 0.5, 256)
    msg = r"zero_point must be 0 for int16 \(TFLite DEQUANTIZE\), got 4"
    with pytest.raises(QuantizationValueError, match=msg):
        tflite.dequantize(np.zeros(3, np.int16), 0.5, 4)


@pytest.mark.parametrize("dtype, exc, msg", [
    ("int7", QuantizationValueError, r"dtype must be one of .*got 'int7'"),
    ("int32", QuantizationValueError,
     r"dtype must be one of \('int8', 'uint8', 'int16', 'int4', 'uint4'\).*got 'int32'"),
    ("uint16", QuantizationValueError, r"got 'uint16'"),
    (np.float32, QuantizationValueError, r"dtype must be an integer format"),
    (None, QuantizationTypeError, r"dtype must be a format name"),
])
def test_bad_dtype(dtype, exc, msg):
    with pytest.raises(exc, match=msg):
        tflite.quantize(X, 0.5, 0, dtype=dtype)


@pytest.mark.parametrize("kernel, exc", [("fast", QuantizationValueError), ("ref", QuantizationValueError),
                                         ("", QuantizationValueError), (None, QuantizationTypeError),
                                         (1, QuantizationTypeError)])
def test_bad_kernel(kernel, exc):
    msg = r"kernel must be one of \('reference', 'xnnpack', 'optimized'\), got "
    with pytest.raises(exc, match=msg):
        tflite.quantize(X, 0.5, 0, kernel=kernel)
    with pytest.raises(exc, match=msg):
        tflite.dequantize(np.zeros(3, np.int8), 0.5, 0, kernel=kernel)


@pytest.mark.parametrize("x, msg", [
    (["a", "b"], r"x must be a real float array, got dtype <U1"),
    (np.array([1 + 2j]), r"x must be a real float array, got dtype complex128"),
    (np.array([object()]), r"x must be a real float array, got dtype object"),
    (np.arange(3, dtype=np.int32), r"x must be a float array, got integer dtype int32"),
    ("1.5", r"x must be a real float array"),
])
def test_bad_x(x, msg):
    with pytest.raises(QuantizationTypeError, match=msg):
        tflite.quantize(x, 0.5, 0)


@pytest.mark.parametrize("q, msg", [
    (np.zeros(3, np.float32), r"q must be an integer array, got dtype float32"),
    ([1.0, 2.0], r"q must be an integer array, got dtype float64"),
    (np.zeros(3, np.int32), r"q must have dtype int8, uint8, int16 \(TFLite DEQUANTIZE inputs\), got int32"),
    (np.zeros(3, np.uint16), r"got uint16"),
    ([1, 2], r"got int64"),
    (["1"], r"q must be an integer array"),
])
def test_bad_q(q, msg):
    with pytest.raises(QuantizationTypeError, match=msg):
        tflite.dequantize(q, 0.5, 0)


def test_bad_axis_and_shapes():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(QuantizationTypeError, match=r"axis must be an integer, got '0'"):
        tflite.quantize(x, 0.5, 0, axis="0")
    with pytest.raises(QuantizationTypeError, match=r"axis must be an integer, got True"):
        tflite.quantize(x, 0.5, 0, axis=True)
    with pytest.raises(QuantizationValueError, match=r"axis must be in \[-2, 1\] for a rank-2 input, got 2"):
        tflite.quantize(x, [0.5, 0.25, 1.0], 0, axis=2)
    with pytest.raises(ShapeError, match=r"scale must have 4 elements to match x.shape\[1\] = 4, got 3"):
        tflite.quantize(x, [0.5, 0.25, 1.0], 0, axis=1)
    with pytest.raises(ShapeError, match=r"zero_point must be a scalar or have the scale's shape \(3,\), got \(2,\)"):
        tflite.quantize(x, [0.5, 0.25, 1.0], [0, 1], axis=0)
    with pytest.raises(ShapeError, match=r"zero_point must be a scalar for a per-tensor scale, got shape \(3,\)"):
        tflite.quantize(x, 0.5, [0, 1, 2])
    with pytest.raises(ShapeError, match=r"needs an input of rank >= 1, got a scalar"):
        tflite.quantize(np.float32(1.0), [0.5, 0.25], 0)
    with pytest.raises(ShapeError, match=r"scale must have 3 elements"):
        tflite.dequantize(np.zeros((3, 4), np.int8), [0.5, 0.25], 0)


def test_unsupported_requests():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(UnsupportedError, match=r"no per-channel QUANTIZE to int4"):
        tflite.quantize(x, [0.5, 0.25, 1.0], 0, dtype="int4")
    with pytest.raises(UnsupportedError, match=r"no per-channel DEQUANTIZE of int16"):
        tflite.dequantize(np.zeros((3, 4), np.int16), [0.5, 0.25, 1.0], 0)
    with pytest.raises(UnsupportedError, match=r"subnormal scale"):
        tflite.quantize(x, 1e-40, 0, kernel="xnnpack")
    with pytest.raises(UnsupportedError, match=r"subnormal scale"):
        tflite.dequantize(np.zeros(4, np.uint8), 1e-40, 0, kernel="xnnpack")
    # where XNNPACK does not take the node, the builtin kernels run: no refusal
    assert tflite.quantize(x, 1e-40, 0, dtype="int16", kernel="xnnpack").shape == (3, 4)
    assert tflite.quantize(x, 1e-40, 0, kernel="reference").shape == (3, 4)

"""refquant.backends.pytorch without torch: hand-checked vectors, properties and bad input.

The vectors come from backends.md §3 and from torch 2.13 runs (tests/test_conformance_pytorch.py
compares against torch itself on thousands of cases).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.backends import pytorch as P
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError

NAN, INF = np.float32(np.nan), np.float32(np.inf)
EPS = np.float32(1.1920929e-07)
RANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-2**31, 2**31 - 1)}


def f32(*v):
    return np.array(v, np.float32)


# ------------------------------------------------------------------ quantize / dequantize vectors

@pytest.mark.kernels
def test_zero_point_before_rounding_in_torch_2_13():
    """backends.md §3.1: scale 1, zp 1, qint8 -> [2, 2, 4, 0, 0, -2]; after rounding: [1, 3, 3, 1, -1, -1]."""
    x = f32(0.5, 1.5, 2.5, -0.5, -1.5, -2.5)
    for dtype in ("qint8", "qint32"):
        assert P.quantize_per_tensor(x, 1.0, 1, dtype).tolist() == [2, 2, 4, 0, 0, -2]
        assert P.quantize_per_tensor(x, 1.0, 1, dtype, zero_point_order="after").tolist() == [1, 3, 3, 1, -1, -1]
        assert P.quantize_per_channel(x[:, None], [1.0], [1], 1, dtype)[:, 0].tolist() == [2, 2, 4, 0, 0, -2]
    assert P.quantize_per_tensor(x, 1.0, 11, "quint8").tolist() == [12, 12, 14, 10, 10, 8]


@pytest.mark.kernels
def test_multiply_by_float32_reciprocal():
    """fbgemm QuantUtils.h: x * (1/s) = 127.5 -> 128, while x / s = 127.49999 -> 127."""
    q = P.quantize_per_tensor(f32(0.273939937), np.float32(0.00214854861), 0, "quint8")
    assert q.tolist() == [128] and q.dtype == np.uint8


@pytest.mark.kernels
def test_fma_versus_two_roundings():
    """A near tie where fma(x, 1/S, Z) and f32(f32(x/S) + Z) round differently (measured in torch 2.13:
    per-tensor qint8 gives the FMA result, per-channel and qint32 the two-rounding one)."""
    s = np.float32(0.1)
    x = np.nextafter(np.float32(0.75), np.float32(1))  # x * (1/s) = 7.5000006 exactly; + 1 = 8.5000006
    a = P.quantize_per_tensor(f32(x), s, 1, "qint8")[0]  # one rounding: 8.500001 -> 9
    b = P.quantize_per_channel(f32(x)[:, None], [s], [1], 1, "qint8")[0, 0]  # f32(7.5000005 + 1) = 8.5 -> 8
    c = P.quantize_per_tensor(f32(x), s, 1, "qint32")[0]
    assert (int(a), int(b), int(c)) == (9, 8, 8)  # torch 2.13: (9, 8, 8)


@pytest.mark.kernels
def test_specials_by_path():
    x = f32(NAN, INF, -INF, 1e10, -1e10)
    assert P.quantize_per_tensor(x, 1.0, 3, "quint8").tolist() == [255, 255, 0, 255, 0]
    assert P.quantize_per_tensor(x, 1.0, -3, "qint8").tolist() == [127, 127, -128, 127, -128]
    assert P.quantize_per_tensor(x, 1.0, 0, "qint32").tolist() == [-2**31, 2**31 - 1, -2**31, 2**31 - 1, -2**31]
    assert P.quantize_per_channel(x[:, None], [1.0], [3], 1, "quint8")[:, 0].tolist() == [0, 255, 0, 255, 0]
    assert P.quantize_per_channel(x[:, None], [1.0], [-3], 1, "qint8")[:, 0].tolist() == [0, 127, -128, 127, -128]


@pytest.mark.kernels
def test_qint32_zero_point_is_added_in_float32():
    """127.5 + f32(2^30 + 1) = 1073741951.5 rounds to the float32 1073741952 (ulp 128)."""
    q = P.quantize_per_tensor(f32(127.5, -128.5, 2.5), 1.0, 2**30 + 1, "qint32")
    assert q.tolist() == [1073741952, 1073741696, 1073741824]


@pytest.mark.kernels
def test_dequantize_qint32_wraps_per_tensor_only():
    q = np.array([-2**31, 5], np.int32)
    d = P.dequantize(q, 1.0, 5)
    assert d.dtype == np.float32 and d.tolist() == [2.0**31, 0.0]  # INT32_MIN - 5 wrapped: 2147483643 -> f32 2^31
    dc = P.dequantize(q[:, None], np.array([1.0]), np.array([5]), axis=1)
    assert dc[:, 0].tolist() == [-(2.0**31), 0.0]


@pytest.mark.kernels
def test_dequantize_per_channel_uses_float64_scale():
    q = np.array([[7]], np.uint8)
    d = P.dequantize(q, np.array([0.37]), np.array([0]), axis=1)
    assert d[0, 0] == np.float32(7 * 0.37)  # the float64 product, rounded once
    assert d[0, 0] != np.float32(7) * np.float32(0.37)


# ------------------------------------------------------------------ fake quantize

@pytest.mark.kernels
def test_fake_quant_vectors():
    """backends.md §3.2: s=.5, zp=1, [-4, 3]."""
    x = f32(-3, -1.25, -0.5, 0.5, 1.25, 2.5, 100)
    y, mask = P.fake_quantize_per_tensor_affine_cachemask(x, 0.5, 1, -4, 3)
    assert y.tolist() == [-2.5, -1, -0.5, 0.5, 1, 1, 1]
    g = P.fake_quantize_per_tensor_affine_cachemask_backward(np.ones(7, np.float32), mask)
    assert g.tolist() == [0, 1, 1, 1, 1, 0, 0]
    yc, mc = P.fake_quantize_per_channel_affine_cachemask(x[:, None], [0.5], [1], 1, -4, 3)
    assert yc[:, 0].tolist() == y.tolist() and mc[:, 0].tolist() == mask.tolist()
    # zero point after rounding: [0, 2, 0, 2] where quantize -> dequantize gives [1, 3, -1, 1]
    x = f32(0.5, 2.5, -0.5, 1.5)
    assert P.fake_quantize_per_tensor_affine(x, 1.0, 1, -128, 127).tolist() == [0, 2, 0, 2]
    assert P.dequantize(P.quantize_per_tensor(x, 1.0, 1, "qint8"), 1.0, 1).tolist() == [1, 3, -1, 1]


@pytest.mark.kernels
def test_fake_quant_specials_per_tensor_vs_per_channel():
    x = f32(NAN, INF, -INF, 1e10, 3e38)
    y, m = P.fake_quantize_per_tensor_affine_cachemask(x, 1.0, 1, -128, 127)
    assert y.tolist() == [-129, 126, -129, 126, 126] and not m.any()
    yc, mc = P.fake_quantize_per_channel_affine_cachemask(x[:, None], [1.0], [1], 1, -128, 127)
    assert yc[:, 0].tolist() == [-129, -129, -129, 126, -129] and not mc.any()  # int64 cast: Inf -> INT64_MIN


@pytest.mark.kernels
def test_fake_quant_mask_compares_in_float_per_tensor_only():
    x = f32(2.0**31)
    _, m = P.fake_quantize_per_tensor_affine_cachemask(x, 1.0, 0, -2**31, 2**31 - 1)
    _, mc = P.fake_quantize_per_channel_affine_cachemask(x[:, None], [1.0], [0], 1, -2**31, 2**31 - 1)
    assert m.tolist() == [True] and mc.tolist() == [[False]]


@pytest.mark.kernels
def test_fake_quant_dtypes():
    x = np.array([0.1, 0.7, 1 / 3, 2.5])
    assert P.fake_quantize_per_tensor_affine(x, 0.1, 0, -128, 127)[1] == np.float64(np.float32(7 * np.float32(0.1)))
    assert P.fake_quantize_per_channel_affine(x[:, None], [0.1], [0], 1, -128, 127)[1, 0] == 7 * np.float64(np.float32(0.1))
    h = P.fake_quantize_per_tensor_affine(x.astype(np.float16), 0.1, 0, -128, 127)
    assert h.dtype == np.float16


@pytest.mark.kernels
def test_cachemask_backward_is_a_product():
    g = f32(-1.0, NAN, 2.0, -INF)
    out = P.fake_quantize_per_tensor_affine_cachemask_backward(g, np.array([False, False, True, False]))
    assert np.signbit(out[0]) and out[0] == 0 and np.isnan(out[1]) and out[2] == 2 and np.isnan(out[3])


@pytest.mark.kernels
def test_learnable_gradient_vector():
    """backends.md §3.2: x=[-3,-1.25,.3,.7,1.25,2.5], s=.5, zp=1, [-4,3]: ds=-1.5, dzp=-1.5, dx=[0,1,1,1,0,0]."""
    x = f32(-3, -1.25, 0.3, 0.7, 1.25, 2.5)
    dx, ds, dz = P.fake_quantize_learnable_per_tensor_affine_backward(np.ones(6, np.float32), x, 0.5, 1.0, -4, 3)
    assert dx.tolist() == [0, 1, 1, 1, 0, 0]
    np.testing.assert_allclose(ds, [-1.5], rtol=1e-6)
    np.testing.assert_allclose(dz, [-1.5], rtol=1e-6)
    assert ds.shape == (1,) and dz.dtype == np.float32
    # the forward keeps the zero point after rounding: x = 1.25 gives 1.0 but a gradient mask of 0
    assert P.fake_quantize_learnable_per_tensor_affine(x, 0.5, 1.0, -4, 3)[4] == 1.0
    _, ds_e, dz_e = P.fake_quantize_learnable_per_tensor_affine_backward(np.ones(6, np.float32), x, 0.5, 1.0, -4, 3,
                                                                         reduce=False)
    assert ds_e.shape == (6,) and dz_e.tolist() == [-0.5, 0, 0, 0, -0.5, -0.5]


@pytest.mark.kernels
def test_core_spec_options_added_for_this_face():
    """The QuantizeSpec/DequantizeSpec options this face needs, on hand-worked values."""
    from refquant import make_qparams
    from refquant.quantization import DequantizeSpec, QuantizeSpec, dequantize, fake_quantize_with_mask, quantize
    qp = make_qparams(1.0, 2**30 + 1, "int32")
    after_f = QuantizeSpec(division="multiply_reciprocal", zero_point="after_round_float")
    assert quantize(f32(100.0), qp, after_f).tolist() == [1073741952]  # f32(2^30 + 1) + 100 -> ulp 128
    trunc = QuantizeSpec(nan="int_cast_truncate")
    assert quantize(f32(NAN), make_qparams(1.0, 5, "int8"), trunc).tolist() == [0]
    assert quantize(f32(NAN), make_qparams(1.0, 5, "int32"), trunc).tolist() == [-2**31]
    i64 = QuantizeSpec(zero_point="after_round_float", overflow="int64_cast")
    assert quantize(f32(INF, 1e10), make_qparams(1.0, 0, "int8"), i64).tolist() == [-128, 127]
    qp32 = make_qparams(1.0, 0, "int32")
    _, m = fake_quantize_with_mask(f32(2.0**31), qp32, QuantizeSpec(zero_point="after_round_float", mask_compare="float"))
    _, mi = fake_quantize_with_mask(f32(2.0**31), qp32, QuantizeSpec(zero_point="after_round_float"))
    assert m.tolist() == [True] and mi.tolist() == [False]
    q = np.array([7], np.uint8)
    d = dequantize(q, make_qparams([0.37], [0], "uint8", axis=0, scale_dtype=np.float64),
                   DequantizeSpec(scale_precision="float64"))
    assert d.tolist() == [np.float32(7 * 0.37)]
    r = QuantizeSpec(division="multiply_reciprocal", precision="float64", reciprocal="float32")
    # x * float32(1/S) in double: 0.005859375 * 85.333336 = 0.50000002 -> 1 (a float32 product would be 0.5 -> 0)
    assert quantize(np.array([0.005859375]), make_qparams(0.01171875, 0, "uint8"), r).tolist() == [1]


# ------------------------------------------------------------------ observers

@pytest.mark.kernels
@pytest.mark.parametrize("dtype,qscheme,rr,want", [
    ("quint8", "per_tensor_affine", False, (0.02509804, 52)),
    ("quint8", "per_tensor_affine", True, (0.05039370, 26)),
    ("qint8", "per_tensor_affine", False, (0.02509804, -76)),
    ("qint8", "per_tensor_symmetric", False, (0.04, 0)),
    ("qint8", "per_tensor_symmetric", True, (0.08031496, 0)),
    ("quint8", "per_tensor_symmetric", False, (0.04, 128)),
])
def test_observer_vectors(dtype, qscheme, rr, want):
    """backends.md §3.3, data [-1.3, 0.2, 2.7, 5.1]."""
    s, z = P.choose_qparams(-1.3, 5.1, dtype=dtype, qscheme=qscheme, reduce_range=rr)
    assert s.shape == (1,) and s.dtype == np.float32 and z.shape == (1,)
    np.testing.assert_allclose(s[0], want[0], rtol=1e-6)
    assert int(z[0]) == want[1]
    assert z.dtype == (np.int32 if qscheme.endswith("affine") else np.int64)


@pytest.mark.kernels
def test_observer_degenerate_ranges():
    assert P.choose_qparams(0.0, 0.0) == (pytest.approx([EPS]), [0])
    s, z = P.choose_qparams(0.0, 0.0, dtype="qint8")
    assert s[0] == EPS and z[0] == -128
    s, z = P.choose_qparams(np.inf, -np.inf)  # an observer that saw nothing
    assert s.tolist() == [1.0] and z.tolist() == [0] and z.dtype == np.int64
    s, z = P.choose_qparams(np.zeros(0), np.zeros(0), qscheme="per_channel_affine")
    assert s.tolist() == [1.0] and z.tolist() == [0]
    s, z = P.choose_qparams(f32(-1, 0, 2), f32(1, 0, 2), dtype="qint8", qscheme="per_channel_symmetric")
    assert s.shape == (3,) and s[1] == EPS and z.tolist() == [0, 0, 0]
    s, z = P.choose_qparams(-1.0, 0.0, dtype="qint32")  # -1/eps overflows int32: INT32_MIN, then int32 wrap
    assert s[0] == EPS and z.tolist() == [-2139095040]
    s, z = P.choose_qparams(-3e38, 3e38)  # the range overflows float32: scale inf
    assert np.isinf(s[0])
    with pytest.raises(QuantizationValueError, match="min_val must be <= max_val"):
        P.choose_qparams(2.0, 1.0)
    with pytest.raises(QuantizationValueError, match="min_val must be <= max_val"):
        P.choose_qparams(f32(np.inf), f32(-np.inf), qscheme="per_channel_affine")


@pytest.mark.kernels
def test_observer_custom_ranges():
    assert P.observer_qmin_qmax("qint8", quant_min=-8, quant_max=7, reduce_range=True) == (-4, 3)
    assert P.observer_qmin_qmax("quint8", quant_min=0, quant_max=15) == (0, 15)
    assert P.observer_qmin_qmax("int16", reduce_range=True) == (-32768, 32767)
    assert P.observer_qmin_qmax("quint8", quant_min=0) == (0, 255)  # one bound alone is ignored
    s, z = P.choose_qparams(-1.0, 1.0, dtype="quint8", qscheme="per_tensor_symmetric", quant_min=0, quant_max=15)
    assert z.tolist() == [7]
    s, z = P.choose_qparams(-1.0, 1.0, dtype="uint16", qscheme="per_tensor_symmetric")
    assert z.tolist() == [32768]


@pytest.mark.kernels
def test_choose_qparams_dynamic_vectors():
    s, z = P.choose_qparams_dynamic(0.0, 0.0)  # scale 0 -> 0.1
    assert s == np.float32(0.1) and z == 0
    s, z = P.choose_qparams_dynamic(-1e-6, 1e-6)  # below 6.1e-5: floored, range rescaled
    assert s == np.float32(6.1e-5) and z == 128
    s, z = P.choose_qparams_dynamic(-1.0, 3.0, force_scale_power_of_two=True)
    assert s == np.float32(1 / 32) and z == 32
    s, z = P.choose_qparams_dynamic(-1.0, 2.0, preserve_sparsity=True)
    assert z == 128 and s == np.float32(float(np.float32(2) / np.float32(127)) * 255 / 255)
    s, z = P.choose_qparams_dynamic(-1.3, 5.1, reduce_range=True)
    assert z == 26  # qmax 127
    with pytest.raises(QuantizationValueError):
        P.choose_qparams_dynamic(1.0, -1.0)
    with pytest.raises(QuantizationValueError):
        P.choose_qparams_dynamic(np.nan, 1.0)


# ------------------------------------------------------------------ properties

_settings = settings(max_examples=150, deadline=None)
_scales = st.floats(float(np.float32(1e-3)), 10.0, width=32)


@_settings
@given(st.sampled_from(list(RANGES)), _scales, st.integers(-100, 300), st.lists(st.floats(-1e3, 1e3, width=32), max_size=30),
       st.sampled_from(P.ZERO_POINT_ORDERS))
def test_roundtrip_error_within_half_step(dtype, s, zp, xs, order):
    lo, hi = RANGES[dtype]
    zp = min(max(zp, lo), hi)
    s = np.float32(s)
    x = np.array(xs, np.float32)
    x = x[((x / s + zp) > lo) & ((x / s + zp) < hi)]
    d = P.dequantize(P.quantize_per_tensor(x, s, zp, dtype, zero_point_order=order), s, zp)
    assert np.all(np.abs(d.astype(np.float64) - x) <= s * (0.5 + 1e-4) + 1e-6 * np.abs(x))


@_settings
@given(st.sampled_from(list(RANGES)), _scales, st.integers(-100, 300))
def test_zero_is_exact(dtype, s, zp):
    lo, hi = RANGES[dtype]
    zp = min(max(zp, lo), hi)
    q = P.quantize_per_tensor(f32(0.0, -0.0), s, zp, dtype)
    assert q.tolist() == [zp, zp]
    assert P.dequantize(q, s, zp).tolist() == [0.0, 0.0]
    assert P.fake_quantize_per_tensor_affine(f32(0.0), s, zp, lo, hi).tolist() == [0.0]


@_settings
@given(st.sampled_from(list(RANGES)), _scales, st.integers(-100, 300), st.lists(st.floats(-1e3, 1e3, width=32), max_size=30))
def test_per_channel_with_one_channel(dtype, s, zp, xs):
    """One channel equals per-tensor where both paths round twice (qint32, and zero point after
    rounding); 8-bit per-tensor in torch 2.13 uses one FMA rounding, so it may differ on near ties."""
    lo, hi = RANGES[dtype]
    zp = min(max(zp, lo), hi)
    x = np.array(xs, np.float32)
    pc = P.quantize_per_channel(x[:, None], [s], [zp], 1, dtype, zero_point_order="after")[:, 0]
    assert np.array_equal(pc, P.quantize_per_tensor(x, s, zp, dtype, zero_point_order="after"))
    if dtype == "qint32":
        pc = P.quantize_per_channel(x[:, None], [s], [zp], 1, dtype)[:, 0]
        assert np.array_equal(pc, P.quantize_per_tensor(x, s, zp, dtype))
    assert np.array_equal(P.dequantize(pc[:, None], np.array([s], np.float32), np.array([zp]), axis=1)[:, 0],
                          P.dequantize(pc, s, zp))


@_settings
@given(st.sampled_from(list(RANGES)), _scales, st.integers(-100, 300), st.lists(st.floats(-1e4, 1e4, width=32), max_size=40))
def test_monotone(dtype, s, zp, xs):
    lo, hi = RANGES[dtype]
    zp = min(max(zp, lo), hi)
    x = np.sort(np.array(xs, np.float32))
    for q in (P.quantize_per_tensor(x, s, zp, dtype), P.quantize_per_channel(x[:, None], [s], [zp], 1, dtype)[:, 0]):
        assert np.all(np.diff(q.astype(np.int64)) >= 0)
    y = P.fake_quantize_per_tensor_affine(x, s, zp, lo, hi)
    assert np.all(np.diff(y) >= 0)


# ------------------------------------------------------------------ bad input

X = f32(1.0, 2.0)
X2 = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
BAD = [
    # quantize_per_tensor
    (lambda: P.quantize_per_tensor(X, 0.0, 0, "qint8"), QuantizationValueError, "scale must be finite and > 0"),
    (lambda: P.quantize_per_tensor(X, -1.0, 0, "qint8"), QuantizationValueError, "scale"),
    (lambda: P.quantize_per_tensor(X, float("nan"), 0, "qint8"), QuantizationValueError, "scale"),
    (lambda: P.quantize_per_tensor(X, float("inf"), 0, "qint8"), QuantizationValueError, "scale"),
    (lambda: P.quantize_per_tensor(X, 1e-50, 0, "qint8"), QuantizationValueError, "scale"),  # 0 in float32
    (lambda: P.quantize_per_tensor(X, "1", 0, "qint8"), QuantizationTypeError, "scale"),
    (lambda: P.quantize_per_tensor(X, [1.0, 2.0], 0, "qint8"), ShapeError, "scalar"),
    (lambda: P.quantize_per_tensor(X, 1.0, 200, "qint8"), QuantizationValueError, r"\[-128, 127\].*got 200"),
    (lambda: P.quantize_per_tensor(X, 1.0, -1, "quint8"), QuantizationValueError, "got -1"),
    (lambda: P.quantize_per_tensor(X, 1.0, 2**31, "qint32"), QuantizationValueError, "zero_point"),
    (lambda: P.quantize_per_tensor(X, 1.0, 1.5, "qint8"), QuantizationTypeError, "integer, got 1.5"),
    (lambda: P.quantize_per_tensor(X, 1.0, True, "qint8"), QuantizationTypeError, "zero_point"),
    (lambda: P.quantize_per_tensor(X, 1.0, "3", "qint8"), QuantizationTypeError, "zero_point"),
    (lambda: P.quantize_per_tensor(X, 1.0, 0, "qint16"), QuantizationValueError, "dtype must be one of"),
    (lambda: P.quantize_per_tensor(X, 1.0, 0, "int8"), QuantizationValueError, "dtype"),
    (lambda: P.quantize_per_tensor(X, 1.0, 0, "qint8", zero_point_order="middle"), QuantizationValueError,
     "zero_point_order"),
    (lambda: P.quantize_per_tensor(np.array(["a"]), 1.0, 0, "qint8"), QuantizationTypeError, "x must be"),
    (lambda: P.quantize_per_tensor(np.array([1, 2]), 1.0, 0, "qint8"), QuantizationTypeError, "x must be"),
    # quantize_per_channel
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0, 0], 2, "qint8"), QuantizationValueError, r"axis must be in \[0, 2\)"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0, 0], -1, "qint8"), QuantizationValueError, "axis"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0, 0], 1.0, "qint8"), QuantizationTypeError, "axis"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0, 1.0], [0, 0, 0], 0, "qint8"), ShapeError, r"scales must have shape \(2,\)"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0], 0, "qint8"), ShapeError, "zero_points"),
    (lambda: P.quantize_per_channel(X2, [1.0, 0.0], [0, 0], 0, "qint8"), QuantizationValueError, "scale"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0, 300], 0, "qint8"), QuantizationValueError, "got 300"),
    (lambda: P.quantize_per_channel(X2, [1.0, 1.0], [0, 0.5], 0, "qint8"), QuantizationTypeError, "integer"),
    (lambda: P.quantize_per_channel(np.float32(1.0), [1.0], [0], 0, "qint8"), ShapeError, "rank"),
    # dequantize
    (lambda: P.dequantize(np.array([1, 2], np.int16), 1.0, 0), QuantizationTypeError, "uint8, int8 or int32"),
    (lambda: P.dequantize(np.array([1.0]), 1.0, 0), QuantizationTypeError, "integer"),
    (lambda: P.dequantize(np.array([1], np.int8), 0.0, 0), QuantizationValueError, "scale"),
    (lambda: P.dequantize(np.array([1], np.int8), 1.0, 128), QuantizationValueError, "got 128"),
    (lambda: P.dequantize(np.ones((2, 2), np.uint8), [1.0], [0], axis=1), ShapeError, "scale must have shape"),
    (lambda: P.dequantize(np.ones((2, 2), np.uint8), [1.0, 1.0], [0, 0], axis=3), QuantizationValueError, "axis"),
    # fake quantize
    (lambda: P.fake_quantize_per_tensor_affine(X, 0.0, 0, -128, 127), QuantizationValueError, "scale"),
    (lambda: P.fake_quantize_per_tensor_affine(X, 1.0, 200, -128, 127), QuantizationValueError,
     r"\[quant_min, quant_max\] = \[-128, 127\], got 200"),
    (lambda: P.fake_quantize_per_tensor_affine(X, 1.0, 0, 5, -5), QuantizationValueError, "quant_min must be <= quant_max"),
    (lambda: P.fake_quantize_per_tensor_affine(X, 1.0, 0, -2**40, 2**40), UnsupportedError, "quant_min"),
    (lambda: P.fake_quantize_per_tensor_affine(X, 1.0, 0, -128.0, 127), QuantizationTypeError, "quant_min"),
    (lambda: P.fake_quantize_per_tensor_affine(X, 1.0, 0.5, -128, 127), QuantizationTypeError, "integer"),
    (lambda: P.fake_quantize_per_tensor_affine(np.array([1, 2]), 1.0, 0, -128, 127), QuantizationTypeError, "x"),
    (lambda: P.fake_quantize_per_channel_affine(X2, [1.0], [0], 1, -128, 127), ShapeError, "scale must have shape"),
    (lambda: P.fake_quantize_per_channel_affine(X2, [1.0, 1.0], [0, 0], 2, -128, 127), QuantizationValueError, "axis"),
    (lambda: P.fake_quantize_per_channel_affine(X2, [1.0, -1.0], [0, 0], 1, -128, 127), QuantizationValueError, "scale"),
    (lambda: P.fake_quantize_per_channel_affine(X2, [1.0, 1.0], [0, 500], 1, -128, 127), QuantizationValueError, "500"),
    (lambda: P.fake_quantize_per_tensor_affine_cachemask_backward(X, np.array([1, 0])), QuantizationTypeError, "bool"),
    (lambda: P.fake_quantize_per_tensor_affine_cachemask_backward(X, np.array([True])), ShapeError, "shape"),
    (lambda: P.fake_quantize_learnable_per_tensor_affine_backward(X, X, 1.0, 0.0, 1, 10), QuantizationValueError,
     "include 0"),
    (lambda: P.fake_quantize_learnable_per_tensor_affine_backward(X, X[:1], 1.0, 0.0, -8, 7), ShapeError, "grad_y"),
    (lambda: P.fake_quantize_learnable_per_tensor_affine(X, 1.0, np.nan, -8, 7), QuantizationValueError, "finite"),
    # observers
    (lambda: P.choose_qparams(0.0, 1.0, dtype="qint4"), QuantizationValueError, "dtype must be one of"),
    (lambda: P.choose_qparams(0.0, 1.0, qscheme="per_tensor"), QuantizationValueError, "qscheme"),
    (lambda: P.choose_qparams(0.0, 1.0, qscheme="per_tensor_symmetric", reduce_range=True), UnsupportedError, "quint8"),
    (lambda: P.choose_qparams(0.0, 1.0, quant_min=1, quant_max=10), QuantizationValueError, "include 0"),
    (lambda: P.choose_qparams(0.0, 1.0, quant_min=0, quant_max=0), QuantizationValueError, "quant_min must be <"),
    (lambda: P.choose_qparams(0.0, 1.0, dtype="qint8", quant_min=-200, quant_max=200), QuantizationValueError, "<= 256"),
    (lambda: P.choose_qparams(0.0, 1.0, dtype="qint32", quant_min=0, quant_max=2**32 - 1), QuantizationValueError,
     "int32"),
    (lambda: P.choose_qparams(0.0, 1.0, quant_min=0.0, quant_max=255), QuantizationTypeError, "quant_min"),
    (lambda: P.choose_qparams([0.0, 1.0], [1.0, 2.0]), ShapeError, "scalar"),
    (lambda: P.choose_qparams(np.zeros((2, 2)), np.ones((2, 2)), qscheme="per_channel_affine"), ShapeError, "1-D"),
    (lambda: P.choose_qparams(np.zeros(2), np.ones(3), qscheme="per_channel_affine"), ShapeError, "same shape"),
    (lambda: P.choose_qparams("a", 1.0), QuantizationTypeError, "min_val"),
    (lambda: P.choose_qparams(0.0, 1.0, eps="x"), QuantizationTypeError, "eps"),
    (lambda: P.choose_qparams(0.0, 1.0, reduce_range="yes"), QuantizationTypeError, "reduce_range"),
    (lambda: P.choose_qparams_dynamic(0.0, 1.0, qmin=0, qmax=0), QuantizationValueError, "qmin must be < qmax"),
    (lambda: P.choose_qparams_dynamic("a", 1.0), QuantizationTypeError, "min_val"),
    (lambda: P.observer_qmin_qmax("qint4"), QuantizationValueError, "dtype must be one of"),
    (lambda: P.observer_qmin_qmax("qint8", reduce_range=1), QuantizationTypeError, "reduce_range must be a bool"),
    (lambda: P.observer_qmin_qmax("qint8", quant_min=-1.0, quant_max=1), QuantizationTypeError, "quant_min"),
    (lambda: P.observer_qmin_qmax("qint8", quant_min=-200, quant_max=200), QuantizationValueError, "<= 256"),
    # the cachemask spellings validate as the plain ones
    (lambda: P.fake_quantize_per_tensor_affine_cachemask(X, 1.0, 0, 5, -5), QuantizationValueError, "quant_min"),
    (lambda: P.fake_quantize_per_channel_affine_cachemask(X2, [1.0], [0], 1, -128, 127), ShapeError, "scale"),
    (lambda: P.fake_quantize_per_channel_affine_cachemask_backward(X, np.array([True])), ShapeError,
     "mask must have grad_y's shape"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_errors_are_builtin_subclasses():
    with pytest.raises(ValueError):
        P.quantize_per_tensor(X, 0.0, 0, "qint8")
    with pytest.raises(TypeError):
        P.quantize_per_tensor(X, 1.0, 1.5, "qint8")
    with pytest.raises(NotImplementedError):
        P.choose_qparams(0.0, 1.0, qscheme="per_channel_symmetric", reduce_range=True)


def test_empty_inputs():
    e = np.zeros((0, 3), np.float32)
    assert P.quantize_per_tensor(e, 1.0, 0, "qint8").shape == (0, 3)
    assert P.quantize_per_channel(e, np.ones(3), np.zeros(3, int), 1, "quint8").shape == (0, 3)
    assert P.dequantize(np.zeros((0, 3), np.int32), 1.0, 0).shape == (0, 3)
    y, m = P.fake_quantize_per_channel_affine_cachemask(e, np.ones(3), np.zeros(3, int), 1, 0, 255)
    assert y.shape == m.shape == (0, 3)


def test_torch_dtype_objects_accepted():
    torch = pytest.importorskip("torch")
    assert P.quantize_per_tensor(X, 1.0, 0, torch.qint8).dtype == np.int8
    assert P.choose_qparams(-1.0, 1.0, dtype=torch.qint8)[1] == P.choose_qparams(-1.0, 1.0, dtype="qint8")[1]

"""The ops that no face exposes yet (mul, tanh, requantize) under their profiles.

Each op must be the kernel its profile names, bit for bit (the kernels themselves are pinned
against LiteRT and ONNX Runtime in ``test_conformance_kernels_misc.py``), and requantize is
checked against LiteRT's QUANTIZE from an integer tensor directly. Profiles without a modelled
kernel refuse with UnsupportedError.
"""

from __future__ import annotations

import numpy as np
import pytest

from refquant.errors import UnsupportedError
from refquant.kernels import elementwise as ew
from refquant.kernels import lut as klut
from refquant.kernels import multiplier as mult
from refquant.kernels import requant as rq
from refquant.kernels.elementwise_float import float_mul
from refquant.ops import layers
from refquant.ops import pointwise as pw

F32 = np.float32
RNG = np.random.default_rng(2027)


def _codes(dtype, shape):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, int(info.max) + 1, shape).astype(dtype)


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("activation", [None, "RELU", "RELU6"])
def test_mul_is_the_profiles_kernel(dtype, activation):
    a, b = _codes(dtype, (3, 17)), _codes(dtype, (1, 17))
    sa, sb, sy = F32(0.05), F32(0.02), F32(0.013)
    za, zb, zy = (dtype(v) for v in ((3, -2, 5) if dtype == np.int8 else (128, 120, 7)))
    info = np.iinfo(dtype)
    lo, hi = mult.activation_range(activation, sy, int(zy), int(info.min), int(info.max))
    q, s = ew.fixed_point_mul_params(sa, sb, sy)
    want = ew.fixed_point_mul(a, za, b, zb, zy, q, s, act_min=lo, act_max=hi)
    np.testing.assert_array_equal(pw.mul(a, sa, int(za), b, sb, int(zb), sy, int(zy), profile="tflite_reference",
                                         activation=activation), want)
    prod = (a.astype(np.int64) - int(za)) * (b.astype(np.int64) - int(zb))
    m = mult.real_multiplier(sa, sb, sy, derivation="f32_ab_div_c")
    want_x = rq.requantize(prod.astype(np.int32), m, int(zy), lo, hi, mode="float32_rne", dtype=dtype)
    np.testing.assert_array_equal(pw.mul(a, sa, int(za), b, sb, int(zb), sy, int(zy), profile="tflite_xnnpack",
                                         activation=activation), want_x)
    if activation is None:
        np.testing.assert_array_equal(pw.mul(a, sa, int(za), b, sb, int(zb), sy, int(zy), profile="onnxruntime"),
                                      float_mul(a, sa, za, b, sb, zb, sy, zy))


@pytest.mark.kernels
@pytest.mark.parametrize("profile", ["pytorch_fbgemm", "pytorch_qnnpack"])
def test_mul_not_modelled_is_refused(profile):
    a = _codes(np.int8, (4,))
    with pytest.raises(UnsupportedError, match="multiply"):
        pw.mul(a, F32(0.1), 0, a, F32(0.1), 0, F32(0.1), 0, profile=profile)


@pytest.mark.kernels
@pytest.mark.parametrize("profile", ["tflite_reference", "tflite_optimized", "tflite_xnnpack"])
def test_tanh_is_the_tflite_table(profile):
    x = np.arange(256, dtype=np.uint8).view(np.int8)
    want = klut.apply_lut(x, klut.tanh_lut(F32(0.04), -3, F32(1 / 128), 0, dtype=np.int8))
    np.testing.assert_array_equal(pw.tanh(x, F32(0.04), -3, F32(1 / 128), 0, profile=profile), want)
    with pytest.raises(UnsupportedError, match="tanh"):
        pw.tanh(x, F32(0.04), -3, F32(1 / 128), 0, profile="onnxruntime")


@pytest.mark.kernels
def test_requantize_by_hand():
    """S_x / S_y = 1/2 exactly (q = 2^30, shift 0): (q - 3) / 2 rounded by SRDHM, half up, + (-2)."""
    q = np.array([3, 4, 5, 6, 2, 1, -128, 127], np.int8)
    y = layers.requantize_tensor(q, F32(0.05), 3, F32(0.1), -2, profile="tflite_reference")
    assert y.tolist() == [-2, -1, -1, 0, -2, -3, -67, 60]  # 0.5 -> 1, 1.5 -> 2, -0.5 -> 0, -65.5 -> -65
    with pytest.raises(UnsupportedError, match="requantize"):
        layers.requantize_tensor(q, F32(0.05), 3, F32(0.1), -2, profile="onnxruntime")


@pytest.mark.conformance
@pytest.mark.parametrize("dt_in,dt_out", [(np.int8, np.int8), (np.int8, np.uint8), (np.uint8, np.int8),
                                          (np.int16, np.int16)])
def test_requantize_matches_litert_reference(dt_in, dt_out):
    """LiteRT 2.3 QUANTIZE from an integer tensor (BUILTIN_REF): MBQM double rounding of q - Z_x
    with the multiplier of S_x / S_y, + Z_y, saturate; random and tie-heavy (S_y = 2 S_x) scales."""
    tfl = pytest.importorskip("support.tflite_builder")
    sch = tfl.sch
    total, ties_differ = 0, 0
    for t in range(24):
        x = _codes(dt_in, (3, 37))
        xs = F32(RNG.uniform(0.005, 0.1))
        ys = F32(xs * 2) if t % 3 == 0 else F32(xs * RNG.uniform(0.3, 3.0))
        xz = 0 if dt_in == np.int16 else int(RNG.integers(-20, 20)) + (128 if dt_in == np.uint8 else 0)
        yz = 0 if dt_out == np.int16 else int(RNG.integers(-20, 20)) + (128 if dt_out == np.uint8 else 0)
        g = tfl.Graph()
        xi, yi = g.tensor("x", x.shape, dt_in, xs, xz), g.tensor("y", x.shape, dt_out, ys, yz)
        model = tfl.build_model(g, sch.BuiltinOperator.QUANTIZE, sch.BuiltinOptions.QuantizeOptions,
                                sch.QuantizeOptionsT(), [xi], [yi])
        got = tfl.run_model(model, [x], "ref")
        ours = layers.requantize_tensor(x, xs, xz, ys, yz, profile="tflite_reference", out_dtype=dt_out)
        np.testing.assert_array_equal(ours, got, err_msg=f"trial {t}")
        total += x.size
        single = rq.requantize((x.astype(np.int64) - xz).astype(np.int32),
                               *(lambda p: (p.multiplier,))(mult.requant_params(xs, F32(1), ys, mode="fixed_single",
                                                                               derivation="f64_ab_div_c")),
                               yz, int(np.iinfo(dt_out).min), int(np.iinfo(dt_out).max), mode="fixed_single",
                               shift=mult.requant_params(xs, F32(1), ys, mode="fixed_single",
                                                         derivation="f64_ab_div_c").shift, dtype=dt_out)
        ties_differ += int((single != got).sum())
    assert total > 2000 and ties_differ > 10, (total, ties_differ)  # single rounding would be wrong

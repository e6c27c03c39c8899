"""quantize / dequantize / fake_quantize and the float32 FMA emulation.

Oracles: an exact rational model of every step (:mod:`support.exact_oracle`: each float
operation is the exact result rounded once to the operation's dtype, ties to even),
and hand-worked values from backends.md for every named profile.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

import refquant
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from refquant.specs import SimdSplit
from refquant.profiles import PROFILES, get_profile
from refquant.qparams import make_qparams
from refquant.quantization import (  # the module (refquant.quantize itself is the function)
    DequantizeSpec,
    QuantizeSpec,
    _fma_f32,
    fma_f32,
    dequantize,
    fake_quantize,
    fake_quantize_backward,
    fake_quantize_with_mask,
    quantize,
)
from support.exact_oracle import oracle_quantize, round_fraction


# pure arithmetic tests carry the kernels mark one by one: the conformance ones must not
# (CI reruns `-m kernels` with NUMBA_DISABLE_JIT=1)

NAN, INF = float("nan"), float("inf")
TIES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], np.float32)


# ---------------------------------------------------------------- fma_f32

def _fma_oracle(a, b, c):
    return np.array([round_fraction(Fraction(float(ai)) * Fraction(float(bi)) + Fraction(float(ci)), np.float32)
                     for ai, bi, ci in zip(a, b, c)], np.float32)


def _assert_f32_bits(got, want, a, b, c):
    got = np.asarray(got, np.float32)
    bad = got.view(np.uint32) != want.view(np.uint32)
    bad &= ~((got == 0) & (want == 0))  # the sign of an exact zero sum is not modelled
    if bad.any():
        i = np.flatnonzero(bad)[:6]
        rows = "\n".join(f"  a={a[j]!r} b={b[j]!r} c={c[j]!r}: got {got[j]!r}, want {want[j]!r}" for j in i)
        pytest.fail(f"fma_f32: {int(bad.sum())} of {bad.size} differ\n{rows}")


def _crafted_fma_cases():
    """a*b + c lands exactly on a float32 midpoint, or 2^-47 ulp beside one (lost in float64)."""
    rng = np.random.default_rng(11)
    cs = np.concatenate([
        rng.uniform(1, 2 ** 20, 60).astype(np.float32),
        np.array([1.0, 3.0, 127.0, 128.0 + 2 ** -16, 255.0, 1e6, 2.0 ** 30 + 128, -7.0, -128.0,
                  2.0 ** 23 + 1, 2.0 ** 24 - 2, 1e-3, 5e-39], np.float32),
    ])
    cs = np.concatenate([cs, -cs])
    a, b, c = [], [], []
    for cv in cs:
        u = float(np.spacing(np.abs(cv)))  # ulp above |c|
        if np.abs(cv) == 2.0 ** np.floor(np.log2(np.abs(cv))):
            continue  # spacing below a power of two is half: skip for simplicity
        k = math.log2(u)
        for sign in (1.0, -1.0):
            # a*b = sign * (2^46 - 1) * 2^(k - 47) = sign * (u/2 - u * 2^-47)
            a.append(np.float32(sign * 8388609 * 2.0 ** (k - 47)))
            b.append(np.float32(8388607))
            c.append(cv)
            # a*b = sign * u/2 exactly: an exact tie, decided by RNE
            a.append(np.float32(sign * u / 2))
            b.append(np.float32(1.0))
            c.append(cv)
            # a*b = sign * (u/2 + u * 2^-23): beside the tie, representable in float64
            a.append(np.float32(sign * u / 2))
            b.append(np.float32(1 + 2.0 ** -23))
            c.append(cv)
    # the overflow boundary: max + 2^103 - 2^57 rounds to max, max + 2^103 to inf
    mx = np.finfo(np.float32).max
    for sa, sc in ((1, 1), (-1, -1)):
        a += [np.float32(sa * 8388609 * 2.0 ** 57), np.float32(sa * 2.0 ** 103)]
        b += [np.float32(8388607), np.float32(1.0)]
        c += [np.float32(sc * mx)] * 2
    return np.array(a, np.float32), np.array(b, np.float32), np.array(c, np.float32)


@pytest.mark.kernels
def test_fma_crafted_halfway_cases():
    a, b, c = _crafted_fma_cases()
    want = _fma_oracle(a, b, c)
    _assert_f32_bits(fma_f32(a, b, c.astype(np.float64)), want, a, b, c)
    # the crafted set does exercise double rounding: float64-then-float32 gets some wrong
    with np.errstate(over="ignore"):
        naive = (a.astype(np.float64) * b + c).astype(np.float32)
    assert (naive.view(np.uint32) != want.view(np.uint32)).sum() >= 50


@pytest.mark.kernels
def test_fma_random_and_integer_addends():
    rng = np.random.default_rng(3)
    n = 1500
    a = (rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    b = (rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    c = np.where(rng.random(n) < 0.5, rng.integers(-300, 300, n),
                 rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)).astype(np.float32)
    # quantization-shaped cases: x * (1/s) + zp near .5
    s = rng.uniform(1e-3, 1.0, n).astype(np.float32)
    inv = (np.float32(1) / s).astype(np.float32)
    x = ((rng.integers(-200, 200, n) + 0.5) * s).astype(np.float32)
    zp = rng.integers(-128, 256, n).astype(np.float32)
    a, b, c = np.concatenate([a, x]), np.concatenate([b, inv]), np.concatenate([c, zp])
    _assert_f32_bits(fma_f32(a, b, c.astype(np.float64)), _fma_oracle(a, b, c), a, b, c)


@pytest.mark.kernels
def test_fma_keeps_its_private_alias():
    assert _fma_f32 is fma_f32  # the earlier private name still works


@pytest.mark.kernels
def test_fma_specials_and_broadcast():
    a = np.array([NAN, INF, -INF, 1.0, 0.0], np.float32)
    b = np.array([1.0, 2.0, 2.0, INF, INF], np.float32)
    with np.errstate(invalid="ignore"):
        out = fma_f32(a, b, 3)
    assert np.isnan(out[0]) and out[1] == INF and out[2] == -INF and out[3] == INF and np.isnan(out[4])
    out = fma_f32(np.ones((2, 3), np.float32), np.full((1, 3), 0.5, np.float32), np.array([[1.0], [2.0]]))
    np.testing.assert_array_equal(out, [[1.5] * 3, [2.5] * 3])
    assert out.dtype == np.float32


# ---------------------------------------------------------------- exact model, every profile

FORMATS_UNDER_TEST = ["int8", "uint8", "int4", "uint4", "int16", "uint16", "int32"]


def _random_cases(rng, fmt, n=60):
    qp_lo, qp_hi = refquant.get_format(fmt).qmin, refquant.get_format(fmt).qmax
    span = min(qp_hi - qp_lo, 2 ** 20)
    s = np.float32(rng.choice([rng.uniform(1e-4, 0.1), 2.0 ** int(rng.integers(-8, 3)), 0.00214854861]))
    z = int(rng.integers(max(qp_lo, -(2 ** 20)), min(qp_hi, 2 ** 20) + 1))
    codes = rng.integers(-span // 2 - 4, span // 2 + 4, n)
    x = np.concatenate([
        ((codes + 0.5) * s),                                    # exact or near ties
        ((codes + rng.uniform(-1, 1, n)) * s),                  # realistic
        ((codes + 0.5) * s) * (1 + rng.choice([-1, 1], n) * 2.0 ** -23),  # beside ties
        np.array([0.0, -0.0, (qp_hi - z + 3) * s, (qp_lo - z - 3) * s]),  # zero and saturation
    ]).astype(np.float32)
    return x, s, z


@pytest.mark.kernels
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_quantize_matches_exact_model(profile):
    """Every element against the exact oracle with the spec the profile picks for it (its cases,
    and its SIMD blocks and tail where the kernel is position dependent)."""
    prof = get_profile(profile)
    rng = np.random.default_rng(sum(map(ord, profile)))
    for fmt in FORMATS_UNDER_TEST:
        for dtype in (np.float32, np.float64, np.float16):
            x, s, z = _random_cases(rng, fmt)
            with np.errstate(over="ignore"):
                x = x.astype(dtype)
            if dtype == np.float16:
                x = x[np.isfinite(x)]
            qp = make_qparams(s, z, fmt)
            entry = prof.spec_for("quantize", qp, x.shape, x.dtype)
            specs = [entry] * x.size
            if isinstance(entry, SimdSplit):
                cut = x.size - x.size % entry.block
                specs = [entry.body if i < cut else entry.tail for i in range(x.size)]
            specs = [dataclasses.replace(sp, precision=qp.scale.dtype.name) if sp.precision == "scale" else sp
                     for sp in specs]
            if dtype != np.float32 and all(sp.precision != "input" for sp in specs):
                continue  # the input is used as float32 (or float64) whatever its dtype: float32 covers it
            try:
                got = quantize(x, qp, profile)
            except UnsupportedError:
                assert specs[0].subnormal_scale == "refuse" and float(s) < np.finfo(np.float32).tiny
                continue
            assert got.dtype == qp.fmt.dtype and got.shape == x.shape
            want = np.array([oracle_quantize(float(v), dtype, float(s), z, sp, qp.qmin, qp.qmax)
                             for v, sp in zip(x, specs)])
            bad = got.astype(np.int64) != want
            if bad.any():
                i = np.flatnonzero(bad)[:6]
                rows = "\n".join(f"  x={x[j]!r} -> got {got[j]}, want {want[j]}" for j in i)
                pytest.fail(f"{profile} {fmt} {np.dtype(dtype).name} s={s!r} z={z}: "
                            f"{int(bad.sum())} mismatches\n{rows}")


@pytest.mark.parametrize("spec", [
    QuantizeSpec(division="multiply_reciprocal", reciprocal="double_then_float"),
    QuantizeSpec(rounding="half_up", zero_point="before_round"),
    QuantizeSpec(rounding="floor", precision="float64"),
    QuantizeSpec(rounding="toward_zero", precision="float16"),
    QuantizeSpec(division="multiply_reciprocal", precision="float64", rounding="half_down"),
    QuantizeSpec(rounding="ceil", clamp="before_round"),
], ids=lambda s: f"{s.division}-{s.precision}-{s.rounding}-{s.zero_point}")
@pytest.mark.kernels
def test_quantize_spec_variants_match_exact_model(spec):
    rng = np.random.default_rng(77)
    for fmt in ("int8", "uint8", "int16"):
        x, s, z = _random_cases(rng, fmt, n=50)
        if spec.precision == "float16":
            s, x = np.float32(0.5), x[np.abs(x / 0.5) < 60000]
        qp = make_qparams(s, z, fmt)
        got = quantize(x, qp, spec)
        want = np.array([oracle_quantize(float(v), np.float32, float(s), z, spec, qp.qmin, qp.qmax) for v in x])
        np.testing.assert_array_equal(got.astype(np.int64), want, err_msg=f"{spec} {fmt}")


# ---------------------------------------------------------------- hand-worked values per profile

def _q(profile, x, s, z, fmt="int8", **kw):
    return quantize(np.asarray(x, np.float32), make_qparams(s, z, fmt, **kw), profile).tolist()


@pytest.mark.kernels
def test_ties_per_profile_zp1():
    """backends.md §1.7 (TFLite ref/xnn), §2.1/§2.5 (ONNX/ORT), §3.1 (PyTorch), gemmlowp doc."""
    want = {
        "onnx": [1, 3, 3, 1, -1, -1],               # RNE(x/s) + zp
        "onnx_reference": [1, 3, 3, 1, -1, -1],
        "onnxruntime": [1, 3, 3, 1, -1, -1],
        "tflite_reference": [2, 3, 4, 0, -1, -2],   # RHAZ(x/s) + zp
        "tflite_xnnpack": [1, 3, 3, 1, -1, -1],
        "tflite_optimized": [2, 3, 4, 0, -1, -2],   # 6 elements: all in the scalar tail (RHAZ in float64)
        "pytorch_fbgemm": [2, 2, 4, 0, 0, -2],      # RNE(x*inv + zp), zp before rounding
        "pytorch_qnnpack": [2, 2, 4, 0, 0, -2],
        "pytorch_fbgemm_zp_after": [1, 3, 3, 1, -1, -1],  # RNE(x*inv) + zp (torch 1.6 - 2.12)
        "pytorch_x86": [2, 2, 4, 0, 0, -2],
        "gemmlowp": [2, 3, 4, 1, -1, -2],           # RHAZ(zp + x/s)
    }
    assert set(want) == set(PROFILES)
    for profile, w in want.items():
        assert _q(profile, TIES, 1.0, 1) == w, profile
    # 8 or more elements: the optimized kernel's vector blocks round half to even
    assert _q("tflite_optimized", np.concatenate([TIES, TIES[:2]]), 1.0, 1)[:8] == [1, 3, 3, 1, -1, -1, 1, 3]


@pytest.mark.kernels
def test_multiply_vs_divide_example():
    """FBGEMM QuantUtils.h: s=0.00214854861, x=0.273939937: x*(1/s) = 127.5 -> 128, x/s = 127.49999 -> 127."""
    x, s = np.float32(0.273939937), np.float32(0.00214854861)
    assert x * (np.float32(1) / s) == np.float32(127.5)
    assert x / s < np.float32(127.5)
    for profile in ("pytorch_fbgemm", "pytorch_qnnpack", "tflite_xnnpack"):
        assert _q(profile, [x], s, 0, "uint8") == [128], profile
    for profile in ("onnx", "onnxruntime", "onnx_reference", "tflite_reference", "gemmlowp"):
        assert _q(profile, [x], s, 0, "uint8") == [127], profile
    # TFLite's optimized kernel multiplies in its 8-wide blocks and divides in its scalar tail
    assert _q("tflite_optimized", [x] * 9, s, 0, "uint8") == [128] * 8 + [127]


SPECIALS = [NAN, INF, -INF, 1e10, -1e10]


@pytest.mark.parametrize("profile,zp,fmt,want", [
    # ORT MLAS (§2.5): NaN -> qmin, +inf/1e10 -> qmax
    ("onnxruntime", 3, "int8", [-128, 127, -128, 127, -128]),
    ("onnxruntime", 3, "uint8", [0, 255, 0, 255, 0]),
    ("onnxruntime", 0, "int16", [-32768, 32767, -32768, 32767, -32768]),
    ("onnxruntime", 0, "uint16", [0, 65535, 0, 65535, 0]),
    # onnx.reference (§2.1): int32 cast of a non-finite/huge value is INT32_MIN, then + zp, clip
    ("onnx_reference", 3, "int8", [-128, -128, -128, -128, -128]),
    ("onnx_reference", -3, "int8", [127, 127, 127, 127, 127]),
    ("onnx_reference", 3, "uint8", [0, 0, 0, 0, 0]),
    # TFLite reference (§1.7; §9: a negative zp wraps INT32_MIN + zp to a large positive value)
    ("tflite_reference", 0, "int8", [-128, -128, -128, -128, -128]),
    ("tflite_reference", 5, "int8", [-128, -128, -128, -128, -128]),
    ("tflite_reference", -5, "int8", [127, 127, 127, 127, 127]),
    ("tflite_optimized", 0, "int8", [-128, -128, -128, -128, -128]),
    # XNNPACK (§1.7): NaN -> 127, +inf -> 127, -inf -> -128
    ("tflite_xnnpack", 0, "int8", [127, 127, -128, 127, -128]),
    ("tflite_xnnpack", -5, "int8", [127, 127, -128, 127, -128]),
    # PyTorch 2.13 quantize_per_tensor (§3.1): NaN -> qmax
    ("pytorch_fbgemm", 1, "int8", [127, 127, -128, 127, -128]),
    ("pytorch_fbgemm", 3, "uint8", [255, 255, 0, 255, 0]),
    ("pytorch_qnnpack", 3, "uint8", [255, 255, 0, 255, 0]),
    # gemmlowp quantization_example.cc: std::max(0.f, std::min(255.f, v)) sends NaN to 255
    ("gemmlowp", 10, "uint8", [255, 255, 0, 255, 0]),
    # ONNX spec (undefined for NaN; refquant maps NaN -> qmin like ORT), saturate
    ("onnx", 0, "int8", [-128, 127, -128, 127, -128]),
])
@pytest.mark.kernels
def test_specials_per_profile(profile, zp, fmt, want):
    assert _q(profile, SPECIALS, 1.0, zp, fmt) == want


@pytest.mark.kernels
def test_tflite_reference_wraps_finite_values_near_int32_max():
    """(int32)round(x/s) + zp wraps in int32 for finite values too (LiteRT 2.3.0 BUILTIN_REF, uint8,
    zp 200: x = 2147483520 -> 0, x = 2^30 -> 255)."""
    x = [2147483520.0, 2.0 ** 30, -2147483648.0, 2.0, -0.5]
    assert _q("tflite_reference", x, 1.0, 200, "uint8") == [0, 255, 0, 202, 199]
    assert _q("tflite_reference", x, 1.0, 0, "uint8") == [255, 255, 0, 2, 0]


@pytest.mark.conformance
def test_tflite_reference_wrap_against_litert():
    pytest.importorskip("ai_edge_litert")
    from support.tflite_builder import run_quantize
    x = np.array([2147483520.0, 2.0 ** 30, -2147483648.0, NAN, INF, -INF, 1e10, 2.0, -0.5], np.float32)
    for zp, fmt in ((200, "uint8"), (0, "uint8"), (-5, "int8"), (100, "int8")):
        want = run_quantize(x, 1.0, zp, fmt, "ref")
        got = quantize(x, make_qparams(1.0, zp, fmt), "tflite_reference")
        np.testing.assert_array_equal(got, want, err_msg=f"zp={zp} {fmt}")


@pytest.mark.kernels
def test_nan_to_zero_point_and_qmax_options():
    x = np.array([NAN, 1.0], np.float32)
    qp = make_qparams(1.0, 7, "int8")
    assert quantize(x, qp, QuantizeSpec(nan="zero_point")).tolist() == [7, 8]
    assert quantize(x, qp, QuantizeSpec(nan="qmax")).tolist() == [127, 8]
    assert quantize(x, qp, QuantizeSpec(nan="qmin", clamp="before_round")).tolist() == [-128, 8]
    qn = make_qparams(1.0, 7, "int8", narrow=True)
    assert quantize(x, qn, QuantizeSpec(nan="qmin")).tolist() == [-127, 8]


@pytest.mark.kernels
def test_clamp_before_or_after_same_on_finite_values():
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(4000) * 200).astype(np.float32)
    for fmt, z in (("int8", -3), ("uint8", 130), ("int4", 2)):
        qp = make_qparams(0.37, z, fmt)
        a = quantize(x, qp, QuantizeSpec(clamp="after_round"))
        b = quantize(x, qp, QuantizeSpec(clamp="before_round"))
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- formats and dtypes

@pytest.mark.parametrize("fmt,z,want", [
    ("int4", 0, [-8, -8, -8, 7, 7, 0, 1, 2]),
    ("uint4", 3, [0, 0, 0, 10, 15, 3, 4, 5]),
    ("int16", 0, [-32768, -300, -9, 7, 32767, 0, 1, 2]),
    ("uint16", 100, [0, 0, 91, 107, 65535, 100, 101, 102]),
    ("int32", 0, [-2 ** 31, -300, -9, 7, 2 ** 31 - 1, 0, 1, 2]),
    ("int2", 0, [-2, -2, -2, 1, 1, 0, 1, 1]),
])
@pytest.mark.kernels
def test_narrow_and_wide_formats(fmt, z, want):
    x = np.array([-1e12, -300, -9, 7.4, 1e12, 0.0, 1.0, 1.5], np.float32)
    q = quantize(x, make_qparams(1.0, z, fmt))
    assert q.dtype == refquant.get_format(fmt).dtype
    assert q.tolist() == want


@pytest.mark.kernels
def test_float64_and_float16_inputs():
    x64 = np.array([2.5000000001, 0.1], np.float64)
    qp = make_qparams(1.0, 0)
    # float32 precision: x is rounded to float32 first (2.5 -> tie -> 2)
    assert quantize(x64, qp).tolist() == [2, 0]
    # float64 arithmetic keeps the tail
    assert quantize(x64, qp, QuantizeSpec(precision="float64")).tolist() == [3, 0]
    assert quantize(x64, qp, QuantizeSpec(precision="input")).tolist() == [3, 0]
    # float16 arithmetic: 1000/3 = 333.33 -> 333.25 in float16 -> 333; 1001/3 -> 333.75 -> 334
    x16 = np.array([1000, 1001], np.float16)
    q16 = quantize(x16, make_qparams(3.0, 0, "int16"), QuantizeSpec(precision="input"))
    assert q16.tolist() == [333, 334]


@pytest.mark.kernels
def test_empty_tensors_every_granularity():
    # (a per-block grid over an empty tensor would need an empty scale, which make_qparams refuses)
    for qp, shape in ((make_qparams(0.5, 1), (0,)), (make_qparams(0.5, 1), (0, 4)),
                      (make_qparams([0.5, 1.0], [1, 2], axis=1), (0, 2))):
        x = np.zeros(shape, np.float32)
        for profile in sorted(PROFILES):
            q = quantize(x, qp, profile)
            assert q.shape == shape and q.dtype == np.int8
            d = dequantize(q, qp, profile)
            assert d.shape == shape and d.dtype == np.float32
            y, m = fake_quantize_with_mask(x, qp, profile)
            assert y.shape == shape and m.shape == shape and m.dtype == bool


@pytest.mark.kernels
def test_input_type_errors():
    qp = make_qparams(1.0, 0)
    with pytest.raises(QuantizationTypeError, match="x must be a float array, got integer dtype"):
        quantize(np.array([1, 2]), qp)
    with pytest.raises(QuantizationTypeError, match="x must be a real float array"):
        quantize(np.array(["a"]), qp)
    with pytest.raises(QuantizationTypeError, match="q must be an integer array"):
        dequantize(np.array([1.0]), qp)
    with pytest.raises(QuantizationValueError, match="profile must be one of"):
        quantize(np.ones(2, np.float32), qp, "tensorrt")
    with pytest.raises(ShapeError):
        quantize(np.ones((2, 4), np.float32), make_qparams([1.0, 2.0, 3.0], 0, axis=1))


@pytest.mark.kernels
def test_spec_validation():
    with pytest.raises(QuantizationValueError, match="division must be one of"):
        QuantizeSpec(division="shift")
    with pytest.raises(QuantizationValueError, match="nan must be one of"):
        QuantizeSpec(nan="drop")
    with pytest.raises(QuantizationValueError, match="precision"):
        QuantizeSpec(precision="bfloat16")
    with pytest.raises(QuantizationValueError, match="rounding must be one of"):
        QuantizeSpec(rounding="banker")
    assert QuantizeSpec(rounding=refquant.RoundingMode.HALF_UP).rounding == "half_up"
    with pytest.raises(QuantizationValueError, match="subtract must be"):
        DequantizeSpec(subtract="exact")
    with pytest.raises(QuantizationValueError, match="precision"):
        DequantizeSpec(precision="int32")
    spec = QuantizeSpec(division="multiply_reciprocal", zero_point="before_round_fma", precision="float64")
    with pytest.raises(QuantizationValueError, match="before_round_fma needs precision float32"):
        quantize(np.ones(2, np.float32), make_qparams(1.0, 0), spec)


# ---------------------------------------------------------------- granularity

@pytest.mark.kernels
@pytest.mark.parametrize("profile", ["onnx", "onnxruntime", "tflite_reference", "pytorch_fbgemm", "gemmlowp"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_per_axis_equals_per_tensor_loop(profile, axis):
    rng = np.random.default_rng(abs(axis) * 7 + len(profile))
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(np.float32)
    x.flat[::7] = np.round(x.flat[::7] * 2) / 2  # ties
    c = x.shape[axis]
    s = rng.uniform(0.01, 0.5, c).astype(np.float32)
    z = rng.integers(-20, 20, c)
    q = quantize(x, make_qparams(s, z, "int8", axis=axis), profile)
    y, m = fake_quantize_with_mask(x, make_qparams(s, z, "int8", axis=axis), profile)
    for i in range(c):
        idx = [slice(None)] * 3
        idx[axis] = i
        qt = make_qparams(s[i], z[i], "int8")
        np.testing.assert_array_equal(q[tuple(idx)], quantize(x[tuple(idx)], qt, profile))
        yt, mt = fake_quantize_with_mask(x[tuple(idx)], qt, profile)
        np.testing.assert_array_equal(y[tuple(idx)].view(np.uint32), yt.view(np.uint32))
        np.testing.assert_array_equal(m[tuple(idx)], mt)
    d = dequantize(q, make_qparams(s, z, "int8", axis=axis))
    for i in range(c):
        idx = [slice(None)] * 3
        idx[axis] = i
        want = ((q[tuple(idx)].astype(np.int64) - z[i]).astype(np.float32) * s[i]).astype(np.float32)
        np.testing.assert_array_equal(d[tuple(idx)].view(np.uint32), want.view(np.uint32))


@pytest.mark.kernels
@pytest.mark.parametrize("d,b", [(8, 4), (7, 4), (5, 5), (9, 2), (3, 8)])
def test_per_block_equals_per_tensor_loop(d, b):
    rng = np.random.default_rng(d * 31 + b)
    x = (rng.standard_normal((2, d)) * 4).astype(np.float32)
    nb = -(-d // b)
    s = rng.uniform(0.05, 0.5, (2, nb)).astype(np.float32)
    z = rng.integers(0, 16, (2, nb))
    qp = make_qparams(s, z, "uint4", axis=-1, block_size=b)
    q = quantize(x, qp)
    assert q.dtype == np.uint8 and q.shape == x.shape
    deq = dequantize(q, qp)
    for r in range(2):
        for i in range(d):
            qt = make_qparams(s[r, i // b], z[r, i // b], "uint4")
            assert q[r, i] == quantize(x[r:r + 1, i], qt)[0]
            assert deq[r, i] == dequantize(q[r:r + 1, i], qt)[0]


# ---------------------------------------------------------------- dequantize

@pytest.mark.kernels
def test_dequantize_hand_values():
    qp = make_qparams(0.5, 3, "int8")
    q = np.array([-128, 3, 4, 127], np.int8)
    d = dequantize(q, qp)
    assert d.dtype == np.float32
    assert d.tolist() == [-65.5, 0.0, 0.5, 62.0]
    assert dequantize(q, qp, DequantizeSpec(precision="float64")).dtype == np.float64
    assert dequantize(q, qp, DequantizeSpec(precision="float16")).tolist() == [-65.5, 0.0, 0.5, 62.0]


@pytest.mark.kernels
def test_dequantize_int32_wrap():
    """PyTorch per-tensor qint32 (backends.md §9): q - zp wraps in int32."""
    q = np.array([-2 ** 31, 2 ** 31 - 1, 0], np.int32)
    qp = make_qparams(1.0, 5, "int32")
    exact = dequantize(q, qp, DequantizeSpec(precision="float64"))
    assert exact.tolist() == [-2147483653.0, 2147483642.0, -5.0]
    wrapped = dequantize(q, qp, DequantizeSpec(subtract="int32_wrap", precision="float64"))
    assert wrapped.tolist() == [2147483643.0, 2147483642.0, -5.0]  # INT32_MIN - 5 wraps to INT32_MAX - 4
    assert dequantize(q, qp).tolist() == [np.float32(-2147483653.0), np.float32(2147483642.0), -5.0]
    # the profile holds PyTorch's choice: per-tensor codes wrap, per-channel ones do not
    assert dequantize(q, qp, "pytorch_fbgemm").tolist() == [np.float32(2147483643.0), np.float32(2147483642.0), -5.0]
    assert get_profile("pytorch_fbgemm").spec_for("dequantize", qp, q.shape).subtract == "int32_wrap"


def _r32(v: Fraction) -> float:
    return round_fraction(v, np.float32)


@pytest.mark.kernels
@pytest.mark.parametrize("subtract", ["int", "float", "mul_then_sub"])
def test_dequantize_variants_against_exact_model(subtract):
    rng = np.random.default_rng(9)
    q = rng.integers(-2 ** 31, 2 ** 31, 500).astype(np.int32)
    q[:50] = rng.integers(-128, 128, 50)
    s = np.float32(rng.uniform(1e-4, 1e-2))
    z = int(rng.integers(-2 ** 20, 2 ** 20))
    got = dequantize(q, make_qparams(s, z, "int32"), DequantizeSpec(subtract=subtract))
    S = Fraction(float(s))
    want = []
    for v in q.tolist():
        if subtract == "int":          # exact q - z, to float32, times s
            want.append(_r32(Fraction(_r32(Fraction(v - z))) * S))
        elif subtract == "float":      # float(q) - float(z), times s
            want.append(_r32(Fraction(_r32(Fraction(_r32(Fraction(v))) - Fraction(_r32(Fraction(z))))) * S))
        else:                          # q*s - z*s
            a = _r32(Fraction(_r32(Fraction(v))) * S)
            b = _r32(Fraction(_r32(Fraction(z))) * S)
            want.append(_r32(Fraction(a) - Fraction(b)))
    np.testing.assert_array_equal(got.view(np.uint32), np.array(want, np.float32).view(np.uint32))


@pytest.mark.kernels
def test_dequantize_variants_differ():
    """The TFLite optimized block formula q*s - z*s is not (q - z)*s (backends.md §8)."""
    rng = np.random.default_rng(10)
    q = rng.integers(-128, 128, 4000).astype(np.int8)
    qp = make_qparams(np.float32(0.0137), 37, "int8")
    a = dequantize(q, qp)
    b = dequantize(q, qp, DequantizeSpec(subtract="mul_then_sub"))
    assert (a != b).any()
    assert np.max(np.abs(a - b)) <= 4 * np.spacing(np.float32(256 * 0.0137))


# ---------------------------------------------------------------- fake quantize

@pytest.mark.kernels
def test_pytorch_fake_quant_vectors():
    """backends.md §3.2: s=.5, zp=1, [qmin, qmax] = [-4, 3]."""
    x = np.array([-3, -1.25, -0.5, 0.5, 1.25, 2.5, 100], np.float32)
    qp = make_qparams(0.5, 1, "int8", qmin=-4, qmax=3)
    y, mask = fake_quantize_with_mask(x, qp, "pytorch_fbgemm")
    assert y.tolist() == [-2.5, -1, -0.5, 0.5, 1, 1, 1]
    assert mask.tolist() == [False, True, True, True, True, False, False]
    g = fake_quantize_backward(np.ones(7, np.float32), mask)
    assert g.tolist() == [0, 1, 1, 1, 1, 0, 0] and g.dtype == np.float32
    np.testing.assert_array_equal(fake_quantize(x, qp, "pytorch_fbgemm"), y)


@pytest.mark.kernels
def test_pytorch_fake_quant_adds_zero_point_after_rounding():
    """§3.2: fake-quant gives [0,2,0,2]; quantize -> dequantize (zp before) gives [1,3,-1,1]."""
    x = np.array([0.5, 2.5, -0.5, 1.5], np.float32)
    qp = make_qparams(1.0, 1, "int8")
    assert fake_quantize(x, qp, "pytorch_fbgemm").tolist() == [0, 2, 0, 2]
    assert dequantize(quantize(x, qp, "pytorch_fbgemm"), qp, "pytorch_fbgemm").tolist() == [1, 3, -1, 1]


@pytest.mark.parametrize("zp,want_y", [(1, [-129, 126, -129, 126, -129, 126]),
                                       (-5, [-123, 132, -123, 132, -123, 132]),
                                       (0, [-128, 127, -128, 127, -128, 127])])
@pytest.mark.kernels
def test_pytorch_fake_quant_specials(zp, want_y):
    """torch 2.13 fake_quantize_per_tensor_affine (measured): NaN -> qmin, overflow saturates, mask 0."""
    x = np.array([NAN, INF, -INF, 1e10, -1e10, 3e9], np.float32)
    y, m = fake_quantize_with_mask(x, make_qparams(1.0, zp, "int8"), "pytorch_fbgemm")
    assert y.tolist() == want_y
    assert not m.any()


@pytest.mark.conformance
def test_pytorch_fake_quant_specials_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = np.concatenate([np.array([NAN, INF, -INF, 1e10, -1e10, 3e9, -3e9], np.float32),
                        (rng.integers(-300, 300, 200) * 0.25).astype(np.float32)])
    for zp in (-5, 0, 1, 3):
        for s in (1.0, 0.5, 0.1):
            xt = torch.tensor(x, requires_grad=True)
            yt = torch.fake_quantize_per_tensor_affine(xt, s, zp, -128, 127)
            yt.sum().backward()
            y, m = fake_quantize_with_mask(x, make_qparams(s, zp, "int8"), "pytorch_fbgemm")
            np.testing.assert_array_equal(y.view(np.uint32), yt.detach().numpy().view(np.uint32))
            np.testing.assert_array_equal(m, xt.grad.numpy() == 1)


@pytest.mark.kernels
def test_fake_quant_other_profiles():
    x = np.array([0.5, 1.5, 2.5, -0.5, NAN, 1000.0], np.float32)
    qp = make_qparams(1.0, 1, "int8")
    y, m = fake_quantize_with_mask(x, qp, "tflite_reference")
    assert y[:4].tolist() == [1, 2, 3, -1] and y[5] == 126
    assert m.tolist() == [True, True, True, True, False, False]
    y = fake_quantize(x[:4], qp, QuantizeSpec())
    assert y.tolist() == [0, 2, 2, 0]


@pytest.mark.kernels
def test_fake_quant_backward_dtype_and_shape():
    g = np.arange(6, dtype=np.float64).reshape(2, 3)
    m = np.array([[1, 0, 1], [0, 1, 0]], bool)
    out = fake_quantize_backward(g, m)
    assert out.dtype == np.float64
    assert out.tolist() == [[0, 0, 2], [0, 4, 0]]


@pytest.mark.kernels
def test_fake_quant_backward_bad_input():
    g = np.ones((2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"mask must have grad_output's shape \(2, 3\), got \(3,\)"):
        fake_quantize_backward(g, np.ones(3, bool))  # no silent broadcasting
    with pytest.raises(QuantizationTypeError, match="mask must be a bool array, got dtype int64"):
        fake_quantize_backward(g, np.ones((2, 3), np.int64))
    with pytest.raises(QuantizationTypeError, match="grad_output must be a float array"):
        fake_quantize_backward(np.ones((2, 3), np.int32), np.ones((2, 3), bool))

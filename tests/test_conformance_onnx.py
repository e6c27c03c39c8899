"""Conformance of refquant.backends.onnx / .onnxruntime with the real thing.

* ``refquant.backends.onnxruntime`` == ONNX Runtime (CPU EP, ORT_DISABLE_ALL, one thread), everywhere.
* ``refquant.backends.onnx`` == the specification. Checked against ``onnx.reference``
  where the reference evaluator follows the spec; where it departs (backends.md §2, §9),
  the test proves the departure is exactly the documented one: the reference equals the
  core's ``onnx_reference`` profile everywhere, and the face equals the reference outside
  the departure set. For float32 inputs the spec face also equals ONNX Runtime.

Integers are compared with ``==``, floats by bit pattern. Many cases run as one tensor per
session (cached sessions), so the whole file takes a few seconds.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ml_dtypes")

import ml_dtypes  # noqa: E402
from support import onnx_runner as OR  # noqa: E402
from support.edge_values import INT_RANGES, TIE_SCALES, float_edge_values, int_edge_values  # noqa: E402

from refquant.backends import onnx as O  # noqa: E402
from refquant.backends import onnxruntime as R  # noqa: E402
from refquant.qparams import make_qparams  # noqa: E402
from refquant.quantization import quantize  # noqa: E402

pytestmark = pytest.mark.conformance

QTYPES = ("uint8", "int8", "uint16", "int16", "uint4", "int4", "uint2", "int2")
_ML = {"int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4, "int2": ml_dtypes.int2, "uint2": ml_dtypes.uint2}


def _opset(dt):
    return 25 if dt.endswith("2") else None  # int2/uint2: opset 25


def _zp_dtype(dt):
    return INT_RANGES[dt][2]


def _bits(a):
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


CASES: Counter = Counter()  # (function, face, oracle) -> compared elements (DynamicQuantizeLinear: tensors)


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    """Print the case counts per face function at the end (shown with ``pytest -s``)."""
    yield
    print("\nconformance cases (QuantizeLinear/DequantizeLinear: elements; DynamicQuantizeLinear: tensors)")
    for (fn, face, oracle), n in sorted(CASES.items()):
        print(f"  {face:>11}.{fn:<24} vs {oracle:<14} {n:>9}")


def _count(what, n):
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1]
    fn = next(f for f in ("dynamic_quantize_linear", "dequantize_linear", "quantize_linear") if f in test)
    fn = "dequantize_linear" if "dequantize" in what else fn
    face = "onnxruntime" if what.startswith("onnxruntime face") else "onnx"
    CASES[(fn, face, "onnx.reference" if "onnx.reference" in what else "onnxruntime")] += n


def assert_same(got, want, inputs, what, count=True):
    """Shape, dtype, then values (floats by bit pattern); show the first mismatches with inputs."""
    got, want = np.asarray(got), np.asarray(want)
    if count and "profile" not in what:
        _count(what, got.size)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if got.dtype.kind == "f":
        bad = (_bits(got) != _bits(want)) & ~(np.isnan(got) & np.isnan(want))
    else:
        bad = got != want
    if bad.any():
        idx = np.argwhere(bad)[:8]
        rows = [f"  at {tuple(i)}: input {inputs[tuple(i)]!r} got {got[tuple(i)]!r} want {want[tuple(i)]!r}"
                for i in idx]
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} differ\n" + "\n".join(rows))


def _edge(scale, zp, dt, cap=6000, seed=0):
    """float_edge_values, subsampled to ``cap`` for the wide 16-bit ranges (specials always kept)."""
    x = float_edge_values(scale, zp, dt, seed=seed, n_random=512)
    if x.size > cap:
        rng = np.random.default_rng(seed)
        special = ~np.isfinite(x) | (np.abs(x) >= 1e9) | (x == 0)
        x = np.concatenate([x[special], rng.choice(x[~special], cap, replace=False)])
    return x


def _scales(seed):
    rng = np.random.default_rng(seed)
    rand = (10.0 ** rng.uniform(-4, 1, 3)).astype(np.float32)
    return [np.float32(s) for s in TIE_SCALES[:6]] + list(rand)


def _zero_points(dt):
    lo, hi, _ = INT_RANGES[dt]
    zps = {lo, hi, (lo + hi) // 2, lo + (hi - lo) // 3}
    if lo < 0:
        zps |= {0, -1}
    return sorted(zps)


def _reference_model(x, scale, zp, dt):
    """The core's ``onnx_reference`` profile: how onnx.reference quantizes (int32 cast of rint(x/s), + zp wrapping)."""
    qp = make_qparams(scale, zp, dt, scale_dtype=np.asarray(scale).dtype)
    return quantize(x, qp, "onnx_reference")


# ----------------------------------------------------------------------------- QuantizeLinear


@pytest.mark.parametrize("dt", QTYPES)
def test_quantize_linear_per_tensor(dt):
    """Edge values (exact ties, their neighbours, float32-division ties, 2^k s, NaN, +-Inf,
    +-1e10, +-2^31, random) x tie-friendly and random scales x range-end and odd zero points."""
    n = 0
    for scale in _scales(seed=len(dt)):
        for zp in _zero_points(dt):
            x = _edge(scale, zp, dt)
            zpa = np.array(zp, _zp_dtype(dt))
            ort = OR.run_quantize_linear(x, scale, zpa, output_dtype=dt, opset=_opset(dt))
            ref = OR.run_quantize_linear(x, scale, zpa, output_dtype=dt, opset=_opset(dt), engine="reference")
            got_ort = R.quantize_linear(x, scale, zp, output_dtype=dt)
            got_onnx = O.quantize_linear(x, scale, zp, output_dtype=dt)
            what = f"{dt} scale={scale!r} zp={zp}"
            assert_same(got_ort, ort, x, "onnxruntime face vs ORT, " + what)
            assert_same(got_onnx, ort, x, "onnx face vs ORT (float32 x: spec == ORT), " + what)
            # onnx.reference departs only where rint(x/s) + zp leaves int32 (and NaN): model it exactly ...
            assert_same(_reference_model(x, scale, zp, dt), ref, x, "onnx_reference profile vs onnx.reference, " + what)
            # ... and the face equals the reference everywhere else.
            with np.errstate(all="ignore"):
                inside = np.abs(np.rint(x.astype(np.float64) / np.float64(scale)) + zp) < 2.0 ** 31
            assert_same(got_onnx[inside], ref[inside], x[inside], "onnx face vs onnx.reference (int32-safe), " + what)
            n += x.size
    assert n >= 5000


def test_quantize_linear_reference_departures_are_real():
    """The documented departures exist: +Inf -> qmin in onnx.reference, qmax in the spec face."""
    x = np.array([np.inf, 1e10, 3e9, np.nan, -np.inf], np.float32)
    ref = OR.run_quantize_linear(x, np.float32(1), np.uint8(0), engine="reference")
    np.testing.assert_array_equal(ref, [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(O.quantize_linear(x, 1.0, np.uint8(0)), [255, 255, 255, 0, 0])
    ref = OR.run_quantize_linear(x, np.float32(1), np.int8(-3), engine="reference")  # INT32_MIN - 3 wraps
    np.testing.assert_array_equal(ref, [127, 127, 127, 127, 127])
    np.testing.assert_array_equal(O.quantize_linear(x, 1.0, np.int8(-3)), [127, 127, 127, -128, -128])


def _int32_safe(x, scale, shape, axis, block=0):
    """Elements whose quotient x / s stays far inside int32 (where onnx.reference follows the spec)."""
    a = axis % len(shape)
    if block:
        s = np.repeat(scale, block, axis=a).take(range(shape[a]), axis=a)
    elif np.ndim(scale) == 1:
        bshape = [1] * len(shape)
        bshape[a] = -1
        s = scale.reshape(bshape)
    else:
        s = scale
    with np.errstate(all="ignore"):
        return np.isfinite(x) & (np.abs(x.astype(np.float64) / s) < 2.0 ** 30)


def _per_channel_values(rng, shape, axis, scale, zp, dt):
    """x with ties (n + 1/2) s_c, their float32 neighbours, saturating values, specials and random values."""
    lo, hi, _ = INT_RANGES[dt]
    bshape = [1] * len(shape)
    bshape[axis] = shape[axis]
    s = scale.reshape(bshape).astype(np.float64)
    z = zp.reshape(bshape).astype(np.float64)
    codes = rng.integers(lo - 3, hi + 3, size=shape, endpoint=True) - z
    kind = rng.integers(0, 5, size=shape)
    x = np.where(kind == 0, (codes + 0.5) * s, rng.uniform(lo - z - 4, hi - z + 4, size=shape) * s)
    x = x.astype(np.float32)
    x = np.where(kind == 1, np.nextafter(x, np.float32(np.inf)), x)
    x = np.where(kind == 2, np.nextafter(x, np.float32(-np.inf)), x)
    special = np.array([np.nan, np.inf, -np.inf, 1e10, -1e10, 0.0, -0.0], np.float32)
    pick = rng.random(shape) < 0.03
    return np.where(pick, special[rng.integers(0, special.size, size=shape)], x).astype(np.float32)


def _channel_params(rng, c, dt):
    lo, hi, npd = INT_RANGES[dt]
    scale = np.where(rng.random(c) < 0.5, 2.0 ** rng.integers(-8, 3, c),
                     10.0 ** rng.uniform(-3, 0.5, c)).astype(np.float32)
    zp = rng.integers(lo, hi, size=c, endpoint=True)
    zp[:2] = [lo, hi][: min(2, c)]
    return scale, zp.astype(npd)


@pytest.mark.parametrize("shape,axis", [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), -1), ((2, 9, 3, 5), -3),
                                        ((11,), 0), ((13,), -1), ((1, 7), 0), ((6, 1), 1)])
def test_quantize_linear_per_axis(shape, axis):
    rng = np.random.default_rng(abs(hash((shape, axis))) % 2**32)
    n = 0
    for dt in QTYPES:
        c = shape[axis]
        scale, zp = _channel_params(rng, c, dt)
        for rep in range(3):
            x = _per_channel_values(rng, shape, axis % len(shape), scale, zp, dt)
            ort = OR.run_quantize_linear(x, scale, zp, axis=axis, output_dtype=dt, opset=_opset(dt))
            ref = OR.run_quantize_linear(x, scale, zp, axis=axis, output_dtype=dt, opset=_opset(dt), engine="reference")
            what = f"{dt} shape={shape} axis={axis}"
            got_r = R.quantize_linear(x, scale, zp, axis=axis, output_dtype=dt)
            assert_same(got_r, ort, x, "onnxruntime face, " + what)
            got = O.quantize_linear(x, scale, zp, axis=axis, output_dtype=dt)
            assert_same(got, ort, x, "onnx face vs ORT, " + what)
            ok = _int32_safe(x, scale, shape, axis)
            assert_same(got[ok], ref[ok], x[ok], "onnx face vs onnx.reference (int32-safe), " + what)
            n += x.size
    assert n >= 100


# (x shape, axis, block_size): partial last blocks, the ends of ONNX's block-size range, rank 1.
BLOCKED = [((4, 10), 1, 3), ((4, 10), 1, 4), ((4, 10), 1, 5), ((4, 10), 1, 9), ((4, 10), -1, 10),
           ((7, 6), 0, 2), ((7, 6), 0, 4), ((3, 5, 8), 2, 3), ((3, 5, 8), 1, 2), ((17,), 0, 4), ((2, 3, 33), -1, 16)]


@pytest.mark.parametrize("shape,axis,block", BLOCKED)
def test_quantize_linear_blocked(shape, axis, block):
    rng = np.random.default_rng(block * 1000 + len(shape) * 10 + axis % 7)
    a = axis % len(shape)
    sshape = list(shape)
    sshape[a] = -(-shape[a] // block)
    for dt in ("uint8", "int8", "int16", "uint16", "int4", "uint4", "int2"):
        scale_c, zp_c = _channel_params(rng, int(np.prod(sshape)), dt)
        scale, zp = scale_c.reshape(sshape), zp_c.reshape(sshape)
        # values: expand the block parameters with the core and draw per element
        x = _per_channel_values(rng, (int(np.prod(shape)),), 0, np.ones(int(np.prod(shape)), np.float32),
                                np.zeros(int(np.prod(shape)), zp.dtype), dt).reshape(shape)
        x = (x * np.repeat(scale, block, axis=a).take(range(shape[a]), axis=a)).astype(np.float32)
        ort = OR.run_quantize_linear(x, scale, zp, axis=axis, block_size=block, output_dtype=dt, opset=_opset(dt))
        ref = OR.run_quantize_linear(x, scale, zp, axis=axis, block_size=block, output_dtype=dt, opset=_opset(dt),
                                     engine="reference")
        what = f"{dt} shape={shape} axis={axis} block_size={block}"
        got_r = R.quantize_linear(x, scale, zp, axis=axis, block_size=block, output_dtype=dt)
        got_o = O.quantize_linear(x, scale, zp, axis=axis, block_size=block, output_dtype=dt)
        assert_same(got_r, ort, x, "onnxruntime face, " + what)
        assert_same(got_o, ort, x, "onnx face vs ORT, " + what)
        ok = _int32_safe(x, scale, shape, axis, block)
        assert_same(got_o[ok], ref[ok], x[ok], "onnx face vs onnx.reference (int32-safe), " + what)


@pytest.mark.parametrize("dt", ("uint8", "int8", "int16", "uint16", "int4"))
def test_quantize_linear_float16(dt):
    """float16 x and scale: ORT divides in float32, the spec (and onnx.reference) in float16."""
    rng = np.random.default_rng(7)
    lo, hi, npd = INT_RANGES[dt]
    n_diff = 0
    for scale in (np.float16(0.3), np.float16(0.0123), np.float16(1.7), np.float16(0.5), np.float16(2.0 ** -6)):
        for zp in (lo, 0 if lo < 0 else hi // 2, hi):
            codes = np.arange(max(lo - zp, -3000) - 3, min(hi - zp, 3000) + 3)
            with np.errstate(over="ignore"):
                x = np.concatenate([((codes + 0.5) * np.float32(scale)).astype(np.float16),
                                    rng.uniform(lo - zp - 5, hi - zp + 5, 4000).astype(np.float32) * np.float32(scale),
                                    [np.nan, np.inf, -np.inf, 65504, -65504, 0]]).astype(np.float16)
            zpa = np.array(zp, npd)
            ort = OR.run_quantize_linear(x, scale, zpa, output_dtype=dt)
            ref = OR.run_quantize_linear(x, scale, zpa, output_dtype=dt, engine="reference")
            what = f"{dt} float16 scale={scale!r} zp={zp}"
            assert_same(R.quantize_linear(x, scale, zp, output_dtype=dt), ort, x, "onnxruntime face, " + what)
            got = O.quantize_linear(x, scale, zp, output_dtype=dt)
            with np.errstate(over="ignore"):
                ok = np.isfinite(x / scale)  # float16 quotients overflow early; inf is a reference departure
            assert_same(got[ok], ref[ok], x[ok], "onnx face (float16 division) vs onnx.reference, " + what)
            n_diff += int((got != ort).sum())
    assert n_diff > 0, "float16 division should differ from ORT's float32 division somewhere"


@pytest.mark.parametrize("dt", ("uint8", "int8", "int16", "int4"))
def test_quantize_linear_float16_per_axis_and_blocked(dt):
    """float16 per-axis and blocked, both directions: ORT face vs ORT, spec face vs onnx.reference."""
    rng = np.random.default_rng(len(dt) + 40)
    lo, hi, npd = INT_RANGES[dt]
    x = rng.uniform(-300, 300, (6, 10)).astype(np.float16)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    s = rng.uniform(0.05, 3, 6).astype(np.float16)
    z = rng.integers(lo, hi, 6, endpoint=True).astype(npd)
    x_dtype = dt if dt in _ML else None
    for kw, ss, zz in ((dict(axis=0), s, z), (dict(axis=1, block_size=3), np.repeat(s[:, None], 4, 1),
                                               np.repeat(z[:, None], 4, 1))):
        what = f"{dt} float16 {kw}"
        ort = OR.run_quantize_linear(x, ss, zz, output_dtype=dt, **kw)
        ref = OR.run_quantize_linear(x, ss, zz, output_dtype=dt, engine="reference", **kw)
        assert_same(R.quantize_linear(x, ss, zz, output_dtype=dt, **kw), ort, x, "onnxruntime face, " + what)
        got = O.quantize_linear(x, ss, zz, output_dtype=dt, **kw)
        ok = _int32_safe(x, ss, x.shape, kw["axis"], kw.get("block_size", 0))
        with np.errstate(over="ignore"):
            ok &= np.isfinite(x / (ss[:, None] if ss.ndim == 1 else np.repeat(ss, 3, 1)[:, :10]))
        assert_same(got[ok], ref[ok], x[ok], "onnx face vs onnx.reference, " + what)
        ort = OR.run_dequantize_linear(got, ss, zz, x_dtype=x_dtype, **kw)
        assert_same(R.dequantize_linear(got, ss, zz, **kw), ort, got, "onnxruntime face, dequantize " + what)


def test_quantize_linear_float32_x_float16_scale_divides_in_float16():
    """The spec divides in the scale's type; onnx.reference promotes to float32 unless `precision` says float16."""
    rng = np.random.default_rng(11)
    scale = np.float16(0.0123)
    x = (rng.uniform(-130, 130, 20000) * np.float32(scale)).astype(np.float32)
    got = O.quantize_linear(x, scale, np.int8(3))
    want = OR.run_quantize_linear(x, scale, np.int8(3), precision="float16", opset=23, engine="reference")
    assert_same(got, want, x, "onnx face vs onnx.reference precision=float16")
    promoted = OR.run_quantize_linear(x, scale, np.int8(3), engine="reference")
    assert (promoted != got).any()  # the reference's NumPy promotion is a departure


@pytest.mark.parametrize("shape,scale_shape,axis", [((0,), (), 1), ((0, 3), (3,), 1), ((2, 0, 4), (), 1),
                                                    ((2, 0, 4), (2,), 0), ((0, 5), (1,), 0)])
def test_quantize_linear_empty(shape, scale_shape, axis):
    x = np.zeros(shape, np.float32)
    scale = np.full(scale_shape, 0.5, np.float32)
    zp = np.full(scale_shape, 3, np.int8)
    ort = OR.run_quantize_linear(x, scale, zp, axis=axis)
    assert_same(R.quantize_linear(x, scale, zp, axis=axis), ort, x, "empty")
    assert_same(O.quantize_linear(x, scale, zp, axis=axis), ort, x, "empty")
    q = np.zeros(shape, np.int8)
    ort = OR.run_dequantize_linear(q, scale, zp, axis=axis)
    assert_same(R.dequantize_linear(q, scale, zp, axis=axis), ort, q, "onnxruntime face, empty dequantize")
    assert_same(O.dequantize_linear(q, scale, zp, axis=axis), ort, q, "onnx face, empty dequantize")


@pytest.mark.parametrize("dt", QTYPES)
def test_quantize_linear_without_zero_point(dt):
    """No y_zero_point: zero point 0, output type from output_dtype (uint8 when absent)."""
    x = _edge(np.float32(0.25), 0, dt)
    ort = OR.run_quantize_linear(x, np.float32(0.25), None, output_dtype=dt, opset=_opset(dt))
    assert_same(R.quantize_linear(x, 0.25, output_dtype=dt), ort, x, f"{dt} without zero point")
    assert_same(O.quantize_linear(x, 0.25, output_dtype=dt), ort, x, f"{dt} without zero point")
    if dt == "uint8":
        assert_same(O.quantize_linear(x, 0.25), ort, x, "default uint8")


def test_quantize_linear_int32_x():
    """opset 25 int32 x: the spec converts x to the scale's type and divides there (onnx.reference divides in
    float64, equal while |x| < 2^24); ONNX Runtime 1.32 has no int32 kernel (the ORT face raises)."""
    x = np.concatenate([np.arange(-300, 301), [2**24 - 1, -(2**24) + 1, 12345678]]).astype(np.int32)
    for scale, zp in ((np.float32(1.5), np.int8(3)), (np.float32(0.37), np.uint8(200)), (np.float32(64), np.int16(-9))):
        ref = OR.run_quantize_linear(x, scale, zp, opset=25, engine="reference")
        assert_same(O.quantize_linear(x, scale, zp), ref, x, f"onnx face vs onnx.reference, int32 x, scale={scale}")


def test_quantize_linear_ml_dtypes_zero_point():
    x = _edge(np.float32(0.5), -3, "int4")
    ort = OR.run_quantize_linear(x, np.float32(0.5), np.array(-3, np.int8), output_dtype="int4")
    assert_same(O.quantize_linear(x, 0.5, np.array(-3, ml_dtypes.int4)), ort, x, "ml_dtypes int4 zero point")
    assert_same(R.quantize_linear(x, 0.5, np.array(-3, ml_dtypes.int4)), ort, x, "ml_dtypes int4 zero point")


# ----------------------------------------------------------------------------- DequantizeLinear

DQTYPES = ("uint8", "int8", "uint16", "int16", "int32", "uint4", "int4", "uint2", "int2")


def _dq_input(dt, seed):
    q = int_edge_values(dt, seed=seed, n_random=4096)
    lo, hi, _ = INT_RANGES[dt]
    if hi - lo < 70000:  # every code
        q = np.concatenate([q, np.arange(lo, hi + 1)]).astype(q.dtype)
    return q


@pytest.mark.parametrize("dt", DQTYPES)
def test_dequantize_linear_per_tensor(dt):
    n = 0
    lo, hi, npd = INT_RANGES[dt]
    for scale in _scales(seed=3 + len(dt)):
        for zp in ([0] if dt == "int32" else _zero_points(dt)):
            q = _dq_input(dt, seed=int(zp) % 97)
            zpa = np.array(zp, npd)
            x_dtype = dt if dt in _ML else None
            ort = OR.run_dequantize_linear(q, scale, zpa, x_dtype=x_dtype, opset=_opset(dt))
            ref = OR.run_dequantize_linear(q, scale, zpa, x_dtype=x_dtype, opset=_opset(dt), engine="reference")
            what = f"{dt} scale={scale!r} zp={zp}"
            assert_same(R.dequantize_linear(q, scale, zpa), ort, q, "onnxruntime face, " + what)
            assert_same(O.dequantize_linear(q, scale, zpa), ref, q, "onnx face vs onnx.reference, " + what)
            assert_same(O.dequantize_linear(q, scale, zpa), ort, q, "onnx face vs ORT, " + what)
            if dt in _ML:  # ml_dtypes sub-byte arrays are accepted as such
                assert_same(O.dequantize_linear(q.astype(_ML[dt]), scale, zpa.astype(_ML[dt])), ref, q, what)
            n += q.size
    assert n >= 1000


def test_dequantize_linear_int32_zero_point_wraps_in_onnxruntime():
    """ORT computes x - zp in int32 (wrapping); the spec has no int32 zero point (the ONNX face refuses one)."""
    q = int_edge_values("int32", seed=5, n_random=4096)
    for zp in (5, -7, 2**31 - 1, -(2**31), 123456789):
        zpa = np.array(zp, np.int32)
        ort = OR.run_dequantize_linear(q, np.float32(0.37), zpa)
        assert_same(R.dequantize_linear(q, np.float32(0.37), zpa), ort, q, f"int32 zp={zp}")


@pytest.mark.parametrize("dt", ("uint8", "int8", "int16", "uint16", "int4"))
def test_dequantize_linear_per_axis_and_blocked(dt):
    rng = np.random.default_rng(len(dt))
    lo, hi, npd = INT_RANGES[dt]
    for shape, axis, block in [((3, 5, 7), 1, 0), ((3, 5, 7), -1, 0), ((9,), 0, 0), ((4, 10), 1, 3),
                               ((4, 10), 1, 9), ((7, 6), 0, 2), ((2, 3, 33), -1, 16)]:
        a = axis % len(shape)
        sshape = (shape[a],) if block == 0 else tuple(-(-d // block) if i == a else d for i, d in enumerate(shape))
        scale, zp = _channel_params(rng, int(np.prod(sshape)), dt)
        scale, zp = scale.reshape(sshape), zp.reshape(sshape)
        q = rng.integers(lo, hi, size=shape, endpoint=True).astype(npd)
        x_dtype = dt if dt in _ML else None
        ort = OR.run_dequantize_linear(q, scale, zp, axis=axis, block_size=block, x_dtype=x_dtype)
        ref = OR.run_dequantize_linear(q, scale, zp, axis=axis, block_size=block, x_dtype=x_dtype, engine="reference")
        what = f"{dt} shape={shape} axis={axis} block_size={block}"
        assert_same(R.dequantize_linear(q, scale, zp, axis=axis, block_size=block), ort, q, "onnxruntime face, " + what)
        assert_same(O.dequantize_linear(q, scale, zp, axis=axis, block_size=block), ref, q, "onnx face, " + what)


@pytest.mark.parametrize("dt", ("uint8", "int8", "int16", "uint16", "int32"))
def test_dequantize_linear_float16_scale(dt):
    """float16 output: ORT rounds its float32 product to float16; the spec multiplies in float16.
    They agree whenever x - zp is exact in float16 (|x - zp| <= 2048: all 8-bit inputs)."""
    lo, hi, npd = INT_RANGES[dt]
    q = _dq_input(dt, seed=9)
    for scale in (np.float16(0.3), np.float16(0.0123), np.float16(2.0 ** -10), np.float16(1.5)):
        zp = np.array(0 if dt == "int32" else (lo + hi) // 3, npd)
        ort = OR.run_dequantize_linear(q, scale, zp)
        ref = OR.run_dequantize_linear(q, scale, zp, engine="reference")
        what = f"{dt} float16 scale={scale!r}"
        assert_same(R.dequantize_linear(q, scale, zp), ort, q, "onnxruntime face, " + what)
        got = O.dequantize_linear(q, scale, zp)
        exact = np.abs(q.astype(np.int64) - int(zp)) <= 2048
        assert_same(got[exact], ref[exact], q[exact], "onnx face vs onnx.reference (|x - zp| <= 2048), " + what)
        assert_same(got[exact], ort[exact], q[exact], "onnx face vs ORT (|x - zp| <= 2048), " + what)


# ----------------------------------------------------------------------------- DynamicQuantizeLinear


def _dql_vectors(seed, count):
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4099]
    for i in range(count):
        n = int(sizes[i % len(sizes)])
        kind = i % 8
        if kind == 0:
            x = rng.normal(0, 10.0 ** rng.uniform(-6, 6), n)
        elif kind == 1:
            x = np.abs(rng.normal(0, 3, n))  # min 0: zp 0
        elif kind == 2:
            x = -np.abs(rng.normal(0, 3, n))  # max 0: zp 255
        elif kind == 3:  # tie-heavy: power-of-two ranges, values on .5 codes
            s = 2.0 ** rng.integers(-8, 4)
            x = (rng.integers(-128, 128, n) + rng.choice([0, 0.5], n)) * s
            x[0], x[-1] = -128 * s, 127 * s
        elif kind == 4:
            x = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-30, 30)
        elif kind == 5:  # zero point near a tie: -min/scale = k + 1/2
            x = rng.uniform(-2.5, 6.0, n)
            x[0], x[1 % n] = -1.0, 1.5499999
        elif kind == 6:
            x = rng.choice([-3.0, 0.0, 1.0, 2.0, 5.0], n)
        else:
            x = rng.normal(100, 1, n)
        yield x.astype(np.float32)


def _check_dql(x, engine_out, got, what):
    y, s, z = engine_out
    gy, gs, gz = got
    _count(what, 1)
    assert gs.shape == () and gz.shape == () and gs.dtype == np.float32 and gz.dtype == np.uint8, what
    assert_same(gy, y.reshape(x.shape), x, what + ": y", count=False)
    assert_same(gs, np.asarray(s, np.float32).reshape(()), np.asarray(x.size), what + ": y_scale", count=False)
    assert_same(gz, np.asarray(z, np.uint8).reshape(()), np.asarray(x.size), what + ": y_zero_point", count=False)


def test_dynamic_quantize_linear_random():
    n = 0
    for i, x in enumerate(_dql_vectors(seed=2024, count=1500)):
        ort = OR.run_dynamic_quantize_linear(x)
        got_r = R.dynamic_quantize_linear(x)
        _check_dql(x, ort, got_r, f"onnxruntime face, case {i} (n={x.size})")
        got_o = O.dynamic_quantize_linear(x)
        _check_dql(x, ort, got_o, f"onnx face vs ORT, case {i} (n={x.size})")
        if i % 5 == 0:  # the reference evaluator is slow; a fifth of the cases
            _check_dql(x, OR.run_dynamic_quantize_linear(x, engine="reference"), got_o,
                       f"onnx face vs onnx.reference, case {i}")
        n += 1
    assert n == 1500


def test_dynamic_quantize_linear_nan_inf_onnxruntime():
    """NaN and +-Inf at every kind of position (SIMD blocks of 32 and 8, scalar tail)."""
    rng = np.random.default_rng(99)
    sizes = [1, 3, 7, 8, 9, 16, 31, 32, 33, 40, 63, 64, 65, 100, 127, 128, 129, 300, 1000]
    specials = np.array([np.nan, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45], np.float32)
    for i in range(800):
        n = int(sizes[i % len(sizes)])
        x = rng.normal(0, 3, n).astype(np.float32)
        if i % 4 == 0:
            x = np.abs(x)
        for _ in range(int(rng.integers(1, 4))):
            x[rng.integers(0, n)] = specials[rng.integers(0, specials.size)]
        _check_dql(x, OR.run_dynamic_quantize_linear(x), R.dynamic_quantize_linear(x),
                   f"onnxruntime face, case {i} x={x[:8]}")
    for x in ([np.nan] * 3, [1.0] * 8 + [np.nan] * 8, [np.nan] + [1.0] * 300, [-np.inf, 1, 2], [1e-45, 0],
              [-1e-45, 0, 1e-45]):
        x = np.array(x, np.float32)
        _check_dql(x, OR.run_dynamic_quantize_linear(x), R.dynamic_quantize_linear(x), f"onnxruntime face, x={x[:8]}")


@pytest.mark.parametrize("x", [np.zeros(5, np.float32), np.zeros(0, np.float32), np.zeros((2, 3, 0), np.float32),
                               np.full(40, -0.0, np.float32)])
def test_dynamic_quantize_linear_all_zero(x):
    """All zeros: ORT and refquant give scale 1.0; onnx.reference gives 1/255 (documented departure)."""
    ort = OR.run_dynamic_quantize_linear(x)
    _check_dql(x, ort, R.dynamic_quantize_linear(x), "onnxruntime face")
    _check_dql(x, ort, O.dynamic_quantize_linear(x), "onnx face")
    if x.size:
        _, s, _ = OR.run_dynamic_quantize_linear(x, engine="reference")
        assert np.float32(s) == np.float32(1 / 255)

"""Conformance: ``refquant.backends.tflite`` QUANTIZE / DEQUANTIZE == LiteRT, bit for bit.

Every case builds a one-op model (``support.tflite_builder``) and runs it on the real
LiteRT kernels; refquant's face must return the same integers (``==``) and the same
float32 bit patterns. Kernel -> resolver: ``reference`` -> ``BUILTIN_REF``, ``xnnpack`` ->
``BUILTIN`` (default XNNPACK delegate), ``optimized`` -> ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``.

Families: realistic random, tie-heavy (power-of-two and few-bit scales, exact .5, odd and
negative zero points), saturation, NaN/±Inf/huge at every SIMD position, lengths 1..40
(the optimized kernel is position dependent), empty and 0-d tensors, rank 7 (XNNPACK
declines it), subnormals (XNNPACK flushes them), huge scales, per-channel, and the
requests LiteRT refuses. Cases are batched: one model per (shape, scale, zero point),
many data arrays through it (interpreters are cached by model bytes).

Rerun: ``pytest tests/test_conformance_tflite_quantize.py -m conformance``
(``-s`` prints the number of compared elements per function and kernel).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")

from support import edge_values, tflite_builder  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.errors import QuantizationValueError, UnsupportedError  # noqa: E402

pytestmark = pytest.mark.conformance

RESOLVER = {"reference": "ref", "xnnpack": "xnnpack", "optimized": "builtin"}
KERNELS = tuple(RESOLVER)
INT_DTYPES = ("int8", "uint8", "int16")
ZERO_POINTS = {
    "int8": (0, 1, -1, 3, -7, 127, -128),
    "uint8": (0, 1, 3, 128, 255),
    "int16": (0, 1, -5, 32767, -32768),
    "int4": (0, 1, -3, 7, -8),
    "uint4": (0, 1, 8, 15),
}
RANGES = {k: v[:2] for k, v in edge_values.INT_RANGES.items()}
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared elements:", dict(sorted(COUNTS.items())))


# --------------------------------------------------------------------------- helpers


def _run_quantize(x, scale, zp, dtype, kernel):
    """The real QUANTIZE (4-bit outputs: the INT4/UINT4 tensor type, which the builder lacks)."""
    resolver = RESOLVER[kernel]
    if dtype not in ("int4", "uint4"):
        return tflite_builder.run_quantize(x, scale, zp, dtype, resolver)
    from ai_edge_litert import schema_py_generated as sch

    x = np.asarray(x, np.float32)
    g = tflite_builder.Graph()
    xi = g.tensor("x", x.shape, np.float32)
    yi = g.tensor("y", x.shape, np.int8 if dtype == "int4" else np.uint8, scale, zp)
    g.tensors[yi].type = sch.TensorType.INT4 if dtype == "int4" else sch.TensorType.UINT4
    model = tflite_builder.build_model(g, sch.BuiltinOperator.QUANTIZE, sch.BuiltinOptions.QuantizeOptions,
                                       sch.QuantizeOptionsT(), [xi], [yi])
    return tflite_builder.run_model(model, [x], resolver).reshape(x.shape)


def _run_per_channel(op, a, scale, zp, dtype, axis, kernel):
    """QUANTIZE (float a -> dtype) or DEQUANTIZE (int a) with per-channel parameters."""
    from ai_edge_litert import schema_py_generated as sch

    g = tflite_builder.Graph()
    ax = axis % a.ndim
    if op == "quantize":
        xi = g.tensor("x", a.shape, np.float32)
        yi = g.tensor("y", a.shape, dtype, scale, zp, quantized_dimension=ax)
        code, opts_t, opts = sch.BuiltinOperator.QUANTIZE, sch.BuiltinOptions.QuantizeOptions, sch.QuantizeOptionsT()
    else:
        xi = g.tensor("q", a.shape, a.dtype, scale, zp, quantized_dimension=ax)
        yi = g.tensor("y", a.shape, np.float32)
        code, opts_t = sch.BuiltinOperator.DEQUANTIZE, sch.BuiltinOptions.DequantizeOptions
        opts = sch.DequantizeOptionsT()
    model = tflite_builder.build_model(g, code, opts_t, opts, [xi], [yi])
    return tflite_builder.run_model(model, [a], RESOLVER[kernel])


def _assert_same(got, want, inputs, what, key):
    """Shape, dtype, then values (floats by bit pattern); diagnose the first mismatches."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != LiteRT {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != LiteRT {want.dtype}"
    if got.dtype == np.float32:
        diff = got.view(np.uint32) != want.view(np.uint32)
    else:
        diff = got != want
    if diff.any():
        idx = np.flatnonzero(diff.reshape(-1))[:8]
        flat_in = np.asarray(inputs).reshape(-1)
        rows = "\n".join(f"  flat[{i}] in={flat_in[i]!r} refquant={got.reshape(-1)[i]!r} "
                         f"LiteRT={want.reshape(-1)[i]!r}" for i in idx)
        pytest.fail(f"{what}: {int(diff.sum())} of {diff.size} differ (size {diff.size}, "
                    f"positions matter for 'optimized': blocks of 8, then the tail)\n{rows}")
    COUNTS[key] += got.size
    return got.size


def _check_quantize(x, scale, zp, dtype, kernel, **kw):
    x = np.asarray(x, np.float32)
    got = tflite.quantize(x, scale, zp, dtype=dtype, kernel=kernel, **kw)
    want = _run_quantize(x, scale, zp, dtype, kernel)
    return _assert_same(got, want, x, f"quantize {dtype} s={scale!r} zp={zp} kernel={kernel}",
                        f"quantize/{kernel}")


def _check_dequantize(q, scale, zp, kernel):
    got = tflite.dequantize(q, scale, zp, kernel=kernel)
    want = tflite_builder.run_dequantize(q, scale, zp, RESOLVER[kernel])
    return _assert_same(got, want, q, f"dequantize {q.dtype} s={scale!r} zp={zp} kernel={kernel}",
                        f"dequantize/{kernel}")


def _zero_points(dtype, rng, n_random=2):
    lo, hi = RANGES[dtype]
    extra = rng.integers(lo, hi, size=n_random, endpoint=True).tolist()
    return list(ZERO_POINTS[dtype]) + [int(z) for z in extra]


def _random_scale(rng):
    """float32 scale, log-uniform over [1e-4, 10] (realistic activations)."""
    return float(np.float32(10.0 ** rng.uniform(-4, 1)))


def _float_pool(scale, zp, dtype, rng):
    """Edge floats (ties, neighbours, specials) + random values over the range with margin."""
    lo, hi = RANGES[dtype]
    x = edge_values.float_edge_values(scale, zp, dtype, seed=int(rng.integers(1 << 30)), n_random=128)
    wide = rng.uniform((lo - zp - 4) * scale, (hi - zp + 4) * scale, size=128).astype(np.float32)
    return np.concatenate([x, wide])


# --------------------------------------------------------------------------- QUANTIZE


@pytest.mark.parametrize("dtype", INT_DTYPES + ("int4", "uint4"))
@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_realistic_random(kernel, dtype):
    rng = np.random.default_rng(1000 + KERNELS.index(kernel))
    lo, hi = RANGES[dtype]
    n = 0
    for _ in range(10):
        s = _random_scale(rng)
        zp = int(rng.integers(lo, hi, endpoint=True))
        # activations: mostly inside the range, tails saturate
        x = (rng.normal(0.0, 0.4, size=1003) * (hi - lo) * s + (lo + hi - 2 * zp) / 2 * s).astype(np.float32)
        n += _check_quantize(x, s, zp, dtype, kernel)
    assert n >= 10_000


@pytest.mark.parametrize("dtype", INT_DTYPES + ("int4", "uint4"))
@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_ties_saturation_specials(kernel, dtype):
    """Exact .5 ties at few-bit scales, float32-division ties, ±2^k·s, specials, saturation."""
    rng = np.random.default_rng(2000 + KERNELS.index(kernel))
    scales = edge_values.TIE_SCALES if dtype != "int16" else edge_values.TIE_SCALES[::3]
    n = 0
    for s in scales + (0.0123, 0.1):
        for zp in _zero_points(dtype, rng, n_random=1)[: (4 if dtype == "int16" else None)]:
            x = _float_pool(s, zp, dtype, rng)
            n += _check_quantize(rng.permutation(x), s, zp, dtype, kernel)
    assert n >= 5_000


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_lengths_1_to_40(kernel, dtype):
    """Every length 1..40 (8-wide blocks vs the scalar tail), specials rotated through positions."""
    rng = np.random.default_rng(3000 + KERNELS.index(kernel))
    params = [(0.5, 1), (2.0 ** -7, -3 if dtype != "uint8" else 3), (0.0123, ZERO_POINTS[dtype][-1])]
    specials = edge_values.special_floats()
    n = 0
    for s, zp in params:
        pool = _float_pool(s, zp, dtype, rng)
        for length in range(1, 41):
            for rep in range(4):  # the same model: only set_tensor/invoke per array
                x = rng.choice(pool, size=length)
                x[(rep * 7 + length) % length] = specials[(rep + length) % specials.size]
                n += _check_quantize(x, s, zp, dtype, kernel)
    assert n >= 9_000


@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_each_special_at_each_position(kernel):
    """NaN, ±Inf, ±1e10, ±2^31, FLT_MAX... at every position of blocks and tails, both zp signs."""
    specials = edge_values.special_floats()
    n = 0
    for dtype, zps in (("int8", (0, 5, -3, -128, 127)), ("uint8", (0, 200)), ("int16", (0, -1, 9))):
        for zp in zps:
            for length in (3, 8, 11, 19):
                base = np.linspace(-3.0, 3.0, length).astype(np.float32)
                pos = np.arange(length)
                for shift in range(specials.size):  # position p holds special (p + shift) % 17
                    x = specials[(pos + shift) % specials.size]
                    n += _check_quantize(x, 0.25, zp, dtype, kernel)
                    n += _check_quantize(np.where(pos % 2 == shift % 2, x, base), 0.25, zp, dtype, kernel)
    assert n >= 4_000


@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_near_int32_limit_wraps(kernel):
    """x/s just below 2^31: (int32)v + zp wraps in reference/optimized (backends.md §9)."""
    x = np.array([2147483520.0, -2147483520.0, 2147483648.0, -2147483648.0, 1e9, -1e9, 2.0e9, 2.1e9,
                  2147483520.0], np.float32)
    for dtype, zps in (("int8", (0, 100, -100)), ("uint8", (0, 200)), ("int16", (0, 300, -300))):
        for zp in zps:
            _check_quantize(x, 1.0, zp, dtype, kernel)
            _check_quantize(x[:8], 1.0, zp, dtype, kernel)


@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_empty_scalar_and_shapes(kernel):
    rng = np.random.default_rng(4000)
    for dtype in INT_DTYPES:
        for shape in [(), (0,), (3, 0, 2), (1,), (2, 3, 5), (4, 1, 7, 1), (2, 2, 2, 2, 2, 2), (2, 1, 2, 1, 2, 1, 3)]:
            x = rng.normal(0, 20, size=shape).astype(np.float32)
            if x.size:
                x.reshape(-1)[:: 3] = 0.5 * np.arange(x.reshape(-1)[:: 3].size)  # ties
            _check_quantize(x, 0.5, ZERO_POINTS[dtype][1], dtype, kernel)


@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_subnormals_and_extreme_scales(kernel):
    """XNNPACK runs with FTZ/DAZ: subnormal x -> 0, scale > 2^126 -> reciprocal 0 (inf*0 = NaN)."""
    tiny = np.finfo(np.float32).tiny
    x = np.array([tiny, -tiny, tiny * 0.9, -tiny * 0.9, tiny * 0.5, 1e-45, -1e-45, 3e38, -3e38, np.inf, -np.inf,
                  np.nan, 1.0, 0.0, -0.0, 1.5 * tiny, 2.5 * tiny], np.float32)
    for s in (float(tiny), 1.5e-38, 2.0 ** -120, 1e-30, 1e-3, 255.0, 1e30, 2.0 ** 126, 1e38, 2.0 ** 127, 3e38):
        for dtype in INT_DTYPES:
            for zp in (0, 3):
                _check_quantize(x, s, zp, dtype, kernel)
                _check_quantize(np.concatenate([x, x[:7]]), s, zp, dtype, kernel)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_quantize_per_channel(kernel, dtype):
    rng = np.random.default_rng(5000 + INT_DTYPES.index(dtype))
    lo, hi = RANGES[dtype]
    n = 0
    for shape, axis in [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), 2), ((3, 5, 7), -1), ((4, 9), 0), ((2, 8), 1)]:
        c = shape[axis]
        for trial in range(3):
            if trial == 0:
                scales = np.asarray(edge_values.TIE_SCALES[:c] * 2, np.float32)[:c]
            else:
                scales = (10.0 ** rng.uniform(-3, 0, size=c)).astype(np.float32)
            zps = rng.integers(lo, hi, size=c, endpoint=True) if trial != 1 else np.int64(ZERO_POINTS[dtype][2])
            x = (rng.integers(-300, 300, size=shape) * 0.5 * float(scales.min())).astype(np.float32)
            x.reshape(-1)[rng.integers(0, x.size, 4)] = [np.nan, np.inf, -np.inf, 1e10]
            got = tflite.quantize(x, scales, zps, dtype=dtype, axis=axis, kernel=kernel)
            want = _run_per_channel("quantize", x, scales, zps, dtype, axis, kernel)
            n += _assert_same(got, want, x, f"per-channel quantize {dtype} axis={axis} kernel={kernel}",
                              f"quantize_per_channel/{kernel}")
    assert n >= 1_000


# --------------------------------------------------------------------------- DEQUANTIZE


def _codes(dtype, rng):
    lo, hi = RANGES[dtype]
    if dtype == "int16":
        v = np.concatenate([edge_values.int_edge_values(dtype, seed=7, n_random=2000),
                            rng.integers(lo, hi, size=2000, endpoint=True)])
    else:
        v = np.arange(lo, hi + 1)
    return rng.permutation(v).astype(dtype)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_dequantize_all_codes(kernel, dtype):
    rng = np.random.default_rng(6000 + KERNELS.index(kernel))
    zps = (0,) if dtype == "int16" else ZERO_POINTS[dtype]
    n = 0
    for s in (1.0, 0.1, 3 * 2.0 ** -8, 0.0123, 1e-3, 7.3e5, 1e-30, 3e38, _random_scale(rng), _random_scale(rng)):
        for zp in zps:
            q = _codes(dtype, rng)
            n += _check_dequantize(q, s, zp, kernel)
            n += _check_dequantize(q[:-3], s, zp, kernel)  # a tail that is not a multiple of 8
    assert n >= 5_000


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("kernel", KERNELS)
def test_dequantize_lengths_1_to_40(kernel, dtype):
    rng = np.random.default_rng(7000 + KERNELS.index(kernel))
    zps = (0,) if dtype == "int16" else (ZERO_POINTS[dtype][1], ZERO_POINTS[dtype][-1])
    pool = _codes(dtype, rng)
    n = 0
    for s in (0.1, _random_scale(rng)):
        for zp in zps:
            for length in range(1, 41):
                for _ in range(3):
                    n += _check_dequantize(rng.choice(pool, size=length), s, zp, kernel)
    assert n >= 2_000


@pytest.mark.parametrize("kernel", KERNELS)
def test_dequantize_empty_scalar_and_shapes(kernel):
    rng = np.random.default_rng(8000)
    for dtype in INT_DTYPES:
        lo, hi = RANGES[dtype]
        for shape in [(), (0,), (3, 0, 2), (2, 3, 5), (2, 1, 2, 1, 2, 1, 3)]:
            q = rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
            _check_dequantize(q, 0.37, 0 if dtype == "int16" else ZERO_POINTS[dtype][-1], kernel)


@pytest.mark.parametrize("dtype", ("int8", "uint8"))
@pytest.mark.parametrize("kernel", KERNELS)
def test_dequantize_per_channel(kernel, dtype):
    rng = np.random.default_rng(9000)
    lo, hi = RANGES[dtype]
    n = 0
    for shape, axis in [((3, 5, 7), 0), ((3, 5, 7), 1), ((3, 5, 7), -1), ((16, 9), 0)]:
        c = shape[axis]
        for trial in range(3):
            scales = (10.0 ** rng.uniform(-3, 1, size=c)).astype(np.float32)
            zps = rng.integers(lo, hi, size=c, endpoint=True) if trial else np.int64(lo + 1)
            q = rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
            got = tflite.dequantize(q, scales, zps, axis=axis, kernel=kernel)
            want = _run_per_channel("dequantize", q, scales, zps, dtype, axis, kernel)
            n += _assert_same(got, want, q, f"per-channel dequantize {dtype} axis={axis} kernel={kernel}",
                              f"dequantize_per_channel/{kernel}")
    assert n >= 1_000


# --------------------------------------------------------------------------- what LiteRT refuses


@pytest.mark.parametrize("kernel", KERNELS)
def test_refusals_match_litert(kernel):
    """Requests LiteRT refuses raise in refquant too (and quantize to int16 accepts any zp)."""
    q16 = np.arange(-4, 5, dtype=np.int16)
    with pytest.raises(RuntimeError, match="zero_point"):
        tflite_builder.run_dequantize(q16, 0.5, 3, RESOLVER[kernel])
    with pytest.raises(QuantizationValueError, match="zero_point must be 0 for int16"):
        tflite.dequantize(q16, 0.5, 3, kernel=kernel)

    q16pc = np.arange(12, dtype=np.int16).reshape(3, 4)
    with pytest.raises(RuntimeError, match="per-channel"):
        _run_per_channel("dequantize", q16pc, [1.0, 0.5, 0.25], 0, np.int16, 0, kernel)
    with pytest.raises(UnsupportedError, match="per-channel"):
        tflite.dequantize(q16pc, [1.0, 0.5, 0.25], 0, kernel=kernel)

    x = np.linspace(-3, 3, 11).astype(np.float32)
    _check_quantize(x, 0.25, 1234, "int16", kernel)  # accepted and applied by QUANTIZE

    q8 = np.arange(-5, 6, dtype=np.int8)
    if kernel == "xnnpack":  # a subnormal scale: DEQUANTIZE fails (QUANTIZE segfaults, so is not run)
        with pytest.raises(RuntimeError):
            tflite_builder.run_dequantize(q8, 1e-40, 0, "xnnpack")
        with pytest.raises(UnsupportedError, match="subnormal"):
            tflite.dequantize(q8, 1e-40, 0, kernel=kernel)
        with pytest.raises(UnsupportedError, match="subnormal"):
            tflite.quantize(x, 1e-40, 0, kernel=kernel)
    else:
        _check_dequantize(q8, 1e-40, 0, kernel)
        _check_quantize(x * np.float32(1e-39), 1e-40, 0, "int8", kernel)

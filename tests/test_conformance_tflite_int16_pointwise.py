"""Conformance: the weight-free TFLite ops in int8/uint8/int16 (16x8 mode) == LiteRT 2.3.0, bit for bit.

MUL, MEAN, QUANTIZE from an integer tensor (requantization), and int16 pooling / ADD through the
face (``refquant.backends.tflite``) and the ops level (``refquant.ops.pointwise``), under the three
kernel sets: ``reference`` -> ``BUILTIN_REF``, ``optimized`` -> ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``,
``xnnpack`` -> ``BUILTIN`` (whether XNNPACK took the node is checked against the profile's rule).

Families (seeded): random scales; ties (power-of-two scales); saturating (large multipliers, so
products leave int16 and outputs clip); tiny and huge scale ratios; int16 / int8 extremes; every
fused activation; odd shapes (broadcasts up to rank 6, channels not a multiple of 8 or 16, 1x1
pools, stride > filter, SAME). Rerun with ``-s`` to print the compared outputs per op and kernel.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from support.compare import compared

pytest.importorskip("ai_edge_litert")
pytest.importorskip("flatbuffers")

from support import tflite_builder as tfl  # noqa: E402
from support import tflite_pointwise16 as t16  # noqa: E402

from refquant.backends import tflite  # noqa: E402
from refquant.errors import QuantizationTypeError, QuantizationValueError, UnsupportedError  # noqa: E402
from refquant.ops import layers  # noqa: E402
from refquant.ops import pointwise as pw  # noqa: E402

pytestmark = pytest.mark.conformance

RESOLVER = {"reference": "ref", "xnnpack": "xnnpack", "optimized": "builtin"}
KERNELS = tuple(RESOLVER)
PROFILE = {"reference": "tflite_reference", "xnnpack": "tflite_xnnpack", "optimized": "tflite_optimized"}
ACTS = (None, "RELU", "RELU6", "RELU_N1_TO_1")
F32 = np.float32
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print("\ncompared outputs (op, kernel):", dict(sorted(COUNTS.items())))


def check(op, kernel, got, want, ctx=""):
    COUNTS[(op, kernel)] += compared(got, want, f"{op} {kernel} {ctx}", backend="LiteRT")


def codes(rng, dtype, shape, extremes=False):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    if extremes and x.size:
        flat = x.reshape(-1)
        flat[::3] = info.min
        flat[1::5] = info.max
    return x


def zero_point(rng, dtype, extreme=False):
    if dtype == np.int16:
        return 0
    info = np.iinfo(dtype)
    if extreme:
        return int(rng.choice([info.min, info.min + 1, info.max - 1, info.max]))
    return int(rng.integers(info.min, info.max, endpoint=True))


# --------------------------------------------------------------------------- MUL

MUL_SHAPES = [((3, 37), (3, 37)), ((2, 5, 7), (1, 5, 1)), ((1, 4, 4, 19), (19,)), ((64,), (64,)),
              ((2, 1, 3, 1, 2, 5), (1, 4, 1, 3, 2, 1)), ((1, 1, 16), (1, 1, 16)), ((5, 33), (1,)), ((), (6,))]


def _mul_scales(rng, family, dtype):
    if family == "ties":
        return tuple(F32(2.0 ** -int(rng.integers(2, 9))) for _ in range(3))
    sa, sb = (F32(v) for v in rng.uniform(1e-3, 0.1, 2))
    if dtype == np.int16:
        sa, sb = F32(sa / 100), F32(sb / 100)
    if family == "saturating":  # products leave int16: the optimized 8-bit narrowing shows
        return sa, sb, F32(sa * sb * rng.uniform(0.001, 0.05))
    if family == "tiny":
        return sa, sb, F32(sa * sb * rng.uniform(1e3, 1e6))
    return sa, sb, F32(sa * sb * (rng.uniform(50, 300) if dtype != np.int16 else rng.uniform(2e4, 2e5)))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_mul(dtype):
    rng = np.random.default_rng(501)
    refused = 0
    for t in range(64):
        shape_a, shape_b = MUL_SHAPES[t % len(MUL_SHAPES)]
        family = ("random", "ties", "saturating", "tiny", "extremes")[t % 5]
        a = codes(rng, dtype, shape_a, extremes=family == "extremes")
        b = codes(rng, dtype, shape_b, extremes=family == "extremes")
        sa, sb, sy = _mul_scales(rng, family, dtype)
        za, zb, zy = (zero_point(rng, dtype, extreme=family == "extremes") for _ in range(3))
        act = ACTS[t % 4]
        for kernel in KERNELS:
            got, delegated = t16.run_mul(a, sa, za, b, sb, zb, sy, zy, act, RESOLVER[kernel], return_delegated=True)
            try:
                want = tflite.mul(a, sa, za, b, sb, zb, sy, zy, activation=act, kernel=kernel)
            except UnsupportedError:  # only a broadcast optimized 8-bit MUL whose narrowing matters
                assert dtype != np.int16 and np.shape(a) != np.shape(b) and not delegated, (kernel, family)
                refused += 1
                continue
            check(f"MUL_{np.dtype(dtype).name}", kernel, got, want, str((shape_a, shape_b, family, act)))
            if kernel == "xnnpack" and dtype == np.int16:
                assert not delegated
    assert min(COUNTS[(f"MUL_{np.dtype(dtype).name}", k)] for k in KERNELS) > 1500
    assert refused < 20


def test_mul_xnnpack_declines_like_the_profile():
    """XNNPACK takes an 8-bit MUL for fl(fl(S_a S_b) / S_y) in [2^-16, 256); otherwise the optimized kernel runs."""
    rng = np.random.default_rng(502)
    taken = Counter()
    for t, ratio in enumerate([2.0 ** -17, 2.0 ** -15, 1.0, 255.0, 257.0, 1000.0] * 2):
        dtype = (np.int8, np.uint8)[t % 2]
        a, b = codes(rng, dtype, (4, 21)), codes(rng, dtype, (4, 21))
        sa, sb = F32(0.05), F32(0.02)
        sy = F32(F32(sa * sb) / F32(ratio))
        za, zb, zy = (zero_point(rng, dtype) for _ in range(3))
        got, delegated = t16.run_mul(a, sa, za, b, sb, zb, sy, zy, None, "xnnpack", return_delegated=True)
        assert delegated == (2.0 ** -16 <= float(F32(F32(sa * sb) / sy)) < 256.0), ratio
        taken[delegated] += 1
        check("MUL_declined", "xnnpack", got, tflite.mul(a, sa, za, b, sb, zb, sy, zy, kernel="xnnpack"))
    assert taken[True] >= 4 and taken[False] >= 4


# --------------------------------------------------------------------------- MEAN

MEAN_AXES = [(1, 2), (2, 1), (1,), (3,), (0, 1, 2, 3), (-1,), (0, 2), (1, 2, 3), (-3, -2), (1, 1, 2)]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_mean(dtype):
    rng = np.random.default_rng(503)
    for t in range(60):
        axis = MEAN_AXES[t % len(MEAN_AXES)]
        keep = bool((t // len(MEAN_AXES)) % 2) if t < 40 else t % 2 == 0
        c = int(rng.choice([1, 3, 8, 15, 16, 17, 33, 40]))
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)), c)
        family = ("random", "ties", "saturating", "extremes")[t % 4]
        x = codes(rng, dtype, shape, extremes=family == "extremes")
        sx = F32(rng.uniform(0.01, 0.1))
        sy = {"random": F32(sx * rng.uniform(0.3, 3)), "ties": F32(sx * 2.0 ** -int(rng.integers(-3, 3))),
              "saturating": F32(sx * rng.uniform(0.01, 0.05)), "extremes": F32(sx * rng.uniform(0.5, 2))}[family]
        zx, zy = (zero_point(rng, dtype, extreme=family == "extremes") for _ in range(2))
        for kernel in KERNELS:
            got, delegated = t16.run_mean(x, sx, zx, sy, zy, axis, keep, RESOLVER[kernel], return_delegated=True)
            want = tflite.mean(x, sx, zx, sy, zy, axis=axis, keep_dims=keep, kernel=kernel)
            check(f"MEAN_{np.dtype(dtype).name}", kernel, got, want, str((shape, axis, keep, family)))
            if kernel == "xnnpack":
                assert delegated == (dtype != np.int16)
    assert min(COUNTS[(f"MEAN_{np.dtype(dtype).name}", k)] for k in KERNELS) > 800


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_mean_xnnpack_ties(dtype):
    """XNNPACK's 8-bit MEAN (eq. (3) of :mod:`refquant.kernels.mean`) on exact ties: power-of-two
    S_x / S_y and plane sizes 2, 4, 8, 16, 64 put many means on .5, where folding Z_x and Z_y into a
    float32 constant before the rounding differs from rounding the offset mean and adding Z_y (the
    earlier float32 model, which missed about 1.5% of these outputs). Ranks 1 to 6, any axes, both
    ``keep_dims``; a rank-7 MEAN makes LiteRT fail to prepare the delegate, and the face refuses it."""
    from refquant.kernels import mean as kmean

    rng = np.random.default_rng(507)
    info = np.iinfo(dtype)
    cases = [((2, 2, 2, 9), (1, 2)), ((3, 4, 4, 17), (1, 2)), ((1, 8, 8, 16), (1, 2)), ((2, 4, 16), (1,)),
             ((64,), (0,)), ((6, 2), (-1,)), ((2, 2, 3, 2, 5), (0, 3)), ((2, 1, 2, 3, 2, 4), (1, 3, 5)),
             ((4, 4, 3), (0, 1, 1))]
    old_model_differs = 0
    for t in range(96):
        shape, axis = cases[t % len(cases)]
        x = codes(rng, dtype, shape, extremes=t % 7 == 3)
        sx = F32(rng.uniform(0.01, 0.1))
        sy = F32(sx * 2.0 ** -int(rng.integers(-2, 3))) if t % 4 else F32(rng.uniform(0.005, 0.2))
        zx, zy = zero_point(rng, dtype, extreme=t % 5 == 4), zero_point(rng, dtype)
        keep = t % 2 == 0
        got, delegated = t16.run_mean(x, sx, zx, sy, zy, axis, keep, "xnnpack", return_delegated=True)
        assert delegated, (shape, axis)
        check(f"MEAN_ties_{np.dtype(dtype).name}", "xnnpack", got,
              tflite.mean(x, sx, zx, sy, zy, axis=axis, keep_dims=keep, kernel="xnnpack"), str((shape, axis)))
        axes = kmean.mean_axes(axis, x.ndim)  # the earlier model: RNE(fl(sum - n Z_x) * fl(S_x / fl(S_y n))) + Z_y
        n = int(np.prod([x.shape[a] for a in axes]))
        acc = x.astype(np.int64).sum(axis=axes, keepdims=True) - n * zx
        m = F32(sx / F32(sy * F32(n)))
        old = np.clip(np.rint((acc.astype(F32) * m).astype(F32)).astype(np.int64) + zy, info.min, info.max)
        old_model_differs += int((old.reshape(got.shape) != got).sum())
    assert COUNTS[(f"MEAN_ties_{np.dtype(dtype).name}", "xnnpack")] > 1500
    assert old_model_differs > 10, old_model_differs
    x = codes(rng, dtype, (2, 1, 2, 3, 1, 2, 3))
    with pytest.raises(RuntimeError, match="failed to prepare"):
        t16.run_mean(x, F32(0.05), 0, F32(0.1), 0, (1, 3), False, "xnnpack")
    with pytest.raises(UnsupportedError, match="rank <= 6"):
        tflite.mean(x, F32(0.05), 0, F32(0.1), 0, axis=(1, 3), kernel="xnnpack")


# --------------------------------------------------------------------------- QUANTIZE (requantization)

REQUANTIZE_PAIRS = [(np.int8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8), (np.uint8, np.int8),
                    (np.int8, np.int16), (np.uint8, np.int16), (np.int16, np.int8), (np.int16, np.int16)]


@pytest.mark.parametrize("pair", REQUANTIZE_PAIRS, ids=lambda p: f"{np.dtype(p[0]).name}-{np.dtype(p[1]).name}")
def test_requantize(pair):
    di, do = pair
    rng = np.random.default_rng(504)
    taken = Counter()
    for t in range(40):
        family = ("random", "ties", "saturating", "tiny", "huge", "extremes")[t % 6]
        x = codes(rng, di, (int(rng.integers(1, 4)), int(rng.integers(1, 70))), extremes=family == "extremes")
        sx = F32(rng.uniform(0.01, 0.1))
        if di == np.int16:
            sx = F32(sx / 256)
        if do == np.int16:
            sx = F32(sx * 256) if di == np.int16 else sx
        base = F32(sx * (256.0 if do == np.int16 and di != np.int16 else 1.0 / 256 if di == np.int16 and do != np.int16
                         else 1.0))  # an S_y that keeps outputs in range
        sy = {"random": F32(base * rng.uniform(0.3, 3)), "ties": F32(base * 2.0 ** -int(rng.integers(-4, 5))),
              "saturating": F32(base * rng.uniform(0.005, 0.05)), "tiny": F32(sx * rng.uniform(300, 1e4)),
              "huge": F32(sx / rng.uniform(130, 1e5)), "extremes": F32(base * rng.uniform(0.5, 2))}[family]
        if di == np.int16 and do == np.int16:
            zx = zy = 0
        else:
            zx, zy = zero_point(rng, di, family == "extremes"), zero_point(rng, do, family == "extremes")
        for kernel in KERNELS:
            got, delegated = t16.run_requantize(x, sx, zx, sy, zy, do, RESOLVER[kernel], return_delegated=True)
            want = tflite.requantize(x, sx, zx, sy, zy, dtype=np.dtype(do).name, kernel=kernel)
            name = f"QUANTIZE_{np.dtype(di).name}_{np.dtype(do).name}"
            check(name, kernel, got, want, str((family, float(sx / sy), zx, zy)))
            ours = layers.requantize_tensor(x, sx, zx, sy, zy, profile=PROFILE[kernel], out_dtype=do) \
                if kernel == "reference" else pw.requantize(x, sx, zx, sy, zy, profile=PROFILE[kernel], out_dtype=do)
            np.testing.assert_array_equal(ours, got)
            if kernel == "xnnpack":
                ratio = float(F32(sx / sy))
                assert delegated == (di == do and di != np.int16 and 2.0 ** -8 <= ratio <= 128.0), (ratio, pair)
                taken[delegated] += 1
    assert min(COUNTS[(f"QUANTIZE_{np.dtype(di).name}_{np.dtype(do).name}", k)] for k in KERNELS) > 800
    if di == do and di != np.int16:
        assert taken[True] >= 10 and taken[False] >= 5, taken


# --------------------------------------------------------------------------- int16 pooling, ADD, ops level


def test_int16_pooling_odd_shapes():
    """1x1 pools, stride > filter, SAME, channels not a multiple of 8, int16 extremes, every activation."""
    rng = np.random.default_rng(505)
    cases = [((1, 1), (1, 1), "VALID"), ((1, 1), (2, 3), "SAME"), ((2, 2), (3, 3), "VALID"), ((3, 2), (1, 2), "SAME"),
             ((4, 4), (4, 4), "SAME"), ((2, 3), (5, 1), "SAME"), ((7, 7), (1, 1), "SAME")]
    for t in range(42):
        f, s, padding = cases[t % len(cases)]
        x = codes(rng, np.int16, (int(rng.integers(1, 3)), 7, 9, int(rng.choice([1, 3, 9, 17]))), extremes=t % 2 == 0)
        scale = F32(rng.choice([2.0 ** -8, 1.0 / 6000, 2.0, 4.0 / 32768]))
        z = int(rng.choice([0, 0, 3, -7]))  # LiteRT's int16 pools apply any zero point
        act = ACTS[t % 4]
        for kernel in KERNELS:
            kw = dict(filter_size=f, stride=s, padding=padding, activation=act)
            got = tfl.run_average_pool2d(x, scale, z, f, s, padding, act, RESOLVER[kernel])
            check("AVERAGE_POOL_2D_int16", kernel, got, tflite.average_pool2d(x, scale, z, **kw, kernel=kernel))
            np.testing.assert_array_equal(pw.average_pool2d(x, scale, z, f, profile=PROFILE[kernel], stride=s,
                                                            padding=padding, activation=act), got)
            got = tfl.run_max_pool2d(x, scale, z, f, s, padding, act, RESOLVER[kernel])
            check("MAX_POOL_2D_int16", kernel, got, tflite.max_pool2d(x, scale, z, **kw, kernel=kernel))
            np.testing.assert_array_equal(pw.max_pool2d(x, scale, z, f, profile=PROFILE[kernel], stride=s,
                                                        padding=padding, activation=act), got)
    assert min(COUNTS[(op, k)] for op in ("AVERAGE_POOL_2D_int16", "MAX_POOL_2D_int16") for k in KERNELS) > 1000


def test_ops_level_int16_follows_litert():
    """pointwise.add / mul / global_average_pool on int16 codes under each TFLite profile == LiteRT."""
    rng = np.random.default_rng(506)
    for t in range(12):
        a, b = codes(rng, np.int16, (2, 9, 5)), codes(rng, np.int16, (1, 9, 1))
        sa, sb = (F32(v) for v in rng.uniform(1e-4, 1e-2, 2))
        sy_add, sy_mul = F32(rng.uniform(2e-4, 2e-2)), F32(sa * sb * rng.uniform(5e3, 5e4))
        act = ACTS[t % 4]
        x = codes(rng, np.int16, (2, 5, 6, 11), extremes=t % 2 == 0)
        sx, sg = F32(rng.uniform(1e-4, 1e-3)), F32(rng.uniform(1e-4, 1e-3))
        for kernel in KERNELS:
            prof, res = PROFILE[kernel], RESOLVER[kernel]
            got = tfl.run_model(_add16(a, sa, b, sb, sy_add, act), [a, b], res)
            check("ops.add_int16", kernel, got, pw.add(a, sa, 0, b, sb, 0, sy_add, 0, profile=prof, activation=act))
            got = t16.run_mul(a, sa, 0, b, sb, 0, sy_mul, 0, act, res)
            check("ops.mul_int16", kernel, got, pw.mul(a, sa, 0, b, sb, 0, sy_mul, 0, profile=prof, activation=act))
            got = t16.run_mean(x, sx, 0, sg, 0, (1, 2), False, res)
            check("ops.global_average_pool_int16", kernel, got,
                  pw.global_average_pool(x, sx, 0, sg, 0, profile=prof, channels_last=True))
            nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            np.testing.assert_array_equal(pw.global_average_pool(nchw, sx, 0, sg, 0, profile=prof), got)


def _add16(a, sa, b, sb, sy, act):
    from ai_edge_litert import schema_py_generated as sch
    g = tfl.Graph()
    ai, bi = g.tensor("a", a.shape, np.int16, sa, 0), g.tensor("b", b.shape, np.int16, sb, 0)
    yi = g.tensor("y", np.broadcast_shapes(a.shape, b.shape), np.int16, sy, 0)
    opts = sch.AddOptionsT()
    opts.fusedActivationFunction = tfl._activation(act)
    opts.potScaleInt16 = False
    return tfl.build_model(g, sch.BuiltinOperator.ADD, sch.BuiltinOptions.AddOptions, opts, [ai, bi], [yi])


@pytest.mark.parametrize("profile", ["onnxruntime", "pytorch_fbgemm", "pytorch_qnnpack", "onnx"])
def test_profiles_without_int16_refuse_naming_the_profile(profile):
    a = np.zeros((1, 4, 4, 3), np.int16)
    s = F32(1e-3)
    calls = [lambda: pw.mul(a, s, 0, a, s, 0, s, 0, profile=profile),
             lambda: pw.average_pool2d(a, s, 0, 2, profile=profile),
             lambda: pw.max_pool2d(a, s, 0, 2, profile=profile),
             lambda: pw.global_average_pool(a, s, 0, s, 0, profile=profile),
             lambda: pw.mean(a, s, 0, s, 0, (1, 2), profile=profile),
             lambda: pw.requantize(a, s, 0, s, 0, profile=profile, out_dtype=np.int16)]
    if profile != "onnx":  # the bare specification profile keeps the default int16 ADD
        calls.append(lambda: pw.add(a, s, 0, a, s, 0, s, 0, profile=profile))
    for call in calls:
        with pytest.raises(UnsupportedError, match=profile):
            call()


# --------------------------------------------------------------------------- refusals


def test_refusals_match_litert():
    """Nonzero int16 zero points where LiteRT checks them, mixed dtypes, an int16 -> uint8 QUANTIZE."""
    rng = np.random.default_rng(507)
    a = codes(rng, np.int16, (2, 5))
    s = F32(1e-3)
    for zps, name in (((3, 0, 0), "a_zero_point"), ((0, -2, 0), "b_zero_point"), ((0, 0, 1), "y_zero_point")):
        with pytest.raises(RuntimeError):
            t16.run_mul(a, s, zps[0], a, s, zps[1], s, zps[2], None, "ref")
        with pytest.raises(QuantizationValueError, match=f"{name} must be 0 for int16.*got"):
            tflite.mul(a, s, zps[0], a, s, zps[1], s, zps[2])
    x = codes(rng, np.int16, (1, 3, 3, 2))
    with pytest.raises(RuntimeError):
        t16.run_mean(x, s, 4, s, 0, (1, 2), False, "ref")
    with pytest.raises(QuantizationValueError, match="x_zero_point must be 0 for int16.*got 4"):
        tflite.mean(x, s, 4, s, 0)
    with pytest.raises(RuntimeError):
        t16.run_requantize(a, s, 0, s, 5, np.int16, "ref")
    with pytest.raises(QuantizationValueError, match="y_zero_point must be 0 for int16.*got 5"):
        tflite.requantize(a, s, 0, s, 5, dtype="int16")
    # int16 -> int8 and int8 -> int16 apply any zero point, as LiteRT does
    got = t16.run_requantize(a, s, 0, F32(s * 256), 5, np.int8, "ref")
    np.testing.assert_array_equal(tflite.requantize(a, s, 0, F32(s * 256), 5, dtype="int8"), got)
    with pytest.raises(RuntimeError):
        t16.run_requantize(a, s, 0, s, 0, np.uint8, "ref")
    with pytest.raises(QuantizationValueError, match="dtype must be one of .* int16 input"):
        tflite.requantize(a, s, 0, s, 0, dtype="uint8")
    with pytest.raises(QuantizationTypeError, match="same dtype"):
        tflite.mul(a, s, 0, a.astype(np.int8), s, 0, s, 0)
    with pytest.raises(QuantizationValueError, match="axis must be in"):
        tflite.mean(x, s, 0, s, 0, axis=(4,))

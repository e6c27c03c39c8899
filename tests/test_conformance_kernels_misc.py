"""Kernel-level conformance: refquant's requantization, pooling, elementwise and LUT kernels
against the real backends, compared with ``==`` on seeded cases (random, tie-heavy with
power-of-two scales, saturating with extreme zero points and scales).

Backends: LiteRT 2.3 (``ref`` = BUILTIN_REF, ``builtin`` = optimized kernels, ``xnnpack`` =
default XNNPACK delegate, one-op models from ``support.tflite_builder``), ONNX Runtime CPU EP
and ``onnx.reference`` (``support.onnx_runner``). Op-level face conformance is elsewhere; here
each kernel's arithmetic is pinned. Counts of compared outputs are asserted so that a silently
shrinking test fails.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")
from ai_edge_litert import schema_py_generated as sch  # noqa: E402
from support import onnx_runner as ort  # noqa: E402
from support import tflite_builder as tfl  # noqa: E402

from refquant.kernels import elementwise as ew  # noqa: E402
from refquant.kernels import elementwise_float as ewf  # noqa: E402
from refquant.kernels import lut  # noqa: E402
from refquant.kernels import multiplier as mult  # noqa: E402
from refquant.kernels import pool  # noqa: E402
from refquant.kernels import requant as rq  # noqa: E402
from refquant.kernels import softmax as smx  # noqa: E402

pytestmark = pytest.mark.conformance
F32 = np.float32
KINDS = ("random", "ties", "saturating")
ACTS = (None, "RELU", "RELU6", "RELU_N1_TO_1")


def draw_scales(rng, kind, n=3, lo=0.002, hi=0.2):
    if kind == "ties":
        return [F32(2.0 ** -int(rng.integers(1, 8))) for _ in range(n)]
    if kind == "saturating":  # output scale much smaller than the inputs': most results saturate
        s = [F32(rng.uniform(0.05, 0.5)) for _ in range(n)]
        s[-1] = F32(rng.uniform(0.001, 0.01))
        return s
    return [F32(rng.uniform(lo, hi)) for _ in range(n)]


def draw_zp(rng, dtype, kind):
    info = np.iinfo(dtype)
    if kind == "saturating":
        return int(rng.choice([info.min, info.min + 1, info.max - 1, info.max]))
    return int(rng.integers(info.min, info.max, endpoint=True))


def codes(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def check(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want):
        i = np.flatnonzero(got.ravel() != want.ravel())
        pytest.fail(f"{what}: {i.size}/{got.size} differ; first at {i[:5]}: backend {got.ravel()[i[:5]]} "
                    f"refquant {want.ravel()[i[:5]]}")
    return got.size


# --------------------------------------------------------------------------- requantization modes


def test_requant_modes_vs_tflite_fully_connected():
    """FC: ref = float64 RHAZ, builtin = ruy AVX2 (RHU, RHU), xnnpack = float32 RNE."""
    rng = np.random.default_rng(101)
    n_out = {"ref": 0, "builtin": 0, "xnnpack": 0}
    for t in range(120):
        kind = KINDS[t % 3]
        b, k, n = int(rng.integers(1, 9)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
        x = codes(rng, np.int8, (b, k))
        w = rng.integers(-127, 128, (n, k)).astype(np.int8)
        xs, ys = draw_scales(rng, kind, 2)
        ws = (np.array([2.0 ** -int(rng.integers(1, 8)) for _ in range(n)], F32) if kind == "ties"
              else rng.uniform(0.001, 0.05, n).astype(F32))
        xz, yz = draw_zp(rng, np.int8, kind), draw_zp(rng, np.int8, kind)
        bias = rng.integers(-3000, 3000, n).astype(np.int32)
        act = ACTS[t % 4]
        lo, hi = mult.activation_range(act, ys, yz, -128, 127)
        acc = (x.astype(np.int64) - xz) @ w.astype(np.int64).T + bias  # (b, n) exact
        for res, mode, der in (("ref", "float64_rhaz", "f64_ab_div_c"), ("builtin", "fixed_double_up_wrap", "f64_ab_div_c"),
                               ("xnnpack", "float32_rne", "f32_ab_div_c")):
            p = mult.requant_params(xs, ws, ys, mode=mode, derivation=der)
            want = rq.requantize(acc.astype(np.int32), p.multiplier, yz, lo, hi, mode=mode, shift=p.shift,
                                 dtype=np.int8)
            got = tfl.run_fully_connected(x, xs, xz, w, ws, bias, ys, yz, activation=act, resolver=res)
            n_out[res] += check(got, want, f"FC {res} ({mode}) trial {t}")
    assert min(n_out.values()) > 2000, n_out


def test_requant_fixed_double_vs_tflite_conv():
    """CONV_2D 1x1, reference kernel: gemmlowp double rounding, per-channel multipliers."""
    rng = np.random.default_rng(102)
    total = 0
    for t in range(60):
        kind = KINDS[t % 3]
        h, w_, c, o = (int(v) for v in rng.integers(1, [6, 6, 9, 9]))
        x = codes(rng, np.int8, (1, h, w_, c))
        w = rng.integers(-127, 128, (o, 1, 1, c)).astype(np.int8)
        xs, ys = draw_scales(rng, kind, 2)
        ws = rng.uniform(0.001, 0.05, o).astype(F32) if kind != "ties" else np.full(o, F32(0.25))
        xz, yz = draw_zp(rng, np.int8, kind), draw_zp(rng, np.int8, kind)
        bias = rng.integers(-2000, 2000, o).astype(np.int32)
        acc = np.einsum("nhwc,oc->nhwo", x.astype(np.int64) - xz, w[:, 0, 0, :].astype(np.int64)) + bias
        p = mult.requant_params(xs, ws, ys, mode="fixed_double", derivation="f64_ab_div_c")  # reference CONV_2D
        want = rq.requantize(acc.astype(np.int32), p.multiplier, yz, -128, 127, mode=p.mode, shift=p.shift,
                             dtype=np.int8)
        total += check(tfl.run_conv2d(x, xs, xz, w, ws, bias, ys, yz, resolver="ref"), want, f"conv trial {t}")
    assert total > 1000


@pytest.mark.parametrize("engine, mode", [("ort", "float32_rne"), ("reference", "float64_rne")])
def test_requant_float_modes_vs_onnx_qlinear_matmul(engine, mode):
    """QLinearMatMul u8u8 (exact accumulation on every ISA): ORT float32 RNE; onnx.reference
    float64 with the zero point added before rounding."""
    rng = np.random.default_rng(103)
    total = 0
    for t in range(100):
        kind = KINDS[t % 3]
        m, k, n = (int(v) for v in rng.integers(1, [8, 20, 8]))
        a, b = codes(rng, np.uint8, (m, k)), codes(rng, np.uint8, (k, n))
        sa, sb, sy = draw_scales(rng, kind)
        za, zb, zy = (draw_zp(rng, np.uint8, kind) for _ in range(3))
        acc = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
        p = mult.requant_params(sa, sb, sy, mode=mode, derivation="f32_ab_div_c")
        want = rq.requantize(acc.astype(np.int32), p.multiplier, zy, 0, 255, mode=mode, dtype=np.uint8)
        got = ort.run_qlinear_matmul(a, sa, np.uint8(za), b, sb, np.uint8(zb), sy, np.uint8(zy), engine=engine)
        total += check(got, want, f"QLinearMatMul {engine} trial {t}")
    assert total > 1500


# --------------------------------------------------------------------------- TFLite ADD / MUL


def _tfl_binary(code, options_type, opts, a, sa, za, b, sb, zb, sy, zy, resolver):
    g = tfl.Graph()
    ai, bi = g.tensor("a", a.shape, a.dtype, sa, za), g.tensor("b", b.shape, b.dtype, sb, zb)
    yi = g.tensor("y", np.broadcast_shapes(a.shape, b.shape), a.dtype, sy, zy)
    model = tfl.build_model(g, code, options_type, opts, [ai, bi], [yi])
    return tfl.run_model(model, [a, b], resolver, return_delegated=True)


def optimized_add_model(a, za, b, zb, zy, p):
    """Test-only transcription of LiteRT ``optimized_integer_ops::AddElementwiseInt8`` on x86
    (NEON intrinsics through NEON_2_SSE), equal shapes: in blocks of 16 the input shift is folded
    into the left shift (``SRDHM(x << (20 + shift), q)``, no RDBPOT), and the int32 result is
    narrowed to int16 **without saturation** (``vmovn_s32``) before a wrapping int16 add of the
    zero point and the int8 saturation; the ``n % 16`` tail uses the reference formula."""
    from refquant import fixedpoint as fp
    ref = ew.fixed_point_add(a, za, b, zb, zy, p).ravel().astype(np.int64)
    x, y = a.astype(np.int64).ravel() - int(za), b.astype(np.int64).ravel() - int(zb)
    srdhm = fp.saturating_rounding_doubling_high_mul
    xa = srdhm(fp._wrap32(x << (p.left_shift + p.a_shift)), p.a_multiplier).astype(np.int64)
    xb = srdhm(fp._wrap32(y << (p.left_shift + p.b_shift)), p.b_multiplier).astype(np.int64)
    s = srdhm(fp._wrap32(xa + xb), p.output_multiplier).astype(np.int64)
    s = fp.rounding_divide_by_pot(s, -p.output_shift).astype(np.int64)
    wrap16 = lambda v: ((v + 2 ** 15) & 0xFFFF) - 2 ** 15  # noqa: E731
    info = np.iinfo(a.dtype)
    block = np.clip(wrap16(wrap16(s) + int(zy)), info.min, info.max)
    n = x.size - x.size % 16
    ref[:n] = block[:n]
    return ref.reshape(np.broadcast_shapes(a.shape, b.shape)).astype(a.dtype)


@pytest.mark.parametrize("dtype", [np.int8])
def test_tflite_add_builtin_int8_blocks(dtype):
    """The optimized int8 ADD is not the reference formula: see :func:`optimized_add_model`
    (it differs from the reference when the result leaves int16, e.g. saturating cases)."""
    rng = np.random.default_rng(114)
    total = differs_from_reference = 0
    for t in range(200):
        kind = KINDS[t % 3]
        n = int(rng.integers(1, 70))
        a, b = codes(rng, dtype, (n,)), codes(rng, dtype, (n,))
        sa, sb, sy = draw_scales(rng, kind)
        za, zb, zy = (dtype(draw_zp(rng, dtype, kind)) for _ in range(3))
        try:
            p = ew.fixed_point_add_params(sa, sb, sy)
        except ValueError:
            continue
        want = optimized_add_model(a, za, b, zb, zy, p)
        differs_from_reference += int((want != ew.fixed_point_add(a, za, b, zb, zy, p)).sum())
        total += check(tfl.run_add(a, sa, int(za), b, sb, int(zb), sy, int(zy), None, "builtin"), want,
                       f"ADD builtin trial {t}")
    assert total > 5000 and differs_from_reference > 0, (total, differs_from_reference)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_tflite_add(dtype):
    """ADD: ref = the left-shift-20 pipeline (double rounding); xnnpack = rescale_add."""
    rng = np.random.default_rng(104)
    counts = {"ref": 0, "xnnpack": 0}
    for t in range(150):
        kind = KINDS[t % 3]
        shape_a, shape_b = [((1, 64), (1, 64)), ((2, 3, 8), (8,)), ((4, 1), (4, 5)), ((9,), (1,))][t % 4]
        a, b = codes(rng, dtype, shape_a), codes(rng, dtype, shape_b)
        sa, sb, sy = draw_scales(rng, kind)
        za, zb, zy = (draw_zp(rng, dtype, kind) for _ in range(3))
        act = ACTS[t % 4]
        info = np.iinfo(dtype)
        lo, hi = mult.activation_range(act, sy, zy, info.min, info.max)
        want = ew.fixed_point_add(a, dtype(za), b, dtype(zb), dtype(zy), ew.fixed_point_add_params(sa, sb, sy),
                                  act_min=lo, act_max=hi)
        counts["ref"] += check(tfl.run_add(a, sa, za, b, sb, zb, sy, zy, act, "ref"), want, f"ADD ref trial {t}")
        try:
            p = ew.rescale_add_params(sa, sb, sy)
        except ValueError:  # ratio outside XNNPACK's range: the delegate does not take the op
            continue
        got, delegated = tfl.run_add(a, sa, za, b, sb, zb, sy, zy, act, "xnnpack", return_delegated=True)
        assert delegated
        want_x = ew.rescale_add(a, dtype(za), b, dtype(zb), dtype(zy), p, act_min=lo, act_max=hi)
        counts["xnnpack"] += check(got, want_x, f"ADD xnnpack trial {t}")
    assert min(counts.values()) > 2000, counts


def test_tflite_add_int16_general_scale():
    """int16 ADD with non-power-of-two scales: the left-shift-15 pipeline, zero points 0."""
    rng = np.random.default_rng(105)
    total = 0
    for t in range(60):
        a, b = codes(rng, np.int16, (3, 40)), codes(rng, np.int16, (3, 40))
        sa, sb, sy = (F32(v) for v in rng.uniform(1e-4, 1e-2, 3))
        p = ew.fixed_point_add_params(sa, sb, sy, left_shift=15)
        want = ew.fixed_point_add(a, np.int16(0), b, np.int16(0), np.int16(0), p)
        total += check(tfl.run_add(a, sa, 0, b, sb, 0, sy, 0, None, "ref"), want, f"ADD int16 ref trial {t}")
    assert total > 5000


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_tflite_mul(dtype):
    """MUL: ref = MBQM double rounding of the int product; xnnpack = float32 RNE requantization
    of the product with fl(fl(S_a S_b)/S_y). (builtin uint8 uses another kernel: not pinned.)"""
    rng = np.random.default_rng(106)
    counts = {"ref": 0, "xnnpack": 0}
    info = np.iinfo(dtype)
    for t in range(150):
        kind = KINDS[t % 3]
        a, b = codes(rng, dtype, (2, 40)), codes(rng, dtype, (2, 40))
        sa, sb, sy = draw_scales(rng, kind)
        za, zb, zy = (draw_zp(rng, dtype, kind) for _ in range(3))
        act = ACTS[t % 4]
        lo, hi = mult.activation_range(act, sy, zy, info.min, info.max)
        opts = sch.MulOptionsT()
        opts.fusedActivationFunction = tfl._activation(act)
        q, s = ew.fixed_point_mul_params(sa, sb, sy)
        want = ew.fixed_point_mul(a, dtype(za), b, dtype(zb), dtype(zy), q, s, act_min=lo, act_max=hi)
        got, _ = _tfl_binary(sch.BuiltinOperator.MUL, sch.BuiltinOptions.MulOptions, opts, a, sa, za, b, sb, zb, sy,
                             zy, "ref")
        counts["ref"] += check(got, want, f"MUL ref trial {t}")
        got, delegated = _tfl_binary(sch.BuiltinOperator.MUL, sch.BuiltinOptions.MulOptions, opts, a, sa, za, b, sb,
                                     zb, sy, zy, "xnnpack")
        if delegated:
            prod = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
            m = mult.real_multiplier(sa, sb, sy, derivation="f32_ab_div_c")
            want_x = rq.requantize(prod.astype(np.int32), m, zy, lo, hi, mode="float32_rne", dtype=dtype)
            counts["xnnpack"] += check(got, want_x, f"MUL xnnpack trial {t}")
    assert min(counts.values()) > 2000, counts


# --------------------------------------------------------------------------- TFLite pooling


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_tflite_pooling(dtype):
    rng = np.random.default_rng(107)
    counts = {}
    info = np.iinfo(dtype)
    for t in range(150):
        h, w, c = (int(v) for v in rng.integers(1, [10, 10, 7]))
        x = codes(rng, dtype, (2, h, w, c))
        if t % 3 == 2:  # saturating windows: all codes at one end
            x[..., :: 2] = info.max if t % 2 else info.min
        fh, fw = int(rng.integers(1, min(h, 4) + 1)), int(rng.integers(1, min(w, 4) + 1))
        stride = None if t % 4 == 0 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = ("SAME", "VALID")[t % 2]
        s, z = F32(rng.uniform(0.005, 0.1)), draw_zp(rng, dtype, KINDS[t % 3])
        if dtype == np.int16:  # int16 activations are symmetric: zero point 0
            z = 0
        act = ACTS[t % 4]
        lo, hi = mult.activation_range(act, s, z, info.min, info.max)
        want_avg = pool.average_pool2d(x, (fh, fw), stride=stride, padding=padding, act_min=lo, act_max=hi)
        want_max = pool.max_pool2d(x, (fh, fw), stride=stride, padding=padding, act_min=lo, act_max=hi)
        for res in ("ref", "builtin", "xnnpack"):
            got = tfl.run_average_pool2d(x, s, z, (fh, fw), stride, padding, act, resolver=res)
            counts["avg_" + res] = counts.get("avg_" + res, 0) + check(got, want_avg, f"AVG {res} trial {t}")
            got = tfl.run_max_pool2d(x, s, z, (fh, fw), stride, padding, act, resolver=res)
            counts["max_" + res] = counts.get("max_" + res, 0) + check(got, want_max, f"MAX {res} trial {t}")
    assert min(counts.values()) > 2000, counts


# --------------------------------------------------------------------------- TFLite LUT ops


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_tflite_logistic_and_tanh(dtype):
    rng = np.random.default_rng(108)
    x = np.arange(256, dtype=np.uint8).view(dtype).reshape(1, 256)  # every code
    counts = {}
    for t in range(80):
        xs, xz = F32(rng.uniform(0.003, 0.3)), draw_zp(rng, dtype, KINDS[t % 3])
        want = lut.apply_lut(x, lut.logistic_lut(xs, xz, dtype=dtype))
        if t % 4 == 0:
            ys, yz = F32(1 / 128), (0 if dtype == np.int8 else 128)
        else:
            ys, yz = F32(rng.uniform(0.003, 0.02)), draw_zp(rng, dtype, "random")
        want_t = lut.apply_lut(x, lut.tanh_lut(xs, xz, ys, yz, dtype=dtype))
        g = tfl.Graph()
        xi, yi = g.tensor("x", x.shape, dtype, xs, xz), g.tensor("y", x.shape, dtype, ys, yz)
        tanh_model = tfl.build_model(g, sch.BuiltinOperator.TANH, sch.BuiltinOptions.NONE, None, [xi], [yi])
        for res in ("ref", "builtin", "xnnpack"):
            counts["logistic_" + res] = counts.get("logistic_" + res, 0) + check(
                tfl.run_logistic(x, xs, xz, resolver=res), want, f"LOGISTIC {res} trial {t}")
            counts["tanh_" + res] = counts.get("tanh_" + res, 0) + check(
                tfl.run_model(tanh_model, [x], res), want_t, f"TANH {res} trial {t}")
    assert min(counts.values()) > 10000, counts


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_tflite_softmax(dtype):
    """SOFTMAX: ref = gemmlowp fixed point; builtin = float LUT. The two differ rarely: the test
    also counts rows where they differ, so both formulas are really pinned."""
    rng = np.random.default_rng(109)
    counts = {"ref": 0, "builtin": 0, "rows_where_models_differ": 0}
    for t in range(400):
        xs, xz = F32(rng.uniform(0.01, 0.5)), draw_zp(rng, dtype, KINDS[t % 3])
        beta = F32(rng.choice([1.0, rng.uniform(0.1, 3.0)]))
        x = codes(rng, dtype, (8, int(rng.integers(2, 40))))
        want_ref = smx.softmax_fixed_point(x, smx.softmax_fixed_point_params(xs, beta))
        want_opt = smx.softmax_lut(x, smx.softmax_exp_table(xs, beta))
        counts["rows_where_models_differ"] += int(np.any(want_ref != want_opt, axis=1).sum())
        counts["ref"] += check(tfl.run_softmax(x, xs, xz, float(beta), resolver="ref"), want_ref, f"SOFTMAX ref {t}")
        counts["builtin"] += check(tfl.run_softmax(x, xs, xz, float(beta), resolver="builtin"), want_opt,
                                   f"SOFTMAX builtin {t}")
    assert counts["ref"] > 20000 and counts["rows_where_models_differ"] >= 1, counts


# --------------------------------------------------------------------------- ONNX Runtime contrib ops


ADD_SHAPES = [((1, 97), (1, 97)), ((3, 40), (40,)), ((5, 1), (5, 33)), ((2, 3, 17), (1,)), ((1,), (4, 19)),
              ((1,), (1,)), ((6, 1, 9), (4, 1)), ((), (37,))]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_ort_qlinear_add(dtype):
    """QLinearAdd (AVX2 FMA kernel), every broadcast mode. Also counts outputs where the
    non-FMA ordering would differ, so the FMA model is really exercised."""
    rng = np.random.default_rng(110)
    total = fma_matters = 0
    for t in range(300):
        kind = KINDS[t % 3]
        sha, shb = ADD_SHAPES[t % len(ADD_SHAPES)]
        a, b = codes(rng, dtype, sha), codes(rng, dtype, shb)
        sa, sb, sy = draw_scales(rng, kind)
        za, zb, zy = (dtype(draw_zp(rng, dtype, kind)) for _ in range(3))
        want = ewf.float_add(a, sa, za, b, sb, zb, sy, zy)
        fma_matters += int((ewf.float_add(a, sa, za, b, sb, zb, sy, zy, fused=False) != want).sum())
        total += check(ort.run_qlinear_add(a, sa, za, b, sb, zb, sy, zy), want, f"QLinearAdd trial {t}")
    # exhaustive code pairs on random scales, where rounding differences concentrate
    allc = np.arange(256, dtype=np.uint8).view(dtype)
    a, b = np.repeat(allc, 256), np.tile(allc, 256)
    for t in range(12):
        sa, sb, sy = draw_scales(rng, "random")
        za, zb, zy = (dtype(draw_zp(rng, dtype, "random")) for _ in range(3))
        want = ewf.float_add(a, sa, za, b, sb, zb, sy, zy)
        fma_matters += int((ewf.float_add(a, sa, za, b, sb, zb, sy, zy, fused=False) != want).sum())
        total += check(ort.run_qlinear_add(a, sa, za, b, sb, zb, sy, zy), want, f"QLinearAdd all pairs {t}")
    assert total > 500000 and fma_matters > 0, (total, fma_matters)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_ort_qlinear_mul(dtype):
    rng = np.random.default_rng(111)
    allc = np.arange(256, dtype=np.uint8).view(dtype)
    total = 0
    for t in range(150):
        kind = KINDS[t % 3]
        if t % 10 == 0:
            a, b = np.repeat(allc, 256), np.tile(allc, 256)
        else:
            sha, shb = ADD_SHAPES[t % len(ADD_SHAPES)]
            a, b = codes(rng, dtype, sha), codes(rng, dtype, shb)
        sa, sb, sy = draw_scales(rng, kind)
        sy = F32(sy * 50) if kind == "random" else sy
        za, zb, zy = (dtype(draw_zp(rng, dtype, kind)) for _ in range(3))
        (got,) = ort.run_onnx_op("QLinearMul", [a, sa, za, b, sb, zb, sy, zy], {}, [np.dtype(dtype)],
                                 domain=ort.MS_DOMAIN)
        total += check(got, ewf.float_mul(a, sa, za, b, sb, zb, sy, zy), f"QLinearMul trial {t}")
    assert total > 500000


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_ort_qlinear_global_average_pool(dtype):
    rng = np.random.default_rng(112)
    total = 0
    for t in range(300):
        kind = KINDS[t % 3]
        rank = 4 if t % 5 else int(rng.integers(3, 6))
        shape = tuple(int(v) for v in rng.integers(1, [3, 20] + [12] * (rank - 2)))
        x = codes(rng, dtype, shape)
        xs, ys = draw_scales(rng, kind, 2)
        xz, yz = dtype(draw_zp(rng, dtype, kind)), dtype(draw_zp(rng, dtype, kind))
        cl = t % 2
        try:
            want = pool.global_average_pool(x, xs, xz, ys, yz, channels_last=cl)
        except ValueError:
            with pytest.raises(Exception):
                ort.run_qlinear_global_average_pool(x, xs, xz, ys, yz, channels_last=cl)
            continue
        got = ort.run_qlinear_global_average_pool(x, xs, xz, ys, yz, channels_last=cl)
        total += check(got, want, f"QLinearGlobalAveragePool trial {t}")
    assert total > 3000


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_ort_qlinear_sigmoid(dtype):
    rng = np.random.default_rng(113)
    x = np.arange(256, dtype=np.uint8).view(dtype)
    total = 0
    for t in range(300):
        xs = F32(rng.uniform(0.003, 0.3))
        ys = F32(1 / 256) if t % 3 == 0 else F32(rng.uniform(0.5, 2.0) / 256)
        xz, yz = dtype(draw_zp(rng, dtype, KINDS[t % 3])), dtype(draw_zp(rng, dtype, "random"))
        want = lut.apply_lut(x, lut.rational_logistic_lut(xs, xz, ys, yz, dtype=dtype))
        total += check(ort.run_qlinear_sigmoid(x, xs, xz, ys, yz), want, f"QLinearSigmoid trial {t}")
    assert total > 50000


# --------------------------------------------------------------------------- PyTorch bias handling


def _torch_linear(torch, xcodes, xs, xz, wq, ws, bias, ys, yz):
    import torch.ao.nn.quantized as nnq

    n, k = wq.shape
    x = torch._make_per_tensor_quantized_tensor(torch.tensor(xcodes, dtype=torch.uint8), float(xs), int(xz))
    if np.ndim(ws):
        w = torch._make_per_channel_quantized_tensor(torch.tensor(wq), torch.tensor(ws.astype(np.float64)),
                                                     torch.zeros(n, dtype=torch.int64), 0)
    else:
        w = torch._make_per_tensor_quantized_tensor(torch.tensor(wq), float(ws), 0)
    lin = nnq.Linear(k, n)
    lin.set_weight_bias(w, torch.tensor(bias))
    lin.scale, lin.zero_point = float(ys), int(yz)
    return lin(x).int_repr().numpy()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("engine, per_channel", [("fbgemm", False), ("fbgemm", True), ("qnnpack", False),
                                                 ("qnnpack", True)])
def test_pytorch_linear_bias_paths(engine, per_channel):
    """``nnq.Linear`` with a float bias: fbgemm adds ``bias / act_times_w_scale`` in float (per-tensor:
    one FMA with the double-rounded reciprocal), qnnpack quantizes the bias at run time and uses the
    ``(w*x)*(1/y)`` multiplier. Activation codes < 128 keep fbgemm's u8s8 accumulation exact on AVX2.
    The alternative forms are counted where they would differ, so each choice is really pinned."""
    torch = pytest.importorskip("torch")
    from support.torch_runner import quantized_engine, require_engine

    from refquant.kernels import bias as bias_

    require_engine(engine)
    rng = np.random.default_rng(115 + per_channel)
    total = alternatives_differ = 0
    with quantized_engine(engine):
        for t in range(40):
            m, k, n = 2048, int(rng.integers(1, 5)), 16
            xs, xz = F32(rng.uniform(0.005, 0.05)), int(rng.integers(0, 128))
            xcodes = rng.integers(0, 128, (m, k))
            ws = rng.uniform(0.001, 0.02, n).astype(F32) if per_channel else F32(rng.uniform(0.001, 0.02))
            wq = rng.integers(-127, 128, (n, k)).astype(np.int8)
            bias = rng.normal(0, 1, n).astype(F32)
            ys, yz = F32(rng.uniform(0.002, 0.02)), int(rng.integers(0, 256))
            acc = ((xcodes - xz) @ wq.astype(np.int64).T).astype(np.int32)  # (m, n) exact
            if engine == "fbgemm":
                atws = (xs * np.asarray(ws, F32)).astype(F32)
                mult_ = (atws / ys).astype(F32)
                if per_channel:
                    forms = [bias_.float_bias_accumulator(acc, bias, atws),
                             (acc.astype(F32) + (bias * (1.0 / atws.astype(np.float64)).astype(F32)).astype(F32))]
                else:
                    forms = [bias_.float_bias_accumulator(acc, bias, atws, reciprocal=True),
                             bias_.float_bias_accumulator(acc, bias, atws, reciprocal=True, fused=False),
                             bias_.float_bias_accumulator(acc, bias, atws)]
                outs = [rq.requantize(f.astype(F32), mult_, yz, 0, 255, mode="float32_rne", dtype=np.uint8)
                        for f in forms]
            else:
                qb = bias_.quantize_bias_runtime(bias, xs, ws)
                qb_div = np.rint(bias / (np.asarray(ws, F32) * xs).astype(F32)).astype(np.int32)  # RNE
                outs = [rq.requantize(bias_.add_bias(acc, b_), mult.real_multiplier(xs, ws, ys, derivation=d), yz, 0,
                                      255, mode="float32_rne", dtype=np.uint8)
                        for b_, d in ((qb, "f32_ba_times_recip_c"), (qb, "f32_ab_div_c"), (qb_div, "f32_ba_times_recip_c"))]
            want = outs[0]
            alternatives_differ += int(sum((o != want).sum() for o in outs[1:]))
            total += check(_torch_linear(torch, xcodes, xs, xz, wq, ws, bias, ys, yz), want,
                           f"nnq.Linear {engine} per_channel={per_channel} trial {t}")
    # qnnpack's alternatives (multiplier order, bias division) almost never change an output on random
    # data: test_pytorch_qnnpack_targeted pins them on constructed inputs
    assert total > 1_000_000 and (alternatives_differ > 0 or engine == "qnnpack"), (total, alternatives_differ)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pytorch_qnnpack_targeted():
    """qnnpack on inputs built where the alternatives differ: scales whose ``(w*x)*(1/y)`` and
    ``(x*w)/y`` multipliers differ, accumulators chosen where that changes the output, and biases
    where ``rint(b * (1/(w*x)))`` and ``rint(b / (w*x))`` differ."""
    torch = pytest.importorskip("torch")
    from support.torch_runner import quantized_engine, require_engine

    from refquant.kernels import bias as bias_

    require_engine("qnnpack")
    rng = np.random.default_rng(116)
    targets = np.arange(-16000, 16001, dtype=np.int64)
    mult_cases = bias_cases = 0
    with quantized_engine("qnnpack"):
        for t in range(500):
            xs, ws, ys = F32(rng.uniform(0.005, 0.05)), F32(rng.uniform(0.001, 0.02)), F32(rng.uniform(0.002, 0.02))
            m_q = mult.real_multiplier(xs, ws, ys, derivation="f32_ba_times_recip_c")
            m_o = mult.real_multiplier(xs, ws, ys, derivation="f32_ab_div_c")
            inv = F32(F32(1) / F32(ws * xs))
            cand = rng.normal(0, 2, 20000).astype(F32)
            odd = cand[np.rint((cand * inv).astype(F32)) != np.rint(cand / F32(ws * xs))]  # RNE both
            bias = odd[:1] if odd.size else np.zeros(1, F32)
            yz = int(rng.integers(0, 256))
            qb = bias_.quantize_bias_runtime(bias, xs, ws)
            y_q = rq.requantize(targets + int(qb[0]), m_q, yz, 0, 255, mode="float32_rne", dtype=np.uint8)
            y_o = rq.requantize(targets + int(qb[0]), m_o, yz, 0, 255, mode="float32_rne", dtype=np.uint8)
            pick = targets[y_q != y_o][:32]
            if pick.size == 0 and odd.size == 0:
                continue
            if pick.size == 0:  # still check the bias rounding on a few accumulators
                pick = targets[rng.integers(0, targets.size, 32)]
            a1 = np.clip(np.rint(pick / 127), -128, 127).astype(np.int64)  # acc = 127 a1 + a2, |a2| <= 64
            xcodes = np.stack([a1 + 128, pick - 127 * a1 + 128], axis=1)
            wq = np.array([[127, 1]], np.int8)
            want = rq.requantize(pick + int(qb[0]), m_q, yz, 0, 255, mode="float32_rne", dtype=np.uint8)
            got = _torch_linear(torch, xcodes, xs, 128, wq, ws, bias, ys, yz)
            check(got.ravel(), want, f"qnnpack targeted trial {t}")
            mult_cases += int((y_q != y_o).any())
            bias_cases += int(odd.size > 0)
    assert mult_cases >= 2 and bias_cases >= 20, (mult_cases, bias_cases)

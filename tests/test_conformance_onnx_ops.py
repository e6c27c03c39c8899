"""Op-level conformance of the ONNX and ONNX Runtime faces: MatMulInteger, QLinearMatMul,
ConvInteger, QLinearConv, and the com.microsoft QLinearAdd, QLinearGlobalAveragePool and
QLinearSigmoid.

* ``refquant.backends.onnxruntime`` == ONNX Runtime (CPU EP, ``ORT_DISABLE_ALL``, one
  thread) on every output, ``isa="auto"`` (on an AVX2 machine without VNNI: u8×s8 pair
  saturation, which full-range int8 weights exercise; the tests count the outputs where it
  matters).
* ``refquant.backends.onnx`` == ``onnx.reference`` on every output outside its documented
  departures (the module docstring of :mod:`refquant.backends.onnx`): the test first shows the
  reference *is* "float32 multiplier, float64 product, zero point before ``rint``", then that
  each output where the face differs is one LSB away and its exact value $\\mathrm{acc} \\cdot M$
  lies within float rounding of a .5 tie. With power-of-two scales the spec's value is exact
  in float64 and is checked directly.

Cases: realistic random, tie-heavy (power-of-two scales), saturating (small output scale,
extreme zero points), per-channel / per-column, odd shapes (K odd, channels not a multiple of
8, 1×1 and 7×7 kernels, stride 2, dilation 2, groups, depthwise with multiplier 1 and 2, 1-D
convs, SAME/VALID auto_pad), batched and broadcast matmuls, fed and constant weights.
Each test asserts how many cases and outputs it compared, so a shrinking test fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.compare import compared, report

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("ml_dtypes")

from support import onnx_runner as OR  # noqa: E402

from refquant.backends import onnx as O  # noqa: E402
from refquant.backends import onnxruntime as R  # noqa: E402
from refquant.cpu import detect_isa  # noqa: E402

pytestmark = pytest.mark.conformance
U8, S8, F32 = np.uint8, np.int8, np.float32
KINDS = ("random", "ties", "saturating", "extreme_zp")
ISA = detect_isa()


# --------------------------------------------------------------------------- inputs


def codes(rng, dtype, shape, small=False):
    info = np.iinfo(dtype)
    if small:  # weights kept in [-64, 63] (or [0, 127]): no pair can saturate
        return rng.integers(max(info.min, -64), min(info.max, 63 if info.min else 127), shape, endpoint=True
                            ).astype(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def near(rng, x, zp):
    """Tie-heavy cases: codes within ±3 of their (broadcastable) zero point, so that small
    accumulators times M = 2^-e land on .5 often without saturating."""
    info = np.iinfo(x.dtype)
    z = np.asarray(zp, np.int64)
    return np.clip(z + rng.integers(-3, 4, x.shape), info.min, info.max).astype(x.dtype)


def channel_zp(wz, ndim):
    """A per-output-channel zero point (M,) broadcastable to weights of rank ``ndim``."""
    wz = np.asarray(wz)
    return wz.reshape((-1,) + (1,) * (ndim - 1)) if wz.ndim else wz


def zero_point(rng, dtype, kind, shape=()):
    info = np.iinfo(dtype)
    if kind in ("saturating", "extreme_zp"):
        return rng.choice(np.array([info.min, info.min + 1, info.max - 1, info.max]), shape).astype(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def scales(rng, kind, n_w=None, K=16):
    """(s_in, s_w, s_out) with M = s_in·s_w/s_out suited to a K-term accumulator."""
    shape = () if n_w is None else (n_w,)
    if kind == "ties":  # M = 2^-e with codes near the zero points (near()): acc·M lands on .5 often
        e = 1 + int(np.log2(np.sqrt(max(K, 1)))) + int(rng.integers(0, 2))
        i, o = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        w = (e - i + o + rng.integers(-1, 2, shape)) if n_w else e - i + o
        return F32(2.0 ** -i), (2.0 ** -np.asarray(w, np.float64)).astype(F32), F32(2.0 ** -o)
    s_in = F32(rng.uniform(0.005, 0.05))
    s_w = rng.uniform(0.002, 0.02, shape).astype(F32) if n_w else F32(rng.uniform(0.002, 0.02))
    typical = float(s_in) * float(np.mean(s_w)) * np.sqrt(max(K, 1)) * 80  # ~ the accumulator's real spread
    s_out = F32(typical / rng.uniform(20, 120) if kind == "saturating" else typical / rng.uniform(0.5, 2.0))
    return s_in, s_w, max(s_out, F32(1e-6))


def check(got, want, what):
    return compared(got, want, what)




def matmul_shapes(rng, t):
    """(a.shape, b.shape): 2-D, batched, broadcast, 4-D, 1-D operands, long odd K."""
    M, K, N = (int(v) for v in rng.integers(1, [12, 40, 12], endpoint=True))
    B = int(rng.integers(2, 4))
    form = t % 7
    if form == 1:
        return (B, M, K), (B, K, N)
    if form == 2:
        return (B, M, K), (K, N)
    if form == 3:
        return (2, B, M, K), (B, K, N)
    if form == 4:
        return ((K,), (K, N)) if t % 2 else ((M, K), (K,))
    if form == 5:
        return (M, 2 * int(rng.integers(20, 70)) + 1), None
    return (M, K), (K, N)


def b_param_shape(rng, b_shape, t):
    """A per-column shape ONNX Runtime accepts: (), (N,) for 2-D b, or b.shape[:-2] + (1, N)."""
    if len(b_shape) < 2 or t % 3 == 0:
        return ()
    return (b_shape[-1],) if len(b_shape) == 2 and t % 2 else b_shape[:-2] + (1, b_shape[-1])


def conv_case(rng, t, ort=True):
    """(x.shape, w.shape, attrs): the odd geometries of the brief, one per t % 10."""
    form = t % 10
    n = 1 + int(t % 3 == 0)
    C, M = int(rng.integers(1, 12)), int(rng.integers(1, 10))
    k, st, dl, G = 3, [1, 1], [1, 1], 1
    attrs = {}
    if form == 0:
        k = 1
    elif form == 2:
        k, st = 7, [2, 2]
    elif form == 3:
        dl = [2, 2]
    elif form == 4:
        G = int(rng.integers(2, 4))
        C, M = G * int(rng.integers(1, 4)), G * int(rng.integers(1, 3))
    elif form in (5, 6):
        G = C = int(rng.integers(2, 12))
        M = C * (1 if form == 5 else 2)
    elif form == 7:  # 1-D
        L = int(rng.integers(3, 20))
        kl = int(rng.integers(1, 4))
        attrs = {"strides": [int(rng.integers(1, 3))], "pads": [int(v) for v in rng.integers(0, 2, 2)]}
        return (n, C, L), (M, C, kl), attrs
    elif form == 9:
        st = [1, 2]
    kh, kw = (2, 3) if form == 9 else (k, k)
    eff_h, eff_w = dl[0] * (kh - 1) + 1, dl[1] * (kw - 1) + 1
    H, W = int(rng.integers(eff_h, eff_h + 8)), int(rng.integers(eff_w, eff_w + 8))
    if form == 8:  # auto_pad, strides up to 4 (SAME with stride > kernel: ORT's own window start)
        attrs["auto_pad"] = ["SAME_UPPER", "SAME_LOWER", "VALID"][t // 10 % 3]
        st = [int(v) for v in rng.integers(1, 5, 2)]
        if not ort and t % 20 == 8:
            dl = [2, 1]
            H = max(H, dl[0] * (kh - 1) + 1)
    else:
        pads = [int(v) for v in rng.integers(0, [kh, kw, kh, kw])] if form in (1, 9) else \
            [(eff_h - 1) // 2, (eff_w - 1) // 2] * 2
        attrs["pads"] = pads
    attrs.update(strides=st, dilations=dl, group=G)
    return (n, C, H, W), (M, C // G, kh, kw), attrs


# --------------------------------------------------------------------------- ONNX Runtime


@pytest.mark.parametrize("ta, tb", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_ort_matmul_integer(ta, tb):
    rng = np.random.default_rng(300 + 10 * (ta == S8) + (tb == S8))
    cases = outputs = saturated = 0
    for t in range(450):
        kind = KINDS[t % 4]
        sa, sb = matmul_shapes(rng, t)
        if sb is None:
            sb = (sa[1], int(rng.integers(1, 9)))
        a, b = codes(rng, ta, sa), codes(rng, tb, sb, small=t % 11 == 0)
        za = zero_point(rng, ta, kind)
        zb = zero_point(rng, tb, kind, b_param_shape(rng, b.shape, t))
        if kind == "ties":
            a, b = near(rng, a, za), near(rng, b, zb)
        got = OR.run_matmul_integer(a, b, za, zb, const_weights=t % 5 == 0)
        want = R.matmul_integer(a, b, za, zb)
        outputs += check(got, want, f"MatMulInteger {ta.__name__}x{tb.__name__} trial {t} a{a.shape} b{b.shape}")
        saturated += int((want != R.matmul_integer(a, b, za, zb, isa="exact")).sum())
        cases += 1
    report(f"test_ort_matmul_integer[{ta.__name__}x{tb.__name__}]", cases=cases, outputs=outputs, saturated=saturated)
    assert cases == 450 and outputs > 20000, (cases, outputs)
    if (ta, tb) == (U8, S8) and ISA == "avx2":
        assert saturated > 1000, f"full-range u8×s8 should saturate pairs on AVX2, {saturated} outputs did"
    else:
        assert saturated == 0


@pytest.mark.parametrize("ta, tb", [(U8, S8), (U8, U8), (S8, S8)])
def test_ort_qlinear_matmul(ta, tb):
    rng = np.random.default_rng(310 + 10 * (ta == S8) + (tb == S8))
    cases = outputs = saturated = 0
    for t in range(500):
        kind = KINDS[t % 4]
        sha, shb = matmul_shapes(rng, t)
        if shb is None:
            shb = (sha[1], int(rng.integers(1, 9)))
        a, b = codes(rng, ta, sha), codes(rng, tb, shb, small=t % 13 == 0)
        pshape = b_param_shape(rng, b.shape, t)
        n_w = int(np.prod(pshape)) if pshape else None
        s_a, s_b, s_y = scales(rng, kind if kind != "extreme_zp" else "random", n_w, a.shape[-1])
        s_b = np.asarray(s_b).reshape(pshape)
        if t % 17 == 0:  # float16 scales (ORT computes in float32: measured)
            s_a, s_b, s_y = (np.asarray(v, np.float16) for v in (s_a, s_b, s_y))
            s_b = np.maximum(s_b, np.float16(1e-4))
        za, zy = zero_point(rng, ta, kind), zero_point(rng, ta, kind)
        zb = zero_point(rng, tb, kind, pshape if t % 4 else ())
        if kind == "ties":
            a, b = near(rng, a, za), near(rng, b, zb)
        got = OR.run_qlinear_matmul(a, s_a, za, b, s_b, zb, s_y, zy, const_weights=t % 5 == 0)
        want = R.qlinear_matmul(a, s_a, za, b, s_b, zb, s_y, zy)
        outputs += check(got, want, f"QLinearMatMul {ta.__name__}x{tb.__name__} trial {t} ({kind})")
        saturated += int((want != R.qlinear_matmul(a, s_a, za, b, s_b, zb, s_y, zy, isa="exact")).sum())
        cases += 1
    report(f"test_ort_qlinear_matmul[{ta.__name__}x{tb.__name__}]", cases=cases, outputs=outputs, saturated=saturated)
    assert cases == 500 and outputs > 20000, (cases, outputs)
    if (ta, tb) == (U8, S8) and ISA == "avx2":
        assert saturated > 100, saturated


@pytest.mark.parametrize("tx, tw", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_ort_conv_integer(tx, tw):
    rng = np.random.default_rng(320 + 10 * (tx == S8) + (tw == S8))
    cases = outputs = saturated = 0
    for t in range(300):
        kind = KINDS[t % 4]
        xs, ws, attrs = conv_case(rng, t)
        x, w = codes(rng, tx, xs), codes(rng, tw, ws, small=t % 11 == 0)
        xz, wz = zero_point(rng, tx, kind), zero_point(rng, tw, kind)
        if kind == "ties":
            x, w = near(rng, x, xz), near(rng, w, wz)
        got = OR.run_conv_integer(x, w, xz, wz, const_weights=t % 5 == 0, **attrs)
        want = R.conv_integer(x, w, xz, wz, **attrs)
        outputs += check(got, want, f"ConvInteger {tx.__name__}x{tw.__name__} trial {t} x{xs} w{ws} {attrs}")
        saturated += int((want != R.conv_integer(x, w, xz, wz, isa="exact", **attrs)).sum())
        cases += 1
    report(f"test_ort_conv_integer[{tx.__name__}x{tw.__name__}]", cases=cases, outputs=outputs, saturated=saturated)
    assert cases == 300 and outputs > 15000, (cases, outputs)
    if (tx, tw) == (S8, U8) and ISA == "avx2":
        assert saturated > 100, saturated


@pytest.mark.parametrize("tx, tw", [(U8, S8), (U8, U8), (S8, S8)])
def test_ort_qlinear_conv(tx, tw):
    rng = np.random.default_rng(330 + 10 * (tx == S8) + (tw == S8))
    cases = outputs = saturated = 0
    for t in range(400):
        kind = KINDS[t % 4]
        xs, ws, attrs = conv_case(rng, t)
        x, w = codes(rng, tx, xs), codes(rng, tw, ws, small=t % 11 == 0)
        M, K = ws[0], int(np.prod(ws[1:]))
        per_channel = t % 2 == 0
        s_x, s_w, s_y = scales(rng, kind if kind != "extreme_zp" else "random", M if per_channel else None, K)
        xz, yz = zero_point(rng, tx, kind), zero_point(rng, tx, kind)
        wz = zero_point(rng, tw, kind, (M,) if per_channel and t % 4 == 0 else ())
        B = rng.integers(-3000, 3000, M).astype(np.int32) if t % 3 else None
        if kind == "ties":
            x, w, B = near(rng, x, xz), near(rng, w, channel_zp(wz, w.ndim)), None if B is None else B // 64
        got = OR.run_qlinear_conv(x, s_x, xz, w, s_w, wz, s_y, yz, B, const_weights=t % 5 == 0, **attrs)
        want = R.qlinear_conv(x, s_x, xz, w, s_w, wz, s_y, yz, B, **attrs)
        outputs += check(got, want, f"QLinearConv {tx.__name__}x{tw.__name__} trial {t} ({kind}) x{xs} w{ws} {attrs}")
        saturated += int((want != R.qlinear_conv(x, s_x, xz, w, s_w, wz, s_y, yz, B, isa="exact", **attrs)).sum())
        cases += 1
    report(f"test_ort_qlinear_conv[{tx.__name__}x{tw.__name__}]", cases=cases, outputs=outputs, saturated=saturated)
    assert cases == 400 and outputs > 15000, (cases, outputs)
    if (tx, tw) == (U8, S8) and ISA == "avx2":
        assert saturated > 50, saturated


ADD_SHAPES = [((1, 97), (1, 97)), ((3, 40), (40,)), ((5, 1), (5, 33)), ((2, 3, 17), (1,)), ((1,), (4, 19)),
              ((6, 1, 9), (4, 1)), ((), (37,)), ((8, 8), (8, 8))]


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_add(dtype):
    rng = np.random.default_rng(340 + (dtype == S8))
    cases = outputs = 0
    for t in range(500):
        kind = KINDS[t % 4]
        sha, shb = ADD_SHAPES[t % len(ADD_SHAPES)]
        a, b = codes(rng, dtype, sha), codes(rng, dtype, shb)
        s_a, s_b, s_c = (F32(2.0 ** -int(rng.integers(1, 8))) for _ in range(3)) if kind == "ties" else \
            (F32(rng.uniform(0.01, 0.2)) for _ in range(3))
        if kind == "saturating":
            s_c = F32(s_c / 30)
        za, zb, zc = (zero_point(rng, dtype, kind) for _ in range(3))
        got = OR.run_qlinear_add(a, s_a, za, b, s_b, zb, s_c, zc)
        # Python-int zero points are accepted by the face (the type is a's)
        args = (int(za), int(zb), int(zc)) if t % 7 == 0 else (za, zb, zc)
        want = R.qlinear_add(a, s_a, args[0], b, s_b, args[1], s_c, args[2])
        outputs += check(got, want, f"QLinearAdd trial {t} ({kind}) {sha} {shb}")
        cases += 1
    report(f"test_ort_qlinear_add[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 500 and outputs > 10000, (cases, outputs)


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_global_average_pool(dtype):
    rng = np.random.default_rng(350 + (dtype == S8))
    cases = outputs = 0
    for t in range(500):
        kind = KINDS[t % 4]
        rank = 4 if t % 5 else int(rng.integers(3, 6))
        shape = tuple(int(v) for v in rng.integers(1, [3, 12] + [10] * (rank - 2), endpoint=True))
        x = codes(rng, dtype, shape)
        s_x = F32(rng.uniform(0.01, 0.1))
        s_y = F32(2.0 ** -int(rng.integers(4, 8))) if kind == "ties" else F32(s_x * rng.uniform(0.3, 3))
        if kind == "saturating":
            s_y = F32(s_x / 40)
        xz, yz = zero_point(rng, dtype, kind), zero_point(rng, dtype, kind)
        got = OR.run_qlinear_global_average_pool(x, s_x, xz, s_y, yz, channels_last=t % 2)
        want = R.qlinear_global_average_pool(x, s_x, xz, s_y, yz, channels_last=t % 2)
        outputs += check(got, want, f"QLinearGlobalAveragePool trial {t} {shape}")
        cases += 1
    report(f"test_ort_qlinear_global_average_pool[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 500 and outputs > 2500, (cases, outputs)


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_sigmoid(dtype):
    rng = np.random.default_rng(360 + (dtype == S8))
    x = np.arange(256, dtype=U8).view(dtype).reshape(16, 16)
    cases = outputs = 0
    for t in range(500):
        kind = KINDS[t % 4]
        s_x = F32(2.0 ** -int(rng.integers(2, 7))) if kind == "ties" else F32(rng.uniform(0.003, 0.3))
        s_y = F32(1 / 256) if t % 3 == 0 else F32(rng.uniform(0.5, 2.0) / 256)
        xz, yz = zero_point(rng, dtype, kind), zero_point(rng, dtype, "random")
        got = OR.run_qlinear_sigmoid(x, s_x, xz, s_y, yz)
        outputs += check(got, R.qlinear_sigmoid(x, s_x, xz, s_y, yz), f"QLinearSigmoid trial {t}")
        cases += 1
    report(f"test_ort_qlinear_sigmoid[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 500 and outputs == 500 * 256


def test_ort_same_padding_with_large_strides():
    """auto_pad SAME with stride > kernel: ONNX Runtime's window start (ort_same_pads), both ops."""
    rng = np.random.default_rng(370)
    outputs = 0
    for mode in ("SAME_UPPER", "SAME_LOWER"):
        for k in (1, 2, 3):
            for s in range(1, 8):
                for H in (1, 4, 5, 6, 9, 13):
                    x, w = codes(rng, U8, (1, 3, H, H + 2)), codes(rng, S8, (2, 3, k, k), small=True)
                    attrs = dict(auto_pad=mode, strides=[s, s])
                    got = OR.run_conv_integer(x, w, U8(7), S8(-3), **attrs)
                    outputs += check(got, R.conv_integer(x, w, U8(7), S8(-3), **attrs), f"{mode} k{k} s{s} H{H}")
                    got = OR.run_qlinear_conv(x, F32(0.05), U8(7), w, F32(0.01), S8(-3), F32(0.02), U8(100), **attrs)
                    want = R.qlinear_conv(x, F32(0.05), U8(7), w, F32(0.01), S8(-3), F32(0.02), U8(100), **attrs)
                    outputs += check(got, want, f"QLinearConv {mode} k{k} s{s} H{H}")
    report("test_ort_same_padding_with_large_strides", cases=252, outputs=outputs)
    assert outputs > 3000


# --------------------------------------------------------------------------- ONNX face vs onnx.reference


@pytest.mark.parametrize("ta, tb", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_onnx_matmul_integer_vs_reference(ta, tb):
    rng = np.random.default_rng(400 + 10 * (ta == S8) + (tb == S8))
    outputs = 0
    for t in range(250):
        kind = KINDS[t % 4]
        sha, shb = matmul_shapes(rng, t)
        if shb is None:
            shb = (sha[1], int(rng.integers(1, 9)))
        a, b = codes(rng, ta, sha), codes(rng, tb, shb)
        per_row = len(sha) >= 2 and t % 3 == 0  # the reference needs the N-D (M, 1) form
        za = zero_point(rng, ta, kind, sha[:-1] + (1,) if per_row else ())
        zb = zero_point(rng, tb, kind, b_param_shape(rng, b.shape, t))
        if kind == "ties":
            a, b = near(rng, a, za), near(rng, b, zb)
        want = O.matmul_integer(a, b, za, zb)
        outputs += check(OR.run_matmul_integer(a, b, za, zb, engine="reference"), want, f"MatMulInteger {t}")
        if per_row and len(sha) == 2:  # the spec's (M,) per-row vector means the same
            np.testing.assert_array_equal(O.matmul_integer(a, b, za[:, 0], zb), want)
    report(f"test_onnx_matmul_integer_vs_reference[{ta.__name__}x{tb.__name__}]", cases=250, outputs=outputs)
    assert outputs > 10000


def _classify(got_ref, face, acc, m_exact, what):
    """Every output where the face and onnx.reference differ must be a documented departure:
    one LSB apart, with acc·M within float rounding of a .5 tie (zero point before rounding on a
    tie, or the float32 multiplier). Returns (outputs equal, departures)."""
    diff = got_ref.astype(np.int64) != face.astype(np.int64)
    if diff.any():
        v = acc[diff].astype(np.float64) * m_exact[diff]
        near_tie = np.abs(v - (np.floor(v) + 0.5)) <= np.abs(v) * 2.0 ** -21 + 1e-12
        one_lsb = np.abs(got_ref[diff].astype(np.int64) - face[diff].astype(np.int64)) == 1
        bad = ~(near_tie & one_lsb)
        if bad.any():
            pytest.fail(f"{what}: {int(bad.sum())} undocumented differences: reference {got_ref[diff][bad][:5]} "
                        f"face {face[diff][bad][:5]} acc·M {v[bad][:5]}")
    return int((~diff).sum()), int(diff.sum())


def _matmul_multipliers(s_a, s_b, s_y, sha, shb, out_shape):
    """M = S_a·S_b/S_y per output: exactly (float64 holds the product of two float32 and a
    quotient to 2^-52) and as onnx.reference forms it (float32 ops)."""
    a2 = sha if len(sha) > 1 else (1,) + sha
    b2 = shb if len(shb) > 1 else shb + (1,)
    promoted = np.broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    pa, pb = np.asarray(s_a), np.asarray(s_b)
    pb = pb.reshape(1, -1) if pb.ndim == 1 else pb
    exact = np.broadcast_to(pa.astype(np.float64) * pb.astype(np.float64) / np.float64(s_y), promoted)
    m32 = np.broadcast_to(((pa.astype(F32) * pb.astype(F32)).astype(F32) / F32(s_y)).astype(F32), promoted)
    return exact.reshape(out_shape), m32.reshape(out_shape)


def _reference_model(acc, m32, zy, dtype):
    """onnx.reference's arithmetic (backends.md §2.4): float64(acc)·float32 multiplier + zy, clip, rint."""
    info = np.iinfo(dtype)
    return np.rint(np.clip(acc.astype(np.float64) * m32.astype(np.float64) + zy, info.min, info.max)).astype(dtype)


@pytest.mark.parametrize("ta, tb", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_onnx_qlinear_matmul_vs_reference(ta, tb):
    rng = np.random.default_rng(410 + 10 * (ta == S8) + (tb == S8))
    equal = departures = spec_checked = 0
    for t in range(400):
        kind = KINDS[t % 4]
        ty = (U8, S8)[t % 2]
        sha, shb = matmul_shapes(rng, t)
        if shb is None:
            shb = (sha[1], int(rng.integers(1, 9)))
        a, b = codes(rng, ta, sha), codes(rng, tb, shb)
        per_row = len(sha) >= 2 and len(shb) >= 2 and t % 3 == 0  # (M, 1) with a 1-D b: reference's shape is wrong
        ashape = sha[:-1] + (1,) if per_row else ()
        bshape = b_param_shape(rng, b.shape, t)
        n_w = int(np.prod(bshape)) if bshape else None
        s_a, s_b, s_y = scales(rng, kind if kind != "extreme_zp" else "random", n_w, a.shape[-1])
        s_b = np.asarray(s_b, F32).reshape(bshape)
        s_a = np.full(ashape, s_a, F32) * (2.0 ** rng.integers(0, 2, ashape)).astype(F32) if per_row else s_a
        za, zb, zy = zero_point(rng, ta, kind, ashape), zero_point(rng, tb, kind, bshape), zero_point(rng, ty, kind)
        if kind == "ties":
            a, b = near(rng, a, za), near(rng, b, zb)
        face = O.qlinear_matmul(a, s_a, za, b, s_b, zb, s_y, zy)
        ref = OR.run_qlinear_matmul(a, s_a, za, b, s_b, zb, s_y, zy, engine="reference")
        acc = O.matmul_integer(a, b, za, zb).astype(np.int64)
        m_exact, m32 = _matmul_multipliers(s_a, s_b, s_y, sha, shb, ref.shape)
        check(ref, _reference_model(acc, m32, int(zy), ty), f"onnx.reference model, trial {t}")
        e, d = _classify(ref, face, acc, m_exact, f"QLinearMatMul {t} ({kind})")
        equal, departures = equal + e, departures + d
        if kind == "ties":  # power-of-two scales: the spec's value is exact in float64
            info = np.iinfo(ty)
            spec = np.clip(np.rint(acc * m_exact) + int(zy), info.min, info.max).astype(ty)  # RNE, then + zy
            spec_checked += check(face, spec, f"QLinearMatMul spec (exact ties) trial {t}")
        if per_row and a.ndim == 2:
            np.testing.assert_array_equal(O.qlinear_matmul(a, s_a[:, 0], za[:, 0], b, s_b, zb, s_y, zy), face)
    report(f"test_onnx_qlinear_matmul_vs_reference[{ta.__name__}x{tb.__name__}]", cases=400, equal=equal,
           departures=departures, spec_checked=spec_checked)
    assert equal > 15000 and spec_checked > 3000 and departures > 0, (equal, departures, spec_checked)


@pytest.mark.parametrize("tx, tw", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_onnx_conv_integer_vs_reference(tx, tw):
    rng = np.random.default_rng(420 + 10 * (tx == S8) + (tw == S8))
    outputs = 0
    for t in range(250):
        kind = KINDS[t % 4]
        xs, ws, attrs = conv_case(rng, t, ort=False)
        x, w = codes(rng, tx, xs), codes(rng, tw, ws)
        per_channel = t % 2 and len(xs) == 4  # the reference's per-channel w_zero_point assumes 2-D convs
        xz, wz = zero_point(rng, tx, kind), zero_point(rng, tw, kind, (ws[0],) if per_channel else ())
        if kind == "ties":
            x, w = near(rng, x, xz), near(rng, w, channel_zp(wz, w.ndim))
        got = OR.run_conv_integer(x, w, xz, wz, engine="reference", **attrs)
        outputs += check(got, O.conv_integer(x, w, xz, wz, **attrs), f"ConvInteger {t} x{xs} w{ws} {attrs}")
    report(f"test_onnx_conv_integer_vs_reference[{tx.__name__}x{tw.__name__}]", cases=250, outputs=outputs)
    assert outputs > 15000


@pytest.mark.parametrize("tx, tw", [(U8, S8), (U8, U8), (S8, S8), (S8, U8)])
def test_onnx_qlinear_conv_vs_reference(tx, tw):
    rng = np.random.default_rng(430 + 10 * (tx == S8) + (tw == S8))
    equal = departures = spec_checked = 0
    for t in range(250):
        kind = KINDS[t % 4]
        ty = (U8, S8)[t % 2]
        xs, ws, attrs = conv_case(rng, t, ort=False)
        x, w = codes(rng, tx, xs), codes(rng, tw, ws)
        M, K = ws[0], int(np.prod(ws[1:]))
        per_channel = t % 2 == 0
        s_x, s_w, s_y = scales(rng, kind if kind != "extreme_zp" else "random", M if per_channel else None, K)
        xz, yz = zero_point(rng, tx, kind), zero_point(rng, ty, kind)
        wz = zero_point(rng, tw, kind, (M,) if per_channel else ())
        B = rng.integers(-3000, 3000, M).astype(np.int32) if t % 3 else None
        if kind == "ties":
            x, w, B = near(rng, x, xz), near(rng, w, channel_zp(wz, w.ndim)), None if B is None else B // 64
        face = O.qlinear_conv(x, s_x, xz, w, s_w, wz, s_y, yz, B, **attrs)
        ref = OR.run_qlinear_conv(x, s_x, xz, w, s_w, wz, s_y, yz, B, engine="reference", **attrs)
        acc = O.conv_integer(x, w, xz, wz, **attrs).astype(np.int64)
        if B is not None:
            acc = acc + B.reshape((1, M) + (1,) * (acc.ndim - 2))
        ch = (1, M) + (1,) * (acc.ndim - 2)
        m_exact = np.broadcast_to(np.float64(s_x) * np.asarray(s_w, np.float64).reshape(-1).reshape(
            ch if per_channel else ()) / np.float64(s_y), acc.shape)
        m32 = np.broadcast_to(((F32(s_x) * np.asarray(s_w, F32)) / F32(s_y)).astype(F32).reshape(
            ch if per_channel else ()), acc.shape)
        check(ref, _reference_model(acc, m32, int(yz), ty), f"onnx.reference model, trial {t}")
        e, d = _classify(ref, face, acc, m_exact, f"QLinearConv {t} ({kind}) x{xs} w{ws} {attrs}")
        equal, departures = equal + e, departures + d
        if kind == "ties":
            info = np.iinfo(ty)
            spec = np.clip(np.rint(acc * m_exact) + int(yz), info.min, info.max).astype(ty)  # RNE, then + zy
            spec_checked += check(face, spec, f"QLinearConv spec (exact ties) trial {t}")
    report(f"test_onnx_qlinear_conv_vs_reference[{tx.__name__}x{tw.__name__}]", cases=250, equal=equal,
           departures=departures, spec_checked=spec_checked)
    assert equal > 30000 and spec_checked > 5000 and departures > 0, (equal, departures, spec_checked)

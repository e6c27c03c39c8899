"""Op-level conformance of the ONNX Runtime face's com.microsoft QGemm, QLinearMul,
QLinearConcat, QLinearAveragePool, QLinearSoftmax, QLinearLeakyRelu and the int8/uint8 MaxPool,
against ONNX Runtime (CPU EP, one thread, default graph optimization level,
``support.onnx_contrib``), compared with ``==``; plus the kernels' NumPy references against
their Numba twins, and the face's refusals.

Cases: random, tie-heavy (power-of-two scales; all-equal softmax rows whose exact result is a
.5 tie), saturating (small output scales, extreme zero points), odd shapes (K and channel counts
not multiples of 8, 1-D pools, kernels covering the image, ceil_mode windows that start in the
tail pad, negative SAME pads, empty dilated windows). Each test asserts how many cases and
outputs it compared. The host's ISA decides QGemm's uint8 x int8 accumulation (``isa="auto"``):
on AVX-512 VNNI it is exact, which these tests measure; the ``"avx2"`` pair saturation is the
model measured for QLinearMatMul on an AVX2 host (same MLAS kernel), not re-run here.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.compare import compared, report

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from support.onnx_contrib import run_node  # noqa: E402

from refquant.backends import onnxruntime as R  # noqa: E402
from refquant.errors import QuantizationValueError, ShapeError, UnsupportedError  # noqa: E402
from refquant.kernels import pool_nd as kpnd  # noqa: E402
from refquant.kernels import qlinear_lut as kql  # noqa: E402

pytestmark = pytest.mark.conformance
U8, S8, F32 = np.uint8, np.int8, np.float32
KINDS = ("random", "ties", "saturating", "extreme_zp")


def codes(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def zero_point(rng, dtype, kind):
    info = np.iinfo(dtype)
    if kind in ("saturating", "extreme_zp"):
        return dtype(rng.choice([info.min, info.min + 1, info.max - 1, info.max]))
    return dtype(rng.integers(info.min, info.max, endpoint=True))


def scale(rng, kind, lo=0.01, hi=0.2):
    return F32(2.0 ** -int(rng.integers(1, 8))) if kind == "ties" else F32(rng.uniform(lo, hi))


def check(got, want, what):
    return compared(got, want, what)




# --------------------------------------------------------------------------- QGemm


@pytest.mark.parametrize("ta,tb", [(U8, U8), (U8, S8), (S8, S8)])
def test_ort_qgemm(ta, tb):
    rng = np.random.default_rng(800 + 2 * (ta == S8) + (tb == S8))
    cases = outputs = floats = 0
    for t in range(120):
        kind = KINDS[t % 4]
        M, K, N = (int(v) for v in rng.integers(1, [12, 70, 20], endpoint=True))
        transA, transB = t % 2, (t // 2) % 2
        a = codes(rng, ta, (K, M) if transA else (M, K))
        b = codes(rng, tb, (N, K) if transB else (K, N))
        per = t % 3 == 0
        sa = scale(rng, kind, 0.005, 0.05)
        sb = rng.uniform(0.002, 0.02, (N,)).astype(F32) if per else scale(rng, kind, 0.002, 0.02)
        za = zero_point(rng, ta, kind)
        zb = np.array([zero_point(rng, tb, kind) for _ in range(N)], tb) if per else np.asarray(zero_point(rng, tb, kind))
        C = rng.integers(-20000, 20000, [(), (1,), (N,), (1, N), (M, 1), (M, N)][t % 6]).astype(np.int32) \
            if t % 5 else None
        alpha = [1.0, 0.5, 1.7, 0.3][t % 4]
        quant = t % 6 != 5
        sy = zy = None
        if quant:
            typical = float(sa) * float(np.mean(sb)) * np.sqrt(K) * 80
            sy = F32(typical / (40 if kind == "saturating" else rng.uniform(0.5, 2)))
            if kind == "ties":
                sy = F32(2.0 ** round(np.log2(typical)))
            zy = zero_point(rng, ta, kind)
        got = run_node("QGemm", [a, sa, np.asarray(za), b, sb, zb, C, sy, None if zy is None else np.asarray(zy)],
                       {"alpha": alpha, "transA": transA, "transB": transB}, ta if quant else F32,
                       consts=(1, 2, 3, 4, 5, 6, 7, 8) if t % 2 else (1, 2, 4, 5, 7, 8))
        zb_arg = zb if per else zb.reshape(())
        want = R.qgemm(a, sa, za if t % 7 else int(za), b, sb, zb_arg, C, sy, zy, alpha=alpha, transA=transA,
                       transB=transB)
        outputs += check(got, want, f"QGemm trial {t} ({kind}) M,K,N={M},{K},{N} trans={transA}{transB}")
        floats += 0 if quant else got.size
        cases += 1
    report(f"test_ort_qgemm[{ta.__name__},{tb.__name__}]", cases=cases, outputs=outputs, float_outputs=floats)
    assert cases == 120 and outputs > 6000 and floats > 500, (cases, outputs, floats)


# --------------------------------------------------------------------------- QLinearMul

MUL_SHAPES = [((3, 4), (3, 4)), ((2, 3, 5), (5,)), ((1,), (4, 6)), ((4, 1), (1, 7)), ((37,), (37,)),
              ((2, 1, 9), (3, 1)), ((), (5, 5))]


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_mul(dtype):
    rng = np.random.default_rng(810 + (dtype == S8))
    cases = outputs = 0
    for t in range(280):
        kind = KINDS[t % 4]
        sha, shb = MUL_SHAPES[t % len(MUL_SHAPES)]
        a, b = codes(rng, dtype, sha), codes(rng, dtype, shb)
        sa, sb, sc = scale(rng, kind), scale(rng, kind), scale(rng, kind)
        if kind == "saturating":
            sc = F32(sa * sb / 3)
        za, zb, zc = (zero_point(rng, dtype, kind) for _ in range(3))
        got = run_node("QLinearMul", [a, sa, np.asarray(za), b, sb, np.asarray(zb), sc, np.asarray(zc)], {}, dtype,
                       consts=(1, 2, 4, 5, 6, 7))
        want = R.qlinear_mul(a, sa, za, b, sb, zb, sc, int(zc) if t % 5 == 0 else zc)
        outputs += check(got, want, f"QLinearMul trial {t} ({kind}) {sha} {shb}")
        cases += 1
    report(f"test_ort_qlinear_mul[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 280 and outputs > 3000, (cases, outputs)


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_leaky_relu(dtype):
    rng = np.random.default_rng(820 + (dtype == S8))
    x = np.arange(256, dtype=U8).view(dtype).reshape(16, 16)  # every code
    cases = outputs = 0
    for t in range(200):
        kind = KINDS[t % 4]
        sx, sy = scale(rng, kind), scale(rng, kind)
        if kind == "saturating":
            sy = F32(sx / 20)
        zx, zy = zero_point(rng, dtype, kind), zero_point(rng, dtype, kind)
        alpha = [0.01, 0.1, 0.5, -0.25, 1.5, 0.0, 1.0][t % 7]
        attrs = {} if alpha == 0.01 and t % 2 else {"alpha": alpha}
        got = run_node("QLinearLeakyRelu", [x, sx, np.asarray(zx), sy, np.asarray(zy)], attrs, dtype,
                       consts=(1, 2, 3, 4) if t % 3 else ())
        outputs += check(got, R.qlinear_leaky_relu(x, sx, zx, sy, zy, alpha=alpha), f"QLinearLeakyRelu trial {t}")
        cases += 1
    report(f"test_ort_qlinear_leaky_relu[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 200 and outputs == 200 * 256


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_concat(dtype):
    rng = np.random.default_rng(830 + (dtype == S8))
    cases = outputs = copies = 0
    for t in range(200):
        kind = KINDS[t % 4]
        rank = 1 + t % 4
        ax = int(rng.integers(-rank, rank))
        base = [int(v) for v in rng.integers(1, 5, rank)]
        sy, zy = scale(rng, kind), zero_point(rng, dtype, kind)
        feeds, args = [], []
        for i in range(int(rng.integers(1, 5))):
            shape = list(base)
            shape[ax] = int(rng.integers(0 if i else 1, 6))
            xi = codes(rng, dtype, shape)
            si, zi = (sy, zy) if rng.random() < 0.3 else (scale(rng, kind), zero_point(rng, dtype, kind))
            copies += si == sy and zi == zy
            feeds += [xi, si, np.asarray(zi)]
            args += [xi, si, zi]
        consts = tuple(j for j in range(2, 2 + len(feeds)) if (j - 2) % 3) + (0, 1) if t % 2 else ()
        got = run_node("QLinearConcat", [sy, np.asarray(zy)] + feeds, {"axis": ax}, dtype, consts=consts)
        outputs += check(got, R.qlinear_concat(sy, zy, *args, axis=ax), f"QLinearConcat trial {t} axis {ax}")
        cases += 1
    report(f"test_ort_qlinear_concat[{dtype.__name__}]", cases=cases, outputs=outputs, copied_inputs=copies)
    assert cases == 200 and outputs > 4000 and copies > 50, (cases, outputs, copies)


# --------------------------------------------------------------------------- QLinearSoftmax


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_softmax(dtype):
    """Random rows, and all-equal / near-equal rows whose exact result is a .5 tie (they pin
    the table's ``logf``, the in-order float32 sum and the quotient's rounding)."""
    rng = np.random.default_rng(840 + (dtype == S8))
    info = np.iinfo(dtype)
    cases = outputs = 0
    for t in range(300):
        if t % 2:
            D = int([1, 2, 3, 6, 16, 17, 31, 32, 33, 64, 65, 100][t % 12])
            v = int(rng.integers(info.min, info.max, endpoint=True))
            x = np.full((3, D), v, dtype)
            if t % 3 == 1:
                x[:, ::3] = max(info.min, v - int(rng.integers(1, 4)))
            k = int(rng.integers(0, 4))
            sy = F32(1.0 / (max(D * k + D // 2 + int(rng.integers(-1, 2)), 1) + 0.25))  # floor(1/sy) near a tie
            zy, axis, opset = info.min if t % 4 == 1 else zero_point(rng, dtype, "random"), -1, 13
        else:
            rank = int(rng.integers(1, 4))
            x = codes(rng, dtype, tuple(int(v) for v in rng.integers(1, 9, rank)))
            sy = [F32(1 / 256), F32(rng.uniform(0.001, 0.02)), F32(1 / 128)][t % 3]
            zy, axis = zero_point(rng, dtype, KINDS[t % 4]), int(rng.integers(-rank, rank))
            opset = 12 if t % 8 == 6 else 13
        sx = F32(rng.uniform(0.003, 0.3))
        zx = zero_point(rng, dtype, "random")
        got = run_node("QLinearSoftmax", [x, sx, np.asarray(zx), sy, np.asarray(zy, dtype)],
                       {"axis": axis, "opset": opset}, dtype, consts=(1, 2, 3, 4) if t % 3 else (),
                       static_shapes=t % 5 == 0)
        want = R.qlinear_softmax(x, sx, zx, sy, np.asarray(zy, dtype), axis=axis, opset=opset)
        outputs += check(got, want, f"QLinearSoftmax trial {t} shape {x.shape} axis {axis} opset {opset}")
        cases += 1
    report(f"test_ort_qlinear_softmax[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 300 and outputs > 10000, (cases, outputs)


# --------------------------------------------------------------------------- pools


def _pool_case(rng, t, dilated):
    r = 1 if t % 5 == 0 else 2
    sp = [int(v) for v in rng.integers(1, 10, r)]
    k = [int(min(v, rng.integers(1, 5))) for v in sp]
    if t % 7 == 0 and not dilated:
        k = list(sp)  # the whole image: QLinearGlobalAveragePool's kernel
    s = [int(v) for v in rng.integers(1, 4, r)]
    d = [int(v) for v in rng.integers(1, 3, r)] if dilated else [1] * r
    p = [int(rng.integers(0, kk)) for kk in k + k]
    if t % 7 == 0:
        p = [0] * (2 * r)
    auto_pad = ["NOTSET", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"][t % 5]
    return sp, k, s, d, p, auto_pad, (t // 3) % 2


def _geometry_ok(sp, k, s, d, p, auto_pad, cm):
    try:
        kpnd.ort_pool_geometry(sp, k, s, p, d, ceil_mode=cm, auto_pad=auto_pad)
        return True
    except ShapeError:
        return False


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_qlinear_average_pool(dtype):
    rng = np.random.default_rng(850 + (dtype == S8))
    cases = outputs = 0
    for t in range(260):
        kind = KINDS[t % 4]
        sp, k, s, _, p, auto_pad, cm = _pool_case(rng, t, False)
        cip, cl = (t // 2) % 2, (t // 4) % 2
        x = codes(rng, dtype, (int(rng.integers(1, 3)), int(rng.integers(1, 6)), *sp))
        if cl:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        sx, sy = scale(rng, kind), scale(rng, kind)
        if kind == "saturating":
            sy = F32(sx / 30)
        zx, zy = zero_point(rng, dtype, kind), zero_point(rng, dtype, kind)
        attrs = {"kernel_shape": k, "strides": s, "auto_pad": auto_pad, "ceil_mode": cm, "count_include_pad": cip,
                 "channels_last": cl}
        if auto_pad == "NOTSET":
            attrs["pads"] = p
        got = run_node("QLinearAveragePool", [x, sx, np.asarray(zx), sy, np.asarray(zy)], attrs, dtype,
                       consts=(1, 2, 3, 4))
        want = R.qlinear_average_pool(x, sx, zx, sy, zy, auto_pad=auto_pad, ceil_mode=cm, channels_last=cl,
                                      count_include_pad=cip, kernel_shape=k,
                                      pads=p if auto_pad == "NOTSET" else None, strides=s)
        outputs += check(got, want, f"QLinearAveragePool trial {t} {attrs} x {x.shape}")
        cases += 1
    report(f"test_ort_qlinear_average_pool[{dtype.__name__}]", cases=cases, outputs=outputs)
    assert cases == 260 and outputs > 8000, (cases, outputs)


@pytest.mark.parametrize("dtype", [U8, S8])
def test_ort_max_pool(dtype):
    rng = np.random.default_rng(860 + (dtype == S8))
    cases = outputs = refused = 0
    for t in range(300):
        sp, k, s, d, p, auto_pad, cm = _pool_case(rng, t, True)
        x = codes(rng, dtype, (2, 3, *sp))
        attrs = {"kernel_shape": k, "strides": s, "auto_pad": auto_pad, "ceil_mode": cm, "dilations": d}
        if auto_pad == "NOTSET":
            attrs["pads"] = p
        kwargs = dict(auto_pad=auto_pad, ceil_mode=cm, dilations=d, kernel_shape=k, strides=s,
                      pads=p if auto_pad == "NOTSET" else None)
        if not _geometry_ok(sp, k, s, d, p, auto_pad, cm):  # a negative output size: both refuse
            with pytest.raises(Exception):
                run_node("MaxPool", [x], attrs, dtype, domain="")
            with pytest.raises(ShapeError):
                R.max_pool(x, **kwargs)
            refused += 1
            continue
        got = run_node("MaxPool", [x], attrs, dtype, domain="")
        outputs += check(got, R.max_pool(x, **kwargs), f"MaxPool trial {t} {attrs} x {x.shape}")
        cases += 1
    report(f"test_ort_max_pool[{dtype.__name__}]", cases=cases, outputs=outputs, refused=refused)
    assert cases + refused == 300 and cases > 270 and outputs > 5000, (cases, outputs, refused)


def test_ort_pool_geometry_edges():
    """Hand-checked windows: ceil_mode drops a window starting in the tail pad; negative SAME
    pads truncate toward zero; an empty dilated window gives the type's minimum."""
    x = np.arange(12, dtype=U8).reshape(1, 1, 1, 12)
    for attrs, want_w in (({"kernel_shape": [1, 1], "strides": [1, 3], "ceil_mode": 1}, 4),
                          ({"kernel_shape": [1, 3], "strides": [1, 2], "pads": [0, 0, 0, 2], "ceil_mode": 1}, 6),
                          ({"kernel_shape": [1, 1], "strides": [1, 5], "auto_pad": "SAME_LOWER"}, 3)):
        got = run_node("MaxPool", [x], attrs, U8, domain="")
        want = R.max_pool(x, **attrs)
        assert want.shape[-1] == want_w
        check(got, want, f"MaxPool {attrs}")
    y = R.max_pool(np.full((1, 1, 1, 4), 9, S8), kernel_shape=[1, 3], strides=[1, 2], pads=[0, 0, 0, 2], ceil_mode=1,
                   dilations=[1, 3])
    got = run_node("MaxPool", [np.full((1, 1, 1, 4), 9, S8)], {"kernel_shape": [1, 3], "strides": [1, 2],
                                                                  "pads": [0, 0, 0, 2], "ceil_mode": 1,
                                                                  "dilations": [1, 3]}, S8, domain="")
    check(got, y, "MaxPool dilated ceil")


# --------------------------------------------------------------------------- kernels: reference == Numba


def test_pool_kernels_reference_equals_numba():
    rng = np.random.default_rng(870)
    n = 0
    for t in range(60):
        dt = (U8, S8)[t % 2]
        x = codes(rng, dt, (2, 3, int(rng.integers(1, 9)), int(rng.integers(1, 9))))
        k = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        s, d = [int(v) for v in rng.integers(1, 3, 2)], [int(v) for v in rng.integers(1, 3, 2)]
        p = [int(rng.integers(0, kk)) for kk in k + k]
        try:
            out, heads, _ = kpnd.ort_pool_geometry(x.shape[2:], k, s, p, d, ceil_mode=t % 3 == 0)
        except ShapeError:
            continue
        a = (F32(rng.uniform(0.01, 0.2)), dt(3), F32(rng.uniform(0.01, 0.2)), dt(-1 if dt == S8 else 200))
        np.testing.assert_array_equal(kpnd.average_pool_float(x, *a, k, s, heads, out, count_include_pad=t % 2),
                                      kpnd.average_pool_float_reference(x, *a, k, s, heads, out,
                                                                        count_include_pad=t % 2))
        np.testing.assert_array_equal(kpnd.max_pool(x, k, s, heads, out, d), kpnd.max_pool_reference(x, k, s, heads, out, d))
        n += 1
    assert n > 40


def test_softmax_kernel_reference_equals_numba():
    rng = np.random.default_rng(871)
    for t in range(60):
        dt = (U8, S8)[t % 2]
        D = int(rng.integers(1, 70))
        x = codes(rng, dt, (4, D))
        if t % 3 == 0:
            x[:] = x[0, 0]
        table = kql.softmax_exp_table(F32(rng.uniform(0.003, 0.3)), D, dtype=dt)
        args = (table, [F32(1 / 256), F32(0.0025), F32(0.02)][t % 3], dt(np.iinfo(dt).min if t % 2 else 7))
        np.testing.assert_array_equal(kql.qlinear_softmax(x, *args), kql.qlinear_softmax_reference(x, *args))


# --------------------------------------------------------------------------- refusals


def test_contrib_face_refusals():
    a8, u8 = np.zeros((2, 3), S8), np.zeros((3, 2), U8)
    with pytest.raises(UnsupportedError, match="int8 A with uint8 B"):
        R.qgemm(a8, 0.1, 0, u8, 0.1, 0, y_scale=0.1, y_zero_point=np.int8(0))
    with pytest.raises(UnsupportedError, match="K = 0"):
        R.qgemm(np.zeros((2, 0), U8), 0.1, 0, np.zeros((0, 2), U8), 0.1, 0)
    with pytest.raises(QuantizationValueError, match="together"):
        R.qgemm(np.zeros((2, 3), U8), 0.1, 0, u8, 0.1, 0, y_scale=0.1)
    with pytest.raises(ShapeError, match="b_scale and b_zero_point"):
        R.qgemm(np.zeros((2, 3), U8), 0.1, 0, u8, np.full(2, 0.1, F32), np.uint8(0))
    with pytest.raises(ShapeError, match="C must broadcast"):
        R.qgemm(np.zeros((2, 3), U8), 0.1, 0, u8, 0.1, 0, np.zeros((3,), np.int32))
    with pytest.raises(QuantizationValueError, match="smaller than kernel"):
        R.max_pool(np.zeros((1, 1, 4, 4), U8), kernel_shape=[2, 2], pads=[2, 0, 0, 0])
    with pytest.raises(ShapeError, match="3-D pools"):
        R.qlinear_average_pool(np.zeros((1, 1, 2, 2, 2), U8), 0.1, 0, 0.1, 0, kernel_shape=[1, 1, 1])
    with pytest.raises(QuantizationValueError, match="triples"):
        R.qlinear_concat(0.1, np.uint8(0), np.zeros(3, U8), 0.1, axis=0)
    with pytest.raises(ShapeError, match="outside axis"):
        R.qlinear_concat(0.1, np.uint8(0), np.zeros((2, 3), U8), 0.1, 0, np.zeros((3, 3), U8), 0.1, 0, axis=1)
    with pytest.raises(Exception, match="a and b must share one type"):
        R.qlinear_mul(np.zeros(3, U8), 0.1, 0, np.zeros(3, S8), 0.1, 0, 0.1, 0)

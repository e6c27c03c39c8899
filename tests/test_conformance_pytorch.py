"""refquant.backends.pytorch against torch 2.13 (CPU), compared with ``==`` (floats by bit pattern).

Each test batches its cases into a few large tensors and prints how many it compared
(``pytest -s`` shows the counts). Inputs come from ``support.edge_values`` (exact ties,
their float32 neighbours, float32-division ties, specials, seeded random values) plus
near-tie values that separate one FMA rounding from two float roundings.

Rerun: ``pytest tests/test_conformance_pytorch.py -m conformance -s``
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from support.edge_values import TIE_SCALES, float_edge_values, int_edge_values, special_floats  # noqa: E402

from refquant.backends import pytorch as P  # noqa: E402

pytestmark = [pytest.mark.conformance,
              pytest.mark.filterwarnings("ignore::UserWarning")]

TQ = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32}
RANGES = {"quint8": (0, 255), "qint8": (-128, 127), "qint32": (-2**31, 2**31 - 1)}
_BITS = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _report(name, n):
    print(f"\n[conformance pytorch] {name}: {n} cases")


def assert_same(ours, theirs, inputs=None, what=""):
    """Shape, dtype, then values (floats by bit pattern); show the first differences with their inputs."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != torch {theirs.dtype}"
    if ours.dtype.kind == "f":
        a, b = ours.view(_BITS[ours.dtype]), theirs.view(_BITS[theirs.dtype])
    else:
        a, b = ours, theirs
    bad = np.flatnonzero((a != b).reshape(-1))
    if bad.size:
        rows = [f"  [{i}] input={np.asarray(inputs).reshape(-1)[i]!r} refquant={ours.reshape(-1)[i]!r} "
                f"torch={theirs.reshape(-1)[i]!r}" for i in bad[:8]] if inputs is not None else \
            [f"  [{i}] refquant={ours.reshape(-1)[i]!r} torch={theirs.reshape(-1)[i]!r}" for i in bad[:8]]
        raise AssertionError(f"{what}: {bad.size} of {a.size} differ (NOT OK)\n" + "\n".join(rows))


def near_ties(scale, zero_point, lo, hi, rng, n=400):
    """float32 x next to (k + 1/2)·S, 1-2 ulps away: x·(1/S) + Z rounds differently with and without FMA."""
    s = np.float64(np.float32(scale))
    k = rng.integers(max(lo - zero_point, -(2**20)) - 2, min(hi - zero_point, 2**20) + 2, size=n)
    x = ((k + 0.5) * s).astype(np.float32)
    up = rng.random(n) < 0.5
    x = np.where(up, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf)))
    x2 = np.where(up, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf)))
    return np.concatenate([x, x2]).astype(np.float32)


def _per_tensor_cases(dtype, rng, n_random_scales=12):
    lo, hi = RANGES[dtype]
    cases = []
    for s in TIE_SCALES:
        for z in (lo, 0 if lo < 0 else 1, 1, 3 if lo < 0 else 129, -5 if lo < 0 else 200, hi):
            cases.append((np.float32(s), int(z)))
    for _ in range(n_random_scales):
        s = np.float32(10.0 ** rng.uniform(-4, 1))
        z = int(rng.integers(max(lo, -(2**20)), min(hi, 2**20) + 1)) | 1
        cases.append((s, min(z, hi)))
    return cases


def _x_for(scale, zp, dtype, rng):
    lo, hi = RANGES[dtype]
    np_name = {"quint8": "uint8", "qint8": "int8", "qint32": "int32"}[dtype]
    return np.concatenate([float_edge_values(scale, zp, np_name, seed=int(rng.integers(1 << 30)), n_random=128),
                           near_ties(scale, zp, lo, hi, rng)])


# ---------------------------------------------------------------------------------------------
# quantize_per_tensor / quantize_per_channel
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
def test_quantize_per_tensor(dtype):
    rng = np.random.default_rng(101)
    n = 0
    for s, z in _per_tensor_cases(dtype, rng):
        x = _x_for(s, z, dtype, rng)
        theirs = torch.quantize_per_tensor(torch.from_numpy(x), float(s), z, TQ[dtype]).int_repr().numpy()
        assert_same(P.quantize_per_tensor(x, s, z, dtype), theirs, x, f"quantize_per_tensor {dtype} S={s} Z={z}")
        n += x.size
    _report(f"quantize_per_tensor {dtype}", n)


@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
def test_quantize_per_tensor_every_length(dtype):
    """The scalar-vs-vector hazard: lengths 1..40 (AVX2 blocks of 8 and the masked tail) agree."""
    rng = np.random.default_rng(7)
    lo, hi = RANGES[dtype]
    n = 0
    for s, z in [(np.float32(1.0), 1 if lo < 0 else 11), (np.float32(0.0123457), 3 if lo < 0 else 131)]:
        pool = np.concatenate([near_ties(s, z, lo, hi, rng, n=200), special_floats(),
                               (np.arange(-40, 40) + 0.5).astype(np.float32) * s])
        for length in range(1, 41):
            for _ in range(3):
                x = rng.permutation(pool)[:length]
                theirs = torch.quantize_per_tensor(torch.from_numpy(x), float(s), z, TQ[dtype]).int_repr().numpy()
                assert_same(P.quantize_per_tensor(x, s, z, dtype), theirs, x, f"length {length}")
                n += length
    _report(f"quantize_per_tensor {dtype} lengths 1..40", n)


@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
@pytest.mark.parametrize("layout", [((16, 300), 0), ((300, 16), 1), ((3, 7, 41), 1), ((5, 2, 9, 13), 3), ((11,), 0)])
def test_quantize_per_channel(dtype, layout):
    shape, axis = layout
    rng = np.random.default_rng(202 + axis + len(shape))
    lo, hi = RANGES[dtype]
    c = shape[axis]
    scales = np.where(rng.random(c) < 0.5, rng.choice(np.array(TIE_SCALES), c),
                      10.0 ** rng.uniform(-4, 1, c)).astype(np.float32)
    zps = rng.integers(max(lo, -1000), min(hi, 1000) + 1, size=c)
    zps = np.clip(zps | 1, lo, hi).astype(np.int64)
    moved = np.moveaxis(np.zeros(shape, np.float32), axis, 0)  # (C, ...)
    per = moved[0].size
    for i in range(c):
        v = _x_for(scales[i], int(zps[i]), dtype, rng)
        moved[i] = rng.choice(v, per).reshape(moved[i].shape)
    x = np.ascontiguousarray(np.moveaxis(moved, 0, axis))
    theirs = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales.astype(np.float64)),
                                        torch.from_numpy(zps), axis, TQ[dtype]).int_repr().numpy()
    assert_same(P.quantize_per_channel(x, scales, zps, axis, dtype), theirs, x, f"quantize_per_channel {dtype}")
    _report(f"quantize_per_channel {dtype} shape {shape} axis {axis}", x.size)


@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
def test_quantize_models_are_distinguished(dtype):
    """The data separates the candidate models: only the one the face uses reaches 0 mismatches
    (backends.md §6 practice). Candidates: zero point before rounding with one FMA rounding,
    before with two float32 roundings, after rounding."""
    from refquant import make_qparams, quantize
    from refquant.quantization import QuantizeSpec
    rng = np.random.default_rng(111)
    lo, hi = RANGES[dtype]
    fmt = {"quint8": "uint8", "qint8": "int8", "qint32": "int32"}[dtype]
    cands = {o: QuantizeSpec(division="multiply_reciprocal", zero_point=o, nan="qmax")
             for o in ("before_round_fma", "before_round", "after_round")}
    per_tensor = {k: 0 for k in cands}
    per_channel = {k: 0 for k in cands}
    for s, z in _per_tensor_cases(dtype, rng, n_random_scales=4):
        x = _x_for(s, z, dtype, rng)
        x = x[np.isfinite(x)]
        qp = make_qparams(s, z, fmt)
        t = torch.quantize_per_tensor(torch.from_numpy(x), float(s), z, TQ[dtype]).int_repr().numpy()
        tc = torch.quantize_per_channel(torch.from_numpy(x[:, None]), torch.tensor([float(s)], dtype=torch.float64),
                                        torch.tensor([z]), 1, TQ[dtype]).int_repr().numpy()[:, 0]
        for k, spec in cands.items():
            ours = quantize(x, qp, spec)
            per_tensor[k] += int(np.sum(ours != t))
            per_channel[k] += int(np.sum(ours != tc))
    print(f"\n[conformance pytorch] {dtype} mismatches per candidate: per-tensor {per_tensor}, per-channel {per_channel}")
    chosen = "before_round_fma" if dtype != "qint32" else "before_round"
    assert per_tensor[chosen] == 0 and all(v > 0 for k, v in per_tensor.items() if k != chosen)
    assert per_channel["before_round"] == 0 and all(v > 0 for k, v in per_channel.items() if k != "before_round")


def test_quantize_empty():
    for dtype in TQ:
        x = np.zeros((0, 3), np.float32)
        theirs = torch.quantize_per_tensor(torch.from_numpy(x), 0.5, 0, TQ[dtype]).int_repr().numpy()
        assert_same(P.quantize_per_tensor(x, 0.5, 0, dtype), theirs, what="empty")
        theirs = torch.quantize_per_channel(torch.from_numpy(x), torch.ones(3, dtype=torch.float64),
                                            torch.zeros(3, dtype=torch.int64), 1, TQ[dtype]).int_repr().numpy()
        assert_same(P.quantize_per_channel(x, np.ones(3), np.zeros(3, np.int64), 1, dtype), theirs, what="empty pc")


# ---------------------------------------------------------------------------------------------
# dequantize
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
def test_dequantize_per_tensor(dtype):
    rng = np.random.default_rng(303)
    lo, hi = RANGES[dtype]
    np_dt = {"quint8": np.uint8, "qint8": np.int8, "qint32": np.int32}[dtype]
    q = np.concatenate([int_edge_values(np_dt, seed=1, n_random=512),
                        rng.integers(lo, hi, size=2000, endpoint=True)]).astype(np_dt)
    n = 0
    for s, z in _per_tensor_cases(dtype, rng):
        theirs = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), float(s), z).dequantize().numpy()
        assert_same(P.dequantize(q, s, z), theirs, q, f"dequantize {dtype} S={s} Z={z}")
        n += q.size
    _report(f"dequantize per-tensor {dtype}", n)


@pytest.mark.parametrize("dtype", ["quint8", "qint8", "qint32"])
@pytest.mark.parametrize("layout", [((24, 200), 0), ((200, 24), 1), ((4, 6, 50), 1)])
def test_dequantize_per_channel(dtype, layout):
    shape, axis = layout
    rng = np.random.default_rng(404 + axis)
    lo, hi = RANGES[dtype]
    np_dt = {"quint8": np.uint8, "qint8": np.int8, "qint32": np.int32}[dtype]
    c = shape[axis]
    pool = np.concatenate([int_edge_values(np_dt, seed=2, n_random=256).astype(np.int64),
                           rng.integers(lo, hi, size=500, endpoint=True)])
    q = rng.choice(pool, int(np.prod(shape))).reshape(shape).astype(np_dt)
    # float64 scales as torch stores them: half float32-exact, half not (0.37 is not a float32)
    scales = np.where(rng.random(c) < 0.5, np.float32(10.0 ** rng.uniform(-4, 1, c)), 10.0 ** rng.uniform(-4, 1, c))
    zps = np.concatenate([[lo, hi], rng.integers(lo, hi, size=c - 2, endpoint=True)]).astype(np.int64)
    t = torch._make_per_channel_quantized_tensor(torch.from_numpy(q), torch.from_numpy(scales),
                                                 torch.from_numpy(zps), axis)
    assert_same(P.dequantize(q, scales, zps, axis=axis), t.dequantize().numpy(), q, f"dequantize pc {dtype}")
    _report(f"dequantize per-channel {dtype} shape {shape}", q.size)


def test_dequantize_qint32_wraps_per_tensor_only():
    """backends.md §9: per-tensor qint32 q - zp wraps in int32; per-channel does not."""
    q = np.array([-2**31, -2**31 + 3, 2**31 - 1], np.int32)
    d = P.dequantize(q, 1.0, 5)
    assert d[0] > 0  # INT32_MIN - 5 wrapped to a positive number
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(q), 1.0, 5).dequantize().numpy()
    assert_same(d, t, q, "wrap")
    dc = P.dequantize(q.reshape(-1, 1), np.array([1.0]), np.array([5]), axis=1)
    assert dc[0, 0] < 0
    tc = torch._make_per_channel_quantized_tensor(torch.from_numpy(q.reshape(-1, 1)), torch.tensor([1.0], dtype=torch.float64),
                                                  torch.tensor([5]), 1).dequantize().numpy()
    assert_same(dc, tc, q, "no wrap per channel")


# ---------------------------------------------------------------------------------------------
# fake quantize (values, mask, autograd gradient)
# ---------------------------------------------------------------------------------------------

FQ_RANGES = [(0, 255), (-128, 127), (0, 127), (-64, 63), (-127, 127), (0, 15), (-8, 7), (-2, 1),
             (-(2**31), 2**31 - 1), (0, 0), (-32768, 32767)]


def _fq_cases(rng):
    for qmin, qmax in FQ_RANGES:
        zs = sorted({qmin, qmax, min(max(0, qmin), qmax), min(max(1, qmin), qmax),
                     int(rng.integers(qmin, qmax, endpoint=True))})
        for s in (np.float32(1.0), np.float32(0.25), np.float32(3 * 2.0**-8), np.float32(10.0 ** rng.uniform(-4, 1))):
            for z in zs:
                yield s, z, qmin, qmax


def _fq_x(s, z, qmin, qmax, rng):
    lo, hi = max(qmin, -(2**31)), min(qmax, 2**31 - 1)
    ties = ((np.arange(max(lo - z, -300) - 2, min(hi - z, 300) + 3) + 0.5) * np.float64(s)).astype(np.float32)
    rnd = rng.uniform((lo - z - 3) * float(s), (hi - z + 3) * float(s), 200).astype(np.float32)
    return np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf)),
                           near_ties(s, z, lo, hi, rng, 100), special_floats(), rnd]).astype(np.float32)


def _torch_fq_grad(fn, x, dy, *args):
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y = fn(xt, *args)
    y.backward(torch.from_numpy(dy))
    return y.detach().numpy(), xt.grad.numpy()


def _dy(rng, n):
    dy = rng.standard_normal(n).astype(np.float32)
    dy[::17] = np.nan
    dy[5::19] = -np.inf
    return dy


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.float16])
def test_fake_quantize_per_tensor_affine(x_dtype):
    rng = np.random.default_rng(505)
    n = 0
    cases = list(_fq_cases(rng))
    if x_dtype is not np.float32:
        cases = cases[::4]
    for s, z, qmin, qmax in cases:
        with np.errstate(over="ignore"):  # float16: huge test values become inf, which is data
            x = _fq_x(s, z, qmin, qmax, rng).astype(x_dtype)
        dy = _dy(rng, x.size).astype(x_dtype)
        yt, mt = torch.ops.aten.fake_quantize_per_tensor_affine_cachemask(torch.from_numpy(x), float(s), z, qmin, qmax)
        y, m = P.fake_quantize_per_tensor_affine_cachemask(x, s, z, qmin, qmax)
        what = f"fake_quantize_per_tensor_affine S={s} Z={z} [{qmin},{qmax}] {np.dtype(x_dtype)}"
        assert_same(y, yt.numpy(), x, what + " y")
        assert_same(m, mt.numpy(), x, what + " mask")
        y2, gt = _torch_fq_grad(torch.fake_quantize_per_tensor_affine, x, dy, float(s), z, qmin, qmax)
        assert_same(P.fake_quantize_per_tensor_affine(x, s, z, qmin, qmax), y2, x, what + " y (autograd op)")
        assert_same(P.fake_quantize_per_tensor_affine_cachemask_backward(dy, m), gt, x, what + " grad")
        n += x.size
    _report(f"fake_quantize_per_tensor_affine (y, mask, grad) {np.dtype(x_dtype)}", n)


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("layout", [((8, 500), 0), ((500, 8), 1), ((2, 8, 250), 1)])
def test_fake_quantize_per_channel_affine(x_dtype, layout):
    shape, axis = layout
    rng = np.random.default_rng(606 + axis)
    n = 0
    ranges = FQ_RANGES if x_dtype is np.float32 else FQ_RANGES[::3]
    for qmin, qmax in ranges:
        c = shape[axis]
        scales = np.where(rng.random(c) < 0.5, rng.choice(np.array(TIE_SCALES), c),
                          10.0 ** rng.uniform(-4, 1, c)).astype(np.float32)
        zps = rng.integers(qmin, qmax, size=c, endpoint=True)
        zps[:2] = [qmin, qmax]
        moved = np.moveaxis(np.zeros(shape, np.float32), axis, 0)
        for i in range(c):
            moved[i] = rng.choice(_fq_x(scales[i], int(zps[i]), qmin, qmax, rng), moved[i].size).reshape(moved[i].shape)
        with np.errstate(over="ignore"):  # float16: huge test values become inf, which is data
            x = np.ascontiguousarray(np.moveaxis(moved, 0, axis)).astype(x_dtype)
        dy = _dy(rng, x.size).reshape(shape).astype(x_dtype)
        args = (torch.from_numpy(scales), torch.from_numpy(zps.astype(np.int32)), axis, qmin, qmax)
        yt, mt = torch.ops.aten.fake_quantize_per_channel_affine_cachemask(torch.from_numpy(x), *args)
        y, m = P.fake_quantize_per_channel_affine_cachemask(x, scales, zps, axis, qmin, qmax)
        what = f"fake_quantize_per_channel_affine [{qmin},{qmax}] {np.dtype(x_dtype)}"
        assert_same(y, yt.numpy(), x, what + " y")
        assert_same(m, mt.numpy(), x, what + " mask")
        y2, gt = _torch_fq_grad(torch.fake_quantize_per_channel_affine, x, dy, *args)
        assert_same(P.fake_quantize_per_channel_affine(x, scales, zps, axis, qmin, qmax), y2, x, what + " y (op)")
        assert_same(P.fake_quantize_per_channel_affine_cachemask_backward(dy, m), gt, x, what + " grad")
        n += x.size
    _report(f"fake_quantize_per_channel_affine (y, mask, grad) {np.dtype(x_dtype)} {shape} axis {axis}", n)


def test_fake_quantize_empty():
    x = np.zeros((0, 4), np.float32)
    y, m = P.fake_quantize_per_tensor_affine_cachemask(x, 0.5, 0, -128, 127)
    yt, mt = torch.ops.aten.fake_quantize_per_tensor_affine_cachemask(torch.from_numpy(x), 0.5, 0, -128, 127)
    assert_same(y, yt.numpy(), what="empty")
    assert_same(m, mt.numpy(), what="empty mask")
    y = P.fake_quantize_per_channel_affine(x, np.ones(4, np.float32), np.zeros(4, np.int32), 1, -128, 127)
    yt = torch.fake_quantize_per_channel_affine(torch.from_numpy(x), torch.ones(4), torch.zeros(4, dtype=torch.int32),
                                                1, -128, 127)
    assert_same(y, yt.numpy(), what="empty pc")


def test_fake_quantize_learnable_per_tensor_affine():
    """Forward values and the per-element gradients (one element per torch call, so torch's
    float32 sum is exact); totals over a batch within float32 rounding."""
    rng = np.random.default_rng(707)
    n = 0
    for i in range(300):
        qmin, qmax = [(-128, 127), (0, 255), (-8, 7), (0, 15)][i % 4]
        s = np.float32(10.0 ** rng.uniform(-3, 0)) if i % 3 else np.float32(TIE_SCALES[i % len(TIE_SCALES)])
        zf = np.float32(rng.uniform(qmin - 2, qmax + 2)) if i % 5 else np.float32(rng.integers(qmin, qmax + 1))
        x = np.concatenate([near_ties(s, int(zf), qmin, qmax, rng, 2)[:2], special_floats()[i % 17:i % 17 + 1],
                            rng.uniform((qmin - zf - 3) * s, (qmax - zf + 3) * s, 1).astype(np.float32)])
        gf = [1.0, 0.5, 1 / 3][i % 3]
        for j in range(x.size):
            xj = x[j:j + 1]
            dy = _dy(rng, 1) if j == 3 else rng.standard_normal(1).astype(np.float32)
            X = torch.from_numpy(xj.copy()).requires_grad_()
            S = torch.tensor([s], requires_grad=True)
            Z = torch.tensor([zf], requires_grad=True)
            yt = torch._fake_quantize_learnable_per_tensor_affine(X, S, Z, qmin, qmax, gf)
            yt.backward(torch.from_numpy(dy))
            what = f"learnable S={s} Z={zf} [{qmin},{qmax}] gf={gf}"
            assert_same(P.fake_quantize_learnable_per_tensor_affine(xj, s, zf, qmin, qmax, gf), yt.detach().numpy(),
                        xj, what + " y")
            dx, ds, dz = P.fake_quantize_learnable_per_tensor_affine_backward(dy, xj, s, zf, qmin, qmax, gf)
            assert_same(dx, X.grad.numpy(), xj, what + " dx")
            assert_same(ds, S.grad.numpy(), xj, what + " dscale")
            assert_same(dz, Z.grad.numpy(), xj, what + " dzero_point")
            n += 1
    # totals over a batch: the summation order differs from torch's; within 1e-5 relative
    x = rng.uniform(-3, 3, 5000).astype(np.float32)
    dy = rng.standard_normal(5000).astype(np.float32)
    X = torch.from_numpy(x.copy()).requires_grad_()
    S, Z = torch.tensor([0.05], requires_grad=True), torch.tensor([3.3], requires_grad=True)
    torch._fake_quantize_learnable_per_tensor_affine(X, S, Z, -128, 127, 1.0).backward(torch.from_numpy(dy))
    dx, ds, dz = P.fake_quantize_learnable_per_tensor_affine_backward(dy, x, np.float32(0.05), np.float32(3.3), -128, 127)
    assert_same(dx, X.grad.numpy(), x, "learnable batch dx")
    np.testing.assert_allclose(ds, S.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(dz, Z.grad.numpy(), rtol=1e-5)
    _report("fake_quantize_learnable_per_tensor_affine (y, dx, dscale, dzero_point per element)", n)


# ---------------------------------------------------------------------------------------------
# observers: choose_qparams vs MinMaxObserver / PerChannelMinMaxObserver
# ---------------------------------------------------------------------------------------------

OBS_CONFIGS = [
    (dt, qs, rr, qmin, qmax)
    for dt in ("quint8", "qint8", "qint32", "int16", "uint16")
    for qs in ("affine", "symmetric")
    for rr in (False, True)
    for qmin, qmax in ((None, None), (-8, 7) if dt not in ("quint8", "uint16") else (0, 15), (0, 255) if dt != "qint8" else (-100, 27))
    if not (qs == "symmetric" and rr and dt == "quint8")
]


def _min_max_pairs(rng, n=1500):
    f = np.finfo(np.float32)
    lo = np.concatenate([[0, 0, -1, 0, -f.tiny, -f.smallest_subnormal, -1e-30, -3e38, -f.max, -5, 1, 2.5, -2.5, -f.max],
                         -(10.0 ** rng.uniform(-8, 4, n)), rng.uniform(-3, 3, n)]).astype(np.float32)
    hi = np.concatenate([[0, 1, 0, f.smallest_subnormal, 0, f.smallest_subnormal, 1e-30, 3e38, f.max, -5, 1, 2.5, 7, 0],
                         10.0 ** rng.uniform(-8, 4, n), rng.uniform(-3, 3, n)]).astype(np.float32)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    same = rng.random(lo.size) < 0.05
    hi = np.where(same, lo, hi)  # min == max
    # NaN passes torch's `min > max` check and flows into the formulas; infinite ends give inf/NaN scales
    lo = np.concatenate([lo, np.float32([np.nan, -1, np.nan, -np.inf, -2, -np.inf])])
    hi = np.concatenate([hi, np.float32([1, np.nan, np.nan, 2, np.inf, np.inf])])
    return lo, hi


def _observer(dt, qs, per_channel, rr, qmin, qmax):
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    tdt = getattr(torch, dt)
    if per_channel:
        return PerChannelMinMaxObserver(ch_axis=0, dtype=tdt, qscheme=getattr(torch, f"per_channel_{qs}"),
                                        reduce_range=rr, quant_min=qmin, quant_max=qmax)
    return MinMaxObserver(dtype=tdt, qscheme=getattr(torch, f"per_tensor_{qs}"), reduce_range=rr,
                          quant_min=qmin, quant_max=qmax)


def _torch_or_error(fn):
    try:
        s, z = fn()
        return s.numpy(), z.numpy()
    except Exception as e:  # noqa: BLE001 - what torch raises is the expected value
        return type(e)


def _ours_or_error(fn):
    try:
        return fn()
    except (ValueError, TypeError, NotImplementedError) as e:
        return type(e)


def _same_result(ours, theirs, what):
    if isinstance(theirs, type) or isinstance(ours, type):
        assert isinstance(ours, type) and isinstance(theirs, type), f"{what}: refquant {ours!r} vs torch {theirs!r}"
        return
    assert_same(ours[0], theirs[0], what=what + " scale")
    assert_same(ours[1], theirs[1], what=what + " zero_point")


@pytest.mark.parametrize("config", OBS_CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_choose_qparams_per_channel(config):
    dt, qs, rr, qmin, qmax = config
    rng = np.random.default_rng(808)
    lo, hi = _min_max_pairs(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        o = _observer(dt, qs, True, rr, qmin, qmax)
    o.min_val, o.max_val = torch.from_numpy(lo), torch.from_numpy(hi)
    theirs = _torch_or_error(o.calculate_qparams)
    ours = _ours_or_error(lambda: P.choose_qparams(lo, hi, dtype=dt, qscheme=f"per_channel_{qs}", reduce_range=rr,
                                                  quant_min=qmin, quant_max=qmax))
    _same_result(ours, theirs, f"choose_qparams per_channel {config}")
    _report(f"choose_qparams per_channel_{qs} {dt} rr={rr} range={qmin, qmax}", lo.size)


def test_choose_qparams_per_channel_float_qparams():
    rng = np.random.default_rng(809)
    lo, hi = _min_max_pairs(rng)
    n = 0
    for dt in ("quint8", "qint8"):
        o = _observer(dt, "affine_float_qparams", True, False, None, None)
        o.min_val, o.max_val = torch.from_numpy(lo), torch.from_numpy(hi)
        _same_result(P.choose_qparams(lo, hi, dtype=dt, qscheme="per_channel_affine_float_qparams"),
                     _torch_or_error(o.calculate_qparams), f"float_qparams {dt}")
        n += lo.size
    _report("choose_qparams per_channel_affine_float_qparams", n)


@pytest.mark.parametrize("qs", ["affine", "symmetric"])
def test_choose_qparams_per_tensor(qs):
    rng = np.random.default_rng(909)
    lo, hi = _min_max_pairs(rng, n=40)
    specials = [(np.inf, -np.inf), (np.nan, 1.0), (-1.0, np.nan), (1.0, -1.0), (-np.inf, 2.0), (-2.0, np.inf),
                (-np.inf, np.inf), (0.0, 0.0)]
    lo = np.concatenate([lo, np.float32([a for a, _ in specials])])
    hi = np.concatenate([hi, np.float32([b for _, b in specials])])
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for config in [c for c in OBS_CONFIGS if c[1] == qs]:
            dt, _, rr, qmin, qmax = config
            o = _observer(dt, qs, False, rr, qmin, qmax)
            for a, b in zip(lo, hi):
                o.min_val, o.max_val = torch.tensor(a), torch.tensor(b)
                theirs = _torch_or_error(o.calculate_qparams)
                ours = _ours_or_error(lambda: P.choose_qparams(a, b, dtype=dt, qscheme=f"per_tensor_{qs}",
                                                               reduce_range=rr, quant_min=qmin, quant_max=qmax))
                _same_result(ours, theirs, f"choose_qparams per_tensor {config} min={a!r} max={b!r}")
                n += 1
    _report(f"choose_qparams per_tensor_{qs} (all dtypes, reduce_range, custom ranges)", n)


def test_choose_qparams_refusals_match_torch():
    """Configurations torch's observers refuse are refused too."""
    bad = [("quint8", "symmetric", True, None, None), ("qint8", "affine", False, 1, 10), ("qint8", "affine", False, 5, 5),
           ("qint8", "affine", False, -200, 200), ("qint32", "affine", False, 0, 2**32 - 1)]
    for dt, qs, rr, qmin, qmax in bad:
        def theirs():
            o = _observer(dt, qs, False, rr, qmin, qmax)
            o.min_val, o.max_val = torch.tensor(-1.0), torch.tensor(1.0)
            return o.calculate_qparams()
        t = _torch_or_error(theirs)
        ours = _ours_or_error(lambda: P.choose_qparams(-1.0, 1.0, dtype=dt, qscheme=f"per_tensor_{qs}", reduce_range=rr,
                                                       quant_min=qmin, quant_max=qmax))
        assert isinstance(t, type) and isinstance(ours, type), (dt, qs, rr, qmin, qmax, t, ours)


def test_choose_qparams_dynamic():
    """ChooseQuantizationParams via torch._choose_qparams_per_tensor (quint8) and
    torch.quantize_per_tensor_dynamic (quint8, qint8), with and without reduce_range."""
    rng = np.random.default_rng(1001)
    lo, hi = _min_max_pairs(rng, n=300)
    with np.errstate(invalid="ignore", over="ignore"):
        keep = np.isfinite(hi - lo)
    lo, hi = lo[keep], hi[keep]
    n = 0
    for a, b in zip(lo, hi):
        x = torch.tensor([a, b])
        for rr in (False, True):
            s, z = torch._choose_qparams_per_tensor(x, rr)
            ours_s, ours_z = P.choose_qparams_dynamic(a, b, reduce_range=rr)
            assert_same(ours_s, np.float32(s), what=f"dynamic scale min={a!r} max={b!r} rr={rr}")
            assert ours_z == z, f"dynamic zero point min={a!r} max={b!r} rr={rr}: {ours_z} != {z}"
            q = torch.quantize_per_tensor_dynamic(x, torch.qint8, rr)
            ours_s, ours_z = P.choose_qparams_dynamic(a, b, qmin=-128, qmax=127, reduce_range=rr)
            assert_same(ours_s, np.float32(q.q_scale()), what=f"dynamic qint8 scale min={a!r} max={b!r} rr={rr}")
            assert ours_z == q.q_zero_point(), f"dynamic qint8 zero point min={a!r} max={b!r} rr={rr}"
            n += 2
    _report("choose_qparams_dynamic (quint8, qint8; reduce_range)", n)

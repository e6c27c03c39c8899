"""refquant.kernels._gemm_vnni / _gemv_vnni: the AVX-512 VNNI ``vpdpbusd`` GEMM and GEMV against
gemm_reference bit for bit (random, edge and extreme codes, K not a multiple of 4/16/64, ragged M/N
against the 6×64 tile and the 64-column GEMV blocks, zero points per tensor/row/column, several K
blocks, int32 wrap and the exact model's overflow rule, 1 vs 2 threads), the operand layouts against
their NumPy twins, and the generated machine code (``vpdpbusd`` on zmm registers).

Skipped without AVX512-VNNI or with the JIT disabled (``NUMBA_DISABLE_JIT=1``): the kernels are Numba
intrinsics. The NumPy twins and the error checks run everywhere."""

from __future__ import annotations

import platform
import zlib

import numba
import numpy as np
import pytest
from support import edge_values as ev

from refquant.cpu import cpu_features
from refquant.errors import (
    AccumulatorOverflowError,
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)
from refquant.kernels import _gemm_vnni as vn
from refquant.kernels import _gemv_vnni as gv
from refquant.kernels import _vnni_operands as vo
from refquant.kernels.gemm import gemm_reference

pytestmark = pytest.mark.kernels


def _skip_reason() -> str:
    if numba.config.DISABLE_JIT:
        return "the VNNI kernels are Numba intrinsics: the JIT is disabled (NUMBA_DISABLE_JIT=1)"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"needs x86-64 with AVX512-VNNI, this is {platform.machine()}"
    missing = [f for f in ("avx512_vnni", "avx512bw") if f not in cpu_features()]
    if missing:
        return f"needs a CPU with AVX512-VNNI: /proc/cpuinfo lacks {', '.join(missing)}"
    return "Numba compiles for another CPU (NUMBA_CPU_NAME)"


needs_vnni = pytest.mark.skipif(not vn.vnni_available(), reason=_skip_reason())

DTYPE_PAIRS = [(np.uint8, np.int8), (np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)]
PAIR_IDS = ["u8s8", "s8u8", "s8s8", "u8u8"]

# (M, K, N). GEMV (M ≤ 4): K around the 4-row quads and the 8/16/32-row sweeps, N around the
# 64-column blocks, N = 4096 (8-row sweeps). GEMM (M > 4): M around the 6-row tile, N around 64,
# K around 4/16/64 and past one K block (KC4 = 256 quads = 1024 rows).
SHAPES = [(1, 1, 1), (1, 3, 65), (2, 17, 64), (3, 33, 129), (4, 64, 63), (1, 1023, 130), (2, 257, 4096),
          (5, 5, 9), (6, 16, 64), (7, 63, 65), (13, 65, 127), (12, 1025, 70), (25, 2050, 33), (67, 100, 200)]


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _assert_same(got, want, what=""):
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape} ({what})"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype} ({what})"
    if not np.array_equal(got, want):
        idx = np.argwhere(got != want)[:5]
        rows = "; ".join(f"{tuple(i)}: got {got[tuple(i)]} want {want[tuple(i)]}" for i in idx)
        pytest.fail(f"{int((got != want).sum())} of {got.size} differ ({what}); first: {rows}")


def _zero_points(rng, da, db, M, N):
    """Per tensor (Python int and operand-dtype scalar), per row of a, per column of b, and mixed."""
    return [(0, 0), (int(_rand(rng, da, ())), int(_rand(rng, db, ()))),
            (_rand(rng, da, ())[()], _rand(rng, db, ())[()]), (_rand(rng, da, (M,)), _rand(rng, db, (N,))),
            (int(_rand(rng, da, ())), _rand(rng, db, (N,)))]


# ------------------------------------------------------------------ layouts (NumPy twins)

@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=PAIR_IDS)
def test_layout_twins_hold_the_offset_codes(da, db):
    """offset_a_reference / pack_b_reference hold â = a + c_a and b̂ = b - c_b, zero padded, where the
    kernels expect them (runs without the JIT: the spec of the layouts)."""
    rng = np.random.default_rng(1)
    M, K, N = 7, 10, 70
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    ah = vo.offset_a_reference(a)                                   # (M, 12) uint8
    assert ah.shape == (M, 12) and ah.dtype == np.uint8
    np.testing.assert_array_equal(ah[:, :K].astype(np.int64), a.astype(np.int64) + (128 if da == np.int8 else 0))
    assert not ah[:, K:].any()
    bp = vn.pack_b_reference(b)                                     # (2, 3, 64, 4) int8
    assert bp.shape == (2, 3, vn.NR, 4) and bp.dtype == np.int8
    assert sorted(vn.PANEL_ORDER) == list(range(vn.NR))             # a permutation of the panel's columns
    bhat = b.astype(np.int64) - (128 if db == np.uint8 else 0)
    pos = np.argsort(vn.PANEL_ORDER)                                # column -> lane position
    for n in (0, 5, 17, 63, 64, 69):
        for k in (0, 5, 9):
            assert bp[n // vn.NR, k // 4, pos[n % vn.NR], k % 4] == bhat[k, n], (k, n)
    natural = bp[:, :, pos]
    assert not natural[1, :, N - vn.NR:].any() and not natural[:, 2, :, K % 4:].any()  # padded columns, rows


@needs_vnni
@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("K,N", [(1, 1), (7, 64), (16, 65), (1029, 130)])
def test_packers_equal_their_twins(K, N, da, db):
    """prepare (â, row terms) and _pack_b (b̂ quads in panel order, column sums) against the NumPy twins."""
    rng = np.random.default_rng(K * 1000 + N)
    M = 5
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    za, zb = _rand(rng, da, (M,)).astype(np.int64), _rand(rng, db, (N,)).astype(np.int64)
    ca, cb = (128 if da == np.int8 else 0), (128 if db == np.uint8 else 0)
    K4, Mp, Np = -(-K // 4), -(-M // vn.MR) * vn.MR, -(-N // vn.NR) * vn.NR
    ahat, rowv, zbv = np.empty((M, 4 * K4), np.uint8), np.empty(2 * Mp, np.int32), np.empty(Np, np.int32)
    vo.prepare(a, za, zb, ca, cb, ahat, rowv, zbv)
    np.testing.assert_array_equal(ahat, vo.offset_a_reference(a))
    r = vo.offset_a_reference(a).astype(np.int64).sum(axis=1)
    want_u = (K * (za + ca) - r).astype(np.int32)                   # u_m of eq. (2), mod 2^32
    np.testing.assert_array_equal(rowv.reshape(-1, 2)[:M], np.stack([want_u, -(za + ca)], axis=1))
    assert not rowv[2 * M:].any()
    np.testing.assert_array_equal(zbv[:N], zb - cb)
    want = vn.pack_b_reference(b)                                   # (Np/NR, K4, NR, 4)
    packed, colsum = np.full(Np * K4, 7, np.int32), np.full(Np, 7, np.int32)
    vn._pack_b(np.ascontiguousarray(b).reshape(-1), K, N, 0, Np // vn.NR, gv.sweep_rows(N), packed, colsum)
    np.testing.assert_array_equal(packed.view(np.int8).reshape(want.shape), want)
    np.testing.assert_array_equal(colsum, want.astype(np.int64).sum(axis=(1, 3)).reshape(-1))


# ------------------------------------------------------------------ bit-exactness

@needs_vnni
@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("M,K,N", SHAPES, ids=lambda s: str(s))
def test_random_equals_reference(M, K, N, da, db):
    rng = np.random.default_rng(zlib.crc32(repr((M, K, N, np.dtype(da).name, np.dtype(db).name)).encode()))
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    for za, zb in _zero_points(rng, da, db, M, N):
        want = gemm_reference(a, b, za, zb)
        _assert_same(vn.gemm_vnni(a, b, za, zb), want, f"exact {M}x{K}x{N}")
        _assert_same(vn.gemm_vnni(a, b, za, zb, acc_model="wrap"), want, f"wrap {M}x{K}x{N}")


@needs_vnni
@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("M", [1, 4, 9])
def test_edge_codes(M, da, db):
    """The edge codes of each format (extremes, ±2^k ± 2, 0) as operands and as zero points, K = 65."""
    va = ev.int_edge_values(np.dtype(da).name, n_random=0)
    vb = ev.int_edge_values(np.dtype(db).name, n_random=0)
    K, N = 65, 70
    a = np.resize(va, (M, K)).astype(da)
    b = np.resize(vb[::-1], (K, N)).astype(db)
    for za, zb in ((va[0], vb[-1]), (va[-1], vb[0]), (np.resize(va, M).astype(da), np.resize(vb, N).astype(db))):
        za = da(za) if np.ndim(za) == 0 else za
        zb = db(zb) if np.ndim(zb) == 0 else zb
        _assert_same(vn.gemm_vnni(a, b, za, zb), gemm_reference(a, b, za, zb), f"edge M={M}")


@needs_vnni
@pytest.mark.parametrize("da,db", DTYPE_PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("M,K", [(1, 1), (3, 255), (4, 1030), (7, 257), (13, 1025)])
def test_extreme_codes(M, K, da, db):
    """Every code at one end of its format, zero points at the other (|a - za| = |b - zb| = 255): each
    vpdpbusd lane adds four products of the largest magnitude, 255·128 after the offsets."""
    ia, ib = np.iinfo(da), np.iinfo(db)
    N = 67
    for av, zav, bv, zbv in ((ia.max, ia.min, ib.min, ib.max), (ia.min, ia.max, ib.min, ib.max),
                             (ia.max, ia.min, ib.max, ib.min), (ia.max, 0, ib.min, 0), (ia.min, 0, ib.max, 0)):
        a, b = np.full((M, K), av, da), np.full((K, N), bv, db)
        want = gemm_reference(a, b, da(zav), db(zbv))
        _assert_same(vn.gemm_vnni(a, b, da(zav), db(zbv)), want, f"a={av} za={zav} b={bv} zb={zbv}")


def _overflowing(K):
    """u8 a = 255, s8 b = -128 with zb = 127: every product is 255·(-255), so |acc| = 65025·K."""
    return np.full((3, K), 255, np.uint8), np.full((K, 70), -128, np.int8), 0, np.int8(127)


@needs_vnni
@pytest.mark.parametrize("M", [1, 9])
def test_wrap_model_modulo_2_32(M):
    """K·65025 > 2^31: acc_model="wrap" returns eq. (1) mod 2^32, as the reference does."""
    K = 40001
    a, b, za, zb = _overflowing(K)
    a = np.resize(a, (M, K))
    b[::7] = 127  # mixed signs: the wrapped sum is not a multiple of one product
    _assert_same(vn.gemm_vnni(a, b, za, zb, acc_model="wrap"), gemm_reference(a, b, za, zb, acc_model="wrap"),
                 "wrap")


@needs_vnni
def test_exact_model_overflow_rule():
    """acc_model="exact" with values outside int32: the same warning and wrapped result as the reference,
    or AccumulatorOverflowError with on_overflow="raise"."""
    a, b, za, zb = _overflowing(40000)
    with pytest.warns(AccumulatorOverflowWarning, match="outside"):
        want = gemm_reference(a, b, za, zb)
    with pytest.warns(AccumulatorOverflowWarning, match="outside"):
        got = vn.gemm_vnni(a, b, za, zb)
    _assert_same(got, want, "exact, overflowing")
    with pytest.raises(AccumulatorOverflowError, match="acc_model='exact'"):
        vn.gemm_vnni(a, b, za, zb, on_overflow="raise")


@needs_vnni
@pytest.mark.parametrize("M", [2, 8])
def test_exact_model_large_k_in_range(M):
    """K > 2^15 with a bound above int32 but values inside it: the chunked int64 path, no warning."""
    rng = np.random.default_rng(M)
    K = 40000
    a, b = _rand(rng, np.uint8, (M, K)), _rand(rng, np.int8, (K, 19))
    with np.testing.assert_no_warnings():
        got = vn.gemm_vnni(a, b, np.uint8(200), np.int8(-3))
    _assert_same(got, gemm_reference(a, b, np.uint8(200), np.int8(-3)), "exact, large K")


@needs_vnni
@pytest.mark.parametrize("M,K,N", [(1, 4096, 1100), (3, 1030, 2048), (64, 1025, 160), (67, 1101, 131)])
def test_threads_bit_identical(M, K, N):
    """1 and 2 Numba threads (disjoint output blocks, K in order) give the same bits as the reference."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads (NUMBA_NUM_THREADS >= 2)")
    rng = np.random.default_rng(M + K + N)
    a, b = _rand(rng, np.int8, (M, K)), _rand(rng, np.uint8, (K, N))
    za, zb = _rand(rng, np.int8, (M,)), _rand(rng, np.uint8, ())[()]
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        assert vn.use_threads(M * N * K), "shape below the threading threshold"
        two = vn.gemm_vnni(a, b, za, zb)
        numba.set_num_threads(1)
        one = vn.gemm_vnni(a, b, za, zb)
    finally:
        numba.set_num_threads(old)
    _assert_same(two, one, "2 threads vs 1")
    _assert_same(two, gemm_reference(a, b, za, zb), "2 threads vs reference")


@needs_vnni
def test_gemm_wrap_matches_the_avx2_call():
    """gemm_wrap takes what _gemm_fast.gemm_wrap takes ((M,), (N,) int64 zero points, an out array)."""
    rng = np.random.default_rng(3)
    a, b = _rand(rng, np.uint8, (10, 33)), _rand(rng, np.int8, (33, 65))
    za, zb = _rand(rng, np.uint8, (10,)), _rand(rng, np.int8, (65,))
    out = np.empty((10, 65), np.int32)
    assert vn.gemm_wrap(a, b, za.astype(np.int64), zb.astype(np.int64), out) is out
    _assert_same(out, gemm_reference(a, b, za, zb), "gemm_wrap")
    for M, K, N in ((0, 3, 4), (3, 0, 4), (3, 4, 0)):
        got = vn.gemm_wrap(np.ones((M, K), np.uint8), np.ones((K, N), np.int8), np.zeros(M, np.int64),
                           np.zeros(N, np.int64), np.full((M, N), 5, np.int32))
        _assert_same(got, gemm_reference(np.ones((M, K), np.uint8), np.ones((K, N), np.int8)), f"{M}x{K}x{N}")


# ------------------------------------------------------------------ machine code, availability, errors

@needs_vnni
@pytest.mark.parametrize("M", [1, 7])
def test_compiles_to_vpdpbusd_on_zmm(M):
    """The GEMV sweep (M = 1) and the GEMM packer and micro-kernel (M = 7) are vpdpbusd on zmm registers,
    never the saturating vpdpbusds (uncached twins of the entry points, their assembly inspected)."""
    a, b = np.ones((M, 8), np.uint8), np.ones((8, 64), np.int8)
    args = (a, np.zeros(1, np.int64), np.zeros(1, np.int64), 0, 0, b.reshape(-1), 64, np.empty(M * 64, np.int32))
    if M == 1:
        twin, args = numba.njit(vn._gemv.py_func), (*args, gv.sweep_rows(64), M)
    else:
        twin, args = numba.njit(vn._gemm.py_func), (*args, 1, gv.sweep_rows(64))
    twin(*args)
    asm = "\n".join(twin.inspect_asm(sig) for sig in twin.signatures)
    lines = [line.strip() for line in asm.splitlines() if "vpdpbusd" in line]
    assert lines, "no vpdpbusd in the generated code"
    assert all("zmm" in line for line in lines), lines[:5]
    assert not any("vpdpbusds" in line for line in lines), "the saturating form must not appear"


def test_available_is_false_without_the_jit():
    if numba.config.DISABLE_JIT:
        assert not vn.vnni_available()


def test_unavailable_raises_unsupported():
    if vn.vnni_available():
        pytest.skip("VNNI available here")
    with pytest.raises(UnsupportedError, match="AVX512-VNNI"):
        vn.gemm_vnni(np.ones((2, 3), np.uint8), np.ones((3, 4), np.int8))


def test_bad_arguments_raise_like_gemm():
    a, b = np.ones((2, 3), np.uint8), np.ones((3, 4), np.int8)
    with pytest.raises(ShapeError, match="K = a.shape"):
        vn.gemm_vnni(a, np.ones((4, 4), np.int8))
    with pytest.raises(QuantizationValueError, match=r"\[0, 255\]"):
        vn.gemm_vnni(a, b, 300, 0)
    with pytest.raises(QuantizationTypeError, match="dtype of its tensor"):
        vn.gemm_vnni(a, b, np.int16(3), 0)
    with pytest.raises(ShapeError, match="4 elements"):
        vn.gemm_vnni(a, b, 0, np.zeros(3, np.int8))
    with pytest.raises(UnsupportedError, match="saturates"):
        vn.gemm_vnni(a, b, acc_model="pairwise_sat16_u8s8")
    with pytest.raises(QuantizationTypeError, match="dtype int8 or uint8"):
        vn.gemm_vnni(a.astype(np.int16), b)

"""refquant.kernels._gemm_fast: the AVX2 vpmaddwd GEMM against gemm_reference (random, extreme,
odd K, several K blocks, ragged M/N, int32 wrap), its packing against NumPy twins, and the
dispatch of refquant.kernels.gemm (fast path where available, BLAS fallback elsewhere)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from refquant.kernels import _gemm_fast as gf
from refquant.kernels.gemm import gemm, gemm_reference

pytestmark = pytest.mark.kernels

needs_kernel = pytest.mark.skipif(not gf.available(), reason="needs x86-64 AVX2 and the JIT enabled")

# (M, K, N): tiny, ragged against MR = 6 / NR = 16, odd K, K = 1, several K blocks (K2 > 256)
SHAPES = [(1, 1, 1), (6, 2, 16), (7, 5, 9), (13, 33, 17), (12, 1, 32), (5, 1537, 31), (25, 600, 47)]
DTYPE_PAIRS = [(np.uint8, np.int8), (np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)]


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _operands(seed, M, K, N, da, db):
    rng = np.random.default_rng(seed)
    return (_rand(rng, da, (M, K)), _rand(rng, db, (K, N)),
            _rand(rng, da, (M,)).astype(np.int64), _rand(rng, db, (N,)).astype(np.int64))


@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 5, 9), (13, 4, 17), (6, 3, 33)])
def test_packing_equals_numpy_twins(M, K, N, da, db):
    a, b, za, zb = _operands(1, M, K, N, da, db)
    ap = np.empty(-(-M // gf.MR) * ((K + 1) // 2) * gf.MR, np.int32)
    gf.pack_a(a, za.astype(np.int32), ap)
    np.testing.assert_array_equal(ap.view(np.int16), gf.pack_a_reference(a, za).ravel())
    bp = np.empty(gf.packed_b_size(K, N), np.int32)
    gf.pack_b(b, zb.astype(np.int32), bp)
    np.testing.assert_array_equal(bp.view(np.int16), gf.pack_b_reference(b, zb).ravel())


@needs_kernel
@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_random_equals_reference(M, K, N, da, db):
    a, b, za, zb = _operands(M * 1000 + K + N, M, K, N, da, db)
    out = gf.gemm_wrap(a, b, za, zb, np.empty((M, N), np.int32))
    np.testing.assert_array_equal(out, gemm_reference(a, b, za.astype(da), zb.astype(db)))


@needs_kernel
@pytest.mark.parametrize("K", [1, 2, 511, 513, 1024])
def test_extreme_operands(K):
    """|a - za| = |b - zb| = 255 everywhere: each vpmaddwd lane is 2·255² = 130050, the maximum."""
    M, N = 7, 19
    for av, zav, bv, zbv in ((-128, 127, -128, 127), (-128, 127, 127, -128), (-128, 0, -128, 0)):
        a = np.full((M, K), av, np.int8)
        b = np.full((K, N), bv, np.int8)
        za, zb = np.full(M, zav, np.int64), np.full(N, zbv, np.int64)
        out = gf.gemm_wrap(a, b, za, zb, np.empty((M, N), np.int32))
        np.testing.assert_array_equal(out, gemm_reference(a, b, za.astype(np.int8), zb.astype(np.int8)))
    a = np.full((M, K), 255, np.uint8)
    b = np.zeros((K, N), np.uint8)
    za, zb = np.zeros(M, np.int64), np.full(N, 255, np.int64)
    np.testing.assert_array_equal(gf.gemm_wrap(a, b, za, zb, np.empty((M, N), np.int32)), np.full((M, N), -K * 65025))


@needs_kernel
def test_wraps_modulo_2_32_like_the_wrap_model():
    """K·255² > 2^31: the kernel returns eq. (1) mod 2^32, what acc_model="wrap" specifies."""
    M, K, N = 3, 40001, 17
    a = np.full((M, K), -128, np.int8)
    b = np.full((K, N), -128, np.int8)
    b[::3] = 127
    za, zb = np.full(M, 127, np.int64), np.full(N, 127, np.int64)
    out = gf.gemm_wrap(a, b, za, zb, np.empty((M, N), np.int32))
    want = gemm_reference(a, b, za.astype(np.int8), zb.astype(np.int8), acc_model="wrap")
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
def test_public_gemm_dispatch_equals_reference(da, db):
    """gemm() takes the vpmaddwd path where available and the BLAS path elsewhere: same bits."""
    a, b, za, zb = _operands(7, 37, 70, 45, da, db)
    np.testing.assert_array_equal(gemm(a, b, za.astype(da), zb.astype(db)),
                                  gemm_reference(a, b, za.astype(da), zb.astype(db)))
    np.testing.assert_array_equal(gemm(a, b, int(za[0]), int(zb[0])), gemm_reference(a, b, int(za[0]), int(zb[0])))


def test_available_is_false_without_the_jit():
    if numba.config.DISABLE_JIT:
        assert not gf.available()

"""refquant.kernels._gemv_fast: the AVX2 vpmaddwd few-row GEMM on raw b against gemm_reference
(random, extreme codes, odd K, K = 1, several K blocks, ragged N against the 64/32-column blocks,
int32 wrap) and the small-M dispatch of refquant.kernels.gemm."""

from __future__ import annotations

import numpy as np
import pytest

from refquant.kernels import _gemv_fast as gv
from refquant.kernels.gemm import gemm, gemm_reference

pytestmark = pytest.mark.kernels

needs_kernel = pytest.mark.skipif(not gv.available(), reason="needs x86-64 AVX2 and the JIT enabled")

# (M, K, N): K = 1, odd K, one and several K blocks (2·KB2 = 256 rows), N ragged against 64 / 32
SHAPES = [(1, 1, 1), (1, 2, 31), (1, 3, 32), (2, 5, 33), (1, 257, 64), (3, 256, 65), (8, 513, 100),
          (1, 1024, 1024), (4, 77, 161)]
DTYPE_PAIRS = [(np.uint8, np.int8), (np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)]


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _run(a, b, za, zb):
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    return gv.gemv_wrap(a, b, np.asarray(za, np.int64), np.asarray(zb, np.int64), out)


@needs_kernel
@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("M,K,N", SHAPES)
def test_random_equals_reference(M, K, N, da, db):
    rng = np.random.default_rng(M * 100003 + K * 101 + N)
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    za, zb = _rand(rng, da, (M,)), _rand(rng, db, (N,))  # per-row / per-column zero points
    np.testing.assert_array_equal(_run(a, b, za, zb), gemm_reference(a, b, za, zb, acc_model="wrap"))
    za0, zb0 = za[:1].repeat(M), zb[:1].repeat(N)          # per-tensor
    np.testing.assert_array_equal(_run(a, b, za0, zb0), gemm_reference(a, b, za[0], zb[0], acc_model="wrap"))


@needs_kernel
@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("K", [1, 2, 255, 257, 1024])
def test_extreme_operands(K, da, db):
    """Every code at its format's ends, zero points at the opposite ends: |a - za|, |b - zb| up to 255."""
    ia, ib = np.iinfo(da), np.iinfo(db)
    M, N = 3, 97
    for av, zav, bv, zbv in ((ia.min, ia.max, ib.min, ib.max), (ia.max, ia.min, ib.min, ib.max),
                             (ia.min, ia.max, ib.max, ib.min), (ia.min, 0, ib.min, 0)):
        a, b = np.full((M, K), av, da), np.full((K, N), bv, db)
        za, zb = np.full(M, zav, np.int64), np.full(N, zbv, np.int64)
        np.testing.assert_array_equal(_run(a, b, za, zb),
                                      gemm_reference(a, b, da(zav), db(zbv), acc_model="wrap"))


@needs_kernel
def test_wraps_modulo_2_32():
    """K large enough that the exact sum leaves int32: the kernel returns it mod 2^32 like "wrap"."""
    K = 40000
    a, b = np.full((1, K), 255, np.uint8), np.full((K, 40), -128, np.int8)
    out = _run(a, b, [0], np.full(40, 127))
    np.testing.assert_array_equal(out, gemm_reference(a, b, 0, np.int8(127), acc_model="wrap"))


@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (1, 1024, 70), (8, 33, 65)])
def test_gemm_small_m_dispatch_equals_reference(M, K, N, da, db):
    """refquant.kernels.gemm with M <= 8 (this kernel, or the plain loop without the JIT) is bit-exact."""
    rng = np.random.default_rng(K + N)
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    za, zb = _rand(rng, da, (M,)), _rand(rng, db, (N,))
    np.testing.assert_array_equal(gemm(a, b, za, zb), gemm_reference(a, b, za, zb))
    np.testing.assert_array_equal(gemm(a, b, za[0], zb[0]), gemm_reference(a, b, za[0], zb[0]))

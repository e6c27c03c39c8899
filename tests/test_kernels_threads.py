"""Threaded fast kernels (issue 3): the ``prange`` drivers of :mod:`refquant.kernels._gemm_fast`
and :mod:`refquant.kernels._conv_fast` give bit-identical results for 1 and 2 Numba threads, equal
to the NumPy references. With the JIT disabled the fallbacks run and the same checks hold."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from refquant.kernels import _conv_fast as cf
from refquant.kernels import _gemm_fast as gf
from refquant.kernels.conv import conv2d, conv2d_reference
from refquant.kernels.gemm import gemm, gemm_reference

pytestmark = [pytest.mark.kernels,
              pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")]

needs_kernel = pytest.mark.skipif(not gf.available(), reason="needs x86-64 AVX2 and the JIT enabled")


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _with_threads(n, f):
    """f() run with ``n`` Numba threads; the caller's thread count is restored."""
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return f()
    finally:
        numba.set_num_threads(old)


# (M, K, N) above gf.PARALLEL_MIN_MACS: full tiles; ragged M/N with odd K and three K blocks
@pytest.mark.parametrize("M,K,N", [(64, 512, 160), (67, 1101, 131)])
@pytest.mark.parametrize("da,db", [(np.uint8, np.int8), (np.int8, np.int8)])
def test_gemm_threads_identical(M, K, N, da, db):
    rng = np.random.default_rng(M + K + N)
    a, b = _rand(rng, da, (M, K)), _rand(rng, db, (K, N))
    za, zb = _rand(rng, da, ()).item(), _rand(rng, db, (N,))
    if gf.available():  # the shape takes the threaded path
        assert _with_threads(2, lambda: gf.use_threads(M * N * K))
    one = _with_threads(1, lambda: gemm(a, b, za, zb))
    two = _with_threads(2, lambda: gemm(a, b, za, zb))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, gemm_reference(a, b, za, zb))


# (N, C, H, W), (O, kh, kw), strides, dilations, pads: all above the threshold per image
CONV_CASES = [((2, 24, 30, 30), (26, 3, 3), (1, 1), (1, 1), 1),
              ((1, 33, 41, 37), (40, 3, 3), (2, 2), (1, 1), (1, 0, 2, 1)),
              ((1, 40, 40, 40), (70, 1, 1), (1, 1), (1, 1), 0),
              ((1, 16, 36, 36), (24, 3, 3), (1, 1), (2, 2), 2)]


@pytest.mark.parametrize("xshape,wshape,strides,dilations,pads", CONV_CASES)
def test_conv2d_threads_identical(xshape, wshape, strides, dilations, pads):
    rng = np.random.default_rng(sum(xshape))
    O, kh, kw = wshape
    x, w = _rand(rng, np.uint8, xshape), _rand(rng, np.int8, (O, xshape[1], kh, kw))
    xz, wz = 131, _rand(rng, np.int8, (O,))
    kw_ = dict(strides=strides, dilations=dilations, pads=pads)
    if gf.available():  # the shape takes the threaded path
        Hq, Wq, L, n_cols, _, _ = cf.geometry(xshape[2], xshape[3], (kh, kw), strides, dilations,
                                              (pads,) * 4 if isinstance(pads, int) else pads)
        assert _with_threads(2, lambda: gf.use_threads(-(-O // gf.MR) * gf.MR * n_cols * kh * kw
                                                       * ((xshape[1] + 1) // 2) * 2))
    one = _with_threads(1, lambda: conv2d(x, w, xz, wz, **kw_))
    two = _with_threads(2, lambda: conv2d(x, w, xz, wz, **kw_))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, conv2d_reference(x, w, xz, wz, **kw_))


@needs_kernel
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 5, 9), (13, 600, 47), (6, 2, 16)])
def test_gemm_parallel_driver_small_ragged(M, K, N):
    """The threaded driver itself (called directly, below the threshold) on edge tiles."""
    rng = np.random.default_rng(M * K * N)
    a, b = _rand(rng, np.int8, (M, K)), _rand(rng, np.uint8, (K, N))
    za, zb = _rand(rng, np.int8, (M,)).astype(np.int32), _rand(rng, np.uint8, (N,)).astype(np.int32)
    ap = np.empty(-(-M // gf.MR) * ((K + 1) // 2) * gf.MR, np.int32)
    bp = np.empty(gf.packed_b_size(K, N), np.int32)
    gf.pack_a(a, za, ap)
    gf.pack_b(b, zb, bp)
    out = np.empty(M * N, np.int32)
    _with_threads(2, lambda: gf._driver_parallel(ap, bp, out, M, N, (K + 1) // 2))
    np.testing.assert_array_equal(out.reshape(M, N), gemm_reference(a, b, za.astype(np.int8), zb.astype(np.uint8)))

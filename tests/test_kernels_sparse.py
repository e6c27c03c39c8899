"""refquant.kernels.sparse: the NumPy twin, the Numba kernel and the dense int8 GEMM agree bit for bit
on random CSR weights at every sparsity, with zero / per-tensor / per-channel weight zero points, at
the int32 edge (and past it, with the dense kernel's overflow rule), on empty inputs and N:M weights;
threads do not change a bit; bad input gets named errors. CI reruns it with NUMBA_DISABLE_JIT=1."""

from __future__ import annotations

import warnings
import zlib

import numba
import numpy as np
import pytest

from refquant.errors import (
    AccumulatorOverflowError,
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
)
from refquant.kernels import sparse as ks
from refquant.kernels.gemm import gemm
from refquant.kernels.sparse import sparse_matmul_int8, sparse_matmul_int8_reference
from refquant.prune.sparse import to_csr, to_nm

pytestmark = pytest.mark.kernels


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _csr(w, zw):
    """Independent CSR of the codes != Z_w[o] (np.nonzero, int64 indices)."""
    present = w != np.broadcast_to(zw, (w.shape[0],)).astype(np.int8)[:, None]
    rows, cols = np.nonzero(present)
    row_ptr = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int64)
    return w[rows, cols], cols, row_ptr


def _assert_same(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if not np.array_equal(got, want):
        i = tuple(np.argwhere(got != want)[0])
        pytest.fail(f"{what}: {int((got != want).sum())} of {got.size} differ; first at {i}: got {got[i]} "
                    f"want {want[i]} (dense kernel)")


def _check_all(x, zx, w, zw, what, csr=None):
    """reference == Numba == dense gemm(x, W^T), warnings included."""
    v, c, p = _csr(w, zw) if csr is None else csr
    with warnings.catch_warnings(record=True) as dense_warn:
        warnings.simplefilter("always")
        want = gemm(x, np.ascontiguousarray(w.T), zx, zw)
    for f in (sparse_matmul_int8_reference, sparse_matmul_int8):
        with warnings.catch_warnings(record=True) as got_warn:
            warnings.simplefilter("always")
            got = f(x, zx, v, c, p, zw, shape=w.shape)
        _assert_same(got, want, f"{f.__name__} {what}")
        assert [type(m.message) for m in got_warn] == [type(m.message) for m in dense_warn], what


# (O, K, N): batch 1 takes the dot-product branch; 33x257 needs uint16 columns
SHAPES = [(7, 13, 1), (16, 64, 5), (33, 257, 9), (3, 5, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("xdt", [np.int8, np.uint8])
def test_twin_numba_and_dense_agree(shape, sparsity, xdt):
    rng = np.random.default_rng(zlib.crc32(repr((shape, sparsity, np.dtype(xdt).name)).encode()))
    O, K, N = shape
    x = _rand(rng, xdt, (N, K))
    for zw in (np.int8(0), np.int8(-5), _rand(rng, np.int8, (O,))):
        fill = np.broadcast_to(zw, (O,))[:, None]
        w = np.where(rng.random((O, K)) < sparsity, fill, _rand(rng, np.int8, (O, K)))
        w[O // 2] = fill[O // 2]  # an empty row
        for zx in (0, _rand(rng, xdt, ()), _rand(rng, xdt, (N,))):
            _check_all(x, zx, w, zw, f"{shape} sparsity {sparsity} x {np.dtype(xdt).name} zw {zw} zx {zx}")
            v, c, p = _csr(w, zw)  # the index dtypes to_csr picks (uint8/uint16) give the same result
            csr = to_csr(w, zero_point=zw)
            _assert_same(sparse_matmul_int8(x, zx, csr.values, csr.col_idx, csr.row_ptr, zw),
                         sparse_matmul_int8(x, zx, v, c, p, zw), "to_csr's index dtypes")


def test_code_zero_is_not_pruned_when_the_zero_point_is_not_zero():
    """With Z_w = 3, a CSR of the codes != 0 (the wrong one) differs from the dense kernel; codes != 3 match."""
    w = np.array([[3, 0, 9, 3]], np.int8)
    x = np.array([[1, 2, 3, 4]], np.int8)
    want = gemm(x, np.ascontiguousarray(w.T), 0, np.int8(3))  # 1·0 + 2·(-3) + 3·6 + 4·0 = 12
    assert want.tolist() == [[12]]
    _assert_same(sparse_matmul_int8(x, 0, *_csr(w, np.int8(3)), np.int8(3)), want, "codes != Z_w")
    assert sparse_matmul_int8(x, 0, *_csr(w, np.int8(0)), np.int8(3)).tolist() != want.tolist()


@pytest.mark.parametrize("N", [1, 2])
def test_int32_edge_and_overflow(N):
    """|x - Z_x| = |w - Z_w| = 255 in every term: K = 33025 ends 32 below INT32_MAX (exact), K = 33026
    leaves int32 (warn and wrap, or raise, as the dense kernel does). Both signs."""
    for K, overflows in ((33025, False), (33026, True)):
        w = np.full((2, K), -128, np.int8)
        w[1, ::2] = 127  # row 1: half the terms pruned (code == Z_w)
        zw = np.int8(127)
        for x, zx in ((np.full((N, K), -128, np.int8), np.int8(127)), (np.full((N, K), 255, np.uint8), np.uint8(0))):
            _check_all(x, zx, w, zw, f"K={K} x {x.dtype}")
            if overflows:
                for f in (sparse_matmul_int8_reference, sparse_matmul_int8):
                    with pytest.raises(AccumulatorOverflowError):
                        f(x, zx, *_csr(w, zw), zw, on_overflow="raise")
                    with pytest.warns(AccumulatorOverflowWarning):
                        f(x, zx, *_csr(w, zw), zw)
    assert 33025 * 255 * 255 == 2**31 - 1 - 33022  # the first case is exact in int32


@pytest.mark.parametrize("N,O,K", [(0, 3, 4), (2, 0, 4), (2, 3, 0), (0, 0, 0), (1, 3, 4)])
def test_empty_inputs(N, O, K):
    rng = np.random.default_rng(N * 100 + O * 10 + K)
    x = _rand(rng, np.uint8, (N, K))
    w = np.zeros((O, K), np.int8)  # all pruned: nnz = 0
    _check_all(x, 5, w, np.int8(0), f"N={N} O={O} K={K}")
    if O and K:
        _check_all(x, 5, _rand(rng, np.int8, (O, K)), np.int8(1), f"dense N={N} O={O} K={K}")


@pytest.mark.parametrize("n,m,fmt", [(2, 4, "int8"), (2, 4, "int4"), (1, 2, "int8"), (3, 8, "int8")])
def test_nm_weights(n, m, fmt):
    """An N:M weight (K not a multiple of m) from to_nm, its CSR, int4 codes unpacked: equal to dense."""
    rng = np.random.default_rng(n * 10 + m)
    O, K, zw = 24, 70, np.int8(-2)
    lo, hi = (-8, 7) if fmt == "int4" else (-128, 127)
    w = rng.integers(lo, hi, (O, K), endpoint=True).astype(np.int8)
    for g in range(0, K, m):  # keep the n largest |w - zw| of each group
        keep = np.argsort(-np.abs(w[:, g:g + m].astype(int) - zw), axis=1, kind="stable")[:, n:]
        np.put_along_axis(w[:, g:g + m], keep, zw, axis=1)
    dense = to_nm(w, n, m, value_format=fmt, zero_point=zw).to_dense()
    _assert_same(dense, w, "to_nm round trip")
    csr = to_csr(dense, value_format=fmt, zero_point=zw)
    x = _rand(rng, np.uint8, (5, K))
    _check_all(x, 128, w, zw, f"{n}:{m} {fmt}", csr=(csr.unpacked_values(), csr.col_idx, csr.row_ptr))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("N", [1, 5, 32])
def test_threads_do_not_change_a_bit(N, monkeypatch):
    """The prange driver (forced: threshold 1) equals the serial one and the dense kernel, 1 or 2 threads."""
    rng = np.random.default_rng(3 + N)
    O, K = 37, 300
    w = np.where(rng.random((O, K)) < 0.3, np.int8(-3), _rand(rng, np.int8, (O, K)))
    v, c, p = _csr(w, np.int8(-3))
    x = _rand(rng, np.uint8, (N, K))
    want = gemm(x, np.ascontiguousarray(w.T), 7, np.int8(-3))
    _assert_same(sparse_matmul_int8(x, 7, v, c, p, np.int8(-3)), want, "serial driver")
    monkeypatch.setattr(ks, "PARALLEL_MIN_MACS", 1)
    old = numba.get_num_threads()
    try:
        for t in (1, 2):
            numba.set_num_threads(t)
            _assert_same(sparse_matmul_int8(x, 7, v, c, p, np.int8(-3)), want, f"prange driver, {t} thread(s)")
    finally:
        numba.set_num_threads(old)


def _ok():
    x = np.array([[1, 2, 3]], np.uint8)
    return dict(x=x, x_zero_point=0, csr_values=np.array([5, -1], np.int8), col_idx=np.array([0, 2], np.uint8),
                row_ptr=np.array([0, 1, 2], np.uint8), w_zero_point=0)


BAD = [
    (dict(x=np.ones((1, 3), np.float32)), QuantizationTypeError, "x must have dtype int8 or uint8"),
    (dict(x=np.ones(3, np.uint8)), ShapeError, "x must be 2-D"),
    (dict(csr_values=np.array([5.0, -1.0], np.float32)), QuantizationTypeError, "csr_values must have dtype int8"),
    (dict(csr_values=np.array([5, 1], np.uint8)), QuantizationTypeError, "int8"),
    (dict(csr_values=np.array([[5, -1]], np.int8)), ShapeError, "csr_values must be 1-D"),
    (dict(csr_values=np.array([5], np.int8)), ShapeError, "len\\(col_idx\\) = 2"),
    (dict(col_idx=np.array([0.0, 2.0])), QuantizationTypeError, "col_idx must be a 1-D integer"),
    (dict(col_idx=np.array([0, 3])), QuantizationValueError,
     r"col_idx must be in \[0, K = x.shape\[1\] - 1\] = \[0, 2\], got 3"),
    (dict(col_idx=np.array([0, -1])), QuantizationValueError, "got -1"),
    (dict(row_ptr=np.array([[0, 1, 2]])), ShapeError, "row_ptr must be 1-D"),
    (dict(row_ptr=np.array([0, 2, 1, 2])), QuantizationValueError, r"non-decreasing, got row_ptr\[1\] = 2 > "),
    (dict(row_ptr=np.array([1, 1, 2])), QuantizationValueError, r"row_ptr\[0\] must be 0, got 1"),
    (dict(row_ptr=np.array([0, 1, 1])), QuantizationValueError, "must be nnz = len\\(col_idx\\) = 2, got 1"),
    (dict(row_ptr=np.array([0, 1, 3])), QuantizationValueError, r"must be nnz = len\(col_idx\) = 2, got 3"),
    (dict(row_ptr=np.array([0, 2**64 - 1, 2], np.uint64)), QuantizationValueError,
     r"row_ptr entries must be in \[0, nnz\] = \[0, 2\], got 18446744073709551615"),
    (dict(row_ptr=np.array([], np.int64)), ShapeError, "row_ptr must have O \\+ 1 = 1"),
    (dict(shape=(2, 4)), ShapeError, "x must have K = shape\\[1\\] = 4"),
    (dict(shape=(3, 3)), ShapeError, "row_ptr must have shape\\[0\\] \\+ 1 = 4"),
    (dict(w_zero_point=200), QuantizationValueError, r"w_zero_point must be in \[-128, 127\].*200"),
    (dict(w_zero_point=np.uint8(1)), QuantizationTypeError, "w_zero_point"),
    (dict(w_zero_point=np.zeros(3, np.int8)), ShapeError, "w_zero_point must have 2 elements"),
    (dict(x_zero_point=-1), QuantizationValueError, r"x_zero_point must be in \[0, 255\]"),
    (dict(x_zero_point=np.zeros(2, np.uint8)), ShapeError, "x_zero_point must have 1 elements"),
    (dict(on_overflow="wrap"), QuantizationValueError, "on_overflow"),
]


@pytest.mark.parametrize("change,err,msg", BAD, ids=range(len(BAD)))
def test_bad_input(change, err, msg):
    want = gemm(np.array([[1, 2, 3]], np.uint8), np.array([[5, 0], [0, 0], [0, -1]], np.int8))
    for f in (sparse_matmul_int8_reference, sparse_matmul_int8):
        _assert_same(f(**_ok()), want, f"{f.__name__} valid call")
        with pytest.raises(err, match=msg):
            f(**{**_ok(), **change})


def test_check_csr():
    col, ptr = ks.check_csr(np.array([2, 0], np.uint16), np.array([0, 1, 1, 2], np.uint8), 3, n_rows=3)
    assert col.dtype == np.uint16 and ptr.dtype == np.int64 and ptr.tolist() == [0, 1, 1, 2]
    assert ks.check_csr(np.zeros(0, np.int32), np.zeros(1, np.int64), 0)[1].tolist() == [0]  # O = 0, K = 0
    with pytest.raises(ShapeError, match=r"row_ptr must have n_rows \+ 1 = 3 entries"):
        ks.check_csr(np.array([2, 0]), np.array([0, 1, 1, 2]), 3, n_rows=2)
    with pytest.raises(QuantizationValueError, match=r"col_idx must be in \[0, n_cols - 1\] = \[0, 1\], got 2"):
        ks.check_csr(np.array([2, 0]), np.array([0, 1, 2]), 2)
    with pytest.raises(QuantizationTypeError, match="n_cols must be an integer"):
        ks.check_csr(np.array([2, 0]), np.array([0, 1, 2]), 3.0)

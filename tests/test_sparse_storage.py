"""refquant.prune.sparse: exact round trips for every format × value format × zero point, bytes
counted by hand and by an independent formula, NVIDIA's 2:4 metadata bytes worked by hand, the N:M
refusal, break-even sparsities against brute force, and bad input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.dtypes import pack_int4
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.prune.sparse import (
    BitmaskMatrix,
    CSRMatrix,
    NMMatrix,
    break_even_sparsity,
    storage_table,
    to_bitmask,
    to_csr,
    to_nm,
)

RANGES = {"int8": (-128, 127), "int4": (-8, 7)}
VBYTES = {"float32": 4, "int8": 1}


def _vbytes(count, fmt):
    return (count + 1) // 2 if fmt == "int4" else count * VBYTES[fmt]


def _zero_points(fmt, O, rng):
    if fmt == "float32":
        return [None, 0]
    lo, hi = RANGES[fmt]
    return [0, lo, hi, 3, rng.integers(lo, hi, O, endpoint=True).astype(np.int8)]


def _weight(rng, shape, fmt, zp, sparsity):
    """Random (O, K) weight of ``fmt`` whose pruned entries are each row's zero-point code; row 0 empty."""
    if fmt == "float32":
        w = rng.standard_normal(shape).astype(np.float32)
    else:
        w = rng.integers(*RANGES[fmt], size=shape, endpoint=True).astype(np.int8)
    fill = np.broadcast_to(np.asarray(0 if zp is None else zp), (shape[0],)).astype(w.dtype)[:, None]
    w = np.where(rng.random(shape) < sparsity, fill, w)
    if shape[0]:
        w[0] = fill[0]
    return w, fill


def _make_nm(w, fill, n, m):
    """Keep the first n entries other than the zero point of every group of m columns."""
    w = w.copy()
    for o in range(w.shape[0]):
        for g in range(0, w.shape[1], m):
            idx = g + np.flatnonzero(w[o, g:g + m] != fill[o])
            w[o, idx[n:]] = fill[o]
    return w


def _assert_same(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if not np.array_equal(got, want):
        i = tuple(np.argwhere(got != want)[0])
        pytest.fail(f"{what}: {int((got != want).sum())} entries differ; first at {i}: got {got[i]} want {want[i]}")


def _index_bytes(largest):
    return 1 if largest <= 255 else 2 if largest <= 65535 else 4


SHAPES = [(5, 7), (4, 8), (3, 1), (1, 13), (6, 0), (0, 5), (0, 0), (17, 300)]


@pytest.mark.parametrize("fmt", ["float32", "int8", "int4"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 1.0])
def test_round_trip_and_bytes(fmt, shape, sparsity):
    rng = np.random.default_rng(zlib.crc32(repr((fmt, shape, sparsity)).encode()))
    O, K = shape
    for zp in _zero_points(fmt, O, rng):
        w, fill = _weight(rng, shape, fmt, zp, sparsity)
        nnz = int(np.count_nonzero(w != fill))
        what = f"{fmt} {shape} sparsity {sparsity} zero_point {zp}"
        csr, bm = to_csr(w, value_format=fmt, zero_point=zp), to_bitmask(w, value_format=fmt, zero_point=zp)
        for s in (csr, bm):
            _assert_same(s.to_dense(), w, f"{type(s).__name__} {what}")
            assert s.shape == shape and s.nnz == nnz and s.value_format == fmt
        # eq. (1) and (2), written out independently of the module
        assert csr.nbytes == _vbytes(nnz, fmt) + nnz * _index_bytes(max(K - 1, 0)) + (O + 1) * _index_bytes(nnz), what
        assert bm.nbytes == _vbytes(nnz, fmt) + O * ((K + 7) // 8), what
        wnm = _make_nm(w, fill, 2, 4)
        nm = to_nm(wnm, value_format=fmt, zero_point=zp)
        _assert_same(nm.to_dense(), wnm, f"2:4 {what}")
        G = (K + 3) // 4  # K padded up to a multiple of 4
        assert nm.nnz == np.count_nonzero(wnm != fill) and nm.nbytes == _vbytes(O * G * 2, fmt) + (O * G * 4 + 7) // 8


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.integers(0, 19), st.integers(1, 8), st.integers(0, 8), st.sampled_from(
    ["float32", "int8", "int4"]), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_round_trip_property(O, K, m, n_minus, fmt, sparsity, seed):
    """to_dense(to_X(w)) == w for any shape, N:M geometry (m up to 8, K not a multiple of m) and zero point."""
    m, rng = max(m, 2), np.random.default_rng(seed)
    n = max(1, m - n_minus)
    zp = _zero_points(fmt, O, rng)[seed % (2 if fmt == "float32" else 5)]
    w, fill = _weight(rng, (O, K), fmt, zp, sparsity)
    for s in (to_csr(w, value_format=fmt, zero_point=zp), to_bitmask(w, value_format=fmt, zero_point=zp)):
        _assert_same(s.to_dense(), w, type(s).__name__)
    wnm = _make_nm(w, fill, n, m)
    _assert_same(to_nm(wnm, n, m, value_format=fmt, zero_point=zp).to_dense(), wnm, f"{n}:{m}")


def test_hand_worked_example():
    """Every stored byte of a 2 × 8 int8 weight, checked by hand."""
    w = np.array([[0, 5, 0, 7, 1, 0, 0, 2], [0, 0, 0, 0, 0, 0, -3, 0]], np.int8)
    csr = to_csr(w)
    assert csr.values.tolist() == [5, 7, 1, 2, -3] and csr.col_idx.dtype == np.uint8
    assert csr.col_idx.tolist() == [1, 3, 4, 7, 6] and csr.row_ptr.tolist() == [0, 4, 5]
    assert csr.nbytes == 5 + 5 + 3
    bm = to_bitmask(w)  # bits LSB first: row 0 columns 1, 3, 4, 7 = 2 + 8 + 16 + 128; row 1 column 6 = 64
    assert bm.mask.tolist() == [[154], [64]] and bm.nbytes == 5 + 2
    nm = to_nm(w)  # positions (1,3) (0,3) | (0,1) (0,2): a group short of values is padded at its lowest free slots
    assert nm.values.tolist() == [[5, 7, 1, 2], [0, 0, 0, -3]]
    assert nm.indices.tolist() == [1 | 3 << 2 | 0 << 4 | 3 << 6, 0 | 1 << 2 | 0 << 4 | 2 << 6]  # [205, 132]
    assert nm.nbytes == 8 + 2 and nm.nnz == 5  # K/2 values + K/8 metadata bytes per row


def test_pruned_code_is_the_zero_point_not_zero():
    """With Z = 3 the code 3 is the real value 0 (not stored) and the code 0 is -3·S (stored)."""
    w = np.array([[3, 0, 9, 3]], np.int8)
    csr = to_csr(w, zero_point=3)
    assert csr.values.tolist() == [0, 9] and csr.col_idx.tolist() == [1, 2]
    _assert_same(csr.to_dense(), w, "zero point 3")
    assert to_csr(w).values.tolist() == [3, 9, 3]  # zero point 0: only the code 0 is absent


def test_int4_values_are_packed_two_per_byte():
    w = np.array([[-8, 0, 7, 0, 0, 1]], np.int8)
    csr = to_csr(w, value_format="int4")
    assert csr.values.tolist() == pack_int4(np.array([-8, 7, 1], np.int8)).tolist() == [0x78, 0x01]
    assert csr.unpacked_values().tolist() == [-8, 7, 1] and csr.nbytes == 2 + 3 + 2


def test_negative_zero_is_not_stored():
    w = np.array([[-0.0, 1.5, 0.0]], np.float32)
    d = to_csr(w).to_dense()
    assert to_csr(w).nnz == 1 and np.array_equal(d, w) and not np.signbit(d[0, 0])


@pytest.mark.parametrize("K,nnz,col,ptr", [(256, 255, np.uint8, np.uint8), (257, 256, np.uint16, np.uint16),
                                           (65536, 3, np.uint16, np.uint8), (65537, 3, np.uint32, np.uint8)])
def test_index_dtypes_are_the_smallest_unsigned(K, nnz, col, ptr):
    w = np.zeros((2, K), np.int8)
    w.reshape(-1)[np.linspace(0, 2 * K - 1, nnz).astype(int)] = 1
    csr = to_csr(w)
    assert (csr.col_idx.dtype, csr.row_ptr.dtype) == (np.dtype(col), np.dtype(ptr))
    assert to_csr(w, index_dtype="int32").col_idx.dtype == np.int32  # SciPy's choice, on request
    _assert_same(csr.to_dense(), w, f"K={K}")


@pytest.mark.parametrize("fmt", ["float32", "int8", "int4"])
@pytest.mark.parametrize("shape", [(3, 5), (4, 300), (1, 9), (300, 2)])
@pytest.mark.parametrize("index_dtype", [None, "int32"])
def test_break_even_against_brute_force(fmt, shape, index_dtype):
    """At the break-even count the format is no larger than dense; one more stored value and it is."""
    O, K = shape
    dense = _vbytes(O * K, fmt)
    for name, build in (("csr", to_csr), ("bitmask", to_bitmask)):
        kw = {"index_dtype": index_dtype} if name == "csr" else {}
        s = break_even_sparsity(name, shape, fmt, **kw)
        sizes = []
        for nnz in range(O * K + 1):
            w = np.zeros(O * K, np.float32 if fmt == "float32" else np.int8)
            w[:nnz] = 1
            sizes.append(build(w.reshape(O, K), value_format=fmt, **kw).nbytes)
        fits = [n for n, b in enumerate(sizes) if b <= dense]
        want = None if not fits else 1 - max(fits) / (O * K)
        assert s == want, f"{name} {fmt} {shape}: got {s}, brute force {want}"


def test_break_even_matches_the_formulas():
    O, K = 256, 1024
    # CSR: s* = c/(v+c) + (O+1)p/(OK(v+c)), to within one weight (uint16 columns, uint32 row_ptr)
    for fmt, v in (("int8", 1), ("float32", 4)):
        approx = 2 / (v + 2) + (O + 1) * 4 / (O * K * (v + 2))
        assert abs(break_even_sparsity("csr", (O, K), fmt) - approx) <= 1 / (O * K)
    assert break_even_sparsity("csr", (O, K), "int8", index_dtype="int32") == pytest.approx(0.8, abs=1e-2)
    assert break_even_sparsity("bitmask", (O, K), "int8") == 0.125  # 1/(8v)
    assert break_even_sparsity("bitmask", (O, K), "float32") == 1 / 32
    assert break_even_sparsity("csr", (1, 1), "int8") is None  # row_ptr alone outweighs one int8


def test_storage_table():
    rng = np.random.default_rng(7)
    w, fill = _weight(rng, (16, 64), "int8", 0, 0.8)
    w24 = _make_nm(w, fill, 2, 4)
    t = storage_table(w24)
    assert t["bytes"] == {"dense": 16 * 64, "csr": to_csr(w24).nbytes, "bitmask": to_bitmask(w24).nbytes,
                          "2:4": to_nm(w24).nbytes} and t["bytes"]["2:4"] == 16 * (32 + 8)
    assert t["nnz"] == np.count_nonzero(w24) and t["sparsity"] == 1 - t["nnz"] / (16 * 64)
    assert t["break_even"]["bitmask/int8"] == 0.125 and set(t["break_even"]) == {
        f"{f}/{v}" for f in ("csr", "bitmask") for v in ("float32", "int8", "int4")}
    w[0, :4] = 1
    assert storage_table(w)["bytes"]["2:4"] is None  # not 2:4 sparse


def test_to_nm_refuses_a_matrix_that_is_not_nm_and_names_the_group():
    w = np.zeros((3, 10), np.int8)
    w[2, 8:10] = 1
    w[1, 4:7] = 1  # 3 of 4 in row 1, group 1
    with pytest.raises(QuantizationValueError,
                       match=r"not n:m = 2:4 sparse: row 1, group 1 \(columns 4 to 7\) holds 3 values other than "
                             r"zero_point = 0"):
        to_nm(w)
    to_nm(w, 3, 4)  # 3:4 holds it
    w[0, 8:10] = 5  # the padded last group, columns 8 and 9 only
    with pytest.raises(QuantizationValueError, match=r"row 0, group 2 \(columns 8 to 9\) holds 2 .* n = 1"):
        to_nm(w, 1, 4)


BAD = [
    (lambda: to_csr(np.zeros(4, np.int8)), ShapeError, "w must be 2-D"),
    (lambda: to_csr(np.zeros((2, 2, 2), np.float32)), ShapeError, "reshape"),
    (lambda: to_csr(np.zeros((2, 2))), QuantizationTypeError, "float32 or int8.*float64"),
    (lambda: to_csr(np.zeros((2, 2), np.uint8)), QuantizationTypeError, "uint8"),
    (lambda: to_csr(np.zeros((2, 2), np.float32), value_format="int8"), QuantizationTypeError, "int8 for value"),
    (lambda: to_csr(np.array([[1, np.nan]], np.float32)), QuantizationValueError, r"finite, got nan at w\[0, 1\]"),
    (lambda: to_bitmask(np.array([[np.inf]], np.float32)), QuantizationValueError, "finite"),
    (lambda: to_csr(np.array([[9]], np.int8), value_format="int4"), QuantizationValueError, r"\[-8, 7\].*got 9"),
    (lambda: to_csr(np.zeros((2, 2), np.int8), value_format="int3"), QuantizationValueError, "value_format"),
    (lambda: to_csr(np.zeros((2, 2), np.int8), zero_point=200), QuantizationValueError, "zero_point.*200"),
    (lambda: to_csr(np.zeros((2, 2), np.int8), value_format="int4", zero_point=9), QuantizationValueError, "9"),
    (lambda: to_csr(np.zeros((2, 2), np.int8), zero_point=np.zeros(3, np.int8)), ShapeError, "O = 2"),
    (lambda: to_csr(np.zeros((2, 2), np.int8), zero_point=1.5), QuantizationTypeError, "integer"),
    (lambda: to_csr(np.zeros((2, 2), np.float32), zero_point=3), QuantizationValueError, "float32"),
    (lambda: to_csr(np.ones((1, 300), np.int8), index_dtype="uint8"), QuantizationValueError, "cannot hold"),
    (lambda: to_csr(np.ones((1, 3), np.int8), index_dtype="uint7"), QuantizationValueError, "index_dtype"),
    (lambda: to_nm(np.zeros((2, 4), np.int8), 5, 4), QuantizationValueError, "n must be <= m = 4.*5"),
    (lambda: to_nm(np.zeros((2, 4), np.int8), 1, 1), QuantizationValueError, "m must be"),
    (lambda: to_nm(np.zeros((2, 4), np.int8), 0, 4), QuantizationValueError, "n must be"),
    (lambda: to_nm(np.zeros((2, 4), np.int8), 2.0, 4), QuantizationTypeError, "n must be"),
    (lambda: break_even_sparsity("coo", (2, 2)), QuantizationValueError, "format"),
    (lambda: break_even_sparsity("csr", (2, -1)), QuantizationValueError, "shape"),
]


@pytest.mark.parametrize("call,err,msg", BAD, ids=range(len(BAD)))
def test_bad_input(call, err, msg):
    with pytest.raises(err, match=msg):
        call()


def test_corrupt_hand_built_formats():
    """The constructors check what they are given, so a corrupt format never reaches to_dense."""
    zp, v = np.zeros((), np.int8), np.array([1, 2], np.int8)
    CSRMatrix((2, 4), "int8", zp, v, np.array([0, 3], np.uint8), np.array([0, 1, 2], np.uint8))  # valid
    with pytest.raises(QuantizationValueError, match=r"non-decreasing, got row_ptr\[1\] = 2 > row_ptr\[2\] = 1"):
        CSRMatrix((3, 4), "int8", zp, v, np.array([0, 3], np.uint8), np.array([0, 2, 1, 2], np.uint8))
    with pytest.raises(QuantizationValueError, match=r"col_idx must be in \[0, shape\[1\] - 1\] = \[0, 3\], got 4"):
        CSRMatrix((2, 4), "int8", zp, v, np.array([0, 4], np.uint8), np.array([0, 1, 2], np.uint8))
    with pytest.raises(ShapeError, match="values must hold 2"):
        CSRMatrix((2, 4), "int8", zp, v[:1], np.array([0, 3], np.uint8), np.array([0, 1, 2], np.uint8))
    with pytest.raises(QuantizationTypeError, match="values must have dtype int8"):
        CSRMatrix((2, 4), "int8", zp, v.astype(np.float32), np.array([0, 3], np.uint8), np.array([0, 1, 2]))
    with pytest.raises(QuantizationValueError, match="padding bits"):
        BitmaskMatrix((1, 4), "int8", zp, v, np.array([[0b10001]], np.uint8))
    with pytest.raises(ShapeError, match="mask must have shape"):
        BitmaskMatrix((1, 9), "int8", zp, v, np.array([[3]], np.uint8))
    with pytest.raises(QuantizationValueError, match="increasing positions"):
        NMMatrix((1, 4), "int8", zp, v, np.array([0 | 0 << 2], np.uint8), 2, 4)
    with pytest.raises(QuantizationValueError, match="zero_point"):
        NMMatrix((1, 4), "float32", np.ones((), np.float32), v.astype(np.float32), np.array([4], np.uint8), 2, 4)

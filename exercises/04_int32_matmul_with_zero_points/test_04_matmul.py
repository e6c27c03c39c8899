"""Tests for exercise 04. DO NOT EDIT: edit matmul.py, then run ``python -m exercises 04``.

First the cases of Learn 3 that you can check by hand, then fresh matrices compared with
``refquant.kernels.gemm.gemm_reference``, bit for bit.
"""

import numpy as np
import pytest

from exercises._loader import load_exercise
from refquant.kernels.gemm import gemm_reference

ex = load_exercise(__file__, "matmul.py")

FUNCS = ["matmul_int32", "matmul_int32_folded"]
# Learn 3, section 2: M = 2, K = 3, N = 2, za = 3, zb = 1.
A = np.array([[5, 3, 4], [2, 7, 4]], dtype=np.uint8)
B = np.array([[1, -2], [0, 3], [2, 1]], dtype=np.int8)


def _diagnose(a, b, za, zb, got):
    """Name the common mistake whose result equals ``got`` (for failure messages)."""
    zb64 = np.asarray(zb, np.int64)
    with np.errstate(all="ignore"):
        candidates = {
            "you forgot the zero points": a.astype(np.int64) @ b.astype(np.int64),
            "you subtracted the zero point in the operand's own dtype (uint8 3 - 4 = 255): cast to np.int64 first":
                (a - a.dtype.type(za)).astype(np.int64) @ (b.astype(np.int64) - zb64),
            "you multiplied in int32 and it wrapped; cast to np.int64 first":
                ((a.astype(np.int32) - np.int32(za)) @ (b.astype(np.int32) - zb64.astype(np.int32))),
            "you dropped the + K * za * zb term of eq. (4)":
                (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb64) - a.shape[1] * za * zb64,
            "the signs of the zero-point terms are flipped (eq. (4) subtracts zb * r and za * c)":
                a.astype(np.int64) @ b.astype(np.int64) + zb64 * a.astype(np.int64).sum(1)[:, None]
                + za * b.astype(np.int64).sum(0)[None, :] + a.shape[1] * za * zb64,
        }
    for why, cand in candidates.items():
        if np.array_equal(np.asarray(cand).astype(np.int32), got):
            return why
    return "see Learn 3, eqs. (3)-(5)"


def _check(fn_name, a, b, za, zb, acc_model="exact"):
    got = getattr(ex, fn_name)(a, b, za, zb)
    got = np.asarray(got)
    want = gemm_reference(a, b, za, np.asarray(zb, b.dtype) if np.ndim(zb) else zb, acc_model=acc_model)
    assert got.shape == want.shape, f"{fn_name}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == np.int32, f"{fn_name}: return int32, got {got.dtype}"
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[:3]
        hint = _diagnose(a, b, za, zb, got) if acc_model == "exact" else _diagnose_pairs(a, b, za, zb, got)
        pytest.fail(f"{fn_name}({a.dtype} {a.shape}, {b.dtype} {b.shape}, za={za}, zb={zb}): "
                    f"{int((got != want).sum())} of {got.size} differ; {hint}. First: "
                    + ", ".join(f"[{m}, {n}] got {got[m, n]}, expected {want[m, n]}" for m, n in bad))


def _diagnose_pairs(a, b, za, zb, got):
    exact = gemm_reference(a, b, za, np.asarray(zb, b.dtype) if np.ndim(zb) else zb)
    if np.array_equal(got, exact):
        return "that is the exact result: saturate each pair sum to [-32768, 32767] before adding the pairs"
    a64, b64 = a.astype(np.int64), b.astype(np.int64)
    K = a.shape[1]
    if K % 2 == 0:
        ac, bc = a64 - za, b64 - np.asarray(zb, np.int64)
        centered = np.clip(ac[:, 0::2, None] * bc[None, 0::2, :] + ac[:, 1::2, None] * bc[None, 1::2, :],
                           -32768, 32767).sum(1)
        if np.array_equal(centered.astype(np.int32), got):
            return ("you saturated pairs of the centered values (a - za)(b - zb); the kernel multiplies the raw "
                    "codes and applies the zero points afterwards, exactly")
    return "see Learn 3, eq. (10)"


# ----------------------------------------------------------------------------- visible cases
@pytest.mark.parametrize("fn", FUNCS)
def test_learn3_example_by_hand(fn):
    # a - za = [[2, 0, 1], [-1, 4, 1]], b - zb = [[0, -3], [-1, 2], [1, 0]]
    got = np.asarray(getattr(ex, fn)(A, B, 3, 1))
    if got.tolist() != [[1, -6], [-3, 11]]:
        pytest.fail(f"{fn}: Learn 3, section 2: expected [[1, -6], [-3, 11]], got {got.tolist()}; "
                    f"{_diagnose(A, B, 3, 1, got)}")
    assert got.dtype == np.int32, f"{fn}: return int32, got {got.dtype}"


def test_row_and_column_sums_by_hand():
    r, c = ex.row_and_column_sums(A, B)
    assert np.asarray(r).tolist() == [12, 13], f"row sums of a: expected [12, 13], got {np.asarray(r).tolist()}"
    assert np.asarray(c).tolist() == [3, 2], f"column sums of b: expected [3, 2], got {np.asarray(c).tolist()}"
    assert np.asarray(r).dtype == np.int64 and np.asarray(c).dtype == np.int64, "return int64 sums"


def test_row_and_column_sums_do_not_wrap():
    a = np.full((2, 300), 255, np.uint8)
    b = np.full((300, 2), -128, np.int8)
    r, c = ex.row_and_column_sums(a, b)
    assert np.asarray(r).tolist() == [76500, 76500], "row sums wrapped: sum in int64 (a.astype(np.int64))"
    assert np.asarray(c).tolist() == [-38400, -38400], "column sums wrapped: sum in int64"


@pytest.mark.parametrize("fn", FUNCS)
def test_per_column_weight_zero_points_by_hand(fn):
    # zb = [1, -1]: column 1 becomes b[:, 1] + 1 = [-1, 4, 2]; row 0: 2*(-1) + 0*4 + 1*2 = 0
    got = np.asarray(getattr(ex, fn)(A, B, 3, np.array([1, -1])))
    assert got.tolist() == [[1, 0], [-3, 19]], f"{fn} with zb = [1, -1]: got {got.tolist()}"


def test_pair_saturation_by_hand():
    # Learn 3, section 4: the raw pair 255*127 + 255*127 = 64770 saturates to 32767; - 128 * 254 = 255.
    a = np.array([[255, 255]], np.uint8)
    b = np.array([[127], [127]], np.int8)
    got = np.asarray(ex.matmul_pairwise_sat16(a, b, 128, 0))
    if got.tolist() != [[255]]:
        pytest.fail(f"expected [[255]] (exact would be 32258), got {got.tolist()}; "
                    f"{_diagnose_pairs(a, b, 128, 0, got)}")
    assert got.dtype == np.int32


def test_pair_saturation_ort_measured():
    # ONNX Runtime 1.32 MatMulInteger on AVX2, K = 64, a = 255, zero points 0: 32 saturated pairs.
    a = np.full((1, 64), 255, np.uint8)
    for w, want in ((127, 1048544), (-128, -1048576)):
        got = np.asarray(ex.matmul_pairwise_sat16(a, np.full((64, 1), w, np.int8), 0, 0))
        assert got.tolist() == [[want]], f"b = {w}: expected {want} (32 pairs of {2 * 255 * w} saturated), got {got}"


def test_pair_saturation_odd_k_by_hand():
    # K = 3: pairs (0, 1) and (2, zero pad). 255*127 + 255*127 -> 32767; 255*127 = 32385 alone fits.
    a = np.array([[255, 255, 255]], np.uint8)
    b = np.array([[127], [127], [127]], np.int8)
    got = np.asarray(ex.matmul_pairwise_sat16(a, b, 0, 0))
    assert got.tolist() == [[32767 + 32385]], f"odd K: expected {32767 + 32385}, got {got.tolist()}"


# ----------------------------------------------------------------------------- fresh inputs
SHAPES = [(1, 1, 1), (3, 5, 7), (4, 16, 3), (8, 33, 5), (2, 200, 9)]
DTYPES = [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8)]


def _operands(rng, shape, da, db):
    M, K, N = shape
    ia, ib = np.iinfo(da), np.iinfo(db)
    a = rng.integers(ia.min, ia.max + 1, (M, K)).astype(da)
    b = rng.integers(ib.min, ib.max + 1, (K, N)).astype(db)
    za = int(rng.integers(ia.min, ia.max + 1))
    return a, b, za, ib


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("da,db", DTYPES, ids=[f"{np.dtype(x).name}x{np.dtype(y).name}" for x, y in DTYPES])
def test_fresh_matrices_against_refquant(fn, da, db):
    rng = np.random.default_rng(404 + DTYPES.index((da, db)))
    for shape in SHAPES:
        a, b, za, ib = _operands(rng, shape, da, db)
        _check(fn, a, b, za, int(rng.integers(ib.min, ib.max + 1)))                      # per tensor
        _check(fn, a, b, za, rng.integers(ib.min, ib.max + 1, shape[2]).astype(np.int64))  # per column


def test_fresh_pairs_against_refquant():
    rng = np.random.default_rng(4040)
    for shape in SHAPES + [(6, 64, 4), (3, 129, 2)]:
        a, b, za, ib = _operands(rng, shape, np.uint8, np.int8)
        _check("matmul_pairwise_sat16", a, b, za, int(rng.integers(-128, 128)), acc_model="pairwise_sat16_u8s8")
        _check("matmul_pairwise_sat16", a, b, za, rng.integers(-128, 128, shape[2]).astype(np.int64),
               acc_model="pairwise_sat16_u8s8")

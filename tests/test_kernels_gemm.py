"""refquant.kernels.gemm: reference vs fast (bit for bit), an independent einsum oracle, the
float32-BLAS exactness bound at its edge, the overflow rule, bad input, and the u8×s8
pair-saturation model against ONNX Runtime MatMulInteger on this CPU."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

from refquant.errors import (
    AccumulatorOverflowError,
    AccumulatorOverflowWarning,
    QuantizationTypeError,
    QuantizationValueError,
    ShapeError,
)
from refquant.kernels.gemm import gemm, gemm_reference, matmul, matmul_reference
from refquant.profiles import get_profile
from refquant.kernels.gemm import pairwise_sat16, pairwise_sat16_reference
from support import edge_values as ev

DTYPES = (np.int8, np.uint8)
PAIR_MODEL = {(np.uint8, np.int8): "pairwise_sat16_u8s8", (np.int8, np.uint8): "pairwise_sat16_s8u8"}


def _rand(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _oracle(a, b, za, zb):
    """Independent oracle: int64 einsum of eq. (1), no zero-point algebra."""
    za = np.asarray(za, np.int64).reshape(-1, 1) if np.ndim(za) else np.int64(za)
    zb = np.asarray(zb, np.int64)
    return np.einsum("mk,kn->mn", a.astype(np.int64) - za, b.astype(np.int64) - zb)


def _assert_same(got, want, inputs=""):
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    if not np.array_equal(got, want):
        idx = np.argwhere(got != want)[:5]
        rows = "; ".join(f"{tuple(i)}: got {got[tuple(i)]} want {want[tuple(i)]}" for i in idx)
        pytest.fail(f"{int((got != want).sum())} of {got.size} differ ({inputs}); first: {rows}")


# M <= 8 takes the direct int32 loop, M > 8 the exact float32-BLAS path: cover both.
SHAPES = [(5, 7, 3), (8, 1, 4), (3, 2, 5), (0, 5, 3), (3, 5, 0), (4, 0, 3), (6, 31, 9), (2, 1030, 3),
          (9, 7, 3), (12, 1, 4), (10, 0, 3), (11, 5, 0), (17, 31, 9), (13, 1030, 5), (9, 2049, 2)]


@pytest.mark.kernels
@pytest.mark.parametrize("ta", DTYPES)
@pytest.mark.parametrize("tb", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_reference_fast_and_oracle_agree(ta, tb, shape):
    # zlib.crc32, not hash(): str hashes change per process (PYTHONHASHSEED), seeds must not
    rng = np.random.default_rng(zlib.crc32(repr((ta().dtype.name, tb().dtype.name, shape)).encode()))
    M, K, N = shape
    a, b = _rand(rng, ta, (M, K)), _rand(rng, tb, (K, N))
    for za, zb in ((0, 0), (_rand(rng, ta, ()), _rand(rng, tb, ())), (_rand(rng, ta, (M,)), _rand(rng, tb, (N,)))):
        want = _oracle(a, b, za, zb).astype(np.int32)
        _assert_same(gemm_reference(a, b, za, zb), want, f"reference {ta.__name__}x{tb.__name__} {shape}")
        _assert_same(gemm(a, b, za, zb), want, f"fast {ta.__name__}x{tb.__name__} {shape}")
        _assert_same(gemm(a, b, za, zb, acc_model="wrap"), want, "wrap")
        model = PAIR_MODEL.get((ta, tb))
        if model:
            _assert_same(gemm(a, b, za, zb, acc_model=model),
                         gemm_reference(a, b, za, zb, acc_model=model), f"{model} {shape}")


@pytest.mark.kernels
@pytest.mark.parametrize("ta", DTYPES)
@pytest.mark.parametrize("tb", DTYPES)
def test_edge_values(ta, tb):
    """Every pair of edge codes (extremes, ±2^k ± 2) with edge zero points, odd K."""
    va, vb = ev.int_edge_values(np.dtype(ta).name, n_random=0), ev.int_edge_values(np.dtype(tb).name, n_random=0)
    K = 17
    a = np.resize(va, (len(va), K)).astype(ta)             # each row a rotation of the edge set
    b = np.resize(vb[::-1], (K, len(vb))).astype(tb)
    for za in (ev.int_extremes(np.dtype(ta).name, 0)):
        for zb in (ev.int_extremes(np.dtype(tb).name, 0)):
            want = _oracle(a, b, za, zb).astype(np.int32)
            _assert_same(gemm(a, b, za, zb), want, f"za={za} zb={zb}")
            _assert_same(gemm_reference(a, b, za, zb), want, f"za={za} zb={zb}")


@pytest.mark.kernels
@pytest.mark.parametrize("K", [1024, 1025, 4096])
@pytest.mark.parametrize("value", [-128, 127])
@pytest.mark.parametrize("M", [2, 9])
def test_float32_bound_extremes(K, value, M):
    """All products at the extreme (-128)(-128) = 2^14 or (127)(-128), across the K-block edge."""
    a = np.full((M, K), value, np.int8)
    b = np.full((K, 3), -128, np.int8)
    want = np.full((M, 3), K * value * -128, np.int64).astype(np.int32)
    _assert_same(gemm(a, b), want, f"K={K}")
    a_u = (a.astype(np.int16) + 128).astype(np.uint8)  # uint8 0/255 center to -128/127
    _assert_same(gemm(a_u, b, 128), want, f"uint8 K={K}")


@pytest.mark.kernels
def test_float32_bound_is_sharp():
    """At K = 1025 plain float32 fails (2^24 + 1 is not a float32); the blocked kernel does not."""
    K = 1025
    a = np.full((9, K), -128, np.int8)           # 9 rows: the BLAS path
    b = np.full((K, 1), -128, np.int8)
    a[:, -1], b[-1, 0] = 1, 1                    # 1024 · 2^14 + 1 = 2^24 + 1
    exact = 2**24 + 1
    naive = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64)[0, 0]
    assert naive != exact, "float32 without K blocks should lose the +1"
    assert (gemm(a, b) == exact).all()


@pytest.mark.kernels
@pytest.mark.parametrize("M", [1, 9])
def test_overflow_rule(M):
    """K·255·255 past 2^31: exact warns (and wraps) or raises; wrap is silent."""
    K = 33026                                    # 33026 · 65025 > 2^31
    a = np.full((M, K), 255, np.uint8)
    b = np.full((K, 1), -128, np.int8)
    exact = K * 255 * (-128 - 127)
    wrapped = np.full((M, 1), exact, np.int64).astype(np.int32)
    for fn in (gemm, gemm_reference) if M == 1 else (gemm,):  # M = 9: the BLAS path's int64 recheck
        with pytest.warns(AccumulatorOverflowWarning, match="outside"):
            got = fn(a, b, 0, 127)
        _assert_same(got, wrapped, fn.__name__)
        with pytest.raises(AccumulatorOverflowError, match="acc_model='exact'"):
            fn(a, b, 0, 127, on_overflow="raise")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _assert_same(fn(a, b, 0, 127, acc_model="wrap"), wrapped, fn.__name__)
    # In range again: the same large K with a zero point that keeps |acc| < 2^31 must not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (gemm(a, b, 0, -128) == 0).all()


@pytest.mark.kernels
def test_pairwise_by_hand():
    """One vpmaddubsw lane: 255·127 + 255·127 = 64770 saturates to 32767; odd K pads with 0."""
    a = np.array([[255, 255, 255]], np.uint8)
    b = np.array([[127], [127], [-128]], np.int8)
    raw = 32767 + 255 * -128                               # sat16(64770) + the unpaired term
    assert pairwise_sat16_reference(a, b)[0, 0] == raw
    assert pairwise_sat16(a, b)[0, 0] == raw
    # zero points are applied exactly, after the saturated raw sum (eq. (3))
    za, zb = 3, -2
    want = raw - zb * int(a.astype(np.int64).sum()) - za * int(b.astype(np.int64).sum()) + 3 * za * zb
    for fn in (gemm, gemm_reference):
        assert fn(a, b, za, zb, acc_model="pairwise_sat16_u8s8")[0, 0] == want
    assert gemm(a, b, za, zb)[0, 0] == int(((a.astype(np.int64) - za) @ (b.astype(np.int64) - zb))[0, 0])


@pytest.mark.kernels
def test_matmul_batched_broadcasting():
    rng = np.random.default_rng(7)
    a = _rand(rng, np.uint8, (2, 1, 4, 5))
    b = _rand(rng, np.int8, (3, 5, 6))
    want = np.matmul(a.astype(np.int64) - 3, b.astype(np.int64) + 2).astype(np.int32)
    _assert_same(matmul(a, b, 3, -2), want, "batched")
    _assert_same(matmul_reference(a, b, 3, -2), want, "batched reference")
    _assert_same(matmul(a, b, 3, -2, acc_model="pairwise_sat16_u8s8"),
                 matmul_reference(a, b, 3, -2, acc_model="pairwise_sat16_u8s8"), "batched pairwise")
    v = _rand(rng, np.int8, (5,))
    _assert_same(matmul(a[0, 0], v), (a[0, 0].astype(np.int64) @ v.astype(np.int64)).astype(np.int32), "1-D b")
    _assert_same(matmul(v, b), (v.astype(np.int64) @ b.astype(np.int64)).astype(np.int32), "1-D a")
    with pytest.raises(ShapeError, match="do not broadcast"):
        matmul(_rand(rng, np.int8, (2, 3, 5)), _rand(rng, np.int8, (4, 5, 2)))


@pytest.mark.kernels
def test_profile_names_accepted():
    a = np.ones((2, 3), np.uint8)
    b = np.ones((3, 2), np.int8)
    _assert_same(gemm(a, b, acc_model="exact_int32"), gemm(a, b), "exact_int32")
    _assert_same(gemm(a, b, acc_model="wrap_int32"), gemm(a, b), "wrap_int32")


@pytest.mark.kernels
@pytest.mark.parametrize("fn", [gemm, gemm_reference])
def test_bad_input(fn):
    a = np.zeros((2, 3), np.uint8)
    b = np.zeros((3, 4), np.int8)
    with pytest.raises(QuantizationTypeError, match="a must have dtype int8 or uint8, got float32"):
        fn(a.astype(np.float32), b)
    with pytest.raises(QuantizationTypeError, match="b must have dtype int8 or uint8, got int16"):
        fn(a, b.astype(np.int16))
    with pytest.raises(QuantizationTypeError, match="NumPy int8 or uint8 array"):
        fn([[1, 2, 3]], b)
    with pytest.raises(ShapeError, match="K = a.shape\\[1\\] = 3 rows"):
        fn(a, np.zeros((4, 4), np.int8))
    with pytest.raises(ShapeError, match="a must be 2-D"):
        fn(np.zeros(3, np.uint8), b)
    with pytest.raises(QuantizationValueError, match="a_zero_point must be in \\[0, 255\\].*got 300"):
        fn(a, b, 300)
    with pytest.raises(QuantizationValueError, match="b_zero_point must be in \\[-128, 127\\].*got -129"):
        fn(a, b, 0, -129)
    with pytest.raises(QuantizationTypeError, match="a_zero_point must be a Python int or have the dtype"):
        fn(a, b, np.int16(3))
    with pytest.raises(QuantizationTypeError, match="a_zero_point must be a Python int.*got dtype float64"):
        fn(a, b, 1.5)
    with pytest.raises(ShapeError, match="b_zero_point must have 4 elements"):
        fn(a, b, 0, np.zeros(3, np.int8))
    with pytest.raises(ShapeError, match="a_zero_point must have 2 elements"):
        fn(a, b, np.zeros(3, np.uint8))
    with pytest.raises(QuantizationValueError, match="acc_model must be one of"):
        fn(a, b, acc_model="saturate")
    with pytest.raises(QuantizationTypeError, match="needs a uint8 and b int8"):
        fn(b.T.copy(), a.T.copy(), acc_model="pairwise_sat16_u8s8")
    with pytest.raises(QuantizationValueError, match="on_overflow must be"):
        fn(a, b, on_overflow="ignore")


@pytest.mark.kernels
def test_same_result_for_any_blas_thread_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(3)
    a, b = _rand(rng, np.uint8, (64, 1500)), _rand(rng, np.int8, (1500, 48))
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        one = gemm(a, b, 7, -3)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        two = gemm(a, b, 7, -3)
    _assert_same(one, two, "1 vs 2 BLAS threads")
    _assert_same(one, _oracle(a, b, 7, -3).astype(np.int32), "oracle")


# ------------------------------------------------------------------ ONNX Runtime on this CPU

# the ort_runner fixture is in conftest.py; the accumulation model is the one the onnxruntime profile
# resolves for this CPU (pairs saturate on AVX2 without VNNI, exact with VNNI)
ORT_HOST = get_profile("onnxruntime").with_isa("auto")

@pytest.mark.conformance
@pytest.mark.parametrize("K", [64, 33, 2, 1])
@pytest.mark.parametrize("per_column", [False, True])
def test_matmul_integer_u8s8_matches_pairwise_model(ort_runner, K, per_column):
    """ORT MatMulInteger u8×s8 = the host's model exactly: eq. (3) on AVX2 (and then it differs from
    exact on full-range data), exact on a VNNI CPU."""
    rng = np.random.default_rng(K * 2 + per_column)
    a, b = _rand(rng, np.uint8, (16, K)), _rand(rng, np.int8, (K, 24))
    za = np.uint8(rng.integers(0, 256))
    zb = _rand(rng, np.int8, (24,)) if per_column else np.int8(rng.integers(-128, 128))
    got = ort_runner.run_matmul_integer(a, b, za, zb)
    model = ORT_HOST.accumulation("linear", np.uint8, np.int8)
    _assert_same(got, gemm(a, b, za, zb, acc_model=model), f"ORT vs {model} ({ORT_HOST.isa}) K={K}")
    if K >= 33:
        pairs_differ = np.count_nonzero(gemm(a, b, za, zb, acc_model="pairwise_sat16_u8s8") != gemm(a, b, za, zb))
        assert pairs_differ > 0, "full-range u8s8 data should saturate a pair somewhere"
        assert (np.count_nonzero(got != gemm(a, b, za, zb)) > 0) == (model == "pairwise_sat16_u8s8")


@pytest.mark.conformance
@pytest.mark.parametrize("ta,tb", [(np.int8, np.uint8), (np.int8, np.int8), (np.uint8, np.uint8)])
def test_matmul_integer_other_types_are_exact(ort_runner, ta, tb):
    """Measured: s8×u8, s8×s8, u8×u8 MatMulInteger are exact on AVX2 and on VNNI (no pair saturation)."""
    rng = np.random.default_rng(11)
    a, b = _rand(rng, ta, (16, 65)), _rand(rng, tb, (65, 24))
    za, zb = _rand(rng, ta, ()), _rand(rng, tb, ())
    _assert_same(ort_runner.run_matmul_integer(a, b, za, zb), gemm(a, b, za, zb), f"{ta.__name__}x{tb.__name__}")


@pytest.mark.conformance
def test_matmul_integer_batched_and_extremes(ort_runner):
    rng = np.random.default_rng(12)
    a = np.concatenate([np.full((1, 2, 8), 255, np.uint8), _rand(rng, np.uint8, (1, 2, 8))], axis=0)
    b = np.stack([np.full((8, 3), 127, np.int8), np.full((8, 3), -128, np.int8)])
    got = ort_runner.run_matmul_integer(a, b, np.uint8(0), np.int8(0))
    model = ORT_HOST.accumulation("linear", np.uint8, np.int8)
    _assert_same(got, matmul(a, b, acc_model=model), f"batched extremes ({ORT_HOST.isa})")
    # four saturated pairs on AVX2; the exact 8 * 255 * 127 with VNNI
    assert got[0, 0, 0] == (4 * 32767 if model == "pairwise_sat16_u8s8" else 8 * 255 * 127)

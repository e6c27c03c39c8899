"""From a naive loop to a fast int8 GEMM, one step at a time (Learn 6).

Each step computes Learn 3's eq. (3), acc = (a - za) @ (b - zb) in int32, for uint8/int8 ``a``
(M, K), ``b`` (K, N) and scalar zero points. Run as a script, this file checks every step against
refquant's ``gemm_reference`` on small shapes; ``benchmarks/naive_to_fast.py`` imports the same
functions and times them on 256x1024x1024.
"""
import numba
import numpy as np

from refquant.kernels.gemm import gemm, gemm_reference


# Step 0: the equation, in Python.
def step0_python(a, b, za, zb):
    M, K = a.shape
    N = b.shape[1]
    out = np.zeros((M, N), np.int32)
    for m in range(M):
        for n in range(N):
            acc = 0
            for k in range(K):
                acc += (int(a[m, k]) - za) * (int(b[k, n]) - zb)
            out[m, n] = acc
    return out


# Step 1: NumPy. No BLAS multiplies integers: int32 @ is a plain C loop.
def step1_numpy_int32(a, b, za, zb):
    return (a.astype(np.int32) - np.int32(za)) @ (b.astype(np.int32) - np.int32(zb))


# Step 2: the same three loops, compiled by Numba. The inner loop walks down a column of b.
@numba.njit(cache=True)
def _naive(a, b, za, zb, out):
    M, K = a.shape
    N = b.shape[1]
    for m in range(M):
        for n in range(N):
            acc = np.int32(0)
            for k in range(K):
                acc += np.int32(np.int32(a[m, k]) - za) * np.int32(np.int32(b[k, n]) - zb)
            out[m, n] = acc


def step2_numba_naive(a, b, za, zb):
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    _naive(a, b, np.int32(za), np.int32(zb), out)
    return out


# Step 3: transpose b once, so that the inner loop reads both operands contiguously.
@numba.njit(cache=True)
def _transposed(a, bt, za, zb, out):
    M, K = a.shape
    N = bt.shape[0]
    for m in range(M):
        for n in range(N):
            acc = np.int32(0)
            for k in range(K):
                acc += np.int32(np.int32(a[m, k]) - za) * np.int32(np.int32(bt[n, k]) - zb)
            out[m, n] = acc


def step3_transposed(a, b, za, zb):
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    _transposed(a, np.ascontiguousarray(b.T), np.int32(za), np.int32(zb), out)
    return out


# Step 4: center once into int16. |a - za| and |b - zb| are at most 255, so they fit int16, and a
# product of two int16 fits int32. LLVM now recognizes the loop as a sum of int16 products and
# emits x86 vpmaddwd: 16 multiplications and 8 additions in one instruction, exact here (a pair
# sum is at most 2 * 255 * 255 < 2^31). The zero points leave the inner loop.
@numba.njit(cache=True)
def _dot16(a16, bt16, out):
    M, K = a16.shape
    N = bt16.shape[0]
    for m in range(M):
        for n in range(N):
            acc = np.int32(0)
            for k in range(K):
                acc += np.int32(a16[m, k]) * np.int32(bt16[n, k])
            out[m, n] = acc


def _centered_int16(a, b, za, zb):
    a16 = a.astype(np.int16) - np.int16(za)                        # (M, K) int16, |.| <= 255
    bt16 = np.ascontiguousarray(b.T).astype(np.int16) - np.int16(zb)  # (N, K) int16, |.| <= 255
    return a16, bt16


def step4_int16(a, b, za, zb):
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    _dot16(*_centered_int16(a, b, za, zb), out)
    return out


# Step 5: the same loop over row views with an unsigned index. A signed index may be negative,
# and Numba then emits Python's wrap-around (x[-1] is the last element) on every access; an
# np.uint64 index cannot be negative, and the simpler loop vectorizes better.
@numba.njit(cache=True)
def _dot16_unsigned(a16, bt16, out):
    M, K = a16.shape
    N = bt16.shape[0]
    for m in range(M):
        am = a16[m]                        # (K,) view of row m
        for n in range(N):
            bn = bt16[n]                   # (K,) view of column n of b
            acc = np.int32(0)
            for k in range(np.uint64(K)):
                acc += np.int32(am[k]) * np.int32(bn[k])
            out[m, n] = acc


def step5_unsigned(a, b, za, zb):
    out = np.empty((a.shape[0], b.shape[1]), np.int32)
    _dot16_unsigned(*_centered_int16(a, b, za, zb), out)
    return out


# Step 6: refquant's fallback (no AVX2, JIT off, or a possible overflow): eq. (5) of Learn 3 on a
# float32 BLAS, exact by a bound on K.
def step6_exact_float_blas(a, b, za, zb):
    from refquant.kernels import _exact_blas as eb
    M, N = a.shape[0], b.shape[1]
    out = np.empty((M, N), np.int32)
    af, row_sum, ca = eb.centered_f32(a, sums="rows")  # (M, K) float32 in [-128, 127]
    bf, col_sum, cb = eb.centered_f32(b, sums="cols")  # (K, N) float32 in [-128, 127]
    za_v = np.full(M, za, np.int64) - ca
    zb_v = np.full(N, zb, np.int64) - cb
    eb.gemm_centered(af, row_sum, za_v, bf, col_sum, zb_v, out)  # K-blocks <= 1024: exact
    return out


def step7_vpmaddwd_microkernel(a, b, za, zb):
    return gemm(a, b, za, zb)  # refquant's dispatch: the register-blocked vpmaddwd kernel on AVX2


STEPS = [step0_python, step1_numpy_int32, step2_numba_naive, step3_transposed, step4_int16, step5_unsigned,
         step6_exact_float_blas, step7_vpmaddwd_microkernel]

if __name__ == "__main__":
    rng = np.random.default_rng(6)
    for M, K, N in ((1, 1, 1), (3, 5, 7), (9, 33, 17), (12, 1100, 10)):   # K > 1024: two BLAS blocks
        a = rng.integers(0, 256, (M, K)).astype(np.uint8)
        b = rng.integers(-128, 128, (K, N)).astype(np.int8)
        za, zb = int(rng.integers(0, 256)), int(rng.integers(-128, 128))
        want = gemm_reference(a, b, za, zb)                                # (M, N) int32
        for step in STEPS:
            got = step(a, b, za, zb)
            np.testing.assert_array_equal(got, want, err_msg=f"{step.__name__} at {(M, K, N)}")
            assert got.dtype == np.int32 and got.shape == (M, N)
        print(f"{M}x{K}x{N}: all {len(STEPS)} steps equal gemm_reference")

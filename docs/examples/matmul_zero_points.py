"""The zero-point algebra on a 2x3 by 3x2 example you can check by hand (Learn 3, eqs. (3)-(5))."""
import numpy as np

from refquant.kernels.gemm import gemm, gemm_reference

a = np.array([[5, 3, 4],
              [2, 7, 4]], dtype=np.uint8)   # (M, K) = (2, 3) uint8 activations
b = np.array([[1, -2],
              [0, 3],
              [2, 1]], dtype=np.int8)       # (K, N) = (3, 2) int8 weights
za, zb, K = 3, 1, 3

# eq. (3), directly: subtract the zero points, then multiply and add.
#   a - za = [[2, 0, 1], [-1, 4, 1]],  b - zb = [[0, -3], [-1, 2], [1, 0]]
direct = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)       # (2, 2) int64
print("direct     :", direct.tolist())
assert direct.tolist() == [[1, -6], [-3, 11]]

# eq. (4): four terms. Only P is a matrix product; the zero points never enter the inner loop.
P = a.astype(np.int64) @ b.astype(np.int64)   # [[13, 3], [10, 21]]
r = a.astype(np.int64).sum(axis=1)            # row sums of a:    [12, 13]
c = b.astype(np.int64).sum(axis=0)            # column sums of b: [3, 2]
four_terms = P - zb * r[:, None] - za * c[None, :] + K * za * zb
print("P =", P.tolist(), " r =", r.tolist(), " c =", c.tolist())
print("four terms :", four_terms.tolist())
assert P.tolist() == [[13, 3], [10, 21]] and r.tolist() == [12, 13] and c.tolist() == [3, 2]
np.testing.assert_array_equal(four_terms, direct)       # e.g. 13 - 1*12 - 3*3 + 3*3*1 = 1

# refquant: the reference (eq. (3) in int64) and the fast kernel (AVX2 vpmaddwd, or eq. (4) on an exact BLAS).
ref = gemm_reference(a, b, za, zb)
fast = gemm(a, b, za, zb)
print("gemm       :", fast.tolist(), fast.dtype)
np.testing.assert_array_equal(ref, direct)
np.testing.assert_array_equal(fast, direct)
assert fast.dtype == np.int32

# Per-column weight zero points (one per output channel) work the same way: zb[n] in eq. (4).
zb_col = np.array([1, -1], dtype=np.int8)
per_col = gemm(a, b, za, zb_col)
np.testing.assert_array_equal(per_col, (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb_col.astype(np.int64)))
print("zb = [1, -1]:", per_col.tolist())

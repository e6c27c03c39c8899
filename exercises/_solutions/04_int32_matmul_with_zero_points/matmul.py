"""Exercise 04: an int32 matrix product with zero points. SOLUTION (spoilers: try the exercise first).

Read first: docs "Learn 3: Quantized matrix multiplication and the zero-point algebra"
(docs/learn/quantized-matmul.md).
Check your work: ``python -m exercises 04`` from the repository root.

Fill in each function between ``# BEGIN YOUR SOLUTION`` and ``# END YOUR SOLUTION``, with NumPy
only (the tests compare with ``refquant.kernels.gemm.gemm_reference``). Every function takes ``a``,
an (M, K) uint8 or int8 array, and ``b``, a (K, N) uint8 or int8 array, and returns an (M, N)
**int32** array. The zero points are Python ints, except ``b_zero_point``, which may also be a
1-D array of N values (one per column of ``b``: per-output-channel weights). The tests keep every
exact result inside int32.

Mind the widths: ``a - a_zero_point`` on a uint8 array stays uint8 and wraps (3 - 4 = 255), and
products of int8 values wrap too. Cast to ``np.int64`` first, compute, then cast the result to
``np.int32``.
"""

import numpy as np


def matmul_int32(a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point) -> np.ndarray:
    """Learn 3, eq. (3): ``acc[m, n] = sum_k (a[m, k] - za) * (b[k, n] - zb[n])``, as int32.

    Subtract the zero points, then multiply: the direct formula.
    """
    # BEGIN YOUR SOLUTION
    a64 = a.astype(np.int64) - np.int64(a_zero_point)              # (M, K)
    b64 = b.astype(np.int64) - np.asarray(b_zero_point, np.int64)  # (K, N); zb broadcasts over rows
    return (a64 @ b64).astype(np.int32)
    # END YOUR SOLUTION


def row_and_column_sums(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sums of Learn 3, eq. (4): ``r[m] = sum_k a[m, k]`` (shape (M,)) and
    ``c[n] = sum_k b[k, n]`` (shape (N,)), of the raw codes, both int64."""
    # BEGIN YOUR SOLUTION
    return a.astype(np.int64).sum(axis=1), b.astype(np.int64).sum(axis=0)
    # END YOUR SOLUTION


def matmul_int32_folded(a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point) -> np.ndarray:
    """Learn 3, eqs. (4)-(5): the same result with the zero points folded out of the product:

        acc = P - zb[n] * r[m] - za * c[n] + K * za * zb[n],    P = a @ b of the raw codes.

    Only ``P`` is a matrix product; use :func:`row_and_column_sums` for ``r`` and ``c``.
    """
    # BEGIN YOUR SOLUTION
    K = a.shape[1]
    za = np.int64(a_zero_point)
    zb = np.asarray(b_zero_point, np.int64)       # () or (N,)
    P = a.astype(np.int64) @ b.astype(np.int64)   # (M, N) raw codes
    r, c = row_and_column_sums(a, b)
    acc = P - zb * r[:, None] - za * c[None, :] + K * za * zb
    return acc.astype(np.int32)
    # END YOUR SOLUTION


def matmul_pairwise_sat16(a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point) -> np.ndarray:
    """Learn 3, eq. (10): x86 AVX2 ``vpmaddubsw`` for uint8 ``a`` and int8 ``b``.

    The **raw** codes are multiplied, adjacent products along K (k = 2i and 2i + 1) are added and
    the pair sum is saturated to int16, ``sat16(v) = min(max(v, -32768), 32767)``; the pairs are
    summed exactly, then the zero-point terms of eq. (4) are added exactly:

        acc = sum_i sat16(a[m,2i] b[2i,n] + a[m,2i+1] b[2i+1,n]) - zb[n] r[m] - za c[n] + K za zb[n]

    An odd K leaves the last product without a partner: it forms a pair with 0.
    """
    # BEGIN YOUR SOLUTION
    M, K = a.shape
    a64 = a.astype(np.int64)
    b64 = b.astype(np.int64)
    if K % 2:                                     # pad K to even with a zero term
        a64 = np.concatenate([a64, np.zeros((M, 1), np.int64)], axis=1)
        b64 = np.concatenate([b64, np.zeros((1, b64.shape[1]), np.int64)], axis=0)
    pairs = a64[:, 0::2, None] * b64[None, 0::2, :] + a64[:, 1::2, None] * b64[None, 1::2, :]  # (M, K/2, N)
    s = np.clip(pairs, -32768, 32767).sum(axis=1)                                             # (M, N)
    za = np.int64(a_zero_point)
    zb = np.asarray(b_zero_point, np.int64)
    r, c = row_and_column_sums(a, b)
    return (s - zb * r[:, None] - za * c[None, :] + K * za * zb).astype(np.int32)
    # END YOUR SOLUTION

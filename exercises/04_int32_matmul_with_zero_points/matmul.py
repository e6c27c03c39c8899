"""Exercise 04: an int32 matrix product with zero points.  <- the file you edit.

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
    raise NotImplementedError("matmul_int32")
    # END YOUR SOLUTION


def row_and_column_sums(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sums of Learn 3, eq. (4): ``r[m] = sum_k a[m, k]`` (shape (M,)) and
    ``c[n] = sum_k b[k, n]`` (shape (N,)), of the raw codes, both int64."""
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("row_and_column_sums")
    # END YOUR SOLUTION


def matmul_int32_folded(a: np.ndarray, b: np.ndarray, a_zero_point, b_zero_point) -> np.ndarray:
    """Learn 3, eqs. (4)-(5): the same result with the zero points folded out of the product:

        acc = P - zb[n] * r[m] - za * c[n] + K * za * zb[n],    P = a @ b of the raw codes.

    Only ``P`` is a matrix product; use :func:`row_and_column_sums` for ``r`` and ``c``.
    """
    # BEGIN YOUR SOLUTION
    raise NotImplementedError("matmul_int32_folded")
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
    raise NotImplementedError("matmul_pairwise_sat16")
    # END YOUR SOLUTION

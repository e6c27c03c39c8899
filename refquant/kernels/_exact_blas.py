r"""Exact integer GEMM on a float32 BLAS (internal): the fast engine of :mod:`.gemm` and :mod:`.conv`.

A float32 GEMM (OpenBLAS/MKL ``sgemm``, through ``np.matmul``) runs at near the CPU's
peak FMA rate. It returns the *exact* integer result when every partial sum it can form
is an integer it can represent. This module centers the int8/uint8 operands so that this
holds, and folds the centering and the zero points back in with integer algebra.

**Centering.** Write $c_a = 128$ if ``a`` is uint8 and $0$ if int8, and the same for
$c_b$. The centered operands $a' = a - c_a$, $b' = b - c_b$ lie in $[-128, 127]$, and with
$z'_a = z_a - c_a$, $z'_b = z_b - c_b$:

$$ a - z_a = a' - z'_a, \qquad b - z_b = b' - z'_b. \tag{1} $$

**Zero-point algebra** (gemmlowp ``doc/low-precision.md``; per-row $z_a[m]$, per-column
$z_b[n]$). With $r_m = \sum_k a'_{mk}$ and $c_n = \sum_k b'_{kn}$:

$$ \mathrm{acc}_{mn} = \sum_k (a'_{mk} - z'_a[m])(b'_{kn} - z'_b[n])
   = \underbrace{\sum_k a'_{mk} b'_{kn}}_{P_{mn}}
     - z'_b[n]\,\bigl(r_m - K z'_a[m]\bigr) - z'_a[m]\,c_n. \tag{2} $$

The row and column sums leave the inner loop; only $P$ is a GEMM.

**Exactness of $P$ in float32** (the claim the fast path rests on). Let $|a'|, |b'| \le 128$
and split $K$ into blocks of at most $K_B = 1024$ terms. Within one block:

1. every product is an integer with $|a'b'| \le 128 \cdot 128 = 2^{14} < 2^{24}$, so it is
   a float32 value and the float32 (or FMA) multiplication returns it exactly;
2. every partial sum $T$ the BLAS forms — over *any* subset of the block, in any order,
   blocking, vector-lane split or thread split — is an integer with
   $|T| \le \sum |a'b'| \le K_B \cdot 2^{14} = 2^{24}$; every integer of magnitude
   $\le 2^{24}$ is a float32 value (24-bit significand), and IEEE addition (and FMA) is
   correctly rounded, so each addition returns its exact sum. By induction over the
   summation tree, the block result is exact. $\tag{3}$

The block results are converted to int32 (exactly) and added in int32 arithmetic. The bound
is sharp: at $K = 1025$, 1024 products of $2^{14}$ and one product of $1$ sum to
$2^{24}+1$, which float32 cannot hold (``tests/test_kernels_gemm.py`` shows it). Because
every intermediate is exact, the result does not depend on the BLAS library, its kernel
(``OPENBLAS_CORETYPE``) or its thread count.

**int32 arithmetic.** Eq. (2) is evaluated in wrapping int32 arithmetic, which is exact
modulo $2^{32}$: the result is the exact value whenever that value fits in int32, and its
two's-complement wrap otherwise. The callers decide, from a bound or an int64 recomputation,
whether an overflow can have happened (:mod:`._checks`).
"""

from __future__ import annotations

import numba
import numpy as np

K_BLOCK = 1024  # eq. (3): K_BLOCK * 2^14 = 2^24


@numba.njit(cache=True)
def center_rows(x, c, out, row_sum):
    """out = float32(x - c) (R, C); row_sum[i] = Σ_j (x[i, j] - c) (int32; exact for C < 2^24)."""
    R, C = x.shape
    c32 = np.int32(c)
    for i in range(R):
        xi = x[i]
        oi = out[i]
        s = np.int32(0)
        for j in range(C):
            v = np.int32(np.int32(xi[j]) - c32)
            oi[j] = np.float32(v)
            s = np.int32(s + v)
        row_sum[i] = s


@numba.njit(cache=True)
def center_cols(x, c, out, col_sum):
    """out = float32(x - c) (R, C); col_sum[j] = Σ_i (x[i, j] - c) (int32; exact for R < 2^24)."""
    R, C = x.shape
    c32 = np.int32(c)
    for j in range(C):
        col_sum[j] = 0
    for i in range(R):
        xi = x[i]
        oi = out[i]
        for j in range(C):
            v = np.int32(np.int32(xi[j]) - c32)
            oi[j] = np.float32(v)
            col_sum[j] = np.int32(col_sum[j] + v)


@numba.njit(cache=True)
def add_block(p, acc):
    """acc += int32(p), wrapping int32; p holds exact integers (float32 block products)."""
    M, N = p.shape
    for m in range(M):
        for n in range(N):
            acc[m, n] = np.int32(acc[m, n] + np.int32(p[m, n]))


@numba.njit(cache=True)
def apply_zero_points(p, u, za, col_sum, zb, out):
    """Eq. (2) in wrapping int32: out[m, n] = P[m, n] - zb[n]·u[m] - za[m]·col_sum[n].

    p (M, N) float32 (exact integers) or int32; u = r - K·z'_a, za = z'_a (M,) int32;
    col_sum, zb = z'_b (N,) int32.
    """
    M, N = out.shape
    for m in range(M):
        um = np.int32(u[m])
        zam = np.int32(za[m])
        pm = p[m]
        om = out[m]
        for n in range(N):
            v = np.int32(pm[n])
            v = np.int32(v - np.int32(zb[n] * um))
            om[n] = np.int32(v - np.int32(zam * col_sum[n]))


def centered_f32(x: np.ndarray, *, sums: str):
    """Center an int8/uint8 matrix into float32; return ``(x', sums, c)``.

    ``sums="rows"`` or ``"cols"`` selects which sums of $x' = x - c$ come with it (eq. (2)).
    """
    c = 128 if x.dtype == np.uint8 else 0
    out = np.empty(x.shape, np.float32)
    if sums == "rows":
        s = np.empty(x.shape[0], np.int32)
        center_rows(x, c, out, s)
    else:
        s = np.empty(x.shape[1], np.int32)
        center_cols(x, c, out, s)
    return out, s, c


def exact_product(af: np.ndarray, bf: np.ndarray) -> np.ndarray:
    """$P = a' b'$ for centered float32 operands: float32 (exact) if $K \\le K_B$, else wrapping int32."""
    M, K = af.shape
    N = bf.shape[1]
    if K <= K_BLOCK:
        out = np.empty((M, N), np.float32)
        return np.matmul(af, bf, out=out)
    acc = np.zeros((M, N), np.int32)
    blk = np.empty((M, N), np.float32)
    for k0 in range(0, K, K_BLOCK):  # eq. (3) per block, then int32 sums
        np.matmul(af[:, k0:k0 + K_BLOCK], bf[k0:k0 + K_BLOCK], out=blk)
        add_block(blk, acc)
    return acc


def exact_product_int64(af: np.ndarray, bf: np.ndarray) -> np.ndarray:
    """$P$ in int64 (no wrap), block by block: used only when an int32 overflow is possible."""
    acc = np.zeros((af.shape[0], bf.shape[1]), np.int64)
    for k0 in range(0, af.shape[1], K_BLOCK):
        acc += np.matmul(af[:, k0:k0 + K_BLOCK], bf[k0:k0 + K_BLOCK]).astype(np.int64)
    return acc


def gemm_centered(af, row_sum, za_c, bf, col_sum, zb_c, out):
    """Write eq. (2) into ``out`` (M, N) int32 (wrapping) from centered operands.

    ``za_c`` (M,) and ``zb_c`` (N,) are the centered zero points $z'$ (int64 arrays).
    """
    K = af.shape[1]
    p = exact_product(af, bf)
    za32 = za_c.astype(np.int32)  # |z'| <= 255
    u = (row_sum.astype(np.int64) - K * za_c).astype(np.int32)  # mod 2^32, eq. (2)
    with np.errstate(over="ignore"):  # wrapping is intended (only matters with the JIT off)
        apply_zero_points(p, u, za32, col_sum, zb_c.astype(np.int32), out)
    return out


def gemm_centered_int64(af, row_sum, za_c, bf, col_sum, zb_c):
    """Eq. (2) in int64 (no wrap): the slow check used when a bound admits an int32 overflow."""
    K = af.shape[1]
    p = exact_product_int64(af, bf)
    u = row_sum.astype(np.int64) - K * za_c
    return p - zb_c[None, :] * u[:, None] - za_c[:, None] * col_sum.astype(np.int64)[None, :]

r"""Integer GEMM: int8/uint8 × int8/uint8 → int32 accumulators with zero points.

The quantity every quantized matmul, linear layer and convolution computes before
requantization (which lives in another module):

$$ \mathrm{acc}_{mn} = \sum_{k=0}^{K-1} \bigl(a_{mk} - z_a[m]\bigr)\bigl(b_{kn} - z_b[n]\bigr) \tag{1} $$

with a per-tensor or per-row zero point $z_a$ (shape ``()`` or ``(M,)``) and a per-tensor or
per-column $z_b$ (``()`` or ``(N,)``). Expanding the product (gemmlowp's zero-point
algebra) takes the zero points out of the inner loop:

$$ \mathrm{acc}_{mn} = \underbrace{\sum_k a_{mk} b_{kn}}_{\text{GEMM}}
   - z_b[n] \underbrace{\sum_k a_{mk}}_{\text{row sum } r_m}
   - z_a[m] \underbrace{\sum_k b_{kn}}_{\text{column sum } c_n}
   + K\, z_a[m]\, z_b[n]. \tag{2} $$

The row sums cost $MK$ additions, the column sums $KN$, against $MKN$ multiply-adds.

**Accumulation models** (``acc_model``; ``refquant.profiles`` names ``exact_int32`` and
``wrap_int32`` are accepted too):

* ``"exact"``: eq. (1) in exact arithmetic, returned as int32; a value outside int32 follows
  the overflow rule of ``on_overflow`` (warn and wrap, or raise; see ``_checks``).
* ``"wrap"``: eq. (1) modulo $2^{32}$, two's complement (what int32 adders return).
* ``"pairwise_sat16_u8s8"``: x86 AVX2 without VNNI, ``vpmaddubsw`` as used by ONNX Runtime's
  MLAS (MatMulInteger, QLinearMatMul, QLinearConv) and fbgemm for uint8 ``a`` × int8 ``b``.
  The **raw** operands (zero points not subtracted) are multiplied and adjacent pairs
  $(2i, 2i+1)$ along $K$ are summed with int16 saturation, then accumulated in int32; the
  zero-point terms of eq. (2) are added afterwards, exactly (odd $K$: a zero pad term):

  $$ \mathrm{acc}_{mn} = \sum_{i} \mathrm{sat}_{16}\bigl(a_{m,2i} b_{2i,n} + a_{m,2i+1} b_{2i+1,n}\bigr)
     - z_b[n]\, r_m - z_a[m]\, c_n + K z_a[m] z_b[n], \tag{3} $$
  $\mathrm{sat}_{16}(v) = \min(\max(v, -32768), 32767)$. Measured: ORT 1.32 MatMulInteger
  u8×s8 on an AVX2 CPU equals eq. (3), per-tensor and per-column $z_b$.
* ``"pairwise_sat16_s8u8"``: the same arithmetic for int8 ``a`` × uint8 ``b`` (the pair sum
  is symmetric in its operands). ONNX Runtime's ConvInteger with int8 ``x`` and uint8 ``w``
  computes $W \cdot \mathrm{im2col}(x)$, i.e. a u8×s8 product with the weights as the
  unsigned operand (see :mod:`.conv`). Note that ORT's *MatMulInteger* with int8 ``a`` and
  uint8 ``b`` measured **exact** on the same machine: choose the model per backend op.

The fast path (:func:`gemm`) evaluates eq. (1) with AVX2 ``vpmaddwd`` on x86-64
(:mod:`._gemm_fast`) and otherwise eq. (2) on a float32 BLAS, proven exact in
:mod:`._exact_blas`; :func:`gemm_reference` is the plain int64 NumPy spec.
:func:`matmul` / :func:`matmul_reference` add NumPy ``matmul`` batching and broadcasting.

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError
from . import _exact_blas as eb
from . import _gemm_fast as gf
from . import _gemm_vnni as vn
from . import _gemv_fast as gv
from ._checks import (
    INT32_MAX,
    gemm_args,
    check_operand,
    finish_int64,
    max_abs_centered,
    report_overflow,
)

__all__ = ["gemm_reference", "gemm", "matmul_reference", "matmul", "pairwise_sat16_reference",
           "pairwise_sat16"]



def _validate(a, b, a_zero_point, b_zero_point, acc_model, on_overflow):
    return gemm_args(a, b, a_zero_point, b_zero_point, acc_model, on_overflow)


# ----------------------------------------------------------------------------------------
# 1. Reference: eq. (1) and eq. (3) in int64 NumPy
# ----------------------------------------------------------------------------------------

def _pair_operands(a, b):
    """(M, K) and (K, N) integer arrays of raw codes (the pair sums' building block is public, so checked)."""
    a, b = (V.asarray(v, n, kinds=None, what="a 2-D integer array") for v, n in ((a, "a"), (b, "b")))
    for v, n in ((a, "a"), (b, "b")):
        if v.dtype.kind not in "iu" or v.ndim != 2:
            raise QuantizationTypeError(f"{n} must be a 2-D integer array, got shape {v.shape} dtype {v.dtype}")
    if b.shape[0] != a.shape[1]:
        raise ShapeError(f"b must have K = a.shape[1] = {a.shape[1]} rows, got b.shape = {b.shape}")
    return a, b


def pairwise_sat16_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """$\\sum_i \\mathrm{sat}_{16}(a_{m,2i} b_{2i,n} + a_{m,2i+1} b_{2i+1,n})$ of raw operands (eq. (3)).

    Args:
        a: (M, K) integer array (raw codes). b: (K, N) integer array (raw codes).

    Returns:
        (M, N) int64: the int16-saturated pair sums, accumulated without wrap.
    """
    a, b = _pair_operands(a, b)
    a64 = a.astype(np.int64)  # (M, K)
    b64 = b.astype(np.int64)  # (K, N)
    M, K = a64.shape
    acc = np.zeros((M, b64.shape[1]), np.int64)
    for i in range(0, K, 2):
        pair = a64[:, i, None] * b64[None, i, :]  # (M, N) one vpmaddubsw lane: two products
        if i + 1 < K:                             # odd K: the missing partner is a zero pad
            pair = pair + a64[:, i + 1, None] * b64[None, i + 1, :]
        acc += np.clip(pair, -32768, 32767)        # int16 saturation of the pair sum
    return acc


def gemm_reference(a, b, a_zero_point=0, b_zero_point=0, *, acc_model="exact", on_overflow="warn"):
    """int32 accumulators of eq. (1) (or eq. (3)), written as the equation in int64 NumPy.

    Mirrors ONNX ``MatMulInteger`` (2-D) and the accumulation of ``QLinearMatMul``.

    Args:
        a: (M, K) int8 or uint8.
        b: (K, N) int8 or uint8.
        a_zero_point: Python int or ``a.dtype`` scalar/array; shape () or (M,) (per row).
        b_zero_point: Python int or ``b.dtype`` scalar/array; shape () or (N,) (per column).
        acc_model: ``"exact"``, ``"wrap"``, ``"pairwise_sat16_u8s8"`` (a uint8, b int8) or
            ``"pairwise_sat16_s8u8"`` (a int8, b uint8); see the module docstring.
        on_overflow: ``"warn"`` or ``"raise"`` when an exact value leaves int32.

    Returns:
        (M, N) int32.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad dtypes, zero points,
            shapes or names; AccumulatorOverflowError with ``on_overflow="raise"``.
    """
    a, b, za, zb, model, on_overflow = _validate(a, b, a_zero_point, b_zero_point, acc_model, on_overflow)
    za_col = np.broadcast_to(za, (a.shape[0],))[:, None]  # (M, 1) int64
    zb_row = np.broadcast_to(zb, (b.shape[1],))[None, :]  # (1, N) int64
    if model.startswith("pairwise"):
        K = a.shape[1]
        row_sum = a.astype(np.int64).sum(axis=1, keepdims=True)  # (M, 1)
        col_sum = b.astype(np.int64).sum(axis=0, keepdims=True)  # (1, N)
        acc = (pairwise_sat16_reference(a, b) - zb_row * row_sum - za_col * col_sum
               + K * za_col * zb_row)                           # eq. (3), int64
    else:
        acc = (a.astype(np.int64) - za_col) @ (b.astype(np.int64) - zb_row)  # eq. (1), int64
    return finish_int64(acc, model, on_overflow, "gemm_reference")


# ----------------------------------------------------------------------------------------
# 2. Fast: eq. (2) on an exact float32 BLAS; eq. (3) as a plain Numba loop
# ----------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _pairwise_sat16_kernel(a, bt, out):
    """out[m, n] = Σ_i sat16(a[m,2i]·bt[n,2i] + a[m,2i+1]·bt[n,2i+1]) (int64); bt is b transposed."""
    M, K = a.shape
    N = bt.shape[0]
    for m in range(M):
        am = a[m]
        for n in range(N):
            bn = bt[n]
            acc = np.int64(0)
            for i in range(0, K - 1, 2):
                p = np.int32(np.int32(am[i]) * np.int32(bn[i]) + np.int32(am[i + 1]) * np.int32(bn[i + 1]))
                acc += min(max(p, -32768), 32767)
            if K % 2 == 1:  # zero-padded last pair: a single product always fits int16 saturation
                p = np.int32(np.int32(am[K - 1]) * np.int32(bn[K - 1]))
                acc += min(max(p, -32768), 32767)
            out[m, n] = acc


def pairwise_sat16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Numba twin of :func:`pairwise_sat16_reference` (same arguments, (M, N) int64)."""
    a, b = _pair_operands(a, b)
    out = np.empty((a.shape[0], b.shape[1]), np.int64)
    _pairwise_sat16_kernel(np.ascontiguousarray(a), np.ascontiguousarray(b.T), out)
    return out


_SMALL_M = 8  # up to this many rows a direct int32 loop beats converting b for the BLAS (measured)


@numba.njit(cache=True)
def _gemm_rows_kernel(a, za, b, zb, out):
    """Eq. (1) row by row in wrapping int32, for few rows: acc[m, :] += (a[m,k] - za[m])·b[k, :],
    then subtract zb[n]·Σ_k (a[m,k] - za[m]). Unsigned inner indices let LLVM vectorize (see conv)."""
    M, K = a.shape
    N = b.shape[1]
    for m in range(M):
        acc = out[m]
        for n in range(N):
            acc[n] = 0
        s = np.int32(0)  # Σ_k (a[m, k] - za[m])
        for k in range(np.uint64(K)):
            av = np.int32(np.int32(a[m, k]) - np.int32(za[m]))
            s = np.int32(s + av)
            for n in range(np.uint64(N)):
                acc[n] = np.int32(acc[n] + np.int32(av * np.int32(b[k, n])))
        for n in range(N):
            acc[n] = np.int32(acc[n] - np.int32(s * np.int32(zb[n])))


def _gemm_fast(a, b, za, zb, model, on_overflow, what):
    """Validated operands -> (M, N) int32 (eq. (2) on BLAS, or eq. (3))."""
    M, K = a.shape
    N = b.shape[1]
    za_v = np.full(M, int(za), np.int64) if za.ndim == 0 else za.astype(np.int64)  # (M,)
    zb_v = np.full(N, int(zb), np.int64) if zb.ndim == 0 else zb.astype(np.int64)  # (N,)
    if model.startswith("pairwise"):
        row_sum = a.astype(np.int64).sum(axis=1)
        col_sum = b.astype(np.int64).sum(axis=0)
        acc = (pairwise_sat16(a, b) - zb_v[None, :] * row_sum[:, None] - za_v[:, None] * col_sum[None, :]
               + K * za_v[:, None] * zb_v[None, :])
        return finish_int64(acc, model, on_overflow, what)
    out = np.empty((M, N), np.int32)
    # |acc| <= K·max|a - za|·max|b - zb|: below 2^31 no overflow is possible; else recheck in int64.
    check = model == "exact" and K * max_abs_centered(a.dtype, za) * max_abs_centered(b.dtype, zb) > INT32_MAX
    if vn.vnni_available() and (M <= _SMALL_M or not check):
        # AVX-512 VNNI vpdpbusd: eq. (1) mod 2^32, exact (proof in _gemm_vnni); the int64 recheck below
        vn.gemm_wrap(a, b, za_v, zb_v, out)
        if check:
            acc = (a.astype(np.int64) - za_v[:, None]) @ (b.astype(np.int64) - zb_v[None, :])
            report_overflow(int(np.count_nonzero(acc != out)), model, on_overflow, what)
        return out
    if M <= _SMALL_M:
        if gv.available():  # AVX2 vpmaddwd GEMV on raw b: eq. (1) mod 2^32, exact (proof in _gemv_fast)
            gv.gemv_wrap(a, b, za_v, zb_v, out)
        else:
            with np.errstate(over="ignore"):  # wrapping is intended (matters only with the JIT off)
                _gemm_rows_kernel(a, za_v.astype(np.int32), b, zb_v.astype(np.int32), out)
        if check:
            acc = (a.astype(np.int64) - za_v[:, None]) @ (b.astype(np.int64) - zb_v[None, :])
            report_overflow(int(np.count_nonzero(acc != out)), model, on_overflow, what)
        return out
    if not check and gf.available():  # AVX2 vpmaddwd kernel: eq. (1) mod 2^32, exact (proof in _gemm_fast)
        return gf.gemm_wrap(a, b, za_v, zb_v, out)
    af, row_sum, ca = eb.centered_f32(a, sums="rows")
    bf, col_sum, cb = eb.centered_f32(b, sums="cols")
    eb.gemm_centered(af, row_sum, za_v - ca, bf, col_sum, zb_v - cb, out)
    if check:
        acc = eb.gemm_centered_int64(af, row_sum, za_v - ca, bf, col_sum, zb_v - cb)
        report_overflow(int(np.count_nonzero(acc != out)), model, on_overflow, what)
    return out


def gemm(a, b, a_zero_point=0, b_zero_point=0, *, acc_model="exact", on_overflow="warn"):
    """Fast twin of :func:`gemm_reference`: same arguments, same int32 result bit for bit.

    ``"exact"`` and ``"wrap"`` run, on x86-64 with AVX2, an int16 ``vpmaddwd`` GEMM of eq. (1)
    (proof in :mod:`refquant.kernels._gemm_fast`); elsewhere (or with the JIT disabled, or when an
    int32 overflow is possible) eq. (2) on a float32 BLAS GEMM over centered operands, in
    blocks of $K \\le 1024$ (exact for any BLAS and thread count: proof in
    :mod:`refquant.kernels._exact_blas`); for at most 8 rows (batch-1 inference) an AVX2
    ``vpmaddwd`` GEMV streaming raw ``b`` once (proof in :mod:`refquant.kernels._gemv_fast`), or
    a direct wrapping-int32 Numba loop of eq. (1) without AVX2. The pairwise models run a plain
    Numba loop.
    """
    a, b, za, zb, model, on_overflow = _validate(a, b, a_zero_point, b_zero_point, acc_model, on_overflow)
    return _gemm_fast(a, b, za, zb, model, on_overflow, "gemm")


# ----------------------------------------------------------------------------------------
# 3. Batched matmul (NumPy matmul semantics: broadcasting leading dimensions)
# ----------------------------------------------------------------------------------------

def _batched(a, b, a_zero_point, b_zero_point, acc_model, on_overflow, two_d):
    a = check_operand(a, "a", (1,))
    b = check_operand(b, "b", (1,))
    a2 = a[None, :] if a.ndim == 1 else a  # NumPy matmul: 1-D a is a row, 1-D b a column
    b2 = b[:, None] if b.ndim == 1 else b
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ShapeError(f"batch dimensions of a {a.shape} and b {b.shape} do not broadcast") from None
    M, K, N = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    if b2.shape[-2] != K:
        raise ShapeError(f"b must have K = {K} rows (a.shape[-1]), got b.shape = {b.shape}")
    # Validate once for every batch element (an empty batch too): zero-copy (M, K) and (K, N) stand-ins.
    _validate(np.broadcast_to(np.zeros((), a.dtype), (M, K)), np.broadcast_to(np.zeros((), b.dtype), (K, N)),
              a_zero_point, b_zero_point, acc_model, on_overflow)
    out = np.empty(batch + (M, N), np.int32)
    a_b = np.broadcast_to(a2, batch + (M, K))
    b_b = np.broadcast_to(b2, batch + (K, N))
    for idx in np.ndindex(*batch):
        out[idx] = two_d(a_b[idx], b_b[idx], a_zero_point, b_zero_point, acc_model=acc_model,
                         on_overflow=on_overflow)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def matmul_reference(a, b, a_zero_point=0, b_zero_point=0, *, acc_model="exact", on_overflow="warn"):
    """Batched :func:`gemm_reference` with ``np.matmul`` semantics (ONNX ``MatMulInteger``).

    Args:
        a: (..., M, K) or (K,) int8/uint8. b: (..., K, N) or (K,) int8/uint8; the leading
            dimensions broadcast. Zero points as in :func:`gemm_reference` (per row of each
            (M, K) matrix, per column of each (K, N) matrix).

    Returns:
        int32 of shape ``broadcast(a.shape[:-2], b.shape[:-2]) + (M, N)`` (1-D operands drop
        their dimension, as in NumPy).
    """
    return _batched(a, b, a_zero_point, b_zero_point, acc_model, on_overflow, gemm_reference)


def matmul(a, b, a_zero_point=0, b_zero_point=0, *, acc_model="exact", on_overflow="warn"):
    """Fast twin of :func:`matmul_reference` (each matrix product through :func:`gemm`)."""
    return _batched(a, b, a_zero_point, b_zero_point, acc_model, on_overflow, gemm)

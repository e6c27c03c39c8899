r"""Sparse × dense int8 matmul: a CSR weight times int8/uint8 activations, exact int32 accumulators.

The dense kernel (:func:`refquant.kernels.gemm.gemm` with ``a = x``, ``b = W^T``) computes

$$ \mathrm{acc}_{no} = \sum_{k=0}^{K-1} \bigl(x_{nk} - Z_x[n]\bigr)\bigl(w_{ok} - Z_w[o]\bigr). \tag{1} $$

A pruned weight has real value $S_w (w_{ok} - Z_w[o]) = 0$: its **code is** $Z_w[o]$, not 0 (with
$Z_w = 3$ the code 0 is the real value $-3 S_w$). Its term in (1) is zero whatever $x$. So the CSR
holds the codes $w_{ok} \ne Z_w[o]$ — row $o$ stores ``csr_values[row_ptr[o]:row_ptr[o+1]]`` at the
columns ``col_idx[row_ptr[o]:row_ptr[o+1]]`` — and

$$ \mathrm{acc}_{no} = \sum_{j = p_o}^{p_{o+1} - 1} \bigl(x_{n, c_j} - Z_x[n]\bigr)\bigl(v_j - Z_w[o]\bigr) \tag{2} $$

equals (1) **exactly**: (2) drops only zero terms. A CSR that also stores some codes equal to
$Z_w[o]$ is still exact (their terms are zero too); a column stored twice in a row is added twice
(SciPy sums duplicates the same way). :func:`refquant.prune.sparse.to_csr` builds the canonical
CSR (codes $\ne Z_w$, columns increasing) with ``zero_point=`` the weight's zero point.

**Exactness and overflow.** Every term of (2) has $|x - Z_x| \le 255$ and $|v - Z_w| \le 255$, so
each product fits int32. Both versions follow the dense kernel's overflow rule (``on_overflow``: warn
and return the two's-complement wrap, or raise; see :mod:`refquant.kernels._checks`): the reference
sums in int64 and wraps once; the fast version sums in wrapping int32, which is eq. (2) modulo $2^{32}$
whatever the order of the additions, and — only when the longest row's bound
$\mathrm{nnz}_{max} \cdot \max|x - Z_x| \cdot \max|v - Z_w|$ exceeds $2^{31} - 1$ (a row of more than
33,025 stored weights at the extreme codes) — recomputes the sums in int64 to find the accumulators
that left int32, as :func:`refquant.kernels.gemm.gemm` does. The result equals
``gemm(x, W.T, Z_x, Z_w)`` (``acc_model="exact"``) bit for bit, warnings included.

**Fast version.** :func:`sparse_matmul_int8` centers and transposes $x$ once to ``xc`` $(K, N)$ int16,
then per row $o$ adds $(v_j - Z_w[o]) \cdot$ ``xc[c_j, :]`` to the row's $N$ accumulators (a contiguous
axpy over the batch that LLVM vectorizes, four stored weights per pass); for $N = 1$ it is a gathered
dot product held in a register. With more than one Numba thread and at least ``PARALLEL_MIN_MACS``
multiply-adds, a ``prange`` splits the rows: each output row is written by one thread in a fixed
order, so results are bit-identical for any thread count. :func:`sparse_matmul_int8_reference` is eq. (2) in int64 NumPy.

Added in 0.2.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._checks import (  # _own_zero_point: check_zero_point with gemm's fast path for a scalar of the operand's dtype
    INT32_MAX,
    _own_zero_point,
    check_on_overflow,
    check_operand,
    finish_int64,
    max_abs_centered,
    report_overflow,
)

__all__ = ["check_csr", "sparse_matmul_int8_reference", "sparse_matmul_int8"]

# Below ~1M multiply-adds (~80 µs on one core) a second thread cannot pay for waking it. A choice, not a
# measurement: on the shared 2-core machine where this was written a threaded launch sometimes waited a whole
# scheduler slice (~15 ms), and sometimes ran twice as fast.
PARALLEL_MIN_MACS = 1 << 20
_INT8 = np.dtype(np.int8)
_u = np.uint64  # unsigned loop bounds: no negative-index wraparound code in the inner loops
_UMAX = {1: 2**8 - 1, 2: 2**16 - 1, 4: 2**32 - 1, 8: 2**64 - 1}  # largest unsigned index by itemsize


def check_csr(col_idx, row_ptr, n_cols, *, n_rows=None):
    """Check the index arrays of an ``(n_rows, n_cols)`` CSR matrix; return ``(col_idx, row_ptr)``, row_ptr as int64.

    Args:
        col_idx: (nnz,) integer array, every entry in ``[0, n_cols)``.
        row_ptr: (n_rows + 1,) integer array: ``row_ptr[0] = 0``, non-decreasing, ``row_ptr[n_rows] = nnz``.
        n_cols: K, the number of columns. n_rows: O (None: ``len(row_ptr) - 1``, at least 0).

    Raises:
        QuantizationTypeError: an index array that is not an integer array.
        ShapeError: an array that is not 1-D, or ``row_ptr`` not of length ``n_rows + 1``.
        QuantizationValueError: ``row_ptr`` not starting at 0, decreasing, not ending at nnz; a column out of range.
    """
    K = V.as_int_scalar(n_cols, "n_cols", lo=0)
    O = None if n_rows is None else V.as_int_scalar(n_rows, "n_rows", lo=0)
    return _check_csr(col_idx, row_ptr, K, O, ("n_rows", "n_cols"))


def _check_csr(col_idx, row_ptr, K: int, O, names):
    """:func:`check_csr` for validated ``K`` and ``O``; ``names``: what messages call them (the caller's names)."""
    arrays = []
    for a, name in ((col_idx, "col_idx"), (row_ptr, "row_ptr")):
        a = V.asarray(a, name, kinds=None, what="a 1-D integer array")
        if a.dtype.kind not in "iu":
            raise QuantizationTypeError(f"{name} must be a 1-D integer array, got dtype {a.dtype}")
        if a.ndim != 1:
            raise ShapeError(f"{name} must be 1-D, got shape {a.shape}")
        arrays.append(a)
    col_idx, row_ptr = arrays
    O = max(row_ptr.size - 1, 0) if O is None else O
    if row_ptr.size != O + 1:
        raise ShapeError(f"row_ptr must have {names[0]} + 1 = {O + 1} entries (one per row, plus the end), "
                         f"got {row_ptr.size}")
    nnz = col_idx.size
    if row_ptr.dtype == np.uint64 and (bad := V.first_outside(row_ptr, 0, nnz)) is not None:  # no wrap in int64
        raise QuantizationValueError(f"row_ptr entries must be in [0, nnz] = [0, {nnz}], got {bad}")
    p = row_ptr.astype(np.int64)
    if int(p[0]) != 0:
        raise QuantizationValueError(f"row_ptr[0] must be 0, got {p[0]}")
    if int(p[-1]) != nnz:
        raise QuantizationValueError(f"row_ptr[O] = row_ptr[{O}] must be nnz = len(col_idx) = {nnz}, got {p[-1]}")
    if O > 1 and (p[1:] < p[:-1]).any():  # with p[0] = 0 and p[O] = nnz: every entry in [0, nnz]
        o = int(np.flatnonzero(p[1:] < p[:-1])[0])
        raise QuantizationValueError(f"row_ptr must be non-decreasing, got row_ptr[{o}] = {p[o]} > "
                                     f"row_ptr[{o + 1}] = {p[o + 1]}")
    unsigned = col_idx.dtype.kind == "u"
    if nnz and not (unsigned and K - 1 >= _UMAX[col_idx.itemsize]):  # else in range by its dtype alone
        lo, hi = (0 if unsigned else int(col_idx.min())), int(col_idx.max())
        if lo < 0 or hi > K - 1:
            raise QuantizationValueError(f"col_idx must be in [0, {names[1]} - 1] = [0, {K - 1}], "
                                         f"got {lo if lo < 0 else hi}")
    return col_idx, p


def _args(x, x_zero_point, csr_values, col_idx, row_ptr, w_zero_point, shape, on_overflow):
    """The checks of both versions; returns validated operands with int64 zero points."""
    x = check_operand(x, "x", 2)
    v = V.asarray(csr_values, "csr_values", kinds=None, what="a 1-D int8 array")
    if v.dtype != _INT8:
        raise QuantizationTypeError(f"csr_values must have dtype int8 (weight codes; unpack int4 codes first), "
                                    f"got {v.dtype}")
    if v.ndim != 1:
        raise ShapeError(f"csr_values must be 1-D, got shape {v.shape}")
    O = None
    if shape is not None:
        O, K = V.as_int_sequence(shape, "shape", length=2, minimum=0)
        if K != x.shape[1]:
            raise ShapeError(f"x must have K = shape[1] = {K} columns, got x.shape = {x.shape}")
    col_idx, p = _check_csr(col_idx, row_ptr, x.shape[1], O, ("O" if O is None else "shape[0]", "K = x.shape[1]"))
    if v.size != col_idx.size:
        raise ShapeError(f"csr_values must have len(col_idx) = {col_idx.size} elements, got {v.size}")
    zx = _own_zero_point(x_zero_point, x.dtype, "x_zero_point", x.shape[0], "one per row of x, N")
    zw = _own_zero_point(w_zero_point, _INT8, "w_zero_point", p.size - 1, "one per output channel, O")
    return x, zx, v, col_idx, p, zw, check_on_overflow(on_overflow)


# ----------------------------------------------------------------------------------------
# 1. Reference: eq. (2) in int64 NumPy
# ----------------------------------------------------------------------------------------

def sparse_matmul_int8_reference(x, x_zero_point, csr_values, col_idx, row_ptr, w_zero_point, *, shape=None,
                                 on_overflow="warn"):
    """int32 accumulators of eq. (2), $x$ (N, K) times a CSR weight (O, K) transposed, in int64 NumPy.

    Args:
        x: (N, K) int8 or uint8 activations.
        x_zero_point: Python int or ``x.dtype`` scalar/array; shape () or (N,) (per row).
        csr_values: (nnz,) int8 weight codes $\\ne Z_w$ (see the module docstring).
        col_idx: (nnz,) integer column of each value, in ``[0, K)``.
        row_ptr: (O + 1,) integer: row ``o`` holds entries ``row_ptr[o]`` to ``row_ptr[o+1] - 1``.
        w_zero_point: Python int or int8 scalar/array; shape () or (O,) (per output channel).
        shape: optional ``(O, K)`` of the weight, checked against ``row_ptr`` and ``x``.
        on_overflow: ``"warn"`` or ``"raise"`` when an exact value leaves int32.

    Returns:
        (N, O) int32, equal to ``gemm(x, W.T, x_zero_point, w_zero_point)`` for the dense codes ``W``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad dtypes, zero points, shapes or
            a corrupt CSR (:func:`check_csr`); AccumulatorOverflowError with ``on_overflow="raise"``.
    """
    x, zx, v, c, p, zw, on_overflow = _args(x, x_zero_point, csr_values, col_idx, row_ptr, w_zero_point,
                                            shape, on_overflow)
    return finish_int64(_exact(x, zx, v, c, p, zw), "exact", on_overflow, "sparse_matmul_int8_reference")


def _exact(x, zx, v, c, p, zw) -> np.ndarray:
    """(N, O) int64: eq. (2) in exact arithmetic."""
    N, O = x.shape[0], p.size - 1
    xc = x.astype(np.int64) - np.broadcast_to(zx, (N,))[:, None]  # (N, K) int64: x - Z_x
    zw_o = np.broadcast_to(zw, (O,))                               # (O,) int64
    acc = np.zeros((N, O), np.int64)
    for o in range(O):
        j = slice(p[o], p[o + 1])
        acc[:, o] = xc[:, c[j]] @ (v[j].astype(np.int64) - zw_o[o])  # eq. (2): Σ_j (x[n, c_j] - Z_x)(v_j - Z_w)
    return acc


# ----------------------------------------------------------------------------------------
# 2. Fast: one axpy over the batch per stored weight, rows split over threads
# ----------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _row(xc, values, col_idx, lo, hi, zw, acc):
    """acc[:] = Σ_{j=lo}^{hi-1} (values[j] - zw) · xc[col_idx[j], :] in wrapping int32: eq. (2) for one
    output row, modulo 2^32. ``zw`` is int8, so LLVM knows every factor fits int16."""
    N = acc.shape[0]
    if N == 1:  # batch 1: a gathered dot product held in a register
        x1 = xc[:, 0]
        s = np.int32(0)
        for j in range(_u(lo), _u(hi)):
            s = np.int32(s + np.int32(x1[col_idx[j]]) * np.int32(np.int32(values[j]) - np.int32(zw)))
        acc[0] = s
        return
    for n in range(_u(N)):
        acc[n] = 0
    z = np.int32(zw)
    j, hi = _u(lo), _u(hi)
    while j + _u(4) <= hi:  # four stored weights per pass over the batch: a quarter of the acc traffic
        w0, w1 = np.int32(np.int32(values[j]) - z), np.int32(np.int32(values[j + _u(1)]) - z)  # v_j - Z_w[o]
        w2, w3 = np.int32(np.int32(values[j + _u(2)]) - z), np.int32(np.int32(values[j + _u(3)]) - z)
        x0, x1 = xc[col_idx[j]], xc[col_idx[j + _u(1)]]  # (N,) int16 rows x[:, c_j] - Z_x
        x2, x3 = xc[col_idx[j + _u(2)]], xc[col_idx[j + _u(3)]]
        for n in range(_u(N)):  # vectorized over the batch
            acc[n] = np.int32(acc[n] + np.int32(x0[n]) * w0 + np.int32(x1[n]) * w1
                              + np.int32(x2[n]) * w2 + np.int32(x3[n]) * w3)
        j += _u(4)
    while j < hi:  # the last 0 to 3
        w0, x0 = np.int32(np.int32(values[j]) - z), xc[col_idx[j]]
        for n in range(_u(N)):
            acc[n] = np.int32(acc[n] + np.int32(x0[n]) * w0)
        j += _u(1)


@numba.njit(cache=True)
def _csr_serial(xc, values, col_idx, row_ptr, zw, out):
    for o in range(out.shape[0]):
        _row(xc, values, col_idx, row_ptr[o], row_ptr[o + 1], zw[o], out[o])


@numba.njit(cache=True, parallel=True)
def _csr_parallel(xc, values, col_idx, row_ptr, zw, out):
    for o in numba.prange(out.shape[0]):  # out[o] is written by exactly one thread
        _row(xc, values, col_idx, row_ptr[o], row_ptr[o + 1], zw[o], out[o])


def sparse_matmul_int8(x, x_zero_point, csr_values, col_idx, row_ptr, w_zero_point, *, shape=None,
                       on_overflow="warn"):
    """Numba twin of :func:`sparse_matmul_int8_reference`: same arguments, same (N, O) int32 bit for bit."""
    x, zx, v, c, p, zw, on_overflow = _args(x, x_zero_point, csr_values, col_idx, row_ptr, w_zero_point,
                                            shape, on_overflow)
    (N, K), O = x.shape, p.size - 1
    xc = np.array(x.T, np.int16, order="C")  # (K, N) int16
    xc -= np.int16(zx) if zx.ndim == 0 else zx.astype(np.int16)  # x - Z_x, |.| <= 255
    zw_o = np.full(O, zw, np.int8) if zw.ndim == 0 else zw.astype(np.int8)  # (O,) int8
    out = np.empty((O, N), np.int32)  # (O, N): row o is written by one thread
    kernel = _csr_parallel if c.size * N >= PARALLEL_MIN_MACS and numba.get_num_threads() > 1 else _csr_serial
    if numba.config.DISABLE_JIT:
        with np.errstate(over="ignore"):  # the NumPy scalars of the plain-Python run warn on the intended wrap
            kernel(xc, v, c, p, zw_o, out)
    else:
        kernel(xc, v, c, p, zw_o, out)
    out = np.ascontiguousarray(out.T)  # (N, O)
    bound = max_abs_centered(x.dtype, zx) * max_abs_centered(_INT8, zw)  # per term
    if K * bound > INT32_MAX and int(np.diff(p).max()) * bound > INT32_MAX:  # overflow possible: recheck
        n_bad = int(np.count_nonzero(_exact(x, zx, v, c, p, zw) != out))  # wrapped == exact where it fits
        report_overflow(n_bad, "exact", on_overflow, "sparse_matmul_int8")
    return out

r"""The operands of the AVX-512 VNNI kernels (internal): $\hat a$ and the zero-point terms of eq. (2) of
:mod:`._gemm_vnni`, prepared in one pass over ``a``.

``vpdpbusd`` multiplies unsigned bytes by signed bytes. :mod:`._gemm_vnni` therefore offsets
$\hat a = a + c_a \in [0, 255]$ ($c_a = 128$ for int8 ``a``: the bytes XOR ``0x80``) and
$\hat b = b - c_b \in [-128, 127]$ ($c_b = 128$ for uint8 ``b``) and adds, modulo $2^{32}$,
$u_m v_n + w_m x_n$ with $u_m = K z'_a[m] - r_m$, $w_m = -z'_a[m]$, $v_n = z'_b[n]$, $x_n = c_n$
(eq. (2) there; $r_m = \sum_k \hat a_{mk}$, $c_n = \sum_k \hat b_{kn}$, $z'_a = z_a + c_a$,
$z'_b = z_b - c_b$). This module forms $\hat a$ (when ``a`` cannot be read in place), $r_m$ (64 bytes
per ``vpsadbw``), $(u_m, w_m)$ and $v_n$; the column sums $c_n$ come with the transposition of ``b``
in the kernels. :func:`offset_a_reference` is the NumPy twin of $\hat a$.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _vnni_ir as vi

__all__ = ["offset_a_reference", "offset_bytes", "prepare"]


def offset_bytes(x: np.ndarray, flip: bool) -> np.ndarray:
    """Raw codes as the uint8 bytes of $\\hat a$ / $\\hat b$ (XOR 0x80 when ``flip``)."""
    u = np.ascontiguousarray(x).view(np.uint8)
    return u ^ np.uint8(0x80) if flip else u


def offset_a_reference(a: np.ndarray) -> np.ndarray:
    """(M, K) codes -> (M, 4⌈K/4⌉) uint8 of $\\hat a = a + c_a$, zero padded: what the kernels read."""
    M, K = a.shape
    out = np.zeros((M, -(-K // 4) * 4), np.uint8)
    out[:, :K] = offset_bytes(a, a.dtype == np.int8)
    return out


@intrinsic
def _offset_row(typingctx, a, a_off, K, dst, d_off, copy):
    """Σ_{k<K} â_k (int64) of the row of ``a`` (bytes) at ``a_off``; when ``copy``, also writes the K bytes
    of â to ``dst`` (uint8) at ``d_off``. â = a XOR 0x80 for int8 ``a``; 64 bytes per ``vpsadbw``."""
    sig = types.int64(a, types.intp, types.intp, dst, types.intp, types.boolean)
    flip = a.dtype.signed

    def codegen(context, builder, signature, args):
        _, a_off_v, k_v, _, d_off_v, copy_v = args
        pa = vi.data(context, builder, signature, args, 0, a_off_v)
        pd = vi.data(context, builder, signature, args, 3, d_off_v)
        acc = cgutils.alloca_once_value(builder, ir.Constant(ir.VectorType(vi.IDX, 8), None))

        def chunk(off, mask):
            src = builder.gep(pa, [off])
            if mask is None:
                v = builder.load(builder.bitcast(src, vi.B64.as_pointer()), align=1)
            else:  # the tail: bytes past K read as â = 0
                v = vi.masked_load(builder, src, vi.B64, mask, ir.Constant(vi.B64, [0x80 if flip else 0] * 64), 1)
            if flip:
                v = builder.xor(v, ir.Constant(vi.B64, [0x80] * 64))
            with builder.if_then(copy_v):
                if mask is None:
                    builder.store(v, builder.bitcast(builder.gep(pd, [off]), vi.B64.as_pointer()), align=1)
                else:
                    vi.masked_store(builder, v, builder.gep(pd, [off]), mask)
            builder.store(builder.add(builder.load(acc), vi.byte_sums(builder, v)), acc)

        full = builder.udiv(k_v, vi.idx(64))
        with cgutils.for_range(builder, full) as loop:
            chunk(builder.mul(loop.index, vi.idx(64)), None)
        rest = builder.sub(k_v, builder.mul(full, vi.idx(64)))
        with builder.if_then(builder.icmp_signed(">", rest, vi.idx(0))):
            chunk(builder.mul(full, vi.idx(64)), vi.lane_mask(builder, rest, 64, 0))
        return vi.reduce_add(builder, builder.load(acc))

    return sig, codegen


@numba.njit(cache=True)
def prepare(a, za, zb, ca, cb, ahat, rowv, zbv):
    """Row terms, column zero points and (when ``ahat`` has rows) the bytes of â, in one pass over ``a``.

    a (M, K) int8/uint8, C-contiguous; za (M,) or (1,), zb (N,) or (1,) integer zero points (a single
    one is per tensor); ``ca``/``cb``: $c_a$, $c_b$. Writes ``ahat`` (M, 4⌈K/4⌉) uint8 =
    :func:`offset_a_reference` unless it has 0 rows (uint8 ``a`` with 4 | K is read in place), ``rowv``
    (2·Mp,) int32 = $(u_m, w_m)$ of eq. (2) (zero padded), ``zbv`` (Np,) int32 = $v_n = z'_b[n]$ (the
    padding columns, never stored, hold 0 or the per-tensor value).
    """
    M, K = a.shape
    copy = ahat.shape[0] > 0
    af = a.reshape(-1)
    hf = ahat.reshape(-1)
    ldh = ahat.shape[1]
    rowv[:] = 0
    for m in range(M):
        r = _offset_row(af, m * K, K, hf, m * ldh, copy)  # r_m = Σ_k â_mk
        if copy:
            for k in range(K, ldh):
                hf[m * ldh + k] = 0
        za1 = np.int64(za[m if za.shape[0] > 1 else 0]) + ca  # z'_a in [0, 255]; (1,): per tensor
        u = K * za1 - r                                  # u_m = K z'_a - r_m; |u| < 2^33
        rowv[2 * m] = ((u + 2147483648) & 0xFFFFFFFF) - 2147483648  # u mod 2^32, as int32
        rowv[2 * m + 1] = -za1
    zbv[:] = 0
    N = zbv.shape[0] if zb.shape[0] == 1 else zb.shape[0]
    for n in range(N):
        zbv[n] = np.int64(zb[n if zb.shape[0] > 1 else 0]) - cb  # z'_b in [-128, 127]; padded with 0

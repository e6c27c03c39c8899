r"""Exact few-row int8 GEMM (batch-1 GEMV) on AVX2 ``vpmaddwd``, reading ``b`` as stored (internal).

The small-M engine of :mod:`.gemm` (at most a few rows of ``a``, e.g. batch-1 inference):
eq. (1) of :mod:`.gemm` modulo $2^{32}$ with **raw** ``b`` in the hot loop,

$$ \mathrm{acc}_{mn} = \underbrace{\sum_{k} a'_{mk}\, b_{kn}}_{\text{hot loop}}
   - z_b[n] \underbrace{\sum_k a'_{mk}}_{s_m} \bmod 2^{32},
   \qquad a'_{mk} = a_{mk} - z_a[m], \tag{1} $$

the gemmlowp zero-point correction (eq. (2) of :mod:`.gemm` with $z_a$ folded into $a'$).
Unlike :mod:`._gemm_fast`, ``b`` (K, N) is neither packed nor centered: every call would
otherwise pay a full pass over ``b`` (1 MiB at K = N = 1024) to pack it for a single row.

**The step.** ``b`` is read as unsigned bytes $u$: $u = b$ for uint8, $u = b + 128$ for int8
(one ``vpxor`` of the sign bit), so $b - z_b = u - (z_b + 128)$ and the correction uses
$z_b + 128$. For a pair of rows $(2p, 2p+1)$ and 32 columns the kernel loads 32 + 32 bytes,
interleaves them bytewise in-lane (``vpunpcklbw``/``vpunpckhbw``: $u_{2p,n}, u_{2p+1,n}$
adjacent), zero-extends to int16 pairs (``vpunpck*bw`` with zero) and multiplies them with the
broadcast int16 pair $(a'_{m,2p}, a'_{m,2p+1})$ by ``vpmaddwd``, adding into int32 lanes:
$d_n = a'_{m,2p} u_{2p,n} + a'_{m,2p+1} u_{2p+1,n}$ (the in-lane column order is undone when
the tile is stored).

**Exactness.** ``a``'s codes and zero point lie in int8 or uint8, so $|a'| \le 255$ and
$0 \le u \le 255$: both are exact int16 values, and each ``vpmaddwd`` lane has magnitude
$\le 2 \cdot 255^2 = 130050 < 2^{31}$, exact (its one wrapping input needs $-2^{15}$
operands). Lanes, $s_m$ and $z_b[n] s_m$ are combined with int32 wrapping adds and
multiplies: arithmetic modulo $2^{32}$ is exact and associative, so the result is eq. (1)
mod $2^{32}$ whatever the order (K blocks, column blocks) and equals
:func:`refquant.kernels.gemm.gemm_reference` whenever the exact value fits int32 (the
caller checks that bound). An odd last row of ``b`` is added by a scalar loop. One thread.

**Blocking.** Column blocks of 64 (one cache line per row of ``b``; eight ymm accumulators per
row of ``a``), then 32, then a scalar tail; K in blocks of ``KB2`` pairs so a block of ``b``
(``2·KB2`` rows × 64 bytes = 16 KiB) stays in L1 while the rows of ``a`` reuse it.

Used only when :func:`available` (x86-64 with AVX2, the JIT on); otherwise :mod:`.gemm`
runs its plain int32 Numba loop. ``tests/test_kernels_gemv_fast.py`` checks it against
:func:`refquant.kernels.gemm.gemm_reference`.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._gemm_fast import available  # same requirements: x86-64, AVX2, JIT enabled

__all__ = ["available", "gemv_wrap"]

KB2 = 128  # pairs of rows of b per block: 256 rows × 64 bytes = 16 KiB (L1)

_I8, _I16, _I32, _IDX = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
_V8, _V16, _B32 = ir.VectorType(_I32, 8), ir.VectorType(_I16, 16), ir.VectorType(_I8, 32)


def _mask(idx):
    idx = list(idx)
    return ir.Constant(ir.VectorType(_I32, len(idx)), list(idx))


def _make_tile(n32: int):
    """An intrinsic for one row of ``a`` × ``32·n32`` columns of ``b`` over ``npairs`` pairs of rows of ``b``."""

    @intrinsic
    def tile(typingctx, ap, a_off, b, b_off, ldb, out, o_off, npairs, accumulate):
        """out[o_off + n] (+)= Σ_{p<npairs} Σ_{i<2} a'_{2p+i} u(b[b_off + (2p+i)·ldb + n]) mod 2^32, n < 32·n32.

        ``ap``: int32 array of int16 pairs ``(a'_{2p}, a'_{2p+1})`` (low half first) from ``a_off``;
        ``b``: 1-D int8/uint8 (``b`` (K, N) flattened, row stride ``ldb``), read as the unsigned
        $u = b$ (uint8) or $u = b + 128$ (int8: the sign bit flipped); ``out``: 1-D int32.
        """
        sig = types.void(ap, types.intp, b, types.intp, types.intp, out, types.intp, types.intp,
                         types.boolean)
        signed = b.dtype.signed

        def codegen(context, builder, signature, args):
            ap_v, a_off_v, b_v, b_off_v, ldb_v, out_v, o_off_v, np_v, acc_v = args

            def data(k, v, off):
                return builder.gep(context.make_array(signature.args[k])(context, builder, v).data, [off])

            pa, pb, po = data(0, ap_v, a_off_v), data(2, b_v, b_off_v), data(5, out_v, o_off_v)
            pmaddwd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_V8, [_V16, _V16]), "llvm.x86.avx2.pmadd.wd")
            # accs[c][t]: lanes 0-3 hold columns 32c + 4t + (0..3), lanes 4-7 columns 32c + 16 + 4t + (0..3)
            accs = [[cgutils.alloca_once_value(builder, ir.Constant(_V8, None)) for _ in range(4)]
                    for _ in range(n32)]
            splat, undef8 = ir.Constant(_V8, [0] * 8), ir.Constant(_V8, ir.Undefined)
            flip, zero = ir.Constant(_B32, [0x80] * 32), ir.Constant(_B32, [0] * 32)
            # in-lane byte interleaves (vpunpcklbw / vpunpckhbw) of two <32 x i8>
            unpack = [_mask(j for lane in (0, 16) for i in range(8) for j in (lane + h + i, 32 + lane + h + i))
                      for h in (0, 8)]
            with cgutils.for_range(builder, np_v) as loop:
                p = loop.index
                r0 = builder.gep(pb, [builder.mul(p, builder.add(ldb_v, ldb_v))])  # row 2p
                r1 = builder.gep(r0, [ldb_v])                                       # row 2p + 1
                v = builder.load(builder.gep(pa, [p]), align=4)
                v = builder.insert_element(undef8, v, ir.Constant(_I32, 0))
                av = builder.bitcast(builder.shuffle_vector(v, undef8, splat), _V16)  # (a'_{2p}, a'_{2p+1}) × 8
                for c in range(n32):
                    off = ir.Constant(_IDX, 32 * c)
                    x, y = (builder.load(builder.bitcast(builder.gep(r, [off]), _B32.as_pointer()), align=1)
                            for r in (r0, r1))
                    if signed:
                        x, y = builder.xor(x, flip), builder.xor(y, flip)  # u = b + 128 in [0, 255]
                    for h in range(2):
                        xy = builder.shuffle_vector(x, y, unpack[h])        # bytes (u_{2p,n}, u_{2p+1,n})
                        for t2 in range(2):
                            # zero-extend to int16 pairs: one int32 lane per column
                            w = builder.bitcast(builder.shuffle_vector(xy, zero, unpack[t2]), _V16)
                            prod = builder.call(pmaddwd, [av, w])  # exact: |lane| <= 2·255² < 2^31
                            acc = accs[c][2 * h + t2]
                            builder.store(builder.add(builder.load(acc), prod), acc)  # wraps mod 2^32
            for c in range(n32):
                v = [builder.load(acc) for acc in accs[c]]
                for q, (i, j, half) in enumerate(((0, 1, 0), (2, 3, 0), (0, 1, 4), (2, 3, 4))):
                    part = builder.shuffle_vector(v[i], v[j], _mask(list(range(half, half + 4))
                                                                    + list(range(8 + half, 8 + half + 4))))
                    cp = builder.bitcast(builder.gep(po, [ir.Constant(_IDX, 32 * c + 8 * q)]), _V8.as_pointer())
                    with builder.if_then(acc_v):
                        builder.store(builder.add(part, builder.load(cp, align=4)), cp, align=4)
                    with builder.if_then(builder.not_(acc_v)):
                        builder.store(part, cp, align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile64 = _make_tile(2)
_tile32 = _make_tile(1)


@numba.njit(cache=True)
def _gemv_driver(a, za, bf, zb, shift, out):
    """out (M, N) int32 = eq. (1) mod 2^32; ``bf`` is ``b`` (K, N) flattened, ``za`` (M,), ``zb`` (N,).

    ``shift``: 128 for int8 ``b`` (the kernel reads $u = b + 128$), 0 for uint8.
    """
    M, K = a.shape
    N = out.shape[1]
    K2 = K // 2
    of = out.reshape(-1)
    ap = np.empty((M, max(K2, 1)), np.int32)  # (a'_{2p}, a'_{2p+1}) int16 pairs, low half first
    s = np.zeros(M, np.int32)                 # s_m = Σ_k a'[m, k]
    for m in range(M):
        z = np.int32(za[m])
        for p in range(K2):
            lo = np.int32(a[m, 2 * p]) - z
            hi = np.int32(a[m, 2 * p + 1]) - z
            ap[m, p] = (lo & np.int32(0xFFFF)) | (hi << np.int32(16))
        t = np.int32(0)
        for k in range(K):
            t += np.int32(a[m, k]) - z
        s[m] = t
    apf = ap.reshape(-1)
    ldp = ap.shape[1]
    n64 = N - N % 64
    n32 = N - N % 32
    if K2 == 0:
        of[:] = 0
    for p0 in range(0, K2, KB2):
        pn = min(KB2, K2 - p0)
        first = p0 == 0
        for n0 in range(0, n64, 64):
            for m in range(M):
                _tile64(apf, m * ldp + p0, bf, 2 * p0 * N + n0, N, of, m * N + n0, pn, not first)
        for n0 in range(n64, n32, 32):
            for m in range(M):
                _tile32(apf, m * ldp + p0, bf, 2 * p0 * N + n0, N, of, m * N + n0, pn, not first)
    for m in range(M):
        row = of[m * N:(m + 1) * N]
        zm = np.int32(za[m])
        for n in range(n32, N):  # scalar tail columns: a'·u as in the kernel
            t = np.int32(0)
            for k in range(2 * K2):
                t += (np.int32(a[m, k]) - zm) * (np.int32(bf[k * N + n]) + np.int32(shift))
            row[n] = t
        if K % 2 == 1:  # the odd last row of b
            av = np.int32(a[m, K - 1]) - zm
            base = (K - 1) * N
            for n in range(np.uint64(N)):
                row[n] += av * (np.int32(bf[base + n]) + np.int32(shift))
        sm = s[m]
        for n in range(np.uint64(N)):
            row[n] -= sm * (np.int32(zb[n]) + np.int32(shift))  # gemmlowp correction: b - zb = u - (zb + shift)


def gemv_wrap(a: np.ndarray, b: np.ndarray, za: np.ndarray, zb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (M, N) int32 (C-contiguous) = eq. (1) mod 2^32.

    Args:
        a: (M, K) int8/uint8. b: (K, N) int8/uint8. za: (M,) and zb: (N,) integer zero points
            within the operands' ranges (validated by the caller). Requires :func:`available`.

    Returns:
        ``out``.
    """
    shift = 128 if b.dtype == np.int8 else 0
    _gemv_driver(np.ascontiguousarray(a), za, np.ascontiguousarray(b).reshape(-1), zb, shift, out)
    return out

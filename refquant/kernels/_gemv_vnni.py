r"""Exact few-row int8 GEMM (batch-1 GEMV) on AVX-512 VNNI ``vpdpbusd``, reading ``b`` as stored (internal).

The small-M engine of :mod:`._gemm_vnni`: eq. (2) of that module for at most ``MAX_M`` rows,
without packing ``b`` (a packed copy would cost a full pass over ``b`` for a single row).

**Sweeps.** ``b`` (K, N) is read in sweeps of :func:`sweep_rows` consecutive rows across all of its
columns, 64 at a time: four rows are loaded (64 bytes each), transposed in registers into quads
(:func:`._vnni_ir.transpose_quads`, eight shuffles) and multiplied by the broadcast quad of each
row of $\hat a$ with ``vpdpbusd``, plus once by bytes of 1 (the column sums $c_n$). The int32
accumulators of a 64-column block live in a small scratch between sweeps, in the transposed
column order. Sweeping whole rows keeps every read of ``b`` sequential (one stream per row of the
sweep), which the hardware prefetchers follow; a walk down a 64-column strip instead reads one
line per row, a row stride apart, and measured twice as slow. :func:`_finish` then restores the
column order and adds $u_m v_n + w_m x_n$.

**Exactness** is eq. (3) of :mod:`._gemm_vnni`: every ``vpdpbusd`` lane is exact before its
wrapping int32 add, every later operation is int32 arithmetic modulo $2^{32}$, so the order of
sweeps, blocks and threads does not matter. Rows past K within the last sweep are masked loads
that read as $\hat b = 0$.

**Threads.** :func:`columns` computes a range of 64-column blocks; the threaded driver of
:mod:`._gemm_vnni` gives disjoint ranges to ``prange`` iterations, each swept over all of K in
the same order.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _vnni_ir as vi

__all__ = ["MAX_M", "NB", "columns", "sweep_rows"]

MAX_M = 4          # rows of a per sweep kernel: (MAX_M + 1) × 4 zmm accumulators
NB = 64            # columns per block (four zmm)


@intrinsic
def _sweep(typingctx, m, a, a_off, lda, b, b_off, ldb, krows, jb0, jb1, N, acc, ldacc):
    r"""For column blocks jb in [jb0, jb1): acc[r·ldacc + 64(jb - jb0) + l] += Σ_{k<krows} â[r, k] b̂[k, n]
    (r < m) and acc[m·ldacc + ...] += Σ_k b̂[k, n], lanes in :func:`transpose_quads` order.

    ``m`` (1 to MAX_M, a literal): rows of â, each with four zmm accumulators, plus four for the sums.

    ``a``: bytes of â from ``a_off`` (row stride ``lda``); ``b``: bytes of b from ``b_off`` (row stride
    ``ldb``, N columns); ``acc``: int32 scratch, row stride ``ldacc``.
    """
    if not isinstance(m, types.IntegerLiteral) or not 1 <= m.literal_value <= MAX_M:
        return None  # the rows are a compile-time constant: one kernel per row count
    rows = m.literal_value
    sig = types.void(m, a, types.intp, types.intp, b, types.intp, types.intp, types.intp, types.intp,
                     types.intp, types.intp, acc, types.intp)
    flip = not b.dtype.signed

    def codegen(context, builder, signature, args):
        _, _, a_off_v, lda_v, _, b_off_v, ldb_v, krows_v, jb0_v, jb1_v, n_v, _, ldacc_v = args
        pa = vi.data(context, builder, signature, args, 1, a_off_v)
        pb = vi.data(context, builder, signature, args, 4, b_off_v)
        pacc = vi.data(context, builder, signature, args, 11, vi.idx(0))
        vnni = vi.vpdpbusd(builder)
        accs = vi.new_accs(builder, rows + 1)  # the last row: column sums (u = bytes of 1)
        arow = [builder.gep(pa, [builder.mul(lda_v, vi.idx(r))]) for r in range(rows)]
        last_jb = builder.sub(jb1_v, vi.idx(1))
        tail_mask = vi.lane_mask(builder, builder.sub(n_v, builder.mul(last_jb, vi.idx(NB))), 64, 0)
        with cgutils.for_range(builder, builder.sub(jb1_v, jb0_v)) as jloop:
            n0 = builder.mul(builder.add(jloop.index, jb0_v), vi.idx(NB))
            pbj = builder.gep(pb, [n0])
            slots = [[builder.bitcast(builder.gep(pacc, [builder.add(builder.mul(ldacc_v, vi.idx(r)), builder.add(
                builder.mul(jloop.index, vi.idx(NB)), vi.idx(16 * j)))]), vi.V16.as_pointer()) for j in range(4)]
                for r in range(rows + 1)]
            for r in range(rows + 1):
                for j in range(4):
                    builder.store(builder.load(slots[r][j], align=4), accs[r][j])

            def step(p, kr, cmask):
                q = vi.transpose_quads(builder, vi.load_quad_rows(builder, pbj, ldb_v, p, kr, cmask, flip))
                for r in range(rows + 1):
                    av = vi.ONES if r == rows else vi.broadcast_quad(builder, arow[r], p)
                    for j in range(4):
                        builder.store(vnni(builder.load(accs[r][j]), av, q[j]), accs[r][j])

            full = builder.icmp_signed("<", builder.add(jloop.index, jb0_v), last_jb)
            with builder.if_else(full) as (then, otherwise):  # only the last block can be partial
                with then:
                    vi.for_quads(builder, krows_v, lambda p, kr: step(p, kr, None))
                with otherwise:
                    vi.for_quads(builder, krows_v, lambda p, kr: step(p, kr, tail_mask))
            for r in range(rows + 1):
                for j in range(4):
                    builder.store(builder.load(accs[r][j]), slots[r][j], align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _finish(typingctx, acc, a_off, s_off, u, w, zbv, z_off, out, o_off, nv):
    """out[o_off + n] = P_n + u·v_n + w·x_n for n < nv (masked), P from acc[a_off:], x from acc[s_off:]
    (64 lanes each, transposed order), v_n = zbv[z_off + n] (64 readable)."""
    sig = types.void(acc, types.intp, types.intp, types.int32, types.int32, zbv, types.intp, out, types.intp,
                     types.intp)

    def codegen(context, builder, signature, args):
        _, a_off_v, s_off_v, u_v, w_v, _, z_off_v, _, o_off_v, nv_v = args

        def load4(k, off):
            p = vi.data(context, builder, signature, args, k, off)
            return [builder.load(builder.bitcast(builder.gep(p, [vi.idx(16 * j)]), vi.V16.as_pointer()), align=4)
                    for j in range(4)]

        prod = vi.unpermute(builder, load4(0, a_off_v))
        x = vi.unpermute(builder, load4(0, s_off_v))
        v = load4(5, z_off_v)
        u, w = vi.splat(builder, u_v, vi.V16), vi.splat(builder, w_v, vi.V16)
        po = vi.data(context, builder, signature, args, 7, o_off_v)
        for j in range(4):  # eq. (2) of _gemm_vnni, wrapping int32
            t = builder.add(prod[j], builder.add(builder.mul(u, v[j]), builder.mul(w, x[j])))
            vi.masked_store(builder, t, builder.gep(po, [vi.idx(16 * j)]), vi.lane_mask(builder, nv_v, 16, 16 * j))
        return context.get_dummy_value()

    return sig, codegen


def sweep_rows(N: int) -> int:
    """Rows of b per sweep: 16 KiB of b (16 rows at N = 1024), 8 to 32 rows. Rows a power-of-two
    stride apart share L1 sets, and more of them than its ways evict lines the prefetcher fetched."""
    return max(8, min(32, 16384 // max(N, 1) // 4 * 4))


@numba.njit(cache=True)
def columns(ahat, lda, bf, K, N, rowv, zbv, out, M, jb0, jb1, sr):
    """Columns [64·jb0, 64·jb1) of out (M·N,) int32 = eq. (2) of :mod:`._gemm_vnni` mod 2^32, for
    M ≤ MAX_M (compiled once per M: a literal): sweeps of ``sr`` rows over all of K, then :func:`_finish`.

    ``ahat``: bytes of â (uint8, row stride ``lda`` ≥ 4⌈K/4⌉); ``bf``: ``b`` (K, N) flattened, int8
    or uint8; ``rowv`` (u_m, w_m) pairs and ``zbv`` (v_n, zero padded to a multiple of 64) int32.
    """
    ld = NB * (jb1 - jb0)
    acc = np.zeros((M + 1) * ld, np.int32)  # P rows, then the column sums; transposed column order
    for k0 in range(0, K, sr):
        kr = min(sr, K - k0)
        _sweep(numba.literally(M), ahat, k0, lda, bf, k0 * N, N, kr, jb0, jb1, N, acc, ld)
    for m in range(M):
        for jb in range(jb0, jb1):
            n0 = NB * jb
            c0 = NB * (jb - jb0)
            _finish(acc, m * ld + c0, M * ld + c0, rowv[2 * m], rowv[2 * m + 1], zbv, n0, out, m * N + n0,
                    min(NB, N - n0))

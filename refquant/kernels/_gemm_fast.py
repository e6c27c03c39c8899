r"""Exact int8 GEMM on AVX2 ``vpmaddwd`` (internal): the fast engine of :mod:`.gemm` and :mod:`.conv` on x86.

Computes eq. (1) of :mod:`.gemm` modulo $2^{32}$ (two's-complement int32 wrap):

$$ \mathrm{acc}_{mn} = \sum_{k} \underbrace{(a_{mk} - z_a[m])}_{a'_{mk}}\,
   \underbrace{(b_{kn} - z_b[n])}_{b'_{kn}} \bmod 2^{32}. \tag{1} $$

**The instruction.** ``vpmaddwd`` (LLVM ``llvm.x86.avx2.pmadd.wd``) multiplies sixteen int16
pairs and adds adjacent products into eight int32 lanes:
$d_i = x_{2i} y_{2i} + x_{2i+1} y_{2i+1}$. It is exact except for one input,
$x_{2i} = y_{2i} = x_{2i+1} = y_{2i+1} = -2^{15}$ (the sum $2^{31}$ wraps).

**Exactness** (the claim this module rests on). Operands are int8/uint8 and zero points lie in
their range, so $|a'|, |b'| \le 255$. Hence:

1. $a'$ and $b'$ are int16 values, so packing them as int16 is exact;
2. each lane $a'_{m,2p} b'_{2p,n} + a'_{m,2p+1} b'_{2p+1,n}$ has magnitude
   $\le 2 \cdot 255^2 = 130050 < 2^{31}$: ``vpmaddwd`` returns it exactly;
3. the lanes are summed over $p$ with ``vpaddd`` (int32, wrapping): addition modulo $2^{32}$
   is exact and associative, so the result is eq. (1) mod $2^{32}$ **whatever the order**
   (K blocking, tile order, thread count). $\tag{2}$

An odd $K$ is padded with a zero term. Whether the exact value fits int32 is the caller's
concern (:mod:`._checks`: only the final value matters, by the same associativity).

**Layout** (GotoBLAS/BLIS style). ``a'`` is packed into panels of ``MR = 6`` rows, each K-pair
of a row held as one int32 (two int16, low half first) so that ``vpbroadcastd`` spreads it
over a ymm register; ``b'`` into panels of ``NR = 16`` columns, each K-pair of the sixteen
columns as two ymm registers of interleaved int16 pairs. The micro-kernel
(:func:`_microkernel`, written in LLVM IR) keeps a 6×16 int32 tile in twelve ymm
accumulators: per K-pair 2 loads, 6 broadcasts, 12 ``vpmaddwd`` and 12 ``vpaddd``.

**Threads.** Calls of at least ``PARALLEL_MIN_MACS`` multiply-adds run
:func:`_driver_parallel` when Numba has more than one thread (``numba.set_num_threads`` or
``NUMBA_NUM_THREADS``): a ``prange`` over the 6×16 output tiles, each written by exactly one
thread, K blocks in order. Results are bit-identical for any thread count (and would be for any
order, by eq. (2)). Smaller calls, and one thread, run the serial :func:`_driver`.

Used only when :func:`available` (x86-64 with AVX2, the JIT enabled); elsewhere the float32
BLAS path of :mod:`._exact_blas` runs. ``tests/test_kernels_gemm_fast.py`` checks both
against :func:`refquant.kernels.gemm.gemm_reference` and the packing against NumPy twins.
"""

from __future__ import annotations

import platform

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..cpu import cpu_features

MR = 6          # rows of a micro-tile (6 × 2 ymm accumulators + 2 B registers + 1 broadcast = 15 of 16 ymm)
NR = 16         # columns of a micro-tile (two ymm of eight int32 lanes)
KC2_MAX = 256   # K-pairs per block: one B panel slice = 256·16·4 B = 16 KiB (L1)
PARALLEL_MIN_MACS = 1 << 22  # below ~4M multiply-adds (~0.2 ms on one core) threads do not pay

_u = np.uint64  # unsigned loop bounds let LLVM vectorize (no negative-index wraparound)


def available() -> bool:
    """True when the ``vpmaddwd`` kernel can run: JIT on, x86-64, AVX2 reported by the CPU."""
    return (not numba.config.DISABLE_JIT
            and platform.machine().lower() in ("x86_64", "amd64")
            and "avx2" in cpu_features())


# ----------------------------------------------------------------------------------------
# 1. Packing: NumPy twins (the layout's spec) and Numba versions
# ----------------------------------------------------------------------------------------

def pack_a_reference(a: np.ndarray, za: np.ndarray) -> np.ndarray:
    """(M, K) codes, (M,) zero points -> (ceil(M/MR), ceil(K/2), MR, 2) int16 of $a - z_a$, zero padded."""
    M, K = a.shape
    Mp, Kp = -(-M // MR) * MR, -(-K // 2) * 2
    ac = np.zeros((Mp, Kp), np.int16)
    ac[:M, :K] = a.astype(np.int16) - za.astype(np.int16)[:, None]  # |a - za| <= 255
    return ac.reshape(Mp // MR, MR, Kp // 2, 2).transpose(0, 2, 1, 3).copy()


def pack_b_reference(b: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """(K, N) codes, (N,) zero points -> (ceil(N/NR), ceil(K/2), NR, 2) int16 of $b - z_b$, zero padded."""
    K, N = b.shape
    Np, Kp = -(-N // NR) * NR, -(-K // 2) * 2
    bc = np.zeros((Kp, Np), np.int16)
    bc[:K, :N] = b.astype(np.int16) - zb.astype(np.int16)[None, :]
    return bc.reshape(Kp // 2, 2, Np // NR, NR).transpose(2, 0, 3, 1).copy()


@numba.njit(cache=True)
def _pair(lo, hi):
    """Two int16 values as one int32, ``lo`` in the low half (x86 little-endian int16 order)."""
    return np.int32((np.int32(lo) & np.int32(0xFFFF)) | (np.int32(hi) << np.int32(16)))


@numba.njit(cache=True)
def pack_a(a, za, out):
    """Numba twin of :func:`pack_a_reference` into ``out`` (nMP·K2·MR,) int32 (one K-pair per int32)."""
    M, K = a.shape
    K2 = (K + 1) // 2
    for ip in range((M + MR - 1) // MR):
        for r in range(MR):
            m = ip * MR + r
            base = ip * K2 * MR + r
            if m >= M:
                for p in range(K2):
                    out[base + p * MR] = 0
                continue
            z = np.int32(za[m])
            am = a[m]
            for p in range(_u(K // 2)):
                out[base + p * MR] = _pair(np.int32(am[2 * p]) - z, np.int32(am[2 * p + 1]) - z)
            if K % 2 == 1:
                out[base + (K2 - 1) * MR] = _pair(np.int32(am[K - 1]) - z, 0)


@numba.njit(cache=True)
def pack_b_rows(r0, r1, zb, p, K2, out):
    """Pack K-pair ``p`` (rows ``r0`` = $b_{2p}$, ``r1`` = $b_{2p+1}$, each (N,)) into ``out`` (nNP·K2·NR,) int32."""
    N = r0.shape[0]
    for jp in range(N // NR):
        n0 = jp * NR
        base = (jp * K2 + p) * NR
        for n in range(_u(NR)):
            z = np.int32(zb[n0 + n])
            out[base + n] = _pair(np.int32(r0[n0 + n]) - z, np.int32(r1[n0 + n]) - z)
    n0 = (N // NR) * NR
    if n0 < N:
        base = ((N // NR) * K2 + p) * NR
        for n in range(NR):
            if n0 + n < N:
                z = np.int32(zb[n0 + n])
                out[base + n] = _pair(np.int32(r0[n0 + n]) - z, np.int32(r1[n0 + n]) - z)
            else:
                out[base + n] = 0


@numba.njit(cache=True)
def pack_b(b, zb, out):
    """Numba twin of :func:`pack_b_reference` into ``out`` (nNP·K2·NR,) int32."""
    K, N = b.shape
    K2 = (K + 1) // 2
    for p in range(K // 2):
        pack_b_rows(b[2 * p], b[2 * p + 1], zb, p, K2, out)
    if K % 2 == 1:  # the last pair's second row is the zero pad: b - zb = 0 with b = zb
        pad = np.empty(N, np.int32)
        for n in range(N):
            pad[n] = zb[n]
        pack_b_rows(b[K - 1], pad, zb, K2 - 1, K2, out)


# ----------------------------------------------------------------------------------------
# 2. The micro-kernel (LLVM IR) and the blocked driver
# ----------------------------------------------------------------------------------------

# The LLVM IR of a 6×16 tile step, shared with the implicit-GEMM conv kernel of :mod:`._conv_fast`.
_I32, _I16, _IDX = ir.IntType(32), ir.IntType(16), ir.IntType(64)
_V8, _V16 = ir.VectorType(_I32, 8), ir.VectorType(_I16, 16)  # a ymm as 8 int32 / 16 int16


def emit_tile_begin(builder):
    """Declare ``vpmaddwd`` and zero the MR × NR/8 ymm accumulators of a 6×16 int32 tile."""
    pmaddwd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_V8, [_V16, _V16]), "llvm.x86.avx2.pmadd.wd")
    accs = [[cgutils.alloca_once_value(builder, ir.Constant(_V8, None)) for _ in range(NR // 8)]
            for _ in range(MR)]  # promoted to ymm registers by LLVM's mem2reg
    return pmaddwd, accs


def emit_pair_step(builder, pmaddwd, accs, pap, pbp):
    """One K-pair: ``accs[r][j] += vpmaddwd(broadcast(A pair of row r at pap), B ymm j at pbp)``.

    ``pap`` points at MR int32 (one (k, k+1) int16 pair per row), ``pbp`` at NR int32 (one pair
    per column). Exact per lane (|lane| <= 2·255² < 2^31), accumulation wraps (eq. (2)).
    """
    splat = ir.Constant(_V8, [0] * 8)
    bv = [builder.bitcast(builder.load(builder.bitcast(builder.gep(pbp, [ir.Constant(_IDX, 8 * j)]),
                                                       _V8.as_pointer()), align=4), _V16)
          for j in range(NR // 8)]                       # 8 columns × (k, k+1) int16 each
    for r in range(MR):
        a = builder.load(builder.gep(pap, [ir.Constant(_IDX, r)]), align=4)  # (a'[2p], a'[2p+1])
        av = builder.insert_element(ir.Constant(_V8, ir.Undefined), a, ir.Constant(_I32, 0))
        av = builder.bitcast(builder.shuffle_vector(av, ir.Constant(_V8, ir.Undefined), splat), _V16)
        for j in range(NR // 8):
            prod = builder.call(pmaddwd, [av, bv[j]])     # exact: |lane| <= 2·255² < 2^31
            builder.store(builder.add(builder.load(accs[r][j]), prod), accs[r][j])  # wraps


def emit_tile_end(builder, accs, pc, ldc_v, acc_v):
    """Write the tile to C at ``pc`` (row stride ``ldc_v`` int32), adding C's old values when ``acc_v``."""
    cps = [[builder.bitcast(builder.gep(pc, [builder.add(builder.mul(ldc_v, ir.Constant(_IDX, r)),
                                                         ir.Constant(_IDX, 8 * j))]), _V8.as_pointer())
            for j in range(NR // 8)] for r in range(MR)]
    with builder.if_then(acc_v):
        for r in range(MR):
            for j in range(NR // 8):
                builder.store(builder.add(builder.load(accs[r][j]), builder.load(cps[r][j], align=4)),
                              accs[r][j])
    for r in range(MR):
        for j in range(NR // 8):
            builder.store(builder.load(accs[r][j]), cps[r][j], align=4)


@intrinsic
def _microkernel(typingctx, ap, a_off, bp, b_off, c, c_off, ldc, npairs, accumulate):
    """C[r, n] (+)= Σ_{p < npairs} vpmaddwd(A pair p of row r, B pair p of column n), a 6×16 tile.

    ap: packed a' (int32 pairs) from element ``a_off``; bp: packed b' (int32 pairs) from
    ``b_off``; c: int32 output from ``c_off``, row stride ``ldc``; ``accumulate``: add to C
    (else overwrite). All arithmetic wraps modulo 2^32 (eq. (2)).
    """
    sig = types.void(ap, types.intp, bp, types.intp, c, types.intp, types.intp, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        ap_v, a_off_v, bp_v, b_off_v, c_v, c_off_v, ldc_v, np_v, acc_v = args

        def data(k, v, off):  # element pointer of array argument k at offset off
            return builder.gep(context.make_array(signature.args[k])(context, builder, v).data, [off])

        pa, pb, pc = data(0, ap_v, a_off_v), data(2, bp_v, b_off_v), data(4, c_v, c_off_v)
        pmaddwd, accs = emit_tile_begin(builder)
        with cgutils.for_range(builder, np_v) as loop:
            p = loop.index
            pbp = builder.gep(pb, [builder.mul(p, ir.Constant(_IDX, NR))])
            pap = builder.gep(pa, [builder.mul(p, ir.Constant(_IDX, MR))])
            emit_pair_step(builder, pmaddwd, accs, pap, pbp)
        emit_tile_end(builder, accs, pc, ldc_v, acc_v)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _tile(ap, bp, out, M, N, K2, ip, jp, k0, kn):
    """Tile (row panel ``ip``, column panel ``jp``) of out (M·N,) int32 (+)= K-pairs [k0, k0 + kn).

    Overwrites at ``k0 == 0``, else accumulates (wrapping). An edge tile goes through its own
    full-size scratch tile (allocated here: no scratch is shared between tiles or threads).
    """
    first = k0 == 0
    mv = min(MR, M - ip * MR)
    nv = min(NR, N - jp * NR)
    a_off = (ip * K2 + k0) * MR
    b_off = (jp * K2 + k0) * NR
    if mv == MR and nv == NR:
        _microkernel(ap, a_off, bp, b_off, out, ip * MR * N + jp * NR, N, kn, not first)
    else:
        tmp = np.empty(MR * NR, np.int32)
        _microkernel(ap, a_off, bp, b_off, tmp, 0, NR, kn, False)
        for r in range(mv):
            for n in range(nv):
                q = (ip * MR + r) * N + jp * NR + n
                out[q] = tmp[r * NR + n] if first else np.int32(out[q] + tmp[r * NR + n])


@numba.njit(cache=True)
def _driver(ap, bp, out, M, N, K2):
    """out (M·N,) int32 = packed a' · packed b' (eq. (1) mod 2^32), blocked over K-pairs, columns, rows."""
    nMP = (M + MR - 1) // MR
    nNP = (N + NR - 1) // NR
    nkb = (K2 + KC2_MAX - 1) // KC2_MAX
    kc = (K2 + nkb - 1) // max(nkb, 1)  # balanced K blocks
    tmp = np.empty(MR * NR, np.int32)   # edge tiles go through a full-size scratch tile
    for k0 in range(0, K2, max(kc, 1)):
        kn = min(kc, K2 - k0)
        first = k0 == 0
        for jp in range(nNP):
            nv = min(NR, N - jp * NR)
            for ip in range(nMP):
                mv = min(MR, M - ip * MR)
                a_off = (ip * K2 + k0) * MR
                b_off = (jp * K2 + k0) * NR
                if mv == MR and nv == NR:
                    _microkernel(ap, a_off, bp, b_off, out, ip * MR * N + jp * NR, N, kn, not first)
                else:
                    _microkernel(ap, a_off, bp, b_off, tmp, 0, NR, kn, False)
                    for r in range(mv):
                        for n in range(nv):
                            q = (ip * MR + r) * N + jp * NR + n
                            out[q] = tmp[r * NR + n] if first else np.int32(out[q] + tmp[r * NR + n])
    if K2 == 0:
        for q in range(M * N):
            out[q] = 0


@numba.njit(cache=True, parallel=True)
def _driver_parallel(ap, bp, out, M, N, K2):
    """Threaded :func:`_driver`: the same tiles, spread over Numba's threads, bit-identical results.

    K blocks run in order; within one, ``prange`` splits the tiles $t = j_p n_{MP} + i_p$
    (column panel major, so a thread's consecutive tiles share a B slice in L1) into chunks.
    Each tile of ``out`` is written by exactly one iteration, with its own scratch, and every
    element sums its K blocks in the same order for any thread count (and int32 wrap addition is
    associative anyway, eq. (2)): the result does not depend on ``numba.get_num_threads()``.
    """
    nMP = (M + MR - 1) // MR
    nNP = (N + NR - 1) // NR
    nkb = (K2 + KC2_MAX - 1) // KC2_MAX
    kc = (K2 + nkb - 1) // max(nkb, 1)  # the K blocks of _driver
    for kb in range(nkb):              # serial: a tile's K blocks accumulate in order
        k0 = kb * kc
        kn = min(kc, K2 - k0)
        for t in numba.prange(nNP * nMP):
            _tile(ap, bp, out, M, N, K2, t % nMP, t // nMP, k0, kn)
    if K2 == 0:
        for q in range(M * N):
            out[q] = 0


def use_threads(macs: int) -> bool:
    """True when a call of ``macs`` multiply-adds should run threaded: Numba has more than one
    thread (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``) and the work repays the start-up."""
    # NUMBA_NUM_THREADS bounds set_num_threads: at 1 the threading layer is never launched
    return macs >= PARALLEL_MIN_MACS and numba.config.NUMBA_NUM_THREADS > 1 and numba.get_num_threads() > 1


def packed_b_size(K: int, N: int) -> int:
    """Number of int32 elements of a packed b' (K, N)."""
    return -(-N // NR) * ((K + 1) // 2) * NR


def gemm_packed_b(a: np.ndarray, za: np.ndarray, bp: np.ndarray, N: int, out: np.ndarray) -> np.ndarray:
    """``out`` (M, N) int32 = eq. (1) mod 2^32 for ``a`` (M, K), zero points ``za`` (M,) and an
    already packed b' ``bp`` (from :func:`pack_b` or the conv im2col packer)."""
    M, K = a.shape
    ap = np.empty(-(-M // MR) * ((K + 1) // 2) * MR, np.int32)
    pack_a(np.ascontiguousarray(a), za.astype(np.int32), ap)
    driver = _driver_parallel if use_threads(M * N * K) else _driver
    driver(ap, bp, out.reshape(-1), M, N, (K + 1) // 2)
    return out


def gemm_wrap(a: np.ndarray, b: np.ndarray, za: np.ndarray, zb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (M, N) int32 (C-contiguous) = eq. (1) mod 2^32.

    Args:
        a: (M, K) int8/uint8. b: (K, N) int8/uint8. za: (M,) and zb: (N,) integer zero points
            within the operands' ranges (validated by the caller). Requires :func:`available`.
    """
    K, N = b.shape
    bp = np.empty(packed_b_size(K, N), np.int32)
    pack_b(np.ascontiguousarray(b), zb.astype(np.int32), bp)
    return gemm_packed_b(a, za, bp, N, out)


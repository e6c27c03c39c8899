r"""Exact int8 GEMM on AVX-512 VNNI ``vpdpbusd`` (internal): eq. (1) of :mod:`.gemm` at the CPU's int8 rate.

Computes, modulo $2^{32}$ (two's-complement int32 wrap),

$$ \mathrm{acc}_{mn} = \sum_{k<K} (a_{mk} - z_a[m])\,(b_{kn} - z_b[n]) \bmod 2^{32}. \tag{1} $$

**The instruction.** ``vpdpbusd`` (LLVM ``llvm.x86.avx512.vpdpbusd.512``) takes sixteen int32
lanes $d_i$, 64 *unsigned* bytes $u$ and 64 *signed* bytes $s$ and returns
$d_i + \sum_{j<4} u_{4i+j}\, s_{4i+j}$: the four products are formed and summed in full
precision and added to $d_i$ with an ordinary (wrapping) 32-bit add. (``vpdpbusds`` is the
saturating twin; it is not used.)

**Offsets: every dtype pair is a u8×s8 product.** With $c_a = 128$ for int8 ``a`` (else 0) and
$c_b = 128$ for uint8 ``b`` (else 0), the kernel multiplies $\hat a = a + c_a \in [0, 255]$
(bytes XOR ``0x80`` for int8) by $\hat b = b - c_b \in [-128, 127]$ (bytes XOR ``0x80`` for
uint8), and $z'_a = z_a + c_a$, $z'_b = z_b - c_b$ keep $a - z_a = \hat a - z'_a$ and
$b - z_b = \hat b - z'_b$. Expanding (1) with $r_m = \sum_k \hat a_{mk}$,
$c_n = \sum_k \hat b_{kn}$ (gemmlowp's zero-point algebra, MLAS's column-sum compensation):

$$ \mathrm{acc}_{mn} = \underbrace{\sum_k \hat a_{mk} \hat b_{kn}}_{P_{mn}\ (\texttt{vpdpbusd})}
   + \underbrace{\bigl(K z'_a[m] - r_m\bigr)}_{u_m} \underbrace{z'_b[n]}_{v_n}
   + \underbrace{(-z'_a[m])}_{w_m} \underbrace{c_n}_{x_n}. \tag{2} $$

**Exactness** (the claim this module rests on).

1. $0 \le \hat a \le 255$ and $-128 \le \hat b \le 127$ are exactly the operand types of
   ``vpdpbusd``; each product has $|\hat a \hat b| \le 255 \cdot 128 = 32640$ and the sum of four
   at most $130560 < 2^{31}$ in magnitude: **no intermediate saturates or wraps**; only the add
   into the int32 lane can wrap.
2. Every other operation is an int32 add or multiply (``vpaddd``, ``vpmulld``, both wrapping):
   all of eq. (2) is evaluated in $\mathbb{Z}/2^{32}$, where addition and multiplication are
   exact, associative and commutative. So the result is eq. (1) mod $2^{32}$ **whatever the
   order** — K blocks, tiles, thread count — and eq. (2) holds mod $2^{32}$ because it holds in
   $\mathbb{Z}$. $\tag{3}$
3. Padding adds nothing: $k \ge K$ (up to a multiple of 4) and columns $n \ge N$ (up to a multiple
   of 64) read as $\hat b = 0$ (masked loads), so every padded product is 0; the rows of a partial
   tile re-read its last row and are never stored (masked stores); $r_m$, $c_n$ and $K$ count true
   terms only.

Hence the kernel returns eq. (1) exactly whenever it fits int32 (``acc_model="exact"``) and its
two's-complement wrap otherwise (``"wrap"``). :func:`gemm_vnni` keeps the contract of
:func:`refquant.kernels.gemm.gemm`: when $K \max|a - z_a| \max|b - z_b| > 2^{31} - 1$ under
``"exact"``, it sums the kernel's results over K chunks of $2^{15}$ in int64 (each chunk's exact
value is below $2^{15} \cdot 255^2 < 2^{31}$, so each is exact) and applies the overflow rule of
:mod:`._checks` to the exact int64 values.

**Layout and kernels** (MLAS/oneDNN style, written as LLVM IR by Numba ``@intrinsic``\ s;
building blocks in :mod:`._vnni_ir`). ``vpdpbusd`` wants, per int32 lane, four consecutive $k$
of one column of $\hat b$: a "quad". ``a`` needs no packing: a quad of a row is the int32 at
byte $4q$ of the row, which ``vpbroadcastd`` spreads over a zmm (uint8 ``a`` is read in place;
int8 ``a``, or $K$ not a multiple of 4, is first copied as $\hat a$ with zero padding, in the same
pass that forms $r_m$). ``b`` (K, N) row-major is turned into quads by a byte transpose of four
rows (``vpunpck{l,h}bw`` then ``vpunpck{l,h}wd``: 64 columns × 4 rows in eight shuffles).

* **GEMM** (M > ``_gemv_vnni.MAX_M``): ``b`` is packed once per call into column panels of
  ``NR = 64`` quads (:func:`_pack_rows`, in sweeps of whole rows so that every read of ``b`` is
  sequential; it also forms $c_n$ by ``vpdpbusd`` against bytes of 1; layout
  :func:`pack_b_reference`). The 6×64 micro-kernel (:func:`_kernel`) keeps 24 zmm accumulators:
  per quad 4 loads, 6 broadcasts and 24 ``vpdpbusd``. A panel's K block of ``KC4`` quads (64 KiB)
  is reused by every row panel of ``MR = 6`` of a row block (``MC_BYTES`` of $\hat a$). The last
  K block adds $u_m v_n + w_m x_n$; edge tiles use masked loads and stores.
* **GEMV** (M ≤ ``_gemv_vnni.MAX_M``, batch-1 inference): :mod:`._gemv_vnni` streams ``b``
  once per call, transposing four rows per step in registers, with no packed copy.

**Threads.** Calls of at least ``PARALLEL_MIN_MACS`` (2^20) multiply-adds with more than one
Numba thread run ``prange`` loops over disjoint pieces: ranges of column panels to pack, then
output blocks (a row block × a column panel, or a range of 64-column blocks of the GEMV), each
computed by one thread with its own scratch, its K blocks in order. The result is bit-identical
for any thread count (and would be for any order, eq. (3)).

Used only when :func:`vnni_available` (x86-64 with AVX512-VNNI and AVX512-BW, the JIT on, Numba
compiling for this CPU). ``tests/test_kernels_gemm_vnni.py`` checks every path against
:func:`refquant.kernels.gemm.gemm_reference` and the operand layouts against their NumPy twins.
"""

from __future__ import annotations

import functools
import os
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ..cpu import cpu_features
from ..errors import UnsupportedError
from . import _gemv_vnni as gv
from . import _vnni_ir as vi
from . import _vnni_operands as vo
from ._checks import (
    INT32_MAX,
    gemm_args,
    finish_int64,
    max_abs_centered,
)

__all__ = ["gemm_vnni", "gemm_wrap", "pack_b_reference", "vnni_available"]

MR = 6          # rows of a micro-tile: 6 × 4 zmm accumulators + 4 B zmm + 1 broadcast = 29 of 32 zmm
NR = 64         # columns of a micro-tile (four zmm of sixteen int32 lanes)
KC4 = 256       # quads per K block: a panel's block is 256 · 64 · 4 B = 64 KiB (L2; K ≤ 1024: one block)
MC_BYTES = 512 * 1024  # bytes of â (all of K) one row block keeps in L2 while it meets every column panel
PARALLEL_MIN_MACS = 1 << 20  # from ~1M multiply-adds (~5 µs on one core) two threads pay (measured: 1×1024×1024)
K_CHUNK = 1 << 15      # exact int64 path: 2^15 · 255² < 2^31, so each chunk's sum fits int32


@functools.lru_cache(maxsize=1)
def vnni_available() -> bool:
    """True when the ``vpdpbusd`` kernels can run: JIT on, x86-64, AVX512-VNNI and AVX512-BW
    reported by the CPU, Numba compiling for this CPU (``NUMBA_CPU_NAME`` unset or ``host``), and
    the environment variable ``REFQUANT_DISABLE_VNNI`` unset or ``0`` (set it to compare paths)."""
    f = cpu_features()
    return (os.environ.get("REFQUANT_DISABLE_VNNI", "0") in ("", "0")
            and not numba.config.DISABLE_JIT
            and platform.machine().lower() in ("x86_64", "amd64")
            and "avx512_vnni" in f and "avx512bw" in f
            and numba.config.CPU_NAME in (None, "host"))


def use_threads(macs: int) -> bool:
    """True when a call of ``macs`` multiply-adds runs threaded: Numba has more than one thread
    (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``) and the work repays the start-up."""
    return macs >= PARALLEL_MIN_MACS and numba.config.NUMBA_NUM_THREADS > 1 and numba.get_num_threads() > 1


# ----------------------------------------------------------------------------------------
# 1. The layout of b̂ (NumPy twin of _pack_rows)
# ----------------------------------------------------------------------------------------

# Column of a 64-column block held by packed lane position t (the order of _vnni_ir.transpose_quads):
# t = 16 i + 4 L + j holds column 16 L + 4 i + j.
PANEL_ORDER = np.array([16 * L + 4 * i + j for i in range(4) for L in range(4) for j in range(4)], np.int64)


def pack_b_reference(b: np.ndarray) -> np.ndarray:
    r"""(K, N) codes -> (⌈N/NR⌉, ⌈K/4⌉, NR, 4) int8 of $\hat b = b - c_b$, zero padded, the NR columns of
    each panel in :data:`PANEL_ORDER`: the quads :func:`_pack_rows` writes."""
    K, N = b.shape
    Np, Kp = -(-N // NR) * NR, -(-K // 4) * 4
    out = np.zeros((Kp, Np), np.uint8)
    out[:K, :N] = vo.offset_bytes(b, b.dtype == np.uint8)
    panels = out.view(np.int8).reshape(Kp // 4, 4, Np // NR, NR).transpose(2, 0, 3, 1)  # natural order
    return panels[:, :, PANEL_ORDER].copy()


# ----------------------------------------------------------------------------------------
# 2. Kernels (LLVM IR): the packer of b and the 6×64 micro-kernel
# ----------------------------------------------------------------------------------------

@intrinsic
def _pack_rows(typingctx, b, b_off, ldb, krows, jb0, jb1, N, out, o_off, ldo, colsum):
    r"""Rows [0, krows) of ``b`` (bytes from ``b_off``, row stride ``ldb``, N columns) for the column panels
    jb in [jb0, jb1) -> quads of $\hat b$ at ``out[o_off + jb·ldo + 64 p + t]`` (quad p of the rows,
    lane position t in :data:`PANEL_ORDER`; rows past ``krows`` and columns past N read as 0); adds
    $\sum_k \hat b_{kn}$ into ``colsum[64 jb + t]`` (the same order, wrapping int32)."""
    sig = types.void(b, types.intp, types.intp, types.intp, types.intp, types.intp, types.intp, out, types.intp,
                     types.intp, colsum)
    flip = not b.dtype.signed

    def codegen(context, builder, signature, args):
        _, b_off_v, ldb_v, krows_v, jb0_v, jb1_v, n_v, _, o_off_v, ldo_v, _ = args
        pb = vi.data(context, builder, signature, args, 0, b_off_v)
        po = vi.data(context, builder, signature, args, 7, o_off_v)
        psum = vi.data(context, builder, signature, args, 10, vi.idx(0))
        vnni = vi.vpdpbusd(builder)
        sums = [cgutils.alloca_once_value(builder, ir.Constant(vi.V16, None)) for _ in range(4)]
        last_jb = builder.udiv(builder.sub(n_v, vi.idx(1)), vi.idx(NR))
        tail_mask = vi.lane_mask(builder, builder.sub(n_v, builder.mul(last_jb, vi.idx(NR))), 64, 0)
        with cgutils.for_range_slice(builder, jb0_v, jb1_v, vi.idx(1)) as (jb, _):
            n0 = builder.mul(jb, vi.idx(NR))
            pbj = builder.gep(pb, [n0])
            dst = builder.gep(po, [builder.mul(jb, ldo_v)])
            slots = [builder.bitcast(builder.gep(psum, [builder.add(n0, vi.idx(16 * i))]), vi.V16.as_pointer())
                     for i in range(4)]
            for i in range(4):
                builder.store(builder.load(slots[i], align=4), sums[i])

            def step(p, kr, cmask):
                q = vi.transpose_quads(builder, vi.load_quad_rows(builder, pbj, ldb_v, p, kr, cmask, flip))
                d = builder.gep(dst, [builder.mul(p, vi.idx(NR))])
                for i in range(4):
                    builder.store(q[i], builder.bitcast(builder.gep(d, [vi.idx(16 * i)]), vi.V16.as_pointer()), align=4)
                    builder.store(vnni(builder.load(sums[i]), vi.ONES, q[i]), sums[i])

            with builder.if_else(builder.icmp_signed("<", jb, last_jb)) as (full, tail):  # only the last is partial
                with full:
                    vi.for_quads(builder, krows_v, lambda p, kr: step(p, kr, None))
                with tail:
                    vi.for_quads(builder, krows_v, lambda p, kr: step(p, kr, tail_mask))
            for i in range(4):
                builder.store(builder.load(sums[i]), slots[i], align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _kernel(typingctx, a, a_off, lda, bs, b_off, nq, c, c_off, ldc, mv, nv, load_c, rowv, r_off, colv, last):
    r"""One 6×64 tile: C (+)= Σ_{p<nq} vpdpbusd(â quad p of row r, b̂ quads p of the panel); when ``last``,
    + u_r v_n + w_r x_n (eq. (2): ``rowv`` (u, w) pairs from ``r_off``, ``colv`` = (v, x), 2·NR int32,
    natural column order).

    ``a``: bytes of â from ``a_off`` (row stride ``lda``; rows r ≥ mv read row mv - 1); ``bs``: packed
    b̂ from its element ``b_off``, (nq, NR) int32 in :data:`PANEL_ORDER`; ``c``: int32 from ``c_off``, row
    stride ``ldc``, rows r < mv and columns
    n < nv written (masked). ``load_c``: add C's old value (K blocks after the first). Wrapping.
    """
    sig = types.void(a, types.intp, types.intp, bs, types.intp, types.intp, c, types.intp, types.intp, types.intp,
                     types.intp, types.boolean, rowv, types.intp, colv, types.boolean)

    def codegen(context, builder, signature, args):
        _, a_off_v, lda_v, _, b_off_v, nq_v, _, c_off_v, ldc_v, mv_v, nv_v, load_v, _, r_off_v, _, last_v = args
        pa = vi.data(context, builder, signature, args, 0, a_off_v)
        pb = vi.data(context, builder, signature, args, 3, b_off_v)
        pc = vi.data(context, builder, signature, args, 6, c_off_v)
        prow = vi.data(context, builder, signature, args, 12, r_off_v)
        pcol = vi.data(context, builder, signature, args, 14, vi.idx(0))
        vnni = vi.vpdpbusd(builder)
        accs = vi.new_accs(builder, MR)
        last_row = builder.sub(mv_v, vi.idx(1))
        arow = [builder.gep(pa, [builder.mul(lda_v, builder.select(
            builder.icmp_signed("<", vi.idx(r), mv_v), vi.idx(r), last_row))]) for r in range(MR)]
        with cgutils.for_range(builder, nq_v) as loop:
            p = loop.index
            pbp = builder.gep(pb, [builder.mul(p, vi.idx(NR))])
            bv = [builder.load(builder.bitcast(builder.gep(pbp, [vi.idx(16 * j)]), vi.V16.as_pointer()), align=4)
                  for j in range(4)]
            for r in range(MR):
                av = vi.broadcast_quad(builder, arow[r], p)
                for j in range(4):
                    builder.store(vnni(builder.load(accs[r][j]), av, bv[j]), accs[r][j])
        for row in accs:  # the packed lane order (PANEL_ORDER) -> natural columns
            for acc, val in zip(row, vi.unpermute(builder, [builder.load(a) for a in row])):
                builder.store(val, acc)
        v, x = ([builder.load(builder.bitcast(builder.gep(pcol, [vi.idx(h * NR + 16 * j)]), vi.V16.as_pointer()),
                              align=4) for j in range(4)] for h in range(2))
        vi.emit_store(builder, accs, pc, ldc_v, mv_v, nv_v, load_v, (last_v, prow, v, x))
        return context.get_dummy_value()

    return sig, codegen


# ----------------------------------------------------------------------------------------
# 3. Drivers (Numba) and entry points
# ----------------------------------------------------------------------------------------

@numba.njit(cache=True)
def _pack_b(bf, K, N, lo, hi, sr, packed, colsum):
    """Column panels [lo, hi) of b (K, N) flattened -> ``packed`` (⌈N/NR⌉·⌈K/4⌉·NR,) int32 quads of b̂ and
    ``colsum`` (⌈N/NR⌉·NR,) int32 column sums (both in PANEL_ORDER), in sweeps of ``sr`` whole rows:
    every read of b is sequential."""
    K4 = (K + 3) // 4
    colsum[lo * NR:hi * NR] = 0
    for k0 in range(0, K, sr):
        _pack_rows(bf, k0 * N, N, min(sr, K - k0), lo, hi, N, packed, (k0 // 4) * NR, K4 * NR, colsum)


@numba.njit(cache=True)
def _block(ah, lda, bp, K, N, rowv, zbv, colsum, out, M, ip0, ip1, jp, colv):
    """Row panels [ip0, ip1) × column panel ``jp`` of out (M·N,) int32 = eq. (2) mod 2^32, from packed b̂
    ``bp``, K blocks in order."""
    n0 = jp * NR
    nv = min(NR, N - n0)
    K4 = (K + 3) // 4
    for t in range(NR):
        n = PANEL_ORDER[t]
        colv[n] = zbv[n0 + n]             # v_n = z'_b[n]
        colv[NR + n] = colsum[n0 + t]     # x_n = c_n (packed order -> natural)
    for q0 in range(0, K4, KC4):
        nq = min(KC4, K4 - q0)
        for ip in range(ip0, ip1):
            _kernel(ah, ip * MR * lda + 4 * q0, lda, bp, (jp * K4 + q0) * NR, nq, out, ip * MR * N + n0, N,
                    min(MR, M - ip * MR), nv, q0 > 0, rowv, 2 * ip * MR, colv, q0 + nq >= K4)


@numba.njit(cache=True)
def _operands(a, za, zb, ca, cb, N):
    """(bytes of â (uint8, 1-D), its row stride, rowv, zbv) for the drivers (see :func:`._vnni_operands.prepare`)."""
    M, K = a.shape
    K4 = (K + 3) // 4
    in_place = ca == 0 and K % 4 == 0  # uint8 a with 4 | K: â = a, read where it lies
    ahat = np.empty((0 if in_place else M, 4 * K4), np.uint8)
    rowv = np.empty(2 * ((M + MR - 1) // MR) * MR, np.int32)
    zbv = np.empty(((N + NR - 1) // NR) * NR, np.int32)
    vo.prepare(a, za, zb, ca, cb, ahat, rowv, zbv)
    ah = a.reshape(-1).view(np.uint8) if in_place else ahat.reshape(-1)
    return ah, 4 * K4, rowv, zbv


@numba.njit(cache=True)
def _gemv(a, za, zb, ca, cb, bf, N, out, sr, M):
    """out (M·N,) int32 = eq. (2) mod 2^32 for M ≤ MAX_M rows, one thread. ``M`` must be a compile-time
    literal (:func:`._gemv_vnni.columns` is compiled per M): call it through ``_GEMV[M]``."""
    ah, lda, rowv, zbv = _operands(a, za, zb, ca, cb, N)
    gv.columns(ah, lda, bf, a.shape[1], N, rowv, zbv, out, M, 0, (N + gv.NB - 1) // gv.NB, sr)


@numba.njit(cache=True, parallel=True)
def _gemv_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks, M):
    """Threaded :func:`_gemv`: ``nchunks`` disjoint column ranges, one ``prange`` iteration each."""
    ah, lda, rowv, zbv = _operands(a, za, zb, ca, cb, N)
    nJ = (N + gv.NB - 1) // gv.NB
    for c in numba.prange(nchunks):
        gv.columns(ah, lda, bf, a.shape[1], N, rowv, zbv, out, M, c * nJ // nchunks, (c + 1) * nJ // nchunks, sr)


# One entry per row count and thread mode, M a literal constant: a Python int argument would make Numba
# retry the non-literal typing (and fail) on every call. Only the entries used are ever compiled.
@numba.njit(cache=True)
def _gemv1(a, za, zb, ca, cb, bf, N, out, sr):
    _gemv(a, za, zb, ca, cb, bf, N, out, sr, 1)


@numba.njit(cache=True)
def _gemv2(a, za, zb, ca, cb, bf, N, out, sr):
    _gemv(a, za, zb, ca, cb, bf, N, out, sr, 2)


@numba.njit(cache=True)
def _gemv3(a, za, zb, ca, cb, bf, N, out, sr):
    _gemv(a, za, zb, ca, cb, bf, N, out, sr, 3)


@numba.njit(cache=True)
def _gemv4(a, za, zb, ca, cb, bf, N, out, sr):
    _gemv(a, za, zb, ca, cb, bf, N, out, sr, 4)


@numba.njit(cache=True)
def _gemv1_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks):
    _gemv_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks, 1)


@numba.njit(cache=True)
def _gemv2_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks):
    _gemv_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks, 2)


@numba.njit(cache=True)
def _gemv3_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks):
    _gemv_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks, 3)


@numba.njit(cache=True)
def _gemv4_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks):
    _gemv_parallel(a, za, zb, ca, cb, bf, N, out, sr, nchunks, 4)


_GEMV = (None, _gemv1, _gemv2, _gemv3, _gemv4)
_GEMV_PARALLEL = (None, _gemv1_parallel, _gemv2_parallel, _gemv3_parallel, _gemv4_parallel)


@numba.njit(cache=True)
def _gemm(a, za, zb, ca, cb, bf, N, out, mcp, sr):
    """out (M·N,) int32 = eq. (2) mod 2^32, one thread: b packed once in row sweeps, then row blocks of
    ``mcp`` panels (their â stays in L2) × column panels."""
    M, K = a.shape
    ah, lda, rowv, zbv = _operands(a, za, zb, ca, cb, N)
    nMP, nNP = (M + MR - 1) // MR, (N + NR - 1) // NR
    bp = np.empty(nNP * ((K + 3) // 4) * NR, np.int32)  # packed b̂, (nNP, K4, NR)
    colsum = np.empty(nNP * NR, np.int32)
    _pack_b(bf, K, N, 0, nNP, sr, bp, colsum)
    colv = np.empty(2 * NR, np.int32)
    for t in range(((nMP + mcp - 1) // mcp) * nNP):
        ip0 = (t // nNP) * mcp
        _block(ah, lda, bp, K, N, rowv, zbv, colsum, out, M, ip0, min(ip0 + mcp, nMP), t % nNP, colv)


@numba.njit(cache=True, parallel=True)
def _gemm_parallel(a, za, zb, ca, cb, bf, N, out, mcp, sr, nchunks):
    """Threaded :func:`_gemm`: ``nchunks`` disjoint ranges of column panels are packed in parallel, then each
    (row block, column panel) is one ``prange`` iteration with its own scratch that alone writes its part
    of ``out``, K blocks in order: bit-identical for any thread count."""
    M, K = a.shape
    ah, lda, rowv, zbv = _operands(a, za, zb, ca, cb, N)
    nMP, nNP = (M + MR - 1) // MR, (N + NR - 1) // NR
    bp = np.empty(nNP * ((K + 3) // 4) * NR, np.int32)
    colsum = np.empty(nNP * NR, np.int32)
    for c in numba.prange(nchunks):
        _pack_b(bf, K, N, c * nNP // nchunks, (c + 1) * nNP // nchunks, sr, bp, colsum)
    for t in numba.prange(((nMP + mcp - 1) // mcp) * nNP):
        colv = np.empty(2 * NR, np.int32)
        ip0 = (t // nNP) * mcp
        _block(ah, lda, bp, K, N, rowv, zbv, colsum, out, M, ip0, min(ip0 + mcp, nMP), t % nNP, colv)


def gemm_wrap(a: np.ndarray, b: np.ndarray, za: np.ndarray, zb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (M, N) int32 (C-contiguous) = eq. (1) mod 2^32 (the call of ``_gemm_fast.gemm_wrap``).

    Args:
        a: (M, K) int8/uint8. b: (K, N) int8/uint8. za: (M,) and zb: (N,) integer zero points within
            the operands' ranges (validated by the caller; shape (1,): per tensor). Requires
            :func:`vnni_available`.

    Returns:
        ``out``.
    """
    M, K = a.shape
    N = b.shape[1]
    if M == 0 or N == 0:
        return out
    if K == 0:
        out[...] = 0
        return out
    args = (np.ascontiguousarray(a), za, zb, 128 if a.dtype == np.int8 else 0, 128 if b.dtype == np.uint8 else 0,
            np.ascontiguousarray(b).reshape(-1), N, out.reshape(-1))
    threads = use_threads(M * N * K)
    if M <= gv.MAX_M:
        if threads:
            _GEMV_PARALLEL[M](*args, gv.sweep_rows(N), min(-(-N // gv.NB), 2 * numba.get_num_threads()))
        else:
            _GEMV[M](*args, gv.sweep_rows(N))
    else:
        mcp = max(1, MC_BYTES // (MR * K))
        if threads:
            _gemm_parallel(*args, mcp, gv.sweep_rows(N), min(-(-N // NR), 2 * numba.get_num_threads()))
        else:
            _gemm(*args, mcp, gv.sweep_rows(N))
    return out


def gemm_vnni(a, b, a_zero_point=0, b_zero_point=0, *, acc_model="exact", on_overflow="warn"):
    """:func:`refquant.kernels.gemm.gemm` on ``vpdpbusd``: same arguments, same int32 result bit for bit,
    for ``acc_model`` ``"exact"`` and ``"wrap"`` (the pairwise models saturate; VNNI does not).

    Args:
        a: (M, K) int8 or uint8. b: (K, N) int8 or uint8.
        a_zero_point: int or ``a.dtype`` scalar/array, shape () or (M,). b_zero_point: shape () or (N,).
        acc_model: ``"exact"`` (``"exact_int32"``) or ``"wrap"`` (``"wrap_int32"``).
        on_overflow: ``"warn"`` or ``"raise"`` when an exact value leaves int32 (see :mod:`._checks`).

    Returns:
        (M, N) int32: eq. (1), or its two's-complement wrap.

    Raises:
        UnsupportedError: a pairwise model, K ≥ 2^24, or not :func:`vnni_available`.
        QuantizationTypeError, QuantizationValueError, ShapeError: as :func:`~refquant.kernels.gemm.gemm`.
    """
    a, b, za, zb, model, on_overflow = _validate(a, b, a_zero_point, b_zero_point, acc_model, on_overflow)
    M, K = a.shape
    N = b.shape[1]
    za_v, zb_v = za.reshape(-1), zb.reshape(-1)  # (M,) or (1,), (N,) or (1,) int64
    # |acc| <= K·max|a - za|·max|b - zb| <= K·255²: below 2^31 no value can leave int32 (33025·255² < 2^31)
    if (model == "wrap" or K <= INT32_MAX // 255**2
            or K * max_abs_centered(a.dtype, za) * max_abs_centered(b.dtype, zb) <= INT32_MAX):
        return gemm_wrap(a, b, za_v, zb_v, np.empty((M, N), np.int32))
    acc = np.zeros((M, N), np.int64)  # exact: chunks of 2^15 terms are exact in int32 (module docstring)
    part = np.empty((M, N), np.int32)
    for k0 in range(0, K, K_CHUNK):
        acc += gemm_wrap(np.ascontiguousarray(a[:, k0:k0 + K_CHUNK]), b[k0:k0 + K_CHUNK], za_v, zb_v, part)
    return finish_int64(acc, model, on_overflow, "gemm_vnni")


def _validate(a, b, a_zero_point, b_zero_point, acc_model, on_overflow):
    """The checks of :func:`refquant.kernels.gemm.gemm` (same errors), plus this kernel's limits."""
    a, b, za, zb, model, on_overflow = gemm_args(a, b, a_zero_point, b_zero_point, acc_model, on_overflow)
    if model not in ("exact", "wrap"):
        raise UnsupportedError(f"acc_model={model!r} saturates pairs of products; vpdpbusd does not "
                               "(use refquant.kernels.gemm.gemm)")
    if not vnni_available():
        raise UnsupportedError("gemm_vnni needs x86-64 with AVX512-VNNI and AVX512-BW and the Numba JIT enabled")
    return a, b, za, zb, model, on_overflow

r"""Exact int8 convolution as an implicit GEMM on AVX2 ``vpmaddwd`` (internal): the fast engine of
:func:`refquant.kernels.conv.conv2d` on x86 for ``groups == 1`` and the exact/wrap models.

Computes eq. (1) of :mod:`.conv` modulo $2^{32}$ without an im2col matrix. Write
$x'_c = \tilde x_c - z_x$ for the padded, centered image (zero outside the image, so an
out-of-image tap contributes 0) and $w'_{o,c,i,j} = W_{o,c,i,j} - z_w[o]$. With strides $s$
and dilations $d$, split $x'$ into its $s_H s_W$ **phases**
$x'^{(a,b)}_c[r, t] = x'_c[r s_H + a,\; t s_W + b]$ (each $H_q \times W_q$,
$H_q = \lceil H_p / s_H \rceil$, $W_q = \lceil W_p / s_W \rceil$, zero beyond the padded image). Then

$$ \mathrm{acc}[o, h, w] = \sum_{i,j} \sum_{c} w'_{o,c,i,j}\;
   x'^{(i d_H \bmod s_H,\; j d_W \bmod s_W)}_c\bigl[h + \lfloor i d_H / s_H \rfloor,\;
   w + \lfloor j d_W / s_W \rfloor\bigr]. \tag{1} $$

Flatten each phase plane row-major with row length $W_q$: the pixel $(h, w)$ is column
$q = h W_q + w$, and tap $(i, j)$ reads column $q + \delta_{ij}$ of its phase, with the
constant offset $\delta_{ij} = \lfloor i d_H/s_H \rfloor W_q + \lfloor j d_W/s_W \rfloor$.
So for one tap, the tap's contribution is a plain GEMM $w'_{:, :, i, j} \cdot X^{(a,b)}$ whose
$B$ operand is the phase matrix *shifted* by $\delta_{ij}$: no data is copied per tap. Each
output row is computed on the full width $W_q$ ($\ge O_W$; e.g. 58 instead of 56 columns
for a 3×3 pad-1 conv; $O_H W_q$ rounded up to a multiple of 16 in all) and only the first
$O_W$ columns of each row are kept; the extra columns read pixels of the next row or a zero
tail after the plane (finite values) and are discarded.

**Exactness**: the same argument as :mod:`._gemm_fast` eq. (2). $|x'|, |w'| \le 255$ are
int16; each ``vpmaddwd`` lane $x'_{2p} w'_{2p} + x'_{2p+1} w'_{2p+1}$ is at most
$2 \cdot 255^2 < 2^{31}$ in magnitude, hence exact; lanes are summed with wrapping ``vpaddd``,
exact modulo $2^{32}$ in any order (tap order, channel pairing). An odd channel count is
padded with a zero channel.

**Layout**. Each image is packed as ``xq`` (phases, C2, L) int32 (one pair
of channels $(2p, 2p+1)$ at one pixel per int32, low half first), $C_2 = \lceil C/2 \rceil$, so
sixteen consecutive columns of one pair row are exactly the 2 ymm of a ``vpmaddwd`` B
operand. The weights are packed once per call as ``wq`` (⌈O/MR⌉, taps, C2, MR) int32, the
A panels of :mod:`._gemm_fast` with $K$ ordered (tap, channel pair). The micro-kernel
(:func:`_microkernel_taps`) keeps a 6×16 int32 tile in registers over all taps and channel pairs.

**Threads**: per image, calls of at least ``_gemm_fast.PARALLEL_MIN_MACS`` multiply-adds run
:func:`_driver_parallel` when Numba has more than one thread, each output tile written by
exactly one thread: bit-identical results for any thread count (see :func:`_driver_parallel`).

Only used when :func:`._gemm_fast.available` and $|{\rm acc}|$ cannot exceed int32 (else
:mod:`.conv` takes its checked BLAS path). ``tests/test_kernels_conv_fast.py`` checks it
against :func:`refquant.kernels.conv.conv2d_reference` and the packing against NumPy twins.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._gemm_fast import (_IDX, MR, NR, _pair, available, emit_pair_step, emit_tile_begin, emit_tile_end,
                         use_threads)

__all__ = ["available", "conv2d_wrap", "pack_image", "pack_image_reference", "pack_weights",
           "pack_weights_reference", "geometry"]

_u = np.uint64  # unsigned loop bounds let LLVM vectorize (no negative-index wraparound)
C2_BLOCK = 64   # channel pairs per K block (3×3; scaled by 3/kH): a tile's B slice stays in L1
A_BLOCK_BYTES = 128 * 1024  # packed weights of one row block: kept in L2


# ----------------------------------------------------------------------------------------
# 1. Geometry and packing: NumPy twins (the layout's spec) and Numba versions
# ----------------------------------------------------------------------------------------

def geometry(H, W, kernel, strides, dilations, pads):
    r"""Phase plane size and tap offsets of eq. (1).

    Returns:
        (Hq, Wq, L, n_cols, phase, delta): phase plane rows/columns; plane length L in int32
        (room for the shifted reads of the discarded columns, a multiple of NR); n_cols, the
        computed columns ($O_H W_q$ rounded up to NR); per tap $t = i k_W + j$ (kH·kW,) int64,
        its phase index $a s_W + b$ and its offset $\delta_{ij}$ inside the phase plane.
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = kernel, strides, dilations, pads
    Hp, Wp = H + pt + pb, W + pl + pr
    Hq, Wq = -(-Hp // sh), -(-Wp // sw)
    OH = (Hp - dh * (kh - 1) - 1) // sh + 1
    phase = np.empty(kh * kw, np.int64)
    delta = np.empty(kh * kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            phase[i * kw + j] = ((i * dh) % sh) * sw + (j * dw) % sw
            delta[i * kw + j] = ((i * dh) // sh) * Wq + (j * dw) // sw
    n_cols = -(-OH * Wq // NR) * NR                 # columns computed: whole rows of Wq, NR-rounded
    L = -(-max(Hq * Wq, n_cols + int(delta.max())) // NR) * NR
    return Hq, Wq, L, n_cols, phase, delta


def pack_image_reference(x, xz, strides, pads, Hq, Wq, L):
    r"""(N, C, H, W) codes -> (N, sH·sW, C2, L, 2) int16 of $x' = \tilde x - z_x$ per phase, zero padded."""
    N, C, H, W = x.shape
    (sh, sw), (pt, pl, _, _) = strides, pads
    xp = np.zeros((N, -(-C // 2) * 2, Hq * sh, Wq * sw), np.int16)
    xp[:, :C, pt:pt + H, pl:pl + W] = x.astype(np.int16) - np.int16(xz)  # |x - xz| <= 255
    out = np.zeros((N, sh * sw, -(-C // 2), L, 2), np.int16)
    for a in range(sh):
        for b in range(sw):
            ph = xp[:, :, a::sh, b::sw].reshape(N, -1, 2, Hq * Wq)
            out[:, a * sw + b, :, :Hq * Wq] = ph.transpose(0, 1, 3, 2)
    return out


@numba.njit(cache=True)
def pack_image(x, xz, sh, sw, pt, pl, Hq, Wq, L, out):
    """Numba twin of :func:`pack_image_reference` for one image ``x`` (C, H, W) into ``out``
    (sH·sW·C2·L,) int32 (one channel pair per int32)."""
    C, H, W = x.shape
    C2 = (C + 1) // 2
    z = np.int32(xz)
    for q in range(out.shape[0]):
        out[q] = 0
    for a in range(sh):
        for b in range(sw):
            for p in range(C2):
                base = ((a * sw + b) * C2 + p) * L
                x0 = x[2 * p]
                for r in range(Hq):
                    ih = r * sh + a - pt
                    if ih < 0 or ih >= H:
                        continue
                    # phase columns t with 0 <= t·sw + b - pl < W
                    lo = max(0, -((b - pl) // sw))
                    hi = min(Wq, (W - 1 + pl - b) // sw + 1)
                    row = _u(base + r * Wq)
                    uih = _u(ih)
                    if 2 * p + 1 < C:
                        x1 = x[2 * p + 1]
                        for t in range(_u(lo), _u(max(hi, lo))):
                            iw = t * _u(sw) + _u(b) - _u(pl)
                            out[row + t] = _pair(np.int32(x0[uih, iw]) - z, np.int32(x1[uih, iw]) - z)
                    else:
                        for t in range(_u(lo), _u(max(hi, lo))):
                            iw = t * _u(sw) + _u(b) - _u(pl)
                            out[row + t] = _pair(np.int32(x0[uih, iw]) - z, 0)


def pack_weights_reference(w, wz):
    """(O, C, kH, kW) codes, (O,) zero points -> (⌈O/MR⌉, kH·kW, C2, MR, 2) int16 of $w'$, zero padded."""
    O, C, kh, kw = w.shape
    Op, Cp = -(-O // MR) * MR, -(-C // 2) * 2
    wc = np.zeros((Op, Cp, kh * kw), np.int16)
    wc[:O, :C] = (w.astype(np.int16) - wz.astype(np.int16)[:, None, None, None]).reshape(O, C, -1)
    return wc.reshape(Op // MR, MR, Cp // 2, 2, kh * kw).transpose(0, 4, 2, 1, 3).copy()


@numba.njit(cache=True)
def pack_weights(w, wz, out):
    """Numba twin of :func:`pack_weights_reference` into ``out`` (⌈O/MR⌉·kH·kW·C2·MR,) int32.

    One weight row at a time (it stays in L1), a branch-free inner loop over channel pairs.
    """
    O, C, kh, kw = w.shape
    T, C2 = kh * kw, (C + 1) // 2
    w3 = w.reshape(O, C, T)
    umr = _u(MR)
    for o in range(-(-O // MR) * MR):
        ip, r = o // MR, o % MR
        if o >= O:  # padding rows of the last panel
            for t in range(T):
                base = _u(((ip * T + t) * C2) * MR + r)
                for p in range(_u(C2)):
                    out[base + p * umr] = 0
            continue
        z = np.int32(wz[o])
        src = w3[o]
        for t in range(T):
            base = _u(((ip * T + t) * C2) * MR + r)
            ut = _u(t)
            for p in range(_u(C // 2)):
                out[base + p * umr] = _pair(np.int32(src[2 * p, ut]) - z, np.int32(src[2 * p + 1, ut]) - z)
            if C % 2 == 1:  # the pad channel's weight is 0
                out[base + _u(C2 - 1) * umr] = _pair(np.int32(src[C - 1, t]) - z, 0)


# ----------------------------------------------------------------------------------------
# 2. The micro-kernel (LLVM IR) and the driver
# ----------------------------------------------------------------------------------------

@intrinsic
def _microkernel_taps(typingctx, ap, a_off, lda_t, bp, b_off, toff, ntaps, npairs, ldb, c, c_off, ldc,
                      accumulate):
    """C[r, n] (+)= Σ_{t < ntaps} Σ_{p < npairs} vpmaddwd(A[a_off + t·lda_t + p·MR + r],
    B[b_off + toff[t] + p·ldb + n]), a 6×16 int32 tile kept in registers over all (t, p).

    ap: packed weights (int32 pairs); bp: packed image (int32 pairs); toff: (ntaps,) int64
    tap offsets; ``lda_t``/``ldb``: int32 elements between taps of A / pair rows of B; c: int32
    output from ``c_off`` with row stride ``ldc``; ``accumulate``: add to C (else overwrite).
    All arithmetic wraps modulo 2^32 (exact: see the module docstring).
    """
    sig = types.void(ap, types.intp, types.intp, bp, types.intp, toff, types.intp, types.intp, types.intp,
                     c, types.intp, types.intp, types.boolean)

    def codegen(context, builder, signature, args):
        ap_v, a_off_v, lda_v, bp_v, b_off_v, t_v, nt_v, np_v, ldb_v, c_v, c_off_v, ldc_v, acc_v = args

        def data(k, v, off):  # element pointer of array argument k at offset off
            return builder.gep(context.make_array(signature.args[k])(context, builder, v).data, [off])

        pa, pb, pc = data(0, ap_v, a_off_v), data(3, bp_v, b_off_v), data(9, c_v, c_off_v)
        pt = data(5, t_v, ir.Constant(_IDX, 0))
        pmaddwd, accs = emit_tile_begin(builder)
        with cgutils.for_range(builder, nt_v) as tloop:
            t = tloop.index
            pbt = builder.gep(pb, [builder.load(builder.gep(pt, [t]))])
            pat = builder.gep(pa, [builder.mul(t, lda_v)])
            with cgutils.for_range(builder, np_v) as loop:
                p = loop.index
                pbp = builder.gep(pbt, [builder.mul(p, ldb_v)])           # (c, c+1) of 16 columns
                pap = builder.gep(pat, [builder.mul(p, ir.Constant(_IDX, MR))])  # (w'[2p], w'[2p+1]) of 6 rows
                emit_pair_step(builder, pmaddwd, accs, pap, pbp)
        emit_tile_end(builder, accs, pc, ldc_v, acc_v)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _block(wq, xq, toff, T, C2, L, n_cols, p0, pn, ip0, ip1, jp, buf):
    """Row panels [ip0, ip1) of column tile ``jp`` of buf (+)= channel pairs [p0, p0 + pn)."""
    for ip in range(ip0, ip1):
        _microkernel_taps(wq, (ip * T * C2 + p0) * MR, C2 * MR, xq, jp * NR + p0 * L, toff, T, pn,
                          L, buf, ip * MR * n_cols + jp * NR, n_cols, p0 > 0)


@numba.njit(cache=True)
def _driver(wq, xq, toff, T, C2, L, Op, n_cols, c2b, mcp, buf):
    """buf (Op·n_cols,) int32 = eq. (1) mod 2^32 on the computed columns of one image.

    GotoBLAS-style loops: blocks of ``c2b`` channel pairs (K), then blocks of ``mcp`` row
    panels (their weights, MR·kH·kW·c2b int32 each, stay in L2), then column tiles of NR (the
    B slice of a tile stays in L1 across the panels), then row panels of MR. Every tile is
    full: buf is padded to Op rows and n_cols columns.
    """
    nMP = Op // MR
    for p0 in range(0, C2, c2b):
        pn = min(c2b, C2 - p0)
        for i0 in range(0, nMP, mcp):
            for jp in range(n_cols // NR):
                for ip in range(i0, min(i0 + mcp, nMP)):
                    _microkernel_taps(wq, (ip * T * C2 + p0) * MR, C2 * MR, xq, jp * NR + p0 * L, toff, T, pn,
                                      L, buf, ip * MR * n_cols + jp * NR, n_cols, p0 > 0)


@numba.njit(cache=True, parallel=True)
def _driver_parallel(wq, xq, toff, T, C2, L, Op, n_cols, c2b, mcp, buf):
    r"""Threaded :func:`_driver`: the same blocks, spread over Numba's threads, bit-identical results.

    Channel-pair blocks run in order; within one, ``prange`` splits the (row block, column
    tile) pairs $t = b \cdot n_J + j_p$ into chunks (row block major: a thread's consecutive
    iterations share the row block's weights in L2). Each iteration writes its own MR·mcp × NR
    part of buf, and every element sums its channel blocks in the same order for any thread
    count (int32 wrap addition is associative anyway): the result does not depend on
    ``numba.get_num_threads()``. No scratch is shared.
    """
    nMP = Op // MR
    nJ = n_cols // NR
    nIB = (nMP + mcp - 1) // mcp
    for kb in range((C2 + c2b - 1) // c2b):  # serial: a tile's channel blocks accumulate in order
        p0 = kb * c2b
        pn = min(c2b, C2 - p0)
        for t in numba.prange(nIB * nJ):
            i0 = (t // nJ) * mcp
            _block(wq, xq, toff, T, C2, L, n_cols, p0, pn, i0, min(i0 + mcp, nMP), t % nJ, buf)


@numba.njit(cache=True)
def _copy_valid(buf, n_cols, Wq, out):
    """out (O, OH, OW) = the first OW columns of each computed row of buf (rows of width Wq)."""
    O, OH, OW = out.shape
    for o in range(O):
        for h in range(OH):
            base = _u(o * n_cols + h * Wq)
            dst = out[o, h]
            for w in range(_u(OW)):
                dst[w] = buf[base + w]


def conv2d_wrap(x, w, xz, wz, strides, dilations, pads, out):
    """``out`` (N, O, OH, OW) int32 = eq. (1) of :mod:`.conv` mod 2^32 for ``groups == 1``.

    Args:
        x: (N, C, H, W) int8/uint8. w: (O, C, kH, kW) int8/uint8. xz: int, wz: (O,) integers
            (zero points within the operands' ranges, validated by the caller).
        strides, dilations: (h, w). pads: (top, left, bottom, right). Requires :func:`available`.
    """
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    (sh, sw), (pt, pl) = strides, pads[:2]
    Hq, Wq, L, n_cols, phase, delta = geometry(H, W, (kh, kw), strides, dilations, pads)
    C2, T, Op = (C + 1) // 2, kh * kw, -(-O // MR) * MR
    toff = phase * (C2 * L) + delta
    wq = np.empty(Op * T * C2, np.int32)
    pack_weights(np.ascontiguousarray(w), np.asarray(wz, np.int32), wq)
    xq = np.empty(sh * sw * C2 * L, np.int32)
    buf = np.empty(Op * n_cols, np.int32)
    c2b = max(8, C2_BLOCK * 3 // kh)
    mcp = max(1, A_BLOCK_BYTES // (MR * T * min(c2b, C2) * 4))
    driver = _driver_parallel if use_threads(Op * n_cols * T * C2 * 2) else _driver
    for n in range(N):
        pack_image(x[n], int(xz), sh, sw, pt, pl, Hq, Wq, L, xq)
        driver(wq, xq, toff, T, C2, L, Op, n_cols, c2b, mcp, buf)
        _copy_valid(buf, n_cols, Wq, out[n])
    return out

r"""LLVM IR building blocks for the AVX-512 VNNI kernels (internal): :mod:`._gemm_vnni`, :mod:`._gemv_vnni`.

Each helper takes an ``llvmlite`` IR builder inside a Numba ``@intrinsic`` codegen and emits a few
instructions; the exactness argument is the one of :mod:`._gemm_vnni` (eqs. (1)–(3)).

* :func:`vpdpbusd` — ``llvm.x86.avx512.vpdpbusd.512``: per int32 lane $i$,
  $d_i + \sum_{j<4} u_{4i+j} s_{4i+j}$ with $u$ unsigned and $s$ signed bytes, the products and
  their sum formed exactly ($|\cdot| \le 4 \cdot 255 \cdot 128 < 2^{31}$) and added to $d_i$ with a
  wrapping 32-bit add (``vpdpbusd zmm``; ``vpdpbusds`` would saturate and is not used).
* :func:`load_quad_rows` + :func:`transpose_quads` — four rows of ``b`` (64 bytes each) into four
  zmm of "quads" (the four bytes of one column in one int32 lane), eight shuffles
  (``vpunpck{l,h}bw``, ``vpunpck{l,h}wd``); the column order inside the 64 is permuted, and
  :func:`unpermute` restores it.
* :func:`emit_store` — the tile epilogue: the zero-point terms of eq. (2) (``vpmulld``,
  ``vpaddd``), old C for later K blocks, masked stores of the valid rows and columns.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils

I1, I8, I16, I32, IDX = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
V16, B64 = ir.VectorType(I32, 16), ir.VectorType(I8, 64)  # a zmm as 16 int32 / 64 bytes
M16, M64 = ir.VectorType(I1, 16), ir.VectorType(I1, 64)
ONES = ir.Constant(B64, [1] * 64)  # u = 1: vpdpbusd(acc, 1, s) adds the four signed bytes of each lane
# LLVM 22 types the byte operands <64 x i8> (llvm-project #155194); older LLVM <16 x i32>.
_BYTE_OPERANDS = llvm.llvm_version_info[0] >= 22


def idx(i):
    """An i64 constant (Numba's ``intp``)."""
    return ir.Constant(IDX, i)


def shuffle_mask(indices):
    indices = list(indices)
    return ir.Constant(ir.VectorType(I32, len(indices)), indices)


def splat(builder, x, vty):
    """Scalar ``x`` in every lane of a vector of type ``vty``."""
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), shuffle_mask([0] * vty.count))


def vpdpbusd(builder):
    """``f(acc, u, s)`` = acc + Σ_{j<4} u[4i+j]·s[4i+j] per lane (``vpdpbusd zmm``); operands as <16 x i32>."""
    bty = B64 if _BYTE_OPERANDS else V16
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(V16, [V16, bty, bty]),
                                        "llvm.x86.avx512.vpdpbusd.512")
    return lambda acc, u, s: builder.call(fn, [acc, builder.bitcast(u, bty), builder.bitcast(s, bty)])


def masked_load(builder, ptr, vty, mask, passthru, align):
    """``llvm.masked.load``: lanes off ``mask`` are not read and take ``passthru``."""
    n, bits = vty.count, vty.element.width
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vty, [vty.as_pointer(), I32, mask.type, vty]),
        f"llvm.masked.load.v{n}i{bits}.p0")
    return builder.call(fn, [builder.bitcast(ptr, vty.as_pointer()), ir.Constant(I32, align), mask, passthru])


def masked_store(builder, value, ptr, mask):
    """``llvm.masked.store``: lanes off ``mask`` leave memory untouched."""
    vty = value.type
    n, bits = vty.count, vty.element.width
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), I32, mask.type]),
        f"llvm.masked.store.v{n}i{bits}.p0")
    builder.call(fn, [value, builder.bitcast(ptr, vty.as_pointer()), ir.Constant(I32, bits // 8), mask])


def byte_sums(builder, v):
    """<8 x i64>: sums of the eight unsigned bytes of each qword of ``v`` <64 x i8> (``vpsadbw`` against 0)."""
    q8 = ir.VectorType(IDX, 8)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(q8, [B64, B64]), "llvm.x86.avx512.psad.bw.512")
    return builder.call(fn, [v, ir.Constant(B64, None)])


def reduce_add(builder, v):
    """The sum of the lanes of an integer vector (``llvm.vector.reduce.add``)."""
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v.type.element, [v.type]),
                                        f"llvm.vector.reduce.add.v{v.type.count}i{v.type.element.width}")
    return builder.call(fn, [v])


def lane_mask(builder, nv, lanes, first):
    """<lanes x i1>: lane l is on when first + l < nv (``nv``: i64 count of valid columns)."""
    vty = ir.VectorType(I32, lanes)
    iota = ir.Constant(vty, [first + i for i in range(lanes)])
    return builder.icmp_signed("<", iota, splat(builder, builder.trunc(nv, I32), vty))


def data(context, builder, signature, args, k, off):
    """Element pointer of array argument ``k`` of an intrinsic at element offset ``off`` (i64)."""
    return builder.gep(context.make_array(signature.args[k])(context, builder, args[k]).data, [off])


def new_accs(builder, rows):
    """rows × 4 zeroed zmm accumulators (allocas in the entry block: mem2reg keeps them in registers)."""
    return [[cgutils.alloca_once_value(builder, ir.Constant(V16, None)) for _ in range(4)] for _ in range(rows)]


def broadcast_quad(builder, prow, p):
    """The int32 of bytes 4p..4p+3 of a row (``prow``: i8*) in all sixteen lanes (``vpbroadcastd``)."""
    word = builder.bitcast(builder.gep(prow, [builder.mul(p, idx(4))]), I32.as_pointer())
    return splat(builder, builder.load(word, align=1), V16)


def load_quad_rows(builder, pb, ldb, p, krows, cmask, flip):
    r"""Rows $4p + i$ ($i < 4$) of ``b`` as 64 bytes of $\hat b$ each, from byte pointer ``pb`` (row
    stride ``ldb``). Columns off ``cmask`` and, when ``krows`` is given, rows at or past ``krows`` are
    not read and give $\hat b = 0$; ``flip`` (uint8 ``b``) XORs 0x80."""
    passthru = ir.Constant(B64, [0x80 if flip else 0] * 64)  # flips to 0 for uint8 b
    off = ir.Constant(M64, [0] * 64)
    rows = []
    for i in range(4):
        k = builder.add(builder.mul(p, idx(4)), idx(i))
        mask = cmask
        if krows is not None:  # the last quad: rows past K are masked off entirely
            if cmask is None:
                cmask = ir.Constant(M64, [1] * 64)
            valid = builder.icmp_signed("<", k, krows)
            k = builder.select(valid, k, builder.sub(krows, idx(1)))  # an in-bounds address either way
            mask = builder.select(valid, cmask, off)
        if mask is None:  # a full row of 64 columns
            r = builder.load(builder.bitcast(builder.gep(pb, [builder.mul(k, ldb)]), B64.as_pointer()), align=1)
        else:
            r = masked_load(builder, builder.gep(pb, [builder.mul(k, ldb)]), B64, mask, passthru, 1)
        rows.append(builder.xor(r, ir.Constant(B64, [0x80] * 64)) if flip else r)
    return rows


def for_quads(builder, krows, body):
    """``body(p, krows_or_None)`` for the quads p of rows [0, krows): the full quads in a loop with
    ``None`` (no row test), then the last partial quad, if any, with ``krows``."""
    full = builder.udiv(krows, idx(4))
    with cgutils.for_range(builder, full) as loop:
        body(loop.index, None)
    with builder.if_then(builder.icmp_unsigned("!=", builder.urem(krows, idx(4)), idx(0))):
        body(full, krows)


def transpose_quads(builder, rows):
    """Four rows of 64 bytes -> four <16 x i32> ``q_i`` whose lane 4L + j holds the bytes
    (row 0, row 1, row 2, row 3) of column 16L + 4i + j: ``vpunpck{l,h}bw``, then ``vpunpck{l,h}wd``."""
    def unpack(x, y, width, hi):  # x86 unpack: interleave the low (high) halves of each 128-bit lane
        per, n = 128 // width, 512 // width
        h = per // 2 if hi else 0
        return builder.shuffle_vector(x, y, shuffle_mask(
            e for L in range(4) for j in range(per // 2) for e in (L * per + h + j, n + L * per + h + j)))

    r0, r1, r2, r3 = rows
    w16 = ir.VectorType(I16, 32)
    t = [builder.bitcast(v, w16) for v in (unpack(r0, r1, 8, False), unpack(r0, r1, 8, True),
                                          unpack(r2, r3, 8, False), unpack(r2, r3, 8, True))]
    q = [unpack(t[0], t[2], 16, False), unpack(t[0], t[2], 16, True),
         unpack(t[1], t[3], 16, False), unpack(t[1], t[3], 16, True)]
    return [builder.bitcast(v, V16) for v in q]


def unpermute(builder, q):
    """Undo :func:`transpose_quads`' column order: natural zmm k = 128-bit lanes k of q_0, q_1, q_2, q_3
    (a 4×4 transpose of 128-bit lanes: eight ``vshufi64x2``)."""
    def lanes(x, y, a, b, c, d):  # (x.lane a, x.lane b, y.lane c, y.lane d)
        return builder.shuffle_vector(x, y, shuffle_mask(
            [4 * a + i for i in range(4)] + [4 * b + i for i in range(4)]
            + [16 + 4 * c + i for i in range(4)] + [16 + 4 * d + i for i in range(4)]))

    s0, s1 = lanes(q[0], q[1], 0, 1, 0, 1), lanes(q[0], q[1], 2, 3, 2, 3)
    s2, s3 = lanes(q[2], q[3], 0, 1, 0, 1), lanes(q[2], q[3], 2, 3, 2, 3)
    return [lanes(s0, s2, 0, 2, 0, 2), lanes(s0, s2, 1, 3, 1, 3), lanes(s1, s3, 0, 2, 0, 2), lanes(s1, s3, 1, 3, 1, 3)]


def emit_store(builder, accs, pc, ldc, mv, nv, load_c, corr):
    """C[r, 16j + l] = accs[r][j][l] (+ old C when ``load_c``) (+ u_r v + w_r x when ``corr``'s flag),
    for r < mv and 16j + l < nv (masked: other memory is not touched).

    ``pc``: i32* to C[0, 0], row stride ``ldc``; ``corr``: (flag i1, i32* to (u_0, w_0, u_1, w_1, ...),
    four v values, four x values). Wrapping int32 arithmetic throughout (eq. (3) of :mod:`._gemm_vnni`).
    """
    cm = [lane_mask(builder, nv, 16, 16 * j) for j in range(4)]
    flag, prow, v, x = corr
    with builder.if_then(flag):
        for r, row in enumerate(accs):
            u = splat(builder, builder.load(builder.gep(prow, [idx(2 * r)])), V16)
            w = splat(builder, builder.load(builder.gep(prow, [idx(2 * r + 1)])), V16)
            for j, acc in enumerate(row):  # eq. (2): u_m v_n + w_m x_n
                t = builder.add(builder.mul(u, v[j]), builder.mul(w, x[j]))
                builder.store(builder.add(builder.load(acc), t), acc)
    for r, row in enumerate(accs):
        ptr = [builder.gep(pc, [builder.add(builder.mul(ldc, idx(r)), idx(16 * j))]) for j in range(4)]
        with builder.if_then(builder.icmp_signed("<", idx(r), mv)):
            with builder.if_then(load_c):
                for j, acc in enumerate(row):
                    old = masked_load(builder, ptr[j], V16, cm[j], ir.Constant(V16, None), 4)
                    builder.store(builder.add(builder.load(acc), old), acc)
            for j, acc in enumerate(row):
                masked_store(builder, builder.load(acc), ptr[j], cm[j])

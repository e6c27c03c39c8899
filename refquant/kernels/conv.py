r"""Integer 2-D convolution: int8/uint8 input and weights → int32 accumulators.

For an image $n$, output channel $o$ in group $g = \lfloor o / O_g \rfloor$ and output pixel
$(h, w)$, with $C_g = C / G$ input channels per group:

$$ \mathrm{acc}[n,o,h,w] = \sum_{c=0}^{C_g-1} \sum_{i=0}^{k_H-1} \sum_{j=0}^{k_W-1}
   \bigl(\tilde x[n,\, gC_g + c,\, h s_H - p_t + i d_H,\, w s_W - p_l + j d_W] - z_x\bigr)
   \bigl(W[o, c, i, j] - z_w[o]\bigr) \tag{1} $$

where $\tilde x$ equals $x$ inside the image and $z_x$ outside (an out-of-image tap is the
input zero point, so it contributes 0 after subtracting it). Strides $s$, dilations $d$, pads
$(p_t, p_l, p_b, p_r)$ (top, left, bottom, right, as ONNX ``pads``); output size
$O_H = \lfloor (H + p_t + p_b - d_H (k_H - 1) - 1) / s_H \rfloor + 1$. Per-tensor $z_x$,
per-tensor or per-output-channel $z_w$. Depthwise is $G = C$, with a depth multiplier
$O / C$: output channel $o$ reads input channel $\lfloor o / (O/C) \rfloor$ (ONNX and TFLite agree).

Layouts: ``layout="NCHW"`` (ONNX, PyTorch) with weights ``"OIHW"`` $(O, C_g, k_H, k_W)$, or
``layout="NHWC"`` (TFLite) with weights ``"OHWI"`` $(O, k_H, k_W, C_g)$ or, for depthwise,
``"1HWO"`` $(1, k_H, k_W, O)$. The output has the input's layout.

**Accumulation models** as in :mod:`.gemm`. A pairwise model needs the order in which the
receptive field is flattened into the GEMM's $K$ axis, because ``vpmaddubsw`` pairs
elements $(2i, 2i+1)$ of that order (odd $K$: a zero pad term). Measured with one-op models
on ONNX Runtime 1.32, x86-64 AVX2 without VNNI (``tests/test_kernels_conv.py``):

* ``QLinearConv`` uint8 x / int8 w: pairs in ``k_order="hwc"`` (NHWC im2col: $k = (i k_W + j) C_g + c$,
  so with odd $C_g$ a pair straddles two taps), out-of-image taps enter as the raw $z_x$;
  model ``"pairwise_sat16_u8s8"``. Exception: depthwise with multiplier 1 runs an exact
  kernel (``"exact"``); depthwise with multiplier > 1 goes through the pairwise GEMM.
* ``ConvInteger`` int8 x / uint8 w: pairs in ``k_order="chw"`` (NCHW im2col:
  $k = (c k_H + i) k_W + j$), model ``"pairwise_sat16_s8u8"``.
* ``ConvInteger`` uint8 x / int8 w is **exact**: ORT computes $W \cdot \mathrm{im2col}(x)$,
  an s8×u8 GEMM, which measured exact (as MatMulInteger s8×u8 does).

Fast path (:func:`conv2d`): depthwise (exact/wrap) is a direct Numba loop; ``groups == 1``
(exact/wrap, no possible int32 overflow) on x86-64 AVX2 is the implicit-GEMM ``vpmaddwd``
kernel of :mod:`._conv_fast` (no im2col); everything else
is im2col (Numba) + the exact float32-BLAS GEMM of :mod:`._exact_blas` (exact/wrap) or the
pairwise Numba loop of :mod:`.gemm`. :func:`conv2d_reference` is eq. (1) in int64 NumPy.

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _conv_fast as cf
from . import _exact_blas as eb
from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError
from ._checks import INT32_MAX, finish_int64, int_scalar, max_abs_centered, report_overflow, wrap_int32
from ._conv_args import _int_pair, _pads, conv_args
from .gemm import pairwise_sat16, pairwise_sat16_reference

__all__ = ["conv2d_reference", "conv2d", "im2col_reference"]


def _zero_point_terms(s, xz, w_sum, wz, col_sum, K):
    """Eq. (3) of :mod:`.gemm` for $A = W$ (per-row $z_w$) and $B = $ im2col (per-tensor $z_x$)."""
    return s - xz * w_sum[:, None] - wz[:, None] * col_sum[None, :] + K * xz * wz[:, None]


# ----------------------------------------------------------------------------------------
# 1. Reference: eq. (1) in int64 NumPy, one tap at a time
# ----------------------------------------------------------------------------------------

def _im2col_args(x_img, kernel, strides, dilations, pads, pad_value, k_order):
    """Validate :func:`im2col_reference`'s arguments (a public building block, so checked too)."""
    x_img = V.asarray(x_img, "x_img", kinds=None, what="a (C, H, W) integer image")
    if x_img.dtype.kind not in "iu" or x_img.ndim != 3:
        raise QuantizationTypeError(f"x_img must be a (C, H, W) integer array, got shape {x_img.shape} "
                                    f"dtype {x_img.dtype}")
    kernel, strides, dilations = (_int_pair(v, n) for v, n in ((kernel, "kernel"), (strides, "strides"),
                                                               (dilations, "dilations")))
    pads = _pads(pads, x_img.shape[1:], kernel, strides, dilations)
    info = np.iinfo(x_img.dtype)
    pad_value = V.as_int_scalar(int_scalar(pad_value, "pad_value"), "pad_value", lo=info.min, hi=info.max)
    k_order = V.as_choice(k_order, "k_order", ("chw", "hwc"))
    C, H, W = x_img.shape
    eff = (dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1)
    if eff[0] > H + pads[0] + pads[2] or eff[1] > W + pads[1] + pads[3]:
        raise ShapeError(f"kernel {kernel} with dilations {dilations} spans {eff[0]}x{eff[1]}, more than x_img "
                         f"{H}x{W} padded by pads {pads}")
    V.check_allocation(C * (H + pads[0] + pads[2]) * (W + pads[1] + pads[3]), 8, "x_img padded by pads")
    V.check_allocation(C * kernel[0] * kernel[1] * ((H + pads[0] + pads[2] - eff[0]) // strides[0] + 1)
                       * ((W + pads[1] + pads[3] - eff[1]) // strides[1] + 1), 8, "the columns C * kH * kW * OH * OW")
    return x_img, kernel, strides, dilations, pads, pad_value, k_order


def im2col_reference(x_img, kernel, strides, dilations, pads, pad_value, k_order="chw"):
    """Receptive fields as columns: (C·kH·kW, OH·OW) int64 of raw codes.

    Args:
        x_img: (C, H, W) integer image. kernel: (kH, kW). strides, dilations: (sH, sW), (dH, dW).
        pads: (top, left, bottom, right). pad_value: code of out-of-image taps (the zero point).
        k_order: ``"chw"``: row $k = (c k_H + i) k_W + j$; ``"hwc"``: $k = (i k_W + j) C + c$.
    """
    x_img, kernel, strides, dilations, pads, pad_value, k_order = _im2col_args(
        x_img, kernel, strides, dilations, pads, pad_value, k_order)
    C, H, W = x_img.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = kernel, strides, dilations, pads
    xp = np.full((C, H + pt + pb, W + pl + pr), pad_value, np.int64)
    xp[:, pt:pt + H, pl:pl + W] = x_img
    OH = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((C, kh, kw, OH, OW), np.int64)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, i * dh:i * dh + sh * (OH - 1) + 1:sh, j * dw:j * dw + sw * (OW - 1) + 1:sw]
    if k_order == "hwc":
        cols = cols.transpose(1, 2, 0, 3, 4)
    return cols.reshape(C * kh * kw, OH * OW)


def _flat_weights(w, k_order):
    """(O, Cg, kH, kW) -> (O, K) in the same order as :func:`im2col_reference`'s rows."""
    return (w.transpose(0, 2, 3, 1) if k_order == "hwc" else w).reshape(w.shape[0], -1)


def conv2d_reference(x, w, x_zero_point=0, w_zero_point=0, *, strides=1, dilations=1, pads=0,
                     groups=None, layout="NCHW", w_layout=None, acc_model="exact", k_order="chw",
                     on_overflow="warn"):
    """int32 accumulators of eq. (1) (ONNX ``ConvInteger``; the accumulation of ``QLinearConv``,
    TFLite ``CONV_2D``/``DEPTHWISE_CONV_2D``, PyTorch ``quantized::conv2d``).

    Args:
        x: (N, C, H, W) for ``layout="NCHW"`` or (N, H, W, C) for ``"NHWC"``; int8 or uint8.
        w: int8 or uint8 weights in ``w_layout``: ``"OIHW"`` (default for NCHW), ``"OHWI"``
            (default for NHWC) or ``"1HWO"`` (TFLite depthwise; implies ``groups = C``).
        x_zero_point: per-tensor; a Python int or an ``x.dtype`` scalar.
        w_zero_point: Python int or ``w.dtype`` scalar/array, shape () or (O,).
        strides, dilations: int or (h, w) pair, each >= 1.
        pads: int, (h, w), (top, left, bottom, right) (each >= 0), or ``"VALID"``,
            ``"SAME_UPPER"`` (= TFLite ``SAME``; the extra pad goes at the end) or ``"SAME_LOWER"``.
        groups: number of groups $G$ (default 1, or ``C`` for ``"1HWO"``).
        acc_model: ``"exact"``, ``"wrap"``, ``"pairwise_sat16_u8s8"`` (x uint8, w int8) or
            ``"pairwise_sat16_s8u8"`` (x int8, w uint8).
        k_order: for the pairwise models: ``"chw"`` (ORT ConvInteger) or ``"hwc"`` (ORT QLinearConv).
        on_overflow: ``"warn"`` or ``"raise"`` when an exact value leaves int32.

    Returns:
        int32 accumulators, (N, O, OH, OW) for NCHW or (N, OH, OW, O) for NHWC.
    """
    x, w, xz, wz, p = conv_args(x, w, x_zero_point, w_zero_point, strides, dilations, pads, groups,
                                layout, w_layout, acc_model, k_order, on_overflow)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = p.strides, p.dilations, p.pads
    OH, OW = p.out_hw
    Og = O // p.groups
    wz_v = np.broadcast_to(wz, (O,))
    acc = np.zeros((N, O, OH, OW), np.int64)
    if p.model in ("exact", "wrap"):
        xp = np.zeros((N, C, H + pt + pb, W + pl + pr), np.int64)  # out-of-image taps: z_x - z_x = 0
        xp[:, :, pt:pt + H, pl:pl + W] = x.astype(np.int64) - xz
        wc = w.astype(np.int64) - wz_v[:, None, None, None]        # (O, Cg, kH, kW)
        for g in range(p.groups):
            xs, os_ = slice(g * Cg, (g + 1) * Cg), slice(g * Og, (g + 1) * Og)
            for i in range(kh):
                for j in range(kw):
                    tap = xp[:, xs, i * dh:i * dh + sh * (OH - 1) + 1:sh, j * dw:j * dw + sw * (OW - 1) + 1:sw]
                    acc[:, os_] += np.einsum("nchw,oc->nohw", tap, wc[os_, :, i, j])  # eq. (1), one tap
    else:
        K = Cg * kh * kw
        for g in range(p.groups):
            wf = _flat_weights(w[g * Og:(g + 1) * Og].astype(np.int64), p.k_order)  # (Og, K) raw
            wz_g = wz_v[g * Og:(g + 1) * Og]
            for n in range(N):
                col = im2col_reference(x[n, g * Cg:(g + 1) * Cg], (kh, kw), p.strides, p.dilations,
                                       p.pads, xz, p.k_order)                        # (K, P) raw
                s = pairwise_sat16_reference(wf, col)
                acc[n, g * Og:(g + 1) * Og] = _zero_point_terms(
                    s, xz, wf.sum(axis=1), wz_g, col.sum(axis=0), K).reshape(Og, OH, OW)
    return p.to_layout(finish_int64(acc, p.model, p.on_overflow, "conv2d_reference"))


# ----------------------------------------------------------------------------------------
# 2. Fast: im2col + exact BLAS GEMM; direct depthwise loop; pairwise Numba loop
# ----------------------------------------------------------------------------------------

_u = np.uint64  # unsigned index type (see _im2col)


@numba.njit(cache=True)
def _valid_range(j, dw, sw, pl, W, OW):
    """Output columns ``ow`` whose input column ``ow·sw - pl + j·dw`` is inside [0, W)."""
    lo = -((j * dw - pl) // sw)                # ceil((pl - j·dw) / sw)
    hi = (W - 1 + pl - j * dw) // sw + 1       # floor((W - 1 + pl - j·dw) / sw) + 1
    lo = min(max(lo, 0), OW)
    hi = min(max(hi, lo), OW)
    return lo, hi


@numba.njit(cache=True)
def _im2col(x, c0, Cg, kh, kw, sh, sw, dh, dw, pt, pl, OH, OW, pad_value, center, hwc, col, col_sum):
    """col[k, oh·OW + ow] = x̃[c0 + c, ih, iw] - center (cast to col's dtype); col_sum = Σ_k col (int32).

    x (C, H, W) raw codes of one image; k as in :func:`im2col_reference`.
    Speed notes: one view per plane/row (a view costs a reference count in Numba), and
    unsigned (``_u``) inner indices (Numba then skips its negative-index wraparound, which
    lets LLVM vectorize); every index is in range by construction of ``_valid_range``.
    """
    H = x.shape[1]
    W = x.shape[2]
    padv = np.int32(np.int32(pad_value) - np.int32(center))
    ctr = np.int32(center)
    usw = _u(sw)
    for q in range(OH * OW):
        col_sum[q] = 0
    for c in range(Cg):
        plane = x[c0 + c]
        for i in range(kh):
            for j in range(kw):
                row = col[(i * kw + j) * Cg + c if hwc else (c * kh + i) * kw + j]
                lo, hi = _valid_range(j, dw, sw, pl, W, OW)
                off = j * dw - pl
                for oh in range(OH):
                    ih = oh * sh - pt + i * dh
                    inside = ih >= 0 and ih < H
                    a = _u(lo if inside else OW)
                    b = _u(hi if inside else OW)
                    base = _u(oh * OW)
                    for ow in range(a):
                        row[base + ow] = padv
                        col_sum[base + ow] = np.int32(col_sum[base + ow] + padv)
                    if inside:
                        uih = _u(ih)
                        src = _u(lo * sw + off)  # input column of output column lo (>= 0)
                        if sw == 1:  # contiguous source: the loop LLVM vectorizes
                            for t in range(b - a):
                                v = np.int32(np.int32(plane[uih, src + t]) - ctr)
                                row[base + a + t] = v
                                col_sum[base + a + t] = np.int32(col_sum[base + a + t] + v)
                        else:
                            for t in range(b - a):
                                v = np.int32(np.int32(plane[uih, src + t * usw]) - ctr)
                                row[base + a + t] = v
                                col_sum[base + a + t] = np.int32(col_sum[base + a + t] + v)
                    for t in range(_u(OW) - b):
                        ow = b + t
                        row[base + ow] = padv
                        col_sum[base + ow] = np.int32(col_sum[base + ow] + padv)


@numba.njit(cache=True)
def _depthwise_pairs(x, w, xz, wz, mult, sh, sw, dh, dw, pt, pl, out):
    """Eq. (1) for G = C with x86 pair saturation (eq. (3) of :mod:`.gemm`): the raw products of
    taps $k = i k_W + j$ summed in pairs $(0, 1), (2, 3), \\dots$, each pair sum saturated to int16,
    then the zero-point terms; out-of-image taps are $Z_x$. x (N, C, H, W), w (O, kH, kW), wz (O,),
    out (N, O, OH, OW) int32 (wrapped). Returns the count of accumulators beyond int32.

    The same sums as the im2col path of :func:`conv2d` (one channel per group, so the ``"chw"``
    and ``"hwc"`` orders coincide), without building columns.
    """
    N, C, H, W = x.shape
    O, kh, kw = w.shape
    OH, OW = out.shape[2], out.shape[3]
    K = kh * kw
    n_bad = 0
    for o in range(O):
        w_sum = np.int64(0)
        for i in range(kh):
            for j in range(kw):
                w_sum += np.int64(w[o, i, j])
        zw = np.int64(wz[o])
        for n in range(N):
            plane = x[n, o // mult]
            for oh in range(OH):
                for ow in range(OW):
                    s = np.int64(0)
                    x_sum = np.int64(0)
                    pair = np.int64(0)
                    half = False
                    for i in range(kh):
                        ih = oh * sh - pt + i * dh
                        for j in range(kw):
                            iw = ow * sw - pl + j * dw
                            xv = np.int64(xz)
                            if ih >= 0 and ih < H and iw >= 0 and iw < W:
                                xv = np.int64(plane[ih, iw])
                            x_sum += xv
                            prod = xv * np.int64(w[o, i, j])
                            if half:
                                s += min(max(pair + prod, -32768), 32767)
                                half = False
                            else:
                                pair = prod
                                half = True
                    if half:  # odd K: the last product's partner is a zero pad
                        s += min(max(pair, -32768), 32767)
                    acc = s - xz * w_sum - zw * x_sum + K * xz * zw
                    if acc < -2147483648 or acc > 2147483647:
                        n_bad += 1
                    out[n, o, oh, ow] = np.int32(((acc + 2147483648) % 4294967296) - 2147483648)
    return n_bad


@numba.njit(cache=True)
def _depthwise(x, w, xz, wz, mult, sh, sw, dh, dw, pt, pl, out):
    """Eq. (1) for G = C in wrapping int32: x (N, C, H, W), w (O, kH, kW), wz (O,), out (N, O, OH, OW).

    Same speed notes as :func:`_im2col`.
    """
    N, C, H, W = x.shape
    O, kh, kw = w.shape
    OH, OW = out.shape[2], out.shape[3]
    xz32 = np.int32(xz)
    usw = _u(sw)
    for n in range(N):
        for o in range(O):
            plane = x[n, o // mult]
            acc = out[n, o]
            for oh in range(OH):
                for ow in range(OW):
                    acc[oh, ow] = 0
            for i in range(kh):
                for j in range(kw):
                    wv = np.int32(np.int32(w[o, i, j]) - np.int32(wz[o]))
                    lo, hi = _valid_range(j, dw, sw, pl, W, OW)
                    off = j * dw - pl
                    for oh in range(OH):
                        ih = oh * sh - pt + i * dh
                        if ih < 0 or ih >= H:
                            continue  # out-of-image row: contributes 0
                        uih = _u(ih)
                        uoh = _u(oh)
                        ulo = _u(lo)
                        src = _u(lo * sw + off)  # input column of output column lo (>= 0)
                        if sw == 1:  # contiguous source: the loop LLVM vectorizes
                            for t in range(_u(hi - lo)):
                                xv = np.int32(np.int32(plane[uih, src + t]) - xz32)
                                acc[uoh, ulo + t] = np.int32(acc[uoh, ulo + t] + np.int32(wv * xv))
                        else:
                            for t in range(_u(hi - lo)):
                                xv = np.int32(np.int32(plane[uih, src + t * usw]) - xz32)
                                acc[uoh, ulo + t] = np.int32(acc[uoh, ulo + t] + np.int32(wv * xv))


def conv2d(x, w, x_zero_point=0, w_zero_point=0, *, strides=1, dilations=1, pads=0, groups=None,
           layout="NCHW", w_layout=None, acc_model="exact", k_order="chw", on_overflow="warn"):
    """Fast twin of :func:`conv2d_reference`: same arguments, same int32 result bit for bit."""
    x, w, xz, wz, p = conv_args(x, w, x_zero_point, w_zero_point, strides, dilations, pads, groups,
                                layout, w_layout, acc_model, k_order, on_overflow)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = p.strides, p.dilations, p.pads
    OH, OW = p.out_hw
    P, K, G, Og = OH * OW, Cg * kh * kw, p.groups, O // p.groups
    wz_v = np.broadcast_to(wz, (O,)).astype(np.int64)
    if K == 0 or 0 in (N, O, OH, OW):  # no input channel (an empty sum: every accumulator is 0), or no output
        return p.to_layout(np.zeros((N, O, OH, OW), np.int32))
    out = np.empty((N, O, OH, OW), np.int32)
    # |acc| <= K·max|x - zx|·max|w - zw|: below 2^31 an int32 overflow is impossible.
    may_overflow = K * max_abs_centered(x.dtype, xz) * max_abs_centered(w.dtype, wz) > INT32_MAX
    n_bad = 0
    with np.errstate(over="ignore"):  # int32 wrapping is intended (matters only with the JIT off)
        if p.model in ("exact", "wrap") and G == C and Cg == 1 and not may_overflow:
            _depthwise(x, w[:, 0], int(xz), wz_v.astype(np.int32), O // C, sh, sw, dh, dw, pt, pl, out)
        elif p.model in ("exact", "wrap") and G == 1 and not (may_overflow and p.model == "exact") \
                and cf.available():  # AVX2 vpmaddwd implicit GEMM, eq. (1) mod 2^32 (proof in _conv_fast)
            cf.conv2d_wrap(x, w, int(xz), wz_v, p.strides, p.dilations, p.pads, out)
        elif p.model in ("exact", "wrap"):
            cx = 128 if x.dtype == np.uint8 else 0
            col = np.empty((K, P), np.float32)
            col_sum = np.empty(P, np.int32)
            zb_c = np.full(P, int(xz) - cx, np.int64)
            for g in range(G):
                wf, w_sum, cw = eb.centered_f32(np.ascontiguousarray(w[g * Og:(g + 1) * Og].reshape(Og, K)), sums="rows")
                za_c = wz_v[g * Og:(g + 1) * Og] - cw
                for n in range(N):
                    _im2col(x[n], g * Cg, Cg, kh, kw, sh, sw, dh, dw, pt, pl, OH, OW, int(xz), cx, False, col, col_sum)
                    dst = out[n, g * Og:(g + 1) * Og].reshape(Og, P)
                    eb.gemm_centered(wf, w_sum, za_c, col, col_sum, zb_c, dst)
                    if may_overflow and p.model == "exact":
                        exact = eb.gemm_centered_int64(wf, w_sum, za_c, col, col_sum, zb_c)
                        n_bad += int(np.count_nonzero(exact != dst))
        elif G == C and Cg == 1:  # depthwise under pair saturation: one pass, no columns
            n_bad = _depthwise_pairs(x, w[:, 0], int(xz), wz_v, O // C, sh, sw, dh, dw, pt, pl, out)
        else:
            col = np.empty((K, P), np.int16)
            col_sum = np.empty(P, np.int32)
            for g in range(G):
                wf = np.ascontiguousarray(_flat_weights(w[g * Og:(g + 1) * Og], p.k_order))  # (Og, K) raw
                w_sum = wf.astype(np.int64).sum(axis=1)
                for n in range(N):
                    _im2col(x[n], g * Cg, Cg, kh, kw, sh, sw, dh, dw, pt, pl, OH, OW, int(xz), 0,
                            p.k_order == "hwc", col, col_sum)
                    acc = _zero_point_terms(pairwise_sat16(wf, col), int(xz), w_sum, wz_v[g * Og:(g + 1) * Og],
                                            col_sum.astype(np.int64), K)
                    n_bad += int(np.count_nonzero((acc < -INT32_MAX - 1) | (acc > INT32_MAX)))
                    out[n, g * Og:(g + 1) * Og] = wrap_int32(acc).reshape(Og, OH, OW)
    report_overflow(n_bad, p.model, p.on_overflow, "conv2d")
    return p.to_layout(out)

"""Numba twins of the loops in :mod:`refquant.nn.conv`: im2col, col2im and depthwise convolution.

:class:`~refquant.nn.conv.Conv2d` is written with NumPy (:func:`~refquant.nn.conv.im2col`,
:func:`~refquant.nn.conv.col2im`, :func:`~refquant.nn.conv.depthwise_forward`,
:func:`~refquant.nn.conv.depthwise_backward`), which reads like the equations. On the small
images of the reference models (8×8 and 4×4 planes) those are bound by NumPy's per-call
overhead and by copies of strided views, not by arithmetic, so ``Conv2d`` calls these
compiled loops instead when Numba's JIT is on. Each keeps a plane in cache, writes its
output contiguously and indexes with unsigned integers (so LLVM vectorizes the inner loop).

For the output channel $o = cM + m$ of a depthwise convolution (depth multiplier $M$),
reading input channel $c$:

$$ y_{n,o,h,w} = \\sum_{i=0}^{k_h-1} \\sum_{j=0}^{k_w-1} W_{o,0,i,j}\\;
   \\tilde x_{n,c,\\,h s_h + i d_h,\\, w s_w + j d_w}. \\tag{1} $$

**Agreement with the NumPy twins** (``tests/test_nn_conv_numba.py``).

* :func:`im2col_numba`, :func:`col2im_numba`: bit for bit. im2col is a copy; col2im adds
  the contributions to each input element in the same kernel-tap order $(i, j)$.
* :func:`depthwise_forward_numba`: bit for bit. Both start every output at 0 and add the
  float-rounded products $W_{o,0,i,j}\\,\\tilde x$ one tap at a time, taps in row-major
  order $(i, j)$; Numba compiles without ``fastmath``, so LLVM does not contract the
  multiply and the add into an FMA, and the result is the same IEEE-754 sequence of roundings.
* :func:`depthwise_backward_numba`: within float tolerance. $\\partial L/\\partial W$ sums
  over $(n, h, w)$ and NumPy's ``einsum`` chooses its own summation order; here it runs
  $n$-major with one partial sum per output column. $\\partial L/\\partial \\tilde x$
  matches bit for bit when $M = 1$ (each tap adds one rounded product, in tap order, as the
  twin does) and within rounding otherwise.

So a model's evaluation-mode outputs are the same bits with the JIT on or off; training
differs in the last bits only for models with depthwise layers.

Layouts are NCHW, weights ``(O, C/G, kH, kW)``. Single-threaded on purpose: the gradient
scatters and the weight-gradient sums would race under ``prange``, and run-to-run
determinism matters more here than speed.

With ``NUMBA_DISABLE_JIT=1`` (:data:`JIT_ENABLED` is False) ``Conv2d`` uses the NumPy twins:
these loops, interpreted, would be far too slow to train with.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["JIT_ENABLED", "im2col_numba", "col2im_numba", "depthwise_forward_numba", "depthwise_backward_numba"]

#: True unless Numba's JIT is disabled (``NUMBA_DISABLE_JIT=1``).
JIT_ENABLED = not numba.config.DISABLE_JIT

_u = np.uint64  # unsigned loop indices: Numba then skips its negative-index wraparound test,
#                which is what lets LLVM vectorize the contiguous inner loops


@numba.njit(cache=True)
def _im2col(xp, kh, kw, sh, sw, dh, dw, groups, ho, wo, cols):
    """``cols[g, (c·kH + i)·kW + j, (n·Ho + h)·Wo + w] = xp[n, g·C_g + c, h·sH + i·dH, w·sW + j·dW]``."""
    n_img, cg = xp.shape[0], xp.shape[1] // groups
    for g in range(groups):
        for c in range(cg):
            for i in range(kh):
                for j in range(kw):
                    row = cols[g, (c * kh + i) * kw + j]
                    off = _u(j * dw)
                    for n in range(n_img):
                        plane = xp[n, g * cg + c]
                        base = _u(n * ho * wo)
                        for h in range(_u(ho)):
                            src = plane[h * _u(sh) + _u(i * dh)]
                            dst = base + h * _u(wo)
                            if sw == 1:  # contiguous: the loop LLVM vectorizes
                                for q in range(_u(wo)):
                                    row[dst + q] = src[q + off]
                            else:
                                for q in range(_u(wo)):
                                    row[dst + q] = src[q * _u(sw) + off]


@numba.njit(cache=True)
def _col2im(gcols, kh, kw, sh, sw, dh, dw, groups, ho, wo, gx):
    """Adjoint of :func:`_im2col`, adding into ``gx`` (zeros); taps in $(i, j)$ order per element."""
    n_img, cg = gx.shape[0], gx.shape[1] // groups
    for g in range(groups):
        for c in range(cg):
            for i in range(kh):
                for j in range(kw):
                    row = gcols[g, (c * kh + i) * kw + j]
                    off = _u(j * dw)
                    for n in range(n_img):
                        plane = gx[n, g * cg + c]
                        base = _u(n * ho * wo)
                        for h in range(_u(ho)):
                            dst = plane[h * _u(sh) + _u(i * dh)]
                            src = base + h * _u(wo)
                            if sw == 1:
                                for q in range(_u(wo)):
                                    dst[q + off] += row[src + q]
                            else:
                                for q in range(_u(wo)):
                                    dst[q * _u(sw) + off] += row[src + q]


def im2col_numba(xp: np.ndarray, kernel, stride, dilation, groups: int) -> np.ndarray:
    """Fast twin of :func:`refquant.nn.conv.im2col`, equal to it bit for bit.

    ``xp`` (N, C, Hp, Wp) padded → ``(G, C_g·kH·kW, N·Ho·Wo)``, rows $(c, i, j)$, columns $(n, h, w)$.
    """
    n, c, hp, wp = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((groups, (c // groups) * kh * kw, n * ho * wo), dtype=xp.dtype)  # (G, K, N·Ho·Wo)
    _im2col(xp, kh, kw, sh, sw, dh, dw, groups, ho, wo, cols)
    return cols


def col2im_numba(gcols: np.ndarray, padded_shape, out_hw, kernel, stride, dilation, groups: int) -> np.ndarray:
    """Fast twin of :func:`refquant.nn.conv.col2im`, equal to it bit for bit."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    gx = np.zeros(tuple(padded_shape), dtype=gcols.dtype)  # (N, C, Hp, Wp)
    _col2im(np.ascontiguousarray(gcols), kh, kw, sh, sw, dh, dw, groups, out_hw[0], out_hw[1], gx)
    return gx


@numba.njit(cache=True)
def _forward(xp, w, sh, sw, dh, dw, y):
    """Eq. (1) into ``y`` (N, C·M, Ho, Wo), which must hold zeros: ``xp`` (N, C, Hp, Wp) padded.

    Per output element the taps are added in row-major $(i, j)$ order, as the NumPy twin does.
    With stride 1 each tap is one contiguous run of the flattened padded plane (the
    "flat-grid" form of the twin): the sums are formed on the padded grid, positions
    $p = h W_p + w$, and the $W_p - W_o$ extra columns of each row are dropped. Long
    contiguous runs vectorize; rows of 4 or 8 outputs barely do.
    """
    n_img, c, hp, wp = xp.shape
    o_ch, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = y.shape[2], y.shape[3]
    m = o_ch // c
    if sh == 1 and sw == 1:
        span = _u((ho - 1) * wp + wo)  # flat positions from (0, 0) to (Ho-1, Wo-1)
        acc = np.empty(ho * wp, dtype=y.dtype)
        for n in range(n_img):
            for o in range(o_ch):
                flat = xp[n, o // m].reshape(hp * wp)
                acc[:] = 0
                for i in range(kh):
                    for j in range(kw):
                        wv = w[o, 0, i, j]
                        off = _u(i * dh * wp + j * dw)
                        for p in range(span):
                            acc[p] += wv * flat[p + off]
                out = y[n, o]
                for h in range(_u(ho)):
                    for q in range(_u(wo)):
                        out[h, q] = acc[h * _u(wp) + q]
        return
    for n in range(n_img):
        for o in range(o_ch):
            plane = xp[n, o // m]
            out = y[n, o]
            for h in range(_u(ho)):
                for i in range(_u(kh)):
                    src = plane[h * _u(sh) + i * _u(dh)]
                    for j in range(_u(kw)):
                        wv = w[o, 0, i, j]
                        off = j * _u(dw)
                        for q in range(_u(wo)):
                            out[h, q] += wv * src[q * _u(sw) + off]


@numba.njit(cache=True)
def _backward(g, xp, w, sh, sw, dh, dw, need_w, gxp, gw_part):
    """Adjoint of :func:`_forward`: adds $\\partial L/\\partial \\tilde x$ into ``gxp`` (zeros,
    shape of ``xp``) and, if ``need_w``, partial sums of $\\partial L/\\partial W$ into
    ``gw_part`` (zeros, (C·M, kH, kW, L)), one per position of the inner loop so that the
    loop is elementwise and vectorizes; the caller sums them over the last axis.

    Per input element the taps are added in $(i, j)$ order, as the NumPy twin does; with
    stride 1 on the flat padded grid, the gradient being zero on the extra columns (as the
    twin's ``gfull``)."""
    n_img, c, hp, wp = xp.shape
    o_ch, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = g.shape[2], g.shape[3]
    m = o_ch // c
    if sh == 1 and sw == 1:
        span = _u((ho - 1) * wp + wo)
        gfull = np.zeros(ho * wp, dtype=g.dtype)  # G on the padded grid, 0 on the extra columns
        for n in range(n_img):
            for o in range(o_ch):
                flat = xp[n, o // m].reshape(hp * wp)
                gflat = gxp[n, o // m].reshape(hp * wp)
                go = g[n, o]
                for h in range(_u(ho)):
                    for q in range(_u(wo)):
                        gfull[h * _u(wp) + q] = go[h, q]
                for i in range(kh):
                    for j in range(kw):
                        wv = w[o, 0, i, j]
                        off = _u(i * dh * wp + j * dw)
                        for p in range(span):
                            gflat[p + off] += gfull[p] * wv
                        if need_w:
                            part = gw_part[o, i, j]
                            for p in range(span):
                                part[p] += gfull[p] * flat[p + off]
        return
    for n in range(n_img):
        for o in range(o_ch):
            plane = xp[n, o // m]
            gplane = gxp[n, o // m]
            go = g[n, o]
            for i in range(_u(kh)):
                for j in range(_u(kw)):
                    wv = w[o, 0, i, j]
                    off = j * _u(dw)
                    part = gw_part[o, i, j]
                    for h in range(_u(ho)):
                        row = h * _u(sh) + i * _u(dh)
                        src = plane[row]
                        dst = gplane[row]
                        grow = go[h]
                        for q in range(_u(wo)):
                            dst[q * _u(sw) + off] += grow[q] * wv
                        if need_w:
                            for q in range(_u(wo)):
                                part[q] += grow[q] * src[q * _u(sw) + off]


def depthwise_forward_numba(xp: np.ndarray, w: np.ndarray, out_hw, stride, dilation) -> np.ndarray:
    """Fast twin of :func:`refquant.nn.conv.depthwise_forward`, equal to it bit for bit.

    Args:
        xp: (N, C, Hp, Wp) float32 or float64, already padded.
        w: (C·M, 1, kH, kW), same dtype.
        out_hw: (Ho, Wo).
        stride, dilation: (sH, sW) and (dH, dW).

    Returns:
        (N, C·M, Ho, Wo) in ``w``'s dtype, no bias.
    """
    y = np.zeros((xp.shape[0], w.shape[0], out_hw[0], out_hw[1]), dtype=w.dtype)  # (N, C·M, Ho, Wo)
    xp = np.ascontiguousarray(xp, dtype=w.dtype)
    _forward(xp, np.ascontiguousarray(w), stride[0], stride[1], dilation[0], dilation[1], y)
    return y


def depthwise_backward_numba(g: np.ndarray, xp: np.ndarray, w: np.ndarray, stride, dilation, need_w: bool):
    """Fast twin of :func:`refquant.nn.conv.depthwise_backward`: returns ``(grad_xp, grad_w or None)``.

    Equal to the twin within float rounding (see the module docstring for when it is exact).
    """
    dtype = np.result_type(xp.dtype, g.dtype, w.dtype)
    gxp = np.zeros(xp.shape, dtype=dtype)  # (N, C, Hp, Wp)
    ho, wo = g.shape[2], g.shape[3]
    inner = (ho - 1) * xp.shape[3] + wo if tuple(stride) == (1, 1) else wo  # length of the vectorized loop
    part = np.zeros((w.shape[0], w.shape[2], w.shape[3], inner if need_w else 1), dtype=dtype)  # (C·M, kH, kW, L)
    _backward(np.ascontiguousarray(g, dtype=dtype), np.ascontiguousarray(xp, dtype=dtype),
              np.ascontiguousarray(w, dtype=dtype), stride[0], stride[1], dilation[0], dilation[1], bool(need_w),
              gxp, part)
    if not need_w:
        return gxp, None
    gw = part.sum(axis=3).reshape(w.shape).astype(w.dtype, copy=False)  # (C·M, 1, kH, kW)
    return gxp, gw

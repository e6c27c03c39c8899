"""Numba float depthwise convolution: the fast twins of :func:`~refquant.nn.conv.depthwise_forward`
and :func:`~refquant.nn.conv.depthwise_backward`.

Depthwise convolution ($G = C$, eq. (1) of :mod:`refquant.nn.conv` with one input channel
per group) does $k_h k_w$ multiply-adds per output and has no matrix product to hand to
BLAS, so the NumPy twins run it as one vectorised multiply and one add per kernel tap.
On the small images of the reference models (8×8 and 4×4 planes) that is bound by NumPy's
per-call overhead and by memory traffic over temporaries; these loops keep a plane in cache
and do the same arithmetic in place.

For the output channel $o = cM + m$ (depth multiplier $M$), reading input channel $c$:

$$ y_{n,o,h,w} = \\sum_{i=0}^{k_h-1} \\sum_{j=0}^{k_w-1} W_{o,0,i,j}\\;
   \\tilde x_{n,c,\\,h s_h + i d_h,\\, w s_w + j d_w}. \\tag{1} $$

**Agreement with the NumPy twins.**

* Forward: bit for bit. Both start every output at 0 and add the float-rounded products
  $W_{o,0,i,j}\\,\\tilde x$ one tap at a time, taps in row-major order $(i, j)$; Numba
  compiles without ``fastmath``, so LLVM does not contract the multiply and the add into
  an FMA, and the result is the same IEEE-754 sequence of roundings.
* Backward: within float tolerance. $\\partial L/\\partial W$ sums over
  $(n, h, w)$, and NumPy's ``einsum`` chooses its own summation order; here the sum runs
  $n$-major. $\\partial L/\\partial \\tilde x$ matches bit for bit when $M = 1$ (each tap
  adds one rounded product, in tap order, as the twin does) and within tolerance otherwise.

The layout is NCHW with weights ``(C·M, 1, kH, kW)``, as in :class:`~refquant.nn.conv.Conv2d`.
Single-threaded on purpose: the gradient scatter and the weight-gradient sum would race
under ``prange``, and determinism matters more than speed here.

With ``NUMBA_DISABLE_JIT=1`` (:data:`JIT_ENABLED` is False) :class:`~refquant.nn.conv.Conv2d`
uses the NumPy twins instead: these loops, interpreted, would be far too slow to train with.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["JIT_ENABLED", "depthwise_forward_numba", "depthwise_backward_numba"]

#: True unless Numba's JIT is disabled (``NUMBA_DISABLE_JIT=1``).
JIT_ENABLED = not numba.config.DISABLE_JIT


_u = np.uint64  # unsigned loop indices: Numba then skips its negative-index wraparound test,
#                which is what lets LLVM vectorize the contiguous inner loops


@numba.njit(cache=True)
def _forward(xp, w, sh, sw, dh, dw, y):
    """Eq. (1) into ``y`` (N, C·M, Ho, Wo), which must hold zeros: ``xp`` (N, C, Hp, Wp) padded.

    Per output element the taps are added in row-major $(i, j)$ order, as the NumPy twin does.
    """
    n_img, c = xp.shape[0], xp.shape[1]
    o_ch, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = y.shape[2], y.shape[3]
    m = o_ch // c
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
                        if sw == 1:  # contiguous: the loop LLVM vectorizes
                            for q in range(_u(wo)):
                                out[h, q] += wv * src[q + off]
                        else:
                            for q in range(_u(wo)):
                                out[h, q] += wv * src[q * _u(sw) + off]


@numba.njit(cache=True)
def _backward(g, xp, w, sh, sw, dh, dw, need_w, gxp, gw_part):
    """Adjoint of :func:`_forward`: adds $\\partial L/\\partial \\tilde x$ into ``gxp`` (zeros,
    shape of ``xp``) and, if ``need_w``, the partial sums of $\\partial L/\\partial W$ into
    ``gw_part`` (zeros, (C·M, kH, kW, Wo)), one per output column $q$ so that the inner loop
    is elementwise and vectorizes; the caller sums them over $q$.

    Per input element the taps are added in $(i, j)$ order, as the NumPy twin does."""
    n_img, c = xp.shape[0], xp.shape[1]
    o_ch, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ho, wo = g.shape[2], g.shape[3]
    m = o_ch // c
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
                        if sw == 1:  # contiguous: the loops LLVM vectorizes
                            for q in range(_u(wo)):
                                dst[q + off] += grow[q] * wv
                            if need_w:
                                for q in range(_u(wo)):
                                    part[q] += grow[q] * src[q + off]
                        else:
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
    _forward(xp.astype(w.dtype, copy=False), w, stride[0], stride[1], dilation[0], dilation[1], y)
    return y


def depthwise_backward_numba(g: np.ndarray, xp: np.ndarray, w: np.ndarray, stride, dilation, need_w: bool):
    """Fast twin of :func:`refquant.nn.conv.depthwise_backward`: returns ``(grad_xp, grad_w or None)``.

    Equal to the twin within float rounding (see the module docstring for when it is exact).
    """
    dtype = np.result_type(xp.dtype, g.dtype, w.dtype)
    gxp = np.zeros(xp.shape, dtype=dtype)  # (N, C, Hp, Wp)
    wo = g.shape[3]
    part = np.zeros((w.shape[0], w.shape[2], w.shape[3], wo if need_w else 1), dtype=dtype)  # (C·M, kH, kW, Wo)
    _backward(g.astype(dtype, copy=False), xp.astype(dtype, copy=False), w.astype(dtype, copy=False),
              stride[0], stride[1], dilation[0], dilation[1], bool(need_w), gxp, part)
    if not need_w:
        return gxp, None
    gw = part.sum(axis=3).reshape(w.shape).astype(w.dtype, copy=False)  # (C·M, 1, kH, kW)
    return gxp, gw

r"""16x8 accumulation: int16 activations times int8 weights, summed in int64.

TFLite's 16x8 mode (int16 activations with zero point 0, int8 weights with zero point 0)
accumulates without zero points:

$$ \mathrm{acc}_{mn} = \sum_{k=0}^{K-1} a_{mk}\, b_{kn}, \qquad
   a_{mk} \in [-2^{15}, 2^{15}),\; b_{kn} \in [-2^{7}, 2^{7}) \tag{1} $$

and a convolution is eq. (1) over its receptive field, out-of-image taps skipped (they would
multiply the zero point 0):

$$ \mathrm{acc}[n, o, h, w] = \sum_{c, i, j} x[n,\; g C_g + c,\; h s_H + i d_H - p_t,\; w s_W + j d_W - p_l]
   \; W[o, c, i, j], \qquad g = \lfloor o / O_g \rfloor. \tag{2} $$

Every product has $|a b| \le 2^{15} \cdot 2^{7} = 2^{22}$, so a sum of $K$ of them needs
$22 + \log_2 K$ bits: past int32 from $K = 512$ with extreme codes. These functions return the
exact sums as int64 (exact for every $K < 2^{31}$); how a backend narrows or wraps them (TFLite's
int32-bias kernels keep only the low 32 bits) is the caller's choice (:mod:`refquant.ops.layers`).

**Why the fast path is exact on a float64 BLAS.** Each product is an integer of magnitude at
most $2^{22} < 2^{53}$, so float64 multiplication (or FMA) returns it exactly. Every partial sum
the BLAS can form — any subset of the $K$ products, in any order, blocking, vector-lane or
thread split — is an integer $T$ with $|T| \le K \cdot 2^{22}$. For $K \le 2^{31}$ that is at
most $2^{53}$, and every integer of magnitude $\le 2^{53}$ is a float64 value; IEEE addition is
correctly rounded, so each addition returns its exact sum, and by induction over the summation
tree the result is exact and independent of the BLAS, its kernel and its thread count. The sum
then converts to int64 exactly. (:func:`gemm_int64` checks $K < 2^{31}$; memory runs out first.)

:func:`gemm_int64_reference` and :func:`conv2d_int64_reference` are the plain int64 NumPy spec;
:func:`gemm_int64` and :func:`conv2d_int64` the BLAS versions, equal bit for bit
(``tests/test_kernels_gemm_int64.py``).

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, ShapeError, UnsupportedError
from ._conv_args import _int_pair, _pads

__all__ = ["gemm_int64_reference", "gemm_int64", "conv2d_int64_reference", "conv2d_int64"]

_A_DTYPES = (np.int16, np.int8)  # activations: int16 (16x8); int8 is accepted, it is the same equation
_MAX_K = 2 ** 31  # K * 2^22 <= 2^53 (module docstring)
_W_LAYOUTS = {"NCHW": ("OIHW",), "NHWC": ("OHWI", "1HWO")}


def _operand(v, name: str, dtypes, ndim: int) -> np.ndarray:
    if not isinstance(v, (np.ndarray, np.generic)):
        raise QuantizationTypeError(f"{name} must be a NumPy array, got {type(v).__name__}")
    a = V.native(np.asarray(v))
    if a.dtype not in dtypes:
        raise QuantizationTypeError(f"{name} must have dtype {' or '.join(np.dtype(d).name for d in dtypes)}, "
                                    f"got {a.dtype}")
    if a.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _gemm_args(a, b):
    a = _operand(a, "a", _A_DTYPES, 2)
    b = _operand(b, "b", (np.int8,), 2)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"a (M, K) and b (K, N) must share K, got a {a.shape} and b {b.shape}")
    if a.shape[1] >= _MAX_K:
        raise UnsupportedError(f"K must be < 2^31 for an exact float64 sum, got {a.shape[1]}")
    return a, b


# --------------------------------------------------------------------------- GEMM


def gemm_int64_reference(a, b) -> np.ndarray:
    """Eq. (1) in int64 NumPy: $\\mathrm{acc}_{mn} = \\sum_k a_{mk} b_{kn}$.

    Args:
        a: int16 (or int8) ``(M, K)``: activations, zero point 0.
        b: int8 ``(K, N)``: weights, zero point 0.

    Returns:
        int64 ``(M, N)``, exact.
    """
    a, b = _gemm_args(a, b)
    acc = np.zeros((a.shape[0], b.shape[1]), np.int64)  # (M, N)
    for k in range(a.shape[1]):
        acc += np.multiply.outer(a[:, k].astype(np.int64), b[k].astype(np.int64))
    return acc


def gemm_int64(a, b) -> np.ndarray:
    """Eq. (1) on a float64 BLAS (exact: module docstring). Same arguments and result as
    :func:`gemm_int64_reference`, bit for bit."""
    a, b = _gemm_args(a, b)
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)  # (M, N), every partial sum exact


# --------------------------------------------------------------------------- convolution


def _conv_args(x, w, strides, dilations, pads, groups, layout, w_layout):
    """Validate; return ``(x NCHW, w OIHW, strides, dilations, (t, l, b, r), groups, (OH, OW))``."""
    layout = V.as_choice(layout, "layout", tuple(_W_LAYOUTS))
    w_layout = _W_LAYOUTS[layout][0] if w_layout is None else V.as_choice(w_layout, "w_layout", _W_LAYOUTS[layout])
    x = _operand(x, "x", _A_DTYPES, 4)
    w = _operand(w, "w", (np.int8,), 4)
    x = x.transpose(0, 3, 1, 2) if layout == "NHWC" else x
    c = x.shape[1]
    if w_layout == "1HWO":
        if w.shape[0] != 1:
            raise ShapeError(f"w in '1HWO' layout must have shape (1, kH, kW, O), got {w.shape}")
        if groups not in (None, c):
            raise ShapeError(f"groups must be C = {c} for w_layout='1HWO' (depthwise), got {groups!r}")
        w, groups = w.transpose(3, 0, 1, 2), c
    elif w_layout == "OHWI":
        w = w.transpose(0, 3, 1, 2)
    o, cg, kh, kw = w.shape
    groups = V.as_positive_int(1 if groups is None else groups, "groups")
    if c % groups or o % groups or cg != c // groups:
        raise ShapeError(f"x has {c} channels and w {o} output channels of {cg} inputs each: not {groups} groups")
    if min(kh, kw) < 1:
        raise ShapeError(f"kernel must be at least 1x1, got {kh}x{kw}")
    if cg * kh * kw >= _MAX_K:
        raise UnsupportedError(f"C/groups·kH·kW must be < 2^31 for an exact float64 sum, got {cg * kh * kw}")
    st, dl = _int_pair(strides, "strides"), _int_pair(dilations, "dilations")
    h, wd = x.shape[2], x.shape[3]
    pd = _pads(pads, (h, wd), (kh, kw), st, dl)
    eh, ew = dl[0] * (kh - 1) + 1, dl[1] * (kw - 1) + 1
    if eh > h + pd[0] + pd[2] or ew > wd + pd[1] + pd[3]:
        raise ShapeError(f"dilated kernel {eh}x{ew} is larger than the padded input {h + pd[0] + pd[2]}x"
                         f"{wd + pd[1] + pd[3]}")
    out_hw = ((h + pd[0] + pd[2] - eh) // st[0] + 1, (wd + pd[1] + pd[3] - ew) // st[1] + 1)
    V.check_allocation(x.shape[0] * c * kh * kw * out_hw[0] * out_hw[1], 8, "the columns N * C * kH * kW * OH * OW")
    return x, w, st, dl, pd, groups, out_hw


def _padded(x, pads, dtype):
    """(N, C, H + t + b, W + l + r) with zeros around: an out-of-image tap multiplies 0 (eq. (2))."""
    n, c, h, w = x.shape
    t, l, b, r = pads
    xp = np.zeros((n, c, h + t + b, w + l + r), dtype)
    xp[:, :, t:t + h, l:l + w] = x
    return xp


def _tap(xp, i, j, st, dl, out_hw):
    """The input plane each output reads at kernel tap (i, j): (N, C, OH, OW)."""
    (sh, sw), (dh, dw), (oh, ow) = st, dl, out_hw
    return xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]


def _to_layout(acc, layout):
    return np.ascontiguousarray(acc.transpose(0, 2, 3, 1)) if layout == "NHWC" else acc


def conv2d_int64_reference(x, w, *, strides=1, dilations=1, pads=0, groups=None, layout="NCHW",
                           w_layout=None) -> np.ndarray:
    """Eq. (2) in int64 NumPy, one kernel tap at a time (as TFLite's reference ``ConvPerChannel``).

    Args:
        x: int16 (or int8) ``(N, C, H, W)`` (``layout="NCHW"``) or ``(N, H, W, C)`` (``"NHWC"``).
        w: int8 weights in ``w_layout``: ``"OIHW"`` (NCHW), ``"OHWI"`` or ``"1HWO"`` (NHWC;
            ``"1HWO"`` is depthwise, groups $= C$, output channel $o$ reading input channel
            $\\lfloor o / (O/C) \\rfloor$).
        strides, dilations: int or ``(h, w)``, each >= 1.
        pads: int, ``(h, w)``, ``(top, left, bottom, right)``, ``"VALID"`` or ``"SAME_UPPER"``
            (TFLite ``SAME``: the odd pixel at the end) / ``"SAME_LOWER"``.
        groups: $G$ (default 1; $C$ for ``"1HWO"``).
        layout: ``"NCHW"`` or ``"NHWC"``; the output has the same layout.

    Returns:
        int64 accumulators ``(N, O, OH, OW)`` or ``(N, OH, OW, O)``, exact.
    """
    x, w, st, dl, pd, g, out_hw = _conv_args(x, w, strides, dilations, pads, groups, layout, w_layout)
    o, cg, kh, kw = w.shape
    og = o // g
    xp = _padded(x.astype(np.int64), pd, np.int64)
    w64 = w.astype(np.int64)
    acc = np.zeros((x.shape[0], o, *out_hw), np.int64)  # (N, O, OH, OW)
    for gi in range(g):
        ins, outs = slice(gi * cg, (gi + 1) * cg), slice(gi * og, (gi + 1) * og)
        for i in range(kh):
            for j in range(kw):
                acc[:, outs] += np.einsum("nchw,oc->nohw", _tap(xp, i, j, st, dl, out_hw)[:, ins], w64[outs, :, i, j])
    return _to_layout(acc, layout)


def conv2d_int64(x, w, *, strides=1, dilations=1, pads=0, groups=None, layout="NCHW", w_layout=None) -> np.ndarray:
    """Eq. (2) as one batched float64 GEMM per call: columns ``(N, G, C_g kH kW, OH OW)`` times
    weights ``(G, O_g, C_g kH kW)`` (exact: module docstring, with $K = C_g k_H k_W$). Same
    arguments and result as :func:`conv2d_int64_reference`, bit for bit."""
    x, w, st, dl, pd, g, out_hw = _conv_args(x, w, strides, dilations, pads, groups, layout, w_layout)
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    xp = _padded(x, pd, np.float64)
    cols = np.empty((n, c, kh, kw, *out_hw), np.float64)  # (N, C, kH, kW, OH, OW)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = _tap(xp, i, j, st, dl, out_hw)
    cols = cols.reshape(n, g, cg * kh * kw, out_hw[0] * out_hw[1])  # rows k = (c kH + i) kW + j
    wg = w.astype(np.float64).reshape(g, o // g, cg * kh * kw)  # same row order
    acc = np.matmul(wg[None], cols)  # (N, G, O_g, OH OW), every partial sum exact
    return _to_layout(acc.reshape(n, o, *out_hw).astype(np.int64), layout)

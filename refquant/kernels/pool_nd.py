r"""ONNX Runtime's pooling on 8-bit NCHW codes: QLinearAveragePool (com.microsoft, float32
inside) and MaxPool on int8/uint8 tensors (exact), with ORT's window geometry.

**Geometry** (``PoolAttributes``), per spatial axis with input $n$, kernel $k$, stride $s$,
dilation $\delta$, head/tail pads $p_h, p_t$:

$$ n_{out} = \mathrm{trunc}\big((n + p_h + p_t - \delta(k - 1) - 1) / s\big) + 1
   \quad \text{or, with } \texttt{ceil\_mode}, \;
   \big\lceil \mathrm{fl}((n + p_h + p_t - \delta(k - 1) - 1) / s + 1) \big\rceil \tag{1} $$

(integer division truncating toward zero; the ceil in float32), and with ``ceil_mode`` a last
window that would start at or after $n + p_h$ is dropped (measured on ONNX Runtime 1.32). ``auto_pad`` SAME_UPPER/SAME_LOWER pad $p = (\lceil n/s \rceil - 1)s + k - n$
(the dilation is ignored there) split $\lfloor p/2 \rfloor$ head (UPPER) or
$\lceil p/2 \rceil$ head (LOWER). Window $o$ covers input indices
$[o s - p_h,\ o s - p_h + k)$ clipped to $[0, n)$ (QLinearAveragePool ignores dilations);
MaxPool's taps are $o s - p_h + j\delta$, $j < k$, those inside $[0, n)$.

**QLinearAveragePool** (``qlinear_pool.cc``): every code is dequantized to
$d = \mathrm{fl}(S_x (x - Z_x))$, the window's $d$ are summed **in float32, row by row** (the
order of the loops), then

$$ a = \mathrm{fl}(\Sigma / c), \qquad
   y = \operatorname{clamp}\big(\mathrm{cvt}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(a / S_y) + Z_y)))\big) \tag{2} $$

with $c$ the window's size clipped to the input, or $\prod k$ with ``count_include_pad`` (even
where a ``ceil_mode`` window runs past the tail pad). ``cvt`` is the float-to-int32 conversion:
NaN or a value past int32 gives INT32_MIN, which the clamp takes to $q_{min}$. A kernel that
covers the whole image with no padding runs QLinearGlobalAveragePool instead
(:func:`refquant.kernels.pool.global_average_pool`); the caller picks that.

**MaxPool** (``pool.cc``, int8/uint8): the maximum of the valid taps; a window with none gives
the type's lowest value.

Each op has a NumPy ``*_reference`` and a Numba twin. Added in 0.1.0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._checks import zero_point_scalar

__all__ = ["ort_pool_geometry", "average_pool_float_reference", "average_pool_float", "max_pool_reference",
           "max_pool"]

_F32 = np.float32
_INT32_MIN = -(2 ** 31)


def _out_size(n, k, s, pads, dilation, ceil_mode) -> int:
    num = n + pads - dilation * (k - 1) - 1
    if not ceil_mode:
        return _trunc_div(num, s) + 1  # int64 division (truncates toward zero)
    return int(math.ceil(float(_F32(float(_F32(num)) / s + 1))))  # float32 quotient, ceil


def _trunc_div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero; SAME pads can be negative)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ort_pool_geometry(spatial, kernel_shape, strides, pads, dilations, *, ceil_mode=0, auto_pad="NOTSET"):
    """Output sizes and head pads of an ORT pool, eq. (1).

    Args:
        spatial, kernel_shape, strides, dilations: one int per spatial axis.
        pads: ``2 * rank`` ints, ONNX order (all heads, then all tails); ignored with SAME/VALID.
        ceil_mode: 0 or 1. auto_pad: ``"NOTSET"``, ``"VALID"``, ``"SAME_UPPER"``, ``"SAME_LOWER"``.

    Returns:
        ``(out_sizes, head_pads, pads)``: tuples of ints (``pads`` as actually used, 2·rank).

    Raises:
        QuantizationValueError: a pad not smaller than its kernel (ORT refuses it), or a bad argument (named).
        QuantizationTypeError: an argument of the wrong type (named).
        ShapeError: a negative output size.
    """
    big = 2 ** 31 - 1
    spatial = V.as_int_sequence(spatial, "spatial", minimum=0, maximum=big)
    r = len(spatial)
    kernel_shape = V.as_int_sequence(kernel_shape, "kernel_shape", minimum=1, maximum=big)
    strides = V.as_int_sequence(strides, "strides", minimum=1, maximum=big)
    dilations = V.as_int_sequence(dilations, "dilations", minimum=1, maximum=big)
    ceil_mode = int(V.as_flag(ceil_mode, "ceil_mode"))
    auto_pad = V.as_choice(auto_pad, "auto_pad", ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"))
    if auto_pad == "NOTSET":
        pads = V.as_int_sequence(pads, "pads", minimum=0, maximum=big)
    for name, v, n in (("kernel_shape", kernel_shape, r), ("strides", strides, r), ("dilations", dilations, r),
                       ("pads", pads if auto_pad == "NOTSET" else (0,) * 2 * r, 2 * r)):
        if len(v) != n:
            raise QuantizationValueError(f"{name} must have {n} values for a spatial of {r} axes "
                                         f"{list(spatial)}, got {list(v)}")
    heads, tails, outs = [], [], []
    for i in range(r):
        n, k, s, dl = int(spatial[i]), int(kernel_shape[i]), int(strides[i]), int(dilations[i])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            need = ((n + s - 1) // s - 1) * s + k - n
            h = _trunc_div(need + 1, 2) if auto_pad == "SAME_LOWER" else _trunc_div(need, 2)
            t, total = need - h, need
        elif auto_pad == "VALID":
            h = t = total = 0
        else:
            h, t = int(pads[i]), int(pads[i + r])
            total = h + t
            if h >= k or t >= k:
                raise QuantizationValueError(f"pads must be smaller than kernel_shape (ONNX Runtime's 'Pad should be "
                                             f"smaller than kernel'), got pads {list(pads)} for kernel {list(kernel_shape)}")
        o = _out_size(n, k, s, total, dl, ceil_mode)
        if ceil_mode and o > 0 and (o - 1) * s >= n + h:  # a last window starting in the tail pad is dropped
            o -= 1
        if o < 0:
            raise ShapeError(f"the pool's output size along spatial axis {i} is negative ({o}) for input {n}, "
                             f"kernel {k}, pads {h}+{t}")
        heads.append(h)
        tails.append(t)
        outs.append(o)
    return tuple(outs), tuple(heads), tuple(heads + tails)


def _check_4d(x, name="x"):
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"{name} must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim != 4:
        raise ShapeError(f"{name} must be 4-D (N, C, H, W), got shape {x.shape}")


def _geom(x, kernel, strides, heads, out_hw, dilations=(1, 1)):
    big = 2 ** 31 - 1  # int32 attributes: the window arithmetic stays far from int64 overflow
    k = V.as_int_pair(kernel, "kernel", maximum=big)
    s = V.as_int_pair(strides, "strides", maximum=big)
    p = V.as_int_pair(heads, "head_pads", minimum=-big, maximum=big)  # SAME pads can be negative
    o = V.as_int_pair(out_hw, "out_hw", minimum=0, maximum=big)
    d = V.as_int_pair(dilations, "dilations", maximum=big)
    V.check_allocation(x.shape[0] * x.shape[1] * o[0] * o[1], 8, "N * C * out_hw[0] * out_hw[1]")
    return k, s, p, o, d


def _dequantized(x_scale, x_zero_point, dtype):
    zx = zero_point_scalar(x_zero_point, dtype, "x_zero_point")
    sx = V.as_scalar_scale(x_scale, "x_scale")
    codes = np.arange(256, dtype=np.uint8).view(dtype).astype(np.int64)
    return (sx * (codes - zx).astype(_F32)).astype(_F32)  # (256,) by byte: fl(S_x (v - Z_x))


def _quantize_value(a, sy, zy, lo, hi):
    """eq. (2), right: fl(fl(a / S_y) + Z_y), RNE, cvt to int32 (NaN / overflow -> INT32_MIN), clamp."""
    with np.errstate(all="ignore"):
        v = ((np.asarray(a, _F32) / sy).astype(_F32) + _F32(zy)).astype(_F32)
        r = np.rint(v.astype(np.float64))
    r = np.where(~(np.abs(r) < 2.0 ** 31), float(_INT32_MIN), r)
    return np.clip(r, lo, hi).astype(np.int64)


def average_pool_float_reference(x, x_scale, x_zero_point, y_scale, y_zero_point, kernel, strides, head_pads,
                                 out_hw, *, count_include_pad=False) -> np.ndarray:
    """QLinearAveragePool on (N, C, H, W) codes, eq. (2): NumPy spec.

    Args:
        x: int8/uint8 (N, C, H, W) (a 1-D pool: W = 1 and kernel (k, 1)).
        x_scale, y_scale: positive float32 scalars. Zero points: integer scalars of ``x``'s type.
        kernel, strides: (kH, kW), (sH, sW). head_pads: (pH, pW). out_hw: (oH, oW), from
            :func:`ort_pool_geometry`.
        count_include_pad: divide by $k_H k_W$ instead of the clipped window size.

    Returns:
        (N, C, oH, oW) codes of ``x``'s dtype.
    """
    _check_4d(x)
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), _ = _geom(x, kernel, strides, head_pads, out_hw)
    count_include_pad = V.as_flag(count_include_pad, "count_include_pad")
    d = _dequantized(x_scale, x_zero_point, x.dtype)[np.ascontiguousarray(x).view(np.uint8)]  # (N, C, H, W) f32
    sy = V.as_scalar_scale(y_scale, "y_scale")
    zy = zero_point_scalar(y_zero_point, x.dtype, "y_zero_point")
    info = np.iinfo(x.dtype)
    H, W = x.shape[2:]
    acc = np.empty(x.shape[:2] + (oh, ow), _F32)
    for i in range(oh):
        h0 = i * sh - ph
        h1, h0 = min(h0 + kh, H), max(h0, 0)
        for j in range(ow):
            w0 = j * sw - pw
            w1, w0 = min(w0 + kw, W), max(w0, 0)
            s = np.zeros(x.shape[:2], _F32)
            for h in range(h0, h1):  # float32 sum, in the loops' order
                for w in range(w0, w1):
                    s = (s + d[:, :, h, w]).astype(_F32)
            c = kh * kw if count_include_pad else max(h1 - h0, 0) * max(w1 - w0, 0)
            with np.errstate(all="ignore"):
                acc[:, :, i, j] = (s / _F32(c)).astype(_F32)
    return _quantize_value(acc, sy, zy, int(info.min), int(info.max)).astype(x.dtype)


@numba.njit(cache=True, error_model="numpy")  # an empty window: 0 / 0 = NaN, as in C
def _avg_kernel(idx, table, kh, kw, sh, sw, ph, pw, oh, ow, include_pad, sy, zy, lo, hi):
    N, C, H, W = idx.shape
    out = np.empty((N, C, oh, ow), np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(oh):
                h0 = i * sh - ph
                h1 = min(h0 + kh, H)
                h0 = max(h0, 0)
                for j in range(ow):
                    w0 = j * sw - pw
                    w1 = min(w0 + kw, W)
                    w0 = max(w0, 0)
                    s = np.float32(0.0)
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s = np.float32(s + table[idx[n, c, h, w]])
                    cnt = kh * kw if include_pad else max(h1 - h0, 0) * max(w1 - w0, 0)
                    a = np.float32(s / np.float32(cnt))
                    v = np.float32(np.float32(a / sy) + np.float32(zy))
                    r = np.rint(np.float64(v))
                    if not (abs(r) < 2.0 ** 31):
                        r = -2.0 ** 31
                    out[n, c, i, j] = lo if r < lo else (hi if r > hi else np.int64(r))
    return out


def average_pool_float(x, x_scale, x_zero_point, y_scale, y_zero_point, kernel, strides, head_pads, out_hw, *,
                       count_include_pad=False) -> np.ndarray:
    """QLinearAveragePool: the Numba kernel (equal to :func:`average_pool_float_reference`)."""
    _check_4d(x)
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), _ = _geom(x, kernel, strides, head_pads, out_hw)
    count_include_pad = V.as_flag(count_include_pad, "count_include_pad")
    table = _dequantized(x_scale, x_zero_point, x.dtype)
    sy = V.as_scalar_scale(y_scale, "y_scale")
    zy = zero_point_scalar(y_zero_point, x.dtype, "y_zero_point")
    info = np.iinfo(x.dtype)
    with np.errstate(all="ignore"):
        out = _avg_kernel(np.ascontiguousarray(x).view(np.uint8), table, kh, kw, sh, sw, ph, pw, oh, ow,
                          bool(count_include_pad), _F32(sy), zy, int(info.min), int(info.max))
    return out.astype(x.dtype)


def max_pool_reference(x, kernel, strides, head_pads, out_hw, dilations=(1, 1)) -> np.ndarray:
    """MaxPool on (N, C, H, W) int8/uint8 codes (exact): NumPy spec.

    Returns:
        (N, C, oH, oW) codes; a window with no tap inside the input gives the type's minimum.
    """
    _check_4d(x)
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), (dh, dw) = _geom(x, kernel, strides, head_pads, out_hw, dilations)
    H, W = x.shape[2:]
    out = np.full(x.shape[:2] + (oh, ow), np.iinfo(x.dtype).min, x.dtype)
    for i in range(oh):
        hs = [i * sh - ph + a * dh for a in range(kh) if 0 <= i * sh - ph + a * dh < H]
        for j in range(ow):
            ws = [j * sw - pw + b * dw for b in range(kw) if 0 <= j * sw - pw + b * dw < W]
            if hs and ws:
                out[:, :, i, j] = x[:, :, hs][:, :, :, ws].max(axis=(2, 3))
    return out


@numba.njit(cache=True)
def _max_kernel(x, kh, kw, sh, sw, ph, pw, oh, ow, dh, dw, lowest):
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(oh):
                for j in range(ow):
                    m = lowest
                    for a in range(kh):
                        h = i * sh - ph + a * dh
                        if h < 0 or h >= H:
                            continue
                        for b in range(kw):
                            w = j * sw - pw + b * dw
                            if 0 <= w < W and np.int64(x[n, c, h, w]) > m:
                                m = np.int64(x[n, c, h, w])
                    out[n, c, i, j] = m
    return out


def max_pool(x, kernel, strides, head_pads, out_hw, dilations=(1, 1)) -> np.ndarray:
    """MaxPool: the Numba kernel (equal to :func:`max_pool_reference`)."""
    _check_4d(x)
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), (dh, dw) = _geom(x, kernel, strides, head_pads, out_hw, dilations)
    out = _max_kernel(np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw, oh, ow, dh, dw, int(np.iinfo(x.dtype).min))
    return out.astype(x.dtype)

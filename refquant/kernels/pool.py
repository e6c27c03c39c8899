r"""Quantized pooling: TFLite average/max pooling (integer division) and the global average pools and means of
ONNX Runtime, TFLite (builtin and XNNPACK) and PyTorch.

**Average pooling, TFLite** (``reference_integer_ops::AveragePool``, int8/uint8/int16, NHWC).
Input and output share scale and zero point, so the average of the *raw* codes is the output
code; out-of-image taps are skipped and **not counted**:

$$ \mathrm{acc} = \sum_{(i,j) \in W} x_{n, i, j, c}, \qquad
   y = \operatorname{clamp}\Big(\big\lfloor \tfrac{\mathrm{acc} \pm \lfloor n_W/2 \rfloor}{n_W} \big\rceil_{\to 0},
   a_{min}, a_{max}\Big) \tag{1} $$

with $+$ for $\mathrm{acc} > 0$ and $-$ otherwise, and C's truncating division: that is
$\mathrm{RHAZ}(\mathrm{acc} / n_W)$ for odd $n_W$, and for even $n_W$ too (the $\pm n_W/2$ nudge
is exact). $W$ is the window clipped to the image, $n_W = |W|$. **Max pooling** takes the
maximum code over $W$ (starting from the format's minimum), then the same clamp.
Window placement follows TFLite (``ComputeOutSize`` / ``ComputePaddingWithOffset``):
``VALID``: $o = \lfloor (n - k)/s \rfloor + 1$, no padding; ``SAME``: $o = \lceil n/s \rceil$,
top/left pad $\lfloor \max((o-1)s + k - n, 0) / 2 \rfloor$.

**Global average pooling, ONNX Runtime** (``com.microsoft`` QLinearGlobalAveragePool, MLAS
``qlgavgpool.cpp``), NCHW or channels-last, over an image of $N$ pixels:

$$ \mathrm{acc}_c = \sum_p x_{p,c} - Z_x N \;(\text{int32, wrapping}), \qquad
   y_c = \operatorname{clamp}\big(\mathrm{RNE}(\mathrm{fl}(\mathrm{acc}_c) \cdot m) + Z_y\big),
   \quad m = \mathrm{fl}\Big(\frac{S_x}{\mathrm{fl}(S_y \cdot \mathrm{fl}(N))}\Big) \tag{2} $$

all in float32 (``MlasRequantizeOutput``: clamp in float, ``cvtps2dq``). Measured bit-exact
against ONNX Runtime 1.32 (``tests/test_conformance_kernels_misc.py``).

**Global average pooling, PyTorch** (``adaptive_avg_pool2d(q, 1)`` on a quantized tensor, quint8
or qint8, NCHW or channels-last). The output keeps the input's scale and zero point; the mean is
taken in float32 with ties to even, of the raw codes (engines fbgemm and x86) or of the codes
minus the zero point (engine qnnpack):

$$ y_c = \operatorname{clamp}\big(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(\textstyle\sum_p x_{p,c}) \cdot
   \mathrm{fl}(1/N)))\big), \qquad
   y_c = \operatorname{clamp}\big(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(\textstyle\sum_p x_{p,c} - N Z) \cdot
   \mathrm{fl}(1/N))) + Z\big) \tag{3} $$

The two differ on ties when $Z$ is odd ($\mathrm{RNE}(2.5) = 2$ but $\mathrm{RNE}(2.5 - 3) + 3 = 3$);
torch 2.13 rounds the first on fbgemm and the second on qnnpack (measured on 2×2, 4×4, 6×6 and
8×8 planes, where ties occur). It is cheap, so eq. (3) has one plain NumPy implementation,
:func:`mean_codes_rne`.

**Mean, TFLite** (MEAN over H and W with ``keep_dims`` false, int8, what the converter writes for a
global average pool; its output has parameters of its own). The builtin kernels
(``reduce.cc`` → ``reference_ops::QuantizedMeanOrSum``): offline
$(M, e) = \mathrm{QuantizeMultiplier}(S_x / S_y)$ in double; with $n = HW$ and
$s = \min(\lfloor \log_2 n \rfloor, 32, 31 + e)$, $M' = \lfloor M 2^s / n \rfloor$ (int64, truncating) and
$e' = e - s$; then

$$ y_c = \operatorname{clamp}\big(\mathrm{MBQM}(\textstyle\sum_p x_{p,c} - n Z_x, M', e') + Z_y\big) \tag{4} $$

with the sum in int32 and the reference MBQM (SRDHM, then a rounding divide). The XNNPACK
delegate computes in float32 on the raw sum, with both zero points folded into one float32
constant before the rounding: $y_c = \operatorname{clamp}(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(\mathrm{fl}(\sum_p x_{p,c})
\cdot m) + z)))$, $m = \mathrm{fl}(\mathrm{fl}(S_x/S_y)\,\mathrm{fl}(1/n))$,
$z = \mathrm{fl}(Z_y - \mathrm{fl}(\mathrm{fl}(n Z_x)\, m))$ (eq. (3) of :mod:`refquant.kernels.mean`).
Both measured against LiteRT 2.3.0.

Each kernel has a NumPy ``*_reference`` and a Numba twin, equal bit for bit (the global means are
cheap and have one plain NumPy implementation each).

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from ..dtypes import wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..fixedpoint import _wrap32_scalar, multiply_by_quantized_multiplier, quantize_multiplier
from . import mean as _mean
from ._checks import activation_bounds, zero_point_scalar

__all__ = [
    "pool_geometry",
    "average_pool2d_reference",
    "average_pool2d",
    "max_pool2d_reference",
    "max_pool2d",
    "global_average_pool_params",
    "global_average_pool_reference",
    "global_average_pool",
]

_POOL_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


def _out_size(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """TFLite ComputeOutSize and the leading pad of ComputePaddingWithOffset (dilation 1)."""
    out = (n + s - 1) // s if padding == "SAME" else (n + s - k) // s
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2


def pool_geometry(input_hw, filter_size, stride=None, padding="VALID"):
    """Output size and leading padding of a TFLite pool: ``((out_h, out_w), (pad_top, pad_left))``.

    Args:
        input_hw: ``(H, W)``.
        filter_size: int or ``(kh, kw)``.
        stride: int, ``(sh, sw)`` or ``None`` (the filter size).
        padding: ``"SAME"`` or ``"VALID"``.

    Raises:
        QuantizationValueError: bad padding/sizes; ShapeError: an empty output (VALID, filter
            larger than the image).
    """
    kh, kw = _int32_pair(filter_size, "filter_size")
    sh, sw = _int32_pair(filter_size if stride is None else stride, "stride")
    padding = V.as_choice(padding, "padding", ("SAME", "VALID"))
    h, w = _int32_pair(input_hw, "input_hw", minimum=0)
    (oh, pt), (ow, pl) = _out_size(h, kh, sh, padding), _out_size(w, kw, sw, padding)
    if oh < 1 or ow < 1:
        raise ShapeError(f"filter_size {kh}x{kw} with {padding} padding gives an empty output for input_hw {h}x{w}")
    return (oh, ow), (pt, pl)


def _int32_pair(v, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or ``(h, w)`` pair inside ``[minimum, 2^31 - 1]`` (TFLite's pool parameters are C ints)."""
    pair = V.as_int_pair(v, name, minimum=minimum)
    if max(pair) > 2 ** 31 - 1:
        raise QuantizationValueError(f"{name} must be at most 2^31 - 1 (a C int in TFLite), got {V.describe(v)}")
    return pair


def _check_pool(x, filter_size, stride, padding, act_min, act_max):
    if not isinstance(x, np.ndarray):
        raise QuantizationTypeError(f"x must be a NumPy array, got {type(x).__name__}")
    x = V.native(x)
    if x.dtype not in _POOL_DTYPES:
        raise QuantizationTypeError(f"x must have dtype int8, uint8 or int16, got {x.dtype}")
    if x.ndim != 4:
        raise ShapeError(f"x must be 4-D NHWC, got shape {x.shape}")
    (oh, ow), (pt, pl) = pool_geometry(x.shape[1:3], filter_size, stride, padding)
    kh, kw = _int32_pair(filter_size, "filter_size")
    sh, sw = _int32_pair(filter_size if stride is None else stride, "stride")
    lo, hi = activation_bounds(act_min, act_max, x.dtype)
    return dict(x=x, kh=kh, kw=kw, sh=sh, sw=sw, oh=oh, ow=ow, pt=pt, pl=pl, lo=lo, hi=hi)


def _window(o, s, p, k, n):
    """[start, end) of input rows covered by output row o, clipped to the image."""
    origin = o * s - p
    return origin + max(0, -origin), origin + min(k, n - origin)


def average_pool2d_reference(x, filter_size, *, stride=None, padding="VALID", act_min=None, act_max=None):
    """TFLite AVERAGE_POOL_2D on quantized NHWC codes, eq. (1): NumPy spec.

    Args:
        x: int8, uint8 or int16 array ``(N, H, W, C)``.
        filter_size: int or ``(kh, kw)``.
        stride: int, ``(sh, sw)``, or ``None`` for the filter size.
        padding: ``"SAME"`` or ``"VALID"``.
        act_min, act_max: Fused-activation clamp (default the dtype's range; see
            :func:`refquant.kernels.multiplier.activation_range`).

    Returns:
        Array of ``x.dtype``, ``(N, OH, OW, C)``.
    """
    g = _check_pool(x, filter_size, stride, padding, act_min, act_max)
    x = g["x"]
    n, h, w, c = x.shape
    out = np.empty((n, g["oh"], g["ow"], c), np.int64)
    for oy in range(g["oh"]):
        y0, y1 = _window(oy, g["sh"], g["pt"], g["kh"], h)
        for ox in range(g["ow"]):
            x0, x1 = _window(ox, g["sw"], g["pl"], g["kw"], w)
            acc = x[:, y0:y1, x0:x1, :].astype(np.int64).sum(axis=(1, 2))  # (N, C) raw codes
            count = (y1 - y0) * (x1 - x0)
            if count == 0:
                raise ShapeError("a pooling window lies entirely in the padding")
            nudged = np.where(acc > 0, acc + count // 2, acc - count // 2)
            out[:, oy, ox, :] = _div_trunc(nudged, count)  # C '/': toward zero
    return np.clip(out, g["lo"], g["hi"]).astype(x.dtype)


def _div_trunc(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (toward zero) of int64 arrays by a positive int."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def max_pool2d_reference(x, filter_size, *, stride=None, padding="VALID", act_min=None, act_max=None):
    """TFLite MAX_POOL_2D on quantized NHWC codes: NumPy spec. Arguments as
    :func:`average_pool2d_reference`."""
    g = _check_pool(x, filter_size, stride, padding, act_min, act_max)
    x = g["x"]
    n, h, w, c = x.shape
    out = np.empty((n, g["oh"], g["ow"], c), x.dtype)
    for oy in range(g["oh"]):
        y0, y1 = _window(oy, g["sh"], g["pt"], g["kh"], h)
        for ox in range(g["ow"]):
            x0, x1 = _window(ox, g["sw"], g["pl"], g["kw"], w)
            out[:, oy, ox, :] = x[:, y0:y1, x0:x1, :].max(axis=(1, 2))
    return np.clip(out, g["lo"], g["hi"]).astype(x.dtype)


@numba.njit(cache=True)
def _pool_kernel(x, kh, kw, sh, sw, pt, pl, oh, ow, lo, hi, is_max):
    n, h, w, c = x.shape
    out = np.empty((n, oh, ow, c), np.int64)
    for b in range(n):
        for oy in range(oh):
            oy0 = oy * sh - pt
            y0, y1 = oy0 + max(0, -oy0), oy0 + min(kh, h - oy0)
            for ox in range(ow):
                ox0 = ox * sw - pl
                x0, x1 = ox0 + max(0, -ox0), ox0 + min(kw, w - ox0)
                count = np.int64((y1 - y0) * (x1 - x0))
                for ch in range(c):
                    acc = np.int64(-9223372036854775807) if is_max else np.int64(0)
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            v = np.int64(x[b, iy, ix, ch])
                            acc = max(acc, v) if is_max else acc + v
                    if not is_max:
                        nudged = acc + count // 2 if acc > 0 else acc - count // 2
                        q = abs(nudged) // count  # C '/' truncates toward zero
                        acc = q if nudged >= 0 else -q
                    out[b, oy, ox, ch] = min(max(acc, lo), hi)
    return out


def average_pool2d(x, filter_size, *, stride=None, padding="VALID", act_min=None, act_max=None):
    """TFLite AVERAGE_POOL_2D, eq. (1): the Numba kernel (equal to :func:`average_pool2d_reference`)."""
    g = _check_pool(x, filter_size, stride, padding, act_min, act_max)
    x = g["x"]
    if 0 in x.shape:
        return average_pool2d_reference(x, filter_size, stride=stride, padding=padding, act_min=act_min,
                                        act_max=act_max)
    out = _pool_kernel(np.ascontiguousarray(x), g["kh"], g["kw"], g["sh"], g["sw"], g["pt"], g["pl"], g["oh"],
                       g["ow"], g["lo"], g["hi"], False)
    return out.astype(x.dtype)


def max_pool2d(x, filter_size, *, stride=None, padding="VALID", act_min=None, act_max=None):
    """TFLite MAX_POOL_2D: the Numba kernel (equal to :func:`max_pool2d_reference`)."""
    g = _check_pool(x, filter_size, stride, padding, act_min, act_max)
    x = g["x"]
    if 0 in x.shape:
        return max_pool2d_reference(x, filter_size, stride=stride, padding=padding, act_min=act_min,
                                    act_max=act_max)
    out = _pool_kernel(np.ascontiguousarray(x), g["kh"], g["kw"], g["sh"], g["sw"], g["pt"], g["pl"], g["oh"],
                       g["ow"], g["lo"], g["hi"], True)
    return out.astype(x.dtype)


# --------------------------------------------------------------------------- ONNX Runtime global average pool


def global_average_pool_params(x_scale, y_scale, image_size: int) -> np.float32:
    """The float32 multiplier of eq. (2), ``ScaleInput / (ScaleOutput * (float)ImageSize)``. Offline.

    Raises:
        QuantizationValueError: where MLAS throws (``CheckQLinearGlobalAveragePoolScaleAndSize``):
            ``image_size >= 2^24``, or a multiplier outside $[2^{-32}, 256)$.
    """
    sx = V.as_scalar_scale(x_scale, "x_scale")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    image_size = V.as_int_scalar(image_size, "image_size")
    if not 1 <= image_size < 2 ** 24:
        raise QuantizationValueError(f"image_size must be in [1, 2^24) (MLAS limit), got {image_size}")
    with np.errstate(over="ignore", under="ignore"):
        m = np.float32(sx / np.float32(sy * np.float32(image_size)))
    if not 2.0 ** -32 <= float(m) < 256.0:
        raise QuantizationValueError(
            f"x_scale / (y_scale * image_size) = {float(m)!r} is outside [2^-32, 256): ONNX Runtime rejects it "
            "('QLinearGlobalAveragePool parameter out of computation range')")
    return m


def _check_gap(x, x_zero_point, y_zero_point, channels_last):
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 3:
        raise ShapeError(f"x must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    zps = [zero_point_scalar(v, x.dtype, name) for v, name in ((x_zero_point, "x_zero_point"),
                                                                (y_zero_point, "y_zero_point"))]
    channels_last = V.as_flag(channels_last, "channels_last")
    spatial = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    image = int(np.prod([x.shape[i] for i in spatial]))
    out_shape = tuple(1 if i in spatial else d for i, d in enumerate(x.shape))
    return zps[0], zps[1], spatial, image, out_shape


def global_average_pool_reference(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=False):
    """ONNX Runtime QLinearGlobalAveragePool, eq. (2): NumPy spec.

    Args:
        x: int8/uint8 array, ``(N, C, *spatial)`` or, with ``channels_last``, ``(N, *spatial, C)``.
        x_scale, y_scale: Positive scalars (float32).
        x_zero_point, y_zero_point: Integer scalars in the dtype's range.
        channels_last: Layout flag (ORT's ``channels_last`` attribute).

    Returns:
        Array of ``x.dtype`` with every spatial dimension 1.
    """
    zx, zy, spatial, image, out_shape = _check_gap(x, x_zero_point, y_zero_point, channels_last)
    m = global_average_pool_params(x_scale, y_scale, image)
    info = np.iinfo(x.dtype)
    acc = x.astype(np.int64).sum(axis=spatial, keepdims=True) - zx * image
    acc = wrap_int32(acc)  # int32 lanes wrap
    v = (acc.astype(np.float32) * m).astype(np.float64)  # float32 product
    v = np.clip(v, info.min - zy, info.max - zy)  # MLAS clamps in float before cvtps2dq
    return (np.rint(v).astype(np.int64) + zy).astype(x.dtype).reshape(out_shape)  # RNE


@numba.njit(cache=True)
def _gap_kernel(x3, zx, zy, m, lo, hi):
    """x3: (N, P, C) pixels-by-channels view; returns (N, C)."""
    n, p, c = x3.shape
    out = np.empty((n, c), np.int64)
    for b in range(n):
        for ch in range(c):
            acc = np.int64(0)
            for i in range(p):
                acc += np.int64(x3[b, i, ch])
            acc -= np.int64(zx) * np.int64(p)
            acc = _wrap32_scalar(acc)  # int32 lanes wrap
            v = np.float32(acc) * m
            v = min(max(v, np.float32(lo - zy)), np.float32(hi - zy))
            out[b, ch] = np.int64(np.rint(v)) + zy  # RNE
    return out


def global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=False):
    """ONNX Runtime QLinearGlobalAveragePool, eq. (2): the Numba kernel (equal to the reference)."""
    zx, zy, spatial, image, out_shape = _check_gap(x, x_zero_point, y_zero_point, channels_last)
    m = global_average_pool_params(x_scale, y_scale, image)
    info = np.iinfo(x.dtype)
    n = x.shape[0]
    if channels_last:
        x3 = x.reshape(n, image, x.shape[-1])
    else:
        x3 = x.reshape(n, x.shape[1], image).transpose(0, 2, 1)
    if x3.size == 0:
        return global_average_pool_reference(x, x_scale, x_zero_point, y_scale, y_zero_point,
                                             channels_last=channels_last)
    out = _gap_kernel(np.ascontiguousarray(x3), zx, zy, m, info.min, info.max)
    return out.astype(x.dtype).reshape(out_shape)


def mean_codes_rne(x, *, channels_last=False, zero_point=None) -> np.ndarray:
    """PyTorch's quantized ``adaptive_avg_pool2d(q, 1)``, eq. (3): the mean of the codes over
    the spatial axes, float32, ties to even (input and output share scale and zero point).

    Args:
        x: int8/uint8 array, ``(N, C, *spatial)`` or, with ``channels_last``, ``(N, *spatial, C)``.
        channels_last: Layout flag.
        zero_point: ``None``: the mean of the raw codes (fbgemm, x86); an int $Z$: the mean of
            $x - Z$, plus $Z$ (qnnpack).

    Returns:
        ``(N, C)`` codes of ``x``'s dtype.
    """
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 3:
        raise ShapeError(f"x must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    channels_last = V.as_flag(channels_last, "channels_last")
    spatial = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    size = int(np.prod([x.shape[i] for i in spatial]))
    if size == 0:
        raise ShapeError(f"x must have a non-empty spatial plane, got shape {x.shape}")
    z = 0 if zero_point is None else V.as_int_scalar(zero_point, "zero_point")
    total = (x.astype(np.int64).sum(axis=spatial) - size * z).astype(np.float32)  # exact below 2^24, then RNE
    mean = (total * np.float32(np.float32(1.0) / np.float32(size))).astype(np.float32)
    info = np.iinfo(x.dtype)
    return np.clip(np.rint(mean) + z, info.min, info.max).astype(x.dtype)  # RNE (nearbyint)


def _mean_args(x, x_scale, x_zero_point, y_scale, y_zero_point, channels_last):
    """Checked arguments of the global means: ``(acc, n, sx, sy, zy)`` with ``acc`` = int32 (N, C)
    sums over the spatial axes minus $n Z_x$ (wrapping, as the kernels' int32 sum)."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 3:
        raise ShapeError(f"x must have rank >= 3 (N, C, spatial...), got shape {x.shape}")
    sx = V.as_scalar_scale(x_scale, "x_scale")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    zx = int(zero_point_scalar(x_zero_point, x.dtype, "x_zero_point"))
    zy = int(zero_point_scalar(y_zero_point, x.dtype, "y_zero_point"))
    spatial = tuple(range(1, x.ndim - 1)) if V.as_flag(channels_last, "channels_last") else tuple(range(2, x.ndim))
    n = int(np.prod([x.shape[i] for i in spatial]))
    if n == 0:
        raise ShapeError(f"x must have a non-empty spatial plane, got shape {x.shape}")
    acc = wrap_int32(x.astype(np.int64).sum(axis=spatial) - n * zx).astype(np.int32)
    return acc, n, sx, sy, zy


def mean_fixed_point(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=False) -> np.ndarray:
    """TFLite's MEAN over the spatial axes on the builtin kernels, eq. (4).

    Args:
        x: int8/uint8 ``(N, C, *spatial)`` (``(N, *spatial, C)`` with ``channels_last``).
        x_scale, y_scale: Positive float32 scalars. x_zero_point, y_zero_point: ints.

    Returns:
        ``(N, C)`` codes of ``x``'s dtype.
    """
    acc, n, sx, sy, zy = _mean_args(x, x_scale, x_zero_point, y_scale, y_zero_point, channels_last)
    ratio = float(sx) / float(sy)
    if not ratio < 2.0 ** 31:  # the fixed-point multiplier's left shift must stay below 32
        raise QuantizationValueError(f"x_scale / y_scale = {ratio!r} must be below 2^31 for the fixed-point MEAN "
                                     f"(its multiplier's shift would leave [-31, 31])")
    multiplier, shift = quantize_multiplier(ratio)  # double, as the kernel's Prepare
    s = min(n.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (int(multiplier) << s) // n, shift - s
    y = multiply_by_quantized_multiplier(acc, multiplier, shift).astype(np.int64) + zy
    info = np.iinfo(x.dtype)
    return np.clip(y, info.min, info.max).astype(x.dtype)


def mean_float32(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=False) -> np.ndarray:
    """XNNPACK's MEAN over the spatial axes (eq. (3) of :mod:`refquant.kernels.mean`: the raw sum in
    float32 times $\\mathrm{fl}(\\mathrm{fl}(S_x/S_y)\\,\\mathrm{fl}(1/n))$, plus a float32 zero point
    that folds $Z_x$ and $Z_y$, then RNE).

    Arguments and result as :func:`mean_fixed_point`.
    """
    _mean_args(x, x_scale, x_zero_point, y_scale, y_zero_point, channels_last)  # checked as the other means
    spatial = tuple(range(1, x.ndim - 1)) if channels_last else tuple(range(2, x.ndim))
    y = _mean.mean_float32(x, x_scale, x_zero_point, y_scale, y_zero_point, spatial)
    return y.reshape(x.shape[0], x.shape[-1] if channels_last else x.shape[1])

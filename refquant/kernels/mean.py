r"""TFLite MEAN on quantized tensors (int8, uint8, int16) over any set of axes, as each kernel set
computes it. Outputs keep the reduced axes as size 1 (``keep_dims``); the caller drops them.

**Reference** (``reference_ops::QuantizedMeanOrSum``; every kernel set for int16, and for int8/uint8
except the optimized 4-D case below). Offline $(M, e) = \mathrm{QuantizeMultiplier}(S_x / S_y)$ in
double; with $n$ the number of reduced elements, $s = \min(\lfloor \log_2 n \rfloor, 32, 31 + e)$,
$M' = \lfloor M 2^s / n \rfloor$ (int64, truncating), $e' = e - s$:

$$ y = \operatorname{clamp}\big(\mathrm{MBQM}(\textstyle\sum x - n Z_x,\ M',\ e') + Z_y\big) \tag{1} $$

the sum and the subtraction in int32 (wrapping), the reference MBQM (double rounding).

**Optimized, 4-D, axes {1, 2}, keep_dims** (int8: ``optimized_integer_ops::Mean``, uint8:
``optimized_ops::Mean``; the builtin optimized kernel takes this case only). Offline, in float32:
$t = \mathrm{fl}(\mathrm{fl}(Z_x S_x) / S_y)$, $b = Z_y - \mathrm{trunc}(t \pm 0.5)$ (sign of $t$),
$(M, e) = \mathrm{QuantizeMultiplier}(\mathrm{fl}(S_x / \mathrm{fl}(n S_y)))$; then

$$ y = \operatorname{clamp}\big(\mathrm{MBQM}(\textstyle\sum x,\ M,\ e) + b\big) \tag{2} $$

on the raw codes. Channels in whole blocks of 16 (NEON through NEON_2_SSE on x86) round MBQM's second
step half up (``MultiplyByQuantizedMultiplier4Rows``); the last ``C % 16`` channels use the reference
MBQM. The channel range is split across threads when ``C >= 16`` and more than one thread is
allowed (each part with its own blocks); refquant models one thread, as measured.

**XNNPACK** (:func:`mean_float32`; the delegate takes every int8/uint8 MEAN of rank <= 6, any
axes, ``keep_dims`` or not; LiteRT fails to prepare a model with a higher-rank one). The reduction sums the raw codes in int32; a float32 conversion
(``xnn_init_qs8_reduce_scalar_params``, the reference int32 -> qint8 convert of ``reduce-nd.c``)
folds the scales and both zero points into two float32 constants:

$$ m = \mathrm{fl}(\mathrm{fl}(S_x / S_y) \cdot \mathrm{fl}(1/n)), \qquad
   z = \mathrm{fl}(Z_y - \mathrm{fl}(\mathrm{fl}(n Z_x) \cdot m)), \qquad
   y = \operatorname{clamp}\big(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(\mathrm{fl}(\textstyle\sum x) \cdot m) + z))\big) \tag{3} $$

(``nearbyint``, no fused multiply-add). The zero points enter in float32 before the rounding, so
exact ties (power-of-two $S_x / S_y$) round unlike $\mathrm{RNE}(\cdot) + Z_y$ on the offset sum.

Eqs. (1) to (3) measured bit-exact against LiteRT 2.3.0 on x86-64
(``tests/test_conformance_tflite_int16_pointwise.py``).
Cheap reductions: one plain NumPy implementation each.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..dtypes import wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..fixedpoint_multiplier import quantize_multiplier
from ._checks import zero_point_scalar

__all__ = ["MEAN_SIMD_BLOCK", "MEAN_FLOAT32_MAX_RANK", "mean_axes", "mean_fixed_point", "mean_fixed_point_4d",
           "mean_float32"]

#: Channels per SIMD block of the optimized 4-D MEAN.
MEAN_SIMD_BLOCK = 16
#: The highest input rank of XNNPACK's MEAN (``XNN_MAX_TENSOR_DIMS``).
MEAN_FLOAT32_MAX_RANK = 6
_F32 = np.float32
_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


def mean_axes(axis, ndim: int) -> tuple:
    """The reduced axes as TFLite resolves them: negatives counted from the end, duplicates dropped, sorted.

    Raises:
        QuantizationValueError: an axis outside $[-\\mathrm{ndim}, \\mathrm{ndim})$.
    """
    ndim = V.as_int_scalar(ndim, "ndim", lo=1, hi=64)
    axes = V.as_int_sequence((axis,) if isinstance(axis, (int, np.integer)) else axis, "axis", minimum=-(2 ** 31))
    out = set()
    for a in axes:
        if not -ndim <= a < ndim:
            raise QuantizationValueError(f"axis must be in [{-ndim}, {ndim}) for ndim={ndim} (x's rank), got {a}")
        out.add(a % ndim)
    return tuple(sorted(out))


def _args(x, x_scale, x_zero_point, y_scale, y_zero_point, axis):
    if not isinstance(x, np.ndarray) or V.native(x).dtype not in _DTYPES:
        raise QuantizationTypeError(f"x must be an int8, uint8 or int16 NumPy array, got {V.describe(x)}")
    x = V.native(x)
    if x.ndim == 0:
        raise ShapeError(f"x must have rank >= 1, got shape {x.shape}")
    sx, sy = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    zx = zero_point_scalar(x_zero_point, x.dtype, "x_zero_point")
    zy = zero_point_scalar(y_zero_point, x.dtype, "y_zero_point")
    axes = mean_axes(axis, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes]))
    if n == 0 or x.size == 0:
        raise ShapeError(f"x must have a non-empty reduction (got shape {x.shape}, axes {axes})")
    return x, sx, sy, zx, zy, axes, n


def mean_fixed_point(x, x_scale, x_zero_point, y_scale, y_zero_point, axis) -> np.ndarray:
    """Eq. (1): TFLite's reference MEAN.

    Args:
        x: int8, uint8 or int16 codes of any rank.
        x_scale, y_scale: Positive float32 scalars. x_zero_point, y_zero_point: ints (0 for int16).
        axis: An int or a sequence of ints (negative from the end; repeats allowed).

    Returns:
        Codes of ``x``'s dtype with the reduced axes kept as 1.

    Raises:
        QuantizationValueError: $S_x / S_y \\ge 2^{31}$ (the multiplier's shift leaves $[-31, 31]$).
    """
    x, sx, sy, zx, zy, axes, n = _args(x, x_scale, x_zero_point, y_scale, y_zero_point, axis)
    ratio = float(sx) / float(sy)
    if not ratio < 2.0 ** 31:
        raise QuantizationValueError(f"x_scale / y_scale = {ratio!r} must be below 2^31 for the fixed-point MEAN "
                                     f"(its multiplier's shift would leave [-31, 31])")
    multiplier, shift = quantize_multiplier(ratio)  # double, as the kernel's Prepare
    s = min(n.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (int(multiplier) << s) // n, shift - s
    acc = wrap_int32(wrap_int32(x.astype(np.int64).sum(axis=axes, keepdims=True)) - wrap_int32(n * zx))  # int32
    y = fp.multiply_by_quantized_multiplier(acc, multiplier, shift).astype(np.int64) + zy
    info = np.iinfo(x.dtype)
    return np.clip(y, info.min, info.max).astype(x.dtype)


def mean_fixed_point_4d(x, x_scale, x_zero_point, y_scale, y_zero_point) -> np.ndarray:
    """Eq. (2): the optimized 4-D MEAN over axes 1 and 2 (int8 or uint8, NHWC, one thread).

    Returns:
        ``(N, 1, 1, C)`` codes of ``x``'s dtype.
    """
    x, sx, sy, zx, zy, axes, n = _args(x, x_scale, x_zero_point, y_scale, y_zero_point, (1, 2))
    if x.ndim != 4 or x.dtype == np.int16:
        raise QuantizationTypeError(f"x must be a 4-D int8 or uint8 array, got {x.dtype}{x.shape}")
    with np.errstate(over="ignore", under="ignore"):
        t = _F32(_F32(_F32(zx) * sx) / sy)  # int * float -> float, then / float
        t = _F32(t + _F32(0.5)) if t > 0 else _F32(t - _F32(0.5))
        if not np.isfinite(t):
            raise QuantizationValueError(f"x_zero_point * x_scale / y_scale overflows float32 in the optimized MEAN's "
                                         f"bias (x_scale={float(sx)!r}, y_scale={float(sy)!r}, x_zero_point={zx})")
        bias = zy - int(np.trunc(np.float64(t)))  # static_cast<int32_t>: toward zero
        real = _F32(sx / _F32(_F32(n) * sy))
    if not float(real) < 2.0 ** 31:
        raise QuantizationValueError(f"x_scale / (n * y_scale) = {float(real)!r} must be below 2^31 for the optimized "
                                     f"MEAN (its multiplier's shift would leave [-31, 31]); x_scale={float(sx)!r}, "
                                     f"y_scale={float(sy)!r}, n={n}")
    multiplier, shift = quantize_multiplier(float(real))
    acc = wrap_int32(x.astype(np.int64).sum(axis=(1, 2), keepdims=True))  # (N, 1, 1, C) int32
    r = fp.multiply_by_quantized_multiplier(acc, multiplier, shift, variant="double").astype(np.int64)
    c_blocks = x.shape[3] // MEAN_SIMD_BLOCK * MEAN_SIMD_BLOCK
    r[..., :c_blocks] = fp.multiply_by_quantized_multiplier(acc[..., :c_blocks], multiplier, shift,
                                                            variant="double_up")  # vrshlq_s32: half up
    info = np.iinfo(x.dtype)
    return np.clip(wrap_int32(r + bias), info.min, info.max).astype(x.dtype)


def mean_float32(x, x_scale, x_zero_point, y_scale, y_zero_point, axis) -> np.ndarray:
    """Eq. (3): XNNPACK's MEAN (int8 or uint8). Arguments and result as :func:`mean_fixed_point`.

    Raises:
        QuantizationTypeError: int16 (XNNPACK takes no int16 MEAN).
        ShapeError: a rank above :data:`MEAN_FLOAT32_MAX_RANK`.
    """
    x, sx, sy, zx, zy, axes, n = _args(x, x_scale, x_zero_point, y_scale, y_zero_point, axis)
    if x.dtype == np.int16:
        raise QuantizationTypeError("x must be int8 or uint8 for XNNPACK's MEAN, got int16")
    if x.ndim > MEAN_FLOAT32_MAX_RANK:
        raise ShapeError(f"x must have rank <= {MEAN_FLOAT32_MAX_RANK} for XNNPACK's MEAN, got shape {x.shape}")
    total = wrap_int32(x.astype(np.int64).sum(axis=axes, keepdims=True))  # the int32 sum of the raw codes
    with np.errstate(over="ignore", under="ignore"):
        m = _F32(_F32(_F32(sx) / _F32(sy)) * _F32(_F32(1.0) / _F32(n)))
        z = _F32(_F32(zy) - _F32(_F32(n * zx) * m))
        v = (total.astype(_F32) * m).astype(_F32) + z  # float32 products and sums
    info = np.iinfo(x.dtype)
    return np.clip(np.rint(v), info.min, info.max).astype(x.dtype)  # nearbyint, then saturate

r"""Requantization of codes: one quantized tensor rescaled to another's parameters (TFLite QUANTIZE
with an integer input), int8 / uint8 / int16 in and out.

**Fixed point** (``reference_ops::Requantize``; every TFLite kernel set for int16 in or out).
Offline, $(q, e) = \mathrm{QuantizeMultiplier}(\mathrm{double}(S_x) / \mathrm{double}(S_y))$; then

$$ y = \operatorname{clamp}\big(\mathrm{MBQM}(x - Z_x,\ q,\ e) + Z_y,\ q_{min},\ q_{max}\big) \tag{1} $$

with the reference MBQM (SRDHM, then a rounding divide: half up, then half away from zero).
The builtin *optimized* kernel's 8-bit specializations (``optimized_ops::Requantize`` for
int8/uint8 in and out, NEON code through NEON_2_SSE on x86) compute the elements in whole blocks
of 16 (C order) with ``MultiplyByQuantizedMultiplier4Rows``, whose second rounding is a rounding
shift (``vrshlq_s32``: half up); the last ``n % 16`` elements use eq. (1). ``simd_block=16``
selects that split; it differs from eq. (1) only on negative ties of the second rounding.

**XNNPACK** (``qs8-vcvt`` / ``qu8-vcvt``, int8 to int8 and uint8 to uint8 only). Offline,
$m = \mathrm{RNE}(256 \cdot \mathrm{fl}(S_x / S_y))$ (float32 ratio, ``lrintf``), which the delegate
takes for $\mathrm{fl}(S_x/S_y) \in [2^{-8}, 128]$; then, exactly in int32,

$$ y = \operatorname{clamp}\big(\lfloor (256 Z_y + m (x - Z_x) + 128) / 256 \rfloor,\ q_{min},\ q_{max}\big) \tag{2} $$

(an arithmetic shift by 8: one rounding, half up).

Both measured bit-exact against LiteRT 2.3.0 on x86-64 (``tests/test_conformance_tflite_int16_pointwise.py``).
Element-wise and cheap: one plain NumPy implementation each, vectorized.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..errors import QuantizationTypeError, QuantizationValueError
from ..fixedpoint_multiplier import quantize_multiplier
from ._checks import int_scalar, zero_point_scalar

__all__ = ["fixed_point_requantize_params", "fixed_point_requantize", "shift8_requantize_params",
           "shift8_requantize"]

_F32 = np.float32
_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


def _codes(x, out_dtype):
    if not isinstance(x, np.ndarray) or V.native(x).dtype not in _DTYPES:
        raise QuantizationTypeError(f"x must be an int8, uint8 or int16 NumPy array, got {V.describe(x)}")
    try:
        out = np.dtype(out_dtype)
    except TypeError:
        raise QuantizationTypeError(f"out_dtype must be int8, uint8 or int16, got {out_dtype!r}") from None
    if out not in _DTYPES:
        raise QuantizationTypeError(f"out_dtype must be int8, uint8 or int16, got {out}")
    return V.native(x), out


def fixed_point_requantize_params(x_scale, y_scale) -> tuple[int, int]:
    """``(multiplier, shift)`` of eq. (1): ``QuantizeMultiplier(double(S_x) / double(S_y))``. Offline.

    Raises:
        QuantizationValueError: a ratio of $2^{31}$ or more (its shift would leave $[-31, 31]$).
    """
    sx, sy = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    ratio = float(sx) / float(sy)
    if not ratio < 2.0 ** 31:
        raise QuantizationValueError(f"x_scale / y_scale = {ratio!r} must be below 2^31 (the multiplier's shift "
                                     f"would leave [-31, 31])")
    return quantize_multiplier(ratio)


def fixed_point_requantize(x, x_zero_point, multiplier, shift, y_zero_point, out_dtype, *, simd_block: int = 0):
    """Eq. (1) on codes of any shape; with ``simd_block`` > 0, the elements in whole blocks of
    that many (C order) round the second step half up (the optimized 8-bit kernel).

    Args:
        x: int8, uint8 or int16 codes.
        x_zero_point, y_zero_point: Integer scalars in the input's / output's range.
        multiplier, shift: From :func:`fixed_point_requantize_params`.
        out_dtype: int8, uint8 or int16.
        simd_block: 0 (every element as eq. (1)) or the SIMD block length (16).

    Returns:
        Codes of ``x``'s shape and ``out_dtype``.
    """
    x, out = _codes(x, out_dtype)
    zx, zy = zero_point_scalar(x_zero_point, x.dtype, "x_zero_point"), zero_point_scalar(y_zero_point, out,
                                                                                         "y_zero_point")
    q = V.as_int_scalar(multiplier, "multiplier", lo=-(2**31), hi=2**31 - 1)
    s = V.as_int_scalar(shift, "shift", lo=-31, hi=31)
    block = V.as_int_scalar(simd_block, "simd_block", lo=0)
    d = x.astype(np.int64).ravel() - zx  # exact: |x - Z_x| < 2^17
    r = fp.multiply_by_quantized_multiplier(d, q, s, variant="double").astype(np.int64)
    if block and d.size >= block:
        n = d.size // block * block  # whole SIMD blocks: vrshlq_s32 rounds half up
        r[:n] = fp.multiply_by_quantized_multiplier(d[:n], q, s, variant="double_up")
    info = np.iinfo(out)
    return np.clip(r + zy, info.min, info.max).astype(out).reshape(x.shape)


def shift8_requantize_params(x_scale, y_scale) -> int:
    """$m$ of eq. (2): ``lrintf(256 * (S_x / S_y))`` in float32. Offline.

    Raises:
        QuantizationValueError: $\\mathrm{fl}(S_x/S_y)$ outside $[2^{-8}, 128]$ (the delegate does not
            take the node there).
    """
    sx, sy = V.as_scalar_scale(x_scale, "x_scale"), V.as_scalar_scale(y_scale, "y_scale")
    with np.errstate(over="ignore", under="ignore"):
        ratio = _F32(sx / sy)
    if not 2.0 ** -8 <= float(ratio) <= 128.0:
        raise QuantizationValueError(f"x_scale / y_scale = {float(ratio)!r} must be in [2^-8, 128] for this "
                                     f"requantization kernel")
    return int(np.rint(np.float64(ratio) * 256.0))  # RNE; the scaling by 256 is exact


def shift8_requantize(x, x_zero_point, multiplier: int, y_zero_point, out_dtype=None):
    """Eq. (2) on int8 or uint8 codes (the output has the input's dtype).

    Args:
        x: int8 or uint8 codes. x_zero_point, y_zero_point: Integer scalars in its range.
        multiplier: $m$ from :func:`shift8_requantize_params` (in $[1, 32768]$).
        out_dtype: ``None`` or ``x``'s dtype.

    Returns:
        Codes of ``x``'s shape and dtype.
    """
    x, out = _codes(x, x.dtype if out_dtype is None and isinstance(x, np.ndarray) else out_dtype)
    if out != x.dtype or x.dtype == np.int16:
        raise QuantizationTypeError(f"x and out_dtype must both be int8 or both uint8 (this kernel keeps the dtype), "
                                    f"got x of dtype {x.dtype} and out_dtype {out}")
    zx, zy = zero_point_scalar(x_zero_point, x.dtype, "x_zero_point"), zero_point_scalar(y_zero_point, out,
                                                                                         "y_zero_point")
    m = V.as_int_scalar(int_scalar(multiplier, "multiplier"), "multiplier", lo=1, hi=1 << 15)
    acc = (zy << 8) + m * (x.astype(np.int64) - zx) + 0x80  # exact in int32: |m (x - Z_x)| < 2^23
    info = np.iinfo(out)
    return np.clip(acc >> 8, info.min, info.max).astype(out)  # arithmetic shift: floor

"""TFLite's own parameter formulas: what the converter writes into a ``.tflite`` file.

Re-exported by :mod:`refquant.backends.tflite`. Offline code (float allowed): activation
$(S, Z)$ from a calibrated range (``GetQuantizationParams``), symmetric per-channel int8
weights (``SymmetricPerChannelQuantization``) and the int32 bias of scale $S_x S_w[c]$
(``SymmetricPerChannelBiasQuantize``). The textbook rule they start from is
:func:`refquant.qparams.choose_qparams`.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, get_format

INT64_MAX = 2 ** 63 - 1
from ..errors import QuantizationValueError, ShapeError
from ..qparams import QParams, _check_scale_finite, _min_max, make_qparams
from ..rounding import round_half_away_from_zero

__all__ = ["activation_qparams", "symmetric_weight_quantize", "bias_quantize"]


def activation_qparams(min_val, max_val, fmt="int8") -> QParams:
    """TFLite converter activation parameters (``GetAsymmetricQuantizationParams``).

    int8/uint8 (asymmetric), all in float32::

        min = min(min, 0); max = max(max, 0)
        scale = (max - min) / (qmax - qmin)
        zp_from_min = scale != 0 ? qmin - min / scale : qmin
        zp = zp_from_min < qmin ? qmin : zp_from_min > qmax ? qmax : std::round(zp_from_min)   # RHAZ

    int16 (16x8 mode): symmetric, $S = \\max(|min|, |max|) / 32767$ in float32, $Z = 0$, with the
    range first widened to hold 0. Source: LiteRT ``tflite/tools/optimize/quantization_utils.cc``
    (``GetSymmetricQuantizationParams``); the MLIR converter (``quantization_utils.h``) widens the
    range to $[-r, r]$, $r = \\max(|min|, |max|)$, and divides $2r$ by 65534 (narrow range) in
    double, which rounds to the same float32 $r / 32767$ (read in source, not run).

    Raises:
        QuantizationValueError: The range is all zeros (TFLite would store scale 0,
            which no kernel accepts).
    """
    f = get_format(fmt, name="fmt")
    lo, hi = _min_max(min_val, max_val)
    lo = np.minimum(lo.astype(np.float32), np.float32(0))
    hi = np.maximum(hi.astype(np.float32), np.float32(0))
    if f.name == "int16":
        scale = (np.maximum(np.abs(lo), np.abs(hi)) / np.float32(32767)).astype(np.float32)
        zp = np.zeros(scale.shape, np.int64)
    elif f.name in ("int8", "uint8"):
        qmin, qmax = np.float32(f.qmin), np.float32(f.qmax)
        with np.errstate(over="ignore"):
            scale = ((hi - lo) / (qmax - qmin)).astype(np.float32)
        _check_scale_finite(scale, "max_val - min_val")
        with np.errstate(divide="ignore", invalid="ignore"):
            zfm = np.where(scale != 0, qmin - lo / scale, qmin).astype(np.float32)
        zp = np.where(zfm < qmin, qmin, np.where(zfm > qmax, qmax, round_half_away_from_zero(zfm))).astype(np.int64)
    else:
        raise QuantizationValueError(f"fmt must be int8, uint8 or int16 for TFLite activations, got {f.name}")
    if np.any(scale == 0):
        raise QuantizationValueError(
            "min_val and max_val must not both be 0: TFLite would store scale 0 for an all-zero range")
    return make_qparams(scale, zp, f)


def symmetric_weight_quantize(w, axis: int | None = 0, *, min_half=0.0):
    """TFLite converter int8 weight quantization (``SymmetricPerChannelQuantization``).

    Per channel $c$ (or per tensor when ``axis is None``), all float32::

        half[c]  = max(|min_c|, |max_c|, min_half)
        scale[c] = half[c] / 127
        inv[c]   = half[c] == 0 ? 0 : 127 / half[c]      # not 1 / scale[c]
        q        = clamp((int32) std::round(w * inv[c]), -127, 127)   # RHAZ

    Args:
        w: float weights (Conv OHWI: axis 0; DepthwiseConv 1HWO: axis 3; FC: axis 0).
        axis: Channel axis, or ``None`` for per-tensor.
        min_half: The smallest ``half`` (>= 0). ``0``: the legacy quantizer, which writes an
            all-zero channel with scale 0. The MLIR converter of TensorFlow 2.21 (what
            ``TFLiteConverter`` runs) widens every channel to at least $5 \\cdot 10^{-7}$ (measured:
            an all-zero channel gets scale ``3.9370081e-09`` $= 5 \\cdot 10^{-7} / 127$, one of
            max $6 \\cdot 10^{-7}$ keeps ``4.7244098e-09``): ``min_half=5e-7``.

    Returns:
        ``(q, scale)``: int8 array of ``w``'s shape and float32 scales, shape ``(C,)``
        (or ``()``). An all-zero channel gets scale 0 (``min_half=0``), as the legacy quantizer writes it.
    """
    with np.errstate(over="ignore"):
        w = V.as_float_array(w, "w").astype(np.float32)
    if not np.isfinite(w).all():  # the weights choose the scale: NaN/Inf would make it NaN/Inf
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(w))[0])
        raise QuantizationValueError(f"w must be finite (in float32; it chooses the scale), got {w[first]!r} "
                                     f"at index {first}")
    if axis is not None and w.ndim == 0:
        raise ShapeError(f"w must have rank >= 1 for per-channel quantization (axis={axis!r}), got a scalar; "
                         f"pass axis=None for per-tensor")
    min_half = V.as_finite_f32(min_half, "min_half")
    if min_half < 0:
        raise QuantizationValueError(f"min_half must be >= 0, got {float(min_half)!r}")
    if axis is None:
        half = np.float32(max(abs(float(w.min(initial=0))), abs(float(w.max(initial=0))), float(min_half)))
        half = np.asarray(half, np.float32)
        shape = ()
    else:
        axis = V.normalize_axis(axis, w.ndim)
        red = tuple(i for i in range(w.ndim) if i != axis)
        half = np.maximum(np.maximum(np.abs(w.min(axis=red, initial=0)), np.abs(w.max(axis=red, initial=0))),
                          min_half).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
    scale = (half / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(half == 0, np.float32(0), np.float32(127) / half).astype(np.float32)
    inv_b = inv.reshape(shape) if shape else inv
    q = np.clip(round_half_away_from_zero((w * inv_b).astype(np.float32)), -127, 127).astype(np.int8)
    return q, scale


def bias_quantize(bias, input_scale, weight_scale, *, dtype="int32") -> np.ndarray:
    """TFLite converter bias quantization (``SymmetricBiasQuantize<BiasType>``), int32 or int64.

    ``scale = input_scale * weight_scale[c]`` (float32 product);
    ``inv = scale == 0 ? 0 : (float)(1.0 / scale)``;
    ``q = clamp(SafeCast<BiasType>(std::round(b * inv)), -MAX, MAX)`` (float32 product, RHAZ;
    ``SafeCast`` saturates; note the symmetric clamp to $\\pm$ ``MAX`` of the bias type). The
    int64 bias is the 16x8 mode's (int16 activations). Source: LiteRT
    ``tflite/tools/optimize/quantization_utils.cc`` (read in source).

    Args:
        bias: float bias, shape ``(C,)`` (or a scalar).
        input_scale: $S_x$, a finite scalar >= 0 (float32).
        weight_scale: $S_w$, a finite scalar or ``(C,)`` array >= 0 (float32; 0 for an
            all-zero weight channel, as :func:`symmetric_weight_quantize` writes it).

        dtype: ``"int32"`` (int8 models) or ``"int64"`` (16x8 models).

    Returns:
        An array of ``dtype`` and ``bias``' shape (broadcast with a per-channel ``weight_scale``).

    Raises:
        QuantizationTypeError: non-float bias or non-numeric scales.
        QuantizationValueError: a scale that is negative, NaN or infinite.
        ShapeError: a per-channel ``weight_scale`` whose length is not ``bias``' length.
    """
    dtype = V.as_choice(np.dtype(dtype).name if isinstance(dtype, type) else dtype, "dtype", ("int32", "int64"))
    with np.errstate(over="ignore"):
        b = V.as_float_array(bias, "bias").astype(np.float32)
    if np.isnan(b).any():
        raise QuantizationValueError(f"bias must not be NaN (TFLite's (int32) cast of NaN is undefined), "
                                     f"got NaN at index {tuple(int(i) for i in np.argwhere(np.isnan(b))[0])}")
    s_x = V.as_scale(input_scale, "input_scale", allow_zero=True)
    s_w = V.as_scale(weight_scale, "weight_scale", allow_zero=True)
    if s_x.ndim:
        raise ShapeError(f"input_scale must be a scalar, got shape {s_x.shape}")
    if s_w.ndim > 1 or (s_w.ndim == 1 and s_w.shape != b.shape):
        raise ShapeError(f"weight_scale must be a scalar or have bias' shape {b.shape}, got {s_w.shape}")
    s = (s_x * s_w).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(s == 0, 0.0, 1.0 / s.astype(np.float64)).astype(np.float32)
    r = round_half_away_from_zero((b * inv).astype(np.float32)).astype(np.float64)  # integers, exact in double
    if dtype == "int32":
        return np.clip(r, -INT32_MAX, INT32_MAX).astype(np.int32)
    out = np.full(r.shape, INT64_MAX, np.int64)  # r >= 2^63: SafeCast saturates to INT64_MAX
    out[r <= -2.0 ** 63] = -INT64_MAX  # INT64_MIN, then the symmetric clamp
    mid = (r > -2.0 ** 63) & (r < 2.0 ** 63)
    out[mid] = r[mid].astype(np.int64)  # |r| < 2^63: exact
    return out

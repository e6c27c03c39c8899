"""Choosing scale and zero point from a real range, with each backend's own formula.

All of them start from the textbook rule (Conventions, eq. (3)-(5)): widen the
range to contain zero, $r_{min} = \\min(m, 0)$, $r_{max} = \\max(M, 0)$, then

$$ S = \\frac{r_{max} - r_{min}}{q_{max} - q_{min}}, \\qquad
   Z = q_{min} - \\operatorname{round}(r_{min} / S) \\quad\\text{(affine)} $$

$$ S = \\frac{\\max(|r_{min}|, |r_{max}|)}{(q_{max} - q_{min}) / 2}, \\qquad
   Z = 0 \\text{ or the midpoint} \\quad\\text{(symmetric)} $$

and differ in precision (float32 vs float64), the rounding of $Z$ (half-to-even vs
half-away), the symmetric divisor (127 vs 127.5 for int8), and degenerate ranges
(all zeros: scale 1.0, eps, or 0). Each function below names the upstream function
it transcribes. PyTorch's observers are in :mod:`refquant.backends.pytorch`
(``choose_qparams``), beside the face that pins them.

These functions are *offline* (float is fine here); the integer runtime path never
calls them.
"""

from __future__ import annotations

import numpy as np

from . import _validate as V
from .dtypes import INT32_MAX, get_format, quant_range
from .errors import QuantizationTypeError, QuantizationValueError, ShapeError
from .qparams import QParams, make_qparams
from .rounding import as_rounding_mode, round_by_mode, round_half_away_from_zero

__all__ = [
    "choose_qparams",
    "tflite_activation_qparams",
    "tflite_symmetric_weight_quantize",
    "tflite_bias_quantize",
    "onnxruntime_qparams",
    "onnx_dynamic_qparams",
]


def _min_max(min_val, max_val, names=("min_val", "max_val")):
    arrays = []
    for name, v in zip(names, (min_val, max_val)):
        a = V.asarray(v, name, kinds=None, what="a real number or array")
        if a.dtype.kind not in "fiu":
            raise QuantizationTypeError(f"{name} must be a real number or array, got {V.describe(v)}")
        arrays.append(a)
    with np.errstate(over="ignore"):
        lo = arrays[0].astype(np.float64 if arrays[0].dtype == np.float64 else np.float32)
        hi = arrays[1].astype(lo.dtype)
    if lo.shape != hi.shape:
        raise ShapeError(f"{names[0]} and {names[1]} must have the same shape, got {lo.shape} and {hi.shape}")
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise QuantizationValueError(f"{names[0]} and {names[1]} must not be NaN")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        bad = lo[~np.isfinite(lo)] if not np.isfinite(lo).all() else hi[~np.isfinite(hi)]  # a float64 past float32
        raise QuantizationValueError(
            f"{names[0]} and {names[1]} must be finite (in {lo.dtype}), got {bad.flat[0].item()!r}")
    if (lo > hi).any():
        i = np.argmax((lo > hi).reshape(-1))
        raise QuantizationValueError(
            f"{names[0]} must be <= {names[1]}, got {names[0]}={float(lo.reshape(-1)[i])!r} > "
            f"{names[1]}={float(hi.reshape(-1)[i])!r}")
    return lo, hi


def choose_qparams(min_val, max_val, fmt="int8", *, symmetric: bool = False, narrow: bool = False,
                   reduce_range=None, axis=None, zero_point_rounding="half_to_even",
                   eps: float = float(np.finfo(np.float32).eps)) -> QParams:
    """Textbook scale and zero point from a range (per-tensor, or per-axis with arrays).

    $S = \\max\\big((r_{max} - r_{min}) / (q_{max} - q_{min}), \\varepsilon\\big)$ in float32;
    affine $Z = \\operatorname{clamp}(q_{min} - \\operatorname{round}(r_{min}/S))$;
    symmetric $S = \\max(\\varepsilon, \\max(|r_{min}|, |r_{max}|) / ((q_{max} - q_{min})/2))$ with
    $Z = 0$ (signed) or $\\lceil (q_{min} + q_{max}) / 2 \\rceil$ (unsigned: 128 for uint8).

    Args:
        min_val, max_val: Observed range; scalars, or 1-D arrays for per-axis with ``axis``.
        fmt: Integer format.
        symmetric: Symmetric scheme.
        narrow, reduce_range: Code range variant (:func:`refquant.dtypes.quant_range`).
        axis: Quantized axis when the ranges are arrays.
        zero_point_rounding: Rounding of $Z$ (PyTorch/ONNX Runtime: ``"half_to_even"``;
            TFLite: ``"half_away_from_zero"``).
        eps: Smallest scale (guards all-zero ranges); PyTorch uses float32 eps.

    Returns:
        A validated :class:`refquant.qparams.QParams`.
    """
    f = get_format(fmt, name="fmt")
    qmin, qmax = quant_range(f, narrow=narrow, reduce_range=reduce_range)
    symmetric = V.as_flag(symmetric, "symmetric")
    as_rounding_mode(zero_point_rounding, name="zero_point_rounding")
    with np.errstate(over="ignore"):
        eps32 = np.float32(V.as_real_scalar(eps, "eps"))
    if not (np.isfinite(eps32) and eps32 > 0):
        raise QuantizationValueError(f"eps must be finite and > 0 in float32 (the smallest scale), got {eps!r}")
    lo, hi = _min_max(min_val, max_val)
    if lo.ndim and axis is None:
        raise ShapeError(f"array min_val/max_val need axis=, got shape {lo.shape} with axis=None")
    rmin = np.minimum(lo, 0).astype(np.float32)
    rmax = np.maximum(hi, 0).astype(np.float32)
    if symmetric:
        half = np.float32((qmax - qmin) / 2)
        scale = np.maximum(np.maximum(-rmin, rmax) / half, eps32).astype(np.float32)
        mid = 0 if f.signed else (qmin + qmax + 1) // 2
        zp = np.full(scale.shape, mid, np.int64)
    else:
        with np.errstate(over="ignore"):
            scale = np.maximum((rmax - rmin) / np.float32(qmax - qmin), eps32).astype(np.float32)
        _check_scale_finite(scale, "max_val - min_val")
        z = np.float32(qmin) - round_by_mode((rmin / scale).astype(np.float32), zero_point_rounding)
        zp = np.clip(z, qmin, qmax).astype(np.int64)
    return make_qparams(scale, zp, f, axis=axis, qmin=qmin, qmax=qmax)


def _check_scale_finite(scale, what):
    if not np.isfinite(scale).all():
        raise QuantizationValueError(
            f"min_val and max_val: scale must be finite, got inf ({what} overflows float32)")


def tflite_activation_qparams(min_val, max_val, fmt="int8") -> QParams:
    """TFLite converter activation parameters (``GetAsymmetricQuantizationParams``).

    int8/uint8 (asymmetric), all in float32::

        min = min(min, 0); max = max(max, 0)
        scale = (max - min) / (qmax - qmin)
        zp_from_min = scale != 0 ? qmin - min / scale : qmin
        zp = zp_from_min < qmin ? qmin : zp_from_min > qmax ? qmax : std::round(zp_from_min)   # RHAZ

    int16 (16x8 mode): symmetric, $S = \\max(|min|, |max|) / 32767$, $Z = 0$.
    Source: LiteRT ``tflite/tools/optimize/quantization_utils.cc``.

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


def tflite_symmetric_weight_quantize(w, axis: int | None = 0):
    """TFLite converter int8 weight quantization (``SymmetricPerChannelQuantization``).

    Per channel $c$ (or per tensor when ``axis is None``), all float32::

        half[c]  = max(|min_c|, |max_c|)
        scale[c] = half[c] / 127
        inv[c]   = half[c] == 0 ? 0 : 127 / half[c]      # not 1 / scale[c]
        q        = clamp((int32) std::round(w * inv[c]), -127, 127)   # RHAZ

    Args:
        w: float weights (Conv OHWI: axis 0; DepthwiseConv 1HWO: axis 3; FC: axis 0).
        axis: Channel axis, or ``None`` for per-tensor.

    Returns:
        ``(q, scale)``: int8 array of ``w``'s shape and float32 scales, shape ``(C,)``
        (or ``()``). An all-zero channel gets scale 0, as TFLite writes it.
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
    if axis is None:
        half = np.float32(max(abs(float(w.min(initial=0))), abs(float(w.max(initial=0)))))
        half = np.asarray(half, np.float32)
        shape = ()
    else:
        axis = V.normalize_axis(axis, w.ndim)
        red = tuple(i for i in range(w.ndim) if i != axis)
        half = np.maximum(np.abs(w.min(axis=red, initial=0)), np.abs(w.max(axis=red, initial=0))).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
    scale = (half / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(half == 0, np.float32(0), np.float32(127) / half).astype(np.float32)
    inv_b = inv.reshape(shape) if shape else inv
    q = np.clip(round_half_away_from_zero((w * inv_b).astype(np.float32)), -127, 127).astype(np.int8)
    return q, scale


def tflite_bias_quantize(bias, input_scale, weight_scale) -> np.ndarray:
    """TFLite converter bias quantization (``SymmetricBiasQuantize``), int32.

    ``scale = input_scale * weight_scale[c]`` (float32 product);
    ``inv = scale == 0 ? 0 : (float)(1.0 / scale)``;
    ``q = clamp(std::round(b * inv), -INT32_MAX, INT32_MAX)`` (float32 product, RHAZ;
    note the symmetric clamp).

    Args:
        bias: float bias, shape ``(C,)`` (or a scalar).
        input_scale: $S_x$, a finite scalar >= 0 (float32).
        weight_scale: $S_w$, a finite scalar or ``(C,)`` array >= 0 (float32; 0 for an
            all-zero weight channel, as :func:`tflite_symmetric_weight_quantize` writes it).

    Returns:
        int32 array of ``bias``' shape (broadcast with a per-channel ``weight_scale``).

    Raises:
        QuantizationTypeError: non-float bias or non-numeric scales.
        QuantizationValueError: a scale that is negative, NaN or infinite.
        ShapeError: a per-channel ``weight_scale`` whose length is not ``bias``' length.
    """
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
    r = round_half_away_from_zero((b * inv).astype(np.float32)).astype(np.float64)
    return np.clip(r, -INT32_MAX, INT32_MAX).astype(np.int32)


def onnxruntime_qparams(rmin, rmax, fmt="uint8", *, symmetric: bool = False, reduce_range: bool = False,
                        min_real_range=None) -> QParams:
    """ONNX Runtime quantization tool (``quant_utils.compute_scale_zp`` with
    ``get_qmin_qmax_for_qType``), onnxruntime 1.32.

    * range: full; ``symmetric`` int8/int16: $[-127, 127]$ / $[-32767, 32767]$;
      ``reduce_range``: the ORT table (int8 $[-64, 64]$, uint8 $[0, 127]$ ...).
    * $S$ = float64 $(r_{max} - r_{min}) / (q_{max} - q_{min})$, stored as float32.
      Below ``finfo(float32).tiny``: $(S, Z) = (1, 0)$.
    * symmetric $Z = \\mathrm{RNE}((q_{min} + q_{max})/2)$ (0 for int8, 128 for uint8);
      else $Z = \\mathrm{RNE}(q_{min} - r_{min} / S_{64})$ with the float64 scale.
    """
    f = get_format(fmt, name="fmt")
    symmetric, reduce_range = V.as_flag(symmetric, "symmetric"), V.as_flag(reduce_range, "reduce_range")
    if reduce_range:
        qmin, qmax = quant_range(f, reduce_range="onnxruntime")
    elif symmetric and f.name in ("int8", "int16"):
        qmin, qmax = quant_range(f, narrow=True)
    else:
        qmin, qmax = f.qmin, f.qmax
    lo, hi = _min_max(rmin, rmax, ("rmin", "rmax"))
    with np.errstate(over="ignore"):
        lo = np.minimum(lo.astype(np.float32), np.float32(0))
        hi = np.maximum(hi.astype(np.float32), np.float32(0))
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise QuantizationValueError("rmin and rmax must be finite in float32")
    if min_real_range is not None:
        mrr = V.as_real_scalar(min_real_range, "min_real_range")
        if not 0 <= mrr <= np.finfo(np.float32).max:
            raise QuantizationValueError(f"min_real_range must be a finite float32 >= 0, got {mrr!r}")
        with np.errstate(over="ignore"):
            hi = np.maximum(hi, lo + np.float32(mrr)).astype(np.float32)
        if not np.isfinite(hi).all():
            raise QuantizationValueError(f"min_real_range: rmin + min_real_range overflows float32, got {mrr!r}")
    if symmetric:
        absmax = np.maximum(np.abs(lo), np.abs(hi))
        lo, hi = -absmax, absmax
    scale64 = (hi.astype(np.float64) - lo.astype(np.float64)) / float(qmax - qmin)
    tiny = scale64 < np.finfo(np.float32).tiny
    if symmetric:
        z = np.full(scale64.shape, np.rint((qmin + qmax) / 2.0))  # RNE, as numpy.round
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.rint(qmin - lo.astype(np.float64) / scale64)  # RNE, as numpy.round
    scale = np.where(tiny, 1.0, scale64).astype(np.float32)
    zp = np.where(tiny, 0, z).astype(np.int64)
    axis = 0 if scale.ndim else None
    return make_qparams(scale, zp, f, axis=axis, qmin=qmin, qmax=qmax)


def onnx_dynamic_qparams(x, *, variant: str = "spec"):
    """Scale and zero point of ONNX ``DynamicQuantizeLinear`` (uint8), float32 throughout.

    ::

        x_min = min(ReduceMin(x), 0); x_max = max(ReduceMax(x), 0)
        scale = (x_max - x_min) / 255
        zp    = Cast<uint8>(Round(Clip(0 - x_min / scale, 0, 255)))       # Round = RNE

    An all-zero input (``x_max == x_min``) makes the spec's body compute 0/0. The
    implementations disagree (backends.md §2.3): ``variant="onnxruntime"`` returns
    scale 1.0 (``qmath.h GetQuantizationParameter``), ``variant="reference"`` returns
    1/255 (``onnx.reference``), and ``variant="spec"`` follows ONNX Runtime (the spec
    leaves it undefined; scale 1.0 keeps $S > 0$). NaN in ``x`` is ignored by min/max
    in ORT (``std::min``/``max`` order) — here NaN raises, as the range is undefined,
    except for ``variant="onnxruntime"``, which reproduces ONNX Runtime exactly, NaN, $\\pm\\infty$
    and degenerate scales included (see :func:`_onnxruntime_dynamic_qparams`).

    Returns:
        ``(scale, zero_point)``: float32 and int64 Python-scalar-like 0-d arrays.
    """
    V.as_choice(variant, "variant", ("spec", "onnxruntime", "reference"))
    x = V.as_float_array(x, "x").astype(np.float32)
    if variant == "onnxruntime":
        return _onnxruntime_dynamic_qparams(x)
    if np.isnan(x).any():
        raise QuantizationValueError("x must not contain NaN: the range of DynamicQuantizeLinear is undefined")
    if x.size == 0:
        xmin = xmax = np.float32(0)
    else:
        xmin = np.minimum(np.float32(x.min()), np.float32(0))
        xmax = np.maximum(np.float32(x.max()), np.float32(0))
    if xmax == xmin:
        scale = np.float32(1.0 / 255.0) if variant == "reference" else np.float32(1.0)
        return np.asarray(scale, np.float32), np.asarray(0, np.int64)
    scale = np.float32((xmax - xmin) / np.float32(255))
    zf = np.clip(np.float32(0) - xmin / scale, 0, 255).astype(np.float32)
    return np.asarray(scale, np.float32), np.asarray(np.rint(zf), np.int64)  # RNE


# ONNX Runtime's DynamicQuantizeLinear parameters (added for refquant.backends.onnxruntime) ------------

_FLT_MAX = np.float32(np.finfo(np.float32).max)


def _sse_max(a, b):
    """x86 ``maxps(a, b)``: ``a > b ? a : b``, so the *second* operand when either is NaN."""
    return np.where(a > b, a, b)


def _sse_min(a, b):
    """x86 ``minps(a, b)``: ``a < b ? a : b`` (second operand on NaN)."""
    return np.where(a < b, a, b)


def _sse_fold(seq, kind: str):
    """Left fold ``acc = maxps(acc, v)`` (or ``minps``) down axis 0; row 0 is the initial ``acc``.

    Closed form: a NaN operand makes ``acc`` NaN and the next operand replaces it, so the
    result is NaN if the last row is NaN, else the plain max (min) of the rows after the last NaN.
    """
    nan = np.isnan(seq)
    n = seq.shape[0]
    last = np.where(nan.any(axis=0), n - 1 - np.argmax(nan[::-1], axis=0), -1)
    after = np.arange(n).reshape((-1,) + (1,) * (seq.ndim - 1)) > last
    if kind == "max":
        red = np.where(after, seq, -np.inf).max(axis=0)
    else:
        red = np.where(after, seq, np.inf).min(axis=0)
    return np.where(last == n - 1, np.nan, red).astype(np.float32)


def _mlas_min_max(x):
    """ONNX Runtime's ``MlasReduceMinimumMaximumF32KernelAvx`` (``mlas/lib/min_max_elements.cpp``).

    Accumulators start at ``(FLT_MAX, -FLT_MAX)``; 4 x 8 lanes take 32-element blocks, then
    one 8-lane vector takes 8-element blocks, lanes are reduced with ``maxps``/``minps``
    (high half into low, then lanes 2,3 into 0,1, then 1 into 0), and a scalar tail uses
    ``std::max(acc, v)`` (a NaN ``v`` is skipped, a NaN ``acc`` sticks). Exact for one thread
    on x86-64 with AVX (verified against onnxruntime 1.32 on 600 NaN/Inf placements); only
    the NaN handling depends on this order.
    """
    x = x.reshape(-1)
    n = x.size
    lo, hi, i = _FLT_MAX, -_FLT_MAX, 0
    if n >= 8:
        vmin = np.full(8, _FLT_MAX, np.float32)
        vmax = np.full(8, -_FLT_MAX, np.float32)
        if n >= 32:
            nb = n // 32
            blocks = x[: nb * 32].reshape(nb, 4, 8)  # (blocks, 4 accumulators, 8 lanes)
            amax = _sse_fold(np.concatenate([np.full((1, 4, 8), -_FLT_MAX, np.float32), blocks]), "max")
            amin = _sse_fold(np.concatenate([np.full((1, 4, 8), _FLT_MAX, np.float32), blocks]), "min")
            vmax = _sse_max(_sse_max(amax[0], amax[1]), _sse_max(amax[2], amax[3]))
            vmin = _sse_min(_sse_min(amin[0], amin[1]), _sse_min(amin[2], amin[3]))
            i = nb * 32
        nb8 = (n - i) // 8
        rows = x[i: i + nb8 * 8].reshape(nb8, 8)
        vmax = _sse_fold(np.concatenate([vmax[None], rows]), "max")
        vmin = _sse_fold(np.concatenate([vmin[None], rows]), "min")
        i += nb8 * 8
        for v, op in ((vmax, _sse_max), (vmin, _sse_min)):
            v = op(v[:4], v[4:])
            v = op(v[:2], v[2:])
            if op is _sse_max:
                hi = np.float32(op(v[0], v[1]))
            else:
                lo = np.float32(op(v[0], v[1]))
    tail = x[i:][~np.isnan(x[i:])]
    if tail.size and not np.isnan(hi):
        hi = np.float32(max(hi, tail.max()))
    if tail.size and not np.isnan(lo):
        lo = np.float32(min(lo, tail.min()))
    return lo, hi


def _onnxruntime_dynamic_qparams(x):
    """ONNX Runtime 1.32 ``GetQuantizationParameter<uint8_t>`` (``core/util/qmath.h``), one thread.

    ::

        min, max = MlasFindMinMaxElement(x)              # _mlas_min_max: NaN as the AVX kernel treats it
        min = std::min(min, 0.f); max = std::max(max, 0.f)
        scale = max == min ? 1.0f : (max - min) / 255.f
        zp = RoundHalfToEven(std::max(0.f, std::min(255.f, 0.f - min / scale)))

    ``std::min(255.f, NaN)`` is 255 (the comparison is false), so a NaN zero point becomes 255.
    Degenerate scales (0 by underflow, inf, NaN) are returned as ORT computes them.
    With several intra-op threads ORT reduces blocks of ``ceil(n/32)`` (rounded up to 128)
    separately, which changes only where NaN goes; that is not modelled.
    """
    lo, hi = _mlas_min_max(x)
    lo = np.float32(0) if np.float32(0) < lo else lo  # std::min(min, 0.f)
    hi = np.float32(0) if hi < np.float32(0) else hi  # std::max(max, 0.f)
    with np.errstate(all="ignore"):
        scale = np.float32(1) if hi == lo else np.float32((hi - lo) / np.float32(255))
        z = np.float32(np.float32(0) - np.float32(lo / scale))
    z = z if z < np.float32(255) else np.float32(255)  # std::min(255.f, z): NaN -> 255
    z = z if np.float32(0) < z else np.float32(0)  # std::max(0.f, z)
    return np.asarray(scale, np.float32), np.asarray(np.rint(z), np.int64)  # RNE (RoundHalfToEven)

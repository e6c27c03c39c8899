"""The ONNX family's parameter formulas: ONNX Runtime's quantization tool and DynamicQuantizeLinear.

Used by :mod:`refquant.backends.onnx` and :mod:`refquant.backends.onnxruntime`, which re-export
them. Offline code (float allowed): ``tool_qparams`` transcribes the ONNX Runtime quantization
tool's ``compute_scale_zp`` (``onnxruntime/quantization/quant_utils.py``); ``dynamic_qparams`` the
$(S, Z)$ of DynamicQuantizeLinear, as the ONNX specification's function body computes them
(``variant="spec"``) or as ONNX Runtime's MLAS kernel does (``variant="onnxruntime"``: SSE min/max
folds, a float32 division). The textbook rule they start from is
:func:`refquant.qparams.choose_qparams`.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..dtypes import get_format, quant_range
from ..errors import QuantizationValueError
from ..qparams import QParams, _min_max, make_qparams

__all__ = ["tool_qparams", "dynamic_qparams", "reduced_range"]

# quant_utils.get_qmin_qmax_for_qType(qType, reduce_range=True): a table, not a rule (int8 [-64, 64])
_REDUCED = {"uint8": (0, 127), "int8": (-64, 64), "uint16": (0, 32767), "int16": (-16384, 16384), "uint4": (0, 7),
            "int4": (-4, 3)}


def reduced_range(fmt) -> tuple[int, int]:
    """``(qmin, qmax)`` of the ONNX Runtime quantization tool with ``reduce_range=True``
    (``quant_utils.get_qmin_qmax_for_qType``): uint8 $[0, 127]$, int8 $[-64, 64]$, uint16
    $[0, 32767]$, int16 $[-16384, 16384]$, uint4 $[0, 7]$, int4 $[-4, 3]$. PyTorch's observers
    halve both ends instead (:func:`refquant.dtypes.quant_range` with ``reduce_range=True``).

    Raises:
        QuantizationValueError: A format the tool has no reduced range for.
    """
    f = get_format(fmt, name="fmt")
    if f.name not in _REDUCED:
        raise QuantizationValueError(f"fmt must be one of {sorted(_REDUCED)} (the tool's reduced ranges), got {f.name}")
    return _REDUCED[f.name]



def tool_qparams(rmin, rmax, fmt="uint8", *, symmetric: bool = False, reduce_range: bool = False,
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
        qmin, qmax = reduced_range(f)
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


def dynamic_qparams(x, *, variant: str = "spec"):
    """Scale and zero point of ONNX ``DynamicQuantizeLinear`` (uint8), float32 throughout.

    ::

        x_min = min(ReduceMin(x), 0); x_max = max(ReduceMax(x), 0)
        scale = (x_max - x_min) / 255
        zp    = Cast<uint8>(Round(Clip(0 - x_min / scale, 0, 255)))       # Round = RNE

    An all-zero input (``x_max == x_min``) makes the spec's body compute 0/0. The
    implementations disagree: ``variant="onnxruntime"`` returns
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

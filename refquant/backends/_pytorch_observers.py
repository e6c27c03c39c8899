"""PyTorch's choice of scale and zero point (observers and dynamic quantization).

Two formulas, transcribed from torch 2.13 and checked against it (tests/test_conformance_pytorch.py):

* :func:`choose_qparams` — ``MinMaxObserver`` / ``PerChannelMinMaxObserver``
  ``.calculate_qparams()`` (``torch/ao/quantization/observer.py::_calculate_qparams``
  and ``utils.py::calculate_qmin_qmax``). Python on float32 tensors: the scale is a
  float32 quotient, the zero point is rounded half to even (``torch.round``) and
  converted with ``.to(torch.int)``, whose out-of-range and NaN results are
  INT32_MIN on x86, followed by an int32 (wrapping) subtraction from ``quant_min``.
* :func:`choose_qparams_dynamic` — C++ ``ChooseQuantizationParams``
  (``ATen/native/quantized/cpu/QuantUtils.h``, identical to fbgemm's), used by dynamic
  quantization (``torch.quantize_per_tensor_dynamic``, ``torch._choose_qparams_per_tensor``,
  the dynamic Linear): float64 scale, smaller-error zero point, 6.1e-5 scale floor.

Offline arithmetic: float is allowed here; the integer runtime path never calls it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _validate as V
from ..dtypes import INT32_MAX, INT32_MIN, wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError

__all__ = ["choose_qparams", "choose_qparams_dynamic", "observer_qmin_qmax"]

_QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
             "per_channel_symmetric", "per_channel_affine_float_qparams")
# torch dtype name -> (default qmin, qmax, reduced qmin, qmax); int16/uint16/int32 ignore reduce_range
_DEFAULT_RANGES = {
    "qint8": (-128, 127, -64, 63), "int8": (-128, 127, -64, 63),
    "quint8": (0, 255, 0, 127), "uint8": (0, 255, 0, 127),
    "qint32": (-2**31, 2**31 - 1, -2**31, 2**31 - 1), "int32": (-2**31, 2**31 - 1, -2**31, 2**31 - 1),
    "int16": (-2**15, 2**15 - 1, -2**15, 2**15 - 1), "uint16": (0, 2**16 - 1, 0, 2**16 - 1),
}
SMALL_SCALE_THRESHOLD = np.float32(6.1e-5)  # QuantUtils.h: fp16's smallest normal, as float


def _name(dtype, arg: str = "dtype") -> str:
    name = dtype if isinstance(dtype, str) else str(dtype)
    name = name.replace("torch.", "")
    if name not in _DEFAULT_RANGES:
        raise QuantizationValueError(f"{arg} must be one of {sorted(_DEFAULT_RANGES)}, got {dtype!r}")
    return name


def _int_or_none(v, arg: str):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
        raise QuantizationTypeError(f"{arg} must be an integer or None, got {v!r}")
    return int(v)


def observer_qmin_qmax(dtype="quint8", *, reduce_range=False, quant_min=None, quant_max=None) -> tuple[int, int]:
    """The observer's code range (``torch.ao.quantization.utils.calculate_qmin_qmax``).

    Without a custom range: qint8 $[-128, 127]$ ($[-64, 63]$ reduced), quint8 $[0, 255]$
    ($[0, 127]$), qint32 $[-2^{31}, 2^{31}-1]$, int16, uint16 (``reduce_range`` ignored
    for the 16- and 32-bit types). A custom range is used only when *both* bounds are
    given; it must contain 0 with ``quant_min < quant_max`` (qint8: at most 256 codes,
    qint32: at most $2^{32}$), and ``reduce_range`` halves it with floor division.

    Raises:
        QuantizationValueError: An invalid custom range (torch raises ``AssertionError``).
    """
    name = _name(dtype)
    qmin, qmax = _int_or_none(quant_min, "quant_min"), _int_or_none(quant_max, "quant_max")
    reduce_range = V.as_flag(reduce_range, "reduce_range", ints=False)
    if qmin is not None and qmax is not None:
        if not qmin <= 0 <= qmax:
            raise QuantizationValueError(
                f"[quant_min, quant_max] must include 0 (user-specified range), got [{qmin}, {qmax}]")
        if qmin >= qmax:
            raise QuantizationValueError(f"quant_min must be < quant_max, got [{qmin}, {qmax}]")
        n = qmax - qmin + 1
        limit = 256 if name in ("qint8", "int8") else 2 ** 32 if name in ("qint32", "int32") else None
        if limit is not None and n > limit:
            raise QuantizationValueError(
                f"quant_max - quant_min + 1 must be <= {limit} for {name}, got {n}")
        return (qmin // 2, qmax // 2) if reduce_range else (qmin, qmax)
    lo, hi, rlo, rhi = _DEFAULT_RANGES[name]
    return (rlo, rhi) if reduce_range else (lo, hi)


def _tmax(a, b) -> np.ndarray:
    """Binary torch.max: NaN if either operand is NaN, returned as the canonical +NaN (0x7fc00000)."""
    r = np.maximum(a, b)
    return np.where(np.isnan(r), np.float32(np.nan), r).astype(np.float32)


def _tmin(a, b) -> np.ndarray:
    """Binary torch.min, NaN as in :func:`_tmax`."""
    r = np.minimum(a, b)
    return np.where(np.isnan(r), np.float32(np.nan), r).astype(np.float32)


def _to_int32(f: np.ndarray) -> np.ndarray:
    """torch ``.to(torch.int)`` on x86: NaN and out-of-range values give INT32_MIN."""
    ok = (f >= -2.0 ** 31) & (f < 2.0 ** 31)  # False for NaN
    return np.where(ok, np.where(ok, f, 0).astype(np.int64), INT32_MIN)


def choose_qparams(min_val, max_val, *, dtype="quint8", qscheme="per_tensor_affine", reduce_range=False,
                   quant_min=None, quant_max=None, eps=1.1920929e-07):
    """Scale and zero point exactly as ``MinMaxObserver``/``PerChannelMinMaxObserver.calculate_qparams()``.

    With $r_{min} = \\min(m, 0)$, $r_{max} = \\max(M, 0)$ (float32, NaN propagates):

    * affine: $S = \\max\\big(\\mathrm{f32}((r_{max} - r_{min}) / (q_{max} - q_{min})), \\varepsilon\\big)$,
      $Z = \\mathrm{clamp}(q_{min} - \\mathrm{int32}(\\mathrm{RNE}(r_{min} / S)), q_{min}, q_{max})$;
    * symmetric: $S = \\max(\\max(-r_{min}, r_{max}) / ((q_{max} - q_{min}) / 2), \\varepsilon)$
      (divisor 127.5 for qint8), $Z = 0$; quint8/uint8: 128, or
      $\\lfloor (q_{min} + q_{max}) / 2 \\rfloor$ with a custom range; uint16: 32768;
    * ``per_channel_affine_float_qparams``: $S = (M - m)/(q_{max} - q_{min})$, 1.0 where
      $S \\le \\varepsilon$; $Z = -m / S$ (float32).

    Degenerate inputs as torch: all zeros gives $S = \\varepsilon$ and $Z = q_{min}$ (affine)
    or the symmetric zero point; per-tensor ``min_val = +inf, max_val = -inf`` (an observer that saw
    nothing) and empty per-channel arrays give ``([1.0], [0])``; ``min_val > max_val``
    raises; NaN flows through to a NaN scale and an INT32_MIN-derived zero point.

    Args:
        min_val, max_val: Observed range, converted to float32 (the observers' buffers):
            scalars (or size-1 arrays) for ``per_tensor_*``, 1-D arrays of length C for
            ``per_channel_*``.
        dtype: ``"quint8"``, ``"qint8"``, ``"qint32"``, ``"uint8"``, ``"int8"``, ``"int16"``,
            ``"uint16"``, ``"int32"`` (a ``torch.dtype`` is accepted too).
        qscheme: ``"per_tensor_affine"``, ``"per_tensor_symmetric"``, ``"per_channel_affine"``,
            ``"per_channel_symmetric"`` or ``"per_channel_affine_float_qparams"``.
        reduce_range, quant_min, quant_max: The code range (:func:`observer_qmin_qmax`).
        eps: Smallest scale, stored as float32 (default: float32 machine epsilon).

    Returns:
        ``(scale, zero_point)``: float32 scale of shape ``(1,)`` per-tensor or ``(C,)``
        per-channel, and the zero point with torch's dtype: int32 for the affine schemes,
        int64 for the symmetric ones (and for the ``([1.0], [0])`` default), float32 for
        ``per_channel_affine_float_qparams``.

    Raises:
        QuantizationValueError: ``min_val > max_val`` (torch: ``AssertionError``), unknown
            dtype or qscheme, an invalid custom range, or an affine scheme with a custom
            range outside int32 (torch: ``RuntimeError`` from ``torch.clamp`` on the int32
            zero point).
        UnsupportedError: ``reduce_range`` with a symmetric quint8 scheme (torch:
            ``NotImplementedError``).
        ShapeError: Per-tensor inputs with more than one value, per-channel inputs not 1-D,
            or min/max shapes that differ.
    """
    V.as_choice(qscheme, "qscheme", _QSCHEMES)
    name = _name(dtype)
    symmetric = qscheme.endswith("symmetric")
    per_channel = qscheme.startswith("per_channel")
    if symmetric and reduce_range and name == "quint8":
        raise UnsupportedError("reduce_range is not supported with symmetric quint8 (torch: NotImplementedError)")
    custom = quant_min is not None and quant_max is not None
    qmin, qmax = observer_qmin_qmax(name, reduce_range=reduce_range, quant_min=quant_min, quant_max=quant_max)
    if qscheme in ("per_tensor_affine", "per_channel_affine") and (qmin < INT32_MIN or qmax > INT32_MAX):
        # torch.clamp(int32 zero_point, quant_min, quant_max): "value cannot be converted to type int"
        raise QuantizationValueError(
            f"an affine qscheme needs [quant_min, quant_max] inside int32 (torch.clamp on the int32 zero point), "
            f"got [{qmin}, {qmax}]")
    lo, hi = _as_range(min_val, "min_val", per_channel), _as_range(max_val, "max_val", per_channel)
    if lo.shape != hi.shape:
        raise ShapeError(f"min_val and max_val must have the same shape, got {lo.shape} and {hi.shape}")
    eps32 = np.float32(V.as_real_scalar(eps, "eps"))
    default = (np.ones(1, np.float32), np.zeros(1, np.int64))
    if lo.size == 0:  # observer never ran
        return default
    if lo.ndim == 0 and lo == np.inf and hi == -np.inf:
        return default
    if np.any(lo > hi):
        i = int(np.argmax((lo > hi).reshape(-1)))
        raise QuantizationValueError(
            f"min_val must be <= max_val, got min_val={float(lo.reshape(-1)[i])!r} > max_val={float(hi.reshape(-1)[i])!r}")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        min_neg = _tmin(lo, np.float32(0))
        max_pos = _tmax(hi, np.float32(0))
        if symmetric:
            amax = _tmax(-min_neg, max_pos)
            scale = (amax / np.float32((qmax - qmin) / 2)).astype(np.float32)
            scale = _tmax(scale, eps32)
            if name in ("quint8", "uint8"):
                zp_val = (qmin + qmax) // 2 if custom else 128
            elif name == "uint16":
                zp_val = 2 ** 15
            else:
                zp_val = 0
            zero_point = np.full(scale.shape, zp_val, np.int64)
        elif qscheme == "per_channel_affine_float_qparams":
            scale = ((hi - lo) / np.float32(qmax - qmin)).astype(np.float32)
            scale = np.where(scale > eps32, scale, np.float32(1)).astype(np.float32)
            zero_point = ((np.float32(-1) * lo) / scale).astype(np.float32)
        else:
            scale = ((max_pos - min_neg) / np.float32(qmax - qmin)).astype(np.float32)
            scale = _tmax(scale, eps32)
            q = _to_int32(np.rint((min_neg / scale).astype(np.float32)))  # RNE, as torch.round
            zero_point = wrap_int32(np.int64(qmin) - q)  # Python int - int32 tensor: int32 arithmetic
            zero_point = np.clip(zero_point, qmin, qmax).astype(np.int32)
    return scale.reshape(-1).astype(np.float32), zero_point.reshape(-1)


def _as_range(v, arg: str, per_channel: bool) -> np.ndarray:
    a = V.asarray(v, arg, kinds="fiu", what="a real number or array")
    a = a.astype(np.float32)
    if per_channel:
        if a.ndim > 1:
            raise ShapeError(f"{arg} must be 1-D (one value per channel) for a per-channel qscheme, got shape {a.shape}")
        return a.reshape(-1)
    if a.size != 1:
        raise ShapeError(f"{arg} must be a scalar for a per-tensor qscheme, got shape {a.shape}")
    return a.reshape(())


def choose_qparams_dynamic(min_val, max_val, *, qmin=0, qmax=255, preserve_sparsity=False,
                           force_scale_power_of_two=False, reduce_range=False):
    """Dynamic-quantization parameters: C++ ``ChooseQuantizationParams`` (ATen ``QuantUtils.h``).

    ``min``/``max`` are float32; widened to contain 0; ``reduce_range`` halves
    ``qmin``/``qmax`` with C division (toward zero). Then, in float64,
    $S = (M - m) / (q_{max} - q_{min})$, replaced by 0.1 if ``float(S)`` is 0 or its
    float reciprocal is infinite, optionally rounded to a power of two, and floored at
    ``SMALL_SCALE_THRESHOLD`` = 6.1e-5f (rescaling min/max by that factor in float32).
    $Z$ is $q_{min} - m/S$ or $q_{max} - M/S$, whichever has the smaller "error"
    $|q| - |r/S|$, clamped, then rounded half to even (``nearbyint``). With
    ``preserve_sparsity`` and $m < 0 < M$ the range is made symmetric and $Z$ is the midpoint.

    This is what ``torch._choose_qparams_per_tensor(x, reduce_range)`` (qmin 0, qmax 255)
    and ``torch.quantize_per_tensor_dynamic`` (quint8 0..255, qint8 -128..127) compute
    from ``x.min()`` and ``x.max()``.

    Returns:
        ``(scale, zero_point)``: a 0-d float32 array (the C++ float ``scale``) and a Python int.

    Raises:
        QuantizationValueError: ``min_val > max_val`` or NaN (torch: ``RuntimeError``),
            ``qmin >= qmax`` after reduction.
    """
    m = np.float32(V.as_real_scalar(min_val, "min_val", finite=False))
    M = np.float32(V.as_real_scalar(max_val, "max_val", finite=False))
    # C++ int32_t qmin, qmax
    qmin = V.as_int_scalar(qmin, "qmin", lo=INT32_MIN, hi=INT32_MAX)
    qmax = V.as_int_scalar(qmax, "qmax", lo=INT32_MIN, hi=INT32_MAX)
    reduce_range = V.as_flag(reduce_range, "reduce_range", ints=False)
    preserve_sparsity = V.as_flag(preserve_sparsity, "preserve_sparsity", ints=False)
    force_scale_power_of_two = V.as_flag(force_scale_power_of_two, "force_scale_power_of_two", ints=False)
    if not m <= M:
        raise QuantizationValueError(f"min_val must be <= max_val, got {float(m)!r} and {float(M)!r}")
    if reduce_range:
        qmin, qmax = int(qmin / 2), int(qmax / 2)  # C int division truncates toward zero
    if m < 0 and M > 0 and preserve_sparsity:
        sym_qmin = -((qmax - qmin) // 2 + 1)
        sym_qmax = (qmax - qmin) // 2
        max_scale = max(abs(np.float32(m / np.float32(sym_qmin))), abs(np.float32(M / np.float32(sym_qmax))))
        m = np.float32(float(max_scale) * sym_qmin)
        M = np.float32(float(max_scale) * sym_qmax)
    m = min(m, np.float32(0))
    M = max(M, np.float32(0))
    if not qmin < qmax:
        raise QuantizationValueError(f"qmin must be < qmax, got [{qmin}, {qmax}]")
    scale = (float(M) - float(m)) / (qmax - qmin)  # float64
    with np.errstate(divide="ignore", over="ignore"):
        if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
            scale = 0.1
    if force_scale_power_of_two:
        if scale < 1:
            scale = 1.0 / (1 << int(math.floor(math.log(1.0 / scale) / math.log(2))))
        else:
            scale = float(1 << int(math.ceil(math.log(scale) / math.log(2))))
    if scale < float(SMALL_SCALE_THRESHOLD):
        org_scale = np.float32(scale)
        scale = float(SMALL_SCALE_THRESHOLD)
        if m == 0:
            M = np.float32(SMALL_SCALE_THRESHOLD * np.float32(qmax - qmin))
        elif M == 0:
            m = np.float32(-SMALL_SCALE_THRESHOLD * np.float32(qmax - qmin))
        else:
            amplifier = np.float32(SMALL_SCALE_THRESHOLD / org_scale)
            m = np.float32(m * amplifier)
            M = np.float32(M * amplifier)
    zp_from_min = qmin - float(m) / scale
    zp_from_max = qmax - float(M) / scale
    err_min = abs(qmin) - abs(float(m) / scale)
    err_max = abs(qmax) - abs(float(M) / scale)
    initial = zp_from_min if err_min < err_max else zp_from_max
    if m < 0 and M > 0 and preserve_sparsity:
        initial = float(qmin + qmax) / 2
    if initial < qmin:
        zp = qmin
    elif initial > qmax:
        zp = qmax
    elif math.isnan(initial):  # nearbyint(NaN) converted to int32_t: INT32_MIN on x86
        zp = INT32_MIN
    else:
        zp = int(np.rint(initial))  # RNE, as nearbyint
    return np.asarray(scale, dtype=np.float32), zp

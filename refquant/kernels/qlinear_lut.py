r"""ONNX Runtime's table-driven contrib ops on 8-bit codes: QLinearLeakyRelu, QLinearConcat's
rescale, and QLinearSoftmax.

**Tables through MLAS QuantizeLinear** (``QlinearBuildLookupTable``): for each of the 256 codes
$v$ (indexed by the code's byte), in float32,

$$ d_v = \mathrm{fl}(S_x (v - Z_x)), \quad t_v = f(d_v), \quad
   T[v] = \mathrm{RNE}\big(\operatorname{clamp}(\mathrm{fl}(t_v / S_y),\, q_{min} - Z_y,\, q_{max} - Z_y)\big) + Z_y \tag{1} $$

(the clamp in float before ``cvtps2dq``; NaN gives $q_{min}$), with $f(d) = d$ for
QLinearConcat (an input whose scale and zero point equal the output's is copied, which (1)
reproduces) and $f(d) = d$ if $d \ge 0$ else $\mathrm{fl}(\alpha d)$ for QLinearLeakyRelu.
Offline code: float is allowed; the runtime is :func:`refquant.kernels.lut.apply_lut`.

**QLinearSoftmax** (``qlinear_softmax.cc``), per row of $D$ codes along the reduced axis. The
table holds float32 exponentials built in double:

$$ b = \max(0, \mathrm{logf}(\mathrm{fl}(\mathrm{FLT\_MAX}/D)) - 5) / S_x, \qquad
   E[i] = \mathrm{fl}\big(\exp((i - 255 + b) S_x)\big), \; i = 0..255 \tag{2} $$

stored at byte $i$ (uint8) or $i - 128$ (int8). A row with maximum $m$ reads
$e_k = E[x_k - m + 255]$ (the max aligned to the top entry), sums them **in float32, in
order** (ONNX Runtime 1.32 runs MLAS's scalar kernel; the AVX2/AVX-512 kernels in newer
sources sum in vector lanes and multiply by $1/\Sigma$: not what 1.32 does, measured), and

$$ y_k = \operatorname{sat}\big(\mathrm{RNE}(\mathrm{fl}(e_k \cdot \mathrm{fl}(\lfloor 1/S_y \rfloor / s))) + Z_y\big),
   \quad s = \textstyle\sum_k e_k \tag{3} $$

with $\lfloor 1/S_y \rfloor$ in float32, saturated to the type's range (measured on ONNX
Runtime 1.32: a quotient that rounds to 256 with $Z_y = -128$ gives 127 for int8). The source
text computes $\mathrm{fl}(\mathrm{fl}(e_k \lfloor 1/S_y \rfloor) / s)$, whose product
overflows for $D = 1$ and $\lfloor 1/S_y \rfloor > 148$; ONNX Runtime 1.32 does not overflow
there (it returns $\lfloor 1/S_y \rfloor + Z_y$), so the compiled kernel divides first.
$e_k \cdot \mathrm{fl}(\lfloor 1/S_y \rfloor / s)$, $\mathrm{fl}(e_k \mathrm{fl}(1/s)) \lfloor 1/S_y \rfloor$,
$\mathrm{fl}(e_k / s) \lfloor 1/S_y \rfloor$ and the float64 quotient all matched every measured
output, tie-heavy rows included; refquant uses the first. ``exp`` is the C library's double ``exp`` (Python's :mod:`math`), ``logf`` its float32
logarithm (called through ``ctypes``), as ONNX Runtime calls them (a double ``log`` there
mismatched ONNX Runtime on thousands of tie-heavy outputs; ``logf`` on none).

Added in 0.1.0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ._checks import zero_point_scalar
from .lut import _libm, _lut_dtype, lut_inputs

__all__ = ["mlas_quantize_table", "requantize_lut", "leaky_relu_lut", "softmax_exp_table",
           "qlinear_softmax_reference", "qlinear_softmax"]

_F32 = np.float32
_TYPES = {"int8": np.dtype(np.int8), "uint8": np.dtype(np.uint8)}


def _dtype(dtype) -> np.dtype:
    return _lut_dtype(dtype)  # int8 or uint8, or a named error


def mlas_quantize_table(t, y_scale, y_zero_point, dtype) -> np.ndarray:
    """``MlasQuantizeLinear`` of float32 values ``t``, eq. (1): divide, clamp in float, RNE, $+Z_y$. Offline."""
    dt = _dtype(dtype)
    zy = zero_point_scalar(y_zero_point, dt, "y_zero_point")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    info = np.iinfo(dt)
    with np.errstate(all="ignore"):
        v = (np.asarray(V.asarray(t, "t"), _F32) / sy).astype(_F32)
        v = np.where(np.isnan(v), _F32(info.min - zy), np.clip(v, _F32(info.min - zy), _F32(info.max - zy)))
    return (np.rint(v).astype(np.int64) + zy).astype(dt)


def requantize_lut(x_scale, x_zero_point, y_scale, y_zero_point, *, dtype="uint8") -> np.ndarray:
    """QLinearConcat's table for one input: eq. (1) with $f(d) = d$. Offline.

    Returns:
        ``(256,)`` codes of ``dtype`` indexed by the input byte.
    """
    dt = _dtype(dtype)
    return mlas_quantize_table(lut_inputs(x_scale, x_zero_point, dt), y_scale, y_zero_point, dt)


def leaky_relu_lut(x_scale, x_zero_point, y_scale, y_zero_point, alpha=0.01, *, dtype="uint8") -> np.ndarray:
    """QLinearLeakyRelu's table: eq. (1) with $f(d) = d$ for $d \\ge 0$, else $\\mathrm{fl}(\\alpha d)$. Offline.

    Args:
        x_scale, y_scale: positive float32 scalars. Zero points: integer scalars of ``dtype``.
        alpha: the float attribute (stored as float32, default 0.01).
        dtype: ``"int8"`` or ``"uint8"``.

    Returns:
        ``(256,)`` codes of ``dtype`` indexed by the input byte.
    """
    dt = _dtype(dtype)
    a = V.as_finite_f32(alpha, "alpha")
    d = lut_inputs(x_scale, x_zero_point, dt)  # (256,) float32
    with np.errstate(all="ignore"):
        t = np.where(d >= _F32(0), d, (a * d).astype(_F32)).astype(_F32)
    return mlas_quantize_table(t, y_scale, y_zero_point, dt)


def _logf(v) -> np.float32:
    """The C library's ``logf`` (float32 in, float32 out), which ONNX Runtime's table calls."""
    return _libm("log", np.asarray([v], _F32))[0]


def softmax_exp_table(x_scale, reduce_len: int, *, dtype="uint8") -> np.ndarray:
    """QLinearSoftmax's table of exponentials, eq. (2). Offline (double, C library ``exp``/``log``).

    Args:
        x_scale: positive float32 scalar.
        reduce_len: $D$, the length of each softmaxed row (>= 1).
        dtype: the codes' type (``"int8"`` stores entry $i$ at byte $i - 128$).

    Returns:
        ``(256,)`` float32, indexed by byte.
    """
    dt = _dtype(dtype)
    sx = float(V.as_scalar_scale(x_scale, "x_scale"))
    D = V.as_int_scalar(reduce_len, "reduce_len", lo=1)
    with np.errstate(over="ignore"):
        ratio = _F32(np.finfo(_F32).max) / _F32(D)  # float / size_t: float32 division
    shift = max(0.0, float(_logf(ratio)) - 5.0) / sx  # log of a float: the float overload (logf)
    table = np.empty(256, _F32)
    for i in range(256):
        try:
            e = math.exp((float(i) - 255.0 + shift) * sx)
        except OverflowError:
            e = math.inf
        with np.errstate(over="ignore"):
            table[(i - 128) & 0xFF if dt == np.int8 else i] = _F32(e)
    return table


def _check_softmax(x, table, y_scale, y_zero_point):
    if not isinstance(x, np.ndarray) or x.dtype not in _TYPES.values():
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim != 2:
        raise ShapeError(f"x must be 2-D (rows, D), got shape {x.shape}")
    t = V.asarray(table, "table", kinds=None)  # native byte order
    if t.shape != (256,) or t.dtype != _F32:
        raise ShapeError(f"table must be a (256,) float32 array, got shape {t.shape} dtype {t.dtype}")
    zy = zero_point_scalar(y_zero_point, x.dtype, "y_zero_point")
    sy = V.as_scalar_scale(y_scale, "y_scale")
    with np.errstate(divide="ignore"):
        inv = _F32(np.floor(_F32(1.0) / sy))  # std::floor(1.0F / y_scale), float32
    if not np.isfinite(inv):
        raise QuantizationValueError(f"y_scale must give a finite 1/y_scale in float32, got {float(sy)!r}")
    return t, inv, zy


def _sat(q, lo, hi):
    """RNE quotient -> codes: NaN and values beyond the range saturate to ``hi`` / ``lo`` (measured)."""
    return np.where(np.isnan(q), hi, np.clip(q, lo, hi))


def qlinear_softmax_reference(x, table, y_scale, y_zero_point) -> np.ndarray:
    """QLinearSoftmax over the last axis of 2-D codes, eq. (3): NumPy spec.

    Args:
        x: (rows, D) int8 or uint8 codes.
        table: :func:`softmax_exp_table` for ``x``'s scale, $D$ and dtype.
        y_scale: positive float32 scalar. y_zero_point: integer scalar of ``x``'s type.

    Returns:
        Codes of ``x``'s shape and dtype.
    """
    t, inv, zy = _check_softmax(x, table, y_scale, y_zero_point)
    info = np.iinfo(x.dtype)
    out = np.empty(x.shape, x.dtype)
    for r in range(x.shape[0]):
        row = x[r].astype(np.int64)
        byte = (row - row.max() + (127 if x.dtype == np.int8 else 255)) & 0xFF  # the max aligned to the top entry
        e = t[byte]  # (D,) float32
        s = _F32(0.0)
        for v in e:  # float32, in order
            s = _F32(s + v)
        with np.errstate(all="ignore"):
            q = np.rint((e * _F32(inv / s)).astype(_F32)).astype(np.float64) + zy
        out[r] = _sat(q, info.min, info.max).astype(np.int64).astype(x.dtype)
    return out


@numba.njit(cache=True)
def _softmax_kernel(idx, table, inv, zy, lo, hi, top):
    rows, D = idx.shape
    out = np.empty((rows, D), np.int64)
    for r in range(rows):
        m = np.int64(-1000)
        for k in range(D):
            if np.int64(idx[r, k]) > m:
                m = np.int64(idx[r, k])
        s = np.float32(0.0)
        for k in range(D):
            s = np.float32(s + table[(np.int64(idx[r, k]) - m + top) & 0xFF])
        for k in range(D):
            e = table[(np.int64(idx[r, k]) - m + top) & 0xFF]
            q = np.float32(e * np.float32(inv / s))
            if np.isnan(q):
                out[r, k] = hi
                continue
            v = np.rint(np.float64(q)) + zy
            out[r, k] = lo if v < lo else (hi if v > hi else np.int64(v))
    return out


def qlinear_softmax(x, table, y_scale, y_zero_point) -> np.ndarray:
    """QLinearSoftmax, eq. (3): the Numba kernel (equal to :func:`qlinear_softmax_reference`)."""
    t, inv, zy = _check_softmax(x, table, y_scale, y_zero_point)
    info = np.iinfo(x.dtype)
    top = 127 if x.dtype == np.int8 else 255
    out = _softmax_kernel(np.ascontiguousarray(x).astype(np.int64), np.ascontiguousarray(t), _F32(inv), np.int64(zy),
                          np.int64(info.min), np.int64(info.max), np.int64(top))
    return out.astype(x.dtype)

r"""ONNX Runtime's QLinearAdd and QLinearMul (com.microsoft): float32 arithmetic on quantized codes.

Both ops run in float32 inside MLAS; the rounding sequence is the spec here, so every float
operation is written out. With $r_a = \mathrm{fl}(S_a/S_y)$, $r_b = \mathrm{fl}(S_b/S_y)$:

**QLinearAdd** (MLAS ``qladd_avx2.cpp``, the kernel ORT's x86-64 build selects on AVX2 machines;
GCC contracts ``r_a Z_a + r_b Z_b`` into an FMA):

$$ F = \mathrm{fl}\big(Z_y - \mathrm{fma}(r_a, Z_a, \mathrm{fl}(r_b Z_b))\big), \qquad
   y = \mathrm{sat}\big(\mathrm{RNE}(\mathrm{fma}(a, r_a, \mathrm{fma}(b, r_b, F)))\big) \tag{1} $$

When one input is a scalar over ORT's innermost broadcast span (``InputBroadcaster``,
:func:`float_add_mode`), MLAS runs with the *other* input as its ``A``: $F$ is formed with the roles
swapped, then $F' = \mathrm{fma}(s, r_s, F)$ per span and $y = \mathrm{fma}(x, r_x, F')$, a different
rounding sequence reproduced here from the shapes. ``sat`` is ``cvtps2dq`` (RNE; beyond int32 it
returns INT32_MIN, which then saturates to $q_{min}$) and the 16-/8-bit saturating packs.
``fused=False`` follows the SSE2 kernel of ``qladd.cpp`` (``(F + a r_a) + b r_b``, no FMA): read in
source, **not run** here.

**QLinearMul** (MLAS ``qlmul.cpp``, SSE2 intrinsics, no FMA):

$$ y = \mathrm{sat}\big(\mathrm{RNE}(\mathrm{fl}(\mathrm{fl}(p\,m) + Z_y))\big), \quad
   p = (a - Z_a)(b - Z_b), \; m = \mathrm{fl}(\mathrm{fl}(S_a S_b)/S_y) \tag{2} $$

the integer product is exact and $|p| < 2^{24}$, so ``float(p)`` is exact; the zero point is added
**before** rounding. Both measured bit-exact on ONNX Runtime 1.32, x86-64 AVX2
(``tests/test_conformance_kernels_misc.py``). Each op has a NumPy ``*_reference`` and a Numba twin.

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError
from ..quantization import fma_f32
from .elementwise import _flat, _operands, _scales, _zero_points

__all__ = ["float_add_mode", "float_add_reference", "float_add", "float_mul_reference", "float_mul"]

_F32 = np.float32


def _shape(v, name: str) -> tuple:
    """A shape: a sequence of integers >= 0 (a tuple, list or 1-D integer array)."""
    try:
        items = tuple(v)
    except TypeError:
        raise QuantizationTypeError(f"{name} must be a shape (a sequence of ints >= 0), got {V.describe(v)}") from None
    return tuple(V.as_int_scalar(d, name, lo=0) for d in items)


def float_add_mode(a_shape, b_shape) -> str:
    """Which MLAS kernel ORT's broadcaster calls: ``"vector"``, ``"a_scalar"`` or ``"b_scalar"``.

    ORT's ``Broadcaster`` walks the aligned shapes from the innermost dimension; at the first
    dimension whose output size exceeds 1, an input of size 1 there is a scalar over each
    span. If no dimension exceeds 1, input ``a`` counts as the scalar.
    """
    a_shape, b_shape = _shape(a_shape, "a_shape"), _shape(b_shape, "b_shape")
    nd = max(len(a_shape), len(b_shape))
    sa = (1,) * (nd - len(a_shape)) + a_shape
    sb = (1,) * (nd - len(b_shape)) + b_shape
    for da, db in zip(reversed(sa), reversed(sb)):
        if max(da, db) > 1:
            return "a_scalar" if da == 1 else ("b_scalar" if db == 1 else "vector")
    return "a_scalar"


def _float_add_constants(sa, za, sb, zb, sy, zy, fused):
    ra, rb = _F32(sa / sy), _F32(sb / sy)
    if fused:
        fixed = _F32(_F32(zy) - fma_f32(np.asarray(ra), np.asarray(_F32(za)), _F32(rb * _F32(zb))))
    else:
        fixed = _F32(_F32(zy) - _F32(_F32(ra * _F32(za)) + _F32(rb * _F32(zb))))
    return ra, rb, fixed


def _saturate_cvt(y32, lo, hi):
    """cvtps2dq (RNE; NaN / out of int32 -> INT32_MIN), then pack with 16- and 8-bit saturation."""
    y = y32.astype(np.float64)
    big = ~(np.abs(y) < 2.0 ** 31)  # also NaN
    r = np.where(big, -(2.0 ** 31), np.rint(np.where(big, 0.0, y)))  # RNE
    return np.clip(r, lo, hi).astype(np.int64)


def float_add_reference(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *,
                        fused=True):
    """ONNX Runtime QLinearAdd (com.microsoft, int8/uint8), eq. (3): NumPy spec.

    Args:
        a, b: int8 or uint8 arrays of one dtype (broadcast as NumPy).
        a_scale, b_scale, y_scale: Positive scalars (float32).
        a_zero_point, b_zero_point, y_zero_point: Integer scalars.
        fused: ``True``: the AVX2/FMA kernel (measured); ``False``: the SSE2 kernel (read, not run).

    Returns:
        Array of ``a.dtype`` and the broadcast shape.
    """
    a, b, shape, info = _operands(a, b)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    sa, sb, sy = _scales(a_scale, b_scale, y_scale)
    fused = V.as_flag(fused, "fused")
    mode = float_add_mode(a.shape, b.shape)
    x, s = np.broadcast_to(a, shape).astype(_F32), np.broadcast_to(b, shape).astype(_F32)
    if mode == "a_scalar":  # MLAS is called with b as the span ("A") and a as the scalar ("B")
        x, s = s, x
        rx, rs, fixed = _float_add_constants(sb, zb, sa, za, sy, zy, fused)
    else:
        rx, rs, fixed = _float_add_constants(sa, za, sb, zb, sy, zy, fused)
    fma = (lambda p, q, r: fma_f32(p, np.broadcast_to(q, p.shape), r)) if fused else \
        (lambda p, q, r: (_F32(p * q) + r).astype(_F32))
    if mode == "vector" and fused:
        y = fma(x, rx, fma(s, rs, np.broadcast_to(fixed, shape)))  # b first, then a
    elif mode == "vector":
        y = ((fixed + (x * rx).astype(_F32)).astype(_F32) + (s * rs).astype(_F32)).astype(_F32)
    else:
        y = fma(x, rx, fma(s, rs, np.broadcast_to(fixed, shape)))  # F' = F + s r_s per span, then x
    return _saturate_cvt(np.asarray(y, _F32), info.min, info.max).astype(a.dtype)


@numba.njit(cache=True)
def _fma32(p, q, r):
    """float32 fma(p, q, r): one rounding of the exact p*q + r (p*q is exact in float64)."""
    prod = np.float64(p) * np.float64(q)
    c = np.float64(r)
    s = prod + c
    bp = s - c
    err = (prod - bp) + (c - (s - bp))  # TwoSum: s + err == prod + c exactly
    res = np.float32(s)
    if err == 0.0 or not np.isfinite(s):
        return res
    r64 = np.float64(res)
    other = np.nextafter(res, np.float32(np.inf)) if s > r64 else np.nextafter(res, np.float32(-np.inf))
    if s == r64 or not np.isfinite(other):
        return res
    if s == (r64 + np.float64(other)) / 2.0:  # s on a float32 midpoint: err decides
        if (err > 0.0) == (np.float64(other) > r64):
            return np.float32(other)
    return res


@numba.njit(cache=True)
def _float_add_kernel(x, s, rx, rs, fixed, lo, hi, fused, vector):
    out = np.empty(x.shape[0], np.int64)
    for i in range(x.shape[0]):
        xf, sf = np.float32(x[i]), np.float32(s[i])
        if fused:
            y = _fma32(xf, rx, _fma32(sf, rs, fixed))
        elif vector:
            y = np.float32(np.float32(fixed + np.float32(xf * rx)) + np.float32(sf * rs))
        else:
            y = np.float32(np.float32(fixed + np.float32(sf * rs)) + np.float32(xf * rx))
        if not abs(np.float64(y)) < 2147483648.0:
            r = np.int64(-2147483648)  # cvtps2dq "integer indefinite"
        else:
            r = np.int64(np.rint(y))  # RNE
        out[i] = min(max(r, lo), hi)
    return out


def float_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, fused=True):
    """ONNX Runtime QLinearAdd, eq. (3): the Numba kernel (equal to :func:`float_add_reference`)."""
    a, b, shape, info = _operands(a, b)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    sa, sb, sy = _scales(a_scale, b_scale, y_scale)
    fused = V.as_flag(fused, "fused")
    mode = float_add_mode(a.shape, b.shape)
    fa, fb = _flat(a, b, shape)
    if mode == "a_scalar":
        fa, fb = fb, fa
        rx, rs, fixed = _float_add_constants(sb, zb, sa, za, sy, zy, fused)
    else:
        rx, rs, fixed = _float_add_constants(sa, za, sb, zb, sy, zy, fused)
    out = _float_add_kernel(fa, fb, rx, rs, _F32(fixed), info.min, info.max, bool(fused), mode == "vector")
    return out.astype(a.dtype).reshape(shape)


def _float_mul_setup(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    a, b, shape, info = _operands(a, b)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    sa, sb, sy = _scales(a_scale, b_scale, y_scale)
    with np.errstate(over="ignore", under="ignore"):
        m = _F32(_F32(sa * sb) / sy)  # ScaleA * ScaleB / ScaleC in float
    return a, b, shape, info, za, zb, zy, m


def float_mul_reference(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """ONNX Runtime QLinearMul (com.microsoft, int8/uint8, MLAS ``qlmul.cpp`` SSE2): NumPy spec.

    $y = \\mathrm{sat}(\\mathrm{RNE}(\\mathrm{fl}(\\mathrm{fl}(p \\cdot m) + Z_y)))$ with the exact
    int product $p = (a - Z_a)(b - Z_b)$ ($|p| < 2^{24}$, so ``float(p)`` is exact) and
    $m = \\mathrm{fl}(\\mathrm{fl}(S_a S_b) / S_y)$: the zero point is added **before** rounding,
    in float. Measured bit-exact on ONNX Runtime 1.32 (no FMA contraction here).
    """
    a, b, shape, info, za, zb, zy, m = _float_mul_setup(a, a_scale, a_zero_point, b, b_scale, b_zero_point,
                                                        y_scale, y_zero_point)
    p = ((a.astype(np.int64) - za) * (b.astype(np.int64) - zb)).astype(_F32)
    y = ((p * m).astype(_F32) + _F32(zy)).astype(_F32)
    return np.broadcast_to(_saturate_cvt(y, info.min, info.max), shape).astype(a.dtype)


@numba.njit(cache=True)
def _float_mul_kernel(a, b, za, zb, zy, m, lo, hi):
    out = np.empty(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        p = np.float32((np.int64(a[i]) - za) * (np.int64(b[i]) - zb))
        y = np.float32(np.float32(p * m) + np.float32(zy))
        r = np.int64(-2147483648) if not abs(np.float64(y)) < 2147483648.0 else np.int64(np.rint(y))  # RNE
        out[i] = min(max(r, lo), hi)
    return out


def float_mul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    """ONNX Runtime QLinearMul: the Numba kernel (equal to :func:`float_mul_reference`)."""
    a, b, shape, info, za, zb, zy, m = _float_mul_setup(a, a_scale, a_zero_point, b, b_scale, b_zero_point,
                                                        y_scale, y_zero_point)
    fa, fb = _flat(a, b, shape)
    return _float_mul_kernel(fa, fb, za, zb, zy, m, info.min, info.max).astype(a.dtype).reshape(shape)

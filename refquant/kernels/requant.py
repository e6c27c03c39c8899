r"""Requantization: int32 accumulators to int8/uint8/int16 outputs, in every backend's arithmetic.

An integer layer's accumulator $\mathrm{acc}$ (eq. (1) of :mod:`.gemm`) is rescaled by the real
multiplier $M_c = S_x S_w[c] / S_y$ (:mod:`.multiplier`), shifted by the output zero point $Z_y$
and clamped:

$$ y = \operatorname{clamp}\big(\operatorname{round}(\mathrm{acc} \cdot M_c) + Z_y,\; q_{min},\; q_{max}\big) \tag{1} $$

$q_{min}, q_{max}$ are the output format's range, or a fused activation's
(:func:`refquant.kernels.multiplier.activation_range`). Backends differ in how $\mathrm{acc}\cdot M$
and the rounding are computed (``mode``):

| ``mode`` | $\operatorname{round}(\mathrm{acc} \cdot M)$ computed as | backends |
|---|---|---|
| ``fixed_double`` | ``RDBPOT(SRDHM(acc << l, q), r)`` (RHU, then RHAZ) | TFLite reference Conv/DepthwiseConv/Add/Mul, gemmlowp |
| ``fixed_single`` | ``(acc*q + 2^(30-shift)) >> (31-shift)`` (one RHU) | ``TFLITE_SINGLE_ROUNDING`` builds |
| ``fixed_double_up`` / ``fixed_ruy_avx2`` | SRDHM then a half-up shift (RHU, RHU) | TFLite optimized FC/Conv on x86 (ruy AVX2) |
| ``fixed_int64_reduced16`` | 16-bit-rounded multiplier, int64 acc | TFLite 16x8 kernels |
| ``float32_rne`` | ``rint(float(acc) * m)`` in float32; ``float(acc)`` rounds when $|acc| > 2^{24}$ | ONNX Runtime, XNNPACK, fbgemm, qnnpack |
| ``float64_rhaz`` | ``std::round(double(acc) * m)``, cast to int32 | TFLite reference FullyConnected |
| ``float64_rne`` | ``rint(double(acc) * m + Z_y)``: $Z_y$ added **before** rounding | ``onnx.reference`` QLinearMatMul/QLinearConv |
| ``exact_rne`` | the exact real $\mathrm{acc} \cdot M$, ties to even | the ONNX specification |

(See :mod:`refquant.fixedpoint` for ``q``, ``shift``, SRDHM and RDBPOT.) Rounding of the fixed
modes is integer; the float modes use one IEEE rounding per C operation. Integer corner cases
follow the compiled C: in the fixed modes $r + Z_y$ is an int32 addition that wraps; in
``float64_rhaz`` a value past int32 becomes INT32_MIN (x86 ``cvttsd2si``) before $Z_y$ is added.

**Per-channel multipliers** (and zero points) are 1-D arrays of length $C$ broadcast along
``axis`` of ``acc`` (default the last axis: ``(..., C)``, the NHWC / (M, N) layout); pass
``axis=1`` for NCHW. :func:`requantize_reference` is the NumPy spec; :func:`requantize` is the
Numba kernel, equal bit for bit (``tests/test_kernels_requant.py``).

Added in 0.1.0.
"""

from __future__ import annotations

from fractions import Fraction

import numba
import numpy as np

from .. import fixedpoint as fp
from ..dtypes import get_format
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..fixedpoint import (
    mbqm_double_scalar,
    mbqm_double_up_scalar,
    mbqm_int64_reduced16_scalar,
    mbqm_ruy_avx2_scalar,
    mbqm_single_scalar,
)
from ..rounding import round_half_away_from_zero
from ._checks import check_on_overflow, finish_int64
from .multiplier import REQUANT_MODES

__all__ = [
    "requantize_reference",
    "requantize",
    "add_bias",
    "float_bias_accumulator",
    "add_zero_point_sat16",
]

_VARIANT = {"fixed_double": "double", "fixed_single": "single", "fixed_double_up": "double_up",
            "fixed_ruy_avx2": "ruy_avx2", "fixed_int64_reduced16": "int64_reduced16"}
_VARIANT_CODE = {"double": 0, "single": 1, "double_up": 2, "ruy_avx2": 3, "int64_reduced16": 4}
_OUT_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32)
_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1
_SAT = 2 ** 38  # |acc * M| beyond this saturates any 8/16-bit output (exact_rne fast path)


# --------------------------------------------------------------------------- validation


def _int_scalar(v, name: str) -> int:
    arr = np.asarray(v)
    if arr.shape != () or arr.dtype.kind not in "iu" or isinstance(v, (bool, np.bool_)):
        raise QuantizationTypeError(f"{name} must be an integer scalar, got {v!r}")
    return int(arr)


def _per_channel(v, name: str, kind: str, n_channels):
    """Return (array, C) with C = 1 for a scalar; ``kind``: 'int', 'float32', 'float64', 'exact'."""
    if kind == "exact":
        src = np.asarray(v, dtype=object)
        arr = np.empty(src.shape, dtype=object)
        for idx in np.ndindex(src.shape):
            x = src[idx]
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (Fraction, int, float, np.floating, np.integer)):
                raise QuantizationTypeError(f"{name} must hold Fractions or reals, got {x!r}")
            if isinstance(x, (float, np.floating)) and not np.isfinite(x):
                raise QuantizationValueError(f"{name} must be finite, got {x!r}")
            fx = x if isinstance(x, Fraction) else Fraction(x.item() if isinstance(x, np.generic) else x)
            if fx <= 0:
                raise QuantizationValueError(f"{name} must be > 0, got {fx}")
            arr[idx] = fx
    else:
        arr = np.asarray(v)
        if kind == "int":
            if arr.dtype.kind not in "iu":
                raise QuantizationTypeError(f"{name} must be an integer (array), got dtype {arr.dtype}")
            arr = arr.astype(np.int64)
        else:
            if arr.dtype.kind not in "fiu":
                raise QuantizationTypeError(f"{name} must be a real (array), got dtype {arr.dtype}")
            arr = arr.astype(np.float32 if kind == "float32" else np.float64)
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                bad = arr[~(np.isfinite(arr) & (arr > 0))].ravel()[0]
                raise QuantizationValueError(f"{name} must be finite and > 0, got {bad!r}")
    if arr.ndim > 1:
        raise ShapeError(f"{name} must be a scalar or 1-D (per channel), got shape {arr.shape}")
    if arr.ndim == 1 and arr.size == 0:
        raise ShapeError(f"{name} must not be empty")
    c = 1 if arr.ndim == 0 else arr.shape[0]
    if n_channels is not None and c not in (1, n_channels):
        raise ShapeError(f"{name} must have 1 or {n_channels} elements (acc.shape[axis]), got {c}")
    return arr, c


def _prepare(acc, multiplier, output_zero_point, qmin, qmax, mode, shift, axis, dtype, zp_before):
    """Validate everything; return acc as (M, C), per-channel (C,) parameters and a restorer."""
    if mode not in REQUANT_MODES:
        raise QuantizationValueError(f"mode must be one of {tuple(REQUANT_MODES)}, got {mode!r}")
    kind = REQUANT_MODES[mode]
    a = np.asarray(acc)
    float_ok = mode == "float32_rne" and a.dtype == np.float32
    if a.dtype.kind not in "iu" and not float_ok:
        raise QuantizationTypeError(
            f"acc must be an integer array{' (or float32 for float32_rne)' if mode == 'float32_rne' else ''}, "
            f"got dtype {a.dtype}")
    lo_acc, hi_acc = ((-(2 ** 47), 2 ** 47 - 1) if mode == "fixed_int64_reduced16" else (_I32_MIN, _I32_MAX))
    if a.dtype.kind in "iu" and a.size and (a.min() < lo_acc or a.max() > hi_acc):
        bad = a[(a < lo_acc) | (a > hi_acc)].ravel()[0]
        raise QuantizationValueError(f"acc must be in [{lo_acc}, {hi_acc}] for mode {mode!r}, got {int(bad)}")
    qmin, qmax = _int_scalar(qmin, "qmin"), _int_scalar(qmax, "qmax")
    if qmin > qmax:
        raise QuantizationValueError(f"qmin must be <= qmax, got qmin={qmin}, qmax={qmax}")
    out_dtype = _resolve_dtype(dtype, qmin, qmax)
    if zp_before is not None and mode != "float64_rne":
        raise QuantizationValueError(
            f"zero_point_before_round applies to mode 'float64_rne' only, got it for {mode!r}")
    params = [multiplier, output_zero_point] + ([shift] if kind == "fixed" else [])
    if kind != "fixed" and shift is not None:
        raise QuantizationValueError(f"shift is only used by the fixed_* modes, got shift for {mode!r}")
    if kind == "fixed" and shift is None:
        raise QuantizationValueError(f"mode {mode!r} needs shift (TFLite convention: + left, - right)")
    per_channel = any(np.ndim(p) == 1 and np.size(p) > 1 for p in params if not isinstance(p, Fraction))
    n_c = None
    if per_channel:
        if a.ndim == 0:
            raise ShapeError("acc must have a channel axis for per-channel parameters, got a 0-d acc")
        if not -a.ndim <= axis < a.ndim:
            raise QuantizationValueError(f"axis must be in [{-a.ndim}, {a.ndim - 1}], got {axis}")
        n_c = a.shape[axis]
    m, _ = _per_channel(multiplier, "multiplier", {"fixed": "int"}.get(kind, kind), n_c)
    zp, _ = _per_channel(output_zero_point, "output_zero_point", "int", n_c)
    info = np.iinfo(out_dtype)
    if zp.size and (zp.min() < info.min or zp.max() > info.max):
        raise QuantizationValueError(
            f"output_zero_point must be in [{info.min}, {info.max}] for {np.dtype(out_dtype).name}, "
            f"got {int(zp.ravel()[0] if zp.ndim else zp)}")
    sh = None
    if kind == "fixed":
        (q_lo, q_hi), (s_lo, s_hi), _x = fp.MBQM_VARIANTS[_VARIANT[mode]]
        sh, _ = _per_channel(shift, "shift", "int", n_c)
        for arr, name, lo, hi in ((m, "multiplier", q_lo, q_hi), (sh, "shift", s_lo, s_hi)):
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise QuantizationValueError(f"{name} must be in [{lo}, {hi}] for mode {mode!r}, got "
                                             f"{int(arr[(arr < lo) | (arr > hi)].ravel()[0])}")
    c = n_c or 1
    if per_channel:
        moved = np.moveaxis(a, axis, -1)
        a2 = moved.reshape(-1, c)
    else:
        moved, a2 = a, a.reshape(-1, 1)

    def restore(out2d):
        out = out2d.reshape(moved.shape)
        return np.moveaxis(out, -1, axis) if per_channel else out

    def full(x):
        return np.broadcast_to(x.reshape(-1) if x.ndim else x.reshape(1), (c,)).copy()

    return dict(acc=a2, m=full(m), zp=full(zp), shift=None if sh is None else full(sh), qmin=qmin, qmax=qmax,
                dtype=out_dtype, restore=restore, kind=kind)


def _resolve_dtype(dtype, qmin: int, qmax: int):
    if dtype is None:
        for dt in _OUT_DTYPES:
            info = np.iinfo(dt)
            if info.min <= qmin and qmax <= info.max:
                return dt
        raise QuantizationValueError(f"[qmin, qmax] = [{qmin}, {qmax}] does not fit int32")
    fmt = get_format(dtype, name="dtype")
    if fmt.bits < 8:
        raise QuantizationValueError(f"dtype must be an 8/16/32-bit format, got {fmt.name}")
    if qmin < fmt.qmin or qmax > fmt.qmax:
        raise QuantizationValueError(
            f"[qmin, qmax] must lie in [{fmt.qmin}, {fmt.qmax}] for {fmt.name}, got [{qmin}, {qmax}]")
    return fmt.dtype.type


def _exact_parts(m: np.ndarray):
    """Fractions -> (N, D, E, M64) with M = N * 2^E / D, N and D odd (Numba kernel's form)."""
    n, d, e = (np.empty(m.shape, np.int64) for _ in range(3))
    m64 = np.empty(m.shape, np.float64)
    for i, fr in enumerate(m):
        num, den, ex = fr.numerator, fr.denominator, 0
        while num % 2 == 0:
            num //= 2
            ex += 1
        while den % 2 == 0:
            den //= 2
            ex -= 1
        if num >= 2 ** 48 or den >= 2 ** 24:
            raise UnsupportedError(
                f"multiplier {fr} has an odd numerator >= 2^48 or denominator >= 2^24; the Numba kernel handles "
                "products of float32 scales only, use requantize_reference")
        n[i], d[i], e[i], m64[i] = num, den, ex, float(fr)
    return n, d, e, m64


# --------------------------------------------------------------------------- NumPy reference


def requantize_reference(acc, multiplier, output_zero_point, qmin, qmax, *, mode, shift=None, axis=-1,
                         dtype=None, zero_point_before_round=None):
    """Requantize accumulators, eq. (1), in plain NumPy (the spec of :func:`requantize`).

    Args:
        acc: Integer array of int32 values (int64 values in $[-2^{47}, 2^{47})$ for
            ``fixed_int64_reduced16``). For ``float32_rne`` a float32 array is also accepted
            and used as the already-converted value (fbgemm's float-bias path,
            :func:`float_bias_accumulator`).
        multiplier: Scalar or 1-D ``(C,)``: the int32 ``quantized_multiplier`` for ``fixed_*``
            modes; a float (stored as float32) for ``float32_rne``; a float (float64) for the
            ``float64_*`` modes; a :class:`~fractions.Fraction` or float (its exact value) for
            ``exact_rne``. :func:`refquant.kernels.multiplier.requant_params` derives them.
        output_zero_point: $Z_y$, integer scalar or ``(C,)``.
        qmin, qmax: Output clamp (format or fused-activation range).
        mode: One of the modes in the module docstring.
        shift: ``fixed_*`` modes only: int scalar or ``(C,)``, + left / - right.
        axis: The channel axis of ``acc`` for 1-D parameters (default -1).
        dtype: Output dtype (name or NumPy dtype); default: the first of int8, uint8, int16,
            uint16, int32 whose range holds ``[qmin, qmax]``.
        zero_point_before_round: ``float64_rne`` only: add $Z_y$ to the float before rounding
            (``True``, the default, as ``onnx.reference``) or to the integer after (``False``).

    Returns:
        Array of ``acc``'s shape and ``dtype``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: bad input (named).
    """
    p = _prepare(acc, multiplier, output_zero_point, qmin, qmax, mode, shift, axis, dtype, zero_point_before_round)
    a, m, zp = p["acc"], p["m"], p["zp"]
    lo, hi = p["qmin"], p["qmax"]
    if p["kind"] == "fixed":
        r = fp.multiply_by_quantized_multiplier(a.astype(np.int64), m, p["shift"], variant=_VARIANT[mode])
        y = fp._wrap32(np.asarray(r, np.int64) + zp)  # int32 `acc_scaled += output_offset`
    elif mode == "float32_rne":
        v = (a.astype(np.float32) * m).astype(np.float64)  # (M, C): float32 ops, one rounding each
        with np.errstate(invalid="ignore"):  # clamp in float (MLAS/XNNPACK order; same result after)
            v = np.clip(v, (lo - zp).astype(np.float64), (hi - zp).astype(np.float64))
        y = np.where(np.isnan(v), lo - zp, np.rint(v)).astype(np.int64) + zp  # RNE; NaN (float acc) -> qmin
    elif mode == "float64_rhaz":
        r = round_half_away_from_zero(a.astype(np.float64) * m)  # std::round(double)
        r = np.where(np.abs(r) >= 2.0 ** 31, _I32_MIN, r).astype(np.int64)  # (int32_t) of a huge double
        y = fp._wrap32(r + zp)
    elif mode == "float64_rne":
        v = a.astype(np.float64) * m  # int32 * float32 scale -> float64 in NumPy
        if zero_point_before_round is None or zero_point_before_round:
            y = np.rint(np.clip(v + zp, lo, hi))  # RNE, as onnx.reference: D + yz, then rint
        else:
            y = np.clip(np.rint(v), lo - zp, hi - zp) + zp  # RNE
    else:  # exact_rne: Python's round() of a Fraction is exact round-half-to-even
        y = np.array([[round(Fraction(int(a[i, c])) * m[c]) for c in range(a.shape[1])]
                      for i in range(a.shape[0])], dtype=object).reshape(a.shape)
        y = np.clip(y, lo - zp, hi - zp).astype(np.int64) + zp
    return p["restore"](np.clip(np.asarray(y, np.int64), lo, hi).astype(p["dtype"]))


# --------------------------------------------------------------------------- Numba kernels


@numba.njit(cache=True)
def _fixed_kernel(acc, q, shift, zp, lo, hi, code):
    out = np.empty(acc.shape, np.int64)  # (M, C)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            x = acc[i, c]
            if code == 0:
                r = mbqm_double_scalar(x, q[c], shift[c])
            elif code == 1:
                r = mbqm_single_scalar(x, q[c], shift[c])
            elif code == 2:
                r = mbqm_double_up_scalar(x, q[c], shift[c])
            elif code == 3:
                r = mbqm_ruy_avx2_scalar(x, q[c], shift[c])
            else:
                r = mbqm_int64_reduced16_scalar(x, q[c], shift[c])
            y = np.int64(r) + zp[c]
            y = ((y + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)  # int32 add wraps
            out[i, c] = min(max(y, lo), hi)
    return out


@numba.njit(cache=True)
def _float32_kernel(acc, m, zp, lo, hi):
    out = np.empty(acc.shape, np.int64)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            v = np.float32(acc[i, c]) * m[c]  # float32 product, one rounding
            if np.isnan(v):
                out[i, c] = lo
                continue
            v = min(max(v, np.float32(lo - zp[c])), np.float32(hi - zp[c]))
            out[i, c] = np.int64(np.rint(v)) + zp[c]  # RNE
    return out


@numba.njit(cache=True)
def _rhaz64(v):
    t = np.trunc(v)
    if abs(v - t) >= 0.5:  # exact: v - t is exact in float64
        return t + (1.0 if v > 0 else -1.0)
    return t


@numba.njit(cache=True)
def _float64_kernel(acc, m, zp, lo, hi, rhaz, zp_before):
    out = np.empty(acc.shape, np.int64)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            v = np.float64(acc[i, c]) * m[c]
            if rhaz:
                r = _rhaz64(v)
                ri = np.int64(-2147483648) if abs(r) >= 2147483648.0 else np.int64(r)
                y = ri + zp[c]
                y = ((y + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)
            elif zp_before:
                w = min(max(v + np.float64(zp[c]), np.float64(lo)), np.float64(hi))
                y = np.int64(np.rint(w))  # RNE
            else:
                w = min(max(np.rint(v), np.float64(lo - zp[c])), np.float64(hi - zp[c]))
                y = np.int64(w) + zp[c]
            out[i, c] = min(max(y, lo), hi)
    return out


@numba.njit(cache=True)
def _exact_rne_scalar(acc, n, d, e, m64):
    """RNE(acc * n * 2^e / d) exactly (n < 2^48, d < 2^24 odd); saturates at +-2^38."""
    if acc == 0:
        return np.int64(0)
    a = np.int64(abs(acc))
    sign = np.int64(1) if acc > 0 else np.int64(-1)
    if np.float64(a) * m64 > 274877906944.0:  # 2^38: saturated whatever the rounding
        return sign * np.int64(274877906944)
    up = False
    tie = False
    if e >= 0:
        x = (a * n) << e  # < 2^63 by the saturation test
        q0 = x // d
        rem2 = np.int64(2) * (x - q0 * d)
        up = rem2 > d
        tie = rem2 == d
    else:
        k = -e
        n1 = n >> np.int64(32)
        n0 = n & np.int64(0xFFFFFFFF)
        low = a * n0  # < 2^63
        p_hi = a * n1 + (low >> np.int64(32))  # P = p_hi * 2^32 + p_lo, p_hi < 2^49
        p_lo = low & np.int64(0xFFFFFFFF)
        if k < 32:
            s = (p_hi << (32 - k)) | (p_lo >> k)
            r_k = p_lo & ((np.int64(1) << k) - np.int64(1))
            half = np.int64(1) << (k - 1)
            cmp = 1 if r_k > half else (0 if r_k == half else -1)
            nonzero = r_k != 0
        elif k == 32:
            s = p_hi
            cmp = 1 if p_lo > 2147483648 else (0 if p_lo == 2147483648 else -1)
            nonzero = p_lo != 0
        elif k - 33 >= 62:
            s = np.int64(0)
            cmp = -1
            nonzero = (p_hi | p_lo) != 0
        else:
            s = p_hi >> (k - 32)
            bit = (p_hi >> (k - 33)) & np.int64(1)
            below = ((p_hi & ((np.int64(1) << (k - 33)) - np.int64(1))) | p_lo) != 0
            cmp = -1 if bit == 0 else (1 if below else 0)
            nonzero = bit != 0 or below
        q0 = s // d
        u = np.int64(2) * (s - q0 * d) - d
        if u > 0:
            up = True
        elif u == 0:
            up = nonzero
            tie = not nonzero
        elif u == -1:
            up = cmp > 0
            tie = cmp == 0
    if tie:
        up = (q0 & np.int64(1)) == 1
    return sign * (q0 + (np.int64(1) if up else np.int64(0)))


@numba.njit(cache=True)
def _exact_kernel(acc, n, d, e, m64, zp, lo, hi):
    out = np.empty(acc.shape, np.int64)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            r = _exact_rne_scalar(acc[i, c], n[c], d[c], e[c], m64[c])
            out[i, c] = min(max(r + zp[c], lo), hi)
    return out


def requantize(acc, multiplier, output_zero_point, qmin, qmax, *, mode, shift=None, axis=-1, dtype=None,
               zero_point_before_round=None):
    """Requantize accumulators, eq. (1): the Numba kernel. Same arguments and result as
    :func:`requantize_reference` (bit for bit).

    ``exact_rne`` runs in int64 with a two-limb product: exact for multipliers that are
    products/quotients of float32 scales (odd numerator < 2^48, odd denominator < 2^24);
    other :class:`~fractions.Fraction` multipliers raise :class:`~refquant.errors.UnsupportedError`
    (use :func:`requantize_reference`).
    """
    p = _prepare(acc, multiplier, output_zero_point, qmin, qmax, mode, shift, axis, dtype, zero_point_before_round)
    a, m, zp = p["acc"], p["m"], p["zp"]
    lo, hi = np.int64(p["qmin"]), np.int64(p["qmax"])
    if p["kind"] == "fixed":
        out = _fixed_kernel(a.astype(np.int64), m, p["shift"], zp, lo, hi, _VARIANT_CODE[_VARIANT[mode]])
    elif mode == "float32_rne":
        src = a if a.dtype == np.float32 else a.astype(np.int64)
        out = _float32_kernel(np.ascontiguousarray(src), m, zp, lo, hi)
    elif p["kind"] == "float64":
        zp_before = zero_point_before_round is None or bool(zero_point_before_round)
        out = _float64_kernel(a.astype(np.int64), m, zp, lo, hi, mode == "float64_rhaz", zp_before)
    else:
        n, d, e, m64 = _exact_parts(m)
        out = _exact_kernel(a.astype(np.int64), n, d, e, m64, zp, lo, hi)
    return p["restore"](out.astype(p["dtype"]))


# --------------------------------------------------------------------------- bias and zero-point helpers


def add_bias(acc, bias, *, axis=-1, on_overflow="warn"):
    """$\\mathrm{acc} + b_c$: an int32 bias added to int32 accumulators (ONNX, TFLite, qnnpack).

    The sum is formed exactly; a result outside int32 follows the kernels' overflow rule
    (``on_overflow="warn"``: warn and return the wrapped value; ``"raise"``; see ``_checks``).

    Args:
        acc: int32 array.
        bias: int32 scalar or ``(C,)`` along ``axis``.
        axis: Channel axis of ``acc`` for a 1-D bias.
        on_overflow: ``"warn"`` or ``"raise"``.

    Returns:
        int32 array of ``acc``'s shape.
    """
    a = np.asarray(acc)
    b = np.asarray(bias)
    for arr, name in ((a, "acc"), (b, "bias")):
        if arr.dtype.kind not in "iu":
            raise QuantizationTypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
        if arr.size and (arr.min() < _I32_MIN or arr.max() > _I32_MAX):
            raise QuantizationValueError(f"{name} must hold int32 values, got {int(arr.max())}")
    check_on_overflow(on_overflow)
    if b.ndim > 1:
        raise ShapeError(f"bias must be a scalar or 1-D, got shape {b.shape}")
    if b.ndim == 1 and b.size != 1:
        if a.ndim == 0 or not -a.ndim <= axis < a.ndim or a.shape[axis] != b.size:
            raise ShapeError(f"bias must have acc.shape[axis] elements, got {b.size} for acc shape {a.shape}")
        shape = [1] * a.ndim
        shape[axis] = b.size
        b = b.reshape(shape)
    s = a.astype(np.int64) + b.astype(np.int64).reshape(b.shape if b.ndim != 1 or b.size != 1 else ())
    return finish_int64(s, "exact", on_overflow, "add_bias")


def float_bias_accumulator(acc, bias, act_times_w_scale, *, axis=-1, reciprocal=False):
    """fbgemm's float bias: $\\mathrm{fl}(\\mathrm{fl}(\\mathrm{acc}) + \\mathrm{fl}(b_c / (S_x S_w[c])))$.

    The result (float32) is then passed to :func:`requantize` with ``mode="float32_rne"`` and
    the float32 output multiplier (``act_times_w_scale / output_scale``), which reproduces fbgemm's
    ``lrintf(raw_f * output_multiplier) + zp`` (backends.md §3.4). ``reciprocal=True`` is the
    AVX2 per-*tensor* path: ``bias * (float)(1.0 / (double)act_times_w_scale)``.

    Args:
        acc: int32 array (``raw``, zero-point corrections already applied).
        bias: float array ``(C,)`` or scalar (float32, as PyTorch stores it).
        act_times_w_scale: ``(float)in_scale * w_scale[c]`` as float32, scalar or ``(C,)``.
        axis: Channel axis of ``acc``.
        reciprocal: See above.

    Returns:
        float32 array of ``acc``'s shape.
    """
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise QuantizationTypeError(f"acc must be an integer array, got dtype {a.dtype}")
    b = np.asarray(bias, dtype=np.float32)
    s = np.asarray(act_times_w_scale, dtype=np.float32)
    if s.size and (not np.all(np.isfinite(s)) or np.any(s <= 0)):
        raise QuantizationValueError("act_times_w_scale must be finite and > 0")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if reciprocal:
            term = (b * (1.0 / s.astype(np.float64)).astype(np.float32)).astype(np.float32)
        else:
            term = (b / s).astype(np.float32)
    term = np.asarray(term)
    if term.ndim == 1 and term.size > 1:
        if a.ndim == 0 or a.shape[axis] != term.size:
            raise ShapeError(f"bias / act_times_w_scale must have acc.shape[axis] elements, got {term.size}")
        shape = [1] * a.ndim
        shape[axis] = term.size
        term = term.reshape(shape)
    elif term.size == 1:
        term = term.reshape(())
    return (a.astype(np.float32) + term).astype(np.float32)


def add_zero_point_sat16(r, output_zero_point, dtype, qmin=None, qmax=None):
    """qnnpack's output stage: ``packs_epi32`` (int16 saturation), ``adds_epi16(zp)`` (saturating),
    ``packus_epi16``/``packs_epi16`` (8-bit saturation), then ``min``/``max`` with the output range.

    $$ y = \\operatorname{clamp}\\big(\\mathrm{sat}_8(\\mathrm{sat}_{16}(\\mathrm{sat}_{16}(r) + Z_y)),\\;
    q_{min}, q_{max}\\big) $$

    For 8-bit outputs and $Z_y$ in the format's range this always equals the plain
    $\\operatorname{clamp}(r + Z_y)$ (a saturated int16 is still beyond every 8-bit bound with the
    same sign); it is kept as the transcription of PyTorch ``q8gemm/4x4c2-sse2.c`` and tested.

    Args:
        r: Rounded, not yet offset integers (int32 array).
        output_zero_point: $Z_y$ (int).
        dtype: ``"uint8"`` or ``"int8"``.
        qmin, qmax: Output range (default the dtype's).

    Returns:
        Array of ``dtype``.
    """
    fmt = get_format(dtype, name="dtype")
    if fmt.name not in ("uint8", "int8"):
        raise QuantizationValueError(f"dtype must be uint8 or int8, got {fmt.name}")
    zp = _int_scalar(output_zero_point, "output_zero_point")
    lo = fmt.qmin if qmin is None else _int_scalar(qmin, "qmin")
    hi = fmt.qmax if qmax is None else _int_scalar(qmax, "qmax")
    v = np.clip(np.asarray(r, np.int64), -32768, 32767)  # packs_epi32
    v = np.clip(v + zp, -32768, 32767)  # adds_epi16
    v = np.clip(v, fmt.qmin, fmt.qmax)  # packus_epi16 / packs_epi16
    return np.clip(v, lo, hi).astype(fmt.dtype)

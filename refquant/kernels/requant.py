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
| ``fixed_double_up`` / ``fixed_double_up_wrap`` | SRDHM then a half-up shift (RHU, RHU) | TFLite optimized FC/Conv on x86 (ruy AVX2) |
| ``fixed_int64_reduced16`` | 16-bit-rounded multiplier, int64 acc | TFLite 16x8 kernels |
| ``float32_rne`` | ``rint(float(acc) * m)`` in float32; ``float(acc)`` rounds when $|acc| > 2^{24}$ | ONNX Runtime, XNNPACK, fbgemm, qnnpack |
| ``float64_rhaz`` | ``std::round(double(acc) * m)``, cast to int32 | TFLite reference FullyConnected |
| ``float64_rne`` | ``rint(double(acc) * m + Z_y)``: $Z_y$ added **before** rounding | ``onnx.reference`` QLinearMatMul/QLinearConv |
| ``exact_rne`` | the exact real $\mathrm{acc} \cdot M$, ties to even | the ONNX specification |

(See :mod:`refquant.fixedpoint` for ``q``, ``shift``, SRDHM and RDBPOT.) Rounding of the fixed
modes is integer; the float modes use one IEEE rounding per C operation. Integer corner cases
follow the compiled C: in the fixed modes $r + Z_y$ is an int32 addition that wraps; in
``float64_rhaz`` a value past int32 becomes INT32_MIN (x86 ``cvttsd2si``) before $Z_y$ is added.

**int64 accumulators** (TFLite's 16x8 kernels): ``fixed_int64_reduced16`` and ``float64_rhaz`` take
any int64 ``acc``. ``fixed_int64_reduced16`` computes $\mathrm{acc} \cdot \tilde q + 2^{14-\text{shift}}$ in
int64 arithmetic that wraps at $2^{64}$ and casts the shifted result to int32 (wraps), as LiteRT 2.3.0
does past its documented $|\mathrm{acc}| < 2^{47}$ (measured with int64 biases up to $\pm 2^{63}$);
``float64_rhaz`` converts ``acc`` to double with one round-to-nearest-even (exact below $2^{53}$).

``fixed_double_up_wrap`` is ``fixed_double_up`` except at ``acc << l = q = INT32_MIN`` (ruy keeps the low 32
bits where SRDHM saturates). A profile's ``clamp_float_before_round`` needs no parameter: the
clamp bounds are integers, so clamping before or after RNE gives the same result for every
finite value, and int32 accumulators are never NaN (a float32 accumulator from
:func:`refquant.kernels.bias.float_bias_accumulator` that is NaN gives $q_{min}$). Bias handling
(int32, fbgemm's float bias, qnnpack's runtime bias) is in :mod:`.bias`; the multipliers come
from :func:`refquant.kernels.multiplier.requant_params`.

Measured bit-exact against real backends (``tests/test_conformance_kernels_misc.py``): TFLite
FullyConnected reference (``float64_rhaz``), optimized (``fixed_double_up_wrap``) and XNNPACK
(``float32_rne``); TFLite CONV_2D reference (``fixed_double``); ONNX Runtime QLinearMatMul
(``float32_rne``) and ``onnx.reference`` (``float64_rne``); PyTorch ``nnq.Linear`` on fbgemm and
qnnpack (``float32_rne`` with their bias paths).

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

from .. import _validate as V
from .. import fixedpoint as fp
from ..dtypes import INT32_MAX, INT32_MIN, get_format, wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..fixedpoint import (
    _wrap32_scalar,
    _mbqm_double_nb,
    _mbqm_double_up_nb,
    _mbqm_int64_reduced16_nb,
    _mbqm_double_up_wrap_nb,
    _mbqm_single_nb,
)
from ..rounding import round_half_away_from_zero
from ._exact import exact_kernel, exact_parts
from ._checks import int_scalar
from .multiplier import REQUANT_MODES

__all__ = [
    "requantize_reference",
    "requantize",
]

_VARIANT = {"fixed_double": "double", "fixed_single": "single", "fixed_double_up": "double_up",
            "fixed_double_up_wrap": "double_up_wrap", "fixed_int64_reduced16": "int64_reduced16"}


def fixed_shift_range(mode: str) -> tuple[int, int]:
    """The shifts a ``fixed_*`` mode's multiply-by-quantized-multiplier variant takes (+ left, - right)."""
    return fp.MBQM_VARIANTS[_VARIANT[mode]][1]


_VARIANT_CODE = {"double": 0, "single": 1, "double_up": 2, "double_up_wrap": 3, "int64_reduced16": 4}
_OUT_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32)
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_INT64_ACC_MODES = ("fixed_int64_reduced16", "float64_rhaz")  # the modes TFLite's 16x8 kernels feed an int64


# --------------------------------------------------------------------------- validation



def _int64(arr: np.ndarray, v, name: str) -> np.ndarray:
    """An integer array as int64, every value compared exactly (uint64 / Python ints past int64 are errors)."""
    if arr.dtype.kind == "O" and all(isinstance(e, int) and not isinstance(e, bool) for e in arr.reshape(-1).tolist()):
        bad = next((e for e in arr.reshape(-1).tolist() if not INT64_MIN <= e <= INT64_MAX), None)
    elif arr.dtype.kind in "iu":
        bad = V.first_outside(arr, INT64_MIN, INT64_MAX)
    else:
        raise QuantizationTypeError(f"{name} must be an integer (array), got {V.describe(v)} of dtype {arr.dtype}")
    if bad is not None:
        raise QuantizationValueError(f"{name} must fit int64, got {bad}")
    return arr.astype(np.int64)


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
        arr = V.asarray(v, name, kinds=None, what="a scalar or 1-D array")
        if kind == "int":
            arr = _int64(arr, v, name)
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
    mode = V.as_choice(mode, "mode", tuple(REQUANT_MODES))
    kind = REQUANT_MODES[mode]
    if kind not in ("fixed", "float32", "float64", "exact"):
        raise UnsupportedError(f"mode {mode!r} is not a one-multiplier requantization; its kernel is elsewhere "
                               f"(float32_scale_chain: refquant.kernels.requant_chain)")
    a = V.asarray(acc, "acc", kinds=None, what="an integer array")
    axis = V.as_int(axis, "axis")
    if zp_before is not None:
        V.as_flag(zp_before, "zero_point_before_round")
    float_ok = mode == "float32_rne" and a.dtype == np.float32
    if a.dtype.kind not in "iu" and not float_ok:
        raise QuantizationTypeError(
            f"acc must be an integer array{' (or float32 for float32_rne)' if mode == 'float32_rne' else ''}, "
            f"got dtype {a.dtype}")
    lo_acc, hi_acc = (INT64_MIN, INT64_MAX) if mode in _INT64_ACC_MODES else (INT32_MIN, INT32_MAX)
    bad = V.first_outside(a, lo_acc, hi_acc) if a.dtype.kind in "iu" else None
    if bad is not None:
        raise QuantizationValueError(f"acc must be in [{lo_acc}, {hi_acc}] for mode {mode!r}, got {bad}")
    qmin, qmax = int_scalar(qmin, "qmin"), int_scalar(qmax, "qmax")
    if qmin > qmax:
        raise QuantizationValueError(f"qmin must be <= qmax, got qmin={qmin}, qmax={qmax}")
    out_dtype = _resolve_dtype(dtype, qmin, qmax)
    if zp_before is not None and mode != "float64_rne":
        raise QuantizationValueError(
            f"zero_point_before_round applies to mode 'float64_rne' only, got it for {mode!r}")
    named = [(multiplier, "multiplier"), (output_zero_point, "output_zero_point")] + (
        [(shift, "shift")] if kind == "fixed" else [])
    if kind != "fixed" and shift is not None:
        raise QuantizationValueError(f"shift is only used by the fixed_* modes, got shift for {mode!r}")
    if kind == "fixed" and shift is None:
        raise QuantizationValueError(f"mode {mode!r} needs shift (TFLite convention: + left, - right)")
    shapes = [() if isinstance(v, Fraction) else V.asarray(v, n, kinds=None, what="a scalar or 1-D array").shape
              for v, n in named]
    per_channel = any(len(sh) == 1 and sh[0] > 1 for sh in shapes)
    n_c = None
    if per_channel:
        if a.ndim == 0:
            raise ShapeError("acc must have a channel axis for per-channel parameters, got a 0-d acc")
        axis = V.normalize_axis(axis, a.ndim)
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


# --------------------------------------------------------------------------- NumPy reference


def requantize_reference(acc, multiplier, output_zero_point, qmin, qmax, *, mode, shift=None, axis=-1,
                         dtype=None, zero_point_before_round=None):
    """Requantize accumulators, eq. (1), in plain NumPy (the spec of :func:`requantize`).

    Args:
        acc: Integer array of int32 values (any int64 values for ``fixed_int64_reduced16`` and
            ``float64_rhaz``, the modes of TFLite's 16x8 kernels; see *int64 accumulators* in the
            module docstring). For ``float32_rne`` a float32 array is also accepted
            and used as the already-converted value (fbgemm's float-bias path,
            :func:`float_bias_accumulator`): a NaN there gives ``qmin`` (``cvtps2dq`` of NaN is
            INT32_MIN, which the clamp takes to ``qmin``; the PyTorch face relies on it) and
            $\\pm\\infty$ saturates to ``qmax`` / ``qmin``.
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
    if mode == "fixed_int64_reduced16":  # the int64 products wrap at 2^64, as the C code's (measured)
        with np.errstate(over="ignore"):
            r = fp._mbqm_int64_reduced16(a.astype(np.int64), m.astype(np.int64), p["shift"].astype(np.int64))
        y = wrap_int32(np.asarray(r, np.int64) + zp)
    elif p["kind"] == "fixed":
        r = fp.multiply_by_quantized_multiplier(a.astype(np.int64), m, p["shift"], variant=_VARIANT[mode])
        y = wrap_int32(np.asarray(r, np.int64) + zp)  # int32 `acc_scaled += output_offset`
    elif mode == "float32_rne":
        v = (a.astype(np.float32) * m).astype(np.float64)  # (M, C): float32 ops, one rounding each
        with np.errstate(invalid="ignore"):  # clamp in float (MLAS/XNNPACK order; same result after)
            v = np.clip(v, (lo - zp).astype(np.float64), (hi - zp).astype(np.float64))
        y = np.where(np.isnan(v), lo - zp, np.rint(v)).astype(np.int64) + zp  # RNE; NaN (float acc) -> qmin
    elif mode == "float64_rhaz":
        r = round_half_away_from_zero(a.astype(np.float64) * m)  # std::round(double)
        r = np.where(np.abs(r) >= 2.0 ** 31, INT32_MIN, r).astype(np.int64)  # (int32_t) of a huge double
        y = wrap_int32(r + zp)
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
                r = _mbqm_double_nb(x, q[c], shift[c])
            elif code == 1:
                r = _mbqm_single_nb(x, q[c], shift[c])
            elif code == 2:
                r = _mbqm_double_up_nb(x, q[c], shift[c])
            elif code == 3:
                r = _mbqm_double_up_wrap_nb(x, q[c], shift[c])
            else:
                r = _mbqm_int64_reduced16_nb(x, q[c], shift[c])
            y = _wrap32_scalar(np.int64(r) + zp[c])  # int32 add wraps
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
    """Numba scalar twin of `refquant.rounding.round_half_away_from_zero` (C `std::round` on a double)."""
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
                y = _wrap32_scalar(ri + zp[c])  # int32 add wraps
            elif zp_before:
                w = min(max(v + np.float64(zp[c]), np.float64(lo)), np.float64(hi))
                y = np.int64(np.rint(w))  # RNE
            else:
                w = min(max(np.rint(v), np.float64(lo - zp[c])), np.float64(hi - zp[c]))  # RNE
                y = np.int64(w) + zp[c]
            out[i, c] = min(max(y, lo), hi)
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
        n, d, e, m64 = exact_parts(m)
        out = exact_kernel(a.astype(np.int64), n, d, e, m64, zp, lo, hi)
    return p["restore"](out.astype(p["dtype"]))

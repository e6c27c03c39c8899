r"""Quantized elementwise add, mul and clamp in integer arithmetic (TFLite, XNNPACK).

$y = \operatorname{clamp}(\operatorname{round}((S_a(a - Z_a) \circ S_b(b - Z_b)) / S_y) + Z_y)$ for
$\circ \in \{+, \times\}$ is evaluated very differently by the backends:

| function | arithmetic | backend op |
|---|---|---|
| :func:`fixed_point_add` | $a, b$ shifted left by 20 (int16: 15), each scaled by a Q31 multiplier, summed, scaled again: three MBQM (eq. (1)) | TFLite ADD int8/uint8/int16 (reference kernel) |
| :func:`fixed_point_mul` | ``MBQM((a - Z_a)(b - Z_b), q, shift) + Z_y`` | TFLite MUL int8 (reference) |
| :func:`rescale_add` | ``(bias + a*m_a + b*m_b) >> shift`` with 21-bit multipliers (eq. (2)) | XNNPACK ``qs8/qu8 vadd`` (TFLite XNNPACK delegate) |
| :func:`~refquant.kernels.elementwise_float.float_add` | float32 FMAs (:mod:`.elementwise_float`) | ONNX Runtime QLinearAdd |
| :func:`~refquant.kernels.elementwise_float.float_mul` | float32, zero point before rounding | ONNX Runtime QLinearMul |
| ``requantize(prod, fl(fl(S_a S_b)/S_y), ..., mode="float32_rne")`` | :mod:`.requant` on the exact product | XNNPACK ``qs8/qu8 vmul`` (TFLite XNNPACK delegate; measured) |
| :func:`clamp` | ``min(max(x, lo), hi)`` | quantized ReLU/ReLU6/Clip |

**(1) TFLite ADD.** Offline (``add.cc`` Prepare): $t = 2\max(S_a, S_b)$ (double), $M_a = S_a/t$,
$M_b = S_b/t$, $M_y = t / (2^{L} S_y)$, each through ``QuantizeMultiplierSmallerThanOneExp``. Runtime:
$y = \mathrm{MBQM}(\mathrm{MBQM}((a - Z_a)2^{L}, M_a) + \mathrm{MBQM}((b - Z_b)2^{L}, M_b), M_y) + Z_y$,
MBQM double rounding by default (``variant`` selects the build). LiteRT's *optimized* int8 ADD on
x86 (NEON code through NEON_2_SSE, equal shapes) differs in blocks of 16 elements: it folds the input
shift into the left shift (``SRDHM(x << (20 + shift), q)``) and narrows the int32 result to int16
**without saturation** before adding $Z_y$, so results beyond $\pm 2^{15}$ output steps come out
with the wrong sign; the ``n % 16`` tail uses the reference formula. Measured (a transcription in
``tests/test_conformance_kernels_misc.py`` matched 0/14233 against 147 for the reference formula);
not exposed as a kernel. The optimized *int16* ADD folds the shift the same way (without the
narrowing): :mod:`refquant.kernels.elementwise_add16`.

**(2) XNNPACK add** (``xnn_init_qs8_add_minmax_scalar_params``): $r_a = \mathrm{fl}(S_a/S_y)$,
$e$ = the float exponent of $\max(r_a, r_b)$, ``shift`` $= 20 - e$, $m_a = \mathrm{RNE}(r_a 2^{\text{shift}})$;
``acc = 2^(shift-1) - m_a Z_a - m_b Z_b + m_a a + m_b b`` (int32, exact), ``y = (acc >> shift) + Z_y``
(arithmetic shift: one rounding, half up).

Measured bit-exact against LiteRT 2.3 on x86-64 (``tests/test_conformance_kernels_misc.py``):
ADD reference kernel int8/uint8/int16 (:func:`fixed_point_add`), MUL reference int8/uint8
(:func:`fixed_point_mul`), and the XNNPACK delegate's ADD (:func:`rescale_add`) and MUL, fused
activations included.

Each op has a NumPy ``*_reference`` and a Numba twin, equal bit for bit; inputs broadcast as NumPy.

Added in 0.1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from .. import fixedpoint_multiplier as fpmul
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..fixedpoint import _mbqm_double_nb, _mbqm_single_nb
from ._checks import activation_bounds, int_scalar, zero_point_scalar

__all__ = [
    "FixedPointAddParams", "fixed_point_add_params", "fixed_point_add_reference", "fixed_point_add",
    "fixed_point_mul_params", "fixed_point_mul_reference", "fixed_point_mul",
    "RescaleAddParams", "rescale_add_params", "rescale_add_reference", "rescale_add",
    "clamp_reference", "clamp",
]

_F32 = np.float32
_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_VARIANTS = {"double": 0, "single": 1}


# --------------------------------------------------------------------------- validation


def _operands(a, b, dtypes=_DTYPES[:2]):
    """``(a, b, broadcast shape, iinfo)`` with ``a`` and ``b`` in native byte order."""
    for x, name in ((a, "a"), (b, "b")):
        if not isinstance(x, np.ndarray):
            raise QuantizationTypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    a, b = V.native(a), V.native(b)
    if a.dtype not in dtypes or b.dtype != a.dtype:
        raise QuantizationTypeError(
            f"a and b must share one dtype of {[d.name for d in dtypes]}, got {a.dtype} and {b.dtype}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    return a, b, shape, np.iinfo(a.dtype)


def _zero_points(a_zero_point, b_zero_point, y_zero_point, dtype) -> tuple[int, int, int]:
    """The three per-tensor zero points of a binary op, each inside ``dtype``'s range."""
    return tuple(zero_point_scalar(z, dtype, n) for z, n in (
        (a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point"), (y_zero_point, "y_zero_point")))


def _scales(a_scale, b_scale, y_scale) -> tuple[np.float32, np.float32, np.float32]:
    """The three per-tensor scales of a binary op as float32 scalars (finite, > 0)."""
    return tuple(V.as_scalar_scale(s, n) for s, n in ((a_scale, "a_scale"), (b_scale, "b_scale"), (y_scale, "y_scale")))


def _flat(a, b, shape):
    return (np.ascontiguousarray(np.broadcast_to(a, shape)).ravel(),
            np.ascontiguousarray(np.broadcast_to(b, shape)).ravel())


def _variant(variant):
    return V.as_choice(variant, "variant", tuple(_VARIANTS))


def _params(params, cls):
    if not isinstance(params, cls):
        builder = {"FixedPointAddParams": "fixed_point_add_params", "RescaleAddParams": "rescale_add_params"}
        raise QuantizationTypeError(f"params must be a {cls.__name__} (from {builder[cls.__name__]}), "
                                    f"got {V.describe(params)}")
    return params


def _check_fields(record, ranges: dict) -> None:
    """Each field an integer inside its range (stored back as a Python int)."""
    for name, (lo, hi) in ranges.items():
        object.__setattr__(record, name, V.as_int_scalar(getattr(record, name), name, lo=lo, hi=hi))


# --------------------------------------------------------------------------- TFLite ADD / MUL (fixed point)


@dataclass(frozen=True)
class FixedPointAddParams:
    """TFLite ADD's ``OpData``: left shift and three ``(quantized_multiplier, shift)`` pairs (shifts <= 0)."""

    left_shift: int
    a_multiplier: int
    a_shift: int
    b_multiplier: int
    b_shift: int
    output_multiplier: int
    output_shift: int

    def __post_init__(self):
        q, sh = (fp.INT32_MIN, fp.INT32_MAX), (-31, 0)
        _check_fields(self, {"left_shift": (15, 20), "a_multiplier": q, "a_shift": sh, "b_multiplier": q,
                             "b_shift": sh, "output_multiplier": q, "output_shift": sh})


def fixed_point_add_params(a_scale, b_scale, y_scale, *, left_shift=20, single_rounding=False):
    """TFLite ADD Prepare (``kernels/add.cc``): offline, double precision. ``left_shift`` 20 for
    8-bit, 15 for int16 ("general scale" path).

    Raises:
        QuantizationValueError: a multiplier not in (0, 1) (``QuantizeMultiplierSmallerThanOneExp``
            CHECK), e.g. $S_y < 2\\max(S_a, S_b)/2^{L}$.
    """
    sa, sb, sy = (float(s) for s in _scales(a_scale, b_scale, y_scale))
    left_shift = V.as_int_scalar(left_shift, "left_shift")
    if left_shift not in (15, 20):
        raise QuantizationValueError(f"left_shift must be 20 (8-bit) or 15 (int16), got {left_shift!r}")
    single_rounding = V.as_flag(single_rounding, "single_rounding")
    twice_max = 2.0 * max(sa, sb)
    reals = (sa / twice_max, sb / twice_max, twice_max / (float(1 << left_shift) * sy))
    try:
        qs = [fpmul.quantize_multiplier_smaller_than_one_exp(m, single_rounding=single_rounding) for m in reals]
    except QuantizationValueError as e:
        raise QuantizationValueError(
            f"a_scale, b_scale, y_scale = {sa!r}, {sb!r}, {sy!r} give no TFLite ADD multipliers: {e}") from None
    return FixedPointAddParams(left_shift, qs[0][0], qs[0][1], qs[1][0], qs[1][1], qs[2][0], qs[2][1])


def fixed_point_add_reference(a, a_zero_point, b, b_zero_point, y_zero_point, params: FixedPointAddParams, *,
                              act_min=None, act_max=None, variant="double"):
    """TFLite ADD, eq. (1): NumPy spec.

    Args:
        a, b: int8, uint8 or int16 arrays of one dtype (broadcast as NumPy).
        a_zero_point, b_zero_point, y_zero_point: Integer scalars.
        params: From :func:`fixed_point_add_params`.
        act_min, act_max: Fused-activation clamp (default: the dtype's range).
        variant: ``"double"`` (default build) or ``"single"`` (``TFLITE_SINGLE_ROUNDING``).

    Returns:
        Array of ``a.dtype`` and the broadcast shape.
    """
    a, b, shape, info = _operands(a, b, _DTYPES)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    v = _variant(variant)
    p = _params(params, FixedPointAddParams)
    shifted_a = (a.astype(np.int64) - za) << p.left_shift  # int32 values: |.| < 2^31
    shifted_b = (b.astype(np.int64) - zb) << p.left_shift
    scaled_a = fp.multiply_by_quantized_multiplier(shifted_a, p.a_multiplier, p.a_shift, variant=v)
    scaled_b = fp.multiply_by_quantized_multiplier(shifted_b, p.b_multiplier, p.b_shift, variant=v)
    raw_sum = np.broadcast_to(scaled_a.astype(np.int64) + scaled_b, shape)
    raw_out = fp.multiply_by_quantized_multiplier(raw_sum, p.output_multiplier, p.output_shift, variant=v)
    return np.clip(raw_out.astype(np.int64) + zy, lo, hi).astype(a.dtype).reshape(shape)


@numba.njit(cache=True)
def _mbqm(x, q, s, code):
    return _mbqm_double_nb(x, q, s) if code == 0 else _mbqm_single_nb(x, q, s)


@numba.njit(cache=True)
def _fixed_add_kernel(a, b, za, zb, zy, ls, qa, sa, qb, sb, qy, sy, lo, hi, code):
    out = np.empty(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        xa = _mbqm((np.int64(a[i]) - za) << ls, qa, sa, code)
        xb = _mbqm((np.int64(b[i]) - zb) << ls, qb, sb, code)
        r = np.int64(_mbqm(np.int64(xa) + np.int64(xb), qy, sy, code)) + zy
        out[i] = min(max(r, lo), hi)
    return out


def fixed_point_add(a, a_zero_point, b, b_zero_point, y_zero_point, params: FixedPointAddParams, *,
                    act_min=None, act_max=None, variant="double"):
    """TFLite ADD, eq. (1): the Numba kernel (equal to :func:`fixed_point_add_reference`)."""
    a, b, shape, info = _operands(a, b, _DTYPES)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    p = _params(params, FixedPointAddParams)
    fa, fb = _flat(a, b, shape)
    out = _fixed_add_kernel(fa, fb, za, zb, zy, p.left_shift, p.a_multiplier, p.a_shift, p.b_multiplier, p.b_shift,
                            p.output_multiplier, p.output_shift, lo, hi, _VARIANTS[_variant(variant)])
    return out.astype(a.dtype).reshape(shape)


def fixed_point_mul_params(a_scale, b_scale, y_scale, *, single_rounding=False) -> tuple[int, int]:
    """TFLite MUL Prepare (``kernels/mul.cc``): ``double real = s_a * s_b / s_y`` evaluated in
    **float32** (the operands are floats) and widened, then ``QuantizeMultiplier``. Offline."""
    sa, sb, sy = _scales(a_scale, b_scale, y_scale)
    with np.errstate(over="ignore", under="ignore"):
        real = float(_F32(_F32(sa * sb) / sy))
    if not np.isfinite(real) or real == 0.0:
        raise QuantizationValueError(
            f"a_scale * b_scale / y_scale must be finite and nonzero in float32, got {real!r} "
            f"from a_scale={float(sa)!r}, b_scale={float(sb)!r}, y_scale={float(sy)!r}")
    return fpmul.quantize_multiplier(real, single_rounding=single_rounding)


def _mul_multiplier(multiplier, shift, variant):
    """The scalar ``(multiplier, shift)`` of TFLite MUL inside the MBQM variant's ranges."""
    (q_lo, q_hi), (s_lo, s_hi), _ = fp.MBQM_VARIANTS[variant]
    q = V.as_int_scalar(int_scalar(multiplier, "multiplier"), "multiplier", lo=q_lo, hi=q_hi)
    return q, V.as_int_scalar(int_scalar(shift, "shift"), "shift", lo=s_lo, hi=s_hi)


def fixed_point_mul_reference(a, a_zero_point, b, b_zero_point, y_zero_point, multiplier, shift, *,
                              act_min=None, act_max=None, variant="double"):
    """TFLite MUL int8/uint8 (``reference_integer_ops::MulElementwise``): NumPy spec.

    $y = \\operatorname{clamp}(\\mathrm{MBQM}((a - Z_a)(b - Z_b), q, \\text{shift}) + Z_y)$, the product
    in int32. ``multiplier, shift`` from :func:`fixed_point_mul_params`. int8, uint8 or int16
    (TFLite requires zero points 0 for int16). Returns ``a.dtype``.
    """
    a, b, shape, info = _operands(a, b, _DTYPES)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    v = _variant(variant)
    q, sh = _mul_multiplier(multiplier, shift, v)
    prod = np.broadcast_to((a.astype(np.int64) - za) * (b.astype(np.int64) - zb), shape)
    r = fp.multiply_by_quantized_multiplier(prod, q, sh, variant=v)
    return np.clip(r.astype(np.int64) + zy, lo, hi).astype(a.dtype).reshape(shape)


@numba.njit(cache=True)
def _fixed_mul_kernel(a, b, za, zb, zy, q, s, lo, hi, code):
    out = np.empty(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        prod = (np.int64(a[i]) - za) * (np.int64(b[i]) - zb)
        r = np.int64(_mbqm(prod, q, s, code)) + zy
        out[i] = min(max(r, lo), hi)
    return out


def fixed_point_mul(a, a_zero_point, b, b_zero_point, y_zero_point, multiplier, shift, *, act_min=None,
                    act_max=None, variant="double"):
    """TFLite MUL: the Numba kernel (equal to :func:`fixed_point_mul_reference`)."""
    a, b, shape, info = _operands(a, b, _DTYPES)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    variant = _variant(variant)
    q, sh = _mul_multiplier(multiplier, shift, variant)
    fa, fb = _flat(a, b, shape)
    out = _fixed_mul_kernel(fa, fb, za, zb, zy, q, sh, lo, hi, _VARIANTS[variant])
    return out.astype(a.dtype).reshape(shape)


# --------------------------------------------------------------------------- XNNPACK add (integer rescale)


@dataclass(frozen=True)
class RescaleAddParams:
    """XNNPACK add microparams: 21-bit multipliers and the common right shift (12..30)."""

    a_multiplier: int
    b_multiplier: int
    shift: int

    def __post_init__(self):
        _check_fields(self, {"a_multiplier": (0, 1 << 21), "b_multiplier": (0, 1 << 21), "shift": (12, 30)})


def rescale_add_params(a_scale, b_scale, y_scale) -> RescaleAddParams:
    """``xnn_init_qs8_add_minmax_scalar_params`` (XNNPACK ``microparams-init.c``). Offline.

    $r = \\mathrm{fl}(S/S_y)$ (float32); ``shift = 20 - exponent(max(r_a, r_b))``;
    $m = \\mathrm{RNE}(r \\cdot 2^{\\text{shift}})$ (``lrintf`` of the exponent-shifted float).

    Raises:
        QuantizationValueError: a ratio outside $[2^{-10}, 2^{8})$ (XNNPACK asserts; the TFLite
            delegate then does not take the op).
    """
    sa, sb, sy = _scales(a_scale, b_scale, y_scale)
    ra, rb = _F32(sa / sy), _F32(sb / sy)
    for r, name in ((ra, "a_scale / y_scale"), (rb, "b_scale / y_scale")):
        if not 2.0 ** -10 <= float(r) < 2.0 ** 8:
            raise QuantizationValueError(f"{name} = {float(r)!r} must be in [2^-10, 2^8) for XNNPACK add")
    exponent = int(np.frexp(max(ra, rb))[1]) - 1  # (bits >> 23) - 127 for a normal float
    shift = 20 - exponent
    ma = int(np.rint(np.ldexp(np.float64(ra), shift)))  # RNE; the scaling by 2^shift is exact
    mb = int(np.rint(np.ldexp(np.float64(rb), shift)))  # RNE
    return RescaleAddParams(ma, mb, shift)


def rescale_add_reference(a, a_zero_point, b, b_zero_point, y_zero_point, params: RescaleAddParams, *,
                          act_min=None, act_max=None):
    """XNNPACK add, eq. (2): NumPy spec. int8 or uint8; returns ``a.dtype``."""
    a, b, shape, info = _operands(a, b)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    p = _params(params, RescaleAddParams)
    bias = (1 << (p.shift - 1)) - p.a_multiplier * za - p.b_multiplier * zb  # int32
    acc = bias + a.astype(np.int64) * p.a_multiplier + b.astype(np.int64) * p.b_multiplier  # exact in int32
    out = np.clip(acc >> p.shift, lo - zy, hi - zy) + zy  # arithmetic shift: floor
    return np.broadcast_to(out, shape).astype(a.dtype)


@numba.njit(cache=True)
def _rescale_add_kernel(a, b, bias, ma, mb, shift, zy, lo, hi):
    out = np.empty(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        acc = bias + np.int64(a[i]) * ma + np.int64(b[i]) * mb
        out[i] = min(max(acc >> shift, lo - zy), hi - zy) + zy
    return out


def rescale_add(a, a_zero_point, b, b_zero_point, y_zero_point, params: RescaleAddParams, *, act_min=None,
                act_max=None):
    """XNNPACK add, eq. (2): the Numba kernel (equal to :func:`rescale_add_reference`)."""
    a, b, shape, info = _operands(a, b)
    za, zb, zy = _zero_points(a_zero_point, b_zero_point, y_zero_point, info.dtype)
    lo, hi = activation_bounds(act_min, act_max, info.dtype)
    p = _params(params, RescaleAddParams)
    bias = (1 << (p.shift - 1)) - p.a_multiplier * za - p.b_multiplier * zb
    fa, fb = _flat(a, b, shape)
    out = _rescale_add_kernel(fa, fb, bias, p.a_multiplier, p.b_multiplier, p.shift, zy, lo, hi)
    return out.astype(a.dtype).reshape(shape)


# --------------------------------------------------------------------------- clamp


def _check_clamp(x, lo, hi):
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        raise QuantizationTypeError(f"x must be an integer NumPy array, got {getattr(x, 'dtype', type(x))}")
    x = V.native(x)
    info = np.iinfo(x.dtype)
    lo, hi = int_scalar(lo, "lo"), int_scalar(hi, "hi")
    if not info.min <= lo <= hi <= info.max:
        raise QuantizationValueError(f"lo <= hi must lie in [{info.min}, {info.max}] for x of dtype {x.dtype}, "
                                     f"got [{lo}, {hi}]")
    return x, lo, hi


def clamp_reference(x, lo, hi):
    """Quantized clamp $\\min(\\max(x, lo), hi)$: ReLU is ``lo = Z``; ReLU6 ``hi = Z + round(6/S)``
    (see :func:`refquant.kernels.multiplier.activation_range`). Same dtype out."""
    x, lo, hi = _check_clamp(x, lo, hi)
    return np.clip(x, lo, hi).astype(x.dtype)


@numba.njit(cache=True)
def _clamp_kernel(x, lo, hi):
    out = np.empty(x.shape[0], np.int64)
    for i in range(x.shape[0]):
        out[i] = min(max(np.int64(x[i]), lo), hi)
    return out


def clamp(x, lo, hi):
    """Quantized clamp: the Numba kernel (equal to :func:`clamp_reference`)."""
    x, lo, hi = _check_clamp(x, lo, hi)
    return _clamp_kernel(np.ascontiguousarray(x).ravel(), lo, hi).astype(x.dtype).reshape(x.shape)

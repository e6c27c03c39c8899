r"""TFLite SOFTMAX on int8/uint8 codes (last axis): the default float-table kernel and the
gemmlowp fixed-point reference kernel.

**Float table** (``kGenericOptimized``, LiteRT's default registration; ``optimized_ops.h``
``PopulateSoftmaxLookupTable`` + ``Softmax``), all float32:

$$ E[255 - k] = \mathrm{expf}(\mathrm{fl}(\mathrm{fl}(-S_x\beta) \cdot k)), \quad
   s = \textstyle\sum_j E[255 - m + x_j] \;(\text{in order}), \quad
   y_j = \mathrm{RHAZ}\big(\mathrm{fl}(E[255 - m + x_j] \cdot \mathrm{fl}(1 / \mathrm{fl}(s S_y)))\big) + Z_y \tag{1} $$

with $m$ the row maximum; uint8 on x86 uses ``(int)(p + 0.5f)`` instead (a float add, then
truncation) and ignores $Z_y$ (it is 0). ``expf``: see :func:`refquant.kernels.lut.expf`.

**Fixed point** (``kReference``, ``reference/softmax.h``; the ``BUILTIN_REF`` resolver):
``PreprocessSoftmaxScaling(beta, S_x, 5)`` gives $(q, \ell)$ and ``diff_min``; per row, for
$\delta_j = x_j - m \ge$ ``diff_min``: $e_j$ = ``exp_on_negative_values(SRDHM(δ_j 2^ℓ, q))`` (Q5.26 in,
Q0.31 out), $s = \sum_j \mathrm{RDBPOT}(e_j, 12)$ (Q12.19, int32), $(r, n)$ = ``GetReciprocal(s, 12)``,

$$ y_j = \operatorname{clamp}\big(\mathrm{RDBPOT}(\mathrm{SRDHM}(r, e_j), n + 23) + q_{min}\big), \tag{2} $$

other entries $q_{min}$. The two agree on most inputs; rows where they differ exist and both are
measured bit-exact against LiteRT 2.3 (``tests/test_conformance_kernels_misc.py``).

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from .. import fixedpoint_math as fpm
from .. import fixedpoint_multiplier as fpmul
from ..dtypes import wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError, UnsupportedError
from ..rounding import round_half_away_from_zero
from . import _fixedpoint_nb as nb
from ._checks import zero_point_scalar
from .lut import expf

__all__ = [
    "softmax_exp_table", "softmax_lut_reference", "softmax_lut",
    "SoftmaxFixedPointParams", "softmax_fixed_point_params", "softmax_fixed_point_reference", "softmax_fixed_point",
]

_F32 = np.float32


def softmax_exp_table(x_scale, beta=1.0, *, math="correctly_rounded") -> np.ndarray:
    """``PopulateSoftmaxLookupTable``: $E[255 - k] = \\mathrm{expf}(\\mathrm{fl}(\\mathrm{fl}(-S_x\\beta) \\cdot k))$,
    $k = 0..255$ (float32 ``(256,)``). Offline."""
    sx = V.as_scalar_scale(x_scale, "x_scale")
    b = _F32(V.as_real_scalar(beta, "beta"))
    if not np.isfinite(b):
        raise QuantizationValueError(f"beta must be finite in float32, got {beta!r}")
    scale = _F32(-sx * b)
    k = np.arange(256, dtype=np.int64)
    return expf((scale * k.astype(_F32)).astype(_F32), math=math)[::-1].copy()


def _check_x(x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise QuantizationTypeError(f"x must be an int8 or uint8 NumPy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 1:
        raise ShapeError("x must have at least one dimension (softmax runs over the last)")
    return x


def _check_softmax(x, y_scale, y_zero_point):
    x = _check_x(x)
    sy = V.as_scalar_scale(y_scale, "y_scale")
    zy = (-128 if x.dtype == np.int8 else 0) if y_zero_point is None else y_zero_point
    return sy, zero_point_scalar(zy, x.dtype, "y_zero_point")


def _check_table(table) -> np.ndarray:
    """The (256,) float32 table of :func:`softmax_exp_table` (indexed by 255 - max + x)."""
    t = V.asarray(table, "table", kinds=None, what="a (256,) float array")
    if t.dtype.kind not in "fiu" or t.shape != (256,):
        raise ShapeError(f"table must be a (256,) float32 array (softmax_exp_table), got shape {t.shape} "
                         f"dtype {t.dtype}")
    return np.ascontiguousarray(t, _F32)


def softmax_lut_reference(x, table, y_scale=1.0 / 256, y_zero_point=None):
    """TFLite SOFTMAX int8/uint8, default optimized kernel, eq. (1): NumPy spec (last axis).

    Args:
        x: int8 or uint8 array.
        table: :func:`softmax_exp_table` of the input scale and ``beta``.
        y_scale, y_zero_point: Output parameters (TFLite: 1/256 and -128 / 0).

    Returns:
        Array of ``x.dtype`` and shape.
    """
    sy, zy = _check_softmax(x, y_scale, y_zero_point)
    t = _check_table(table)
    if x.size == 0:
        return x.copy()
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    idx = 255 - rows.max(axis=1, keepdims=True) + rows  # table[255 - max + x]
    e = t[idx]  # (R, n) float32
    total = np.add.accumulate(e, axis=1, dtype=_F32)[:, -1:]  # sequential float32 sum
    inv = (_F32(1.0) / (total * sy).astype(_F32)).astype(_F32)
    p = (e * inv).astype(_F32)
    if x.dtype == np.int8:
        q = round_half_away_from_zero(p).astype(np.int64) + zy  # std::round (RHAZ)
    else:
        q = np.trunc((p + _F32(0.5)).astype(_F32)).astype(np.int64)  # (int)(p + 0.5f), zero point unused
    info = np.iinfo(x.dtype)
    return np.clip(q, info.min, info.max).astype(x.dtype).reshape(x.shape)


@numba.njit(cache=True)
def _softmax_lut_kernel(rows, table, sy, zy, lo, hi, signed):
    out = np.empty(rows.shape, np.int64)
    for r in range(rows.shape[0]):
        mx = np.int64(rows[r, 0])
        for j in range(rows.shape[1]):
            mx = max(mx, np.int64(rows[r, j]))
        total = np.float32(0.0)
        for j in range(rows.shape[1]):
            total = np.float32(total + table[255 - mx + np.int64(rows[r, j])])
        inv = np.float32(np.float32(1.0) / np.float32(total * sy))
        for j in range(rows.shape[1]):
            p = np.float32(table[255 - mx + np.int64(rows[r, j])] * inv)
            if signed:
                t = np.floor(p)
                q = np.int64(t) + (np.int64(1) if p - t >= 0.5 else np.int64(0)) + zy  # p >= 0: RHAZ
            else:
                q = np.int64(np.floor(np.float32(p + np.float32(0.5))))
            out[r, j] = min(max(q, lo), hi)
    return out


def softmax_lut(x, table, y_scale=1.0 / 256, y_zero_point=None):
    """TFLite SOFTMAX, eq. (1): the Numba kernel (equal to :func:`softmax_lut_reference`)."""
    sy, zy = _check_softmax(x, y_scale, y_zero_point)
    t = _check_table(table)
    if x.size == 0:
        return x.copy()
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    info = np.iinfo(x.dtype)
    out = _softmax_lut_kernel(rows, t, sy, zy, info.min, info.max, x.dtype == np.int8)
    return out.astype(x.dtype).reshape(x.shape)


class SoftmaxFixedPointParams(tuple):
    """``(input_multiplier, input_left_shift, diff_min)`` of TFLite's reference softmax."""

    __slots__ = ()

    def __new__(cls, input_multiplier: int, input_left_shift: int, diff_min: int):
        return super().__new__(cls, (V.as_int_scalar(input_multiplier, "input_multiplier", lo=0, hi=2**31 - 1),
                                     V.as_int_scalar(input_left_shift, "input_left_shift", lo=0, hi=31),
                                     V.as_int_scalar(diff_min, "diff_min", lo=-(2**31), hi=0)))


def _as_params(params) -> SoftmaxFixedPointParams:
    if isinstance(params, SoftmaxFixedPointParams):
        return params
    if not isinstance(params, (tuple, list)) or len(params) != 3:
        raise QuantizationTypeError(f"params must be a SoftmaxFixedPointParams (softmax_fixed_point_params) or an "
                                    f"(input_multiplier, input_left_shift, diff_min) triple, got {V.describe(params)}")
    try:
        return SoftmaxFixedPointParams(*params)
    except (QuantizationTypeError, QuantizationValueError) as e:
        raise type(e)(f"params: {e}") from None


def softmax_fixed_point_params(x_scale, beta=1.0, *, single_rounding=False) -> SoftmaxFixedPointParams:
    """``SoftmaxPrepare`` (kReference): ``PreprocessSoftmaxScaling(beta, S_x, 5)`` and
    ``diff_min = -CalculateInputRadius(5, input_left_shift)``. Offline; ``beta`` and the scale
    are float32 widened to double."""
    sx = float(V.as_scalar_scale(x_scale, "x_scale"))
    b = _F32(V.as_real_scalar(beta, "beta"))
    if not (np.isfinite(b) and b > 0):
        raise QuantizationValueError(f"beta must be finite and > 0 in float32, got {beta!r}")
    try:
        q, ls = fpmul.preprocess_softmax_scaling(float(b), sx, 5, single_rounding=single_rounding)
    except QuantizationValueError as e:
        raise QuantizationValueError(f"x_scale={sx!r} and beta={float(b)!r} give no fixed-point softmax: {e}") from None
    return SoftmaxFixedPointParams(q, ls, -fpmul.calculate_input_radius(5, ls))


def softmax_fixed_point_reference(x, params: SoftmaxFixedPointParams, *, single_rounding=False):
    """TFLite SOFTMAX reference kernel (gemmlowp fixed point), eq. (2): NumPy spec, last axis.

    Per row: $\\delta_j = x_j - \\max$; where $\\delta_j \\ge$ ``diff_min``:
    $e_j = $ ``exp_on_negative_values(SRDHM(δ_j 2^{ls}, q), 5)`` (Q0.31; MBQM single in single-rounding
    builds), $s = \\sum_j \\mathrm{RDBPOT}(e_j, 12)$ (Q12.19, int32 wrap), $(r, n) =$ ``GetReciprocal(s, 12)``,
    $y_j = \\mathrm{RDBPOT}(\\mathrm{SRDHM}(r, e_j), n + 23) + q_{min}$, clamped; other $y_j = q_{min}$.
    Output scale 1/256, zero point $q_{min}$ (-128 int8, 0 uint8). Uses :mod:`refquant.fixedpoint_math`.
    """
    x = _check_x(x)
    q, ls, diff_min = _as_params(params)
    single_rounding = V.as_flag(single_rounding, "single_rounding")
    if x.size == 0:
        return x.copy()
    info = np.iinfo(x.dtype)
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    valid = diff >= diff_min
    d = np.where(valid, diff, 0)
    if single_rounding:
        rescaled = fp.multiply_by_quantized_multiplier(d, q, ls, variant="single")
    else:
        rescaled = fp.saturating_rounding_doubling_high_mul(d << ls, q)
    e = np.asarray(fpm.exp_on_negative_values(rescaled, 5), np.int64)
    summed = np.where(valid, np.asarray(fp.rounding_divide_by_pot(e, 12), np.int64), 0).sum(axis=1)
    summed = wrap_int32(summed)  # int32 sum wraps
    recip, bits_over_unit = (np.asarray(v, np.int64) for v in fpm.get_reciprocal(summed, 12))
    exponent = (bits_over_unit + 31 - 8)[:, None]
    _check_exponent(exponent.max(initial=0))
    prod = np.asarray(fp.saturating_rounding_doubling_high_mul(np.broadcast_to(recip[:, None], e.shape), e))
    unsat = np.asarray(fp.rounding_divide_by_pot(prod, np.broadcast_to(exponent, e.shape)), np.int64)
    y = np.where(valid, np.clip(unsat + info.min, info.min, info.max), info.min)
    return y.astype(x.dtype).reshape(x.shape)


def _check_exponent(exponent) -> None:
    if exponent > 31:
        raise UnsupportedError(
            "TFLite's reference softmax aborts here (TFLITE_CHECK exponent <= 31): a row's sum of exponentials "
            "reached 2^28 in Q12.19, i.e. about 512 or more entries equal to the row maximum")


@numba.njit(cache=True)
def _softmax_fixed_kernel(rows, q, ls, diff_min, lo, hi, single):
    out = np.empty(rows.shape, np.int64)
    e = np.empty(rows.shape[1], np.int64)
    for r in range(rows.shape[0]):
        mx = np.int64(rows[r, 0])
        for j in range(rows.shape[1]):
            mx = max(mx, np.int64(rows[r, j]))
        total = np.int64(0)
        for j in range(rows.shape[1]):
            diff = np.int64(rows[r, j]) - mx
            if diff >= diff_min:
                if single:
                    rescaled = np.int64(fp._mbqm_single_nb(diff, q, ls))
                else:
                    rescaled = nb.srdhm(diff << ls, q)
                e[j] = nb.exp_on_negative_values(rescaled, 5)
                total = nb._w32(total + nb.rdbpot(e[j], 12))
        recip, bits_over_unit = nb.get_reciprocal(total, 12)
        exponent = bits_over_unit + 31 - 8
        if exponent > 31:
            return out, exponent
        for j in range(rows.shape[1]):
            if np.int64(rows[r, j]) - mx >= diff_min:
                unsat = nb.rdbpot(nb.srdhm(recip, e[j]), exponent)
                out[r, j] = min(max(unsat + lo, lo), hi)
            else:
                out[r, j] = lo
    return out, np.int64(0)


def softmax_fixed_point(x, params: SoftmaxFixedPointParams, *, single_rounding=False):
    """TFLite reference SOFTMAX, eq. (2): the Numba kernel (equal to :func:`softmax_fixed_point_reference`)."""
    x = _check_x(x)
    q, ls, diff_min = _as_params(params)
    single_rounding = V.as_flag(single_rounding, "single_rounding")
    if x.size == 0:
        return x.copy()
    info = np.iinfo(x.dtype)
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    out, exponent = _softmax_fixed_kernel(rows, q, ls, diff_min, info.min, info.max, bool(single_rounding))
    _check_exponent(exponent)
    return out.astype(x.dtype).reshape(x.shape)

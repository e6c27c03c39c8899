r"""TFLite SOFTMAX on int16 codes (16x8 mode): two interpolated tables, integers only.

LiteRT runs ``reference_ops::SoftmaxInt16`` for every kernel set (``reference/softmax.h``;
``SoftmaxPrepare`` builds the tables and the multiplier). Output scale $1/32768$, zero
point 0. Per row of the last axis, with $m$ the row maximum and the tables of
:mod:`refquant.kernels.lut16` ($T_{exp}$ = :func:`~refquant.kernels.lut16.softmax_exp_lut16`,
$T_{rec}$ = :func:`~refquant.kernels.lut16.softmax_reciprocal_lut16`, looked up by
:func:`~refquant.kernels.lut16.lut16_lookup`, eq. (2) there):

$$ e_j = T_{exp}\big[\operatorname{clamp}_{16}(\mathrm{MBQM}(x_j - m,\ q,\ \ell) + 32767)\big]
   \quad (\text{Q0.15}), \qquad s = \textstyle\sum_j e_j \quad (\text{int32}) \tag{1} $$

where $(q, \ell)$ = ``QuantizeMultiplier``$(\mathrm{fl}(S_x \beta) / (10/65535))$ maps a
difference of $-10/(S_x\beta)$ to $-65535$ (MBQM: TFLite's double-rounding
``MultiplyByQuantizedMultiplier``, :func:`refquant.fixedpoint.multiply_by_quantized_multiplier`).
Then, with $h = \mathrm{clz}_{32}(s)$ (``headroom_plus_one``),

$$ r = T_{rec}\big[\operatorname{clamp}_{16}\big(\lfloor (s \cdot 2^{h-1} + 2^{13}) / 2^{14} \rfloor - 98304\big)\big], \qquad
   y_j = \operatorname{clamp}\Big(\Big\lfloor \frac{e_j r + 2^{30-h}}{2^{31-h}} \Big\rfloor,\ 0,\ 32767\Big). \tag{2} $$

$s \cdot 2^{h-1}$ normalizes the sum to $[2^{30}, 2^{31})$, i.e. $1 + u$ with $u \in [0, 1)$
at 16 bits, recentred to $[-32768, 32767]$ for the table of $1/(1 + u)$; the final shift
undoes the normalization (rounding half up). Differences below about $-10/(S_x\beta)$ all give
$e_j = T_{exp}[-32768]$ (about $e^{-10}$), never 0.

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..errors import (
    QuantizationValueError,
    ShapeError,
    UnsupportedError,
)
from .lut16 import (
    _lut16_value,
    lut16_lookup_reference,
    softmax_exp_lut16,
    softmax_reciprocal_lut16,
)

__all__ = ["softmax16_params", "softmax16_reference", "softmax16"]

_F32 = np.float32
_I32_MAX = 2**31 - 1


def softmax16_params(x_scale, beta=1.0) -> tuple[int, int]:
    """``SoftmaxPrepare`` (int16): ``QuantizeMultiplier(fl(S_x * beta) / (10.0 / 65535.0))``. Offline.

    The product $S_x \\beta$ is a float32 product (both are stored as float), the quotient a double.

    Returns:
        ``(input_multiplier, input_left_shift)``: Q0.31 multiplier and shift (+ left).

    Raises:
        QuantizationValueError: ``beta`` not finite and > 0 in float32.
        UnsupportedError: $S_x \\beta \\ge 2^{31} \\cdot 10/65535$ (shift > 31: the kernel's
            ``x * (1 << shift)`` is undefined there).
    """
    sx = V.as_scalar_scale(x_scale, "x_scale")
    b = _F32(V.as_real_scalar(beta, "beta", finite=False))
    if not (np.isfinite(b) and b > 0):
        raise QuantizationValueError(f"beta must be finite and > 0 in float32, got {beta!r}")
    with np.errstate(over="ignore"):
        product = _F32(sx * b)
    if not np.isfinite(product):
        raise UnsupportedError(f"x_scale * beta overflows float32 ({float(sx)!r} * {float(b)!r})")
    q, shift = fp.quantize_multiplier(float(product) / (10.0 / 65535.0))
    if shift > 31:
        raise UnsupportedError(f"x_scale * beta = {float(product)!r} is too large for the int16 softmax: its "
                               f"multiplier needs a left shift of {shift} (at most 31)")
    return q, shift


def _check(x, input_multiplier, input_left_shift):
    x = V.as_typed_array(x, "x", ("int16",), array_only=True)  # native byte order
    if x.ndim < 1:
        raise ShapeError("x must have at least one dimension (softmax runs over the last)")
    q = V.as_int_scalar(input_multiplier, "input_multiplier", lo=0, hi=_I32_MAX)
    s = V.as_int_scalar(input_left_shift, "input_left_shift", lo=-31, hi=31)
    return x, q, s


def _sum_overflow(total) -> UnsupportedError:
    return UnsupportedError(f"a row's sum of int16 exponentials reached {int(total)} >= 2^31 (rows of more than "
                            f"65548 entries); LiteRT's int32 sum overflows there (undefined behaviour)")


def softmax16_reference(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eqs. (1)-(2): NumPy spec over the last axis.

    Args:
        x: int16 array, rank >= 1.
        input_multiplier, input_left_shift: From :func:`softmax16_params`.

    Returns:
        int16 array of ``x``'s shape (output scale 1/32768, zero point 0).
    """
    x, q, shift = _check(x, input_multiplier, input_left_shift)
    if x.size == 0:
        return x.copy()
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)  # (R, n)
    diff = rows - rows.max(axis=1, keepdims=True)  # (R, n) in [-65535, 0]
    scaled = fp.multiply_by_quantized_multiplier(diff, q, shift).astype(np.int64)
    sat = np.clip(scaled + 32767, -32768, 32767).astype(np.int16)
    e = lut16_lookup_reference(sat, softmax_exp_lut16()).astype(np.int64)  # (R, n) Q0.15
    total = e.sum(axis=1)  # (R,) int32 in LiteRT
    if total.max() > _I32_MAX:
        raise _sum_overflow(total.max())
    bit_length = sum(((total >> b) > 0).astype(np.int64) for b in range(32))
    headroom_plus_one = 32 - bit_length  # clz of a positive int32
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    sym = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767).astype(np.int16)
    recip = lut16_lookup_reference(sym, softmax_reciprocal_lut16()).astype(np.int64)  # (R,) Q0.15
    right_shift = (31 - headroom_plus_one)[:, None]
    y = (e * recip[:, None] + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(y, 0, 32767).astype(np.int16).reshape(x.shape)


@numba.njit(cache=True)
def _softmax16_kernel(rows, q, shift, exp_lut, recip_lut):
    out = np.empty(rows.shape, np.int16)
    e = np.empty(rows.shape[1], np.int64)
    for r in range(rows.shape[0]):
        mx = np.int64(-32768)
        for j in range(rows.shape[1]):
            mx = max(mx, np.int64(rows[r, j]))
        total = np.int64(0)
        for j in range(rows.shape[1]):
            scaled = np.int64(fp._mbqm_double_nb(np.int64(rows[r, j]) - mx, q, shift))
            e[j] = _lut16_value(min(max(scaled + 32767, np.int64(-32768)), np.int64(32767)), exp_lut)
            total += e[j]
        if total > 2147483647:
            return out, total
        headroom_plus_one = np.int64(32)
        while (total >> (np.int64(32) - headroom_plus_one)) > 0:
            headroom_plus_one -= 1
        shifted = ((total << (headroom_plus_one - 1)) + np.int64(8192)) >> np.int64(14)
        sym = min(max(shifted - np.int64(98304), np.int64(-32768)), np.int64(32767))
        recip = _lut16_value(sym, recip_lut)
        right_shift = np.int64(31) - headroom_plus_one
        for j in range(rows.shape[1]):
            y = (e[j] * recip + (np.int64(1) << (right_shift - 1))) >> right_shift
            out[r, j] = min(max(y, np.int64(0)), np.int64(32767))
    return out, np.int64(0)


def softmax16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eqs. (1)-(2): the Numba kernel (equal to :func:`softmax16_reference`)."""
    x, q, shift = _check(x, input_multiplier, input_left_shift)
    if x.size == 0:
        return x.copy()
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    out, overflow = _softmax16_kernel(rows, q, shift, softmax_exp_lut16(), softmax_reciprocal_lut16())
    if overflow:
        raise _sum_overflow(overflow)
    return out.reshape(x.shape)

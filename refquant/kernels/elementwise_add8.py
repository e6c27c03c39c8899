r"""TFLite's optimized int8 ADD: SIMD blocks that fold shifts and narrow to int16 without saturation.

TFLite ADD on int8 codes shares its offline parameters with the reference kernel
(:func:`refquant.kernels.elementwise.fixed_point_add_params`, left shift $L = 20$: Q31 multipliers
$M_a, M_b, M_y$ with shifts $e_a, e_b, e_y \le 0$). The reference computes, per element, with
$\hat a = a - Z_a$, $\hat b = b - Z_b$, three double-rounding MBQM:

$$ y = \operatorname{clamp}\big(\mathrm{MBQM}(\mathrm{MBQM}(\hat a 2^{L}, M_a, e_a) + \mathrm{MBQM}(\hat b 2^{L}, M_b, e_b),
   M_y, e_y) + Z_y\big) \tag{1} $$

The builtin optimized kernel (``optimized_integer_ops``, NEON intrinsics through NEON_2_SSE on
x86) runs two SIMD loops, each over whole blocks with eq. (1) on the remainder:

* ``AddElementwiseInt8``, blocks of 16: each input's shift folded into the left shift (one
  rounding per input), the output stage's int32 narrowed to int16 **without saturation**
  (``vmovn_s32``), $Z_y$ added in int16 with wrap-around (``vaddq_s16``), then saturated to int8
  (``vqmovn_s16``) and clamped:

  $$ s = \mathrm{RDBPOT}(\mathrm{SRDHM}(\mathrm{SRDHM}(\mathrm{shl}(\hat a, L + e_a), M_a) +
     \mathrm{SRDHM}(\mathrm{shl}(\hat b, L + e_b), M_b), M_y), -e_y), \quad
     y = \operatorname{clamp}(\mathrm{sat}_8(\mathrm{wrap}_{16}(\mathrm{wrap}_{16}(s) + Z_y))) \tag{2} $$

* ``AddScalarBroadcast``, blocks of 8 (one operand a scalar, the other a run of ``size`` codes):
  each input shifted left by $L$, multiplied, then shifted right by $-e$ with a *flooring* shift
  (``vshlq_s32`` by a negative count), the output stage and narrowing as eq. (2):

  $$ s = \mathrm{RDBPOT}(\mathrm{SRDHM}(\lfloor \mathrm{SRDHM}(\hat a 2^L, M_a) / 2^{-e_a} \rfloor +
     \lfloor \mathrm{SRDHM}(\hat b 2^L, M_b) / 2^{-e_b} \rfloor, M_y), -e_y) \tag{3} $$

with $\mathrm{shl}(x, k)$ a left shift for $k \ge 0$ and a flooring right shift by $-k$ otherwise,
SRDHM the rounding doubling high multiply (``vqrdmulhq_n_s32``) and RDBPOT gemmlowp's rounding
divide (half away from zero). Where the blocks fall follows TFLite's broadcast dispatch
(``ProcessBroadcastShapes`` + ``BinaryBroadcastFiveFold``), in :func:`fixed_point_add8_simd`:

* shapes equal once padded with leading 1s: one flat loop, eq. (2) on the first
  $16\lfloor n/16 \rfloor$ elements (C order);
* a five-fold broadcast whose innermost shared extent $y_4 > 1$: the output is a sequence of
  runs of $y_4$ elements, each run one call of the 16-block loop (eq. (2) on its first
  $16\lfloor y_4/16 \rfloor$ elements);
* a five-fold broadcast with $y_4 = 1$: runs of $y_3$ elements against one scalar, each one call of
  the scalar loop (eq. (3) on its first $8\lfloor y_3/8 \rfloor$ elements);
* any other broadcast (``kGenericBroadcast``): eq. (1) everywhere.

Eqs. (2) and (3) differ from eq. (1) by the rounding of the input stage (one code, near ties) and
where $|s + Z_y| \ge 2^{15}$ (saturating scales: the int16 wrap flips the sign). The per-element
order of the operands does not matter (each input is scaled by its own parameters, then summed).
Measured on LiteRT 2.3.0 x86-64 (AVX-512 VNNI host); an ARM build runs the same NEON code natively.

Element-wise: one plain NumPy implementation, vectorized.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..dtypes import get_format
from ..errors import QuantizationTypeError, ShapeError
from ._checks import activation_bounds
from .elementwise import FixedPointAddParams, fixed_point_add

__all__ = ["ADD8_SIMD_BLOCK", "ADD8_SCALAR_BLOCK", "broadcast_runs", "fixed_point_add8_simd"]

#: Elements per SIMD block of the element-wise loop (one int8x16 load per input).
ADD8_SIMD_BLOCK = 16
#: Elements per SIMD block of the scalar-broadcast loop (one int8x8 load).
ADD8_SCALAR_BLOCK = 8


def _shl(x: np.ndarray, k: int) -> np.ndarray:
    """``vshlq_s32`` by one count: left for ``k >= 0``, a flooring (arithmetic) right shift by ``-k`` otherwise."""
    return fp._wrap32(x << k) if k >= 0 else x >> -k


def broadcast_runs(a_shape, b_shape) -> tuple[str, int]:
    """TFLite's ``ProcessBroadcastShapes`` for two operand shapes: ``("flat", n)``, ``("runs", y4)`` (the
    element-wise loop on runs of ``y4``), ``("scalar", y3)`` (the scalar loop on runs of ``y3``) or
    ``("generic", 0)``."""
    a_shape = V.as_int_sequence(a_shape, "a_shape", minimum=0)
    b_shape = V.as_int_sequence(b_shape, "b_shape", minimum=0)
    rank = max(len(a_shape), len(b_shape))
    s0 = (1,) * (rank - len(a_shape)) + a_shape
    s1 = (1,) * (rank - len(b_shape)) + b_shape
    if s0 == s1:
        return "flat", int(np.prod(s0, dtype=np.int64))
    first = None
    for i in range(rank - 1, -1, -1):
        if s0[i] == s1[i]:
            continue
        if s0[i] == 1 or s1[i] == 1:
            first = s0[i] == 1  # kFirstInputBroadcastsFast
            break
        return "generic", 0
    sa, sb = (s0, s1) if first else (s1, s0)
    y = [1] * 5
    i = rank - 1
    while i >= 0 and sa[i] == sb[i]:
        y[4] *= sb[i]
        i -= 1
    while i >= 0 and sa[i] == 1:
        y[3] *= sb[i]
        i -= 1
    while i >= 0 and sa[i] == sb[i]:
        y[2] *= sa[i]
        i -= 1
    while i >= 0 and sb[i] == 1:
        y[1] *= sa[i]
        i -= 1
    while i >= 0 and sa[i] == sb[i]:
        y[0] *= sb[i]
        i -= 1
    if i >= 0:
        return "generic", 0
    return ("runs", y[4]) if y[4] > 1 else ("scalar", y[3])


def _output_stage(s, zy: int, lo: int, hi: int) -> np.ndarray:
    """``RDBPOT`` done: ``vmovn_s32`` (wrap to int16), ``vaddq_s16`` with $Z_y$ (wraps), ``vqmovn_s16``, clamp."""
    wrap16 = lambda v: ((v + 2 ** 15) & 0xFFFF) - 2 ** 15  # noqa: E731
    return np.clip(np.clip(wrap16(wrap16(s) + zy), -128, 127), lo, hi)


def _blocks16(x, y, p: FixedPointAddParams) -> np.ndarray:
    """Eq. (2) before the narrowing: ``x``, ``y`` int64 offset codes."""
    srdhm = fp.saturating_rounding_doubling_high_mul
    xa = srdhm(_shl(x, p.left_shift + p.a_shift), p.a_multiplier).astype(np.int64)
    xb = srdhm(_shl(y, p.left_shift + p.b_shift), p.b_multiplier).astype(np.int64)
    s = srdhm(fp._wrap32(xa + xb), p.output_multiplier)
    return fp.rounding_divide_by_pot(s, -p.output_shift).astype(np.int64)


def _blocks8(x, y, p: FixedPointAddParams) -> np.ndarray:
    """Eq. (3) before the narrowing."""
    srdhm = fp.saturating_rounding_doubling_high_mul
    xa = _shl(srdhm(_shl(x, p.left_shift), p.a_multiplier).astype(np.int64), p.a_shift)
    xb = _shl(srdhm(_shl(y, p.left_shift), p.b_multiplier).astype(np.int64), p.b_shift)
    s = srdhm(fp._wrap32(xa + xb), p.output_multiplier)
    return fp.rounding_divide_by_pot(s, -p.output_shift).astype(np.int64)


def fixed_point_add8_simd(a, a_zero_point, b, b_zero_point, y_zero_point, params: FixedPointAddParams, *,
                          act_min=None, act_max=None) -> np.ndarray:
    """TFLite's optimized int8 ADD: eqs. (1)-(3) where the broadcast dispatch puts them (module docstring).

    Args:
        a, b: int8 arrays that broadcast (NumPy rules).
        a_zero_point, b_zero_point, y_zero_point: ints in the int8 range.
        params: From :func:`refquant.kernels.elementwise.fixed_point_add_params` (left shift 20).
        act_min, act_max: Fused-activation clamp (default: the int8 range).

    Returns:
        int8 array of the broadcast shape.

    Raises:
        QuantizationTypeError: ``a`` or ``b`` not int8, ``params`` not left shift 20.
        QuantizationValueError: A zero point outside the int8 range.
        ShapeError: Shapes that do not broadcast.
    """
    a = V.as_typed_array(a, "a", ("int8",), array_only=True)
    b = V.as_typed_array(b, "b", ("int8",), array_only=True)
    if not isinstance(params, FixedPointAddParams) or params.left_shift != 20:
        raise QuantizationTypeError(f"params must be a FixedPointAddParams with left_shift 20, got {V.describe(params)}")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"a and b must broadcast together, got shapes {a.shape} and {b.shape}") from None
    lo, hi = activation_bounds(act_min, act_max, np.int8)
    fmt = get_format("int8")
    za, zb, zy = (np.int8(V.as_scalar_zero_point(z, fmt, n)) for z, n in
                  ((a_zero_point, "a_zero_point"), (b_zero_point, "b_zero_point"), (y_zero_point, "y_zero_point")))
    y = fixed_point_add(a, za, b, zb, zy, params, act_min=lo, act_max=hi).ravel()  # eq. (1)
    kind, run = broadcast_runs(a.shape, b.shape)
    if kind == "generic" or y.size == 0:
        return y.reshape(shape)
    block, stage = (ADD8_SCALAR_BLOCK, _blocks8) if kind == "scalar" else (ADD8_SIMD_BLOCK, _blocks16)
    pos = np.arange(y.size, dtype=np.int64) % run  # position inside its run (one loop call)
    inside = pos < run - run % block
    if not inside.any():
        return y.reshape(shape)
    x1 = np.broadcast_to(V.native(a), shape).ravel()[inside].astype(np.int64) - int(za)
    x2 = np.broadcast_to(V.native(b), shape).ravel()[inside].astype(np.int64) - int(zb)
    y[inside] = _output_stage(stage(x1, x2, params), int(zy), lo, hi)
    return y.reshape(shape)

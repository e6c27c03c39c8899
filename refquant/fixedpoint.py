"""gemmlowp / TFLite fixed-point runtime primitives: SRDHM, RDBPOT and requantization.

The last step of an integer kernel multiplies each int32 accumulator by a real multiplier
stored, TFLite's way, as a Q0.31 integer $q$ and a power-of-two ``shift`` (+ left, − right):

$$ M \\approx q \\cdot 2^{\\text{shift} - 31} \\tag{1} $$

(eq. (1) of :mod:`refquant.fixedpoint_multiplier`, which derives them). This module applies
it with integers only, as each backend compiles it.

The work has two halves, kept apart as gemmlowp's ``quantization_example.cc`` does:

* **offline** (float allowed, runs once per model): :func:`~refquant.fixedpoint_multiplier.quantize_multiplier`
  and friends turn the double $M$ into $(q, \\text{shift})$. They live in
  :mod:`refquant.fixedpoint_multiplier` and are re-exported here, so
  ``from refquant.fixedpoint import quantize_multiplier`` works;
* **runtime** (integers only, this module): :func:`saturating_rounding_doubling_high_mul`,
  :func:`rounding_divide_by_pot` and :func:`multiply_by_quantized_multiplier`
  (MBQM), in each of the rounding variants real backends compile.

Every NumPy function has a Numba scalar twin at the bottom of the file
(``mbqm_*_scalar``) for kernels that loop; tests prove them equal bit for bit.

Sources: tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/{common.cc,cppmath.h}``;
google/gemmlowp ``fixedpoint/fixedpoint.h``; google/ruy ``ruy/apply_multiplier.cc`` and
``ruy/kernel_avx2_fma.cc``; LiteRT ``reference/depthwiseconv_uint8.h``. See the Conventions
page for the rounding vocabulary (RNE, RHAZ, RHU).

Added in 0.1.0.
"""

from __future__ import annotations

import numbers

import numba
import numpy as np

from numba.extending import overload

from ._validate import as_choice, as_int_scalar, asarray, describe
from .dtypes import INT32_MAX, INT32_MIN
from .dtypes import wrap_int32 as _wrap32  # the one NumPy definition; imported from here by fixedpoint_math
from .errors import QuantizationTypeError, QuantizationValueError, ShapeError
from .fixedpoint_multiplier import (  # offline half, re-exported: see the module docstring
    calculate_input_radius,
    integer_frexp,
    preprocess_softmax_scaling,
    quantize_multiplier,
    quantize_multiplier_array,
    quantize_multiplier_greater_than_one,
    quantize_multiplier_smaller_than_one_exp,
)

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "MBQM_VARIANTS",
    # offline, from refquant.fixedpoint_multiplier
    "integer_frexp",
    "quantize_multiplier",
    "quantize_multiplier_array",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "preprocess_softmax_scaling",
    "calculate_input_radius",
    # runtime
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_int16",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "mbqm_double_scalar",
    "mbqm_single_scalar",
    "mbqm_double_up_wrap_scalar",
    "mbqm_double_up_scalar",
    "mbqm_int64_reduced16_scalar",
]

INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1

# variant -> (allowed quantized_multiplier range, allowed shift range, allowed x range)
_I47 = 1 << 47
MBQM_VARIANTS = {
    "double": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
    "single": ((0, INT32_MAX), (-31, 30), (INT32_MIN, INT32_MAX)),
    "int64_reduced16": ((0, INT32_MAX), (-31, 7), (-_I47, _I47 - 1)),
    "double_up_wrap": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
    "double_up": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
}


# --------------------------------------------------------------------------- validation


def _as_int64(value, name: str, lo: int, hi: int) -> np.ndarray:
    """Integer array-like -> int64 array, every value checked to be in [lo, hi]."""
    arr = asarray(value, name, kinds=None, what="an integer (array)")
    if arr.dtype.kind == "O":  # Python ints too large for int64 land here
        flat = arr.ravel().tolist()
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in flat):
            raise QuantizationTypeError(f"{name} must hold integers, got {describe(value)}")
        bad = [v for v in flat if not lo <= v <= hi]
        if bad:
            raise QuantizationValueError(f"{name} must be in [{lo}, {hi}], got {bad[0]}")
        return np.asarray(flat, dtype=np.int64).reshape(arr.shape)
    if arr.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer (array), got dtype {arr.dtype}")
    if arr.size:
        bad = (arr < lo) | (arr > hi)
        if bad.any():
            raise QuantizationValueError(
                f"{name} must be in [{lo}, {hi}], got {arr[bad].ravel()[0]}"
            )
    return arr.astype(np.int64)


def _broadcast(*arrays: np.ndarray, names: str) -> list[np.ndarray]:
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError as err:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{names} must broadcast together, got shapes {shapes}") from err


def _out(r: np.ndarray, dtype=np.int32):
    """int64 result -> int32 array (0-d becomes a NumPy scalar)."""
    return r.astype(dtype)[()]


# --------------------------------------------------------------------------- runtime primitives


def _srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SRDHM on int64 arrays holding int32 values (no validation)."""
    r = (a * b + (1 << 30)) >> 31  # floor((ab + 2^30) / 2^31); |ab| <= 2^62: exact
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, r)


def _rdbpot(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """RDBPOT on int64 arrays, 0 <= e <= 31 (no validation)."""
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def saturating_rounding_doubling_high_mul(a, b):
    """Rounded high half of the doubled product of two int32, ``gemmlowp::SaturatingRoundingDoublingHighMul``.

    $$ \\mathrm{SRDHM}(a, b) = \\left\\lfloor \\frac{2ab + 2^{31}}{2^{32}} \\right\\rfloor
    = \\mathrm{RHU}\\!\\left(\\frac{ab}{2^{31}}\\right) $$

    i.e. Q0.31 multiplication rounded to nearest, ties toward $+\\infty$ for both signs
    (upstream writes it with a sign-dependent nudge and a truncating division; the two
    forms are equal). Saturates only for ``INT32_MIN * INT32_MIN`` -> ``INT32_MAX``.
    The ARM NEON ``VQRDMULH`` / ``SQRDMULH`` result.

    Args:
        a, b: int32-valued integer arrays or scalars; broadcast together.

    Returns:
        int32 array of the broadcast shape (a NumPy scalar for scalar inputs).
    """
    a64 = _as_int64(a, "a", INT32_MIN, INT32_MAX)
    b64 = _as_int64(b, "b", INT32_MIN, INT32_MAX)
    a64, b64 = _broadcast(a64, b64, names="a and b")
    return _out(_srdhm(a64, b64))


def saturating_rounding_doubling_high_mul_int16(a, b):
    """The int16 ``gemmlowp::SaturatingRoundingDoublingHighMul``: Q0.15 product.

    $\\mathrm{SRDHM}_{16}(a, b) = \\lfloor (2ab + 2^{15}) / 2^{16} \\rfloor$ (RHU of
    $ab/2^{15}$); saturates only ``INT16_MIN * INT16_MIN`` -> ``INT16_MAX``. ARM
    ``VQRDMULH.S16``.

    Args:
        a, b: int16-valued integer arrays or scalars; broadcast together.

    Returns:
        int16 array of the broadcast shape (a NumPy scalar for scalar inputs).
    """
    a64 = _as_int64(a, "a", INT16_MIN, INT16_MAX)
    b64 = _as_int64(b, "b", INT16_MIN, INT16_MAX)
    a64, b64 = _broadcast(a64, b64, names="a and b")
    r = (a64 * b64 + (1 << 14)) >> 15
    r = np.where((a64 == INT16_MIN) & (b64 == INT16_MIN), INT16_MAX, r)
    return _out(r, np.int16)


def rounding_divide_by_pot(x, exponent):
    """Divide int32 by $2^{\\text{exponent}}$, rounding half away from zero, ``gemmlowp::RoundingDivideByPOT``.

    $$ \\mathrm{RDBPOT}(x, e) = \\mathrm{RHAZ}(x / 2^{e}), \\quad 0 \\le e \\le 31 $$

    computed as upstream: ``mask = 2^e - 1``, ``remainder = x & mask``,
    ``threshold = (mask >> 1) + (x < 0)``, result ``(x >> e) + (remainder > threshold)``.
    Ties: -3/2 -> -2, -1/2 -> -1, 1/2 -> 1, 3/2 -> 2. Never overflows. (The NEON
    version adds a fixup before ``vrshl`` so that it matches this scalar RHAZ.)

    Args:
        x: int32-valued integer array or scalar.
        exponent: Integer array or scalar in [0, 31]; broadcasts with ``x``.

    Returns:
        int32 array of the broadcast shape (a NumPy scalar for scalar inputs).
    """
    x64 = _as_int64(x, "x", INT32_MIN, INT32_MAX)
    e64 = _as_int64(exponent, "exponent", 0, 31)
    x64, e64 = _broadcast(x64, e64, names="x and exponent")
    return _out(_rdbpot(x64, e64))


# --------------------------------------------------------------------------- MBQM variants (NumPy)
# All take int64 arrays holding validated values and return int64 arrays holding int32 values.


def _mbqm_double(x, q, shift):
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    return _rdbpot(_srdhm(_wrap32(x << ls), q), rs)  # x * (1 << ls) wraps like int32 C code


def _mbqm_single(x, q, shift):
    total_shift = 31 - shift  # in [1, 62]
    return _wrap32((x * q + (np.int64(1) << (total_shift - 1))) >> total_shift)


def _mbqm_int64_reduced16(x, q, shift):
    reduced = np.where(q < 0x7FFF0000, (q + (1 << 15)) >> 16, 0x7FFF)  # 16-bit multiplier
    total_shift = 15 - shift  # in [8, 46]
    return _wrap32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def _rounding_right_shift_up(v, rs):
    """RHU of v / 2^rs in exact int64 (rs = 0 leaves v unchanged)."""
    nudge = np.where(rs > 0, np.int64(1) << np.maximum(rs - 1, 0), 0)
    return (v + nudge) >> rs


def _mbqm_double_up_wrap(x, q, shift):
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    r1 = _wrap32((_wrap32(x << ls) * q + (1 << 30)) >> 31)  # low 32 bits of the 64-bit shift
    return _rounding_right_shift_up(r1, rs)


def _mbqm_double_up(x, q, shift):
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    return _rounding_right_shift_up(_srdhm(_wrap32(x << ls), q), rs)


_MBQM_IMPL = {
    "double": _mbqm_double,
    "single": _mbqm_single,
    "int64_reduced16": _mbqm_int64_reduced16,
    "double_up_wrap": _mbqm_double_up_wrap,
    "double_up": _mbqm_double_up,
}


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift, *, variant: str = "double"):
    """Requantize: multiply integers by $q \\cdot 2^{\\text{shift}-31}$ the way a backend does.

    Mirrors ``tflite::MultiplyByQuantizedMultiplier`` (MBQM) and the variants other
    builds and kernels compile. With $l = \\max(\\text{shift}, 0)$ and
    $r = \\max(-\\text{shift}, 0)$, and $x' = \\mathrm{wrap}_{32}(x \\cdot 2^{l})$
    (C ``x * (1 << left_shift)`` on int32, which wraps in practice; callers keep it
    in range):

    | variant | result | rounding | mirrors |
    |---|---|---|---|
    | ``"double"`` (default) | $\\mathrm{RDBPOT}(\\mathrm{SRDHM}(x', q), r)$ | RHU then RHAZ | TFLite ``common.cc`` (default build), reference Conv/DepthwiseConv/Add/Mul |
    | ``"single"`` | $\\lfloor (xq + 2^{30-\\text{shift}}) / 2^{31-\\text{shift}} \\rfloor$ | one RHU | ``TFLITE_SINGLE_ROUNDING=1`` builds; ruy ``detail::MultiplyByQuantizedMultiplier``; NEON ``MultiplyByQuantizedMultiplier4Rows`` in the single build (for ``shift >= 0`` NEON first shifts $x$ left by ``shift + 1``, which wraps one bit earlier) |
    | ``"int64_reduced16"`` | $\\lfloor (x\\tilde q + 2^{14-\\text{shift}}) / 2^{15-\\text{shift}} \\rfloor$, $\\tilde q = (q + 2^{15}) \\gg 16$ if $q < \\text{0x7FFF0000}$ else $\\text{0x7FFF}$ | RHU on a 16-bit rounded multiplier | the ``int64_t x`` overload (16x8 kernels), same in both builds |
    | ``"double_up_wrap"`` | $r_1 = \\mathrm{wrap}_{32}\\lfloor (x'q + 2^{30}) / 2^{31} \\rfloor$, then $\\lfloor (r_1 + 2^{r-1}) / 2^{r} \\rfloor$ if $r > 0$ | RHU then RHU | ruy ``Kernel8bitAvx2`` (TFLite "opt" FC/Conv on x86) |
    | ``"double_up"`` | $\\lfloor (\\mathrm{SRDHM}(x', q) + 2^{r-1}) / 2^{r} \\rfloor$ if $r > 0$ | RHU then RHU | ``DepthwiseConvOutputRounding::kUpward``; NEON ``4Rows`` double build (``vrshlq(vqrdmulhq(x << l, q), -r)``) |

    When ``shift >= 0`` all variants but ``"int64_reduced16"`` give one RHU and agree,
    unless $x \\cdot 2^{l}$ leaves int32 (``"single"`` keeps it in 64 bits) or
    $x' = q = \\mathrm{INT32\\_MIN}$.
    Where ``"double"`` and ``"single"`` disagree they differ by exactly 1
    (tensorflow/tensorflow#25087: ``x=7984, q=1583594044, shift=-9`` -> 12 vs 11).

    Corner cases and overflow, as the release binaries behave:

    * ``"double"``: SRDHM saturates only for ``x' = q = INT32_MIN``; RDBPOT never overflows.
    * ``"single"`` / ``"int64_reduced16"``: the 64-bit result is cast to int32 and wraps
      (upstream's range DCHECK is compiled out); in-range results are exact.
    * ``"double_up_wrap"``: $r_1$ keeps the low 32 bits of the 64-bit shift (e.g.
      ``x' = q = INT32_MIN`` gives INT32_MIN). The kernel's rounding right shift detects
      $r_1 + 2^{r-1} > \\text{INT32\\_MAX}$ and then returns $2^{31-r}$, which is exactly
      the value computed here in int64, so no special case is needed. This is the
      rounding_right_shift form of ``kernel_avx2_fma.cc`` that LiteRT 2.3 runs
      (verified empirically); other ruy revisions fold the
      right shift into the 64-bit shift, which equals ``"single"``. Since $r_1$ is
      SRDHM without its saturation, ``"double_up_wrap"`` equals ``"double_up"`` everywhere
      except ``x' = q = INT32_MIN``.
    * ``"double_up"``: computed exactly in int64 like NEON ``vrshl``; TFLite's scalar C
      ``kUpward`` adds the nudge in int32 and would wrap only when
      $\\mathrm{SRDHM} > \\text{INT32\\_MAX} - 2^{r-1}$, which int8 kernels never reach.

    Args:
        x: Integer array or scalar. int32 values; for ``"int64_reduced16"``
            int64 values in $[-2^{47}, 2^{47})$.
        quantized_multiplier: Integer array or scalar (per-channel arrays broadcast).
            In $[-2^{31}, 2^{31}-1]$ for ``"double"``, ``"double_up"``, ``"double_up_wrap"``;
            in $[0, 2^{31}-1]$ for ``"single"`` and ``"int64_reduced16"``.
        shift: Integer array or scalar, + left / - right. In $[-31, 31]$ for
            ``"double"``, ``"double_up"``, ``"double_up_wrap"``; $[-31, 30]$ for ``"single"``;
            $[-31, 7]$ for ``"int64_reduced16"``.
        variant: One of :data:`MBQM_VARIANTS`.

    Returns:
        int32 array of the broadcast shape (a NumPy scalar when all inputs are scalars).

    Raises:
        QuantizationValueError: unknown ``variant`` or a value outside its range.
        QuantizationTypeError: a non-integer input.
        ShapeError: inputs that do not broadcast.
    """
    variant = as_choice(variant, "variant", sorted(MBQM_VARIANTS))
    (q_lo, q_hi), (s_lo, s_hi), (x_lo, x_hi) = MBQM_VARIANTS[variant]
    x64 = _as_int64(x, "x", x_lo, x_hi)
    q64 = _as_int64(quantized_multiplier, "quantized_multiplier", q_lo, q_hi)
    s64 = _as_int64(shift, "shift", s_lo, s_hi)
    x64, q64, s64 = _broadcast(x64, q64, s64, names="x, quantized_multiplier and shift")
    return _out(_MBQM_IMPL[variant](x64, q64, s64))


# --------------------------------------------------------------------------- Numba scalar twins
# For kernels' inner loops. No validation: the kernel validates its arguments once, at its
# public boundary, with the ranges of MBQM_VARIANTS. Each equals the NumPy variant above
# bit for bit (tests/test_fixedpoint.py), also with NUMBA_DISABLE_JIT=1.


@numba.njit(cache=True)
def _wrap32_scalar(v):
    """Numba twin of :func:`refquant.dtypes.wrap_int32` for one int64 value."""
    return ((np.int64(v) + np.int64(2147483648)) & np.int64(0xFFFFFFFF)) - np.int64(2147483648)


@numba.njit(cache=True)
def _srdhm_scalar(a, b):
    a64 = np.int64(a)
    b64 = np.int64(b)
    if a64 == -2147483648 and b64 == -2147483648:
        return np.int64(2147483647)
    return (a64 * b64 + np.int64(1073741824)) >> np.int64(31)


@numba.njit(cache=True)
def _rdbpot_scalar(x, exponent):
    x64 = np.int64(x)
    e = np.int64(exponent)
    mask = (np.int64(1) << e) - np.int64(1)
    remainder = x64 & mask
    threshold = (mask >> np.int64(1)) + (np.int64(1) if x64 < 0 else np.int64(0))
    return (x64 >> e) + (np.int64(1) if remainder > threshold else np.int64(0))


@numba.njit(cache=True)
def _split_shift(shift):
    s = np.int64(shift)
    ls = s if s > 0 else np.int64(0)
    rs = -s if s < 0 else np.int64(0)
    return ls, rs


@numba.njit(cache=True)
def _round_up_shift_scalar(v, rs):
    if rs == 0:
        return np.int64(v)
    return (np.int64(v) + (np.int64(1) << (rs - np.int64(1)))) >> rs


@numba.njit(cache=True)
def _mbqm_double_nb(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="double")`` for one int32."""
    ls, rs = _split_shift(shift)
    high = _srdhm_scalar(_wrap32_scalar(np.int64(x) << ls), q)
    return np.int32(_rdbpot_scalar(high, rs))


@numba.njit(cache=True)
def _mbqm_single_nb(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="single")`` for one int32."""
    total_shift = np.int64(31) - np.int64(shift)
    r = (np.int64(x) * np.int64(q) + (np.int64(1) << (total_shift - np.int64(1)))) >> total_shift
    return np.int32(_wrap32_scalar(r))


@numba.njit(cache=True)
def _mbqm_double_up_wrap_nb(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="double_up_wrap")`` for one int32."""
    ls, rs = _split_shift(shift)
    shifted = _wrap32_scalar(np.int64(x) << ls)
    r1 = _wrap32_scalar((shifted * np.int64(q) + np.int64(1073741824)) >> np.int64(31))
    return np.int32(_round_up_shift_scalar(r1, rs))


@numba.njit(cache=True)
def _mbqm_double_up_nb(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="double_up")`` for one int32."""
    ls, rs = _split_shift(shift)
    high = _srdhm_scalar(_wrap32_scalar(np.int64(x) << ls), q)
    return np.int32(_round_up_shift_scalar(high, rs))


@numba.njit(cache=True)
def _mbqm_int64_reduced16_nb(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="int64_reduced16")``."""
    q64 = np.int64(q)
    reduced = (q64 + np.int64(32768)) >> np.int64(16) if q64 < 0x7FFF0000 else np.int64(0x7FFF)
    total_shift = np.int64(15) - np.int64(shift)
    r = (np.int64(x) * reduced + (np.int64(1) << (total_shift - np.int64(1)))) >> total_shift
    return np.int32(_wrap32_scalar(r))


# --------------------------------------------------------------------------- public scalar entry points
# ``mbqm_<variant>_scalar(x, q, shift)`` called from Python validates its three integers against
# MBQM_VARIANTS (named errors, no wrap of a huge int) and runs the Numba twin; called inside a
# user's ``@numba.njit`` function it compiles straight to the twin (``numba.extending.overload``),
# as the kernels do with the private ``_mbqm_<variant>_nb`` dispatchers.


def _scalar_entry(variant: str, twin):
    (q_lo, q_hi), (s_lo, s_hi), (x_lo, x_hi) = MBQM_VARIANTS[variant]

    def entry(x, q, shift):
        return twin(as_int_scalar(x, "x", lo=x_lo, hi=x_hi), as_int_scalar(q, "q", lo=q_lo, hi=q_hi),
                    as_int_scalar(shift, "shift", lo=s_lo, hi=s_hi))

    entry.__name__ = entry.__qualname__ = f"mbqm_{variant}_scalar"
    entry.__doc__ = (f"``multiply_by_quantized_multiplier(x, q, shift, variant={variant!r})`` for one value, as a "
                     f"NumPy int32; the arguments are integers in the variant's ranges (:data:`MBQM_VARIANTS`). "
                     f"Inside ``@numba.njit`` code it is the Numba scalar twin (no validation).")

    @overload(entry)
    def _entry_in_numba(x, q, shift):
        return lambda x, q, shift: twin(x, q, shift)

    return entry


mbqm_double_scalar = _scalar_entry("double", _mbqm_double_nb)
mbqm_single_scalar = _scalar_entry("single", _mbqm_single_nb)
mbqm_double_up_wrap_scalar = _scalar_entry("double_up_wrap", _mbqm_double_up_wrap_nb)
mbqm_double_up_scalar = _scalar_entry("double_up", _mbqm_double_up_nb)
mbqm_int64_reduced16_scalar = _scalar_entry("int64_reduced16", _mbqm_int64_reduced16_nb)

"""gemmlowp / TFLite fixed-point primitives: quantized multipliers and requantization.

An integer kernel (Conv, FullyConnected, Add, ...) ends with a real multiplier
$M$ (e.g. $M = S_x S_w / S_y$) applied to an int32 accumulator. TFLite stores $M$
as a Q0.31 integer `quantized_multiplier` $q \\in [2^{30}, 2^{31})$ and a
power-of-two exponent `shift`:

$$ M \\approx q \\cdot 2^{\\text{shift} - 31}, \\qquad \\text{shift} > 0
\\text{ is a left shift, } \\text{shift} < 0 \\text{ a right shift.} \\tag{1} $$

This module has two halves, kept apart as gemmlowp's ``quantization_example.cc``
does:

* **offline** (float allowed, runs once per model): :func:`quantize_multiplier`
  and friends turn the double $M$ into $(q, \\text{shift})$;
* **runtime** (integers only): :func:`saturating_rounding_doubling_high_mul`,
  :func:`rounding_divide_by_pot` and :func:`multiply_by_quantized_multiplier`
  (MBQM), in each of the rounding variants real backends compile.

Every NumPy function has a Numba scalar twin at the bottom of the file
(``mbqm_*_scalar``) for kernels that loop; tests prove them equal bit for bit.

Sources: tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/{common.cc,
quantization_util.cc,cppmath.h}``; google/gemmlowp ``fixedpoint/fixedpoint.h``;
google/ruy ``ruy/apply_multiplier.cc`` and ``ruy/kernel_avx2_fma.cc``; LiteRT
``reference/depthwiseconv_uint8.h``. See the Conventions page for the rounding
vocabulary (RNE, RHAZ, RHU).

Added in 0.1.0.
"""

from __future__ import annotations

import math
import numbers
import struct

import numba
import numpy as np

from .errors import QuantizationTypeError, QuantizationValueError, ShapeError

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "MBQM_VARIANTS",
    "integer_frexp",
    "quantize_multiplier",
    "quantize_multiplier_array",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "preprocess_softmax_scaling",
    "calculate_input_radius",
    "saturating_rounding_doubling_high_mul",
    "saturating_rounding_doubling_high_mul_int16",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "mbqm_double_scalar",
    "mbqm_single_scalar",
    "mbqm_ruy_avx2_scalar",
    "mbqm_double_up_scalar",
    "mbqm_int64_reduced16_scalar",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1

# variant -> (allowed quantized_multiplier range, allowed shift range, allowed x range)
_I47 = 1 << 47
MBQM_VARIANTS = {
    "double": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
    "single": ((0, INT32_MAX), (-31, 30), (INT32_MIN, INT32_MAX)),
    "int64_reduced16": ((0, INT32_MAX), (-31, 7), (-_I47, _I47 - 1)),
    "ruy_avx2": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
    "double_up": ((INT32_MIN, INT32_MAX), (-31, 31), (INT32_MIN, INT32_MAX)),
}


# --------------------------------------------------------------------------- validation


def _as_int64(value, name: str, lo: int, hi: int) -> np.ndarray:
    """Integer array-like -> int64 array, every value checked to be in [lo, hi]."""
    arr = np.asarray(value)
    if arr.dtype.kind == "O":  # Python ints too large for int64 land here
        flat = arr.ravel().tolist()
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in flat):
            raise QuantizationTypeError(f"{name} must hold integers, got {value!r}")
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


def _as_real(value, name: str) -> float:
    """A finite real scalar -> Python float (float32 widens exactly, as C's (double))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise QuantizationTypeError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:  # a Python int beyond the double range
        v = math.inf
    if not math.isfinite(v):
        raise QuantizationValueError(f"{name} must be finite, got {v}")
    return v


def _broadcast(*arrays: np.ndarray, names: str) -> list[np.ndarray]:
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError as err:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{names} must broadcast together, got shapes {shapes}") from err


def _out(r: np.ndarray, dtype=np.int32):
    """int64 result -> int32 array (0-d becomes a NumPy scalar)."""
    return r.astype(dtype)[()]


def _wrap32(v: np.ndarray) -> np.ndarray:
    """Reduce int64 values modulo 2^32 into [-2^31, 2^31): a C int32 cast / wrapping op."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


# --------------------------------------------------------------------------- offline: M -> (q, shift)


def _round_half_away_double(v: float) -> int:
    """Exact RHAZ of a double (C ``std::round``), with no float rounding of v + 0.5."""
    a = abs(v)
    n = math.floor(a)
    r = n + (1 if a - n >= 0.5 else 0)  # a - n is exact for |a| < 2^52
    return -r if v < 0 else r


def integer_frexp(value) -> tuple[int, int]:
    """Split a double into a Q31 fraction and a shift using integer bit operations only.

    Mirrors ``tflite::IntegerFrExp`` (TFLITE_EMULATE_FLOAT builds of
    ``quantization_util.cc``): the fraction is ``0x40000000 + (top 30 mantissa bits)``
    and 1 is added only if the 22 discarded bits are **strictly greater** than
    ``0x200000``. So exact ties round toward zero, unlike ``frexp`` + ``std::round``
    (RHAZ); the two can differ in the last bit. $\\text{value} \\approx
    \\text{fraction} \\cdot 2^{\\text{shift}-31}$.

    Args:
        value: A Python or NumPy float (float32 widens exactly to double).

    Returns:
        ``(fraction, shift)`` as Python ints. ``fraction`` is in
        $[2^{30}, 2^{31}]$ in magnitude (``2^31`` after a carry), negated for negative
        inputs. Corner cases, as upstream: ±0 -> ``(0, 0)``; NaN -> ``(0, INT_MAX)``;
        +inf -> ``(INT64_MAX, INT_MAX)``; -inf -> ``(INT64_MIN, INT_MAX)``. Like
        upstream, a NaN whose payload sits only in the low 22 mantissa bits reads as
        an infinity, and subnormals get a spurious implicit bit (their shift, about
        -1022, is flushed to zero by :func:`quantize_multiplier` anyway).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise QuantizationTypeError(f"value must be a real number, got {value!r}")
    u = struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    sign = u >> 63
    if u & ~(1 << 63) == 0:
        return 0, 0
    exponent_part = (u >> 52) & 0x7FF
    if exponent_part == 0x7FF:
        if u & 0x000FFFFFFFC00000:  # kFractionMask: only the top 30 mantissa bits
            return 0, INT32_MAX
        return (-(1 << 63) if sign else (1 << 63) - 1), INT32_MAX
    shift = exponent_part - 1023 + 1
    fraction = 0x40000000 + ((u & 0x000FFFFFFFC00000) >> 22)
    if (u & 0x003FFFFF) > 0x00200000:
        fraction += 1
    return (-fraction if sign else fraction), shift


def quantize_multiplier(
    real_multiplier, *, single_rounding: bool = False, emulate_float: bool = False
) -> tuple[int, int]:
    """Turn a real multiplier into TFLite's ``(quantized_multiplier, shift)``, eq. (1).

    Mirrors ``tflite::QuantizeMultiplier`` (``quantization_util.cc``), offline code:

    1. $M = 0$ -> ``(0, 0)``.
    2. $(f, e) = \\mathrm{frexp}(M)$, $f \\in [0.5, 1)$ (negative for $M<0$);
       $q = \\mathrm{RHAZ}(f \\cdot 2^{31})$ in double (``TfLiteRound`` = ``std::round``).
       With ``emulate_float=True``, $(q, e)$ = :func:`integer_frexp` instead.
    3. If $q = 2^{31}$ ($f$ rounded up to 1.0): $q = 2^{30}$, $e = e + 1$. Only the
       positive edge is handled upstream: a negative $M$ just above $-2^{e}$ gives
       $q = -2^{31}$ (INT32_MIN), kept as is.
    4. If $e < -31$: flush to ``(0, 0)`` ($|M| \\lesssim 2^{-32}$).
    5. ``single_rounding`` only (``TFLITE_SINGLE_ROUNDING``): if $e > 30$, saturate to
       ``(2**31 - 1, 30)`` (this also drops the sign of a negative $M$, as upstream).

    Negative multipliers are accepted (upstream's DCHECK is commented out); only
    the ``"double"`` MBQM variants can apply them.

    Args:
        real_multiplier: Finite real scalar (double; a float32 widens exactly).
        single_rounding: Apply step 5, as a ``-DTFLITE_SINGLE_ROUNDING=1`` build.
        emulate_float: Use ``IntegerFrExp`` (``TFLITE_EMULATE_FLOAT`` builds).

    Returns:
        ``(quantized_multiplier, shift)`` as Python ints; $q \\in [-2^{31}, 2^{31}-1]$.

    Raises:
        QuantizationTypeError: ``real_multiplier`` is not a real number.
        QuantizationValueError: ``real_multiplier`` is NaN or infinite.
    """
    m = _as_real(real_multiplier, "real_multiplier")
    if m == 0.0:
        return 0, 0
    if emulate_float:
        q, shift = integer_frexp(m)
    else:
        f, shift = math.frexp(m)
        q = _round_half_away_double(f * float(1 << 31))  # exact product: scaling by 2^31
    assert q <= (1 << 31)  # TFLITE_CHECK(q_fixed <= (1LL << 31))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        shift, q = 0, 0
    if single_rounding and shift > 30:
        shift, q = 30, INT32_MAX
    return int(q), int(shift)


def quantize_multiplier_array(
    reals, *, single_rounding: bool = False, emulate_float: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` applied to each element (``tflite::QuantizeMultiplierArray``).

    Args:
        reals: Float array-like of any shape (per-channel effective scales).
        single_rounding: See :func:`quantize_multiplier`.
        emulate_float: See :func:`quantize_multiplier`.

    Returns:
        ``(quantized_multiplier, shift)``: two int32 arrays of ``reals``' shape.
    """
    arr = np.asarray(reals)
    if arr.dtype.kind not in "fiu":
        raise QuantizationTypeError(f"reals must be a real array, got dtype {arr.dtype}")
    flat = arr.astype(np.float64).ravel()  # float32 -> double is exact
    q = np.empty(flat.shape, np.int32)  # (N,) int32
    s = np.empty(flat.shape, np.int32)  # (N,) int32
    for i, m in enumerate(flat):
        q[i], s[i] = quantize_multiplier(
            float(m), single_rounding=single_rounding, emulate_float=emulate_float
        )
    return q.reshape(arr.shape), s.reshape(arr.shape)


def quantize_multiplier_smaller_than_one_exp(
    real_multiplier, *, single_rounding: bool = False
) -> tuple[int, int]:
    """:func:`quantize_multiplier` for $0 < M < 1$, ``tflite::QuantizeMultiplierSmallerThanOneExp``.

    Returns ``(quantized_multiplier, left_shift)`` with ``left_shift <= 0`` (the name is
    upstream's: a non-positive left shift). Raises :class:`QuantizationValueError`
    where TFLite's CHECKs abort: $M \\notin (0, 1)$, or $M$ so close to 1 that $q$
    rounds to $2^{31}$ and the shift becomes 1 (e.g. ``1 - 1e-15``).
    """
    m = _as_real(real_multiplier, "real_multiplier")
    if not 0.0 < m < 1.0:
        raise QuantizationValueError(f"real_multiplier must be in (0, 1), got {m!r}")
    q, shift = quantize_multiplier(m, single_rounding=single_rounding)
    if shift > 0:
        raise QuantizationValueError(
            f"real_multiplier {m!r} rounds to 2^31 * 2^-31 = 1.0 (shift {shift} > 0); "
            "TFLite's QuantizeMultiplierSmallerThanOneExp CHECK fails"
        )
    return q, shift


def quantize_multiplier_greater_than_one(
    real_multiplier, *, single_rounding: bool = False
) -> tuple[int, int]:
    """:func:`quantize_multiplier` for $M > 1$, ``tflite::QuantizeMultiplierGreaterThanOne``.

    Returns ``(quantized_multiplier, left_shift)`` with ``left_shift >= 0``. Raises
    :class:`QuantizationValueError` where TFLite's CHECK aborts: $M \\le 1$ (note that
    ``1 + 1e-16 == 1.0`` in double).
    """
    m = _as_real(real_multiplier, "real_multiplier")
    if not m > 1.0:
        raise QuantizationValueError(f"real_multiplier must be > 1, got {m!r}")
    q, shift = quantize_multiplier(m, single_rounding=single_rounding)
    if shift < 0:  # unreachable for m > 1; kept to mirror the upstream CHECK
        raise QuantizationValueError(f"left_shift must be >= 0, got {shift}")
    return q, shift


def preprocess_softmax_scaling(
    beta, input_scale, input_integer_bits: int, *, single_rounding: bool = False
) -> tuple[int, int]:
    """Input multiplier of the fixed-point softmax, ``tflite::PreprocessSoftmaxScaling``.

    $$ M = \\min\\left(\\beta \\cdot S_x \\cdot 2^{31 - \\text{input\\_integer\\_bits}},\\;
    M_{max}\\right), \\quad M_{max} = 2^{31}-1 \\;(2^{30}-1 \\text{ with single rounding}) $$

    evaluated in double (``beta * input_scale`` rounds once, the power of two is exact),
    then :func:`quantize_multiplier_greater_than_one`. TFLite passes the float32
    ``beta`` and scale widened to double. Offline code.

    Returns:
        ``(quantized_multiplier, left_shift)`` as Python ints.

    Raises:
        QuantizationValueError: ``input_integer_bits`` outside [1, 31] (``1 << 31``
            overflows C ``int``), or $M \\le 1$ (upstream CHECK).
    """
    b = _as_real(beta, "beta")
    s = _as_real(input_scale, "input_scale")
    if not isinstance(input_integer_bits, numbers.Integral) or not 1 <= input_integer_bits <= 31:
        raise QuantizationValueError(
            f"input_integer_bits must be an int in [1, 31], got {input_integer_bits!r}"
        )
    max_real = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(b * s * float(1 << (31 - int(input_integer_bits))), max_real)
    return quantize_multiplier_greater_than_one(real, single_rounding=single_rounding)


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """Largest input magnitude the fixed-point softmax/logistic/tanh accept, ``tflite::CalculateInputRadius``.

    $$ r = \\left\\lfloor \\frac{(2^{\\text{ib}} - 1) \\cdot 2^{\\text{tsb} - \\text{ib}}}
    {2^{\\text{input\\_left\\_shift}}} \\right\\rfloor $$

    Upstream evaluates this in double and floors; every step is exact in double for
    these ranges, so exact integer arithmetic gives the same value (and equals the
    ``TFLITE_EMULATE_FLOAT`` int64 version).

    Raises:
        QuantizationValueError: ``0 <= input_integer_bits <= total_signed_bits <= 62``
            and ``0 <= input_left_shift <= 62`` do not hold, or the result exceeds
            INT32_MAX (upstream's ``static_cast<int>`` would be undefined).
    """
    for name, v in (("input_integer_bits", input_integer_bits),
                    ("input_left_shift", input_left_shift),
                    ("total_signed_bits", total_signed_bits)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise QuantizationTypeError(f"{name} must be an int, got {v!r}")
    if not 0 <= total_signed_bits <= 62:
        raise QuantizationValueError(f"total_signed_bits must be in [0, 62], got {total_signed_bits}")
    if not 0 <= input_integer_bits <= total_signed_bits:
        raise QuantizationValueError(
            f"input_integer_bits must be in [0, {total_signed_bits}], got {input_integer_bits}"
        )
    if not 0 <= input_left_shift <= 62:
        raise QuantizationValueError(f"input_left_shift must be in [0, 62], got {input_left_shift}")
    r = (((1 << input_integer_bits) - 1) << (total_signed_bits - input_integer_bits)) >> input_left_shift
    if r > INT32_MAX:
        raise QuantizationValueError(f"input radius {r} does not fit int32 (INT32_MAX = {INT32_MAX})")
    return int(r)


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


def _mbqm_ruy_avx2(x, q, shift):
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
    "ruy_avx2": _mbqm_ruy_avx2,
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
    | ``"ruy_avx2"`` | $r_1 = \\mathrm{wrap}_{32}\\lfloor (x'q + 2^{30}) / 2^{31} \\rfloor$, then $\\lfloor (r_1 + 2^{r-1}) / 2^{r} \\rfloor$ if $r > 0$ | RHU then RHU | ruy ``Kernel8bitAvx2`` (TFLite "opt" FC/Conv on x86) |
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
    * ``"ruy_avx2"``: $r_1$ keeps the low 32 bits of the 64-bit shift (e.g.
      ``x' = q = INT32_MIN`` gives INT32_MIN). The kernel's rounding right shift detects
      $r_1 + 2^{r-1} > \\text{INT32\\_MAX}$ and then returns $2^{31-r}$, which is exactly
      the value computed here in int64, so no special case is needed. This is the
      rounding_right_shift form of ``kernel_avx2_fma.cc`` that LiteRT 2.3 runs
      (verified empirically, see backends.md §1.9); other ruy revisions fold the
      right shift into the 64-bit shift, which equals ``"single"``. Since $r_1$ is
      SRDHM without its saturation, ``"ruy_avx2"`` equals ``"double_up"`` everywhere
      except ``x' = q = INT32_MIN``.
    * ``"double_up"``: computed exactly in int64 like NEON ``vrshl``; TFLite's scalar C
      ``kUpward`` adds the nudge in int32 and would wrap only when
      $\\mathrm{SRDHM} > \\text{INT32\\_MAX} - 2^{r-1}$, which int8 kernels never reach.

    Args:
        x: Integer array or scalar. int32 values; for ``"int64_reduced16"``
            int64 values in $[-2^{47}, 2^{47})$.
        quantized_multiplier: Integer array or scalar (per-channel arrays broadcast).
            In $[-2^{31}, 2^{31}-1]$ for ``"double"``, ``"double_up"``, ``"ruy_avx2"``;
            in $[0, 2^{31}-1]$ for ``"single"`` and ``"int64_reduced16"``.
        shift: Integer array or scalar, + left / - right. In $[-31, 31]$ for
            ``"double"``, ``"double_up"``, ``"ruy_avx2"``; $[-31, 30]$ for ``"single"``;
            $[-31, 7]$ for ``"int64_reduced16"``.
        variant: One of :data:`MBQM_VARIANTS`.

    Returns:
        int32 array of the broadcast shape (a NumPy scalar when all inputs are scalars).

    Raises:
        QuantizationValueError: unknown ``variant`` or a value outside its range.
        QuantizationTypeError: a non-integer input.
        ShapeError: inputs that do not broadcast.
    """
    if variant not in MBQM_VARIANTS:
        raise QuantizationValueError(
            f"variant must be one of {sorted(MBQM_VARIANTS)}, got {variant!r}"
        )
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
def mbqm_double_scalar(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="double")`` for one int32."""
    ls, rs = _split_shift(shift)
    high = _srdhm_scalar(_wrap32_scalar(np.int64(x) << ls), q)
    return np.int32(_rdbpot_scalar(high, rs))


@numba.njit(cache=True)
def mbqm_single_scalar(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="single")`` for one int32."""
    total_shift = np.int64(31) - np.int64(shift)
    r = (np.int64(x) * np.int64(q) + (np.int64(1) << (total_shift - np.int64(1)))) >> total_shift
    return np.int32(_wrap32_scalar(r))


@numba.njit(cache=True)
def mbqm_ruy_avx2_scalar(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="ruy_avx2")`` for one int32."""
    ls, rs = _split_shift(shift)
    shifted = _wrap32_scalar(np.int64(x) << ls)
    r1 = _wrap32_scalar((shifted * np.int64(q) + np.int64(1073741824)) >> np.int64(31))
    return np.int32(_round_up_shift_scalar(r1, rs))


@numba.njit(cache=True)
def mbqm_double_up_scalar(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="double_up")`` for one int32."""
    ls, rs = _split_shift(shift)
    high = _srdhm_scalar(_wrap32_scalar(np.int64(x) << ls), q)
    return np.int32(_round_up_shift_scalar(high, rs))


@numba.njit(cache=True)
def mbqm_int64_reduced16_scalar(x, q, shift):
    """Numba twin of ``multiply_by_quantized_multiplier(..., variant="int64_reduced16")``."""
    q64 = np.int64(q)
    reduced = (q64 + np.int64(32768)) >> np.int64(16) if q64 < 0x7FFF0000 else np.int64(0x7FFF)
    total_shift = np.int64(15) - np.int64(shift)
    r = (np.int64(x) * reduced + (np.int64(1) << (total_shift - np.int64(1)))) >> total_shift
    return np.int32(_wrap32_scalar(r))

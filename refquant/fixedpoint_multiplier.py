"""Offline choice of fixed-point multipliers: a real multiplier $M$ to TFLite's ``(q, shift)``.

An integer kernel (Conv, FullyConnected, Add, ...) ends with a real multiplier
$M$ (e.g. $M = S_x S_w / S_y$) applied to an int32 accumulator. TFLite stores $M$
as a Q0.31 integer `quantized_multiplier` $q \\in [2^{30}, 2^{31})$ and a
power-of-two exponent `shift`:

$$ M \\approx q \\cdot 2^{\\text{shift} - 31}, \\qquad \\text{shift} > 0
\\text{ is a left shift, } \\text{shift} < 0 \\text{ a right shift.} \\tag{1} $$

Everything here is **offline** code (float allowed, runs once per model), kept apart from
the integer-only **runtime** half in :mod:`refquant.fixedpoint` (SRDHM, RDBPOT and
``multiply_by_quantized_multiplier``), as gemmlowp's ``quantization_example.cc`` does.
:mod:`refquant.fixedpoint` re-exports every function of this module, so
``from refquant.fixedpoint import quantize_multiplier`` keeps working.

Sources: tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/quantization_util.cc``
(``QuantizeMultiplier``, ``IntegerFrExp``, ``PreprocessSoftmaxScaling``,
``CalculateInputRadius``). See the Conventions page for the rounding vocabulary (RHAZ).

Added in 0.1.0.
"""

from __future__ import annotations

import math
import numbers
import struct

import numpy as np

from ._validate import as_flag, asarray, describe
from .dtypes import INT32_MAX
from .errors import QuantizationTypeError, QuantizationValueError
from .rounding import round_half_away_from_zero

__all__ = [
    "integer_frexp",
    "quantize_multiplier",
    "quantize_multiplier_array",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_greater_than_one",
    "preprocess_softmax_scaling",
    "calculate_input_radius",
]


def _as_real(value, name: str) -> float:
    """A finite real scalar -> Python float (float32 widens exactly, as C's (double))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise QuantizationTypeError(f"{name} must be a real number, got {describe(value)}")
    try:
        v = float(value)
    except OverflowError:  # a Python int beyond the double range
        v = math.inf
    if not math.isfinite(v):
        raise QuantizationValueError(f"{name} must be finite, got {v}")
    return v



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
        raise QuantizationTypeError(f"value must be a real number, got {describe(value)}")
    try:
        d = float(value)
    except OverflowError:  # a Python int beyond the double range: what a C (double) cast gives
        d = math.inf if value > 0 else -math.inf
    u = struct.unpack("<Q", struct.pack("<d", d))[0]
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
    single_rounding = as_flag(single_rounding, "single_rounding")
    if m == 0.0:
        return 0, 0
    if as_flag(emulate_float, "emulate_float"):
        q, shift = integer_frexp(m)
    else:
        f, shift = math.frexp(m)
        q = int(round_half_away_from_zero(np.float64(f * float(1 << 31))))  # exact product: scaling by 2^31
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

    $M_i \\approx q_i \\cdot 2^{\\text{shift}_i - 31}$ (eq. (1)) element by element, with the same
    rounding (RHAZ of $f \\cdot 2^{31}$), 2^31 fold, tiny-multiplier flush and single-rounding
    saturation as the scalar function. Offline code.

    Args:
        reals: Float array-like of any shape (per-channel effective scales).
        single_rounding: See :func:`quantize_multiplier`.
        emulate_float: See :func:`quantize_multiplier`.

    Returns:
        ``(quantized_multiplier, shift)``: two int32 arrays of ``reals``' shape.

    Raises:
        QuantizationTypeError: ``reals`` is not a real array.
        QuantizationValueError: an element is NaN or infinite.
    """
    arr = asarray(reals, "reals", kinds=None, what="a real array")
    if arr.dtype.kind not in "fiu":
        raise QuantizationTypeError(f"reals must be a real array, got dtype {arr.dtype}")
    single_rounding = as_flag(single_rounding, "single_rounding")
    emulate_float = as_flag(emulate_float, "emulate_float")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0]) if arr.ndim else ()
        raise QuantizationValueError(f"reals must be finite, got {arr[first]!r} at index {first}")
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
    single_rounding = as_flag(single_rounding, "single_rounding")
    if isinstance(input_integer_bits, bool) or not isinstance(input_integer_bits, numbers.Integral):
        raise QuantizationTypeError(f"input_integer_bits must be an int in [1, 31], got {describe(input_integer_bits)}")
    if not 1 <= input_integer_bits <= 31:
        raise QuantizationValueError(
            f"input_integer_bits must be an int in [1, 31], got {input_integer_bits!r}"
        )
    max_real = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(b * s * float(1 << (31 - int(input_integer_bits))), max_real)
    if not real > 1.0:  # upstream: TFLITE_CHECK_GT(real_multiplier, 1.0) in QuantizeMultiplierGreaterThanOne
        raise QuantizationValueError(
            f"beta * input_scale * 2^(31 - input_integer_bits) must be > 1 (TFLite CHECK), got "
            f"beta={b!r}, input_scale={s!r}: {real!r}")
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
            raise QuantizationTypeError(f"{name} must be an int, got {describe(v)}")
    if not 0 <= total_signed_bits <= 62:
        raise QuantizationValueError(f"total_signed_bits must be in [0, 62], got {total_signed_bits}")
    if not 0 <= input_integer_bits <= total_signed_bits:
        raise QuantizationValueError(
            f"input_integer_bits must be in [0, total_signed_bits] = [0, {total_signed_bits}], got {input_integer_bits}"
        )
    if not 0 <= input_left_shift <= 62:
        raise QuantizationValueError(f"input_left_shift must be in [0, 62], got {input_left_shift}")
    r = (((1 << input_integer_bits) - 1) << (total_signed_bits - input_integer_bits)) >> input_left_shift
    if r > INT32_MAX:
        raise QuantizationValueError(f"input radius {r} does not fit int32 (INT32_MAX = {INT32_MAX})")
    return int(r)

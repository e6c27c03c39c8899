"""Rounding modes, exact for float16, float32 and float64 inputs.

Each function maps a float array to the same-dtype float array of integers
$\\operatorname{round}(x)$; converting to an integer type is a separate step (see
:mod:`refquant.quantization`) because backends differ in *where* they saturate.

| name | rule on ties (.5) | where backends use it |
|---|---|---|
| ``half_to_even`` (RNE) | to the even neighbour | ONNX spec, ONNX Runtime (``cvtps2dq``), PyTorch (``nearbyint``), XNNPACK (``lrintf``), NumPy ``np.rint`` |
| ``half_away_from_zero`` (RHAZ) | away from 0 | TFLite ``std::round`` (QUANTIZE, FC reference), gemmlowp ``RoundingDivideByPOT`` |
| ``half_up`` (RHU) | toward $+\\infty$ | gemmlowp SRDHM, ruy, ``(v + 2^{k-1}) >> k`` |
| ``half_down`` | toward $-\\infty$ | (completeness) |
| ``half_toward_zero`` | toward 0 | (completeness) |
| ``floor`` / ``ceil`` / ``toward_zero`` | directed | C ``>>`` on signed ints is ``floor``; C ``/`` and casts are ``toward_zero`` |
| ``stochastic`` | up with probability ``frac(x)`` | training-time (seeded) |

**The float32 trap.** ``np.floor(x + 0.5)`` is *not* round-half-up in float32:
for ``x = 0.49999997`` the sum ``x + 0.5`` rounds to ``1.0``. refquant never adds 0.5
in floating point; it compares the exact fractional part instead. For $a \\ge 0$ and
$f = \\lfloor a \\rfloor$, $a - f$ is exact (for $f \\ge 1$, $f \\le a < 2f$ and
Sterbenz's lemma applies; for $f = 0$ it is $a$ itself), so the tie test
$a - f \\ge 0.5$ is exact. Negative inputs are handled through $|x|$ and the sign.

NaN stays NaN and $\\pm\\infty$ stay $\\pm\\infty$ in every mode.
"""

from __future__ import annotations

from enum import Enum, EnumMeta

import numpy as np

from ._validate import asarray, describe
from .errors import QuantizationTypeError, QuantizationValueError

__all__ = [
    "RoundingMode",
    "round_half_to_even",
    "round_half_away_from_zero",
    "round_half_up",
    "round_half_down",
    "round_half_toward_zero",
    "round_floor",
    "round_ceil",
    "round_toward_zero",
    "round_stochastic",
    "round_by_mode",
]


class _RoundingModeMeta(EnumMeta):
    """``RoundingMode(value)`` accepts a member or its string value; anything else is a named
    refquant error (NumPy arrays would otherwise reach Enum's lookup, which compares them)."""

    def __call__(cls, value, *args, **kwargs):
        if not args and not kwargs and not isinstance(value, str):
            raise QuantizationTypeError(
                f"RoundingMode value must be one of {[m.value for m in cls]}, got {describe(value)}")
        return super().__call__(value, *args, **kwargs)


class RoundingMode(str, Enum, metaclass=_RoundingModeMeta):
    """Names of the rounding modes (the string values are accepted everywhere)."""

    HALF_TO_EVEN = "half_to_even"
    HALF_AWAY_FROM_ZERO = "half_away_from_zero"
    HALF_UP = "half_up"
    HALF_DOWN = "half_down"
    HALF_TOWARD_ZERO = "half_toward_zero"
    FLOOR = "floor"
    CEIL = "ceil"
    TOWARD_ZERO = "toward_zero"
    STOCHASTIC = "stochastic"

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value

    @classmethod
    def _missing_(cls, value):
        raise QuantizationValueError(f"RoundingMode value must be one of {[m.value for m in cls]}, got {value!r}")


def _as_float(x, name: str = "x") -> np.ndarray:
    a = asarray(x, name, kinds=None, what="a real numeric array")
    if a.dtype.kind in "iub":
        return a.astype(np.float64)
    if a.dtype.kind != "f":
        raise QuantizationTypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    return a


def _abs_floor_frac(x: np.ndarray):
    """Return ``(a, f, frac)`` with ``a = |x|``, ``f = floor(a)``, ``frac = a - f`` (exact)."""
    a = np.abs(x)
    f = np.floor(a)
    with np.errstate(invalid="ignore"):  # inf - inf = nan: compared as False below
        frac = a - f
    return a, f, frac


def round_half_to_even(x) -> np.ndarray:
    """Round to nearest, ties to even (RNE): ``np.rint``.

    $\\mathrm{RNE}(2.5) = 2$, $\\mathrm{RNE}(3.5) = 4$, $\\mathrm{RNE}(-0.5) = -0$.
    Mirrors ``cvtps2dq`` / ``lrintf`` / ``nearbyint`` in the default FP mode.
    """
    return np.rint(_as_float(x))  # RNE


def round_half_away_from_zero(x) -> np.ndarray:
    """Round to nearest, ties away from zero (RHAZ): C ``std::round``.

    $\\mathrm{RHAZ}(x) = \\operatorname{sign}(x)\\,\\lfloor |x| + 1/2 \\rfloor$, computed
    without forming $|x| + 1/2$ in floating point (exact; see the module note).
    """
    x = _as_float(x)
    a, f, frac = _abs_floor_frac(x)
    r = f + (frac >= 0.5)
    return np.copysign(r, x).astype(x.dtype, copy=False)


def round_half_toward_zero(x) -> np.ndarray:
    """Round to nearest, ties toward zero: $\\operatorname{sign}(x)\\lceil |x| - 1/2 \\rceil$."""
    x = _as_float(x)
    a, f, frac = _abs_floor_frac(x)
    r = f + (frac > 0.5)
    return np.copysign(r, x).astype(x.dtype, copy=False)


def round_half_up(x) -> np.ndarray:
    """Round to nearest, ties toward $+\\infty$ (RHU): $\\lfloor x + 1/2 \\rfloor$, exactly.

    The integer analogue is ``(v + (1 << (k-1))) >> k`` (gemmlowp SRDHM, ruy).
    $\\mathrm{RHU}(-2.5) = -2$, $\\mathrm{RHU}(2.5) = 3$.
    """
    x = _as_float(x)
    a, f, frac = _abs_floor_frac(x)
    pos = f + (frac >= 0.5)   # |x| rounded half up
    neg = f + (frac > 0.5)    # |x| rounded half down, for x < 0
    # copysign keeps IEEE roundToIntegral's sign of zero: RHU(-0.0) = RHU(-0.5) = -0.0
    r = np.copysign(np.where(x >= 0, pos, neg), x)
    r = np.where(np.isnan(x), x, r)
    return r.astype(x.dtype, copy=False)


def round_half_down(x) -> np.ndarray:
    """Round to nearest, ties toward $-\\infty$: $\\lceil x - 1/2 \\rceil$, exactly."""
    return -round_half_up(-_as_float(x))


def round_floor(x) -> np.ndarray:
    """Round toward $-\\infty$ (C ``>>`` on signed integers)."""
    return np.floor(_as_float(x))


def round_ceil(x) -> np.ndarray:
    """Round toward $+\\infty$."""
    return np.ceil(_as_float(x))


def round_toward_zero(x) -> np.ndarray:
    """Round toward zero (C casts and integer ``/``)."""
    return np.trunc(_as_float(x))


def round_stochastic(x, *, seed=None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Stochastic rounding: $\\lfloor x \\rfloor + [u < x - \\lfloor x \\rfloor]$, $u \\sim U[0, 1)$.

    Unbiased: $E[\\mathrm{round}(x)] = x$. Deterministic for a fixed ``seed`` (or a
    ``numpy.random.Generator`` passed as ``rng``); one uniform draw per element, in
    C order, as float64.

    Raises:
        QuantizationValueError: Both ``seed`` and ``rng`` given.
    """
    if seed is not None and rng is not None:
        raise QuantizationValueError("give seed or rng, not both")
    x = _as_float(x)
    gen = _generator(seed, rng)
    u = gen.random(x.shape)
    x64 = x.astype(np.float64)
    f = np.floor(x64)
    with np.errstate(invalid="ignore"):
        frac = x64 - f  # exact for float32/float16 inputs; float64 near -1..0 is within 1 ulp
    r = f + (u < frac)
    r = np.where(np.isfinite(x64), r, x64)
    return r.astype(x.dtype, copy=False)


def _generator(seed, rng) -> np.random.Generator:
    """``rng`` if given (a ``numpy.random.Generator``), else ``np.random.default_rng(seed)``."""
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise QuantizationTypeError(f"rng must be a numpy.random.Generator, got {describe(rng)}")
        return rng
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
        raise QuantizationTypeError(f"seed must be None or an integer >= 0, got {describe(seed)}")
    if seed is not None and int(seed) < 0:
        raise QuantizationValueError(f"seed must be None or an integer >= 0, got {int(seed)}")
    return np.random.default_rng(None if seed is None else int(seed))


_FUNCS = {
    RoundingMode.HALF_TO_EVEN: round_half_to_even,
    RoundingMode.HALF_AWAY_FROM_ZERO: round_half_away_from_zero,
    RoundingMode.HALF_UP: round_half_up,
    RoundingMode.HALF_DOWN: round_half_down,
    RoundingMode.HALF_TOWARD_ZERO: round_half_toward_zero,
    RoundingMode.FLOOR: round_floor,
    RoundingMode.CEIL: round_ceil,
    RoundingMode.TOWARD_ZERO: round_toward_zero,
}


def as_rounding_mode(mode, *, name: str = "rounding") -> RoundingMode:
    """Validate and return a :class:`RoundingMode` from a member or its string value."""
    if not isinstance(mode, str):
        raise QuantizationTypeError(
            f"{name} must be one of {[m.value for m in RoundingMode]}, got {describe(mode)}")
    try:
        return RoundingMode(mode)
    except ValueError:
        raise QuantizationValueError(
            f"{name} must be one of {[m.value for m in RoundingMode]}, got {mode!r}") from None


def round_by_mode(x, mode, *, seed=None, rng=None) -> np.ndarray:
    """Round ``x`` with the named mode (see the table in the module docstring).

    Args:
        x: Float array (float16/32/64); integer arrays are converted to float64.
        mode: A :class:`RoundingMode` or its string value.
        seed, rng: Only for ``"stochastic"``.

    Returns:
        Array of the input's float dtype holding integer values (NaN/inf preserved).
    """
    m = as_rounding_mode(mode, name="mode")
    if m is RoundingMode.STOCHASTIC:
        return round_stochastic(x, seed=seed, rng=rng)
    if seed is not None or rng is not None:  # unused by this mode, but a bad one is still named
        if seed is not None and rng is not None:
            raise QuantizationValueError("give seed or rng, not both")
        _generator(seed, rng)
    return _FUNCS[m](x)

"""Exact oracles written with ``fractions.Fraction``: no floating-point rounding but the one modelled.

* :func:`round_exact` — an exact rational rounded to an integer by a named mode (the rounding
  vocabulary of the Conventions page), from the definition: exact floor, exact fractional part,
  the mode's rule on ties;
* :func:`round_fraction` — an exact rational rounded once to the nearest float16/32/64, ties to
  even (IEEE round-to-nearest), with overflow to ±inf;
* :func:`oracle_quantize` — one finite element through a :class:`refquant.quantization.QuantizeSpec`,
  every float operation the exact result rounded once to the operation's dtype.

Used by ``test_quantize_core.py``, ``test_rounding.py`` and ``test_fixedpoint.py``. Needs only
NumPy (no backend), unlike the other ``support`` modules.
"""

from __future__ import annotations

import math
from fractions import Fraction

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from refquant.quantization import QuantizeSpec

__all__ = ["round_exact", "round_fraction", "oracle_quantize"]

INF = float("inf")


def round_fraction(v: Fraction, dtype) -> float:
    """Round an exact rational to the nearest float of ``dtype``, ties to even (IEEE RNE)."""
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    fmax = Fraction(float(fi.max))
    half_ulp_max = Fraction(2) ** (fi.maxexp - 1 - fi.nmant) / 2
    if abs(v) >= fmax + half_ulp_max:
        return math.copysign(INF, v)
    if v == 0:
        return 0.0
    c = dt.type(float(v)) if abs(v) < fmax else dt.type(math.copysign(float(fi.max), v))
    if np.isinf(c):
        c = dt.type(math.copysign(float(fi.max), v))
    with np.errstate(over="ignore"):
        cands = [k for k in (c, np.nextafter(c, dt.type(INF)), np.nextafter(c, dt.type(-INF))) if np.isfinite(k)]
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]

    def key(k):
        return abs(Fraction(float(k)) - v), int(np.array(k, dt).view(uint)) & 1

    return float(min(cands, key=key))


def round_exact(v: Fraction, mode) -> int:
    """Round the exact rational ``v`` to an integer with ``mode`` (a rounding name or RoundingMode)."""
    mode = getattr(mode, "value", mode)
    fl = math.floor(v)
    frac = v - fl
    half = Fraction(1, 2)
    if mode == "floor":
        return fl
    if mode == "ceil":
        return math.ceil(v)
    if mode == "toward_zero":
        return math.trunc(v)
    if frac != half:
        return fl if frac < half else fl + 1
    return {"half_to_even": fl + (fl % 2), "half_away_from_zero": fl + (v > 0), "half_up": fl + 1,
            "half_down": fl, "half_toward_zero": fl + (v < 0)}[mode]


def oracle_quantize(x: float, in_dtype, s: float, z: int, spec: QuantizeSpec, qmin: int, qmax: int) -> int:
    """Exact model of one finite element, every float operation rounded once."""
    dt = np.dtype(in_dtype) if spec.precision == "input" else np.dtype(spec.precision)
    xs = Fraction(round_fraction(Fraction(x), dt))
    sf = Fraction(round_fraction(Fraction(s), dt))
    if spec.division == "divide":
        v = round_fraction(xs / sf, dt)
    else:
        if spec.reciprocal == "double_then_float":
            inv = Fraction(round_fraction(Fraction(round_fraction(1 / Fraction(s), np.float64)), dt))
        else:
            inv = Fraction(round_fraction(1 / sf, dt))
        if spec.zero_point == "before_round_fma":
            v = round_fraction(xs * inv + z, np.float32)
        else:
            v = round_fraction(xs * inv, dt)
    if spec.zero_point == "before_round":
        v = round_fraction(Fraction(v) + z, dt)
    if spec.clamp == "before_round":  # C: max(v, (float)(qmin - zp)): the bounds are rounded too
        off = 0 if spec.zero_point != "after_round" else z
        v = min(max(v, round_fraction(Fraction(qmin - off), dt)), round_fraction(Fraction(qmax - off), dt))
    if math.isinf(v):  # overflow of the float step (float16 arithmetic)
        if spec.overflow == "saturate":
            return qmax if v > 0 else qmin
        r = 2 ** 63                                    # caught as out of range just below
    else:
        r = round_exact(Fraction(v), spec.rounding)
    if spec.overflow == "int_cast" and abs(r) >= 2 ** 31:
        r = -2 ** 31                                   # x86 cvttss2si: INT32_MIN
    if spec.overflow == "int64_cast" and abs(r) >= 2 ** 63:
        r = -2 ** 63
    if spec.zero_point == "after_round":
        q = r + z
        if spec.overflow == "int_cast":
            q = (q + 2 ** 31) % 2 ** 32 - 2 ** 31      # int32 addition wraps
    elif spec.zero_point == "after_round_float":
        q = int(round_fraction(Fraction(r + z), dt))   # int converted to float, float sum
    else:
        q = r
    return min(max(q, qmin), qmax)

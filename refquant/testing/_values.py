"""Seeded edge values for golden cases (internal; NumPy only, no hypothesis).

The same ideas as the test suite's edge-value generator (gemmlowp's ``test_fixedpoint.cc``), drawn
from a ``numpy.random.Generator`` so that a seed fixes a golden file:

* scales with few significant bits ($m \\cdot 2^{-e}$, $m$ odd and < 16), for which the exact tie
  $x = (k + 1/2)\\,S$ is a float32 value for most codes $k$, and log-uniform "realistic" scales;
* float inputs mixing exact ties, their float32 neighbours, the two range ends $(q_{min} - Z)S$ and
  $(q_{max} - Z)S$, saturating values past them, zeros and uniform values (with ``specials``: NaN,
  $\\pm\\infty$, $\\pm 10^{10}$);
* integer codes mixing the format's extremes, the zero point and its neighbours, and uniform codes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tie_scale", "log_scale", "float_values", "codes"]

_SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e10, -1e10, 0.0, -0.0], dtype=np.float32)


def tie_scale(rng: np.random.Generator, lo_exp: int, hi_exp: int, size=None) -> np.ndarray:
    """float32 $m \\cdot 2^{-e}$, $m \\in \\{1, 3, 5, 7, 9\\}$, $e \\in [lo\\_exp, hi\\_exp]$: scalar or ``size``."""
    m = rng.choice(np.array([1, 1, 3, 5, 7, 9]), size=size)
    e = rng.integers(lo_exp, hi_exp, size=size, endpoint=True)
    return np.asarray(m * np.exp2(-e.astype(np.float64)), dtype=np.float32)


def log_scale(rng: np.random.Generator, lo: float, hi: float, size=None) -> np.ndarray:
    """float32 scales log-uniform in ``[lo, hi]``: scalar or ``size``."""
    return np.asarray(np.exp(rng.uniform(np.log(lo), np.log(hi), size=size)), dtype=np.float32)


def float_values(rng: np.random.Generator, scale, zero_point: int, qmin: int, qmax: int, shape, *,
                 specials: bool = False) -> np.ndarray:
    """float32 values of ``shape`` to quantize with ``scale`` (scalar, or broadcastable to ``shape``)
    and ``zero_point`` into ``[qmin, qmax]``: exact ties, neighbours, ends, saturating, zeros, uniform."""
    shape = tuple(shape)
    s = np.broadcast_to(np.asarray(scale, np.float32).astype(np.float64), shape)  # (shape) float64
    lo, hi = qmin - zero_point, qmax - zero_point  # the range in units of S
    kind = rng.choice(7, size=shape, p=[0.3, 0.1, 0.25, 0.1, 0.1, 0.05, 0.1])
    k = rng.integers(lo - 2, hi + 1, size=shape, endpoint=True).astype(np.float64)
    g = rng.uniform(0, hi - lo, size=shape)  # how far past an end
    units = np.select(
        [kind <= 1, kind == 2, kind == 3, kind == 4, kind == 5],
        [k + 0.5,                                      # exact ties (k + 1/2) S; 1: a neighbour, below
         rng.uniform(lo, hi, size=shape),              # uniform inside the range
         np.where(rng.random(shape) < 0.5, lo, hi),    # the range ends
         np.where(rng.random(shape) < 0.5, lo - 1 - g, hi + 1 + g),  # past them: saturate
         np.zeros(shape)],                             # zero
        default=k)                                     # integers: codes exactly
    x = (units * s).astype(np.float32)  # exact for a tie_scale and |k| < 2^17
    up = rng.random(shape) < 0.5
    x = np.where(kind == 1, np.where(up, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))), x)
    if specials:
        x = np.where(rng.random(shape) < 0.05, rng.choice(_SPECIALS, size=shape), x)
    return np.asarray(x, dtype=np.float32)


def codes(rng: np.random.Generator, qmin: int, qmax: int, shape, dtype, *, zero_point: int | None = None) -> np.ndarray:
    """Integer codes of ``shape`` and ``dtype`` in ``[qmin, qmax]``: extremes, the zero point and its
    neighbours, uniform codes."""
    shape = tuple(shape)
    ends = np.array([qmin, qmin + 1, qmax - 1, qmax], dtype=np.int64)
    near = np.array([0, -1, 1], dtype=np.int64) + (0 if zero_point is None else int(zero_point))
    u = rng.integers(qmin, qmax, size=shape, endpoint=True)
    r = rng.random(shape)
    v = np.where(r < 0.15, rng.choice(ends, size=shape), np.where(r < 0.25, rng.choice(near, size=shape), u))
    return np.clip(v, qmin, qmax).astype(dtype)

"""The one deterministic edge-value generator of the test suite (style.md, "Tests").

Modelled on gemmlowp's ``test_fixedpoint.cc``: every conformance and kernel test draws
its inputs from here, so that a 1-LSB difference between refquant and a backend shows
up wherever it can happen. Everything is deterministic: random parts take a ``seed``.

Integer values (:func:`int_edge_values`): the format's min/max neighbourhoods, zero and
its neighbours, ``±2^k + {-2..2}`` inside the range, then seeded uniform values.

Float values for a quantizer with scale ``s`` and zero point ``z``
(:func:`float_edge_values`):

* exact ties: float32 ``x`` with $x = (n + 1/2)\\,s$ **exactly** (so $x/s$ is a tie in any
  precision), for every code $n$ of the range plus a margin: they separate RNE,
  RHAZ and RHU, and reveal clamp-before/after-round order at the range ends;
* float32-division ties: ``x`` whose float32 quotient ``float32(x / s)`` is a tie although
  the exact quotient is not: they separate float32 division from float64 division and
  from multiplication by a float32 reciprocal;
* the float32 neighbours (``nextafter``) of every tie;
* ``±2^k·s``, and the specials: NaN, ±Inf, ±0, ±FLT_MAX, ±FLT_MIN, ±smallest subnormal,
  ±1e10, ±2^31 (float→int32 conversion overflows to INT32_MIN on x86);
* seeded uniform values over the range plus a margin.

Scales where exact ties are plentiful are in :data:`TIE_SCALES` (a scale with few
significant bits; for a random scale few codes have an exactly representable tie).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = [
    "INT_RANGES",
    "TIE_SCALES",
    "edge_values",
    "pow2_neighbourhood",
    "int_extremes",
    "int_edge_values",
    "accumulator_edge_values",
    "tie_values",
    "special_floats",
    "float_edge_values",
]

# name -> (qmin, qmax, NumPy dtype holding one unpacked value)
INT_RANGES = {
    "int2": (-2, 1, np.int8),
    "uint2": (0, 3, np.uint8),
    "int4": (-8, 7, np.int8),
    "uint4": (0, 15, np.uint8),
    "int8": (-128, 127, np.int8),
    "uint8": (0, 255, np.uint8),
    "int16": (-32768, 32767, np.int16),
    "uint16": (0, 65535, np.uint16),
    "int32": (-(2**31), 2**31 - 1, np.int32),
}

# float32 scales with few significant bits: most codes have an exactly representable tie.
TIE_SCALES = (1.0, 0.5, 0.25, 2.0**-7, 3 * 2.0**-8, 5 * 2.0**-10, 0.75, 1.5, 2.0)


def _range(dtype):
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in INT_RANGES:
        raise ValueError(f"dtype must be one of {sorted(INT_RANGES)}, got {dtype!r}")
    return INT_RANGES[name]


def pow2_neighbourhood(kmax=31, kmin=0, deltas=(-2, -1, 0, 1, 2)):
    """Sorted unique ``±2^k + d`` for ``kmin <= k <= kmax``, ``d`` in ``deltas`` (int64, (n,))."""
    p = np.int64(2) ** np.arange(kmin, kmax + 1, dtype=np.int64)  # (K,) int64
    d = np.asarray(deltas, dtype=np.int64)
    v = np.concatenate([(p[:, None] + d).ravel(), (-p[:, None] + d).ravel()])
    return np.unique(v)


def int_extremes(dtype, width=2):
    """qmin..qmin+width, -width..width, qmax-width..qmax, clipped to the range of ``dtype``."""
    lo, hi, np_dtype = _range(dtype)
    w = np.arange(width + 1, dtype=np.int64)
    v = np.concatenate([lo + w, hi - w, np.arange(-width, width + 1, dtype=np.int64)])
    return np.unique(v[(v >= lo) & (v <= hi)]).astype(np_dtype)


def int_edge_values(dtype, *, seed=0, n_random=64):
    """Extremes, ``±2^k + {-2..2}`` inside the range, then ``n_random`` seeded uniform values.

    Returns:
        (n,) array of the NumPy dtype holding ``dtype`` (int4 in int8, uint4 in uint8); the
        deterministic part is sorted, the random part follows.
    """
    lo, hi, np_dtype = _range(dtype)
    bits = int(np.ceil(np.log2(hi - lo + 1)))
    p2 = pow2_neighbourhood(kmax=bits)
    fixed = np.unique(np.concatenate([int_extremes(dtype).astype(np.int64), p2[(p2 >= lo) & (p2 <= hi)]]))
    rnd = np.random.default_rng(seed).integers(lo, hi, size=n_random, endpoint=True, dtype=np.int64)
    return np.concatenate([fixed, rnd]).astype(np_dtype)


def accumulator_edge_values(*, seed=0, n_random=64):
    """int32 accumulator values: INT32 min/max neighbourhoods and ``±2^k + {-2..2}``, k <= 30 (int32)."""
    return int_edge_values("int32", seed=seed, n_random=n_random)


def tie_values(scale, zero_point=0, dtype="int8", *, kind="exact", margin=2):
    """float32 ``x`` whose quotient by ``scale`` is a tie ``n + 1/2``.

    Args:
        scale: the quantizer's scale (used as float32).
        zero_point: codes ``n`` cover ``[qmin - zp - margin - 1, qmax - zp + margin]`` (for int32,
            1024 codes at each end and around 0).
        dtype: integer format name or NumPy dtype.
        kind: ``"exact"``: $x = (n+1/2)s$ exactly, so any division (float32, float64) sees a
            tie; ``"float32_divide"``: ``float32(x) / float32(s)`` rounds to a tie though
            the exact quotient is not one (empty for most power-of-two scales).
        margin: extra codes beyond each end of the range.

    Returns:
        (n,) float32, sorted, unique.
    """
    lo, hi, _ = _range(dtype)
    s32 = np.float32(scale)
    s = np.float64(s32)
    n = _codes(lo - zero_point - margin - 1, hi - zero_point + margin) + 0.5  # (N,) float64 half-integers
    exact = n * s  # float64: exact while |2n+1| < 2^29 (24-bit scale); checked below beyond that
    x = exact.astype(np.float32)
    if kind == "exact":
        keep = x.astype(np.float64) == exact
        for i in np.flatnonzero(keep & (np.abs(n) >= 2.0**28)):  # int32 ends: check in rationals
            keep[i] = Fraction(float(x[i])) == Fraction(float(n[i])) * Fraction(float(s))
    elif kind == "float32_divide":
        cand = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
        n3 = np.tile(n, 3)
        with np.errstate(over="ignore", invalid="ignore"):
            keep = ((cand / s32).astype(np.float64) == n3) & (cand.astype(np.float64) != n3 * s)
        x = cand
    else:
        raise ValueError(f"kind must be 'exact' or 'float32_divide', got {kind!r}")
    return np.unique(x[keep & np.isfinite(x)])


def _codes(first, last, window=1024):
    """float64 codes first..last; for ranges wider than 2^17 only ``window`` codes at each end and around 0."""
    if last - first <= 2**17:
        return np.arange(first, last + 1, dtype=np.float64)
    parts = [np.arange(first, first + window), np.arange(-window, window), np.arange(last - window + 1, last + 1)]
    return np.unique(np.concatenate(parts).astype(np.float64))


def special_floats():
    """NaN, ±Inf, ±0, ±FLT_MAX, ±FLT_MIN (normal), ±smallest subnormal, ±1e10, ±2^31, ±(2^31 - 128).

    Returns:
        (17,) float32.
    """
    f = np.finfo(np.float32)
    pos = np.array([0.0, f.max, f.tiny, f.smallest_subnormal, 1e10, 2.0**31, 2.0**31 - 128], dtype=np.float32)
    return np.concatenate([[np.nan, np.inf, -np.inf], pos, -pos]).astype(np.float32)


def float_edge_values(scale, zero_point=0, dtype="int8", *, seed=0, n_random=256, include_special=True, margin=2):
    """Edge floats for quantizing with (``scale``, ``zero_point``) to ``dtype`` (see module doc).

    Returns:
        (n,) float32: exact ties and their float32 neighbours, float32-division ties,
        ``±2^k·s`` (k in -2..bits), the specials (if ``include_special``), then ``n_random``
        seeded uniform values over ``[(qmin - z - margin)s, (qmax - z + margin)s]``.
    """
    lo, hi, _ = _range(dtype)
    s32 = np.float32(scale)
    exact = tie_values(scale, zero_point, dtype, kind="exact", margin=margin)
    inf = np.float32(np.inf)
    neighbours = np.concatenate([np.nextafter(exact, inf), np.nextafter(exact, -inf)])
    div = tie_values(scale, zero_point, dtype, kind="float32_divide", margin=margin)
    bits = int(np.ceil(np.log2(hi - lo + 1)))
    p2 = (2.0 ** np.arange(-2, bits + 1)).astype(np.float32) * s32
    fixed = np.unique(np.concatenate([exact, neighbours, div, p2, -p2]))
    parts = [fixed[np.isfinite(fixed)]]
    if include_special:
        parts.append(special_floats())
    r_lo, r_hi = (lo - zero_point - margin) * float(s32), (hi - zero_point + margin) * float(s32)
    parts.append(np.random.default_rng(seed).uniform(r_lo, r_hi, size=n_random).astype(np.float32))
    return np.concatenate(parts).astype(np.float32)


def edge_values(dtype, *, scale=None, zero_point=0, seed=0, n_random=64, include_special=True):
    """The single entry point: integer edge values for ``dtype``, or, with ``scale``, float32
    edge values for quantizing to ``dtype`` with (``scale``, ``zero_point``)."""
    if scale is None:
        return int_edge_values(dtype, seed=seed, n_random=n_random)
    return float_edge_values(scale, zero_point, dtype, seed=seed, n_random=n_random, include_special=include_special)

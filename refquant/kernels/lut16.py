r"""Interpolated int16 lookup tables: TFLite's 513-entry tables and their lookup.

An int16 input has 65,536 codes, too many for one entry each. TFLite's 16-bit tables
(``LUTPopulateInt16`` and ``LUTLookup`` in ``kernels/internal/common.h``) keep **513**
entries: the top 9 bits of a code pick an entry, the low 7 bits interpolate linearly to the
next one (entry 512 exists only as the right end of the last segment).

**Table** (offline, float64, ``LUTPopulateInt16<double>``): with the input range
$[a, b] = [S_x(-32768 - Z_x),\ S_x(32767 - Z_x)]$, output range
$[c, d] = [S_y(-32768 - Z_y),\ S_y(32767 - Z_y)]$, step $h = (b - a)/512$ and
$s = 65536 / (d - c)$, for $i = 0..511$ and $R$ = ``std::round`` (half away from zero):

$$ v_i = R(s\,f(a + i h)), \quad
   m_i = R\Big(\frac{s\,f(a + (i{+}1) h) + v_i}{2}\Big) - R\big(s\,f(a + i h + h/2)\big), \quad
   T[i] = \operatorname{clamp}\big(v_i - R(m_i / 2)\big) \tag{1} $$

(the sample minus half the midpoint error of the chord), and
$T[512] = \operatorname{clamp}(R(s\,f(b)))$, clamped to $[-32768, 32767]$.

**Lookup** (runtime, integers only, ``LUTLookup(int16_t, const int16_t*)``): for a code $v$,

$$ k = 256 + (v \gg 7), \quad o = v \mathbin{\&} 127, \quad
   y = \mathrm{wrap}_{16}\Big(T[k] + \big\lfloor ((T[k{+}1] - T[k]) \cdot o + 64) / 2^7 \big\rfloor\Big) \tag{2} $$

with the slope $T[k{+}1] - T[k]$ held in an int16 (it wraps, as in C; smooth tables never reach that).

**The softmax tables** (``SoftmaxPrepare`` for int16, every kernel): :func:`softmax_exp_lut16`
is eq. (1) of $f = \exp$ on $[-10, 0]$ ($S_x = 10/65535$, $Z_x = 32767$) and
:func:`softmax_reciprocal_lut16` of $f(u) = 1/(1 + u)$ on $[0, 1]$ ($S_x = 1/65535$,
$Z_x = -32768$), both with $S_y = 2/65535$, $Z_y = 0$, so $s \approx 32768$. $\exp$ is the C
library's double ``exp`` (:func:`math.exp`), as LiteRT calls it.

Added in 0.1.0.
"""

from __future__ import annotations

import functools
import math

import numbers

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError

__all__ = ["LUT16_SIZE", "populate_lut16", "softmax_exp_lut16", "softmax_reciprocal_lut16",
           "lut16_lookup_reference", "lut16_lookup"]

LUT16_SIZE = 513  # 512 segments (the top 9 bits of a code) + the right end of the last one
_RANGE = 65535  # int16 max - int16 min, as an int32 in SoftmaxPrepare


def _round(v: float) -> float:
    """C ``std::round`` on a double: half away from zero."""
    return math.copysign(math.floor(abs(v) + 0.5), v) if abs(v) < 2.0 ** 52 else v


def _clamp16(v: float) -> int:
    return int(min(max(v, -32768.0), 32767.0))


def populate_lut16(fn, input_scale, input_zero_point, output_scale, output_zero_point) -> np.ndarray:
    """``LUTPopulateInt16<double>``: the 513-entry int16 table of ``fn``, eq. (1). Offline.

    Args:
        fn: A real function of one double (called 1,537 times).
        input_scale, output_scale: Positive finite reals (used as doubles).
        input_zero_point, output_zero_point: ints (any value; int32 arithmetic as upstream).

    Returns:
        ``(513,)`` int16 table for :func:`lut16_lookup`.
    """
    if not callable(fn):
        raise QuantizationTypeError(f"fn must be callable, got {V.describe(fn)}")
    sx = V.as_real_scalar(input_scale, "input_scale")
    sy = V.as_real_scalar(output_scale, "output_scale")
    for s, n in ((sx, "input_scale"), (sy, "output_scale")):
        if not s > 0:
            raise QuantizationValueError(f"{n} must be > 0, got {s!r}")
    zx = V.as_int_scalar(input_zero_point, "input_zero_point", lo=-(2**31), hi=2**31 - 1)
    zy = V.as_int_scalar(output_zero_point, "output_zero_point", lo=-(2**31), hi=2**31 - 1)
    input_min, input_max = sx * (-32768 - zx), sx * (32767 - zx)
    output_min, output_max = sy * (-32768 - zy), sy * (32767 - zy)
    nb_steps = 512
    step = (input_max - input_min) / nb_steps
    half_step = step / 2
    inv = 65536.0 / (output_max - output_min)  # output_scaling_inv
    lut = np.empty(LUT16_SIZE, np.int16)
    def f(v: float) -> float:
        r = fn(v)
        if not isinstance(r, (numbers.Real, np.floating, np.integer)) or not np.isfinite(r):
            raise QuantizationValueError(f"fn must return a finite real number, got {V.describe(r)} for {v!r}")
        return float(r)

    for i in range(nb_steps):
        val = f(input_min + i * step)
        val_midpoint = f(input_min + i * step + half_step)
        val_next = f(input_min + (i + 1) * step)
        sample_val = _round(val * inv)
        midpoint_interp_val = _round((val_next * inv + _round(val * inv)) / 2)
        midpoint_val = _round(val_midpoint * inv)
        bias = _round((midpoint_interp_val - midpoint_val) / 2)
        lut[i] = _clamp16(sample_val - bias)
    lut[nb_steps] = _clamp16(_round(float(fn(input_max)) * inv))
    return lut


@functools.cache
def _softmax_tables() -> tuple[np.ndarray, np.ndarray]:
    exp_lut = populate_lut16(math.exp, 10.0 / _RANGE, 32767, 2.0 / _RANGE, 0)
    recip_lut = populate_lut16(lambda u: 1.0 / (1.0 + u), 1.0 / _RANGE, -32768, 2.0 / _RANGE, 0)
    exp_lut.flags.writeable = recip_lut.flags.writeable = False
    return exp_lut, recip_lut


def softmax_exp_lut16() -> np.ndarray:
    """TFLite's int16 softmax table of $e^{u}$, $u \\in [-10, 0]$ (read-only ``(513,)`` int16)."""
    return _softmax_tables()[0]


def softmax_reciprocal_lut16() -> np.ndarray:
    """TFLite's int16 softmax table of $1/(1 + u)$, $u \\in [0, 1]$ (read-only ``(513,)`` int16)."""
    return _softmax_tables()[1]


# --------------------------------------------------------------------------- lookup (runtime)


def _check(x, lut):
    x = V.as_typed_array(x, "x", ("int16",), array_only=True)  # native byte order
    t = V.asarray(lut, "lut", kinds=None, what="a (513,) int16 array")
    if t.shape != (LUT16_SIZE,) or t.dtype != np.int16:
        raise ShapeError(f"lut must be a (513,) int16 array (populate_lut16), got shape {t.shape} dtype {t.dtype}")
    return x, np.ascontiguousarray(t)


def lut16_lookup_reference(x, lut) -> np.ndarray:
    """Eq. (2), ``LUTLookup``: NumPy spec. ``x`` int16 (any shape), ``lut`` ``(513,)`` int16; returns int16."""
    x, t = _check(x, lut)
    t = t.astype(np.int64)
    v = x.astype(np.int64)
    k = 256 + (v >> 7)  # (...,) in [0, 511]
    offset = v & 0x7F
    slope = ((t[k + 1] - t[k] + 2**15) & 0xFFFF) - 2**15  # held in an int16
    delta = (slope * offset + 64) >> 7
    return (((t[k] + delta + 2**15) & 0xFFFF) - 2**15).astype(np.int16)


@numba.njit(cache=True)
def _lut16_value(v, lut):
    """Eq. (2) for one code (Numba scalar; for kernels that loop)."""
    k = np.int64(256) + (np.int64(v) >> 7)
    offset = np.int64(v) & 0x7F
    slope = np.int64(np.int16(np.int64(lut[k + 1]) - np.int64(lut[k])))
    delta = (slope * offset + 64) >> 7
    return np.int64(np.int16(np.int64(lut[k]) + delta))


@numba.njit(cache=True)
def _lookup_kernel(flat, lut):
    out = np.empty(flat.shape[0], np.int16)
    for i in range(flat.shape[0]):
        out[i] = _lut16_value(flat[i], lut)
    return out


def lut16_lookup(x, lut) -> np.ndarray:
    """Eq. (2): the Numba kernel (equal to :func:`lut16_lookup_reference`)."""
    x, t = _check(x, lut)
    return _lookup_kernel(np.ascontiguousarray(x).ravel(), t).reshape(x.shape)

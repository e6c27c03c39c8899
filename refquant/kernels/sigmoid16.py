r"""TFLite LOGISTIC and TANH on int16 codes (16x8 mode): one 256-entry sigmoid table, interpolated.

``reference_integer_ops::Logistic`` / ``Tanh`` (int16 overloads, ``reference/integer_ops/
{logistic,tanh}.h``) share the constant table :data:`SIGMOID_TABLE_UINT16`,
$T[i] = \min(\mathrm{round}(2^{16}\,\sigma(i/24)),\ 65535)$, $i = 0..255$ (``sigmoid_table_uint16``
in ``common.h``), and use $\tanh(u) = 2\sigma(2u) - 1$. Output scale $2^{-15}$, zero point 0.

**Input rescaling** (``SigmoidPrepare`` / ``TanhPrepare``, :func:`sigmoid16_params`): the code
$x$ becomes $v = \lfloor (x M + 2^{\ell-1}) / 2^{\ell} \rfloor$ (int32 arithmetic; no rounding
term when $\ell = 0$), where $v / (3 \cdot 2^{12})$ is the real input. When the input scale is a
power of two $2^{-12}$ (LOGISTIC) or $2^{-12}, 2^{-11}$ (TANH) within ``CheckedLog2``'s
tolerance, $M = 3 \cdot 2^{p}$, $\ell = 0$ ($p$ = 0 or 1, the power's distance from $2^{-12}$);
otherwise $M = \lfloor 3 \cdot 2^{12} S_x \cdot 2^{\ell} \rfloor$ with the smallest $\ell \ge 0$
(at most 31) that makes $3 \cdot 2^{12} S_x 2^{\ell} > 16383.5$.

**LOGISTIC** (9 fraction bits): with $a = |v|$, $u = a \gg 9$, $t = a \mathbin{\&} 511$,

$$ r = \begin{cases} (2^{15}-1) \cdot 2^{10} & u \ge 255 \\ T[u] \cdot 2^{9} + t\,(T[u{+}1] - T[u]) & \text{else} \end{cases},\qquad
   y = \begin{cases} \lfloor (r + 2^9) / 2^{10} \rfloor & v \ge 0 \\ \lfloor (2^{25} - r + 2^9 - 1) / 2^{10} \rfloor & v < 0 \end{cases} \tag{1} $$

**TANH** (8 fraction bits): $u = a \gg 8$, $t = a \mathbin{\&} 255$,
$r = (2^{16}-1) \cdot 2^{8}$ if $u \ge 255$, else $T[u] \cdot 2^8 + t\,(T[u{+}1] - T[u])$;

$$ y = \begin{cases} \lfloor (r - 2^{23} + 2^{7}) / 2^{8} \rfloor & v \ge 0 \\ \lfloor (2^{23} - r + 2^{7} - 1) / 2^{8} \rfloor & v < 0 \end{cases} \tag{2} $$

(floors of int32 values: arithmetic shifts). Both are the reference kernels, and the builtin
optimized kernels whenever $M$ comes from the non-power-of-two branch; for the power-of-two
scales the optimized kernels run gemmlowp fixed point instead (:mod:`refquant.kernels.fixedpoint16`).

Added in 0.1.0.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, UnsupportedError

__all__ = ["SIGMOID_TABLE_UINT16", "checked_log2", "sigmoid16_params", "logistic16_reference", "logistic16",
           "tanh16_reference", "tanh16"]

_F32 = np.float32

SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064,
    42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464,
    50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503,
    56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666,
    62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968,
    64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687,
    64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258, 65269, 65280, 65291,
    65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367, 65374, 65381, 65387, 65393, 65399, 65404,
    65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525, 65525,
    65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530,
    65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65535,
], np.uint16)
SIGMOID_TABLE_UINT16.flags.writeable = False
_TABLE64 = SIGMOID_TABLE_UINT16.astype(np.int64)

# The power-of-two input scales each op takes on its shift-only path: input_left_shift = 12 + log2(S_x).
_POT_SHIFTS = {"logistic": (0,), "tanh": (0, 1)}


def checked_log2(x) -> tuple[int, bool]:
    """TFLite ``CheckedLog2`` on a float32: ``(round(log2 x), |frac| < 1e-3)``. Offline.

    Upstream computes ``logf(x) * (1.0f / logf(2.0f))`` in float32 and rounds half away from
    zero; here ``logf`` is the float32 rounding of the double logarithm (the C library's
    ``logf`` may differ in the last bit, which moves the answer only for a scale within
    about $10^{-7}$ relative of the $10^{-3}$ tolerance's edge).
    """
    s = V.as_scalar_scale(x, "x")
    x_log2 = _F32(_F32(np.log(np.float64(s))) * (_F32(1.0) / _F32(np.log(2.0))))
    rounded = _F32(np.copysign(np.floor(np.abs(x_log2) + _F32(0.5)), x_log2))
    return int(rounded), bool(abs(_F32(x_log2 - rounded)) < _F32(1e-3))


def sigmoid16_params(x_scale, *, op: str = "logistic") -> tuple[int, int]:
    """``SigmoidPrepare`` / ``TanhPrepare`` (int16 input): ``(input_multiplier, input_left_shift)``. Offline.

    Returns ``(0, p)`` for the power-of-two scales (the kernels then use $M = 3 \\cdot 2^{p}$,
    $\\ell = 0$), else ``(M, l)`` as in the module docstring.

    Raises:
        UnsupportedError: $3 \\cdot 2^{12} S_x \\ge 2^{31}$ (the C cast to int32 is undefined).
    """
    op = V.as_choice(op, "op", tuple(_POT_SHIFTS))
    sx = V.as_scalar_scale(x_scale, "x_scale")
    log2_rounded, pot = checked_log2(sx)
    if pot and 12 + log2_rounded in _POT_SHIFTS[op]:
        return 0, 12 + log2_rounded
    multiplier = float(sx) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    if multiplier >= 2.0 ** 31:
        raise UnsupportedError(f"x_scale = {float(sx)!r} is too large for the int16 {op}: its input multiplier "
                               f"{multiplier!r} does not fit an int32")
    return int(multiplier), left_shift


def _check(x, input_multiplier, input_left_shift):
    x = V.as_typed_array(x, "x", ("int16",), array_only=True)  # native byte order
    m = V.as_int_scalar(input_multiplier, "input_multiplier", lo=0, hi=2**31 - 1)
    ls = V.as_int_scalar(input_left_shift, "input_left_shift", lo=0, hi=31)
    if m == 0:  # the power-of-two case
        if ls > 1:
            raise QuantizationValueError(f"input_left_shift must be 0 or 1 with input_multiplier 0, got {ls}")
        m, ls = 3 << ls, 0
    return x, m, ls


def _wrap32(v):
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def _rescale(x, m, ls):
    """$v = \\lfloor (x M + 2^{\\ell-1}) / 2^{\\ell} \\rfloor$ in int32 (the product wraps as in C)."""
    round_ = (1 << (ls - 1)) if ls > 0 else 0
    return _wrap32(x.astype(np.int64) * m + round_) >> ls


def logistic16_reference(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eq. (1): NumPy spec. ``x`` int16 (any shape); parameters from :func:`sigmoid16_params`; returns int16."""
    x, m, ls = _check(x, input_multiplier, input_left_shift)
    v = _rescale(x, m, ls)
    a = np.abs(v)
    u = np.minimum(a >> 9, 254)
    interp = (_TABLE64[u] << 9) + (a & 0x1FF) * (_TABLE64[u + 1] - _TABLE64[u])
    r = np.where((a >> 9) >= 255, 0x7FFF << 10, interp)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh16_reference(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eq. (2): NumPy spec. ``x`` int16 (any shape); parameters from :func:`sigmoid16_params` with ``op="tanh"``."""
    x, m, ls = _check(x, input_multiplier, input_left_shift)
    v = _rescale(x, m, ls)
    a = np.abs(v)
    u = np.minimum(a >> 8, 254)
    interp = (_TABLE64[u] << 8) + (a & 0xFF) * (_TABLE64[u + 1] - _TABLE64[u])
    r = np.where((a >> 8) >= 255, 0xFFFF << 8, interp)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


@numba.njit(cache=True)
def _sigmoid16_kernel(flat, m, ls, table, tanh):
    out = np.empty(flat.shape[0], np.int16)
    round_ = (np.int64(1) << (ls - 1)) if ls > 0 else np.int64(0)
    frac = np.int64(8) if tanh else np.int64(9)
    for i in range(flat.shape[0]):
        p = np.int64(flat[i]) * m + round_
        v = (((p + 2147483648) & 0xFFFFFFFF) - 2147483648) >> ls  # int32 wrap, then the shift
        a = abs(v)
        u = a >> frac
        if u >= 255:
            r = np.int64(0xFFFF << 8) if tanh else np.int64(0x7FFF << 10)
        else:
            r = (np.int64(table[u]) << frac) + (a & ((np.int64(1) << frac) - 1)) * (
                np.int64(table[u + 1]) - np.int64(table[u]))
        if tanh:
            r = (r - 8388608 + 128) if v >= 0 else (-r + 8388608 + 127)
            out[i] = np.int16(r >> 8)
        else:
            r = (r + 512) if v >= 0 else (33554432 - r + 511)
            out[i] = np.int16(r >> 10)
    return out


def logistic16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eq. (1): the Numba kernel (equal to :func:`logistic16_reference`)."""
    x, m, ls = _check(x, input_multiplier, input_left_shift)
    return _sigmoid16_kernel(np.ascontiguousarray(x).ravel(), m, ls, SIGMOID_TABLE_UINT16, False).reshape(x.shape)


def tanh16(x, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """Eq. (2): the Numba kernel (equal to :func:`tanh16_reference`)."""
    x, m, ls = _check(x, input_multiplier, input_left_shift)
    return _sigmoid16_kernel(np.ascontiguousarray(x).ravel(), m, ls, SIGMOID_TABLE_UINT16, True).reshape(x.shape)

r"""Quantized 8-bit multiply with int16 narrowing in SIMD blocks (position dependent).

TFLite MUL computes $r = \mathrm{MBQM}((a - Z_a)(b - Z_b), q, \text{shift})$ (reference MBQM, double
rounding; :func:`refquant.kernels.elementwise.fixed_point_mul`). The reference kernel then adds
$Z_y$ in int32 and clamps. The builtin *optimized* 8-bit kernels (``optimized_integer_ops::MulElementwise``
for int8, ``optimized_ops::MulElementwise`` for uint8; NEON code through NEON_2_SSE on x86) narrow
first, in blocks of 16 (int8) or 8 (uint8) elements:

$$ y = \operatorname{clamp}\big(\mathrm{sat}_8(\mathrm{wrap}_{16}(\mathrm{sat}_{16}(r) + Z_y)),\ a_{min},\ a_{max}\big) \tag{1} $$

(``vqmovn_s32``, a wrapping ``vaddq_s16``, then ``vqmovn_s16`` / ``vqmovun_s16``), while the last
``n % block`` elements follow the reference formula $\operatorname{clamp}(r + Z_y)$. The two agree
unless $r$ or $r + Z_y$ leaves int16 (a large multiplier $S_a S_b / S_y$): then a saturated
$r$ plus a zero point of the other sign can wrap to the far end of the range. Measured against
LiteRT 2.3.0 on x86-64 (``tests/test_conformance_tflite_int16_pointwise.py``).

Element-wise and cheap: one plain NumPy implementation, vectorized.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..dtypes import wrap_int32
from ..errors import QuantizationTypeError, ShapeError
from ._checks import activation_bounds, zero_point_scalar

__all__ = ["MUL_SIMD_BLOCK", "fixed_point_mul_blocks"]

#: Elements per SIMD block of TFLite's optimized 8-bit MUL, by dtype name.
MUL_SIMD_BLOCK = {"int8": 16, "uint8": 8}


def fixed_point_mul_blocks(a, a_zero_point, b, b_zero_point, y_zero_point, multiplier, shift, *, block: int,
                           act_min=None, act_max=None) -> np.ndarray:
    """Eq. (1) on the elements in whole blocks of ``block`` (C order), the reference formula on the rest.

    Args:
        a, b: int8 or uint8 arrays of one dtype and one shape.
        a_zero_point, b_zero_point, y_zero_point: Integer scalars in the dtype's range.
        multiplier, shift: From :func:`refquant.kernels.elementwise.fixed_point_mul_params`.
        block: Elements per SIMD block (>= 1; 1 puts every element in a block).
        act_min, act_max: Fused-activation clamp (default: the dtype's range).

    Returns:
        Array of ``a``'s shape and dtype.
    """
    for x, name in ((a, "a"), (b, "b")):
        if not isinstance(x, np.ndarray) or x.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise QuantizationTypeError(f"{name} must be an int8 or uint8 NumPy array, got {V.describe(x)}")
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ShapeError(f"a and b must share one dtype and shape, got {a.dtype}{a.shape} and {b.dtype}{b.shape}")
    za, zb, zy = (zero_point_scalar(z, a.dtype, n) for z, n in ((a_zero_point, "a_zero_point"),
                                                                (b_zero_point, "b_zero_point"),
                                                                (y_zero_point, "y_zero_point")))
    lo, hi = activation_bounds(act_min, act_max, a.dtype)
    q = V.as_int_scalar(multiplier, "multiplier", lo=fp.INT32_MIN, hi=fp.INT32_MAX)
    s = V.as_int_scalar(shift, "shift", lo=-31, hi=31)
    block = V.as_int_scalar(block, "block", lo=1)
    prod = (V.native(a).astype(np.int64).ravel() - za) * (V.native(b).astype(np.int64).ravel() - zb)  # |.| < 2^16
    r = fp.multiply_by_quantized_multiplier(prod, q, s, variant="double").astype(np.int64)
    y = wrap_int32(r + zy).astype(np.int64)  # the reference formula: an int32 addition
    n = r.size // block * block
    narrowed = ((np.clip(r[:n], -32768, 32767) + zy + 32768) % 65536) - 32768  # vqmovn_s32, wrapping vaddq_s16
    info = np.iinfo(a.dtype)
    y[:n] = np.clip(narrowed, info.min, info.max)  # vqmovn_s16 / vqmovun_s16
    return np.clip(y, lo, hi).astype(a.dtype).reshape(a.shape)

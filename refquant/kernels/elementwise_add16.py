r"""TFLite's optimized int16 ADD (16x8 mode): 16-element SIMD blocks with the input shift folded in.

TFLite ADD on int16 codes (zero points 0, general scales) shares its offline parameters with the
reference kernel (:func:`refquant.kernels.elementwise.fixed_point_add_params` with left shift
$L = 15$: Q31 multipliers $M_a, M_b, M_y$ with shifts $e_a, e_b, e_y \le 0$). The reference kernel
computes, per element, three double-rounding MBQM:

$$ y = \operatorname{clamp}\big(\mathrm{MBQM}(\mathrm{MBQM}(a 2^{L}, M_a, e_a) + \mathrm{MBQM}(b 2^{L}, M_b, e_b),
   M_y, e_y)\big) \tag{1} $$

The builtin optimized kernel (``optimized_integer_ops::AddElementwiseInt16``, its ``USE_NEON``
branch: NEON intrinsics through NEON_2_SSE on x86) runs whole blocks of 16 elements of one flat
loop differently: it folds each input's shift into the left shift, so each input is rounded
once instead of twice,

$$ s_a = \mathrm{SRDHM}(\mathrm{shl}(a, L + e_a), M_a), \quad s_b = \mathrm{SRDHM}(\mathrm{shl}(b, L + e_b), M_b),
   \quad y = \operatorname{clamp}\big(\mathrm{RDBPOT}(\mathrm{SRDHM}(s_a + s_b, M_y), -e_y)\big) \tag{2} $$

with $\mathrm{shl}(x, k) = x 2^{k}$ for $k \ge 0$ and the arithmetic (flooring) right shift by
$-k$ for $k < 0$ (``vshlq_s32``), SRDHM the rounding doubling high multiply
(``vqrdmulhq_n_s32``: round half up, :func:`refquant.fixedpoint.saturating_rounding_doubling_high_mul`)
and RDBPOT gemmlowp's rounding divide (half away from zero). The clamp is the fused activation's
range, then ``vqmovn_s32`` (a no-op after it). The last ``n % 16`` elements run eq. (1).

The two equations differ by one code where the input stage's double rounding moves the sum
across a tie of the output stage: rare for unrelated scales, but frequent enough to matter (a few
in $10^5$) when the output scale equals the larger input's, as in the converter's residual ADDs.

Only operands whose shapes are equal once padded with leading 1s take this flat loop
(``ProcessBroadcastShapes``); a broadcast ADD runs ``reference_ops::BroadcastAdd6DSlow``, eq. (1),
on every kernel set. That dispatch belongs to the caller (:func:`refquant.ops.pointwise.add`).

The source also holds an ``__AVX2__`` branch (another rounding); the LiteRT 2.3.0 x86-64 wheel
runs the NEON branch (measured on an AVX-512 VNNI host: one-op models in
``tests/test_conformance_tflite_ops.py``, the converter's 16x8 models in
``tests/test_conformance_tflite_16x8_models.py``); an ARM build runs the same NEON code natively.

Element-wise and cheap: one plain NumPy implementation, vectorized.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import fixedpoint as fp
from ..errors import QuantizationTypeError, ShapeError
from ._checks import activation_bounds
from .elementwise import FixedPointAddParams, fixed_point_add

__all__ = ["ADD16_SIMD_BLOCK", "fixed_point_add16_blocks"]

#: Elements per SIMD block of TFLite's optimized int16 ADD (two int16x8 loads per input).
ADD16_SIMD_BLOCK = 16


def _vshl(x: np.ndarray, k: int) -> np.ndarray:
    """``vshlq_s32`` by one count: a left shift for ``k >= 0``, an arithmetic right shift by ``-k`` otherwise."""
    return x << k if k >= 0 else x >> -k


def fixed_point_add16_blocks(a, b, params: FixedPointAddParams, *, act_min=None, act_max=None) -> np.ndarray:
    """Eq. (2) on the elements in whole blocks of 16 (C order), eq. (1) on the rest.

    Args:
        a, b: int16 arrays of one shape (zero points 0, as TFLite requires for int16 ADD).
        params: From :func:`refquant.kernels.elementwise.fixed_point_add_params` with
            ``left_shift=15``.
        act_min, act_max: Fused-activation clamp (default: the int16 range).

    Returns:
        int16 array of ``a``'s shape.

    Raises:
        QuantizationTypeError: ``a`` or ``b`` not an int16 array, or ``params`` not a
            :class:`~refquant.kernels.elementwise.FixedPointAddParams` with left shift 15.
        ShapeError: ``a`` and ``b`` of different shapes.
    """
    a = V.as_typed_array(a, "a", ("int16",), array_only=True)  # native byte order
    b = V.as_typed_array(b, "b", ("int16",), array_only=True)
    if a.shape != b.shape:
        raise ShapeError(f"a and b must have one shape (the kernel's flat loop), got {a.shape} and {b.shape}")
    if not isinstance(params, FixedPointAddParams) or params.left_shift != 15:
        raise QuantizationTypeError(f"params must be a FixedPointAddParams with left_shift 15 (from "
                                    f"fixed_point_add_params(..., left_shift=15)), got {V.describe(params)}")
    lo, hi = activation_bounds(act_min, act_max, np.int16)
    p = params
    zero = np.int16(0)
    y = fixed_point_add(a, zero, b, zero, zero, p, act_min=lo, act_max=hi).ravel()  # eq. (1): the tail
    n = a.size // ADD16_SIMD_BLOCK * ADD16_SIMD_BLOCK
    x1 = V.native(a).ravel()[:n].astype(np.int64)  # vmovl_s16 (input offsets are 0)
    x2 = V.native(b).ravel()[:n].astype(np.int64)
    x1 = fp.saturating_rounding_doubling_high_mul(_vshl(x1, p.left_shift + p.a_shift), p.a_multiplier)
    x2 = fp.saturating_rounding_doubling_high_mul(_vshl(x2, p.left_shift + p.b_shift), p.b_multiplier)
    s = fp.saturating_rounding_doubling_high_mul(x1.astype(np.int64) + x2, p.output_multiplier)  # |sum| < 2^31
    s = fp.rounding_divide_by_pot(s, -p.output_shift)
    y[:n] = np.clip(s, lo, hi)  # vmaxq/vminq, then vqmovn_s32
    return y.reshape(a.shape)

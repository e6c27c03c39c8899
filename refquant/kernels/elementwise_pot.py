r"""Quantized add with power-of-two-shift multipliers and one rounding division.

$\rho_a = \mathrm{fl}(S_a/S_y)$, $\rho_b$ likewise (float32, offline), each in $[2^{-14}, 2^{8})$;
$e$ = the binary exponent of $\max(\rho_a, \rho_b)$, ``shift`` $= 21 - e$,
$m = \mathrm{RNE}(\rho \cdot 2^{\text{shift}})$. Then, in integers:

$$ y = \mathrm{clamp}\big(\mathrm{RDBPOT}(m_a (a - Z_a) + m_b (b - Z_b),\ \text{shift}) + Z_y,\ q_{lo}, q_{hi}\big) \tag{1} $$

with RDBPOT rounding half away from zero (:func:`refquant.fixedpoint.rounding_divide_by_pot`),
the sum saturated to int16 before $Z_y$ is added with int16 saturation (``packs_epi32``,
``adds_epi16``). Mirrors QNNPACK's ``q8vadd`` (``requantization.h``
``pytorch_qnnp_compute_add_quantization_params``, ``q8vadd/sse2.c``), uint8 only.

Added in 0.1.0 (moved here from the PyTorch face).
"""

from __future__ import annotations

import numpy as np

from .. import fixedpoint as fp
from ..errors import UnsupportedError

__all__ = ["pot_add_params", "pot_add"]

_F32 = np.float32


def pot_add_params(a_scale, b_scale, y_scale) -> tuple[int, int, int]:
    """``(m_a, m_b, shift)`` of eq. (1). Offline code (float allowed).

    Raises:
        UnsupportedError: a ratio outside $[2^{-14}, 2^8)$ (the operator is not created), or a
            shift of 32 or more (both ratios below $2^{-10}$: undefined in the C kernel).
    """
    ratios = (_F32(_F32(a_scale) / _F32(y_scale)), _F32(_F32(b_scale) / _F32(y_scale)))
    for rho, name in zip(ratios, ("a_scale / y_scale", "b_scale / y_scale")):
        if not 2.0 ** -14 <= float(rho) < 2.0 ** 8:
            raise UnsupportedError(f"{name} = {float(rho)!r} must be in [2^-14, 2^8) for this add kernel")
    exponent = int(np.frexp(max(ratios))[1]) - 1  # (bits >> 23) - 127 of a normal float
    shift = 21 - exponent  # in [13, 35]
    if shift > 31:
        raise UnsupportedError(f"an add with both scale ratios below 2^-10 shifts by {shift} >= 32 "
                               f"(undefined in the C kernel), not modelled")
    ma, mb = (int(np.rint(np.ldexp(np.float64(rho), shift))) for rho in ratios)  # lrintf(rho * 2^shift), exact
    return ma, mb, shift


def pot_add(a, a_zero_point: int, b, b_zero_point: int, y_zero_point: int, params, *, lo: int = 0,
            hi: int = 255) -> np.ndarray:
    """Eq. (1) on same-shape uint8 ``a``, ``b``; ``params`` from :func:`pot_add_params`.

    Returns:
        uint8 array of ``a``'s shape.
    """
    ma, mb, shift = params
    # |m (q - Z)| sums stay below 2 * 255 * 2^22 < 2^31: exact in int64 and in the C kernel's int32
    acc = ma * (a.astype(np.int64) - a_zero_point) + mb * (b.astype(np.int64) - b_zero_point)
    q = fp.rounding_divide_by_pot(acc, shift).astype(np.int64)
    y = np.clip(np.clip(q, -32768, 32767) + y_zero_point, -32768, 32767)  # packs_epi32, adds_epi16
    return np.clip(y, lo, hi).astype(np.uint8).reshape(a.shape)

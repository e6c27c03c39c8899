r"""Requantization under a profile: codes of one tensor rescaled to another's parameters
(TFLite QUANTIZE from an integer tensor; the integer model's ``requantize`` node).

The kernel is the profile's ``pointwise.requantize`` entry for the (input, output) dtype pair
(:data:`refquant.modes.REQUANTIZE_KERNELS`, :mod:`refquant.kernels.requant_codes`), the first
along the spec's fallback chain that takes the pair and the scale ratio. Conventions as
:mod:`refquant.ops.pointwise`; inputs are validated by the faces.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationValueError, UnsupportedError
from ..kernels import requant_codes as krq
from ..profiles import as_profile
from ..specs import PointwiseSpec

__all__ = ["requantize"]


def _requantize_kernel(spec: PointwiseSpec, x_dtype, y_dtype, x_scale, y_scale, name: str):
    """(kernel, params) of the first spec along the fallback chain that requantizes these dtypes."""
    pair = (np.dtype(x_dtype).name, np.dtype(y_dtype).name)
    while spec is not None:
        kernel = {(a, b): k for a, b, k in spec.requantize}.get(pair)
        if kernel == "shift8":
            try:
                return kernel, krq.shift8_requantize_params(x_scale, y_scale)
            except QuantizationValueError:
                pass  # the delegate declines this ratio: the fallback runs it
        elif kernel is not None:
            return kernel, krq.fixed_point_requantize_params(x_scale, y_scale)
        spec = spec.fallback
    raise UnsupportedError(f"{name} has no requantize op from {pair[0]} to {pair[1]}")


def requantize(x, x_scale, x_zero_point: int, y_scale, y_zero_point: int, *, profile, out_dtype=np.int8
               ) -> np.ndarray:
    """Codes of one tensor rescaled to another's parameters (TFLite QUANTIZE from an integer tensor),
    $y = \\mathrm{clamp}(\\mathrm{round}((x - Z_x) S_x / S_y) + Z_y)$, in the profile's kernel
    (:data:`refquant.modes.REQUANTIZE_KERNELS`, :mod:`refquant.kernels.requant_codes`):

    * ``fixed_point``: ``reference_ops::Requantize``, MBQM with double rounding;
    * ``fixed_point_simd16``: the optimized 8-bit kernel, whose whole 16-element blocks round the
      second step half up;
    * ``shift8``: the XNNPACK delegate (int8 to int8, uint8 to uint8), an 8-bit fixed-point
      multiplier; it declines ratios outside $[2^{-8}, 128]$ (the fallback runs those).

    Args:
        x: int8, uint8 or int16 codes, any shape.
        x_scale, y_scale: float32 scalars. x_zero_point, y_zero_point: ints in their dtypes' ranges.
        profile: A profile or its name.
        out_dtype: int8, uint8 or int16.

    Returns:
        Codes of ``x``'s shape and ``out_dtype``.

    Raises:
        UnsupportedError: The profile has no requantization between these dtypes (named).
    """
    out = np.dtype(out_dtype)
    prof = as_profile(profile)
    kernel, params = _requantize_kernel(prof.pointwise, x.dtype, out, x_scale, y_scale, f"profile {prof.name!r}")
    if kernel == "shift8":
        return krq.shift8_requantize(x, x_zero_point, params, y_zero_point, out)
    return krq.fixed_point_requantize(x, x_zero_point, *params, y_zero_point, out,
                                      simd_block=16 if kernel == "fixed_point_simd16" else 0)

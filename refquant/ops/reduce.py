r"""TFLite's MEAN under a profile: a reduction over any axes with the output's own parameters.

The kernel is the profile's ``pointwise.mean`` entry for the input dtype
(:data:`refquant.modes.MEAN_KERNELS`, :mod:`refquant.kernels.mean`), the first along the spec's
fallback chain that lists the dtype; the global average pool of :mod:`refquant.ops.pointwise`
runs int16 codes through :func:`mean`. Conventions as :mod:`refquant.ops.pointwise`: codes of one
dtype, float32 scalar scales, int zero points; inputs are validated by the faces.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..kernels import mean as kmean
from ..profiles import as_profile
from ..specs import PointwiseSpec

__all__ = ["mean"]


def _mean_kernel(spec: PointwiseSpec, dtype, name: str):
    """The MEAN kernel of the first spec along the fallback chain that lists ``dtype``."""
    while spec is not None:
        kernel = dict(spec.mean).get(np.dtype(dtype).name)
        if kernel is not None:
            return kernel
        spec = spec.fallback
    raise UnsupportedError(f"{name} has no {np.dtype(dtype)} MEAN")


def mean(x, x_scale, x_zero_point: int, y_scale, y_zero_point: int, axis, *, profile, keep_dims: bool = False
         ) -> np.ndarray:
    """Quantized MEAN over ``axis`` with the output's own parameters, in the profile's kernel
    (:data:`refquant.modes.MEAN_KERNELS`, :mod:`refquant.kernels.mean`):

    * ``fixed_point``: TFLite's reference ``QuantizedMeanOrSum`` (MBQM by $M/n$);
    * ``fixed_point_4d_blocks``: the same, except a 4-D MEAN over axes {1, 2} with ``keep_dims``,
      which TFLite's optimized kernel computes on the raw sums with a float32-derived bias and
      16-channel SIMD blocks (:func:`refquant.kernels.mean.mean_fixed_point_4d`);
    * ``float32``: the XNNPACK delegate's 8-bit MEAN, the raw sum converted in float32 with both
      zero points folded into one float32 constant (:func:`refquant.kernels.mean.mean_float32`;
      rank <= 6);
    * ``not_modelled``: refused.

    Args:
        x: Codes (int8, uint8, or int16 where the profile lists it), any rank.
        x_scale, y_scale: float32 scalars. x_zero_point, y_zero_point: ints.
        axis: An int or a sequence of ints (negative from the end; repeats allowed).
        profile: A profile or its name.
        keep_dims: Keep the reduced axes as size 1.

    Returns:
        Codes of ``x``'s dtype.

    Raises:
        UnsupportedError: The profile has no (modelled) MEAN for this dtype (named), or a ``float32``
            MEAN of rank above 6 (LiteRT's XNNPACK delegate fails to prepare it).
    """
    prof = as_profile(profile)
    kernel = _mean_kernel(prof.pointwise, x.dtype, f"profile {prof.name!r}")
    if kernel == "not_modelled":
        raise UnsupportedError(f"profile {prof.name!r}'s {x.dtype} MEAN runs a kernel refquant does not model")
    axes = kmean.mean_axes(axis, x.ndim)
    if kernel == "float32":
        if x.ndim > kmean.MEAN_FLOAT32_MAX_RANK:
            raise UnsupportedError(f"profile {prof.name!r}'s {x.dtype} MEAN takes rank <= "
                                   f"{kmean.MEAN_FLOAT32_MAX_RANK} (the delegate fails to prepare a higher rank), "
                                   f"got shape {x.shape}")
        y = kmean.mean_float32(x, x_scale, x_zero_point, y_scale, y_zero_point, axes)
    elif kernel == "fixed_point_4d_blocks" and keep_dims and x.ndim == 4 and axes == (1, 2):
        y = kmean.mean_fixed_point_4d(x, x_scale, x_zero_point, y_scale, y_zero_point)
    else:
        y = kmean.mean_fixed_point(x, x_scale, x_zero_point, y_scale, y_zero_point, axes)
    return y if keep_dims else y.reshape(tuple(d for i, d in enumerate(y.shape) if i not in axes))

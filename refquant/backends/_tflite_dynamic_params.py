r"""The TFLite converter's weights for dynamic-range quantization (``Optimize.DEFAULT``, no
representative dataset). Offline: float arithmetic, run once per model.

Read in source (LiteRT ``tflite/converter``, snapshot f6745779; TensorFlow is not installed here, so
the converter itself was not run): ``TFLiteConverterV2`` uses the MLIR dynamic-range quantizer
(``experimental_new_dynamic_range_quantizer = True``), whose ``PrepareDynamicRangeQuantizePass``

* quantizes a FULLY_CONNECTED weight **per output channel** (axis 0), symmetric, narrow range
  $[-127, 127]$, unless ``_experimental_disable_per_channel_quantization_for_dense_layers``;
* skips a weight with fewer than ``minimum_elements_for_weights`` = 1024 elements (it stays float);
* sets ``asymmetric_quantize_inputs = true`` on the FULLY_CONNECTED;
* keeps the bias float32.

With ``legacy_float_scale`` false (the MLIR default) the scale is a double,
$S_c = 2 h_c / 254$ with $h_c = \max_k |w_{ck}|$ (``GetUniformQuantizedPerAxisTypeForWeight``;
a channel with $2 h_c \le 10^{-6}$ is widened to $h_c = 5 \cdot 10^{-7}$, ``ExpandVerySmallRange``), and the codes
are $q = \mathrm{clamp}(\mathrm{RHAZ}(w / S_c), -127, 127)$ in double (``quantizeF32ToInt8``: ``std::round``).
The flatbuffer stores $\mathrm{fl}_{32}(S_c)$. This differs from
:func:`refquant.backends.tflite.symmetric_weight_quantize` (the full-integer calibrator's float32
$\mathrm{RHAZ}(\mathrm{fl}(w \cdot \mathrm{fl}(127 / h)))$) by one code on rare near-ties.

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, ShapeError
from ..rounding import round_half_away_from_zero

__all__ = ["MIN_ELEMENTS_FOR_WEIGHTS", "dynamic_range_weight_quantize"]

#: Weights with fewer elements stay float (``QuantizationSpecs.minimum_elements_for_weights``).
MIN_ELEMENTS_FOR_WEIGHTS = 1024
_NEAR_ZERO = 1.0e-6  # kNearZeroTolerance


def dynamic_range_weight_quantize(w):
    """Per-channel symmetric int8 weights of a FULLY_CONNECTED ``(O, K)``, as the converter's
    dynamic-range quantizer writes them (see the module docstring).

    Args:
        w: float weights ``(O, K)`` (rounded to float32), finite.

    Returns:
        ``(q, scale)``: int8 ``(O, K)`` in $[-127, 127]$ and float32 ``(O,)``.
    """
    with np.errstate(over="ignore"):
        w = V.as_float_array(w, "w").astype(np.float32)
    if w.ndim != 2:
        raise ShapeError(f"w must have shape (O, K), got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise QuantizationValueError("w must be finite (it chooses the scale)")
    h = np.abs(w.astype(np.float64)).max(axis=1, initial=0.0)  # (O,) double
    h = np.where(2 * h > _NEAR_ZERO, h, np.maximum(h, _NEAR_ZERO / 2))
    scale = (h - (-h)) / 254.0  # fakeQuantAttrsToType: (rmax - rmin) / (qmax - qmin), double
    q = np.clip(round_half_away_from_zero(w.astype(np.float64) / scale[:, None]), -127, 127)
    return q.astype(np.int8), scale.astype(np.float32)

"""Each tool's weights for dynamic-range quantization (:func:`refquant.ptq.quantize_dynamic`).

The static recipes' weights are :func:`refquant.ptq.recipes.quantize_weight`; dynamic quantization
is a separate entry point of each tool, with its own defaults:

| recipe | a Linear's weights | kept float |
|---|---|---|
| ``tflite`` (converter, ``Optimize.DEFAULT``, no dataset; read in source) | per output channel, symmetric int8 $[-127, 127]$, double scale (:func:`refquant.backends._tflite_dynamic_params.dynamic_range_weight_quantize`) | fewer than 1024 weights |
| ``onnxruntime`` (``quantize_dynamic`` defaults: ``QInt8``, ``per_channel=False``; measured) | per tensor, symmetric int8 $[-127, 127]$, $S = \\max|w| / 127$, RNE; 7-bit $[-64, 64]$ on the ISAs of the recipe's ``weight_reduce_range_isas`` (pass ``reduce_range=True`` there, as for ``quantize_static``) | none |
| ``pytorch`` (``torch.ao.quantization.quantize_dynamic``, default qconfig; measured) | per tensor, symmetric qint8, $S = \\max|w| / 127.5$ | none |

Added in 0.1.0.
"""

from __future__ import annotations

import numpy as np

from ..backends._tflite_dynamic_params import MIN_ELEMENTS_FOR_WEIGHTS, dynamic_range_weight_quantize
from ..profiles import Profile
from .recipes import Recipe, quantize_weight

__all__ = ["dynamic_weight"]


def dynamic_weight(recipe: Recipe, w: np.ndarray, *, profile: Profile):
    """A Linear's ``(O, K)`` float32 weights as ``recipe``'s tool quantizes them for dynamic range.

    Returns:
        ``(q, scale, zero_point)`` (int8 codes, float32 scales ``()`` or ``(O,)``, int8 zero points
        of the scales' shape), or ``None`` when the tool leaves the layer float.
    """
    if recipe.name == "tflite":
        if w.size < MIN_ELEMENTS_FOR_WEIGHTS:
            return None
        q, scale = dynamic_range_weight_quantize(w)
        return q, scale, np.zeros(scale.shape, np.int8)
    return quantize_weight(recipe, w, per_channel=False, profile=profile)

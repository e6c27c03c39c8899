"""Post-training quantization: from a float ``refquant.nn`` model to a
:class:`~refquant.qmodel.QuantizedModel`.

* :mod:`refquant.ptq.flows` — :func:`~refquant.ptq.flows.quantize_static`,
  :func:`~refquant.ptq.flows.quantize_dynamic`, :func:`~refquant.ptq.flows.quantize_weights`;
* :mod:`refquant.ptq.recipes` — how each backend's tool chooses the parameters;
* :mod:`refquant.ptq.trace` — the float model as a list of steps, and calibration hooks;
* :mod:`refquant.ptq.lower` — steps + ranges + recipe → integer nodes;
* :mod:`refquant.ptq.advanced` — other codes on the same weight grid: :func:`bias_correction`
  (Nagel et al. 2019), :func:`adaround` (Nagel et al. 2020), :func:`gptq` (Frantar et al. 2022), and
  ``quantize_weights_advanced`` (the weight-only flow with a ``method``).
"""

from __future__ import annotations

from .flows import calibrate, quantize_dynamic, quantize_static, quantize_weights
from .recipes import RECIPES, Recipe, recipe_for
from .advanced import adaround, bias_correction, gptq  # after .flows, which advanced builds on

__all__ = ["quantize_static", "quantize_dynamic", "quantize_weights", "calibrate", "Recipe", "RECIPES", "recipe_for",
           "bias_correction", "adaround", "gptq"]

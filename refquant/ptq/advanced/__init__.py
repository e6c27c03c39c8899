"""Advanced post-training rounding of weights: other integer codes on the same grid as RTN.

Each method takes the integer model a flow made (round-to-nearest codes), the float model and
calibration data, and returns a new :class:`~refquant.qmodel.QuantizedModel` with the same scales,
zero points and nodes: a drop-in replacement.

* :mod:`~refquant.ptq.advanced.grid` — the weight grid every method shares (scales, zero points, range);
* :mod:`~refquant.ptq.advanced.moments` — a layer's inputs as im2col columns and their moments;
* :mod:`~refquant.ptq.advanced.bias_shift` — bias correction (Nagel et al. 2019), empirical and analytical;
* :mod:`~refquant.ptq.advanced.adaptive_rounding` — AdaRound (Nagel et al. 2020);
* :mod:`~refquant.ptq.advanced.gptq_rounding` — GPTQ (Frantar et al. 2022);
* :mod:`~refquant.ptq.advanced.weight_only` — :func:`quantize_weights_advanced`, the weight-only
  flow with a ``method``.
"""

from __future__ import annotations

from .adaptive_rounding import adaround, adaround_codes, adaround_objective
from .bias_shift import bias_correction, clipped_normal_mean
from .gptq_rounding import gptq, gptq_codes
from .grid import WeightGrid, code_range, grid_of_node, symmetric_grid
from .moments import LayerMoments, layer_columns
from .weight_only import METHODS, quantize_weights_advanced

__all__ = ["bias_correction", "clipped_normal_mean", "adaround", "adaround_codes", "adaround_objective", "gptq",
           "gptq_codes", "WeightGrid", "code_range", "grid_of_node", "symmetric_grid", "LayerMoments",
           "layer_columns", "METHODS", "quantize_weights_advanced"]

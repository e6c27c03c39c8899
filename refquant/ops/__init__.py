"""Integer ops under a profile: the layer the backend faces and the integer model share.

Each op takes integer tensors and their parameters in one internal convention (float32 scales,
integer zero points, the output format by dtype) plus a :class:`~refquant.profiles.Profile`
(or its name), reads every arithmetic choice from the profile, and calls the kernels of
:mod:`refquant.kernels`. A face translates its backend's names, argument order, layouts and
dtype rules to these calls; the integer model calls them directly. So a face and a model
node run under the same profile can never disagree.

* :mod:`refquant.ops.layers` — :func:`~refquant.ops.layers.linear`,
  :func:`~refquant.ops.layers.conv2d` (groups, depthwise), :func:`~refquant.ops.layers.output_stage`,
  :func:`~refquant.ops.layers.requantize_tensor`.
* :mod:`refquant.ops.pointwise` — add, mul, average/max/global pooling, softmax, logistic, tanh.
* :mod:`refquant.ops.reduce` — MEAN over any axes (TFLite).
* :mod:`refquant.ops.requantize` — codes of one tensor rescaled to another's parameters (TFLite's
  QUANTIZE from an integer tensor: int8, uint8, int16).
* :mod:`refquant.ops.dynamic` — dynamic-range linear layers (activations quantized per call or per row).
* :mod:`refquant.ops.conv_geometry` — the convolution geometries profiles name.
* :mod:`refquant.ops.reference_loops` — the same layers as plain loops, for reading.
* quantize and dequantize are the core's :func:`refquant.quantization.quantize` and
  :func:`refquant.quantization.dequantize`, which take a profile too.
"""

from __future__ import annotations

__all__ = ["layers", "pointwise", "reduce", "requantize", "dynamic", "conv_geometry", "reference_loops"]

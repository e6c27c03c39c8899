"""Integer-only kernels, each beside its plain NumPy twin.

Each kernel exists twice in its module: a plain NumPy ``*_reference`` that reads like the
equation (the spec), and a fast version (Numba, or an exactness-proven BLAS/``vpmaddwd``
path) that a test proves equal bit for bit. Kernels know arithmetic, not backends: the
ops layer (:mod:`refquant.ops`) picks the mode a backend uses from its profile. Import a
kernel from its module (``from refquant.kernels.gemm import gemm``): this package re-exports
nothing, so every module stays reachable under its own name.

* :mod:`refquant.kernels.gemm` — :func:`gemm`, :func:`matmul`: int8/uint8 → int32 with zero
  points per tensor / row / column; accumulation models ``exact``, ``wrap``,
  ``pairwise_sat16_u8s8`` (x86 ``vpmaddubsw`` without VNNI), ``pairwise_sat16_s8u8``.
* :mod:`refquant.kernels.conv` — :func:`conv2d`: groups, depthwise with multiplier, strides,
  dilations, explicit pads, NCHW/NHWC, OIHW/OHWI/1HWO weights.
* :mod:`refquant.kernels.multiplier` — real multipliers $S_x S_w / S_y$ formed as each backend
  forms them, and fixed-point parameters; fused-activation ranges.
* :mod:`refquant.kernels.requant` — :func:`requantize` int32 → int8/uint8/int16 in every mode
  (fixed-point double/single/half-up/int64, float32 RNE, float64 RHAZ/RNE, exact).
* :mod:`refquant.kernels.bias` — int32 bias, fbgemm's float bias, qnnpack's run-time bias.
* :mod:`refquant.kernels.pool` — average/max pooling (TFLite), global average pools and means
  (ONNX Runtime, TFLite builtin and XNNPACK, PyTorch).
* :mod:`refquant.kernels.dynamic` — dynamic-range quantization: run-time activation parameters
  per tensor or per row, and the float output stage (PyTorch, ONNX Runtime, TFLite, XNNPACK).
* :mod:`refquant.kernels.elementwise` / :mod:`refquant.kernels.elementwise_float` — quantized
  add and mul (TFLite fixed point, XNNPACK, ONNX Runtime float).
* :mod:`refquant.kernels.lut` / :mod:`refquant.kernels.softmax` — lookup-table logistic and
  tanh, softmax (TFLite float table and gemmlowp fixed point), ORT QLinearSigmoid.
"""

__all__ = ["bias", "conv", "dynamic", "elementwise", "elementwise_float", "gemm", "lut", "multiplier", "pool",
           "requant", "softmax"]

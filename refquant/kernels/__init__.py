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
* :mod:`refquant.kernels.gemm_int64` — int16 × int8 products accumulated in int64 (TFLite's
  16x8 FULLY_CONNECTED and convolutions).
* :mod:`refquant.kernels.conv` — :func:`conv2d`: groups, depthwise with multiplier, strides,
  dilations, explicit pads, NCHW/NHWC, OIHW/OHWI/1HWO weights.
* :mod:`refquant.kernels.multiplier` — real multipliers $S_x S_w / S_y$ formed as each backend
  forms them, and fixed-point parameters; fused-activation ranges.
* :mod:`refquant.kernels.requant` — :func:`requantize` int32 → int8/uint8/int16 in every mode
  (fixed-point double/single/half-up/int64, float32 RNE, float64 RHAZ/RNE, exact).
* :mod:`refquant.kernels.bias` — int32 bias, fbgemm's float bias, qnnpack's run-time bias.
* :mod:`refquant.kernels.pool` — average/max pooling (TFLite), global average pools and means
  (ONNX Runtime, TFLite builtin and XNNPACK, PyTorch); :mod:`refquant.kernels.mean` — TFLite's
  MEAN over any axes, int8/uint8/int16; :mod:`refquant.kernels.pool_nd` — ONNX Runtime's
  QLinearAveragePool and 8-bit MaxPool with its window geometry.
* :mod:`refquant.kernels.requant_codes` — codes of one tensor rescaled to another's parameters
  (TFLite's QUANTIZE from an integer tensor, int8/uint8/int16).
* :mod:`refquant.kernels.dynamic` — dynamic-range quantization: run-time activation parameters
  per tensor or per row, and the float output stage (PyTorch, ONNX Runtime, TFLite, XNNPACK).
* :mod:`refquant.kernels.elementwise` / :mod:`refquant.kernels.elementwise_float` — quantized
  add and mul (TFLite fixed point, XNNPACK, ONNX Runtime float); :mod:`refquant.kernels.elementwise_narrow`
  — TFLite's optimized 8-bit MUL, narrowed to int16 in SIMD blocks; :mod:`refquant.kernels.elementwise_add16`
  — TFLite's optimized int16 ADD (NEON blocks of 16).
* :mod:`refquant.kernels.lut` / :mod:`refquant.kernels.softmax` — lookup-table logistic and
  tanh, softmax (TFLite float table and gemmlowp fixed point), ORT QLinearSigmoid;
  :mod:`refquant.kernels.qlinear_lut` — ONNX Runtime's QLinearLeakyRelu, QLinearConcat and QLinearSoftmax tables.
* :mod:`refquant.kernels.lut16`, :mod:`refquant.kernels.softmax16`, :mod:`refquant.kernels.sigmoid16`,
  :mod:`refquant.kernels.fixedpoint16` — TFLite's int16 SOFTMAX (interpolated 513-entry tables),
  LOGISTIC and TANH (an interpolated sigmoid table, or gemmlowp's int16 fixed point).
* :mod:`refquant.kernels.sparse` — a CSR sparse × dense int8 matmul, the same int32 accumulators as
  :mod:`refquant.kernels.gemm` (the stored weights are the codes ≠ $Z_w$).
"""

__all__ = ["bias", "conv", "dynamic", "elementwise", "elementwise_float", "elementwise_add16", "elementwise_add8", "elementwise_narrow", "fixedpoint16", "gemm",
           "gemm_int64", "lut", "lut16", "mean", "multiplier", "pool", "pool_nd", "qlinear_lut", "requant", "requant_codes", "sigmoid16", "softmax",
           "softmax16", "sparse"]

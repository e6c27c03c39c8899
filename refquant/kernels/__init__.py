"""Integer kernels: int32-accumulator GEMM and convolution (Numba/BLAS, with NumPy twins).

Each kernel exists twice in its module: a plain NumPy ``*_reference`` that reads like the
equation, and a fast version that a test proves equal bit for bit.

* :mod:`refquant.kernels.gemm` — :func:`gemm`, :func:`matmul` (int8/uint8 → int32, zero
  points per tensor / row / column, accumulation models ``exact``, ``wrap``,
  ``pairwise_sat16_u8s8``, ``pairwise_sat16_s8u8``).
* :mod:`refquant.kernels.conv` — :func:`conv2d` (groups, depthwise with multiplier, strides,
  dilations, explicit pads, NCHW/NHWC, OIHW/OHWI/1HWO weights).
"""

from .conv import conv2d, conv2d_reference
from .gemm import gemm, gemm_reference, matmul, matmul_reference

__all__ = [
    "conv2d",
    "conv2d_reference",
    "gemm",
    "gemm_reference",
    "matmul",
    "matmul_reference",
]
